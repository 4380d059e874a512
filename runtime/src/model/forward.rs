//! The one decoder forward pass. Every supported architecture runs this
//! function; they differ only by [`Config`] switches:
//!
//! ```text
//! x = embed(tokens) * embd_scale
//! for each block:
//!     h = rmsnorm(x) * attn_norm
//!     q, k, v = h·Wq (+bq), h·Wk (+bk), h·Wv (+bv)
//!     [qk_norm]  q, k = rmsnorm(q head) * q_norm, rmsnorm(k head) * k_norm
//!     q, k = rope(q), rope(k)           (base per layer: sliding or full)
//!     [q_scale]  q *= q_scale
//!     cache k, v; a = attention(q, cached k/v over the visible positions)
//!     o = a·Wo (+bo);  [post_norms] o = rmsnorm(o) * post_attention_norm
//!     x = x + o
//!     h = rmsnorm(x) * ffn_norm
//!     f = (act(h·Wgate) * h·Wup)·Wdown;  [post_norms] f = rmsnorm(f) * post_ffw_norm
//!     x = x + f
//! logits = (rmsnorm(x) * output_norm)·Wout   [logit_softcap] cap·tanh(logits/cap)
//! ```
//!
//! A call processes a batch of consecutive tokens: every matrix is read once
//! for the whole batch (`ops::matmul` over all rows), attention runs per
//! (token, head) across threads, and the elementwise work is split by rows.

use super::{Activation, Config, Weights};
use crate::kv_cache::KvCache;
use crate::memory::{Buffers, Plan};
use crate::ops::{self, ActScratch, AttnParams, AttnScratch, KvHead};
use crate::threads::{split_rows, FirstError, Parallel, SharedMut};
use crate::Error;
use ember_quant::Kernels;

/// Everything a forward call reads besides the tokens.
pub struct Model<'m, 'w> {
    /// Hyperparameters and switches.
    pub cfg: &'m Config,
    /// The tensors.
    pub weights: &'m Weights<'w>,
    /// The kernel table.
    pub kernels: &'m Kernels,
    /// The threads.
    pub par: &'m dyn Parallel,
    /// The memory plan the buffers were cut by.
    pub plan: &'m Plan,
}

/// Runs `tokens` (at most `plan.opts.batch` of them) at positions `pos0..`,
/// writing their keys and values into the cache and the logits of the last
/// token (of every token with `logits_all`) into `bufs.logits`.
pub fn forward(m: &Model<'_, '_>, bufs: &mut Buffers<'_>, tokens: &[u32], pos0: usize) -> Result<(), Error> {
    let cfg = m.cfg;
    let plan = m.plan;
    let n = tokens.len();
    if n == 0 {
        return Ok(());
    }
    if n > plan.opts.batch {
        return Err(Error::BadOption("more tokens in one forward call than the planned batch size"));
    }
    let end = pos0.checked_add(n).ok_or(Error::ContextFull { ctx_len: plan.opts.ctx_len, needed: usize::MAX })?;
    if end > plan.opts.ctx_len {
        return Err(Error::ContextFull { ctx_len: plan.opts.ctx_len, needed: end });
    }
    if m.weights.n_layer() != cfg.n_layer {
        return Err(Error::BadOption("the weights do not match the config's block count"));
    }
    let d = cfg.n_embd;
    let (dq, dk, dv, da, dff) = (cfg.q_dim(), cfg.k_dim(), cfg.v_dim(), cfg.attn_out_dim(), cfg.n_ff);
    let hdk = cfg.head_dim_k;
    let eps = cfg.norm_eps;
    let w = m.weights;

    let Buffers { x, xb, xb2, q, k, v, att, gate, up, act, logits, rope, attn, gelu, kv } = bufs;
    let mut act = ActScratch { buf: act, slot_bytes: plan.act_slot_bytes };
    let mut cache = KvCache::new(&plan.kv_layout, kv).ok_or(Error::PlanTooLarge)?;

    // Token embeddings.
    let embd_row = w.token_embd.row_bytes();
    for (i, &t) in tokens.iter().enumerate() {
        let t = t as usize;
        if t >= cfg.n_vocab {
            return Err(Error::TokenOutOfRange { token: t as u32, n_vocab: cfg.n_vocab });
        }
        let row = &w.token_embd.data[t * embd_row..(t + 1) * embd_row];
        let xi = &mut x[i * d..(i + 1) * d];
        ember_quant::matmul::dequantize(w.token_embd.ty, row, xi)?;
        if cfg.embd_scale != 1.0 {
            for v in xi.iter_mut() {
                *v *= cfg.embd_scale;
            }
        }
    }

    // RoPE angles for every token: full-attention base, then sliding-window base.
    let nr = cfg.n_rot;
    let two_bases = cfg.rope_base_swa != cfg.rope_base && cfg.n_swa_layers() > 0;
    for i in 0..n {
        let pos = pos0 + i;
        ops::rope_cache(&mut rope[i * nr..(i + 1) * nr], pos, cfg.rope_base, cfg.rope_freq_scale, w.rope_freqs);
        if two_bases {
            let o = plan.opts.batch * nr;
            ops::rope_cache(
                &mut rope[o + i * nr..o + (i + 1) * nr],
                pos,
                cfg.rope_base_swa,
                cfg.rope_freq_scale,
                w.rope_freqs,
            );
        }
    }

    for il in 0..cfg.n_layer {
        let lw = w.layer(il).ok_or(Error::BadOption("missing block weights"))?;

        // Attention.
        norm_rows(m.par, n, d, x, xb, lw.attn_norm, eps);
        // K before Q: a decode step cuts the three matrices, in this order,
        // into one contiguous region per thread, and with Q first the second
        // thread's region was Q's tail, K and V (three gemv calls, each
        // starting its streams cold, against the first thread's one). K, Q,
        // V gives each of two threads two calls: SmolLM2 Q8_0 -t 2, the
        // job's two threads ended 3.4 µs apart (median) and now 0.2, the job
        // took 16.7-17.2 µs and now 15.7-16.0. The order changes no result.
        ops::matmul(
            m.kernels,
            m.par,
            xb,
            n,
            d,
            &mut [(&lw.wk, &mut k[..n * dk]), (&lw.wq, &mut q[..n * dq]), (&lw.wv, &mut v[..n * dv])],
            &mut act,
        )?;
        let rope_off = if two_bases && cfg.is_swa(il) { plan.opts.batch * nr } else { 0 };
        for i in 0..n {
            add_bias(&mut q[i * dq..(i + 1) * dq], lw.bq);
            add_bias(&mut k[i * dk..(i + 1) * dk], lw.bk);
            add_bias(&mut v[i * dv..(i + 1) * dv], lw.bv);
            let angles = &rope[rope_off + i * nr..rope_off + (i + 1) * nr];
            for qh in q[i * dq..(i + 1) * dq].chunks_exact_mut(hdk) {
                if let Some(wn) = lw.q_norm {
                    ops::rmsnorm_in_place(qh, wn, eps);
                }
                ops::rope_apply(qh, angles, cfg.rope_style);
                if let Some(s) = cfg.q_scale {
                    for v in qh.iter_mut() {
                        *v *= s;
                    }
                }
            }
            for kh in k[i * dk..(i + 1) * dk].chunks_exact_mut(hdk) {
                if let Some(wn) = lw.k_norm {
                    ops::rmsnorm_in_place(kh, wn, eps);
                }
                ops::rope_apply(kh, angles, cfg.rope_style);
            }
            cache.store(il, pos0 + i, &k[i * dk..(i + 1) * dk], &v[i * dv..(i + 1) * dv]);
        }
        attention(m, &cache, il, q, att, attn, n, pos0)?;
        ops::matmul(m.kernels, m.par, att, n, da, &mut [(&lw.wo, &mut xb2[..n * d])], &mut act)?;
        residual_rows(m.par, n, d, x, xb2, lw.bo, lw.post_attn_norm, eps);

        // Feed-forward.
        norm_rows(m.par, n, d, x, xb, lw.ffn_norm, eps);
        let gelu: &[u16] = gelu;
        let glu = |g: &mut [f32], u: &[f32]| match cfg.activation {
            Activation::Silu => ops::swiglu(m.kernels, g, u),
            Activation::GeluTanh => ops::geglu(m.kernels, g, u, gelu),
        };
        if n == 1 {
            // One token: each chunk of rows applies the activation to its own
            // gate and up rows, on the thread that computed them.
            ops::matvec_glu(
                m.kernels,
                m.par,
                xb,
                d,
                (&lw.w_gate, &mut gate[..dff]),
                (&lw.w_up, &mut up[..dff]),
                &mut act,
                &glu,
            )?;
        } else {
            ops::matmul(
                m.kernels,
                m.par,
                xb,
                n,
                d,
                &mut [(&lw.w_gate, &mut gate[..n * dff]), (&lw.w_up, &mut up[..n * dff])],
                &mut act,
            )?;
            let gs = SharedMut::new(&mut gate[..n * dff]);
            let up: &[f32] = up;
            let err = FirstError::new();
            for_rows(m.par, n, |i| {
                // SAFETY: `for_rows` hands each row index to exactly one thread.
                let g = unsafe { gs.slice(i * dff..(i + 1) * dff) };
                err.check(glu(g, &up[i * dff..(i + 1) * dff]));
            });
            err.into_result()?;
        }
        ops::matmul(m.kernels, m.par, gate, n, dff, &mut [(&lw.w_down, &mut xb2[..n * d])], &mut act)?;
        residual_rows(m.par, n, d, x, xb2, None, lw.post_ffn_norm, eps);
    }

    // Output head: the last token, or every token.
    let first = if plan.logits_rows > 1 { 0 } else { n - 1 };
    let rows = n - first;
    for (j, i) in (first..n).enumerate() {
        ops::rmsnorm(&mut xb[j * d..(j + 1) * d], &x[i * d..(i + 1) * d], w.output_norm, eps);
    }
    let out = &mut logits[..rows * cfg.n_vocab];
    ops::matmul(m.kernels, m.par, xb, rows, d, &mut [(&w.output, out)], &mut act)?;
    if cfg.logit_softcap != 0.0 {
        let cap = cfg.logit_softcap;
        for l in out.iter_mut() {
            *l = cap * ops::math::tanhf(*l / cap);
        }
    }
    Ok(())
}

fn add_bias(x: &mut [f32], b: Option<&[f32]>) {
    if let Some(b) = b {
        for (v, &bb) in x.iter_mut().zip(b) {
            *v += bb;
        }
    }
}

/// Attention of every (token, query head) of the batch, split across threads.
#[allow(clippy::too_many_arguments)]
fn attention(
    m: &Model<'_, '_>,
    cache: &KvCache<'_>,
    il: usize,
    q: &[f32],
    att: &mut [f32],
    scratch: &mut [u8],
    n: usize,
    pos0: usize,
) -> Result<(), Error> {
    if n >= ops::TILE_ROWS {
        return attention_tiled(m, cache, il, q, att, scratch, n, pos0);
    }
    let cfg = m.cfg;
    let plan = m.plan;
    let kv = LayerKv::new(cfg, cache, il);
    let (hdk, hdv) = (cfg.head_dim_k, cfg.head_dim_v);
    let (dq, da) = (cfg.q_dim(), cfg.attn_out_dim());
    let group = cfg.n_head / cfg.n_head_kv;
    let t = m.par.threads().min(plan.opts.threads);
    // One task is a (token, KV head, share of that KV head's query heads).
    // Sharing a KV head lets a task widen each cached row once for all its
    // query heads; a decode step with few KV heads splits the query heads
    // so that every thread has work. The split is for the threads the job
    // will likely run on (one, for a pool running jobs on the caller
    // alone); the scratch is for every thread that may.
    let active = m.par.active_threads().clamp(1, t);
    let n_kv = cfg.n_head_kv;
    let sub = (2 * active).div_ceil(n * n_kv).clamp(1, group);
    let tasks = n * n_kv * sub;
    let per = plan.attn_per_thread;
    let (qb, accb) = (round64(group.next_multiple_of(4) * hdk * 4), round64(group * hdv * 4));
    let out = SharedMut::new(&mut att[..n * da]);
    let scr = SharedMut::new(&mut scratch[..t * per]);
    let err = FirstError::new();
    // llama.cpp's flash attention keeps the f16 query and accumulator of its
    // one-row path for batches under 64 tokens (GGML_FA_TILE_Q); larger
    // batches went to `attention_tiled` above.
    let params = AttnParams { scale: cfg.kq_scale, softcap: cfg.attn_softcap, half: true };
    let per_chunk = tasks.div_ceil(4 * active).max(1);
    m.par.run(tasks.div_ceil(per_chunk), &|c, ti| {
        if ti >= t {
            err.set(Error::BadOption("more threads than the memory plan has attention scratch for"));
            return;
        }
        // SAFETY: thread `ti` alone uses scratch piece `ti` (a thread runs
        // one chunk at a time).
        let mine = unsafe { scr.slice(ti * per..(ti + 1) * per) };
        let (qs, rest) = mine.split_at_mut(qb);
        let (acc, row) = rest.split_at_mut(accb);
        let (Ok(qbuf), Ok(acc), Ok(row)) = (
            bytemuck::try_cast_slice_mut::<u8, f32>(qs),
            bytemuck::try_cast_slice_mut::<u8, f32>(acc),
            bytemuck::try_cast_slice_mut::<u8, f32>(row),
        ) else {
            err.set(Error::PlanTooLarge);
            return;
        };
        let mut s = AttnScratch { q: qbuf, acc, row };
        for task in c * per_chunk..((c + 1) * per_chunk).min(tasks) {
            let i = task / (n_kv * sub);
            let (kvh, j) = ((task / sub) % n_kv, task % sub);
            let heads = split_rows(group, sub, j, 1);
            let (h0, h1) = (kvh * group + heads.start, kvh * group + heads.end);
            let pos = pos0 + i;
            let lo = if kv.window > 0 { (pos + 1).saturating_sub(kv.window) } else { 0 };
            let (kh, vh) = kv.head(kvh);
            let qh = &q[i * dq + h0 * hdk..i * dq + h1 * hdk];
            // SAFETY: each task writes the outputs of its own (token, heads).
            let o = unsafe { out.slice(i * da + h0 * hdv..i * da + h1 * hdv) };
            err.check(ops::attend(m.kernels, qh, &kh, &vh, lo..pos + 1, params, &mut s, o));
        }
    });
    err.into_result()
}

/// [`attention`] for batches of [`ops::TILE_ROWS`] tokens or more, as
/// llama.cpp's tiled flash attention computes it ([`ops::attend_tiled`]).
/// One task is a KV head and a block of consecutive tokens (all the query
/// heads sharing that KV head); tasks are handed out latest block first, so
/// the ones that see the most positions start first.
#[allow(clippy::too_many_arguments)]
fn attention_tiled(
    m: &Model<'_, '_>,
    cache: &KvCache<'_>,
    il: usize,
    q: &[f32],
    att: &mut [f32],
    scratch: &mut [u8],
    n: usize,
    pos0: usize,
) -> Result<(), Error> {
    let cfg = m.cfg;
    let plan = m.plan;
    let kv = LayerKv::new(cfg, cache, il);
    let (hdk, hdv) = (cfg.head_dim_k, cfg.head_dim_v);
    let (dq, da) = (cfg.q_dim(), cfg.attn_out_dim());
    let group = cfg.n_head / cfg.n_head_kv;
    let t = m.par.threads().min(plan.opts.threads);
    let n_kv = cfg.n_head_kv;
    let nt = ops::tile_tokens(group);
    let blocks = n.div_ceil(nt);
    let tasks = n_kv * blocks;
    let per = plan.attn_per_thread;
    let params = AttnParams { scale: cfg.kq_scale, softcap: cfg.attn_softcap, half: false };
    let out = SharedMut::new(&mut att[..n * da]);
    let scr = SharedMut::new(&mut scratch[..t * per]);
    let err = FirstError::new();
    m.par.run(tasks, &|task, ti| {
        if ti >= t {
            err.set(Error::BadOption("more threads than the memory plan has attention scratch for"));
            return;
        }
        // SAFETY: thread `ti` alone uses scratch piece `ti` (a thread runs
        // one chunk at a time).
        let mine = unsafe { scr.slice(ti * per..(ti + 1) * per) };
        let (b, kvh) = (blocks - 1 - task / n_kv, task % n_kv);
        let (i0, i1) = (b * nt, ((b + 1) * nt).min(n));
        let Some(mut s) = ops::TileScratch::carve(mine, nt * group, hdk, hdv) else {
            err.set(Error::PlanTooLarge);
            return;
        };
        let (kh, vh) = kv.head(kvh);
        let qh = &q[i0 * dq + kvh * group * hdk..];
        let r = ops::attend_tiled(m.kernels, qh, dq, group, i1 - i0, &kh, &vh, pos0 + i0, kv.window, params, &mut s);
        if r.is_err() {
            err.check(r);
            return;
        }
        let w = group * hdv;
        for i in i0..i1 {
            // SAFETY: each task writes the outputs of its own (tokens, KV head).
            let o = unsafe { out.slice(i * da + kvh * w..i * da + (kvh + 1) * w) };
            o.copy_from_slice(&s.vkq[(i - i0) * w..(i - i0 + 1) * w]);
        }
    });
    err.into_result()
}

/// One layer's K and V caches as both attention paths read them.
struct LayerKv<'c> {
    k: KvHead<'c>,
    v: KvHead<'c>,
    /// Sliding-window length (0: the layer sees every earlier position).
    window: usize,
}

impl<'c> LayerKv<'c> {
    fn new(cfg: &Config, cache: &'c KvCache<'_>, il: usize) -> Self {
        let layout = cache.layout();
        let (kd, vd) = cache.layer(il);
        let cells = layout.cells(il);
        let head = |data, row_bytes, dim| KvHead { data, ty: layout.ty, row_bytes, offset: 0, dim, cells };
        LayerKv {
            k: head(kd, layout.k_row_bytes, cfg.head_dim_k),
            v: head(vd, layout.v_row_bytes, cfg.head_dim_v),
            window: if layout.is_swa(il) { cfg.sliding_window } else { 0 },
        }
    }

    /// The K and V views of KV head `kvh`.
    fn head(&self, kvh: usize) -> (KvHead<'c>, KvHead<'c>) {
        let eb = self.k.ty.elem_bytes();
        (KvHead { offset: kvh * self.k.dim * eb, ..self.k }, KvHead { offset: kvh * self.v.dim * eb, ..self.v })
    }
}

fn round64(n: usize) -> usize {
    n.div_ceil(64) * 64
}

/// Runs `f(i)` for every row `i < n`, each row once; the rows are split
/// across threads only when the batch is large enough to pay for the
/// hand-off (never for a single decoded token).
fn for_rows(par: &dyn Parallel, n: usize, f: impl Fn(usize) + Sync) {
    if n < 8 || par.threads() == 1 {
        (0..n).for_each(f);
    } else {
        let per = n.div_ceil(4 * par.threads());
        par.run(n.div_ceil(per), &|c, _| (c * per..((c + 1) * per).min(n)).for_each(&f));
    }
}

/// `out[i] = rmsnorm(x[i]) * w` for every row.
fn norm_rows(par: &dyn Parallel, n: usize, d: usize, x: &[f32], out: &mut [f32], w: &[f32], eps: f32) {
    let os = SharedMut::new(&mut out[..n * d]);
    for_rows(par, n, |i| {
        // SAFETY: `for_rows` hands each row index to exactly one thread.
        let o = unsafe { os.slice(i * d..(i + 1) * d) };
        ops::rmsnorm(o, &x[i * d..(i + 1) * d], w, eps);
    });
}

/// `x[i] += post_norm(o[i] + bias)` for every row (the residual connection).
#[allow(clippy::too_many_arguments)]
fn residual_rows(
    par: &dyn Parallel,
    n: usize,
    d: usize,
    x: &mut [f32],
    o: &mut [f32],
    bias: Option<&[f32]>,
    post_norm: Option<&[f32]>,
    eps: f32,
) {
    let xs = SharedMut::new(&mut x[..n * d]);
    let os = SharedMut::new(&mut o[..n * d]);
    for_rows(par, n, |i| {
        // SAFETY: `for_rows` hands each row index to exactly one thread.
        let (xi, oi) = unsafe { (xs.slice(i * d..(i + 1) * d), os.slice(i * d..(i + 1) * d)) };
        add_bias(oi, bias);
        if let Some(wn) = post_norm {
            ops::rmsnorm_in_place(oi, wn, eps);
        }
        for (xv, ov) in xi.iter_mut().zip(oi.iter()) {
            *xv += *ov;
        }
    });
}
