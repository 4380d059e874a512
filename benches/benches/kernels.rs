//! Criterion benchmarks of the quantized matrix-vector kernels at real model
//! shapes, one thread, every format × every kernel tier this CPU runs, with
//! throughput in bytes of weights per second.
//!
//! The plain memory-read benchmark (`read/sum`) runs first in the same
//! process; after criterion's own report, a summary prints each kernel's
//! median weight throughput as a share of the read bandwidth. Weights stream
//! from a pool of copies as large as the read buffer, so both figures are
//! DRAM-bound. Filter as usual: `cargo bench -p ember-benches --bench kernels -- 'gemv/49152×576'`.

use criterion::{BenchmarkId, Criterion, Throughput};
use ember_benches::{
    clock_name, median, read_buffer, shape_for, sum_u64, tiers, Clock, WeightPool, FORMATS, POOL_BYTES, SHAPES,
};
use ember_quant::Kernels;
use std::cell::{OnceCell, RefCell};
use std::time::Duration;

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    // (benchmark id, GB/s of each timed batch)
    let rates: RefCell<Vec<(String, Vec<f64>)>> = RefCell::new(Vec::new());
    let record = |id: &str, bytes: f64, t: Duration| {
        let mut r = rates.borrow_mut();
        let rate = bytes / t.as_secs_f64() / 1e9;
        match r.iter_mut().find(|(k, _)| k == id) {
            Some((_, v)) => v.push(rate),
            None => r.push((id.to_string(), vec![rate])),
        }
    };

    {
        let buf = read_buffer();
        let mut g = c.benchmark_group("read");
        g.throughput(Throughput::Bytes(POOL_BYTES as u64));
        g.bench_function(format!("sum_{}MiB", POOL_BYTES >> 20), |b| {
            b.iter_custom(|iters| {
                let t = Clock::now();
                for _ in 0..iters {
                    std::hint::black_box(sum_u64(std::hint::black_box(&buf)));
                }
                let e = t.elapsed();
                record("read", (iters as usize * POOL_BYTES) as f64, e);
                e
            })
        });
        g.finish();
    }

    for shape in SHAPES {
        let mut g = c.benchmark_group(format!("gemv/{}", shape.label()));
        for ty in FORMATS {
            let Some((cols, rows)) = shape_for(shape, ty) else { continue };
            let pool: OnceCell<WeightPool> = OnceCell::new();
            let bytes = ty.row_bytes(cols).unwrap() * rows;
            g.throughput(Throughput::Bytes(bytes as u64));
            for tier in tiers() {
                let k = Kernels::with_tier(tier).unwrap();
                let id = format!("gemv/{}/{}/{}", shape.label(), ty, tier);
                let mut out = vec![0.0f32; rows];
                let mut next = 0usize;
                g.bench_function(BenchmarkId::new(ty.name(), tier), |b| {
                    let p = pool.get_or_init(|| WeightPool::new(ty, cols, rows, 42));
                    b.iter_custom(|iters| {
                        let e = p.run(&k, next, iters, &mut out);
                        next = next.wrapping_add(iters as usize);
                        record(&id, (iters as usize * bytes) as f64, e);
                        e
                    })
                });
            }
        }
        g.finish();
    }
    c.final_summary();

    let mut r = rates.into_inner();
    let Some(read) = r.iter_mut().find(|(k, _)| k == "read").map(|(_, v)| median(v)) else {
        println!("(read benchmark filtered out: no ratios)");
        return;
    };
    println!("\n(timed by {})", clock_name());
    println!("plain read: {read:.2} GB/s (median batch); kernels as a share of it (median batch, one thread):");
    println!("| benchmark | GB/s | % of read |");
    println!("|---|---:|---:|");
    for (id, v) in r.iter_mut().filter(|(k, _)| k != "read") {
        let m = median(v);
        println!("| {id} | {m:.2} | {:.0}% |", 100.0 * m / read);
    }
}
