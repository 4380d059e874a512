//! IQ4_NL · Q8_0 with AVX2 (not in ggml's float order: two blocks share a
//! vector, so results may differ from llama.cpp's in the last bits).
//!
//! The nibbles index the non-linear table with one byte shuffle. The table's
//! values lie in -127..=113 (never -128), so the signs move onto them:
//! `|a|` is prepared once per matrix-vector product with the rest of the
//! activations ([`PairAct`]) and `sign(q, a)` is taken per row, then one
//! `maddubs` per vector. Two blocks per step; an odd last block goes through
//! the generic kernel.

use super::avx2::*;
use crate::iq4_nl::{vec_dot_iq4_nl_q8_0_generic, BlockIq4Nl};
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

/// ggml's `kvalues_iq4nl`: the value each 4-bit index stands for.
const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prepare(a0: &BlockQ8_0, a1: &BlockQ8_0) -> PairAct {
    let (lo, hi) = act_pair(&a0.qs, &a1.qs);
    let (x, y) = (_mm256_sign_epi8(lo, lo), _mm256_sign_epi8(hi, hi));
    PairAct { lo, hi, d: f16x2_repeat(a0.d, a1.d), x, y }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockIq4Nl]; R], act: &[PairAct]) -> [f32; R] {
    let w = w.map(|r| &r[..2 * act.len()]);
    let ones = _mm256_set1_epi16(1);
    let lut = _mm256_broadcastsi128_si256(load16(&KVALUES_IQ4NL));
    let mut acc = [_mm256_setzero_ps(); R];
    for (p, pa) in act.iter().enumerate() {
        let d = _mm256_mul_ps(f16_rows(w.map(|r| [r[2 * p].d, r[2 * p + 1].d])), pa.d);
        for r in 0..R {
            let (w0, w1) = (&w[r][2 * p], &w[r][2 * p + 1]);
            prefetch_ahead(w0, PREFETCH);
            let (lo, hi) = nibbles_pair(&w0.qs, &w1.qs);
            let qlo = _mm256_sign_epi8(_mm256_shuffle_epi8(lut, lo), pa.lo);
            let qhi = _mm256_sign_epi8(_mm256_shuffle_epi8(lut, hi), pa.hi);
            // |a| <= 127 times |q| <= 127: pair sums <= 32258, exact in i16.
            let p32 = _mm256_add_epi32(
                _mm256_madd_epi16(_mm256_maddubs_epi16(pa.x, qlo), ones),
                _mm256_madd_epi16(_mm256_maddubs_epi16(pa.y, qhi), ones),
            );
            acc[r] = _mm256_fmadd_ps(row_halves(d, r), _mm256_cvtepi32_ps(p32), acc[r]);
        }
    }
    hsum_rows(acc)
}

pair_driver!(BlockIq4Nl, BlockQ8_0, vec_dot_iq4_nl_q8_0_generic);

/// IQ4_NL weights · Q8_0 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_iq4_nl_q8_0_avx2(w: &[BlockIq4Nl], a: &[BlockQ8_0]) -> f32 {
    let mut out = [0.0];
    gemv_rows(|_| w, a, &mut out);
    out[0]
}

/// IQ4_NL matrix · Q8_0 activation row: `out.len()` rows of `row_bytes` bytes.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_iq4_nl_q8_0_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let w: &[BlockIq4Nl] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockIq4Nl>();
    gemv_rows(|r| &w[r * per_row..(r + 1) * per_row], bytemuck::cast_slice(a), out)
}
