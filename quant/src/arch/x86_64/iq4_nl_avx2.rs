//! IQ4_NL · Q8_0 with AVX2: the nibbles index the non-linear table with one
//! byte shuffle, then it is a signed int8 dot product as for Q8_0.

use super::avx2::*;
use crate::iq4_nl::BlockIq4Nl;
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

/// ggml's `kvalues_iq4nl`: the value each 4-bit index stands for.
pub(super) const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockIq4Nl]; R], a: &[BlockQ8_0]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let lut = _mm256_broadcastsi128_si256(load16(&KVALUES_IQ4NL));
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        let da = f16_to_f32(ab.d);
        for r in 0..R {
            let wb = &w[r][i];
            let q = _mm256_shuffle_epi8(lut, nibbles32(&wb.qs));
            let p = _mm256_cvtepi32_ps(dot_i8(q, qa));
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(wb.d) * da), p, acc[r]);
        }
    }
    hsum_rows(acc)
}

/// IQ4_NL weights · Q8_0 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_iq4_nl_q8_0_avx2(w: &[BlockIq4Nl], a: &[BlockQ8_0]) -> f32 {
    dot_rows([w], a)[0]
}

/// Four IQ4_NL weight rows · one Q8_0 activation row.
///
/// # Safety
/// As [`vec_dot_iq4_nl_q8_0_avx2`], for every row.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_iq4_nl_q8_0_avx2(w: [&[BlockIq4Nl]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    dot_rows(w, a)
}
