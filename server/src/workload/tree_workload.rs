//! The tree workload: payload nodes in a binary search tree with random keys; holding searches
//! it (half for held keys, half for random ones) and reads each found payload.

use super::arena::{Payload, PayloadArena};
use super::fill::{self, Shape};
use super::heap::{self, ArenaProbe};
use super::tree::Tree;
use super::{
    Counters, HoldStep, HugePages, Rng, Workload, WorkloadConfig, WorkloadError, WorkloadKind,
};

/// Tree + arena + keys in insertion order (so shrinking gives back the newest nodes first, and
/// their slab space with them).
#[derive(Debug)]
pub(crate) struct TreeWorkload {
    tree: Tree,
    arena: PayloadArena,
    keys: Vec<u64>,
    shape: Shape,
    rng: Rng,
    /// Freed last, so the release trims the building thread's malloc arena.
    probe: ArenaProbe,
}

impl TreeWorkload {
    pub(crate) fn new(config: WorkloadConfig, rng: Rng) -> Self {
        Self {
            tree: Tree::default(),
            arena: PayloadArena::new(config.huge_pages),
            keys: Vec::new(),
            shape: Shape {
                item_bytes: config.payload_bytes,
                grain: 1,
            },
            rng,
            probe: ArenaProbe::default(),
        }
    }
}

/// Stamps `p` with a fresh random key and inserts it (drawing again on the rare duplicate).
fn insert_new(
    tree: &mut Tree,
    keys: &mut Vec<u64>,
    rng: &mut Rng,
    arena: &mut PayloadArena,
    mut p: Payload,
) -> Result<(), fill::Refused> {
    if keys.try_reserve(1).is_err() {
        let e = WorkloadError::Alloc {
            what: "the key list",
            bytes: (keys.len() + 1) * std::mem::size_of::<u64>(),
        };
        return Err((e, p));
    }
    loop {
        let key = rng.next_u64();
        arena.stamp(&p, key);
        match tree.insert(key, p)? {
            None => {
                keys.push(key);
                return Ok(());
            }
            Some(back) => p = back,
        }
    }
}

impl TreeWorkload {
    /// Frees up to `bytes` of payload, newest first, cutting the newest item rather than
    /// freeing more (see [`Workload::shrink`]).
    fn shrink_newest(&mut self, bytes: u64) -> u64 {
        let mut freed = 0u64;
        while freed < bytes {
            let Some(&key) = self.keys.last() else { break };
            let Some(payload) = self.tree.payload_mut(key) else {
                break;
            };
            let left = usize::try_from(bytes - freed).unwrap_or(usize::MAX);
            if payload.len() > left {
                // Cut the newest payload rather than free more than asked.
                if self.arena.shrink_last(payload, payload.len() - left) {
                    freed += left as u64;
                }
                break;
            }
            self.keys.pop();
            if let Some(p) = self.tree.remove(key) {
                freed += p.len() as u64;
                // The newest key's payload is the newest carve, so LIFO release takes it.
                let _ = self.arena.release_last(p);
            }
        }
        // The key list's spare capacity is bookkeeping memory too.
        if self.keys.capacity() > 2 * self.keys.len() + 1024 {
            self.keys.shrink_to(self.keys.len() + self.keys.len() / 4);
        }
        freed
    }
}

impl Workload for TreeWorkload {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Tree
    }

    fn grow(&mut self, budget: usize, stop: &dyn Fn() -> bool) -> Result<u64, WorkloadError> {
        self.probe.arm();
        let Self {
            tree,
            arena,
            keys,
            shape,
            rng,
            ..
        } = self;
        fill::fill(arena, budget, *shape, stop, &mut |arena, p| {
            insert_new(tree, keys, rng, arena, p)
        })
    }

    fn shrink(&mut self, bytes: u64) -> u64 {
        heap::freeing(|| self.shrink_newest(bytes))
    }

    fn hold_step(&mut self, ops: u64) -> HoldStep {
        let mut hits = 0u64;
        let mut checksum = 0u64;
        for i in 0..ops {
            let key = if i % 2 == 0 && !self.keys.is_empty() {
                self.keys[self.rng.below(self.keys.len())]
            } else {
                self.rng.next_u64()
            };
            if let Some((_, p)) = self.tree.search(key) {
                hits += 1;
                checksum = checksum.wrapping_add(self.arena.first_word(p).unwrap_or(0));
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
            items: self.tree.len(),
            payload_bytes: self.arena.used_bytes() as u64,
            slabs: self.arena.slab_count(),
        }
    }

    fn huge_pages(&self) -> HugePages {
        self.arena.huge_pages()
    }

    fn shape(&self) -> String {
        format!("height {}", self.tree.height())
    }

    fn release(self: Box<Self>) -> (u64, u64) {
        let out = (self.arena.used_bytes() as u64, self.tree.len());
        heap::freeing(move || drop(self));
        out
    }
}
