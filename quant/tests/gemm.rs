//! `Kernels::gemm_strided` and `Kernels::gemm` (the table's `gemm` entries)
//! on every available tier and the default table (`Kernels::best`): against the generic table within the bound of
//! `kernels_vs_generic.rs`, for weight row counts and activation row counts
//! that are and are not multiples of 8 and 4, with the stride's gap values
//! left untouched; and the errors on bad buffers.

use ember_quant::matmul::act_row_bytes;
use ember_quant::{GgmlType, Kernels};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Relative bound against generic (see `kernels_vs_generic.rs`).
const REL: f64 = 2e-5;

mod common;
use common::tables;

/// `n` bytes, 8-aligned.
fn buf(n: usize) -> Vec<u64> {
    vec![0; n.div_ceil(8)]
}

fn floats(rng: &mut SmallRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

#[test]
fn gemm_strided_matches_generic_and_keeps_gaps() {
    let generic = Kernels::generic();
    let mut rng = SmallRng::seed_from_u64(0x6e33);
    let formats =
        [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F32];
    for (tier, k) in tables() {
        for ty in formats {
            let act = ty.vec_dot_type().unwrap();
            for cols in [256usize, 768] {
                for rows in [1usize, 7, 8, 16, 19] {
                    for m in [1usize, 3, 4, 5, 8, 9] {
                        let rb = ty.row_bytes(cols).unwrap();
                        let ab = act_row_bytes(act, cols).unwrap();
                        let wf = floats(&mut rng, rows * cols);
                        let mut w = buf(rb * rows);
                        let wb = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut w)[..rb * rows];
                        ember_quant::matmul::quantize(ty, &wf, wb).unwrap();
                        let xf = floats(&mut rng, m * cols);
                        let mut a = buf(ab * m);
                        let abytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut a)[..ab * m];
                        for i in 0..m {
                            generic
                                .quantize_activations(
                                    act,
                                    &xf[i * cols..(i + 1) * cols],
                                    &mut abytes[i * ab..(i + 1) * ab],
                                )
                                .unwrap();
                        }
                        let wb = &bytemuck::cast_slice::<u64, u8>(&w)[..rb * rows];
                        let abytes = &bytemuck::cast_slice::<u64, u8>(&a)[..ab * m];
                        let stride = rows + 3;
                        let mut out = vec![-7.0f32; (m - 1) * stride + rows];
                        k.gemm_strided(ty, cols, wb, abytes, &mut out, stride).unwrap();
                        let mut packed = vec![0.0f32; m * rows];
                        k.gemm(ty, cols, wb, rows, abytes, m, &mut packed).unwrap();
                        for i in 0..m {
                            let a_i = &abytes[i * ab..(i + 1) * ab];
                            let mut want = vec![0.0f32; rows];
                            generic.gemv(ty, cols, wb, a_i, &mut want).unwrap();
                            for r in 0..rows {
                                let scale: f64 =
                                    (0..cols).map(|c| (wf[r * cols + c] * xf[i * cols + c]).abs() as f64).sum::<f64>()
                                        * 1.1
                                        + 1e-3;
                                let got = out[i * stride + r];
                                let what = format!("{tier} {ty} cols={cols} rows={rows} m={m} ({i},{r})");
                                assert!(
                                    (got as f64 - want[r] as f64).abs() <= REL * scale,
                                    "{what}: {got} vs generic {}",
                                    want[r]
                                );
                                assert_eq!(
                                    got.to_bits(),
                                    packed[i * rows + r].to_bits(),
                                    "{what}: gemm != gemm_strided"
                                );
                            }
                            if i + 1 < m {
                                assert!(
                                    out[i * stride + rows..(i + 1) * stride].iter().all(|&v| v == -7.0),
                                    "{tier} {ty}: gap written"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Formats whose `gemm` keeps the one-activation (`gemv`) float order for
/// every batch size: each output of a multi-row gemm (Q4_0's 8-row repacked
/// kernel, the 4 × 2 kernels of Q4_1 and Q5_0, ...) must be bit-identical to
/// the same tier's `gemv` of that activation row. Q4_K is not here: its gemm
/// takes llama.cpp's per-64-value order for activation rows in fours.
#[test]
fn gemm_equals_gemv_bit_for_bit_per_activation_row() {
    let mut rng = SmallRng::seed_from_u64(0x6e34);
    let formats = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::IQ4_NL,
        GgmlType::Q6_K,
        GgmlType::F16,
    ];
    for (tier, k) in tables() {
        for ty in formats {
            let act = ty.vec_dot_type().unwrap();
            for (cols, rows) in [(256usize, 13usize), (768, 9), (512, 8), (256, 1), (2304, 5)] {
                let rb = ty.row_bytes(cols).unwrap();
                let ab = act_row_bytes(act, cols).unwrap();
                let mut w = buf(rb * rows);
                let wb = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut w)[..rb * rows];
                ember_quant::matmul::quantize(ty, &floats(&mut rng, rows * cols), wb).unwrap();
                let wb = &bytemuck::cast_slice::<u64, u8>(&w)[..rb * rows];
                for m in 1..=9usize {
                    let xf = floats(&mut rng, m * cols);
                    let mut a = buf(ab * m);
                    let abytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut a)[..ab * m];
                    for i in 0..m {
                        k.quantize_activations(act, &xf[i * cols..(i + 1) * cols], &mut abytes[i * ab..(i + 1) * ab])
                            .unwrap();
                    }
                    let abytes = &bytemuck::cast_slice::<u64, u8>(&a)[..ab * m];
                    let mut got = vec![f32::NAN; m * rows];
                    k.gemm_strided(ty, cols, wb, abytes, &mut got, rows).unwrap();
                    for i in 0..m {
                        let mut want = vec![f32::NAN; rows];
                        k.gemv(ty, cols, wb, &abytes[i * ab..(i + 1) * ab], &mut want).unwrap();
                        let g: Vec<u32> = got[i * rows..(i + 1) * rows].iter().map(|x| x.to_bits()).collect();
                        let e: Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
                        assert_eq!(g, e, "{tier} {ty} cols={cols} rows={rows} m={m}: gemm row {i} != gemv");
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_strided_rejects_bad_buffers() {
    let k = Kernels::best();
    let ty = GgmlType::Q4_0;
    let cols = 64;
    let rb = ty.row_bytes(cols).unwrap();
    let ab = act_row_bytes(GgmlType::Q8_0, cols).unwrap();
    let w = buf(rb * 8);
    let a = buf(ab * 4);
    let wb = &bytemuck::cast_slice::<u64, u8>(&w)[..rb * 8];
    let abytes = &bytemuck::cast_slice::<u64, u8>(&a)[..ab * 4];
    let mut out = vec![0.0f32; 3 * 8 + 8];
    assert!(k.gemm_strided(ty, cols, wb, abytes, &mut out, 8).is_ok());
    // stride shorter than the row count
    assert!(k.gemm_strided(ty, cols, wb, abytes, &mut out, 7).is_err());
    // output one value short
    assert!(k.gemm_strided(ty, cols, wb, abytes, &mut out[..31], 8).is_err());
    // a partial weight row, a partial activation row
    assert!(k.gemm_strided(ty, cols, &wb[..rb * 8 - 2], abytes, &mut out, 8).is_err());
    assert!(k.gemm_strided(ty, cols, wb, &abytes[..ab * 4 - 2], &mut out, 8).is_err());
    // misaligned weights
    assert!(k.gemm_strided(ty, cols, &wb[1..rb + 1], &abytes[..ab], &mut out, 8).is_err());
    // cols not a whole number of blocks
    assert!(k.gemm_strided(ty, 40, wb, abytes, &mut out, 8).is_err());
}

/// `W[r] · a` in ggml-cpu's tiled K-quant order for Q6_K (`ggml-cpu/tiled`,
/// scalar microtile and AVX2/VNNI epilogues): unsigned 6-bit codes, the -32
/// offset taken from the activation's `bsums`, an exact integer sum per
/// 256-value block, then `acc = fma(d_w · f32(isum), d_a, acc)`.
fn q6_k_tiled_statement(w: &[ember_quant::q6_k::BlockQ6K], a: &[ember_quant::q8_k::BlockQ8K]) -> f32 {
    let mut acc = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let mut codes = [0i32; 256];
        for h in 0..2 {
            let (ql, qh) = (&x.ql[64 * h..64 * h + 64], &x.qh[32 * h..32 * h + 32]);
            for l in 0..32 {
                let c = &mut codes[128 * h..128 * h + 128];
                c[l] = (ql[l] & 0xF) as i32 | (((qh[l] & 3) as i32) << 4);
                c[l + 32] = (ql[l + 32] & 0xF) as i32 | ((((qh[l] >> 2) & 3) as i32) << 4);
                c[l + 64] = (ql[l] >> 4) as i32 | ((((qh[l] >> 4) & 3) as i32) << 4);
                c[l + 96] = (ql[l + 32] >> 4) as i32 | ((((qh[l] >> 6) & 3) as i32) << 4);
            }
        }
        let mut s1 = 0i32;
        for g in 0..16 {
            let raw: i32 = (0..16).map(|e| codes[16 * g + e] * y.qs[16 * g + e] as i32).sum();
            s1 += x.scales[g] as i32 * (raw - 32 * y.bsums[g] as i32);
        }
        acc = (x.d.to_f32() * s1 as f32).mul_add(y.d, acc);
    }
    acc
}

#[test]
fn gemm_strided_batch_takes_the_tiled_q6_k_order_from_8_rows() {
    use ember_quant::{q6_k::BlockQ6K, q8_k::BlockQ8K};
    let mut rng = SmallRng::seed_from_u64(0x7113d);
    let (ty, cols, rows, m) = (GgmlType::Q6_K, 768usize, 19usize, 41usize);
    let (rb, ab) = (ty.row_bytes(cols).unwrap(), act_row_bytes(GgmlType::Q8_K, cols).unwrap());
    let mut differ = 0;
    for (tier, k) in tables() {
        for round in 0..4 {
            // Large values so that the blocks' scales differ widely.
            let wf: Vec<f32> = floats(&mut rng, rows * cols).iter().map(|v| v * (1 + round * 40) as f32).collect();
            let mut w = buf(rb * rows);
            let wb = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut w)[..rb * rows];
            ember_quant::matmul::quantize(ty, &wf, wb).unwrap();
            let xf: Vec<f32> = floats(&mut rng, m * cols).iter().map(|v| v * 30.0).collect();
            let mut a = buf(ab * m);
            let abytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut a)[..ab * m];
            for i in 0..m {
                k.quantize_activations(
                    GgmlType::Q8_K,
                    &xf[i * cols..(i + 1) * cols],
                    &mut abytes[i * ab..(i + 1) * ab],
                )
                .unwrap();
            }
            let (wt, at) = (bytemuck::cast_slice::<u8, BlockQ6K>(wb), bytemuck::cast_slice::<u8, BlockQ8K>(abytes));
            let nb = cols / 256;
            for batch in [1usize, 4, 7, 8, 9, 64] {
                let mut got = vec![f32::NAN; m * rows];
                k.gemm_strided_batch(ty, cols, wb, abytes, &mut got, rows, batch).unwrap();
                let mut plain = vec![f32::NAN; m * rows];
                k.gemm_strided(ty, cols, wb, abytes, &mut plain, rows).unwrap();
                for i in 0..m {
                    for r in 0..rows {
                        let (w_r, a_i) = (&wt[r * nb..(r + 1) * nb], &at[i * nb..(i + 1) * nb]);
                        let want = if cfg!(target_arch = "x86_64") && batch >= 8 {
                            q6_k_tiled_statement(w_r, a_i)
                        } else {
                            plain[i * rows + r]
                        };
                        differ += usize::from(got[i * rows + r] != plain[i * rows + r]);
                        assert_eq!(
                            got[i * rows + r].to_bits(),
                            want.to_bits(),
                            "{tier:?} batch {batch} row {r} activation {i}: {} vs {want}",
                            got[i * rows + r]
                        );
                    }
                }
            }
        }
    }
    // The tiled order is not the vec_dot order: on x86 some outputs differ.
    assert_eq!(differ > 0, cfg!(target_arch = "x86_64"), "{differ} outputs differ from gemm_strided");
}
