//! Q5_0 · Q8_0 with AVX2, one row or four rows per pass over the activation.
//!
//! The 5-bit values (0..=31) multiply the activations with `maddubs`; the
//! `-16` offset is `16 * sum(a)`, computed once per activation block.

use super::avx2::*;
use crate::q5_0::BlockQ5_0;
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ5_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        let off = _mm256_maddubs_epi16(_mm256_set1_epi8(16), qa);
        let da = f16_to_f32(ab.d);
        for r in 0..R {
            let wb = &w[r][i];
            let q = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
            // |pairs| <= 31*128*2 and 16*127*2: the i16 difference is exact.
            let p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qa), off);
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(wb.d) * da), p, acc[r]);
        }
    }
    hsum_rows(acc)
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
