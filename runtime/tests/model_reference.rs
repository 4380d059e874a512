//! End to end against llama.cpp: for every prompt of the reference files in
//! `../shared/reference/` (made by llama.cpp's server, greedy), feed the
//! reference `prompt_ids`, decode greedily, and require exactly the reference
//! `ids`. Run in release: `cargo test --release -p ember --features e2e --test model_reference`.
#![cfg(feature = "e2e")]

mod common;

use ember::sampler::{SamplerParams, SamplerScratch};
use ember::session::{Session, SessionOptions};
use std::time::Instant;

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

fn run_reference(model_path: std::path::PathBuf, reference: &str, threads: usize, extra_eog: &[u32]) {
    let model = ember::Model::open(&model_path).unwrap();
    let mut eog = eog_ids(&model.gguf());
    eog.extend_from_slice(extra_eog);
    let opts = SessionOptions { ctx_len: 512, threads, ..Default::default() };
    let mut session = Session::new(&model, opts).unwrap();
    println!("{} ({}), kernels {}", reference, session.config().arch.name(), session.kernels().describe());
    let mut scratch = SamplerScratch::new(session.config().n_vocab, 64);
    let (mut prompt_tokens, mut prompt_time, mut gen_tokens, mut gen_time) = (0usize, 0.0f64, 0usize, 0.0f64);
    let mut failures = Vec::new();
    for case in cases(reference) {
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

#[test]
#[ignore = "greedy ids differ from the AVX-512 llama.cpp reference until ember's kernels reduce in ggml's float order (see issue 4 note); run with --ignored"]
fn smollm2_q4_1_matches_llama_cpp_greedy_ids() {
    run_reference(common::smollm2(), "smollm2-135m-instruct.q4_1.json", 2, &[]);
}
