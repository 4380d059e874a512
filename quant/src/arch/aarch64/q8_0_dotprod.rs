//! Q8_0 · Q8_0 with SDOT, two blocks per step; an odd last block goes through
//! [`q8_0::vec_dot_q8_0_q8_0_generic`].

use super::simd::{h2f, ld_s8, sdot, two_block_sum, two_block_sum4};
use crate::q8_0::{self, BlockQ8_0};
use core::arch::aarch64::*;

#[inline]
#[target_feature(enable = "neon,dotprod")]
fn block(acc: float32x4_t, x: &BlockQ8_0, y: &BlockQ8_0) -> float32x4_t {
    let p = sdot!(vdupq_n_s32(0), ld_s8(&x.qs[..16]), ld_s8(&y.qs[..16]));
    let p = sdot!(p, ld_s8(&x.qs[16..]), ld_s8(&y.qs[16..]));
    vmlaq_n_f32(acc, vcvtq_f32_s32(p), h2f(x.d) * h2f(y.d))
}

/// Σ over blocks of `d_w · d_a · Σ q · a`.
///
/// # Safety
/// The CPU must support NEON and the dot-product extension. `w` and `a`
/// should have the same length (only the common prefix is used).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn vec_dot_q8_0_q8_0_dotprod(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    two_block_sum!(w, a, block, q8_0::vec_dot_q8_0_q8_0_generic)
}

/// Four weight rows against one activation row: `[vec_dot_q8_0_q8_0_dotprod(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q8_0_q8_0_dotprod`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn vec_dot4_q8_0_q8_0_dotprod(rows: [&[BlockQ8_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    two_block_sum4!(rows, a, block, q8_0::vec_dot_q8_0_q8_0_generic)
}
