//! [`crate::act`] with NEON: four lanes of [`crate::act::expf_ggml`] per
//! step, bit-identical to it, and the tails (fewer than 4 values) through
//! the generic code. The same steps as the AVX2 version
//! (`arch/x86_64/act_avx2.rs`): each of the generic code's FMAs (through f64)
//! is an FMA instruction (`vfmaq_f32`, `vfmsq_f32`), one rounding like it,
//! and `scalef(j, n)` is two multiplies of which only the second rounds.
//! Before these, aarch64 ran the generic (scalar) code.

use super::simd::{ld_f32, st_f32};
use crate::act::{self, consts};
use core::arch::aarch64::*;

/// A constant from its bit pattern, in every lane.
#[inline]
#[target_feature(enable = "neon")]
fn splat(bits: u32) -> float32x4_t {
    vreinterpretq_f32_u32(vdupq_n_u32(bits))
}

/// [`act::expf_ggml`] of four lanes, bit for bit (NaNs included).
/// `scalef(j, n)`, rounded once, is two multiplies: by `2^(n - m)`, exact
/// because the product stays a normal f32, then by `2^m`, the one rounding,
/// with `m = 0` for `n` in -126..=127, `-100` below and `96` above.
#[inline]
#[target_feature(enable = "neon")]
fn expf4(x: float32x4_t) -> float32x4_t {
    let r = splat(consts::SHIFT);
    let z = vfmaq_f32(r, x, splat(consts::INV_LN2));
    let n = vsubq_f32(z, r);
    // fma(-n, c, y) == y - n * c exactly: negation is exact.
    let b = vfmsq_f32(vfmsq_f32(x, n, splat(consts::LN2_HI)), n, splat(consts::LN2_LO));
    let u = vmulq_f32(b, b);
    let p = |i: usize| splat(consts::P[i]);
    let j = vfmaq_f32(
        vfmaq_f32(splat(1.0f32.to_bits()), p(4), b),
        vfmaq_f32(vfmaq_f32(p(3), p(2), b), vfmaq_f32(p(1), p(0), b), u),
        u,
    );
    // n is an integer in every lane that the scale below decides (|n| <= 192).
    let ni = vcvtnq_s32_f32(n);
    let lo = vcltq_s32(ni, vdupq_n_s32(-126));
    let hi = vcgtq_s32(ni, vdupq_n_s32(127));
    let m = vorrq_s32(
        vandq_s32(vreinterpretq_s32_u32(lo), vdupq_n_s32(-100)),
        vandq_s32(vreinterpretq_s32_u32(hi), vdupq_n_s32(96)),
    );
    let bias = vdupq_n_s32(127);
    let s1 = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(vsubq_s32(ni, m), bias)));
    let s2 = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(m, bias)));
    let scaled = vmulq_f32(vmulq_f32(j, s1), s2);
    // |n| > 192: 0 or infinity by the sign of n; NaN: n itself.
    let big = vcgtq_f32(vabsq_f32(n), vdupq_n_f32(192.0));
    let neg = vcleq_f32(n, vdupq_n_f32(0.0));
    let ends = vbslq_f32(neg, vdupq_n_f32(0.0), vdupq_n_f32(f32::INFINITY));
    let out = vbslq_f32(big, ends, scaled);
    let nan = vmvnq_u32(vceqq_f32(n, n));
    vbslq_f32(nan, n, out)
}

/// [`act::silu`] of four lanes: `x / (1 + expf4(0 - x))`.
#[inline]
#[target_feature(enable = "neon")]
fn silu4(x: float32x4_t) -> float32x4_t {
    let e = expf4(vsubq_f32(vdupq_n_f32(0.0), x));
    vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0), e))
}

/// [`act::exp_generic`].
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn exp_neon(x: &mut [f32]) {
    let body = x.len() / 4 * 4;
    for c in x[..body].chunks_exact_mut(4) {
        let v = expf4(ld_f32(c));
        st_f32(c, v);
    }
    act::exp_generic(&mut x[body..]);
}

/// [`act::silu_generic`].
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn silu_neon(x: &mut [f32]) {
    let body = x.len() / 4 * 4;
    for c in x[..body].chunks_exact_mut(4) {
        let v = silu4(ld_f32(c));
        st_f32(c, v);
    }
    act::silu_generic(&mut x[body..]);
}

/// [`act::swiglu_generic`].
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn swiglu_neon(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let body = n / 4 * 4;
    for (g, u) in gate[..body].chunks_exact_mut(4).zip(up[..body].chunks_exact(4)) {
        let v = vmulq_f32(silu4(ld_f32(g)), ld_f32(u));
        st_f32(g, v);
    }
    act::swiglu_generic(&mut gate[body..n], &up[body..n]);
}
