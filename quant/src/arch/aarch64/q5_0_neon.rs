//! Q5_0 · Q8_0 with plain NEON, two blocks per step; an odd last block goes
//! through [`q5_0::vec_dot_q5_0_q8_0_generic`]. The fifth bits are spread to
//! bytes with a table lookup and a bit test (no 256-entry tables as in ggml).

use super::simd::{dot_i8, h2f, ld_s8, ld_u8, two_block_sum, two_block_sum4};
use crate::q5_0::{self, BlockQ5_0};
use crate::q8_0::BlockQ8_0;
use core::arch::aarch64::*;

/// Byte of `qh` holding the fifth bit of values 0..16 and 16..32.
const BYTE_LO: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
const BYTE_HI: [u8; 16] = [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3];
/// Bit inside that byte.
const BIT: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];

/// The fifth bits of a Q5 block's 32 values as `0x10` or `0` per byte: values
/// 0..16, then 16..32 (value j at bit j of the little-endian `qh`).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn fifth_bits(qh: [u8; 4]) -> (uint8x16_t, uint8x16_t) {
    let bytes = vreinterpretq_u8_u32(vdupq_n_u32(u32::from_le_bytes(qh)));
    let bit = ld_u8(&BIT);
    let x10 = vdupq_n_u8(0x10);
    let lo = vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, ld_u8(&BYTE_LO)), bit), x10);
    let hi = vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, ld_u8(&BYTE_HI)), bit), x10);
    (lo, hi)
}

/// The 32 values of a Q5 block's nibbles and fifth bits, unsigned (0..=31).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn unpack_unsigned(qs: &[u8; 16], qh: [u8; 4]) -> (uint8x16_t, uint8x16_t) {
    let v = ld_u8(qs);
    let (hlo, hhi) = fifth_bits(qh);
    (vorrq_u8(vandq_u8(v, vdupq_n_u8(0x0f)), hlo), vorrq_u8(vshrq_n_u8::<4>(v), hhi))
}

/// The 32 values of a Q5_0 block as signed `q - 16`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn unpack(b: &BlockQ5_0) -> (int8x16_t, int8x16_t) {
    let (lo, hi) = unpack_unsigned(&b.qs, b.qh);
    let sixteen = vdupq_n_s8(16);
    (vsubq_s8(vreinterpretq_s8_u8(lo), sixteen), vsubq_s8(vreinterpretq_s8_u8(hi), sixteen))
}

#[inline]
#[target_feature(enable = "neon")]
fn block(acc: float32x4_t, x: &BlockQ5_0, y: &BlockQ8_0) -> float32x4_t {
    let (lo, hi) = unpack(x);
    let p = dot_i8(dot_i8(vdupq_n_s32(0), lo, ld_s8(&y.qs[..16])), hi, ld_s8(&y.qs[16..]));
    vmlaq_n_f32(acc, vcvtq_f32_s32(p), h2f(x.d) * h2f(y.d))
}

/// Σ over blocks of `d_w · d_a · Σ (q - 16) · a`.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_q5_0_q8_0_neon(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    two_block_sum!(w, a, block, q5_0::vec_dot_q5_0_q8_0_generic)
}

/// Four weight rows against one activation row: `[vec_dot_q5_0_q8_0_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q5_0_q8_0_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_q5_0_q8_0_neon(rows: [&[BlockQ5_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    two_block_sum4!(rows, a, block, q5_0::vec_dot_q5_0_q8_0_generic)
}
