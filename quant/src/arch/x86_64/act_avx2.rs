//! [`crate::act`] with AVX2 + FMA: eight lanes of [`crate::act::expf_ggml`]
//! per step, bit-identical to it, and the tails (fewer than 8 values)
//! through the generic code.
//!
//! [`expf8`] is the building block other AVX2 kernels (a softmax) can use.

use crate::act::{self, consts};
use core::arch::x86_64::*;

/// A constant from its bit pattern, in every lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn splat(bits: u32) -> __m256 {
    _mm256_castsi256_ps(_mm256_set1_epi32(bits as i32))
}

/// [`act::expf_ggml`] of eight lanes, bit for bit (NaNs included).
///
/// The scalar code's `fma` goes through f64; here each is an FMA instruction,
/// the same single rounding (the exhaustive test in `tests/act_vs_generic.rs`
/// checks every f32). `scalef(j, n)`, rounded once, is two multiplies: by
/// `2^(n - m)`, exact because the product stays a normal f32, then by `2^m`,
/// the one rounding (to a subnormal, zero or infinity where the result goes
/// there), with `m = 0` for `n` in -126..=127, `-100` below and `96` above.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn expf8(x: __m256) -> __m256 {
    let r = splat(consts::SHIFT);
    let z = _mm256_fmadd_ps(x, splat(consts::INV_LN2), r);
    let n = _mm256_sub_ps(z, r);
    // fma(-n, c, y) == -(n * c) + y exactly: negation is exact.
    let b = _mm256_fnmadd_ps(n, splat(consts::LN2_LO), _mm256_fnmadd_ps(n, splat(consts::LN2_HI), x));
    let u = _mm256_mul_ps(b, b);
    let p = |i: usize| splat(consts::P[i]);
    let j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(p(0), b, p(1)), u, _mm256_fmadd_ps(p(2), b, p(3))),
        u,
        _mm256_fmadd_ps(p(4), b, _mm256_set1_ps(1.0)),
    );
    // n is an integer in every lane that the scale below decides (|n| <= 192).
    let ni = _mm256_cvtps_epi32(n);
    let lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(-126), ni);
    let hi = _mm256_cmpgt_epi32(ni, _mm256_set1_epi32(127));
    let m = _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi32(-100)), _mm256_and_si256(hi, _mm256_set1_epi32(96)));
    let bias = _mm256_set1_epi32(127);
    let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_sub_epi32(ni, m), bias)));
    let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(m, bias)));
    let scaled = _mm256_mul_ps(_mm256_mul_ps(j, s1), s2);
    // |n| > 192: 0 or infinity by the sign of n; NaN: n itself.
    let abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
    let big = _mm256_cmp_ps::<_CMP_GT_OQ>(abs_n, _mm256_set1_ps(192.0));
    let neg = _mm256_cmp_ps::<_CMP_LE_OQ>(n, _mm256_setzero_ps());
    let ends = _mm256_andnot_ps(neg, _mm256_set1_ps(f32::INFINITY));
    let out = _mm256_blendv_ps(scaled, ends, big);
    _mm256_blendv_ps(out, n, _mm256_cmp_ps::<_CMP_UNORD_Q>(n, n))
}

/// [`act::silu`] of eight lanes: `x / (1 + expf8(0 - x))`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn silu8(x: __m256) -> __m256 {
    let e = expf8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e))
}

/// [`act::exp_generic`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn exp_avx2(x: &mut [f32]) {
    let body = x.len() / 8 * 8;
    for c in x[..body].chunks_exact_mut(8) {
        // SAFETY: `c` holds 8 f32; loadu/storeu need no alignment.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), expf8(_mm256_loadu_ps(c.as_ptr()))) };
    }
    act::exp_generic(&mut x[body..]);
}

/// [`act::silu_generic`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn silu_avx2(x: &mut [f32]) {
    let body = x.len() / 8 * 8;
    for c in x[..body].chunks_exact_mut(8) {
        // SAFETY: `c` holds 8 f32; loadu/storeu need no alignment.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), silu8(_mm256_loadu_ps(c.as_ptr()))) };
    }
    act::silu_generic(&mut x[body..]);
}

/// [`act::geglu_generic`], eight values at a time: F16C rounds them to f16
/// (to nearest even, as `half` does), the table is read lane by lane (there
/// is no 16-bit gather), and F16C widens the results.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `table` holds 65536 entries.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn geglu_avx2(gate: &mut [f32], up: &[f32], table: &[u16]) {
    let n = gate.len().min(up.len());
    let body = n / 8 * 8;
    let (lo, hi) = (_mm256_set1_ps(-10.0), _mm256_set1_ps(10.0));
    for (g, u) in gate[..body].chunks_exact_mut(8).zip(up[..body].chunks_exact(8)) {
        // SAFETY: `g` and `u` hold 8 f32 each and `h`, `t` 8 u16; the
        // unaligned loads and stores need no alignment.
        unsafe {
            let x = _mm256_loadu_ps(g.as_ptr());
            let uv = _mm256_loadu_ps(u.as_ptr());
            let mut h = [0u16; 8];
            _mm_storeu_si128(h.as_mut_ptr().cast(), _mm256_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(x));
            let t: [u16; 8] = core::array::from_fn(|k| table[h[k] as usize]);
            let gelu = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(t.as_ptr().cast())), uv);
            // Ordered compares: a NaN takes the table's value, as in the generic code.
            let v = _mm256_blendv_ps(gelu, _mm256_mul_ps(x, uv), _mm256_cmp_ps::<_CMP_GE_OQ>(x, hi));
            let v = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(x, lo), v);
            _mm256_storeu_ps(g.as_mut_ptr(), v);
        }
    }
    act::geglu_generic(&mut gate[body..n], &up[body..n], table);
}

/// [`act::swiglu_generic`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn swiglu_avx2(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let body = n / 8 * 8;
    for (g, u) in gate[..body].chunks_exact_mut(8).zip(up[..body].chunks_exact(8)) {
        // SAFETY: `g` and `u` hold 8 f32 each; loadu/storeu need no alignment.
        unsafe {
            let v = _mm256_mul_ps(silu8(_mm256_loadu_ps(g.as_ptr())), _mm256_loadu_ps(u.as_ptr()));
            _mm256_storeu_ps(g.as_mut_ptr(), v);
        }
    }
    act::swiglu_generic(&mut gate[body..n], &up[body..n]);
}
