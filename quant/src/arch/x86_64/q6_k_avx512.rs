//! Q6_K · Q8_K with AVX-512 (BW), in ggml's x86 float order.
//!
//! As the Q4_K AVX-512 kernel: a 512-bit vector holds two rows, each 256-bit
//! half exactly the AVX2 kernel's vector for its row (`(q - 32) * a` per
//! pair, times the group's scale, summed per lane; one `fma(d, sumi, acc)`
//! per block), so the bits match llama.cpp's (its AVX-512 builds run ggml's
//! AVX2 code). The activations and their `32 * a` offsets are computed once
//! per block for both rows. `gemv` takes two rows per pass; `vec_dot` (one
//! row) is the AVX2 kernel, the same arithmetic.

use super::avx2::{f16_to_f32, i16_pick};
use super::avx512::*;
use super::q6_k_avx2::vec_dot_q6_k_q8_k_avx2;
use crate::q6_k::BlockQ6K;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn dot_rows<const P: usize>(w: [[&[BlockQ6K]; 2]; P], a: &[BlockQ8K]) -> [[f32; 2]; P] {
    let n = a.len();
    let w = w.map(|pr| pr.map(|r| &r[..n]));
    let m4 = _mm512_set1_epi8(0x0f);
    let m32 = _mm512_set1_epi8(32);
    // Vector k of a half: groups 2k (low 128 bits) and 2k + 1 (high) of the half's 8.
    let pick: [__m512i; 4] = core::array::from_fn(|k| _mm512_broadcast_i64x4(i16_pick(2 * k, 2 * k + 1)));
    let mut acc = [_mm512_setzero_ps(); P];
    for (i, ab) in a.iter().enumerate() {
        // Activations of values 128h + 32k.. in both halves, and their 32 * a pair sums.
        let act: [[__m512i; 4]; 2] =
            core::array::from_fn(|h| core::array::from_fn(|k| act_both32(&ab.qs, 128 * h + 32 * k)));
        let off: [[__m512i; 4]; 2] = act.map(|v| v.map(|x| _mm512_maddubs_epi16(m32, x)));
        for p in 0..P {
            let (w0, w1) = (&w[p][0][i], &w[p][1][i]);
            prefetch_block(w0);
            prefetch_block(w1);
            let d = halves(ab.d * f16_to_f32(w0.d), ab.d * f16_to_f32(w1.d));
            let sc16 = [_mm256_cvtepi8_epi16(load16(&w0.scales)), _mm256_cvtepi8_epi16(load16(&w1.scales))];
            let mut sumi = _mm512_setzero_si512();
            for h in 0..2 {
                // Scales of groups 8h..8h+8 of each row, in both 128-bit lanes of its half.
                let sc = sc16.map(|s| {
                    if h == 0 {
                        _mm256_permute2x128_si256::<0x00>(s, s)
                    } else {
                        _mm256_permute2x128_si256::<0x11>(s, s)
                    }
                });
                let sc2 = join256(sc[0], sc[1]);
                let ql0 = join256(load32_at(&w0.ql, 64 * h), load32_at(&w1.ql, 64 * h));
                let ql1 = join256(load32_at(&w0.ql, 64 * h + 32), load32_at(&w1.ql, 64 * h + 32));
                let qh = join256(load32_at(&w0.qh, 32 * h), load32_at(&w1.qh, 32 * h));
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
                for k in 0..4 {
                    let p16 = _mm512_sub_epi16(_mm512_maddubs_epi16(q[k], act[h][k]), off[h][k]);
                    sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p16, _mm512_shuffle_epi8(sc2, pick[k])));
                }
            }
            acc[p] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi), acc[p]);
        }
    }
    acc.map(|v| hsum_halves(v))
}

row_pairs_gemv!(
    "avx512f,avx512bw,avx512vl,avx2,fma,f16c",
    BlockQ6K,
    BlockQ8K,
    dot_rows,
    vec_dot_q6_k_q8_k_avx2,
    gemv_q6_k_q8_k_avx512,
    1
);
