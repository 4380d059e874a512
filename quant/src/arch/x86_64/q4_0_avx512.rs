//! Q4_0 · Q8_0 with AVX-512 (VNNI and BW-only builds), in ggml's x86 float
//! order.
//!
//! llama.cpp's AVX-512 builds run ggml's AVX2 code for this format (with
//! `vpdpbusd` for the integer sums where VNNI exists), so to give the same
//! bits a 256-bit half still holds one block of one row in ggml's lane
//! layout: a 512-bit vector holds the same block of two rows, the activation
//! block sits in both halves, and each half keeps its row's per-lane chain
//! `fma(d_w*d_a, sum_l, acc_l)`, reduced with ggml's `hsum_float_8`. Every
//! row's sum starts from `-8 * sum(a)` per lane. `gemv` takes four rows per
//! pass; `vec_dot` (one row) is the AVX2 kernel, the same arithmetic.

use super::avx2::{f16_to_f32, PREFETCH};
use super::avx512::*;
use super::q4_0_avx2::vec_dot_q4_0_q8_0_avx2;
use crate::q4_0::BlockQ4_0;
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

macro_rules! kernels {
    ($feat:literal, $dp:path, $rows:ident, $gemv:ident) => {
        #[inline]
        #[target_feature(enable = $feat)]
        fn $rows<const P: usize>(w: [[&[BlockQ4_0]; 2]; P], a: &[BlockQ8_0]) -> [[f32; 2]; P] {
            let n = a.len();
            let w = w.map(|pr| pr.map(|r| &r[..n]));
            let eight = _mm512_set1_epi8(8);
            let zero = _mm512_setzero_si512();
            let mut acc = [_mm512_setzero_ps(); P];
            for (i, ab) in a.iter().enumerate() {
                let qa = act_both(&ab.qs);
                let neg = _mm512_sub_epi32(zero, $dp(zero, eight, qa));
                let da = f16_to_f32(ab.d);
                for p in 0..P {
                    let (w0, w1) = (&w[p][0][i], &w[p][1][i]);
                    prefetch_ahead(w0, PREFETCH);
                    prefetch_ahead(w1, PREFETCH);
                    let s = $dp(neg, nibbles_rows(&w0.qs, &w1.qs), qa);
                    let d = halves(f16_to_f32(w0.d) * da, f16_to_f32(w1.d) * da);
                    acc[p] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[p]);
                }
            }
            acc.map(|v| hsum_halves(v))
        }

        row_pairs_gemv!($feat, BlockQ4_0, BlockQ8_0, $rows, vec_dot_q4_0_q8_0_avx2, $gemv, 2);
    };
}

kernels!("avx512f,avx512bw,avx512vl,avx2,fma,f16c", dpbusd_bw, dot_rows_bw, gemv_q4_0_q8_0_avx512);
kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    _mm512_dpbusd_epi32,
    dot_rows_vnni,
    gemv_q4_0_q8_0_avx512vnni
);
