//! The batch fill every structure shares: carve a batch inside one slab, make it resident in
//! steps, and hand each payload to the structure as soon as its pages are resident.

use super::WorkloadError;
use super::arena::{PAGE, Payload, PayloadArena};

/// RSS is compared with the target after at most this many bytes of new payload.
pub(crate) const BATCH_BYTES: usize = 8 << 20;
/// A stop is noticed at least this often while pages are being made resident.
pub(crate) const POPULATE_STEP: usize = 2 << 20;

/// How a structure sizes its payloads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Bytes per item; the last one of a batch may be cut to fit the budget.
    pub(crate) item_bytes: usize,
    /// Every payload length is a multiple of this (8 keeps matrix blocks f64-aligned).
    pub(crate) grain: usize,
}

impl Shape {
    fn round(&self, n: usize) -> usize {
        n - n % self.grain.max(1)
    }
}

/// A payload the structure could not take (its bookkeeping allocation failed), handed back so
/// the fill can return its bytes to the arena.
pub(crate) type Refused = (WorkloadError, Payload);

/// Adds up to `budget` payload bytes in one batch and returns the bytes added.
///
/// `place` receives each payload once it is resident, stamps it and links it into the
/// structure. Between two `MADV_POPULATE_WRITE` steps (each holds `mmap_lock` for reading) the
/// stamping and linking leave the lock free for a waiting writer — a tokio thread growing its
/// heap — so Status and Stop never wait out a whole build. When `stop` turns true the resident
/// part is kept (the payload the stop landed in is cut to its resident pages) and the rest is
/// given back; when `place` fails, everything not placed is given back.
pub(crate) fn fill(
    arena: &mut PayloadArena,
    budget: usize,
    shape: Shape,
    stop: &dyn Fn() -> bool,
    place: &mut dyn FnMut(&mut PayloadArena, Payload) -> Result<(), Refused>,
) -> Result<u64, WorkloadError> {
    let mut batch = carve_batch(arena, budget, shape)?;
    let (Some(start), Some(end)) = (
        batch.first().map(Payload::offset),
        batch.last().map(Payload::end_offset),
    ) else {
        return Ok(0);
    };
    // Placed from the front; reversed so that `pop` yields the oldest unplaced payload and the
    // newest stays at index 0 for giving back in LIFO order.
    batch.reverse();
    let mut added = 0u64;
    let mut done_to = start;
    while done_to < end && !stop() {
        let step_end = (done_to + POPULATE_STEP).min(end);
        if let Some(first) = batch.last()
            && let Err(e) = arena.populate(first, done_to, step_end)
        {
            give_back(arena, batch);
            return Err(e);
        }
        done_to = step_end;
        while batch.last().is_some_and(|p| p.end_offset() <= done_to) {
            let Some(p) = batch.pop() else { break };
            added += p.len() as u64;
            if let Err((e, p)) = place(arena, p) {
                batch.push(p);
                give_back(arena, batch);
                return Err(e);
            }
        }
    }
    // Stopped mid-batch: the oldest unplaced payload is the one the stop landed in.
    let Some(mut cut) = batch.pop() else {
        return Ok(added);
    };
    give_back(arena, batch);
    let resident = shape.round(done_to.saturating_sub(cut.offset()));
    if resident == 0 || !arena.shrink_last(&mut cut, resident) {
        give_back(arena, vec![cut]);
        return Ok(added);
    }
    added += cut.len() as u64;
    if let Err((e, p)) = place(arena, cut) {
        give_back(arena, vec![p]);
        return Err(e);
    }
    Ok(added)
}

/// Carves up to `budget` bytes as payloads inside the current slab (a new one when the first
/// does not fit), so the batch is one contiguous range.
fn carve_batch(
    arena: &mut PayloadArena,
    budget: usize,
    shape: Shape,
) -> Result<Vec<Payload>, WorkloadError> {
    let item = shape.round(shape.item_bytes).max(shape.grain.max(1));
    let cap = budget.min(BATCH_BYTES.max(item));
    let min_len = shape.round(item.min(PAGE)).max(1);
    let mut batch: Vec<Payload> = Vec::new();
    batch
        .try_reserve(cap / item + 1)
        .map_err(|_| WorkloadError::Alloc {
            what: "the batch list",
            bytes: (cap / item + 1) * std::mem::size_of::<Payload>(),
        })?;
    let mut left = cap;
    while left >= min_len {
        let len = shape.round(item.min(left));
        if len == 0 || (!batch.is_empty() && arena.room_in_current_slab() < len) {
            break;
        }
        match arena.carve(len) {
            Ok(p) => batch.push(p),
            Err(e) => {
                batch.reverse();
                give_back(arena, batch);
                return Err(e);
            }
        }
        left -= len;
    }
    Ok(batch)
}

/// Returns payloads to the arena, `newest_first` in LIFO order.
fn give_back(arena: &mut PayloadArena, newest_first: Vec<Payload>) {
    for p in newest_first {
        // A payload that is not the newest cannot be returned alone; it stays carved and is
        // freed with the arena. Only a caller breaking LIFO order gets here.
        let _ = arena.release_last(p);
    }
}
