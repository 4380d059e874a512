//! Q4_0 · Q8_0 with AVX2, one row or four rows per pass over the activation.
//!
//! The nibbles (0..=15) multiply the signed activations directly with
//! `maddubs`; the `-8` offset is `8 * sum(a)`, computed once per activation
//! block and shared by every row.

use super::avx2::*;
use crate::q4_0::BlockQ4_0;
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ4_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        let off = _mm256_maddubs_epi16(_mm256_set1_epi8(8), qa);
        let da = f16_to_f32(ab.d);
        for r in 0..R {
            let wb = &w[r][i];
            // |pairs| <= 15*127*2 and 8*127*2: the i16 difference is exact.
            let p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles32(&wb.qs), qa), off);
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(wb.d) * da), p, acc[r]);
        }
    }
    hsum_rows(acc)
}

/// Q4_0 weights · Q8_0 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_0_q8_0_avx2(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    dot_rows([w], a)[0]
}

/// Four Q4_0 weight rows · one Q8_0 activation row.
///
/// # Safety
/// As [`vec_dot_q4_0_q8_0_avx2`], for every row.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q4_0_q8_0_avx2(w: [&[BlockQ4_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    dot_rows(w, a)
}
