//! The list workload: a singly linked list of payload nodes; holding walks it, one node per
//! operation, continuing where the last step ended and reading each node's payload.
//!
//! New nodes go in at the head, so the newest node is always first: shrinking (newest first)
//! is O(1) per node, and the walk runs from the newest to the oldest node, then starts over.

use super::arena::{Payload, PayloadArena};
use super::fill::{self, Shape};
use super::heap::{self, ArenaProbe};
use super::{
    Counters, HoldStep, HugePages, Rng, Workload, WorkloadConfig, WorkloadError, WorkloadKind,
    try_box,
};
use std::ptr::NonNull;

struct Node {
    next: Option<Box<Node>>,
    payload: Payload,
}

/// List + arena + where the walk stands.
pub(crate) struct ListWorkload {
    head: Option<Box<Node>>,
    len: u64,
    arena: PayloadArena,
    shape: Shape,
    /// The node the walk visited last; `None` starts at the head. Invariant: `None` or a node
    /// owned by the chain under `head`. Only `grow` (which adds before the head and keeps every
    /// node) and `hold_step` run while it is `Some`; everything that unlinks a node clears it.
    cursor: Option<NonNull<Node>>,
    /// Freed last, so the release trims the building thread's malloc arena.
    probe: ArenaProbe,
}

// SAFETY: `cursor` points only into nodes this value owns (see its invariant), so moving the
// whole workload to another thread moves the pointee with it; nothing else shares them.
unsafe impl Send for ListWorkload {}

impl std::fmt::Debug for ListWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListWorkload")
            .field("len", &self.len)
            .field("arena", &self.arena)
            .finish()
    }
}

impl Drop for ListWorkload {
    /// Unlinks node by node: a default drop would recurse once per node and overflow the
    /// stack on a long list.
    fn drop(&mut self) {
        self.cursor = None;
        let mut cur = self.head.take();
        while let Some(mut node) = cur {
            cur = node.next.take();
        }
    }
}

impl ListWorkload {
    pub(crate) fn new(config: WorkloadConfig, _rng: Rng) -> Self {
        Self {
            head: None,
            len: 0,
            arena: PayloadArena::new(config.huge_pages),
            shape: Shape {
                item_bytes: config.payload_bytes,
                grain: 1,
            },
            cursor: None,
            probe: ArenaProbe::default(),
        }
    }

    /// The node after the cursor (the head at the end or at the start).
    fn step(&self) -> Option<&Node> {
        let next = match self.cursor {
            // SAFETY: by the cursor's invariant it points to a live node owned by `self.head`'s
            // chain, and `&self` keeps that chain from changing while the reference lives.
            Some(at) => unsafe { at.as_ref() }.next.as_deref(),
            None => None,
        };
        next.or(self.head.as_deref())
    }
}

impl ListWorkload {
    /// Frees up to `bytes` of payload, newest first, cutting the newest item rather than
    /// freeing more (see [`Workload::shrink`]).
    fn shrink_newest(&mut self, bytes: u64) -> u64 {
        self.cursor = None;
        let mut freed = 0u64;
        while freed < bytes {
            let Some(node) = self.head.as_mut() else {
                break;
            };
            let left = usize::try_from(bytes - freed).unwrap_or(usize::MAX);
            let len = node.payload.len();
            if len > left {
                // Cut the newest payload rather than free more than asked.
                if self.arena.shrink_last(&mut node.payload, len - left) {
                    freed += left as u64;
                }
                break;
            }
            let Some(mut node) = self.head.take() else {
                break;
            };
            self.head = node.next.take();
            self.len -= 1;
            freed += len as u64;
            // The head is the newest node, and its payload the newest carve.
            let _ = self.arena.release_last(node.payload);
        }
        freed
    }
}

impl Workload for ListWorkload {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::List
    }

    fn grow(&mut self, budget: usize, stop: &dyn Fn() -> bool) -> Result<u64, WorkloadError> {
        self.probe.arm();
        let Self {
            head,
            len,
            arena,
            shape,
            ..
        } = self;
        fill::fill(arena, budget, *shape, stop, &mut |arena, payload| {
            // The first word holds the node's ordinal, so a walk reads data its stamp wrote.
            arena.stamp(&payload, *len);
            let node = Node {
                next: head.take(),
                payload,
            };
            match try_box(node, "a list node") {
                Ok(node) => {
                    *head = Some(node);
                    *len += 1;
                    Ok(())
                }
                Err((e, node)) => {
                    *head = node.next;
                    Err((e, node.payload))
                }
            }
        })
    }

    fn shrink(&mut self, bytes: u64) -> u64 {
        heap::freeing(|| self.shrink_newest(bytes))
    }

    fn hold_step(&mut self, ops: u64) -> HoldStep {
        let mut steps = 0u64;
        let mut checksum = 0u64;
        while steps < ops {
            let Some(node) = self.step() else { break };
            checksum = checksum.wrapping_add(self.arena.first_word(&node.payload).unwrap_or(0));
            self.cursor = Some(NonNull::from(node));
            steps += 1;
        }
        std::hint::black_box(checksum);
        HoldStep {
            activity: steps,
            hits: steps,
        }
    }

    fn touch_all(&self, stop: &dyn Fn() -> bool) -> u64 {
        self.arena.touch_all(stop)
    }

    fn counters(&self) -> Counters {
        Counters {
            items: self.len,
            payload_bytes: self.arena.used_bytes() as u64,
            slabs: self.arena.slab_count(),
        }
    }

    fn huge_pages(&self) -> HugePages {
        self.arena.huge_pages()
    }

    fn shape(&self) -> String {
        format!("{} nodes in one chain", self.len)
    }

    fn release(self: Box<Self>) -> (u64, u64) {
        let out = (self.arena.used_bytes() as u64, self.len);
        heap::freeing(move || drop(self));
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::arena::PAGE;
    use super::*;

    fn at_cursor(l: &ListWorkload) -> Option<u64> {
        // SAFETY: test reads the node the cursor names, under the cursor's own invariant.
        let node = unsafe { l.cursor?.as_ref() };
        l.arena.first_word(&node.payload)
    }

    #[test]
    fn the_walk_continues_where_it_ended_and_wraps() {
        let config = WorkloadConfig {
            payload_bytes: PAGE,
            huge_pages: false,
        };
        let mut l = ListWorkload::new(config, Rng::seeded(1));
        assert_eq!(
            l.hold_step(3).activity,
            0,
            "an empty list has nothing to walk"
        );
        assert_eq!(l.grow(4 * PAGE, &|| false).unwrap(), 4 * PAGE as u64);
        // Nodes are stamped with their ordinal; the newest (3) is at the head.
        let mut seen = Vec::new();
        for _ in 0..6 {
            assert_eq!(l.hold_step(1).activity, 1);
            seen.push(at_cursor(&l).unwrap());
        }
        assert_eq!(seen, [3, 2, 1, 0, 3, 2]);
        // Growing keeps the walk's place; shrinking restarts it at the (new) head.
        assert_eq!(l.grow(PAGE, &|| false).unwrap(), PAGE as u64);
        l.hold_step(1);
        assert_eq!(at_cursor(&l), Some(1));
        assert_eq!(l.shrink(2 * PAGE as u64), 2 * PAGE as u64);
        l.hold_step(1);
        assert_eq!(at_cursor(&l), Some(2), "nodes 4 and 3 went, newest first");
        assert_eq!(l.counters().items, 3);
    }

    #[test]
    fn a_long_list_drops_without_recursion() {
        let config = WorkloadConfig {
            payload_bytes: 1024,
            huge_pages: false,
        };
        let mut l = ListWorkload::new(config, Rng::seeded(1));
        let mut total = 0;
        while total < 600 << 20 {
            total += l.grow(8 << 20, &|| false).unwrap();
        }
        assert!(l.counters().items > 600_000);
        drop(l); // ~600k nodes: a recursive drop would overflow the test thread's stack
    }
}
