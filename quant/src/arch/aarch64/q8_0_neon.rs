//! Q8_0 with plain NEON: the Q8_0 · Q8_0 dot (`vmull_s8` + `vpadalq_s16`, two
//! blocks per step, an odd last block through [`q8_0::vec_dot_q8_0_q8_0_generic`])
//! and the Q8_0 activation quantizer.

use super::simd::{dot_i8, h2f, ld_f32, ld_s8, narrow_i32x16, st_s8, two_block_sum, two_block_sum4};
use crate::q8_0::{self, BlockQ8_0};
use core::arch::aarch64::*;
use half::f16;

#[inline]
#[target_feature(enable = "neon")]
fn block(acc: float32x4_t, x: &BlockQ8_0, y: &BlockQ8_0) -> float32x4_t {
    let p = dot_i8(vdupq_n_s32(0), ld_s8(&x.qs[..16]), ld_s8(&y.qs[..16]));
    let p = dot_i8(p, ld_s8(&x.qs[16..]), ld_s8(&y.qs[16..]));
    vmlaq_n_f32(acc, vcvtq_f32_s32(p), h2f(x.d) * h2f(y.d))
}

/// Σ over blocks of `d_w · d_a · Σ q · a`.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_q8_0_q8_0_neon(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    two_block_sum!(w, a, block, q8_0::vec_dot_q8_0_q8_0_generic)
}

/// Four weight rows against one activation row: `[vec_dot_q8_0_q8_0_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q8_0_q8_0_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_q8_0_q8_0_neon(rows: [&[BlockQ8_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    two_block_sum4!(rows, a, block, q8_0::vec_dot_q8_0_q8_0_generic)
}

/// One block of Q8_0 activations from 32 values, exactly as
/// [`q8_0::quantize_ref`] computes it: `d = amax / 127`, `q = roundf(x · (1/d))`
/// (`fcvtas` rounds half away from zero, as `roundf` does). Returns the f32
/// scale (before its conversion to f16), the quantized values as two vectors
/// and their 4 partial sums (lane-wise, for Q8_1).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn quantize_block(x: &[f32]) -> (f32, [int8x16_t; 2], int32x4_t) {
    let v: [float32x4_t; 8] = core::array::from_fn(|k| ld_f32(&x[4 * k..]));
    let mut amax = vabsq_f32(v[0]);
    for vk in &v[1..] {
        amax = vmaxq_f32(amax, vabsq_f32(*vk));
    }
    let d = vmaxvq_f32(amax) / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let q: [int32x4_t; 8] = core::array::from_fn(|k| vcvtaq_s32_f32(vmulq_n_f32(v[k], id)));
    let sums = vaddq_s32(
        vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])),
        vaddq_s32(vaddq_s32(q[4], q[5]), vaddq_s32(q[6], q[7])),
    );
    (d, [narrow_i32x16([q[0], q[1], q[2], q[3]]), narrow_i32x16([q[4], q[5], q[6], q[7]])], sums)
}

/// f32 → Q8_0 activations, byte-identical to [`q8_0::quantize_ref`].
///
/// # Safety
/// The CPU must support NEON. `x.len()` should be `32 · out.len()` (only whole
/// blocks present in both are written).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_q8_0_neon(x: &[f32], out: &mut [BlockQ8_0]) {
    debug_assert_eq!(x.len(), out.len() * 32);
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(32)) {
        let (d, q, _) = quantize_block(xb);
        b.d = f16::from_f32(d);
        st_s8(&mut b.qs[..16], q[0]);
        st_s8(&mut b.qs[16..], q[1]);
    }
}
