//! Q5_0 · Q8_0 with AVX-512 (VNNI and BW-only builds), one row or four rows
//! per pass. Four blocks per step laid out as in Q4_0's AVX-512 kernel; the
//! fifth bits become bytes with one masked move (`qh` bits are a mask
//! register's worth), and every row's sum starts from `-16 * sum(a)`. The
//! last `n % 4` blocks go through the generic kernel.

use super::avx2::PREFETCH;
use super::avx512::*;
use crate::q5_0::{vec_dot_q5_0_q8_0_generic, BlockQ5_0};
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;

macro_rules! kernels {
    ($feat:literal, $dp:path, $rows:ident, $one:ident, $four:ident) => {
        #[inline]
        #[target_feature(enable = $feat)]
        fn $rows<const R: usize>(w: [&[BlockQ5_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
            let n = a.len();
            let w = w.map(|r| &r[..n]);
            let sixteen = _mm512_set1_epi8(16);
            let zero = _mm512_setzero_si512();
            let mut acc = [_mm512_setzero_ps(); R];
            for q in 0..n / 4 {
                let ab: [&BlockQ8_0; 4] = core::array::from_fn(|k| &a[4 * q + k]);
                let (alo, ahi) = act_quad(ab.map(|b| &b.qs));
                let neg = _mm512_sub_epi32(zero, $dp($dp(zero, sixteen, alo), sixteen, ahi));
                let da = f16x4_quarters(ab.map(|b| b.d));
                for r in 0..R {
                    let wb: [&BlockQ5_0; 4] = core::array::from_fn(|k| &w[r][4 * q + k]);
                    prefetch_ahead(wb[0], PREFETCH);
                    let (lo, hi) = nibbles_quad(wb.map(|b| &b.qs));
                    let (blo, bhi) = bit4_quad(wb.map(|b| &b.qh));
                    let (lo, hi) = (_mm512_or_si512(lo, blo), _mm512_or_si512(hi, bhi));
                    let p = $dp($dp(neg, lo, alo), hi, ahi);
                    let d = _mm512_mul_ps(f16x4_quarters(wb.map(|b| b.d)), da);
                    acc[r] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[r]);
                }
            }
            let t = n / 4 * 4;
            let mut out = [0.0; R];
            for r in 0..R {
                out[r] = hsum(acc[r]) + vec_dot_q5_0_q8_0_generic(&w[r][t..], &a[t..]);
            }
            out
        }

        /// Q5_0 weights · Q8_0 activations.
        ///
        /// # Safety
        /// The CPU must support the features this function is compiled for.
        /// `w` and `a` hold the same number of blocks.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $one(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
            $rows([w], a)[0]
        }

        /// Four Q5_0 weight rows · one Q8_0 activation row.
        ///
        /// # Safety
        /// As the one-row kernel, for every row.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $four(w: [&[BlockQ5_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
            $rows(w, a)
        }
    };
}

kernels!(
    "avx512f,avx512bw,avx512vl,avx2,fma,f16c",
    dpbusd_bw,
    dot_rows_bw,
    vec_dot_q5_0_q8_0_avx512,
    vec_dot4_q5_0_q8_0_avx512
);
kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    _mm512_dpbusd_epi32,
    dot_rows_vnni,
    vec_dot_q5_0_q8_0_avx512vnni,
    vec_dot4_q5_0_q8_0_avx512vnni
);
