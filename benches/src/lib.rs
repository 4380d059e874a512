//! Shared pieces of ember's kernel benchmarks: the plain memory-read
//! benchmark that every kernel figure is compared with, weight matrices at the
//! real shapes of SmolLM2 and Gemma 3, and a timer for matrix-vector products.
//!
//! Matrix-vector work streams the weights once per token, so it is bandwidth
//! bound; the figure that matters is bytes of weights per second, as a share
//! of what a plain SIMD read of memory achieves on the same thread. To measure
//! streaming from DRAM rather than from the last-level cache, a matrix is held
//! in a pool of copies as large as the read benchmark's buffer, and successive
//! products walk through the copies.
//!
//! [`child`] runs and measures child processes (wall time, peak RSS) for
//! `ember bench`'s cold start and for `compare`; [`SpinBarrier`] separates
//! the products of `kernel-table --threads N` and `decode-replay`.

#![warn(missing_docs)]

pub mod child;

use ember_quant::matmul::act_row_bytes;
use ember_quant::{GgmlType, Kernels, Tier};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A point in time for the benches: this thread's CPU time on Linux (so time
/// spent descheduled by other processes on a shared machine does not count),
/// the wall clock elsewhere or when `EMBER_BENCH_WALL=1`.
#[derive(Clone, Copy)]
pub struct Clock(Duration);

impl Clock {
    /// Now.
    pub fn now() -> Clock {
        #[cfg(target_os = "linux")]
        if !wall_clock() {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: `ts` is a valid, writable timespec for the call.
            if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
                return Clock(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
        }
        Clock(epoch().elapsed())
    }

    /// Time since `self`.
    pub fn elapsed(self) -> Duration {
        Clock::now().0.saturating_sub(self.0)
    }
}

/// Whether the benches time with the wall clock (`EMBER_BENCH_WALL=1`).
pub fn wall_clock() -> bool {
    static WALL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WALL.get_or_init(|| std::env::var("EMBER_BENCH_WALL").is_ok_and(|v| v == "1"))
}

fn epoch() -> std::time::Instant {
    static T0: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *T0.get_or_init(std::time::Instant::now)
}

/// What [`Clock`] measures, for reports.
pub fn clock_name() -> &'static str {
    if cfg!(target_os = "linux") && !wall_clock() {
        "thread CPU time"
    } else {
        "wall-clock time"
    }
}

/// Bytes of the read benchmark's buffer and of each weight pool: far beyond
/// any last-level cache this runs on (32 MiB on the EPYC it was tuned on).
pub const POOL_BYTES: usize = 256 << 20;

/// A matrix shape of a real model: `cols` values per row (ggml's `ne0`, the
/// activation length), `rows` output values.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// The model the shape comes from.
    pub model: &'static str,
    /// Which tensors have it.
    pub tensors: &'static str,
    /// Values per row (`ne0`).
    pub cols: usize,
    /// Rows (`ne1`).
    pub rows: usize,
}

impl Shape {
    /// `cols×rows` as the issue writes shapes (the output projection, whose
    /// rows are the vocabulary, is written `rows×cols` there: `49152×576`).
    pub fn label(&self) -> String {
        if self.rows == 49152 {
            format!("{}×{}", self.rows, self.cols)
        } else {
            format!("{}×{}", self.cols, self.rows)
        }
    }
}

/// The shapes of SmolLM2-135M and Gemma 3 270M benchmarked.
pub const SHAPES: [Shape; 7] = [
    Shape { model: "SmolLM2", tensors: "attn q/o", cols: 576, rows: 576 },
    Shape { model: "SmolLM2", tensors: "ffn gate/up", cols: 576, rows: 1536 },
    Shape { model: "SmolLM2", tensors: "ffn down", cols: 1536, rows: 576 },
    Shape { model: "SmolLM2", tensors: "output (vocab)", cols: 576, rows: 49152 },
    Shape { model: "Gemma 3", tensors: "attn q", cols: 640, rows: 1024 },
    Shape { model: "Gemma 3", tensors: "ffn gate/up", cols: 640, rows: 2048 },
    Shape { model: "Gemma 3", tensors: "ffn down", cols: 2048, rows: 640 },
];

/// The shape actually run for format `ty`: the shape itself when its rows are
/// whole blocks; for the 256-value k-quants on the 576-wide output
/// projection, the same number of values as 768-wide rows (llama.cpp itself
/// falls back to another type for such tensors, so no real file has them, but
/// the bandwidth target is stated at that size); `None` otherwise.
pub fn shape_for(shape: Shape, ty: GgmlType) -> Option<(usize, usize)> {
    if shape.cols.is_multiple_of(ty.block_size()) {
        return Some((shape.cols, shape.rows));
    }
    if shape.rows == 49152 && 768usize.is_multiple_of(ty.block_size()) {
        return Some((768, shape.rows * shape.cols / 768));
    }
    None
}

/// Every weight format with a dot product, in table order.
pub const FORMATS: [GgmlType; 14] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::IQ4_NL,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::F32,
];

/// Every kernel tier this CPU runs, generic first.
pub fn tiers() -> Vec<Tier> {
    [Tier::Generic, Tier::Avx2, Tier::Avx512, Tier::Neon, Tier::Dotprod]
        .into_iter()
        .filter(|t| t.is_available())
        .collect()
}

/// Sum of a buffer as u64 lanes, with the widest loads this CPU has: the
/// plain memory-read benchmark.
pub fn sum_u64(buf: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F detected just above.
            return unsafe { x86::sum_avx512(buf) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 detected just above.
            return unsafe { x86::sum_avx2(buf) };
        }
    }
    sum_portable(buf)
}

/// Bytes of each stream [`sum_u64_streams`] reads before it turns to the
/// next, and how far ahead in each stream it prefetches.
pub const STREAM_STEP: usize = 512;

/// The wrapping sum of `buf` read as `streams` equal parts side by side:
/// [`STREAM_STEP`] bytes of each part in turn, each part prefetched
/// [`STREAM_STEP`] bytes ahead; the words the parts leave over at the end
/// are read last. This is how ember's decode gemvs walk their rows
/// (`RowStreams`, four streams): on a VM with 4 KiB pages it gets more
/// bandwidth than one sequential stream, so it is the ceiling those
/// kernels are set against.
pub fn sum_u64_streams(buf: &[u64], streams: usize) -> u64 {
    let streams = streams.max(1);
    let step = STREAM_STEP / 8;
    let part = buf.len() / streams / step * step;
    #[cfg(target_arch = "x86_64")]
    let s = if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 detected just above; `streams * part <= buf.len()`
        // and `part` is a multiple of `step`.
        unsafe { x86::sum_streams_avx2(buf, streams, part) }
    } else {
        sum_streams_portable(buf, streams, part)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let s = sum_streams_portable(buf, streams, part);
    s.wrapping_add(sum_u64(&buf[streams * part..]))
}

/// [`sum_u64_streams`]'s interleaved parts (`part` words each, a multiple
/// of the step), without prefetch.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn sum_streams_portable(buf: &[u64], streams: usize, part: usize) -> u64 {
    let step = STREAM_STEP / 8;
    let mut s = 0u64;
    for i in (0..part).step_by(step) {
        for k in 0..streams {
            s = s.wrapping_add(sum_portable(&buf[k * part + i..k * part + i + step]));
        }
    }
    s
}

/// Eight independent u64 accumulators; compilers vectorize this with the
/// baseline SIMD (SSE2, NEON).
fn sum_portable(buf: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut chunks = buf.chunks_exact(8);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a = a.wrapping_add(*v);
        }
    }
    chunks.remainder().iter().fold(acc.iter().fold(0u64, |s, v| s.wrapping_add(*v)), |s, v| s.wrapping_add(*v))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Four 256-bit loads per step into four accumulators.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sum_avx2(buf: &[u64]) -> u64 {
        let body = buf.len() / 16 * 16;
        let mut acc = [_mm256_setzero_si256(); 4];
        let p = buf.as_ptr();
        let mut i = 0;
        while i < body {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 4k + 4 <= body <= buf.len(); loadu needs no alignment.
                *a = _mm256_add_epi64(*a, unsafe { _mm256_loadu_si256(p.add(i + 4 * k).cast()) });
            }
            i += 16;
        }
        let s = _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3]));
        let mut lanes = [0u64; 4];
        // SAFETY: `lanes` is 32 writable bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), s) };
        lanes.iter().chain(&buf[body..]).fold(0u64, |s, v| s.wrapping_add(*v))
    }

    /// [`super::sum_u64_streams`]'s interleaved parts: `streams` parts of
    /// `part` words, [`super::STREAM_STEP`] bytes of each in turn (four
    /// 256-bit loads per 128 bytes into four accumulators), each part
    /// prefetched a step ahead.
    ///
    /// # Safety
    /// AVX2 must be available; `streams * part <= buf.len()`, and `part` is
    /// a multiple of `STREAM_STEP / 8`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sum_streams_avx2(buf: &[u64], streams: usize, part: usize) -> u64 {
        let step = super::STREAM_STEP / 8;
        assert!(streams * part <= buf.len() && part.is_multiple_of(step));
        let mut acc = [_mm256_setzero_si256(); 4];
        let p = buf.as_ptr();
        for i in (0..part).step_by(step) {
            for k in 0..streams {
                let at = k * part + i;
                // A hint with no architectural effect that never faults;
                // `wrapping_add` keeps the arithmetic defined past the end.
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(at + step).cast());
                for j in (0..step).step_by(16) {
                    for (q, a) in acc.iter_mut().enumerate() {
                        // SAFETY: at + j + 4q + 4 <= at + step <= streams * part <= buf.len().
                        *a = _mm256_add_epi64(*a, unsafe { _mm256_loadu_si256(p.add(at + j + 4 * q).cast()) });
                    }
                }
            }
        }
        let s = _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3]));
        let mut lanes = [0u64; 4];
        // SAFETY: `lanes` is 32 writable bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), s) };
        lanes.iter().fold(0u64, |s, v| s.wrapping_add(*v))
    }

    /// Four 512-bit loads per step into four accumulators.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sum_avx512(buf: &[u64]) -> u64 {
        let body = buf.len() / 32 * 32;
        let mut acc = [_mm512_setzero_si512(); 4];
        let p = buf.as_ptr();
        let mut i = 0;
        while i < body {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8k + 8 <= body <= buf.len(); loadu needs no alignment.
                *a = _mm512_add_epi64(*a, unsafe { _mm512_loadu_si512(p.add(i + 8 * k).cast()) });
            }
            i += 32;
        }
        let s = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
        buf[body..].iter().fold(_mm512_reduce_add_epi64(s) as u64, |s, v| s.wrapping_add(*v))
    }
}

/// The read benchmark's buffer: [`POOL_BYTES`] of non-zero words, every page touched.
pub fn read_buffer() -> Vec<u64> {
    read_buffer_of(POOL_BYTES)
}

/// [`read_buffer`] of `bytes` bytes (rounded down to whole words).
pub fn read_buffer_of(bytes: usize) -> Vec<u64> {
    (0..bytes / 8).map(|i| i as u64 | 1).collect()
}

/// Median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// GB/s of the plain read of `buf`: the median of `rounds` full passes.
pub fn read_bandwidth(buf: &[u64], rounds: usize) -> f64 {
    let bytes = std::mem::size_of_val(buf) as f64;
    let mut rates: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let t = Clock::now();
            std::hint::black_box(sum_u64(std::hint::black_box(buf)));
            bytes / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    median(&mut rates)
}

/// GB/s of a plain read of `buf` by `threads` threads at once, each summing
/// its own contiguous share: the median of `rounds` full passes, each timed
/// by the wall clock (not [`Clock`], which may count this thread's CPU time)
/// from before the threads start to after the last one ends.
pub fn read_bandwidth_threads(buf: &[u64], threads: usize, rounds: usize) -> f64 {
    threaded_read(buf, threads, rounds, &sum_u64)
}

/// GB/s of [`sum_u64_streams`] of `buf` with `streams` streams per thread,
/// by `threads` threads at once on contiguous shares, timed like
/// [`read_bandwidth_threads`] (median of `rounds` passes, wall clock).
pub fn read_bandwidth_streams(buf: &[u64], threads: usize, streams: usize, rounds: usize) -> f64 {
    threaded_read(buf, threads, rounds, &|part| sum_u64_streams(part, streams))
}

/// GB/s of `read` run by `threads` threads at once, each on its own
/// contiguous share of `buf`: the median of `rounds` passes by the wall clock.
fn threaded_read(buf: &[u64], threads: usize, rounds: usize, read: &(dyn Fn(&[u64]) -> u64 + Sync)) -> f64 {
    let threads = threads.max(1);
    let bytes = std::mem::size_of_val(buf) as f64;
    let per = buf.len().div_ceil(threads).max(1);
    let mut rates: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            std::thread::scope(|s| {
                for part in buf.chunks(per) {
                    s.spawn(move || std::hint::black_box(read(std::hint::black_box(part))));
                }
            });
            bytes / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    median(&mut rates)
}

/// A counter on a cache line of its own (two lines, for the adjacent-line
/// prefetcher), written by one thread of [`round_trip_ns`] and read by the
/// other.
#[repr(align(128))]
struct Line(AtomicUsize);

/// Nanoseconds for a cache line to go from this thread to a second one and
/// an answer to come back: this thread writes `k` to one line, a second
/// thread waits for it and writes `k` to another; the median of `rounds`
/// passes of `trips` round trips, timed by the wall clock after as many
/// untimed ones (at least 1000).
///
/// It tells where the OS and the hypervisor have put two threads: on the
/// 2-vCPU Zen 4 VM the benches ran on, 90-105 ns when the two vCPUs share
/// a core complex (and its link to memory), 360-420 ns when they do not
/// (a C loop of session 15 with one trip timed from thread start had read
/// 100-210 and 500-660).
/// A waiting thread yields now and then, so that the passes end even when
/// both threads share one CPU (they then take microseconds a trip).
pub fn round_trip_ns(trips: usize, rounds: usize) -> f64 {
    let (trips, rounds) = (trips.max(1), rounds.max(1));
    // Untimed trips first: the second thread has started, and the scheduler
    // has had time to move it off this thread's CPU.
    let warm = trips.max(1000);
    let wait_for = |line: &Line, v: usize| {
        let mut spins = 0u32;
        while line.0.load(Ordering::Acquire) != v {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1 << 10) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    };
    let (ping, pong) = (Line(AtomicUsize::new(0)), Line(AtomicUsize::new(0)));
    let mut ns = std::thread::scope(|s| {
        s.spawn(|| {
            for k in 1..=warm + rounds * trips {
                wait_for(&ping, k);
                pong.0.store(k, Ordering::Release);
            }
        });
        let mut k = 0;
        let mut trip = || {
            k += 1;
            ping.0.store(k, Ordering::Release);
            wait_for(&pong, k);
        };
        (0..warm).for_each(|_| trip());
        (0..rounds)
            .map(|_| {
                let t = std::time::Instant::now();
                (0..trips).for_each(|_| trip());
                t.elapsed().as_secs_f64() * 1e9 / trips as f64
            })
            .collect::<Vec<f64>>()
    });
    median(&mut ns)
}

/// A weight matrix of one format and shape, repeated in a pool of copies at
/// least [`POOL_BYTES`] large, and an activation row to multiply it with.
pub struct WeightPool {
    /// Weight format.
    pub ty: GgmlType,
    /// Values per row.
    pub cols: usize,
    /// Rows.
    pub rows: usize,
    /// Bytes of one matrix.
    pub matrix_bytes: usize,
    stride_words: usize,
    copies: usize,
    words: Vec<u64>,
    act: Vec<u64>,
    act_bytes: usize,
}

impl WeightPool {
    /// Quantizes random weights (one matrix, with the reference quantizer)
    /// and copies them to fill the pool; the activation is quantized with the
    /// generic quantizer.
    pub fn new(ty: GgmlType, cols: usize, rows: usize, seed: u64) -> WeightPool {
        let row_bytes = ty.row_bytes(cols).expect("cols is a whole number of blocks");
        let matrix_bytes = row_bytes * rows;
        let stride_words = matrix_bytes.div_ceil(64) * 8; // keep each copy 64-byte aligned
        let copies = POOL_BYTES.div_ceil(matrix_bytes).max(1);
        let mut words = vec![0u64; stride_words * copies];
        let mut rng = Lcg(seed);
        {
            let first: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut words[..stride_words])[..matrix_bytes];
            // Quantize row band by row band to bound the f32 scratch.
            let band = (1 << 20) / cols.max(1) + 1;
            let mut x = vec![0.0f32; band * cols];
            for chunk in first.chunks_mut(band * row_bytes) {
                let n = chunk.len() / row_bytes;
                for v in &mut x[..n * cols] {
                    *v = rng.normal();
                }
                ember_quant::matmul::quantize(ty, &x[..n * cols], chunk).expect("quantize weights");
            }
        }
        let (head, tail) = words.split_at_mut(stride_words);
        for c in tail.chunks_exact_mut(stride_words) {
            c.copy_from_slice(head);
        }
        let act_ty = ty.vec_dot_type().expect("a format with a dot product");
        let act_bytes = act_row_bytes(act_ty, cols).unwrap();
        let mut act = vec![0u64; act_bytes.div_ceil(8)];
        let xa: Vec<f32> = (0..cols).map(|_| rng.normal()).collect();
        Kernels::generic()
            .quantize_activations(act_ty, &xa, &mut bytemuck::cast_slice_mut(&mut act)[..act_bytes])
            .expect("quantize activation");
        WeightPool { ty, cols, rows, matrix_bytes, stride_words, copies, words, act, act_bytes }
    }

    /// How many copies of the matrix the pool holds.
    pub fn copies(&self) -> usize {
        self.copies
    }

    /// Copy `i` (modulo the pool) of the matrix.
    pub fn matrix(&self, i: usize) -> &[u8] {
        let i = i % self.copies;
        &bytemuck::cast_slice(&self.words[i * self.stride_words..(i + 1) * self.stride_words])[..self.matrix_bytes]
    }

    /// The activation row, quantized to the format paired with the weights.
    pub fn activation(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.act)[..self.act_bytes]
    }

    /// One matrix-vector product with copy `i` of the matrix.
    pub fn gemv(&self, k: &Kernels, i: usize, out: &mut [f32]) {
        k.gemv(self.ty, self.cols, self.matrix(i), self.activation(), out).expect("gemv");
    }

    /// Runs `iters` products, walking the copies from `start`; returns the time taken.
    pub fn run(&self, k: &Kernels, start: usize, iters: u64, out: &mut [f32]) -> Duration {
        let t = Clock::now();
        for i in 0..iters as usize {
            self.gemv(k, start + i, out);
            std::hint::black_box(&mut *out);
        }
        t.elapsed()
    }

    /// GB/s of weights over `rounds` rounds of about `round_time` each (after
    /// one warm-up pass over the pool): the median round. `hot` multiplies
    /// the same copy every time (cache-resident when it fits) instead of
    /// walking the pool.
    pub fn throughput(&self, k: &Kernels, round_time: Duration, rounds: usize, hot: bool) -> f64 {
        let mut out = vec![0.0f32; self.rows];
        let stride = if hot { 0 } else { 1 };
        let walk = |n: usize, out: &mut [f32]| {
            let t = Clock::now();
            for i in 0..n {
                self.gemv(k, i * stride, out);
                std::hint::black_box(&mut *out);
            }
            t.elapsed()
        };
        // Warm-up over the whole pool, and a calibration of the iteration count.
        let t = walk(self.copies, &mut out);
        let per = t.as_secs_f64() / self.copies as f64;
        let n = ((round_time.as_secs_f64() / per.max(1e-9)) as usize).max(1);
        let mut rates: Vec<f64> = (0..rounds.max(1))
            .map(|_| (n * self.matrix_bytes) as f64 / walk(n, &mut out).as_secs_f64() / 1e9)
            .collect();
        median(&mut rates)
    }
}

impl WeightPool {
    /// Giga-operations per second (2 × rows × cols × `batch` per product) of
    /// the prompt-batch product `Kernels::gemm` of copy 0 of the matrix with
    /// `batch` activation rows (copies of the pool's one activation row; the
    /// kernels' speed does not depend on the values): the median of `rounds`
    /// rounds of about `round_time`. The matrix stays in cache between
    /// products, as it does while a prompt batch passes over it.
    pub fn gemm_throughput(&self, k: &Kernels, batch: usize, round_time: Duration, rounds: usize) -> f64 {
        let acts: Vec<u8> = self.activation().repeat(batch.max(1));
        let mut aligned = vec![0u64; acts.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut aligned)[..acts.len()].copy_from_slice(&acts);
        let acts = &bytemuck::cast_slice::<u64, u8>(&aligned)[..acts.len()];
        let m = batch.max(1);
        let mut out = vec![0.0f32; self.rows * m];
        let run = |n: usize, out: &mut [f32]| {
            let t = Clock::now();
            for _ in 0..n {
                k.gemm(self.ty, self.cols, self.matrix(0), self.rows, acts, m, out).expect("gemm");
                std::hint::black_box(&mut *out);
            }
            t.elapsed()
        };
        let per = run(2, &mut out).as_secs_f64() / 2.0;
        let n = ((round_time.as_secs_f64() / per.max(1e-9)) as usize).max(1);
        let ops = 2.0 * (self.rows * self.cols * m) as f64;
        let mut rates: Vec<f64> =
            (0..rounds.max(1)).map(|_| n as f64 * ops / run(n, &mut out).as_secs_f64() / 1e9).collect();
        median(&mut rates)
    }
}

/// A small deterministic generator (the benches need no statistical quality).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn uniform(&mut self) -> f32 {
        (self.next() as f64 / (1u64 << 53) as f64) as f32
    }
    /// Roughly normal (sum of four uniforms, centred and scaled).
    fn normal(&mut self) -> f32 {
        (self.uniform() + self.uniform() + self.uniform() + self.uniform() - 2.0) * 1.7
    }
}

/// A barrier whose waiters spin (then yield), as the runtime's thread pool
/// waits between the products of a decode step: `std::sync::Barrier` parks,
/// and its wake-up alone costs more than a small matrix's product.
pub struct SpinBarrier {
    arrived: AtomicUsize,
    generation: AtomicUsize,
    n: usize,
}

impl SpinBarrier {
    /// A barrier for `n` threads.
    pub fn new(n: usize) -> SpinBarrier {
        SpinBarrier { arrived: AtomicUsize::new(0), generation: AtomicUsize::new(0), n }
    }

    /// Returns once all `n` threads have called it (for this generation).
    pub fn wait(&self) {
        let g = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.store(g + 1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == g {
            if spins < 1 << 16 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round trip takes some time, and a finite one (a pass ends).
    #[test]
    fn a_round_trip_is_measured() {
        let ns = round_trip_ns(2000, 3);
        assert!(ns.is_finite() && ns > 0.0, "{ns}");
    }

    #[test]
    fn streamed_sum_reads_every_word_once() {
        for len in [0usize, 1, 63, 64, 65, 255, 256, 1000, 4096, 4099] {
            // Odd, pseudo-random words: a word read twice or left out
            // changes the sum.
            let buf: Vec<u64> = (0..len as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).collect();
            let want = buf.iter().fold(0u64, |s, v| s.wrapping_add(*v));
            for streams in [1usize, 2, 3, 4, 8] {
                assert_eq!(sum_u64_streams(&buf, streams), want, "len {len} streams {streams}");
            }
            assert_eq!(sum_u64(&buf), want, "len {len}");
        }
    }
}
