//! Model quantization as llama.cpp's `llama-quantize` does it (feature `std`).
//!
//! The spec is llama.cpp's `src/llama-quant.cpp` (`llama_model_quantize_impl`,
//! `llama_tensor_get_type`) and `ggml/src/gguf.cpp`, as vendored by
//! llama-cpp-python 0.3.36 (llama.cpp build 0c1e570). For the same input and
//! type the output file is meant to be byte-identical with llama.cpp's:
//!
//! - **Metadata**: every entry of the input in its order, except
//!   `general.quantization_version` (set to 2, `GGML_QNT_VERSION`) and
//!   `general.file_type` (set to the `llama_ftype`), which move to the end in
//!   that order (gguf's `set_val` removes, then appends), and the `split.*`
//!   keys, which are dropped.
//! - **Tensor order**: llama.cpp's loader keeps tensors in a map ordered by
//!   layer number (`blk.N.`, tensors outside layers first) and then by name
//!   bytewise; the output follows that order, not the input's.
//! - **Which tensors change type**: only tensors of two or more dimensions
//!   whose name ends in `weight`, except norms and a list of small or special
//!   tensors ([`allows_quantization`]); the output tensor, and the token
//!   embedding when it is tied to the output (no `output.weight`), become
//!   Q6_K unless the target is Q8_0 (Q8_0 if their rows do not split into
//!   blocks of the target); the K mixes (`Q4_K_M`, `Q5_K_M`) give some
//!   `attn_v` and `ffn_down` tensors Q6_K; rows that do not split into the
//!   target's blocks fall back (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, then F16).
//! - **Values**: a converted tensor is dequantized to f32 (ggml's scalar
//!   `dequantize_row_*`) and quantized with ggml's reference quantizer
//!   (`quantize_row_*_ref`, what `ggml_quantize_chunk` runs without an
//!   importance matrix); tensors that keep their type are copied byte for byte.
//! - **Layout**: GGUF v3, tensor data padded to 32 bytes.
//!
//! Known deviation: for an input whose `general.alignment` is not 32,
//! llama.cpp keeps the key but pads to 32 anyway (a file its own reader then
//! misreads); ember pads to the key's alignment, so the file stays valid.

use crate::gguf::{File, ShortStr, TensorInfo, Writer};
use crate::Error;
use ember_quant::{matmul, GgmlType};
use std::io::Write;
use std::path::Path;

/// `GGML_QNT_VERSION`, written as `general.quantization_version`.
pub const QUANTIZATION_VERSION: u32 = 2;

const KEY_FILE_TYPE: &str = "general.file_type";
const KEY_QUANTIZATION_VERSION: &str = "general.quantization_version";
/// Split-file keys that llama.cpp removes from a single output file.
const SPLIT_KEYS: [&str; 3] = ["split.no", "split.count", "split.tensors.count"];

/// A target file type: a `llama_ftype` of llama.cpp (the value written as
/// `general.file_type`). The K mixes choose the type per tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum FileType {
    /// Q4_0 everywhere (except the kept tensors and the output/embedding rule).
    Q4_0,
    /// Q4_1.
    Q4_1,
    /// Q5_0.
    Q5_0,
    /// Q5_1.
    Q5_1,
    /// Q8_0.
    Q8_0,
    /// Q4_K with Q6_K for some `attn_v`/`ffn_down` tensors (`Q4_K` is its alias).
    Q4_K_M,
    /// Q5_K with Q6_K for some `attn_v`/`ffn_down` tensors (`Q5_K` is its alias).
    Q5_K_M,
    /// Q6_K.
    Q6_K,
}

impl FileType {
    /// Every supported file type.
    pub const ALL: [FileType; 8] = {
        use FileType::*;
        [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K_M, Q5_K_M, Q6_K]
    };

    /// The names [`FileType::from_name`] accepts, for help and error messages.
    pub const NAMES: &'static str = "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K (= Q4_K_M), Q5_K (= Q5_K_M), Q6_K";

    /// The file type by its `llama-quantize` name, case-insensitive; `Q4_K`
    /// and `Q5_K` are aliases of `Q4_K_M` and `Q5_K_M`, as in `llama-quantize`.
    pub fn from_name(name: &str) -> Option<FileType> {
        let alias = match name.to_ascii_uppercase().as_str() {
            "Q4_K" => Some(FileType::Q4_K_M),
            "Q5_K" => Some(FileType::Q5_K_M),
            _ => None,
        };
        alias.or_else(|| Self::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(name)))
    }

    /// The name `llama-quantize` uses.
    pub const fn name(self) -> &'static str {
        match self {
            FileType::Q4_0 => "Q4_0",
            FileType::Q4_1 => "Q4_1",
            FileType::Q5_0 => "Q5_0",
            FileType::Q5_1 => "Q5_1",
            FileType::Q8_0 => "Q8_0",
            FileType::Q4_K_M => "Q4_K_M",
            FileType::Q5_K_M => "Q5_K_M",
            FileType::Q6_K => "Q6_K",
        }
    }

    /// The `llama_ftype` value (llama.h), written as `general.file_type`.
    pub const fn id(self) -> u32 {
        match self {
            FileType::Q4_0 => 2,
            FileType::Q4_1 => 3,
            FileType::Q8_0 => 7,
            FileType::Q5_0 => 8,
            FileType::Q5_1 => 9,
            FileType::Q4_K_M => 15,
            FileType::Q5_K_M => 17,
            FileType::Q6_K => 18,
        }
    }

    /// The tensor type most weights get (`llama_ftype_get_default_type`).
    pub const fn default_type(self) -> GgmlType {
        match self {
            FileType::Q4_0 => GgmlType::Q4_0,
            FileType::Q4_1 => GgmlType::Q4_1,
            FileType::Q5_0 => GgmlType::Q5_0,
            FileType::Q5_1 => GgmlType::Q5_1,
            FileType::Q8_0 => GgmlType::Q8_0,
            FileType::Q4_K_M => GgmlType::Q4_K,
            FileType::Q5_K_M => GgmlType::Q5_K,
            FileType::Q6_K => GgmlType::Q6_K,
        }
    }
}

impl core::fmt::Display for FileType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// What to quantize to, and how.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The target file type.
    pub file_type: FileType,
    /// Convert tensors that are already quantized (`--allow-requantize`).
    /// Without it, a file whose quantized tensors would change type is refused.
    pub allow_requantize: bool,
    /// Worker threads for the conversion; 0 means one per available core.
    /// The output does not depend on it.
    pub threads: usize,
}

impl Options {
    /// `file_type`, requantization refused, all cores.
    pub fn new(file_type: FileType) -> Options {
        Options { file_type, allow_requantize: false, threads: 0 }
    }
}

/// One tensor of the output: where it comes from and what it becomes.
#[derive(Clone, Copy, Debug)]
pub struct TensorPlan<'a> {
    /// The input tensor (name, type, shape, bytes).
    pub input: TensorInfo<'a>,
    /// Dimensions written to the output: ggml's `ggml_n_dims` (trailing 1s dropped).
    pub n_dims: usize,
    /// The output type.
    pub to: GgmlType,
    /// The target type did not fit the row length and a fallback type was chosen.
    pub fallback: bool,
}

impl TensorPlan<'_> {
    /// The tensor's name.
    pub fn name(&self) -> &str {
        self.input.name
    }

    /// The output shape (ggml order).
    pub fn shape(&self) -> &[u64] {
        &self.input.dims[..self.n_dims]
    }

    /// Whether the data is converted (otherwise it is copied).
    pub fn converts(&self) -> bool {
        self.input.ty != self.to
    }

    /// Bytes of output data (without padding).
    pub fn output_bytes(&self) -> u64 {
        self.input.n_rows() * self.to.row_bytes(self.input.dims[0] as usize).unwrap_or(0) as u64
    }
}

/// Reported after each tensor is written.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'p> {
    /// 0-based position in the output.
    pub index: usize,
    /// Number of tensors.
    pub count: usize,
    /// The tensor.
    pub tensor: &'p TensorPlan<'p>,
    /// Bytes of input data.
    pub bytes_in: u64,
    /// Bytes of output data.
    pub bytes_out: u64,
}

/// Totals of a finished quantization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Tensors written.
    pub tensors: usize,
    /// Tensors converted to another type (the rest were copied).
    pub converted: usize,
    /// Tensors that got a fallback type.
    pub fallbacks: usize,
    /// Bytes of tensor data in the input.
    pub bytes_in: u64,
    /// Bytes of tensor data in the output (without padding).
    pub bytes_out: u64,
    /// Size of the output file.
    pub file_size: u64,
}

/// The whole conversion, decided before any byte is written: the output's
/// tensors in order with their types. Building it checks everything that
/// can be checked without converting data.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    file: File<'a>,
    options: Options,
    tensors: Vec<TensorPlan<'a>>,
}

impl<'a> Plan<'a> {
    /// Plans quantizing `file` with `options`.
    ///
    /// Errors: a tensor that would be requantized without
    /// [`Options::allow_requantize`], a tensor whose type ember cannot
    /// dequantize, an MoE tensor without a valid layer number, or (for the K
    /// mixes) a missing `{arch}.block_count`.
    pub fn new(file: &File<'a>, options: Options) -> Result<Plan<'a>, Error> {
        let hp = Hparams::read(file);
        let ftype = options.file_type;
        let mut inputs: Vec<TensorInfo<'a>> = file.tensors().collect();
        // llama_model_loader::weights_map: ordered by layer, then by name.
        inputs.sort_by(|a, b| (layer_of(a.name), a.name).cmp(&(layer_of(b.name), b.name)));

        let mut st = State {
            n_attention_wv: inputs.iter().filter(|t| category(t.name).is_attn_v()).count() as i64,
            tied_embeddings: !inputs.iter().any(|t| category(t.name) == Category::Output),
            ..State::default()
        };
        let mixes = matches!(ftype, FileType::Q4_K_M | FileType::Q5_K_M);
        if mixes && hp.n_layer.is_none() {
            let key = format!("{}.block_count", hp.arch);
            return Err(Error::MissingKey { key: ShortStr::new(&key) });
        }

        let mut tensors = Vec::with_capacity(inputs.len());
        for input in inputs {
            let n_dims = ggml_n_dims(&input.dims);
            let (to, fallback) = if allows_quantization(hp.arch, input.name, n_dims) {
                type_fallback(input.dims[0], tensor_type(&mut st, &hp, ftype, &input)?)?
            } else {
                (input.ty, false)
            };
            let plan = TensorPlan { input, n_dims, to, fallback };
            if plan.converts() {
                let name = ShortStr::new(input.name);
                if is_quantized(input.ty) && !options.allow_requantize {
                    let reason = "is already quantized; requantizing loses precision and needs --allow-requantize";
                    return Err(Error::BadTensor { name, reason });
                }
                if !can_dequantize(input.ty) {
                    return Err(Error::BadTensor { name, reason: "has a type ember cannot dequantize" });
                }
            }
            tensors.push(plan);
        }
        Ok(Plan { file: *file, options, tensors })
    }

    /// The output's tensors, in output order.
    pub fn tensors(&self) -> &[TensorPlan<'a>] {
        &self.tensors
    }

    /// The options the plan was made with.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The output's header, metadata and tensor infos, ready to stream data after.
    fn writer(&self) -> Result<Writer<'static>, Error> {
        let mut w = Writer::new();
        for (key, value) in self.file.metadata() {
            if key == KEY_FILE_TYPE || key == KEY_QUANTIZATION_VERSION || SPLIT_KEYS.contains(&key) {
                continue;
            }
            w.add_value(key, value)?;
        }
        w.add_u32(KEY_QUANTIZATION_VERSION, QUANTIZATION_VERSION)?;
        w.add_u32(KEY_FILE_TYPE, self.options.file_type.id())?;
        for t in &self.tensors {
            w.add_tensor_info(t.name(), t.to, t.shape())?;
        }
        Ok(w)
    }

    /// Writes the quantized file to `out`, calling `progress` after each
    /// tensor. Errors: I/O, or a converted tensor holding NaN or infinity.
    pub fn write(&self, out: &mut impl Write, mut progress: impl FnMut(&Progress<'_>)) -> Result<Summary, Error> {
        let io = |e: std::io::Error| Error::io("write", &e);
        let w = self.writer()?;
        let mut file_size = w.write_header_to(out).map_err(io)?;
        let threads = match self.options.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut sum = Summary {
            tensors: self.tensors.len(),
            converted: 0,
            fallbacks: 0,
            bytes_in: 0,
            bytes_out: 0,
            file_size: 0,
        };
        let mut buf: Vec<u8> = Vec::new();
        for (index, t) in self.tensors.iter().enumerate() {
            let data: &[u8] = if t.converts() {
                buf.clear();
                buf.resize(t.output_bytes() as usize, 0);
                convert(t, &mut buf, threads)?;
                sum.converted += 1;
                &buf
            } else {
                t.input.data
            };
            out.write_all(data).map_err(io)?;
            let n = data.len() as u64;
            let pad = w.padding(n);
            out.write_all(&[0u8; 64][..pad as usize]).map_err(io)?;
            file_size += n + pad;
            sum.fallbacks += t.fallback as usize;
            sum.bytes_in += t.input.data.len() as u64;
            sum.bytes_out += n;
            let p = Progress {
                index,
                count: self.tensors.len(),
                tensor: t,
                bytes_in: t.input.data.len() as u64,
                bytes_out: n,
            };
            progress(&p);
        }
        out.flush().map_err(io)?;
        sum.file_size = file_size;
        Ok(sum)
    }
}

/// Quantizes the GGUF file `input` into `output` (written to a temporary file
/// next to it, renamed into place when complete).
pub fn quantize_file(
    input: &Path,
    output: &Path,
    options: Options,
    progress: impl FnMut(&Progress<'_>),
) -> Result<Summary, Error> {
    let model = crate::Model::open(input)?;
    if output.is_dir() {
        return Err(Error::BadOption("the output path is a folder: name the GGUF file to write"));
    }
    if writes_over(input, output) {
        return Err(Error::BadOption(
            "the output path is the input file: quantizing would replace the model; write to another path",
        ));
    }
    let file = model.gguf();
    let plan = Plan::new(&file, options)?;
    let mut tmp_name = output.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".partial");
    let tmp = output.with_file_name(tmp_name);
    let result = (|| {
        let f = std::fs::File::create(&tmp).map_err(|e| Error::io("creating the output file", &e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let sum = plan.write(&mut w, progress)?;
        let f = w.into_inner().map_err(|e| Error::io("writing the output file", e.error()))?;
        f.sync_all().map_err(|e| Error::io("syncing the output file", &e))?;
        std::fs::rename(&tmp, output).map_err(|e| Error::io("renaming the output file into place", &e))?;
        Ok(sum)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Whether renaming a file onto `output` would replace the file `input`: the
/// same file once symlinks in the folders and in `input` are resolved. An
/// `output` that is a symlink is not followed: the rename replaces the link.
fn writes_over(input: &Path, output: &Path) -> bool {
    let (Some(name), Ok(input)) = (output.file_name(), input.canonicalize()) else {
        return false;
    };
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    parent.canonicalize().is_ok_and(|p| p.join(name) == input)
}

/// Dequantizes a tensor's rows and quantizes them to the new type, on up to
/// `threads` threads (each takes a contiguous range of rows; rows are
/// independent, so the bytes do not depend on the split).
fn convert(t: &TensorPlan<'_>, out: &mut [u8], threads: usize) -> Result<(), Error> {
    let n = t.input.dims[0] as usize;
    let rows = t.input.n_rows() as usize;
    let name = t.name();
    let bad = |reason| Error::BadTensor { name: ShortStr::new(name), reason };
    let row_in = t.input.ty.row_bytes(n).ok_or(bad("row length is not a whole number of blocks"))?;
    let row_out = t.to.row_bytes(n).ok_or(bad("row length is not a whole number of the target's blocks"))?;
    if row_in.checked_mul(rows) != Some(t.input.data.len()) || row_out.checked_mul(rows) != Some(out.len()) {
        return Err(bad("data size does not match its shape"));
    }
    if rows == 0 || n == 0 {
        return Ok(());
    }
    // Below ~1M values a second thread costs more than it saves.
    let threads = threads.clamp(1, rows).min((rows * n).div_ceil(1 << 20));
    let per = rows.div_ceil(threads.max(1));
    let (from, to) = (t.input.ty, t.to);
    let job = |inp: &[u8], out: &mut [u8]| convert_rows(from, to, n, inp, out, name);
    if threads <= 1 {
        return job(t.input.data, out);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = t
            .input
            .data
            .chunks(per * row_in)
            .zip(out.chunks_mut(per * row_out))
            .map(|(i, o)| s.spawn(move || job(i, o)))
            .collect();
        handles.into_iter().try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })
}

/// Converts whole rows of `n` values from `inp` (type `from`) into `out` (type `to`).
fn convert_rows(from: GgmlType, to: GgmlType, n: usize, inp: &[u8], out: &mut [u8], name: &str) -> Result<(), Error> {
    let (row_in, row_out) = (from.row_bytes(n).unwrap_or(0), to.row_bytes(n).unwrap_or(0));
    let batch = (65536 / n).max(1);
    let mut f32s = vec![0f32; batch * n];
    for (i, o) in inp.chunks(batch * row_in).zip(out.chunks_mut(batch * row_out)) {
        let x = &mut f32s[..i.len() / row_in * n];
        matmul::dequantize(from, i, x)?;
        if !x.iter().all(|v| v.is_finite()) {
            let reason = "contains NaN or infinite values, which cannot be quantized";
            return Err(Error::BadTensor { name: ShortStr::new(name), reason });
        }
        matmul::quantize(to, x, o)?;
    }
    Ok(())
}

/// ggml's `ggml_is_quantized`: block formats (every type with blocks of more than one value).
fn is_quantized(ty: GgmlType) -> bool {
    ty.block_size() > 1
}

/// Whether `ember_quant` can turn this type into f32.
fn can_dequantize(ty: GgmlType) -> bool {
    // An empty conversion runs the same dispatch as a real one.
    matmul::dequantize(ty, &[], &mut []).is_ok()
}

/// `ggml_n_dims`: the number of dimensions up to the last one above 1 (at least 1).
fn ggml_n_dims(dims: &[u64; 4]) -> usize {
    (1..4).rev().find(|&i| dims[i] > 1).map_or(1, |i| i + 1)
}

/// The layer number by which llama.cpp's loader orders tensors:
/// `sscanf(name, "blk.%d.", &layer)`, -1 when that reads nothing (so tensors
/// outside layers come first).
fn layer_of(name: &str) -> i64 {
    scan_layer(name).unwrap_or(-1)
}

/// `sscanf(name, "blk.%d.", &layer) == 1 ? Some(layer) : None`.
fn scan_layer(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("blk.")?;
    // %d: optional white space, optional sign, then at least one digit.
    let rest = rest.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match rest.as_bytes().first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 {
        return None;
    }
    let v = digits[..len].bytes().fold(0i64, |acc, d| acc.saturating_mul(10).saturating_add((d - b'0') as i64));
    // scanf stores the value in an int.
    Some((if neg { -v } else { v }) as i32 as i64)
}

/// The hyperparameters the type rules look at.
struct Hparams<'a> {
    arch: &'a str,
    /// `{arch}.block_count` (`n_layer_all`).
    n_layer: Option<u32>,
    /// `{arch}.expert_count`, 0 without.
    n_expert: u32,
    /// llama.cpp's `LLM_TYPE_70B`, the only model size the rules look at.
    is_70b: bool,
}

impl<'a> Hparams<'a> {
    fn read(file: &File<'a>) -> Hparams<'a> {
        let arch = file.get_str("general.architecture").unwrap_or("");
        let get = |k: &str| {
            let key = format!("{arch}.{k}");
            // A per-layer array: llama.cpp's n_head() is the first layer's.
            file.get_u64(&key).or_else(|| file.get_array(&key)?.int_iter()?.next().map(|v| v as u64))
        };
        let n_layer = get("block_count").map(|v| v as u32);
        let n_expert = get("expert_count").unwrap_or(0) as u32;
        let n_head = get("attention.head_count").unwrap_or(0);
        let n_head_kv = get("attention.head_count_kv").unwrap_or(n_head);
        let is_70b = match (arch, n_layer) {
            ("llama", Some(80)) => n_expert != 8 && n_head != n_head_kv,
            ("qwen2" | "deci" | "olmo", Some(80)) | ("jais2", Some(68)) => true,
            _ => false,
        };
        Hparams { arch, n_layer, n_expert, is_70b }
    }
}

/// `quantize_state_impl`: counters the mixes use, advanced in tensor order.
#[derive(Default)]
struct State {
    n_attention_wv: i64,
    i_attention_wv: i64,
    i_ffn_down: i64,
    i_ffn_gate: i64,
    i_ffn_up: i64,
    tied_embeddings: bool,
}

/// `tensor_category`: broad roles by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttentionQ,
    AttentionV,
    AttentionK,
    AttentionQkv,
    AttentionKvB,
    AttentionOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

impl Category {
    /// `category_is_attn_v`.
    fn is_attn_v(self) -> bool {
        matches!(self, Category::AttentionV | Category::AttentionQkv | Category::AttentionKvB)
    }
}

/// `tensor_get_category` (first match wins, in this order).
fn category(name: &str) -> Category {
    if name == "output.weight" {
        return Category::Output;
    }
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return Category::TokenEmbd;
    }
    const BY_SUBSTRING: [(&str, Category); 9] = [
        ("attn_qkv.weight", Category::AttentionQkv),
        ("attn_kv_b.weight", Category::AttentionKvB),
        ("attn_v.weight", Category::AttentionV),
        ("attn_k.weight", Category::AttentionK),
        ("attn_q.weight", Category::AttentionQ),
        ("attn_output.weight", Category::AttentionOutput),
        ("ffn_up", Category::FfnUp),
        ("ffn_gate", Category::FfnGate),
        ("ffn_down", Category::FfnDown),
    ];
    BY_SUBSTRING.iter().find(|(s, _)| name.contains(s)).map_or(Category::Other, |&(_, c)| c)
}

/// `tensor_allows_quantization` with llama-quantize's default options: may
/// this tensor change type at all? (Otherwise it is copied.)
pub fn allows_quantization(arch: &str, name: &str, n_dims: usize) -> bool {
    // Quantize only 2-D and 3-D (expert) tensors.
    if n_dims < 2 {
        return false;
    }
    // `name.rfind("weight") == name.size() - 6`: a name of exactly 5 bytes
    // also passes (size_t wrap-around equals npos); kept for identical output.
    let ends_in_weight = name.ends_with("weight") || name.len() == 5;
    if !ends_in_weight || name.contains("_norm.weight") {
        return false;
    }
    if name == "position_embd.weight" || name == "token_types.weight" {
        return false;
    }
    const KEEP: &[&str] = &[
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "indexer.k_proj.weight",
        "indexer.q_proj.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
        ".position_embd",
        "sam.pos_embd",
        "sam.neck.",
        "sam.net_",
        ".rel_pos",
        ".patch_embd",
        ".patch_merger",
        "a.rvq.codebook",
        "mm.a.code_embd",
    ];
    if KEEP.iter().any(|s| name.contains(s)) {
        return false;
    }
    const KEEP_GLM5_NEXT: &[&str] = &[
        "hc_",
        "indexer.attn_q_b",
        "indexer.attn_k",
        "indexer.proj",
        "indexer_compressor_gate",
        "indexer_compressor_ape",
        "ssm_f_a.weight",
        "ssm_f_b.weight",
        "ssm_g_a.weight",
        "ssm_g_b.weight",
        "ssm_beta.weight",
        "attn_kv_a_mqa.weight",
        "attn_k_b.weight",
        "attn_v_b.weight",
    ];
    !(arch == "glm5-next" && KEEP_GLM5_NEXT.iter().any(|s| name.contains(s)))
}

/// `use_more_bits`: the layers the K mixes give more bits.
fn use_more_bits(i: i64, n: i64) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// `llama_tensor_get_type_impl` for the supported file types, with no
/// imatrix and no user overrides. Advances the counters as llama.cpp does.
fn tensor_type(st: &mut State, hp: &Hparams<'_>, ftype: FileType, t: &TensorInfo<'_>) -> Result<GgmlType, Error> {
    use FileType::{Q4_K_M, Q5_K_M};
    let name = t.name;
    let cat = category(name);
    let mut new = ftype.default_type();
    let falcon = hp.arch == "falcon";
    let n_layer = hp.n_layer.unwrap_or(0) as i64;
    // `layer_info`: the layer a ffn tensor belongs to, by counter (by name for MoE).
    let layer_info = |i: i64| -> Result<i64, Error> {
        if hp.n_expert <= 1 {
            return Ok(i);
        }
        let bad = |reason| Error::BadTensor { name: ShortStr::new(name), reason };
        let l = scan_layer(name).ok_or(bad("its layer cannot be determined from the name (blk.N.)"))?;
        if l < 0 || l >= n_layer {
            return Err(bad("its layer number is not below block_count"));
        }
        Ok(l)
    };

    if hp.arch == "glm5-next" && ["attn_q_a", "attn_q_b", "nextn.eh_proj"].iter().any(|s| name.contains(s)) {
        return Ok(GgmlType::Q8_0);
    }
    if cat == Category::Output || (st.tied_embeddings && cat == Category::TokenEmbd) {
        if falcon || !t.dims[0].is_multiple_of(new.block_size() as u64) {
            new = GgmlType::Q8_0;
        } else if new != GgmlType::Q8_0 {
            new = GgmlType::Q6_K;
        }
    } else if cat == Category::TokenEmbd {
        // Only the IQ and TQ types change it.
    } else if cat.is_attn_v() {
        if matches!(ftype, Q4_K_M | Q5_K_M) && use_more_bits(st.i_attention_wv, st.n_attention_wv) {
            new = GgmlType::Q6_K;
        }
        if hp.is_70b && matches!(new, GgmlType::Q3_K | GgmlType::Q4_K) {
            new = GgmlType::Q5_K;
        }
        if hp.n_expert == 8 {
            new = GgmlType::Q8_0;
        }
        st.i_attention_wv += 1;
    } else if cat == Category::AttentionK {
        if hp.n_expert == 8 {
            new = GgmlType::Q8_0;
        }
    } else if cat == Category::AttentionQ {
        // Only the IQ3 types change it.
    } else if cat == Category::FfnDown {
        let i_layer = layer_info(st.i_ffn_down)?;
        if ftype == Q4_K_M {
            if falcon {
                new = if i_layer < n_layer / 16 {
                    GgmlType::Q6_K
                } else if use_more_bits(i_layer, n_layer) {
                    GgmlType::Q5_K
                } else {
                    GgmlType::Q4_K
                };
            } else if use_more_bits(i_layer, n_layer) {
                new = GgmlType::Q6_K;
            }
        } else if ftype == Q5_K_M && use_more_bits(i_layer, n_layer) {
            new = GgmlType::Q6_K;
        }
        st.i_ffn_down += 1;
    } else if cat == Category::AttentionOutput {
        if !falcon && hp.n_expert == 8 && ftype == Q4_K_M {
            new = GgmlType::Q5_K;
        }
    } else if cat == Category::FfnGate {
        layer_info(st.i_ffn_gate)?;
        st.i_ffn_gate += 1;
    } else if cat == Category::FfnUp {
        layer_info(st.i_ffn_up)?;
        st.i_ffn_up += 1;
    }
    Ok(new)
}

/// `tensor_type_fallback`: a type whose blocks fit rows of `ncols` values.
/// Returns the type and whether it had to change.
fn type_fallback(ncols: u64, target: GgmlType) -> Result<(GgmlType, bool), Error> {
    let fits = |t: GgmlType| ncols.is_multiple_of(t.block_size() as u64);
    if fits(target) {
        return Ok((target, false));
    }
    let mut t = match target {
        GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::TQ1_0 | GgmlType::TQ2_0 => GgmlType::Q4_0,
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        t if t.block_size() <= 32 => t,
        _ => return Err(Error::BadOption("no fallback type is defined for this target type")),
    };
    if !fits(t) {
        t = GgmlType::F16;
    }
    Ok((t, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_numbers_read_like_sscanf() {
        assert_eq!(layer_of("blk.0.attn_q.weight"), 0);
        assert_eq!(layer_of("blk.17.ffn_up.weight"), 17);
        assert_eq!(layer_of("blk. 3.x"), 3);
        assert_eq!(layer_of("blk.-2.x"), -2);
        assert_eq!(layer_of("blk.x.y"), -1);
        assert_eq!(layer_of("token_embd.weight"), -1);
        assert_eq!(layer_of("output.blk.1"), -1);
    }

    #[test]
    fn tensor_order_is_layer_then_name() {
        let mut v = ["output_norm.weight", "blk.10.a", "blk.2.b", "blk.2.a", "token_embd.weight", "blk.1.z"];
        v.sort_by(|a, b| (layer_of(a), *a).cmp(&(layer_of(b), *b)));
        assert_eq!(v, ["output_norm.weight", "token_embd.weight", "blk.1.z", "blk.2.a", "blk.2.b", "blk.10.a"]);
    }

    #[test]
    fn n_dims_drops_trailing_ones() {
        assert_eq!(ggml_n_dims(&[576, 1, 1, 1]), 1);
        assert_eq!(ggml_n_dims(&[576, 1, 3, 1]), 3);
        assert_eq!(ggml_n_dims(&[1, 1, 1, 1]), 1);
        assert_eq!(ggml_n_dims(&[4, 5, 1, 1]), 2);
    }

    #[test]
    fn which_tensors_may_change_type() {
        assert!(allows_quantization("llama", "blk.0.attn_q.weight", 2));
        assert!(!allows_quantization("llama", "blk.0.attn_norm.weight", 2));
        assert!(!allows_quantization("llama", "blk.0.attn_q.weight", 1));
        assert!(!allows_quantization("llama", "blk.0.attn_q.bias", 2));
        assert!(!allows_quantization("llama", "blk.0.ffn_gate_inp.weight", 2));
        assert!(!allows_quantization("bert", "position_embd.weight", 2));
        assert!(!allows_quantization("glm5-next", "blk.0.hc_x.weight", 2));
        assert!(allows_quantization("llama", "blk.0.hc_x.weight", 2));
        assert!(allows_quantization("llama", "w_out", 2), "llama.cpp's size_t wrap-around for 5-byte names");
    }

    #[test]
    fn fallback_types() {
        assert_eq!(type_fallback(576, GgmlType::Q4_K).unwrap(), (GgmlType::Q5_0, true));
        assert_eq!(type_fallback(576, GgmlType::Q5_K).unwrap(), (GgmlType::Q5_1, true));
        assert_eq!(type_fallback(576, GgmlType::Q6_K).unwrap(), (GgmlType::Q8_0, true));
        assert_eq!(type_fallback(512, GgmlType::Q6_K).unwrap(), (GgmlType::Q6_K, false));
        assert_eq!(type_fallback(48, GgmlType::Q4_0).unwrap(), (GgmlType::F16, true));
        assert_eq!(type_fallback(40, GgmlType::Q4_K).unwrap(), (GgmlType::F16, true));
    }

    #[test]
    fn use_more_bits_matches_llama_cpp_for_30_layers() {
        // n/8 = 3, 7n/8 = 26: layers 0..3, 26..30 and every third from 5.
        let got: Vec<i64> = (0..30).filter(|&i| use_more_bits(i, 30)).collect();
        assert_eq!(got, [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]);
    }

    #[test]
    fn file_type_names() {
        assert_eq!(FileType::from_name("q4_k"), Some(FileType::Q4_K_M));
        assert_eq!(FileType::from_name("Q5_K"), Some(FileType::Q5_K_M));
        assert_eq!(FileType::from_name("Q8_0"), Some(FileType::Q8_0));
        assert_eq!(FileType::from_name("Q4_K_S"), None);
        assert_eq!(FileType::from_name("F16"), None);
        for t in FileType::ALL {
            assert_eq!(FileType::from_name(t.name()), Some(t));
        }
    }
}
