//! Q4_1 · Q8_1 with plain NEON, two blocks per step; an odd last block goes
//! through [`q4_1::vec_dot_q4_1_q8_1_generic`]. Per block:
//! `d_w · d_a · Σ q · a + m_w · s_a` (Q8_1's `s = d_a · Σ a` folds the minimum in).

use super::simd::{dot_i8, h2f, ld_s8, ld_u8, two_block_sum, two_block_sum4};
use crate::q4_1::{self, BlockQ4_1};
use crate::q8_1::BlockQ8_1;
use core::arch::aarch64::*;

/// The 32 unsigned nibbles of a Q4_1 block (0..=15): values 0..16, then 16..32.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn unpack(b: &BlockQ4_1) -> (int8x16_t, int8x16_t) {
    let v = ld_u8(&b.qs);
    (vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), vreinterpretq_s8_u8(vshrq_n_u8::<4>(v)))
}

/// `acc` plus one block's `d_w · d_a · p` spread over the lanes of `p` and
/// `m_w · s_a` in lane 0. Shared by the Q4_1 and Q5_1 kernels of both tiers.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn accumulate_with_min(acc: float32x4_t, p: int32x4_t, d: f32, ms: f32) -> float32x4_t {
    let acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), d);
    vaddq_f32(acc, vsetq_lane_f32::<0>(ms, vdupq_n_f32(0.0)))
}

#[inline]
#[target_feature(enable = "neon")]
fn block(acc: float32x4_t, x: &BlockQ4_1, y: &BlockQ8_1) -> float32x4_t {
    let (lo, hi) = unpack(x);
    let p = dot_i8(dot_i8(vdupq_n_s32(0), lo, ld_s8(&y.qs[..16])), hi, ld_s8(&y.qs[16..]));
    accumulate_with_min(acc, p, h2f(x.d) * h2f(y.d), h2f(x.m) * h2f(y.s))
}

/// Σ over blocks of `d_w · d_a · Σ q · a + m_w · s_a`.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_q4_1_q8_1_neon(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    two_block_sum!(w, a, block, q4_1::vec_dot_q4_1_q8_1_generic)
}

/// Four weight rows against one activation row: `[vec_dot_q4_1_q8_1_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q4_1_q8_1_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_q4_1_q8_1_neon(rows: [&[BlockQ4_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    two_block_sum4!(rows, a, block, q4_1::vec_dot_q4_1_q8_1_generic)
}
