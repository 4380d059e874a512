//! Q6_K · Q8_K with SDOT, one 256-value super-block per step (same layout
//! handling as [`super::q6_k_neon`]).

use super::q6_k_neon::{scales_dot_bsums, unpack_half};
use super::simd::{block_sum, block_sum4, h2f, ld_s8, sdot};
use crate::q6_k::BlockQ6K;
use crate::q8_k::BlockQ8K;
use core::arch::aarch64::*;

#[inline]
#[target_feature(enable = "neon,dotprod")]
fn block(x: &BlockQ6K, y: &BlockQ8K) -> f32 {
    let zero = vdupq_n_s32(0);
    let mut isum = zero;
    for n in 0..2 {
        let v = unpack_half(x, n);
        let ys = &y.qs[128 * n..];
        for (k, &vk) in v.iter().enumerate() {
            let p = sdot!(zero, vk, ld_s8(&ys[16 * k..]));
            isum = vmlaq_n_s32(isum, p, i32::from(x.scales[8 * n + k]));
        }
    }
    let isum = vaddvq_s32(isum) - 32 * scales_dot_bsums(&x.scales, &y.bsums);
    y.d * h2f(x.d) * isum as f32
}

/// Σ over super-blocks of Q6_K · Q8_K.
///
/// # Safety
/// The CPU must support NEON and the dot-product extension. `w` and `a`
/// should have the same length (only the common prefix is used).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn vec_dot_q6_k_q8_k_dotprod(w: &[BlockQ6K], a: &[BlockQ8K]) -> f32 {
    block_sum!(w, a, block)
}

/// Four weight rows against one activation row: `[vec_dot_q6_k_q8_k_dotprod(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q6_k_q8_k_dotprod`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn vec_dot4_q6_k_q8_k_dotprod(rows: [&[BlockQ6K]; 4], a: &[BlockQ8K]) -> [f32; 4] {
    block_sum4!(rows, a, block)
}
