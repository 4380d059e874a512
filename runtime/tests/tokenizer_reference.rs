//! Tokenizers of the real models against llama.cpp's own output
//! (`../shared/reference/*.json`, made by `../shared/tools/make-reference.py`).

mod common;

use ember::tokenizer::{StreamDecoder, Tokenizer, TokenizerKind};
use serde_json::Value;
use std::path::Path;

fn load(path: &Path) -> Tokenizer {
    let model = ember::Model::open(path).expect("open model");
    Tokenizer::from_gguf(&model.gguf()).expect("tokenizer from gguf")
}

fn reference(name: &str) -> Value {
    let p = common::reference_dir().join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .expect("reference json")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("id array").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

/// Every `tokenize[]` and `generate[]` entry of a reference file; returns the number of checks.
fn check_reference(tok: &Tokenizer, reference: &Value) -> usize {
    let mut checks = 0;
    for t in reference["tokenize"].as_array().expect("tokenize[]") {
        let text = t["text"].as_str().unwrap();
        assert_eq!(tok.encode(text, false, true).unwrap(), ids(&t["ids"]), "encode({text:?}, add_special=false)");
        assert_eq!(
            tok.encode(text, true, true).unwrap(),
            ids(&t["ids_add_special"]),
            "encode({text:?}, add_special=true)"
        );
        checks += 2;
    }
    for g in reference["generate"].as_array().expect("generate[]") {
        let prompt = g["prompt"].as_str().unwrap();
        assert_eq!(tok.encode(prompt, true, true).unwrap(), ids(&g["prompt_ids"]), "prompt {prompt:?}");
        let out = ids(&g["ids"]);
        let text = g["text"].as_str().unwrap();
        assert_eq!(tok.decode(&out).unwrap(), text, "decode of the generated ids of {prompt:?}");
        assert_eq!(stream_all(tok, &out), text, "streamed decode of the generated ids of {prompt:?}");
        checks += 3;
    }
    checks
}

/// Streams `ids` one at a time; every chunk must be whole characters.
fn stream_all(tok: &Tokenizer, ids: &[u32]) -> String {
    let mut d = StreamDecoder::new();
    let mut s = String::new();
    for &id in ids {
        let chunk = d.push(tok, id).unwrap();
        assert!(!chunk.contains('\u{FFFD}'), "replacement char in chunk {chunk:?}");
        s.push_str(chunk);
    }
    assert_eq!(d.pending_bytes(), 0, "bytes left pending at the end");
    s.push_str(&d.flush());
    s
}

#[test]
fn smollm2_matches_llama_cpp() {
    let tok = load(&common::smollm2());
    assert_eq!(tok.kind(), TokenizerKind::BytePairEncoding);
    assert_eq!(tok.pre(), "smollm");
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!((tok.bos(), tok.eos()), (Some(1), Some(2)));
    assert!(!tok.add_bos() && !tok.add_eos());
    let n = check_reference(&tok, &reference("smollm2-135m-instruct.q4_1.json"));
    // The requantized files share the vocabulary: their prompts must give the same ids too.
    let n0 = check_reference(&tok, &reference("smollm2-135m-instruct.q4_0.json"));
    let n8 = check_reference(&tok, &reference("smollm2-135m-instruct.q8_0.json"));
    println!("smollm2: {} checks against llama.cpp passed", n + n0 + n8);
}

#[test]
fn gemma3_matches_llama_cpp() {
    let tok = load(&common::gemma3());
    assert_eq!(tok.kind(), TokenizerKind::SentencePiece);
    assert_eq!(tok.vocab_size(), 262_144);
    assert_eq!((tok.bos(), tok.eos()), (Some(2), Some(1)));
    assert!(tok.add_bos() && !tok.add_eos());
    let n = check_reference(&tok, &reference("gemma-3-270m.q4_k_m.json"));
    println!("gemma3: {n} checks against llama.cpp passed");
}

#[test]
fn end_of_generation_tokens_as_llama_cpp_decides_them() {
    let s = load(&common::smollm2());
    // <|endoftext|>, <|im_end|>, and <reponame> (detected as the FIM repo token).
    assert_eq!(s.eog_tokens(), &[0, 2, 4]);
    assert!(s.is_eog(2) && !s.is_eog(1) && !s.is_eog(19556));
    assert_eq!(s.token_id("<|im_end|>"), Some(2));
    let g = load(&common::gemma3());
    // <eos>, <end_of_turn>, and "</s>" (in llama.cpp's EOG list; Gemma 3 has it as an HTML tag).
    assert_eq!(g.eog_tokens(), &[1, 106, 212]);
    assert_eq!(g.eot(), Some(106));
    assert!(g.is_control(212), "llama.cpp makes EOG tokens CONTROL");
}

#[test]
fn pieces_are_raw_bytes() {
    let s = load(&common::smollm2());
    assert_eq!(s.token_to_piece(905), Some(&b" world"[..]));
    assert_eq!(s.token_to_piece(198), Some(&b"\n"[..]));
    assert_eq!(s.token_to_piece(1), Some(&b"<|im_start|>"[..]));
    assert_eq!(s.token_to_piece(49152), None);
    let g = load(&common::gemma3());
    assert_eq!(g.token_to_piece(236743), Some(&b" "[..]));
    let byte_a = g.token_id("<0x41>").expect("byte token");
    assert_eq!(g.token_to_piece(byte_a), Some(&b"A"[..]));
    assert_eq!(g.token_to_piece(105), Some(&b"<start_of_turn>"[..]));
    // Control tokens render as nothing in decode, as their text in a special-rendering stream.
    assert_eq!(g.decode(&[2, 105, 9259]).unwrap(), "Hello");
    let mut d = StreamDecoder::with_special_tokens();
    assert_eq!(d.push(&g, 105).unwrap(), "<start_of_turn>");
    assert!(matches!(g.decode(&[300_000]), Err(ember::Error::TokenOutOfRange { token: 300_000, .. })));
}

/// Multi-byte characters split over several tokens: nothing invalid comes out mid-character.
#[test]
fn streaming_never_splits_a_character() {
    for tok in [load(&common::smollm2()), load(&common::gemma3())] {
        for text in ["日本語のテキスト", "émoji 🚀 test 123456789", "¿Qué tal? Ça va! Größe", "👩‍👩‍👧 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]
        {
            let ids = tok.encode(text, false, false).unwrap();
            let mut d = StreamDecoder::new();
            let mut out = String::new();
            let mut held_back = false;
            for &id in &ids {
                let chunk = d.push(&tok, id).unwrap();
                assert!(!chunk.contains('\u{FFFD}'), "{text:?}: chunk {chunk:?}");
                out.push_str(chunk);
                held_back |= d.pending_bytes() > 0;
            }
            assert_eq!(d.pending_bytes(), 0);
            assert_eq!(out, text);
            if text.starts_with('👩') {
                assert!(held_back, "{:?}: expected at least one character split across tokens", tok.kind());
            }
        }
    }
}

#[test]
fn gemma3_encodes_apache_license_fast() {
    let tok = load(&common::gemma3());
    let text = std::fs::read_to_string(common::reference_dir().join("apache-2.0.txt")).unwrap();
    let t = std::time::Instant::now();
    let ids = tok.encode(&text, true, true).unwrap();
    let dt = t.elapsed();
    println!(
        "gemma3: apache-2.0.txt ({} bytes) -> {} tokens in {:.2} ms ({})",
        text.len(),
        ids.len(),
        dt.as_secs_f64() * 1e3,
        if cfg!(debug_assertions) { "debug build" } else { "release build" }
    );
    assert_eq!(tok.decode(&ids).unwrap(), text);
    // llama-perplexity -c 256 split this text into 9 chunks for Gemma 3 and 8 for
    // SmolLM2 (reference README), i.e. n_tokens / 256 rounded down.
    assert_eq!(ids.len() / 256, 9, "{} tokens", ids.len());
    let s = load(&common::smollm2());
    let t = std::time::Instant::now();
    let ids = s.encode(&text, true, true).unwrap();
    println!("smollm2: apache-2.0.txt -> {} tokens in {:.2} ms", ids.len(), t.elapsed().as_secs_f64() * 1e3);
    assert_eq!(s.decode(&ids).unwrap(), text);
    assert_eq!(ids.len() / 256, 8, "{} tokens", ids.len());
}
