//! Q6_K · Q8_K gemv with AVX-512 (F, BW, VL), bit-identical to
//! [`super::q6_k_avx2`] (ggml 0c1e570's x86 lane order, stated there).
//!
//! One block of two rows per 512-bit vector: each 256-bit half holds its
//! row's eight i32 lanes exactly as the AVX2 kernel builds them (the same
//! bytes per lane, so the same exact integer per lane), then the per-lane
//! `fma(d, sum, acc)` chain and ggml's `hsum_float_8` per half. Two rows per
//! pass (the AVX2 gemv takes one: each row is a memory stream); an odd last
//! row and `vec_dot` go through the AVX2 kernel. No VNNI build: the group
//! scales multiply i16 pair sums (`vpmaddwd`), which `vpdpbusd` could only
//! replace with an extra 32-bit multiply. The tiled order of prompt batches
//! of 8+ rows stays [`super::q6_k_avx2::gemm_tiled_order_avx2`].
//!
//! Timed on a Zen 4 VM: see the `x86_64` module docs (the AVX-512 table is
//! not the default there).
//! `scripts/test-x86-avx512.sh` checks it bit for bit against the AVX2
//! kernel under Bochs.

use super::avx2::{f16_to_f32, i16_pick, load16, load_i16x16, prefetch_block};
use super::avx512::{halves, hsum_halves, join256, load32_at, row_pairs_gemv};
use crate::q6_k::BlockQ6K;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

/// `P` pairs of Q6_K rows · one Q8_K activation row.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn dot_pairs<const P: usize>(w: [[&[BlockQ6K]; 2]; P], a: &[BlockQ8K]) -> [[f32; 2]; P] {
    let n = a.len();
    let mut wt = w;
    for p in 0..P {
        wt[p] = [&w[p][0][..n], &w[p][1][..n]];
    }
    let w = wt;
    let m4 = _mm512_set1_epi8(0x0f);
    let pick = |lo: usize, hi: usize| _mm512_broadcast_i64x4(i16_pick(lo, hi));
    let mut acc = [_mm512_setzero_ps(); P];
    for (i, ab) in a.iter().enumerate() {
        let bsums = _mm512_broadcast_i64x4(load_i16x16(&ab.bsums));
        for p in 0..P {
            let (x, y) = (&w[p][0][i], &w[p][1][i]);
            prefetch_block(x);
            prefetch_block(y);
            let d = halves(ab.d * f16_to_f32(x.d), ab.d * f16_to_f32(y.d));
            // Row x's 16 scales as i16 in the low half, row y's in the high half.
            let sc16 = join256(_mm256_cvtepi8_epi16(load16(&x.scales)), _mm256_cvtepi8_epi16(load16(&y.scales)));
            let mut sumi = _mm512_setzero_si512();
            for h in 0..2 {
                // Scales of groups 8h..8h+8 of each row, in both 128-bit lanes of its half.
                let sc = if h == 0 {
                    _mm512_shuffle_i64x2::<0b10_10_00_00>(sc16, sc16)
                } else {
                    _mm512_shuffle_i64x2::<0b11_11_01_01>(sc16, sc16)
                };
                let ql0 = join256(load32_at(&x.ql, 64 * h), load32_at(&y.ql, 64 * h));
                let ql1 = join256(load32_at(&x.ql, 64 * h + 32), load32_at(&y.ql, 64 * h + 32));
                let qh = join256(load32_at(&x.qh, 32 * h), load32_at(&y.qh, 32 * h));
                let q = [
                    _mm512_or_si512(
                        _mm512_and_si512(ql0, m4),
                        _mm512_slli_epi16::<4>(_mm512_and_si512(qh, _mm512_set1_epi8(0x03))),
                    ),
                    _mm512_or_si512(
                        _mm512_and_si512(ql1, m4),
                        _mm512_slli_epi16::<2>(_mm512_and_si512(qh, _mm512_set1_epi8(0x0c))),
                    ),
                    _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16::<4>(ql0), m4),
                        _mm512_and_si512(qh, _mm512_set1_epi8(0x30)),
                    ),
                    _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16::<4>(ql1), m4),
                        _mm512_srli_epi16::<2>(_mm512_and_si512(qh, _mm512_set1_epi8(0xc0u8 as i8))),
                    ),
                ];
                for (k, q) in q.into_iter().enumerate() {
                    let qa = _mm512_broadcast_i64x4(load32_at(&ab.qs, 128 * h + 32 * k));
                    // |q * a pairs| <= 63 * 128 * 2: exact in i16.
                    let s = _mm512_maddubs_epi16(q, qa);
                    let s = _mm512_madd_epi16(s, _mm512_shuffle_epi8(sc, pick(2 * k, 2 * k + 1)));
                    sumi = _mm512_add_epi32(sumi, s);
                }
            }
            // ggml's q8sclsub: 32 * (bsums · scales), pairs of groups per lane.
            let sub = _mm512_slli_epi32::<5>(_mm512_madd_epi16(bsums, sc16));
            let sumi = _mm512_sub_epi32(sumi, sub);
            acc[p] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi), acc[p]);
        }
    }
    let mut out = [[0.0f32; 2]; P];
    for p in 0..P {
        out[p] = hsum_halves(acc[p]);
    }
    out
}

row_pairs_gemv!("avx512f,avx512bw,avx512vl,avx2,fma,f16c", BlockQ6K, BlockQ8K, dot_pairs, gemv_q6_k_q8_k_avx512, 1);
