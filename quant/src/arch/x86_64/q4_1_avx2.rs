//! Q4_1 · Q8_1 with AVX2, in ggml's x86 float order.
//!
//! `sum((d*q + m) * da*a) = d*da * sum(q*a) + m * s`, with `s = da * sum(a)`
//! stored in the Q8_1 block. Each block is one vector in ggml's lane layout
//! (low nibbles are values 0..16, high nibbles 16..32; lane `l` holds the
//! exact integer sum of values `4l..4l+4`), accumulated per lane with
//! `fma(d*da, sum_l, acc_l)` block after block, reduced with ggml's
//! `hsum_float_8`, plus the `m * s` terms as one fused multiply-add chain:
//! the result is bit-identical to llama.cpp's AVX2 `ggml_vec_dot_q4_1_q8_1`,
//! which the end-to-end tests against llama.cpp's greedy ids rely on. Four
//! rows share each activation block and one f16 → f32 conversion of their
//! scales and minimums.

use super::avx2::*;
use crate::q4_1::BlockQ4_1;
use crate::q8_1::BlockQ8_1;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ4_1]; R], a: &[BlockQ8_1]) -> [f32; R] {
    const { assert!(R <= 4) };
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    // Lane 2r: row r's `m * s` chain (lanes 2r+1 stay 0).
    let mut acc_m = _mm256_setzero_ps();
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        let da = f16_to_f32(ab.d);
        // [d0, m0, d1, m1, ..] of the R rows' block i.
        let dm = f16_rows(w.map(|r| [r[i].d, r[i].m]));
        let sa =
            _mm256_setr_ps(f16_to_f32(ab.s), 0.0, f16_to_f32(ab.s), 0.0, f16_to_f32(ab.s), 0.0, f16_to_f32(ab.s), 0.0);
        // m * s with one rounding, as GCC contracts `summs += m * s`.
        acc_m = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(dm, _mm256_setr_epi32(1, 1, 3, 3, 5, 5, 7, 7)), sa, acc_m);
        // d_w * d_a, each rounded once, as ggml's `_mm256_mul_ps(d0v, d1v)`.
        let d = _mm256_mul_ps(dm, _mm256_set1_ps(da));
        for r in 0..R {
            let wb = &w[r][i];
            prefetch_ahead(wb, PREFETCH);
            let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(nibbles32(&wb.qs), qa), ones));
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

/// Q4_1 weights · Q8_1 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q4_1_q8_1_avx2(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    dot_rows([w], a)[0]
}

/// Q4_1 matrix · Q8_1 activation row: `out.len()` rows of `row_bytes` bytes,
/// four rows per pass over the activation (the rest singly).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q4_1_q8_1_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let a: &[BlockQ8_1] = bytemuck::cast_slice(a);
    let w: &[BlockQ4_1] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ4_1>();
    let row = |r: usize| &w[r * per_row..(r + 1) * per_row];
    let mut r = 0;
    while r + 4 <= out.len() {
        let v = dot_rows([row(r), row(r + 1), row(r + 2), row(r + 3)], a);
        out[r..r + 4].copy_from_slice(&v);
        r += 4;
    }
    while r < out.len() {
        out[r] = dot_rows([row(r)], a)[0];
        r += 1;
    }
}
