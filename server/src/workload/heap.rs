//! Giving freed bookkeeping memory (nodes, entries, key lists) back to the OS at once when a
//! structure shrinks or is released.
//!
//! The worker's nodes live in its own malloc arena. `malloc_trim(0)` returns the free pages
//! inside every arena but not the top of a thread arena; glibc trims that top itself on large
//! frees, keeping `M_TOP_PAD` (16 MiB, set by `procmem::tune_allocator` so heaps grow in big
//! steps) of it resident. After freeing many nodes, up to 16 MiB of freed, resident memory
//! thus stayed at the arena's top: Clear left it behind, and the next run (reusing the arena)
//! saw RSS fall below its target when glibc finally trimmed it (BENCHMARKS.md, row 16). While
//! a structure frees its bookkeeping, the pad is therefore 0, so every large free trims the top
//! of the arena it goes to, whichever thread frees it.
//!
//! Small nodes are freed into fastbins, which glibc merges only on a large free in the same
//! arena. Clear frees on another thread than the one that built (whose arena holds the nodes),
//! so each structure keeps an [`ArenaProbe`]: a block allocated by the building thread and
//! freed last, whose free merges the arena's free chunks and trims its top.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use crate::procmem::TOP_PAD;
/// A `free` of at least this much (glibc's FASTBIN_CONSOLIDATION_THRESHOLD, 64 KiB) trims the
/// top of the freeing thread's arena; below the 128 KiB mmap threshold, so it comes from there.
const TRIM_PROBE: usize = 96 << 10;

/// A 96 KiB heap block from the building thread's arena (untouched: one page of RSS), freed
/// after everything else of its structure. Keep it as the structure's last field: fields drop
/// in declaration order.
#[derive(Debug, Default)]
pub(crate) struct ArenaProbe(Option<Vec<u8>>);

impl ArenaProbe {
    /// Allocates the block on the calling thread, once; call it where the structure grows.
    pub(crate) fn arm(&mut self) {
        if self.0.is_none() {
            let mut block = Vec::new();
            if block.try_reserve_exact(TRIM_PROBE).is_ok() {
                self.0 = Some(block);
            }
        }
    }
}

/// Runs `free_things` (which frees heap memory) with glibc's top pad at 0, then returns every
/// free heap page to the OS.
pub(crate) fn freeing<R>(free_things: impl FnOnce() -> R) -> R {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 0);
    }
    let out = free_things();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: the probe block is freed right after it is allocated and never used; malloc_trim
    // only walks the allocator's own state; mallopt only sets an allocator parameter.
    unsafe {
        // Trims this thread's arena even when the last frees were small.
        let probe = libc::malloc(TRIM_PROBE);
        if !probe.is_null() {
            libc::free(probe);
        }
        libc::malloc_trim(0);
        libc::mallopt(libc::M_TOP_PAD, TOP_PAD);
    }
    out
}
