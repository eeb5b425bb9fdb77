//! The binary search tree behind the tree workload: heap-allocated nodes with random keys.
//!
//! Nodes are separate allocations scattered over the heap, so searches chase pointers the way a
//! real application's heap does. Every operation is iterative — inserting, searching, removing
//! and dropping — so a degenerate tree of millions of nodes can never overflow a stack.

use super::arena::Payload;
use super::{WorkloadError, try_box};

struct Node {
    key: u64,
    left: Link,
    right: Link,
    payload: Payload,
}

type Link = Option<Box<Node>>;

/// Binary search tree keyed by `u64`, each node carrying a [`Payload`].
#[derive(Default)]
pub(crate) struct Tree {
    root: Link,
    len: u64,
}

impl Drop for Tree {
    /// Frees every node without recursion: rotate left children up until each node has at
    /// most a right child, then walk down the right spine. O(n), no extra memory. (Nodes have
    /// no `Drop` of their own so `remove` can move a payload out; a node is only ever dropped
    /// here or after its children were taken.)
    fn drop(&mut self) {
        let mut cur = self.root.take();
        while let Some(mut node) = cur {
            if let Some(mut left) = node.left.take() {
                node.left = left.right.take();
                left.right = Some(node);
                cur = Some(left);
            } else {
                cur = node.right.take();
                // `node` has no children now, so dropping it frees one allocation.
            }
        }
    }
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("len", &self.len).finish()
    }
}

impl Tree {
    /// Number of nodes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Inserts `key` with `payload`. A key that exists already hands the payload back as
    /// `Ok(Some(payload))`; a failed node allocation hands it back with the error.
    pub(crate) fn insert(
        &mut self,
        key: u64,
        payload: Payload,
    ) -> Result<Option<Payload>, (WorkloadError, Payload)> {
        let mut link = &mut self.root;
        while let Some(node) = link {
            link = match key.cmp(&node.key) {
                std::cmp::Ordering::Less => &mut node.left,
                std::cmp::Ordering::Greater => &mut node.right,
                std::cmp::Ordering::Equal => return Ok(Some(payload)),
            };
        }
        let node = Node {
            key,
            left: None,
            right: None,
            payload,
        };
        *link = Some(try_box(node, "a tree node").map_err(|(e, n)| (e, n.payload))?);
        self.len += 1;
        Ok(None)
    }

    /// Looks `key` up: the nodes visited (including the one found) and its payload. The
    /// payload is read through the arena that owns it.
    pub(crate) fn search(&self, key: u64) -> Option<(u32, &Payload)> {
        let mut cur = self.root.as_deref();
        let mut depth = 0u32;
        while let Some(node) = cur {
            depth += 1;
            cur = match key.cmp(&node.key) {
                std::cmp::Ordering::Less => node.left.as_deref(),
                std::cmp::Ordering::Greater => node.right.as_deref(),
                std::cmp::Ordering::Equal => return Some((depth, &node.payload)),
            };
        }
        None
    }

    /// The payload of `key`, for callers that resize it in place.
    pub(crate) fn payload_mut(&mut self, key: u64) -> Option<&mut Payload> {
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
    pub(crate) fn remove(&mut self, key: u64) -> Option<Payload> {
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
    pub(crate) fn height(&self) -> u64 {
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

    /// Keys in ascending order (in-order walk with an explicit stack).
    #[cfg(test)]
    pub(crate) fn keys_in_order(&self) -> Vec<u64> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::arena::PayloadArena;
    use super::*;

    /// A stamped 8-byte payload per key, so a search can show it found the right one.
    fn stamped(arena: &mut PayloadArena, word: u64) -> Payload {
        let p = arena.carve(8).unwrap();
        arena.stamp(&p, word);
        p
    }

    #[test]
    fn insert_search_remove_keep_order() {
        let mut arena = PayloadArena::new(false);
        let mut tree = Tree::default();
        let mut keys: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            let p = stamped(&mut arena, i as u64 * 3);
            assert!(tree.insert(*k, p).unwrap().is_none());
        }
        let dup = stamped(&mut arena, 0);
        assert!(
            tree.insert(keys[5], dup).unwrap().is_some(),
            "duplicate refused"
        );
        assert_eq!(tree.len(), 1000);
        for (i, k) in keys.iter().enumerate() {
            let (_, p) = tree.search(*k).expect("present");
            assert_eq!(arena.first_word(p), Some(i as u64 * 3));
        }
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
        assert!(tree.payload_mut(keys[1]).is_some());
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
        let mut arena = PayloadArena::new(false);
        let mut tree = Tree::default();
        for k in [50u64, 30, 70, 20, 40, 60, 80] {
            let p = stamped(&mut arena, k);
            tree.insert(k, p).unwrap();
        }
        // 50 is the root with two children: its successor (60) moves up
        let p = tree.remove(50).unwrap();
        assert_eq!(arena.first_word(&p), Some(50));
        assert_eq!(tree.keys_in_order(), vec![20, 30, 40, 60, 70, 80]);
    }

    /// A million-node chain (the worst case: sorted inserts) must drop, search and measure
    /// without recursion. Built by hand because inserting a chain is O(n^2).
    #[test]
    fn degenerate_million_node_chain_does_not_overflow() {
        const N: u64 = 1_000_000;
        let mut arena = PayloadArena::new(false);
        let mut root: Link = None;
        for key in (0..N).rev() {
            root = Some(Box::new(Node {
                key,
                left: None,
                right: root.take(),
                payload: stamped(&mut arena, key),
            }));
        }
        let mut tree = Tree { root, len: N };
        assert_eq!(tree.height(), N);
        let (depth, p) = tree.search(N - 1).unwrap();
        assert_eq!(u64::from(depth), N);
        assert_eq!(arena.first_word(p), Some(N - 1));
        // insert at the bottom of the chain, remove from the middle
        let p = stamped(&mut arena, 7);
        tree.insert(N + 5, p).unwrap();
        assert!(tree.remove(N / 2).is_some());
        assert_eq!(tree.len(), N);
        drop(tree); // would overflow the 2 MiB test-thread stack if drop recursed
    }

    #[test]
    fn left_leaning_chain_drops_too() {
        let mut arena = PayloadArena::new(false);
        let mut root: Link = None;
        for key in 0..500_000u64 {
            root = Some(Box::new(Node {
                key,
                left: root.take(),
                right: None,
                payload: stamped(&mut arena, key),
            }));
        }
        let tree = Tree { root, len: 500_000 };
        assert_eq!(tree.keys_in_order().len(), 500_000);
        drop(tree);
    }
}
