//! [`crate::attn_tile`]'s gemm with NEON, bit-identical to
//! [`crate::attn_tile::gemm_f32_generic`]: every output is one `fmla` chain
//! in the order of the inner index (ggml's `simd_gemm`, 4 rows × 16 columns
//! of accumulators per pass as in its NEON build). The tile softmax stays
//! the generic one on aarch64.

use crate::attn_tile::{fma_exact, GemmShape};
use core::arch::aarch64::*;

/// `RM` rows × `4 * NV` columns of `c` from column `j`: one chain per output.
///
/// # Safety
/// NEON; every index of rows `i..i + RM`, columns `j..j + 4 * NV` of `c`,
/// `a` (columns `0..k`) and `b` is in bounds.
#[inline(always)]
unsafe fn block<const RM: usize, const NV: usize>(
    g: &GemmShape,
    c: *mut f32,
    a: *const f32,
    b: *const f32,
    i: usize,
    j: usize,
) {
    // SAFETY (whole body): the caller guarantees the indices are in bounds
    // and the CPU feature.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); NV]; RM];
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = vld1q_f32(c.add((i + r) * g.ldc + j + 4 * v));
            }
        }
        for kk in 0..g.k {
            let mut bv = [vdupq_n_f32(0.0); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = vld1q_f32(b.add(kk * g.ldb + j + 4 * v));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let p = vdupq_n_f32(*a.add((i + r) * g.a_rs + kk * g.a_cs));
                for (x, &bb) in row.iter_mut().zip(&bv) {
                    *x = vfmaq_f32(*x, bb, p);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                vst1q_f32(c.add((i + r) * g.ldc + j + 4 * v), *x);
            }
        }
    }
}

/// Rows `i..i + RM` of `c`: 16 columns per pass, then 4 at a time, then the
/// rest one output at a time (the same chain, [`fma_exact`]).
///
/// # Safety
/// As [`block`] for rows `i..i + RM` and all `n` columns.
#[inline(always)]
unsafe fn rows<const RM: usize>(g: &GemmShape, c: *mut f32, a: *const f32, b: *const f32, i: usize) {
    let mut j = 0;
    // SAFETY: `j + 16 <= n` (resp. `j + 4`) and the caller's bounds.
    unsafe {
        while j + 16 <= g.n {
            block::<RM, 4>(g, c, a, b, i, j);
            j += 16;
        }
        while j + 4 <= g.n {
            block::<RM, 1>(g, c, a, b, i, j);
            j += 4;
        }
        for r in i..i + RM {
            for jj in j..g.n {
                let mut acc = *c.add(r * g.ldc + jj);
                for kk in 0..g.k {
                    acc = fma_exact(*a.add(r * g.a_rs + kk * g.a_cs), *b.add(kk * g.ldb + jj), acc);
                }
                *c.add(r * g.ldc + jj) = acc;
            }
        }
    }
}

/// [`crate::attn_tile::gemm_f32_generic`] with NEON.
///
/// # Safety
/// NEON; the indices of [`crate::attn_tile::GemmF32Fn`] in bounds.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn gemm_f32_neon(g: GemmShape, c: &mut [f32], a: &[f32], b: &[f32]) {
    let (cp, ap, bp) = (c.as_mut_ptr(), a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: rows `i..i + RM` with `i + RM <= m`; the caller checked every
    // index of the shape.
    unsafe {
        while i + 4 <= g.m {
            rows::<4>(&g, cp, ap, bp, i);
            i += 4;
        }
        match g.m - i {
            3 => rows::<3>(&g, cp, ap, bp, i),
            2 => rows::<2>(&g, cp, ap, bp, i),
            1 => rows::<1>(&g, cp, ap, bp, i),
            _ => {}
        }
    }
}
