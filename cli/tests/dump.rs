//! `ember dump` compared bit for bit with the `gguf` Python package's
//! numpy dequantization (`gguf.quants.dequantize`), on every tensor type of
//! the two real models and on a small GGUF with F16/BF16/Q8_0/F32 tensors
//! written by the Python package's `GGUFWriter`.

mod common;

use common::*;
use std::path::Path;

/// For each `NAME:A:B` argument, writes rows A..B of tensor NAME,
/// dequantized by the `gguf` package, as little-endian f32 in hex on one
/// line. One process per file: the package's reader takes seconds to open a
/// file with a large vocabulary (Gemma 3 has 262144 tokens).
const PY_DEQUANTIZE: &str = r#"
import sys, numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
tensors = {t.name: t for t in GGUFReader(sys.argv[1]).tensors}
for spec in sys.argv[2:]:
    name, a, b = spec.rsplit(":", 2)
    a, b = int(a), int(b)
    t = tensors[name]
    # The reader's data has one (raw or typed) row per last axis: slice rows first.
    raw = t.data.reshape(-1, t.data.shape[-1])[a:b]
    d = np.asarray(dequantize(raw, t.tensor_type), dtype=np.float32).reshape(b - a, int(t.shape[0]))
    print(d.astype("<f4").tobytes().hex())
"#;

/// A tensor, a row range and its row length.
type Spec<'a> = (&'a str, (u64, u64), usize);

fn python_rows(path: &Path, specs: &[Spec<'_>]) -> Vec<Vec<u8>> {
    let args: Vec<String> = specs.iter().map(|(t, (a, b), _)| format!("{t}:{a}:{b}")).collect();
    let mut argv = vec![path.to_str().unwrap()];
    argv.extend(args.iter().map(String::as_str));
    let out = python(PY_DEQUANTIZE, &argv);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), specs.len());
    lines
        .iter()
        .map(|hex| (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect())
        .collect()
}

fn ember_rows(path: &Path, tensor: &str, rows: Option<(u64, u64)>, format: &str) -> Vec<u8> {
    let range = rows.map(|(a, b)| format!("{a}..{b}"));
    let mut args = vec!["dump", path.to_str().unwrap(), "--tensor", tensor, "--format", format];
    if let Some(r) = &range {
        args.extend(["--rows", r.as_str()]);
    }
    let out = ember(&args);
    assert!(out.status.success(), "ember dump failed: {}", stderr(&out));
    out.stdout
}

fn as_bits(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Dumps rows of tensors with ember and with Python and requires identical bits.
fn same_bits(path: &Path, specs: &[Spec<'_>]) {
    let theirs = python_rows(path, specs);
    for ((tensor, rows, row_len), theirs) in specs.iter().zip(theirs) {
        let ours = ember_rows(path, tensor, Some(*rows), "f32");
        assert_eq!(ours.len(), (rows.1 - rows.0) as usize * row_len * 4, "{tensor} {rows:?}: byte count");
        assert_eq!(ours.len(), theirs.len(), "{tensor} {rows:?}");
        let (a, b) = (as_bits(&ours), as_bits(&theirs));
        if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
            panic!(
                "{tensor} rows {rows:?}: value {i} differs: ember {} ({:#010x}), gguf {} ({:#010x})",
                f32::from_bits(a[i]),
                a[i],
                f32::from_bits(b[i]),
                b[i]
            );
        }
        println!("{tensor} rows {}..{}: {} values identical", rows.0, rows.1, a.len());
    }
}

#[test]
fn smollm2_q8_0_f32_q4_1_match_gguf_py() {
    same_bits(
        &smollm2(),
        &[
            // token_embd.weight is SmolLM2's one Q8_0 tensor: [576, 49152].
            ("token_embd.weight", (0, 4), 576),
            ("token_embd.weight", (1000, 1003), 576),
            ("token_embd.weight", (49150, 49152), 576),
            ("blk.0.attn_norm.weight", (0, 1), 576),   // F32
            ("output_norm.weight", (0, 1), 576),       // F32
            ("blk.0.ffn_down.weight", (0, 576), 1536), // Q4_1, whole tensor
        ],
    );
}

#[test]
fn gemma3_every_type_matches_gguf_py() {
    same_bits(
        &gemma3(),
        &[
            ("token_embd.weight", (262140, 262144), 640), // Q8_0
            ("blk.0.attn_norm.weight", (0, 1), 640),      // F32
            ("blk.0.attn_q.weight", (0, 16), 640),        // Q5_0
            ("blk.0.attn_output.weight", (0, 640), 1024), // Q4_K, whole tensor
            ("blk.0.ffn_down.weight", (600, 640), 2048),  // Q6_K
        ],
    );
}

#[test]
fn whole_tensor_by_default_and_text_format_round_trips() {
    let p = smollm2();
    let all = ember_rows(&p, "blk.3.attn_k.weight", None, "f32"); // Q4_1 [576, 192]
    assert_eq!(all.len(), 576 * 192 * 4);
    assert_eq!(all, python_rows(&p, &[("blk.3.attn_k.weight", (0, 192), 576)])[0]);
    // Text: one value per line, each reading back to the same f32 bits.
    let text = ember_rows(&p, "token_embd.weight", Some((7, 9)), "text");
    let text = String::from_utf8(text).unwrap();
    let parsed: Vec<u32> = text.lines().map(|l| l.parse::<f32>().unwrap().to_bits()).collect();
    assert_eq!(parsed.len(), 2 * 576);
    assert_eq!(parsed, as_bits(&ember_rows(&p, "token_embd.weight", Some((7, 9)), "f32")));
}

/// A GGUF with the float types the real models lack, written by the Python
/// package (which is also the oracle): F16 with infinities, subnormals and
/// signed zeros; BF16; Q8_0; and an F32 tensor with an odd row length.
const PY_WRITE_SMALL_GGUF: &str = r#"
import sys, numpy as np
from gguf import GGUFWriter, GGMLQuantizationType as T
from gguf.quants import quantize
rng = np.random.default_rng(7)
w = GGUFWriter(sys.argv[1], "llama")
f16 = rng.standard_normal((3, 64)).astype(np.float16)
f16[0, :6] = [np.inf, -np.inf, 0.0, -0.0, 6e-8, -65504.0]
w.add_tensor("f16", f16)
bf = rng.standard_normal((2, 32)).astype(np.float32) * 1e3
w.add_tensor("bf16", quantize(bf, T.BF16), raw_dtype=T.BF16)
q = rng.standard_normal((5, 96)).astype(np.float32)
w.add_tensor("q8_0", quantize(q, T.Q8_0), raw_dtype=T.Q8_0)
w.add_tensor("f32", rng.standard_normal((3, 7)).astype(np.float32))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
"#;

#[test]
fn f16_bf16_q8_0_f32_from_a_python_written_gguf_match() {
    let s = Scratch::new("dump-small");
    let path = s.path("small.gguf");
    python(PY_WRITE_SMALL_GGUF, &[path.to_str().unwrap()]);
    let info: serde_json::Value =
        serde_json::from_str(&ok_stdout(&ember(&["info", path.to_str().unwrap(), "--json"]))).unwrap();
    let types: Vec<&str> = info["tensors"].as_array().unwrap().iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["F16", "BF16", "Q8_0", "F32"]);
    same_bits(&path, &[("f16", (0, 3), 64), ("bf16", (0, 2), 32), ("q8_0", (0, 5), 96), ("f32", (0, 3), 7)]);
    let first = as_bits(&ember_rows(&path, "f16", Some((0, 1)), "f32"));
    assert_eq!(&first[..4], &[f32::INFINITY.to_bits(), f32::NEG_INFINITY.to_bits(), 0, 0x8000_0000]);
}

#[test]
fn bad_names_and_ranges_are_clear_errors() {
    let p = smollm2();
    let ps = p.to_str().unwrap();
    let fail = |args: &[&str]| {
        let out = ember(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        stderr(&out)
    };
    let e = fail(&["dump", ps, "--tensor", "token_embd"]);
    assert!(e.contains("no tensor named `token_embd`") && e.contains("272 tensors"), "{e}");
    let e = fail(&["dump", ps, "--tensor", "token_embd.weight", "--rows", "49150..49153"]);
    assert!(e.contains("out of range, the tensor has 49152 rows"), "{e}");
    let e = fail(&["dump", ps, "--tensor", "token_embd.weight", "--rows", "3..1"]);
    assert!(e.contains("the range is empty"), "{e}");
    let e = fail(&["dump", ps, "--tensor", "token_embd.weight", "--rows", "x"]);
    assert!(e.contains("`x` is not a row number"), "{e}");
    let out = ember(&["dump", ps, "--tensor", "token_embd.weight", "--format", "f64"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects unknown formats");
}

/// `ember dump ... | head -1`: the reader leaves after one line of a 28
/// million line dump, and dump ends quietly with exit 0 (the write error
/// goes through the same classifier as run's and tokenize's).
#[test]
fn dump_into_a_closed_pipe_is_not_an_error() {
    let (first, out) =
        ember_first_line(&["dump", smollm2().to_str().unwrap(), "-t", "token_embd.weight", "--format", "text"]);
    assert!(first.trim().parse::<f32>().is_ok(), "{first}");
    let err = stderr(&out);
    assert!(out.status.success(), "exit status {}; stderr:\n{err}", out.status);
    assert!(err.is_empty(), "{err}");
}
