//! Q5_K: 256 weights in 8 groups of 32, 5-bit values (4 low bits in `qs`, the fifth in `qh`) with 6-bit scales and minimums. Paired with Q8_K.
//!
//! Layout: ggml's `block_q5_K` (ggml-common.h). Like Q4_K, plus bit `g` of
//! `qh[l]` is the fifth bit of value `l` of group `g`. Algorithms: ggml's
//! `dequantize_row_q5_K`, `quantize_row_q5_K_ref` (ggml-quants.c) and
//! `ggml_vec_dot_q5_K_q8_K_generic` (ggml-cpu/quants.c).

use crate::k_common::{get_scale_min_k4, make_qkx2_quants, nearest_int, pack_scale_min_k4, scales_mins_k4, sqrt_f32};
use crate::q8_k::BlockQ8K;
use crate::QK_K;
use half::f16;

/// One Q5_K block of 256 values; mirrors ggml's `block_q5_K`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct BlockQ5K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
    /// 8 six-bit scales and 8 six-bit minimums, packed in 12 bytes.
    pub scales: [u8; 12],
    /// Fifth bit of each value.
    pub qh: [u8; 32],
    /// Low 4 bits of each value, two per byte.
    pub qs: [u8; 128],
}

const _: () = assert!(core::mem::size_of::<BlockQ5K>() == 176);
const _: () = assert!(core::mem::size_of::<BlockQ5K>() == crate::GgmlType::Q5_K.type_size());

/// The 256 unsigned 5-bit values (`0..32`) of one block, in order.
#[inline(always)]
fn unpack(b: &BlockQ5K) -> [u8; QK_K] {
    let mut a = [0u8; QK_K];
    for (k, (a, q)) in a.chunks_exact_mut(64).zip(b.qs.chunks_exact(32)).enumerate() {
        let (u1, u2) = (1u8 << (2 * k), 2u8 << (2 * k));
        for l in 0..32 {
            a[l] = (q[l] & 0xF) + if b.qh[l] & u1 != 0 { 16 } else { 0 };
            a[l + 32] = (q[l] >> 4) + if b.qh[l] & u2 != 0 { 16 } else { 0 };
        }
    }
    a
}

/// Dequantizes `blocks` into `out`.
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize(blocks: &[BlockQ5K], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK_K, "q5_k::dequantize: output length");
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        let min = b.dmin.to_f32();
        let q = unpack(b);
        for (g, (yg, qg)) in y.chunks_exact_mut(32).zip(q.chunks_exact(32)).enumerate() {
            let (sc, m) = get_scale_min_k4(g, &b.scales);
            let (dl, ml) = (d * sc as f32, min * m as f32);
            for (o, &v) in yg.iter_mut().zip(qg) {
                *o = dl * v as f32 - ml;
            }
        }
    }
}

/// ggml's reference quantizer `quantize_row_q5_K_ref` (no importance matrix).
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_ref(x: &[f32], out: &mut [BlockQ5K]) {
    assert_eq!(x.len(), out.len() * QK_K, "q5_k::quantize_ref: input length");
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
            (scales[j], mins[j]) = make_qkx2_quants(31, xg, &weights, lg, &mut l_aux, -0.5, 0.1, 15, false);
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
                l_all[32 * j + ii] = l.clamp(0, 31) as u8;
            }
        }
        y.qh = [0; 32];
        for (k, (ql, lg)) in y.qs.chunks_exact_mut(32).zip(l_all.chunks_exact(64)).enumerate() {
            let (m1, m2) = (1u8 << (2 * k), 2u8 << (2 * k));
            for j in 0..32 {
                let mut l1 = lg[j];
                if l1 > 15 {
                    l1 -= 16;
                    y.qh[j] |= m1;
                }
                let mut l2 = lg[j + 32];
                if l2 > 15 {
                    l2 -= 16;
                    y.qh[j] |= m2;
                }
                ql[j] = l1 | (l2 << 4);
            }
        }
    }
}

/// Portable dot product of Q5_K weight blocks with Q8_K activation blocks
/// (ggml's `ggml_vec_dot_q5_K_q8_K_generic`: integer sums per group, then
/// `d * Σ sc·sum - dmin * Σ m·bsum` per block).
///
/// # Panics
/// If `w.len() != a.len()`.
pub fn vec_dot_q5_k_q8_k_generic(w: &[BlockQ5K], a: &[BlockQ8K]) -> f32 {
    assert_eq!(w.len(), a.len(), "vec_dot_q5_k_q8_k_generic: block counts differ");
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let (sc, m) = scales_mins_k4(&x.scales);
        let mut summs = 0i32;
        for (j, &s) in y.bsums.iter().enumerate() {
            summs += s as i32 * m[j / 2] as i32;
        }
        let q = unpack(x);
        let mut isum = 0i32;
        for ((qg, ag), &s) in q.chunks_exact(32).zip(y.qs.chunks_exact(32)).zip(&sc) {
            let mut g = 0i32;
            for (&v, &u) in qg.iter().zip(ag) {
                g += v as i32 * u as i32;
            }
            isum += g * s as i32;
        }
        let d = x.d.to_f32() * y.d;
        let dmin = x.dmin.to_f32() * y.d;
        sumf += d * isum as f32 - dmin * summs as f32;
    }
    sumf
}
