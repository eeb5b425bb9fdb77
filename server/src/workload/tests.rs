//! Invariants every structure keeps, checked through the trait the engine uses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::arena::{PAGE, PayloadArena};
use super::fill::{self, BATCH_BYTES, Shape};
use super::*;
use std::cell::Cell;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn make(kind: WorkloadKind, payload_bytes: usize) -> Box<dyn Workload> {
    new_workload(
        kind,
        WorkloadConfig {
            payload_bytes,
            huge_pages: false,
        },
    )
}

fn never() -> bool {
    false
}

/// Grows until `target` payload bytes are held to within a page (one batch per call, and
/// stopping within a page, as the engine does).
fn grow_to(w: &mut dyn Workload, target: usize) -> u64 {
    let mut total = 0u64;
    while (total as usize) + PAGE <= target {
        let got = w.grow(target - total as usize, &never).unwrap();
        assert!(got > 0, "{:?}: grow made no progress at {total}", w.kind());
        total += got;
    }
    total
}

#[test]
fn every_kind_grows_exactly_to_its_budget_and_counts_it() {
    for kind in WorkloadKind::ALL {
        let mut w = make(kind, 100 * KIB);
        assert_eq!(w.kind(), kind);
        let first = w.grow(3 * MIB + 5, &never).unwrap();
        // Matrix payloads are whole f64s: a budget is met to within 7 bytes.
        let slack = if kind == WorkloadKind::Matrix { 7 } else { 0 };
        assert!(first as usize <= 3 * MIB + 5 && first as usize + slack >= 3 * MIB + 5);
        let total = first + grow_to(w.as_mut(), 40 * MIB);
        let c = w.counters();
        assert_eq!(c.payload_bytes, total, "{kind:?}");
        assert!(c.items >= (total / (100 * 1024) as u64), "{kind:?}: {c:?}");
        assert_eq!(c.slabs, 1, "{kind:?}: 43 MiB fit one 256 MiB slab");
        assert_eq!(w.huge_pages(), HugePages::Off);
        assert!(!w.shape().is_empty());
        let (bytes, items) = w.release();
        assert_eq!((bytes, items), (c.payload_bytes, c.items), "{kind:?}");
    }
}

#[test]
fn a_grow_is_one_batch_of_at_most_8_mib() {
    for kind in WorkloadKind::ALL {
        let mut w = make(kind, 100 * KIB);
        let got = w.grow(100 * MIB, &never).unwrap();
        assert!(got as usize <= BATCH_BYTES && got as usize > BATCH_BYTES - 100 * KIB);
        // Less than a page is not worth a carve (the engine stops within a page).
        assert_eq!(w.grow(PAGE - 1, &never).unwrap(), 0, "{kind:?}");
        assert!(w.grow(PAGE, &never).unwrap() > 0, "{kind:?}");
    }
}

#[test]
fn shrink_gives_back_exactly_what_is_asked_newest_first() {
    for kind in WorkloadKind::ALL {
        let mut w = make(kind, 64 * KIB);
        let total = grow_to(w.as_mut(), 20 * MIB);
        let items = w.counters().items;
        // Less than one payload: the newest item is cut, none removed.
        assert_eq!(w.shrink(10 * KIB as u64), 10 * KIB as u64, "{kind:?}");
        assert_eq!(w.counters().items, items, "{kind:?}");
        // Several payloads and a bit: whole items go, then one is cut.
        let ask = (5 * MIB + 3 * KIB) as u64;
        assert_eq!(w.shrink(ask), ask, "{kind:?}");
        let c = w.counters();
        assert_eq!(c.payload_bytes, total - ask - 10 * KIB as u64, "{kind:?}");
        assert!(c.items < items && c.items >= items - 81, "{kind:?}: {c:?}");
        // Hold ops still find what is left: nothing dangles after a shrink.
        let step = w.hold_step(64);
        assert!(step.hits > 0, "{kind:?}: {step:?}");
        // Asking for more than is held frees all of it, and growing again works.
        assert_eq!(w.shrink(u64::MAX), c.payload_bytes, "{kind:?}");
        assert_eq!(w.counters().items, 0);
        assert_eq!(
            w.counters().slabs,
            0,
            "{kind:?}: the emptied slab is unmapped"
        );
        assert_eq!(w.hold_step(8).hits, 0);
        assert!(w.grow(MIB, &never).unwrap() > 0);
    }
}

#[test]
fn a_stop_mid_batch_keeps_only_the_resident_part() {
    for kind in WorkloadKind::ALL {
        let mut w = make(kind, 3 * MIB);
        // The stop is polled once before each 2 MiB population step: two steps, then stop.
        let polls = Cell::new(0);
        let stop = || {
            polls.set(polls.get() + 1);
            polls.get() > 2
        };
        let got = w.grow(8 * MIB, &stop).unwrap();
        let c = w.counters();
        assert_eq!(c.payload_bytes, got, "{kind:?}");
        if kind == WorkloadKind::Matrix {
            // Blocks are 128 KiB at most: 4 MiB resident is 32 whole blocks.
            assert_eq!(got as usize, 4 * MIB, "{kind:?}");
        } else {
            // One whole 3 MiB payload, and the second cut to its 1 MiB resident part.
            assert_eq!((got as usize, c.items), (4 * MIB, 2), "{kind:?}");
        }
    }
}

#[test]
fn hold_steps_touch_payloads_in_each_kinds_unit() {
    let mut tree = make(WorkloadKind::Tree, 16 * KIB);
    grow_to(tree.as_mut(), 4 * MIB);
    let s = tree.hold_step(1000);
    // Half the searches are for held keys; a random 64-bit key is almost never held.
    assert_eq!(s.activity, 1000);
    assert!((500..=502).contains(&s.hits), "{s:?}");

    let mut hash = make(WorkloadKind::Hash, 16 * KIB);
    grow_to(hash.as_mut(), 4 * MIB);
    let s = hash.hold_step(1000);
    assert_eq!(s.activity, 1000);
    assert!((500..=502).contains(&s.hits), "{s:?}");

    let mut list = make(WorkloadKind::List, 16 * KIB);
    grow_to(list.as_mut(), 4 * MIB);
    assert_eq!(
        list.hold_step(1000),
        HoldStep {
            activity: 1000,
            hits: 1000
        }
    );

    let mut matrix = make(WorkloadKind::Matrix, 100 * KIB);
    grow_to(matrix.as_mut(), 4 * MIB);
    let s = matrix.hold_step(3);
    assert_eq!(s.hits, 3);
    // 113³ per product of whole blocks; fewer when the cut last block was drawn.
    assert!(s.activity <= 3 * 113u64.pow(3) && s.activity > 0, "{s:?}");
    for w in [&tree, &hash, &list, &matrix] {
        assert!(
            w.touch_all(&never) > 0,
            "{:?}: stamped pages read back",
            w.kind()
        );
        assert_eq!(
            w.touch_all(&|| true),
            0,
            "a stop before the first page reads none"
        );
    }
}

#[test]
fn the_fill_gives_back_what_the_structure_refuses() {
    let mut arena = PayloadArena::new(false);
    let shape = Shape {
        item_bytes: 64 * KIB,
        grain: 1,
    };
    let mut placed = Vec::new();
    let err = fill::fill(&mut arena, 1024 * KIB, shape, &never, &mut |_, p| {
        if placed.len() == 2 {
            let e = WorkloadError::Alloc {
                what: "a test node",
                bytes: 1,
            };
            return Err((e, p));
        }
        placed.push(p);
        Ok(())
    });
    assert!(matches!(err, Err(WorkloadError::Alloc { .. })));
    assert_eq!(
        arena.used_bytes(),
        2 * 64 * KIB,
        "only the placed payloads stay carved"
    );
    assert_eq!(placed.len(), 2);
}

#[test]
fn tiny_budgets_and_tiny_payloads() {
    for kind in WorkloadKind::ALL {
        let mut w = make(kind, KIB);
        assert_eq!(w.grow(0, &never).unwrap(), 0);
        let got = grow_to(w.as_mut(), 3 * MIB);
        assert_eq!(w.counters().payload_bytes, got);
        assert!(w.hold_step(100).hits > 0, "{kind:?}");
        assert_eq!(w.shrink(got), got);
    }
}
