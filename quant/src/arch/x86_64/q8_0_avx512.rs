//! Q8_0 with AVX-512: the Q8_0 · Q8_0 dot product (VNNI and BW-only builds,
//! one row or four rows per pass) and the f32 → Q8_0 activation quantizer.
//!
//! Two blocks per step fill a 512-bit vector. The weights' signs move onto
//! the activations (`|w|` is at most 128, which `vpdpbusd`/`vpmaddubsw` take
//! as unsigned; activations are never -128). A last odd block goes through
//! the generic kernel.

use super::avx2::PREFETCH;
use super::avx512::*;
use crate::q8_0::{vec_dot_q8_0_q8_0_generic, BlockQ8_0};
use core::arch::x86_64::*;
use half::f16;

macro_rules! kernels {
    ($feat:literal, $dp:path, $rows:ident, $one:ident, $four:ident) => {
        #[inline]
        #[target_feature(enable = $feat)]
        fn $rows<const R: usize>(w: [&[BlockQ8_0]; R], a: &[BlockQ8_0]) -> [f32; R] {
            let n = a.len();
            let w = w.map(|r| &r[..n]);
            let zero = _mm512_setzero_si512();
            let halves = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
            let mut acc = [_mm512_setzero_ps(); R];
            for p in 0..n / 2 {
                let (a0, a1) = (&a[2 * p], &a[2 * p + 1]);
                let av = join256(load32_at(&a0.qs, 0), load32_at(&a1.qs, 0));
                let da = f16x4([a0.d, a1.d, f16::ZERO, f16::ZERO]);
                for r in 0..R {
                    let (w0, w1) = (&w[r][2 * p], &w[r][2 * p + 1]);
                    prefetch_ahead(w0, PREFETCH);
                    let wv = join256(load32_at(&w0.qs, 0), load32_at(&w1.qs, 0));
                    let sa = _mm512_mask_sub_epi8(av, _mm512_movepi8_mask(wv), zero, av);
                    let s = $dp(zero, _mm512_abs_epi8(wv), sa);
                    let d = _mm_mul_ps(f16x4([w0.d, w1.d, f16::ZERO, f16::ZERO]), da);
                    let d = _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(d));
                    acc[r] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[r]);
                }
            }
            let t = n / 2 * 2;
            let mut out = [0.0; R];
            for r in 0..R {
                out[r] = hsum(acc[r]) + vec_dot_q8_0_q8_0_generic(&w[r][t..], &a[t..]);
            }
            out
        }

        /// Q8_0 weights · Q8_0 activations.
        ///
        /// # Safety
        /// The CPU must support the features this function is compiled for.
        /// `w` and `a` hold the same number of blocks.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $one(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
            $rows([w], a)[0]
        }

        /// Four Q8_0 weight rows · one Q8_0 activation row.
        ///
        /// # Safety
        /// As the one-row kernel, for every row.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $four(w: [&[BlockQ8_0]; 4], a: &[BlockQ8_0]) -> [f32; 4] {
            $rows(w, a)
        }
    };
}

kernels!(
    "avx512f,avx512bw,avx512vl,avx2,fma,f16c",
    dpbusd_bw,
    dot_rows_bw,
    vec_dot_q8_0_q8_0_avx512,
    vec_dot4_q8_0_q8_0_avx512
);
kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    _mm512_dpbusd_epi32,
    dot_rows_vnni,
    vec_dot_q8_0_q8_0_avx512vnni,
    vec_dot4_q8_0_q8_0_avx512vnni
);

/// Loads 32 f32 as two vectors.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) fn load_f32x32(x: &[f32; 32]) -> [__m512; 2] {
    // SAFETY: `x` is 32 readable f32; `loadu` needs no alignment.
    unsafe { [_mm512_loadu_ps(x.as_ptr()), _mm512_loadu_ps(x.as_ptr().add(16))] }
}

/// Stores 16 + 16 i32 (each in -128..=127) as 32 i8.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) fn store_i8x32(out: &mut [i8; 32], q: [__m512i; 2]) {
    let v = _mm256_set_m128i(_mm512_cvtsepi32_epi8(q[1]), _mm512_cvtsepi32_epi8(q[0]));
    // SAFETY: `out` is 32 writable bytes; `storeu` needs no alignment.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

/// One block of ggml's x86 SIMD Q8_0 rounding (see the AVX2 twin, which
/// llama.cpp's AVX-512 builds run): `d = amax / 127`,
/// `q = round_half_even(x * (127 / amax))`. Returns the quantized lanes and `d`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) fn quantize_block(x: &[f32; 32]) -> ([__m512i; 2], f32) {
    let v = load_f32x32(x);
    let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1])));
    let d = amax / 127.0;
    let id = _mm512_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let q = v.map(|v| {
        let r = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(v, id));
        _mm512_cvtps_epi32(r) // exact: `r` is integer-valued
    });
    (q, d)
}

/// f32 → Q8_0 with ggml's x86 SIMD arithmetic ([`quantize_block`]).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL, AVX2, FMA and F16C. `x.len() == 32 * out.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8_0_avx512(x: &[f32], out: &mut [BlockQ8_0]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.iter_mut()) {
        let (q, d) = quantize_block(xb.try_into().unwrap());
        ob.d = f16::from_f32(d);
        store_i8x32(&mut ob.qs, q);
    }
}
