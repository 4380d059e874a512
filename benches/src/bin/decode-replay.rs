//! Replays the matrix products of decode steps of a GGUF decoder, and
//! nothing else (no attention, norms, RoPE or sampling): the rate ember's
//! decode structure could reach if the rest took no time, to set `ember
//! bench`'s tg figures against on the same machine in the same minutes.
//!
//! ```text
//! cargo run --release -p ember-benches --bin decode-replay -- MODEL.gguf [THREADS] [TOKENS] [barrier|pool|matmul]
//! ```
//!
//! Each step multiplies every layer's matrices in the forward pass's groups
//! (q/k/v; the attention output; gate and up; down), then the output head,
//! each by a fixed activation row quantized once:
//! - `barrier`: THREADS scoped threads, each running one gemv per matrix
//!   on its share of the rows (`split_rows`, multiples of 8 rows), with a
//!   spinning barrier ([`SpinBarrier`], as `kernel-table --threads N`)
//!   after each group;
//! - `pool`: the same shares as the chunks of one [`ThreadPool`] job per
//!   group (the hand-off a decode step pays);
//! - `matmul` (default): one [`ops::matmul`] per group through a
//!   [`ThreadPool`], which also quantizes the input and cuts the rows into
//!   claimed chunks as a decode step does.
//!
//! Prints tokens/s and GB/s of weights for five rounds of TOKENS steps
//! (default 2 threads, 64 steps). `benches/RESULTS.md` (session 15) has
//! what it measured beside `ember bench` on a 2-vCPU VM.

use ember::model::{Config, Weights};
use ember::ops::{self, ActScratch, Mat};
use ember::quant::{GgmlType, Kernels};
use ember::threads::{split_rows, Parallel, ThreadPool};
use ember_benches::SpinBarrier;
use std::time::Instant;

type Error = Box<dyn std::error::Error>;

/// Thread `t`'s share of the `rows` rows of `m` (of `threads`).
fn share(m: &Mat<'_>, threads: usize, t: usize) -> std::ops::Range<usize> {
    split_rows(m.rows, threads, t, 8)
}

/// `m`'s rows `r` times the activation `a`, into `out`.
fn product(k: &Kernels, m: &Mat<'_>, r: std::ops::Range<usize>, a: &[u8], out: &mut [f32]) -> Result<(), Error> {
    let rb = m.row_bytes();
    k.gemv(m.ty, m.cols, &m.data[r.start * rb..r.end * rb], a, &mut out[..r.len()])?;
    Ok(())
}

/// What carries each group's products across the threads (the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Scoped threads with a spinning barrier after each group.
    Barrier,
    /// One `ThreadPool` job per group, fixed shares.
    Pool,
    /// One `ops::matmul` per group.
    Matmul,
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().ok_or("usage: decode-replay MODEL.gguf [THREADS] [TOKENS] [barrier|pool|matmul]")?;
    let threads: usize = args.get(1).map_or(Ok(2), |s| s.parse())?;
    let tokens: usize = args.get(2).map_or(Ok(64), |s| s.parse())?;
    let name = args.get(3).map_or("matmul", |s| s.as_str());
    let mode = match name {
        "barrier" => Mode::Barrier,
        "pool" => Mode::Pool,
        "matmul" => Mode::Matmul,
        other => return Err(format!("unknown mode {other}: barrier, pool or matmul").into()),
    };
    if threads == 0 || tokens == 0 {
        return Err("THREADS and TOKENS must be at least 1".into());
    }

    let model = ember::Model::open(path)?;
    let g = model.gguf();
    // The tensors the forward pass reads, found and checked as it finds them.
    let cfg = Config::from_gguf(&g)?;
    let weights = Weights::from_gguf(&g, &cfg)?;
    let n_layer = weights.n_layer();
    let mut groups: Vec<Vec<Mat<'_>>> = Vec::new();
    for il in 0..n_layer {
        let l = weights.layer(il).ok_or("missing block weights")?;
        groups.push(vec![l.wk, l.wq, l.wv]);
        groups.push(vec![l.wo]);
        groups.push(vec![l.w_gate, l.w_up]);
        groups.push(vec![l.w_down]);
    }
    groups.push(vec![weights.output]);
    let bytes: usize = groups.iter().flatten().map(|m| m.data.len()).sum();
    let widest = groups.iter().flatten().map(|m| m.rows.max(m.cols)).max().unwrap_or(0);

    let k = Kernels::detect()?;
    // One quantized activation per (format, width), shared by every thread.
    let x: Vec<f32> = (0..widest).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let mut acts: Vec<((GgmlType, usize), Vec<u8>)> = Vec::new();
    for m in groups.iter().flatten() {
        let key = (m.act_type(), m.cols);
        if !acts.iter().any(|(k2, _)| *k2 == key) {
            let mut a = vec![0u8; ember::quant::matmul::act_row_bytes(key.0, key.1)?];
            k.quantize_activations(key.0, &x[..key.1], &mut a)?;
            acts.push((key, a));
        }
    }
    let act_of = |m: &Mat<'_>| acts.iter().find(|(key, _)| *key == (m.act_type(), m.cols)).map(|(_, a)| a.as_slice());

    println!("{path}: {n_layer} blocks, {:.1} MB of weights per step, {threads} threads, {name}", bytes as f64 / 1e6);
    for round in 0..5 {
        let t0 = Instant::now();
        match mode {
            Mode::Barrier => {
                let bar = SpinBarrier::new(threads);
                std::thread::scope(|s| -> Result<(), Error> {
                    let handles: Vec<_> = (0..threads)
                        .map(|t| {
                            let (groups, bar, k, act_of) = (&groups, &bar, &k, &act_of);
                            s.spawn(move || -> Result<(), String> {
                                let mut out = vec![0f32; widest];
                                for _ in 0..tokens {
                                    for grp in groups {
                                        for m in grp {
                                            let a = act_of(m).ok_or("no activation")?;
                                            product(k, m, share(m, threads, t), a, &mut out)
                                                .map_err(|e| e.to_string())?;
                                        }
                                        bar.wait();
                                    }
                                }
                                Ok(())
                            })
                        })
                        .collect();
                    for h in handles {
                        h.join().map_err(|_| "a replay thread panicked")??;
                    }
                    Ok(())
                })?;
            }
            Mode::Pool | Mode::Matmul => {
                let pool = ThreadPool::new(threads);
                let mut outs: Vec<Vec<f32>> = (0..ops::MAX_GROUP).map(|_| vec![0f32; widest]).collect();
                let slot = acts.iter().map(|(_, a)| a.len()).max().unwrap_or(0).next_multiple_of(64);
                let mut scratch = vec![0u8; ops::MAX_GROUP * slot];
                let bufs: Vec<std::sync::Mutex<Vec<f32>>> =
                    (0..threads).map(|_| std::sync::Mutex::new(vec![0f32; widest])).collect();
                for _ in 0..tokens {
                    for grp in &groups {
                        if mode == Mode::Matmul {
                            let mut jobs: Vec<(&Mat<'_>, &mut [f32])> =
                                grp.iter().zip(outs.iter_mut()).map(|(m, o)| (m, &mut o[..m.rows])).collect();
                            let mut sc = ActScratch { buf: &mut scratch, slot_bytes: slot };
                            ops::matmul(&k, &pool, &x, 1, grp[0].cols, &mut jobs, &mut sc)?;
                        } else {
                            let err = std::sync::Mutex::new(None);
                            pool.run(threads, &|c, _| {
                                let mut out = bufs[c].lock().unwrap_or_else(|e| e.into_inner());
                                for m in grp {
                                    let r = act_of(m).ok_or_else(|| "no activation".to_string()).and_then(|a| {
                                        product(&k, m, share(m, threads, c), a, &mut out).map_err(|e| e.to_string())
                                    });
                                    if let Err(e) = r {
                                        *err.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                                    }
                                }
                            });
                            if let Some(e) = err.into_inner().unwrap_or_else(|e| e.into_inner()) {
                                return Err(e.into());
                            }
                        }
                    }
                }
            }
        }
        let s = t0.elapsed().as_secs_f64();
        println!(
            "round {round}: {:.1} tokens/s, {:.1} GB/s",
            tokens as f64 / s,
            tokens as f64 * bytes as f64 / s / 1e9
        );
    }
    Ok(())
}
