//! Q4_1 · Q8_1 with AVX-512 (VNNI and BW-only builds), in ggml's x86 float
//! order: as Q4_0's AVX-512 kernel (one block of two rows per 512-bit
//! vector, each half in ggml's lane layout with its row's per-lane FMA
//! chain), plus each row's `m * s` chain, as llama.cpp's AVX-512 builds
//! compute `ggml_vec_dot_q4_1_q8_1`. `gemv` takes four rows per pass;
//! `vec_dot` (one row) is the AVX2 kernel, the same arithmetic.

use super::avx2::{f16_rows, f16_to_f32, PREFETCH};
use super::avx512::*;
use crate::q4_1::BlockQ4_1;
use crate::q8_1::BlockQ8_1;
use core::arch::x86_64::*;

macro_rules! kernels {
    ($feat:literal, $dp:path, $rows:ident, $gemv:ident) => {
        #[inline]
        #[target_feature(enable = $feat)]
        fn $rows<const P: usize>(w: [[&[BlockQ4_1]; 2]; P], a: &[BlockQ8_1]) -> [[f32; 2]; P] {
            const { assert!(P <= 2) };
            let n = a.len();
            let w = w.map(|pr| pr.map(|r| &r[..n]));
            let zero = _mm512_setzero_si512();
            let mut acc = [_mm512_setzero_ps(); P];
            // Lane 2r: row r's `m * s` chain (row r = 2p + half).
            let mut acc_m = _mm256_setzero_ps();
            for (i, ab) in a.iter().enumerate() {
                let qa = act_both(&ab.qs);
                let da = f16_to_f32(ab.d);
                let s = f16_to_f32(ab.s);
                let sa = _mm256_setr_ps(s, 0.0, s, 0.0, s, 0.0, s, 0.0);
                let mut dm = [[half::f16::ZERO; 2]; 4];
                for p in 0..P {
                    dm[2 * p] = [w[p][0][i].d, w[p][0][i].m];
                    dm[2 * p + 1] = [w[p][1][i].d, w[p][1][i].m];
                }
                let dmv = f16_rows(dm);
                acc_m = _mm256_fmadd_ps(
                    _mm256_permutevar8x32_ps(dmv, _mm256_setr_epi32(1, 1, 3, 3, 5, 5, 7, 7)),
                    sa,
                    acc_m,
                );
                for p in 0..P {
                    let (w0, w1) = (&w[p][0][i], &w[p][1][i]);
                    prefetch_ahead(w0, PREFETCH);
                    prefetch_ahead(w1, PREFETCH);
                    let q = $dp(zero, nibbles_rows(&w0.qs, &w1.qs), qa);
                    let d = halves(f16_to_f32(w0.d) * da, f16_to_f32(w1.d) * da);
                    acc[p] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(q), acc[p]);
                }
            }
            let mut m = [0.0f32; 8];
            // SAFETY: `m` is 8 writable f32; storeu needs no alignment.
            unsafe { _mm256_storeu_ps(m.as_mut_ptr(), acc_m) };
            let mut out = [[0.0f32; 2]; P];
            for p in 0..P {
                let h = hsum_halves(acc[p]);
                out[p] = [h[0] + m[4 * p], h[1] + m[4 * p + 2]];
            }
            out
        }

        row_pairs_gemv!($feat, BlockQ4_1, BlockQ8_1, $rows, $gemv, 2);
    };
}

kernels!("avx512f,avx512bw,avx512vl,avx2,fma,f16c", dpbusd_bw, dot_rows_bw, gemv_q4_1_q8_1_avx512);
kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    _mm512_dpbusd_epi32,
    dot_rows_vnni,
    gemv_q4_1_q8_1_avx512vnni
);
