//! Q4_K: 256 weights in 8 groups of 32, 4-bit values with 6-bit scales and minimums per group, scaled by f16 `d` and `dmin`. Paired with Q8_K.
//!
//! Layout: ggml's `block_q4_K` (ggml-common.h). Value `i` of group `g` is
//! `d * sc[g] * q - dmin * m[g]`; groups `2k` and `2k+1` share the 32 bytes
//! `qs[32k..32k+32]` (low and high nibbles). Algorithms: ggml's
//! `dequantize_row_q4_K`, `quantize_row_q4_K_ref` (ggml-quants.c) and
//! `ggml_vec_dot_q4_K_q8_K_generic` (ggml-cpu/quants.c).

use crate::k_common::{get_scale_min_k4, make_qkx2_quants, nearest_int, pack_scale_min_k4, scales_mins_k4, sqrt_f32};
use crate::q8_k::BlockQ8K;
use crate::QK_K;
use half::f16;

/// One Q4_K block of 256 values; mirrors ggml's `block_q4_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ4K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
    /// 8 six-bit scales and 8 six-bit minimums, packed in 12 bytes.
    pub scales: [u8; 12],
    /// 4-bit values, two per byte.
    pub qs: [u8; 128],
}

const _: () = assert!(core::mem::size_of::<BlockQ4K>() == 144);
const _: () = assert!(core::mem::size_of::<BlockQ4K>() == crate::GgmlType::Q4_K.type_size());

/// Dequantizes `blocks` into `out`.
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize(blocks: &[BlockQ4K], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK_K, "q4_k::dequantize: output length");
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        let min = b.dmin.to_f32();
        for (k, (q, y)) in b.qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
            let (sc1, m1) = get_scale_min_k4(2 * k, &b.scales);
            let (sc2, m2) = get_scale_min_k4(2 * k + 1, &b.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let (lo, hi) = y.split_at_mut(32);
            for l in 0..32 {
                lo[l] = d1 * (q[l] & 0xF) as f32 - m1;
                hi[l] = d2 * (q[l] >> 4) as f32 - m2;
            }
        }
    }
}

/// ggml's reference quantizer `quantize_row_q4_K_ref` (no importance matrix).
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ4K]) {
    assert_eq!(x.len(), out.len() * QK_K, "q4_k::quantize_ref: input length");
    let mut l_all = [0u8; QK_K];
    let mut l_aux = [0u8; 32];
    let mut weights = [0.0f32; 32];
    let mut mins = [0.0f32; 8];
    let mut scales = [0.0f32; 8];
    for (xb, y) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let mut max_scale = 0.0f32;
        let mut max_min = 0.0f32;
        for j in 0..8 {
            let xg = &xb[32 * j..32 * j + 32];
            let mut sum_x2 = 0.0f32;
            for &v in xg {
                sum_x2 += v * v;
            }
            let av_x = sqrt_f32(sum_x2 / 32.0);
            for (w, &v) in weights.iter_mut().zip(xg) {
                *w = av_x + v.abs();
            }
            let lg = &mut l_all[32 * j..32 * j + 32];
            (scales[j], mins[j]) = make_qkx2_quants(15, xg, &weights, lg, &mut l_aux, -1.0, 0.1, 20, false);
            if scales[j] > max_scale {
                max_scale = scales[j];
            }
            if mins[j] > max_min {
                max_min = mins[j];
            }
        }
        let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
        let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
        let mut ls = [0u8; 8];
        let mut lm = [0u8; 8];
        for j in 0..8 {
            // C stores the int in a uint8_t before clamping: truncate first.
            ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
            lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
        }
        y.scales = pack_scale_min_k4(&ls, &lm);
        y.d = f16::from_f32(max_scale / 63.0);
        y.dmin = f16::from_f32(max_min / 63.0);

        let (sc, m) = scales_mins_k4(&y.scales);
        for j in 0..8 {
            let d = y.d.to_f32() * sc[j] as f32;
            if d == 0.0 {
                continue;
            }
            let dm = y.dmin.to_f32() * m[j] as f32;
            for ii in 0..32 {
                let l = nearest_int((xb[32 * j + ii] + dm) / d);
                l_all[32 * j + ii] = l.clamp(0, 15) as u8;
            }
        }
        for (q, lg) in y.qs.chunks_exact_mut(32).zip(l_all.chunks_exact(64)) {
            for l in 0..32 {
                q[l] = lg[l] | (lg[l + 32] << 4);
            }
        }
    }
}

/// Portable dot product of Q4_K weight blocks with Q8_K activation blocks:
/// per block `d * Σ_g sc[g] Σ q·a - dmin * Σ_g m[g] * bsum(g)`, integer sums
/// inside the block (ggml's `ggml_vec_dot_q4_K_q8_K_generic`).
///
/// # Panics
/// If `w.len() != a.len()`.
pub fn vec_dot_q4_k_q8_k_generic(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q4_k_q8_k_generic: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let (sc, m) = scales_mins_k4(&x.scales);
        let mut summs = 0i32;
        for (j, &s) in y.bsums.iter().enumerate() {
            summs += s as i32 * m[j / 2] as i32;
        }
        let mut isum = 0i32;
        for (k, (q4, q8)) in x.qs.chunks_exact(32).zip(y.qs.chunks_exact(64)).enumerate() {
            let mut lo = 0i32;
            let mut hi = 0i32;
            for l in 0..32 {
                lo += (q4[l] & 0xF) as i32 * q8[l] as i32;
                hi += (q4[l] >> 4) as i32 * q8[l + 32] as i32;
            }
            isum += lo * sc[2 * k] as i32 + hi * sc[2 * k + 1] as i32;
        }
        let d = x.d.to_f32() * y.d;
        let dmin = x.dmin.to_f32() * y.d;
        sumf += d * isum as f32 - dmin * summs as f32;
    }
    sumf
}
