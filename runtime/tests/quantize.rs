//! `ember::quantize` on small GGUF files built with the writer: metadata kept
//! (with `general.quantization_version` and `general.file_type` moved to the
//! end, split keys dropped), llama.cpp's tensor order, which tensors keep
//! their type (1-D, norms), the output/embedding and K-mix rules, fallbacks,
//! requantization refused without the flag, bad data refused, the file layout.
//! The byte-identity with llama.cpp on a real model is in `quantize_reference.rs`.

use ember::gguf::{File, MetaValue, Value, ValueType, Writer};
use ember::quant::{matmul, GgmlType};
use ember::quantize::{quantize_file, FileType, Options, Plan};

/// Deterministic values in about [-1, 1] (an LCG), different per `seed`.
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// `n` values encoded as `ty` (through ember-quant's reference quantizer).
fn encoded(ty: GgmlType, n: usize, seed: u32) -> Vec<u8> {
    let mut out = vec![0u8; ty.row_bytes(n).unwrap()];
    matmul::quantize(ty, &values(n, seed), &mut out).unwrap();
    out
}

struct T {
    name: String,
    ty: GgmlType,
    dims: Vec<u64>,
}

fn t(name: &str, ty: GgmlType, dims: &[u64]) -> T {
    T { name: name.to_string(), ty, dims: dims.to_vec() }
}

/// A small llama-like file: metadata of several types (a split key and an
/// old `general.file_type` included) and the given tensors, in that order.
fn model(tensors: &[T], block_count: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.add_str("general.architecture", "llama").unwrap();
    w.add_u32("general.file_type", 0).unwrap();
    w.add_u32("general.quantization_version", 1).unwrap();
    w.add_u32("llama.block_count", block_count).unwrap();
    w.add_u32("llama.attention.head_count", 4).unwrap();
    w.add_u32("llama.attention.head_count_kv", 2).unwrap();
    w.add_f32("llama.rope.freq_base", 10000.0).unwrap();
    w.add_value("split.count", Value::U16(1)).unwrap();
    w.add_str_array("tokenizer.ggml.tokens", ["<s>", "a", "b"]).unwrap();
    w.add_f32_array("tokenizer.ggml.scores", &[0.0, -1.0, -2.5]).unwrap();
    w.add_bool("tokenizer.ggml.add_bos_token", true).unwrap();
    w.add_meta(
        "t.nested",
        &MetaValue::Array(ValueType::Array, vec![MetaValue::Array(ValueType::I8, vec![MetaValue::I8(-3)])]),
    )
    .unwrap();
    w.add_value("t.i64", Value::I64(-7)).unwrap();
    for (i, x) in tensors.iter().enumerate() {
        let n: u64 = x.dims.iter().product();
        w.add_tensor(&x.name, x.ty, &x.dims, encoded(x.ty, n as usize, i as u32)).unwrap();
    }
    w.to_bytes()
}

fn run(bytes: &[u8], opts: Options) -> Result<Vec<u8>, ember::Error> {
    let file = File::parse(bytes)?;
    let plan = Plan::new(&file, opts)?;
    let mut out = Vec::new();
    let mut seen = 0;
    let sum = plan.write(&mut out, |p| {
        assert_eq!(p.index, seen, "progress in order");
        assert_eq!(p.count, file.tensor_count());
        seen += 1;
    })?;
    assert_eq!(seen, file.tensor_count(), "one progress report per tensor");
    assert_eq!(sum.file_size, out.len() as u64);
    Ok(out)
}

fn types(bytes: &[u8]) -> Vec<(String, GgmlType)> {
    File::parse(bytes).unwrap().tensors().map(|t| (t.name.to_string(), t.ty)).collect()
}

fn small_llama() -> Vec<T> {
    use GgmlType::*;
    vec![
        t("token_embd.weight", F32, &[256, 4]),
        t("blk.10.attn_q.weight", F32, &[64, 3]),
        t("blk.0.attn_norm.weight", F32, &[64]),
        t("blk.2.attn_k.weight", F16, &[64, 2]),
        t("blk.0.ffn_down.weight", F32, &[64, 2]),
        t("blk.0.attn_q.bias", F32, &[64, 2]),
        t("blk.0.attn_v.weight", F32, &[40, 2]),
        t("blk.0.ffn_norm.weight", F32, &[64, 2]),
        t("output_norm.weight", F32, &[64]),
        t("blk.1.attn_output.weight", F32, &[64, 2, 1]),
    ]
}

#[test]
fn metadata_is_kept_in_order_with_file_type_and_version_last() {
    let input = model(&small_llama(), 11);
    let out = run(&input, Options::new(FileType::Q4_0)).unwrap();
    let (fi, fo) = (File::parse(&input).unwrap(), File::parse(&out).unwrap());
    let mut expected: Vec<(&str, Value<'_>)> = fi
        .metadata()
        .filter(|(k, _)| !matches!(*k, "general.file_type" | "general.quantization_version" | "split.count"))
        .collect();
    expected.push(("general.quantization_version", Value::U32(2)));
    expected.push(("general.file_type", Value::U32(2)));
    let got: Vec<(&str, Value<'_>)> = fo.metadata().collect();
    assert_eq!(got, expected);
    assert_eq!(fo.version(), 3);
    assert_eq!(fo.get_array("t.nested").unwrap().raw_bytes(), fi.get_array("t.nested").unwrap().raw_bytes());

    let q8 = run(&input, Options::new(FileType::Q8_0)).unwrap();
    assert_eq!(File::parse(&q8).unwrap().get_u64("general.file_type"), Some(7));
    let k = run(&input, Options::new(FileType::Q4_K_M)).unwrap();
    assert_eq!(File::parse(&k).unwrap().get_u64("general.file_type"), Some(15));
}

#[test]
fn tensor_order_types_and_kept_tensors_follow_llama_cpp() {
    use GgmlType::*;
    let input = model(&small_llama(), 11);
    let out = run(&input, Options::new(FileType::Q4_0)).unwrap();
    let got = types(&out);
    let expected: Vec<(String, GgmlType)> = [
        // outside layers first, by name; then by layer number (2 before 10), then by name
        ("output_norm.weight", F32), // 1-D: kept
        ("token_embd.weight", Q6_K), // tied embedding (no output.weight): Q6_K
        ("blk.0.attn_norm.weight", F32),
        ("blk.0.attn_q.bias", F32),         // not a weight
        ("blk.0.attn_v.weight", F16),       // 40 values a row: no 32-block type fits
        ("blk.0.ffn_down.weight", Q4_0),    //
        ("blk.0.ffn_norm.weight", F32),     // a norm, even 2-D
        ("blk.1.attn_output.weight", Q4_0), // [64, 2, 1] is 2-D for ggml
        ("blk.2.attn_k.weight", Q4_0),      // from F16
        ("blk.10.attn_q.weight", Q4_0),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    assert_eq!(got, expected);
    let fo = File::parse(&out).unwrap();
    assert_eq!(
        fo.tensor("blk.1.attn_output.weight").unwrap().shape(),
        &[64, 2],
        "trailing 1 dropped as ggml_n_dims does"
    );

    // Q8_0: the tied embedding stays Q8_0.
    let q8 = run(&input, Options::new(FileType::Q8_0)).unwrap();
    assert_eq!(File::parse(&q8).unwrap().tensor("token_embd.weight").unwrap().ty, Q8_0);
}

#[test]
fn data_is_copied_or_requantized_exactly() {
    let input = model(&small_llama(), 11);
    let out = run(&input, Options::new(FileType::Q5_1)).unwrap();
    let (fi, fo) = (File::parse(&input).unwrap(), File::parse(&out).unwrap());
    assert_eq!(fi.tensor_count(), fo.tensor_count());
    for o in fo.tensors() {
        let i = fi.tensor(o.name).unwrap();
        if i.ty == o.ty {
            assert_eq!(o.data, i.data, "{}: copied byte for byte", o.name);
            continue;
        }
        let n = i.n_elements() as usize;
        let mut x = vec![0f32; n];
        matmul::dequantize(i.ty, i.data, &mut x).unwrap();
        let mut q = vec![0u8; o.ty.row_bytes(n).unwrap()];
        matmul::quantize(o.ty, &x, &mut q).unwrap();
        assert_eq!(o.data, &q[..], "{}: {} -> {}", o.name, i.ty, o.ty);
    }
}

#[test]
fn layout_is_ggufs_with_32_byte_padding() {
    let input = model(&small_llama(), 11);
    let out = run(&input, Options::new(FileType::Q4_1)).unwrap();
    let fo = File::parse(&out).unwrap();
    assert_eq!(fo.alignment(), 32);
    assert_eq!(fo.data_offset() % 32, 0);
    let mut next = 0u64;
    for t in fo.tensors() {
        assert_eq!(t.offset, next, "{}: tensors packed in order", t.name);
        next += (t.data.len() as u64).next_multiple_of(32);
    }
    assert_eq!(out.len() as u64, fo.data_offset() as u64 + next, "the file ends with the last tensor's padding");
}

#[test]
fn the_output_does_not_depend_on_threads() {
    use GgmlType::*;
    let input = model(&[t("blk.0.ffn_up.weight", F32, &[256, 64]), t("token_embd.weight", F32, &[256, 4])], 1);
    let one = run(&input, Options { threads: 1, ..Options::new(FileType::Q6_K) }).unwrap();
    let four = run(&input, Options { threads: 4, ..Options::new(FileType::Q6_K) }).unwrap();
    assert!(one == four);
}

#[test]
fn requantizing_needs_the_flag() {
    use GgmlType::*;
    let input = model(
        &[
            t("blk.0.attn_norm.weight", F32, &[64]),
            t("blk.0.attn_q.weight", Q4_1, &[64, 4]),
            t("token_embd.weight", Q8_0, &[64, 4]),
        ],
        1,
    );
    let err = run(&input, Options::new(FileType::Q4_0)).unwrap_err().to_string();
    assert!(err.contains("blk.0.attn_q.weight") && err.contains("--allow-requantize"), "{err}");

    // Tensors that keep their type need no flag (token_embd stays Q8_0 here).
    let same = run(&input, Options::new(FileType::Q8_0));
    assert!(same.is_err(), "attn_q (Q4_1) would still be converted to Q8_0");
    let q41 = model(&[t("blk.0.attn_norm.weight", F32, &[64]), t("blk.0.attn_q.weight", Q4_1, &[64, 4])], 1);
    let out = run(&q41, Options::new(FileType::Q4_1)).unwrap();
    assert_eq!(File::parse(&out).unwrap().tensor("blk.0.attn_q.weight").unwrap().ty, Q4_1);

    let out = run(&input, Options { allow_requantize: true, ..Options::new(FileType::Q4_0) }).unwrap();
    assert_eq!(
        types(&out),
        [
            ("token_embd.weight".to_string(), Q8_0),
            ("blk.0.attn_norm.weight".into(), F32),
            ("blk.0.attn_q.weight".into(), Q4_0)
        ],
        "64-value rows: the tied embedding falls back from Q6_K to Q8_0"
    );
}

#[test]
fn refused_conversions_create_no_file() {
    use GgmlType::*;
    let input = model(&[t("blk.0.attn_q.weight", Q4_0, &[64, 4])], 1);
    let dir = std::env::temp_dir().join(format!("ember-quantize-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("in.gguf");
    let dst = dir.join("out.gguf");
    std::fs::write(&src, &input).unwrap();
    let err = quantize_file(&src, &dst, Options::new(FileType::Q8_0), |_| {}).unwrap_err();
    assert!(err.to_string().contains("--allow-requantize"), "{err}");
    assert!(!dst.exists() && !dir.join("out.gguf.partial").exists());

    let sum =
        quantize_file(&src, &dst, Options { allow_requantize: true, ..Options::new(FileType::Q8_0) }, |_| {}).unwrap();
    let written = std::fs::read(&dst).unwrap();
    assert_eq!(sum.file_size, written.len() as u64);
    assert_eq!(written, run(&input, Options { allow_requantize: true, ..Options::new(FileType::Q8_0) }).unwrap());
    assert!(!dir.join("out.gguf.partial").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_finite_values_are_refused() {
    let mut w = Writer::new();
    w.add_str("general.architecture", "llama").unwrap();
    let mut x = values(64, 1);
    x[17] = f32::NAN;
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    w.add_tensor("blk.0.attn_q.weight", GgmlType::F32, &[32, 2], bytes).unwrap();
    let err = run(&w.to_bytes(), Options::new(FileType::Q8_0)).unwrap_err().to_string();
    assert!(err.contains("blk.0.attn_q.weight") && err.contains("NaN"), "{err}");
}

#[test]
fn file_type_names() {
    assert_eq!(FileType::from_name("Q4_K"), Some(FileType::Q4_K_M));
    assert_eq!(FileType::from_name("q8_0"), Some(FileType::Q8_0));
    assert_eq!(FileType::from_name("Q3_K"), None);
    assert_eq!(FileType::from_name("F32"), None);
    assert_eq!(FileType::from_name(""), None);
}

/// The K mixes: `use_more_bits` layers get Q6_K for attn_v (counted over
/// attn_v tensors) and ffn_down (by layer of `block_count`); 12 layers, so
/// layer 10 sorting after 9 matters. Rows of 64 values fall back to Q5_0.
#[test]
fn k_mix_rules() {
    use GgmlType::*;
    let mut ts = Vec::new();
    let names: Vec<(String, String)> =
        (0..12).map(|i| (format!("blk.{i}.attn_v.weight"), format!("blk.{i}.ffn_down.weight"))).collect();
    for (v, d) in &names {
        ts.push(t(v, F32, &[256, 2]));
        ts.push(t(d, F32, &[256, 2]));
    }
    ts.push(t("blk.0.attn_q.weight", F32, &[64, 2]));
    ts.push(t("output.weight", F32, &[256, 2]));
    ts.push(t("token_embd.weight", F32, &[256, 2]));
    let input = model(&ts, 12);
    let out = run(&input, Options::new(FileType::Q4_K_M)).unwrap();
    let fo = File::parse(&out).unwrap();
    // n = 12: n/8 = 1, 7n/8 = 10; layers 0, 10, 11 and (i - 1) % 3 == 2: 3, 6, 9.
    let more = [0, 3, 6, 9, 10, 11];
    for (i, (v, d)) in names.iter().enumerate() {
        let want = if more.contains(&i) { Q6_K } else { Q4_K };
        assert_eq!(fo.tensor(v).unwrap().ty, want, "{v}");
        assert_eq!(fo.tensor(d).unwrap().ty, want, "{d}");
    }
    assert_eq!(fo.tensor("blk.0.attn_q.weight").unwrap().ty, Q5_0, "64-value rows: Q4_K falls back to Q5_0");
    assert_eq!(fo.tensor("output.weight").unwrap().ty, Q6_K);
    assert_eq!(fo.tensor("token_embd.weight").unwrap().ty, Q4_K, "not tied: an output.weight exists");

    let out = run(&input, Options::new(FileType::Q5_K_M)).unwrap();
    let fo = File::parse(&out).unwrap();
    assert_eq!(fo.tensor("blk.3.ffn_down.weight").unwrap().ty, Q6_K);
    assert_eq!(fo.tensor("blk.4.ffn_down.weight").unwrap().ty, Q5_K);
    assert_eq!(fo.tensor("blk.0.attn_q.weight").unwrap().ty, Q5_1, "Q5_K falls back to Q5_1");
}
