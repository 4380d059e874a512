//! The Q4_0 and Q8_0 `gemm` entries (several weight rows × several
//! activation rows per pass) against the same table's `gemv`, one activation
//! row at a time, bit for bit, on every available tier: random block bytes
//! (any quant byte, finite scales of widely different sizes), weight row
//! counts that are and are not multiples of the rows per pass, 1..=9
//! activation rows, odd and even block counts per row; and batches that the
//! kernels split (17 and 33 activation rows, rows of 70 and 1025 blocks).

use ember_quant::matmul::act_row_bytes;
use ember_quant::{GgmlType, Kernels, Tier};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn tiers() -> Vec<Tier> {
    [Tier::Generic, Tier::Avx2, Tier::Avx512, Tier::Neon, Tier::Dotprod]
        .into_iter()
        .filter(|t| t.is_available())
        .collect()
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
fn q4_0_and_q8_0_gemm_equal_gemv_bit_for_bit() {
    let mut rng = SmallRng::seed_from_u64(0x9e3779b9);
    for tier in tiers() {
        let k = Kernels::with_tier(tier).unwrap();
        for ty in [GgmlType::Q4_0, GgmlType::Q8_0] {
            let act = ty.vec_dot_type().unwrap();
            let small =
                [1usize, 2, 3, 18].map(|nb| (nb, vec![1usize, 3, 4, 5, 7, 8, 9, 12, 17, 23], (1..=9).collect()));
            let split = [(18, vec![9], vec![17, 33]), (70, vec![11], vec![2, 17]), (1025, vec![9], vec![2])];
            for (nb, row_counts, batches) in small.into_iter().chain(split) {
                let cols = 32 * nb;
                let (rb, ab) = (ty.row_bytes(cols).unwrap(), act_row_bytes(act, cols).unwrap());
                for rows in row_counts {
                    let w = blocks(&mut rng, rows * nb, rb / nb);
                    let wb = &bytemuck::cast_slice::<u64, u8>(&w)[..rb * rows];
                    for &m in &batches {
                        let a = blocks(&mut rng, m * nb, ab / nb);
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
