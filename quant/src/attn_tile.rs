//! The kernels of ggml's tiled CPU flash attention
//! (`ggml_compute_forward_flash_attn_ext_tiled` in `ggml-cpu/ops.cpp`, build
//! 0c1e570), which llama.cpp runs for batches of 64 query tokens or more with
//! an f16 or f32 KV cache. Per query row, over the cached positions in
//! tiles of [`KV_TILE`] aligned to multiples of 64 from position 0, it
//! computes exactly:
//!
//! 1. tiles where the row sees no position are skipped (they contribute
//!    nothing);
//! 2. scores `KQ[t]`: an FMA chain over `d = 0..dk` in order from 0.0,
//!    `acc = fma(q[d], k_t[d], acc)` (`simd_gemm`; the query in f32, the key
//!    widened to f32), then `KQ *= scale` (a plain f32 multiply; with a soft
//!    cap, `scale / softcap`, then `tanhf`, then `* softcap`); masked entries
//!    (a later position, or one outside a sliding window) are -inf;
//! 3. `Mnew = max(M, max(KQ))`; when `Mnew > M`, `ms = expf(M - Mnew)` (the
//!    scalar libm `expf`), `VKQ *= ms`, `S *= ms`; `M = Mnew`;
//! 4. `S += ggml_vec_soft_max_f32(64, KQ, KQ, M)` in its AVX-512 branch
//!    (llama.cpp's reference outputs come from an AVX-512 build): per chunk of
//!    16 entries `p = ggml_v_expf(x - M)` ([`crate::act::expf_ggml`]) stored back into
//!    `KQ`, `sum += f64(reduce16(p))` with GCC's `_mm512_reduce_add_ps`
//!    order (`t[i] = p[i+8] + p[i]`, `u[i] = t[i+4] + t[i]`,
//!    `(u0 + u2) + (u1 + u3)`, all f32), `sum` an f64 from 0; then
//!    `S = f32(f64(S) + sum)` ([`softmax_tile_generic`]);
//! 5. `VKQ[c]`: an FMA chain over `t = 0..64` in order,
//!    `acc = fma(KQ[t], v_t[c], acc)` (masked entries have `KQ[t] = 0`);
//! 6. at the end `VKQ *= (S == 0 ? 0 : 1 / S)`.
//!
//! Steps 2 and 5 are both `C += A·B` with one FMA chain per output in the
//! order of the inner index ([`gemm_f32_generic`]). Rows are independent, so
//! a caller may group any rows into a tile (ember puts the query heads that
//! share a KV head side by side, so that each K/V tile is widened once for
//! all of them) and may lay the scores out transposed (`[position][row]`,
//! the layout [`softmax_tile_generic`] takes): each output keeps its chain.
//!
//! The generic versions compute every FMA exactly ([`fma_exact`]), so the
//! SIMD versions, which use FMA instructions, are bit-identical to them.

/// Cached positions per tile (`GGML_FA_TILE_KV`).
pub const KV_TILE: usize = 64;

/// `c[i * ldc + j] = fma(a(i, kk), b[kk * ldb + j], c[i * ldc + j])` for
/// `kk = 0..k` in order, for every `i < m`, `j < n`, where
/// `a(i, kk) = a[i * a_rs + kk * a_cs]`.
///
/// # Safety
/// The CPU must support the entry's tier, and every index above must be in
/// bounds ([`crate::Kernels::tile_gemm`] checks them).
pub type GemmF32Fn = unsafe fn(g: GemmShape, c: &mut [f32], a: &[f32], b: &[f32]);

/// The shape and strides of one [`GemmF32Fn`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmShape {
    /// Rows of `c` (and of `a`).
    pub m: usize,
    /// Length of each FMA chain (columns of `a`, rows of `b`).
    pub k: usize,
    /// Columns of `c` (and of `b`).
    pub n: usize,
    /// Distance between rows of `c`.
    pub ldc: usize,
    /// Distance between rows of `a`.
    pub a_rs: usize,
    /// Distance between columns of `a`.
    pub a_cs: usize,
    /// Distance between rows of `b`.
    pub ldb: usize,
}

/// Step 4 of the module docs for `n` rows laid out by column: `kq` is
/// `[KV_TILE][n]` (entry `t * n + r` is row `r`'s score at tile position
/// `t`), `m[r]` row `r`'s running maximum. Each entry becomes
/// `p = crate::act::expf_ggml(x - m[r])`, or 0 where `x` is -inf (a masked entry, also
/// when `m[r]` is still -inf); `sums[r]` receives the f64 sum of row `r`'s
/// four `reduce16`s. `m.len() >= n`, `sums.len() >= n`,
/// `kq.len() >= KV_TILE * n`.
///
/// # Safety
/// The CPU must support the entry's tier and the lengths must hold
/// ([`crate::Kernels::tile_softmax`] checks them).
pub type SoftmaxTileFn = unsafe fn(kq: &mut [f32], n: usize, m: &[f32], sums: &mut [f64]);

/// The tiled-attention kernels of one tier.
#[derive(Clone, Copy)]
pub struct TileEntry {
    /// Tier of the functions.
    pub tier: crate::Tier,
    /// Scores and value accumulation (`simd_gemm`).
    pub gemm: GemmF32Fn,
    /// The tile softmax.
    pub softmax: SoftmaxTileFn,
}

impl TileEntry {
    /// The portable versions.
    pub const fn generic() -> TileEntry {
        TileEntry { tier: crate::Tier::Generic, gemm: gemm_f32_generic, softmax: softmax_tile_generic }
    }
}

/// `a * b + c` rounded once to f32, as an FMA instruction computes it, on
/// any CPU: the product is exact in f64 and the sum's rounding error is
/// exact (TwoSum), so the f64 sum rounded to odd (one f64 ulp toward the
/// exact value when it is inexact and even) keeps every bit the f32 rounding
/// needs (f64 has 29 more bits than f32; round-to-odd needs 2).
#[inline(always)]
pub fn fma_exact(a: f32, b: f32, c: f32) -> f32 {
    let p = a as f64 * b as f64;
    let c = c as f64;
    let s = p + c;
    let bb = s - p;
    let err = (p - (s - bb)) + (c - bb);
    let bits = s.to_bits();
    let odd = if err != 0.0 && bits & 1 == 0 && s.is_finite() {
        if (err > 0.0) == (s > 0.0) {
            bits + 1
        } else {
            bits - 1
        }
    } else {
        bits
    };
    f64::from_bits(odd) as f32
}

/// See [`GemmF32Fn`].
pub fn gemm_f32_generic(g: GemmShape, c: &mut [f32], a: &[f32], b: &[f32]) {
    for i in 0..g.m {
        for j in 0..g.n {
            let mut acc = c[i * g.ldc + j];
            for kk in 0..g.k {
                acc = fma_exact(a[i * g.a_rs + kk * g.a_cs], b[kk * g.ldb + j], acc);
            }
            c[i * g.ldc + j] = acc;
        }
    }
}

/// The sum of 16 values in the order of GCC's `_mm512_reduce_add_ps`.
#[inline(always)]
pub fn reduce16(p: &[f32; 16]) -> f32 {
    let t: [f32; 8] = core::array::from_fn(|i| p[i + 8] + p[i]);
    let u: [f32; 4] = core::array::from_fn(|i| t[i + 4] + t[i]);
    (u[0] + u[2]) + (u[1] + u[3])
}

/// See [`SoftmaxTileFn`].
pub fn softmax_tile_generic(kq: &mut [f32], n: usize, m: &[f32], sums: &mut [f64]) {
    softmax_cols_generic(kq, n, 0..n, m, sums);
}

/// [`softmax_tile_generic`] for the columns `cols` only (the SIMD versions'
/// tail).
pub(crate) fn softmax_cols_generic(
    kq: &mut [f32],
    n: usize,
    cols: core::ops::Range<usize>,
    m: &[f32],
    sums: &mut [f64],
) {
    for r in cols {
        let mut sum = 0.0f64;
        for chunk in 0..KV_TILE / 16 {
            let mut p = [0.0f32; 16];
            for (i, pi) in p.iter_mut().enumerate() {
                let e = &mut kq[(16 * chunk + i) * n + r];
                *pi = if *e == f32::NEG_INFINITY { 0.0 } else { crate::act::expf_ggml(*e - m[r]) };
                *e = *pi;
            }
            sum += reduce16(&p) as f64;
        }
        sums[r] = sum;
    }
}

impl crate::Kernels {
    /// [`gemm_f32_generic`] through the table; fails if an index of the
    /// shape falls outside `c`, `a` or `b`, or if `n` exceeds `ldc` or `ldb`.
    pub fn tile_gemm(&self, g: GemmShape, c: &mut [f32], a: &[f32], b: &[f32]) -> Result<(), crate::Error> {
        if g.m == 0 || g.n == 0 {
            return Ok(());
        }
        // The last index each buffer is read or written at, plus one.
        let end = |rows: usize, rs: usize, cols: usize, cs: usize| {
            (rows - 1).checked_mul(rs)?.checked_add((cols - 1).checked_mul(cs)?)?.checked_add(1)
        };
        let c_end = end(g.m, g.ldc, g.n, 1).filter(|_| g.n <= g.ldc || g.m == 1);
        let b_end = if g.k == 0 { Some(0) } else { end(g.k, g.ldb, g.n, 1).filter(|_| g.n <= g.ldb || g.k == 1) };
        let a_end = if g.k == 0 { Some(0) } else { end(g.m, g.a_rs, g.k, g.a_cs) };
        for (what, need, got) in
            [("tile gemm C", c_end, c.len()), ("tile gemm A", a_end, a.len()), ("tile gemm B", b_end, b.len())]
        {
            match need {
                Some(need) if need <= got => {}
                _ => return Err(crate::Error::Length { what, expected: need.unwrap_or(usize::MAX), got }),
            }
        }
        // SAFETY: the table holds the entry of a tier this CPU supports;
        // every index the shape reaches was checked above.
        unsafe { (self.tile.gemm)(g, c, a, b) };
        Ok(())
    }

    /// [`softmax_tile_generic`] through the table; `kq` must hold
    /// `KV_TILE * n` values, `m` and `sums` at least `n`.
    pub fn tile_softmax(&self, kq: &mut [f32], n: usize, m: &[f32], sums: &mut [f64]) -> Result<(), crate::Error> {
        let need = KV_TILE.saturating_mul(n);
        if kq.len() < need {
            return Err(crate::Error::Length { what: "tile scores", expected: need, got: kq.len() });
        }
        if m.len() < n || sums.len() < n {
            return Err(crate::Error::Length {
                what: "tile row maxima and sums",
                expected: n,
                got: m.len().min(sums.len()),
            });
        }
        // SAFETY: the table holds the entry of a tier this CPU supports; lengths checked above.
        unsafe { (self.tile.softmax)(kq, n, m, sums) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fma_exact_rounds_once() {
        // a*b + c = 1 + 2^-24 + 2^-70 exactly, just above the midpoint of 1
        // and 1 + 2^-23: rounded to f64 first it becomes the midpoint and
        // then ties to 1.0; rounded once it is 1 + 2^-23.
        let a = 1.0 + 2f32.powi(-23);
        let b = -(2f32.powi(-24) - 2f32.powi(-47));
        let c = 1.0 + 2f32.powi(-23);
        assert_eq!((a as f64 * b as f64 + c as f64) as f32, 1.0, "the f64 sum rounds twice");
        assert_eq!(fma_exact(a, b, c), 1.0 + 2f32.powi(-23));
        assert_eq!(fma_exact(-a, b, -c), -(1.0 + 2f32.powi(-23)));
        // exact sums and the ends
        assert_eq!(fma_exact(3.0, 0.5, 0.25), 1.75);
        assert_eq!(fma_exact(1.0, 1.0, f32::NEG_INFINITY), f32::NEG_INFINITY);
        assert_eq!(fma_exact(f32::MAX, 2.0, 0.0), f32::INFINITY);
        assert!(fma_exact(f32::NAN, 1.0, 0.0).is_nan());
    }

    #[test]
    fn reduce16_is_gccs_tree() {
        let mut p = [2f32.powi(-30); 16];
        p[0] = 1.0;
        // 1 + 2^-30 + ... : t0 = 1 + 2^-30 = 1 (ulp 2^-23), the others 2^-29
        let t: [f32; 8] = core::array::from_fn(|i| p[i + 8] + p[i]);
        assert_eq!(t[0], 1.0);
        assert_eq!(reduce16(&p), 1.0);
        let q: [f32; 16] = core::array::from_fn(|i| i as f32);
        assert_eq!(reduce16(&q), 120.0);
    }

    #[test]
    fn gemm_is_one_chain_per_output() {
        // 2x3 · 3x2 with an accumulator start
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.5, 2.0, 0.25, 3.0, 0.125];
        let mut c = [1.0, 0.0, 0.0, 1.0];
        let g = GemmShape { m: 2, k: 3, n: 2, ldc: 2, a_rs: 3, a_cs: 1, ldb: 2 };
        gemm_f32_generic(g, &mut c, &a, &b);
        assert_eq!(c, [15.0, 1.375, 32.0, 5.0]);
        // the same with `a` read transposed
        let at = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
        let mut c2 = [1.0, 0.0, 0.0, 1.0];
        gemm_f32_generic(GemmShape { a_rs: 1, a_cs: 2, ..g }, &mut c2, &at, &b);
        assert_eq!(c2, c);
    }

    #[test]
    fn softmax_masks_and_sums_in_chunks() {
        let n = 2;
        let mut kq = [f32::NEG_INFINITY; KV_TILE * 2];
        for t in 0..KV_TILE {
            kq[t * n] = 0.0; // row 0: every entry at the maximum
        }
        kq[5 * n + 1] = -1.0; // row 1: one visible entry, at its maximum
        let mut sums = [0.0f64; 2];
        softmax_tile_generic(&mut kq, n, &[0.0, -1.0], &mut sums);
        assert_eq!(sums, [64.0, 1.0]);
        assert!((0..KV_TILE).all(|t| kq[t * n] == 1.0));
        assert_eq!(kq[5 * n + 1], 1.0);
        assert!((0..KV_TILE).filter(|&t| t != 5).all(|t| kq[t * n + 1] == 0.0));
        // a row that sees nothing yet (maximum -inf): all zeros, not NaN
        let mut kq2 = [f32::NEG_INFINITY; KV_TILE];
        let mut s1 = [1.0f64];
        softmax_tile_generic(&mut kq2, 1, &[f32::NEG_INFINITY], &mut s1);
        assert_eq!(s1[0], 0.0);
        assert!(kq2.iter().all(|&p| p == 0.0));
    }
}
