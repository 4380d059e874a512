//! Every aarch64 kernel against its generic twin on random blocks (random
//! bytes for the packed fields, so every bit pattern is exercised) with block
//! counts 0, 1, 2, 3, 7 and the real row lengths 576, 640, 1536, 2048; the
//! activation quantizers byte for byte against the reference quantizers.
//!
//! NEON tests need NEON (every aarch64 Linux CPU). Tests named `*dotprod*`
//! need the dot-product extension and FAIL loudly without it: on a CPU
//! without SDOT (a Pi 4, `qemu -cpu cortex-a72`) run them with
//! `--skip dotprod`, as `scripts/test-aarch64.sh` does.

use super::*;
use crate::{floats, Kernels};
use bytemuck::Pod;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::vec;
use std::vec::Vec;

fn require(tier: Tier) {
    assert!(
        tier_available(tier),
        "this CPU lacks the {tier} tier, so its kernels cannot be tested here; \
         on a CPU without SDOT (e.g. qemu -cpu cortex-a72) run with `--skip dotprod`"
    );
}

/// Random test data of one type.
trait Random: Sized + Copy {
    fn random(r: &mut SmallRng) -> Self;
}

fn scale(r: &mut SmallRng) -> f16 {
    f16::from_f32(r.gen_range(-0.05f32..0.05))
}

fn bytes<const N: usize>(r: &mut SmallRng) -> [u8; N] {
    core::array::from_fn(|_| r.gen())
}

fn act_qs<const N: usize>(r: &mut SmallRng) -> [i8; N] {
    core::array::from_fn(|_| r.gen_range(-127i8..=127))
}

impl Random for f32 {
    fn random(r: &mut SmallRng) -> Self {
        r.gen_range(-2.0f32..2.0)
    }
}
impl Random for f16 {
    fn random(r: &mut SmallRng) -> Self {
        f16::from_f32(r.gen_range(-2.0f32..2.0))
    }
}
impl Random for q4_0::BlockQ4_0 {
    fn random(r: &mut SmallRng) -> Self {
        Self { d: scale(r), qs: bytes(r) }
    }
}
impl Random for q4_1::BlockQ4_1 {
    fn random(r: &mut SmallRng) -> Self {
        Self { d: scale(r), m: scale(r), qs: bytes(r) }
    }
}
impl Random for q5_0::BlockQ5_0 {
    fn random(r: &mut SmallRng) -> Self {
        Self { d: scale(r), qh: bytes(r), qs: bytes(r) }
    }
}
impl Random for q5_1::BlockQ5_1 {
    fn random(r: &mut SmallRng) -> Self {
        Self { d: scale(r), m: scale(r), qh: bytes(r), qs: bytes(r) }
    }
}
impl Random for iq4_nl::BlockIq4Nl {
    fn random(r: &mut SmallRng) -> Self {
        Self { d: scale(r), qs: bytes(r) }
    }
}
impl Random for q8_0::BlockQ8_0 {
    fn random(r: &mut SmallRng) -> Self {
        // Full int8 range, -128 included, as a Q8_0 weight row may hold.
        Self { d: scale(r), qs: core::array::from_fn(|_| r.gen()) }
    }
}
impl Random for q8_1::BlockQ8_1 {
    fn random(r: &mut SmallRng) -> Self {
        let d = scale(r);
        let qs: [i8; 32] = act_qs(r);
        let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
        Self { d, s: f16::from_f32(d.to_f32() * sum as f32), qs }
    }
}
impl Random for q8_k::BlockQ8K {
    fn random(r: &mut SmallRng) -> Self {
        let qs: [i8; 256] = act_qs(r);
        let bsums = core::array::from_fn(|g| qs[16 * g..16 * g + 16].iter().map(|&q| i16::from(q)).sum());
        Self { d: r.gen_range(-0.05f32..0.05), qs, bsums }
    }
}
impl Random for q2_k::BlockQ2K {
    fn random(r: &mut SmallRng) -> Self {
        Self { scales: bytes(r), qs: bytes(r), d: scale(r), dmin: scale(r) }
    }
}
impl Random for q3_k::BlockQ3K {
    fn random(r: &mut SmallRng) -> Self {
        Self { hmask: bytes(r), qs: bytes(r), scales: bytes(r), d: scale(r) }
    }
}
impl Random for q4_k::BlockQ4K {
    fn random(r: &mut SmallRng) -> Self {
        Self { d: scale(r), dmin: scale(r), scales: bytes(r), qs: bytes(r) }
    }
}
impl Random for q5_k::BlockQ5K {
    fn random(r: &mut SmallRng) -> Self {
        Self { d: scale(r), dmin: scale(r), scales: bytes(r), qh: bytes(r), qs: bytes(r) }
    }
}
impl Random for q6_k::BlockQ6K {
    fn random(r: &mut SmallRng) -> Self {
        Self { ql: bytes(r), qh: bytes(r), scales: core::array::from_fn(|_| r.gen()), d: scale(r) }
    }
}

fn random_vec<T: Random>(r: &mut SmallRng, n: usize) -> Vec<T> {
    (0..n).map(|_| T::random(r)).collect()
}

/// Block counts: 0, 1, 2, 3, 7 and the real row lengths 576, 640, 1536, 2048.
const COUNTS_32: &[usize] = &[0, 1, 2, 3, 7, 18, 20, 48, 64];
/// Super-block counts: 0, 1, 2, 3, 5 and the real row lengths 1536, 2048
/// (576 and 640 are not multiples of 256).
const COUNTS_256: &[usize] = &[0, 1, 2, 3, 5, 6, 8];
/// Element counts for the float kernels: empty, shorter than a step, odd
/// tails, and the real row lengths.
const COUNTS_FLOAT: &[usize] = &[0, 1, 7, 15, 16, 17, 33, 100, 576, 640, 1536, 2048];

/// Compares `simd` with `generic` on random data. The bound is relative to
/// `Σ |per-unit generic result|` (per block, or per element for floats): the
/// integer parts are exact in both, only the order of f32 additions differs.
fn check_dot<W: Random + Pod, A: Random + Pod>(
    name: &str,
    simd: unsafe fn(&[W], &[A]) -> f32,
    generic: fn(&[W], &[A]) -> f32,
    counts: &[usize],
) {
    let mut r = SmallRng::seed_from_u64(0x5eed ^ name.len() as u64);
    for trial in 0..4 {
        for &n in counts {
            let w: Vec<W> = random_vec(&mut r, n);
            let a: Vec<A> = random_vec(&mut r, n);
            let g = generic(&w, &a);
            let mag: f32 = (0..n).map(|i| generic(&w[i..i + 1], &a[i..i + 1]).abs()).sum();
            // SAFETY: the caller checked (`require`) that this CPU has the kernel's tier.
            let s = unsafe { simd(&w, &a) };
            let tol = 1e-5 * mag + 1e-6;
            assert!(
                (s - g).abs() <= tol,
                "{name}: {n} units (trial {trial}): simd {s} vs generic {g}, |diff| {} > {tol}",
                (s - g).abs()
            );
            if n == 0 {
                assert_eq!(s, 0.0, "{name}: empty input must give 0");
            }
        }
    }
}

macro_rules! dot_tests {
    ($($test:ident: $tier:ident, $W:ty, $A:ty, $simd:path, $generic:path, $counts:expr;)*) => {$(
        #[test]
        fn $test() {
            require(Tier::$tier);
            check_dot::<$W, $A>(stringify!($test), $simd, $generic, $counts);
        }
    )*};
}

dot_tests! {
    f32_neon_matches_generic: Neon, f32, f32, floats_neon::vec_dot_f32_neon, floats::vec_dot_f32_generic, COUNTS_FLOAT;
    f16_neon_matches_generic: Neon, f16, f16, floats_neon::vec_dot_f16_neon, floats::vec_dot_f16_generic, COUNTS_FLOAT;
    q4_0_neon_matches_generic: Neon, q4_0::BlockQ4_0, q8_0::BlockQ8_0,
        q4_0_neon::vec_dot_q4_0_q8_0_neon, q4_0::vec_dot_q4_0_q8_0_generic, COUNTS_32;
    q4_1_neon_matches_generic: Neon, q4_1::BlockQ4_1, q8_1::BlockQ8_1,
        q4_1_neon::vec_dot_q4_1_q8_1_neon, q4_1::vec_dot_q4_1_q8_1_generic, COUNTS_32;
    q5_0_neon_matches_generic: Neon, q5_0::BlockQ5_0, q8_0::BlockQ8_0,
        q5_0_neon::vec_dot_q5_0_q8_0_neon, q5_0::vec_dot_q5_0_q8_0_generic, COUNTS_32;
    q5_1_neon_matches_generic: Neon, q5_1::BlockQ5_1, q8_1::BlockQ8_1,
        q5_1_neon::vec_dot_q5_1_q8_1_neon, q5_1::vec_dot_q5_1_q8_1_generic, COUNTS_32;
    q8_0_neon_matches_generic: Neon, q8_0::BlockQ8_0, q8_0::BlockQ8_0,
        q8_0_neon::vec_dot_q8_0_q8_0_neon, q8_0::vec_dot_q8_0_q8_0_generic, COUNTS_32;
    iq4_nl_neon_matches_generic: Neon, iq4_nl::BlockIq4Nl, q8_0::BlockQ8_0,
        iq4_nl_neon::vec_dot_iq4_nl_q8_0_neon, iq4_nl::vec_dot_iq4_nl_q8_0_generic, COUNTS_32;
    q2_k_neon_matches_generic: Neon, q2_k::BlockQ2K, q8_k::BlockQ8K,
        q2_k_neon::vec_dot_q2_k_q8_k_neon, q2_k::vec_dot_q2_k_q8_k_generic, COUNTS_256;
    q3_k_neon_matches_generic: Neon, q3_k::BlockQ3K, q8_k::BlockQ8K,
        q3_k_neon::vec_dot_q3_k_q8_k_neon, q3_k::vec_dot_q3_k_q8_k_generic, COUNTS_256;
    q4_k_neon_matches_generic: Neon, q4_k::BlockQ4K, q8_k::BlockQ8K,
        q4_k_neon::vec_dot_q4_k_q8_k_neon, q4_k::vec_dot_q4_k_q8_k_generic, COUNTS_256;
    q5_k_neon_matches_generic: Neon, q5_k::BlockQ5K, q8_k::BlockQ8K,
        q5_k_neon::vec_dot_q5_k_q8_k_neon, q5_k::vec_dot_q5_k_q8_k_generic, COUNTS_256;
    q6_k_neon_matches_generic: Neon, q6_k::BlockQ6K, q8_k::BlockQ8K,
        q6_k_neon::vec_dot_q6_k_q8_k_neon, q6_k::vec_dot_q6_k_q8_k_generic, COUNTS_256;

    q4_0_dotprod_matches_generic: Dotprod, q4_0::BlockQ4_0, q8_0::BlockQ8_0,
        q4_0_dotprod::vec_dot_q4_0_q8_0_dotprod, q4_0::vec_dot_q4_0_q8_0_generic, COUNTS_32;
    q4_1_dotprod_matches_generic: Dotprod, q4_1::BlockQ4_1, q8_1::BlockQ8_1,
        q4_1_dotprod::vec_dot_q4_1_q8_1_dotprod, q4_1::vec_dot_q4_1_q8_1_generic, COUNTS_32;
    q5_0_dotprod_matches_generic: Dotprod, q5_0::BlockQ5_0, q8_0::BlockQ8_0,
        q5_0_dotprod::vec_dot_q5_0_q8_0_dotprod, q5_0::vec_dot_q5_0_q8_0_generic, COUNTS_32;
    q8_0_dotprod_matches_generic: Dotprod, q8_0::BlockQ8_0, q8_0::BlockQ8_0,
        q8_0_dotprod::vec_dot_q8_0_q8_0_dotprod, q8_0::vec_dot_q8_0_q8_0_generic, COUNTS_32;
    q4_k_dotprod_matches_generic: Dotprod, q4_k::BlockQ4K, q8_k::BlockQ8K,
        q4_k_dotprod::vec_dot_q4_k_q8_k_dotprod, q4_k::vec_dot_q4_k_q8_k_generic, COUNTS_256;
    q6_k_dotprod_matches_generic: Dotprod, q6_k::BlockQ6K, q8_k::BlockQ8K,
        q6_k_dotprod::vec_dot_q6_k_q8_k_dotprod, q6_k::vec_dot_q6_k_q8_k_generic, COUNTS_256;
}

/// Activation rows for the quantizer tests: random values at several
/// magnitudes, all-zero blocks, ties of magnitude between signs, values that
/// land exactly on `k + 0.5` after scaling (rounding mode), and subnormals.
fn quantizer_inputs(block: usize) -> Vec<Vec<f32>> {
    let mut r = SmallRng::seed_from_u64(7 + block as u64);
    let mut rows = Vec::new();
    for &blocks in &[0usize, 1, 3, 18, 64] {
        let n = blocks * block;
        for &mag in &[1.0f32, 1e-3, 300.0] {
            rows.push((0..n).map(|_| r.gen_range(-mag..mag)).collect());
        }
    }
    // Zeros; then a block whose extremes tie in magnitude, negative first.
    rows.push(vec![0.0; 2 * block]);
    let mut tie: Vec<f32> = (0..block).map(|_| r.gen_range(-1.0f32..1.0)).collect();
    tie[3] = -2.0;
    tie[block - 5] = 2.0;
    rows.push(tie.clone());
    tie[3] = 2.0;
    tie[block - 5] = -2.0;
    rows.push(tie);
    // Scale exactly 1 (amax 127 with the sign that makes Q8_K's iscale +1):
    // every `k + 0.5` value is a rounding tie.
    let mut halves: Vec<f32> = (0..block).map(|i| (i as f32 % 100.0) - 49.5).collect();
    halves[0] = -127.0;
    rows.push(halves.iter().map(|v| -v).collect());
    rows.push(halves);
    rows.push((0..block).map(|i| f32::from_bits(i as u32 + 1)).collect());
    rows
}

fn check_quantizer<A: Pod>(
    name: &str,
    block: usize,
    simd: unsafe fn(&[f32], &mut [A]),
    reference: fn(&[f32], &mut [A]),
) {
    for x in quantizer_inputs(block) {
        let nb = x.len() / block;
        let mut want = vec![A::zeroed(); nb];
        let mut got = vec![A::zeroed(); nb];
        reference(&x, &mut want);
        // SAFETY: the caller checked (`require`) that this CPU has NEON.
        unsafe { simd(&x, &mut got) };
        let (want, got): (&[u8], &[u8]) = (bytemuck::cast_slice(&want), bytemuck::cast_slice(&got));
        assert!(want == got, "{name}: {nb} blocks differ from the reference quantizer (input {:?}...)", &x[..8]);
    }
}

#[test]
fn quantize_q8_0_neon_matches_reference() {
    require(Tier::Neon);
    check_quantizer("quantize_q8_0_neon", 32, q8_0_neon::quantize_q8_0_neon, q8_0::quantize_ref);
}

#[test]
fn quantize_q8_1_neon_matches_reference() {
    require(Tier::Neon);
    check_quantizer("quantize_q8_1_neon", 32, q8_1_neon::quantize_q8_1_neon, q8_1::quantize_ref);
}

#[test]
fn quantize_q8_k_neon_matches_reference() {
    require(Tier::Neon);
    check_quantizer("quantize_q8_k_neon", 256, q8_k_neon::quantize_q8_k_neon, q8_k::quantize_ref);
}

/// Kernels used by every entry of a table (name, tier), for the no-fallback checks.
fn entry_tiers(k: &Kernels) -> Vec<(&'static str, Tier)> {
    vec![
        ("f32", k.f32.gemv_tier),
        ("f16", k.f16.gemv_tier),
        ("q4_0", k.q4_0.gemv_tier),
        ("q4_1", k.q4_1.gemv_tier),
        ("q5_0", k.q5_0.gemv_tier),
        ("q5_1", k.q5_1.gemv_tier),
        ("q8_0", k.q8_0.gemv_tier),
        ("iq4_nl", k.iq4_nl.gemv_tier),
        ("q2_k", k.q2_k.gemv_tier),
        ("q3_k", k.q3_k.gemv_tier),
        ("q4_k", k.q4_k.gemv_tier),
        ("q5_k", k.q5_k.gemv_tier),
        ("q6_k", k.q6_k.gemv_tier),
        ("quantize_q8_0", k.quantize_q8_0.tier),
        ("quantize_q8_1", k.quantize_q8_1.tier),
        ("quantize_q8_k", k.quantize_q8_k.tier),
    ]
}

#[test]
fn neon_table_has_no_generic_entry() {
    require(Tier::Neon);
    let k = Kernels::with_tier(Tier::Neon).expect("NEON is available");
    assert_eq!(k.tier(), Tier::Neon);
    for (name, tier) in entry_tiers(&k) {
        assert_eq!(tier, Tier::Neon, "{name} falls back to {tier} in the NEON table");
    }
    // BF16 included: widened with a shift, it needs no BF16 instructions.
    assert_eq!(k.bf16.tier, Tier::Neon);
}

#[test]
fn dotprod_table_uses_sdot_where_it_exists() {
    require(Tier::Dotprod);
    let k = Kernels::with_tier(Tier::Dotprod).expect("dotprod is available");
    assert_eq!(k.tier(), Tier::Dotprod);
    let sdot = ["q4_0", "q4_1", "q5_0", "q8_0", "q4_k", "q6_k"];
    for (name, tier) in entry_tiers(&k) {
        let want = if sdot.contains(&name) { Tier::Dotprod } else { Tier::Neon };
        assert_eq!(tier, want, "{name} is {tier} in the dotprod table, expected {want}");
    }
}

/// The safe driver path end to end on this CPU's best table: quantize a row,
/// gemv over a few weight rows, compare with the generic table.
#[test]
fn best_table_gemv_matches_generic_table() {
    require(Tier::Neon);
    let best = Kernels::best();
    let generic = Kernels::generic();
    let mut r = SmallRng::seed_from_u64(99);
    let cols = 512;
    let rows = 5;
    let x: Vec<f32> = (0..cols).map(|_| r.gen_range(-1.0f32..1.0)).collect();
    let wf: Vec<f32> = (0..cols * rows).map(|_| r.gen_range(-1.0f32..1.0)).collect();
    for ty in [crate::GgmlType::Q4_0, crate::GgmlType::Q8_0, crate::GgmlType::Q4_K, crate::GgmlType::Q6_K] {
        let act = ty.vec_dot_type().expect("paired activation type");
        let mut wbuf = vec![0u32; ty.row_bytes(cols * rows).expect("whole blocks") / 4 + 1];
        let w = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut wbuf)[..ty.row_bytes(cols * rows).unwrap()];
        crate::matmul::quantize(ty, &wf, w).expect("quantize weights");
        // u32 buffers viewed as bytes: aligned for every block type (Q8_K needs 4).
        let abytes = crate::matmul::act_row_bytes(act, cols).expect("whole blocks");
        let (mut qa, mut qg) = (vec![0u32; abytes / 4 + 1], vec![0u32; abytes / 4 + 1]);
        let qa = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut qa)[..abytes];
        let qg = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut qg)[..abytes];
        best.quantize_activations(act, &x, qa).expect("quantize activations");
        generic.quantize_activations(act, &x, qg).expect("quantize activations");
        assert_eq!(qa, qg, "{ty:?}: activations differ between tiers");
        let (mut ob, mut og) = (vec![0.0f32; rows], vec![0.0f32; rows]);
        best.gemv(ty, cols, w, qa, &mut ob).expect("gemv");
        generic.gemv(ty, cols, w, qg, &mut og).expect("gemv");
        for (b, g) in ob.iter().zip(&og) {
            assert!((b - g).abs() <= 1e-4 * (1.0 + g.abs()), "{ty:?}: {b} vs {g}");
        }
    }
}

/// `gemv` of a table entry against `vec_dot` row by row, bit for bit, for row
/// counts around the four-row step (1, 3, 4, 5, 8, 9): a row's value must not
/// depend on which rows share the call (thread splits stay deterministic).
fn check_rows_bitwise<W: Random + Pod, A: Random + Pod>(name: &str, e: &crate::kernels::DotEntry) {
    let mut r = SmallRng::seed_from_u64(0xfeed ^ name.len() as u64);
    for &nb in &[1usize, 2, 3, 6] {
        for rows in [1usize, 3, 4, 5, 8, 9] {
            let w: Vec<W> = random_vec(&mut r, rows * nb);
            let a: Vec<A> = random_vec(&mut r, nb);
            let (wb, ab): (&[u8], &[u8]) = (bytemuck::cast_slice(&w), bytemuck::cast_slice(&a));
            let row_bytes = nb * core::mem::size_of::<W>();
            let mut out = vec![f32::NAN; rows];
            // SAFETY: the caller checked the entry's tier; `w` is `rows` rows of
            // `nb` aligned blocks and `a` holds `nb` aligned blocks.
            unsafe { (e.gemv)(wb, row_bytes, ab, &mut out) };
            for (i, got) in out.iter().enumerate() {
                // SAFETY: as above, one row.
                let one = unsafe { (e.vec_dot)(&wb[i * row_bytes..(i + 1) * row_bytes], ab) };
                assert_eq!(
                    got.to_bits(),
                    one.to_bits(),
                    "{name}: row {i} of {rows} ({nb} blocks): gemv {got} vs vec_dot {one}"
                );
            }
        }
    }
}

fn check_table_rows(k: &Kernels) {
    check_rows_bitwise::<q4_0::BlockQ4_0, q8_0::BlockQ8_0>("q4_0", &k.q4_0);
    check_rows_bitwise::<q4_1::BlockQ4_1, q8_1::BlockQ8_1>("q4_1", &k.q4_1);
    check_rows_bitwise::<q5_0::BlockQ5_0, q8_0::BlockQ8_0>("q5_0", &k.q5_0);
    check_rows_bitwise::<q5_1::BlockQ5_1, q8_1::BlockQ8_1>("q5_1", &k.q5_1);
    check_rows_bitwise::<q8_0::BlockQ8_0, q8_0::BlockQ8_0>("q8_0", &k.q8_0);
    check_rows_bitwise::<iq4_nl::BlockIq4Nl, q8_0::BlockQ8_0>("iq4_nl", &k.iq4_nl);
    check_rows_bitwise::<q2_k::BlockQ2K, q8_k::BlockQ8K>("q2_k", &k.q2_k);
    check_rows_bitwise::<q3_k::BlockQ3K, q8_k::BlockQ8K>("q3_k", &k.q3_k);
    check_rows_bitwise::<q4_k::BlockQ4K, q8_k::BlockQ8K>("q4_k", &k.q4_k);
    check_rows_bitwise::<q5_k::BlockQ5K, q8_k::BlockQ8K>("q5_k", &k.q5_k);
    check_rows_bitwise::<q6_k::BlockQ6K, q8_k::BlockQ8K>("q6_k", &k.q6_k);
}

#[test]
fn neon_gemv_rows_equal_vec_dot_bitwise() {
    require(Tier::Neon);
    check_table_rows(&Kernels::with_tier(Tier::Neon).expect("NEON is available"));
}

#[test]
fn dotprod_gemv_rows_equal_vec_dot_bitwise() {
    require(Tier::Dotprod);
    check_table_rows(&Kernels::with_tier(Tier::Dotprod).expect("dotprod is available"));
}
