//! IQ4_NL · Q8_0 with plain NEON: the nibbles index the non-linear table with
//! one `tbl` each, then the Q8_0 dot as usual; two blocks per step, an odd
//! last block through [`iq4_nl::vec_dot_iq4_nl_q8_0_generic`].

use super::simd::{dot_i8, h2f, ld_s8, ld_u8, two_block_sum, two_block_sum4};
use crate::iq4_nl::{self, BlockIq4Nl};
use crate::q8_0::BlockQ8_0;
use core::arch::aarch64::*;

/// ggml's `kvalues_iq4nl`: the value of each 4-bit index.
const KVALUES: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

#[inline]
#[target_feature(enable = "neon")]
fn block(acc: float32x4_t, x: &BlockIq4Nl, y: &BlockQ8_0) -> float32x4_t {
    let table = ld_s8(&KVALUES);
    let v = ld_u8(&x.qs);
    let lo = vqtbl1q_s8(table, vandq_u8(v, vdupq_n_u8(0x0f)));
    let hi = vqtbl1q_s8(table, vshrq_n_u8::<4>(v));
    let p = dot_i8(dot_i8(vdupq_n_s32(0), lo, ld_s8(&y.qs[..16])), hi, ld_s8(&y.qs[16..]));
    vmlaq_n_f32(acc, vcvtq_f32_s32(p), h2f(x.d) * h2f(y.d))
}

/// Σ over blocks of `d_w · d_a · Σ kvalues[q] · a`.
///
/// # Safety
/// The CPU must support NEON. `w` and `a` should have the same length (only
/// the common prefix is used).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot_iq4_nl_q8_0_neon(w: &[BlockIq4Nl], a: &[BlockQ8_0]) -> f32 {
    two_block_sum!(w, a, block, iq4_nl::vec_dot_iq4_nl_q8_0_generic)
}

/// Four weight rows against one activation row: `[vec_dot_iq4_nl_q8_0_neon(rows[r], a); 4]`
/// bit for bit, each activation block loaded once for the four rows.
///
/// # Safety
/// As for [`vec_dot_iq4_nl_q8_0_neon`]; each row must hold at least `a.len()` blocks (it
/// panics otherwise).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn vec_dot4_iq4_nl_q8_0_neon(rows: [&[BlockIq4Nl]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
    two_block_sum4!(rows, a, block, iq4_nl::vec_dot_iq4_nl_q8_0_generic)
}
