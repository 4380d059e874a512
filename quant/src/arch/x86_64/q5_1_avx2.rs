//! Q5_1 · Q8_1 with AVX2: `d*da * sum(q*a) + m * s` as for Q4_1, with 5-bit
//! `q` (the fifth bits spread from `qh` to bytes). Two blocks per step with
//! the activations prepared once per matrix-vector product; an odd last
//! block goes through the generic kernel.

use super::avx2::*;
use crate::q5_1::{vec_dot_q5_1_q8_1_generic, BlockQ5_1};
use crate::q8_1::BlockQ8_1;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prepare(a0: &BlockQ8_1, a1: &BlockQ8_1) -> PairAct {
    let (lo, hi) = act_pair(&a0.qs, &a1.qs);
    let zero = _mm256_setzero_si256();
    PairAct { lo, hi, d: f16x2_repeat(a0.d, a1.d), s: f16x2_repeat(a0.s, a1.s), x: zero, y: zero }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_rows<const R: usize>(w: [&[BlockQ5_1]; R], act: &[PairAct]) -> [f32; R] {
    let w = w.map(|r| &r[..2 * act.len()]);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    // Lanes 2r, 2r+1: row r's sum of m * s.
    let mut acc_m = _mm256_setzero_ps();
    for (p, pa) in act.iter().enumerate() {
        let d = _mm256_mul_ps(f16_rows(w.map(|r| [r[2 * p].d, r[2 * p + 1].d])), pa.d);
        acc_m = _mm256_fmadd_ps(f16_rows(w.map(|r| [r[2 * p].m, r[2 * p + 1].m])), pa.s, acc_m);
        for r in 0..R {
            let (w0, w1) = (&w[r][2 * p], &w[r][2 * p + 1]);
            prefetch_ahead(w0, PREFETCH);
            let (lo, hi) = nibbles_pair(&w0.qs, &w1.qs);
            let (blo, bhi) = bit4_pair(&w0.qh, &w1.qh);
            let (lo, hi) = (_mm256_or_si256(lo, blo), _mm256_or_si256(hi, bhi));
            // |pair sums| <= 31*127*2 per half, 15748 for both: exact in i16.
            let p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, pa.lo), _mm256_maddubs_epi16(hi, pa.hi));
            let p32 = _mm256_madd_epi16(p16, ones);
            acc[r] = _mm256_fmadd_ps(row_halves(d, r), _mm256_cvtepi32_ps(p32), acc[r]);
        }
    }
    let mut out = hsum_rows(acc);
    let mut m = [0.0f32; 8];
    // SAFETY: `m` is 8 writable f32; storeu needs no alignment.
    unsafe { _mm256_storeu_ps(m.as_mut_ptr(), acc_m) };
    for (r, o) in out.iter_mut().enumerate() {
        *o += m[2 * r] + m[2 * r + 1];
    }
    out
}

pair_driver!(BlockQ5_1, BlockQ8_1, vec_dot_q5_1_q8_1_generic);

/// Q5_1 weights · Q8_1 activations.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w` and `a` hold the same number of blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_q5_1_q8_1_avx2(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    let mut out = [0.0];
    gemv_rows(|_| w, a, &mut out);
    out[0]
}

/// Q5_1 matrix · Q8_1 activation row: `out.len()` rows of `row_bytes` bytes.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q5_1_q8_1_avx2(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let w: &[BlockQ5_1] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ5_1>();
    gemv_rows(|r| &w[r * per_row..(r + 1) * per_row], bytemuck::cast_slice(a), out)
}
