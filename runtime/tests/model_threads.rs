//! Threads: what one hand-off of work to the workers costs (ember's pool
//! against rayon), what a decode-sized matrix product costs split over the
//! threads, and that sampling with a fixed seed gives the same tokens
//! whatever the thread count. Timing is printed (`--nocapture`); the
//! assertions are on correctness and on generous bounds, since this machine
//! is shared.

use ember::ops::{matmul, ActScratch, Mat};
use ember::quant::{GgmlType, Kernels};
use ember::threads::{Parallel, Serial, ThreadPool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median wall time of `f` in microseconds over `rounds` rounds of `iters` calls.
fn time_us(rounds: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let mut r = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        r.push(t.elapsed().as_secs_f64() * 1e6 / iters as f64);
    }
    median(r)
}

/// Busy work of about `us` microseconds (no sleep: the point is CPU time).
#[cfg(feature = "e2e")]
fn busy(us: f64) {
    let t = Instant::now();
    while t.elapsed().as_secs_f64() * 1e6 < us {
        std::hint::spin_loop();
    }
}

/// Timing on a shared machine: release (`e2e`) runs only.
#[cfg(feature = "e2e")]
#[test]
fn dispatch_overhead() {
    // Two chunks of 5 µs each: on one thread a job takes 10 µs, split over
    // two threads 5 µs plus the hand-off.
    let threads = 2;
    let pool = ThreadPool::new(threads);
    let by_worker = AtomicUsize::new(0);
    let ours = time_us(15, 500, || {
        pool.run(2, &|_, t| {
            busy(5.0);
            if t != 0 {
                by_worker.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    let share = by_worker.load(Ordering::Relaxed) as f64 / (15.0 * 500.0 * 2.0);

    let rp = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let rayon_broadcast = time_us(15, 500, || {
        rp.broadcast(|_| busy(5.0));
    });
    let serial = time_us(15, 500, || {
        busy(5.0);
        busy(5.0);
    });
    println!(
        "job of 2 x 5 µs: serial {serial:.1} µs; ember pool {ours:.1} µs ({:.0}% of chunks on the worker); rayon broadcast {rayon_broadcast:.1} µs",
        share * 100.0
    );
    // A decode step of SmolLM2 makes ~150 hand-offs; at 50 µs of overhead each
    // that would cost 7 ms per token. The pool must stay far below that.
    assert!(ours < serial + 50.0, "ember pool took {ours:.1} µs for a {serial:.1} µs job");
}

#[test]
fn decode_sized_matmul_split_across_threads() {
    // SmolLM2's FFN up projection: 1536 rows of 576 Q4_1 values, one token.
    let (rows, cols) = (1536usize, 576usize);
    let mut rng = 0x1234_5678_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let wf: Vec<f32> = (0..rows * cols).map(|_| next()).collect();
    let x: Vec<f32> = (0..cols).map(|_| next()).collect();
    let mut w = vec![0u8; GgmlType::Q4_1.row_bytes(cols).unwrap() * rows];
    ember::quant::matmul::quantize(GgmlType::Q4_1, &wf, &mut w).unwrap();
    let m = Mat { ty: GgmlType::Q4_1, cols, rows, data: &w };
    let k = Kernels::best();
    let mut buf = vec![0u64; 3 * 1024];
    let mut scratch = ActScratch { buf: bytemuck::cast_slice_mut(&mut buf), slot_bytes: 8192 };
    let mut out1 = vec![0.0f32; rows];
    let mut out2 = vec![0.0f32; rows];
    let serial = time_us(15, 200, || {
        matmul(&k, &Serial, &x, 1, cols, &mut [(&m, &mut out1)], &mut scratch).unwrap();
    });
    let pool = ThreadPool::new(2);
    let pooled = time_us(15, 200, || {
        matmul(&k, &pool, &x, 1, cols, &mut [(&m, &mut out2)], &mut scratch).unwrap();
    });
    assert_eq!(out1, out2, "the split gives the same numbers");
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    /// rayon with the same chunk claiming as ember's pool.
    struct Rayon<'a>(&'a rayon::ThreadPool);
    impl Parallel for Rayon<'_> {
        fn threads(&self) -> usize {
            self.0.current_num_threads()
        }
        fn run(&self, chunks: usize, job: &(dyn Fn(usize, usize) + Sync)) {
            let next = AtomicUsize::new(0);
            self.0.broadcast(|c| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= chunks {
                    break;
                }
                job(i, c.index());
            });
        }
    }
    let mut out3 = vec![0.0f32; rows];
    let rayon = time_us(15, 200, || {
        matmul(&k, &Rayon(&rp), &x, 1, cols, &mut [(&m, &mut out3)], &mut scratch).unwrap();
    });
    assert_eq!(out1, out3);
    let bytes = w.len() as f64;
    println!(
        "1536x576 Q4_1 gemv ({} kernels): 1 thread {serial:.1} µs ({:.1} GB/s), 2 threads ember pool {pooled:.1} µs, 2 threads rayon broadcast {rayon:.1} µs",
        k.tier(),
        bytes / serial / 1e3
    );
}

#[cfg(feature = "e2e")]
mod common;

#[cfg(feature = "e2e")]
#[test]
fn fixed_seed_gives_the_same_tokens_on_one_and_two_threads() {
    use ember::sampler::{SamplerParams, SamplerScratch};
    use ember::session::{Session, SessionOptions};
    let model = ember::Model::open(common::smollm2()).unwrap();
    let params =
        SamplerParams { temperature: 0.9, top_k: 50, top_p: 0.95, min_p: 0.02, seed: 1234, ..Default::default() };
    let run = |threads: usize| {
        let mut s = Session::new(&model, SessionOptions { ctx_len: 128, threads, ..Default::default() }).unwrap();
        let mut scratch = SamplerScratch::new(s.config().n_vocab, 64);
        let mut smp = scratch.sampler(params).unwrap();
        s.prefill(&[6403, 1980, 253, 655, 28, 665, 436, 253, 1838, 8085, 617]).unwrap();
        (0..40).map(|_| s.decode_next(&mut smp).unwrap()).collect::<Vec<u32>>()
    };
    let one = run(1);
    let two = run(2);
    let three = run(3);
    assert_eq!(one, two);
    assert_eq!(one, three);
    println!("seeded sample: {one:?}");
}
