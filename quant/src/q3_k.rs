//! Q3_K: 256 weights in 16 groups of 16, 3-bit values (2 low bits in `qs`, the high bit in `hmask`) with 6-bit signed scales. Paired with Q8_K.
//!
//! Layout: ggml's `block_q3_K` (ggml-common.h). Value `v = 128h + 32s + l`
//! (`h in 0..2`, `s in 0..4`, `l in 0..32`) has its low bits at bits `2s..2s+2`
//! of `qs[32h + l]` and its high bit at bit `4h + s` of `hmask[l]`; a *clear*
//! high bit subtracts 4, so `q in -4..4`. Value `i` of group `g` is
//! `d * (scale[g] - 32) * q`. Algorithms: ggml's `dequantize_row_q3_K`,
//! `quantize_row_q3_K_ref` (ggml-quants.c) and
//! `ggml_vec_dot_q3_K_q8_K_generic` (ggml-cpu/quants.c).

use crate::k_common::{make_q3_quants, nearest_int};
use crate::q8_k::BlockQ8K;
use crate::QK_K;
use half::f16;

/// One Q3_K block of 256 values; mirrors ggml's `block_q3_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ3K {
    /// High bit of each value.
    pub hmask: [u8; 32],
    /// Low 2 bits of each value, four per byte.
    pub qs: [u8; 64],
    /// 16 six-bit scales, packed in 12 bytes.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(core::mem::size_of::<BlockQ3K>() == 110);
const _: () = assert!(core::mem::size_of::<BlockQ3K>() == crate::GgmlType::Q3_K.type_size());

/// The 16 signed scales (`6-bit value - 32`, in `-32..32`) of a block: low
/// nibbles in bytes 0..8 (groups 0..8 low, 8..16 high nibble), the two high
/// bits of group `j` at bits `2*(j/4)` of byte `8 + j%4`.
#[inline(always)]
fn unpack_scales(s: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let lo = if j < 8 { s[j] & 0xF } else { s[j - 8] >> 4 };
        let hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = (lo | (hi << 4)) as i8 - 32;
    }
    out
}

/// The 256 signed 3-bit values (`-4..4`) of one block, in order.
#[inline(always)]
fn unpack(b: &BlockQ3K) -> [i8; QK_K] {
    let mut a = [0i8; QK_K];
    for (h, (a, q)) in a.chunks_exact_mut(128).zip(b.qs.chunks_exact(32)).enumerate() {
        for s in 0..4 {
            let m = 1u8 << (4 * h + s);
            for l in 0..32 {
                let low = ((q[l] >> (2 * s)) & 3) as i8;
                a[32 * s + l] = low - if b.hmask[l] & m != 0 { 0 } else { 4 };
            }
        }
    }
    a
}

/// Dequantizes `blocks` into `out`.
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize(blocks: &[BlockQ3K], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK_K, "q3_k::dequantize: output length");
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d_all = b.d.to_f32();
        let sc = unpack_scales(&b.scales);
        let q = unpack(b);
        for ((yg, qg), &s) in y.chunks_exact_mut(16).zip(q.chunks_exact(16)).zip(&sc) {
            let dl = d_all * s as f32;
            for (o, &v) in yg.iter_mut().zip(qg) {
                *o = dl * v as f32;
            }
        }
    }
}

/// ggml's reference quantizer `quantize_row_q3_K_ref` (no importance matrix).
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ3K]) {
    assert_eq!(x.len(), out.len() * QK_K, "q3_k::quantize_ref: input length");
    let mut l_all = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    for (xb, y) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let mut max_scale = 0.0f32;
        let mut amax = 0.0f32;
        for (j, (xg, lg)) in xb.chunks_exact(16).zip(l_all.chunks_exact_mut(16)).enumerate() {
            scales[j] = make_q3_quants(4, xg, lg);
            let scale = scales[j].abs();
            if scale > amax {
                amax = scale;
                max_scale = scales[j];
            }
        }
        y.scales = [0; 12];
        if max_scale != 0.0 {
            let iscale = -32.0f32 / max_scale;
            for (j, &sc) in scales.iter().enumerate() {
                // C: `int8_t l = nearest_int(...)` truncates, then clamps.
                let l = ((nearest_int(iscale * sc) as i8).clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    y.scales[j] = l & 0xF;
                } else {
                    y.scales[j - 8] |= (l & 0xF) << 4;
                }
                y.scales[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
            }
            y.d = f16::from_f32(1.0 / iscale);
        } else {
            y.d = f16::from_f32(0.0);
        }
        let sc = unpack_scales(&y.scales);
        for j in 0..16 {
            let d = y.d.to_f32() * sc[j] as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let l = nearest_int(xb[16 * j + ii] / d).clamp(-4, 3);
                l_all[16 * j + ii] = (l + 4) as i8;
            }
        }
        y.hmask = [0; 32];
        for (j, l) in l_all.iter_mut().enumerate() {
            if *l > 3 {
                y.hmask[j % 32] |= 1 << (j / 32);
                *l -= 4;
            }
        }
        for (q, l) in y.qs.chunks_exact_mut(32).zip(l_all.chunks_exact(128)) {
            let u = |i: usize| l[i] as u8;
            for (i, q) in q.iter_mut().enumerate() {
                *q = u(i) | (u(i + 32) << 2) | (u(i + 64) << 4) | (u(i + 96) << 6);
            }
        }
    }
}

/// Portable dot product of Q3_K weight blocks with Q8_K activation blocks
/// (ggml's `ggml_vec_dot_q3_K_q8_K_generic`: `d_w * d_a * Σ_g scale[g] Σ q·a`
/// per block, integer sums inside the block).
///
/// # Panics
/// If `w.len() != a.len()`.
pub fn vec_dot_q3_k_q8_k_generic(w: &[BlockQ3K], a: &[BlockQ8K]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q3_k_q8_k_generic: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let sc = unpack_scales(&x.scales);
        let q = unpack(x);
        let mut isum = 0i32;
        for ((qg, ag), &s) in q.chunks_exact(16).zip(y.qs.chunks_exact(16)).zip(&sc) {
            let mut g = 0i32;
            for (&v, &u) in qg.iter().zip(ag) {
                g += v as i32 * u as i32;
            }
            isum += g * s as i32;
        }
        sumf += x.d.to_f32() * y.d * isum as f32;
    }
    sumf
}
