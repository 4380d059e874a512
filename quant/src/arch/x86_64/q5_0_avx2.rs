//! Q5_0 · Q8_0 with AVX2, one row or four rows per pass over the activation.
//!
//! The 5-bit values (0..=31) multiply the activations with `maddubs`; the
//! `-16` offset is `16 * sum(a)`, shared by every row. Two blocks per step,
//! laid out as in Q4_0; a last odd block goes through the generic kernel.

use super::avx2::*;
use crate::q5_0::{vec_dot_q5_0_q8_0_generic, BlockQ5_0};
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ5_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let ones = _mm256_set1_epi16(1);
    let sixteen = _mm256_set1_epi8(16);
    let mut acc = [_mm256_setzero_ps(); R];
    for p in 0..n / 2 {
        let (a0, a1) = (&a[2 * p], &a[2 * p + 1]);
        let (alo, ahi) = act_pair(&a0.qs, &a1.qs);
        let off = _mm256_madd_epi16(
            _mm256_add_epi16(_mm256_maddubs_epi16(sixteen, alo), _mm256_maddubs_epi16(sixteen, ahi)),
            ones,
        );
        let da = f16x2_halves(a0.d, a1.d);
        for r in 0..R {
            let (w0, w1) = (&w[r][2 * p], &w[r][2 * p + 1]);
            prefetch_ahead(w0, PREFETCH);
            let (lo, hi) = nibbles_pair(&w0.qs, &w1.qs);
            let (blo, bhi) = bit4_pair(&w0.qh, &w1.qh);
            let (lo, hi) = (_mm256_or_si256(lo, blo), _mm256_or_si256(hi, bhi));
            // Unsigned 0..=31 times -127..=127: the products are summed in i32.
            let p32 = _mm256_add_epi32(
                _mm256_madd_epi16(_mm256_maddubs_epi16(lo, alo), ones),
                _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ahi), ones),
            );
            let d = _mm256_mul_ps(f16x2_halves(w0.d, w1.d), da);
            acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(p32, off)), acc[r]);
        }
    }
    let mut out = hsum_rows(acc);
    if n % 2 == 1 {
        for r in 0..R {
            out[r] += vec_dot_q5_0_q8_0_generic(&w[r][n - 1..], &a[n - 1..]);
        }
    }
    out
}

/// Q5_0 weights · Q8_0 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_0_q8_0_avx2(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    dot_rows([w], a)[0]
}

/// Four Q5_0 weight rows · one Q8_0 activation row.
///
/// # Safety
/// As [`vec_dot_q5_0_q8_0_avx2`], for every row.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q5_0_q8_0_avx2(w: [&[BlockQ5_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    dot_rows(w, a)
}
