//! The decoder forward on tiny random models of every supported architecture
//! (`llama`, `mistral`, `qwen2`, `gemma3`), written as GGUF files in memory
//! with F32 weights, against a straightforward f64 implementation of each
//! architecture written here from the papers' and llama.cpp's definitions.
//! Also: a sliding window smaller than the prompt with a ring-buffer KV cache
//! filled across several batches, and the errors for bad models and inputs.

use ember::gguf::{File, Writer};
use ember::kv_cache::KvType;
use ember::quant::GgmlType;
use ember::session::{Session, SessionOptions};
use std::collections::HashMap;

mod common;
use common::{tiny_tensors, Arch, Rng, Shape};

struct Tiny {
    arch: Arch,
    d: usize,
    nh: usize,
    nkv: usize,
    hd: usize,
    nff: usize,
    nl: usize,
    vocab: usize,
    eps: f64,
    base: f64,
    window: usize,
    period: usize,
    w: HashMap<String, Vec<f32>>,
    shapes: Vec<(String, Vec<u64>)>,
}

impl Tiny {
    fn name(&self) -> &'static str {
        self.arch.name()
    }

    fn new(arch: Arch, seed: u64) -> Tiny {
        let (d, nh, nkv, hd, nff, nl, vocab) = (64, 4, 2, 16, 96, 3, 50);
        let mut t = Tiny {
            arch,
            d,
            nh,
            nkv,
            hd,
            nff,
            nl,
            vocab,
            eps: 1e-5,
            base: 10000.0,
            window: 3,
            period: 2,
            w: HashMap::new(),
            shapes: Vec::new(),
        };
        let mut r = Rng(seed);
        let shape =
            Shape { d: d as u64, nh: nh as u64, nkv: nkv as u64, hd: hd as u64, nff: nff as u64, nl: nl as u64 };
        for tt in tiny_tensors(arch, shape, vocab as u64) {
            let n: u64 = tt.dims.iter().product();
            t.w.insert(tt.name.clone(), (0..n).map(|_| r.f() * tt.scale + tt.offset).collect());
            t.shapes.push((tt.name, tt.dims));
        }
        t
    }

    fn gguf(&self) -> Vec<u8> {
        let a = self.name();
        let mut wr = Writer::new();
        wr.add_str("general.architecture", a).unwrap();
        wr.add_u32(&format!("{a}.embedding_length"), self.d as u32).unwrap();
        wr.add_u32(&format!("{a}.block_count"), self.nl as u32).unwrap();
        wr.add_u32(&format!("{a}.feed_forward_length"), self.nff as u32).unwrap();
        wr.add_u32(&format!("{a}.attention.head_count"), self.nh as u32).unwrap();
        wr.add_u32(&format!("{a}.attention.head_count_kv"), self.nkv as u32).unwrap();
        wr.add_f32(&format!("{a}.attention.layer_norm_rms_epsilon"), self.eps as f32).unwrap();
        wr.add_f32(&format!("{a}.rope.freq_base"), self.base as f32).unwrap();
        wr.add_u32(&format!("{a}.context_length"), 64).unwrap();
        if self.arch == Arch::Gemma3 {
            wr.add_u32(&format!("{a}.attention.key_length"), self.hd as u32).unwrap();
            wr.add_u32(&format!("{a}.attention.value_length"), self.hd as u32).unwrap();
            wr.add_u32(&format!("{a}.attention.sliding_window"), self.window as u32).unwrap();
            wr.add_u32(&format!("{a}.attention.sliding_window_pattern"), self.period as u32).unwrap();
        }
        for (name, dims) in &self.shapes {
            let bytes: Vec<u8> = self.w[name].iter().flat_map(|v| v.to_le_bytes()).collect();
            wr.add_tensor(name, GgmlType::F32, dims, bytes).unwrap();
        }
        wr.to_bytes()
    }

    fn is_swa(&self, il: usize) -> bool {
        self.arch == Arch::Gemma3 && il % self.period < self.period - 1
    }

    /// Logits after every position of `tokens`, in f64.
    #[allow(clippy::needless_range_loop)]
    fn reference(&self, tokens: &[u32]) -> Vec<Vec<f64>> {
        let (d, hd, nh, nkv) = (self.d, self.hd, self.nh, self.nkv);
        let w = |n: &str| self.w[n].iter().map(|&v| v as f64).collect::<Vec<f64>>();
        let mat = |n: &str, x: &[f64]| -> Vec<f64> {
            let m = &self.w[n];
            m.chunks_exact(x.len()).map(|row| row.iter().zip(x).map(|(&a, &b)| a as f64 * b).sum()).collect()
        };
        let rms = |x: &[f64], g: &[f64]| -> Vec<f64> {
            let s = (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64 + self.eps).sqrt();
            x.iter().zip(g).map(|(v, g)| v / s * g).collect()
        };
        let neox = matches!(self.arch, Arch::Qwen2 | Arch::Gemma3);
        let rope = |x: &mut [f64], pos: usize, base: f64| {
            for i in 0..hd / 2 {
                let th = pos as f64 * base.powf(-2.0 * i as f64 / hd as f64);
                let (a, b) = if neox { (i, i + hd / 2) } else { (2 * i, 2 * i + 1) };
                let (x0, x1) = (x[a], x[b]);
                x[a] = x0 * th.cos() - x1 * th.sin();
                x[b] = x0 * th.sin() + x1 * th.cos();
            }
        };
        let gemma = self.arch == Arch::Gemma3;
        let n = tokens.len();
        let mut x: Vec<Vec<f64>> = tokens
            .iter()
            .map(|&t| {
                let e = &self.w["token_embd.weight"][t as usize * d..(t as usize + 1) * d];
                let s = if gemma { (d as f64).sqrt() } else { 1.0 };
                e.iter().map(|&v| v as f64 * s).collect()
            })
            .collect();
        for il in 0..self.nl {
            let b = |s: &str| format!("blk.{il}.{s}");
            let base = if self.is_swa(il) { 10000.0 } else { self.base };
            let mut qs = Vec::new();
            let mut ks = Vec::new();
            let mut vs = Vec::new();
            for p in 0..n {
                let h = rms(&x[p], &w(&b("attn_norm.weight")));
                let (mut q, mut k, mut v) =
                    (mat(&b("attn_q.weight"), &h), mat(&b("attn_k.weight"), &h), mat(&b("attn_v.weight"), &h));
                if self.arch == Arch::Qwen2 {
                    for (t, bias) in [(&mut q, "attn_q.bias"), (&mut k, "attn_k.bias"), (&mut v, "attn_v.bias")] {
                        for (a, c) in t.iter_mut().zip(w(&b(bias))) {
                            *a += c;
                        }
                    }
                }
                for (t, norm) in [(&mut q, "attn_q_norm.weight"), (&mut k, "attn_k_norm.weight")] {
                    for head in t.chunks_exact_mut(hd) {
                        if gemma {
                            let nrm = rms(head, &w(&b(norm)));
                            head.copy_from_slice(&nrm);
                        }
                        rope(head, p, base);
                    }
                }
                qs.push(q);
                ks.push(k);
                vs.push(v);
            }
            for p in 0..n {
                let lo = if self.is_swa(il) { (p + 1).saturating_sub(self.window) } else { 0 };
                let mut att = vec![0.0f64; nh * hd];
                for h in 0..nh {
                    let kvh = h / (nh / nkv);
                    let q = &qs[p][h * hd..(h + 1) * hd];
                    let s: Vec<f64> = (lo..=p)
                        .map(|j| {
                            q.iter().zip(&ks[j][kvh * hd..(kvh + 1) * hd]).map(|(a, b)| a * b).sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for (jj, j) in (lo..=p).enumerate() {
                        for c in 0..hd {
                            att[h * hd + c] += e[jj] / z * vs[j][kvh * hd + c];
                        }
                    }
                }
                let mut o = mat(&b("attn_output.weight"), &att);
                if gemma {
                    o = rms(&o, &w(&b("post_attention_norm.weight")));
                }
                for (a, c) in x[p].iter_mut().zip(&o) {
                    *a += c;
                }
                let h = rms(&x[p], &w(&b("ffn_norm.weight")));
                let (g, u) = (mat(&b("ffn_gate.weight"), &h), mat(&b("ffn_up.weight"), &h));
                let act: Vec<f64> = g
                    .iter()
                    .zip(&u)
                    .map(|(&g, &u)| {
                        let a = if gemma {
                            0.5 * g * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (g + 0.044715 * g * g * g)).tanh())
                        } else {
                            g / (1.0 + (-g).exp())
                        };
                        a * u
                    })
                    .collect();
                let mut f = mat(&b("ffn_down.weight"), &act);
                if gemma {
                    f = rms(&f, &w(&b("post_ffw_norm.weight")));
                }
                for (a, c) in x[p].iter_mut().zip(&f) {
                    *a += c;
                }
            }
        }
        let out = if gemma { "token_embd.weight" } else { "output.weight" };
        x.iter().map(|xp| mat(out, &rms(xp, &w("output_norm.weight")))).collect()
    }
}

fn check_arch(arch: Arch, batch: usize) {
    let tiny = Tiny::new(arch, 0x1234 + arch as u64);
    let bytes = tiny.gguf();
    let file = File::parse(&bytes).unwrap();
    let opts = SessionOptions { ctx_len: 16, batch, threads: 2, kv_type: KvType::F32, logits_all: false };
    let mut s = Session::from_file(file, opts).unwrap();
    assert_eq!(s.config().arch.name(), tiny.name());
    let tokens: Vec<u32> = vec![3, 17, 42, 8, 8, 29, 1, 49, 33, 12, 5];
    let want = tiny.reference(&tokens);
    // a prompt of 7 in batches of `batch`, then one token at a time
    s.prefill(&tokens[..7]).unwrap();
    let compare = |s: &Session<'_>, p: usize| {
        let got = s.logits();
        assert_eq!(got.len(), tiny.vocab);
        // GELU goes through ggml's f16 table, so Gemma gets a looser bound.
        let tol = if arch == Arch::Gemma3 { 2e-2 } else { 2e-3 };
        for (i, (&g, &w)) in got.iter().zip(&want[p]).enumerate() {
            assert!((g as f64 - w).abs() < tol * (1.0 + w.abs()), "{} pos {p} logit {i}: {g} vs {w}", tiny.name());
        }
    };
    compare(&s, 6);
    for (p, &t) in tokens.iter().enumerate().skip(7) {
        s.prefill(&[t]).unwrap();
        compare(&s, p);
    }
}

#[test]
fn llama_matches_f64_reference() {
    check_arch(Arch::Llama, 4);
}

#[test]
fn mistral_matches_f64_reference() {
    check_arch(Arch::Mistral, 7);
}

#[test]
fn qwen2_with_biases_and_neox_rope_matches_f64_reference() {
    check_arch(Arch::Qwen2, 3);
}

#[test]
fn gemma3_with_sliding_window_ring_cache_matches_f64_reference() {
    // window 3, batches of 2: sliding layers keep 4 cells, and 11 positions wrap the ring twice
    check_arch(Arch::Gemma3, 2);
}

#[test]
fn unknown_architecture_names_the_supported_ones() {
    let mut wr = Writer::new();
    wr.add_str("general.architecture", "mamba").unwrap();
    let bytes = wr.to_bytes();
    let err = Session::from_file(File::parse(&bytes).unwrap(), SessionOptions::default()).err().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("mamba") && msg.contains("llama, mistral, qwen2, gemma3"), "{msg}");
}

#[test]
fn missing_and_misshapen_tensors_are_named() {
    let mut tiny = Tiny::new(Arch::Llama, 7);
    tiny.shapes.retain(|(n, _)| n != "blk.1.ffn_up.weight");
    let bytes = tiny.gguf();
    let msg = Session::from_file(File::parse(&bytes).unwrap(), SessionOptions::default()).err().unwrap().to_string();
    assert!(msg.contains("blk.1.ffn_up.weight") && msg.contains("missing"), "{msg}");

    let mut tiny = Tiny::new(Arch::Llama, 7);
    for (n, dims) in tiny.shapes.iter_mut() {
        if n == "blk.0.attn_k.weight" {
            *dims = vec![64, 16]; // 16 rows instead of 32
        }
    }
    let v = tiny.w.get_mut("blk.0.attn_k.weight").unwrap();
    v.truncate(64 * 16);
    let bytes = tiny.gguf();
    let msg = Session::from_file(File::parse(&bytes).unwrap(), SessionOptions::default()).err().unwrap().to_string();
    assert!(msg.contains("blk.0.attn_k.weight") && msg.contains("shape"), "{msg}");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let tiny = Tiny::new(Arch::Llama, 9);
    let bytes = tiny.gguf();
    let opts = SessionOptions { ctx_len: 8, batch: 4, threads: 1, ..Default::default() };
    let mut s = Session::from_file(File::parse(&bytes).unwrap(), opts).unwrap();
    let mut scratch = ember::sampler::SamplerScratch::new(tiny.vocab, 8);
    let mut smp = scratch.sampler(ember::sampler::SamplerParams::greedy()).unwrap();
    assert!(s.decode_next(&mut smp).is_err(), "nothing to sample before a prompt");
    let msg = s.prefill(&[1, 2, 50]).err().unwrap().to_string();
    assert!(msg.contains("50") && msg.contains("vocabulary"), "{msg}");
    assert_eq!(s.pos(), 0, "a rejected prompt is not half processed");
    let msg = s.prefill(&[1; 9]).err().unwrap().to_string();
    assert!(msg.contains("context holds 8"), "{msg}");
    s.prefill(&[1; 8]).unwrap();
    assert!(matches!(s.decode_next(&mut smp), Err(ember::Error::ContextFull { .. })));
    s.truncate(4).unwrap();
    assert!(s.truncate(5).is_err());
    assert!(s.decode_next(&mut smp).is_err(), "truncating clears the logits");
    s.prefill(&[2]).unwrap();
    assert_eq!(s.pos(), 5);
    s.decode_next(&mut smp).unwrap();
    assert_eq!(s.pos(), 6);
}
