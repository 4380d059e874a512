//! Prints the kernel throughput table of `quant/README.md`: every weight
//! format × kernel tier × model shape, one thread, as GB/s of weight bytes and
//! as a share of a plain SIMD read of memory measured in the same process.
//!
//! `cargo run -p ember-benches --release --bin kernel-table -- [--formats q4_0,q8_0]
//! [--tiers generic,avx2] [--shapes 49152x576,...] [--round-ms 200] [--rounds 5] [--hot] [--batch N]
//! [--threads N]`
//!
//! `--threads N` (N > 1) runs each product as a decode step does: N threads,
//! each multiplying its own share of the rows (a multiple of 8 rows) of the
//! same copy, with a barrier after every product (spinning, as the
//! runtime's pool does); timed by the wall clock and set against a plain
//! read by N threads.
//!
//! `--batch N` measures the prompt-batch product (`Kernels::gemm` with N
//! activation rows, the matrix in cache) instead, as GOP/s (2 × rows × cols
//! × N operations per product).

use ember_benches::{
    clock_name, median, read_bandwidth, read_bandwidth_streams, read_bandwidth_threads, read_buffer, shape_for, tiers,
    Shape, SpinBarrier, WeightPool, FORMATS, POOL_BYTES, SHAPES,
};
use ember_quant::{GgmlType, Kernels, Tier};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Streams per thread of the streamed read (as the decode gemvs' `RowStreams`).
const STREAMS: usize = 4;
use std::time::{Duration, Instant};

struct Args {
    formats: Vec<GgmlType>,
    tiers: Vec<Tier>,
    shapes: Vec<String>,
    round: Duration,
    rounds: usize,
    hot: bool,
    batch: Option<usize>,
    threads: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        formats: FORMATS.to_vec(),
        tiers: tiers(),
        shapes: Vec::new(),
        round: Duration::from_millis(200),
        rounds: 5,
        hot: false,
        batch: None,
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--formats" => {
                a.formats = val()?
                    .split(',')
                    .map(|s| GgmlType::from_name(s).ok_or(format!("unknown format {s}")))
                    .collect::<Result<_, _>>()?
            }
            "--tiers" => {
                a.tiers = val()?
                    .split(',')
                    .map(|s| {
                        Tier::from_name(s)
                            .filter(|t| t.is_available())
                            .ok_or(format!("tier {s} unknown or not on this CPU"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--shapes" => a.shapes = val()?.split(',').map(|s| s.replace('x', "×")).collect(),
            "--round-ms" => a.round = Duration::from_millis(val()?.parse().map_err(|e| format!("--round-ms: {e}"))?),
            "--rounds" => a.rounds = val()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--hot" => a.hot = true,
            "--batch" => a.batch = Some(val()?.parse().map_err(|e| format!("--batch: {e}"))?),
            "--threads" => {
                a.threads = val()?.parse().map_err(|e| format!("--threads: {e}"))?;
                if a.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            "-h" | "--help" => {
                println!("kernel-table [--formats q4_0,..] [--tiers generic,avx2,..] [--shapes 49152x576,..] [--round-ms N] [--rounds N] [--hot] [--batch N] [--threads N]");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(a)
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kernel-table: {e}");
            std::process::exit(2);
        }
    };
    if let Some(batch) = args.batch {
        gemm_table(&args, batch);
        return;
    }
    let buf = read_buffer();
    let threads = args.threads;
    let read_n =
        |buf: &[u64]| if threads > 1 { read_bandwidth_threads(buf, threads, 9) } else { read_bandwidth(buf, 9) };
    let read_s = |buf: &[u64]| read_bandwidth_streams(buf, threads, STREAMS, 9);
    let read0 = read_n(&buf);
    let sread0 = read_s(&buf);
    eprintln!("plain read of {} MiB: {read0:.2} GB/s, {STREAMS}-stream read {sread0:.2} GB/s", POOL_BYTES >> 20);
    let mut lines = Vec::new();
    for (shape, ty, cols, rows) in selected(&args) {
        let pool = WeightPool::new(ty, cols, rows, 42);
        for &tier in &args.tiers {
            let k = Kernels::with_tier(tier).expect("tier available");
            let gemv_tier = k.dot(ty).map(|e| e.gemv_tier).unwrap_or(Tier::Generic);
            let run = |hot: bool| {
                if threads > 1 {
                    throughput_threads(&pool, &k, ty, (cols, rows), threads, args.round, args.rounds, hot)
                } else {
                    pool.throughput(&k, args.round, args.rounds, hot)
                }
            };
            let cold = run(false);
            let hot = args.hot.then(|| run(true));
            let note =
                if (cols, rows) != (shape.cols, shape.rows) { format!(" (as {rows}×{cols})") } else { String::new() };
            eprintln!("{} {} {} {}: {cold:.2} GB/s", shape.label(), ty, tier, gemv_tier);
            lines.push((shape, ty, tier, gemv_tier, note, cold, hot));
        }
    }
    let read1 = read_n(&buf);
    let sread1 = read_s(&buf);
    eprintln!(
        "plain read of {} MiB at the end: {read1:.2} GB/s, {STREAMS}-stream read {sread1:.2} GB/s",
        POOL_BYTES >> 20
    );
    // The larger of the two read figures: the conservative ratio.
    let read = read0.max(read1);
    let sread = sread0.max(sread1);
    let who = if threads > 1 { format!("{threads} threads") } else { "one thread".to_string() };
    println!("CPU: {}, {who}. Plain SIMD read of a {} MiB buffer: {read0:.2} GB/s at start, {read1:.2} GB/s at end; ratios use {read:.2} GB/s.", cpu_name(), POOL_BYTES >> 20);
    println!(
        "The same buffer read as {STREAMS} interleaved streams per thread (the decode gemvs' order): {sread0:.2} GB/s at start, {sread1:.2} at end; ratios use {sread:.2} GB/s."
    );
    let clock = if threads > 1 { "wall-clock time".to_string() } else { clock_name().to_string() };
    println!(
        "Timed by {clock}. Weights stream from a {} MiB pool of copies of each matrix (DRAM, not cache).",
        POOL_BYTES >> 20
    );
    if threads > 1 {
        println!(
            "Each product: {threads} threads, each on its own share of the rows, then a barrier (as a decode step)."
        );
    }
    println!();
    if args.hot {
        println!("| shape | model, tensors | format | tier | GB/s | % of read | % of {STREAMS}-stream read | GB/s same copy (cache) |");
        println!("|---|---|---|---|---:|---:|---:|---:|");
    } else {
        println!("| shape | model, tensors | format | tier | GB/s | % of read | % of {STREAMS}-stream read |");
        println!("|---|---|---|---|---:|---:|---:|");
    }
    for (shape, ty, tier, gemv_tier, note, cold, hot) in lines {
        let tier_s = if gemv_tier == tier { tier.to_string() } else { format!("{tier} (kernel: {gemv_tier})") };
        let pct = 100.0 * cold / read;
        let mut row = format!(
            "| {}{} | {}, {} | {} | {} | {:.2} | {:.0}% | {:.0}% |",
            shape.label(),
            note,
            shape.model,
            shape.tensors,
            ty,
            tier_s,
            cold,
            pct,
            100.0 * cold / sread
        );
        if let Some(h) = hot {
            row.push_str(&format!(" {h:.2} |"));
        }
        println!("{row}");
    }
}

/// `--batch N`: GOP/s of `Kernels::gemm` per format, tier and shape.
fn gemm_table(args: &Args, batch: usize) {
    println!(
        "CPU: {}, one thread, timed by {}; gemm with {batch} activation rows, matrix in cache.",
        cpu_name(),
        clock_name()
    );
    println!();
    println!("| shape | model, tensors | format | tier | GOP/s |");
    println!("|---|---|---|---|---:|");
    for (shape, ty, cols, rows) in selected(args) {
        let pool = WeightPool::new(ty, cols, rows, 42);
        for &tier in &args.tiers {
            let k = Kernels::with_tier(tier).expect("tier available");
            let g = pool.gemm_throughput(&k, batch, args.round, args.rounds);
            println!("| {} | {}, {} | {} | {} | {:.1} |", shape.label(), shape.model, shape.tensors, ty, tier, g);
        }
    }
}

/// The (shape, format, columns, rows) that `--shapes` and `--formats` select,
/// in table order: shapes a format cannot take ([`shape_for`]) are left out.
fn selected(args: &Args) -> impl Iterator<Item = (Shape, GgmlType, usize, usize)> + '_ {
    SHAPES.into_iter().filter(|shape| args.shapes.is_empty() || args.shapes.contains(&shape.label())).flat_map(
        move |shape| args.formats.iter().filter_map(move |&ty| shape_for(shape, ty).map(|(c, r)| (shape, ty, c, r))),
    )
}

/// GB/s of weights with `threads` threads per product, as a decode step runs
/// one: thread `t` multiplies its share of the rows (a multiple of 8 rows,
/// the last thread the rest) of the same copy of the matrix, then all wait
/// at a barrier. Copies are walked (DRAM) or, with `hot`, copy 0 every
/// time. The median of `rounds` rounds of about `round` each, after one
/// warm-up round.
#[allow(clippy::too_many_arguments)]
fn throughput_threads(
    pool: &WeightPool,
    k: &Kernels,
    ty: GgmlType,
    (cols, rows): (usize, usize),
    threads: usize,
    round: Duration,
    rounds: usize,
    hot: bool,
) -> f64 {
    let row_bytes = ty.row_bytes(cols).expect("whole blocks");
    let share = (rows / threads).next_multiple_of(8).min(rows);
    let matrix_bytes = (rows * row_bytes) as f64;
    // One round: products until `round` has passed; returns GB/s.
    let one = || {
        // Thread 0 writes the index of the first product not to run; every
        // thread reads it after the barrier that starts product `i`.
        let stop = AtomicUsize::new(usize::MAX);
        let bar = SpinBarrier::new(threads);
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                let (stop, bar) = (&stop, &bar);
                s.spawn(move || {
                    let r0 = (t * share).min(rows);
                    let r1 = if t + 1 == threads { rows } else { (r0 + share).min(rows) };
                    let mut out = vec![0.0f32; r1 - r0];
                    let mut i = 0;
                    loop {
                        bar.wait();
                        if stop.load(Ordering::Relaxed) <= i {
                            break;
                        }
                        let m = pool.matrix(if hot { 0 } else { i });
                        if r1 > r0 {
                            k.gemv(ty, cols, &m[r0 * row_bytes..r1 * row_bytes], pool.activation(), &mut out)
                                .expect("gemv");
                            std::hint::black_box(&mut out);
                        }
                        i += 1;
                        if t == 0 && t0.elapsed() >= round {
                            stop.store(i, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let n = stop.load(Ordering::Relaxed);
        n as f64 * matrix_bytes / t0.elapsed().as_secs_f64() / 1e9
    };
    one();
    let mut rates: Vec<f64> = (0..rounds.max(1)).map(|_| one()).collect();
    median(&mut rates)
}
