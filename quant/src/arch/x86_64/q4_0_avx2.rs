//! Q4_0 · Q8_0 with AVX2, in ggml's x86 float order.
//!
//! Each block is one vector in ggml's lane layout (low nibbles are values
//! 0..16, high nibbles 16..32; lane `l` holds the exact integer sum of
//! values `4l..4l+4`), accumulated per lane with `fma(d_w*d_a, sum_l,
//! acc_l)` block after block and reduced with ggml's `hsum_float_8`: the
//! result is bit-identical to llama.cpp's AVX2 `ggml_vec_dot_q4_0_q8_0`,
//! which the end-to-end tests against llama.cpp's greedy ids rely on.
//!
//! The nibbles (0..=15) multiply the signed activations directly with
//! `maddubs`; the `-8` offset is `8 * sum(a)` per pair of values (the same
//! integers as ggml's `(q - 8) * a`). Matrix products use `x8_avx2`
//! instead (llama.cpp repacks Q4_0 and runs another order there).

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
    let eight = _mm256_set1_epi8(8);
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        // |pair sums| <= 8*127*2, and 15*127*2 below: the i16 difference is exact.
        let off = _mm256_maddubs_epi16(eight, qa);
        // d_w * d_a, one rounding each, as ggml's `FP16_TO_FP32(x.d) * FP16_TO_FP32(y.d)`.
        let d = _mm256_mul_ps(f16_lanes(w.map(|r| r[i].d)), _mm256_set1_ps(f16_to_f32(ab.d)));
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_ahead(wb, PREFETCH);
            let p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles32(&wb.qs), qa), off);
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
            acc[r] = _mm256_fmadd_ps(lane(d, r), p, acc[r]);
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
