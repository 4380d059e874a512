//! The attention kernels of [`crate::attn`] with NEON, bit for bit the
//! generic ones (the order of ggml's one-row flash attention), so that a
//! Pi gives the same tokens as an x86 box; before these, aarch64 ran the
//! generic (scalar) code. Two exceptions, shared with the AVX2 kernels:
//! the FMAs are instructions where the generic code goes through f64, which
//! can round twice (about one value in 2^29; see `attn`'s `fma`), and NaN
//! results may carry other payload bits.
//!
//! - f16 rows are widened with `fcvtl` and values rounded to f16 with
//!   `fcvtn` then `fcvtl` ([`round_f16x4`]), base Advanced SIMD (a Pi 4's
//!   Cortex-A72 has no FEAT_FP16 arithmetic);
//! - [`attn_dot_f16_neon`] keeps the generic code's four 16-lane
//!   accumulators as sixteen 4-lane ones and reduces them in its order;
//! - [`attn_mad_f16_ph_neon`] rounds `v·s + acc` once to f16 without the
//!   generic TwoSum emulation: the sum of the exact product and the
//!   accumulator in f64, narrowed to f32 with `fcvtxn` (round to odd), then
//!   to f16 (see [`fma_f16_once_x4`] for why that is the same rounding);
//! - the f32 path's four-query scores sum each query's f32 products in an
//!   f64 lane, in order, as the generic code does.
//!
//! The last `len % 8` (or `% 4`) values of a row go through the generic
//! code, as in the AVX2 kernels.

use super::simd::{f16x8_to_f32, ld_f16_bits, ld_f32, st_f32};
use crate::attn;
use core::arch::aarch64::*;
use half::f16;

/// Each lane rounded to the nearest f16 (ties to even, the default FPCR
/// mode) and widened back: `fcvtn` then `fcvtl`, exact on the way back.
#[inline]
#[target_feature(enable = "neon")]
fn round_f16x4(x: float32x4_t) -> float32x4_t {
    let r: float32x4_t;
    // SAFETY: FCVTN/FCVTL between single and half precision are base ARMv8
    // Advanced SIMD (this function requires NEON); registers only (and the
    // FPSR exception flags, hence no `preserves_flags`). `t` is an early
    // output, so it does not share `x`'s register.
    unsafe {
        core::arch::asm!(
            "fcvtn {t:v}.4h, {x:v}.4s",
            "fcvtl {r:v}.4s, {t:v}.4h",
            x = in(vreg) x,
            t = out(vreg) _,
            r = lateout(vreg) r,
            options(pure, nomem, nostack)
        )
    };
    r
}

/// `v·s + c` rounded once to f16 in four lanes, `v`, `s` and `c` holding
/// f16 values: [`attn::fma_f16_once`] without its TwoSum. The product is
/// exact in f32 (22 significant bits). Its sum with `c` is exact in f64
/// unless `c` exceeds the product by more than 2^31, and then the product
/// lies far below half an f16 ulp of `c`: the exact sum and its f64
/// rounding both round to `c` in f16; or unless the product exceeds `c`'s
/// lowest bit by about 2^53 or more, and then (that bit being at least
/// 2^-24) it is at least 2^29: both results overflow to infinity in f16.
/// `fcvtxn` narrows the f64 sum to f32
/// rounding to odd, which keeps the bits that decide the f16 rounding (f32
/// has 13 more than f16, round to odd needs 2), as the generic step to odd
/// does.
#[inline]
#[target_feature(enable = "neon")]
fn fma_f16_once_x4(v: float32x4_t, s: float32x4_t, c: float32x4_t) -> float32x4_t {
    let p = vmulq_f32(v, s);
    let lo = vaddq_f64(vcvt_f64_f32(vget_low_f32(p)), vcvt_f64_f32(vget_low_f32(c)));
    let hi = vaddq_f64(vcvt_high_f64_f32(p), vcvt_high_f64_f32(c));
    round_f16x4(vcvtx_high_f32_f64(vcvtx_f32_f64(lo), hi))
}

/// [`attn::dot_f16_generic`] with NEON, bit-identical: generic accumulator
/// `j`'s lanes `4m..4m + 4` are `acc[4j + m]`, each an FMA chain of exact
/// products (an f16 times an f16-rounded f32), reduced in the generic order.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn attn_dot_f16_neon(k: &[f16], q: &[f32]) -> f32 {
    dot_f16(k, q)
}

/// The body of [`attn_dot_f16_neon`].
#[inline]
#[target_feature(enable = "neon")]
fn dot_f16(k: &[f16], q: &[f32]) -> f32 {
    let n = q.len().min(k.len());
    let np = n & !63;
    let (ks, _) = k[..np].as_chunks::<64>();
    let (qs, _) = q[..np].as_chunks::<64>();
    let mut acc = [vdupq_n_f32(0.0); 16];
    for (kc, qc) in ks.iter().zip(qs) {
        for e in 0..8 {
            // Values 8e..8e + 8: accumulator j = e / 2, quarters 2(e % 2) and 2(e % 2) + 1.
            let (lo, hi) = f16x8_to_f32(ld_f16_bits(&kc[8 * e..]));
            let i = 4 * (e / 2) + 2 * (e % 2);
            acc[i] = vfmaq_f32(acc[i], lo, ld_f32(&qc[8 * e..]));
            acc[i + 1] = vfmaq_f32(acc[i + 1], hi, ld_f32(&qc[8 * e + 4..]));
        }
    }
    // a[l] = (acc0 + acc2) + (acc1 + acc3) for each quarter of the 16 lanes.
    let a = |m: usize| vaddq_f32(vaddq_f32(acc[m], acc[8 + m]), vaddq_f32(acc[4 + m], acc[12 + m]));
    let (a0, a1, a2, a3) = (a(0), a(1), a(2), a(3));
    // t3[i] = a[i + 8] + a[i] (i < 8), then t6[i] = t3[i + 4] + t3[i] (i < 4).
    let t6 = vaddq_f32(vaddq_f32(a3, a1), vaddq_f32(a2, a0));
    // (t6[0] + t6[2]) + (t6[1] + t6[3]).
    let u = vadd_f32(vget_low_f32(t6), vget_high_f32(t6));
    let mut sum = vpadds_f32(u) as f64;
    for i in np..n {
        sum += (k[i].to_f32() * q[i]) as f64;
    }
    sum as f32
}

/// [`attn::dots_f16_generic`] with NEON: [`attn_dot_f16_neon`] of each row.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn attn_dots_f16_neon(rows: &[&[f16]], q: &[f32], out: &mut [f32]) {
    for (o, k) in out.iter_mut().zip(rows) {
        *o = dot_f16(k, q);
    }
}

/// [`attn::mad_f16_generic`] with NEON: `f16(fma(v, s, acc))`, an FMA
/// instruction where the generic code rounds through f64 (see its docs).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn attn_mad_f16_neon(acc: &mut [f32], v: &[f16], s: f32) {
    mad_f16::<false>(acc, v, s)
}

/// [`attn::mad_f16_ph_generic`] with NEON ([`fma_f16_once_x4`]).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn attn_mad_f16_ph_neon(acc: &mut [f32], v: &[f16], s: f32) {
    mad_f16::<true>(acc, v, s)
}

/// The body of [`attn_mad_f16_neon`] (`PH` false) and
/// [`attn_mad_f16_ph_neon`] (`PH` true): eight values at a time through
/// [`mad4`], the tail through the matching generic kernel.
#[inline]
#[target_feature(enable = "neon")]
fn mad_f16<const PH: bool>(acc: &mut [f32], v: &[f16], s: f32) {
    let n = acc.len().min(v.len());
    let body = n / 8 * 8;
    let sv = vdupq_n_f32(s);
    for (a, x) in acc[..body].chunks_exact_mut(8).zip(v[..body].chunks_exact(8)) {
        let (lo, hi) = f16x8_to_f32(ld_f16_bits(x));
        let r0 = mad4::<PH>(ld_f32(a), lo, sv);
        let r1 = mad4::<PH>(ld_f32(&a[4..]), hi, sv);
        st_f32(a, r0);
        st_f32(&mut a[4..], r1);
    }
    let (a, x) = (&mut acc[body..n], &v[body..n]);
    if PH {
        attn::mad_f16_ph_generic(a, x, s)
    } else {
        attn::mad_f16_generic(a, x, s)
    }
}

/// Four lanes of `acc + v·s` rounded to f16: once ([`fma_f16_once_x4`],
/// `PH`) or through an f32 FMA.
#[inline]
#[target_feature(enable = "neon")]
fn mad4<const PH: bool>(acc: float32x4_t, v: float32x4_t, sv: float32x4_t) -> float32x4_t {
    if PH {
        fma_f16_once_x4(v, sv, acc)
    } else {
        round_f16x4(vfmaq_f32(acc, v, sv))
    }
}

/// [`attn::scale_f16_generic`] with NEON.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn attn_scale_f16_neon(acc: &mut [f32], s: f32) {
    let n = acc.len();
    let body = n / 4 * 4;
    let sv = vdupq_n_f32(s);
    for a in acc[..body].chunks_exact_mut(4) {
        let r = round_f16x4(vmulq_f32(ld_f32(a), sv));
        st_f32(a, r);
    }
    attn::scale_f16_generic(&mut acc[body..n], s);
}

/// [`attn::mads_f16_generic`] with NEON: the same steps through the NEON
/// one-row kernels.
///
/// # Safety
/// The CPU must support NEON; `ms` and `vs` have `rows.len()` values and
/// every row `acc.len()`.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn attn_mads_f16_neon(acc: &mut [f32], rows: &[&[f16]], ms: &[f32], vs: &[f32]) {
    // SAFETY: the caller's CPU and lengths; these kernels need NEON only.
    unsafe { attn::mads_f16_by_steps(acc, rows, ms, vs, attn_scale_f16_neon, attn_mad_f16_ph_neon, attn_mad_f16_neon) }
}

/// [`attn::widen_f16_generic`] with NEON (exact).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn attn_widen_f16_neon(src: &[f16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    let body = n / 8 * 8;
    for (d, x) in dst[..body].chunks_exact_mut(8).zip(src[..body].chunks_exact(8)) {
        let (lo, hi) = f16x8_to_f32(ld_f16_bits(x));
        st_f32(d, lo);
        st_f32(&mut d[4..], hi);
    }
    attn::widen_f16_generic(&src[body..n], &mut dst[body..n]);
}

/// One step of the four-query scores: `acc` (queries 0, 1 and 2, 3 in f64
/// lanes) plus the f32 products `kd * q[h]` widened, each lane in order.
#[inline]
#[target_feature(enable = "neon")]
fn dot_x4_step(acc: (float64x2_t, float64x2_t), kd: f32, q: &[f32]) -> (float64x2_t, float64x2_t) {
    let p = vmulq_n_f32(ld_f32(q), kd);
    (vaddq_f64(acc.0, vcvt_f64_f32(vget_low_f32(p))), vaddq_f64(acc.1, vcvt_high_f64_f32(p)))
}

/// The four f64 sums of [`dot_x4_step`] rounded to f32 (ties to even).
#[inline]
#[target_feature(enable = "neon")]
fn dot_x4_out(acc: (float64x2_t, float64x2_t), out: &mut [f32; 4]) {
    st_f32(out, vcvt_high_f32_f64(vcvt_f32_f64(acc.0), acc.1));
}

/// [`attn::dot_f32_x4_generic`] with one f64 lane per query, bit-identical.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn attn_dot_f32_x4_neon(k: &[f32], qt: &[f32], out: &mut [f32; 4]) {
    let mut acc = (vdupq_n_f64(0.0), vdupq_n_f64(0.0));
    for (&kd, q) in k.iter().zip(qt.chunks_exact(4)) {
        acc = dot_x4_step(acc, kd, q);
    }
    dot_x4_out(acc, out);
}

/// [`attn::dot_f32_x4_pair_generic`]: the two rows' chains side by side,
/// each in the generic order.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn attn_dot_f32_x4_pair_neon(k0: &[f32], k1: &[f32], qt: &[f32], out: &mut [[f32; 4]; 2]) {
    let mut a0 = (vdupq_n_f64(0.0), vdupq_n_f64(0.0));
    let mut a1 = a0;
    for ((&x0, &x1), q) in k0.iter().zip(k1).zip(qt.chunks_exact(4)) {
        a0 = dot_x4_step(a0, x0, q);
        a1 = dot_x4_step(a1, x1, q);
    }
    let [o0, o1] = out;
    dot_x4_out(a0, o0);
    dot_x4_out(a1, o1);
}

/// [`attn::mad_f32_generic`] with an FMA instruction.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn attn_mad_f32_neon(acc: &mut [f32], v: &[f32], s: f32) {
    let n = acc.len().min(v.len());
    let body = n / 4 * 4;
    let sv = vdupq_n_f32(s);
    for (a, x) in acc[..body].chunks_exact_mut(4).zip(v[..body].chunks_exact(4)) {
        let r = vfmaq_f32(ld_f32(a), ld_f32(x), sv);
        st_f32(a, r);
    }
    attn::mad_f32_generic(&mut acc[body..n], &v[body..n], s);
}
