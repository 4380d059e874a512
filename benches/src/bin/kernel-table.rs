//! Prints the kernel throughput table of `quant/README.md`: every weight
//! format × kernel tier × model shape, one thread, as GB/s of weight bytes and
//! as a share of a plain SIMD read of memory measured in the same process.
//!
//! `cargo run -p ember-benches --release --bin kernel-table -- [--formats q4_0,q8_0]
//! [--tiers generic,avx2] [--shapes 49152x576,...] [--round-ms 200] [--rounds 5] [--hot] [--batch N]`
//!
//! `--batch N` measures the prompt-batch product (`Kernels::gemm` with N
//! activation rows, the matrix in cache) instead, as GOP/s (2 × rows × cols
//! × N operations per product).

use ember_benches::{
    clock_name, read_bandwidth, read_buffer, shape_for, tiers, WeightPool, FORMATS, POOL_BYTES, SHAPES,
};
use ember_quant::{GgmlType, Kernels, Tier};
use std::time::Duration;

struct Args {
    formats: Vec<GgmlType>,
    tiers: Vec<Tier>,
    shapes: Vec<String>,
    round: Duration,
    rounds: usize,
    hot: bool,
    batch: Option<usize>,
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
            "-h" | "--help" => {
                println!("kernel-table [--formats q4_0,..] [--tiers generic,avx2,..] [--shapes 49152x576,..] [--round-ms N] [--rounds N] [--hot] [--batch N]");
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
    let read0 = read_bandwidth(&buf, 9);
    eprintln!("plain read of {} MiB: {read0:.2} GB/s", POOL_BYTES >> 20);
    let mut lines = Vec::new();
    for shape in SHAPES {
        if !args.shapes.is_empty() && !args.shapes.contains(&shape.label()) {
            continue;
        }
        for &ty in &args.formats {
            let Some((cols, rows)) = shape_for(shape, ty) else { continue };
            let pool = WeightPool::new(ty, cols, rows, 42);
            for &tier in &args.tiers {
                let k = Kernels::with_tier(tier).expect("tier available");
                let gemv_tier = k.dot(ty).map(|e| e.gemv_tier).unwrap_or(Tier::Generic);
                let cold = pool.throughput(&k, args.round, args.rounds, false);
                let hot = args.hot.then(|| pool.throughput(&k, args.round, args.rounds, true));
                let note = if (cols, rows) != (shape.cols, shape.rows) {
                    format!(" (as {rows}×{cols})")
                } else {
                    String::new()
                };
                eprintln!("{} {} {} {}: {cold:.2} GB/s", shape.label(), ty, tier, gemv_tier);
                lines.push((shape, ty, tier, gemv_tier, note, cold, hot));
            }
        }
    }
    let read1 = read_bandwidth(&buf, 9);
    eprintln!("plain read of {} MiB at the end: {read1:.2} GB/s", POOL_BYTES >> 20);
    // The larger of the two read figures: the conservative ratio.
    let read = read0.max(read1);
    println!("CPU: {}, one thread. Plain SIMD read of a {} MiB buffer: {read0:.2} GB/s at start, {read1:.2} GB/s at end; ratios use {read:.2} GB/s.", cpu_name(), POOL_BYTES >> 20);
    println!(
        "Timed by {}. Weights stream from a {} MiB pool of copies of each matrix (DRAM, not cache).",
        clock_name(),
        POOL_BYTES >> 20
    );
    println!();
    if args.hot {
        println!("| shape | model, tensors | format | tier | GB/s | % of read | GB/s same copy (cache) |");
        println!("|---|---|---|---|---:|---:|---:|");
    } else {
        println!("| shape | model, tensors | format | tier | GB/s | % of read |");
        println!("|---|---|---|---|---:|---:|");
    }
    for (shape, ty, tier, gemv_tier, note, cold, hot) in lines {
        let tier_s = if gemv_tier == tier { tier.to_string() } else { format!("{tier} (kernel: {gemv_tier})") };
        let pct = 100.0 * cold / read;
        let mut row = format!(
            "| {}{} | {}, {} | {} | {} | {:.2} | {:.0}% |",
            shape.label(),
            note,
            shape.model,
            shape.tensors,
            ty,
            tier_s,
            cold,
            pct
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
    for shape in SHAPES {
        if !args.shapes.is_empty() && !args.shapes.contains(&shape.label()) {
            continue;
        }
        for &ty in &args.formats {
            let Some((cols, rows)) = shape_for(shape, ty) else { continue };
            let pool = WeightPool::new(ty, cols, rows, 42);
            for &tier in &args.tiers {
                let k = Kernels::with_tier(tier).expect("tier available");
                let g = pool.gemm_throughput(&k, batch, args.round, args.rounds);
                println!("| {} | {}, {} | {} | {} | {:.1} |", shape.label(), shape.model, shape.tensors, ty, tier, g);
            }
        }
    }
}
