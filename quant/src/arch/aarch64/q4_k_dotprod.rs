//! Q4_K · Q8_K with SDOT, one 256-value super-block per step (same layout
//! handling as [`super::q4_k_neon`]).

use super::q4_k_neon::{mins_dot, scales_mins, unpack_chunk};
use super::simd::{block_sum, block_sum4, h2f, ld_s8, sdot};
use crate::q4_k::BlockQ4K;
use crate::q8_k::BlockQ8K;
use core::arch::aarch64::*;

#[inline]
#[target_feature(enable = "neon,dotprod")]
fn block(x: &BlockQ4K, y: &BlockQ8K) -> f32 {
    let (sc, mn) = scales_mins(&x.scales);
    let zero = vdupq_n_s32(0);
    let mut isum = zero;
    for j in 0..4 {
        let v = unpack_chunk(&x.qs, j);
        let ys = &y.qs[64 * j..];
        let lo = sdot!(sdot!(zero, v[0], ld_s8(&ys[..16])), v[1], ld_s8(&ys[16..]));
        let hi = sdot!(sdot!(zero, v[2], ld_s8(&ys[32..])), v[3], ld_s8(&ys[48..]));
        isum = vmlaq_n_s32(isum, lo, i32::from(sc[2 * j]));
        isum = vmlaq_n_s32(isum, hi, i32::from(sc[2 * j + 1]));
    }
    let d = y.d * h2f(x.d);
    let dmin = y.d * h2f(x.dmin);
    d * vaddvq_s32(isum) as f32 - dmin * mins_dot(&mn, &y.bsums) as f32
}

/// Σ over super-blocks of Q4_K · Q8_K.
///
/// # Safety
/// The CPU must support NEON and the dot-product extension. `w` and `a`
/// should have the same length (only the common prefix is used).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn vec_dot_q4_k_q8_k_dotprod(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    block_sum!(w, a, block)
}

/// Four weight rows against one activation row: `[vec_dot_q4_k_q8_k_dotprod(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q4_k_q8_k_dotprod`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn vec_dot4_q4_k_q8_k_dotprod(rows: [&[BlockQ4K]; 4], a: &[BlockQ8K]) -> [f32; 4] {
    block_sum4!(rows, a, block)
}
