//! The memory a run holds and what it does with it: the workload structures behind one trait.
//!
//! The engine drives a `Box<dyn Workload>` (grow, shrink, hold, count, release) and never knows
//! which structure it is. Every structure keeps its payload bytes in a
//! [`PayloadArena`](crate::arena::PayloadArena), so filling is one `MADV_POPULATE_WRITE` per
//! step and releasing is `munmap`, whatever the shape.

use crate::arena::{ArenaError, HugePages};

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
pub enum WorkloadError {
    /// Mapping or populating payload slabs failed.
    #[error(transparent)]
    Arena(#[from] ArenaError),
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
pub struct Counters {
    /// Items: tree or list nodes, hash entries, matrix blocks.
    pub items: u64,
    /// Payload bytes carved and held.
    pub payload_bytes: u64,
    /// Arena slabs mapped.
    pub slabs: usize,
}

/// What a batch of hold operations did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HoldStep {
    /// Activity in the kind's unit (see [`WorkloadKind::activity_unit`]).
    pub activity: u64,
    /// Operations that found what they looked for (tree searches and hash lookups of a held
    /// key; every walk step and block product).
    pub hits: u64,
}

/// Settings fixed for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Payload bytes per item (the last one may be cut to fit a target).
    pub payload_bytes: usize,
    /// Ask for transparent huge pages.
    pub huge_pages: bool,
}

/// A structure that holds payload memory. Object safe: the engine holds a `Box<dyn Workload>`.
pub trait Workload: Send + std::fmt::Debug {
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
