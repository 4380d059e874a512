//! Bare-metal harness for ember-quant's AVX-512 kernels, run under Bochs by
//! `scripts/test-x86-avx512.sh`.
//!
//! Why bare metal: the machines this was written for (and perhaps CI's) have
//! no AVX-512, QEMU 7.2's TCG has no AVX-512,
//! and Bochs 2.7 emulates AVX-512 but reports an inconsistent XSAVE layout
//! (CPUID leaf 0xD), so Linux turns XSAVE (and all AVX) off under it. This
//! image boots with no OS (multiboot, `boot.s` enables the AVX-512 state
//! itself), builds ember-quant's table from compile-time target features
//! (the `no_std` path: AVX-512 F/BW/VL, with or without VNNI), and compares
//! it with the generic table as `quant/tests/kernels_vs_generic.rs` does:
//! `vec_dot` and `gemv` (1, 3, 4, 5 rows) of every format on quantized and
//! raw random blocks, lengths 0, 1, 2, 3, 5, 7 blocks, 576, 640, 1536, 2048
//! (and 4160, 8224 for 32-value blocks), within `2e-5 * sum|w||a|`, and the
//! activation quantizers byte for byte: Q8_0/Q8_1 against a scalar statement
//! of ggml's x86 SIMD arithmetic (which ember's x86 quantizers follow), Q8_K
//! against the generic (reference) quantizer. The AVX-512 gemvs of Q4_0,
//! Q4_1, Q5_0, Q8_0, Q4_K and Q6_K must also equal the AVX2 ones bit for bit
//! (both follow ggml's x86 float order, which the host test checks for AVX2),
//! and so must their gemv and gemm at 1..=24 weight rows and batches 1..=9
//! (the tails of every rows-per-pass count); those six formats must have an
//! AVX-512 gemv in the table. Results go to COM1; the last line is
//! `RESULT: PASS` or `RESULT: FAIL`. A CPU fault (say a VNNI instruction in
//! the BW-only build on a CPU without VNNI) has no handler and stops the
//! emulator without that line.

#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt::Write;
use ember_quant::matmul::{act_row_bytes, dequantize, quantize};
use ember_quant::{GgmlType, Kernels, Tier};

global_asm!(include_str!("boot.s"), options(att_syntax));

/// COM1, polled.
struct Serial;
impl Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            // SAFETY: port I/O to COM1 on a machine we own entirely: wait for
            // the transmit holding register to be empty, then write.
            unsafe {
                loop {
                    let lsr: u8;
                    asm!("in al, dx", in("dx") 0x3fdu16, out("al") lsr);
                    if lsr & 0x20 != 0 {
                        break;
                    }
                }
                asm!("out dx, al", in("dx") 0x3f8u16, in("al") b)
            };
        }
        Ok(())
    }
}

/// `writeln!` to COM1.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(Serial, $($t)*);
    }};
}

/// Powers the emulator off (Bochs' shutdown port), or halts.
fn shutdown() -> ! {
    // Let the UART drain (transmitter empty) before powering off.
    for _ in 0..1_000_000 {
        let lsr: u8;
        // SAFETY: reading the UART's line status register.
        unsafe { asm!("in al, dx", in("dx") 0x3fdu16, out("al") lsr) };
        if lsr & 0x40 != 0 {
            break;
        }
    }
    for b in b"Shutdown" {
        // SAFETY: Bochs' shutdown port; nothing else listens on it.
        unsafe { asm!("out dx, al", in("dx") 0x8900u16, in("al") *b) };
    }
    loop {
        // SAFETY: halting the only CPU.
        unsafe { asm!("cli; hlt") };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("PANIC: {info}");
    say!("RESULT: FAIL");
    shutdown()
}

// Freestanding memory routines (there is no libc here). `rep movsb/stosb`
// and volatile byte loops keep the compiler from turning them back into
// calls to themselves.

/// C `memcpy`.
///
/// # Safety
/// C's contract: `n` readable bytes at `s`, `n` writable at `d`, no overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges (C's contract).
    unsafe { asm!("rep movsb", inout("rcx") n => _, inout("rdi") d => _, inout("rsi") s => _) };
    d
}

/// C `memmove`.
///
/// # Safety
/// C's contract: `n` readable bytes at `s`, `n` writable at `d`.
#[no_mangle]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize) < (s as usize) || (d as usize) >= (s as usize) + n {
        // SAFETY: copying forwards is correct when `d` is below `s` or past the source.
        unsafe { memcpy(d, s, n) }
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: i < n, in both ranges; backwards copy handles the overlap.
            unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) };
        }
        d
    }
}

/// C `memset`.
///
/// # Safety
/// C's contract: `n` writable bytes at `d`.
#[no_mangle]
pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range (C's contract).
    unsafe { asm!("rep stosb", inout("rcx") n => _, inout("rdi") d => _, in("al") c as u8) };
    d
}

/// C `memcmp`.
///
/// # Safety
/// C's contract: `n` readable bytes at `a` and at `b`.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: i < n, inside both ranges (C's contract).
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// C `bcmp`.
///
/// # Safety
/// As [`memcmp`].
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// A small deterministic generator.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn uniform(&mut self) -> f32 {
        (self.next() as f64 / (1u64 << 53) as f64) as f32
    }
    fn normal(&mut self) -> f32 {
        let g = (self.uniform() + self.uniform() + self.uniform() + self.uniform() - 2.0) * 1.7;
        if self.next() % 50 == 0 {
            g * 8.0
        } else {
            g
        }
    }
}

const MAX_COLS: usize = 8224;
const MAX_ROWS: usize = 5;
static mut WEIGHTS: [u64; MAX_ROWS * MAX_COLS * 4 / 8 + 64] = [0; MAX_ROWS * MAX_COLS * 4 / 8 + 64];
static mut ACT: [u64; MAX_COLS * 4 / 8 + 64] = [0; MAX_COLS * 4 / 8 + 64];
static mut XS: [f32; MAX_ROWS * MAX_COLS] = [0.0; MAX_ROWS * MAX_COLS];
static mut WF: [f32; MAX_COLS] = [0.0; MAX_COLS];
static mut AF: [f32; MAX_COLS] = [0.0; MAX_COLS];
static mut Q1: [u64; MAX_COLS * 2 / 8 + 64] = [0; MAX_COLS * 2 / 8 + 64];
static mut Q2: [u64; MAX_COLS * 2 / 8 + 64] = [0; MAX_COLS * 2 / 8 + 64];

/// ggml's x86 SIMD activation quantizer (`quantize_row_q8_0/q8_1`, AVX2
/// code, which AVX-512 builds run): `d = amax / 127`, `q = round_half_even(x
/// * (127 / amax))`, Q8_1's `s = f16(d * sum(q))`, written in scalar code.
fn ggml_x86_quantize(ty: GgmlType, x: &[f32], out: &mut [u8]) {
    let bsz = ty.type_size();
    for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(bsz)) {
        let amax = xb.iter().fold(0.0f32, |m, v| if v.abs() > m { v.abs() } else { m });
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        // Round half to even by the 1.5 * 2^23 trick (|x * id| <= 127).
        let q: [i8; 32] = core::array::from_fn(|j| (((xb[j] * id) + 12582912.0) - 12582912.0) as i32 as i8);
        ob[..2].copy_from_slice(&ember_quant::f16::from_f32(d).to_le_bytes());
        let qoff = if ty == GgmlType::Q8_1 {
            let sum: i32 = q.iter().map(|&v| v as i32).sum();
            ob[2..4].copy_from_slice(&ember_quant::f16::from_f32(d * sum as f32).to_le_bytes());
            4
        } else {
            2
        };
        for (o, v) in ob[qoff..].iter_mut().zip(q) {
            *o = v as u8;
        }
    }
}

/// Byte offsets of the f16 fields of one block (raw random blocks get finite scales there).
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

/// Random weights for `x.len()` values in `wbytes`: normal values quantized
/// to `ty` (`x` is scratch), or with `raw` random bytes whose f16 fields are
/// small finite scales.
fn random_weights(rng: &mut Lcg, ty: GgmlType, x: &mut [f32], wbytes: &mut [u8], raw: bool) {
    for v in x.iter_mut() {
        *v = rng.normal();
    }
    quantize(ty, x, wbytes).unwrap();
    if raw {
        for b in wbytes.iter_mut() {
            *b = rng.next() as u8;
        }
        for blk in wbytes.chunks_exact_mut(ty.type_size()) {
            for &off in f16_fields(ty) {
                let v = (rng.uniform() * 2.0 - 1.0) * 0.05;
                blk[off..off + 2].copy_from_slice(&ember_quant::f16::from_f32(v).to_le_bytes());
            }
        }
    }
}

/// Entered from `boot.s` in long mode with AVX-512 state enabled.
#[no_mangle]
pub extern "C" fn kmain() -> ! {
    // COM1: 115200 8N1, FIFOs on.
    for (port, v) in
        [(0x3f9u16, 0u8), (0x3fb, 0x80), (0x3f8, 1), (0x3f9, 0), (0x3fb, 0x03), (0x3fa, 0xc7), (0x3fc, 0x03)]
    {
        // SAFETY: programming the UART of a machine we own entirely.
        unsafe { asm!("out dx, al", in("dx") port, in("al") v) };
    }
    say!("ember avx512 harness: start");
    let k = Kernels::from_target_features();
    let g = Kernels::generic();
    // The AVX2 table: the AVX-512 gemvs of the formats in ggml's float order
    // must give its bits exactly (llama.cpp's AVX-512 builds run ggml's AVX2
    // code for them).
    let k2 = Kernels::with_tier(Tier::Avx2).unwrap();
    say!("table: {}", k.describe());
    say!("vnni compiled in: {}", cfg!(target_feature = "avx512vnni"));
    if k.tier() != Tier::Avx512 {
        say!("RESULT: FAIL (table tier is {}, not avx512)", k.tier());
        shutdown();
    }
    // The formats the issue requires on every ISA have an AVX-512 gemv (no
    // silent fallback to the AVX2 or generic one).
    for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K] {
        let e = k.dot(ty).unwrap();
        if e.gemv_tier != Tier::Avx512 {
            say!("RESULT: FAIL ({ty} gemv tier is {}, not avx512)", e.gemv_tier);
            shutdown();
        }
    }
    // SAFETY: single-threaded bare metal; the statics are used by this function only.
    let (weights, act, xs, wf, af, q1, q2) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(WEIGHTS),
            &mut *core::ptr::addr_of_mut!(ACT),
            &mut *core::ptr::addr_of_mut!(XS),
            &mut *core::ptr::addr_of_mut!(WF),
            &mut *core::ptr::addr_of_mut!(AF),
            &mut *core::ptr::addr_of_mut!(Q1),
            &mut *core::ptr::addr_of_mut!(Q2),
        )
    };
    let mut rng = Lcg(0x5eed);
    let mut compared = 0usize;
    let mut bitexact = 0usize;
    let mut worst = 0.0f64;
    let formats = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::Q5_1,
        GgmlType::IQ4_NL,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q5_K,
        GgmlType::F16,
        GgmlType::F32,
    ];
    for ty in formats {
        let e = k.dot(ty).unwrap();
        say!("{ty}: vec_dot tier {} gemv tier {}", e.tier, e.gemv_tier);
        let actty = ty.vec_dot_type().unwrap();
        let bs = ty.block_size();
        let mut lens = [0usize; 12];
        let mut nl = 0;
        for n in [0, bs, 2 * bs, 3 * bs, 5 * bs, 7 * bs, 576, 640, 1536, 2048, 4160, 8224] {
            if n % bs == 0 && (n <= 2048 || bs == 32) {
                lens[nl] = n;
                nl += 1;
            }
        }
        for &cols in &lens[..nl] {
            for raw in [false, true] {
                if raw && bs == 1 {
                    // Float weights: random bits could be NaN; quantized floats only.
                    continue;
                }
                for rows in [1usize, 3, 4, 5] {
                    let rb = ty.row_bytes(cols).unwrap();
                    let wbytes: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut weights[..])[..rb * rows];
                    random_weights(&mut rng, ty, &mut xs[..rows * cols], wbytes, raw);
                    let ab = act_row_bytes(actty, cols).unwrap();
                    let abytes: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut act[..])[..ab];
                    let xa = &mut xs[..cols];
                    for v in xa.iter_mut() {
                        *v = rng.normal();
                    }
                    g.quantize_activations(actty, xa, abytes).unwrap();
                    let abytes: &[u8] = abytes;
                    let wbytes: &[u8] = wbytes;
                    let mut out_s = [f32::NAN; MAX_ROWS];
                    let mut out_g = [f32::NAN; MAX_ROWS];
                    k.gemv(ty, cols, wbytes, abytes, &mut out_s[..rows]).unwrap();
                    g.gemv(ty, cols, wbytes, abytes, &mut out_g[..rows]).unwrap();
                    if matches!(
                        ty,
                        GgmlType::Q4_0
                            | GgmlType::Q4_1
                            | GgmlType::Q5_0
                            | GgmlType::Q8_0
                            | GgmlType::Q4_K
                            | GgmlType::Q6_K
                    ) {
                        let mut out_2 = [f32::NAN; MAX_ROWS];
                        k2.gemv(ty, cols, wbytes, abytes, &mut out_2[..rows]).unwrap();
                        for r in 0..rows {
                            if out_s[r].to_bits() != out_2[r].to_bits() {
                                say!("MISMATCH {ty} gemv cols={cols} raw={raw} rows={rows} row {r}: avx512 {} avx2 {} (not ggml's float order)", out_s[r], out_2[r]);
                                say!("RESULT: FAIL");
                                shutdown();
                            }
                            bitexact += 1;
                        }
                    }
                    dequantize(actty, abytes, &mut af[..cols]).unwrap();
                    for r in 0..rows {
                        let wr = &wbytes[r * rb..(r + 1) * rb];
                        dequantize(ty, wr, &mut wf[..cols]).unwrap();
                        let scale: f64 =
                            wf[..cols].iter().zip(&af[..cols]).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
                        let want = g.vec_dot(ty, cols, wr, abytes).unwrap();
                        let one = k.vec_dot(ty, cols, wr, abytes).unwrap();
                        for (what, got) in [("gemv", out_s[r]), ("vec_dot", one)] {
                            let err = (got as f64 - want as f64).abs();
                            if !(err <= 2e-5 * scale) || got.is_finite() != want.is_finite() {
                                say!("MISMATCH {ty} {what} cols={cols} raw={raw} rows={rows} row {r}: simd {got} generic {want} (g-gemv {}) bound {}", out_g[r], 2e-5 * scale);
                                say!("RESULT: FAIL");
                                shutdown();
                            }
                            if scale > 0.0 {
                                let rel = err / scale;
                                if rel > worst {
                                    worst = rel;
                                }
                            }
                            compared += 1;
                        }
                    }
                }
            }
        }
        say!("{ty}: ok ({compared} comparisons so far)");
    }
    // gemv with more rows and gemm (batches 1..=9), bit for bit against the
    // AVX2 table: row counts around the 8 (Q4_0 gemv), 16 (Q4_0 gemm), 4
    // (Q4_K gemm, Q4_1) and 2 (Q4_K gemv, Q6_K) rows per pass, activation
    // counts around Q4_K's groups of four; the stride's gaps stay untouched.
    let mut gemm_bitexact = 0usize;
    for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K] {
        let actty = ty.vec_dot_type().unwrap();
        let e = k.dot(ty).unwrap();
        say!("{ty}: gemm tier {}", e.gemm_tier);
        let colses: [usize; 2] = if ty.block_size() == 32 { [224, 576] } else { [256, 768] };
        for cols in colses {
            for raw in [false, true] {
                const ROWS: usize = 24;
                const M: usize = 9;
                let rb = ty.row_bytes(cols).unwrap();
                let wbytes: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut weights[..])[..rb * ROWS];
                random_weights(&mut rng, ty, &mut xs[..ROWS * cols], wbytes, raw);
                let ab = act_row_bytes(actty, cols).unwrap();
                let abytes: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut act[..])[..ab * M];
                let xa = &mut xs[..cols];
                for i in 0..M {
                    for v in xa.iter_mut() {
                        *v = rng.normal();
                    }
                    g.quantize_activations(actty, xa, &mut abytes[i * ab..(i + 1) * ab]).unwrap();
                }
                let (abytes, wbytes): (&[u8], &[u8]) = (abytes, wbytes);
                for rows in [1usize, 2, 3, 7, 8, 9, 15, 16, 17, 24] {
                    let w = &wbytes[..rows * rb];
                    let mut g5 = [f32::NAN; ROWS];
                    let mut g2 = [f32::NAN; ROWS];
                    k.gemv(ty, cols, w, &abytes[..ab], &mut g5[..rows]).unwrap();
                    k2.gemv(ty, cols, w, &abytes[..ab], &mut g2[..rows]).unwrap();
                    for r in 0..rows {
                        if g5[r].to_bits() != g2[r].to_bits() {
                            say!(
                                "MISMATCH {ty} gemv cols={cols} raw={raw} rows={rows} row {r}: avx512 {} avx2 {}",
                                g5[r],
                                g2[r]
                            );
                            say!("RESULT: FAIL");
                            shutdown();
                        }
                        gemm_bitexact += 1;
                    }
                    for m in 1..=M {
                        const GAP: u32 = 0x7fc0_1234;
                        let stride = rows + 1;
                        let len = (m - 1) * stride + rows;
                        let mut o5 = [f32::from_bits(GAP); (ROWS + 1) * M];
                        let mut o2 = [f32::from_bits(GAP); (ROWS + 1) * M];
                        k.gemm_strided(ty, cols, w, &abytes[..m * ab], &mut o5[..len], stride).unwrap();
                        k2.gemm_strided(ty, cols, w, &abytes[..m * ab], &mut o2[..len], stride).unwrap();
                        for j in 0..len {
                            let (i, r) = (j / stride, j % stride);
                            let gap = r == rows;
                            if o5[j].to_bits() != o2[j].to_bits() || (gap && o5[j].to_bits() != GAP) {
                                say!("MISMATCH {ty} gemm cols={cols} raw={raw} rows={rows} m={m} ({i},{r}): avx512 {} avx2 {}", o5[j], o2[j]);
                                say!("RESULT: FAIL");
                                shutdown();
                            }
                            gemm_bitexact += !gap as usize;
                        }
                    }
                }
            }
        }
    }
    say!("{gemm_bitexact} AVX-512 gemv/gemm results (up to 24 rows, batches 1..=9) bit-identical to AVX2");
    // Quantizers, byte for byte, with rounding ties and sign cases.
    for act_ty in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K] {
        let bs = act_ty.block_size();
        for case in 0..6 {
            let n = match case {
                0 => bs,
                1 => 7 * bs,
                _ => 2048,
            };
            let x = &mut xs[..n];
            for v in x.iter_mut() {
                *v = rng.normal();
            }
            match case {
                2 => {
                    for b in x.chunks_exact_mut(bs) {
                        b[0] = -127.0;
                        for (j, v) in b.iter_mut().enumerate().skip(1) {
                            *v = (j % 120) as f32 - 60.5;
                        }
                    }
                }
                3 => x[bs..2 * bs].fill(0.0),
                4 => {
                    x[3] = 9.0;
                    x[bs - 1] = -9.0;
                }
                5 => {
                    x[1] = -9.0;
                    x[bs / 2 + 1] = 9.0;
                }
                _ => {}
            }
            let nb = act_row_bytes(act_ty, n).unwrap();
            let s: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut q1[..])[..nb];
            let t: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut q2[..])[..nb];
            s.fill(0xa5);
            k.quantize_activations(act_ty, x, s).unwrap();
            if act_ty == GgmlType::Q8_K {
                // ggml's x86 Q8_K quantizer is the reference one.
                g.quantize_activations(act_ty, x, t).unwrap();
            } else {
                ggml_x86_quantize(act_ty, x, t);
            }
            if s != t {
                let at = s.iter().zip(t.iter()).position(|(a, b)| a != b).unwrap();
                say!(
                    "MISMATCH quantize {act_ty} case {case}: first differing byte {at}: simd {} expected {}",
                    s[at],
                    t[at]
                );
                say!("RESULT: FAIL");
                shutdown();
            }
        }
        say!("quantize {act_ty}: ok (tier {})", k.quantizer(act_ty).unwrap().tier);
    }
    say!("compared {compared} dot products; worst |diff|/sum|w||a| = {worst:e}");
    say!("{bitexact} AVX-512 gemv results bit-identical to the AVX2 kernels (ggml's float order)");
    say!("RESULT: PASS");
    shutdown()
}

/// The precompiled `core` refers to the unwinding personality; with
/// `panic = "abort"` it is never called.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
