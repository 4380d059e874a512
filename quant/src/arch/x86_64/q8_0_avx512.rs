//! Q8_0 with AVX-512: the Q8_0 · Q8_0 `gemv` (VNNI and BW-only builds) and
//! the f32 → Q8_0 activation quantizer.
//!
//! The dot product is in ggml's x86 float order, as llama.cpp's AVX-512
//! builds compute it (ggml's AVX2 code): one block of two rows per 512-bit
//! vector, each 256-bit half in ggml's lane layout with its row's per-lane
//! chain `fma(d_w*d_a, sum_l, acc_l)`, reduced with ggml's `hsum_float_8`.
//! The weights' signs move onto the activations (`|w|` is at most 128, which
//! `vpdpbusd`/`vpmaddubsw` take as unsigned; activations are never -128).
//! `vec_dot` (one row) is the AVX2 kernel, the same arithmetic.

use super::avx2::{f16_to_f32, PREFETCH};
use super::avx512::*;
use crate::q8_0::BlockQ8_0;
use core::arch::x86_64::*;
use half::f16;

macro_rules! kernels {
    ($feat:literal, $dp:path, $rows:ident, $gemv:ident) => {
        #[inline]
        #[target_feature(enable = $feat)]
        fn $rows<const P: usize>(w: [[&[BlockQ8_0]; 2]; P], a: &[BlockQ8_0]) -> [[f32; 2]; P] {
            let n = a.len();
            let w = w.map(|pr| pr.map(|r| &r[..n]));
            let zero = _mm512_setzero_si512();
            let mut acc = [_mm512_setzero_ps(); P];
            for (i, ab) in a.iter().enumerate() {
                let qa = act_both(&ab.qs);
                let da = f16_to_f32(ab.d);
                for p in 0..P {
                    let (w0, w1) = (&w[p][0][i], &w[p][1][i]);
                    prefetch_ahead(w0, PREFETCH);
                    prefetch_ahead(w1, PREFETCH);
                    let wv = join256(load32_at(&w0.qs, 0), load32_at(&w1.qs, 0));
                    let sa = _mm512_mask_sub_epi8(qa, _mm512_movepi8_mask(wv), zero, qa);
                    let s = $dp(zero, _mm512_abs_epi8(wv), sa);
                    let d = halves(f16_to_f32(w0.d) * da, f16_to_f32(w1.d) * da);
                    acc[p] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[p]);
                }
            }
            acc.map(|v| hsum_halves(v))
        }

        row_pairs_gemv!($feat, BlockQ8_0, BlockQ8_0, $rows, $gemv, 1);
    };
}

kernels!("avx512f,avx512bw,avx512vl,avx2,fma,f16c", dpbusd_bw, dot_rows_bw, gemv_q8_0_q8_0_avx512);
kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    _mm512_dpbusd_epi32,
    dot_rows_vnni,
    gemv_q8_0_q8_0_avx512vnni
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
