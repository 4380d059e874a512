//! End to end against llama.cpp: for every prompt of the reference files in
//! `../shared/reference/` (made by llama.cpp's server, greedy, f16 KV cache,
//! flash attention), feed the reference `prompt_ids`, decode greedily, and
//! require exactly the reference `ids`.
//!
//! Run in release: `cargo test --release -p ember --features e2e --test model_reference -- --nocapture`.
//!
//! Why two kernel tables. Greedy ids are decided by logits that are often
//! within 0.01–0.3 of each other, and with an f16 KV cache a last-bit
//! difference anywhere (one float summed in another order) flips f16
//! roundings and moves logits by that much. llama.cpp itself gives different
//! ids on an AVX2 and an AVX-512 machine for 5 of the 6 SmolLM2 prompts. So
//! matching the reference exactly needs llama.cpp's arithmetic, operation by
//! operation. The forward pass (`ember::model`, `ember::ops`) mirrors it;
//! the matrix kernels come from `ember-quant`. The `ggml_x86` table below is
//! the scalar statement of what ggml's x86 kernels compute (lane layout, FMA,
//! reduction order, activation rounding); with it the forward pass reproduces
//! the reference exactly, which checks everything ember owns outside the
//! kernels; the shipped kernels (`Kernels::detect`) follow the same order.

#![cfg(feature = "e2e")]

mod common;

use ember::quant::Kernels;
use ember::sampler::{SamplerParams, SamplerScratch};
use ember::session::{Session, SessionOptions};
use std::time::Instant;

/// ggml's x86 kernels (`ggml-cpu/arch/x86/quants.c`, AVX2 code, which AVX-512
/// builds also run for these formats), written lane by lane.
mod ggml_x86 {
    use ember::quant::{f16, q4_1::BlockQ4_1, q8_0::BlockQ8_0, q8_1::BlockQ8_1, Kernels, Tier};

    /// `hsum_float_8`: (lanes i + i+4), then (0+2, 1+3), then 0+1.
    fn hsum8(a: [f32; 8]) -> f32 {
        let r = [a[4] + a[0], a[5] + a[1], a[6] + a[2], a[7] + a[3]];
        (r[0] + r[2]) + (r[1] + r[3])
    }

    /// `quantize_row_q8_0/q8_1` (AVX2): `d = amax / 127`, `id = 127 / amax`,
    /// `q = round_half_even(x * id)`.
    fn q8_block(x: &[f32]) -> (f32, [i8; 32]) {
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut q = [0i8; 32];
        for (o, &v) in q.iter_mut().zip(x) {
            *o = (v * id).round_ties_even() as i32 as i8;
        }
        (d, q)
    }

    pub fn quantize_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
        for (b, xb) in out.iter_mut().zip(x.chunks_exact(32)) {
            let (d, q) = q8_block(xb);
            b.d = f16::from_f32(d);
            b.qs = q;
        }
    }

    /// As Q8_0, plus `s = f16(d * sum(q))` with the f32 `d`.
    pub fn quantize_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
        for (b, xb) in out.iter_mut().zip(x.chunks_exact(32)) {
            let (d, q) = q8_block(xb);
            let sum: i32 = q.iter().map(|&v| v as i32).sum();
            b.d = f16::from_f32(d);
            b.s = f16::from_f32(d * sum as f32);
            b.qs = q;
        }
    }

    /// `ggml_vec_dot_q4_1_q8_1`: lane l holds elements 4l..4l+3 (low nibbles
    /// are elements 0..15, high nibbles 16..31) as an exact integer sum;
    /// `acc_l = fma(d_w * d_a, sum_l, acc_l)`; `summs = fma(m, s, summs)`
    /// (GCC contracts the C expression); result `hsum8(acc) + summs`.
    pub fn dot_q4_1_q8_1(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
        let mut acc = [0.0f32; 8];
        let mut summs = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            summs = x.m.to_f32().mul_add(y.s.to_f32(), summs);
            let d = x.d.to_f32() * y.d.to_f32();
            let mut q = [0i32; 32];
            for j in 0..16 {
                q[j] = (x.qs[j] & 0x0f) as i32;
                q[j + 16] = (x.qs[j] >> 4) as i32;
            }
            for (l, v) in acc.iter_mut().enumerate() {
                let s: i32 = (0..4).map(|k| q[4 * l + k] * y.qs[4 * l + k] as i32).sum();
                *v = d.mul_add(s as f32, *v);
            }
        }
        hsum8(acc) + summs
    }

    /// `ggml_vec_dot_q8_0_q8_0`: the same lanes, `acc_l = fma(d_w * d_a, sum_l, acc_l)`.
    pub fn dot_q8_0_q8_0(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
        let mut acc = [0.0f32; 8];
        for (x, y) in w.iter().zip(a) {
            let d = x.d.to_f32() * y.d.to_f32();
            for (l, v) in acc.iter_mut().enumerate() {
                let s: i32 = (0..4).map(|k| x.qs[4 * l + k] as i32 * y.qs[4 * l + k] as i32).sum();
                *v = d.mul_add(s as f32, *v);
            }
        }
        hsum8(acc)
    }

    /// The shipped table with the Q4_1, Q8_0 and activation-quantizer entries
    /// replaced by the functions above.
    pub fn kernels() -> Kernels {
        let mut k = Kernels::best();
        k.q4_1 = ember::quant::dot_entry!(Tier::Generic, BlockQ4_1, BlockQ8_1, dot_q4_1_q8_1);
        k.q8_0 = ember::quant::dot_entry!(Tier::Generic, BlockQ8_0, BlockQ8_0, dot_q8_0_q8_0);
        k.quantize_q8_0 = ember::quant::quantize_entry!(Tier::Generic, BlockQ8_0, quantize_q8_0);
        k.quantize_q8_1 = ember::quant::quantize_entry!(Tier::Generic, BlockQ8_1, quantize_q8_1);
        k
    }
}

struct Case {
    prompt: String,
    prompt_ids: Vec<u32>,
    ids: Vec<u32>,
}

fn cases(file: &str) -> Vec<Case> {
    let path = common::reference_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ids = |x: &serde_json::Value| x.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
    v["generate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| Case {
            prompt: g["prompt"].as_str().unwrap().to_string(),
            prompt_ids: ids(&g["prompt_ids"]),
            ids: ids(&g["ids"]),
        })
        .collect()
}

/// End-of-generation ids from the file's tokenizer metadata.
fn eog_ids(file: &ember::gguf::File<'_>) -> Vec<u32> {
    ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]
        .iter()
        .filter_map(|k| file.get_u64(k))
        .map(|v| v as u32)
        .collect()
}

fn run_reference(model_path: std::path::PathBuf, reference: &str, threads: usize, kernels: Option<Kernels>) {
    run_reference_except(model_path, reference, threads, kernels, &[]);
}

/// [`run_reference`] without the prompts that start with one of `skip`
/// (each must match exactly one prompt).
fn run_reference_except(
    model_path: std::path::PathBuf,
    reference: &str,
    threads: usize,
    kernels: Option<Kernels>,
    skip: &[&str],
) {
    let model = ember::Model::open(&model_path).unwrap();
    let eog = eog_ids(&model.gguf());
    let opts = SessionOptions { ctx_len: 512, threads, ..Default::default() };
    let mut session = match kernels {
        Some(k) => Session::with_kernels(model.gguf(), opts, k).unwrap(),
        None => Session::new(&model, opts).unwrap(),
    };
    println!("{} ({}), kernels {}", reference, session.config().arch.name(), session.kernels().describe());
    let mut scratch = SamplerScratch::new(session.config().n_vocab, 64);
    let (mut prompt_tokens, mut prompt_time, mut gen_tokens, mut gen_time) = (0usize, 0.0f64, 0usize, 0.0f64);
    let mut failures = Vec::new();
    let all = cases(reference);
    for prefix in skip {
        assert_eq!(all.iter().filter(|c| c.prompt.starts_with(prefix)).count(), 1, "skip {prefix:?}");
    }
    for case in all.into_iter().filter(|c| !skip.iter().any(|p| c.prompt.starts_with(p))) {
        session.reset();
        let mut sampler = scratch.sampler(SamplerParams::greedy()).unwrap();
        let t = Instant::now();
        session.prefill(&case.prompt_ids).unwrap();
        prompt_time += t.elapsed().as_secs_f64();
        prompt_tokens += case.prompt_ids.len();
        let t = Instant::now();
        let mut got = Vec::new();
        while got.len() < case.ids.len() {
            got.push(session.decode_next(&mut sampler).unwrap());
        }
        gen_time += t.elapsed().as_secs_f64();
        gen_tokens += got.len();
        if case.ids.len() < 32 {
            let last = *case.ids.last().unwrap();
            assert!(
                eog.contains(&last),
                "{:?}: the reference stopped early at {last}, which is not an end-of-generation id {eog:?}",
                case.prompt
            );
        }
        if got != case.ids {
            let first = got.iter().zip(&case.ids).position(|(a, b)| a != b).unwrap_or(0);
            failures.push(format!(
                "{:?}: first difference at token {first}\n  got  {got:?}\n  want {:?}",
                case.prompt, case.ids
            ));
        } else {
            println!("  ok {:?} ({} tokens)", case.prompt, got.len());
        }
    }
    println!(
        "  prompt: {prompt_tokens} tokens, {:.1} tok/s; generation: {gen_tokens} tokens, {:.1} tok/s ({threads} threads)",
        prompt_tokens as f64 / prompt_time,
        gen_tokens as f64 / gen_time
    );
    assert!(failures.is_empty(), "{} prompt(s) differ from llama.cpp:\n{}", failures.len(), failures.join("\n"));
}

/// The forward pass with ggml's x86 kernel arithmetic reproduces llama.cpp's ids exactly.
#[test]
fn smollm2_q4_1_forward_matches_llama_cpp_with_ggml_x86_kernels() {
    run_reference(common::smollm2(), "smollm2-135m-instruct.q4_1.json", 2, Some(ggml_x86::kernels()));
}

/// The shipped kernels (`Kernels::detect`): `ember-quant`'s AVX2 Q4_1/Q8_0
/// dot products and Q8_0/Q8_1 quantizers follow ggml's x86 float order, so
/// the ids are llama.cpp's exactly.
#[test]
fn smollm2_q4_1_matches_llama_cpp_greedy_ids() {
    run_reference(common::smollm2(), "smollm2-135m-instruct.q4_1.json", 2, None);
}

/// Gemma 3: ember-quant's Q4_K (llama.cpp's repacked order), Q5_0, Q8_0 and
/// Q6_K (tiled order for prompt batches of 8+ rows) products are
/// bit-identical to llama.cpp's tensors, and the session splits the prompt as
/// llama-server does for SWA models; every other operation was checked
/// against llama.cpp's tensors in session 1 (norms, q/k norms, NeoX RoPE with
/// both bases, GeGLU, attention). Attention's f16 value accumulator follows
/// the reference build's AVX512-FP16 code: the scale rounded to f16 and the
/// f16 FMA rounded once (`ember_quant::attn::F16_STEP`); rounding that FMA
/// through f32 instead makes "The Raspberry Pi…" differ from token 12.
#[test]
fn gemma3_q4_k_m_matches_llama_cpp_greedy_ids() {
    run_reference(common::gemma3(), "gemma-3-270m.q4_k_m.json", 2, None);
}
