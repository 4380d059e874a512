//! Q2_K · Q8_K with plain NEON, one 256-value super-block per step. Per block:
//! `d·d_a · Σ_g sc_g · Σ q·a − dmin·d_a · Σ_g m_g · bsums_g` with 2-bit `q`
//! and 4-bit scale `sc_g` / minimum `m_g` per group of 16.

use super::simd::{block_sum, block_sum4, dot_i8, h2f, ld_s16, ld_s8, ld_u8};
use crate::q2_k::BlockQ2K;
use crate::q8_k::BlockQ8K;
use core::arch::aarch64::*;

/// `Σ_g (scales[g] >> 4) · bsums[g]`.
#[inline]
#[target_feature(enable = "neon")]
fn mins_dot(scales: &[u8; 16], bsums: &[i16; 16]) -> i32 {
    let m = vshrq_n_u8::<4>(ld_u8(scales));
    let (m0, m1) = (vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m))), vreinterpretq_s16_u16(vmovl_high_u8(m)));
    let (b0, b1) = (ld_s16(&bsums[..8]), ld_s16(&bsums[8..]));
    let p = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
    let p = vmlal_high_s16(p, m0, b0);
    let p = vmlal_s16(p, vget_low_s16(m1), vget_low_s16(b1));
    vaddvq_s32(vmlal_high_s16(p, m1, b1))
}

#[inline]
#[target_feature(enable = "neon")]
fn block(x: &BlockQ2K, y: &BlockQ8K) -> f32 {
    let zero = vdupq_n_s32(0);
    let m3 = vdupq_n_u8(3);
    let mut isum = zero;
    for n in 0..2 {
        // Values 128n + 32j + 16k + l are bits 2j..2j+2 of qs[32n + 16k + l].
        let mut q = [ld_u8(&x.qs[32 * n..]), ld_u8(&x.qs[32 * n + 16..])];
        for j in 0..4 {
            let ys = &y.qs[128 * n + 32 * j..];
            let g = 8 * n + 2 * j;
            for k in 0..2 {
                let v = vreinterpretq_s8_u8(vandq_u8(q[k], m3));
                let p = dot_i8(zero, v, ld_s8(&ys[16 * k..]));
                isum = vmlaq_n_s32(isum, p, i32::from(x.scales[g + k] & 0x0f));
                q[k] = vshrq_n_u8::<2>(q[k]);
            }
        }
    }
    let d = y.d * h2f(x.d);
    let dmin = y.d * h2f(x.dmin);
    d * vaddvq_s32(isum) as f32 - dmin * mins_dot(&x.scales, &y.bsums) as f32
}

/// Σ over super-blocks of Q2_K · Q8_K.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_q2_k_q8_k_neon(w: &[BlockQ2K], a: &[BlockQ8K]) -> f32 {
    block_sum!(w, a, block)
}

/// Four weight rows against one activation row: `[vec_dot_q2_k_q8_k_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q2_k_q8_k_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_q2_k_q8_k_neon(rows: [&[BlockQ2K]; 4], a: &[BlockQ8K]) -> [f32; 4] {
    block_sum4!(rows, a, block)
}
