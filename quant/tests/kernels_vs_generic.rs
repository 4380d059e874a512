//! Every SIMD kernel tier this CPU can run, against the portable `*_generic`
//! kernels, through the public [`Kernels`] API.
//!
//! Architecture-agnostic: on x86_64 it exercises AVX2 (and AVX-512 where the
//! CPU has it), on aarch64 (natively or under qemu) NEON and dotprod. Tiers
//! the CPU lacks are listed loudly on stderr, and the comparison test fails
//! if no SIMD tier at all could be compared.
//!
//! What is compared, for each format and row length (0, one block, seven
//! blocks, the real row lengths 576, 640, 1536, 2048 where they are whole
//! blocks, and for 32-value blocks 4160 and 8224, 130 and 257 blocks):
//! - `vec_dot` and `gemv` (1, 3, 4, 5, 8 and 9 rows: the four-row path and
//!   its remainders) against the generic table on the same bytes. Bound:
//!   `|simd - generic| <= REL * sum_i |w_i| |a_i|` (the values dequantized,
//!   in f64). Both sides compute the same exact integer block sums and differ
//!   only in the order of f32 scale products and additions, an error of a few
//!   f32 ulps of the magnitude of the terms; `REL = 2e-5` leaves a wide
//!   margin over that while one wrong value among 2048 is caught.
//! - activation quantizers: bytes identical to the generic quantizer (the
//!   SIMD ones reproduce ggml's reference rounding exactly: same scale
//!   arithmetic, `roundf` for Q8_0/Q8_1, round-half-even for Q8_K).
//!
//! Weights come two ways: quantized from random floats by the reference
//! quantizer (realistic), and raw random bytes with finite random f16 scales
//! (every bit pattern of the packed fields). Activations always come from the
//! quantizer, whose int8 lanes lie in -127..=127 (a contract of the SIMD
//! kernels: x86's sign trick needs activations other than -128).

use ember_quant::matmul::{act_row_bytes, dequantize};
use ember_quant::{f16, GgmlType, Kernels, Tier};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Relative bound of a SIMD dot product against the generic one (see the module docs).
const REL: f64 = 2e-5;

/// Every weight format with a dot product, and the tier families the issue
/// requires for it: `true` where it must have a kernel in every SIMD tier
/// (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K), `false` where AVX2/NEON suffice.
const FORMATS: [(GgmlType, bool); 14] = [
    (GgmlType::F32, false),
    (GgmlType::F16, false),
    (GgmlType::BF16, false),
    (GgmlType::Q4_0, true),
    (GgmlType::Q4_1, true),
    (GgmlType::Q5_0, true),
    (GgmlType::Q5_1, false),
    (GgmlType::Q8_0, true),
    (GgmlType::IQ4_NL, false),
    (GgmlType::Q2_K, false),
    (GgmlType::Q3_K, false),
    (GgmlType::Q4_K, true),
    (GgmlType::Q5_K, false),
    (GgmlType::Q6_K, true),
];

/// Formats the issue requires to be SIMD on every tier family (BF16 is not
/// among the formats for SIMD).
fn simd_required(ty: GgmlType) -> bool {
    ty != GgmlType::BF16
}

const ACTIVATIONS: [GgmlType; 3] = [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K];

const ALL_SIMD_TIERS: [Tier; 4] = [Tier::Avx2, Tier::Avx512, Tier::Neon, Tier::Dotprod];

/// SIMD tiers this CPU runs; prints the ones it cannot, loudly.
fn simd_tiers() -> Vec<Tier> {
    let (have, lack): (Vec<Tier>, Vec<Tier>) = ALL_SIMD_TIERS.into_iter().partition(|t| t.is_available());
    let this_arch: Vec<Tier> = lack.into_iter().filter(|t| same_arch(*t)).collect();
    if !this_arch.is_empty() {
        eprintln!("################################################################");
        eprintln!("## kernel tiers NOT TESTED (this CPU lacks them): {this_arch:?}");
        eprintln!("## their kernels were compiled but not run by this test.");
        eprintln!("################################################################");
    }
    eprintln!("kernel tiers compared with generic here: {have:?}");
    have
}

/// Whether `t` is a tier of the architecture this test was built for.
fn same_arch(t: Tier) -> bool {
    match t {
        Tier::Generic => true,
        Tier::Avx2 | Tier::Avx512 => cfg!(target_arch = "x86_64"),
        Tier::Neon | Tier::Dotprod => cfg!(target_arch = "aarch64"),
    }
}

/// Row lengths to test for a format: 0, one block, seven blocks, and the
/// real row lengths that are whole blocks (plus odd lengths for floats, whose
/// SIMD loops have tails).
fn lengths(ty: GgmlType) -> Vec<usize> {
    let bs = ty.block_size();
    let mut v = vec![0, bs, 7 * bs];
    if bs == 1 {
        v.extend([31, 33, 67]);
    }
    v.extend([576, 640, 1536, 2048].into_iter().filter(|n| n % bs == 0));
    if bs == 32 {
        // Longer than one chunk of prepared activations (x86: 64 block pairs),
        // even and odd block counts.
        v.extend([4160, 8224]);
    }
    v
}

/// A zeroed buffer of `n` bytes, aligned to 8 (block and float loads need 2 or 4).
struct Buf(Vec<u64>, usize);
impl Buf {
    fn new(n: usize) -> Buf {
        Buf(vec![0; n.div_ceil(8)], n)
    }
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.0)[..self.1]
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.0)[..self.1]
    }
}

/// Roughly normal values with occasional outliers (as in real activations).
fn random_floats(rng: &mut SmallRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let (u1, u2): (f32, f32) = (rng.gen_range(1e-7..1.0), rng.gen());
            let g = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
            if rng.gen_ratio(1, 50) {
                g * 8.0
            } else {
                g
            }
        })
        .collect()
}

/// A finite random f16 scale of either sign.
fn random_scale(rng: &mut SmallRng) -> [u8; 2] {
    f16::from_f32(rng.gen_range(-1.0f32..1.0) * 0.05).to_le_bytes()
}

/// Byte offsets of the f16 fields of one block of `ty` (raw random bytes get
/// finite scales there).
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 | IQ4_NL => &[0],
        Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2],
        Q2_K => &[80, 82],
        Q3_K => &[108],
        Q6_K => &[208],
        _ => &[],
    }
}

/// `rows` weight rows of `cols` values of `ty`: quantized random floats, or
/// (`raw`) random bytes with random finite scales.
fn weights(rng: &mut SmallRng, ty: GgmlType, rows: usize, cols: usize, raw: bool) -> Buf {
    let row_bytes = ty.row_bytes(cols).unwrap();
    let mut buf = Buf::new(row_bytes * rows);
    let x = random_floats(rng, rows * cols);
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            ember_quant::matmul::quantize(ty, &x, buf.bytes_mut()).unwrap();
        }
        _ if raw => {
            let b = buf.bytes_mut();
            rng.fill(b);
            for block in b.chunks_exact_mut(ty.type_size()) {
                for &off in f16_fields(ty) {
                    block[off..off + 2].copy_from_slice(&random_scale(rng));
                }
            }
        }
        _ => {
            ember_quant::matmul::quantize(ty, &x, buf.bytes_mut()).unwrap();
        }
    }
    buf
}

/// One activation row quantized by the generic quantizer, with its floats.
fn activation(rng: &mut SmallRng, act: GgmlType, cols: usize) -> Buf {
    let x = random_floats(rng, cols);
    let mut buf = Buf::new(act_row_bytes(act, cols).unwrap());
    Kernels::generic().quantize_activations(act, &x, buf.bytes_mut()).unwrap();
    buf
}

/// `sum_i |w_i| |a_i|` of one weight row and the activation, in f64.
fn abs_dot(ty: GgmlType, act: GgmlType, cols: usize, w: &[u8], a: &[u8]) -> f64 {
    let mut wf = vec![0.0f32; cols];
    let mut af = vec![0.0f32; cols];
    dequantize(ty, w, &mut wf).unwrap();
    dequantize(act, a, &mut af).unwrap();
    wf.iter().zip(&af).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum()
}

fn check_close(what: &str, got: f32, want: f32, scale: f64) {
    let tol = REL * scale;
    let err = (got as f64 - want as f64).abs();
    assert!(
        err <= tol && got.is_finite() == want.is_finite(),
        "{what}: simd {got} vs generic {want}: |diff| {err:e} > bound {tol:e} (= {REL:e} * sum|w||a| {scale:e})"
    );
}

/// `vec_dot` and `gemv` of every format, every length, every available SIMD
/// tier, against the generic table on the same bytes.
#[test]
fn dot_and_gemv_match_generic_on_every_available_tier() {
    let tiers = simd_tiers();
    assert!(
        !tiers.is_empty() || !(cfg!(target_arch = "x86_64") || cfg!(target_arch = "aarch64")),
        "no SIMD kernel tier is available on this CPU: nothing was compared with generic"
    );
    let generic = Kernels::generic();
    let mut rng = SmallRng::seed_from_u64(0x5eed_0001);
    let mut compared = 0usize;
    let mut worst = 0.0f64;
    for tier in tiers {
        let k = Kernels::with_tier(tier).unwrap();
        for (ty, _) in FORMATS {
            let act = ty.vec_dot_type().unwrap();
            for cols in lengths(ty) {
                for raw in [false, true] {
                    for rows in [1usize, 3, 4, 5, 8, 9] {
                        let w = weights(&mut rng, ty, rows, cols, raw);
                        let a = activation(&mut rng, act, cols);
                        let rb = ty.row_bytes(cols).unwrap();
                        let mut out_s = vec![f32::NAN; rows];
                        let mut out_g = vec![f32::NAN; rows];
                        k.gemv(ty, cols, w.bytes(), a.bytes(), &mut out_s).unwrap();
                        generic.gemv(ty, cols, w.bytes(), a.bytes(), &mut out_g).unwrap();
                        for r in 0..rows {
                            let wr = &w.bytes()[r * rb..(r + 1) * rb];
                            let scale = abs_dot(ty, act, cols, wr, a.bytes());
                            let what = format!("{tier} {ty} cols={cols} raw={raw} rows={rows} row {r}");
                            let want = generic.vec_dot(ty, cols, wr, a.bytes()).unwrap();
                            assert_eq!(out_g[r].to_bits(), want.to_bits(), "{what}: generic gemv != generic vec_dot");
                            check_close(&format!("{what} gemv"), out_s[r], want, scale);
                            let one = k.vec_dot(ty, cols, wr, a.bytes()).unwrap();
                            check_close(&format!("{what} vec_dot"), one, want, scale);
                            if scale > 0.0 {
                                worst = worst.max((one as f64 - want as f64).abs() / scale);
                            }
                            if cols == 0 {
                                assert_eq!(one, 0.0, "{what}: empty dot");
                            }
                            compared += 2;
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "compared {compared} SIMD dot products with generic; worst |diff| / sum|w||a| = {worst:e} (bound {REL:e})"
    );
}

/// Inputs that stress the quantizers' rounding: random rows, exact halves
/// (`x * (1/d)` lands on k + 0.5), all-zero blocks, a negative extreme, and
/// both signs of the extreme in one block.
fn quantizer_inputs(rng: &mut SmallRng, act: GgmlType) -> Vec<Vec<f32>> {
    let bs = act.block_size();
    let mut v: Vec<Vec<f32>> = [bs, 7 * bs, 2048].iter().map(|&n| random_floats(rng, n)).collect();
    v.push(Vec::new());
    // amax = 127 (Q8_0/Q8_1: d = 1) or max = -127 (Q8_K: iscale = 1), then halves.
    let mut halves = vec![0.0f32; 2 * bs];
    for b in halves.chunks_exact_mut(bs) {
        b[0] = -127.0;
        for (j, x) in b.iter_mut().enumerate().skip(1) {
            *x = (j as f32 % 120.0) - 60.5;
        }
    }
    v.push(halves);
    let mut zeros = random_floats(rng, 3 * bs);
    zeros[bs..2 * bs].fill(0.0);
    v.push(zeros);
    let mut signs = random_floats(rng, bs);
    signs[3] = 9.0;
    signs[bs - 1] = -9.0;
    v.push(signs);
    let mut signs2 = random_floats(rng, bs);
    signs2[1] = -9.0;
    signs2[bs / 2 + 1] = 9.0;
    v.push(signs2);
    v
}

/// Activation quantizers of every available SIMD tier produce the generic bytes.
#[test]
fn quantizers_match_generic_bytes_on_every_available_tier() {
    let tiers = simd_tiers();
    let generic = Kernels::generic();
    let mut rng = SmallRng::seed_from_u64(0x5eed_0002);
    for tier in tiers {
        let k = Kernels::with_tier(tier).unwrap();
        for act in ACTIVATIONS {
            for x in quantizer_inputs(&mut rng, act) {
                let n = act_row_bytes(act, x.len()).unwrap();
                let (mut s, mut g) = (Buf::new(n), Buf::new(n));
                s.bytes_mut().fill(0xa5);
                k.quantize_activations(act, &x, s.bytes_mut()).unwrap();
                generic.quantize_activations(act, &x, g.bytes_mut()).unwrap();
                if s.bytes() != g.bytes() {
                    let at = s.bytes().iter().zip(g.bytes()).position(|(a, b)| a != b).unwrap();
                    let bsz = act.type_size();
                    panic!(
                        "{tier} quantize {act} of {} values: first differing byte {at} (block {}, offset {}): simd {:?} generic {:?}",
                        x.len(),
                        at / bsz,
                        at % bsz,
                        &s.bytes()[at / bsz * bsz..(at / bsz + 1) * bsz],
                        &g.bytes()[at / bsz * bsz..(at / bsz + 1) * bsz],
                    );
                }
            }
        }
    }
}

/// The tier family a table entry is expected to reach under `best`: the best
/// tier itself for the formats that must have every ISA, otherwise any SIMD
/// tier of the same architecture.
fn expect_entry(ty_every_isa: bool, best: Tier, got: Tier, what: &str) {
    if best == Tier::Generic {
        assert_eq!(got, Tier::Generic, "{what}");
        return;
    }
    assert!(got != Tier::Generic, "{what}: silently falls back to generic under {best}");
    assert!(same_arch(got) && got <= best, "{what}: tier {got} under a {best} table");
    if ty_every_isa {
        assert_eq!(got, best, "{what}: the issue requires a {best} kernel");
    }
}

/// No supported format silently falls back to generic: under the best table
/// (and under every lower available tier), each format the issue lists has a
/// SIMD `vec_dot` and `gemv` of the right tier, and so have the quantizers.
#[test]
fn no_silent_fallback_to_generic() {
    let mut tiers = simd_tiers();
    tiers.push(Kernels::best().tier());
    for top in tiers {
        let k = if top == Kernels::best().tier() { Kernels::best() } else { Kernels::with_tier(top).unwrap() };
        assert_eq!(k.tier(), top, "table tier");
        for (ty, every_isa) in FORMATS {
            let e = k.dot(ty).unwrap();
            if !simd_required(ty) {
                assert!(e.gemv_tier <= top && same_arch(e.gemv_tier), "{ty}: tier {} under {top}", e.gemv_tier);
                continue;
            }
            expect_entry(every_isa, top, e.tier, &format!("{ty} vec_dot"));
            expect_entry(every_isa, top, e.gemv_tier, &format!("{ty} gemv"));
        }
        for act in ACTIVATIONS {
            let q = k.quantizer(act).unwrap();
            // On aarch64 a quantizer has nothing to gain from SDOT: its NEON
            // version serves the dotprod tier too.
            let every_isa = top != Tier::Dotprod;
            expect_entry(every_isa, top, q.tier, &format!("quantize {act}"));
        }
        eprintln!("{}", k.describe());
    }
}

/// `with_tier(Generic)` is generic in every entry.
#[test]
fn generic_tier_is_generic_everywhere() {
    let k = Kernels::with_tier(Tier::Generic).unwrap();
    assert_eq!(k.tier(), Tier::Generic);
    for (ty, _) in FORMATS {
        let e = k.dot(ty).unwrap();
        assert_eq!((e.tier, e.gemv_tier), (Tier::Generic, Tier::Generic), "{ty}");
    }
    for act in ACTIVATIONS {
        assert_eq!(k.quantizer(act).unwrap().tier, Tier::Generic, "quantize {act}");
    }
}

/// `EMBER_KERNELS=generic` forces the generic table through `Kernels::detect`
/// (the only reader of the variable; the other tests use `best`/`with_tier`).
#[test]
fn ember_kernels_env_forces_generic() {
    // SAFETY-free in edition 2021; no other test in this binary reads the variable.
    std::env::set_var("EMBER_KERNELS", "generic");
    let k = Kernels::detect().unwrap();
    std::env::remove_var("EMBER_KERNELS");
    assert_eq!(k.tier(), Tier::Generic);
    for (ty, _) in FORMATS {
        assert_eq!(k.dot(ty).unwrap().gemv_tier, Tier::Generic, "{ty}");
    }
}

/// AVX-512 detection agrees with the kernel's flags in /proc/cpuinfo. On a CPU
/// without AVX-512 (like the machine these kernels were written on) this says
/// loudly that the AVX-512 kernels were compiled but not run.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn avx512_availability_matches_proc_cpuinfo() {
    let info = std::fs::read_to_string("/proc/cpuinfo").expect("read /proc/cpuinfo");
    let flags: Vec<&str> = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .expect("a flags line in /proc/cpuinfo")
        .split_whitespace()
        .collect();
    let has = |f: &str| flags.contains(&f);
    let cpu_avx2 = has("avx2") && has("fma") && has("f16c");
    let cpu_avx512 = cpu_avx2 && has("avx512f") && has("avx512bw") && has("avx512vl");
    assert_eq!(Tier::Avx2.is_available(), cpu_avx2, "AVX2 detection vs /proc/cpuinfo");
    assert_eq!(Tier::Avx512.is_available(), cpu_avx512, "AVX-512 detection vs /proc/cpuinfo");
    if !cpu_avx512 {
        eprintln!("################################################################");
        eprintln!("## AVX-512 NOT AVAILABLE on this CPU: the AVX-512 kernels were");
        eprintln!("## compiled but NOT RUN or compared with generic here");
        eprintln!("## (scripts/test-x86-avx512.sh runs them under Bochs emulation).");
        eprintln!("################################################################");
    } else {
        eprintln!("AVX-512 available (vnni: {}): AVX-512 kernels compared above", has("avx512_vnni"));
    }
}
