//! The matrix workload: dense f64 blocks; holding multiplies two of them (C = A_i × B_j, i and
//! j random) into a scratch block, which loads memory bandwidth and a core.
//!
//! Block side: `side = floor(sqrt(payload_bytes / 8))`, at least 1 and at most [`MAX_SIDE`], so
//! a block holds `side²` f64 in row-major order (100 KiB payloads: 113 × 113). The cap keeps one
//! product near 2 M multiply-adds (about a millisecond): a hold step never delays a Stop, and
//! larger payloads simply make more blocks. A block cut to fit a target (the last of a batch)
//! keeps its whole rows: products use `rows_i × k × side` of it, `k = min(side, rows_j)`.
//!
//! Values: anonymous pages read as 0.0, and the fill stamps one small finite f64 (1.0 to 2.0)
//! into the first word of every page, so every value is finite and every page is resident.
//! C is overwritten by every product (never accumulated), so results stay bounded.

use super::arena::{Payload, PayloadArena};
use super::fill::{self, Shape};
use super::heap::{self, ArenaProbe};
use super::{
    Counters, HoldStep, HugePages, Rng, Workload, WorkloadConfig, WorkloadError, WorkloadKind,
};

/// Largest block side (128 × 128 f64 = 128 KiB).
pub(crate) const MAX_SIDE: usize = 128;

/// Blocks + arena + the product's scratch block.
#[derive(Debug)]
pub(crate) struct MatrixWorkload {
    blocks: Vec<Payload>,
    arena: PayloadArena,
    side: usize,
    /// C of the products: outside the arena, allocated by the first grow so the build counts it.
    scratch: Vec<f64>,
    rng: Rng,
    /// Freed last, so the release trims the building thread's malloc arena.
    probe: ArenaProbe,
}

/// The block side for a payload size (see the module doc).
pub(crate) fn side_for(payload_bytes: usize) -> usize {
    let mut side = ((payload_bytes / 8) as f64).sqrt() as usize;
    // The float root can be one off for large values; settle on the exact floor.
    while side * side * 8 > payload_bytes && side > 1 {
        side -= 1;
    }
    while (side + 1) * (side + 1) * 8 <= payload_bytes {
        side += 1;
    }
    side.clamp(1, MAX_SIDE)
}

impl MatrixWorkload {
    pub(crate) fn new(config: WorkloadConfig, rng: Rng) -> Self {
        Self {
            blocks: Vec::new(),
            arena: PayloadArena::new(config.huge_pages),
            side: side_for(config.payload_bytes),
            scratch: Vec::new(),
            rng,
            probe: ArenaProbe::default(),
        }
    }

    /// Whole rows of a block.
    fn rows(&self, p: &Payload) -> usize {
        p.len() / (8 * self.side)
    }

    /// C = A[.., 0..k] × B[0..k, ..] for blocks `i` and `j`; returns the multiply-adds done.
    fn product(&mut self, i: usize, j: usize) -> u64 {
        let side = self.side;
        let (Some(pa), Some(pb)) = (self.blocks.get(i), self.blocks.get(j)) else {
            return 0;
        };
        let (rows_a, k) = (self.rows(pa), self.rows(pb).min(side));
        let (Some(a), Some(b)) = (self.arena.f64s(pa), self.arena.f64s(pb)) else {
            return 0;
        };
        let Some(c) = self.scratch.get_mut(..rows_a * side) else {
            return 0;
        };
        c.fill(0.0);
        // i-k-j order: the inner loop runs along rows of B and C, contiguous and vectorisable.
        for (arow, crow) in a.chunks_exact(side).zip(c.chunks_exact_mut(side)) {
            for (&av, brow) in arow[..k].iter().zip(b.chunks_exact(side)) {
                for (cv, &bv) in crow.iter_mut().zip(brow) {
                    *cv += av * bv;
                }
            }
        }
        std::hint::black_box(c.first());
        (rows_a * k * side) as u64
    }
}

impl MatrixWorkload {
    /// Frees up to `bytes` of payload, newest first, cutting the newest item rather than
    /// freeing more (see [`Workload::shrink`]).
    fn shrink_newest(&mut self, bytes: u64) -> u64 {
        let mut freed = 0u64;
        while freed < bytes {
            let Some(last) = self.blocks.last_mut() else {
                break;
            };
            let left = usize::try_from(bytes - freed).unwrap_or(usize::MAX);
            let len = last.len();
            if len > left {
                // Cut the newest block rather than free more than asked; the cut keeps a
                // multiple of 8 bytes (whole f64), so it frees at most `left`.
                let new_len = (len - left).div_ceil(8) * 8;
                if new_len < len && self.arena.shrink_last(last, new_len) {
                    freed += (len - new_len) as u64;
                }
                break;
            }
            let Some(p) = self.blocks.pop() else { break };
            freed += len as u64;
            let _ = self.arena.release_last(p);
        }
        if freed > 0 && self.blocks.capacity() > 2 * self.blocks.len() + 1024 {
            self.blocks
                .shrink_to(self.blocks.len() + self.blocks.len() / 4);
        }
        freed
    }
}

impl Workload for MatrixWorkload {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Matrix
    }

    fn grow(&mut self, budget: usize, stop: &dyn Fn() -> bool) -> Result<u64, WorkloadError> {
        self.probe.arm();
        let n = self.side * self.side;
        if self.scratch.len() < n {
            self.scratch
                .try_reserve_exact(n)
                .map_err(|_| WorkloadError::Alloc {
                    what: "the product scratch block",
                    bytes: n * 8,
                })?;
            self.scratch.resize(n, 0.0);
        }
        let shape = Shape {
            item_bytes: n * 8,
            grain: 8,
        };
        let Self { blocks, arena, .. } = self;
        fill::fill(arena, budget, shape, stop, &mut |arena, p| {
            if blocks.try_reserve(1).is_err() {
                let bytes = (blocks.len() + 1) * std::mem::size_of::<Payload>();
                let e = WorkloadError::Alloc {
                    what: "the block list",
                    bytes,
                };
                return Err((e, p));
            }
            let value = 1.0 + (blocks.len() % 64) as f64 / 64.0;
            arena.stamp(&p, value.to_bits());
            blocks.push(p);
            Ok(())
        })
    }

    fn shrink(&mut self, bytes: u64) -> u64 {
        heap::freeing(|| self.shrink_newest(bytes))
    }

    fn hold_step(&mut self, ops: u64) -> HoldStep {
        let mut done = HoldStep::default();
        if self.blocks.is_empty() {
            return done;
        }
        for _ in 0..ops {
            let i = self.rng.below(self.blocks.len());
            let j = self.rng.below(self.blocks.len());
            done.activity += self.product(i, j);
            done.hits += 1;
        }
        done
    }

    fn touch_all(&self, stop: &dyn Fn() -> bool) -> u64 {
        self.arena.touch_all(stop)
    }

    fn counters(&self) -> Counters {
        Counters {
            items: self.blocks.len() as u64,
            payload_bytes: self.arena.used_bytes() as u64,
            slabs: self.arena.slab_count(),
        }
    }

    fn huge_pages(&self) -> HugePages {
        self.arena.huge_pages()
    }

    fn shape(&self) -> String {
        format!("blocks of {0} x {0} f64", self.side)
    }

    fn release(self: Box<Self>) -> (u64, u64) {
        let out = (self.arena.used_bytes() as u64, self.blocks.len() as u64);
        heap::freeing(move || drop(self));
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn side_is_the_floor_of_the_root_capped() {
        assert_eq!(side_for(100 * 1024), 113);
        assert_eq!(side_for(1024), 11);
        assert_eq!(side_for(8), 1);
        assert_eq!(side_for(1), 1);
        assert_eq!(side_for(32), 2);
        assert_eq!(side_for(31), 1);
        assert_eq!(side_for(64 << 20), MAX_SIDE);
    }

    fn matrix(side: usize, blocks: usize) -> MatrixWorkload {
        let config = WorkloadConfig {
            payload_bytes: side * side * 8,
            huge_pages: false,
        };
        let mut m = MatrixWorkload::new(config, Rng::seeded(7));
        let got = m.grow(side * side * 8 * blocks, &|| false).unwrap();
        assert_eq!(got as usize, side * side * 8 * blocks);
        m
    }

    /// The product against a naive triple loop, with small integers so f64 sums are exact.
    #[test]
    fn product_matches_the_naive_one_and_stays_finite() {
        let side = 37;
        let mut m = matrix(side, 3);
        let filled: Vec<Vec<f64>> = (0..3)
            .map(|b| {
                let block = m.arena.f64s_mut(&m.blocks[b]).unwrap();
                for (i, v) in block.iter_mut().enumerate() {
                    *v = ((i * (b + 3)) % 7) as f64 - 3.0;
                }
                block.to_vec()
            })
            .collect();
        assert_eq!(m.product(2, 1), 37 * 37 * 37);
        let (a, b) = (&filled[2], &filled[1]);
        for r in 0..side {
            for c in 0..side {
                let want: f64 = (0..side).map(|k| a[r * side + k] * b[k * side + c]).sum();
                assert_eq!(m.scratch[r * side + c], want, "C[{r}][{c}]");
            }
        }
    }

    #[test]
    fn a_cut_block_multiplies_its_whole_rows() {
        let side = 16;
        let mut m = matrix(side, 2);
        // Cut block 1 to 5 rows and a bit; its whole rows count.
        assert_eq!(m.shrink((side * side * 8 - 5 * side * 8 - 24) as u64), 1384);
        assert_eq!(m.blocks[1].len(), 5 * side * 8 + 24);
        assert_eq!(m.product(1, 0), 5 * 16 * 16, "5 rows of A, all 16 of B");
        assert_eq!(m.product(0, 1), 16 * 5 * 16, "k = the 5 rows of B");
        let fresh = matrix(side, 2);
        assert!(
            fresh
                .blocks
                .iter()
                .all(|b| fresh.arena.f64s(b).unwrap()[0] >= 1.0)
        );
        let all_finite = |m: &MatrixWorkload| m.scratch.iter().all(|v| v.is_finite());
        assert!(all_finite(&m));
    }
}
