//! Property tests of the real models' tokenizers: decoding what was encoded
//! gives the text back, byte for byte, for random text over many scripts.
//!
//! This holds by construction for every character whose bytes all have a
//! token (byte-level BPE spells any such byte; Gemma's SentencePiece has byte
//! fallback for all 256 bytes and no space prefix), so a failure means ember
//! lost or invented bytes. SmolLM2's vocabulary lacks 21 byte tokens (0x04,
//! 0xC0, 0xF1, 0xF2, ...): llama.cpp drops such bytes, and so does ember (see
//! `bytes_without_a_token_are_dropped`); the random texts avoid them. This is
//! not a check of the ids themselves: that is `tokenizer_reference.rs`.

mod common;

use ember::tokenizer::{StreamDecoder, Tokenizer};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn load(path: &std::path::Path) -> Tokenizer {
    let model = ember::Model::open(path).expect("open model");
    Tokenizer::from_gguf(&model.gguf()).expect("tokenizer")
}

/// Pools of characters that exercise every split rule: letters of several
/// scripts, digits of several systems, combining marks, punctuation and
/// symbols, ASCII and Unicode whitespace, emoji (with ZWJ and variation
/// selectors), and control characters.
const POOLS: &[&str] = &[
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789٠١٢٣٤٥٦٧٨٩०१२३४५६७८९½²",
    " \t\n\r\u{b}\u{c}\u{85}\u{a0}\u{2009}\u{3000}\u{2028}",
    "'\"!?.,;:-_()[]{}<>/\\|@#$%^&*+=~`",
    "éèêëàâäôöûüçñßÉÀÇŒœøåæłśźż",
    "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔЖЗИЙКЛМНОПабвгдеёжз",
    "日本語のテキスト漢字仮名カタカナひらがな中文字符한국어",
    "\u{301}\u{308}\u{327}\u{64b}\u{93f}\u{94d}",
    "🚀😀👩‍👩‍👧❤️👍🏽🇫🇷𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\u{0}\u{1}\u{1f}\u{7f}\u{200b}\u{200d}\u{feff}\u{fffd}",
    "’“”–—…€£¥©®™°±×÷",
];

fn random_text(rng: &mut SmallRng, spellable: &dyn Fn(char) -> bool) -> String {
    let len = rng.gen_range(0..40);
    let mut s = String::new();
    for _ in 0..len {
        if rng.gen_ratio(1, 12) {
            // Any scalar value at all, including unassigned ones.
            let c = loop {
                if let Some(c) = char::from_u32(rng.gen_range(0..0x110000)).filter(|&c| spellable(c)) {
                    break c;
                }
            };
            s.push(c);
        } else {
            let pool: Vec<char> = POOLS[rng.gen_range(0..POOLS.len())].chars().collect();
            let run = rng.gen_range(1..5);
            for _ in 0..run {
                let c = pool[rng.gen_range(0..pool.len())];
                if spellable(c) {
                    s.push(c);
                }
            }
        }
    }
    s
}

fn round_trip(tok: &Tokenizer, name: &str, seed: u64, cases: usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut tokens = 0;
    // A char is spellable if it survives on its own (all its bytes have tokens).
    let spellable = |c: char| {
        let s = c.to_string();
        tok.decode(&tok.encode(&s, false, false).unwrap()).unwrap() == s
    };
    for case in 0..cases {
        let text = random_text(&mut rng, &spellable);
        let ids = tok.encode(&text, false, false).unwrap();
        tokens += ids.len();
        assert_eq!(tok.decode(&ids).unwrap(), text, "{name} case {case}: ids {ids:?}");
        // Streaming gives the same text, chunk by chunk, never a replacement char
        // (the input has U+FFFD itself sometimes: compare whole strings instead).
        let mut d = StreamDecoder::new();
        let mut streamed = String::new();
        for &id in &ids {
            streamed.push_str(d.push(tok, id).unwrap());
        }
        assert_eq!(d.pending_bytes(), 0, "{name} case {case}");
        assert_eq!(streamed, text, "{name} case {case}: streamed");
        // BOS added as the model asks, and rendered as nothing by decode.
        let with_bos = tok.encode(&text, true, false).unwrap();
        assert_eq!(tok.decode(&with_bos).unwrap(), text, "{name} case {case}: with specials");
    }
    println!("{name}: {cases} random texts, {tokens} tokens, all round-tripped");
}

#[test]
fn smollm2_round_trips_random_text() {
    round_trip(&load(&common::smollm2()), "smollm2", 0x5eed_0001, 400);
}

#[test]
fn gemma3_round_trips_random_text() {
    round_trip(&load(&common::gemma3()), "gemma3", 0x5eed_0002, 400);
}

/// Chat-formatted text with its control tokens parsed, rendered back with them.
#[test]
fn special_tokens_round_trip_when_rendered() {
    let cases = [
        (common::smollm2(), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"),
        (common::gemma3(), "<start_of_turn>user\nHi!<end_of_turn>\n<start_of_turn>model\n"),
    ];
    for (path, text) in cases {
        let tok = load(&path);
        let ids = tok.encode(text, false, true).unwrap();
        let specials = ids.iter().filter(|&&id| tok.is_control(id)).count();
        let markers: usize = ["<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>"]
            .iter()
            .map(|m| text.matches(m).count())
            .sum();
        assert_eq!(specials, markers, "{ids:?}");
        assert_eq!(String::from_utf8(tok.detokenize(&ids, true).unwrap()).unwrap(), text);
        // Without parse_special the markers are plain text, and decode gives them back as such.
        let plain = tok.encode(text, false, false).unwrap();
        assert!(plain.iter().all(|&id| !tok.is_control(id)), "{plain:?}");
        assert_eq!(tok.decode(&plain).unwrap(), text);
    }
}

/// llama.cpp looks up each byte of a BPE word that did not merge into a token
/// and skips the bytes that have none; SmolLM2 has no token for byte 0xF2.
#[test]
fn bytes_without_a_token_are_dropped() {
    let s = load(&common::smollm2());
    let ids = s.encode("a\u{b796b}b", false, false).unwrap(); // UTF-8: F2 B7 A5 AB
    let bytes = s.detokenize(&ids, false).unwrap();
    assert_eq!(bytes, [b'a', 0xB7, 0xA5, 0xAB, b'b'], "{ids:?}");
    let g = load(&common::gemma3());
    assert_eq!(g.decode(&g.encode("a\u{b796b}b", false, false).unwrap()).unwrap(), "a\u{b796b}b");
}

#[test]
fn empty_text() {
    let g = load(&common::gemma3());
    assert_eq!(g.encode("", false, true).unwrap(), Vec::<u32>::new());
    assert_eq!(g.encode("", true, true).unwrap(), vec![2]);
    let s = load(&common::smollm2());
    assert_eq!(s.encode("", true, true).unwrap(), Vec::<u32>::new());
    assert_eq!(s.decode(&[]).unwrap(), "");
}
