//! f32 → Q8_1 activations with NEON: Q8_0's quantizer plus `s = d · Σ q`.

use super::q8_0_neon::quantize_block;
use super::simd::st_s8;
use crate::q8_1::BlockQ8_1;
use core::arch::aarch64::*;
use half::f16;

/// f32 → Q8_1 activations, byte-identical to [`crate::q8_1::quantize_ref`].
///
/// # Safety
/// The CPU must support NEON. `x.len()` should be `32 · out.len()` (only whole
/// blocks present in both are written).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_q8_1_neon(x: &[f32], out: &mut [BlockQ8_1]) {
    debug_assert_eq!(x.len(), out.len() * 32);
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(32)) {
        let (d, q, sums) = quantize_block(xb);
        b.d = f16::from_f32(d);
        b.s = f16::from_f32(vaddvq_s32(sums) as f32 * d);
        st_s8(&mut b.qs[..16], q[0]);
        st_s8(&mut b.qs[16..], q[1]);
    }
}
