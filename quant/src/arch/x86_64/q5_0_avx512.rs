//! Q5_0 · Q8_0 with AVX-512 (VNNI and BW-only builds), in ggml's x86 float
//! order: as Q4_0's AVX-512 kernel (one block of two rows per 512-bit
//! vector, each half in ggml's lane layout with its row's per-lane FMA
//! chain), with the fifth bits of both rows moved into place by one masked
//! byte move (`qh` of two rows is a 64-bit mask), and each row's sum
//! starting from `-16 * sum(a)` per lane. `gemv` takes four rows per pass;
//! `vec_dot` (one row) is the AVX2 kernel, the same arithmetic.

use super::avx2::{f16_to_f32, PREFETCH};
use super::avx512::*;
use crate::q5_0::BlockQ5_0;
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

macro_rules! kernels {
    ($feat:literal, $dp:path, $rows:ident, $gemv:ident) => {
        #[inline]
        #[target_feature(enable = $feat)]
        fn $rows<const P: usize>(w: [[&[BlockQ5_0]; 2]; P], a: &[BlockQ8_0]) -> [[f32; 2]; P] {
            let n = a.len();
            let w = w.map(|pr| pr.map(|r| &r[..n]));
            let sixteen = _mm512_set1_epi8(16);
            let bit4 = _mm512_set1_epi8(0x10);
            let zero = _mm512_setzero_si512();
            let mut acc = [_mm512_setzero_ps(); P];
            for (i, ab) in a.iter().enumerate() {
                let qa = act_both(&ab.qs);
                let neg = _mm512_sub_epi32(zero, $dp(zero, sixteen, qa));
                let da = f16_to_f32(ab.d);
                for p in 0..P {
                    let (w0, w1) = (&w[p][0][i], &w[p][1][i]);
                    prefetch_ahead(w0, PREFETCH);
                    prefetch_ahead(w1, PREFETCH);
                    // Value j's fifth bit is bit j of qh: byte j of row 0, byte 32 + j of row 1.
                    let mask = u32::from_le_bytes(w0.qh) as u64 | (u32::from_le_bytes(w1.qh) as u64) << 32;
                    let q = _mm512_or_si512(nibbles_rows(&w0.qs, &w1.qs), _mm512_maskz_mov_epi8(mask, bit4));
                    let s = $dp(neg, q, qa);
                    let d = halves(f16_to_f32(w0.d) * da, f16_to_f32(w1.d) * da);
                    acc[p] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[p]);
                }
            }
            acc.map(|v| hsum_halves(v))
        }

        row_pairs_gemv!($feat, BlockQ5_0, BlockQ8_0, $rows, $gemv, 2);
    };
}

kernels!("avx512f,avx512bw,avx512vl,avx2,fma,f16c", dpbusd_bw, dot_rows_bw, gemv_q5_0_q8_0_avx512);
kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    _mm512_dpbusd_epi32,
    dot_rows_vnni,
    gemv_q5_0_q8_0_avx512vnni
);
