//! Q5_0 · Q8_0 with AVX-512, in ggml's x86 float order.
//!
//! - With VNNI, 256-bit vectors: the AVX2 kernels' layouts and float order
//!   with one `vpdpbusd` per 4-value group in place of `vpmaddubsw`, the
//!   offset and `vpmaddwd` (the same exact i32 sums), and in the gemv the
//!   fifth bits added under a byte mask (`qh`); the gemv reads its rows
//!   as four streams (the AVX2 one in address order). The gemv
//!   ([`gemv_q5_0_q8_0_vnni256`]) and the prompt gemm
//!   ([`gemm_q5_0_q8_0_vnni256`]) are in the default table too
//!   (`plug_avx512_measured`); on the Zen 4 VM they beat the AVX2 ones
//!   (figures at each) where the 512-bit gemv below did not.
//! - Without VNNI (BW only), the 512-bit gemv: as Q4_0's AVX-512 kernel
//!   (one block of two rows per 512-bit vector, each half in ggml's lane
//!   layout with its row's per-lane FMA chain), with the fifth bits of both
//!   rows moved into place by one masked byte move (`qh` of two rows is a
//!   64-bit mask), and each row's sum starting from `-16 * sum(a)` per
//!   lane; four rows per pass.
//!
//! `vec_dot` (one row) is the AVX2 kernel, the same arithmetic.

use super::avx2::{
    bit4_from_bits32, f16_lanes, f16_to_f32, nibbles32, tile8_gemm, transpose8_epi32, trim, Tile8Format, PREFETCH,
};
use super::avx2::{fill_front, hsum_rows, load32, nibbles32_unmasked, STREAM_PREFETCH};
use super::avx512::*;
use super::q5_0_avx2::{gemm_q5_0_q8_0_pairs_avx2, gemv_q5_0_q8_0_rows4_avx2, scales, ActU, TILE_BLOCKS};
use super::q5_0_avx2::{scale_products_ahead, GEMV_CAP, GEMV_ROWS};
use crate::arch::streams::stream_passes;
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

// ------------------------------------------------ prompt gemm, 256-bit VNNI ----

/// [`tile8_gemm`]'s Q5_0 format with 256-bit `vpdpbusd` (AVX-512 VL + VNNI):
/// a [`TileV`] of the values `q - 16` and [`dot_tile_v`], two activation
/// rows sharing each tile load ([`Tile8Format::dot2`]).
///
/// Lane `p` of group `g` is `sum_j (a_j + 128) * (q_j - 16) - 128 * sum_j
/// (q_j - 16) = sum_j a_j * (q_j - 16)`: the exact i32 the AVX2 gemm builds
/// from `vpmaddubsw`, the i16 correction and `vpmaddwd` (exact there too,
/// for every input), so every output keeps its bits. One `vpdpbusd` per
/// group and block in place of those three and the subtraction.
struct Q5_0TileVnni;

impl Tile8Format for Q5_0TileVnni {
    type W = BlockQ5_0;
    tile_v_format!();

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn unpack8(w: [&[BlockQ5_0]; 8], n: usize, t: &mut TileV) {
        let w = trim(w, n.min(TILE_BLOCKS));
        let sixteen = _mm256_set1_epi8(16);
        let u128 = _mm256_set1_epi8(i8::MIN);
        let minus_one = _mm256_set1_epi16(-1);
        for (b, ((tw, tc), d)) in t.w.iter_mut().zip(t.c.iter_mut()).zip(t.d.iter_mut()).enumerate().take(n) {
            let mut v = [_mm256_setzero_si256(); 8];
            for (vp, row) in v.iter_mut().zip(&w) {
                let wb = &row[b];
                *vp = _mm256_or_si256(nibbles32(&wb.qs), bit4_from_bits32(&wb.qh));
            }
            // Group g of every row in dword p of vector g.
            for ((wg, cg), z) in tw.iter_mut().zip(tc.iter_mut()).zip(transpose8_epi32(v)) {
                let s = _mm256_sub_epi8(z, sixteen);
                *wg = s;
                // 128 (unsigned) × pair sums, exact in i16; negated sum of pairs.
                *cg = _mm256_madd_epi16(_mm256_maddubs_epi16(u128, s), minus_one);
            }
            *d = f16_lanes(scales(&w, b));
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn long_rows(w: &[u8], row_bytes: usize, acts: &[u8], act_row_bytes: usize, out: &mut [f32], stride: usize) {
        // SAFETY: same CPU and buffer contract (AVX2, FMA, F16C are among this function's features).
        unsafe { gemm_q5_0_q8_0_pairs_avx2(w, row_bytes, acts, act_row_bytes, out, stride) }
    }
}

/// Q5_0 matrix · several Q8_0 activation rows ([`crate::kernels::GemmFn`]),
/// the AVX2 gemm's tiled order with 256-bit `vpdpbusd` ([`Q5_0TileVnni`]):
/// every output equals [`super::q5_0_avx2::gemm_q5_0_q8_0_avx2`]'s bit for bit.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL and VNNI, AVX2, FMA and F16C; the
/// buffers satisfy [`crate::kernels::GemmFn`]'s contract.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn gemm_q5_0_q8_0_vnni256(
    w: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_row_bytes: usize,
    out: &mut [f32],
    stride: usize,
) {
    // SAFETY: same CPU and buffer contract; this function's features include tile8_gemm's.
    unsafe { tile8_gemm::<Q5_0TileVnni>(w, row_bytes, acts, act_row_bytes, out, stride) }
}

// ------------------------------------------------ decode gemv, 256-bit VNNI ----

/// `R` (at most 4) Q5_0 rows · the prepared activation (`qa[i]` block `i`'s
/// values, `off[i]` per 4-value group `-16 ×` their sum as i32, `da[i]` its
/// scale), each row bit for bit as the AVX2 gemv's `dot_rows_pre`: the
/// fifth bits go in as a zero-masked byte move (`qh` is the byte mask) and
/// one ternary-logic op that also clears the nibbles' upper bits, and one
/// `vpdpbusd` from `off` gives `sum (q - 16) * a` per group, the exact i32
/// that `vpmaddubsw`, the i16 offset and `vpmaddwd` give there; the scales
/// and FMA chains are the same. Each row is prefetched
/// [`STREAM_PREFETCH`] ahead every other block, as the Q8_0 gemv's streams.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot_rows_v256<const R: usize>(w: [&[BlockQ5_0]; R], qa: &[__m256i], off: &[__m256i], da: &[f32]) -> [f32; R] {
    let n = qa.len().min(off.len()).min(da.len()).min(w.iter().map(|r| r.len()).min().unwrap_or(0));
    let (w, qa, off, da) = (trim(w, n), &qa[..n], &off[..n], &da[..n]);
    let (bit4, low) = (_mm256_set1_epi8(0x10), _mm256_set1_epi8(0x0f));
    let mut acc = [_mm256_setzero_ps(); R];
    let mut ahead = [[0.0f32; 4]; 2];
    for i in 0..n {
        // SAFETY: this function's target features include AVX2, FMA and F16C.
        let d = unsafe { scale_products_ahead(&w, da, i, &mut ahead) };
        for r in 0..R {
            let wb = &w[r][i];
            if i % 2 == 0 {
                prefetch_ahead(wb, STREAM_PREFETCH);
            }
            // [`nibbles32`] with its AND folded into the ternary-logic op
            // that sets the fifth bits: `(x & 0x0f) | hi`.
            let x = nibbles32_unmasked(&wb.qs);
            let hi = _mm256_maskz_mov_epi8(u32::from_le_bytes(wb.qh), bit4);
            let q = _mm256_ternarylogic_epi32::<0xEA>(x, low, hi);
            let s = _mm256_dpbusd_epi32(off[i], q, qa[i]);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d[r]), _mm256_cvtepi32_ps(s), acc[r]);
        }
    }
    hsum_rows(acc)
}

/// Q5_0 matrix · Q8_0 activation row ([`crate::kernels::GemvFn`]) with 256-bit
/// VNNI: four rows per pass, one from each of the four streams of
/// [`stream_passes`] (as the Q8_0 gemv), the activation prepared once per
/// call, rows past [`GEMV_CAP`] blocks through the AVX2 path, each pass
/// [`dot_rows_v256`]; every output is bit for bit the AVX2 gemv's (row
/// order changes no result).
///
/// Streams, not the AVX2 gemv's four adjacent rows in address order with a
/// 4 KiB prefetch (session 16): at two threads each reading its half of the
/// rows, as a decode step does, address order read 23-28 GB/s from DRAM
/// (`kernel-table --threads 2`, 640×2048 and 640×1024, five runs) and
/// streams 28-31, where the Q8_0 gemv reads 42-48; at one thread both read
/// 16-18. The address-order loop was bound by its access pattern, not its
/// arithmetic: cutting the scale products, the fifth bits and the nibble
/// shift out of it (wrong results, an upper bound) read no faster from
/// DRAM at one or two threads, where the same cut in stream order read
/// 21-23 GB/s at one thread and up to 46 at two. In cache (`--hot`, same
/// copy) streams are slower, 18 against 22-23 GB/s; a decode step reads its
/// weights from DRAM. Gemma 3's matrix products alone (`decode-replay 2 64
/// matmul`), 14 alternated pairs in both orders: faster in 11, about +3%
/// (136-142 → 141-147 t/s where memory was slow, 160-173 → 163-177 where
/// it was fast). A pass of two rows per 512-bit vector (`vpdpbusd` on
/// both, the 64-bit `qh` mask by `kunpckdq`) was slower still in cache, 16
/// GB/s, and at two threads from DRAM (26-29): on Zen 4 a 512-bit
/// operation takes a 256-bit unit for two cycles.
///
/// Earlier, in address order: `kernel-table`, Zen 4 VM, one thread, GB/s
/// AVX2 gemv → this one, from DRAM / in cache: 640×2048 14.1 → 18.3 / 14.7
/// → 21.3, 640×1024 14.0 → 18.4 / 14.8 → 21.4, 49152×576 14.1 → 18.1 /
/// 14.4 → 20.5; 2048×640 11.1 → 11.3 / 14.8 → 21.8. The 512-bit VNNI gemv
/// it replaced read 11.9-12.4 GB/s from DRAM at those shapes.
///
/// Then in cache 21.2 → 23.0 GB/s (640×2048 and 640×1024, two alternated
/// runs) for [`super::q5_0_avx2::scale_products_ahead`] and the ternary
/// logic, which replaced a masked add that LLVM had turned into an OR and
/// a masked move. From DRAM, and Gemma 3 tg64 at 1 and 2 threads (`ember
/// bench`, 4 rounds in rotated order), even: in address order the reads
/// were bound by their access pattern, not by this loop (above).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL and VNNI, AVX2, FMA and F16C; the
/// buffers satisfy [`crate::kernels::GemvFn`]'s contract.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn gemv_q5_0_q8_0_vnni256(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
    use core::mem::MaybeUninit;
    let ab: &[BlockQ8_0] = bytemuck::cast_slice(a);
    if ab.len() > GEMV_CAP {
        // SAFETY: same CPU and buffer contract (AVX2, FMA, F16C are among this function's features).
        unsafe { gemv_q5_0_q8_0_rows4_avx2(w, row_bytes, a, out) };
        return;
    }
    let w: &[BlockQ5_0] = bytemuck::cast_slice(w);
    let per_row = row_bytes / core::mem::size_of::<BlockQ5_0>();
    let mut qa = [const { MaybeUninit::<__m256i>::uninit() }; GEMV_CAP];
    let mut off = [const { MaybeUninit::<__m256i>::uninit() }; GEMV_CAP];
    let mut da = [const { MaybeUninit::<f32>::uninit() }; GEMV_CAP];
    let qa = fill_front(&mut qa, ab.iter().map(|b| load32(&b.qs)));
    // Per group of 4 values, -16 * their sum: the sum by vpdpbusd with
    // unsigned 1s, then times 16 (a shift) subtracted from 0.
    let (ones, zero) = (_mm256_set1_epi8(1), _mm256_setzero_si256());
    let off = fill_front(
        &mut off,
        ab.iter()
            .map(|b| _mm256_sub_epi32(zero, _mm256_slli_epi32::<4>(_mm256_dpbusd_epi32(zero, ones, load32(&b.qs))))),
    );
    let da = fill_front(&mut da, ab.iter().map(|b| f16_to_f32(b.d)));
    stream_passes::<_, GEMV_ROWS>(
        w,
        per_row,
        out,
        |rows| dot_rows_v256(rows, qa, off, da),
        |row| dot_rows_v256(row, qa, off, da),
    );
}
