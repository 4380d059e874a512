//! The attention kernels of the best tier this CPU runs against the
//! portable ones (`ember_quant::attn`), bit for bit: the SIMD versions follow
//! the same float order (ggml's one-row flash attention), and ember's greedy
//! ids are compared with llama.cpp's. Lengths 0, 1, 7, 8, 63, 64, 65, 128,
//! 256 and 257 cover empty input, tails and several 64-value steps.
//!
//! The accumulators hold f16 values (as in ggml) and the queries are
//! f16-rounded, like the callers'. On x86_64 the test fails if the AVX2 tier
//! is missing, on aarch64 if the NEON one is (the qemu runs of
//! `scripts/test-aarch64.sh`); on other architectures only the generic table
//! exists and the test says so on stderr.

use ember_quant::attn::AttnEntry;
use ember_quant::{f16, Kernels, Tier};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const LENS: [usize; 10] = [0, 1, 7, 8, 63, 64, 65, 128, 256, 257];

fn f16s(r: &mut SmallRng, n: usize, scale: f32) -> Vec<f16> {
    (0..n).map(|_| f16::from_f32(r.gen_range(-1.0f32..1.0) * scale)).collect()
}

fn best() -> Option<Kernels> {
    let k = Kernels::best();
    if k.attn.tier == Tier::Generic {
        if cfg!(target_arch = "x86_64") {
            panic!("x86_64 without an AVX2 attention kernel: AVX2/FMA/F16C missing on this CPU?");
        }
        if cfg!(target_arch = "aarch64") {
            panic!("aarch64 without the NEON attention kernels");
        }
        eprintln!("attn_vs_generic: no SIMD attention kernels on this architecture; nothing to compare");
        return None;
    }
    Some(k)
}

#[test]
fn simd_attention_kernels_equal_generic_bit_for_bit() {
    let Some(k) = best() else { return };
    let mut g = Kernels::generic();
    g.attn = AttnEntry::generic();
    let mut r = SmallRng::seed_from_u64(7);
    for &n in &LENS {
        for round in 0..200 {
            let scale = [1.0f32, 30.0, 0.01][round % 3];
            let kr = f16s(&mut r, n, scale);
            let q: Vec<f32> = f16s(&mut r, n, 4.0).iter().map(|x| x.to_f32()).collect();
            let (a, b) = (k.attn_dot_f16(&kr, &q).unwrap(), g.attn_dot_f16(&kr, &q).unwrap());
            assert_eq!(a.to_bits(), b.to_bits(), "dot n={n} round={round}: {a} vs {b}");

            let v = f16s(&mut r, n, scale);
            let acc0: Vec<f32> = f16s(&mut r, n, 8.0).iter().map(|x| x.to_f32()).collect();
            let s: f32 = r.gen_range(0.0f32..1.0);
            let (mut a, mut b) = (acc0.clone(), acc0.clone());
            k.attn_mad_f16(&mut a, &v, s).unwrap();
            g.attn_mad_f16(&mut b, &v, s).unwrap();
            assert_eq!(a, b, "mad n={n} round={round}");
            // the f16-arithmetic FMA on its own, over every length (its own tails)
            let s16 = f16::from_f32(s).to_f32();
            let (mut x, mut y) = (acc0.clone(), acc0.clone());
            // SAFETY: `best()` returned the table of a tier this CPU supports;
            // `x`, `y` and `v` have the same length.
            unsafe {
                (k.attn.mad_f16_ph)(&mut x, &v, s16);
                (g.attn.mad_f16_ph)(&mut y, &v, s16);
            }
            let bits = |z: &[f32]| z.iter().map(|w| w.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&x), bits(&y), "mad_f16_ph n={n} round={round}");
            k.attn_scale_f16(&mut a, s);
            g.attn_scale_f16(&mut b, s);
            assert_eq!(a, b, "scale n={n} round={round}");

            let (mut a, mut b) = (vec![0.0f32; n], vec![1.0f32; n]);
            k.attn_widen_f16(&v, &mut a).unwrap();
            g.attn_widen_f16(&v, &mut b).unwrap();
            assert_eq!(a, b, "widen n={n} round={round}");
            let qt: Vec<f32> = (0..4 * n).map(|_| r.gen_range(-1.0f32..1.0) * scale).collect();
            let (x, y) = (k.attn_dot_f32_x4(&a, &qt).unwrap(), g.attn_dot_f32_x4(&a, &qt).unwrap());
            assert_eq!(x.map(f32::to_bits), y.map(f32::to_bits), "dot_f32_x4 n={n} round={round}");
            let k1: Vec<f32> = qt[..n].iter().map(|x| x * 0.5 - 0.25).collect();
            let (x, y) = (k.attn_dot_f32_x4_pair(&a, &k1, &qt).unwrap(), g.attn_dot_f32_x4_pair(&a, &k1, &qt).unwrap());
            assert_eq!(x[0].map(f32::to_bits), y[0].map(f32::to_bits), "dot_f32_x4_pair n={n} round={round}");
            assert_eq!(x[1].map(f32::to_bits), y[1].map(f32::to_bits), "dot_f32_x4_pair n={n} round={round}");
            let one = g.attn_dot_f32_x4(&k1, &qt).unwrap();
            assert_eq!(x[1].map(f32::to_bits), one.map(f32::to_bits), "pair vs one row n={n} round={round}");
            let (mut x, mut y) = (qt[..n].to_vec(), qt[..n].to_vec());
            k.attn_mad_f32(&mut x, &a, s).unwrap();
            g.attn_mad_f32(&mut y, &a, s).unwrap();
            assert_eq!(x, y, "mad_f32 n={n} round={round}");
        }
    }
}

#[test]
fn mismatched_lengths_are_errors() {
    let k = Kernels::best();
    assert!(k.attn_dot_f16(&[f16::ONE; 3], &[1.0; 4]).is_err());
    assert!(k.attn_mad_f16(&mut [0.0; 4], &[f16::ONE; 3], 1.0).is_err());
    assert!(k.attn_widen_f16(&[f16::ONE; 3], &mut [0.0; 4]).is_err());
    assert!(k.attn_dot_f32_x4(&[1.0; 3], &[1.0; 8]).is_err());
    assert!(k.attn_dot_f32_x4_pair(&[1.0; 2], &[1.0; 3], &[1.0; 8]).is_err());
}

/// The block kernels (`attn_dots_f16`, `attn_mads_f16`) of both tables
/// against the one-row kernels applied position by position, as the
/// attention loop applied them before the blocks: the scores row by row,
/// and per position a rescaling (only where `ms` is not 1.0) and a value
/// row. Row counts 0, 1, 5 and 16; some `ms` are 1.0, some the first
/// position's 0.0 (the first rescaling of an empty accumulator), the rest
/// in (0, 1). Lengths include 72 and 200 (a block of 64 plus single
/// vectors) and 257 (the one-row fallback).
#[test]
fn block_attention_kernels_equal_the_one_row_steps() {
    let mut g = Kernels::generic();
    g.attn = AttnEntry::generic();
    let tables: Vec<Kernels> = best().into_iter().chain([g]).collect();
    let mut r = SmallRng::seed_from_u64(11);
    let bits = |z: &[f32]| z.iter().map(|w| w.to_bits()).collect::<Vec<_>>();
    for &n in LENS.iter().chain(&[72, 200, 320]) {
        for rows in [0usize, 1, 5, 16] {
            for round in 0..20 {
                let scale = [1.0f32, 30.0, 0.01][round % 3];
                let ks: Vec<Vec<f16>> = (0..rows).map(|_| f16s(&mut r, n, scale)).collect();
                let vs_rows: Vec<Vec<f16>> = (0..rows).map(|_| f16s(&mut r, n, scale)).collect();
                let q: Vec<f32> = f16s(&mut r, n, 4.0).iter().map(|x| x.to_f32()).collect();
                let ms: Vec<f32> = (0..rows)
                    .map(|j| match (j, r.gen_range(0..3)) {
                        (0, _) => 0.0,
                        (_, 0) => 1.0,
                        _ => r.gen_range(0.0f32..1.0),
                    })
                    .collect();
                let w: Vec<f32> = (0..rows).map(|_| r.gen_range(0.0f32..1.0)).collect();
                let acc0: Vec<f32> = f16s(&mut r, n, 8.0).iter().map(|x| x.to_f32()).collect();
                let krefs: Vec<&[f16]> = ks.iter().map(|x| x.as_slice()).collect();
                let vrefs: Vec<&[f16]> = vs_rows.iter().map(|x| x.as_slice()).collect();
                // The one-row steps, through the generic table.
                let want_s: Vec<f32> = krefs.iter().map(|k| g.attn_dot_f16(k, &q).unwrap()).collect();
                let mut want = acc0.clone();
                for j in 0..rows {
                    if ms[j] != 1.0 {
                        g.attn_scale_f16(&mut want, ms[j]);
                    }
                    g.attn_mad_f16(&mut want, vrefs[j], w[j]).unwrap();
                }
                for t in &tables {
                    let mut got_s = vec![f32::NAN; rows];
                    t.attn_dots_f16(&krefs, &q, &mut got_s).unwrap();
                    assert_eq!(bits(&got_s), bits(&want_s), "dots {:?} n={n} rows={rows} round={round}", t.attn.tier);
                    let mut got = acc0.clone();
                    t.attn_mads_f16(&mut got, &vrefs, &ms, &w).unwrap();
                    assert_eq!(bits(&got), bits(&want), "mads {:?} n={n} rows={rows} round={round}", t.attn.tier);
                }
            }
        }
    }
}

#[test]
fn block_kernels_reject_mismatched_lengths() {
    let k = Kernels::best();
    let (a, b) = ([f16::ONE; 4], [f16::ONE; 3]);
    assert!(k.attn_dots_f16(&[&a, &b], &[1.0; 4], &mut [0.0; 2]).is_err(), "a short key row");
    assert!(k.attn_dots_f16(&[&a, &a], &[1.0; 4], &mut [0.0; 1]).is_err(), "too few scores");
    assert!(k.attn_mads_f16(&mut [0.0; 4], &[&a, &b], &[1.0; 2], &[1.0; 2]).is_err(), "a short value row");
    assert!(k.attn_mads_f16(&mut [0.0; 4], &[&a, &a], &[1.0; 1], &[1.0; 2]).is_err(), "too few rescalings");
    assert!(k.attn_mads_f16(&mut [0.0; 4], &[&a, &a], &[1.0; 2], &[1.0; 3]).is_err(), "too many weights");
}
