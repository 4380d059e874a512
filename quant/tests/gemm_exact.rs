//! The Q4_0, Q5_0 and Q8_0 `gemm` entries (several weight rows × several
//! activation rows per pass) against the same table's `gemv`, one activation
//! row at a time, bit for bit, on every available tier: random block bytes
//! (any quant byte, finite scales of widely different sizes), weight row
//! counts that are and are not multiples of the rows per pass, 1..=9
//! activation rows, odd and even block counts per row; and batches that the
//! kernels split (17 and 33 activation rows, rows of 70 and 1025 blocks:
//! longer than the Q5_0 gemm's unpacked tile of 64). Every other batch has
//! no activation of -128 (ember's quantizers write none; the Q8_0 VNNI gemm
//! sends a batch holding one to the AVX2 gemm), and the default table
//! (`Kernels::best`) is checked as well as each tier's.

use ember_quant::matmul::act_row_bytes;
use ember_quant::{GgmlType, Kernels, Tier};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

mod common;
use common::tables;

/// Turns every quant byte of -128 (0x80) in blocks of `block` bytes into
/// -127: ember's activation quantizers never write -128, and the Q8_0 VNNI
/// gemm hands a batch that holds one to the AVX2 gemm, so without this its
/// own path would rarely run here.
fn no_minus_128(bytes: &mut [u8], block: usize) {
    for blk in bytes.chunks_mut(block) {
        for q in &mut blk[2..] {
            if *q == 0x80 {
                *q = 0x81;
            }
        }
    }
}

/// `n` blocks of `block` bytes, 8-aligned, each a 2-byte f16 scale then
/// random quant bytes; scales span 2^-14..2^-4 with either sign.
fn blocks(rng: &mut SmallRng, n: usize, block: usize) -> Vec<u64> {
    let mut v = vec![0u64; (n * block).div_ceil(8)];
    let bytes = bytemuck::cast_slice_mut::<u64, u8>(&mut v);
    for b in 0..n {
        let blk = &mut bytes[b * block..(b + 1) * block];
        let d = rng.gen_range(0.5f32..1.0) * (-(rng.gen_range(4..14) as f32)).exp2();
        let d = if rng.gen_bool(0.3) { -d } else { d };
        blk[..2].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
        rng.fill(&mut blk[2..]);
    }
    v
}

#[test]
fn q4_0_q5_0_and_q8_0_gemm_equal_gemv_bit_for_bit() {
    let mut rng = SmallRng::seed_from_u64(0x9e3779b9);
    for (tier, k) in tables() {
        for ty in [GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0] {
            let act = ty.vec_dot_type().unwrap();
            let small =
                [1usize, 2, 3, 18].map(|nb| (nb, vec![1usize, 3, 4, 5, 7, 8, 9, 12, 17, 23], (1..=9).collect()));
            // 40 blocks x 30 rows: more than one group of activation rows
            // in the Q5_0/Q8_0 tiled gemms (1024 / 40 = 25 and 512 / 40 = 12).
            let split = [
                (18, vec![9], vec![17, 33]),
                (40, vec![9], vec![30]),
                (70, vec![11], vec![2, 17]),
                (1025, vec![9], vec![2]),
            ];
            for (nb, row_counts, batches) in small.into_iter().chain(split) {
                let cols = 32 * nb;
                let (rb, ab) = (ty.row_bytes(cols).unwrap(), act_row_bytes(act, cols).unwrap());
                for rows in row_counts {
                    let w = blocks(&mut rng, rows * nb, rb / nb);
                    let wb = &bytemuck::cast_slice::<u64, u8>(&w)[..rb * rows];
                    for (j, &m) in batches.iter().enumerate() {
                        let mut a = blocks(&mut rng, m * nb, ab / nb);
                        // Every other batch without -128 activations (see `no_minus_128`).
                        if (rows + j) % 2 == 0 {
                            no_minus_128(&mut bytemuck::cast_slice_mut::<u64, u8>(&mut a)[..ab * m], ab / nb);
                        }
                        let abytes = &bytemuck::cast_slice::<u64, u8>(&a)[..ab * m];
                        let stride = rows + 2;
                        let mut got = vec![f32::NAN; (m - 1) * stride + rows];
                        k.gemm_strided(ty, cols, wb, abytes, &mut got, stride).unwrap();
                        for i in 0..m {
                            let mut want = vec![f32::NAN; rows];
                            k.gemv(ty, cols, wb, &abytes[i * ab..(i + 1) * ab], &mut want).unwrap();
                            let g: Vec<u32> = got[i * stride..i * stride + rows].iter().map(|x| x.to_bits()).collect();
                            let e: Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
                            assert_eq!(g, e, "{tier} {ty} blocks={nb} rows={rows} m={m} activation row {i}");
                        }
                    }
                }
            }
        }
    }
}

/// `W[r] · a` in ggml's repacked Q4_K order (`ggml_gemv/gemm_q4_K_8x8_q8_K`),
/// written out from its definition: per 256-value block, `d = d_w * d_a`,
/// `dmin = dmin_w * d_a`; with `per_64`, one step per 64 values (sub-blocks
/// `2s`, `2s + 1`), else one per block, each `acc = fma(f32(isum), d, acc)`
/// and `acc_min = fma(f32(imin), dmin, acc_min)` on the exact integer sums;
/// the result is `acc - acc_min`.
fn q4_k_repacked_statement(w: &[ember_quant::q4_k::BlockQ4K], a: &[ember_quant::q8_k::BlockQ8K], per_64: bool) -> f32 {
    let (mut acc, mut acc_min) = (0.0f32, 0.0f32);
    for (x, y) in w.iter().zip(a) {
        let s = &x.scales;
        let (mut sc, mut mn) = ([0i32; 8], [0i32; 8]);
        for j in 0..8 {
            (sc[j], mn[j]) = if j < 4 {
                ((s[j] & 63) as i32, (s[j + 4] & 63) as i32)
            } else {
                (((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4)) as i32, ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as i32)
            };
        }
        let d = x.d.to_f32() * y.d;
        let dmin = x.dmin.to_f32() * y.d;
        let dot = |j: usize| -> i32 {
            (0..32).map(|k| ((x.qs[32 * (j / 2) + k] >> (4 * (j % 2))) & 0xF) as i32 * y.qs[32 * j + k] as i32).sum()
        };
        let bsum = |j: usize| y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32;
        let steps = if per_64 { 4 } else { 1 };
        let per = 8 / steps;
        for t in 0..steps {
            let js = t * per..(t + 1) * per;
            let isum: i32 = js.clone().map(|j| sc[j] * dot(j)).sum();
            let imin: i32 = js.map(|j| mn[j] * bsum(j)).sum();
            acc = (isum as f32).mul_add(d, acc);
            acc_min = (imin as f32).mul_add(dmin, acc_min);
        }
    }
    acc - acc_min
}

/// The Q4_K gemm on every x86 tier, against [`q4_k_repacked_statement`]:
/// the first `m - m % 4` activation rows in the per-64 order, the rest in
/// the per-block order; row counts around the eight rows per pass, 1..=9
/// activation rows and split batches (17, 33), rows of 1 to 17 blocks (the
/// AVX2 kernel unpacks 8 blocks at a time and keeps the chains of 16
/// activation rows between chunks).
#[test]
fn q4_k_gemm_takes_ggml_repacked_order() {
    use ember_quant::{q4_k::BlockQ4K, q8_k::BlockQ8K};
    let mut rng = SmallRng::seed_from_u64(0x4b4b);
    let ty = GgmlType::Q4_K;
    let x86 = [Tier::Avx2, Tier::Avx512].into_iter().filter(|t| t.is_available()).collect::<Vec<_>>();
    assert!(!cfg!(target_arch = "x86_64") || !x86.is_empty(), "no x86 SIMD tier on this x86 CPU: nothing tested");
    let mut checked = 0;
    for tier in x86 {
        let k = Kernels::with_tier(tier).unwrap();
        for nb in [1usize, 3, 8, 9, 17] {
            let cols = 256 * nb;
            let (rb, ab) = (ty.row_bytes(cols).unwrap(), act_row_bytes(GgmlType::Q8_K, cols).unwrap());
            for (rows, batches) in
                [(1usize, vec![2usize, 5]), (7, (2..=9).collect()), (8, vec![4, 17]), (13, vec![33, 3])]
            {
                let wf: Vec<f32> = (0..rows * cols).map(|_| rng.gen_range(-1.0f32..1.0) * 4.0).collect();
                let mut w = vec![0u64; (rb * rows).div_ceil(8)];
                let wb = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut w)[..rb * rows];
                ember_quant::matmul::quantize(ty, &wf, wb).unwrap();
                let wb = &bytemuck::cast_slice::<u64, u8>(&w)[..rb * rows];
                for m in batches {
                    let mut a = vec![0u64; (ab * m).div_ceil(8)];
                    let abytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut a)[..ab * m];
                    for i in 0..m {
                        let xf: Vec<f32> = (0..cols).map(|_| rng.gen_range(-1.0f32..1.0) * 8.0).collect();
                        k.quantize_activations(GgmlType::Q8_K, &xf, &mut abytes[i * ab..(i + 1) * ab]).unwrap();
                    }
                    let abytes = &bytemuck::cast_slice::<u64, u8>(&a)[..ab * m];
                    let stride = rows + 2;
                    let mut got = vec![f32::NAN; (m - 1) * stride + rows];
                    k.gemm_strided(ty, cols, wb, abytes, &mut got, stride).unwrap();
                    let (wt, at) =
                        (bytemuck::cast_slice::<u8, BlockQ4K>(wb), bytemuck::cast_slice::<u8, BlockQ8K>(abytes));
                    for i in 0..m {
                        // One activation row goes to the gemv (per-block order).
                        let per_64 = m > 1 && i < m - m % 4;
                        for r in 0..rows {
                            let want =
                                q4_k_repacked_statement(&wt[r * nb..(r + 1) * nb], &at[i * nb..(i + 1) * nb], per_64);
                            let g = got[i * stride + r];
                            assert_eq!(
                                g.to_bits(),
                                want.to_bits(),
                                "{tier} blocks={nb} rows={rows} m={m} ({i},{r}): {g} vs {want}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    eprintln!("{checked} Q4_K gemm outputs bit-identical to ggml's repacked order");
}
