//! The attention's value accumulation in f16 arithmetic
//! ([`crate::attn::mads_f16_generic`]) with 512-bit AVX-512 F vectors.
//!
//! Below `len & !(F16_STEP - 1)` every value takes `acc = f16(v · s + acc)`
//! rounded once ([`crate::attn::fma_f16_once`], the `_mm512_fmadd_ph` of
//! llama.cpp's AVX512-FP16 reference build). The AVX2 kernel emulates that
//! single rounding with a two-sum and a round to odd, some twenty vector
//! instructions per eight values. AVX-512 F rounds a single addition in a
//! chosen direction (embedded rounding, 512-bit only), which gives the round
//! to odd directly: `v · s` is exact in f32 (two f16 values), the sum rounded
//! down and up are equal when it is exact (then the value rounded up, which
//! is also what round-to-nearest gives for a zero sum), and otherwise the
//! two neighbours of the exact sum, one of them odd; the odd one then rounds
//! to f16 as the single rounding would. About eight instructions per sixteen
//! values.

use super::floats_avx2::attn_mads_f16_avx2;
use crate::attn::{round_f16, F16_STEP};
use core::arch::x86_64::*;
use half::f16;

/// Sixteen f16 values of `v` from index `o`, as f32 (exact).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn load_f16x16(v: &[f16], o: usize) -> __m512 {
    let s = &v[o..o + 16];
    // SAFETY: `s` is 16 readable f16 (32 bytes); loadu needs no alignment.
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(s.as_ptr().cast()) })
}

/// Each lane rounded to the nearest f16 (ties to even), as f32.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn round_f16x16(x: __m512) -> __m512 {
    _mm512_cvtph_ps(_mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x))
}

/// Sixteen lanes of [`crate::attn::fma_f16_once`]: `f16(v · s + c)` rounded
/// once, for `v`, `s` and `c` holding f16 values.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn mad16_ph(c: __m512, v: __m512, sv: __m512) -> __m512 {
    let p = _mm512_mul_ps(v, sv); // exact: two 11-bit significands
    let down = _mm512_add_round_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(p, c);
    let up = _mm512_add_round_ps::<{ _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC }>(p, c);
    // Inexact (or NaN, where both are the same NaN): take the odd neighbour.
    let inexact = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(down, up);
    let down_odd = _mm512_test_epi32_mask(_mm512_castps_si512(down), _mm512_set1_epi32(1));
    round_f16x16(_mm512_mask_blend_ps(inexact & down_odd, up, down))
}

/// Values `col..col + 16W` of the accumulator through every position of
/// [`attn_mads_f16_avx512`], kept in registers: per position the rescaling
/// by `f16(ms[j])` (only where `ms[j]` is not 1.0), rounded to f16, then
/// [`mad16_ph`] with the row and `f16(vs[j])`, as the generic code's
/// per-value sequence.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn mads_block_ph<const W: usize>(acc: &mut [f32], rows: &[&[f16]], col: usize, ms: &[f32], vs: &[f32]) {
    let mut a = [_mm512_setzero_ps(); W];
    for (k, x) in a.iter_mut().enumerate() {
        let s = &acc[16 * k..16 * k + 16];
        // SAFETY: `s` is 16 f32; loadu needs no alignment.
        *x = unsafe { _mm512_loadu_ps(s.as_ptr()) };
    }
    for ((v, &m), &s) in rows.iter().zip(ms).zip(vs) {
        if m != 1.0 {
            let mv = _mm512_set1_ps(round_f16(m));
            for x in a.iter_mut() {
                *x = round_f16x16(_mm512_mul_ps(*x, mv));
            }
        }
        let sv = _mm512_set1_ps(round_f16(s));
        for (k, x) in a.iter_mut().enumerate() {
            *x = mad16_ph(*x, load_f16x16(v, col + 16 * k), sv);
        }
    }
    for (k, x) in a.iter().enumerate() {
        let d = &mut acc[16 * k..16 * k + 16];
        // SAFETY: `d` is 16 writable f32; storeu needs no alignment.
        unsafe { _mm512_storeu_ps(d.as_mut_ptr(), *x) };
    }
}

/// [`crate::attn::mads_f16_generic`] with AVX-512 F, bit-identical, for
/// lengths that are a multiple of [`F16_STEP`] (every value in the f16
/// arithmetic: head sizes 128 and 256), 128 values at a time in registers;
/// other lengths go to [`attn_mads_f16_avx2`].
///
/// Gemma 3 270M (256-value heads) tg64 -t 1 on the Zen 4 VM: see
/// `plug_avx512_measured`.
///
/// # Safety
/// The CPU must support AVX-512 F, AVX2, FMA and F16C; `ms` and `vs` have
/// `rows.len()` values and every row `acc.len()`.
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
pub(crate) unsafe fn attn_mads_f16_avx512(acc: &mut [f32], rows: &[&[f16]], ms: &[f32], vs: &[f32]) {
    let n = acc.len();
    if n == 0 || !n.is_multiple_of(F16_STEP) {
        // SAFETY: the caller's contract, which is the AVX2 kernel's.
        return unsafe { attn_mads_f16_avx2(acc, rows, ms, vs) };
    }
    const { assert!(F16_STEP == 128) };
    for c in (0..n).step_by(128) {
        mads_block_ph::<8>(&mut acc[c..c + 128], rows, c, ms, vs);
    }
}
