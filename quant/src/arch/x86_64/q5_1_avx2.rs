//! Q5_1 · Q8_1 with AVX2, one row or four rows per pass over the activation:
//! `d*da * sum(q*a) + m * s` as for Q4_1, with 5-bit `q`.

use super::avx2::*;
use crate::q5_1::BlockQ5_1;
use crate::q8_1::BlockQ8_1;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ5_1]; R], a: &[BlockQ8_1]) -> [f32; R] {
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
            let q = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
            let p = _mm256_cvtepi32_ps(dot_u8i8(q, qa));
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

/// Q5_1 weights · Q8_1 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_1_q8_1_avx2(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    dot_rows([w], a)[0]
}

/// Four Q5_1 weight rows · one Q8_1 activation row.
///
/// # Safety
/// As [`vec_dot_q5_1_q8_1_avx2`], for every row.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot4_q5_1_q8_1_avx2(w: [&[BlockQ5_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    dot_rows(w, a)
}
