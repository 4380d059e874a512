//! Q4_1 · Q8_1 with AVX2, one row or four rows per pass over the activation.
//!
//! `sum((d*q + m) * da*a) = d*da * sum(q*a) + m * s`, with `s = da * sum(a)`
//! stored in the Q8_1 block. Two blocks per step, laid out as in Q4_0; a last
//! odd block goes through the generic kernel.

use super::avx2::*;
use crate::q4_1::{vec_dot_q4_1_q8_1_generic, BlockQ4_1};
use crate::q8_1::BlockQ8_1;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ4_1]; R], a: &[BlockQ8_1]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for p in 0..n / 2 {
        let (a0, a1) = (&a[2 * p], &a[2 * p + 1]);
        let (alo, ahi) = act_pair(&a0.qs, &a1.qs);
        let da = f16x2_halves(a0.d, a1.d);
        let sa = f16x2_once(a0.s, a1.s);
        for r in 0..R {
            let (w0, w1) = (&w[r][2 * p], &w[r][2 * p + 1]);
            prefetch_ahead(w0, PREFETCH);
            let (lo, hi) = nibbles_pair(&w0.qs, &w1.qs);
            // |pair sums| <= 15*127*2 per half, 7620 for both: exact in i16.
            let p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
            let p32 = _mm256_madd_epi16(p16, ones);
            let (dw, mw) = f16x2x2_halves(w0.d, w0.m, w1.d, w1.m);
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(p32), acc[r]);
            acc[r] = _mm256_fmadd_ps(mw, sa, acc[r]);
        }
    }
    let mut out = hsum_rows(acc);
    if n % 2 == 1 {
        for r in 0..R {
            out[r] += vec_dot_q4_1_q8_1_generic(&w[r][n - 1..], &a[n - 1..]);
        }
    }
    out
}

/// Q4_1 weights · Q8_1 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_1_q8_1_avx2(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    dot_rows([w], a)[0]
}

/// Four Q4_1 weight rows · one Q8_1 activation row.
///
/// # Safety
/// As [`vec_dot_q4_1_q8_1_avx2`], for every row.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_1_q8_1_avx2(w: [&[BlockQ4_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    dot_rows(w, a)
}
