//! F32 · F32, F16 · F16 and BF16 · BF16 with NEON: 16 values per step in
//! four fused multiply-add accumulators; the last `len % 16` values go
//! through the generic kernels. F16 is widened to f32 with `fcvtl` (base
//! Advanced SIMD), not computed in half precision, which would need FEAT_FP16
//! (a Pi 4's Cortex-A72 lacks it); BF16 is widened with a 16-bit left shift
//! (`shll`), which is exact and needs no BF16 extension.

use super::simd::{f16x8_to_f32, ld_bf16_bits, ld_f16_bits, ld_f32};
use crate::floats;
use core::arch::aarch64::*;
use half::{bf16, f16};

/// Σ w·a over the common length, accumulated in f32.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_f32_neon(w: &[f32], a: &[f32]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    let n = w.len().min(a.len());
    let main = n - n % 16;
    let mut acc = [vdupq_n_f32(0.0); 4];
    for (x, y) in w[..main].chunks_exact(16).zip(a[..main].chunks_exact(16)) {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = vfmaq_f32(*acc, ld_f32(&x[4 * k..]), ld_f32(&y[4 * k..]));
        }
    }
    let mut sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    if main < n {
        sum += floats::vec_dot_f32_generic(&w[main..n], &a[main..n]);
    }
    sum
}

/// Σ w·a over the common length: f16 widened to f32 (exact), f32 products and sums.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_f16_neon(w: &[f16], a: &[f16]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    let n = w.len().min(a.len());
    let main = n - n % 16;
    let mut acc = [vdupq_n_f32(0.0); 4];
    for (x, y) in w[..main].chunks_exact(16).zip(a[..main].chunks_exact(16)) {
        for k in 0..2 {
            let (x0, x1) = f16x8_to_f32(ld_f16_bits(&x[8 * k..]));
            let (y0, y1) = f16x8_to_f32(ld_f16_bits(&y[8 * k..]));
            acc[2 * k] = vfmaq_f32(acc[2 * k], x0, y0);
            acc[2 * k + 1] = vfmaq_f32(acc[2 * k + 1], x1, y1);
        }
    }
    let mut sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    if main < n {
        sum += floats::vec_dot_f16_generic(&w[main..n], &a[main..n]);
    }
    sum
}

/// Σ w·a over the common length: bf16 widened to f32 (exact), f32 products and sums.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_bf16_neon(w: &[bf16], a: &[bf16]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    let n = w.len().min(a.len());
    let main = n - n % 16;
    // bf16 bits in the high half of each u32: the f32 of the same value.
    let widen = |v: uint16x8_t| {
        (vreinterpretq_f32_u32(vshll_n_u16::<16>(vget_low_u16(v))), vreinterpretq_f32_u32(vshll_high_n_u16::<16>(v)))
    };
    let mut acc = [vdupq_n_f32(0.0); 4];
    for (x, y) in w[..main].chunks_exact(16).zip(a[..main].chunks_exact(16)) {
        for k in 0..2 {
            let (x0, x1) = widen(ld_bf16_bits(&x[8 * k..]));
            let (y0, y1) = widen(ld_bf16_bits(&y[8 * k..]));
            acc[2 * k] = vfmaq_f32(acc[2 * k], x0, y0);
            acc[2 * k + 1] = vfmaq_f32(acc[2 * k + 1], x1, y1);
        }
    }
    let mut sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    if main < n {
        sum += floats::vec_dot_bf16_generic(&w[main..n], &a[main..n]);
    }
    sum
}
