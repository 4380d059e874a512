//! [`crate::attn_tile`]'s kernels with AVX2 + FMA, bit-identical to the
//! generic versions: every output of the gemm is one `vfmadd` chain in the
//! order of the inner index (ggml's `simd_gemm`, 6 rows × 16 columns of
//! accumulators per pass as in its AVX2 build), and the softmax computes
//! AVX-512 `ggml_v_expf` eight rows at a time (`act_avx2::expf8`).

use super::act_avx2::expf8;
use crate::attn_tile::{softmax_cols_generic, GemmShape, KV_TILE};
use core::arch::x86_64::*;

/// `RM` rows × `8 * NV` columns of `c` from column `j`: one chain per output.
///
/// # Safety
/// AVX2 and FMA; every index of rows `i..i + RM`, columns `j..j + 8 * NV`
/// of `c`, `a` (columns `0..k`) and `b` is in bounds.
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
    // and the CPU features.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); NV]; RM];
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(c.add((i + r) * g.ldc + j + 8 * v));
            }
        }
        for kk in 0..g.k {
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(b.add(kk * g.ldb + j + 8 * v));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let p = _mm256_broadcast_ss(&*a.add((i + r) * g.a_rs + kk * g.a_cs));
                for (x, &bb) in row.iter_mut().zip(&bv) {
                    *x = _mm256_fmadd_ps(p, bb, *x);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                _mm256_storeu_ps(c.add((i + r) * g.ldc + j + 8 * v), *x);
            }
        }
    }
}

/// Rows `i..i + RM` of `c`: 16 columns per pass, then 8, then the rest one
/// output at a time (the same chain with a scalar FMA).
///
/// # Safety
/// As [`block`] for rows `i..i + RM` and all `n` columns.
#[inline(always)]
unsafe fn rows<const RM: usize>(g: &GemmShape, c: *mut f32, a: *const f32, b: *const f32, i: usize) {
    let mut j = 0;
    // SAFETY: `j + 16 <= n` (resp. `j + 8`) and the caller's bounds.
    unsafe {
        while j + 16 <= g.n {
            block::<RM, 2>(g, c, a, b, i, j);
            j += 16;
        }
        if j + 8 <= g.n {
            block::<RM, 1>(g, c, a, b, i, j);
            j += 8;
        }
        for r in i..i + RM {
            for jj in j..g.n {
                let mut acc = _mm_set_ss(*c.add(r * g.ldc + jj));
                for kk in 0..g.k {
                    let x = _mm_set_ss(*a.add(r * g.a_rs + kk * g.a_cs));
                    acc = _mm_fmadd_ss(x, _mm_set_ss(*b.add(kk * g.ldb + jj)), acc);
                }
                *c.add(r * g.ldc + jj) = _mm_cvtss_f32(acc);
            }
        }
    }
}

/// [`crate::attn_tile::gemm_f32_generic`] with AVX2 + FMA.
///
/// # Safety
/// AVX2 and FMA; the indices of [`crate::attn_tile::GemmF32Fn`] in bounds.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gemm_f32_avx2(g: GemmShape, c: &mut [f32], a: &[f32], b: &[f32]) {
    let (cp, ap, bp) = (c.as_mut_ptr(), a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: rows `i..i + RM` with `i + RM <= m`; the caller checked every
    // index of the shape.
    unsafe {
        while i + 6 <= g.m {
            rows::<6>(&g, cp, ap, bp, i);
            i += 6;
        }
        match g.m - i {
            5 => rows::<5>(&g, cp, ap, bp, i),
            4 => rows::<4>(&g, cp, ap, bp, i),
            3 => rows::<3>(&g, cp, ap, bp, i),
            2 => rows::<2>(&g, cp, ap, bp, i),
            1 => rows::<1>(&g, cp, ap, bp, i),
            _ => {}
        }
    }
}

/// [`crate::attn_tile::softmax_tile_generic`] with AVX2 + FMA: eight rows
/// (columns of `kq`) per pass; a tail of fewer than eight goes through the
/// generic code.
///
/// # Safety
/// AVX2, FMA and F16C; the lengths of [`crate::attn_tile::SoftmaxTileFn`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn softmax_tile_avx2(kq: &mut [f32], n: usize, m: &[f32], sums: &mut [f64]) {
    let body = n & !7;
    let p = kq.as_mut_ptr();
    let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
    for r in (0..body).step_by(8) {
        // SAFETY: `r + 8 <= n <= m.len()`, `sums.len() >= n`, and every
        // `t * n + r + 8 <= KV_TILE * n <= kq.len()`.
        unsafe {
            let mv = _mm256_loadu_ps(m.as_ptr().add(r));
            let mut sum_lo = _mm256_setzero_pd();
            let mut sum_hi = _mm256_setzero_pd();
            for chunk in 0..KV_TILE / 16 {
                let mut e = [_mm256_setzero_ps(); 16];
                for (i, ei) in e.iter_mut().enumerate() {
                    let at = p.add((16 * chunk + i) * n + r);
                    let x = _mm256_loadu_ps(at);
                    let v = expf8(_mm256_sub_ps(x, mv));
                    *ei = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(x, ninf), v);
                    _mm256_storeu_ps(at, *ei);
                }
                // GCC's _mm512_reduce_add_ps, lane by lane.
                for i in 0..8 {
                    e[i] = _mm256_add_ps(e[i + 8], e[i]);
                }
                for i in 0..4 {
                    e[i] = _mm256_add_ps(e[i + 4], e[i]);
                }
                let red = _mm256_add_ps(_mm256_add_ps(e[0], e[2]), _mm256_add_ps(e[1], e[3]));
                sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(red)));
                sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(red)));
            }
            _mm256_storeu_pd(sums.as_mut_ptr().add(r), sum_lo);
            _mm256_storeu_pd(sums.as_mut_ptr().add(r + 4), sum_hi);
        }
    }
    softmax_cols_generic(kq, n, body..n, m, sums);
}
