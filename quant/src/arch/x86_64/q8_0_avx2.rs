//! Q8_0 with AVX2: the Q8_0 · Q8_0 dot product (one row, or two rows per pass
//! over the activation in `gemv`) and the f32 → Q8_0 activation quantizer.
//!
//! Two rows per pass measured best for Q8_0 (its per-block activation work
//! is small, and every extra row is another memory stream: four rows lost to
//! two on 576- and 2048-wide rows).

use super::avx2::*;
use crate::q8_0::{vec_dot_q8_0_q8_0_generic, BlockQ8_0};
use core::arch::x86_64::*;
use half::f16;

/// Lane `k` of `v` in all eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn lane(v: __m256, k: usize) -> __m256 {
    _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(k as i32))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ8_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
    let n = a.len();
    let w = w.map(|r| &r[..n]);
    let mut acc = [_mm256_setzero_ps(); R];
    // Two blocks per step, so that one conversion yields the scales of
    // both blocks of every row.
    for p in 0..n / 2 {
        let (a0, a1) = (&a[2 * p], &a[2 * p + 1]);
        let (qa0, qa1) = (load32(&a0.qs), load32(&a1.qs));
        let d = _mm256_mul_ps(f16_rows(w.map(|r| [r[2 * p].d, r[2 * p + 1].d])), f16x2_repeat(a0.d, a1.d));
        for r in 0..R {
            let (w0, w1) = (&w[r][2 * p], &w[r][2 * p + 1]);
            prefetch_ahead(w0, PREFETCH);
            let p0 = _mm256_cvtepi32_ps(dot_i8(load32(&w0.qs), qa0));
            let p1 = _mm256_cvtepi32_ps(dot_i8(load32(&w1.qs), qa1));
            acc[r] = _mm256_fmadd_ps(lane(d, 2 * r), p0, acc[r]);
            acc[r] = _mm256_fmadd_ps(lane(d, 2 * r + 1), p1, acc[r]);
        }
    }
    let mut out = hsum_rows(acc);
    if n % 2 == 1 {
        for r in 0..R {
            out[r] += vec_dot_q8_0_q8_0_generic(&w[r][n - 1..], &a[n - 1..]);
        }
    }
    out
}

/// Q8_0 weights · Q8_0 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q8_0_q8_0_avx2(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    dot_rows([w], a)[0]
}

/// Q8_0 matrix · Q8_0 activation row: `out.len()` rows of `row_bytes` bytes,
/// two rows per pass over the activation (the rest singly), with the row
/// loop inside the AVX2 code so the kernel inlines into it.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q8_0_q8_0_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let a: &[BlockQ8_0] = bytemuck::cast_slice(a);
    let w: &[BlockQ8_0] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ8_0>();
    let row = |r: usize| &w[r * per_row..(r + 1) * per_row];
    let mut r = 0;
    while r + 2 <= out.len() {
        let v = dot_rows([row(r), row(r + 1)], a);
        out[r..r + 2].copy_from_slice(&v);
        r += 2;
    }
    if r < out.len() {
        out[r] = dot_rows([row(r)], a)[0];
    }
}

/// The largest |x| of 32 values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn amax32(v: &[__m256; 4]) -> f32 {
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let m = _mm256_max_ps(_mm256_and_ps(v[0], abs), _mm256_and_ps(v[1], abs));
    let m = _mm256_max_ps(m, _mm256_max_ps(_mm256_and_ps(v[2], abs), _mm256_and_ps(v[3], abs)));
    let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)))
}

/// Loads 32 f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load_f32x32(x: &[f32; 32]) -> [__m256; 4] {
    // SAFETY: `x` is 32 readable f32; `loadu` needs no alignment.
    unsafe { [0, 8, 16, 24].map(|o| _mm256_loadu_ps(x.as_ptr().add(o))) }
}

/// `roundf` (half away from zero) of every lane, as i32: exact for |v| < 2^31.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn round_away_epi32(v: __m256) -> __m256i {
    let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
    let frac = _mm256_sub_ps(v, t); // exact
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let up = _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_and_ps(frac, abs), _mm256_set1_ps(0.5));
    // ±1 with the sign of v where the fraction is at least one half.
    let one = _mm256_or_ps(_mm256_set1_ps(1.0), _mm256_andnot_ps(abs, v));
    _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)))
}

/// Packs 4 × 8 i32 (each in -128..=127) into 32 i8 in lane order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn pack_i32x32(i: [__m256i; 4]) -> __m256i {
    let a = _mm256_packs_epi32(i[0], i[1]); // 0..4 8..12 | 4..8 12..16
    let b = _mm256_packs_epi32(i[2], i[3]); // 16..20 24..28 | 20..24 28..32
    let c = _mm256_packs_epi16(a, b); // 0..4 8..12 16..20 24..28 | 4..8 12..16 20..24 28..32
    _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// Stores 32 i8.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn store_i8x32(out: &mut [i8; 32], v: __m256i) {
    // SAFETY: `out` is 32 writable bytes; `storeu` needs no alignment.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

/// One block of ggml's reference Q8_0 rounding: `d = amax / 127`,
/// `q = roundf(x * (1 / d))`. Returns the quantized lanes and `d`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn quantize_block(x: &[f32; 32]) -> ([__m256i; 4], f32) {
    let v = load_f32x32(x);
    let d = amax32(&v) / 127.0;
    let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
    (v.map(|v| round_away_epi32(_mm256_mul_ps(v, id))), d)
}

/// f32 → Q8_0, byte-identical to ggml's `quantize_row_q8_0_ref`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `x.len() == 32 * out.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8_0_avx2(x: &[f32], out: &mut [BlockQ8_0]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.iter_mut()) {
        let (q, d) = quantize_block(xb.try_into().unwrap());
        ob.d = f16::from_f32(d);
        store_i8x32(&mut ob.qs, pack_i32x32(q));
    }
}
