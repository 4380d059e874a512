//! Building blocks shared by the AVX2 kernels: loads from block fields,
//! nibble and bit unpacking, the int8 dot-product idioms and horizontal sums.
//!
//! Every function is `#[target_feature(enable = "avx2,fma,f16c")]`: callable
//! without `unsafe` only from functions compiled for the same features (the
//! kernels), where they inline. Loads take references to fixed-size arrays,
//! so the only `unsafe` is the unaligned load itself, whose bounds the array
//! type proves.

use core::arch::x86_64::*;
use half::f16;

/// Horizontal sum of 8 f32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Horizontal sums of `R` 8-lane f32 vectors, as `[sum(v[0]), .., sum(v[R - 1])]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_rows<const R: usize>(v: [__m256; R]) -> [f32; R] {
    let mut out = [0.0; R];
    for (o, x) in out.iter_mut().zip(v) {
        *o = hsum_ps(x);
    }
    out
}

/// Horizontal sum of 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// One f16 to f32 with F16C.
///
/// The bits go to the vector register through `vmovd` from a general
/// register, which writes the whole register. Written as
/// `_mm_cvtsi32_si128(bits)`, LLVM folds the load into `vpinsrw $0, mem,
/// %xmmK, %xmmD` with an arbitrary `%xmmK` as the merged-in source (only lane
/// 0 is used): often a kernel's accumulator, which chains every scale
/// conversion to the previous block's FMA. That false dependency halved the
/// AVX-512 gemvs on Zen 4 (Q8_0, 640×2048 in cache: 12.7 GB/s).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16_to_f32(h: f16) -> f32 {
    let v: __m128i;
    // SAFETY: `vmovd` from a general register reads no memory and sets no flags.
    unsafe {
        core::arch::asm!("vmovd {v}, {b:e}", b = in(reg) h.to_bits() as u32, v = lateout(xmm_reg) v,
            options(pure, nomem, nostack, preserves_flags));
    }
    _mm_cvtss_f32(_mm_cvtph_ps(v))
}

/// 32 bytes, unaligned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load32<T: bytemuck::Pod>(q: &[T; 32]) -> __m256i {
    const { assert!(core::mem::size_of::<T>() == 1) };
    // SAFETY: `q` is 32 readable bytes (T is one byte); `loadu` needs no alignment.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// 32 bytes at `q[off..off + 32]`, unaligned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load32_at<T: bytemuck::Pod, const N: usize>(q: &[T; N], off: usize) -> __m256i {
    const { assert!(core::mem::size_of::<T>() == 1) };
    let s: &[T; 32] = q[off..off + 32].try_into().unwrap();
    load32(s)
}

/// 16 bytes, unaligned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load16<T: bytemuck::Pod>(q: &[T; 16]) -> __m128i {
    const { assert!(core::mem::size_of::<T>() == 1) };
    // SAFETY: `q` is 16 readable bytes; `loadu` needs no alignment.
    unsafe { _mm_loadu_si128(q.as_ptr().cast()) }
}

/// The 32 nibbles of a Q4_0-style `qs` as bytes 0..=15 in ggml's order:
/// value `j` (low nibble of byte `j`) in lane `j`, value `j + 16` (high
/// nibble) in lane `j + 16`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn nibbles32(qs: &[u8; 16]) -> __m256i {
    // One shift and one AND instead of a shift, an insert and an AND.
    _mm256_and_si256(nibbles32_unmasked(qs), _mm256_set1_epi8(0x0f))
}

/// [`nibbles32`] before its AND: the 16 bytes in both halves (a broadcast
/// load), the upper half's dwords shifted right by 4, so that each byte's
/// low nibble is the value of [`nibbles32`]'s lane and its high nibble
/// holds bits of the next byte. For kernels that clear those bits in an op
/// they need anyway.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn nibbles32_unmasked(qs: &[u8; 16]) -> __m256i {
    _mm256_srlv_epi32(_mm256_broadcastsi128_si256(load16(qs)), _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4))
}

/// The 32 bits of `qh` (little-endian) spread to bytes: lane `j` is `0x10`
/// where bit `j` is set, else 0 (the fifth bit of Q5_0/Q5_1 values).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn bit4_from_bits32(qh: &[u8; 4]) -> __m256i {
    let bits = _mm256_set1_epi32(i32::from_le_bytes(*qh));
    // Byte j of the result takes byte j / 8 of the word...
    let shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    let bytes = _mm256_shuffle_epi8(bits, shuf);
    // ...and keeps bit j % 8 of it: isolate that bit and compare with it (one
    // constant for both, so fewer registers than an OR and an all-ones compare).
    let sel = _mm256_set1_epi64x(0x8040201008040201u64 as i64);
    _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, sel), sel), _mm256_set1_epi8(0x10))
}

/// Writes `items` into the front of `buf` (as many as fit) and returns the
/// written part: per-call scratch of the gemvs, filled without being
/// zeroed first.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn fill_front<T>(buf: &mut [core::mem::MaybeUninit<T>], items: impl IntoIterator<Item = T>) -> &[T] {
    let mut n = 0;
    for (slot, x) in buf.iter_mut().zip(items) {
        slot.write(x);
        n += 1;
    }
    // SAFETY: the first `n` elements were written just above, and
    // `MaybeUninit<T>` has the layout of `T`.
    unsafe { &*(&buf[..n] as *const [core::mem::MaybeUninit<T>] as *const [T]) }
}

/// A xorshift32 generator from `seed` (nonzero): test data for the kernels'
/// unit tests.
#[cfg(test)]
pub(super) fn xorshift32(mut seed: u32) -> impl FnMut() -> u32 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    }
}

/// Lane `k` of `v` in all eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn lane(v: __m256, k: usize) -> __m256 {
    _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(k as i32))
}

/// The f16 values `v[r]` of up to eight rows as one f32 vector (lane `r`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16_lanes<const R: usize>(v: [f16; R]) -> __m256 {
    const { assert!(R <= 8) };
    let mut bits = [0u64; 2];
    for (r, x) in v.iter().enumerate() {
        bits[r / 4] |= (x.to_bits() as u64) << (16 * (r % 4));
    }
    let [mut lo, mut hi] = bits;
    // SAFETY: an empty asm statement that touches no memory or flags. It
    // keeps the two words in general registers: without it LLVM builds
    // them with one vector word insert per scale (`vpinsrw` from memory, two
    // vector uops) and unpacks, on the ports the dot products need, where
    // the shifts and ors here run on the integer ALUs.
    unsafe {
        core::arch::asm!("/* {0} {1} */", inout(reg) lo, inout(reg) hi, options(nomem, nostack, preserves_flags))
    };
    _mm256_cvtph_ps(_mm_set_epi64x(hi as i64, lo as i64))
}

/// Makes the compiler treat `x` as read and written in memory at this point
/// (an empty asm statement given its address), so that later reads of it
/// are loads. The kernels store their per-block scales and call this: each
/// scale is then a broadcast from memory (a load-port uop) instead of a
/// lane picked out of a register by a shuffle and a broadcast.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn in_memory<T>(x: &mut T) {
    // SAFETY: the statement is empty; it only reports that it may read and
    // write through the pointer, which points to a live, writable `T`.
    unsafe { core::arch::asm!("/* {0} */", in(reg) x as *mut T, options(nostack, preserves_flags)) };
}

/// Signed int8 · signed int8: `x` and `y` as 32 i8 lanes, the products summed
/// in groups of four into 8 i32 lanes. Exact when `y` has no -128 lane
/// (activations from ember's quantizers lie in -127..=127).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_i8(x: __m256i, y: __m256i) -> __m256i {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1))
}

/// 16 i16, unaligned (the `bsums` of a Q8_K block).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load_i16x16(q: &[i16; 16]) -> __m256i {
    // SAFETY: `q` is 32 readable bytes; `loadu` needs no alignment.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// 8 bytes into the low half of a 128-bit vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load8(q: [u8; 8]) -> __m128i {
    _mm_cvtsi64_si128(i64::from_le_bytes(q))
}

/// A `shuffle_epi8` pattern that broadcasts i16 lane `lo` of each 128-bit
/// half into the low half and i16 lane `hi` into the high half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn i16_pick(lo: usize, hi: usize) -> __m256i {
    let p = |k: usize| (((2 * k + 1) << 8) | (2 * k)) as i16;
    _mm256_set_m128i(_mm_set1_epi16(p(hi)), _mm_set1_epi16(p(lo)))
}

/// The eight 6-bit scales and eight 6-bit minimums of a Q4_K/Q5_K block,
/// unpacked from their 12 bytes (ggml's `get_scale_min_k4` for all eight).
#[inline]
pub(super) fn k4_scales_mins(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let w = |k: usize| u32::from_le_bytes([s[4 * k], s[4 * k + 1], s[4 * k + 2], s[4 * k + 3]]);
    let (u0, u1, u2) = (w(0), w(1), w(2));
    let sc_lo = u0 & KMASK1;
    let sc_hi = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
    let mn_lo = u1 & KMASK1;
    let mn_hi = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
    let join = |a: u32, b: u32| (a as u64 | (b as u64) << 32).to_le_bytes();
    (join(sc_lo, sc_hi), join(mn_lo, mn_hi))
}

/// Two 16-byte halves into one vector: `lo` in lanes 0..16, `hi` in 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load16x2<T: bytemuck::Pod>(lo: &[T; 16], hi: &[T; 16]) -> __m256i {
    _mm256_set_m128i(load16(hi), load16(lo))
}

/// `[x, y, x, y, x, y, x, y]` from two f16 values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16x2_repeat(x: f16, y: f16) -> __m256 {
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128((x.to_bits() as u32 | (y.to_bits() as u32) << 16) as i32));
    _mm256_castpd_ps(_mm256_broadcastsd_pd(_mm_castps_pd(v)))
}

/// The f16 values `v[r] = [x, y]` of up to four rows as one f32 vector
/// `[x0, y0, x1, y1, ..]` (one conversion for all rows).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16_rows<const R: usize>(v: [[f16; 2]; R]) -> __m256 {
    const { assert!(R <= 4) };
    let mut bits = [0u64; 2];
    for (r, [x, y]) in v.iter().enumerate() {
        bits[r / 2] |= (x.to_bits() as u64 | (y.to_bits() as u64) << 16) << (32 * (r % 2));
    }
    _mm256_cvtph_ps(_mm_set_epi64x(bits[1] as i64, bits[0] as i64))
}

/// Lanes `2r` and `2r + 1` of `v` as `[v[2r] ×4 | v[2r+1] ×4]`: row `r`'s
/// scales for the two halves of a block pair.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn row_halves(v: __m256, r: usize) -> __m256 {
    let (x, y) = (2 * r as i32, 2 * r as i32 + 1);
    _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(x, x, x, x, y, y, y, y))
}

/// The activations of two consecutive 32-value blocks, prepared once per
/// matrix-vector product and shared by every weight row: the values laid out
/// to meet [`nibbles_pair`], the scales, and their magnitudes (IQ4_NL, the
/// one format whose AVX2 kernel does not follow ggml's float order).
#[derive(Clone, Copy)]
pub(super) struct PairAct {
    /// Values 0..16 of each block: `[a0[0..16] | a1[0..16]]`.
    pub lo: __m256i,
    /// Values 16..32 of each block.
    pub hi: __m256i,
    /// The two scales as `[d0, d1, d0, d1, ..]` (to multiply [`f16_rows`]).
    pub d: __m256,
    /// `|lo|` (IQ4_NL's sign trick).
    pub x: __m256i,
    /// `|hi|`.
    pub y: __m256i,
}

/// Block pairs prepared per chunk: 4096 values of a row, 12 KiB of stack.
pub(super) const CHUNK_PAIRS: usize = 64;

/// The gemv driver of a format whose kernels take two blocks per step. In
/// the format's file, next to `prepare(&A, &A) -> PairAct` and
/// `dot_rows::<R>([&[W]; R], &[PairAct]) -> [f32; R]`, it defines
/// `gemv_rows`: activations prepared once per chunk of [`CHUNK_PAIRS`] block
/// pairs (one chunk for rows up to 4096 values), rows four at a time and the
/// rest singly, an odd last block through `$generic`.
macro_rules! pair_driver {
    ($W:ty, $A:ty, $generic:path) => {
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        fn gemv_rows<'w>(row: impl Fn(usize) -> &'w [$W], a: &[$A], out: &mut [f32]) {
            use core::mem::MaybeUninit;
            use $crate::arch::x86_64::avx2::{fill_front, PairAct, CHUNK_PAIRS};
            let n = a.len();
            let pairs = n / 2;
            out.fill(0.0);
            let mut prep = [const { MaybeUninit::<PairAct>::uninit() }; CHUNK_PAIRS];
            let mut c0 = 0;
            while c0 < pairs {
                let c1 = (c0 + CHUNK_PAIRS).min(pairs);
                let act = fill_front(&mut prep, (c0..c1).map(|p| prepare(&a[2 * p], &a[2 * p + 1])));
                let mut r = 0;
                while r + 4 <= out.len() {
                    let w: [&[$W]; 4] = core::array::from_fn(|k| &row(r + k)[2 * c0..2 * c1]);
                    for (o, v) in out[r..r + 4].iter_mut().zip(dot_rows(w, act)) {
                        *o += v;
                    }
                    r += 4;
                }
                while r < out.len() {
                    out[r] += dot_rows([&row(r)[2 * c0..2 * c1]], act)[0];
                    r += 1;
                }
                c0 = c1;
            }
            if n % 2 == 1 {
                for (r, o) in out.iter_mut().enumerate() {
                    *o += $generic(&row(r)[n - 1..], &a[n - 1..]);
                }
            }
        }
    };
}
pub(super) use pair_driver;

/// Defines a [`crate::kernels::GemvFn`] named `$name` for weights `$W` and
/// activations `$A` over the `dot_rows` in scope (`[&[$W]; R], &[$A] ->
/// [f32; R]`): four rows per pass over the activation, the rest singly.
///
/// The rows go in address order, four adjacent rows per pass, prefetched
/// [`PREFETCH`] ahead. [`RowStreams`](crate::arch::streams::RowStreams)
/// orders were measured and lost on the rows Gemma 3 has (Q5_0, Zen 3 VM,
/// `kernel-table`, medians of 3–6 interleaved runs, quiet moments): one row
/// from each of the four parts per pass (group 1, four at a time) with a
/// [`STREAM_PREFETCH`] prefetch every other block, against this order, on
/// 2 threads from DRAM 15.3 → 12.7–13.1 GB/s at 640×2048 and 14.8–15.3 →
/// 11.8–12.9 at 640×1024, +4–8% at 2048×640 (13.2–13.3 → 13.9–14.0); one
/// thread 9.2–10.0 → 7.4–8.9 at 640×2048, +5–9% or nothing at 2048×640;
/// L3-hot 10–20% lower everywhere. The same with a 4 KiB prefetch: the
/// same losses. Two adjacent rows from each of two parts per pass (group 2)
/// and four adjacent rows per stream (group 4, 4.0–4.3 GB/s against 7.3
/// with a 512-byte prefetch) were worse. Keeping this order for short rows
/// and only the 512-byte prefetch: 640-column rows 15.3 → 11 GB/s on 2
/// threads, so the 4 KiB prefetch is what these rows need.
macro_rules! rows4_gemv {
    ($(#[$doc:meta])* $name:ident, $W:ty, $A:ty) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemvFn`]'s contract.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(crate) unsafe fn $name(w: &[u8], row_bytes: usize, a: &[u8], out: &mut [f32]) {
            let a: &[$A] = bytemuck::cast_slice(a);
            let w: &[$W] = bytemuck::cast_slice(w);
            let per_row = row_bytes / core::mem::size_of::<$W>();
            let row = |r: usize| &w[r * per_row..(r + 1) * per_row];
            let mut r = 0;
            while r + 4 <= out.len() {
                let v = dot_rows([row(r), row(r + 1), row(r + 2), row(r + 3)], a);
                out[r..r + 4].copy_from_slice(&v);
                r += 4;
            }
            while r < out.len() {
                out[r] = dot_rows([row(r)], a)[0];
                r += 1;
            }
        }
    };
}
pub(super) use rows4_gemv;

/// Defines a [`crate::kernels::GemmFn`] named `$name` for weights `$W` and
/// activations `$A` over the `dot_rows_pair` in scope (`[&[$W]; R], [&[$A];
/// 2] -> [[f32; R]; 2]`, every output bit-identical to `dot_rows`'s) and the
/// one-activation [`crate::kernels::GemvFn`] `$gemv`: activation rows in
/// pairs and weight rows in fours, so that each unpacked weight block serves
/// two activation rows; the last odd activation row through `$gemv`.
macro_rules! pairs_gemm {
    ($(#[$doc:meta])* $name:ident, $W:ty, $A:ty, $gemv:ident) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemmFn`]'s contract.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(crate) unsafe fn $name(
            w: &[u8],
            row_bytes: usize,
            acts: &[u8],
            act_row_bytes: usize,
            out: &mut [f32],
            out_stride: usize,
        ) {
            let wb: &[$W] = bytemuck::cast_slice(w);
            let a: &[$A] = bytemuck::cast_slice(acts);
            let per_row = row_bytes / core::mem::size_of::<$W>();
            let per_act = act_row_bytes / core::mem::size_of::<$A>();
            if per_row == 0 || per_act == 0 {
                return;
            }
            let rows = wb.len() / per_row;
            let m = a.len() / per_act;
            let row = |r: usize| &wb[r * per_row..(r + 1) * per_row];
            let act = |i: usize| &a[i * per_act..(i + 1) * per_act];
            let mut i = 0;
            while i + 2 <= m {
                let (a0, a1) = (act(i), act(i + 1));
                let (o0, o1) = (i * out_stride, (i + 1) * out_stride);
                let mut r = 0;
                while r + 4 <= rows {
                    let v = dot_rows_pair([row(r), row(r + 1), row(r + 2), row(r + 3)], [a0, a1]);
                    out[o0 + r..o0 + r + 4].copy_from_slice(&v[0]);
                    out[o1 + r..o1 + r + 4].copy_from_slice(&v[1]);
                    r += 4;
                }
                while r < rows {
                    let v = dot_rows_pair([row(r)], [a0, a1]);
                    out[o0 + r] = v[0][0];
                    out[o1 + r] = v[1][0];
                    r += 1;
                }
                i += 2;
            }
            if i < m {
                let a_bytes = &acts[i * act_row_bytes..(i + 1) * act_row_bytes];
                // SAFETY: same CPU and buffer contract (one activation row, `rows` outputs).
                unsafe { $gemv(w, row_bytes, a_bytes, &mut out[i * out_stride..i * out_stride + rows]) };
            }
        }
    };
}
pub(super) use pairs_gemm;

/// A 4×4 transpose of dwords in each 128-bit half: dword `p` of result `j`
/// is dword `j` of `y[p]` (per half).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn transpose4_epi32(y: [__m256i; 4]) -> [__m256i; 4] {
    let t0 = _mm256_unpacklo_epi32(y[0], y[1]); // p0.0 p1.0 p0.1 p1.1
    let t1 = _mm256_unpackhi_epi32(y[0], y[1]); // p0.2 p1.2 p0.3 p1.3
    let t2 = _mm256_unpacklo_epi32(y[2], y[3]); // p2.0 p3.0 p2.1 p3.1
    let t3 = _mm256_unpackhi_epi32(y[2], y[3]); // p2.2 p3.2 p2.3 p3.3
    [
        _mm256_unpacklo_epi64(t0, t2),
        _mm256_unpackhi_epi64(t0, t2),
        _mm256_unpacklo_epi64(t1, t3),
        _mm256_unpackhi_epi64(t1, t3),
    ]
}

/// Eight rows' 32-byte vectors as their eight dword groups across the rows:
/// dword `p` of result `g` is dword `g` of `v[p]` (rows 0..4 in the low 128
/// bits, rows 4..8 in the high): the rows' halves paired up, then
/// [`transpose4_epi32`] per half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn transpose8_epi32(v: [__m256i; 8]) -> [__m256i; 8] {
    let lo = transpose4_epi32([0, 1, 2, 3].map(|k| _mm256_permute2x128_si256::<0x20>(v[k], v[k + 4])));
    let hi = transpose4_epi32([0, 1, 2, 3].map(|k| _mm256_permute2x128_si256::<0x31>(v[k], v[k + 4])));
    [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]]
}

/// Lane-wise sum of eight accumulators in the order [`hsum_ps`] (ggml's
/// `hsum_float_8`) sums the eight lanes of one vector: `((a0 + a4) + (a2 +
/// a6)) + ((a1 + a5) + (a3 + a7))`. Kernels that keep one output per lane,
/// with that output's eight vec_dot lanes in `a[0..8]`, end with it.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn sum_lanes8(a: [__m256; 8]) -> __m256 {
    let lo = _mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[2], a[6]));
    let hi = _mm256_add_ps(_mm256_add_ps(a[1], a[5]), _mm256_add_ps(a[3], a[7]));
    _mm256_add_ps(lo, hi)
}

/// Each row cut to `n` blocks. A plain loop: `array::map`'s closure is not
/// always inlined into the `target_feature` kernels, and then costs a call
/// per row and block.
#[inline(always)]
pub(super) fn trim<T, const R: usize>(w: [&[T]; R], n: usize) -> [&[T]; R] {
    let mut out = w;
    for r in 0..R {
        out[r] = &w[r][..n];
    }
    out
}

/// The activations of two 32-value blocks arranged to meet two blocks of
/// nibbles loaded with one [`load16x2`]: `lo` holds values 0..16 of each block
/// (`[a0[0..16] | a1[0..16]]`), `hi` values 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn act_pair(a0: &[i8; 32], a1: &[i8; 32]) -> (__m256i, __m256i) {
    fn half(q: &[i8; 32], k: usize) -> &[i8; 16] {
        q[16 * k..16 * k + 16].try_into().unwrap()
    }
    (load16x2(half(a0, 0), half(a1, 0)), load16x2(half(a0, 1), half(a1, 1)))
}

/// The nibbles of two Q4_0-style blocks loaded with one [`load16x2`]: low
/// nibbles (values 0..16 of each block) and high nibbles (values 16..32), as
/// bytes 0..=15 laid out as [`act_pair`] lays out activations.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn nibbles_pair(q0: &[u8; 16], q1: &[u8; 16]) -> (__m256i, __m256i) {
    let v = load16x2(q0, q1);
    let m = _mm256_set1_epi8(0x0f);
    (_mm256_and_si256(v, m), _mm256_and_si256(_mm256_srli_epi16::<4>(v), m))
}

/// How far ahead of the current block the kernels prefetch each weight row.
/// Measured on an EPYC (Zen 3) VM streaming from DRAM on one thread, every
/// configuration interleaved in rounds with the plain read: no prefetch left
/// Q4_0 at 49152×576 near 55% of the read bandwidth; 256 bytes to 8 KiB all
/// helped, 4 KiB was best or within noise of best for Q4_0, Q8_0 and Q4_K on
/// narrow (576) and wide (2048) rows.
pub(super) const PREFETCH: usize = 4096;

/// How far ahead of the current block a gemv that reads its rows as
/// [`crate::arch::streams::STREAMS`] interleaved streams prefetches each
/// stream. The Q8_0 gemv at 49152×576 from DRAM (`kernel-table`, every
/// variant 4 times in turn, medians): one stream at [`PREFETCH`] 10.8–10.9
/// GB/s on one thread and 16.8–17.5 on two; four streams at 256 / 512 / 768
/// / 1024 / 4096 bytes 14.0 / 14.0–15.3 / 12.4 / 13.9 / 14.4 on one thread
/// and 16.6 / 18.0–19.8 / 12.7 / 16.8 / 18.0 on two (table in
/// `quant/README.md`); 512 was best on two threads.
pub(super) const STREAM_PREFETCH: usize = 512;

/// Prefetches the cache line `bytes` past `p` into all cache levels (a hint:
/// it never faults, so the address may lie past the end of the row).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn prefetch_ahead<T>(p: &T, bytes: usize) {
    let ptr = (p as *const T).cast::<i8>().wrapping_add(bytes);
    // A hint with no architectural effect that never faults, whatever the
    // address; `wrapping_add` keeps the pointer arithmetic defined.
    _mm_prefetch::<_MM_HINT_T0>(ptr)
}

/// Prefetches, [`PREFETCH`] bytes ahead of `p`, every cache line a block of
/// type `T` spans (for blocks larger than a line: the k-quants).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn prefetch_block<T>(p: &T) {
    prefetch_block_ahead(p, PREFETCH)
}

/// Prefetches, `bytes` ahead of `p`, every cache line a block of type `T`
/// spans.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn prefetch_block_ahead<T>(p: &T, bytes: usize) {
    let mut off = 0;
    while off < core::mem::size_of::<T>() {
        prefetch_ahead(p, bytes + off);
        off += 64;
    }
}

/// A weight format whose prompt gemm ([`tile8_gemm`]) unpacks eight weight
/// rows once per batch into a tile that every activation row then runs
/// over, with per-block activation terms prepared once per group of
/// activation rows. The methods are `unsafe` only because they are
/// `#[target_feature(enable = "avx2,fma,f16c")]`: the CPU must have those.
pub(super) trait Tile8Format {
    /// Weight block.
    type W: bytemuck::Pod;
    /// Activation block.
    type A: bytemuck::Pod;
    /// Eight unpacked weight rows of at most [`Self::TILE_BLOCKS`] blocks.
    type Tile;
    /// Per-block terms of a group of activation rows ([`Self::CAP`] entries).
    type Terms;
    /// Blocks per row up to which the tile is used; longer rows go through
    /// [`Self::long_rows`].
    const TILE_BLOCKS: usize;
    /// Entries (activation row × block) of [`Self::Terms`].
    const CAP: usize;
    /// Activation rows per group at most.
    const ACT_ROWS: usize;
    /// A zeroed tile and terms.
    unsafe fn new() -> (Self::Tile, Self::Terms);
    /// Unpacks rows `w` (each `n <= TILE_BLOCKS` blocks) into `t`.
    unsafe fn unpack8(w: [&[Self::W]; 8], n: usize, t: &mut Self::Tile);
    /// Entries `k..k + a.len()` of `terms` from activation row `a`.
    unsafe fn fill(terms: &mut Self::Terms, k: usize, a: &[Self::A]);
    /// The eight rows of `t` times activation row `a` (its terms at entries
    /// `k..k + a.len()`): lane `p` is row `p`'s output.
    unsafe fn dot(t: &Self::Tile, a: &[Self::A], terms: &Self::Terms, k: usize) -> __m256;
    /// [`Self::dot`] for two activation rows (terms at `k[0]..`, `k[1]..`),
    /// the same results; a format overrides it where both rows can share
    /// the tile's loads.
    #[inline(always)]
    unsafe fn dot2(t: &Self::Tile, a: [&[Self::A]; 2], terms: &Self::Terms, k: [usize; 2]) -> [__m256; 2] {
        // SAFETY: the caller upholds `dot`'s requirements, which are this function's.
        unsafe { [Self::dot(t, a[0], terms, k[0]), Self::dot(t, a[1], terms, k[1])] }
    }
    /// The whole gemm ([`crate::kernels::GemmFn`]) for rows longer than
    /// [`Self::TILE_BLOCKS`] blocks.
    unsafe fn long_rows(w: &[u8], row_bytes: usize, acts: &[u8], act_row_bytes: usize, out: &mut [f32], stride: usize);
}

/// The prompt gemm ([`crate::kernels::GemmFn`]) of a [`Tile8Format`]:
/// activation rows in groups (as many as the terms hold, at most
/// `ACT_ROWS`), each group's terms filled once; then eight weight rows at a
/// time are unpacked into the tile and every activation row of the group
/// runs over it, its eight outputs stored from the lanes. Rows longer than
/// the tile go through `long_rows`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; the buffers satisfy [`crate::kernels::GemmFn`]'s contract.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile8_gemm<F: Tile8Format>(
    w: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_row_bytes: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    use super::x8_avx2::{rows_n, store_lanes};
    let wb: &[F::W] = bytemuck::cast_slice(w);
    let a: &[F::A] = bytemuck::cast_slice(acts);
    let per_row = row_bytes / core::mem::size_of::<F::W>();
    let per_act = act_row_bytes / core::mem::size_of::<F::A>();
    if per_row == 0 || per_act == 0 {
        return;
    }
    if per_row > F::TILE_BLOCKS {
        // SAFETY: same CPU and buffer contract.
        unsafe { F::long_rows(w, row_bytes, acts, act_row_bytes, out, out_stride) };
        return;
    }
    let rows = wb.len() / per_row;
    let m = a.len() / per_act;
    let act = |i: usize| &a[i * per_act..(i + 1) * per_act][..per_row];
    // SAFETY (this and the calls below): this function's target features,
    // which the caller guarantees the CPU has, are the methods' only requirement.
    let (mut t, mut terms) = unsafe { F::new() };
    let group = (F::CAP / per_row).min(F::ACT_ROWS);
    let mut i0 = 0;
    while i0 < m {
        let i1 = (i0 + group).min(m);
        for i in i0..i1 {
            // SAFETY: as above.
            unsafe { F::fill(&mut terms, (i - i0) * per_row, act(i)) };
        }
        let mut r = 0;
        while r < rows {
            let end = (r + 8).min(rows);
            // SAFETY: as above.
            unsafe { F::unpack8(rows_n(wb, per_row, r, rows), per_row, &mut t) };
            let mut i = i0;
            while i + 2 <= i1 {
                let k = [(i - i0) * per_row, (i + 1 - i0) * per_row];
                // SAFETY: as above.
                let v = unsafe { F::dot2(&t, [act(i), act(i + 1)], &terms, k) };
                store_lanes(v[0], &mut out[i * out_stride + r..i * out_stride + end]);
                store_lanes(v[1], &mut out[(i + 1) * out_stride + r..(i + 1) * out_stride + end]);
                i += 2;
            }
            if i < i1 {
                // SAFETY: as above.
                let v = unsafe { F::dot(&t, act(i), &terms, (i - i0) * per_row) };
                store_lanes(v, &mut out[i * out_stride + r..i * out_stride + end]);
            }
            r += 8;
        }
        i0 = i1;
    }
}
