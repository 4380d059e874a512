//! Malformed *models*: well-formed GGUF files whose metadata or tensors are
//! wrong for the model they describe (the container itself is covered by
//! `gguf_malformed.rs`). Tiny random models of every architecture (`llama`,
//! `mistral`, `qwen2`, `gemma3`), each with a small SentencePiece vocabulary
//! and a chat template, are mutated deterministically, and each mutant goes
//! through what `ember run`, `ember perplexity` and `ember chat` do: parse,
//! build the tokenizer, print the memory plan, create a session, prefill an
//! encoded prompt, decode three tokens greedily and detokenize them, take two
//! positions back and decode again, score a perplexity (where every row's
//! logits are kept), and hold a two-turn chat. Every case must end in `Ok` or
//! an `Err`: never a panic (each case runs under `catch_unwind`, and one run
//! lists every panicking case with its message and location), and never ask
//! for a single allocation over [`ALLOC_LIMIT`] (a watching global
//! allocator), except where the caller asked for a huge context. Takes about
//! 20 s in a debug build on two cores (some 5,000 cases).
//!
//! Mutation classes:
//! - every integer hyperparameter (`context_length`, `embedding_length`,
//!   `block_count`, `feed_forward_length`, `attention.head_count`,
//!   `attention.head_count_kv`, `attention.key_length`,
//!   `attention.value_length`, `rope.dimension_count`,
//!   `attention.sliding_window`, `attention.sliding_window_pattern`) removed
//!   or set to 0, 1, 3, 7, 2^20, 2^24, `u32::MAX`, 2^40 and `u64::MAX` (u64),
//!   -1 and `i64::MIN`, and to a string, an f32, a bool and arrays; head
//!   counts changed together so that the tensors still fit (head sizes 8 to
//!   1); `sliding_window_pattern` as bool arrays of every awkward length and
//!   as arrays of other types; sliding windows up to `u64::MAX` on prompts of
//!   several 64-token (tiled attention) batches;
//! - every float hyperparameter (`attention.layer_norm_rms_epsilon`,
//!   `rope.freq_base`, `rope.freq_base_swa`, `rope.scale_linear`,
//!   `rope.scaling.factor`, `attention.scale`, `attn_logit_softcapping`,
//!   `final_logit_softcapping`) set to 0, -1, NaN, ±inf, the smallest
//!   subnormal, `f32::MAX`, f64 values, and to a string, an integer and an
//!   array; `rope.scaling.type` unknown or not a string;
//!   `general.architecture` unknown, empty, missing or not a string;
//! - every tensor missing, transposed, one longer or shorter in either
//!   dimension, flattened, with a third dimension, empty; every tensor of
//!   block 0 and the global ones in every ggml type (types whose blocks do not
//!   divide the row are written by patching the type id of a valid file);
//!   `token_embd` with fewer rows than the vocabulary; optional tensors
//!   (`rope_freqs`, `attn_output.bias`) of the right and a wrong length, and
//!   an all-zero `rope_freqs`; on a wider model (rows of 256) the embedding,
//!   the head and two matrices in every type, which must run where ember has
//!   a kernel for the type and be refused, naming the tensor, where not;
//! - tokenizer metadata: tokens empty, not strings, duplicated, an empty
//!   one, a vocabulary larger and one smaller than the model's; scores and
//!   token types shorter, longer, of the wrong type, NaN; token types out of
//!   range and all of one kind; BOS/EOS/UNK ids out of range, negative or
//!   strings; `add_bos_token` without a BOS or not a bool; an unknown
//!   tokenizer model, `gpt2` without merges, with bad merges and with each
//!   pre-tokenizer;
//! - the chat template: rendering nothing (with and without a BOS added), not
//!   a string, empty, a syntax error, raising, an unknown method, recursing,
//!   a huge string or loop, longer than the context, control-token text;
//! - session options: `ctx_len` 0, 1, 2, 3 (prompt longer than the context),
//!   the model's, twice the model's, 2^40 and `usize::MAX`; `batch` 0, 1 and
//!   `usize::MAX`; `threads` 0, 1, 3, 64 and 100,000; both KV types and
//!   `logits_all`; empty, out-of-vocabulary and too long prompts.
//!
//! Representative cases also check that the error names the offending key or
//! tensor: every missing tensor, non-finite floats, a negative RMS epsilon,
//! RoPE bases of 0 or below (NaN rotation angles), a zero block count, a
//! head count the KV heads do not divide, per-layer arrays, huge sizes,
//! tokenizer arrays, template errors and option errors.
//!
//! `MODEL_MALFORMED_TRACE=1 cargo test --test model_malformed -- --nocapture`
//! prints every case's outcome.

mod common;
use common::{tiny_tensors, Arch, Rng, Shape, ARCHS};
use ember::chat::{Chat, ChatTemplate};
use ember::gguf::{File, MetaValue, ValueType, Writer};
use ember::kv_cache::KvType;
use ember::perplexity::{bos_for, evaluate, Options as PplOptions};
use ember::quant::GgmlType;
use ember::sampler::{SamplerParams, SamplerScratch};
use ember::session::{plan_for, Session, SessionOptions};
use ember::tokenizer::{StreamDecoder, Tokenizer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Instant;

/// Largest single allocation a case may ask for: the tiny models need well
/// under a megabyte, so anything near this is sized by a bad value.
const ALLOC_LIMIT: usize = 64 << 20;

thread_local! {
    /// The largest allocation this thread asked for since the last reset.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(bytes: usize) {
    let _ = LARGEST.try_with(|c| c.set(c.get().max(bytes)));
}

struct Watch;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; `note` only updates a thread-local `Cell` (no allocation).
unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Watch = Watch;

/// Messages of the panics seen since the last case started (any thread).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Rows of 64: every 32-value block type fits, the 256-value ones do not.
const TINY: Shape = Shape { d: 64, nh: 4, nkv: 2, hd: 16, nff: 96, nl: 3 };
/// Rows of 256: every type ember multiplies fits.
const WIDE: Shape = Shape { d: 256, nh: 4, nkv: 2, hd: 64, nff: 256, nl: 2 };
const N_VOCAB: u64 = 50;
const CTX_TRAIN: u32 = 128;
/// Prompts: every character is in the vocabulary below (no byte fallback
/// needed). The long one is over 64 tokens, a batch for the tiled attention.
const SHORT: &str = "abc cab ba";
const LONG: &str = "abc cab ba bad cafe jab hid gig fed ice dab bag hag jig cede a b c d e f g hi jk la \
    be bide fig had jade deaf face each cage hike";
/// A template that renders only what the vocabulary can encode.
const TEMPLATE: &str =
    "{% for m in messages %}{{ m.content }} {% endfor %}{% if add_generation_prompt %}be {% endif %}";

#[derive(Clone)]
struct Tensor {
    name: String,
    ty: GgmlType,
    dims: Vec<u64>,
    data: Vec<u8>,
}

/// A model as metadata and tensors, mutated before it is written.
#[derive(Clone)]
struct Spec {
    arch: Arch,
    meta: Vec<(String, MetaValue)>,
    tensors: Vec<Tensor>,
    /// Types written by patching the file (the writer refuses them for the shape).
    patches: Vec<(String, GgmlType)>,
    seed: u64,
}

fn strs<S: AsRef<str>>(v: &[S]) -> MetaValue {
    MetaValue::Array(ValueType::Str, v.iter().map(|s| MetaValue::Str(s.as_ref().to_string())).collect())
}

fn f32s(v: &[f32]) -> MetaValue {
    MetaValue::Array(ValueType::F32, v.iter().map(|&x| MetaValue::F32(x)).collect())
}

fn i32s(v: &[i32]) -> MetaValue {
    MetaValue::Array(ValueType::I32, v.iter().map(|&x| MetaValue::I32(x)).collect())
}

/// The vocabulary: `<unk> <s> </s> ▁`, the 26 letters, `▁a`..`▁j`, `ab`..`jk`.
fn vocab() -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>", "▁"].iter().map(|s| s.to_string()).collect();
    let mut scores = vec![0.0, 0.0, 0.0, -1.0];
    let mut types = vec![2, 3, 3, 1];
    let letter = |i: u8| ((b'a' + i) as char).to_string();
    for i in 0..26 {
        tokens.push(letter(i));
        scores.push(-5.0);
        types.push(1);
    }
    for i in 0..10 {
        tokens.push(format!("▁{}", letter(i)));
        scores.push(-1.0);
        types.push(1);
    }
    for i in 0..10 {
        tokens.push(format!("{}{}", letter(i), letter(i + 1)));
        scores.push(-2.0);
        types.push(1);
    }
    assert_eq!(tokens.len() as u64, N_VOCAB);
    (tokens, scores, types)
}

/// `n` values of type `ty` (`dims[0]` a whole number of blocks): random
/// weights through the reference quantizer, or random bytes where there is none.
fn fill(ty: GgmlType, dims: &[u64], rng: &mut Rng, scale: f32, offset: f32) -> Vec<u8> {
    let n: u64 = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.f() * scale + offset).collect();
    if ty == GgmlType::F32 {
        return values.iter().flat_map(|v| v.to_le_bytes()).collect();
    }
    let rows: u64 = dims[1..].iter().product();
    let bytes = ty.row_bytes(dims[0] as usize).expect("whole blocks") * rows as usize;
    let mut out = vec![0u8; bytes];
    if ember::quant::matmul::quantize(ty, &values, &mut out).is_err() {
        for b in out.iter_mut() {
            *b = (rng.f() * 127.0) as i8 as u8;
        }
    }
    out
}

impl Spec {
    fn new(arch: Arch, s: Shape, seed: u64) -> Spec {
        let a = arch.name();
        let mut spec = Spec { arch, meta: Vec::new(), tensors: Vec::new(), patches: Vec::new(), seed };
        let k = |suffix: &str| format!("{a}.{suffix}");
        spec.set("general.architecture", MetaValue::Str(a.into()));
        spec.set(&k("context_length"), MetaValue::U32(CTX_TRAIN));
        spec.set(&k("embedding_length"), MetaValue::U32(s.d as u32));
        spec.set(&k("block_count"), MetaValue::U32(s.nl as u32));
        spec.set(&k("feed_forward_length"), MetaValue::U32(s.nff as u32));
        spec.set(&k("attention.head_count"), MetaValue::U32(s.nh as u32));
        spec.set(&k("attention.head_count_kv"), MetaValue::U32(s.nkv as u32));
        spec.set(&k("attention.layer_norm_rms_epsilon"), MetaValue::F32(1e-5));
        spec.set(&k("rope.freq_base"), MetaValue::F32(10000.0));
        spec.set(&k("rope.dimension_count"), MetaValue::U32(s.hd as u32));
        if arch == Arch::Gemma3 {
            spec.set(&k("attention.key_length"), MetaValue::U32(s.hd as u32));
            spec.set(&k("attention.value_length"), MetaValue::U32(s.hd as u32));
            spec.set(&k("attention.sliding_window"), MetaValue::U32(3));
            spec.set(&k("attention.sliding_window_pattern"), MetaValue::U32(2));
        }
        let (tokens, scores, types) = vocab();
        spec.set("tokenizer.ggml.model", MetaValue::Str("llama".into()));
        spec.set("tokenizer.ggml.tokens", strs(&tokens));
        spec.set("tokenizer.ggml.scores", f32s(&scores));
        spec.set("tokenizer.ggml.token_type", i32s(&types));
        spec.set("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
        spec.set("tokenizer.ggml.eos_token_id", MetaValue::U32(2));
        spec.set("tokenizer.ggml.unknown_token_id", MetaValue::U32(0));
        spec.set("tokenizer.chat_template", MetaValue::Str(TEMPLATE.into()));

        for (i, t) in tiny_tensors(arch, s, N_VOCAB).into_iter().enumerate() {
            let mut rng = Rng(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let data = fill(GgmlType::F32, &t.dims, &mut rng, t.scale, t.offset);
            spec.tensors.push(Tensor { name: t.name, ty: GgmlType::F32, dims: t.dims, data });
        }
        spec
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.arch.name())
    }

    fn set(&mut self, key: &str, v: MetaValue) {
        match self.meta.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = v,
            None => self.meta.push((key.to_string(), v)),
        }
    }

    fn unset(&mut self, key: &str) {
        self.meta.retain(|(k, _)| k != key);
    }

    fn tensor(&mut self, name: &str) -> &mut Tensor {
        self.tensors.iter_mut().find(|t| t.name == name).unwrap_or_else(|| panic!("no tensor {name}"))
    }

    fn add_tensor(&mut self, name: &str, dims: Vec<u64>, value: f32) {
        let n: u64 = dims.iter().product();
        let data = (0..n).flat_map(|_| value.to_le_bytes()).collect();
        self.tensors.push(Tensor { name: name.into(), ty: GgmlType::F32, dims, data });
    }

    /// Gives tensor `name` new dims (and fresh data of its type).
    fn reshape(&mut self, name: &str, dims: Vec<u64>) {
        let mut rng = Rng(self.seed ^ 0xD1B5_4A32_D192_ED03);
        let t = self.tensor(name);
        t.data = fill(t.ty, &dims, &mut rng, 0.25, 0.0);
        t.dims = dims;
    }

    /// Gives tensor `name` type `ty`: written directly when its rows are whole
    /// blocks of `ty`, else written as F32 and its type id patched in the file.
    fn retype(&mut self, name: &str, ty: GgmlType) {
        let mut rng = Rng(self.seed ^ 0x94D0_49BB_1331_11EB);
        let t = self.tensor(name);
        if t.dims[0].is_multiple_of(ty.block_size() as u64) {
            t.data = fill(ty, &t.dims, &mut rng, 0.25, 0.0);
            t.ty = ty;
        } else {
            self.patches.push((name.to_string(), ty));
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        for (k, v) in &self.meta {
            w.add_meta(k, v).unwrap();
        }
        for t in &self.tensors {
            w.add_tensor(&t.name, t.ty, &t.dims, t.data.as_slice()).unwrap();
        }
        let mut bytes = w.to_bytes();
        for (name, ty) in &self.patches {
            // A tensor info is: name length (u64), name, n_dims (u32), dims (u64 each), type (u32).
            let mut pat = (name.len() as u64).to_le_bytes().to_vec();
            pat.extend_from_slice(name.as_bytes());
            let at = bytes.windows(pat.len()).position(|w| w == pat.as_slice()).expect("tensor info") + pat.len();
            let n_dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let ty_at = at + 4 + 8 * n_dims;
            bytes[ty_at..ty_at + 4].copy_from_slice(&ty.id().to_le_bytes());
        }
        bytes
    }
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// What `ember run` and `ember chat` do with a file, greedily: the tokenizer,
/// the memory plan, a session, the prompt `text` (or the ids `prompt`), three
/// tokens decoded and detokenized, two positions taken back and one more
/// token; then a two-turn chat through the model's template.
fn run(bytes: &[u8], opts: SessionOptions, prompt: Option<&[u32]>, text_prompt: &str) -> Result<(), String> {
    let file = File::parse(bytes).map_err(text)?;
    let tok = Tokenizer::from_gguf(&file);
    if let Ok(plan) = plan_for(&file, &opts) {
        let _ = plan.to_string();
    }
    let prompt = match (prompt, &tok) {
        (Some(p), _) => p.to_vec(),
        (None, Ok(t)) => t.encode(text_prompt, true, false).map_err(text)?,
        (None, Err(_)) => vec![1, 30, 4, 5],
    };
    let mut s = Session::from_file(file, opts).map_err(text)?;
    s.prefill(&prompt).map_err(text)?;
    let mut scratch = SamplerScratch::new(s.config().n_vocab, 8);
    let mut sampler = scratch.sampler(SamplerParams::greedy()).map_err(text)?;
    let mut stream = StreamDecoder::new();
    for _ in 0..3 {
        let t = s.decode_next(&mut sampler).map_err(text)?;
        if let Ok(tk) = &tok {
            let _ = (tk.token_to_piece(t), tk.is_eog(t), tk.token_text(t));
            stream.push(tk, t).map_err(text)?;
            tk.decode(&[t]).map_err(text)?;
        }
    }
    stream.flush();
    if opts.logits_all {
        let tokens: Vec<u32> = prompt.iter().cycle().take(2 * 8).copied().collect();
        let po = PplOptions { ctx: 8, batch: 8, bos: tok.as_ref().ok().and_then(|t| bos_for(t).ok().flatten()) };
        evaluate(&mut s, &tokens, &po, &mut |_| {}).map_err(text)?;
    }
    // A sliding-window cache may refuse to go back.
    if s.truncate(s.pos() - 2).is_ok() {
        s.prefill(&prompt[..1]).map_err(text)?;
        s.decode_next(&mut sampler).map_err(text)?;
    }
    let tk = tok.map_err(text)?;
    let template = ChatTemplate::for_model(&file, &tk).map_err(text)?;
    let mut chat = Chat::new(s, tk, template, Some("be brief"));
    for turn in ["hi", "hide a cab"] {
        chat.user(turn, 2).map_err(text)?;
        chat.reply(&mut sampler, 2, &mut |_| {}).map_err(text)?;
    }
    Ok(())
}

#[derive(Clone)]
enum Expect {
    /// `Ok` or an `Err`, as long as nothing panics.
    Any,
    /// Must work.
    Ok,
    /// Must fail with a message containing each of these.
    Err(Vec<String>),
}

/// Must fail with a message containing each of `needles`.
fn err(needles: &[&str]) -> Expect {
    Expect::Err(needles.iter().map(|n| n.to_string()).collect())
}

fn opts() -> SessionOptions {
    SessionOptions { ctx_len: 0, batch: 64, threads: 2, kv_type: KvType::F16, logits_all: false }
}

struct Report {
    /// The text prompt of the cases.
    prompt: &'static str,
    /// Their session options.
    opts: SessionOptions,
    cases: usize,
    ok: usize,
    err: usize,
    /// Cases that panicked, with the panic messages and locations.
    panics: Vec<String>,
    /// Cases that gave the wrong outcome or allocated too much.
    wrong: Vec<String>,
}

impl Report {
    fn new() -> Report {
        Report { prompt: SHORT, opts: opts(), cases: 0, ok: 0, err: 0, panics: Vec::new(), wrong: Vec::new() }
    }

    fn case(&mut self, what: &str, spec: &Spec, expect: Expect) {
        self.case_with(what, &spec.bytes(), self.opts, None, expect, true);
    }

    fn case_with(
        &mut self,
        what: &str,
        bytes: &[u8],
        opts: SessionOptions,
        prompt: Option<&[u32]>,
        expect: Expect,
        limit_alloc: bool,
    ) {
        self.cases += 1;
        PANICS.lock().unwrap().clear();
        LARGEST.with(|c| c.set(0));
        let r = panic::catch_unwind(AssertUnwindSafe(|| run(bytes, opts, prompt, self.prompt)));
        let largest = LARGEST.with(|c| c.get());
        if std::env::var_os("MODEL_MALFORMED_TRACE").is_some() {
            println!("{what} -> {:?}", r.as_ref().map_err(|_| "panic"));
        }
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                let msgs = std::mem::take(&mut *PANICS.lock().unwrap());
                self.panics.push(format!("{what}: {}", msgs.join(" / ")));
                return;
            }
        };
        if limit_alloc && largest > ALLOC_LIMIT {
            self.wrong.push(format!("{what}: allocated {largest} bytes at once"));
        }
        match (&r, expect) {
            (Ok(()), Expect::Any | Expect::Ok) => self.ok += 1,
            (Err(_), Expect::Any) => self.err += 1,
            (Err(msg), Expect::Err(needles)) => {
                self.err += 1;
                if !needles.iter().all(|n| msg.contains(n.as_str())) {
                    self.wrong.push(format!("{what}: error `{msg}` does not name {needles:?}"));
                }
            }
            (Ok(()), Expect::Err(n)) => self.wrong.push(format!("{what}: worked, but should fail naming {n:?}")),
            (Err(e), Expect::Ok) => self.wrong.push(format!("{what}: should work, failed with `{e}`")),
        }
    }
}

fn int_values() -> Vec<MetaValue> {
    use MetaValue::*;
    vec![
        U32(0),
        U32(1),
        U32(3),
        U32(7),
        U32(1 << 20),
        U32(1 << 24),
        U32(u32::MAX),
        U64(1 << 40),
        U64(u64::MAX),
        I32(-1),
        I64(i64::MIN),
        Str("64".into()),
        F32(64.0),
        Bool(true),
        Array(ValueType::U32, vec![U32(64); 3]),
        Array(ValueType::Str, vec![]),
    ]
}

/// What some integer values must give: the key named, with the reason.
fn int_expect(suffix: &str, key: &str, v: &MetaValue) -> Expect {
    let bounded = ["embedding_length", "block_count", "feed_forward_length", "attention.head_count"];
    let sliding = suffix.starts_with("attention.sliding_window");
    match v {
        MetaValue::U32(0) if suffix == "block_count" => err(&[key, "= 0: must be at least 1"]),
        // The sessions ask for the model's context (ctx_len 0), which it does not give.
        MetaValue::U32(0) if suffix == "context_length" => err(&["context_length is 0: give a context length"]),
        // The tiny models have 2 or 3 blocks: the file holds blocks past the count.
        MetaValue::U32(1) if suffix == "block_count" => err(&["tensor `blk.1.", "past block_count"]),
        MetaValue::U32(0 | 1 | 3 | 7) if suffix == "rope.dimension_count" => err(&[key, "must equal the head size"]),
        MetaValue::U32(3) if suffix == "attention.head_count_kv" => err(&[key, "= 3: must divide"]),
        MetaValue::U64(u64::MAX) if bounded.contains(&suffix) => err(&[key]),
        MetaValue::U64(u64::MAX) if suffix == "attention.value_length" => {
            err(&[key, "= 18446744073709551615: is implausibly large"])
        }
        MetaValue::Str(_) if suffix == "embedding_length" => {
            err(&[&format!("hyperparameter `{key}`: must be a non-negative integer")])
        }
        MetaValue::I32(-1) if suffix == "embedding_length" => err(&[key, "= -1: must be a non-negative integer"]),
        MetaValue::Array(ValueType::U32, _) if !sliding => err(&[key, "per-layer values"]),
        _ => Expect::Any,
    }
}

const INT_KEYS: [&str; 11] = [
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "rope.dimension_count",
    "attention.sliding_window",
    "attention.sliding_window_pattern",
];

fn float_values() -> Vec<MetaValue> {
    use MetaValue::*;
    vec![
        F32(0.0),
        F32(-1.0),
        F32(f32::NAN),
        F32(f32::INFINITY),
        F32(f32::NEG_INFINITY),
        F32(1e-45),
        F32(f32::MAX),
        F64(1e300),
        F64(f64::NAN),
        Str("1e-5".into()),
        U32(1),
        Array(ValueType::F32, vec![F32(1.0); 3]),
    ]
}

const FLOAT_KEYS: [&str; 8] = [
    "attention.layer_norm_rms_epsilon",
    "rope.freq_base",
    "rope.freq_base_swa",
    "rope.scale_linear",
    "rope.scaling.factor",
    "attention.scale",
    "attn_logit_softcapping",
    "final_logit_softcapping",
];

fn hyperparameters(r: &mut Report, base: &Spec) {
    let a = base.arch.name();
    r.case(&format!("{a}: unmodified"), base, Expect::Ok);
    for suffix in INT_KEYS {
        let key = base.key(suffix);
        let mut s = base.clone();
        s.unset(&key);
        r.case(&format!("{key} removed"), &s, Expect::Any);
        for v in int_values() {
            let mut s = base.clone();
            s.set(&key, v.clone());
            let expect = int_expect(suffix, &key, &v);
            r.case(&format!("{key} = {v:?}"), &s, expect);
        }
    }
    // Head counts that still fit the tensors: head size 8, 4, 2, 1.
    for (nh, nkv) in [(8, 4), (16, 8), (32, 16), (64, 32)] {
        let mut s = base.clone();
        s.set(&base.key("attention.head_count"), MetaValue::U32(nh));
        s.set(&base.key("attention.head_count_kv"), MetaValue::U32(nkv));
        for k in ["rope.dimension_count", "attention.key_length", "attention.value_length"] {
            s.unset(&base.key(k));
        }
        r.case(&format!("{a}: {nh} heads, {nkv} KV heads"), &s, Expect::Any);
    }
    let pattern = base.key("attention.sliding_window_pattern");
    for n in [0, 1, 2, 3, 4, 64, 257, 300] {
        let mut s = base.clone();
        s.set(&pattern, MetaValue::Array(ValueType::Bool, (0..n).map(|i| MetaValue::Bool(i % 2 == 0)).collect()));
        r.case(&format!("{pattern} = {n} bools"), &s, Expect::Any);
    }
    for v in [i32s(&[1, 0, 1]), strs(&["a", "b", "c"]), f32s(&[1.0, 0.0, 1.0])] {
        let mut s = base.clone();
        s.set(&pattern, v.clone());
        r.case(&format!("{pattern} = {v:?}"), &s, Expect::Any);
    }
    for suffix in FLOAT_KEYS {
        let key = base.key(suffix);
        for v in float_values() {
            let mut s = base.clone();
            s.set(&key, v.clone());
            if suffix == "rope.scaling.factor" {
                s.set(&base.key("rope.scaling.type"), MetaValue::Str("linear".into()));
            }
            // Every architecture reads these but `rope.freq_base_swa` (Gemma 3 only).
            let read = suffix != "rope.freq_base_swa" || base.arch == Arch::Gemma3;
            let base_key = suffix.starts_with("rope.freq_base");
            let expect = match v {
                MetaValue::F32(x) if read && !x.is_finite() => err(&[&key, "must be a finite number"]),
                MetaValue::F32(x) if read && base_key && x <= 0.0 => {
                    err(&[&key, &format!("= {}: must be positive", f64::from(x))])
                }
                MetaValue::F32(x) if suffix == "attention.layer_norm_rms_epsilon" && x < 0.0 => {
                    err(&[&key, &format!("= {}: must not be negative", f64::from(x))])
                }
                MetaValue::Str(_) if read => err(&[&key, "must be a finite number"]),
                _ => Expect::Any,
            };
            r.case(&format!("{key} = {v:?}"), &s, expect);
        }
    }
    for v in [MetaValue::Str("yarn".into()), MetaValue::Str("linear".into()), MetaValue::U32(1)] {
        let mut s = base.clone();
        s.set(&base.key("rope.scaling.type"), v.clone());
        r.case(&format!("{a}.rope.scaling.type = {v:?}"), &s, Expect::Any);
    }
    for v in [MetaValue::Str("mamba".into()), MetaValue::Str(String::new()), MetaValue::U32(1)] {
        let mut s = base.clone();
        s.set("general.architecture", v.clone());
        let expect = match &v {
            MetaValue::Str(name) => err(&["unsupported architecture", &format!("`{name}`")]),
            _ => err(&["general.architecture", "missing"]),
        };
        r.case(&format!("{a}: general.architecture = {v:?}"), &s, expect);
    }
    let mut s = base.clone();
    s.unset("general.architecture");
    r.case(&format!("{a}: general.architecture removed"), &s, err(&["general.architecture"]));
}

fn tensors(r: &mut Report, base: &Spec) {
    let a = base.arch.name();
    let names: Vec<(String, Vec<u64>)> = base.tensors.iter().map(|t| (t.name.clone(), t.dims.clone())).collect();
    for (name, dims) in &names {
        let mut s = base.clone();
        s.tensors.retain(|t| &t.name != name);
        // Without `output.weight` the head is tied to the embedding: still a model.
        let expect = if name == "output.weight" { Expect::Any } else { err(&[name, "missing"]) };
        r.case(&format!("{a}: {name} missing"), &s, expect);
        let mut shapes = vec![dims.iter().rev().copied().collect::<Vec<u64>>(), vec![dims.iter().product()]];
        shapes.push([dims.as_slice(), &[1]].concat());
        shapes.push([dims.as_slice(), &[2]].concat());
        for (i, delta) in [(0, 1i64), (0, -1), (dims.len() - 1, 1), (dims.len() - 1, -1)] {
            let mut d = dims.clone();
            d[i] = (d[i] as i64 + delta) as u64;
            shapes.push(d);
        }
        let mut empty = dims.clone();
        empty[0] = 0;
        shapes.push(empty);
        for shape in shapes {
            let mut s = base.clone();
            s.reshape(name, shape.clone());
            r.case(&format!("{a}: {name} shaped {shape:?}"), &s, Expect::Any);
        }
        if name == "token_embd.weight" || name == "output.weight" || name.starts_with("blk.0.") {
            for ty in GgmlType::ALL.into_iter().filter(|&t| t != GgmlType::F32) {
                let mut s = base.clone();
                s.retype(name, ty);
                r.case(&format!("{a}: {name} as {ty}"), &s, Expect::Any);
            }
        }
    }
    // Fewer embedding rows than the tokenizer and the output head have.
    let mut s = base.clone();
    let d = s.tensor("token_embd.weight").dims[0];
    s.reshape("token_embd.weight", vec![d, N_VOCAB - 20]);
    r.case(&format!("{a}: token_embd.weight with 30 rows"), &s, Expect::Any);
    // Optional tensors, of the right length and of a wrong one.
    let n_rot = TINY.hd / 2;
    let mut s = base.clone();
    s.add_tensor("rope_freqs.weight", vec![n_rot], 0.0);
    r.case(&format!("{a}: rope_freqs.weight all zero"), &s, Expect::Any);
    let mut s = base.clone();
    s.add_tensor("rope_freqs.weight", vec![n_rot + 1], 1.0);
    r.case(&format!("{a}: rope_freqs.weight too long"), &s, err(&["rope_freqs.weight"]));
    let mut s = base.clone();
    s.add_tensor("blk.1.attn_output.bias", vec![TINY.d], 0.5);
    r.case(&format!("{a}: blk.1.attn_output.bias"), &s, Expect::Ok);
    let mut s = base.clone();
    s.add_tensor("blk.1.attn_output.bias", vec![TINY.d - 1], 0.5);
    r.case(&format!("{a}: blk.1.attn_output.bias too short"), &s, err(&["blk.1.attn_output.bias"]));
}

fn tokenizer(r: &mut Report, base: &Spec) {
    let a = base.arch.name();
    let (tokens, scores, types) = vocab();
    // A key set to a value, or removed.
    type Edit = (&'static str, Option<MetaValue>);
    let mut cases: Vec<(String, Vec<Edit>, Expect)> = Vec::new();
    let tok = "tokenizer.ggml.tokens";
    let mut c = |what: &str, edits: Vec<Edit>, e: Expect| cases.push((what.to_string(), edits, e));
    let mismatch = err(&["tokenizer.ggml.tokens", "has a different number of tokens than token_embd.weight has rows"]);
    c("tokens empty", vec![(tok, Some(strs::<&str>(&[])))], Expect::Any);
    c("tokens not strings", vec![(tok, Some(i32s(&[1, 2, 3])))], err(&["tokenizer.ggml.tokens"]));
    c("tokens a string", vec![(tok, Some(MetaValue::Str("a".into())))], err(&["tokenizer.ggml.tokens"]));
    c("tokens missing", vec![(tok, None)], err(&["tokenizer.ggml.tokens"]));
    let mut dup = tokens.clone();
    dup[7] = "a".into();
    c("tokens duplicated", vec![(tok, Some(strs(&dup)))], err(&["tokenizer.ggml.tokens"]));
    let mut empty = tokens.clone();
    empty[40] = String::new();
    c("a token empty", vec![(tok, Some(strs(&empty)))], Expect::Any);
    // A vocabulary larger than the model's (ids past the embedding) or
    // smaller (ids the model means otherwise): refused, as llama.cpp does.
    let mut more = tokens.clone();
    more.extend((0..30).map(|i| format!("x{i}")));
    let more_scores: Vec<f32> = scores.iter().copied().chain([0.0; 30]).collect();
    let more_types: Vec<i32> = types.iter().copied().chain([1; 30]).collect();
    c(
        "80 tokens",
        vec![
            (tok, Some(strs(&more))),
            ("tokenizer.ggml.scores", Some(f32s(&more_scores))),
            ("tokenizer.ggml.token_type", Some(i32s(&more_types))),
        ],
        mismatch.clone(),
    );
    c(
        "10 tokens",
        vec![(tok, Some(strs(&tokens[..10]))), ("tokenizer.ggml.scores", None), ("tokenizer.ggml.token_type", None)],
        mismatch,
    );
    let sc = "tokenizer.ggml.scores";
    c("scores shorter", vec![(sc, Some(f32s(&scores[..49])))], err(&["tokenizer.ggml.scores"]));
    c("scores longer", vec![(sc, Some(f32s(&[scores.as_slice(), &[1.0; 9]].concat())))], Expect::Ok);
    c("scores NaN", vec![(sc, Some(f32s(&[f32::NAN; 50])))], Expect::Any);
    c("scores strings", vec![(sc, Some(strs(&tokens)))], err(&["tokenizer.ggml.scores"]));
    c("scores i32", vec![(sc, Some(i32s(&[-1; 50])))], Expect::Any);
    c("scores a float", vec![(sc, Some(MetaValue::F32(0.0)))], err(&["tokenizer.ggml.scores"]));
    let ty = "tokenizer.ggml.token_type";
    c("token types shorter", vec![(ty, Some(i32s(&types[..3])))], err(&["tokenizer.ggml.token_type"]));
    c("token types empty", vec![(ty, Some(i32s(&[])))], err(&["tokenizer.ggml.token_type"]));
    c("token types f32", vec![(ty, Some(f32s(&[1.0; 50])))], err(&["tokenizer.ggml.token_type"]));
    c("token types out of range", vec![(ty, Some(i32s(&[99; 50])))], Expect::Any);
    c("token types negative", vec![(ty, Some(i32s(&[i32::MIN; 50])))], Expect::Any);
    for (what, t) in [("control", 3), ("unknown", 2), ("user-defined", 4), ("unused", 5), ("byte", 6), ("undefined", 0)]
    {
        c(&format!("token types all {what}"), vec![(ty, Some(i32s(&[t; 50])))], Expect::Any);
    }
    for key in ["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"] {
        for v in [MetaValue::U32(50), MetaValue::U32(u32::MAX), MetaValue::I32(-1), MetaValue::U64(u64::MAX)] {
            c(&format!("{key} = {v:?}"), vec![(key, Some(v))], Expect::Any);
        }
        c(&format!("{key} a string"), vec![(key, Some(MetaValue::Str("1".into())))], Expect::Any);
        c(&format!("{key} missing"), vec![(key, None)], Expect::Any);
    }
    c(
        "add_bos_token without a BOS",
        vec![
            ("tokenizer.ggml.bos_token_id", Some(MetaValue::U32(99))),
            ("tokenizer.ggml.add_bos_token", Some(MetaValue::Bool(true))),
            (tok, Some(strs(&tokens[2..]))),
        ],
        Expect::Any,
    );
    c("add_bos_token not a bool", vec![("tokenizer.ggml.add_bos_token", Some(MetaValue::U32(1)))], Expect::Any);
    c(
        "model unknown",
        vec![("tokenizer.ggml.model", Some(MetaValue::Str("wordpiece".into())))],
        err(&["tokenizer.ggml.model"]),
    );
    c("model gpt2 without merges", vec![("tokenizer.ggml.model", Some(MetaValue::Str("gpt2".into())))], Expect::Any);
    c(
        "model gpt2 with bad merges",
        vec![
            ("tokenizer.ggml.model", Some(MetaValue::Str("gpt2".into()))),
            ("tokenizer.ggml.merges", Some(strs(&["a", "a b c", " ", "zz zz", ""]))),
        ],
        Expect::Any,
    );
    for pre in ["gpt-2", "llama3", "qwen2", "smollm", "no-such-pre"] {
        c(
            &format!("model gpt2, pre {pre}"),
            vec![
                ("tokenizer.ggml.model", Some(MetaValue::Str("gpt2".into()))),
                ("tokenizer.ggml.pre", Some(MetaValue::Str(pre.into()))),
                ("tokenizer.ggml.merges", Some(strs(&["a b", "b c", "ab c", "▁ a"]))),
            ],
            Expect::Any,
        );
    }
    for (what, edits, expect) in cases {
        let mut s = base.clone();
        for (key, v) in edits {
            match v {
                Some(v) => s.set(key, v),
                None => s.unset(key),
            }
        }
        r.case(&format!("{a}: tokenizer {what}"), &s, expect);
    }
}

fn session_options(r: &mut Report, base: &Spec) {
    let a = base.arch.name();
    let bytes = base.bytes();
    let ctx = CTX_TRAIN as usize;
    let o = opts();
    let mut cases: Vec<(String, SessionOptions, Expect, bool)> = Vec::new();
    for (ctx_len, expect) in [
        (0, Expect::Ok),
        (1, err(&["context holds 1"])),
        (2, err(&["context holds 2"])),
        (3, Expect::Any),
        (ctx, Expect::Ok),
        (2 * ctx, Expect::Ok),
        (1 << 40, Expect::Any),
        (usize::MAX, Expect::Any),
    ] {
        // A huge context is the caller's own request: no allocation limit.
        cases.push((format!("ctx_len {ctx_len}"), SessionOptions { ctx_len, ..o }, expect, ctx_len <= 2 * ctx));
    }
    for (batch, expect) in [(0, err(&["batch"])), (1, Expect::Ok), (usize::MAX, Expect::Ok)] {
        cases.push((format!("batch {batch}"), SessionOptions { batch, ..o }, expect, true));
    }
    for (threads, expect) in [(0, Expect::Ok), (1, Expect::Ok), (3, Expect::Ok), (64, Expect::Ok)] {
        cases.push((format!("threads {threads}"), SessionOptions { threads, ..o }, expect, true));
    }
    cases.push(("f32 KV cache".into(), SessionOptions { kv_type: KvType::F32, ..o }, Expect::Ok, true));
    cases.push(("logits_all".into(), SessionOptions { logits_all: true, batch: 3, ..o }, Expect::Ok, true));
    for (what, opts, expect, limit) in cases {
        r.case_with(&format!("{a}: {what}"), &bytes, opts, None, expect, limit);
    }
    let prompts: [(&str, &[u32], Expect); 4] = [
        ("empty prompt", &[], err(&["prefill"])),
        ("prompt id 50", &[1, 50], err(&["50", "vocabulary"])),
        ("prompt id u32::MAX", &[u32::MAX], err(&["vocabulary"])),
        ("prompt of 129", &[3; 129], err(&["context holds 128"])),
    ];
    for (what, p, expect) in prompts {
        r.case_with(&format!("{a}: {what}"), &bytes, o, Some(p), expect, true);
    }
}

/// Windows near `u64::MAX` on prompts of two and three tiled batches.
fn long_prompts(r: &mut Report, base: &Spec) {
    let a = base.arch.name();
    let key = base.key("attention.sliding_window");
    let ids: Vec<u32> = (0..150).map(|i| (i * 7 % 49 + 1) as u32).collect();
    let o = SessionOptions { ctx_len: 256, ..r.opts };
    for w in [1, 3, 1 << 24, (1 << 24) + 1, 1 << 40, u64::MAX - 200, u64::MAX - 63, u64::MAX] {
        let mut s = base.clone();
        s.set(&key, MetaValue::U64(w));
        // Only Gemma 3 reads the window; one past 2^24 overflowed the tiled attention's masks.
        let expect =
            if base.arch == Arch::Gemma3 && w > 1 << 24 { err(&[&key, "implausibly large"]) } else { Expect::Ok };
        r.case_with(&format!("{a}: {key} = {w}, 150 tokens"), &s.bytes(), o, Some(&ids), expect, true);
    }
}

/// The model's chat template (`tokenizer.chat_template`), each with and
/// without a BOS added by the tokenizer: (what, template, with BOS, without).
fn chat_template(r: &mut Report, base: &Spec) {
    let a = base.arch.name();
    let key = "tokenizer.chat_template";
    let any = || (Expect::Any, Expect::Any);
    let both = |e: Expect| (e.clone(), e);
    let cases: [(&str, MetaValue, (Expect, Expect)); 12] = [
        // Without a BOS, nothing to prefill and no logits to sample: an error.
        ("renders nothing", MetaValue::Str("{# nothing #}".into()), (Expect::Ok, err(&["renders to no tokens"]))),
        ("not a string", MetaValue::U32(7), any()),
        ("empty", MetaValue::Str(String::new()), any()),
        ("a syntax error", MetaValue::Str("{% for m in %}".into()), both(err(&["chat template", "syntax error"]))),
        ("raising", MetaValue::Str("{{ raise_exception('no') }}".into()), both(err(&["raise_exception: no"]))),
        ("an unknown method", MetaValue::Str("{{ messages.frobnicate() }}".into()), both(err(&["frobnicate"]))),
        // Stopped at chat::TEMPLATE_RECURSION, before the thread's stack runs out.
        (
            "recursing",
            MetaValue::Str("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}".into()),
            both(err(&["recursion limit"])),
        ),
        ("a huge string", MetaValue::Str("{{ 'ab ' * 1000000000 }}".into()), any()),
        ("a huge loop", MetaValue::Str("{% for i in range(1000000000) %}a {% endfor %}".into()), any()),
        // Stopped by the render's fuel (chat::TEMPLATE_FUEL).
        (
            "a string doubled 40 times",
            MetaValue::Str(
                "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"
                    .into(),
            ),
            both(err(&["fuel"])),
        ),
        ("longer than the context", MetaValue::Str("{% for i in range(200) %}a {% endfor %}".into()), any()),
        ("control tokens", MetaValue::Str("<s></s><unk>{{ bos_token }}{{ eos_token }}".into()), any()),
    ];
    for (what, v, (with_bos, without)) in cases {
        let mut s = base.clone();
        s.set(key, v.clone());
        r.case(&format!("{a}: chat template {what}"), &s, with_bos);
        s.set("tokenizer.ggml.add_bos_token", MetaValue::Bool(false));
        r.case(&format!("{a}: chat template {what}, no BOS added"), &s, without);
    }
}

/// Matrices in every type ember multiplies, on a model whose rows fit every block size.
fn weight_types(r: &mut Report, arch: Arch) {
    let base = Spec::new(arch, WIDE, 0x5EED + arch as u64);
    let a = arch.name();
    r.case(&format!("{a} wide: unmodified"), &base, Expect::Ok);
    let head = if arch == Arch::Gemma3 { "token_embd.weight" } else { "output.weight" };
    for name in ["token_embd.weight", head, "blk.0.attn_q.weight", "blk.1.ffn_down.weight"] {
        for ty in GgmlType::ALL.into_iter().filter(|&t| t != GgmlType::F32) {
            let mut s = base.clone();
            s.retype(name, ty);
            let expect = if ty.vec_dot_type().is_some() { Expect::Ok } else { err(&[name]) };
            r.case(&format!("{a} wide: {name} as {ty}"), &s, expect);
        }
    }
}

#[test]
fn malformed_models_are_errors_not_panics() {
    panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        if let Ok(mut p) = PANICS.lock() {
            p.push(format!("'{msg}' at {at}"));
        }
    }));
    let t0 = Instant::now();
    let mut r = Report::new();
    for arch in ARCHS {
        let base = Spec::new(arch, TINY, 0x1234 + arch as u64);
        // Prompts of over 64 tokens in one batch, every row's logits, perplexity.
        (r.prompt, r.opts) = (LONG, SessionOptions { logits_all: true, ..opts() });
        hyperparameters(&mut r, &base);
        session_options(&mut r, &base);
        long_prompts(&mut r, &base);
        (r.prompt, r.opts) = (SHORT, opts());
        tensors(&mut r, &base);
        tokenizer(&mut r, &base);
        chat_template(&mut r, &base);
        weight_types(&mut r, arch);
    }
    // Before it was refused, this spawned threads until the OS refused one,
    // and the process aborted.
    let base = Spec::new(Arch::Llama, TINY, 1);
    let many = SessionOptions { threads: 100_000, ..opts() };
    r.case_with("llama: threads 100000", &base.bytes(), many, None, err(&["thread count", "512"]), true);
    let _ = panic::take_hook();
    println!("{} cases in {:.1?}: {} ran, {} were errors", r.cases, t0.elapsed(), r.ok, r.err);
    for p in &r.panics {
        println!("PANIC {p}");
    }
    for w in &r.wrong {
        println!("WRONG {w}");
    }
    assert!(r.ok > 100 && r.err > 1000, "too few cases ran or failed: {} ok, {} errors", r.ok, r.err);
    assert!(
        r.panics.is_empty() && r.wrong.is_empty(),
        "{} panics, {} wrong outcomes (listed above)",
        r.panics.len(),
        r.wrong.len()
    );
}
