//! Prompt and generation speed of the decoder on the real models, printed as
//! llama-bench prints them (pp = prompt tokens/s, tg = generated tokens/s).
//! A measurement, not a benchmark harness (that is `ember bench`): it runs
//! each case a few times and reports the median.
//!
//! `cargo test --release -p ember --features e2e --test model_speed -- --nocapture --test-threads=1`
#![cfg(feature = "e2e")]

mod common;

use ember::sampler::{SamplerParams, SamplerScratch};
use ember::session::{Session, SessionOptions};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn measure(path: std::path::PathBuf, name: &str, threads: usize, pp: usize, tg: usize) -> (f64, f64) {
    let model = ember::Model::open(path).unwrap();
    let mut s = Session::new(&model, SessionOptions { ctx_len: pp + tg + 8, batch: pp, threads, ..Default::default() })
        .unwrap();
    let nv = s.config().n_vocab;
    let prompt: Vec<u32> = (0..pp as u32).map(|i| 100 + (i * 7919) % (nv as u32 - 200)).collect();
    let mut scratch = SamplerScratch::new(nv, 64);
    let (mut pps, mut tgs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        s.reset();
        let t = Instant::now();
        s.prefill(&prompt).unwrap();
        pps.push(pp as f64 / t.elapsed().as_secs_f64());
        s.reset();
        s.prefill(&prompt[..1]).unwrap();
        let mut smp = scratch.sampler(SamplerParams::greedy()).unwrap();
        let t = Instant::now();
        for _ in 0..tg {
            let tok = s.decode_next(&mut smp).unwrap();
            assert!((tok as usize) < nv);
        }
        tgs.push(tg as f64 / t.elapsed().as_secs_f64());
    }
    let (p, g) = (median(pps), median(tgs));
    println!("| {name} | {} | {threads} | pp{pp} {p:.1} | tg{tg} {g:.1} |", s.kernels().tier());
    (p, g)
}

#[test]
fn smollm2_q4_1_speed() {
    for threads in [1, 2] {
        let (p, g) = measure(common::smollm2(), "SmolLM2 Q4_1", threads, 128, 64);
        assert!(p > 0.0 && g > 0.0);
    }
}

#[test]
fn gemma3_q4_k_m_speed() {
    for threads in [1, 2] {
        let (p, g) = measure(common::gemma3(), "Gemma 3 270M Q4_K_M", threads, 128, 64);
        assert!(p > 0.0 && g > 0.0);
    }
}
