//! Q5_0 · Q8_0 with AVX2, in ggml's x86 float order.
//!
//! As Q4_0 (one vector per block in ggml's lane layout, `fma(d_w*d_a, sum_l,
//! acc_l)` per block, ggml's `hsum_float_8`: bit-identical to llama.cpp's
//! AVX2 `ggml_vec_dot_q5_0_q8_0`, and to its tinyBLAS prompt path, whose
//! per-output order is the same), with the fifth bits spread from `qh` to
//! bytes: the values (0..=31) multiply the activations with `maddubs` and
//! the `-16` offset is `16 * sum(a)` per pair of values. Four rows share each
//! activation block, its offsets and one conversion of their scales; in
//! [`gemm_q5_0_q8_0_avx2`] (prompt batches) each unpacked weight block also
//! serves two activation rows.

use super::avx2::*;
use crate::q5_0::BlockQ5_0;
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

/// Scale `d` of block `i` of each row (a plain loop, see [`trim`]).
#[inline(always)]
fn scales<const R: usize>(w: &[&[BlockQ5_0]; R], i: usize) -> [half::f16; R] {
    let mut out = [half::f16::ZERO; R];
    for r in 0..R {
        out[r] = w[r][i].d;
    }
    out
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ5_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
    let n = a.len();
    let w = trim(w, n);
    let ones = _mm256_set1_epi16(1);
    let sixteen = _mm256_set1_epi8(16);
    let mut acc = [_mm256_setzero_ps(); R];
    for (i, ab) in a.iter().enumerate() {
        let qa = load32(&ab.qs);
        // |pair sums| <= 16*127*2, and 31*127*2 below: the i16 difference is exact.
        let off = _mm256_maddubs_epi16(sixteen, qa);
        let d = _mm256_mul_ps(f16_lanes(scales(&w, i)), _mm256_set1_ps(f16_to_f32(ab.d)));
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

/// [`dot_rows`] for two activation rows at once: `out[c][r]` is
/// bit-identical to `dot_rows(w, a[c])[r]` (same lane sums, same scale
/// products `d_w * d_a`, same FMA chains and reduction); the weight values
/// are unpacked once for both.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows_pair<const R: usize>(w: [&[BlockQ5_0]; R], a: [&[BlockQ8_0]; 2]) -> [[f32; R]; 2] {
    const { assert!(R <= 4) };
    let n = a[0].len();
    let (a0, a1) = (&a[0][..n], &a[1][..n]);
    let w = trim(w, n);
    let ones = _mm256_set1_epi16(1);
    let sixteen = _mm256_set1_epi8(16);
    let mut acc0 = [_mm256_setzero_ps(); R];
    let mut acc1 = [_mm256_setzero_ps(); R];
    for i in 0..n {
        let (qa0, qa1) = (load32(&a0[i].qs), load32(&a1[i].qs));
        let (off0, off1) = (_mm256_maddubs_epi16(sixteen, qa0), _mm256_maddubs_epi16(sixteen, qa1));
        let dw = f16_lanes(scales(&w, i));
        let d0 = _mm256_mul_ps(dw, _mm256_set1_ps(f16_to_f32(a0[i].d)));
        let d1 = _mm256_mul_ps(dw, _mm256_set1_ps(f16_to_f32(a1[i].d)));
        for r in 0..R {
            let wb = &w[r][i];
            let q = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
            let p0 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qa0), off0);
            acc0[r] = _mm256_fmadd_ps(lane(d0, r), _mm256_cvtepi32_ps(_mm256_madd_epi16(p0, ones)), acc0[r]);
            let p1 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, qa1), off1);
            acc1[r] = _mm256_fmadd_ps(lane(d1, r), _mm256_cvtepi32_ps(_mm256_madd_epi16(p1, ones)), acc1[r]);
        }
    }
    [hsum_rows(acc0), hsum_rows(acc1)]
}

pairs_gemm!(
    /// Q5_0 matrix · several Q8_0 activation rows ([`crate::kernels::GemmFn`]):
    /// activation rows in pairs, weight rows in fours ([`dot_rows_pair`]).
    /// Every output equals [`gemv_q5_0_q8_0_avx2`]'s.
    gemm_q5_0_q8_0_avx2,
    BlockQ5_0,
    BlockQ8_0,
    gemv_q5_0_q8_0_avx2
);
