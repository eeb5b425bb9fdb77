//! The memory a run holds and what it does with it: the workload structures behind one trait.
//!
//! The engine drives a `Box<dyn Workload>` (grow, shrink, hold, count, release) and never knows
//! which structure it is; [`new_workload`] makes one. Every structure keeps its payload bytes in
//! a `PayloadArena` (`arena`), so filling is one `MADV_POPULATE_WRITE` per step and releasing
//! is `munmap`, whatever the shape; `fill` is the one batch-fill algorithm they share. Only
//! the bookkeeping differs: tree nodes, list nodes, hash entries, matrix block descriptors.

mod arena;
mod fill;
mod hash;
mod heap;
mod list;
mod matrix;
#[cfg(test)]
mod tests;
mod tree;
mod tree_workload;

pub(crate) use arena::{HugePages, PAGE};

/// Which structure holds the memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// A binary search tree of payload nodes with random keys; holds by searching.
    #[default]
    Tree,
    /// A singly linked list of payload nodes; holds by walking it.
    List,
    /// A hash table of payload entries with random keys; holds by random lookups.
    Hash,
    /// Dense f64 blocks; holds by blocked matrix multiplication.
    Matrix,
}

impl WorkloadKind {
    /// Every kind, in proto order.
    pub const ALL: [WorkloadKind; 4] = [Self::Tree, Self::List, Self::Hash, Self::Matrix];

    /// Lower-case name, as on the command line and in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tree => "tree",
            Self::List => "list",
            Self::Hash => "hash",
            Self::Matrix => "matrix",
        }
    }

    /// What the hold activity counter counts.
    pub fn activity_unit(self) -> &'static str {
        match self {
            Self::Tree => "searches",
            Self::List => "walk steps",
            Self::Hash => "lookups",
            Self::Matrix => "multiply-adds",
        }
    }
}

/// Growing failed: the OS or the allocator refused memory.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkloadError {
    /// `mmap` refused a new payload slab (address-space limit, overcommit policy).
    #[error("mmap of a {bytes}-byte payload slab failed: {source}")]
    Map {
        /// Size asked for.
        bytes: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// The kernel could not make payload pages resident.
    #[error("making {bytes} bytes of payload resident failed: {source}")]
    Populate {
        /// Size asked for.
        bytes: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// A payload size outside what one carve can hand out.
    #[error("payload size {bytes} bytes is out of range (allowed: 1..={max})")]
    PayloadSize {
        /// Size asked for.
        bytes: usize,
        /// Largest allowed.
        max: usize,
    },
    /// The global allocator refused bookkeeping memory (a node, a bucket array, a key list).
    #[error("the allocator could not provide {bytes} bytes for {what}")]
    Alloc {
        /// What was being allocated, e.g. "a tree node".
        what: &'static str,
        /// Size asked for.
        bytes: usize,
    },
}

/// What a workload holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Items: tree or list nodes, hash entries, matrix blocks.
    pub items: u64,
    /// Payload bytes carved and held.
    pub payload_bytes: u64,
    /// Arena slabs mapped.
    pub slabs: usize,
}

/// What a batch of hold operations did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HoldStep {
    /// Activity in the kind's unit (see [`WorkloadKind::activity_unit`]).
    pub activity: u64,
    /// Operations that found what they looked for (tree searches and hash lookups of a held
    /// key; every walk step and block product).
    pub hits: u64,
}

/// Settings fixed for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkloadConfig {
    /// Payload bytes per item (the last one may be cut to fit a target).
    pub payload_bytes: usize,
    /// Ask for transparent huge pages.
    pub huge_pages: bool,
}

/// A structure that holds payload memory. Object safe: the engine holds a `Box<dyn Workload>`.
pub(crate) trait Workload: Send + std::fmt::Debug {
    /// Which structure this is.
    fn kind(&self) -> WorkloadKind;

    /// Adds up to `budget` bytes of payload and returns the bytes added (0 when nothing fits).
    /// Polls `stop` between population steps; on true it keeps what is already resident and
    /// returns early.
    fn grow(&mut self, budget: usize, stop: &dyn Fn() -> bool) -> Result<u64, WorkloadError>;

    /// Gives back up to `bytes` of payload, newest first, cutting the newest item rather than
    /// freeing more than asked. The pages are back with the OS when it returns. Returns bytes
    /// freed.
    fn shrink(&mut self, bytes: u64) -> u64;

    /// Performs `ops` hold operations (searches, walk steps, lookups or block products).
    fn hold_step(&mut self, ops: u64) -> HoldStep;

    /// Reads one word of every payload page so the pages stay in the active working set
    /// (`keep_hot`); polls `stop`. Returns a checksum so the reads are not optimised away.
    fn touch_all(&self, stop: &dyn Fn() -> bool) -> u64;

    /// What it holds now.
    fn counters(&self) -> Counters;

    /// Where the huge-page request stands.
    fn huge_pages(&self) -> HugePages;

    /// A short phrase about its shape for the "target reached" log entry, e.g. "height 41".
    fn shape(&self) -> String;

    /// Frees everything; the memory is back with the OS when it returns. Returns (payload
    /// bytes, items) released.
    fn release(self: Box<Self>) -> (u64, u64);
}

/// The structure of `kind`, empty, with its own arena.
pub(crate) fn new_workload(kind: WorkloadKind, config: WorkloadConfig) -> Box<dyn Workload> {
    let rng = Rng::from_os();
    match kind {
        WorkloadKind::Tree => Box::new(tree_workload::TreeWorkload::new(config, rng)),
        WorkloadKind::List => Box::new(list::ListWorkload::new(config, rng)),
        WorkloadKind::Hash => Box::new(hash::HashWorkload::new(config, rng)),
        WorkloadKind::Matrix => Box::new(matrix::MatrixWorkload::new(config, rng)),
    }
}

/// Moves `value` into a new heap allocation without aborting the process when the allocator
/// fails (`Box::new` would abort); bookkeeping of a stress tool must fail softly near the limit.
/// On failure the value comes back with the error, so a payload inside it can be returned.
pub(crate) fn try_box<T>(value: T, what: &'static str) -> Result<Box<T>, (WorkloadError, T)> {
    let layout = std::alloc::Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(value));
    }
    // SAFETY: the layout has a non-zero size.
    let raw = unsafe { std::alloc::alloc(layout) }.cast::<T>();
    if raw.is_null() {
        let e = WorkloadError::Alloc {
            what,
            bytes: layout.size(),
        };
        return Err((e, value));
    }
    // SAFETY: `raw` is a fresh, non-null, properly aligned allocation of `Layout::new::<T>()`,
    // which is exactly what `Box<T>` owns and later frees with the global allocator.
    unsafe {
        raw.write(value);
        Ok(Box::from_raw(raw))
    }
}

/// SplitMix64: the structures' keys and hold choices. Cheap, `Send`, and seedable for tests;
/// keys only need to be spread, not unpredictable.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded from the OS.
    pub(crate) fn from_os() -> Self {
        Self(rand::random::<u64>())
    }

    /// A generator with a fixed seed.
    #[cfg(test)]
    pub(crate) fn seeded(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n` is 0), by multiply-shift: no division, bias below 2^-32
    /// for the sizes held here.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}
