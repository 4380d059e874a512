//! F32, F16 and BF16 dot products with AVX2 + FMA (+ F16C for f16): 32 values
//! per step in four independent accumulators, the tail (fewer than 32
//! values) through the generic code.

use super::avx2::hsum_ps;
use crate::floats;
use core::arch::x86_64::*;
use half::{bf16, f16};

/// Four accumulators summed pairwise, then across lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce(acc: [__m256; 4]) -> f32 {
    hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])))
}

/// f32 · f32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w.len() == a.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_f32_avx2(w: &[f32], a: &[f32]) -> f32 {
    let n = w.len().min(a.len());
    let body = n / 32 * 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    for (wc, ac) in w[..body].chunks_exact(32).zip(a[..body].chunks_exact(32)) {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: both chunks hold 32 f32, so lanes 8k..8k+8 are in bounds; loadu needs no alignment.
            let (x, y) = unsafe { (_mm256_loadu_ps(wc.as_ptr().add(8 * k)), _mm256_loadu_ps(ac.as_ptr().add(8 * k))) };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
    }
    reduce(acc) + floats::vec_dot_f32_generic(&w[body..n], &a[body..n])
}

/// 8 f16 at `p[o..o + 8]` as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_f16x8(p: &[f16], o: usize) -> __m256 {
    let s = &p[o..o + 8];
    // SAFETY: `s` is 8 f16 = 16 readable bytes; loadu needs no alignment.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(s.as_ptr().cast()) })
}

/// f16 · f16, products and sums in f32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w.len() == a.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_f16_avx2(w: &[f16], a: &[f16]) -> f32 {
    let n = w.len().min(a.len());
    let body = n / 32 * 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut o = 0;
    while o < body {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_fmadd_ps(load_f16x8(w, o + 8 * k), load_f16x8(a, o + 8 * k), *acc);
        }
        o += 32;
    }
    reduce(acc) + floats::vec_dot_f16_generic(&w[body..n], &a[body..n])
}

/// 8 bf16 at `p[o..o + 8]` as f32 (a bf16 is the top half of an f32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_bf16x8(p: &[bf16], o: usize) -> __m256 {
    let s = &p[o..o + 8];
    // SAFETY: `s` is 8 bf16 = 16 readable bytes; loadu needs no alignment.
    let h = unsafe { _mm_loadu_si128(s.as_ptr().cast()) };
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
}

/// bf16 · bf16, products and sums in f32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w.len() == a.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_bf16_avx2(w: &[bf16], a: &[bf16]) -> f32 {
    let n = w.len().min(a.len());
    let body = n / 32 * 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut o = 0;
    while o < body {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_fmadd_ps(load_bf16x8(w, o + 8 * k), load_bf16x8(a, o + 8 * k), *acc);
        }
        o += 32;
    }
    reduce(acc) + floats::vec_dot_bf16_generic(&w[body..n], &a[body..n])
}
