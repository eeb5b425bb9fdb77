//! The workload's data structure: a binary search tree of heap-allocated nodes with random keys.
//!
//! Nodes are separate allocations scattered over the heap, so searches chase pointers the way a
//! real application's heap does. Every operation is iterative — inserting, searching, removing
//! and dropping — so a degenerate tree of millions of nodes can never overflow a stack.

use std::alloc::{Layout, alloc};
use std::ptr::NonNull;

/// A node's payload: a span of memory owned by the [`crate::arena::PayloadArena`] that carved it.
///
/// Raw because the bytes live in slabs the arena maps and unmaps itself (so freed memory really
/// goes back to the OS); the tree never frees a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    /// First byte of the payload.
    pub ptr: NonNull<u8>,
    /// Length in bytes.
    pub len: usize,
}

// SAFETY: a payload is a plain address range; the arena that owns the memory travels with the
// tree (both live in one `Workload`), so moving it across threads is sound.
unsafe impl Send for Payload {}

/// The global allocator could not provide a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the allocator could not provide a {size}-byte tree node")]
pub struct NodeAllocError {
    /// Size of the allocation that failed.
    pub size: usize,
}

struct Node {
    key: u64,
    left: Link,
    right: Link,
    payload: Payload,
}

type Link = Option<Box<Node>>;

impl Drop for Node {
    /// Frees the subtrees below without recursion: rotate left children up until each node has
    /// at most a right child, then walk down the right spine. O(n), no extra memory.
    fn drop(&mut self) {
        let mut stack_free = self.left.take();
        let mut pending_right = self.right.take();
        loop {
            let Some(mut node) = stack_free.take().or_else(|| pending_right.take()) else {
                break;
            };
            if let Some(mut left) = node.left.take() {
                node.left = left.right.take();
                left.right = Some(node);
                stack_free = Some(left);
            } else {
                stack_free = node.right.take();
                // `node` has no children now, so its own drop does nothing recursive.
            }
        }
    }
}

/// Allocates a node without aborting the process when the allocator fails.
fn try_box(node: Node) -> Result<Box<Node>, NodeAllocError> {
    let layout = Layout::new::<Node>();
    // SAFETY: Node has a non-zero size, so `alloc` is called with a valid layout.
    let raw = unsafe { alloc(layout) }.cast::<Node>();
    let Some(ptr) = NonNull::new(raw) else {
        return Err(NodeAllocError {
            size: layout.size(),
        });
    };
    // SAFETY: `ptr` is a fresh, properly aligned allocation of `Layout::new::<Node>()`, which is
    // exactly what `Box<Node>` expects to own and later free.
    unsafe {
        ptr.as_ptr().write(node);
        Ok(Box::from_raw(ptr.as_ptr()))
    }
}

/// Binary search tree keyed by `u64`, each node carrying a [`Payload`].
#[derive(Default)]
pub struct Tree {
    root: Link,
    len: u64,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("len", &self.len).finish()
    }
}

/// What a successful search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Nodes visited, including the one found.
    pub depth: u32,
    /// The first word of the found node's payload, read so that a search really touches it.
    pub first_word: u64,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the tree has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts `key` with `payload`. Returns `Ok(false)` (and takes nothing) if the key exists.
    pub fn insert(&mut self, key: u64, payload: Payload) -> Result<bool, NodeAllocError> {
        let mut link = &mut self.root;
        while let Some(node) = link {
            link = match key.cmp(&node.key) {
                std::cmp::Ordering::Less => &mut node.left,
                std::cmp::Ordering::Greater => &mut node.right,
                std::cmp::Ordering::Equal => return Ok(false),
            };
        }
        *link = Some(try_box(Node {
            key,
            left: None,
            right: None,
            payload,
        })?);
        self.len += 1;
        Ok(true)
    }

    /// Looks `key` up, reading the first word of its payload when found.
    pub fn search(&self, key: u64) -> Option<Hit> {
        let mut cur = self.root.as_deref();
        let mut depth = 0u32;
        while let Some(node) = cur {
            depth += 1;
            cur = match key.cmp(&node.key) {
                std::cmp::Ordering::Less => node.left.as_deref(),
                std::cmp::Ordering::Greater => node.right.as_deref(),
                std::cmp::Ordering::Equal => {
                    let first_word = read_first_word(node.payload);
                    return Some(Hit { depth, first_word });
                }
            };
        }
        None
    }

    /// The payload of `key`, for callers that resize it in place.
    pub fn payload_mut(&mut self, key: u64) -> Option<&mut Payload> {
        let mut cur = self.root.as_deref_mut();
        while let Some(node) = cur {
            cur = match key.cmp(&node.key) {
                std::cmp::Ordering::Less => node.left.as_deref_mut(),
                std::cmp::Ordering::Greater => node.right.as_deref_mut(),
                std::cmp::Ordering::Equal => return Some(&mut node.payload),
            };
        }
        None
    }

    /// Removes `key`, returning its payload so the caller can give the memory back.
    pub fn remove(&mut self, key: u64) -> Option<Payload> {
        let mut link = &mut self.root;
        while link.as_ref().is_some_and(|n| n.key != key) {
            let Some(node) = link else { break };
            link = if key < node.key {
                &mut node.left
            } else {
                &mut node.right
            };
        }
        let mut node = link.take()?;
        *link = match (node.left.take(), node.right.take()) {
            (None, None) => None,
            (Some(child), None) | (None, Some(child)) => Some(child),
            (Some(left), Some(right)) => {
                let mut right = Some(right);
                let mut successor = take_min(&mut right)?;
                successor.left = Some(left);
                successor.right = right;
                Some(successor)
            }
        };
        self.len -= 1;
        Some(node.payload)
    }

    /// Height of the tree (longest root-to-leaf path), computed iteratively.
    pub fn height(&self) -> u64 {
        let mut max = 0u64;
        let mut stack: Vec<(&Node, u64)> = Vec::new();
        if let Some(root) = self.root.as_deref() {
            stack.push((root, 1));
        }
        while let Some((node, d)) = stack.pop() {
            max = max.max(d);
            if let Some(l) = node.left.as_deref() {
                stack.push((l, d + 1));
            }
            if let Some(r) = node.right.as_deref() {
                stack.push((r, d + 1));
            }
        }
        max
    }

    /// Keys in ascending order (in-order walk with an explicit stack); for tests and checks.
    pub fn keys_in_order(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let mut stack: Vec<&Node> = Vec::new();
        let mut cur = self.root.as_deref();
        while cur.is_some() || !stack.is_empty() {
            while let Some(n) = cur {
                stack.push(n);
                cur = n.left.as_deref();
            }
            if let Some(n) = stack.pop() {
                out.push(n.key);
                cur = n.right.as_deref();
            }
        }
        out
    }
}

/// Detaches the smallest node of the subtree at `link`, splicing its right child into its place.
fn take_min(link: &mut Link) -> Option<Box<Node>> {
    let mut link = link;
    while link.as_ref()?.left.is_some() {
        link = &mut link.as_mut()?.left;
    }
    let mut min = link.take()?;
    *link = min.right.take();
    Some(min)
}

fn read_first_word(payload: Payload) -> u64 {
    let n = payload.len.min(8);
    let mut buf = [0u8; 8];
    // SAFETY: the payload span is owned by the live arena and at least `n` bytes long; a
    // volatile read keeps the compiler from skipping the memory access searches exist to make.
    for (i, b) in buf.iter_mut().enumerate().take(n) {
        *b = unsafe { std::ptr::read_volatile(payload.ptr.as_ptr().add(i)) };
    }
    u64::from_le_bytes(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn payload_for(buf: &mut [u64], i: usize) -> Payload {
        Payload {
            ptr: NonNull::from(&mut buf[i]).cast(),
            len: 8,
        }
    }

    #[test]
    fn insert_search_remove_keep_order() {
        let mut words: Vec<u64> = (0..1000u64).map(|i| i * 3).collect();
        let mut tree = Tree::new();
        let mut keys: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(tree.insert(*k, payload_for(&mut words, i)).unwrap());
        }
        assert!(
            !tree.insert(keys[5], payload_for(&mut words, 5)).unwrap(),
            "duplicate refused"
        );
        assert_eq!(tree.len(), 1000);
        for (i, k) in keys.iter().enumerate() {
            let hit = tree.search(*k).expect("present");
            assert_eq!(hit.first_word, (i as u64) * 3);
        }
        assert!(tree.search(1).is_none() || keys.contains(&1));
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(tree.keys_in_order(), sorted);
        // random keys keep the tree shallow: ~2 ln n, far below n
        assert!(tree.height() < 40, "height {}", tree.height());

        // remove every other key, including nodes with two children
        for k in keys.iter().step_by(2) {
            assert!(tree.remove(*k).is_some());
            assert!(tree.search(*k).is_none());
        }
        assert!(tree.remove(keys[0]).is_none(), "already gone");
        let p = tree.payload_mut(keys[1]).unwrap();
        p.len = 4;
        assert_eq!(tree.payload_mut(keys[1]).map(|p| p.len), Some(4));
        assert!(tree.payload_mut(keys[0]).is_none());
        assert_eq!(tree.len(), 500);
        keys = keys.into_iter().skip(1).step_by(2).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(tree.keys_in_order(), sorted);
        for k in &keys {
            assert!(tree.search(*k).is_some());
        }
    }

    #[test]
    fn remove_returns_the_removed_keys_payload() {
        let mut words = vec![0u64; 8];
        let mut tree = Tree::new();
        for (i, k) in [50u64, 30, 70, 20, 40, 60, 80].iter().enumerate() {
            tree.insert(*k, payload_for(&mut words, i)).unwrap();
        }
        let expected = payload_for(&mut words, 0);
        // 50 is the root with two children: its successor (60) moves up
        assert_eq!(tree.remove(50), Some(expected));
        assert_eq!(tree.keys_in_order(), vec![20, 30, 40, 60, 70, 80]);
    }

    /// A million-node chain (the worst case: sorted inserts) must drop, search and measure
    /// without recursion. Built by hand because inserting a chain is O(n^2).
    #[test]
    fn degenerate_million_node_chain_does_not_overflow() {
        let mut word = 7u64;
        let p = Payload {
            ptr: NonNull::from(&mut word).cast(),
            len: 8,
        };
        const N: u64 = 1_000_000;
        let mut root: Link = None;
        for key in (0..N).rev() {
            root = Some(Box::new(Node {
                key,
                left: None,
                right: root.take(),
                payload: p,
            }));
        }
        let mut tree = Tree { root, len: N };
        assert_eq!(tree.height(), N);
        let hit = tree.search(N - 1).unwrap();
        assert_eq!(hit.depth as u64, N);
        assert_eq!(hit.first_word, 7);
        // insert at the bottom of the chain, remove from the middle
        tree.insert(N + 5, p).unwrap();
        assert!(tree.remove(N / 2).is_some());
        assert_eq!(tree.len(), N);
        drop(tree); // would overflow the 2 MiB test-thread stack if drop recursed
    }

    #[test]
    fn left_leaning_chain_drops_too() {
        let mut word = 1u64;
        let p = Payload {
            ptr: NonNull::from(&mut word).cast(),
            len: 8,
        };
        let mut root: Link = None;
        for key in 0..500_000u64 {
            root = Some(Box::new(Node {
                key,
                left: root.take(),
                right: None,
                payload: p,
            }));
        }
        let tree = Tree { root, len: 500_000 };
        assert_eq!(tree.keys_in_order().len(), 500_000);
        drop(tree);
    }
}
