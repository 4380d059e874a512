//! Q4_1 · Q8_1 with SDOT, two blocks per step; an odd last block goes through
//! [`q4_1::vec_dot_q4_1_q8_1_generic`].

use super::q4_1_neon::{accumulate_with_min, unpack};
use super::simd::{h2f, ld_s8, sdot, two_block_sum, two_block_sum4};
use crate::q4_1::{self, BlockQ4_1};
use crate::q8_1::BlockQ8_1;
use core::arch::aarch64::*;

#[inline]
#[target_feature(enable = "neon,dotprod")]
fn block(acc: float32x4_t, x: &BlockQ4_1, y: &BlockQ8_1) -> float32x4_t {
    let (lo, hi) = unpack(x);
    let p = sdot!(sdot!(vdupq_n_s32(0), lo, ld_s8(&y.qs[..16])), hi, ld_s8(&y.qs[16..]));
    accumulate_with_min(acc, p, h2f(x.d) * h2f(y.d), h2f(x.m) * h2f(y.s))
}

/// Σ over blocks of `d_w · d_a · Σ q · a + m_w · s_a`.
///
/// # Safety
/// The CPU must support NEON and the dot-product extension. `w` and `a`
/// should have the same length (only the common prefix is used).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn vec_dot_q4_1_q8_1_dotprod(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    two_block_sum!(w, a, block, q4_1::vec_dot_q4_1_q8_1_generic)
}

/// Four weight rows against one activation row: `[vec_dot_q4_1_q8_1_dotprod(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q4_1_q8_1_dotprod`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn vec_dot4_q4_1_q8_1_dotprod(rows: [&[BlockQ4_1]; 4], a: &[BlockQ8_1]) -> [f32; 4] {
    two_block_sum4!(rows, a, block, q4_1::vec_dot_q4_1_q8_1_generic)
}
