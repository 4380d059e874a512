//! Q6_K · Q8_K with plain NEON, one 256-value super-block per step. The
//! 6-bit values are used unsigned (0..=63) and the offset of 32 is taken off
//! once per block through Q8_K's group sums: `Σ sc·(q−32)·a = Σ sc·q·a −
//! 32 · Σ_g sc_g · bsums_g`.

use super::simd::{block_sum, block_sum4, dot_i8, h2f, ld_s16, ld_s8, ld_u8};
use crate::q6_k::BlockQ6K;
use crate::q8_k::BlockQ8K;
use core::arch::aarch64::*;

/// The 128 values of half `n` (0 or 1) as 8 vectors of 16 unsigned values;
/// vector k holds values `128n + 16k ..` and uses scale `scales[8n + k]`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn unpack_half(x: &BlockQ6K, n: usize) -> [int8x16_t; 8] {
    let ql = &x.ql[64 * n..];
    let qh = &x.qh[32 * n..];
    let (h0, h1) = (ld_u8(&qh[..16]), ld_u8(&qh[16..]));
    let l = [ld_u8(&ql[..16]), ld_u8(&ql[16..]), ld_u8(&ql[32..]), ld_u8(&ql[48..])];
    let m4 = vdupq_n_u8(0x0f);
    let m30 = vdupq_n_u8(0x30);
    let low = |v: uint8x16_t, h: uint8x16_t| vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, m4), vandq_u8(h, m30)));
    let high = |v: uint8x16_t, h: uint8x16_t| vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8::<4>(v), vandq_u8(h, m30)));
    [
        low(l[0], vshlq_n_u8::<4>(h0)),
        low(l[1], vshlq_n_u8::<4>(h1)),
        low(l[2], vshlq_n_u8::<2>(h0)),
        low(l[3], vshlq_n_u8::<2>(h1)),
        high(l[0], h0),
        high(l[1], h1),
        high(l[2], vshrq_n_u8::<2>(h0)),
        high(l[3], vshrq_n_u8::<2>(h1)),
    ]
}

/// `Σ_g scales[g] · bsums[g]` over the 16 groups of 16.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn scales_dot_bsums(scales: &[i8; 16], bsums: &[i16; 16]) -> i32 {
    let s = ld_s8(scales);
    let (s0, s1) = (vmovl_s8(vget_low_s8(s)), vmovl_high_s8(s));
    let (b0, b1) = (ld_s16(&bsums[..8]), ld_s16(&bsums[8..]));
    let p = vmull_s16(vget_low_s16(s0), vget_low_s16(b0));
    let p = vmlal_high_s16(p, s0, b0);
    let p = vmlal_s16(p, vget_low_s16(s1), vget_low_s16(b1));
    vaddvq_s32(vmlal_high_s16(p, s1, b1))
}

#[inline]
#[target_feature(enable = "neon")]
fn block(x: &BlockQ6K, y: &BlockQ8K) -> f32 {
    let zero = vdupq_n_s32(0);
    let mut isum = zero;
    for n in 0..2 {
        let v = unpack_half(x, n);
        let ys = &y.qs[128 * n..];
        for (k, &vk) in v.iter().enumerate() {
            let p = dot_i8(zero, vk, ld_s8(&ys[16 * k..]));
            isum = vmlaq_n_s32(isum, p, i32::from(x.scales[8 * n + k]));
        }
    }
    let isum = vaddvq_s32(isum) - 32 * scales_dot_bsums(&x.scales, &y.bsums);
    y.d * h2f(x.d) * isum as f32
}

/// Σ over super-blocks of Q6_K · Q8_K.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_q6_k_q8_k_neon(w: &[BlockQ6K], a: &[BlockQ8K]) -> f32 {
    block_sum!(w, a, block)
}

/// Four weight rows against one activation row: `[vec_dot_q6_k_q8_k_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q6_k_q8_k_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_q6_k_q8_k_neon(rows: [&[BlockQ6K]; 4], a: &[BlockQ8K]) -> [f32; 4] {
    block_sum4!(rows, a, block)
}
