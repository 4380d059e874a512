//! Q4_0 · Q8_0 with plain NEON (`vmull_s8` + `vpadalq_s16`), two blocks per
//! step in independent accumulators; an odd last block goes through
//! [`q4_0::vec_dot_q4_0_q8_0_generic`]. Model: ggml's `ggml_vec_dot_q4_0_q8_0`
//! in `arch/arm/quants.c`.

use super::simd::{dot_i8, h2f, ld_s8, ld_u8, two_block_sum, two_block_sum4};
use crate::q4_0::{self, BlockQ4_0};
use crate::q8_0::BlockQ8_0;
use core::arch::aarch64::*;

/// The 32 values of a Q4_0 block as signed `q - 8`: values 0..16 (low
/// nibbles) and 16..32 (high nibbles).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn unpack(b: &BlockQ4_0) -> (int8x16_t, int8x16_t) {
    let v = ld_u8(&b.qs);
    let eight = vdupq_n_s8(8);
    let lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f)));
    let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(v));
    (vsubq_s8(lo, eight), vsubq_s8(hi, eight))
}

#[inline]
#[target_feature(enable = "neon")]
fn block(acc: float32x4_t, x: &BlockQ4_0, y: &BlockQ8_0) -> float32x4_t {
    let (lo, hi) = unpack(x);
    let p = dot_i8(dot_i8(vdupq_n_s32(0), lo, ld_s8(&y.qs[..16])), hi, ld_s8(&y.qs[16..]));
    vmlaq_n_f32(acc, vcvtq_f32_s32(p), h2f(x.d) * h2f(y.d))
}

/// Σ over blocks of `d_w · d_a · Σ (q - 8) · a`.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_q4_0_q8_0_neon(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    two_block_sum!(w, a, block, q4_0::vec_dot_q4_0_q8_0_generic)
}

/// Four weight rows against one activation row: `[vec_dot_q4_0_q8_0_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q4_0_q8_0_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_q4_0_q8_0_neon(rows: [&[BlockQ4_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    two_block_sum4!(rows, a, block, q4_0::vec_dot_q4_0_q8_0_generic)
}
