//! Payload memory: large anonymous slabs that stressd maps, fills and unmaps itself.
//!
//! Why not `Vec<u8>` per node: glibc keeps freed sub-128 KiB blocks (memory never comes back),
//! and one mmap per node runs into the kernel's map-count limit at scale. Slabs of 256 MiB keep
//! both under control: payloads are carved from them back to back, pages are made resident with
//! `MADV_POPULATE_WRITE` (one syscall for many pages, no fault per page), and Clear unmaps whole
//! slabs so the memory is back with the OS the moment `munmap` returns.

use crate::tree::Payload;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

/// Virtual size of one slab. Untouched slab tail costs address space only, never RSS.
pub const SLAB_BYTES: usize = 256 << 20;
/// Slabs are aligned to this so transparent huge pages can back them.
const HUGE_ALIGN: usize = 2 << 20;
/// Page granularity of residency, stamping and release.
pub const PAGE: usize = 4096;

/// Set once the kernel refuses `MADV_POPULATE_WRITE` (before Linux 5.14); we then touch pages.
static POPULATE_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Mapping or populating payload memory failed.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    /// `mmap` refused a new slab (address-space limit, overcommit policy).
    #[error("mmap of a {bytes}-byte payload slab failed: {source}")]
    Map {
        /// Size asked for.
        bytes: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// The kernel could not make the pages resident.
    #[error("making {bytes} bytes of payload resident failed: {source}")]
    Populate {
        /// Size asked for.
        bytes: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// The slab list could not grow.
    #[error("could not grow the slab list")]
    Bookkeeping,
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
        if to > from {
            // SAFETY: callers pass a range inside this slab's mapping that holds no live payload.
            unsafe {
                libc::madvise(
                    self.base.as_ptr().add(from).cast(),
                    to - from,
                    libc::MADV_DONTNEED,
                );
            }
        }
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: map_base/map_len are exactly what mmap returned; nothing references the slab
        // any more (the tree holding payload pointers is dropped or emptied first).
        unsafe {
            libc::munmap(self.map_base, self.map_len);
        }
    }
}

/// Where the transparent-huge-page request stands for this arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugePages {
    /// Not asked for.
    Off,
    /// `MADV_HUGEPAGE` accepted on every slab so far.
    Advised,
    /// Asked for, but the kernel refused `MADV_HUGEPAGE` (THP "never" or not built in).
    Refused,
}

/// Owner of every payload byte of a workload.
pub struct PayloadArena {
    slabs: Vec<Slab>,
    huge: HugePages,
    used_total: usize,
}

// SAFETY: the arena exclusively owns its mappings; raw pointers are only addresses into them.
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
    pub fn new(huge_pages: bool) -> Self {
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
    pub fn used_bytes(&self) -> usize {
        self.used_total
    }

    /// Number of slabs mapped.
    pub fn slab_count(&self) -> usize {
        self.slabs.len()
    }

    /// Whether huge pages are in effect.
    pub fn huge_pages(&self) -> HugePages {
        self.huge
    }

    /// Bytes left in the current slab before a new one is needed.
    pub fn room_in_current_slab(&self) -> usize {
        self.slabs.last().map_or(0, |s| s.cap - s.used)
    }

    /// Reserves `len` bytes for one payload, mapping a new slab when the current one is full.
    /// The bytes are not resident yet: call [`populate`] on the range.
    pub fn carve(&mut self, len: usize) -> Result<Payload, ArenaError> {
        if self.room_in_current_slab() < len {
            self.map_slab(len.max(SLAB_BYTES))?;
        }
        let Some(slab) = self.slabs.last_mut() else {
            return Err(ArenaError::Bookkeeping);
        };
        // SAFETY: used + len <= cap, inside the mapping.
        let ptr = unsafe { slab.base.add(slab.used) };
        slab.used += len;
        self.used_total += len;
        Ok(Payload { ptr, len })
    }

    /// Gives back the most recently carved payload (LIFO): its whole pages return to the OS
    /// at once, and an emptied slab is unmapped. Returns false (and changes nothing) when
    /// `payload` is not the last carved one.
    pub fn release_last(&mut self, payload: Payload) -> bool {
        let Some(slab) = self.slabs.last_mut() else {
            return false;
        };
        let Some(start) = (payload.ptr.as_ptr() as usize).checked_sub(slab.base.as_ptr() as usize)
        else {
            return false;
        };
        if start + payload.len != slab.used {
            return false;
        }
        let old_end = round_up(slab.used);
        slab.used = start;
        self.used_total -= payload.len;
        if slab.used == 0 {
            self.slabs.pop();
            return true;
        }
        let keep = round_up(start);
        slab.discard(keep, old_end);
        true
    }

    /// Cuts the last carved payload down to `new_len` bytes, giving the whole pages it no
    /// longer covers back to the OS (a stop landing mid-populate, or the container hold
    /// releasing part of a large payload). Returns the shortened payload.
    pub fn shrink_last(&mut self, payload: Payload, new_len: usize) -> Option<Payload> {
        let slab = self.slabs.last_mut()?;
        let start = (payload.ptr.as_ptr() as usize).checked_sub(slab.base.as_ptr() as usize)?;
        if start + payload.len != slab.used || new_len > payload.len {
            return None;
        }
        let old_end = round_up(slab.used);
        slab.used = start + new_len;
        self.used_total -= payload.len - new_len;
        let keep = round_up(slab.used);
        slab.discard(keep, old_end);
        Some(Payload {
            ptr: payload.ptr,
            len: new_len,
        })
    }

    /// Calls `f` with every carved range, slab by slab (for keeping pages hot).
    pub fn for_each_used(&self, mut f: impl FnMut(NonNull<u8>, usize)) {
        for s in &self.slabs {
            if s.used > 0 {
                f(s.base, s.used);
            }
        }
    }

    fn map_slab(&mut self, min_len: usize) -> Result<(), ArenaError> {
        self.slabs
            .try_reserve(1)
            .map_err(|_| ArenaError::Bookkeeping)?;
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
            return Err(ArenaError::Map {
                bytes: map_len,
                source: std::io::Error::last_os_error(),
            });
        }
        let aligned = round_up_to(map_base as usize, HUGE_ALIGN);
        let offset = aligned - map_base as usize;
        // SAFETY: offset < HUGE_ALIGN, so aligned..aligned+cap lies inside the mapping.
        let base = unsafe { NonNull::new_unchecked(map_base.cast::<u8>().add(offset)) };
        if self.huge == HugePages::Advised {
            // SAFETY: the range is inside our mapping.
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

/// Makes the pages covering `[addr, addr+len)` resident with one `MADV_POPULATE_WRITE`
/// (no page fault per page). On kernels without it this does nothing and [`stamp`] touches
/// the pages instead.
///
/// # Safety
/// The range must lie inside a live arena slab.
pub unsafe fn populate(addr: usize, len: usize) -> Result<(), ArenaError> {
    if len == 0 || POPULATE_UNSUPPORTED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let start = addr & !(PAGE - 1);
    let end = round_up(addr + len);
    // SAFETY: [start, end) is inside the slab (slabs are page aligned and page sized).
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
            return Err(ArenaError::Populate {
                bytes: end - start,
                source: err,
            });
        }
    }
    Ok(())
}

/// Writes `key` into the first word of every 4 KiB page of the payload (the first may start
/// mid-page; payloads under a word get what fits), so each page holds real, distinct data and
/// a search that finds the node reads its payload.
///
/// # Safety
/// The payload must lie inside a live arena slab.
pub unsafe fn stamp(payload: Payload, key: u64) {
    let bytes = key.to_le_bytes();
    let mut at = payload.ptr.as_ptr() as usize;
    let stop = at + payload.len;
    while at < stop {
        let n = stop - at;
        if n >= 8 {
            // SAFETY: [at, at+8) is inside the payload span; unaligned writes are allowed.
            unsafe { std::ptr::write_unaligned(at as *mut u64, key) };
        } else {
            // SAFETY: [at, at+n) is inside the payload span.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, n) };
        }
        at = (at & !(PAGE - 1)) + PAGE;
    }
}

/// Reads one word from every page of every carved range so the pages count as recently used
/// (active LRU) and are not reclaimed. Returns a checksum so the reads cannot be optimised away.
pub fn touch_all(arena: &PayloadArena, mut stop: impl FnMut() -> bool) -> u64 {
    let mut sum = 0u64;
    let mut pages = 0usize;
    arena.for_each_used(|base, used| {
        let mut off = 0;
        while off < used {
            if pages.is_multiple_of(4096) && stop() {
                return;
            }
            // SAFETY: off < used, inside a carved, resident range.
            sum =
                sum.wrapping_add(unsafe { std::ptr::read_volatile(base.as_ptr().add(off)) } as u64);
            off += PAGE;
            pages += 1;
        }
    });
    sum
}

/// Rounds up to a whole page.
pub fn round_up(n: usize) -> usize {
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
    fn carve_populate_release_roundtrip() {
        let mut arena = PayloadArena::new(false);
        let a = arena.carve(100 * 1024).unwrap();
        let b = arena.carve(100 * 1024).unwrap();
        assert_eq!(
            b.ptr.as_ptr() as usize,
            a.ptr.as_ptr() as usize + 100 * 1024
        );
        unsafe {
            populate(a.ptr.as_ptr() as usize, 200 * 1024).unwrap();
            stamp(a, 11);
            stamp(b, 22);
            assert_eq!(std::ptr::read(a.ptr.as_ptr().cast::<u64>()), 11);
            assert_eq!(std::ptr::read(b.ptr.as_ptr().cast::<u64>()), 22);
        }
        assert_eq!(arena.used_bytes(), 200 * 1024);
        assert!(
            !arena.release_last(a),
            "only the last payload can be released"
        );
        assert!(arena.release_last(b));
        assert!(arena.release_last(a));
        assert_eq!(arena.used_bytes(), 0);
        assert_eq!(arena.slab_count(), 0, "emptied slab is unmapped");
    }

    #[test]
    fn big_payload_gets_its_own_slab_and_tiny_ones_pack() {
        let mut arena = PayloadArena::new(false);
        let big = arena.carve(SLAB_BYTES + 4096).unwrap();
        assert_eq!(arena.slab_count(), 1);
        assert_eq!(big.len, SLAB_BYTES + 4096);
        let small = arena.carve(1024).unwrap();
        let small2 = arena.carve(3).unwrap();
        unsafe {
            populate(small.ptr.as_ptr() as usize, 1027).unwrap();
            stamp(small, 5);
            stamp(small2, 0xABCDEF);
            assert_eq!(*small2.ptr.as_ptr(), 0xEF);
        }
        let cut = arena.shrink_last(small2, 1).unwrap();
        assert_eq!(cut.len, 1);
        assert_eq!(arena.used_bytes(), SLAB_BYTES + 4096 + 1024 + 1);
        assert!(touch_all(&arena, || false) > 0);
    }
}
