//! The model's tensors as views into the GGUF bytes (the mmap, or flash on a
//! microcontroller): nothing is copied. Every view is checked once here —
//! presence, type, shape, alignment — so the forward pass can trust them.
//!
//! Shapes are written in ggml order, `[ne0, ne1]`: `ne0` is the row length
//! (the input width of a matrix), `ne1` the number of rows (its output width).

use super::config::Config;
use crate::gguf::{File, ShortStr, TensorInfo};
use crate::ops::Mat;
use crate::Error;
use core::fmt::Write;
use ember_quant::GgmlType;

/// The tensors of one decoder block.
#[derive(Clone, Debug)]
pub struct LayerWeights<'a> {
    /// `attn_norm`, `[n_embd]`.
    pub attn_norm: &'a [f32],
    /// `attn_q`, `[n_embd, n_head * head_dim_k]`.
    pub wq: Mat<'a>,
    /// `attn_k`, `[n_embd, n_head_kv * head_dim_k]`.
    pub wk: Mat<'a>,
    /// `attn_v`, `[n_embd, n_head_kv * head_dim_v]`.
    pub wv: Mat<'a>,
    /// `attn_q.bias`, `[n_head * head_dim_k]` (qwen2).
    pub bq: Option<&'a [f32]>,
    /// `attn_k.bias`, `[n_head_kv * head_dim_k]` (qwen2).
    pub bk: Option<&'a [f32]>,
    /// `attn_v.bias`, `[n_head_kv * head_dim_v]` (qwen2).
    pub bv: Option<&'a [f32]>,
    /// `attn_q_norm`, `[head_dim_k]` (gemma3).
    pub q_norm: Option<&'a [f32]>,
    /// `attn_k_norm`, `[head_dim_k]` (gemma3).
    pub k_norm: Option<&'a [f32]>,
    /// `attn_output`, `[n_head * head_dim_v, n_embd]`.
    pub wo: Mat<'a>,
    /// `attn_output.bias`, `[n_embd]` (optional).
    pub bo: Option<&'a [f32]>,
    /// `post_attention_norm`, `[n_embd]` (gemma3).
    pub post_attn_norm: Option<&'a [f32]>,
    /// `ffn_norm`, `[n_embd]`.
    pub ffn_norm: &'a [f32],
    /// `ffn_gate`, `[n_embd, n_ff]`.
    pub w_gate: Mat<'a>,
    /// `ffn_up`, `[n_embd, n_ff]`.
    pub w_up: Mat<'a>,
    /// `ffn_down`, `[n_ff, n_embd]`.
    pub w_down: Mat<'a>,
    /// `post_ffw_norm`, `[n_embd]` (gemma3).
    pub post_ffn_norm: Option<&'a [f32]>,
}

/// Every tensor the forward pass reads.
#[derive(Clone, Debug)]
pub struct Weights<'a> {
    /// `token_embd`, `[n_embd, n_vocab]`: one row per token, looked up and dequantized.
    pub token_embd: Mat<'a>,
    /// `output_norm`, `[n_embd]`.
    pub output_norm: &'a [f32],
    /// `output`, `[n_embd, n_vocab]`; `token_embd` itself when the file has
    /// no `output.weight` (tied embeddings).
    pub output: Mat<'a>,
    /// Whether `output` is `token_embd`.
    pub tied_output: bool,
    /// `rope_freqs`, `[n_rot / 2]`: Llama 3's per-pair frequency divisors (optional).
    pub rope_freqs: Option<&'a [f32]>,
    /// The blocks, in order.
    #[cfg(feature = "alloc")]
    layers: alloc::vec::Vec<LayerWeights<'a>>,
    /// The blocks, in order (caller-provided storage without `alloc`; every
    /// entry below `n_layer` is `Some` once constructed).
    #[cfg(not(feature = "alloc"))]
    layers: &'a [Option<LayerWeights<'a>>],
}

/// Refuses a file with tensors of a block past `block_count` (`blk.N.*`
/// with N at or above it): its metadata undercounts its blocks, and running
/// the first ones alone gives a different model (llama.cpp refuses such a
/// file: "wrong number of tensors").
fn no_blocks_past(file: &File<'_>, cfg: &Config) -> Result<(), Error> {
    for t in file.tensors() {
        let block = t.name.strip_prefix("blk.").and_then(|r| r.split('.').next()).and_then(|n| n.parse::<usize>().ok());
        if block.is_some_and(|b| b >= cfg.n_layer) {
            return Err(bad(
                t.name,
                "belongs to a block past block_count: the file has more blocks than its metadata says",
            ));
        }
    }
    Ok(())
}

/// A tensor name built on the stack (`blk.12.attn_q.weight`).
struct Name {
    buf: [u8; 96],
    len: usize,
}

impl Name {
    fn new(args: core::fmt::Arguments<'_>) -> Name {
        let mut n = Name { buf: [0; 96], len: 0 };
        let _ = n.write_fmt(args);
        n
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for Name {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn bad(name: &str, reason: &'static str) -> Error {
    Error::BadTensor { name: ShortStr::new(name), reason }
}

fn find<'a>(file: &File<'a>, name: &Name) -> Option<TensorInfo<'a>> {
    file.tensor(name.as_str())
}

fn need<'a>(file: &File<'a>, name: &Name) -> Result<TensorInfo<'a>, Error> {
    find(file, name).ok_or(Error::MissingTensor { name: ShortStr::new(name.as_str()) })
}

/// A 1-D f32 tensor of `len` values, as a slice (GGUF data is aligned to at
/// least 8 bytes unless a file says otherwise; a misaligned one is an error).
fn vector<'a>(t: &TensorInfo<'a>, len: usize) -> Result<&'a [f32], Error> {
    if t.ty != GgmlType::F32 {
        return Err(bad(t.name, "must be F32"));
    }
    if t.n_elements() != len as u64 || t.row_len() != len as u64 {
        return Err(bad(t.name, "has the wrong length for this model's hyperparameters"));
    }
    bytemuck::try_cast_slice(t.data).map_err(|_| bad(t.name, "F32 data is not 4-byte aligned"))
}

fn opt_vector<'a>(file: &File<'a>, name: &Name, len: usize) -> Result<Option<&'a [f32]>, Error> {
    find(file, name).map(|t| vector(&t, len)).transpose()
}

/// A matrix of `rows` rows of `cols` values, in a format the kernels multiply.
fn matrix<'a>(t: &TensorInfo<'a>, cols: usize, rows: usize) -> Result<Mat<'a>, Error> {
    if t.dims[2] != 1 || t.dims[3] != 1 {
        return Err(bad(t.name, "must be 2-dimensional"));
    }
    if t.dims[0] != cols as u64 || t.dims[1] != rows as u64 {
        return Err(bad(t.name, "has the wrong shape for this model's hyperparameters"));
    }
    if t.ty.vec_dot_type().is_none() {
        return Err(bad(t.name, "has a tensor type ember has no matrix kernel for"));
    }
    let row_bytes = t.ty.row_bytes(cols).ok_or(bad(t.name, "row length is not a whole number of blocks"))?;
    let align = if matches!(t.ty, GgmlType::F32) { 4 } else { 2 };
    if !(t.data.as_ptr() as usize).is_multiple_of(align) || !row_bytes.is_multiple_of(align) {
        return Err(bad(t.name, "data is not aligned for its block type"));
    }
    if row_bytes.checked_mul(rows) != Some(t.data.len()) {
        return Err(bad(t.name, "data size does not match its shape"));
    }
    Ok(Mat { ty: t.ty, cols, rows, data: t.data })
}

impl<'a> Weights<'a> {
    /// Finds and checks every tensor `cfg` needs in `file`.
    #[cfg(feature = "alloc")]
    pub fn from_gguf(file: &File<'a>, cfg: &Config) -> Result<Weights<'a>, Error> {
        let mut layers = alloc::vec::Vec::new();
        // Every block has tensors of its own, so a block count above the
        // file's tensor count fails at the first missing one below: reserve
        // no more than the file can fill (block_count = 2^24 asked for 7 GB).
        let n = cfg.n_layer.min(file.tensor_count());
        let bytes = n.saturating_mul(core::mem::size_of::<LayerWeights<'_>>());
        layers.try_reserve_exact(n).map_err(|_| Error::OutOfMemory { bytes })?;
        for il in 0..cfg.n_layer {
            layers.push(LayerWeights::from_gguf(file, cfg, il)?);
        }
        let (token_embd, output_norm, output, tied_output, rope_freqs) = globals(file, cfg)?;
        Ok(Weights { token_embd, output_norm, output, tied_output, rope_freqs, layers })
    }

    /// Finds and checks every tensor `cfg` needs in `file`, the blocks going
    /// into `storage` (at least `cfg.n_layer` entries) — the no-alloc path.
    #[cfg(not(feature = "alloc"))]
    pub fn from_gguf_in(
        file: &File<'a>,
        cfg: &Config,
        storage: &'a mut [Option<LayerWeights<'a>>],
    ) -> Result<Weights<'a>, Error> {
        if storage.len() < cfg.n_layer {
            return Err(Error::BadOption("the layer storage is shorter than the model's block count"));
        }
        for (il, slot) in storage.iter_mut().enumerate().take(cfg.n_layer) {
            *slot = Some(LayerWeights::from_gguf(file, cfg, il)?);
        }
        let (token_embd, output_norm, output, tied_output, rope_freqs) = globals(file, cfg)?;
        let layers: &'a [Option<LayerWeights<'a>>] = &storage[..cfg.n_layer];
        Ok(Weights { token_embd, output_norm, output, tied_output, rope_freqs, layers })
    }

    /// Block `il`, if the model has it.
    pub fn layer(&self, il: usize) -> Option<&LayerWeights<'a>> {
        #[cfg(feature = "alloc")]
        return self.layers.get(il);
        #[cfg(not(feature = "alloc"))]
        return self.layers.get(il).and_then(|l| l.as_ref());
    }

    /// Number of blocks.
    pub fn n_layer(&self) -> usize {
        self.layers.len()
    }
}

type Globals<'a> = (Mat<'a>, &'a [f32], Mat<'a>, bool, Option<&'a [f32]>);

fn globals<'a>(file: &File<'a>, cfg: &Config) -> Result<Globals<'a>, Error> {
    no_blocks_past(file, cfg)?;
    let t = need(file, &Name::new(format_args!("token_embd.weight")))?;
    if t.dims[0] != cfg.n_embd as u64 || t.dims[1] != cfg.n_vocab as u64 || t.dims[2] != 1 || t.dims[3] != 1 {
        return Err(bad(t.name, "has the wrong shape for this model's hyperparameters"));
    }
    let rb = t.ty.row_bytes(cfg.n_embd).ok_or(bad(t.name, "row length is not a whole number of blocks"))?;
    if t.ty.vec_dot_type().is_none() || rb.checked_mul(cfg.n_vocab) != Some(t.data.len()) {
        return Err(bad(t.name, "has a type ember cannot read or a size that does not match its shape"));
    }
    let token_embd = Mat { ty: t.ty, cols: cfg.n_embd, rows: cfg.n_vocab, data: t.data };
    let output_norm = vector(&need(file, &Name::new(format_args!("output_norm.weight")))?, cfg.n_embd)?;
    let (output, tied) = match find(file, &Name::new(format_args!("output.weight"))) {
        Some(o) => (matrix(&o, cfg.n_embd, cfg.n_vocab)?, false),
        None => (matrix(&t, cfg.n_embd, cfg.n_vocab)?, true),
    };
    let rope_freqs = opt_vector(file, &Name::new(format_args!("rope_freqs.weight")), cfg.n_rot / 2)?;
    Ok((token_embd, output_norm, output, tied, rope_freqs))
}

impl<'a> LayerWeights<'a> {
    /// Block `il`'s tensors.
    pub fn from_gguf(file: &File<'a>, cfg: &Config, il: usize) -> Result<LayerWeights<'a>, Error> {
        let n = |s: &str| Name::new(format_args!("blk.{il}.{s}"));
        let d = cfg.n_embd;
        let mat = |s: &str, cols: usize, rows: usize| matrix(&need(file, &n(s))?, cols, rows);
        let vec = |s: &str, len: usize| vector(&need(file, &n(s))?, len);
        let opt = |s: &str, len: usize| opt_vector(file, &n(s), len);
        let switch = |on: bool, s: &str, len: usize| if on { vec(s, len).map(Some) } else { Ok(None) };
        Ok(LayerWeights {
            attn_norm: vec("attn_norm.weight", d)?,
            wq: mat("attn_q.weight", d, cfg.q_dim())?,
            wk: mat("attn_k.weight", d, cfg.k_dim())?,
            wv: mat("attn_v.weight", d, cfg.v_dim())?,
            bq: if cfg.qkv_bias {
                vec("attn_q.bias", cfg.q_dim()).map(Some)?
            } else {
                opt("attn_q.bias", cfg.q_dim())?
            },
            bk: if cfg.qkv_bias {
                vec("attn_k.bias", cfg.k_dim()).map(Some)?
            } else {
                opt("attn_k.bias", cfg.k_dim())?
            },
            bv: if cfg.qkv_bias {
                vec("attn_v.bias", cfg.v_dim()).map(Some)?
            } else {
                opt("attn_v.bias", cfg.v_dim())?
            },
            q_norm: switch(cfg.qk_norm, "attn_q_norm.weight", cfg.head_dim_k)?,
            k_norm: switch(cfg.qk_norm, "attn_k_norm.weight", cfg.head_dim_k)?,
            wo: mat("attn_output.weight", cfg.attn_out_dim(), d)?,
            bo: opt("attn_output.bias", d)?,
            post_attn_norm: switch(cfg.post_norms, "post_attention_norm.weight", d)?,
            ffn_norm: vec("ffn_norm.weight", d)?,
            w_gate: mat("ffn_gate.weight", d, cfg.n_ff)?,
            w_up: mat("ffn_up.weight", d, cfg.n_ff)?,
            w_down: mat("ffn_down.weight", cfg.n_ff, d)?,
            post_ffn_norm: switch(cfg.post_norms, "post_ffw_norm.weight", d)?,
        })
    }
}
