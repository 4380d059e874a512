//! The tiled-attention kernels (`ember_quant::attn_tile`) of the best tier
//! this CPU runs against the portable ones, bit for bit, on random data:
//! gemm shapes with row counts 1..13 (tails of the 6-row passes), column
//! counts 1..9, 16, 24, 48, 64, 70 (tails of the 16- and 8-column passes),
//! chain lengths 1, 7, 64, 256, both layouts of `a`, and row strides wider
//! than the rows; the softmax on 1..20, 48 and 64 rows with masked entries;
//! its exponential over a sweep of inputs from underflow to overflow.
//!
//! On x86_64 the test fails if the AVX2 tier is missing; on other
//! architectures only the generic table exists and the test says so on
//! stderr.

use ember_quant::act::expf_ggml;
use ember_quant::attn_tile::{GemmShape, KV_TILE};
use ember_quant::{Kernels, Tier};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn best() -> Option<Kernels> {
    let k = Kernels::best();
    if k.tile.tier == Tier::Generic {
        if cfg!(target_arch = "x86_64") {
            panic!("x86_64 without an AVX2 tiled-attention kernel: AVX2/FMA missing on this CPU?");
        }
        eprintln!("attn_tile_vs_generic: no SIMD tiled-attention kernels on this architecture; nothing to compare");
        return None;
    }
    Some(k)
}

fn vals(r: &mut SmallRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| r.gen_range(-1.0f32..1.0) * scale).collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn simd_tile_gemm_equals_generic_bit_for_bit() {
    let Some(k) = best() else { return };
    let g = Kernels::generic();
    let mut r = SmallRng::seed_from_u64(11);
    let mut cases = 0;
    for m in 1..=13 {
        for n in [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 24, 48, 64, 70] {
            for kk in [1, 7, 64, 256] {
                for transposed in [false, true] {
                    let ldc = n + (m + n) % 3;
                    let ldb = n + (kk + n) % 5;
                    let (a_rs, a_cs) = if transposed { (1, m + 2) } else { (kk + 1, 1) };
                    let shape = GemmShape { m, k: kk, n, ldc, a_rs, a_cs, ldb };
                    let a = vals(&mut r, (m - 1) * a_rs + (kk - 1) * a_cs + 1, 2.0);
                    let b = vals(&mut r, (kk - 1) * ldb + n, 1.5);
                    let c0 = vals(&mut r, (m - 1) * ldc + n, 4.0);
                    let (mut x, mut y) = (c0.clone(), c0);
                    k.tile_gemm(shape, &mut x, &a, &b).unwrap();
                    g.tile_gemm(shape, &mut y, &a, &b).unwrap();
                    assert_eq!(bits(&x), bits(&y), "{shape:?}");
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 13 * 14 * 4 * 2);
}

#[test]
fn tile_gemm_rejects_out_of_bounds_shapes() {
    let k = Kernels::best();
    let shape = GemmShape { m: 2, k: 3, n: 4, ldc: 4, a_rs: 3, a_cs: 1, ldb: 4 };
    let (a, b) = (vec![1.0f32; 6], vec![1.0f32; 12]);
    let mut c = vec![0.0f32; 8];
    k.tile_gemm(shape, &mut c, &a, &b).unwrap();
    assert_eq!(c, vec![3.0; 8]);
    assert!(k.tile_gemm(shape, &mut c[..7], &a, &b).is_err());
    assert!(k.tile_gemm(shape, &mut c, &a[..5], &b).is_err());
    assert!(k.tile_gemm(shape, &mut c, &a, &b[..11]).is_err());
    assert!(k.tile_gemm(GemmShape { ldc: 3, ..shape }, &mut c, &a, &b).is_err());
    assert!(k.tile_gemm(GemmShape { a_rs: usize::MAX, ..shape }, &mut c, &a, &b).is_err());
    let mut sums = [0.0f64; 3];
    assert!(k.tile_softmax(&mut c, 3, &[0.0; 3], &mut sums).is_err());
}

#[test]
fn simd_tile_softmax_equals_generic_bit_for_bit() {
    let Some(k) = best() else { return };
    let g = Kernels::generic();
    let mut r = SmallRng::seed_from_u64(12);
    for n in (1..=20).chain([48, 64]) {
        for round in 0..40 {
            let scale = [1.0f32, 12.0, 90.0, 0.01][round % 4];
            let mut kq = vals(&mut r, KV_TILE * n, scale);
            // masked entries, and a few rows masked entirely
            for (i, x) in kq.iter_mut().enumerate() {
                if r.gen_range(0..5) == 0 || (i % n) % 7 == 3 && round % 2 == 0 {
                    *x = f32::NEG_INFINITY;
                }
            }
            let m: Vec<f32> = (0..n)
                .map(|c| {
                    let mx = (0..KV_TILE).map(|t| kq[t * n + c]).fold(f32::NEG_INFINITY, f32::max);
                    // a running maximum from earlier tiles may be larger
                    if round % 3 == 1 && mx.is_finite() {
                        mx + r.gen_range(0.0f32..3.0)
                    } else {
                        mx
                    }
                })
                .collect();
            let (mut x, mut y) = (kq.clone(), kq);
            let (mut sx, mut sy) = (vec![7.0f64; n], vec![7.0f64; n]);
            k.tile_softmax(&mut x, n, &m, &mut sx).unwrap();
            g.tile_softmax(&mut y, n, &m, &mut sy).unwrap();
            assert_eq!(bits(&x), bits(&y), "n={n} round={round}");
            assert_eq!(
                sx.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                sy.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            assert!(x.iter().all(|p| p.is_finite() && *p >= 0.0 && *p <= 1.0), "n={n} round={round}");
        }
    }
}

#[test]
fn simd_tile_exp_equals_generic_over_a_sweep() {
    let Some(k) = best() else { return };
    // with a maximum of 0 every entry becomes expf_ggml(x): 64 * 8 inputs per
    // call, stepping through the f32 values of [-200, 100] and the specials.
    let n = 8;
    let mut xs: Vec<f32> = Vec::new();
    let (lo, hi) = (-200.0f32, 100.0f32);
    let mut x = lo;
    while x < hi {
        xs.push(x);
        xs.push(-x * 1e-3);
        x += 0.000_2 * (1.0 + x.abs());
    }
    xs.extend([0.0, -0.0, f32::INFINITY, f32::MIN_POSITIVE, -f32::MIN_POSITIVE, 88.72, 88.73, -87.34, -103.9, -104.0]);
    let mut checked = 0;
    for chunk in xs.chunks(KV_TILE * n) {
        let mut kq = vec![f32::NEG_INFINITY; KV_TILE * n];
        kq[..chunk.len()].copy_from_slice(chunk);
        let mut sums = vec![0.0f64; n];
        k.tile_softmax(&mut kq, n, &[0.0; 8], &mut sums).unwrap();
        for (i, &x) in chunk.iter().enumerate() {
            let want = expf_ggml(x);
            assert_eq!(kq[i].to_bits(), want.to_bits(), "expf({x}): {} vs {want}", kq[i]);
            checked += 1;
        }
    }
    assert!(checked > 90_000, "{checked}");
}
