//! Q5_0 · Q8_0 with AVX2, in ggml's x86 float order.
//!
//! As Q4_0 (one vector per block in ggml's lane layout, `fma(d_w*d_a, sum_l,
//! acc_l)` per block, ggml's `hsum_float_8`: bit-identical to llama.cpp's
//! AVX2 `ggml_vec_dot_q5_0_q8_0`), with the fifth bits spread from `qh` to
//! bytes: the values (0..=31) multiply the activations with `maddubs` and
//! the `-16` offset is `16 * sum(a)` per pair of values. Four rows share each
//! activation block, its offsets and one conversion of their scales.

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
    let sixteen = _mm256_set1_epi8(16);
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        // |pair sums| <= 16*127*2, and 31*127*2 below: the i16 difference is exact.
        let off = _mm256_maddubs_epi16(sixteen, qa);
        let d = _mm256_mul_ps(f16_lanes(w.map(|r| r[i].d)), _mm256_set1_ps(f16_to_f32(ab.d)));
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_ahead(wb, PREFETCH);
            let q = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
            let p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qa), off);
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
            acc[r] = _mm256_fmadd_ps(lane(d, r), p, acc[r]);
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

rows4_gemv!(
    /// Q5_0 matrix · Q8_0 activation row: `out.len()` rows of `row_bytes` bytes,
    /// four rows per pass over the activation (the rest singly).
    gemv_q5_0_q8_0_avx2,
    BlockQ5_0,
    BlockQ8_0
);
