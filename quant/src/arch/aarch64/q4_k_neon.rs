//! Q4_K · Q8_K with plain NEON, one 256-value super-block per step. Per block:
//! `d·d_a · Σ_g sc_g · Σ q·a − dmin·d_a · Σ_g m_g · (bsums of group g)`, where the
//! minimum term uses Q8_K's precomputed sums of 16 activations.

use super::simd::{block_sum, block_sum4, dot_i8, h2f, ld_s16, ld_s8, ld_u8, ld_u8x8};
use crate::q4_k::BlockQ4K;
use crate::q8_k::BlockQ8K;
use core::arch::aarch64::*;

/// The 8 six-bit scales and 8 six-bit minimums packed in `scales` (ggml's
/// `get_scale_min_k4`). Shared with Q5_K, which packs them the same way.
#[inline]
pub(super) fn scales_mins(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
    for j in 0..4 {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 6) << 4);
        mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    (sc, mn)
}

/// `Σ_j mins[j] · (bsums[2j] + bsums[2j+1])`: the minimums of 8 groups of 32
/// against Q8_K's sums of 16 activations (|sum| ≤ 2048, so `i16` pair sums fit).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn mins_dot(mins: &[u8; 8], bsums: &[i16; 16]) -> i32 {
    let b = vpaddq_s16(ld_s16(&bsums[..8]), ld_s16(&bsums[8..]));
    let m = vreinterpretq_s16_u16(vmovl_u8(ld_u8x8(mins)));
    let p = vmull_s16(vget_low_s16(b), vget_low_s16(m));
    vaddvq_s32(vmlal_high_s16(p, b, m))
}

/// The 64 values of chunk `j` (0..4) as four vectors of 16: low nibbles of
/// `qs[32j..32j+32]` (values 64j..64j+32, scale 2j), then high nibbles (values
/// 64j+32..64j+64, scale 2j+1).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn unpack_chunk(qs: &[u8], j: usize) -> [int8x16_t; 4] {
    let q0 = ld_u8(&qs[32 * j..]);
    let q1 = ld_u8(&qs[32 * j + 16..]);
    let m4 = vdupq_n_u8(0x0f);
    [
        vreinterpretq_s8_u8(vandq_u8(q0, m4)),
        vreinterpretq_s8_u8(vandq_u8(q1, m4)),
        vreinterpretq_s8_u8(vshrq_n_u8::<4>(q0)),
        vreinterpretq_s8_u8(vshrq_n_u8::<4>(q1)),
    ]
}

#[inline]
#[target_feature(enable = "neon")]
fn block(x: &BlockQ4K, y: &BlockQ8K) -> f32 {
    let (sc, mn) = scales_mins(&x.scales);
    let zero = vdupq_n_s32(0);
    let mut isum = zero;
    for j in 0..4 {
        let v = unpack_chunk(&x.qs, j);
        let ys = &y.qs[64 * j..];
        let lo = dot_i8(dot_i8(zero, v[0], ld_s8(&ys[..16])), v[1], ld_s8(&ys[16..]));
        let hi = dot_i8(dot_i8(zero, v[2], ld_s8(&ys[32..])), v[3], ld_s8(&ys[48..]));
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
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_q4_k_q8_k_neon(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    block_sum!(w, a, block)
}

/// Four weight rows against one activation row: `[vec_dot_q4_k_q8_k_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q4_k_q8_k_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_q4_k_q8_k_neon(rows: [&[BlockQ4K]; 4], a: &[BlockQ8K]) -> [f32; 4] {
    block_sum4!(rows, a, block)
}
