//! Payload memory: large anonymous slabs that stressd maps, fills and unmaps itself.
//!
//! Why not `Vec<u8>` per item: glibc keeps freed sub-128 KiB blocks (memory never comes back),
//! and one mmap per item runs into the kernel's map-count limit at scale. Slabs of 256 MiB keep
//! both under control: payloads are carved from them back to back, pages are made resident with
//! `MADV_POPULATE_WRITE` (one syscall for many pages, no fault per page), and release unmaps
//! whole slabs so the memory is back with the OS the moment `munmap` returns.
//!
//! Soundness: a [`Payload`] is a slab index and an offset, never an address, and only
//! [`PayloadArena::carve`] makes one. Every read or write goes through the arena, which checks
//! the span against the slab's carved bytes first. A stale payload (released, or from another
//! arena) can therefore read someone else's bytes or nothing, but never freed or foreign memory,
//! and the arena may be dropped before the structures that name its payloads.

use super::WorkloadError;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

/// Virtual size of one slab. Untouched slab tail costs address space only, never RSS.
pub(crate) const SLAB_BYTES: usize = 256 << 20;
/// Slabs are aligned to this so transparent huge pages can back them.
const HUGE_ALIGN: usize = 2 << 20;
/// Page granularity of residency, stamping and release.
pub(crate) const PAGE: usize = 4096;
/// Largest payload one carve hands out (offsets and lengths are stored as `u32`).
pub(crate) const MAX_PAYLOAD: usize = 1 << 30;

/// Set once the kernel refuses `MADV_POPULATE_WRITE` (before Linux 5.14); stamping then
/// faults the pages in instead.
static POPULATE_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// A span of payload bytes carved from a [`PayloadArena`]: slab index, offset and length.
///
/// Not `Clone`: each payload is owned by exactly one item of a structure, so the arena's
/// byte count and the structures' counts cannot drift apart.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Payload {
    slab: u32,
    off: u32,
    len: u32,
}

impl Payload {
    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Where the payload starts inside its slab (for the fill's population steps).
    pub(crate) fn offset(&self) -> usize {
        self.off as usize
    }

    /// Where the payload ends inside its slab.
    pub(crate) fn end_offset(&self) -> usize {
        self.off as usize + self.len as usize
    }
}

struct Slab {
    base: NonNull<u8>,
    cap: usize,
    used: usize,
    /// The mapping as returned by mmap (before alignment), for munmap.
    map_base: *mut libc::c_void,
    map_len: usize,
}

impl Slab {
    /// Gives the pages of `[from, to)` (offsets, page aligned, no live payload) back to the OS.
    fn discard(&self, from: usize, to: usize) {
        if to > from && to <= self.cap {
            // SAFETY: [from, to) lies inside this slab's mapping (to <= cap) and holds no live
            // payload; MADV_DONTNEED on private anonymous memory only zeroes it.
            unsafe {
                libc::madvise(
                    self.base.as_ptr().add(from).cast(),
                    to - from,
                    libc::MADV_DONTNEED,
                );
            }
        }
    }

    /// The address of `[off, off+len)` when that span lies inside the carved bytes.
    fn span(&self, off: usize, len: usize) -> Option<*mut u8> {
        let end = off.checked_add(len)?;
        // SAFETY: off <= end <= used <= cap, so the offset stays inside the mapping.
        (end <= self.used).then(|| unsafe { self.base.as_ptr().add(off) })
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: map_base/map_len are exactly what mmap returned. No reference into the slab
        // outlives it: payloads are offsets, and every slice the arena lends borrows the arena.
        unsafe {
            libc::munmap(self.map_base, self.map_len);
        }
    }
}

/// Where the transparent-huge-page request stands for an arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HugePages {
    /// Not asked for.
    Off,
    /// `MADV_HUGEPAGE` accepted on every slab so far.
    Advised,
    /// Asked for, but the kernel refused `MADV_HUGEPAGE` (THP "never" or not built in).
    Refused,
}

/// Owner of every payload byte of a workload.
pub(crate) struct PayloadArena {
    slabs: Vec<Slab>,
    huge: HugePages,
    used_total: usize,
}

// SAFETY: the arena exclusively owns its mappings; the raw pointers are only addresses into
// them, and every access goes through `&self`/`&mut self`, so moving it between threads is sound.
unsafe impl Send for PayloadArena {}

impl std::fmt::Debug for PayloadArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadArena")
            .field("slabs", &self.slabs.len())
            .field("used", &self.used_total)
            .finish()
    }
}

impl PayloadArena {
    /// An empty arena; `huge_pages` asks for THP-backed slabs.
    pub(crate) fn new(huge_pages: bool) -> Self {
        Self {
            slabs: Vec::new(),
            huge: if huge_pages {
                HugePages::Advised
            } else {
                HugePages::Off
            },
            used_total: 0,
        }
    }

    /// Payload bytes carved and not released.
    pub(crate) fn used_bytes(&self) -> usize {
        self.used_total
    }

    /// Number of slabs mapped.
    pub(crate) fn slab_count(&self) -> usize {
        self.slabs.len()
    }

    /// Whether huge pages are in effect.
    pub(crate) fn huge_pages(&self) -> HugePages {
        self.huge
    }

    /// Bytes left in the current slab before a new one is needed.
    pub(crate) fn room_in_current_slab(&self) -> usize {
        self.slabs.last().map_or(0, |s| s.cap - s.used)
    }

    /// Reserves `len` bytes (1..=[`MAX_PAYLOAD`]) for one payload, mapping a new slab when the
    /// current one is full. The bytes are not resident yet: [`populate`](Self::populate) them.
    pub(crate) fn carve(&mut self, len: usize) -> Result<Payload, WorkloadError> {
        if len == 0 || len > MAX_PAYLOAD {
            return Err(WorkloadError::PayloadSize {
                bytes: len,
                max: MAX_PAYLOAD,
            });
        }
        if self.room_in_current_slab() < len {
            self.map_slab(len.max(SLAB_BYTES))?;
        }
        let index = self.slabs.len().saturating_sub(1);
        let Some(slab) = self.slabs.last_mut() else {
            return Err(WorkloadError::Alloc {
                what: "the slab list",
                bytes: std::mem::size_of::<Slab>(),
            });
        };
        let (Ok(slab_no), Ok(off), Ok(len32)) = (
            u32::try_from(index),
            u32::try_from(slab.used),
            u32::try_from(len),
        ) else {
            return Err(WorkloadError::PayloadSize {
                bytes: len,
                max: MAX_PAYLOAD,
            });
        };
        slab.used += len;
        self.used_total += len;
        Ok(Payload {
            slab: slab_no,
            off,
            len: len32,
        })
    }

    /// Whether `p` is the most recently carved payload (the only one LIFO release accepts).
    fn is_last(&self, p: &Payload) -> bool {
        self.slabs.len() == p.slab as usize + 1
            && self.slabs.last().is_some_and(|s| s.used == p.end_offset())
    }

    /// Gives back the most recently carved payload: its whole pages return to the OS at once,
    /// and an emptied slab is unmapped. Hands `p` back unchanged when it is not the newest.
    pub(crate) fn release_last(&mut self, p: Payload) -> Result<(), Payload> {
        if !self.is_last(&p) {
            return Err(p);
        }
        let Some(slab) = self.slabs.last_mut() else {
            return Err(p);
        };
        let old_end = round_up(slab.used);
        slab.used = p.off as usize;
        self.used_total -= p.len();
        if slab.used == 0 {
            self.slabs.pop();
        } else {
            slab.discard(round_up(slab.used), old_end);
        }
        Ok(())
    }

    /// Cuts the most recently carved payload down to `new_len` bytes in place, giving the whole
    /// pages it no longer covers back to the OS. False (nothing changed) when `p` is not the
    /// newest or `new_len` is 0 or not shorter.
    pub(crate) fn shrink_last(&mut self, p: &mut Payload, new_len: usize) -> bool {
        if new_len == 0 || new_len >= p.len() || !self.is_last(p) {
            return false;
        }
        let Some(slab) = self.slabs.last_mut() else {
            return false;
        };
        let old_end = round_up(slab.used);
        slab.used = p.off as usize + new_len;
        self.used_total -= p.len() - new_len;
        slab.discard(round_up(slab.used), old_end);
        // new_len < p.len, which fits u32.
        p.len = new_len as u32;
        true
    }

    /// Makes the pages covering bytes `[from, to)` of `first`'s slab resident with one
    /// `MADV_POPULATE_WRITE` (no page fault per page). The range must be carved; on kernels
    /// without `MADV_POPULATE_WRITE` this does nothing and stamping faults the pages in.
    pub(crate) fn populate(
        &mut self,
        first: &Payload,
        from: usize,
        to: usize,
    ) -> Result<(), WorkloadError> {
        if to <= from || POPULATE_UNSUPPORTED.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(addr) = self
            .slabs
            .get(first.slab as usize)
            .and_then(|s| s.span(from, to - from))
        else {
            return Ok(());
        };
        let start = addr as usize & !(PAGE - 1);
        let end = round_up(addr as usize + (to - from));
        // SAFETY: [start, end) is the carved span widened to whole pages; slabs are page
        // aligned and page sized, so it stays inside our own anonymous mapping.
        let rc = unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_POPULATE_WRITE,
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL) {
                POPULATE_UNSUPPORTED.store(true, Ordering::Relaxed);
            } else {
                return Err(WorkloadError::Populate {
                    bytes: end - start,
                    source: err,
                });
            }
        }
        Ok(())
    }

    /// Writes `word` into the first word of every 4 KiB page of `p` (the first may start
    /// mid-page; payloads under a word get what fits), so each page holds real, distinct data
    /// and reading a payload reads something its stamp put there.
    pub(crate) fn stamp(&mut self, p: &Payload, word: u64) {
        let Some(base) = self
            .slabs
            .get(p.slab as usize)
            .and_then(|s| s.span(p.off as usize, p.len()))
        else {
            return;
        };
        let bytes = word.to_le_bytes();
        let mut at = base as usize;
        let stop = at + p.len();
        while at < stop {
            let n = (stop - at).min(8);
            // SAFETY: [at, at+n) lies inside the payload's carved span, checked above, and
            // `&mut self` means no slice lent by the arena overlaps it.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, n) };
            at = (at & !(PAGE - 1)) + PAGE;
        }
    }

    /// Reads the payload's first word (fewer bytes for a payload under 8 bytes), with a
    /// volatile read so the memory access a hold operation exists to make is never skipped.
    /// `None` when `p` is not a carved span of this arena.
    pub(crate) fn first_word(&self, p: &Payload) -> Option<u64> {
        let base = self
            .slabs
            .get(p.slab as usize)?
            .span(p.off as usize, p.len())?;
        let mut buf = [0u8; 8];
        for (i, b) in buf.iter_mut().enumerate().take(p.len()) {
            // SAFETY: i < len, inside the carved span; u8 has no alignment or validity needs.
            *b = unsafe { std::ptr::read_volatile(base.add(i)) };
        }
        Some(u64::from_le_bytes(buf))
    }

    /// The payload as f64 values (its first `len / 8` of them). `None` when it is not a carved
    /// span of this arena or not 8-byte aligned.
    pub(crate) fn f64s(&self, p: &Payload) -> Option<&[f64]> {
        let n = p.len() / 8;
        let base = self
            .slabs
            .get(p.slab as usize)?
            .span(p.off as usize, n * 8)?;
        if !(base as usize).is_multiple_of(std::mem::align_of::<f64>()) {
            return None;
        }
        // SAFETY: the span is carved, mapped and 8-byte aligned; anonymous memory is always
        // initialised (zero until written) and every bit pattern is a valid f64; writes need
        // `&mut self`, so nothing mutates it while this borrow of the arena lives.
        Some(unsafe { std::slice::from_raw_parts(base.cast::<f64>(), n) })
    }

    /// The payload as mutable f64 values, for tests that set a block's contents.
    #[cfg(test)]
    pub(crate) fn f64s_mut(&mut self, p: &Payload) -> Option<&mut [f64]> {
        let n = self.f64s(p)?.len();
        let base = self
            .slabs
            .get(p.slab as usize)?
            .span(p.off as usize, n * 8)?;
        // SAFETY: as in `f64s`; `&mut self` makes this the only reference into the arena.
        Some(unsafe { std::slice::from_raw_parts_mut(base.cast::<f64>(), n) })
    }

    /// Reads the first word of every carved page so the pages count as recently used (active
    /// LRU) and are not reclaimed. Polls `stop` every 4096 pages. Returns a checksum so the
    /// reads cannot be optimised away.
    pub(crate) fn touch_all(&self, stop: &dyn Fn() -> bool) -> u64 {
        let mut sum = 0u64;
        let mut pages = 0usize;
        for s in &self.slabs {
            let mut off = 0;
            while off < s.used {
                if pages.is_multiple_of(4096) && stop() {
                    return sum;
                }
                // SAFETY: off < used <= cap and off is a multiple of PAGE, so the 8 bytes at
                // base+off are inside the mapping (slabs are page sized) and 8-byte aligned
                // (slabs are 2 MiB aligned); any bit pattern is a valid u64.
                let w = unsafe { std::ptr::read_volatile(s.base.as_ptr().add(off).cast::<u64>()) };
                sum = sum.wrapping_add(w);
                off += PAGE;
                pages += 1;
            }
        }
        sum
    }

    fn map_slab(&mut self, min_len: usize) -> Result<(), WorkloadError> {
        self.slabs
            .try_reserve(1)
            .map_err(|_| WorkloadError::Alloc {
                what: "the slab list",
                bytes: std::mem::size_of::<Slab>(),
            })?;
        let cap = round_up_to(min_len, HUGE_ALIGN);
        let map_len = cap + HUGE_ALIGN;
        // SAFETY: anonymous private mapping; arguments are valid by construction.
        let map_base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if map_base == libc::MAP_FAILED {
            return Err(WorkloadError::Map {
                bytes: map_len,
                source: std::io::Error::last_os_error(),
            });
        }
        let aligned = round_up_to(map_base as usize, HUGE_ALIGN);
        let offset = aligned - map_base as usize;
        // SAFETY: offset < HUGE_ALIGN, so aligned..aligned+cap lies inside the mapping, and a
        // successful mmap never returns null.
        let base = unsafe { NonNull::new_unchecked(map_base.cast::<u8>().add(offset)) };
        if self.huge == HugePages::Advised {
            // SAFETY: the range is inside our own mapping.
            let rc = unsafe { libc::madvise(base.as_ptr().cast(), cap, libc::MADV_HUGEPAGE) };
            if rc != 0 {
                self.huge = HugePages::Refused;
            }
        }
        self.slabs.push(Slab {
            base,
            cap,
            used: 0,
            map_base,
            map_len,
        });
        Ok(())
    }
}

/// Rounds up to a whole page.
pub(crate) fn round_up(n: usize) -> usize {
    round_up_to(n, PAGE)
}

fn round_up_to(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn carve_stamp_read_and_release_in_lifo_order() {
        let mut arena = PayloadArena::new(false);
        let a = arena.carve(100 * 1024).unwrap();
        let b = arena.carve(100 * 1024).unwrap();
        assert_eq!(b.off, a.off + 100 * 1024, "carved back to back");
        arena.populate(&a, 0, 200 * 1024).unwrap();
        arena.stamp(&a, 11);
        arena.stamp(&b, 22);
        assert_eq!(arena.first_word(&a), Some(11));
        assert_eq!(arena.first_word(&b), Some(22));
        assert_eq!(arena.used_bytes(), 200 * 1024);
        let a = arena.release_last(a).expect_err("only the newest can go");
        arena.release_last(b).unwrap();
        arena.release_last(a).unwrap();
        assert_eq!(arena.used_bytes(), 0);
        assert_eq!(arena.slab_count(), 0, "emptied slab is unmapped");
    }

    #[test]
    fn a_released_payload_reads_nothing_and_a_foreign_one_neither() {
        let mut arena = PayloadArena::new(false);
        let keep = arena.carve(64).unwrap();
        let gone = arena.carve(64).unwrap();
        let ghost = Payload { ..gone };
        arena.release_last(gone).unwrap();
        assert_eq!(arena.first_word(&ghost), None, "beyond the carved bytes");
        arena.stamp(&ghost, 5); // refused silently: nothing to write to
        let other = PayloadArena::new(false);
        assert_eq!(other.first_word(&keep), None, "no such slab over there");
        assert!(other.f64s(&keep).is_none());
        drop(arena); // an arena can go first: a payload holds no address
        assert_eq!(keep.len(), 64);
    }

    #[test]
    fn big_payload_gets_its_own_slab_and_tiny_ones_pack() {
        let mut arena = PayloadArena::new(false);
        let big = arena.carve(SLAB_BYTES + 4096).unwrap();
        assert_eq!(arena.slab_count(), 1);
        assert_eq!(big.len(), SLAB_BYTES + 4096);
        let small = arena.carve(1024).unwrap();
        assert_eq!(
            arena.slab_count(),
            1,
            "the big slab's 2 MiB-aligned tail takes it"
        );
        let mut small2 = arena.carve(3).unwrap();
        arena.populate(&small, 0, 1027).unwrap();
        arena.stamp(&small, 5);
        arena.stamp(&small2, 0xABCDEF);
        assert_eq!(arena.first_word(&small2), Some(0xABCDEF));
        assert!(!arena.shrink_last(&mut small2, 3), "not shorter");
        assert!(arena.shrink_last(&mut small2, 1));
        assert_eq!(arena.first_word(&small2), Some(0xEF));
        assert_eq!(arena.used_bytes(), SLAB_BYTES + 4096 + 1024 + 1);
        assert!(arena.touch_all(&|| false) > 0);
        assert!(arena.carve(0).is_err());
        assert!(arena.carve(MAX_PAYLOAD + 1).is_err());
    }

    #[test]
    fn f64_view_sees_stamps_and_zero_pages() {
        let mut arena = PayloadArena::new(false);
        let p = arena.carve(3 * PAGE).unwrap();
        arena.stamp(&p, 1.5f64.to_bits());
        let v = arena.f64s(&p).unwrap();
        assert_eq!(v.len(), 3 * PAGE / 8);
        assert_eq!(v[0], 1.5);
        assert_eq!(v[PAGE / 8], 1.5);
        assert_eq!(v[1], 0.0, "untouched anonymous memory reads as 0.0");
        let _odd = arena.carve(3).unwrap();
        let misaligned = arena.carve(16).unwrap();
        assert!(arena.f64s(&misaligned).is_none(), "offset 3 past a page");
    }
}
