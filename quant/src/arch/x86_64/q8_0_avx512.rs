//! Q8_0 with AVX-512: the Q8_0 · Q8_0 gemv and prompt gemm with 256-bit
//! VNNI ([`gemv_q8_0_q8_0_vnni256`], [`gemm_q8_0_q8_0_vnni256`]: the AVX2
//! kernels' layouts and bits, in the default table too), the 512-bit gemv
//! of CPUs without VNNI (BW only) and the f32 → Q8_0 activation quantizer.
//!
//! The 512-bit gemv:
//! The dot product is in ggml's x86 float order, as llama.cpp's AVX-512
//! builds compute it (ggml's AVX2 code): one block of two rows per 512-bit
//! vector, each 256-bit half in ggml's lane layout with its row's per-lane
//! chain `fma(d_w*d_a, sum_l, acc_l)`, reduced with ggml's `hsum_float_8`.
//! The weights' signs move onto the activations (`|w|` is at most 128, which
//! `vpdpbusd`/`vpmaddubsw` take as unsigned; activations are never -128).
//! `vec_dot` (one row) is the AVX2 kernel, the same arithmetic.

use super::avx2::{f16_to_f32, tile8_gemm, trim, Tile8Format, PREFETCH};
use super::avx512::*;
use super::q5_0_avx2::ActU;
use super::q8_0_avx2::{gemm_q8_0_q8_0_avx2, gemm_q8_0_q8_0_long_avx2, groups8, TILE_BLOCKS};
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

/// [`dot_i8`](super::avx2::dot_i8) with 256-bit VNNI: the weights' signs
/// move onto the activations and one `vpdpbusd` sums each group of four
/// `|w| * ±a` into its i32 lane. `vpmaddubsw` cannot saturate on these
/// operands (`|w| <= 128`, `±a` in -128..=127: a pair is at most 32 512
/// and at least -32 768), so its pair sums, and `vpmaddwd`'s lanes, are the
/// exact sums this computes: the same bits.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot_i8_vnni(w: __m256i, a: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w))
}

super::q8_0_avx2::q8_0_gemv!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    dot_i8_vnni,
    chunk_rows_vnni256,
    dot_rows_vnni256,
    gemv_q8_0_q8_0_vnni256
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

// ------------------------------------------------ prompt gemm, 256-bit VNNI ----

/// [`tile8_gemm`]'s Q8_0 format with 256-bit `vpdpbusd` (AVX-512 VL + VNNI):
/// a [`TileV`] of the values `w` and [`dot_tile_v`].
///
/// Lane `p` of group `g` is `sum_j (a_j + 128) * w_j - 128 * sum_j w_j =
/// sum_j w_j * a_j`, exactly the i32 the AVX2 gemm's `vpsignb`,
/// `vpmaddubsw` and `vpmaddwd` give when no activation is -128 (no i16 pair
/// reaches saturation: |w| <= 128, |a| <= 127), so the same f32 chains see
/// the same values and every output keeps its bits. (ggml's sign trick
/// turns an activation of -128 against a negative weight into `|w| *
/// -128`; ember's quantizers never write -128, and
/// [`gemm_q8_0_q8_0_vnni256`] hands a batch holding one to the AVX2 gemm.)
/// Two activation rows share each tile load ([`Tile8Format::dot2`]).
struct Q8_0TileVnni;

impl Tile8Format for Q8_0TileVnni {
    type W = BlockQ8_0;
    tile_v_format!();

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn unpack8(w: [&[BlockQ8_0]; 8], n: usize, t: &mut TileV) {
        let wr = trim(w, n.min(TILE_BLOCKS));
        let u128 = _mm256_set1_epi8(i8::MIN);
        let zero = _mm256_setzero_si256();
        for (b, ((tw, tc), d)) in t.w.iter_mut().zip(t.c.iter_mut()).zip(t.d.iter_mut()).enumerate().take(n) {
            let (g, dw) = groups8(&wr, b);
            for ((tw, tc), z) in tw.iter_mut().zip(tc.iter_mut()).zip(g) {
                *tw = z;
                // -128 * (sum of the 4 values): 128 (unsigned) times each, summed, negated.
                *tc = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, u128, z));
            }
            *d = dw;
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn long_rows(w: &[u8], row_bytes: usize, acts: &[u8], act_row_bytes: usize, out: &mut [f32], stride: usize) {
        // SAFETY: same CPU and buffer contract (AVX2, FMA, F16C are among this function's features).
        unsafe { gemm_q8_0_q8_0_long_avx2(w, row_bytes, acts, act_row_bytes, out, stride) }
    }
}

/// Q8_0 matrix · several Q8_0 activation rows ([`crate::kernels::GemmFn`]),
/// the AVX2 gemm's tiled order with 256-bit `vpdpbusd` ([`Q8_0TileVnni`]):
/// every output equals [`super::q8_0_avx2::gemm_q8_0_q8_0_avx2`]'s bit for bit.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL and VNNI, AVX2, FMA and F16C; the
/// buffers satisfy [`crate::kernels::GemmFn`]'s contract.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn gemm_q8_0_q8_0_vnni256(
    w: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_row_bytes: usize,
    out: &mut [f32],
    stride: usize,
) {
    let a: &[BlockQ8_0] = bytemuck::cast_slice(acts);
    let m128 = _mm256_set1_epi8(i8::MIN);
    let mut any = _mm256_setzero_si256();
    for ab in a {
        any = _mm256_or_si256(any, _mm256_cmpeq_epi8(load32_at(&ab.qs, 0), m128));
    }
    if _mm256_testz_si256(any, any) == 0 {
        // An activation of -128 (see Q8_0TileVnni): the AVX2 gemm's arithmetic.
        // SAFETY: same CPU and buffer contract (AVX2, FMA, F16C are among this function's features).
        return unsafe { gemm_q8_0_q8_0_avx2(w, row_bytes, acts, act_row_bytes, out, stride) };
    }
    // SAFETY: same CPU and buffer contract; this function's features include tile8_gemm's.
    unsafe { tile8_gemm::<Q8_0TileVnni>(w, row_bytes, acts, act_row_bytes, out, stride) }
}
