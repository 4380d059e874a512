//! Tokenizers built from small hand-made GGUF vocabularies: each rule of
//! llama.cpp's algorithms on a case small enough to work out by hand, and
//! malformed tokenizer metadata rejected with an error (never a panic).

use ember::gguf::{File, MetaValue, ValueType, Writer};
use ember::tokenizer::{Tokenizer, TokenizerKind};
use ember::Error;

fn strs(v: &[&str]) -> MetaValue {
    MetaValue::Array(ValueType::Str, v.iter().map(|s| MetaValue::Str(s.to_string())).collect())
}

fn build(meta: &[(&str, MetaValue)]) -> Result<Tokenizer, Error> {
    let mut w = Writer::new();
    for (k, v) in meta {
        w.add_meta(k, v).unwrap();
    }
    let bytes = w.to_bytes();
    Tokenizer::from_gguf(&File::parse(&bytes).unwrap())
}

/// GPT-2's byte → char mapping (printable Latin-1 bytes stay, the rest go to U+0100..).
fn byte_char(b: u8) -> char {
    let printable = |b: u32| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if printable(b as u32) {
        return b as char;
    }
    let n = (0..b as u32).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(0x100 + n).unwrap()
}

/// A byte-level BPE vocabulary: ids 0..256 are the bytes, then a few merged tokens.
fn bpe(pre: &str, extra: &[(&str, MetaValue)]) -> Result<Tokenizer, Error> {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    // 256..
    for t in ["or", "ld", "Ġw", "Ġwor", "Ġworld", "xyz", "<|bos|>", "<|eot_id|>"] {
        tokens.push(t.to_string());
    }
    let mut types = vec![1i32; tokens.len()];
    types[262] = 3;
    types[263] = 3;
    let token_refs: Vec<&str> = tokens.iter().map(|s| s.as_str()).collect();
    let mut meta = vec![
        ("tokenizer.ggml.model", MetaValue::Str("gpt2".into())),
        ("tokenizer.ggml.pre", MetaValue::Str(pre.into())),
        ("tokenizer.ggml.tokens", strs(&token_refs)),
        (
            "tokenizer.ggml.token_type",
            MetaValue::Array(ValueType::I32, types.into_iter().map(MetaValue::I32).collect()),
        ),
        ("tokenizer.ggml.merges", strs(&["o r", "l d", "Ġ w", "Ġw or", "Ġwor ld"])),
        ("tokenizer.ggml.bos_token_id", MetaValue::U32(262)),
        ("tokenizer.ggml.eos_token_id", MetaValue::U32(263)),
    ];
    meta.extend(extra.iter().cloned());
    build(&meta)
}

#[test]
fn bpe_merges_by_rank_and_pre_tokenizers_split_as_llama_cpp() {
    let t = bpe("gpt-2", &[]).unwrap();
    assert_eq!(t.kind(), TokenizerKind::BytePairEncoding);
    let b = |c: u8| c as u32;
    // " world" is one word; merges: "Ġ w" → "Ġw", "o r" → "or", "Ġw or", "l d", "Ġwor ld".
    assert_eq!(t.encode(" world", false, false).unwrap(), [260]);
    // Without the space: "or" and "ld" merge, "w" stays alone.
    assert_eq!(t.encode("world", false, false).unwrap(), [b(b'w'), 256, 257]);
    // "xyz" has no merges: three byte tokens under gpt-2...
    assert_eq!(t.encode("xyz", false, false).unwrap(), [b(b'x'), b(b'y'), b(b'z')]);
    // ...one token under llama3, which emits a whole word that is in the vocabulary.
    let l3 = bpe("llama3", &[]).unwrap();
    assert_eq!(l3.encode("xyz", false, false).unwrap(), [261]);
    // gpt-2 keeps digit runs whole, llama3 cuts them in threes, qwen2 in ones.
    assert_eq!(t.encode("12345", false, false).unwrap().len(), 5); // one word, no merges: 5 bytes
    let digits = |tok: &Tokenizer| tok.encode("12345", false, false).unwrap();
    assert_eq!(digits(&l3), [b(b'1'), b(b'2'), b(b'3'), b(b'4'), b(b'5')]);
    // Bytes, not chars: "é" is two byte tokens.
    assert_eq!(t.encode("é", false, false).unwrap(), [0xC3, 0xA9]);
    assert_eq!(t.decode(&[0xC3, 0xA9, 260]).unwrap(), "é world");
    // gpt-2 cleans spaces on decode (llama.cpp's clean_spaces), smollm does not.
    assert_eq!(t.decode(&t.encode("a , b", false, false).unwrap()).unwrap(), "a, b");
    let sm = bpe("smollm", &[]).unwrap();
    assert_eq!(sm.decode(&sm.encode("a , b", false, false).unwrap()).unwrap(), "a , b");
}

#[test]
fn bpe_special_tokens_and_bos_defaults() {
    // llama3 adds BOS by default; gpt-2 does not; the file's flag overrides both.
    let l3 = bpe("llama3", &[]).unwrap();
    assert_eq!(l3.encode("x", true, true).unwrap(), [262, b'x' as u32]);
    let g = bpe("gpt-2", &[]).unwrap();
    assert_eq!(g.encode("x", true, true).unwrap(), [b'x' as u32]);
    let g = bpe("gpt-2", &[("tokenizer.ggml.add_bos_token", MetaValue::Bool(true))]).unwrap();
    assert_eq!(g.encode("x", true, true).unwrap(), [262, b'x' as u32]);
    // Control text is a token only with parse_special.
    assert_eq!(g.encode("<|eot_id|>x", false, true).unwrap(), [263, b'x' as u32]);
    assert_eq!(g.encode("<|eot_id|>", false, false).unwrap().len(), 10);
    assert!(g.is_eog(263));
    assert_eq!(g.eot(), Some(263));
    assert_eq!(g.decode(&[263, b'x' as u32]).unwrap(), "x");
}

/// A SentencePiece vocabulary: `<unk> <s> </s>`, `▁`, letters, a few merges, then 256 byte tokens.
fn spm(extra: &[(&str, MetaValue)], with_bytes: bool) -> Result<Tokenizer, Error> {
    let mut tokens: Vec<String> =
        ["<unk>", "<s>", "</s>", "▁", "a", "b", "c", "ab", "bc", "<sep>"].iter().map(|s| s.to_string()).collect();
    let mut scores = vec![0.0f32, 0.0, 0.0, -1.0, -2.0, -2.0, -2.0, -1.0, -0.5, 0.0];
    let mut types = vec![2i32, 3, 3, 1, 1, 1, 1, 1, 1, 4];
    if with_bytes {
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            scores.push(0.0);
            types.push(6);
        }
    }
    let token_refs: Vec<&str> = tokens.iter().map(|s| s.as_str()).collect();
    let mut meta = vec![
        ("tokenizer.ggml.model", MetaValue::Str("llama".into())),
        ("tokenizer.ggml.tokens", strs(&token_refs)),
        ("tokenizer.ggml.scores", MetaValue::Array(ValueType::F32, scores.into_iter().map(MetaValue::F32).collect())),
        (
            "tokenizer.ggml.token_type",
            MetaValue::Array(ValueType::I32, types.into_iter().map(MetaValue::I32).collect()),
        ),
    ];
    meta.extend(extra.iter().cloned());
    build(&meta)
}

#[test]
fn spm_merges_by_score_with_space_prefix_and_byte_fallback() {
    let t = spm(&[], true).unwrap();
    assert_eq!(t.kind(), TokenizerKind::SentencePiece);
    // Defaults: BOS 1 added, space prefix on. "▁abc": "bc" (-0.5) beats "ab" (-1).
    assert_eq!(t.encode("abc", true, false).unwrap(), [1, 3, 4, 8]);
    // Decode drops the prefix space again, from the first token only (llama.cpp's
    // detokenize with remove_special = false): after a BOS the space stays.
    assert_eq!(t.decode(&[3, 4, 8]).unwrap(), "abc");
    assert_eq!(t.decode(&[1, 3, 4, 8]).unwrap(), " abc");
    // "z" is not a token: byte fallback <0x7A> = 10 + 0x7A.
    assert_eq!(t.encode("z", false, false).unwrap(), [3, 10 + 0x7A]);
    // A user-defined token is cut out even without parse_special, and the text
    // after it gets the space prefix again (llama.cpp: is_prev_special).
    assert_eq!(t.encode("a<sep>b", false, false).unwrap(), [3, 4, 9, 3, 5]);
    // Without the space prefix.
    let t = spm(&[("tokenizer.ggml.add_space_prefix", MetaValue::Bool(false))], true).unwrap();
    assert_eq!(t.encode("abc", false, false).unwrap(), [4, 8]);
    assert_eq!(t.encode("a b", false, false).unwrap(), [4, 3, 5]);
}

#[test]
fn spm_ties_go_to_the_leftmost_pair() {
    // Same score for "ab" and "bc": the leftmost pair merges first.
    let mut tokens = vec!["<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc"];
    let scores = [0.0f32, 0.0, 0.0, -2.0, -2.0, -2.0, -1.0, -1.0];
    let meta = |tokens: &[&str]| {
        vec![
            ("tokenizer.ggml.model", MetaValue::Str("llama".into())),
            ("tokenizer.ggml.tokens", strs(tokens)),
            (
                "tokenizer.ggml.scores",
                MetaValue::Array(ValueType::F32, scores.iter().map(|&s| MetaValue::F32(s)).collect()),
            ),
            ("tokenizer.ggml.add_space_prefix", MetaValue::Bool(false)),
        ]
    };
    let t = build(&meta(&tokens)).unwrap();
    assert_eq!(t.encode("abc", false, false).unwrap(), [6, 5]);
    // No byte tokens and a char not in the vocabulary: an error, not a panic.
    assert!(matches!(t.encode("abz", false, false), Err(Error::NoByteToken { byte: b'z' })));
    tokens[7] = "ab"; // duplicate text
    assert!(matches!(build(&meta(&tokens)), Err(Error::Tokenizer { key: "tokenizer.ggml.tokens", .. })));
}

#[test]
fn malformed_metadata_is_an_error() {
    let tokens = strs(&["a", "b"]);
    let model = |m: &str| ("tokenizer.ggml.model", MetaValue::Str(m.into()));
    let cases: Vec<(Vec<(&str, MetaValue)>, &str)> = vec![
        (vec![("tokenizer.ggml.tokens", tokens.clone())], "tokenizer.ggml.model"),
        (vec![model("llama")], "tokenizer.ggml.tokens"),
        (
            vec![("tokenizer.ggml.model", MetaValue::U32(1)), ("tokenizer.ggml.tokens", tokens.clone())],
            "tokenizer.ggml.model",
        ),
        (
            vec![model("llama"), ("tokenizer.ggml.tokens", MetaValue::Array(ValueType::U32, vec![MetaValue::U32(1)]))],
            "tokenizer.ggml.tokens",
        ),
        (
            vec![
                model("llama"),
                ("tokenizer.ggml.tokens", tokens.clone()),
                ("tokenizer.ggml.scores", MetaValue::Array(ValueType::F32, vec![MetaValue::F32(0.0)])),
            ],
            "tokenizer.ggml.scores",
        ),
        (
            vec![
                model("llama"),
                ("tokenizer.ggml.tokens", tokens.clone()),
                ("tokenizer.ggml.token_type", MetaValue::Array(ValueType::F32, vec![MetaValue::F32(0.0); 2])),
            ],
            "tokenizer.ggml.token_type",
        ),
        (vec![model("gpt2"), ("tokenizer.ggml.tokens", tokens.clone())], "tokenizer.ggml.merges"),
        // SentencePiece adds BOS by default, and the default BOS id 1 is "b" here; id 5 is out of range.
        (
            vec![
                model("llama"),
                ("tokenizer.ggml.tokens", strs(&["a"])),
                ("tokenizer.ggml.bos_token_id", MetaValue::U32(5)),
            ],
            "tokenizer.ggml.add_bos_token",
        ),
    ];
    for (meta, key) in cases {
        match build(&meta) {
            Err(Error::Tokenizer { key: k, problem }) => assert_eq!(k, key, "{problem}"),
            other => panic!("expected an error about {key}, got {:?}", other.map(|_| ())),
        }
    }
    let unsupported = [
        vec![model("bert"), ("tokenizer.ggml.tokens", tokens.clone())],
        vec![
            model("gpt2"),
            ("tokenizer.ggml.pre", MetaValue::Str("no-such-pre".into())),
            ("tokenizer.ggml.tokens", tokens.clone()),
        ],
    ];
    for meta in unsupported {
        let e = build(&meta).err().expect("unsupported");
        assert!(matches!(e, Error::UnsupportedTokenizer { .. }), "{e:?}");
        assert!(e.to_string().contains("not supported"), "{e}");
    }
    // Out-of-range ids decode to an error.
    let t = spm(&[], true).unwrap();
    assert!(matches!(t.decode(&[10_000]), Err(Error::TokenOutOfRange { token: 10_000, .. })));
    assert_eq!(t.token_to_piece(10_000), None);
}
