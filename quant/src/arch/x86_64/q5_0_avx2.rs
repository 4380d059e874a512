//! Q5_0 · Q8_0 with AVX2.
//!
//! The 5-bit values (0..=31: nibbles plus the fifth bits spread from `qh`)
//! multiply the activations with `maddubs`; the `-16` offset is
//! `16 * sum(a)`. Two blocks per step with the activations prepared once per
//! matrix-vector product, as for Q4_0; an odd last block goes through the
//! generic kernel.

use super::avx2::*;
use crate::q5_0::{vec_dot_q5_0_q8_0_generic, BlockQ5_0};
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prepare(a0: &BlockQ8_0, a1: &BlockQ8_0) -> PairAct {
    let (lo, hi) = act_pair(&a0.qs, &a1.qs);
    let sixteen = _mm256_set1_epi8(16);
    // |pair sums| <= 16*127*2 each, 8128 for both halves: exact in i16.
    let off = _mm256_add_epi16(_mm256_maddubs_epi16(sixteen, lo), _mm256_maddubs_epi16(sixteen, hi));
    let x = _mm256_madd_epi16(off, _mm256_set1_epi16(1));
    let zero = _mm256_setzero_si256();
    PairAct { lo, hi, d: f16x2_repeat(a0.d, a1.d), s: _mm256_setzero_ps(), x, y: zero }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ5_0]; R], act: &[PairAct]) -> [f32; R] {
    let w = w.map(|r| &r[..2 * act.len()]);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for (p, pa) in act.iter().enumerate() {
        let d = _mm256_mul_ps(f16_rows(w.map(|r| [r[2 * p].d, r[2 * p + 1].d])), pa.d);
        for r in 0..R {
            let (w0, w1) = (&w[r][2 * p], &w[r][2 * p + 1]);
            prefetch_ahead(w0, PREFETCH);
            let (lo, hi) = nibbles_pair(&w0.qs, &w1.qs);
            let (blo, bhi) = bit4_pair(&w0.qh, &w1.qh);
            let (lo, hi) = (_mm256_or_si256(lo, blo), _mm256_or_si256(hi, bhi));
            // |pair sums| <= 31*127*2 per half, 15748 for both: exact in i16.
            let p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, pa.lo), _mm256_maddubs_epi16(hi, pa.hi));
            let p32 = _mm256_sub_epi32(_mm256_madd_epi16(p16, ones), pa.x);
            acc[r] = _mm256_fmadd_ps(row_halves(d, r), _mm256_cvtepi32_ps(p32), acc[r]);
        }
    }
    hsum_rows(acc)
}

pair_driver!(BlockQ5_0, BlockQ8_0, vec_dot_q5_0_q8_0_generic);

/// Q5_0 weights · Q8_0 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_0_q8_0_avx2(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    let mut out = [0.0];
    gemv_rows(|_| w, a, &mut out);
    out[0]
}

/// Q5_0 matrix · Q8_0 activation row: `out.len()` rows of `row_bytes` bytes.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q5_0_q8_0_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let w: &[BlockQ5_0] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ5_0>();
    gemv_rows(|r| &w[r * per_row..(r + 1) * per_row], bytemuck::cast_slice(a), out)
}
