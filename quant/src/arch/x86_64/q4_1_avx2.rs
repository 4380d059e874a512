//! Q4_1 · Q8_1 with AVX2, one row or four rows per pass over the activation.
//!
//! `sum((d*q + m) * da*a) = d*da * sum(q*a) + m * s`, with `s = da * sum(a)`
//! stored in the Q8_1 block.

use super::avx2::*;
use crate::q4_1::BlockQ4_1;
use crate::q8_1::BlockQ8_1;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ4_1]; R], a: &[BlockQ8_1]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut mins = [0.0f32; R];
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        let da = f16_to_f32(ab.d);
        let sa = f16_to_f32(ab.s);
        for r in 0..R {
            let wb = &w[r][i];
            let p = _mm256_cvtepi32_ps(dot_u8i8(nibbles32(&wb.qs), qa));
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(wb.d) * da), p, acc[r]);
            mins[r] += f16_to_f32(wb.m) * sa;
        }
    }
    let mut out = hsum_rows(acc);
    for (o, m) in out.iter_mut().zip(mins) {
        *o += m;
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
