//! Q4_K · Q8_K with AVX-512 (BW), in ggml's x86 float order.
//!
//! llama.cpp's AVX-512 builds run ggml's AVX2 code for this format, so to
//! give the same bits a 256-bit half holds one row's vector exactly as the
//! AVX2 kernel does: a 512-bit vector holds two rows, the activation sits in
//! both halves, and each half keeps its row's sums and `fma(d, sumi, acc)`
//! chain. The minimums go through each row's 128-bit chain, as in AVX2.
//! `gemv` takes two rows per pass; `vec_dot` (one row) is the AVX2 kernel,
//! the same arithmetic.

use super::avx2::{f16_to_f32, hsum_ps, i16_pick, k4_scales_mins, load8, load_i16x16};
use super::avx512::*;
use super::q4_k_avx2::vec_dot_q4_k_q8_k_avx2;
use crate::q4_k::BlockQ4K;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn dot_rows<const P: usize>(w: [[&[BlockQ4K]; 2]; P], a: &[BlockQ8K]) -> [[f32; 2]; P] {
    let n = a.len();
    let w = w.map(|pr| pr.map(|r| &r[..n]));
    let m4 = _mm512_set1_epi8(0x0f);
    // i16 scale `2j` (low nibbles) and `2j + 1` (high) in every lane.
    let pick: [[__m512i; 2]; 4] = core::array::from_fn(|j| {
        [_mm512_broadcast_i64x4(i16_pick(2 * j, 2 * j)), _mm512_broadcast_i64x4(i16_pick(2 * j + 1, 2 * j + 1))]
    });
    let mut acc = [_mm512_setzero_ps(); P];
    let mut acc_m = [[_mm_setzero_ps(); 2]; P];
    for (i, ab) in a.iter().enumerate() {
        let bs = load_i16x16(&ab.bsums);
        let bsums32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256::<1>(bs));
        let act: [[__m512i; 2]; 4] =
            core::array::from_fn(|j| [act_both32(&ab.qs, 64 * j), act_both32(&ab.qs, 64 * j + 32)]);
        for p in 0..P {
            let mut d = [0.0f32; 2];
            let mut scales = [_mm256_setzero_si256(); 2];
            for h in 0..2 {
                let wb = &w[p][h][i];
                prefetch_block(wb);
                d[h] = ab.d * f16_to_f32(wb.d);
                let dmin = ab.d * f16_to_f32(wb.dmin);
                let (sc, mn) = k4_scales_mins(&wb.scales);
                let prod = _mm_madd_epi16(_mm_cvtepu8_epi16(load8(mn)), bsums32);
                acc_m[p][h] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m[p][h]);
                scales[h] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(load8(sc)));
            }
            let sc2 = join256(scales[0], scales[1]);
            let (w0, w1) = (&w[p][0][i], &w[p][1][i]);
            let mut sumi = _mm512_setzero_si512();
            for j in 0..4 {
                let q4 = join256(load32_at(&w0.qs, 32 * j), load32_at(&w1.qs, 32 * j));
                let lo = _mm512_and_si512(q4, m4);
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(q4), m4);
                let p_lo = _mm512_madd_epi16(_mm512_maddubs_epi16(lo, act[j][0]), _mm512_shuffle_epi8(sc2, pick[j][0]));
                let p_hi = _mm512_madd_epi16(_mm512_maddubs_epi16(hi, act[j][1]), _mm512_shuffle_epi8(sc2, pick[j][1]));
                sumi = _mm512_add_epi32(sumi, _mm512_add_epi32(p_lo, p_hi));
            }
            acc[p] = _mm512_fmadd_ps(halves(d[0], d[1]), _mm512_cvtepi32_ps(sumi), acc[p]);
        }
    }
    let mut out = [[0.0f32; 2]; P];
    for p in 0..P {
        let lo = _mm512_castps512_ps256(acc[p]);
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc[p])));
        for (h, v) in [lo, hi].into_iter().enumerate() {
            let m = acc_m[p][h];
            let m = _mm_add_ps(m, _mm_movehl_ps(m, m));
            let m = _mm_add_ss(m, _mm_movehdup_ps(m));
            out[p][h] = hsum_ps(v) - _mm_cvtss_f32(m);
        }
    }
    out
}

row_pairs_gemv!(
    "avx512f,avx512bw,avx512vl,avx2,fma,f16c",
    BlockQ4K,
    BlockQ8K,
    dot_rows,
    vec_dot_q4_k_q8_k_avx2,
    gemv_q4_k_q8_k_avx512,
    1
);
