//! `ember info [MODEL] [--json]`: what is in a GGUF file and how this
//! machine will run it.

use crate::model_arg::ModelArg;
use anyhow::{bail, Context};
use ember::gguf::{Array, File, Value, ValueType};
use ember_quant::{GgmlType, Kernels};
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Arguments of `ember info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also print the memory plan of a session (sized by -c, -b, -t, --kv-type).
    #[arg(long)]
    plan: bool,
    #[command(flatten)]
    session: super::run::SessionArgs,
}

/// Runs `ember info`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.model.resolve()?;
    if path.is_dir() {
        bail!("{} is a folder, not a GGUF file: `ember info` describes GGUF models", path.display());
    }
    let model = ember::Model::open(&path).with_context(|| format!("{}", path.display()))?;
    let kernels = Kernels::detect().context("choosing kernels (EMBER_KERNELS)")?;
    let info = Info::collect(&path, model.file_size(), model.gguf(), &kernels);
    let plan = if args.plan {
        Some(ember::session::plan_for(&model.gguf(), &args.session.options()?).context("memory plan")?)
    } else {
        None
    };
    if args.json {
        let mut j = info.to_json();
        if let Some(p) = &plan {
            j["plan"] = json!({
                "ctx_len": p.opts.ctx_len, "batch": p.opts.batch, "kv_type": p.opts.kv_type.to_string(),
                "threads": p.opts.threads, "kv_cache_bytes": p.kv.bytes, "total_bytes": p.total,
                "table": p.to_string(),
            });
        }
        super::print_stdout(&format!("{}\n", serde_json::to_string_pretty(&j)?))?;
    } else {
        super::print_stdout(&info.to_text())?;
        if let Some(p) = &plan {
            super::print_stdout(&format!("\n{p}"))?;
        }
    }
    Ok(())
}

/// One tensor's row in the table.
struct Tensor {
    name: String,
    ty: GgmlType,
    shape: Vec<u64>,
    bytes: u64,
    offset: u64,
}

/// Everything `ember info` reports, gathered once and rendered as text or JSON.
struct Info {
    path: String,
    file_size: u64,
    version: u32,
    alignment: usize,
    data_offset: usize,
    architecture: Option<String>,
    name: Option<String>,
    /// `<arch>.*` keys, in file order.
    hparams: Vec<(String, Json, String)>,
    tokenizer_model: Option<String>,
    tokenizer_pre: Option<String>,
    vocab_size: Option<usize>,
    chat_template_len: Option<usize>,
    tensors: Vec<Tensor>,
    /// Per type: (count, bytes).
    types: BTreeMap<GgmlType, (u64, u64)>,
    kernel_tier: String,
    kernels: String,
    board: Option<(String, String)>,
    /// Why ember cannot run the model, if it cannot: its config, weights
    /// or tokenizer refused (what `ember run` would say).
    unrunnable: Option<String>,
}

/// What stops ember from running the model in `f`, if anything: the checks
/// a session makes before it sizes any memory.
pub(crate) fn unrunnable(f: &File<'_>) -> Option<String> {
    let cfg = match ember::model::Config::from_gguf(f) {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let checks = ember::model::Weights::from_gguf(f, &cfg)
        .map(drop)
        .and_then(|()| ember::tokenizer::Tokenizer::from_gguf(f).map(drop));
    checks.err().map(|e| e.to_string())
}

impl Info {
    fn collect(path: &Path, file_size: u64, f: File<'_>, kernels: &Kernels) -> Info {
        let architecture = f.get_str("general.architecture").map(String::from);
        let prefix = architecture.as_ref().map(|a| format!("{a}."));
        let hparams = f
            .metadata()
            .filter(|(k, _)| prefix.as_ref().is_some_and(|p| k.starts_with(p.as_str())))
            .map(|(k, v)| (k.to_string(), value_json(&v), value_text(&v)))
            .collect();
        let tensors: Vec<Tensor> = f
            .tensors()
            .map(|t| Tensor {
                name: t.name.to_string(),
                ty: t.ty,
                shape: t.shape().to_vec(),
                bytes: t.data.len() as u64,
                offset: t.offset,
            })
            .collect();
        let mut types = BTreeMap::new();
        for t in &tensors {
            let e = types.entry(t.ty).or_insert((0, 0));
            e.0 += 1;
            e.1 += t.bytes;
        }
        Info {
            path: path.display().to_string(),
            file_size,
            version: f.version(),
            alignment: f.alignment(),
            data_offset: f.data_offset(),
            architecture,
            name: f.get_str("general.name").map(String::from),
            hparams,
            tokenizer_model: f.get_str("tokenizer.ggml.model").map(String::from),
            tokenizer_pre: f.get_str("tokenizer.ggml.pre").map(String::from),
            vocab_size: f.get_array("tokenizer.ggml.tokens").map(|a| a.len()),
            chat_template_len: f.get_str("tokenizer.chat_template").map(str::len),
            tensors,
            types,
            kernel_tier: kernels.tier().name().to_string(),
            kernels: kernels.describe().to_string(),
            board: ember_targets::detect_host().map(|d| (d.profile.name.to_string(), d.reason)),
            unrunnable: unrunnable(&f),
        }
    }

    /// Types by count (then name), as printed.
    fn types_by_count(&self) -> Vec<(GgmlType, u64, u64)> {
        let mut v: Vec<_> = self.types.iter().map(|(t, (n, b))| (*t, *n, *b)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.name().cmp(b.0.name())));
        v
    }

    fn tensor_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    fn to_text(&self) -> String {
        let mut s = String::new();
        let none = "(none)";
        let _ = writeln!(s, "file:          {}", self.path);
        let _ = writeln!(s, "file size:     {} bytes ({})", self.file_size, human(self.file_size));
        let _ = writeln!(
            s,
            "gguf:          version {}, alignment {}, data at {}",
            self.version, self.alignment, self.data_offset
        );
        let _ = writeln!(s, "architecture:  {}", self.architecture.as_deref().unwrap_or(none));
        let runs = self.unrunnable.as_ref().map_or("yes".to_string(), |why| format!("no: {why}"));
        let _ = writeln!(s, "ember runs it: {runs}");
        if let Some(n) = &self.name {
            let _ = writeln!(s, "name:          {n}");
        }
        let _ = writeln!(s, "hyperparameters:");
        if self.hparams.is_empty() {
            let _ = writeln!(s, "  {none}");
        }
        let w = self.hparams.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
        for (k, _, text) in &self.hparams {
            let _ = writeln!(s, "  {k:<w$} = {text}");
        }
        let tok = match (&self.tokenizer_model, &self.tokenizer_pre) {
            (Some(m), Some(p)) => format!("{m} (pre: {p})"),
            (Some(m), None) => m.clone(),
            (None, _) => none.to_string(),
        };
        let vocab = self.vocab_size.map_or(String::new(), |n| format!(", {n} tokens"));
        let _ = writeln!(s, "tokenizer:     {tok}{vocab}");
        let chat = self.chat_template_len.map_or("absent".to_string(), |n| format!("present ({n} bytes)"));
        let _ = writeln!(s, "chat template: {chat}");
        let _ = writeln!(s, "kernels:       {}", self.kernels);
        let board = self.board.as_ref().map_or("no matching profile".to_string(), |(p, why)| format!("{p} ({why})"));
        let _ = writeln!(s, "board:         {board}");
        let _ = writeln!(s, "tensors:       {}", self.tensors.len());
        let nw = self.tensors.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
        let shapes: Vec<String> = self.tensors.iter().map(|t| shape_text(&t.shape)).collect();
        let sw = shapes.iter().map(String::len).max().unwrap_or(5).max(5);
        let _ = writeln!(s, "  {:<nw$}  {:<7} {:<sw$}  {:>12}", "name", "type", "shape", "bytes");
        for (t, shape) in self.tensors.iter().zip(&shapes) {
            let _ = writeln!(s, "  {:<nw$}  {:<7} {:<sw$}  {:>12}", t.name, t.ty.name(), shape, t.bytes);
        }
        let _ = writeln!(s, "totals by type:");
        for (ty, n, b) in self.types_by_count() {
            let _ = writeln!(s, "  {:<7} {:>5} tensors  {:>12} bytes  ({})", ty.name(), n, b, human(b));
        }
        let total = self.tensor_bytes();
        let _ =
            writeln!(s, "  {:<7} {:>5} tensors  {:>12} bytes  ({})", "all", self.tensors.len(), total, human(total));
        s
    }

    fn to_json(&self) -> Json {
        let hparams: Map<String, Json> = self.hparams.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
        let tensors: Vec<Json> = self
            .tensors
            .iter()
            .map(|t| json!({"name": t.name, "type": t.ty.name(), "shape": t.shape, "bytes": t.bytes, "offset": t.offset}))
            .collect();
        let types: Map<String, Json> = self
            .types_by_count()
            .into_iter()
            .map(|(ty, n, b)| (ty.name().to_string(), json!({"count": n, "bytes": b})))
            .collect();
        json!({
            "path": self.path,
            "file_size": self.file_size,
            "gguf_version": self.version,
            "alignment": self.alignment,
            "data_offset": self.data_offset,
            "architecture": self.architecture,
            "name": self.name,
            "hyperparameters": hparams,
            "tokenizer": {
                "model": self.tokenizer_model,
                "pre": self.tokenizer_pre,
                "vocab_size": self.vocab_size,
            },
            "chat_template": self.chat_template_len.is_some(),
            "chat_template_bytes": self.chat_template_len,
            "tensor_count": self.tensors.len(),
            "tensor_bytes": self.tensor_bytes(),
            "tensors": tensors,
            "types": types,
            "kernels": {"tier": self.kernel_tier, "describe": self.kernels},
            "board": self.board.as_ref().map(|(p, why)| json!({"profile": p, "reason": why})),
            "runnable": self.unrunnable.is_none(),
            "unrunnable_because": self.unrunnable,
        })
    }
}

/// `[576, 49152]`, ggml order (row length first).
fn shape_text(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// Arrays longer than this are summarised as `[type; len]`.
const MAX_ARRAY_SHOWN: usize = 64;

/// An f32 as JSON, through its shortest decimal form (1e-5, not 9.99e-6).
fn f32_json(v: f32) -> Json {
    v.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Json::Null, Json::Number)
}

fn value_json(v: &Value<'_>) -> Json {
    match *v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F32(x) => f32_json(x),
        Value::F64(x) => serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
        Value::Bool(x) => json!(x),
        Value::Str(x) => json!(x),
        Value::Array(a) if a.len() <= MAX_ARRAY_SHOWN && a.elem_type() != ValueType::Array => {
            Json::Array(a.iter().map(|e| value_json(&e)).collect())
        }
        Value::Array(a) => json!({"type": a.elem_type().name(), "len": a.len()}),
    }
}

fn value_text(v: &Value<'_>) -> String {
    match v {
        Value::Array(a) => array_text(a),
        other => other.to_string(),
    }
}

fn array_text(a: &Array<'_>) -> String {
    if a.len() <= 16 && a.elem_type() != ValueType::Array {
        let items: Vec<String> = a.iter().map(|e| e.to_string()).collect();
        format!("[{}]", items.join(", "))
    } else {
        format!("[{}; {}]", a.elem_type(), a.len())
    }
}
