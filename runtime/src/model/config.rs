//! Hyperparameters of a decoder, read from GGUF metadata
//! (`{arch}.block_count`, `{arch}.attention.head_count`, ...; names as in
//! llama.cpp's `llama-arch.cpp`), plus the switches that make one forward
//! pass serve several architectures.
//!
//! Per architecture (rules checked against llama.cpp's `llama-model.cpp`,
//! `models/*.cpp` and `llama-hparams.cpp`):
//! - `llama` (SmolLM2, Llama 2/3, Mistral files): "normal" RoPE (the
//!   converter permuted q/k for it), SiLU-gated FFN, optional
//!   `rope_freqs.weight` (Llama 3 frequency factors), optional linear scaling.
//! - `mistral`: the same switches as `llama`.
//! - `qwen2`: NeoX RoPE, q/k/v biases.
//! - `gemma3`: NeoX RoPE, RMSNorm of each q and k head, norms after attention
//!   and after the FFN, GELU(tanh)-gated FFN, the embedding scaled by
//!   `sqrt(n_embd)`, the query scaled by `1/sqrt(head_dim_k)` before attention
//!   (score scale 1), sliding-window attention on layers where
//!   `il % 6 < 5` (`set_swa_pattern(6)`; `attention.sliding_window_pattern`
//!   overrides), RoPE base 10000 on those layers (`rope.freq_base_swa`
//!   overrides) and `rope.freq_base` on the others. Gemma's RMSNorm multiplies
//!   by `1 + w`; llama.cpp's converter already stored `1 + w` in the GGUF
//!   (norm weights of gemma-3-270m average 13 for `attn_norm`), so the weights
//!   are used as they are.

use crate::gguf::{File, ShortStr, Value};
use crate::ops::RopeStyle;
use crate::{Error, Number};
use core::fmt::Write;
use ember_quant::GgmlType;

/// A decoder architecture ember runs, by its `general.architecture` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// `llama` (also SmolLM2 and most Llama-family files).
    Llama,
    /// `mistral`.
    Mistral,
    /// `qwen2`.
    Qwen2,
    /// `gemma3`.
    Gemma3,
}

impl Arch {
    /// Every supported `general.architecture` value.
    pub const SUPPORTED: [&'static str; 4] = ["llama", "mistral", "qwen2", "gemma3"];
    /// The same list as one string, for error messages.
    pub const SUPPORTED_LIST: &'static str = "llama, mistral, qwen2, gemma3";

    /// The architecture named `name`, if supported.
    pub fn from_name(name: &str) -> Option<Arch> {
        Some(match name {
            "llama" => Arch::Llama,
            "mistral" => Arch::Mistral,
            "qwen2" => Arch::Qwen2,
            "gemma3" => Arch::Gemma3,
            _ => return None,
        })
    }

    /// The `general.architecture` name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Mistral => "mistral",
            Arch::Qwen2 => "qwen2",
            Arch::Gemma3 => "gemma3",
        }
    }
}

/// The gate activation of the FFN: `down(act(gate(x)) * up(x))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (SwiGLU).
    Silu,
    /// GELU, tanh approximation (GeGLU), as ggml's f16 table computes it.
    GeluTanh,
}

/// Which layers use sliding-window attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwaPattern {
    /// None: every layer attends to the whole context.
    None,
    /// Layer `il` is sliding-window when `il % period < period - 1`
    /// (llama.cpp's `set_swa_pattern(period)`; 0 means every layer).
    Period(u32),
    /// An explicit per-layer list (`attention.sliding_window_pattern` as an
    /// array), as a bit set over at most 256 layers.
    Mask([u64; 4]),
}

/// Whether layer `il` slides, for a window (0: none) and a pattern.
pub(crate) fn is_swa_layer(window: usize, pattern: SwaPattern, il: usize) -> bool {
    if window == 0 {
        return false;
    }
    match pattern {
        SwaPattern::None => false,
        SwaPattern::Period(0) => true,
        SwaPattern::Period(p) => (il as u64 % p as u64) < p as u64 - 1,
        SwaPattern::Mask(m) => il < 256 && m[il / 64] & (1 << (il % 64)) != 0,
    }
}

/// The set of activation formats the model's matrices multiply with (a bit
/// per GGUF type id), so the memory plan can size the quantized-activation
/// scratch exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActFormats(pub u64);

impl ActFormats {
    /// Adds the format a matrix of type `weight` multiplies with.
    pub fn add_weight(&mut self, weight: GgmlType) {
        if let Some(a) = weight.vec_dot_type() {
            if (a as u32) < 64 {
                self.0 |= 1 << (a as u32);
            }
        }
    }

    /// The formats in the set.
    pub fn iter(self) -> impl Iterator<Item = GgmlType> {
        GgmlType::ALL.into_iter().filter(move |t| (*t as u32) < 64 && self.0 & (1 << (*t as u32)) != 0)
    }

    /// Bytes of one activation row of `cols` values in the widest format of the set.
    pub fn max_row_bytes(self, cols: usize) -> usize {
        self.iter().filter_map(|t| t.row_bytes(cols)).max().unwrap_or(cols * 4)
    }
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The architecture.
    pub arch: Arch,
    /// Vocabulary size (rows of `token_embd.weight`).
    pub n_vocab: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Number of decoder blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention when fewer than `n_head`).
    pub n_head_kv: usize,
    /// Values per query/key head (`attention.key_length`, default `n_embd / n_head`).
    pub head_dim_k: usize,
    /// Values per value head (`attention.value_length`, default `head_dim_k`).
    pub head_dim_v: usize,
    /// Hidden width of the FFN.
    pub n_ff: usize,
    /// Leading dimensions of each head that RoPE rotates (`rope.dimension_count`).
    pub n_rot: usize,
    /// Which pairs RoPE rotates.
    pub rope_style: RopeStyle,
    /// RoPE base of full-attention layers (`rope.freq_base`).
    pub rope_base: f32,
    /// RoPE base of sliding-window layers.
    pub rope_base_swa: f32,
    /// 1 / linear RoPE scaling factor (1 without scaling).
    pub rope_freq_scale: f32,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
    /// Context length the model was trained with.
    pub ctx_train: usize,
    /// q/k/v projections carry biases (`qwen2`).
    pub qkv_bias: bool,
    /// Per-head RMSNorm of q and k (`attn_q_norm`, `attn_k_norm`).
    pub qk_norm: bool,
    /// RMSNorm after attention and after the FFN (`post_attention_norm`, `post_ffw_norm`).
    pub post_norms: bool,
    /// FFN gate activation.
    pub activation: Activation,
    /// Factor applied to the token embedding (1, or `sqrt(n_embd)` for Gemma).
    pub embd_scale: f32,
    /// Scale applied to q before attention (Gemma), or `None`.
    pub q_scale: Option<f32>,
    /// Scale applied to each attention score q·k (`1/sqrt(head_dim_k)`, or 1
    /// when `q_scale` already did it).
    pub kq_scale: f32,
    /// Attention-score soft cap (0: none).
    pub attn_softcap: f32,
    /// Final-logit soft cap (0: none).
    pub logit_softcap: f32,
    /// Sliding-window size in positions (0: none).
    pub sliding_window: usize,
    /// Which layers slide.
    pub swa_pattern: SwaPattern,
    /// Activation formats the model's matrices need.
    pub act_formats: ActFormats,
}

/// `attention.sliding_window_pattern`: a per-layer bool array, a period, or
/// (absent) llama.cpp's default period of 6.
fn swa_pattern(m: &Meta<'_, '_>, n_layer: usize) -> Result<SwaPattern, Error> {
    let key = Key::new(m.arch, "attention.sliding_window_pattern");
    match m.file.get(key.as_str()) {
        None => Ok(SwaPattern::Period(6)),
        Some(Value::Array(a)) => {
            if a.len() < n_layer || n_layer > 256 {
                return Err(Meta::bad(&key, "must list every layer (at most 256)"));
            }
            let mut mask = [0u64; 4];
            for (il, v) in a.iter().take(n_layer).enumerate() {
                let on = v.as_bool().ok_or(Meta::bad(&key, "must be an array of bools"))?;
                if on {
                    mask[il / 64] |= 1 << (il % 64);
                }
            }
            Ok(SwaPattern::Mask(mask))
        }
        Some(v) => {
            let p = v.as_u64().and_then(|p| u32::try_from(p).ok()).ok_or(Meta::bad_number(
                &key,
                &v,
                "must be an integer",
            ))?;
            Ok(SwaPattern::Period(p))
        }
    }
}

/// A metadata value as a number, if it is one.
fn number(v: &Value<'_>) -> Option<Number> {
    match *v {
        Value::F32(x) => Some(Number::Float(x.into())),
        Value::F64(x) => Some(Number::Float(x)),
        Value::U64(x) => Some(Number::UInt(x)),
        _ => v.as_i64().map(Number::Int),
    }
}

/// A metadata key built on the stack: `{arch}.{suffix}`.
struct Key {
    buf: [u8; 96],
    len: usize,
}

impl Key {
    fn new(arch: &str, suffix: &str) -> Key {
        let mut k = Key { buf: [0; 96], len: 0 };
        let _ = write!(k, "{arch}.{suffix}");
        k
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for Key {
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

/// Reads `{arch}.*` keys with clear errors.
struct Meta<'f, 'a> {
    file: &'f File<'a>,
    arch: &'a str,
}

impl Meta<'_, '_> {
    /// `key` is wrong for `reason`; its value is not a number, or says nothing more.
    fn bad(key: &Key, reason: &'static str) -> Error {
        Error::BadHyperparameter { key: ShortStr::new(key.as_str()), value: None, reason }
    }

    /// `key`, whose metadata value is `v`, is wrong for `reason`: the value
    /// is named where it is a number.
    fn bad_number(key: &Key, v: &Value<'_>, reason: &'static str) -> Error {
        Error::BadHyperparameter { key: ShortStr::new(key.as_str()), value: number(v), reason }
    }

    /// `key`, whose value is `value`, is wrong for `reason`.
    fn bad_value(key: &Key, value: impl Into<Number>, reason: &'static str) -> Error {
        Error::BadHyperparameter { key: ShortStr::new(key.as_str()), value: Some(value.into()), reason }
    }

    /// An integer key, `None` if absent; an array (per-layer values) is an error.
    fn opt_usize(&self, suffix: &str) -> Result<Option<usize>, Error> {
        let key = Key::new(self.arch, suffix);
        match self.file.get(key.as_str()) {
            None => Ok(None),
            Some(Value::Array(_)) => Err(Self::bad(&key, "per-layer values are not supported")),
            Some(v) => v.as_u64().and_then(|n| usize::try_from(n).ok()).map(Some).ok_or(Meta::bad_number(
                &key,
                &v,
                "must be a non-negative integer",
            )),
        }
    }

    fn usize(&self, suffix: &str) -> Result<usize, Error> {
        self.opt_usize(suffix)?.ok_or(Error::MissingKey { key: ShortStr::new(Key::new(self.arch, suffix).as_str()) })
    }

    fn opt_f32(&self, suffix: &str) -> Result<Option<f32>, Error> {
        let key = Key::new(self.arch, suffix);
        match self.file.get(key.as_str()) {
            None => Ok(None),
            Some(v) => v.as_f32().filter(|x| x.is_finite()).map(Some).ok_or(Meta::bad_number(
                &key,
                &v,
                "must be a finite number",
            )),
        }
    }

    fn opt_str(&self, suffix: &str) -> Option<&str> {
        self.file.get_str(Key::new(self.arch, suffix).as_str())
    }

    fn positive(&self, suffix: &str, v: usize) -> Result<usize, Error> {
        if v == 0 {
            return Err(Self::bad_value(&Key::new(self.arch, suffix), v, "must be at least 1"));
        }
        Ok(v)
    }
}

/// Largest hyperparameter accepted (keeps every product of sizes far from overflow).
const MAX_DIM: usize = 1 << 24;

impl Config {
    /// Reads the config of the model in `file`: its architecture and
    /// hyperparameters from metadata, the vocabulary size from
    /// `token_embd.weight`, and the activation formats from the tensor types.
    pub fn from_gguf(file: &File<'_>) -> Result<Config, Error> {
        let arch_name = file
            .get_str("general.architecture")
            .ok_or(Error::MissingKey { key: ShortStr::new("general.architecture") })?;
        let arch = Arch::from_name(arch_name).ok_or(Error::UnknownArchitecture { name: ShortStr::new(arch_name) })?;
        let m = Meta { file, arch: arch_name };

        let n_embd = m.positive("embedding_length", m.usize("embedding_length")?)?;
        let n_layer = m.positive("block_count", m.usize("block_count")?)?;
        let n_ff = m.positive("feed_forward_length", m.usize("feed_forward_length")?)?;
        let n_head = m.positive("attention.head_count", m.usize("attention.head_count")?)?;
        let n_head_kv =
            m.positive("attention.head_count_kv", m.opt_usize("attention.head_count_kv")?.unwrap_or(n_head))?;
        let key_length = m.opt_usize("attention.key_length")?;
        if key_length.is_none() && n_head > n_embd {
            // The default head size, n_embd / n_head, would be 0 (and the error name an absent key).
            return Err(Meta::bad_value(
                &Key::new(arch_name, "attention.head_count"),
                n_head,
                "exceeds embedding_length, and there is no attention.key_length",
            ));
        }
        let head_dim_k = m.positive("attention.key_length", key_length.unwrap_or(n_embd / n_head))?;
        let head_dim_v =
            m.positive("attention.value_length", m.opt_usize("attention.value_length")?.unwrap_or(head_dim_k))?;
        let n_rot = m.opt_usize("rope.dimension_count")?.unwrap_or(head_dim_k);
        for (suffix, v) in [
            ("embedding_length", n_embd),
            ("block_count", n_layer),
            ("feed_forward_length", n_ff),
            ("attention.head_count", n_head),
            ("attention.key_length", head_dim_k),
            ("attention.value_length", head_dim_v),
        ] {
            if v > MAX_DIM {
                return Err(Meta::bad_value(&Key::new(arch_name, suffix), v, "is implausibly large"));
            }
        }
        if n_head % n_head_kv != 0 {
            return Err(Meta::bad_value(
                &Key::new(arch_name, "attention.head_count_kv"),
                n_head_kv,
                "must divide attention.head_count",
            ));
        }
        // Every architecture ember runs rotates whole heads; llama.cpp
        // refuses another value ("invalid n_rot") rather than rotate part of
        // each head, or none of it (0).
        if n_rot != head_dim_k {
            return Err(Meta::bad_value(
                &Key::new(arch_name, "rope.dimension_count"),
                n_rot,
                "must equal the head size (these architectures rotate whole heads)",
            ));
        }
        if n_rot % 2 != 0 {
            // RoPE turns pairs of values: an odd head size has no rotation.
            return Err(Meta::bad_value(&Key::new(arch_name, "rope.dimension_count"), n_rot, "must be even"));
        }
        let norm_eps = m.opt_f32("attention.layer_norm_rms_epsilon")?.ok_or(Error::MissingKey {
            key: ShortStr::new(Key::new(arch_name, "attention.layer_norm_rms_epsilon").as_str()),
        })?;
        if norm_eps < 0.0 {
            return Err(Meta::bad_value(
                &Key::new(arch_name, "attention.layer_norm_rms_epsilon"),
                norm_eps,
                "must not be negative",
            ));
        }
        // A base of 0 or below gives infinite or NaN rotation angles.
        let rope_base = m.opt_f32("rope.freq_base")?.unwrap_or(10000.0);
        if rope_base <= 0.0 {
            return Err(Meta::bad_value(&Key::new(arch_name, "rope.freq_base"), rope_base, "must be positive"));
        }
        let ctx_train = m.opt_usize("context_length")?.unwrap_or(2048);

        let mut rope_freq_scale = 1.0f32;
        match m.opt_str("rope.scaling.type") {
            None | Some("none") => {}
            Some("linear") => {
                let factor = m.opt_f32("rope.scaling.factor")?.unwrap_or(1.0);
                if factor <= 0.0 {
                    return Err(Meta::bad_value(
                        &Key::new(arch_name, "rope.scaling.factor"),
                        factor,
                        "must be positive",
                    ));
                }
                rope_freq_scale = 1.0 / factor;
            }
            Some(_) => {
                return Err(Meta::bad(
                    &Key::new(arch_name, "rope.scaling.type"),
                    "only `none` and `linear` RoPE scaling are supported",
                ))
            }
        }
        if let Some(f) = m.opt_f32("rope.scale_linear")? {
            if f > 0.0 {
                rope_freq_scale = 1.0 / f;
            }
        }

        let embd = file
            .tensor("token_embd.weight")
            .ok_or(Error::MissingTensor { name: ShortStr::new("token_embd.weight") })?;
        let n_vocab =
            usize::try_from(embd.dims[1]).ok().filter(|&v| v > 0 && v <= 1 << 26).ok_or(Error::BadTensor {
                name: ShortStr::new("token_embd.weight"),
                reason: "has an implausible vocabulary size",
            })?;
        let mut act_formats = ActFormats::default();
        for t in file.tensors() {
            if t.n_dims >= 2 && t.name != "token_embd.weight" {
                act_formats.add_weight(t.ty);
            }
        }
        if file.tensor("output.weight").is_none() {
            act_formats.add_weight(embd.ty);
        }

        let mut c = Config {
            arch,
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim_k,
            head_dim_v,
            n_ff,
            n_rot,
            rope_style: RopeStyle::Normal,
            rope_base,
            rope_base_swa: rope_base,
            rope_freq_scale,
            norm_eps,
            ctx_train,
            qkv_bias: false,
            qk_norm: false,
            post_norms: false,
            activation: Activation::Silu,
            embd_scale: 1.0,
            q_scale: None,
            kq_scale: m
                .opt_f32("attention.scale")?
                .filter(|s| *s != 0.0)
                .unwrap_or(1.0 / crate::ops::math::sqrtf(head_dim_k as f32)),
            attn_softcap: m.opt_f32("attn_logit_softcapping")?.unwrap_or(0.0),
            logit_softcap: m.opt_f32("final_logit_softcapping")?.unwrap_or(0.0),
            sliding_window: 0,
            swa_pattern: SwaPattern::None,
            act_formats,
        };
        match arch {
            Arch::Llama | Arch::Mistral => {}
            Arch::Qwen2 => {
                c.rope_style = RopeStyle::Neox;
                c.qkv_bias = true;
            }
            Arch::Gemma3 => {
                c.rope_style = RopeStyle::Neox;
                c.qk_norm = true;
                c.post_norms = true;
                c.activation = Activation::GeluTanh;
                c.embd_scale = crate::ops::math::sqrtf(n_embd as f32);
                // gemma_pytorch's query_pre_attn_scalar; the 27B model uses n_embd / n_head.
                let scale_dim = if n_layer == 62 { n_embd / n_head } else { head_dim_k };
                c.q_scale = Some(1.0 / crate::ops::math::sqrtf(scale_dim as f32));
                c.kq_scale = 1.0;
                c.attn_softcap = 0.0;
                let window = m.opt_usize("attention.sliding_window")?.unwrap_or(0);
                // Attention adds the window to positions (a window near
                // usize::MAX overflowed there).
                if window > MAX_DIM {
                    return Err(Meta::bad_value(
                        &Key::new(arch_name, "attention.sliding_window"),
                        window,
                        "is implausibly large",
                    ));
                }
                if window > 0 {
                    c.sliding_window = window;
                    c.swa_pattern = swa_pattern(&m, n_layer)?;
                    c.rope_base_swa = m.opt_f32("rope.freq_base_swa")?.unwrap_or(10000.0);
                    if c.rope_base_swa <= 0.0 {
                        return Err(Meta::bad_value(
                            &Key::new(arch_name, "rope.freq_base_swa"),
                            c.rope_base_swa,
                            "must be positive",
                        ));
                    }
                }
            }
        }
        Ok(c)
    }

    /// Whether layer `il` uses sliding-window attention.
    pub fn is_swa(&self, il: usize) -> bool {
        is_swa_layer(self.sliding_window, self.swa_pattern, il)
    }

    /// RoPE base of layer `il`.
    pub fn rope_base_for(&self, il: usize) -> f32 {
        if self.is_swa(il) {
            self.rope_base_swa
        } else {
            self.rope_base
        }
    }

    /// Width of all query heads together.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim_k
    }

    /// Width of all key heads together (one cached K row).
    pub fn k_dim(&self) -> usize {
        self.n_head_kv * self.head_dim_k
    }

    /// Width of all value heads together (one cached V row).
    pub fn v_dim(&self) -> usize {
        self.n_head_kv * self.head_dim_v
    }

    /// Width of the attention output (input of `attn_output`).
    pub fn attn_out_dim(&self) -> usize {
        self.n_head * self.head_dim_v
    }

    /// Number of sliding-window layers.
    pub fn n_swa_layers(&self) -> usize {
        (0..self.n_layer).filter(|&il| self.is_swa(il)).count()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// SmolLM2-135M's shape (values from its GGUF), Q4_1 weights + Q8_0 head.
    pub(crate) fn smollm2_like() -> Config {
        let mut act = ActFormats::default();
        act.add_weight(GgmlType::Q4_1);
        act.add_weight(GgmlType::Q8_0);
        Config {
            arch: Arch::Llama,
            n_vocab: 49152,
            n_embd: 576,
            n_layer: 30,
            n_head: 9,
            n_head_kv: 3,
            head_dim_k: 64,
            head_dim_v: 64,
            n_ff: 1536,
            n_rot: 64,
            rope_style: RopeStyle::Normal,
            rope_base: 100000.0,
            rope_base_swa: 100000.0,
            rope_freq_scale: 1.0,
            norm_eps: 1e-5,
            ctx_train: 8192,
            qkv_bias: false,
            qk_norm: false,
            post_norms: false,
            activation: Activation::Silu,
            embd_scale: 1.0,
            q_scale: None,
            kq_scale: 0.125,
            attn_softcap: 0.0,
            logit_softcap: 0.0,
            sliding_window: 0,
            swa_pattern: SwaPattern::None,
            act_formats: act,
        }
    }

    /// Gemma 3 270M's shape (values from its GGUF).
    pub(crate) fn gemma3_like() -> Config {
        let mut act = ActFormats::default();
        for t in [GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K] {
            act.add_weight(t);
        }
        Config {
            arch: Arch::Gemma3,
            n_vocab: 262144,
            n_embd: 640,
            n_layer: 18,
            n_head: 4,
            n_head_kv: 1,
            head_dim_k: 256,
            head_dim_v: 256,
            n_ff: 2048,
            n_rot: 256,
            rope_style: RopeStyle::Neox,
            rope_base: 1e6,
            rope_base_swa: 10000.0,
            rope_freq_scale: 1.0,
            norm_eps: 1e-6,
            ctx_train: 32768,
            qkv_bias: false,
            qk_norm: true,
            post_norms: true,
            activation: Activation::GeluTanh,
            embd_scale: 640f32.sqrt(),
            q_scale: Some(1.0 / 16.0),
            kq_scale: 1.0,
            attn_softcap: 0.0,
            logit_softcap: 0.0,
            sliding_window: 512,
            swa_pattern: SwaPattern::Period(6),
            act_formats: act,
        }
    }

    #[test]
    fn gemma3_pattern_is_five_local_one_global() {
        let g = gemma3_like();
        let global: std::vec::Vec<usize> = (0..18).filter(|&il| !g.is_swa(il)).collect();
        assert_eq!(global, [5, 11, 17]);
        assert_eq!(g.rope_base_for(0), 10000.0);
        assert_eq!(g.rope_base_for(5), 1e6);
        let s = smollm2_like();
        assert!((0..30).all(|il| !s.is_swa(il)));
        let mut m = g.clone();
        m.swa_pattern = SwaPattern::Mask([0b101, 0, 0, 0]);
        assert!(m.is_swa(0) && !m.is_swa(1) && m.is_swa(2) && !m.is_swa(3));
    }

    #[test]
    fn act_formats_size_the_widest_row() {
        let s = smollm2_like();
        assert_eq!(s.act_formats.iter().collect::<std::vec::Vec<_>>(), [GgmlType::Q8_0, GgmlType::Q8_1]);
        assert_eq!(s.act_formats.max_row_bytes(576), 18 * 36);
        let g = gemma3_like();
        assert_eq!(g.act_formats.max_row_bytes(2048), 8 * 292);
    }
}
