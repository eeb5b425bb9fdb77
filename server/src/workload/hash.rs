//! The hash workload: payload entries with random keys in a chained hash table; holding looks
//! keys up at random (half held keys, half random ones) and reads each found payload.
//!
//! Entries live in one vector in insertion order and chain through `u32` indices; the bucket
//! array holds chain heads. A new entry goes to the head of its chain, so the newest entry is
//! both the last of the vector and the first of its chain: shrinking (newest first) is O(1) per
//! entry. Bookkeeping is ~26 bytes per entry (24 for the entry, 4 per two entries for buckets),
//! and it grows smoothly: the entry vector is reallocated with `mremap` once large (no copy, pages
//! become resident as entries are written), and a bucket-array doubling adds 4 bytes per entry.

use super::arena::{Payload, PayloadArena};
use super::fill::{self, Shape};
use super::heap::{self, ArenaProbe};
use super::{
    Counters, HoldStep, HugePages, Rng, Workload, WorkloadConfig, WorkloadError, WorkloadKind,
};

/// End of a chain.
const NONE: u32 = u32::MAX;
/// Entries per bucket before the bucket array doubles.
const LOAD: usize = 2;
/// Smallest bucket array.
const MIN_BUCKETS: usize = 64;

#[derive(Debug)]
struct Entry {
    key: u64,
    next: u32,
    payload: Payload,
}

/// The table without its payload bytes.
#[derive(Debug)]
struct Table {
    entries: Vec<Entry>,
    buckets: Vec<u32>,
    rng: Rng,
}

/// Table + arena.
#[derive(Debug)]
pub(crate) struct HashWorkload {
    table: Table,
    arena: PayloadArena,
    shape: Shape,
    /// Freed last, so the release trims the building thread's malloc arena.
    probe: ArenaProbe,
}

/// Bucket of `key` in a table of `n` (a power of two) buckets: Fibonacci hashing, so even
/// keys that are not random spread over the table.
fn bucket_of(key: u64, n: usize) -> usize {
    let bits = n.trailing_zeros();
    if bits == 0 {
        return 0;
    }
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

fn alloc_error(what: &'static str, bytes: usize) -> WorkloadError {
    WorkloadError::Alloc { what, bytes }
}

impl HashWorkload {
    pub(crate) fn new(config: WorkloadConfig, rng: Rng) -> Self {
        Self {
            table: Table {
                entries: Vec::new(),
                buckets: Vec::new(),
                rng,
            },
            arena: PayloadArena::new(config.huge_pages),
            shape: Shape {
                item_bytes: config.payload_bytes,
                grain: 1,
            },
            probe: ArenaProbe::default(),
        }
    }
}

impl Table {
    /// Rebuilds the chains over `n` buckets (a power of two), keeping each chain newest first.
    fn rehash(&mut self, n: usize) -> Result<(), WorkloadError> {
        let mut buckets: Vec<u32> = Vec::new();
        buckets
            .try_reserve_exact(n)
            .map_err(|_| alloc_error("the hash buckets", n * 4))?;
        buckets.resize(n, NONE);
        for (i, e) in self.entries.iter_mut().enumerate() {
            let b = bucket_of(e.key, n);
            e.next = buckets[b];
            // i < NONE: `insert` refuses the entry that would reach it.
            buckets[b] = i as u32;
        }
        self.buckets = buckets;
        Ok(())
    }

    /// Finds `key`: the index of its entry.
    fn find(&self, key: u64) -> Option<usize> {
        let mut at = *self.buckets.get(bucket_of(key, self.buckets.len()))?;
        while at != NONE {
            let e = self.entries.get(at as usize)?;
            if e.key == key {
                return Some(at as usize);
            }
            at = e.next;
        }
        None
    }

    /// Stamps `p` with a fresh random key and adds it as the newest entry.
    fn insert(&mut self, arena: &mut PayloadArena, p: Payload) -> Result<(), fill::Refused> {
        let n = self.entries.len();
        if n >= NONE as usize {
            return Err((alloc_error("a hash entry index", n + 1), p));
        }
        if n >= self.buckets.len() * LOAD
            && let Err(e) = self.rehash((self.buckets.len() * 2).max(MIN_BUCKETS))
        {
            return Err((e, p));
        }
        if self.entries.try_reserve(1).is_err() {
            let bytes = (n + 1) * std::mem::size_of::<Entry>();
            return Err((alloc_error("the hash entries", bytes), p));
        }
        let mut key = self.rng.next_u64();
        while self.find(key).is_some() {
            key = self.rng.next_u64();
        }
        arena.stamp(&p, key);
        let b = bucket_of(key, self.buckets.len());
        let next = self.buckets[b];
        self.buckets[b] = n as u32;
        self.entries.push(Entry {
            key,
            next,
            payload: p,
        });
        Ok(())
    }

    /// Gives bookkeeping memory back after a shrink: the entry vector's spare capacity and, when
    /// the table is mostly empty, half of the buckets.
    fn compact(&mut self) {
        let n = self.entries.len();
        if self.entries.capacity() > 2 * n + 1024 {
            self.entries.shrink_to(n + n / 4);
        }
        let fit = (n / LOAD).next_power_of_two().max(MIN_BUCKETS);
        if self.buckets.len() > 4 * fit {
            // Failing to allocate the smaller array only keeps the bigger one.
            let _ = self.rehash(fit);
        }
    }
}

impl HashWorkload {
    /// Frees up to `bytes` of payload, newest first, cutting the newest item rather than
    /// freeing more (see [`Workload::shrink`]).
    fn shrink_newest(&mut self, bytes: u64) -> u64 {
        let mut freed = 0u64;
        while freed < bytes {
            let Some(last) = self.table.entries.last_mut() else {
                break;
            };
            let left = usize::try_from(bytes - freed).unwrap_or(usize::MAX);
            let len = last.payload.len();
            if len > left {
                // Cut the newest payload rather than free more than asked.
                if self.arena.shrink_last(&mut last.payload, len - left) {
                    freed += left as u64;
                }
                break;
            }
            let Some(e) = self.table.entries.pop() else {
                break;
            };
            // The newest entry heads its chain.
            let b = bucket_of(e.key, self.table.buckets.len());
            if let Some(head) = self.table.buckets.get_mut(b) {
                *head = e.next;
            }
            freed += len as u64;
            let _ = self.arena.release_last(e.payload);
        }
        if freed > 0 {
            self.table.compact();
        }
        freed
    }
}

impl Workload for HashWorkload {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Hash
    }

    fn grow(&mut self, budget: usize, stop: &dyn Fn() -> bool) -> Result<u64, WorkloadError> {
        self.probe.arm();
        let Self {
            table,
            arena,
            shape,
            ..
        } = self;
        fill::fill(arena, budget, *shape, stop, &mut |arena, p| {
            table.insert(arena, p)
        })
    }

    fn shrink(&mut self, bytes: u64) -> u64 {
        heap::freeing(|| self.shrink_newest(bytes))
    }

    fn hold_step(&mut self, ops: u64) -> HoldStep {
        let mut hits = 0u64;
        let mut checksum = 0u64;
        for i in 0..ops {
            let key = if i % 2 == 0 && !self.table.entries.is_empty() {
                self.table.entries[self.table.rng.below(self.table.entries.len())].key
            } else {
                self.table.rng.next_u64()
            };
            if let Some(at) = self.table.find(key) {
                hits += 1;
                let word = self.arena.first_word(&self.table.entries[at].payload);
                checksum = checksum.wrapping_add(word.unwrap_or(0));
            }
        }
        std::hint::black_box(checksum);
        HoldStep {
            activity: ops,
            hits,
        }
    }

    fn touch_all(&self, stop: &dyn Fn() -> bool) -> u64 {
        self.arena.touch_all(stop)
    }

    fn counters(&self) -> Counters {
        Counters {
            items: self.table.entries.len() as u64,
            payload_bytes: self.arena.used_bytes() as u64,
            slabs: self.arena.slab_count(),
        }
    }

    fn huge_pages(&self) -> HugePages {
        self.arena.huge_pages()
    }

    fn shape(&self) -> String {
        format!(
            "{} buckets, {:.2} entries per bucket",
            self.table.buckets.len(),
            self.table.entries.len() as f64 / self.table.buckets.len().max(1) as f64
        )
    }

    fn release(self: Box<Self>) -> (u64, u64) {
        let out = (
            self.arena.used_bytes() as u64,
            self.table.entries.len() as u64,
        );
        heap::freeing(move || drop(self));
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every chain is newest first and every entry is reachable from its bucket.
    fn check_chains(t: &Table) {
        let mut reached = 0;
        for (b, &head) in t.buckets.iter().enumerate() {
            let mut at = head;
            let mut prev = u32::MAX;
            while at != NONE {
                assert!(at < prev, "bucket {b}: chain not newest first");
                assert_eq!(bucket_of(t.entries[at as usize].key, t.buckets.len()), b);
                prev = at;
                at = t.entries[at as usize].next;
                reached += 1;
            }
        }
        assert_eq!(reached, t.entries.len());
    }

    #[test]
    fn chains_stay_consistent_through_growth_and_shrink() {
        let config = WorkloadConfig {
            payload_bytes: 1024,
            huge_pages: false,
        };
        let mut h = HashWorkload::new(config, Rng::seeded(3));
        let mut total = 0;
        while total < 20 << 20 {
            total += h.grow(1 << 20, &|| false).unwrap();
        }
        let n = h.table.entries.len();
        assert_eq!(n, 20 * 1024);
        assert!(h.table.buckets.len() * LOAD >= n && h.table.buckets.len() * LOAD < 2 * n + 1);
        check_chains(&h.table);
        let keys: Vec<u64> = h.table.entries.iter().map(|e| e.key).collect();
        assert!(keys.iter().all(|k| h.table.find(*k).is_some()));
        // Shrink to an eighth: the newest entries go, the buckets follow the size down.
        assert_eq!(h.shrink((total / 8) * 7), (total / 8) * 7);
        check_chains(&h.table);
        let kept = h.table.entries.len();
        assert_eq!(kept, n / 8);
        assert!(keys[..kept].iter().all(|k| h.table.find(*k).is_some()));
        assert!(keys[kept..].iter().all(|k| h.table.find(*k).is_none()));
        assert!(h.table.buckets.len() <= 4 * (kept / LOAD).next_power_of_two());
        assert!(h.table.entries.capacity() < 2 * kept + 1024);
    }
}
