//! Q5_K · Q8_K with plain NEON, one 256-value super-block per step: Q4_K's
//! scheme (same packed scales and minimums) with the fifth bit of each value
//! taken from `qh` (chunk j of 64 values uses bits 2j and 2j+1 of `qh[l]`).

use super::q4_k_neon::{mins_dot, scales_mins};
use super::simd::{block_sum, block_sum4, dot_i8, h2f, ld_s8, ld_u8};
use crate::q5_k::BlockQ5K;
use crate::q8_k::BlockQ8K;
use core::arch::aarch64::*;

#[inline]
#[target_feature(enable = "neon")]
fn block(x: &BlockQ5K, y: &BlockQ8K) -> f32 {
    let (sc, mn) = scales_mins(&x.scales);
    let zero = vdupq_n_s32(0);
    let m4 = vdupq_n_u8(0x0f);
    let one = vdupq_n_u8(1);
    let two = vdupq_n_u8(2);
    // Bits 2j and 2j+1 of each qh byte, shifted down by 2 per chunk.
    let mut qh = [ld_u8(&x.qh[..16]), ld_u8(&x.qh[16..])];
    let mut isum = zero;
    for j in 0..4 {
        let q = [ld_u8(&x.qs[32 * j..]), ld_u8(&x.qs[32 * j + 16..])];
        let lo = |k: usize| vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q[k], m4), vshlq_n_u8::<4>(vandq_u8(qh[k], one))));
        let hi = |k: usize| vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8::<4>(q[k]), vshlq_n_u8::<3>(vandq_u8(qh[k], two))));
        let ys = &y.qs[64 * j..];
        let plo = dot_i8(dot_i8(zero, lo(0), ld_s8(&ys[..16])), lo(1), ld_s8(&ys[16..]));
        let phi = dot_i8(dot_i8(zero, hi(0), ld_s8(&ys[32..])), hi(1), ld_s8(&ys[48..]));
        isum = vmlaq_n_s32(isum, plo, i32::from(sc[2 * j]));
        isum = vmlaq_n_s32(isum, phi, i32::from(sc[2 * j + 1]));
        qh = [vshrq_n_u8::<2>(qh[0]), vshrq_n_u8::<2>(qh[1])];
    }
    let d = y.d * h2f(x.d);
    let dmin = y.d * h2f(x.dmin);
    d * vaddvq_s32(isum) as f32 - dmin * mins_dot(&mn, &y.bsums) as f32
}

/// Σ over super-blocks of Q5_K · Q8_K.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_q5_k_q8_k_neon(w: &[BlockQ5K], a: &[BlockQ8K]) -> f32 {
    block_sum!(w, a, block)
}

/// Four weight rows against one activation row: `[vec_dot_q5_k_q8_k_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q5_k_q8_k_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_q5_k_q8_k_neon(rows: [&[BlockQ5K]; 4], a: &[BlockQ8K]) -> [f32; 4] {
    block_sum4!(rows, a, block)
}
