//! Q4_0 · Q8_0 with AVX2, one row or four rows per pass over the activation.
//!
//! Two blocks per step: one 256-bit load holds both blocks' nibbles, and the
//! activations are rearranged once per step (shared by every row) to meet
//! them. The nibbles (0..=15) multiply the signed activations directly with
//! `maddubs`; the `-8` offset is `8 * sum(a)`, also shared. A last odd block
//! goes through the generic kernel.

use super::avx2::*;
use crate::q4_0::{vec_dot_q4_0_q8_0_generic, BlockQ4_0};
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ4_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let ones = _mm256_set1_epi16(1);
    let eight = _mm256_set1_epi8(8);
    let mut acc = [_mm256_setzero_ps(); R];
    let pairs = n / 2;
    for p in 0..pairs {
        let (a0, a1) = (&a[2 * p], &a[2 * p + 1]);
        let (alo, ahi) = act_pair(&a0.qs, &a1.qs);
        // |pair sums| <= 8*127*2 each, 4064 for both halves: exact in i16.
        let off = _mm256_add_epi16(_mm256_maddubs_epi16(eight, alo), _mm256_maddubs_epi16(eight, ahi));
        let da = f16x2_halves(a0.d, a1.d);
        for r in 0..R {
            let (w0, w1) = (&w[r][2 * p], &w[r][2 * p + 1]);
            prefetch_ahead(w0, PREFETCH);
            let (lo, hi) = nibbles_pair(&w0.qs, &w1.qs);
            let p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
            let p32 = _mm256_madd_epi16(_mm256_sub_epi16(p16, off), ones);
            let d = _mm256_mul_ps(f16x2_halves(w0.d, w1.d), da);
            acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p32), acc[r]);
        }
    }
    let mut out = hsum_rows(acc);
    if n % 2 == 1 {
        for r in 0..R {
            out[r] += vec_dot_q4_0_q8_0_generic(&w[r][n - 1..], &a[n - 1..]);
        }
    }
    out
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
