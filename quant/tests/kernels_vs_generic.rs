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
//! - `vec_dot` and `gemv` (1, 3, 4, 5, 8, 9, 37 and 70 rows: the four-row
//!   path and its remainders, and rows read as interleaved streams of one
//!   to eight rows per group with left-over groups and rows) against the generic table on the same bytes. Bound:
//!   `|simd - generic| <= REL * sum_i |w_i| |a_i|` (the values dequantized,
//!   in f64). Both sides compute the same exact integer block sums and differ
//!   only in the order of f32 scale products and additions, an error of a few
//!   f32 ulps of the magnitude of the terms; `REL = 2e-5` leaves a wide
//!   margin over that while one wrong value among 2048 is caught.
//! - activation quantizers against the generic (reference) quantizer. Q8_K:
//!   bytes identical. Q8_0/Q8_1: the scale bytes identical; a quant may
//!   differ by one, and only where the reference's scaled value `x / d` lies
//!   within 1e-4 of a half-integer; Q8_1's `s` is `f16(d * sum(q))` of its
//!   own quants. Why: SIMD quantizers may follow ggml's SIMD arithmetic
//!   (`x * (127 / amax)`, round half to even, as llama.cpp runs on x86)
//!   instead of the reference's (`x * (1 / d)`, round half away from zero);
//!   the two scaled values differ by a few ulps, so they round differently
//!   only at (or next to) a tie.
//! - on x86_64, the AVX2 kernels of the formats llama.cpp's reference outputs
//!   use are bit-identical to scalar statements of ggml's x86 code (module
//!   `ggml_x86`): same integer lanes, same fused multiply-adds, same
//!   reduction order. ember's end-to-end tests compare greedy token ids with
//!   llama.cpp's, which a last-bit difference can change.
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
                    for rows in [1usize, 3, 4, 5, 8, 9, 37, 70] {
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

/// Checks a SIMD quantizer's output `s` against the generic one's `g` for
/// input `x` (see the module docs for the bound and why).
fn check_quantized(what: &str, act: GgmlType, x: &[f32], s: &[u8], g: &[u8]) {
    if s == g {
        return;
    }
    assert!(act != GgmlType::Q8_K, "{what}: Q8_K must be byte-identical to the reference");
    let bsz = act.type_size();
    let qoff = if act == GgmlType::Q8_1 { 4 } else { 2 };
    for (b, ((sb, gb), xb)) in s.chunks_exact(bsz).zip(g.chunks_exact(bsz)).zip(x.chunks_exact(32)).enumerate() {
        assert_eq!(sb[..2], gb[..2], "{what}: block {b}: scale differs");
        let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (j, (&qs, &qg)) in sb[qoff..].iter().zip(&gb[qoff..]).enumerate() {
            let (qs, qg) = (qs as i8 as i32, qg as i8 as i32);
            sum += qs;
            if qs != qg {
                let v = (xb[j] * id).abs();
                let tie_gap = (v - v.trunc() - 0.5).abs();
                assert!(
                    (qs - qg).abs() == 1 && tie_gap < 1e-4,
                    "{what}: block {b} value {j}: simd {qs} vs generic {qg} for x/d = {} (not next to a tie)",
                    xb[j] * id
                );
            }
        }
        if act == GgmlType::Q8_1 {
            let want = f16::from_f32(d * sum as f32).to_le_bytes();
            assert_eq!(sb[2..4], want, "{what}: block {b}: s is not f16(d * sum(q))");
        }
    }
}

/// Activation quantizers of every available SIMD tier against the generic
/// ones: Q8_K byte for byte, Q8_0/Q8_1 within the bound of [`check_quantized`].
#[test]
fn quantizers_match_generic_on_every_available_tier() {
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
                check_quantized(&format!("{tier} quantize {act} of {} values", x.len()), act, &x, s.bytes(), g.bytes());
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
    let mut tables: Vec<(Tier, Kernels)> = simd_tiers()
        .into_iter()
        .map(|t| {
            let k = Kernels::with_tier(t).unwrap();
            assert_eq!(k.tier(), t, "table tier");
            (t, k)
        })
        .collect();
    // The default table: its tier's kernels, except that on AVX-512 CPUs it is
    // the AVX2 table with a few AVX-512 gemms (`Kernels::best`).
    let best = Kernels::best();
    let top = if best.tier() == Tier::Avx512 { Tier::Avx2 } else { best.tier() };
    tables.push((top, best));
    for (top, k) in tables {
        for (ty, every_isa) in FORMATS {
            let e = k.dot(ty).unwrap();
            // `gemv` is the hot path and must be the top tier's; the one-row
            // `vec_dot` may be a lower SIMD tier's kernel (x86's AVX-512
            // kernels hold two rows per vector, so one row stays on AVX2),
            // but never generic.
            expect_entry(false, top, e.tier, &format!("{ty} vec_dot"));
            if top == k.tier() {
                expect_entry(every_isa, top, e.gemv_tier, &format!("{ty} gemv"));
            } else {
                // The default table on AVX-512: AVX2 gemvs, or AVX-512 ones where measured faster.
                expect_entry(false, k.tier(), e.gemv_tier, &format!("{ty} gemv"));
                assert!(!every_isa || e.gemv_tier >= top, "{ty} gemv: tier {} in the default table", e.gemv_tier);
            }
            // `gemm` may be a lower SIMD tier's kernel of the same bits (on
            // AVX-512, Q4_1's AVX2 gemm shares each weight load between two
            // activation rows), but never generic.
            expect_entry(false, k.tier(), e.gemm_tier, &format!("{ty} gemm"));
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
/// without AVX-512 (like the Zen 3 these kernels were written on) this says
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

/// ggml's x86 kernels (`ggml-cpu/arch/x86/quants.c`, the AVX2 code, which
/// llama.cpp's AVX-512 builds also run for these formats) stated lane by
/// lane in scalar Rust: the reference for the bit-exact test below.
#[cfg(target_arch = "x86_64")]
mod ggml_x86 {
    use ember_quant::{f16, q4_0, q4_1, q4_k, q5_0, q5_1, q6_k, q8_0, q8_1, q8_k};

    /// `hsum_float_8`: lanes i + i+4, then (0+2) + (1+3).
    pub fn hsum8(a: [f32; 8]) -> f32 {
        let r = [a[4] + a[0], a[5] + a[1], a[6] + a[2], a[7] + a[3]];
        (r[0] + r[2]) + (r[1] + r[3])
    }

    /// One 32-value block in ggml's lane layout: `acc_l = fma(d, sum of
    /// q[4l..4l+4] * a[4l..4l+4], acc_l)`.
    fn block(acc: &mut [f32; 8], d: f32, q: &[i32; 32], a: &[i8; 32]) {
        for (l, v) in acc.iter_mut().enumerate() {
            let s: i32 = (0..4).map(|k| q[4 * l + k] * a[4 * l + k] as i32).sum();
            *v = d.mul_add(s as f32, *v);
        }
    }

    fn nibbles(qs: &[u8; 16]) -> [i32; 32] {
        core::array::from_fn(|j| if j < 16 { (qs[j] & 0x0f) as i32 } else { (qs[j - 16] >> 4) as i32 })
    }

    fn fifth_bits(qh: &[u8; 4]) -> [i32; 32] {
        let h = u32::from_le_bytes(*qh);
        core::array::from_fn(|j| (((h >> j) & 1) << 4) as i32)
    }

    pub fn q4_0(w: &[q4_0::BlockQ4_0], a: &[q8_0::BlockQ8_0]) -> f32 {
        let mut acc = [0.0f32; 8];
        for (x, y) in w.iter().zip(a) {
            let q = nibbles(&x.qs).map(|v| v - 8);
            block(&mut acc, x.d.to_f32() * y.d.to_f32(), &q, &y.qs);
        }
        hsum8(acc)
    }

    pub fn q5_0(w: &[q5_0::BlockQ5_0], a: &[q8_0::BlockQ8_0]) -> f32 {
        let mut acc = [0.0f32; 8];
        for (x, y) in w.iter().zip(a) {
            let (n, h) = (nibbles(&x.qs), fifth_bits(&x.qh));
            let q: [i32; 32] = core::array::from_fn(|j| (n[j] | h[j]) - 16);
            block(&mut acc, x.d.to_f32() * y.d.to_f32(), &q, &y.qs);
        }
        hsum8(acc)
    }

    /// `summs = fma(m, s, summs)`: GCC contracts ggml's `summs += m * s`.
    pub fn q4_1(w: &[q4_1::BlockQ4_1], a: &[q8_1::BlockQ8_1]) -> f32 {
        let (mut acc, mut summs) = ([0.0f32; 8], 0.0f32);
        for (x, y) in w.iter().zip(a) {
            summs = x.m.to_f32().mul_add(y.s.to_f32(), summs);
            block(&mut acc, x.d.to_f32() * y.d.to_f32(), &nibbles(&x.qs), &y.qs);
        }
        hsum8(acc) + summs
    }

    pub fn q5_1(w: &[q5_1::BlockQ5_1], a: &[q8_1::BlockQ8_1]) -> f32 {
        let (mut acc, mut summs) = ([0.0f32; 8], 0.0f32);
        for (x, y) in w.iter().zip(a) {
            summs = x.m.to_f32().mul_add(y.s.to_f32(), summs);
            let (n, h) = (nibbles(&x.qs), fifth_bits(&x.qh));
            let q: [i32; 32] = core::array::from_fn(|j| n[j] | h[j]);
            block(&mut acc, x.d.to_f32() * y.d.to_f32(), &q, &y.qs);
        }
        hsum8(acc) + summs
    }

    pub fn q8_0(w: &[q8_0::BlockQ8_0], a: &[q8_0::BlockQ8_0]) -> f32 {
        let mut acc = [0.0f32; 8];
        for (x, y) in w.iter().zip(a) {
            block(&mut acc, x.d.to_f32() * y.d.to_f32(), &x.qs.map(|v| v as i32), &y.qs);
        }
        hsum8(acc)
    }

    /// The eight 6-bit scales and minimums of a Q4_K/Q5_K block (`get_scale_min_k4`).
    fn scale_min_k4(s: &[u8; 12]) -> ([i32; 8], [i32; 8]) {
        let mut sc = [0; 8];
        let mut m = [0; 8];
        for j in 0..8 {
            if j < 4 {
                sc[j] = (s[j] & 63) as i32;
                m[j] = (s[j + 4] & 63) as i32;
            } else {
                sc[j] = ((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4)) as i32;
                m[j] = ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as i32;
            }
        }
        (sc, m)
    }

    /// `ggml_vec_dot_q4_K_q8_K`: per block, lane l of `sumi` is the sum over
    /// the four 64-value steps j of `sc * sum(q * a)` over values 4l..4l+4 of
    /// each 32-value half; `acc = fma(d, sumi, acc)`; the minimums go to a
    /// 4-lane `acc_m = fma(-dmin, mins · paired bsums, acc_m)`; the result is
    /// `hsum_float_8(acc) + ((m0 + m2) + (m1 + m3))`.
    pub fn q4_k(w: &[q4_k::BlockQ4K], a: &[q8_k::BlockQ8K]) -> f32 {
        let (mut acc, mut acc_m) = ([0.0f32; 8], [0.0f32; 4]);
        for (x, y) in w.iter().zip(a) {
            let d = y.d * x.d.to_f32();
            let dmin = -y.d * x.dmin.to_f32();
            let (sc, m) = scale_min_k4(&x.scales);
            let q8s: [i32; 8] = core::array::from_fn(|g| y.bsums[2 * g] as i32 + y.bsums[2 * g + 1] as i32);
            for (l, v) in acc_m.iter_mut().enumerate() {
                let prod = m[2 * l] * q8s[2 * l] + m[2 * l + 1] * q8s[2 * l + 1];
                *v = dmin.mul_add(prod as f32, *v);
            }
            let mut sumi = [0i32; 8];
            for j in 0..4 {
                let q4 = &x.qs[32 * j..32 * j + 32];
                for (l, s) in sumi.iter_mut().enumerate() {
                    let lo: i32 = (0..4).map(|k| (q4[4 * l + k] & 0x0f) as i32 * y.qs[64 * j + 4 * l + k] as i32).sum();
                    let hi: i32 =
                        (0..4).map(|k| (q4[4 * l + k] >> 4) as i32 * y.qs[64 * j + 32 + 4 * l + k] as i32).sum();
                    *s += sc[2 * j] * lo + sc[2 * j + 1] * hi;
                }
            }
            for (v, s) in acc.iter_mut().zip(sumi) {
                *v = d.mul_add(s as f32, *v);
            }
        }
        hsum8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]))
    }

    /// `ggml_vec_dot_q6_K_q8_K` (llama.cpp 0c1e570): lane l of `sumi` sums,
    /// over the eight 32-value vectors of a block, `sc * sum(q * a)` (q the
    /// unsigned 6-bit value) over values 4l..4l+4 of the vector (lanes 0..4
    /// take the scale of its first 16 values, lanes 4..8 of the next 16),
    /// minus `32 * (bsums[2l] sc[2l] + bsums[2l+1] sc[2l+1])`;
    /// `acc = fma(d, sumi, acc)`.
    pub fn q6_k(w: &[q6_k::BlockQ6K], a: &[q8_k::BlockQ8K]) -> f32 {
        let mut acc = [0.0f32; 8];
        for (x, y) in w.iter().zip(a) {
            let d = y.d * x.d.to_f32();
            let mut sumi = [0i32; 8];
            for h in 0..2 {
                let (ql, qh) = (&x.ql[64 * h..64 * h + 64], &x.qh[32 * h..32 * h + 32]);
                for k in 0..4 {
                    let q = |j: usize| -> i32 {
                        let lo = if k % 2 == 0 { ql[j] & 0x0f } else { ql[j + 32] & 0x0f };
                        let lo = if k < 2 {
                            lo
                        } else if k % 2 == 0 {
                            ql[j] >> 4
                        } else {
                            ql[j + 32] >> 4
                        };
                        (lo | (((qh[j] >> (2 * k)) & 3) << 4)) as i32 - 32
                    };
                    for (l, s) in sumi.iter_mut().enumerate() {
                        let sc = x.scales[8 * h + 2 * k + l / 4] as i32;
                        let base = 128 * h + 32 * k;
                        let dot: i32 = (0..4).map(|m| (q(4 * l + m) + 32) * y.qs[base + 4 * l + m] as i32).sum();
                        *s += sc * dot;
                    }
                }
            }
            // q8sclsub: lane l loses 32 * (bsums[2l] sc[2l] + bsums[2l+1] sc[2l+1]).
            for (l, s) in sumi.iter_mut().enumerate() {
                let sub = y.bsums[2 * l] as i32 * x.scales[2 * l] as i32
                    + y.bsums[2 * l + 1] as i32 * x.scales[2 * l + 1] as i32;
                *s -= 32 * sub;
            }
            for (v, s) in acc.iter_mut().zip(sumi) {
                *v = d.mul_add(s as f32, *v);
            }
        }
        hsum8(acc)
    }

    /// `ggml_gemv_q4_0_8x8_q8_0` / `ggml_gemm_q4_0_8x8_q8_0` (llama.cpp's
    /// repacked Q4_0, `arch/x86/repack.cpp`), per output: `acc = fma(f32(isum),
    /// d_w * d_a, acc)` block after block, `isum` the block's exact integer dot.
    pub fn q4_0_repacked(w: &[q4_0::BlockQ4_0], a: &[q8_0::BlockQ8_0]) -> f32 {
        let mut acc = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            let q = nibbles(&x.qs);
            let isum: i32 = (0..32).map(|j| (q[j] - 8) * y.qs[j] as i32).sum();
            acc = (isum as f32).mul_add(x.d.to_f32() * y.d.to_f32(), acc);
        }
        acc
    }

    /// `ggml_gemv_q4_K_8x8_q8_K` (`per_64 = false`: one step per super-block)
    /// and `ggml_gemm_q4_K_8x8_q8_K` (`per_64 = true`: one step per 64
    /// values), per output: `acc = fma(f32(sum sc_j * dot_j), d_w * d_a, acc)`,
    /// `acc_min = fma(f32(sum m_j * bsum_j), dmin_w * d_a, acc_min)`, result
    /// `acc - acc_min`.
    pub fn q4_k_repacked(w: &[q4_k::BlockQ4K], a: &[q8_k::BlockQ8K], per_64: bool) -> f32 {
        let (mut acc, mut acc_min) = (0.0f32, 0.0f32);
        for (x, y) in w.iter().zip(a) {
            let (sc, m) = scale_min_k4(&x.scales);
            let d = x.d.to_f32() * y.d;
            let dmin = x.dmin.to_f32() * y.d;
            let dot = |j: usize| -> i32 {
                let q4 = &x.qs[32 * (j / 2)..32 * (j / 2) + 32];
                (0..32)
                    .map(|k| {
                        (if j.is_multiple_of(2) { q4[k] & 0x0f } else { q4[k] >> 4 }) as i32 * y.qs[32 * j + k] as i32
                    })
                    .sum()
            };
            let bsum = |j: usize| y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32;
            let groups: &[&[usize]] =
                if per_64 { &[&[0, 1], &[2, 3], &[4, 5], &[6, 7]] } else { &[&[0, 1, 2, 3, 4, 5, 6, 7]] };
            for g in groups {
                let isum: i32 = g.iter().map(|&j| sc[j] * dot(j)).sum();
                let imin: i32 = g.iter().map(|&j| m[j] * bsum(j)).sum();
                acc = (isum as f32).mul_add(d, acc);
                acc_min = (imin as f32).mul_add(dmin, acc_min);
            }
        }
        acc - acc_min
    }

    /// `quantize_row_q8_0/q8_1` (AVX2): `d = amax / 127`, `id = 127 / amax`,
    /// `q = round_half_even(x * id)`.
    fn q8_block(x: &[f32]) -> (f32, [i8; 32]) {
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        (d, core::array::from_fn(|j| (x[j] * id).round_ties_even() as i32 as i8))
    }

    pub fn quantize_q8_0(x: &[f32]) -> Vec<q8_0::BlockQ8_0> {
        x.chunks_exact(32)
            .map(|xb| {
                let (d, qs) = q8_block(xb);
                q8_0::BlockQ8_0 { d: f16::from_f32(d), qs }
            })
            .collect()
    }

    /// As Q8_0, plus `s = f16(d * sum(q))`.
    pub fn quantize_q8_1(x: &[f32]) -> Vec<q8_1::BlockQ8_1> {
        x.chunks_exact(32)
            .map(|xb| {
                let (d, qs) = q8_block(xb);
                let sum: i32 = qs.iter().map(|&v| v as i32).sum();
                q8_1::BlockQ8_1 { d: f16::from_f32(d), s: f16::from_f32(d * sum as f32), qs }
            })
            .collect()
    }
}

/// The AVX2 kernels of the formats in llama.cpp's reference outputs (Q4_0,
/// Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K) and the Q8_0/Q8_1 quantizers (AVX2 and,
/// where the CPU has it, AVX-512) are bit-identical to ggml's x86 code.
#[cfg(target_arch = "x86_64")]
#[test]
fn x86_kernels_reproduce_ggml_float_order() {
    use ember_quant::{q4_0, q4_1, q4_k, q5_0, q5_1, q6_k, q8_0, q8_1, q8_k};
    assert!(Tier::Avx2.is_available(), "this x86 CPU has no AVX2: the AVX2 kernels could not be checked against ggml");
    let mut rng = SmallRng::seed_from_u64(0x5eed_0003);
    type Model = fn(&[u8], &[u8]) -> f32;
    fn m<W: bytemuck::Pod, A: bytemuck::Pod>(f: fn(&[W], &[A]) -> f32, w: &[u8], a: &[u8]) -> f32 {
        f(bytemuck::cast_slice(w), bytemuck::cast_slice(a))
    }
    let models: [(GgmlType, Model); 7] = [
        (GgmlType::Q4_0, |w, a| m::<q4_0::BlockQ4_0, q8_0::BlockQ8_0>(ggml_x86::q4_0, w, a)),
        (GgmlType::Q4_1, |w, a| m::<q4_1::BlockQ4_1, q8_1::BlockQ8_1>(ggml_x86::q4_1, w, a)),
        (GgmlType::Q5_0, |w, a| m::<q5_0::BlockQ5_0, q8_0::BlockQ8_0>(ggml_x86::q5_0, w, a)),
        (GgmlType::Q5_1, |w, a| m::<q5_1::BlockQ5_1, q8_1::BlockQ8_1>(ggml_x86::q5_1, w, a)),
        (GgmlType::Q8_0, |w, a| m::<q8_0::BlockQ8_0, q8_0::BlockQ8_0>(ggml_x86::q8_0, w, a)),
        (GgmlType::Q4_K, |w, a| m::<q4_k::BlockQ4K, q8_k::BlockQ8K>(ggml_x86::q4_k, w, a)),
        (GgmlType::Q6_K, |w, a| m::<q6_k::BlockQ6K, q8_k::BlockQ8K>(ggml_x86::q6_k, w, a)),
    ];
    let mut checked = 0;
    // gemv (1, 3, 4, 5, 9, 13, 37, 70 rows: tails of every rows-per-pass
    // count up to 8, 8 + 4 + 1, and interleaved streams of groups with
    // left-over groups and rows) and vec_dot, on every x86 tier this CPU has.
    for tier in [Tier::Avx2, Tier::Avx512].into_iter().filter(|t| t.is_available()) {
        let k = Kernels::with_tier(tier).unwrap();
        for (ty, model) in models {
            let act = ty.vec_dot_type().unwrap();
            for cols in lengths(ty) {
                for raw in [false, true] {
                    for rows in [1usize, 3, 4, 5, 9, 13, 37, 70] {
                        let w = weights(&mut rng, ty, rows, cols, raw);
                        let a = activation(&mut rng, act, cols);
                        let rb = ty.row_bytes(cols).unwrap();
                        let mut out = vec![f32::NAN; rows];
                        k.gemv(ty, cols, w.bytes(), a.bytes(), &mut out).unwrap();
                        for (r, got) in out.iter().enumerate() {
                            let wr = &w.bytes()[r * rb..(r + 1) * rb];
                            let want = model(wr, a.bytes());
                            // llama.cpp repacks Q4_0 and Q4_K: its matrix products
                            // run the repacked kernels' order, not vec_dot's.
                            let want_gemv = match ty {
                                GgmlType::Q4_0 => {
                                    m::<q4_0::BlockQ4_0, q8_0::BlockQ8_0>(ggml_x86::q4_0_repacked, wr, a.bytes())
                                }
                                GgmlType::Q4_K => m::<q4_k::BlockQ4K, q8_k::BlockQ8K>(
                                    |w, a| ggml_x86::q4_k_repacked(w, a, false),
                                    wr,
                                    a.bytes(),
                                ),
                                _ => want,
                            };
                            let one = k.vec_dot(ty, cols, wr, a.bytes()).unwrap();
                            let what = format!("{tier} {ty} cols={cols} raw={raw} rows={rows} row {r}");
                            assert_eq!(got.to_bits(), want_gemv.to_bits(), "{what}: gemv {got} vs ggml {want_gemv}");
                            assert_eq!(one.to_bits(), want.to_bits(), "{what}: vec_dot {one} vs ggml {want}");
                            checked += 2;
                        }
                    }
                }
            }
        }
    }
    // The repacked formats' gemm, on every x86 tier this CPU has: Q4_0 in
    // the gemv order for every activation row; Q4_K in the gemm order for
    // the first m - m % 4 activation rows and the gemv order for the rest.
    for tier in [Tier::Avx2, Tier::Avx512].into_iter().filter(|t| t.is_available()) {
        let k = Kernels::with_tier(tier).unwrap();
        for ty in [GgmlType::Q4_0, GgmlType::Q4_K] {
            let act = ty.vec_dot_type().unwrap();
            for cols in lengths(ty).into_iter().filter(|&c| c > 0) {
                for (rows, m_act) in
                    [(1usize, 1usize), (8, 4), (9, 5), (16, 7), (5, 8), (13, 3), (24, 9), (17, 2), (33, 6)]
                {
                    let raw = rows % 2 == 1;
                    let w = weights(&mut rng, ty, rows, cols, raw);
                    let acts: Vec<Buf> = (0..m_act).map(|_| activation(&mut rng, act, cols)).collect();
                    let ab = act_row_bytes(act, cols).unwrap();
                    let mut all = Buf::new(ab * m_act);
                    for (i, a) in acts.iter().enumerate() {
                        all.bytes_mut()[i * ab..(i + 1) * ab].copy_from_slice(a.bytes());
                    }
                    let stride = rows + 1;
                    let mut out = vec![f32::NAN; (m_act - 1) * stride + rows];
                    k.gemm_strided(ty, cols, w.bytes(), all.bytes(), &mut out, stride).unwrap();
                    let rb = ty.row_bytes(cols).unwrap();
                    for (i, a) in acts.iter().enumerate() {
                        let per_64 = i < m_act - m_act % 4;
                        for r in 0..rows {
                            let wr = &w.bytes()[r * rb..(r + 1) * rb];
                            let want = match ty {
                                GgmlType::Q4_0 => {
                                    m::<q4_0::BlockQ4_0, q8_0::BlockQ8_0>(ggml_x86::q4_0_repacked, wr, a.bytes())
                                }
                                _ if per_64 => m::<q4_k::BlockQ4K, q8_k::BlockQ8K>(
                                    |w, a| ggml_x86::q4_k_repacked(w, a, true),
                                    wr,
                                    a.bytes(),
                                ),
                                _ => m::<q4_k::BlockQ4K, q8_k::BlockQ8K>(
                                    |w, a| ggml_x86::q4_k_repacked(w, a, false),
                                    wr,
                                    a.bytes(),
                                ),
                            };
                            let got = out[i * stride + r];
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "{tier} {ty} gemm cols={cols} rows={rows} m={m_act} ({i},{r}): {got} vs ggml {want}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    // The quantizers, on every x86 tier this CPU has.
    for tier in [Tier::Avx2, Tier::Avx512].into_iter().filter(|t| t.is_available()) {
        let k = Kernels::with_tier(tier).unwrap();
        for x in quantizer_inputs(&mut rng, GgmlType::Q8_0) {
            let mut s = Buf::new(act_row_bytes(GgmlType::Q8_0, x.len()).unwrap());
            k.quantize_activations(GgmlType::Q8_0, &x, s.bytes_mut()).unwrap();
            let want = ggml_x86::quantize_q8_0(&x);
            assert_eq!(s.bytes(), bytemuck::cast_slice::<_, u8>(&want), "{tier} quantize Q8_0 of {} values", x.len());
            let mut s = Buf::new(act_row_bytes(GgmlType::Q8_1, x.len()).unwrap());
            k.quantize_activations(GgmlType::Q8_1, &x, s.bytes_mut()).unwrap();
            let want = ggml_x86::quantize_q8_1(&x);
            assert_eq!(s.bytes(), bytemuck::cast_slice::<_, u8>(&want), "{tier} quantize Q8_1 of {} values", x.len());
            checked += 2;
        }
    }
    eprintln!("{checked} x86 results bit-identical to ggml's x86 float order");
}

/// The x86 Q4_0 gemv takes eight rows per pass, two adjacent rows from each
/// of four interleaved streams (groups of two rows), then the rows the
/// streams leave over (left-over groups and a short last group) in passes
/// of eight consecutive rows, the last one over the last eight rows
/// (storing only the rows no other pass stored), and rows of more than 256
/// blocks a column chunk at a time. Every row, whatever the row count, the
/// chunking and the block of rows the call starts at, is ggml's repacked
/// chain bit for bit: row counts around multiples of 8, 10 and 13 (streams
/// one group long, adjacent, with one and two left-over groups), 37 (two
/// left-over groups and a short one), 64 (none) and 70 (three), rows of one
/// chunk exactly (256 blocks), one block more, and three chunks.
#[cfg(target_arch = "x86_64")]
#[test]
fn q4_0_gemv_passes_tails_and_chunks_take_the_repacked_order() {
    use ember_quant::{q4_0, q8_0};
    assert!(Tier::Avx2.is_available(), "this x86 CPU has no AVX2: the AVX2 Q4_0 gemv could not be checked");
    let mut rng = SmallRng::seed_from_u64(0x5eed_0040);
    let ty = GgmlType::Q4_0;
    let mut checked = 0;
    for tier in [Tier::Avx2, Tier::Avx512].into_iter().filter(|t| t.is_available()) {
        let k = Kernels::with_tier(tier).unwrap();
        for cols in [32, 576, 8192, 8224, 16416] {
            for rows in [7usize, 8, 9, 10, 13, 15, 16, 17, 31, 37, 64, 70] {
                let raw = rows % 2 == 1;
                let w = weights(&mut rng, ty, rows, cols, raw);
                let a = activation(&mut rng, GgmlType::Q8_0, cols);
                let rb = ty.row_bytes(cols).unwrap();
                let want: Vec<f32> = (0..rows)
                    .map(|r| {
                        let wr: &[q4_0::BlockQ4_0] = bytemuck::cast_slice(&w.bytes()[r * rb..(r + 1) * rb]);
                        ggml_x86::q4_0_repacked(wr, bytemuck::cast_slice::<u8, q8_0::BlockQ8_0>(a.bytes()))
                    })
                    .collect();
                // The whole matrix, and the rows from 8 on (a thread's chunk).
                for r0 in [0, 8].into_iter().filter(|&r0| r0 < rows) {
                    let mut out = vec![f32::NAN; rows - r0];
                    k.gemv(ty, cols, &w.bytes()[r0 * rb..], a.bytes(), &mut out).unwrap();
                    for (r, got) in out.iter().enumerate() {
                        let want = want[r0 + r];
                        let what = format!("{tier} cols={cols} rows={rows} from row {r0}, row {}", r0 + r);
                        assert_eq!(got.to_bits(), want.to_bits(), "{what}: gemv {got} vs ggml {want}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 0);
}
