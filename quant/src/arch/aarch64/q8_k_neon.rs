//! f32 → Q8_K activations with NEON, exactly as [`crate::q8_k::quantize_ref`]
//! (ggml's `quantize_row_q8_K_ref`): the value of largest magnitude `max`
//! (the first one on a tie), `iscale = −127 / max`, `q = nearest_int(iscale · x)`
//! (round half to even, `fcvtns`), `d = 1 / iscale`, and the sums of each 16.

use super::simd::{ld_f32, narrow_i32x16, st_s8};
use crate::q8_k::BlockQ8K;
use crate::QK_K;
use core::arch::aarch64::*;

/// The value of largest magnitude in `x` (256 values), the first on a tie as
/// the reference's strict `>` scan picks it; 0 if all are zero.
#[inline]
#[target_feature(enable = "neon")]
fn signed_max(x: &[f32]) -> f32 {
    let (mut hi, mut lo) = (ld_f32(x), ld_f32(x));
    for c in x.chunks_exact(4).skip(1) {
        let v = ld_f32(c);
        hi = vmaxq_f32(hi, v);
        lo = vminq_f32(lo, v);
    }
    let (hi, lo) = (vmaxvq_f32(hi), vminvq_f32(lo));
    if hi > -lo {
        hi
    } else if -lo > hi {
        lo
    } else {
        // Both signs reach the same magnitude (or it is 0): the first one wins.
        x.iter().copied().find(|v| v.abs() == hi).unwrap_or(0.0)
    }
}

/// f32 → Q8_K activations, byte-identical to [`crate::q8_k::quantize_ref`].
///
/// # Safety
/// The CPU must support NEON. `x.len()` should be `256 · out.len()` (only whole
/// blocks present in both are written).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_q8_k_neon(x: &[f32], out: &mut [BlockQ8K]) {
    debug_assert_eq!(x.len(), out.len() * QK_K);
    for (xb, y) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let max = signed_max(xb);
        if max == 0.0 {
            y.d = 0.0;
            y.qs = [0; QK_K];
            y.bsums = [0; QK_K / 16];
            continue;
        }
        let iscale = -127.0f32 / max;
        let top = vdupq_n_s32(127);
        for ((xg, qg), s) in xb.chunks_exact(16).zip(y.qs.chunks_exact_mut(16)).zip(y.bsums.iter_mut()) {
            let q: [int32x4_t; 4] =
                core::array::from_fn(|k| vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(ld_f32(&xg[4 * k..]), iscale)), top));
            let q8 = narrow_i32x16(q);
            st_s8(qg, q8);
            // Sum of the stored int8 values, as the reference sums them.
            *s = vaddvq_s16(vpaddlq_s8(q8));
        }
        y.d = 1.0 / iscale;
    }
}
