//! Q5_1 · Q8_1 with AVX2, in ggml's x86 float order.
//!
//! `d*da * sum(q*a) + m * s` as for Q4_1 (one vector per block in ggml's lane
//! layout, `fma(d_w*d_a, sum_l, acc_l)` per block, ggml's `hsum_float_8`,
//! plus the `m * s` terms as one fused multiply-add chain: bit-identical to
//! llama.cpp's AVX2 `ggml_vec_dot_q5_1_q8_1`), with 5-bit `q` (the fifth bits
//! spread from `qh` to bytes). Four rows share each activation block and one
//! conversion of their scales and minimums.

use super::avx2::*;
use crate::q5_1::BlockQ5_1;
use crate::q8_1::BlockQ8_1;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ5_1]; R], a: &[BlockQ8_1]) -> [f32; R] {
    const { assert!(R <= 4) };
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    // Lane 2r: row r's `m * s` chain (lanes 2r+1 stay 0).
    let mut acc_m = _mm256_setzero_ps();
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        // [d0, m0, d1, m1, ..] of the R rows' block i.
        let dm = f16_rows(w.map(|r| [r[i].d, r[i].m]));
        let s = f16_to_f32(ab.s);
        let sa = _mm256_setr_ps(s, 0.0, s, 0.0, s, 0.0, s, 0.0);
        // m * s with one rounding, as GCC contracts ggml's `summs += m * s`.
        acc_m = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dm, _mm256_setr_epi32(1, 1, 3, 3, 5, 5, 7, 7)), sa, acc_m);
        let d = _mm256_mul_ps(dm, _mm256_set1_ps(f16_to_f32(ab.d)));
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_ahead(wb, PREFETCH);
            let q = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
            // 31*127*2 per pair: exact in i16.
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(q, qa), ones));
            acc[r] = _mm256_fmadd_ps(lane(d, 2 * r), p, acc[r]);
        }
    }
    let mut m = [0.0f32; 8];
    // SAFETY: `m` is 8 writable f32; storeu needs no alignment.
    unsafe { _mm256_storeu_ps(m.as_mut_ptr(), acc_m) };
    let mut out = hsum_rows(acc);
    for (r, o) in out.iter_mut().enumerate() {
        *o += m[2 * r];
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

rows4_gemv!(
    /// Q5_1 matrix · Q8_1 activation row: `out.len()` rows of `row_bytes` bytes,
    /// four rows per pass over the activation (the rest singly).
    gemv_q5_1_q8_1_avx2,
    BlockQ5_1,
    BlockQ8_1
);
