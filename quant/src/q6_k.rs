//! Q6_K: 256 weights in 16 groups of 16, 6-bit values (4 low bits in `ql`, 2 high bits in `qh`) with int8 scales and one f16 `d`. Paired with Q8_K.
//!
//! Layout: ggml's `block_q6_K` (ggml-common.h). Value `i` of group `g` is
//! `d * scales[g] * (q - 32)`. Each half of the block (128 values) uses 64
//! bytes of `ql` and 32 of `qh`: value `l + 32*s` (`s in 0..4`, `l in 0..32`)
//! takes the low nibble of `ql[l]` (s=0), `ql[l+32]` (s=1), the high nibble of
//! `ql[l]` (s=2), `ql[l+32]` (s=3), and bits `2s..2s+2` of `qh[l]`.
//! Algorithms: ggml's `dequantize_row_q6_K`, `quantize_row_q6_K_ref`
//! (ggml-quants.c) and `ggml_vec_dot_q6_K_q8_K_generic` (ggml-cpu/quants.c).

use crate::k_common::{make_qx_quants_rmse1, nearest_int, GROUP_MAX_EPS};
use crate::q8_k::BlockQ8K;
use crate::QK_K;
use half::f16;

/// One Q6_K block of 256 values; mirrors ggml's `block_q6_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ6K {
    /// Low 4 bits of each value.
    pub ql: [u8; 128],
    /// High 2 bits of each value.
    pub qh: [u8; 64],
    /// Per-group scales.
    pub scales: [i8; 16],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(core::mem::size_of::<BlockQ6K>() == 210);
const _: () = assert!(core::mem::size_of::<BlockQ6K>() == crate::GgmlType::Q6_K.type_size());

/// The 256 signed 6-bit values (`q - 32`, in `-32..32`) of one block, in order.
#[inline(always)]
fn unpack(b: &BlockQ6K) -> [i8; QK_K] {
    let mut a = [0i8; QK_K];
    for ((a, ql), qh) in a.chunks_exact_mut(128).zip(b.ql.chunks_exact(64)).zip(b.qh.chunks_exact(32)) {
        for l in 0..32 {
            a[l] = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
            a[l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            a[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            a[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
        }
    }
    a
}

/// The products `out[i * out_stride + r] = W[r] · a_i` (`nb` blocks per row)
/// in the float order of ggml-cpu's tiled K-quant matmul (`ggml-cpu/tiled`,
/// llama.cpp 0c1e570), which x86 builds (AVX, AVX2, AVX-512 VNNI) run for
/// Q6_K weights that are not repacked when the batch has 8 or more rows:
/// per 256-value block the exact integer `isum = Σ scale · Σ (q - 32) · a`,
/// then `acc = fma(d_w · f32(isum), d_a, acc)`, block after block from
/// `acc = 0` (the AVX2 epilogue's `_mm256_mul_ps` then `_mm256_fmadd_ps`).
/// Unlike [`vec_dot_q6_k_q8_k_generic`] and ggml's `vec_dot`, there is no
/// lane split and no horizontal sum.
///
/// # Panics
/// If `w` or `a` is not a whole number of `nb`-block rows, or `out` is too short.
pub fn gemm_tiled_order(w: &[BlockQ6K], a: &[BlockQ8K], nb: usize, out: &mut [f32], out_stride: usize) {
    if nb == 0 {
        return;
    }
    assert!(w.len().is_multiple_of(nb) && a.len().is_multiple_of(nb), "q6_k::gemm_tiled_order: partial rows");
    let m = a.len() / nb;
    const M: usize = 16;
    let mut acc = [0.0f32; M];
    for (r, wr) in w.chunks_exact(nb).enumerate() {
        for j0 in (0..m).step_by(M) {
            let mj = (m - j0).min(M);
            acc[..mj].fill(0.0);
            for (b, x) in wr.iter().enumerate() {
                let q = unpack(x);
                let d = x.d.to_f32();
                for (j, acc) in acc[..mj].iter_mut().enumerate() {
                    let y = &a[(j0 + j) * nb + b];
                    let mut isum = 0i32;
                    for ((qg, ag), &sc) in q.chunks_exact(16).zip(y.qs.chunks_exact(16)).zip(&x.scales) {
                        let mut s = 0i32;
                        for (&v, &u) in qg.iter().zip(ag) {
                            s += v as i32 * u as i32;
                        }
                        isum += s * sc as i32;
                    }
                    *acc = fma_exact(d * isum as f32, y.d, *acc);
                }
            }
            for (j, &v) in acc[..mj].iter().enumerate() {
                out[(j0 + j) * out_stride + r] = v;
            }
        }
    }
}

/// `a * b + c` rounded once, as an FMA instruction gives it, without one:
/// the product is exact in f64, the f64 sum is taken rounded to odd (its
/// exact error from TwoSum decides the last bit), and an odd-rounded f64
/// (53 bits ≥ 2 · 24 + 2) rounds to the correctly rounded f32.
#[inline(always)]
fn fma_exact(a: f32, b: f32, c: f32) -> f32 {
    let (p, c) = (a as f64 * b as f64, c as f64);
    let s = p + c;
    let bb = s - p;
    let err = (p - (s - bb)) + (c - bb);
    if err != 0.0 && s.to_bits() & 1 == 0 {
        // Inexact and even: step one ulp toward the exact sum (s != 0 here).
        let bits = if (err > 0.0) == (s > 0.0) { s.to_bits() + 1 } else { s.to_bits() - 1 };
        f64::from_bits(bits) as f32
    } else {
        s as f32
    }
}

/// Dequantizes `blocks` into `out`.
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize(blocks: &[BlockQ6K], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK_K, "q6_k::dequantize: output length");
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        let q = unpack(b);
        for (g, (yg, qg)) in y.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            // ggml: `d * sc[is] * q`, evaluated left to right.
            let dl = d * b.scales[g] as f32;
            for (o, &v) in yg.iter_mut().zip(qg) {
                *o = dl * v as f32;
            }
        }
    }
}

/// ggml's reference quantizer `quantize_row_q6_K_ref` (no importance matrix).
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ6K]) {
    assert_eq!(x.len(), out.len() * QK_K, "q6_k::quantize_ref: input length");
    let mut l_all = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    for (xb, y) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let mut max_scale = 0.0f32;
        let mut max_abs_scale = 0.0f32;
        for (ib, (xg, lg)) in xb.chunks_exact(16).zip(l_all.chunks_exact_mut(16)).enumerate() {
            let scale = make_qx_quants_rmse1(32, xg, lg);
            scales[ib] = scale;
            let abs_scale = scale.abs();
            if abs_scale > max_abs_scale {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            *y = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -128.0f32 / max_scale;
        y.d = f16::from_f32(1.0 / iscale);
        for (s, &sc) in y.scales.iter_mut().zip(&scales) {
            // C assigns MIN(127, int) to an int8_t: truncation.
            *s = nearest_int(iscale * sc).min(127) as i8;
        }
        for j in 0..16 {
            let d = y.d.to_f32() * y.scales[j] as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let l = nearest_int(xb[16 * j + ii] / d).clamp(-32, 31);
                l_all[16 * j + ii] = (l + 32) as i8;
            }
        }
        for ((l, ql), qh) in l_all.chunks_exact(128).zip(y.ql.chunks_exact_mut(64)).zip(y.qh.chunks_exact_mut(32)) {
            // Levels are 0..64 here, so the u8 views below are exact.
            let u = |i: usize| l[i] as u8;
            for i in 0..32 {
                ql[i] = (u(i) & 0xF) | ((u(i + 64) & 0xF) << 4);
                ql[i + 32] = (u(i + 32) & 0xF) | ((u(i + 96) & 0xF) << 4);
                qh[i] = (u(i) >> 4) | ((u(i + 32) >> 4) << 2) | ((u(i + 64) >> 4) << 4) | ((u(i + 96) >> 4) << 6);
            }
        }
    }
}

/// Portable dot product of Q6_K weight blocks with Q8_K activation blocks:
/// per block `d_w * d_a * Σ_g scales[g] Σ (q - 32)·a`, integer sums inside
/// the block (ggml's `ggml_vec_dot_q6_K_q8_K_generic`).
///
/// # Panics
/// If `w.len() != a.len()`.
pub fn vec_dot_q6_k_q8_k_generic(w: &[BlockQ6K], a: &[BlockQ8K]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q6_k_q8_k_generic: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let q = unpack(x);
        let mut isum = 0i32;
        for ((qg, ag), &sc) in q.chunks_exact(16).zip(y.qs.chunks_exact(16)).zip(&x.scales) {
            let mut s = 0i32;
            for (&v, &u) in qg.iter().zip(ag) {
                s += v as i32 * u as i32;
            }
            isum += s * sc as i32;
        }
        sumf += x.d.to_f32() * y.d * isum as f32;
    }
    sumf
}
