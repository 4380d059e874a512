//! F32, F16 and BF16 dot products with AVX2 + FMA (+ F16C for f16): 32 values
//! per step in four independent accumulators, the tail (fewer than 32
//! values) through the generic code.

use super::avx2::{hsum_ps, sum_lanes8};
use crate::floats;
use core::arch::x86_64::*;
use half::{bf16, f16};

/// Four accumulators summed pairwise, then across lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce(acc: [__m256; 4]) -> f32 {
    hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])))
}

/// f32 · f32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w.len() == a.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_f32_avx2(w: &[f32], a: &[f32]) -> f32 {
    let n = w.len().min(a.len());
    let body = n / 32 * 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    for (wc, ac) in w[..body].chunks_exact(32).zip(a[..body].chunks_exact(32)) {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: both chunks hold 32 f32, so lanes 8k..8k+8 are in bounds; loadu needs no alignment.
            let (x, y) = unsafe { (_mm256_loadu_ps(wc.as_ptr().add(8 * k)), _mm256_loadu_ps(ac.as_ptr().add(8 * k))) };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
    }
    reduce(acc) + floats::vec_dot_f32_generic(&w[body..n], &a[body..n])
}

/// 8 f16 at `p[o..o + 8]` as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_f16x8(p: &[f16], o: usize) -> __m256 {
    let s = &p[o..o + 8];
    // SAFETY: `s` is 8 f16 = 16 readable bytes; loadu needs no alignment.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(s.as_ptr().cast()) })
}

/// f16 · f16, products and sums in f32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w.len() == a.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_f16_avx2(w: &[f16], a: &[f16]) -> f32 {
    let n = w.len().min(a.len());
    let body = n / 32 * 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut o = 0;
    while o < body {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_fmadd_ps(load_f16x8(w, o + 8 * k), load_f16x8(a, o + 8 * k), *acc);
        }
        o += 32;
    }
    reduce(acc) + floats::vec_dot_f16_generic(&w[body..n], &a[body..n])
}

/// 8 bf16 at `p[o..o + 8]` as f32 (a bf16 is the top half of an f32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_bf16x8(p: &[bf16], o: usize) -> __m256 {
    let s = &p[o..o + 8];
    // SAFETY: `s` is 8 bf16 = 16 readable bytes; loadu needs no alignment.
    let h = unsafe { _mm_loadu_si128(s.as_ptr().cast()) };
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
}

/// bf16 · bf16, products and sums in f32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. `w.len() == a.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_bf16_avx2(w: &[bf16], a: &[bf16]) -> f32 {
    let n = w.len().min(a.len());
    let body = n / 32 * 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut o = 0;
    while o < body {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_fmadd_ps(load_bf16x8(w, o + 8 * k), load_bf16x8(a, o + 8 * k), *acc);
        }
        o += 32;
    }
    reduce(acc) + floats::vec_dot_bf16_generic(&w[body..n], &a[body..n])
}

/// [`crate::attn::dot_f16_generic`] with AVX2 + F16C, bit-identical: the 64
/// values of a step are eight vectors; vector `2j + h` is half `h` of ggml's
/// 16-lane accumulator `j`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attn_dot_f16_avx2(k: &[f16], q: &[f32]) -> f32 {
    dot_f16(k, q)
}

/// [`crate::attn::dots_f16_generic`] with AVX2 + F16C: [`attn_dot_f16_avx2`]
/// of each row, bit for bit. For rows of a multiple of 64 values, four rows
/// at a time: each row's eight lanes are summed as [`dot_f16`] sums them
/// ([`dot_f16_lanes`]), and the four rows' last steps (the two halves, then
/// the pairs, then the two remaining lanes) are taken together in shuffled
/// vectors ([`hsum_rows4`]); each sum adds the same two values as before, so
/// every score is unchanged. One row at a time, the last steps were one
/// dependent chain per row (about as long as the products).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attn_dots_f16_avx2(rows: &[&[f16]], q: &[f32], out: &mut [f32]) {
    let n = q.len();
    let rows = &rows[..rows.len().min(out.len())];
    let mut i = 0;
    if n.is_multiple_of(64) && rows.iter().all(|k| k.len() >= n) {
        while i + 4 <= rows.len() {
            // Written out: `array::map`'s closure is not inlined here.
            let l = [
                dot_f16_lanes(rows[i], q),
                dot_f16_lanes(rows[i + 1], q),
                dot_f16_lanes(rows[i + 2], q),
                dot_f16_lanes(rows[i + 3], q),
            ];
            out[i..i + 4].copy_from_slice(&hsum_rows4(l));
            i += 4;
        }
    }
    for (o, k) in out[i..].iter_mut().zip(&rows[i..]) {
        *o = dot_f16(k, q);
    }
}

/// The eight lanes of [`dot_f16`] before its last steps: per step of 64
/// values eight FMA chains, then summed across chains ([`sum_lanes8`]).
/// Covers the first `len & !63` values of the shorter of `k` and `q`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_f16_lanes(k: &[f16], q: &[f32]) -> __m256 {
    let n = q.len().min(k.len());
    let np = n & !63;
    let (ks, _) = k[..np].as_chunks::<64>();
    let (qs, _) = q[..np].as_chunks::<64>();
    let mut acc = [_mm256_setzero_ps(); 8];
    for (kc, qc) in ks.iter().zip(qs) {
        for (v, a) in acc.iter_mut().enumerate() {
            // SAFETY: `v < 8`, so values 8v..8v+8 lie in the 64 of each
            // chunk (16 bytes of f16, 32 of f32); loadu needs no alignment.
            let (kv, qv) =
                unsafe { (_mm_loadu_si128(kc.as_ptr().add(8 * v).cast()), _mm256_loadu_ps(qc.as_ptr().add(8 * v))) };
            // Products of an f16 and an f16-rounded f32 are exact, as in ggml.
            *a = _mm256_fmadd_ps(_mm256_cvtph_ps(kv), qv, *a);
        }
    }
    sum_lanes8(acc)
}

/// [`dot_f16`]'s last steps for four rows' lanes `t` at once: per row
/// `x = (hi + lo)` (four lanes), then `x[0] + x[2]` and `x[1] + x[3]`, then
/// the sum of those two, the same additions of the same values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_rows4(t: [__m256; 4]) -> [f32; 4] {
    // [lo(t0) | lo(t1)] + [hi(t0) | hi(t1)]: row 0's four half sums, then row 1's.
    let h01 = _mm256_add_ps(_mm256_permute2f128_ps::<0x31>(t[0], t[1]), _mm256_permute2f128_ps::<0x20>(t[0], t[1]));
    let h23 = _mm256_add_ps(_mm256_permute2f128_ps::<0x31>(t[2], t[3]), _mm256_permute2f128_ps::<0x20>(t[2], t[3]));
    // Lanes (0, 2, 1, 3) of each half, so that `hadd` adds 0 with 2 and 1 with 3:
    // [r0: x0+x2, x1+x3, r2: x0+x2, x1+x3 | r1: .., r3: ..].
    let pairs = _mm256_hadd_ps(_mm256_permute_ps::<0b11_01_10_00>(h01), _mm256_permute_ps::<0b11_01_10_00>(h23));
    // [r0, r2, r0, r2 | r1, r3, r1, r3].
    let s = _mm256_hadd_ps(pairs, pairs);
    let mut v = [0.0f32; 8];
    // SAFETY: `v` is 8 writable f32; storeu needs no alignment.
    unsafe { _mm256_storeu_ps(v.as_mut_ptr(), s) };
    [v[0], v[4], v[1], v[5]]
}

/// The body of [`attn_dot_f16_avx2`]: [`dot_f16_lanes`], then across lanes
/// as ggml's `GGML_F16_VEC_REDUCE` ends (the two halves, the pairs, the last
/// two lanes), then the values past the last step of 64 in f64.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_f16(k: &[f16], q: &[f32]) -> f32 {
    let n = q.len().min(k.len());
    let np = n & !63;
    let t3 = dot_f16_lanes(k, q);
    let t6 = _mm_add_ps(_mm256_extractf128_ps::<1>(t3), _mm256_castps256_ps128(t3));
    let x = _mm_add_ps(t6, _mm_movehl_ps(t6, t6));
    let mut sum = (_mm_cvtss_f32(x) + _mm_cvtss_f32(_mm_shuffle_ps::<1>(x, x))) as f64;
    for i in np..n {
        sum += (k[i].to_f32() * q[i]) as f64;
    }
    sum as f32
}

/// `x` rounded to f16 (nearest even) and back.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn round_f16x8(x: __m256) -> __m256 {
    _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x))
}

/// [`crate::attn::mad_f16_generic`] with AVX2 + F16C (an FMA instruction
/// where the generic code rounds through f64; see its docs).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attn_mad_f16_avx2(acc: &mut [f32], v: &[f16], s: f32) {
    let n = acc.len().min(v.len());
    let body = n / 8 * 8;
    let sv = _mm256_set1_ps(s);
    let mut o = 0;
    while o < body {
        let a = &mut acc[o..o + 8];
        // SAFETY: `a` is 8 f32; loadu/storeu need no alignment.
        unsafe { _mm256_storeu_ps(a.as_mut_ptr(), mad8(_mm256_loadu_ps(a.as_ptr()), load_f16x8(v, o), sv)) };
        o += 8;
    }
    crate::attn::mad_f16_generic(&mut acc[body..n], &v[body..n], s);
}

/// Eight lanes of [`crate::attn::mad_f16_generic`]: `f16(fma(v, s, c))`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mad8(c: __m256, v: __m256, sv: __m256) -> __m256 {
    round_f16x8(_mm256_fmadd_ps(v, sv, c))
}

/// Eight lanes of [`crate::attn::mad_f16_ph_generic`] (`v · s + c` rounded
/// once to f16, through [`crate::attn::fma_f16_once`]'s round to odd).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mad8_ph(c: __m256, v: __m256, sv: __m256) -> __m256 {
    let zero = _mm256_setzero_ps();
    let inf = _mm256_set1_ps(f32::INFINITY);
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let one = _mm256_set1_epi32(1);
    let p = _mm256_mul_ps(v, sv);
    let sum = _mm256_add_ps(p, c);
    let bb = _mm256_sub_ps(sum, p);
    let err = _mm256_add_ps(_mm256_sub_ps(p, _mm256_sub_ps(sum, bb)), _mm256_sub_ps(c, bb));
    let bits = _mm256_castps_si256(sum);
    // lanes to step: inexact, even, finite
    let inexact = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_NEQ_OQ>(err, zero));
    let even = _mm256_cmpeq_epi32(_mm256_and_si256(bits, one), _mm256_setzero_si256());
    let finite = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(_mm256_and_ps(sum, abs_mask), inf));
    let step = _mm256_and_si256(_mm256_and_si256(inexact, even), finite);
    // +1 where err and sum have the same sign (away from zero), else -1
    let differ = _mm256_srli_epi32::<31>(_mm256_xor_si256(_mm256_castps_si256(err), bits));
    let delta = _mm256_sub_epi32(one, _mm256_slli_epi32::<1>(differ));
    let odd = _mm256_add_epi32(bits, _mm256_and_si256(step, delta));
    round_f16x8(_mm256_castsi256_ps(odd))
}

/// [`crate::attn::mad_f16_ph_generic`] with AVX2 + F16C: the same f32
/// product, TwoSum error, step to odd and f16 rounding as
/// [`crate::attn::fma_f16_once`], eight lanes at a time.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attn_mad_f16_ph_avx2(acc: &mut [f32], v: &[f16], s: f32) {
    let n = acc.len().min(v.len());
    let body = n / 8 * 8;
    let sv = _mm256_set1_ps(s);
    let mut o = 0;
    while o < body {
        let a = &mut acc[o..o + 8];
        // SAFETY: `a` is 8 f32; loadu/storeu need no alignment.
        unsafe { _mm256_storeu_ps(a.as_mut_ptr(), mad8_ph(_mm256_loadu_ps(a.as_ptr()), load_f16x8(v, o), sv)) };
        o += 8;
    }
    crate::attn::mad_f16_ph_generic(&mut acc[body..n], &v[body..n], s);
}

/// [`crate::attn::scale_f16_generic`] with AVX2 + F16C.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attn_scale_f16_avx2(acc: &mut [f32], s: f32) {
    let n = acc.len();
    let body = n / 8 * 8;
    let sv = _mm256_set1_ps(s);
    let mut o = 0;
    while o < body {
        let a = &mut acc[o..o + 8];
        // SAFETY: `a` is 8 f32; loadu/storeu need no alignment.
        unsafe { _mm256_storeu_ps(a.as_mut_ptr(), round_f16x8(_mm256_mul_ps(_mm256_loadu_ps(a.as_ptr()), sv))) };
        o += 8;
    }
    crate::attn::scale_f16_generic(&mut acc[body..n], s);
}

/// [`crate::attn::mads_f16_generic`] with AVX2 + F16C, bit-identical: the
/// accumulator is taken 64 values (eight vectors) at a time and kept in
/// registers while every position's rescaling and value row are applied
/// to it, in order (each value's sequence of operations is the generic
/// one; values do not depend on each other). Lengths that are not a
/// multiple of 8 go position by position through the one-row kernels.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `ms` and `vs` have
/// `rows.len()` values and every row `acc.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attn_mads_f16_avx2(acc: &mut [f32], rows: &[&[f16]], ms: &[f32], vs: &[f32]) {
    let n = acc.len();
    let np = n & !(crate::attn::F16_STEP - 1);
    if !n.is_multiple_of(8) {
        // SAFETY: the CPU supports these kernels and the lengths match (the caller's).
        return unsafe {
            crate::attn::mads_f16_by_steps(
                acc,
                rows,
                ms,
                vs,
                attn_scale_f16_avx2,
                attn_mad_f16_ph_avx2,
                attn_mad_f16_avx2,
            )
        };
    }
    let mut c = 0;
    while c < n {
        // `np` is a multiple of 128, so a block of 64 lies on one side of it.
        let ph = c < np;
        if c + 64 <= n {
            if ph {
                mads_block::<8, true>(&mut acc[c..c + 64], rows, c, ms, vs);
            } else {
                mads_block::<8, false>(&mut acc[c..c + 64], rows, c, ms, vs);
            }
            c += 64;
        } else {
            if ph {
                mads_block::<1, true>(&mut acc[c..c + 8], rows, c, ms, vs);
            } else {
                mads_block::<1, false>(&mut acc[c..c + 8], rows, c, ms, vs);
            }
            c += 8;
        }
    }
}

/// `W` vectors of the accumulator (values `col..col + 8W` of each row) through
/// every position of [`attn_mads_f16_avx2`]: with `PH` the scales rounded to
/// f16 and [`mad8_ph`] (the values below `len & !(F16_STEP - 1)`), else
/// [`mad8`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mads_block<const W: usize, const PH: bool>(acc: &mut [f32], rows: &[&[f16]], col: usize, ms: &[f32], vs: &[f32]) {
    let mut a = [_mm256_setzero_ps(); W];
    for (k, x) in a.iter_mut().enumerate() {
        let s = &acc[8 * k..8 * k + 8];
        // SAFETY: `s` is 8 f32; loadu needs no alignment.
        *x = unsafe { _mm256_loadu_ps(s.as_ptr()) };
    }
    let f16_if = |x: f32| if PH { crate::attn::round_f16(x) } else { x };
    for ((v, &m), &s) in rows.iter().zip(ms).zip(vs) {
        if m != 1.0 {
            let mv = _mm256_set1_ps(f16_if(m));
            for x in a.iter_mut() {
                *x = round_f16x8(_mm256_mul_ps(*x, mv));
            }
        }
        let sv = _mm256_set1_ps(f16_if(s));
        for (k, x) in a.iter_mut().enumerate() {
            let vk = load_f16x8(v, col + 8 * k);
            *x = if PH { mad8_ph(*x, vk, sv) } else { mad8(*x, vk, sv) };
        }
    }
    for (k, x) in a.iter().enumerate() {
        let d = &mut acc[8 * k..8 * k + 8];
        // SAFETY: `d` is 8 writable f32; storeu needs no alignment.
        unsafe { _mm256_storeu_ps(d.as_mut_ptr(), *x) };
    }
}

/// [`crate::attn::widen_f16_generic`] with F16C (exact, like the generic code).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attn_widen_f16_avx2(src: &[f16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    let body = n / 8 * 8;
    let mut o = 0;
    while o < body {
        let d = &mut dst[o..o + 8];
        // SAFETY: `d` is 8 writable f32; storeu needs no alignment.
        unsafe { _mm256_storeu_ps(d.as_mut_ptr(), load_f16x8(src, o)) };
        o += 8;
    }
    crate::attn::widen_f16_generic(&src[body..n], &mut dst[body..n]);
}

/// [`crate::attn::dot_f32_x4_generic`] with one f64 lane per query: each lane
/// adds its f32 products in the generic code's order, so the result is
/// bit-identical.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attn_dot_f32_x4_avx2(k: &[f32], qt: &[f32], out: &mut [f32; 4]) {
    let mut acc = _mm256_setzero_pd();
    for (&kd, q) in k.iter().zip(qt.chunks_exact(4)) {
        // SAFETY: `q` is 4 readable f32; loadu needs no alignment.
        let p = _mm_mul_ps(_mm_set1_ps(kd), unsafe { _mm_loadu_ps(q.as_ptr()) });
        acc = _mm256_add_pd(acc, _mm256_cvtps_pd(p));
    }
    // SAFETY: `out` is 4 writable f32; storeu needs no alignment.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), _mm256_cvtpd_ps(acc)) };
}

/// [`crate::attn::mad_f32_generic`] with an FMA instruction.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attn_mad_f32_avx2(acc: &mut [f32], v: &[f32], s: f32) {
    let n = acc.len().min(v.len());
    let body = n / 8 * 8;
    let sv = _mm256_set1_ps(s);
    let mut o = 0;
    while o < body {
        let (a, x) = (&mut acc[o..o + 8], &v[o..o + 8]);
        // SAFETY: `a` and `x` are 8 f32 each; loadu/storeu need no alignment.
        unsafe {
            let r = _mm256_fmadd_ps(_mm256_loadu_ps(x.as_ptr()), sv, _mm256_loadu_ps(a.as_ptr()));
            _mm256_storeu_ps(a.as_mut_ptr(), r);
        }
        o += 8;
    }
    crate::attn::mad_f32_generic(&mut acc[body..n], &v[body..n], s);
}

/// [`crate::attn::dot_f32_x4_pair_generic`]: two independent f64 chains per
/// step (one per key row), each in the generic order, bit-identical.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attn_dot_f32_x4_pair_avx2(k0: &[f32], k1: &[f32], qt: &[f32], out: &mut [[f32; 4]; 2]) {
    let (mut acc0, mut acc1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    for ((&x0, &x1), q) in k0.iter().zip(k1).zip(qt.chunks_exact(4)) {
        // SAFETY: `q` is 4 readable f32; loadu needs no alignment.
        let qv = unsafe { _mm_loadu_ps(q.as_ptr()) };
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm_mul_ps(_mm_set1_ps(x0), qv)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm_mul_ps(_mm_set1_ps(x1), qv)));
    }
    // SAFETY: each `out[j]` is 4 writable f32; storeu needs no alignment.
    unsafe {
        _mm_storeu_ps(out[0].as_mut_ptr(), _mm256_cvtpd_ps(acc0));
        _mm_storeu_ps(out[1].as_mut_ptr(), _mm256_cvtpd_ps(acc1));
    }
}
