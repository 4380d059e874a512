//! Q4_0 and Q4_K matrix products with AVX-512 in the float order of
//! llama.cpp's **repacked** x86 kernels, bit-identical to [`super::x8_avx2`]
//! (whose module docs state the order).
//!
//! That order gives each output (weight row, activation row) its own f32
//! chain, one fused multiply-add per block (Q4_0) or per 256 / 64 values
//! (Q4_K) of an exact integer sum. So only the integer sums are computed
//! differently here (exact, so in any grouping): two rows' blocks per 512-bit
//! vector, row `k` in the low 256 bits and row `k + 4` in the high ones,
//! and four such vectors reduced together ([`reduce_halves4`]) into one
//! 8-lane vector, lane `r` for row `r`; the f32 chain then runs lane by lane
//! with the same scale products and FMAs as the AVX2 kernels.
//! - Q4_0: eight rows per gemv pass, sixteen per gemm pass (two groups of
//!   eight, as llama.cpp's `__AVX512F__` gemm takes 16 columns); VNNI
//!   (`vpdpbusd`) and BW-only (`vpmaddubsw` + `vpmaddwd`) builds. The -8
//!   offset of Q4_0 is the starting value of every row's sums.
//! - Q4_0, 256-bit VNNI: the AVX2 prompt gemm's layout and passes
//!   ([`super::x8_avx2`]'s `q4_0_gemm!`) with one `vpdpbusd` per 4-value
//!   group ([`gemm_q4_0_q8_0_x8_vnni256`]); unlike the 512-bit kernels it
//!   is in the default table where the CPU has VNNI.
//! - Q4_K: two rows per gemv pass (as AVX2: each row is a memory stream),
//!   four per gemm pass. BW-only: the 6-bit scales multiply i16 pair sums
//!   (`vpmaddwd`), which VNNI's `vpdpbusd` could only replace with an extra
//!   32-bit multiply.
//!
//! Timed on a Zen 4 VM: see the `x86_64` module docs (the AVX-512 table is
//! not the default there).
//! `scripts/test-x86-avx512.sh` checks these kernels bit for bit against the
//! AVX2 ones under Bochs.

use super::avx2::trim;
use super::avx2::{f16_lanes, f16_to_f32, hsum_epi32, i16_pick, k4_scales_mins, load8, PREFETCH};
use super::avx512::{act_both, dpbusd_bw, join256, load32_at, nibbles_rows, prefetch_ahead};
use super::x8_avx2::{act_group, load_i32x8, q4_0_scales, rows_n, store_lanes, store_rows, ActPre};
use crate::arch::streams::{pass_rows, row_passes};
use crate::q4_0::BlockQ4_0;
use crate::q4_k::BlockQ4K;
use crate::q8_0::BlockQ8_0;
use crate::q8_k::BlockQ8K;
use core::arch::x86_64::*;
use half::f16;

/// Lane sums of the 256-bit halves of four vectors `v[k] = [x_k | y_k]` (8
/// i32 lanes each): `[sum x_0, .., sum x_3 | sum y_0, .., sum y_3]`. Exact
/// whenever every such sum fits an i32 (integer adds in another grouping).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn reduce_halves4(v: [__m512i; 4]) -> __m256i {
    // Per 128-bit lane, with a = v[0], b = v[1]: [a0 + a2, b0 + b2, a1 + a3, b1 + b3].
    let s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
    let s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
    // Per 128-bit lane: the sums of that lane of v[0], v[1], v[2], v[3].
    let t = _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
    // 128-bit lanes 0 and 1 are the x halves, 2 and 3 the y halves: add 0 + 1 and 2 + 3.
    let even = _mm512_shuffle_i64x2::<0b10_00_10_00>(t, t);
    let odd = _mm512_shuffle_i64x2::<0b11_01_11_01>(t, t);
    _mm512_castsi512_si256(_mm512_add_epi32(even, odd))
}

// ---------------------------------------------------------------- Q4_0 ----

/// The Q4_0 kernels of one build: `$dp` is `vpdpbusd` or its BW-only twin.
macro_rules! q4_0_kernels {
    ($feat:literal, $dp:path, $rows:ident, $gemv:ident, $gemm:ident) => {
        /// `G` groups of eight Q4_0 rows · one Q8_0 activation row: lane `r`
        /// of group `g`'s vector is row `r` of the group, in the repacked order.
        #[inline]
        #[target_feature(enable = $feat)]
        fn $rows<const G: usize>(w: [[&[BlockQ4_0]; 8]; G], a: &[BlockQ8_0]) -> [__m256; G] {
            let n = a.len();
            let mut wt = w;
            for g in 0..G {
                wt[g] = trim(w[g], n);
            }
            let w = wt;
            let zero = _mm512_setzero_si512();
            let eight = _mm512_set1_epi8(8);
            let mut acc = [_mm256_setzero_ps(); G];
            for (b, ab) in a.iter().enumerate() {
                let qa = act_both(&ab.qs);
                // -8 * (sums of four activations) in both halves: Q4_0's offset,
                // the starting value of every row's sums (|.| <= 4 * 8 * 128).
                let off = _mm512_sub_epi32(zero, $dp(zero, eight, qa));
                let da = _mm256_set1_ps(f16_to_f32(ab.d));
                for g in 0..G {
                    let mut v = [zero; 4];
                    for (k, vk) in v.iter_mut().enumerate() {
                        let (x, y) = (&w[g][k][b], &w[g][k + 4][b]);
                        if b % 2 == 0 {
                            prefetch_ahead(x, PREFETCH);
                            prefetch_ahead(y, PREFETCH);
                        }
                        // Rows k and k + 4: sums of four (q - 8) * a per i32 lane.
                        *vk = $dp(off, nibbles_rows(&x.qs, &y.qs), qa);
                    }
                    let isum = reduce_halves4(v);
                    // col_scale * row_scale, as ggml's `_mm256_mul_ps(col_scale_f32, row_scale_f32)`.
                    let d = _mm256_mul_ps(f16_lanes(q4_0_scales(&w[g], b)), da);
                    acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[g]);
                }
            }
            acc
        }

        /// Q4_0 matrix · Q8_0 activation row in llama.cpp's repacked order,
        /// eight rows per pass (bit-identical to the AVX2 gemv).
        ///
        /// # Safety
        /// The CPU must support the features this function is compiled for; the
        /// buffers satisfy [`crate::kernels::GemvFn`]'s contract.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $gemv(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
            let a: &[BlockQ8_0] = bytemuck::cast_slice(a);
            let w: &[BlockQ4_0] = bytemuck::cast_slice(w);
            let per_row = row_bytes / core::mem::size_of::<BlockQ4_0>();
            // Eight successive rows of the stream order per pass (the last
            // pass repeats its last row in the lanes it does not store).
            for (idx, n) in row_passes::<8>(out.len()) {
                let [v] = $rows([pass_rows(w, per_row, &idx)], a);
                store_rows(v, &idx[..n], out);
            }
        }

        /// Q4_0 matrix · several Q8_0 activation rows ([`crate::kernels::GemmFn`]),
        /// sixteen weight rows per pass, each activation row in the gemv order
        /// (bit-identical to the AVX2 gemm).
        ///
        /// # Safety
        /// The CPU must support the features this function is compiled for; the
        /// buffers satisfy [`crate::kernels::GemmFn`]'s contract.
        #[target_feature(enable = $feat)]
        pub(crate) unsafe fn $gemm(
            w: &[u8],
            row_bytes: usize,
            acts: &[u8],
            act_row_bytes: usize,
            out: &mut [f32],
            stride: usize,
        ) {
            let wb: &[BlockQ4_0] = bytemuck::cast_slice(w);
            let per_row = row_bytes / core::mem::size_of::<BlockQ4_0>();
            let rows = w.len() / row_bytes;
            let m = acts.len() / act_row_bytes;
            let mut r = 0;
            while r < rows {
                // Weight rows outer, activation rows inner: the sixteen rows stay in L1.
                let w16 = [rows_n(wb, per_row, r, rows), rows_n(wb, per_row, r + 8, rows)];
                for i in 0..m {
                    let a: &[BlockQ8_0] = bytemuck::cast_slice(&acts[i * act_row_bytes..(i + 1) * act_row_bytes]);
                    let v = $rows(w16, a);
                    for (g, vg) in v.into_iter().enumerate() {
                        let start = r + 8 * g;
                        if start < rows {
                            store_lanes(vg, &mut out[i * stride + start..i * stride + (start + 8).min(rows)]);
                        }
                    }
                }
                r += 16;
            }
        }
    };
}

q4_0_kernels!(
    "avx512f,avx512bw,avx512vl,avx2,fma,f16c",
    dpbusd_bw,
    q4_0_rows_bw,
    gemv_q4_0_q8_0_x8_avx512,
    gemm_q4_0_q8_0_x8_avx512
);
q4_0_kernels!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    _mm512_dpbusd_epi32,
    q4_0_rows_vnni,
    gemv_q4_0_q8_0_x8_avx512vnni,
    gemm_q4_0_q8_0_x8_avx512vnni
);

/// [`super::x8_avx2`]'s Q4_0 gemm integer sums with 256-bit `vpdpbusd`:
/// each row's sum starts from the -8 offset (`neg_off`) and one `vpdpbusd`
/// per group adds its four products (`q` unsigned, `a` signed) to the row's
/// dword, so lane `r` is row `r`'s exact `sum((q - 8) * a)` (|.| <= 32 *
/// 15 * 128 + 8 * 32 * 128), the i32 the AVX2 twin's `maddubs` chain gives.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q4_0_isum8_vnni(t: &[__m256i; 8], qs: &[i8; 32], pre: &ActPre, k: usize) -> __m256i {
    let mut s = _mm256_set1_epi32(pre.neg_off[k]);
    for (g, tg) in t.iter().enumerate() {
        s = _mm256_dpbusd_epi32(s, *tg, act_group(qs, g));
    }
    s
}

// The AVX2 prompt gemm's layout with `vpdpbusd`: in the default table where
// the CPU has VNNI (see `plug_avx512_measured`).
super::x8_avx2::q4_0_gemm!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    q4_0_isum8_vnni,
    q4_0_rows8_acts_vnni256,
    gemm_q4_0_q8_0_x8_vnni256
);

// ---------------------------------------------------------------- Q4_K ----

/// `P` pairs of Q4_K rows · one Q8_K activation row; lane `2p + h` of the
/// result is row `h` of pair `p` (its 256-bit half `h` of each vector).
/// `PER_64`: ggml's gemm order (one f32 step per 64 values, as
/// [`super::x8_avx2`]'s `q4_k_rows2_per64`) instead of its gemv order (one per
/// 256, as its `q4_k_rows`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn q4_k_rows<const P: usize, const PER_64: bool>(w: [[&[BlockQ4K]; 2]; P], a: &[BlockQ8K]) -> __m256 {
    const { assert!(P <= 4) };
    let n = a.len();
    let mut wt = w;
    for p in 0..P {
        wt[p] = trim(w[p], n);
    }
    let w = wt;
    let m4 = _mm512_set1_epi8(0x0f);
    let mut acc = _mm256_setzero_ps();
    let mut acc_min = _mm256_setzero_ps();
    for (b, ab) in a.iter().enumerate() {
        let da = _mm256_set1_ps(ab.d);
        let mut dw = [f16::ZERO; 8];
        let mut mw = [f16::ZERO; 8];
        for p in 0..P {
            for h in 0..2 {
                dw[2 * p + h] = w[p][h][b].d;
                mw[2 * p + h] = w[p][h][b].dmin;
            }
        }
        let d = _mm256_mul_ps(f16_lanes(dw), da);
        let dmin = _mm256_mul_ps(f16_lanes(mw), da);
        let mut bs = [0i32; 8];
        for (j, v) in bs.iter_mut().enumerate() {
            *v = ab.bsums[2 * j] as i32 + ab.bsums[2 * j + 1] as i32;
        }
        // The activations of groups 2s and 2s + 1, in both halves.
        let mut a_lo = [_mm512_setzero_si512(); 4];
        let mut a_hi = [_mm512_setzero_si512(); 4];
        for s in 0..4 {
            a_lo[s] = _mm512_broadcast_i64x4(load32_at(&ab.qs, 64 * s));
            a_hi[s] = _mm512_broadcast_i64x4(load32_at(&ab.qs, 64 * s + 32));
        }
        let mut isum = [[0i32; 8]; 4];
        let mut imin = [[0i32; 8]; 4];
        for p in 0..P {
            let (x, y) = (&w[p][0][b], &w[p][1][b]);
            for wb in [x, y] {
                prefetch_ahead(wb, PREFETCH);
                prefetch_ahead(wb, PREFETCH + 64);
                prefetch_ahead(wb, PREFETCH + 128);
            }
            let (sc_x, mn_x) = k4_scales_mins(&x.scales);
            let (sc_y, mn_y) = k4_scales_mins(&y.scales);
            // Row x's eight scales as i16 in both 128-bit lanes of the low half, row y's in the high half.
            let sc = join256(
                _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(load8(sc_x))),
                _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(load8(sc_y))),
            );
            let mut parts = [_mm512_setzero_si512(); 4];
            for (s, part) in parts.iter_mut().enumerate() {
                let q = join256(load32_at(&x.qs, 32 * s), load32_at(&y.qs, 32 * s));
                let lo = _mm512_and_si512(q, m4);
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(q), m4);
                let s_lo = _mm512_shuffle_epi8(sc, _mm512_broadcast_i64x4(i16_pick(2 * s, 2 * s)));
                let s_hi = _mm512_shuffle_epi8(sc, _mm512_broadcast_i64x4(i16_pick(2 * s + 1, 2 * s + 1)));
                // |pair sums| <= 2 * 15 * 128, times a scale <= 63: exact in i32.
                let plo = _mm512_madd_epi16(_mm512_maddubs_epi16(lo, a_lo[s]), s_lo);
                let phi = _mm512_madd_epi16(_mm512_maddubs_epi16(hi, a_hi[s]), s_hi);
                *part = _mm512_add_epi32(plo, phi);
                let m = |mn: &[u8; 8]| mn[2 * s] as i32 * bs[2 * s] + mn[2 * s + 1] as i32 * bs[2 * s + 1];
                if PER_64 {
                    imin[s][2 * p] = m(&mn_x);
                    imin[s][2 * p + 1] = m(&mn_y);
                } else {
                    imin[0][2 * p] += m(&mn_x);
                    imin[0][2 * p + 1] += m(&mn_y);
                }
            }
            if PER_64 {
                // [x: s = 0..4 | y: s = 0..4].
                let mut t = [0i32; 8];
                // SAFETY: `t` is 32 writable bytes; the store is unaligned.
                unsafe { _mm256_storeu_si256(t.as_mut_ptr().cast(), reduce_halves4(parts)) };
                for s in 0..4 {
                    isum[s][2 * p] = t[s];
                    isum[s][2 * p + 1] = t[4 + s];
                }
            } else {
                let tot = _mm512_add_epi32(_mm512_add_epi32(parts[0], parts[1]), _mm512_add_epi32(parts[2], parts[3]));
                isum[0][2 * p] = hsum_epi32(_mm512_castsi512_si256(tot));
                isum[0][2 * p + 1] = hsum_epi32(_mm512_extracti64x4_epi64::<1>(tot));
            }
        }
        let steps = if PER_64 { 4 } else { 1 };
        for s in 0..steps {
            let vi = _mm256_cvtepi32_ps(load_i32x8(&isum[s]));
            let vm = _mm256_cvtepi32_ps(load_i32x8(&imin[s]));
            acc = _mm256_fmadd_ps(vi, d, acc);
            acc_min = _mm256_fmadd_ps(vm, dmin, acc_min);
        }
    }
    _mm256_sub_ps(acc, acc_min)
}

/// Q4_K matrix · Q8_K activation row in llama.cpp's repacked gemv order, two
/// rows per pass (bit-identical to the AVX2 gemv).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL, AVX2, FMA and F16C; the buffers
/// satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q4_k_q8_k_x8_avx512(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    let a: &[BlockQ8K] = bytemuck::cast_slice(a);
    let w: &[BlockQ4K] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ4K>();
    // Two successive rows of the stream order per pass, as the AVX2 gemv
    // (the last pass repeats its last row in the lane it does not store).
    for (idx, n) in row_passes::<2>(out.len()) {
        let v = q4_k_rows::<1, false>([pass_rows(w, per_row, &idx)], a);
        store_rows(v, &idx[..n], out);
    }
}

/// Q4_K matrix · several Q8_K activation rows ([`crate::kernels::GemmFn`]) in
/// llama.cpp's repacked order, four weight rows per pass: the first `m - m %
/// 4` activation rows in the gemm order, the last `m % 4` in the gemv order,
/// as the AVX2 gemm (bit-identical to it; call it with the same groups).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL, AVX2, FMA and F16C; the buffers
/// satisfy [`crate::kernels::GemmFn`]'s contract.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(crate) unsafe fn gemm_q4_k_q8_k_x8_avx512(
    w: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_row_bytes: usize,
    out: &mut [f32],
    stride: usize,
) {
    let wb: &[BlockQ4K] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ4K>();
    let rows = w.len() / row_bytes;
    let m = acts.len() / act_row_bytes;
    let m4 = m - m % 4;
    let mut r = 0;
    while r < rows {
        let [r0, r1, r2, r3] = rows_n::<_, 4>(wb, per_row, r, rows);
        let wr = [[r0, r1], [r2, r3]];
        let end = (r + 4).min(rows);
        for i in 0..m {
            let a: &[BlockQ8K] = bytemuck::cast_slice(&acts[i * act_row_bytes..(i + 1) * act_row_bytes]);
            let v = if i < m4 { q4_k_rows::<2, true>(wr, a) } else { q4_k_rows::<2, false>(wr, a) };
            store_lanes(v, &mut out[i * stride + r..i * stride + end]);
        }
        r += 4;
    }
}
