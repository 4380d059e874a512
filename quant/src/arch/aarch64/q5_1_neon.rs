//! Q5_1 · Q8_1 with plain NEON, two blocks per step; an odd last block goes
//! through [`q5_1::vec_dot_q5_1_q8_1_generic`]. Per block:
//! `d_w · d_a · Σ q · a + m_w · s_a`.

use super::q4_1_neon::accumulate_with_min;
use super::q5_0_neon::unpack_unsigned;
use super::simd::{dot_i8, h2f, ld_s8, two_block_sum, two_block_sum4};
use crate::q5_1::{self, BlockQ5_1};
use crate::q8_1::BlockQ8_1;
use core::arch::aarch64::*;

#[inline]
#[target_feature(enable = "neon")]
fn block(acc: float32x4_t, x: &BlockQ5_1, y: &BlockQ8_1) -> float32x4_t {
    let (lo, hi) = unpack_unsigned(&x.qs, x.qh);
    let (lo, hi) = (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi));
    let p = dot_i8(dot_i8(vdupq_n_s32(0), lo, ld_s8(&y.qs[..16])), hi, ld_s8(&y.qs[16..]));
    accumulate_with_min(acc, p, h2f(x.d) * h2f(y.d), h2f(x.m) * h2f(y.s))
}

/// Σ over blocks of `d_w · d_a · Σ q · a + m_w · s_a`.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_q5_1_q8_1_neon(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    two_block_sum!(w, a, block, q5_1::vec_dot_q5_1_q8_1_generic)
}

/// Four weight rows against one activation row: `[vec_dot_q5_1_q8_1_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q5_1_q8_1_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_q5_1_q8_1_neon(rows: [&[BlockQ5_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    two_block_sum4!(rows, a, block, q5_1::vec_dot_q5_1_q8_1_generic)
}
