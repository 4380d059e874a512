//! The activation kernels (`ember_quant::act`: e^x, SiLU, SwiGLU, GeGLU) of the best
//! tier this CPU runs against the portable ones, bit for bit: SiLU feeds the
//! feed-forward of every SmolLM2 layer, and ember's greedy ids are compared
//! with llama.cpp's.
//!
//! Lengths 0..=17, 64 and 67 cover empty input, tails and whole 8-lane steps;
//! the values include both ends of the scale step (n = -126/-127, 127/128,
//! ±192/193), zeros, infinities and NaNs, and one f32 bit pattern in every
//! 4099 (about a million, every exponent). The `#[ignore]`d test runs all
//! 2^32 patterns (`cargo test --release -p ember-quant --test act_vs_generic
//! -- --ignored`, about three minutes): it is what shows that the generic code's
//! FMA through f64 never double-rounds on expf's operands.
//!
//! On x86_64 the tests fail if the AVX2 tier is missing, on aarch64 if the
//! NEON one is (the qemu runs of `scripts/test-aarch64.sh`); on other
//! architectures only the generic table exists and the tests say so on stderr.

use ember_quant::act::{self, ActEntry};
use ember_quant::{Kernels, Tier};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn best() -> Option<Kernels> {
    let k = Kernels::best();
    if k.act.tier == Tier::Generic {
        if cfg!(target_arch = "x86_64") {
            panic!("x86_64 without an AVX2 activation kernel: AVX2/FMA/F16C missing on this CPU?");
        }
        if cfg!(target_arch = "aarch64") {
            panic!("aarch64 without the NEON activation kernels");
        }
        eprintln!("act_vs_generic: no SIMD activation kernels on this architecture; nothing to compare");
        return None;
    }
    Some(k)
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Inputs around the points where expf's `n = round(x / ln 2)` crosses the
/// scale step's edges, plus zeros, infinities and NaNs.
fn edge_values() -> Vec<f32> {
    let mut v = vec![0.0, -0.0, 1.0, -1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN];
    v.extend([f32::MAX, f32::MIN, f32::MIN_POSITIVE, -f32::MIN_POSITIVE, 88.72, 88.73, -103.9, -104.0]);
    for n in [-194i32, -193, -192, -191, -128, -127, -126, -125, -1, 0, 1, 126, 127, 128, 129, 191, 192, 193, 194] {
        for half in [-0.5f64, 0.0, 0.5] {
            let c = ((n as f64 + half) * core::f64::consts::LN_2) as f32;
            for d in -3i32..=3 {
                v.push(f32::from_bits((c.to_bits() as i32 + d) as u32));
            }
        }
    }
    v
}

fn check_map(k: &Kernels, g: &Kernels, x: &[f32], what: &str) {
    let (mut a, mut b) = (x.to_vec(), x.to_vec());
    k.act_exp(&mut a);
    g.act_exp(&mut b);
    assert_eq!(bits(&a), bits(&b), "exp {what}");
    let (mut a, mut b) = (x.to_vec(), x.to_vec());
    k.act_silu(&mut a);
    g.act_silu(&mut b);
    assert_eq!(bits(&a), bits(&b), "silu {what}");
}

#[test]
fn simd_activations_equal_generic_bit_for_bit() {
    let Some(k) = best() else { return };
    let mut g = Kernels::generic();
    g.act = ActEntry::generic();
    let mut r = SmallRng::seed_from_u64(11);
    let edges = edge_values();
    check_map(&k, &g, &edges, "edge values");
    for n in (0..=17).chain([64, 67]) {
        for round in 0..100 {
            let scale = [1.0f32, 8.0, 100.0, 0.01][round % 4];
            let mut x: Vec<f32> = (0..n).map(|_| r.gen_range(-1.0f32..1.0) * scale).collect();
            if n > 0 && round % 5 == 0 {
                x[r.gen_range(0..n)] = edges[r.gen_range(0..edges.len())];
            }
            check_map(&k, &g, &x, &format!("n={n} round={round}"));
            let up: Vec<f32> = (0..n).map(|_| r.gen_range(-4.0f32..4.0)).collect();
            let (mut a, mut b) = (x.clone(), x.clone());
            k.act_swiglu(&mut a, &up).unwrap();
            g.act_swiglu(&mut b, &up).unwrap();
            assert_eq!(bits(&a), bits(&b), "swiglu n={n} round={round}");
        }
    }
}

#[test]
fn simd_activations_equal_generic_on_a_sweep_of_all_bit_patterns() {
    let Some(k) = best() else { return };
    let g = Kernels::generic();
    let x: Vec<f32> = (0..=u32::MAX / 4099).map(|i| f32::from_bits(i * 4099)).collect();
    check_map(&k, &g, &x, "sweep");
}

#[test]
#[ignore = "2^32 inputs: run in release, about three minutes"]
fn simd_expf_and_silu_equal_generic_on_every_f32() {
    let Some(k) = best() else { return };
    let mut x = vec![0.0f32; 1 << 16];
    for hi in 0..=u16::MAX as u32 {
        for (i, v) in x.iter_mut().enumerate() {
            *v = f32::from_bits(hi << 16 | i as u32);
        }
        let mut a = x.clone();
        k.act_exp(&mut a);
        for (i, (&got, &src)) in a.iter().zip(&x).enumerate() {
            assert_eq!(got.to_bits(), act::expf_ggml(src).to_bits(), "exp of {:#010x}", hi << 16 | i as u32);
        }
        let mut a = x.clone();
        k.act_silu(&mut a);
        for (&got, &src) in a.iter().zip(&x) {
            assert_eq!(got.to_bits(), act::silu(src).to_bits(), "silu of {:#010x}", src.to_bits());
        }
    }
}

/// A stand-in for ggml's GELU table that tells every f16 input apart: a
/// scrambled finite f16 per pattern (so an input rounded to a different f16
/// gives a different output), NaN for the NaN patterns (as GELU's table).
fn scrambled_table() -> Vec<u16> {
    (0..=u16::MAX)
        .map(|h| {
            if h & 0x7c00 == 0x7c00 && h & 0x03ff != 0 {
                0x7e00
            } else {
                h.wrapping_mul(40503).wrapping_add(12345) & 0xfbff
            }
        })
        .collect()
}

/// GeGLU of the best table against the generic one: bit for bit, except
/// that NaN inputs only need NaN outputs (F16C and the software conversion
/// may name different NaN patterns, which both map to NaN).
fn check_geglu(k: &Kernels, g: &Kernels, x: &[f32], up: &[f32], table: &[u16], what: &str) {
    let (mut a, mut b) = (x.to_vec(), x.to_vec());
    k.act_geglu(&mut a, up, table).unwrap();
    g.act_geglu(&mut b, up, table).unwrap();
    for (i, ((&p, &q), &xi)) in a.iter().zip(&b).zip(x).enumerate() {
        let same = p.to_bits() == q.to_bits() || (xi.is_nan() && p.is_nan() && q.is_nan());
        assert!(same, "geglu {what} [{i}] x={xi:e} ({:#010x}): {p:e} vs {q:e}", xi.to_bits());
    }
}

/// Every f16 value, the halfway points between neighbours (ties, which
/// round to the even one) and the f32 next to them, the ±10 cut-offs and
/// the edge values: each as a lane of every position of an 8-lane step and
/// in the scalar tail, with random up values.
#[test]
fn simd_geglu_equals_generic() {
    let Some(k) = best() else { return };
    let mut g = Kernels::generic();
    g.act = ActEntry::generic();
    let table = scrambled_table();
    let mut x = edge_values();
    x.extend([-10.0f32, 10.0, -9.999999, 9.999999, -10.000001, 10.000001, 65504.0, 65520.0, -65520.0]);
    for h in 0..=u16::MAX {
        let v = half::f16::from_bits(h).to_f32();
        let next = half::f16::from_bits(h.wrapping_add(1)).to_f32();
        x.push(v);
        if v.is_finite() && next.is_finite() && (h & 0x7fff) != 0x7bff {
            let mid = (v + next) / 2.0;
            x.extend([mid, f32::from_bits(mid.to_bits() - 1), f32::from_bits(mid.to_bits() + 1)]);
        }
    }
    let mut r = SmallRng::seed_from_u64(12);
    let up: Vec<f32> = (0..x.len()).map(|_| r.gen_range(-4.0f32..4.0)).collect();
    for shift in 0..8 {
        check_geglu(&k, &g, &x[shift..], &up[shift..], &table, &format!("shift {shift}"));
    }
    for n in (0..=17).chain([64, 67]) {
        let x: Vec<f32> = (0..n).map(|_| r.gen_range(-12.0f32..12.0)).collect();
        check_geglu(&k, &g, &x, &up[..n], &table, &format!("n={n}"));
    }
}

#[test]
fn geglu_rejects_mismatched_lengths_and_short_tables() {
    let k = Kernels::best();
    let mut g = [1.0f32; 9];
    assert!(k.act_geglu(&mut g, &[1.0; 8], &scrambled_table()).is_err());
    assert!(k.act_geglu(&mut g, &[1.0; 9], &[0u16; 65535]).is_err());
    assert_eq!(g, [1.0; 9]);
}

#[test]
fn swiglu_rejects_mismatched_lengths() {
    let k = Kernels::best();
    let mut g = [1.0f32; 9];
    assert!(k.act_swiglu(&mut g, &[1.0; 8]).is_err());
    assert_eq!(g, [1.0; 9]);
}

#[test]
fn expf_ggml_is_within_two_ulp_and_handles_the_ends() {
    let mut x = -103.0f32;
    while x < 88.0 {
        let want = (x as f64).exp();
        let got = act::expf_ggml(x) as f64;
        let ulp = (want as f32).to_bits() as i64 - (got as f32).to_bits() as i64;
        assert!(ulp.abs() <= 2, "x={x}: {got} vs {want}");
        x += 0.0137;
    }
    assert_eq!(act::expf_ggml(0.0), 1.0);
    assert_eq!(act::expf_ggml(-200.0), 0.0);
    assert_eq!(act::expf_ggml(200.0), f32::INFINITY);
    assert!(act::expf_ggml(f32::NAN).is_nan());
    // subnormal results: e^-100 = 3.72e-44 (26 f32 ulps of 2^-149)
    assert_eq!(act::expf_ggml(-100.0), f32::from_bits(27));
}
