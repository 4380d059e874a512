//! Q3_K · Q8_K with plain NEON, one 256-value super-block per step. Values
//! are `(2 low bits) − 4·(1 − high bit)`, in −4..=3; 16 signed 6-bit scales.

use super::simd::{block_sum, block_sum4, dot_i8, h2f, ld_s8, ld_u8};
use crate::q3_k::BlockQ3K;
use crate::q8_k::BlockQ8K;
use core::arch::aarch64::*;

/// The 16 scales (−32..=31) packed in 12 bytes: low 4 bits from byte `j`
/// (`j < 8`) or the high nibble of byte `j − 8`, high 2 bits from byte
/// `8 + j % 4` at bit `2 · (j / 4)`.
#[inline]
fn scales(s: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = if j < 8 { s[j] & 0x0f } else { s[j - 8] >> 4 };
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = (low | (high << 4)) as i8 - 32;
    }
    out
}

#[inline]
#[target_feature(enable = "neon")]
fn block(x: &BlockQ3K, y: &BlockQ8K) -> f32 {
    let sc = scales(&x.scales);
    let zero = vdupq_n_s32(0);
    let m3 = vdupq_n_u8(3);
    let one = vdupq_n_u8(1);
    // hmask bit 4n + j belongs to values 128n + 32j + l; shifted down by one per step.
    let mut hm = [ld_u8(&x.hmask[..16]), ld_u8(&x.hmask[16..])];
    let mut isum = zero;
    for n in 0..2 {
        let mut q = [ld_u8(&x.qs[32 * n..]), ld_u8(&x.qs[32 * n + 16..])];
        for j in 0..4 {
            let ys = &y.qs[128 * n + 32 * j..];
            let g = 8 * n + 2 * j;
            for k in 0..2 {
                // 4 where the high bit is clear, 0 where it is set.
                let sub = vshlq_n_u8::<2>(vbicq_u8(one, hm[k]));
                let v = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q[k], m3)), vreinterpretq_s8_u8(sub));
                let p = dot_i8(zero, v, ld_s8(&ys[16 * k..]));
                isum = vmlaq_n_s32(isum, p, i32::from(sc[g + k]));
                q[k] = vshrq_n_u8::<2>(q[k]);
                hm[k] = vshrq_n_u8::<1>(hm[k]);
            }
        }
    }
    y.d * h2f(x.d) * vaddvq_s32(isum) as f32
}

/// Σ over super-blocks of Q3_K · Q8_K.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_q3_k_q8_k_neon(w: &[BlockQ3K], a: &[BlockQ8K]) -> f32 {
    block_sum!(w, a, block)
}

/// Four weight rows against one activation row: `[vec_dot_q3_k_q8_k_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_q3_k_q8_k_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_q3_k_q8_k_neon(rows: [&[BlockQ3K]; 4], a: &[BlockQ8K]) -> [f32; 4] {
    block_sum4!(rows, a, block)
}
