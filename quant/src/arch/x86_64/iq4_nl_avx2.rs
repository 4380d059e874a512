//! IQ4_NL · Q8_0 with AVX2, one row or four rows per pass over the activation.
//!
//! The nibbles index the non-linear table with one byte shuffle. The table's
//! values lie in -127..=113 (never -128), so the signs can move onto them:
//! `|a|` is computed once per activation block and `sign(q, a)` per row, then
//! one `maddubs` per vector. Two blocks per step, laid out as in Q4_0; a last
//! odd block goes through the generic kernel.

use super::avx2::*;
use crate::iq4_nl::{vec_dot_iq4_nl_q8_0_generic, BlockIq4Nl};
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

/// ggml's `kvalues_iq4nl`: the value each 4-bit index stands for.
const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockIq4Nl]; R], a: &[BlockQ8_0]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let ones = _mm256_set1_epi16(1);
    let lut = _mm256_broadcastsi128_si256(load16(&KVALUES_IQ4NL));
    let mut acc = [_mm256_setzero_ps(); R];
    for p in 0..n / 2 {
        let (a0, a1) = (&a[2 * p], &a[2 * p + 1]);
        let (alo, ahi) = act_pair(&a0.qs, &a1.qs);
        let (ulo, uhi) = (_mm256_sign_epi8(alo, alo), _mm256_sign_epi8(ahi, ahi));
        let da = f16x2_halves(a0.d, a1.d);
        for r in 0..R {
            let (w0, w1) = (&w[r][2 * p], &w[r][2 * p + 1]);
            prefetch_ahead(w0, PREFETCH);
            let (lo, hi) = nibbles_pair(&w0.qs, &w1.qs);
            let qlo = _mm256_sign_epi8(_mm256_shuffle_epi8(lut, lo), alo);
            let qhi = _mm256_sign_epi8(_mm256_shuffle_epi8(lut, hi), ahi);
            // |a| <= 127 times |q| <= 127: pair sums <= 32258, exact in i16.
            let p32 = _mm256_add_epi32(
                _mm256_madd_epi16(_mm256_maddubs_epi16(ulo, qlo), ones),
                _mm256_madd_epi16(_mm256_maddubs_epi16(uhi, qhi), ones),
            );
            let d = _mm256_mul_ps(f16x2_halves(w0.d, w1.d), da);
            acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p32), acc[r]);
        }
    }
    let mut out = hsum_rows(acc);
    if n % 2 == 1 {
        for r in 0..R {
            out[r] += vec_dot_iq4_nl_q8_0_generic(&w[r][n - 1..], &a[n - 1..]);
        }
    }
    out
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
