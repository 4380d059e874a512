//! Q4_0 · Q8_0 with AVX-512, one row or four rows per pass over the
//! activation, in two builds: with VNNI (`vpdpbusd`) and with BW only.
//!
//! Four blocks per step: one vector holds four blocks' nibbles (block k's
//! values 0..16 in bytes 16k..16k+16, values 16..32 in a second vector), the
//! activations are rearranged once per step to meet them, and every row's
//! integer sum starts from `-8 * sum(a)`. The last `n % 4` blocks go through
//! the generic kernel.

use super::avx2::PREFETCH;
use super::avx512::*;
use crate::q4_0::{vec_dot_q4_0_q8_0_generic, BlockQ4_0};
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

macro_rules! kernels {
    ($feat:literal, $dp:path, $rows:ident, $one:ident, $four:ident) => {
        #[inline]
        #[target_feature(enable = $feat)]
        fn $rows<const R: usize>(w: [&[BlockQ4_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
            let n = a.len();
            let w = w.map(|r| &r[..n]);
            let eight = _mm512_set1_epi8(8);
            let zero = _mm512_setzero_si512();
            let mut acc = [_mm512_setzero_ps(); R];
            for q in 0..n / 4 {
                let ab: [&BlockQ8_0; 4] = core::array::from_fn(|k| &a[4 * q + k]);
                let (alo, ahi) = act_quad(ab.map(|b| &b.qs));
                let neg = _mm512_sub_epi32(zero, $dp($dp(zero, eight, alo), eight, ahi));
                let da = f16x4_quarters(ab.map(|b| b.d));
                for r in 0..R {
                    let wb: [&BlockQ4_0; 4] = core::array::from_fn(|k| &w[r][4 * q + k]);
                    prefetch_ahead(wb[0], PREFETCH);
                    let (lo, hi) = nibbles_quad(wb.map(|b| &b.qs));
                    let p = $dp($dp(neg, lo, alo), hi, ahi);
                    let d = _mm512_mul_ps(f16x4_quarters(wb.map(|b| b.d)), da);
                    acc[r] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[r]);
                }
            }
            let t = n / 4 * 4;
            let mut out = [0.0; R];
            for r in 0..R {
                out[r] = hsum(acc[r]) + vec_dot_q4_0_q8_0_generic(&w[r][t..], &a[t..]);
            }
            out
        }

        /// Q4_0 weights · Q8_0 activations.
        ///
        /// # Safety
        /// The CPU must support the features this function is compiled for.
        /// `w` and `a` hold the same number of blocks.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $one(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
            $rows([w], a)[0]
        }

        /// Four Q4_0 weight rows · one Q8_0 activation row.
        ///
        /// # Safety
        /// As the one-row kernel, for every row.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $four(w: [&[BlockQ4_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
            $rows(w, a)
        }
    };
}

kernels!(
    "avx512f,avx512bw,avx512vl,avx2,fma,f16c",
    dpbusd_bw,
    dot_rows_bw,
    vec_dot_q4_0_q8_0_avx512,
    vec_dot4_q4_0_q8_0_avx512
);
kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    _mm512_dpbusd_epi32,
    dot_rows_vnni,
    vec_dot_q4_0_q8_0_avx512vnni,
    vec_dot4_q4_0_q8_0_avx512vnni
);
