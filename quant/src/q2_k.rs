//! Q2_K: 256 weights in 16 groups of 16, 2-bit values with 4-bit scales and minimums per group, scaled by f16 `d` and `dmin`. Paired with Q8_K.
//!
//! Layout: ggml's `block_q2_K` (ggml-common.h). Value `v = 128h + 32s + l`
//! (`h in 0..2`, `s in 0..4`, `l in 0..32`) sits at bits `2s..2s+2` of
//! `qs[32h + l]`; value `i` of group `g` is
//! `d * (scales[g] & 15) * q - dmin * (scales[g] >> 4)`. Algorithms: ggml's
//! `dequantize_row_q2_K`, `quantize_row_q2_K_ref` (ggml-quants.c) and
//! `ggml_vec_dot_q2_K_q8_K_generic` (ggml-cpu/quants.c).

use crate::k_common::{make_qkx2_quants, nearest_int};
use crate::q8_k::BlockQ8K;
use crate::QK_K;
use half::f16;

/// One Q2_K block of 256 values; mirrors ggml's `block_q2_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ2K {
    /// Per-group scale (low nibble) and minimum (high nibble).
    pub scales: [u8; 16],
    /// 2-bit values, four per byte.
    pub qs: [u8; 64],
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
}

const _: () = assert!(core::mem::size_of::<BlockQ2K>() == 84);
const _: () = assert!(core::mem::size_of::<BlockQ2K>() == crate::GgmlType::Q2_K.type_size());

/// The 256 unsigned 2-bit values (`0..4`) of one block, in order.
#[inline(always)]
fn unpack(b: &BlockQ2K) -> [u8; QK_K] {
    let mut a = [0u8; QK_K];
    for (a, q) in a.chunks_exact_mut(128).zip(b.qs.chunks_exact(32)) {
        for s in 0..4 {
            for l in 0..32 {
                a[32 * s + l] = (q[l] >> (2 * s)) & 3;
            }
        }
    }
    a
}

/// Dequantizes `blocks` into `out`.
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize(blocks: &[BlockQ2K], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK_K, "q2_k::dequantize: output length");
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        let min = b.dmin.to_f32();
        let q = unpack(b);
        for ((yg, qg), &sc) in y.chunks_exact_mut(16).zip(q.chunks_exact(16)).zip(&b.scales) {
            let dl = d * (sc & 0xF) as f32;
            let ml = min * (sc >> 4) as f32;
            for (o, &v) in yg.iter_mut().zip(qg) {
                *o = dl * v as f32 - ml;
            }
        }
    }
}

/// ggml's reference quantizer `quantize_row_q2_K_ref` (no importance matrix).
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ2K]) {
    assert_eq!(x.len(), out.len() * QK_K, "q2_k::quantize_ref: input length");
    const Q4SCALE: f32 = 15.0;
    let mut l_all = [0u8; QK_K];
    let mut l_aux = [0u8; 16];
    let mut weights = [0.0f32; 16];
    let mut mins = [0.0f32; 16];
    let mut scales = [0.0f32; 16];
    for (xb, y) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let mut max_scale = 0.0f32;
        let mut max_min = 0.0f32;
        for (j, (xg, lg)) in xb.chunks_exact(16).zip(l_all.chunks_exact_mut(16)).enumerate() {
            for (w, &v) in weights.iter_mut().zip(xg) {
                *w = v.abs();
            }
            (scales[j], mins[j]) = make_qkx2_quants(3, xg, &weights, lg, &mut l_aux, -0.5, 0.1, 15, true);
            if scales[j] > max_scale {
                max_scale = scales[j];
            }
            if mins[j] > max_min {
                max_min = mins[j];
            }
        }
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for (s, &sc) in y.scales.iter_mut().zip(&scales) {
                // C assigns the int to a uint8_t: truncation.
                *s = nearest_int(iscale * sc) as u8;
            }
            y.d = f16::from_f32(max_scale / Q4SCALE);
        } else {
            y.scales = [0; 16];
            y.d = f16::from_f32(0.0);
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for (s, &m) in y.scales.iter_mut().zip(&mins) {
                *s |= (nearest_int(iscale * m) << 4) as u8;
            }
            y.dmin = f16::from_f32(max_min / Q4SCALE);
        } else {
            y.dmin = f16::from_f32(0.0);
        }
        for j in 0..16 {
            let d = y.d.to_f32() * (y.scales[j] & 0xF) as f32;
            if d == 0.0 {
                continue;
            }
            let dm = y.dmin.to_f32() * (y.scales[j] >> 4) as f32;
            for ii in 0..16 {
                let l = nearest_int((xb[16 * j + ii] + dm) / d);
                l_all[16 * j + ii] = l.clamp(0, 3) as u8;
            }
        }
        for (q, l) in y.qs.chunks_exact_mut(32).zip(l_all.chunks_exact(128)) {
            for i in 0..32 {
                q[i] = l[i] | (l[i + 32] << 2) | (l[i + 64] << 4) | (l[i + 96] << 6);
            }
        }
    }
}

/// Portable dot product of Q2_K weight blocks with Q8_K activation blocks
/// (ggml's `ggml_vec_dot_q2_K_q8_K_generic`: per block
/// `d_w*d_a * Σ_g (sc[g]&15) Σ q·a - dmin_w*d_a * Σ_g (sc[g]>>4) bsum(g)`).
///
/// # Panics
/// If `w.len() != a.len()`.
pub fn vec_dot_q2_k_q8_k_generic(w: &[BlockQ2K], a: &[BlockQ8K]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q2_k_q8_k_generic: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let mut summs = 0i32;
        for (&s, &sc) in y.bsums.iter().zip(&x.scales) {
            summs += s as i32 * (sc >> 4) as i32;
        }
        let q = unpack(x);
        let mut isum = 0i32;
        for ((qg, ag), &sc) in q.chunks_exact(16).zip(y.qs.chunks_exact(16)).zip(&x.scales) {
            let mut g = 0i32;
            for (&v, &u) in qg.iter().zip(ag) {
                g += v as i32 * u as i32;
            }
            isum += g * (sc & 0xF) as i32;
        }
        let dall = y.d * x.d.to_f32();
        let dmin = y.d * x.dmin.to_f32();
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}
