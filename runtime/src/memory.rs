//! The memory plan and the arena.
//!
//! [`Plan`] sizes, once, every buffer the forward pass touches: the
//! activations of a batch, the quantized-activation scratch, the logits, the
//! KV cache, per-thread attention scratch and the GELU table. [`Arena`] is one
//! slab (a `Vec` with `alloc`, a `&'static mut [u8]` on a microcontroller)
//! that the plan cuts into 64-byte-aligned pieces. Nothing is allocated after
//! that: producing a token only reads and writes these pieces.

use crate::kv_cache::{KvLayout, KvType};
use crate::model::{Activation, Config};
use crate::Error;
use core::fmt;

/// Alignment of every buffer (a cache line; enough for every block type).
pub const ALIGN: usize = 64;

/// Choices that size the plan besides the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// Context length: positions the KV cache holds.
    pub ctx_len: usize,
    /// Most tokens one forward call processes (prompt batches).
    pub batch: usize,
    /// KV cache element type.
    pub kv_type: KvType,
    /// Threads that need their own attention scratch.
    pub threads: usize,
    /// Keep the logits of every token of a batch (perplexity), not only the last.
    pub logits_all: bool,
}

impl PlanOptions {
    /// Defaults for a context length and batch: f16 cache, one thread, last logits only.
    pub fn new(ctx_len: usize, batch: usize) -> PlanOptions {
        PlanOptions { ctx_len, batch, kv_type: KvType::F16, threads: 1, logits_all: false }
    }
}

/// A piece of the arena: `bytes` bytes at `offset` (both multiples of [`ALIGN`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// Byte offset in the slab.
    pub offset: usize,
    /// Length in bytes.
    pub bytes: usize,
}

/// Every buffer of a session, sized from the config and options.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The options it was made with (`batch` capped at `ctx_len`).
    pub opts: PlanOptions,
    /// Shape of the model.
    pub n_embd: usize,
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Residual stream, `[batch, n_embd]` f32.
    pub x: Region,
    /// Normed input of a block, `[batch, n_embd]` f32.
    pub xb: Region,
    /// Output of a block's projection, `[batch, n_embd]` f32.
    pub xb2: Region,
    /// Queries, `[batch, n_head * head_dim_k]` f32.
    pub q: Region,
    /// New keys, `[batch, n_head_kv * head_dim_k]` f32.
    pub k: Region,
    /// New values, `[batch, n_head_kv * head_dim_v]` f32.
    pub v: Region,
    /// Attention output, `[batch, n_head * head_dim_v]` f32.
    pub att: Region,
    /// FFN gate (then the gated product), `[batch, n_ff]` f32.
    pub gate: Region,
    /// FFN up, `[batch, n_ff]` f32.
    pub up: Region,
    /// Quantized activations: 3 slots of `act_slot_bytes`.
    pub act: Region,
    /// Bytes of one quantized-activation slot (`batch` rows of the widest input).
    pub act_slot_bytes: usize,
    /// Logits, `[logits_rows, n_vocab]` f32.
    pub logits: Region,
    /// Rows of logits kept (1, or `batch` with `logits_all`).
    pub logits_rows: usize,
    /// RoPE cos/sin cache, `[2, batch, n_rot]` f32 (full-attention base, sliding-window base).
    pub rope: Region,
    /// Attention scratch, `threads` pieces of `attn_per_thread` bytes.
    pub attn: Region,
    /// Bytes of one thread's attention scratch.
    pub attn_per_thread: usize,
    /// GELU lookup table (65536 f16) for GELU models, else empty.
    pub gelu: Region,
    /// The KV cache.
    pub kv: Region,
    /// Where each layer's K and V live in `kv`.
    pub kv_layout: KvLayout,
    /// Total bytes of the slab.
    pub total: usize,
    n_layer: usize,
    n_swa_layers: usize,
    dims: Dims,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Dims {
    q: usize,
    k: usize,
    v: usize,
    att: usize,
    ff: usize,
    rot: usize,
    head_k: usize,
    head_v: usize,
}

fn round_up(n: usize) -> Result<usize, Error> {
    n.checked_add(ALIGN - 1).map(|v| v / ALIGN * ALIGN).ok_or(Error::PlanTooLarge)
}

struct Layout {
    next: usize,
}

impl Layout {
    fn take(&mut self, bytes: usize) -> Result<Region, Error> {
        let bytes = round_up(bytes)?;
        let r = Region { offset: self.next, bytes };
        self.next = self.next.checked_add(bytes).ok_or(Error::PlanTooLarge)?;
        Ok(r)
    }
    fn f32s(&mut self, rows: usize, cols: usize) -> Result<Region, Error> {
        self.take(rows.checked_mul(cols).and_then(|n| n.checked_mul(4)).ok_or(Error::PlanTooLarge)?)
    }
}

impl Plan {
    /// The plan for `cfg` with a context of `ctx_len` positions and prompt
    /// batches of `batch` tokens, with default options (f16 KV cache, one
    /// thread, logits of the last token).
    pub fn new(cfg: &Config, ctx_len: usize, batch: usize) -> Result<Plan, Error> {
        Plan::with_options(cfg, PlanOptions::new(ctx_len, batch))
    }

    /// The plan for `cfg` and `opts`.
    pub fn with_options(cfg: &Config, opts: PlanOptions) -> Result<Plan, Error> {
        if opts.ctx_len == 0 {
            return Err(Error::BadOption("the context length must be at least 1"));
        }
        if opts.batch == 0 {
            return Err(Error::BadOption("the batch size must be at least 1"));
        }
        const { assert!(crate::threads::MAX_THREADS == 512, "the message below names the limit") };
        if opts.threads > crate::threads::MAX_THREADS {
            return Err(Error::BadOption("the thread count must be at most 512"));
        }
        let mut opts = opts;
        opts.batch = opts.batch.min(opts.ctx_len);
        opts.threads = opts.threads.max(1);
        let b = opts.batch;
        let dims = Dims {
            q: cfg.q_dim(),
            k: cfg.k_dim(),
            v: cfg.v_dim(),
            att: cfg.attn_out_dim(),
            ff: cfg.n_ff,
            rot: cfg.n_rot,
            head_k: cfg.head_dim_k,
            head_v: cfg.head_dim_v,
        };
        let mut l = Layout { next: 0 };
        let x = l.f32s(b, cfg.n_embd)?;
        let xb = l.f32s(b, cfg.n_embd)?;
        let xb2 = l.f32s(b, cfg.n_embd)?;
        let q = l.f32s(b, dims.q)?;
        let k = l.f32s(b, dims.k)?;
        let v = l.f32s(b, dims.v)?;
        let att = l.f32s(b, dims.att)?;
        let gate = l.f32s(b, dims.ff)?;
        let up = l.f32s(b, dims.ff)?;
        // Matrix inputs: n_embd (q/k/v, gate/up, output), attention output, FFN hidden.
        let widest = [cfg.n_embd, dims.att, dims.ff].into_iter().map(|c| cfg.act_formats.max_row_bytes(c)).max();
        let act_slot_bytes = round_up(widest.unwrap_or(0).checked_mul(b).ok_or(Error::PlanTooLarge)?)?;
        let act = l.take(act_slot_bytes.checked_mul(crate::ops::MAX_GROUP).ok_or(Error::PlanTooLarge)?)?;
        let logits_rows = if opts.logits_all { b } else { 1 };
        let logits = l.f32s(logits_rows, cfg.n_vocab)?;
        // Two sets of angles: full-attention layers and sliding-window layers.
        let rope = l.f32s(2 * b, dims.rot)?;
        // A group of query heads sharing a KV head: queries (g * dk f32, g
        // rounded up to a multiple of 4 for the interleaved f32 path),
        // accumulators (g * dv f32) and two widened cache rows, each 64-aligned.
        let g = cfg.n_head / cfg.n_head_kv.max(1);
        let attn_per_thread = round_up(g.next_multiple_of(4) * dims.head_k * 4)?
            + round_up(g * dims.head_v * 4)?
            + round_up(2 * dims.head_k.max(dims.head_v) * 4)?;
        // Batches of 64+ tokens take the tiled path, whose scratch is larger.
        let attn_per_thread = if b >= crate::ops::TILE_ROWS {
            let rows = crate::ops::tile_tokens(g) * g;
            attn_per_thread.max(crate::ops::TileScratch::bytes(rows, dims.head_k, dims.head_v))
        } else {
            attn_per_thread
        };
        let attn = l.take(attn_per_thread.checked_mul(opts.threads).ok_or(Error::PlanTooLarge)?)?;
        let gelu = if cfg.activation == Activation::GeluTanh { l.take(65536 * 2)? } else { l.take(0)? };
        let kv_layout = KvLayout::new(cfg, opts.ctx_len, b, opts.kv_type).ok_or(Error::PlanTooLarge)?;
        let kv = l.take(kv_layout.total_bytes())?;
        Ok(Plan {
            opts,
            n_embd: cfg.n_embd,
            n_vocab: cfg.n_vocab,
            x,
            xb,
            xb2,
            q,
            k,
            v,
            att,
            gate,
            up,
            act,
            act_slot_bytes,
            logits,
            logits_rows,
            rope,
            attn,
            attn_per_thread,
            gelu,
            kv,
            kv_layout,
            total: l.next,
            n_layer: cfg.n_layer,
            n_swa_layers: cfg.n_swa_layers(),
            dims,
        })
    }

    /// Cuts `slab` (at least `self.total` bytes, 64-byte aligned) into the
    /// plan's buffers.
    pub fn carve<'a>(&self, slab: &'a mut [u8]) -> Result<Buffers<'a>, Error> {
        if slab.len() < self.total || !(slab.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(Error::ArenaTooSmall { needed: self.total, got: slab.len() });
        }
        let mut c = Cutter { rest: slab, at: 0 };
        Ok(Buffers {
            x: c.f32s(self.x)?,
            xb: c.f32s(self.xb)?,
            xb2: c.f32s(self.xb2)?,
            q: c.f32s(self.q)?,
            k: c.f32s(self.k)?,
            v: c.f32s(self.v)?,
            att: c.f32s(self.att)?,
            gate: c.f32s(self.gate)?,
            up: c.f32s(self.up)?,
            act: c.bytes(self.act)?,
            logits: c.f32s(self.logits)?,
            rope: c.f32s(self.rope)?,
            attn: c.bytes(self.attn)?,
            gelu: bytemuck::try_cast_slice_mut(c.bytes(self.gelu)?).map_err(|_| Error::PlanTooLarge)?,
            kv: c.bytes(self.kv)?,
        })
    }

    fn rows(&self) -> usize {
        self.opts.batch
    }
}

/// The plan's buffers, cut from one slab.
pub struct Buffers<'a> {
    /// See [`Plan::x`].
    pub x: &'a mut [f32],
    /// See [`Plan::xb`].
    pub xb: &'a mut [f32],
    /// See [`Plan::xb2`].
    pub xb2: &'a mut [f32],
    /// See [`Plan::q`].
    pub q: &'a mut [f32],
    /// See [`Plan::k`].
    pub k: &'a mut [f32],
    /// See [`Plan::v`].
    pub v: &'a mut [f32],
    /// See [`Plan::att`].
    pub att: &'a mut [f32],
    /// See [`Plan::gate`].
    pub gate: &'a mut [f32],
    /// See [`Plan::up`].
    pub up: &'a mut [f32],
    /// See [`Plan::act`].
    pub act: &'a mut [u8],
    /// See [`Plan::logits`].
    pub logits: &'a mut [f32],
    /// See [`Plan::rope`].
    pub rope: &'a mut [f32],
    /// See [`Plan::attn`].
    pub attn: &'a mut [u8],
    /// See [`Plan::gelu`].
    pub gelu: &'a mut [u16],
    /// See [`Plan::kv`].
    pub kv: &'a mut [u8],
}

struct Cutter<'a> {
    rest: &'a mut [u8],
    at: usize,
}

impl<'a> Cutter<'a> {
    fn bytes(&mut self, r: Region) -> Result<&'a mut [u8], Error> {
        let rest = core::mem::take(&mut self.rest);
        let skip = r.offset.checked_sub(self.at).ok_or(Error::PlanTooLarge)?;
        if rest.len() < skip + r.bytes {
            return Err(Error::PlanTooLarge);
        }
        let (_, rest) = rest.split_at_mut(skip);
        let (piece, rest) = rest.split_at_mut(r.bytes);
        self.rest = rest;
        self.at = r.offset + r.bytes;
        Ok(piece)
    }
    fn f32s(&mut self, r: Region) -> Result<&'a mut [f32], Error> {
        bytemuck::try_cast_slice_mut(self.bytes(r)?).map_err(|_| Error::PlanTooLarge)
    }
}

/// One slab of memory, 64-byte aligned, that a [`Plan`] is carved from.
pub struct Arena {
    storage: Storage,
}

enum Storage {
    /// A zeroed allocation; the slab is `buf[skip..skip + len]`, 64-aligned.
    #[cfg(feature = "alloc")]
    Heap {
        buf: alloc::boxed::Box<[u8]>,
        skip: usize,
        len: usize,
    },
    Static(&'static mut [u8]),
}

impl Arena {
    /// A zeroed heap slab of `plan.total` bytes.
    ///
    /// The bytes come from `alloc_zeroed` with byte alignment (`calloc`),
    /// which for a large slab maps fresh zero pages without writing them, and
    /// the slab starts at the first 64-byte boundary inside. (An aligned
    /// `alloc_zeroed` would be `memalign` + `memset`, touching every page.)
    /// So the pages of the KV cache join the resident set only once a
    /// position is written: a long planned context costs no memory until used.
    #[cfg(feature = "alloc")]
    pub fn new(plan: &Plan) -> Result<Arena, Error> {
        let oom = || Error::OutOfMemory { bytes: plan.total };
        let len = plan.total.checked_add(ALIGN).ok_or_else(oom)?;
        let layout = core::alloc::Layout::array::<u8>(len).map_err(|_| oom())?;
        // SAFETY: `layout` has a non-zero size (len >= ALIGN).
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(oom());
        }
        // SAFETY: `ptr` was allocated by the global allocator with the layout
        // of a `[u8]` of `len` elements (what `Box<[u8]>` frees with), and all
        // of them are initialised (zero).
        let buf = unsafe { alloc::boxed::Box::from_raw(core::ptr::slice_from_raw_parts_mut(ptr, len)) };
        let skip = buf.as_ptr().align_offset(ALIGN);
        if skip > ALIGN {
            return Err(oom());
        }
        Ok(Arena { storage: Storage::Heap { buf, skip, len: plan.total } })
    }

    /// Uses `buf` (e.g. a static in RAM on a microcontroller) as the slab.
    /// Fails if, after aligning its start, it is smaller than `plan.total`.
    pub fn from_static(buf: &'static mut [u8], plan: &Plan) -> Result<Arena, Error> {
        let skip = buf.as_ptr().align_offset(ALIGN);
        let got = buf.len().saturating_sub(skip);
        if skip > buf.len() || got < plan.total {
            return Err(Error::ArenaTooSmall { needed: plan.total, got });
        }
        let (_, rest) = buf.split_at_mut(skip);
        rest.fill(0);
        Ok(Arena { storage: Storage::Static(rest) })
    }

    /// The whole slab.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.storage {
            #[cfg(feature = "alloc")]
            Storage::Heap { buf, skip, len } => &mut buf[*skip..*skip + *len],
            Storage::Static(s) => s,
        }
    }

    /// The whole slab, read-only.
    pub fn bytes(&self) -> &[u8] {
        match &self.storage {
            #[cfg(feature = "alloc")]
            Storage::Heap { buf, skip, len } => &buf[*skip..*skip + *len],
            Storage::Static(s) => s,
        }
    }

    /// Size of the slab in bytes.
    pub fn len(&self) -> usize {
        match &self.storage {
            #[cfg(feature = "alloc")]
            Storage::Heap { len, .. } => *len,
            Storage::Static(s) => s.len(),
        }
    }

    /// Whether the slab is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bytes as "1.5 MiB".
struct Size(usize);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if b >= 1024.0 * 1024.0 * 1024.0 {
            write!(f, "{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
        } else if b >= 1024.0 * 1024.0 {
            write!(f, "{:.2} MiB", b / (1024.0 * 1024.0))
        } else if b >= 1024.0 {
            write!(f, "{:.1} KiB", b / 1024.0)
        } else {
            write!(f, "{} B", self.0)
        }
    }
}

impl fmt::Display for Plan {
    /// The table `ember info --plan` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.rows();
        let d = &self.dims;
        writeln!(
            f,
            "memory plan: context {} tokens, batch {}, KV cache {}, {} thread{}{}",
            self.opts.ctx_len,
            b,
            self.opts.kv_type,
            self.opts.threads,
            if self.opts.threads == 1 { "" } else { "s" },
            if self.opts.logits_all { ", logits for every batch token" } else { "" }
        )?;
        writeln!(f, "  {:<28} {:<28} {:>12}", "buffer", "shape", "size")?;
        let mut row = |name: &str, shape: fmt::Arguments<'_>, r: Region| -> fmt::Result {
            // Shapes are formatted into a fixed buffer: no allocation.
            let mut buf = [0u8; 64];
            let mut w = FixedWriter { buf: &mut buf, len: 0 };
            let _ = fmt::write(&mut w, shape);
            let len = w.len;
            let s = core::str::from_utf8(&buf[..len]).unwrap_or("?");
            writeln!(f, "  {:<28} {:<28} {:>12}", name, s, Size(r.bytes))
        };
        row("residual x", format_args!("{b} x {} f32", self.n_embd), self.x)?;
        row("normed input xb", format_args!("{b} x {} f32", self.n_embd), self.xb)?;
        row("block output xb2", format_args!("{b} x {} f32", self.n_embd), self.xb2)?;
        row("queries", format_args!("{b} x {} f32", d.q), self.q)?;
        row("new keys", format_args!("{b} x {} f32", d.k), self.k)?;
        row("new values", format_args!("{b} x {} f32", d.v), self.v)?;
        row("attention output", format_args!("{b} x {} f32", d.att), self.att)?;
        row("ffn gate", format_args!("{b} x {} f32", d.ff), self.gate)?;
        row("ffn up", format_args!("{b} x {} f32", d.ff), self.up)?;
        row("quantized activations", format_args!("3 x {}", Size(self.act_slot_bytes)), self.act)?;
        row("logits", format_args!("{} x {} f32", self.logits_rows, self.n_vocab), self.logits)?;
        row("rope cos/sin", format_args!("2 x {b} x {} f32", d.rot), self.rope)?;
        row("attention scratch", format_args!("{} x {}", self.opts.threads, Size(self.attn_per_thread)), self.attn)?;
        if self.gelu.bytes > 0 {
            row("gelu table", format_args!("65536 f16"), self.gelu)?;
        }
        let kv = &self.kv_layout;
        let full = self.n_layer - self.n_swa_layers;
        if self.n_swa_layers > 0 {
            row(
                "kv cache (sliding layers)",
                format_args!("{} x 2 x {} x {} {}", self.n_swa_layers, kv.swa_cells, d.k, kv.ty),
                Region { offset: 0, bytes: self.n_swa_layers * swa_layer_bytes(kv) },
            )?;
            row(
                "kv cache (full layers)",
                format_args!("{} x 2 x {} x {} {}", full, kv.full_cells, d.k, kv.ty),
                Region { offset: 0, bytes: full * full_layer_bytes(kv) },
            )?;
            writeln!(
                f,
                "  kv cache total {} ({} saved by sliding windows: {} if every layer kept the whole context)",
                Size(kv.total_bytes()),
                Size(kv.total_bytes_without_window() - kv.total_bytes()),
                Size(kv.total_bytes_without_window()),
            )?;
        } else {
            row("kv cache", format_args!("{} x 2 x {} x {} {}", self.n_layer, kv.full_cells, d.k, kv.ty), self.kv)?;
        }
        writeln!(f, "  {:<28} {:<28} {:>12}", "total", "", Size(self.total))
    }
}

fn swa_layer_bytes(kv: &KvLayout) -> usize {
    (0..kv.n_layer()).find(|&il| kv.is_swa(il)).map(|il| kv.layer_ranges(il)).map_or(0, |(k, v)| k.len() + v.len())
}

fn full_layer_bytes(kv: &KvLayout) -> usize {
    (0..kv.n_layer()).find(|&il| !kv.is_swa(il)).map(|il| kv.layer_ranges(il)).map_or(0, |(k, v)| k.len() + v.len())
}

struct FixedWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for FixedWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::tests::{gemma3_like, smollm2_like};

    #[test]
    fn smollm2_plan_sizes() {
        let c = smollm2_like();
        let p = Plan::with_options(&c, PlanOptions { threads: 2, ..PlanOptions::new(2048, 64) }).unwrap();
        assert_eq!(p.x.bytes, 64 * 576 * 4);
        assert_eq!(p.q.bytes, 64 * 576 * 4);
        assert_eq!(p.k.bytes, 64 * 192 * 4);
        assert_eq!(p.gate.bytes, 64 * 1536 * 4);
        // widest input: the FFN hidden (1536) as Q8_1 (36 bytes per 32)
        assert_eq!(p.act_slot_bytes, 64 * 48 * 36);
        assert_eq!(p.logits.bytes, 49152 * 4);
        assert_eq!(p.kv.bytes, 30 * 2 * 2048 * 192 * 2);
        assert_eq!(p.gelu.bytes, 0);
        // per thread, for batches of 64 tokens or more, the tiled path's
        // scratch (21 tokens x 3 heads = 63 rows, padded to 64): transposed
        // queries, tile scores, K and V tiles (64 x 64 f32 each), 63 x 64
        // accumulators, 3 x 64 f32 and 64 f64 per-row values
        assert_eq!(p.attn.bytes, 2 * (4 * 64 * 64 * 4 + 63 * 64 * 4 + 3 * 64 * 4 + 64 * 8));
        // under 64 tokens: queries of 3 heads padded to 4 (interleaved f32
        // path), 3 accumulators, two widened rows; 64 f32 each
        let p32 = Plan::with_options(&c, PlanOptions { threads: 2, ..PlanOptions::new(2048, 32) }).unwrap();
        assert_eq!(p32.attn.bytes, 2 * (4 * 256 + 3 * 256 + 2 * 256));
        // regions are aligned, ordered, disjoint, and inside the total
        let regions =
            [p.x, p.xb, p.xb2, p.q, p.k, p.v, p.att, p.gate, p.up, p.act, p.logits, p.rope, p.attn, p.gelu, p.kv];
        let mut end = 0;
        for r in regions {
            assert_eq!(r.offset % ALIGN, 0);
            assert!(r.offset >= end);
            end = r.offset + r.bytes;
        }
        assert_eq!(end, p.total);
        let text = std::format!("{p}");
        assert!(text.contains("kv cache") && text.contains("total"), "{text}");
    }

    #[test]
    fn gemma3_plan_keeps_only_the_window_on_local_layers() {
        let g = gemma3_like();
        let p = Plan::new(&g, 8192, 128).unwrap();
        let row = 256 * 2;
        assert_eq!(p.kv.bytes, 15 * 2 * (512 + 127) * row + 3 * 2 * 8192 * row);
        assert_eq!(p.gelu.bytes, 65536 * 2);
        let text = std::format!("{p}");
        assert!(text.contains("saved by sliding windows"), "{text}");
        assert!(text.contains("15 x 2 x 639 x 256 f16"), "{text}");
    }

    #[test]
    fn batch_is_capped_by_context_and_bad_options_fail() {
        let c = smollm2_like();
        let p = Plan::new(&c, 16, 512).unwrap();
        assert_eq!(p.opts.batch, 16);
        assert!(Plan::new(&c, 0, 1).is_err());
        assert!(Plan::new(&c, 16, 0).is_err());
        assert!(matches!(Plan::new(&c, usize::MAX / 2, 1), Err(Error::PlanTooLarge)));
        let threads = |t| Plan::with_options(&c, PlanOptions { threads: t, ..PlanOptions::new(16, 1) });
        assert!(threads(crate::threads::MAX_THREADS).is_ok());
        assert!(threads(crate::threads::MAX_THREADS + 1).is_err());
    }

    #[test]
    fn arena_carves_every_buffer() {
        let c = smollm2_like();
        let p = Plan::new(&c, 128, 8).unwrap();
        let mut a = Arena::new(&p).unwrap();
        assert!(a.len() >= p.total);
        let b = p.carve(a.bytes_mut()).unwrap();
        assert_eq!(b.x.len(), 8 * 576);
        assert_eq!(b.logits.len(), 49152);
        assert_eq!(b.kv.len(), p.kv.bytes);
        assert_eq!(b.act.as_ptr() as usize % ALIGN, 0);
        let mut small = std::vec![0u8; 100];
        assert!(p.carve(&mut small).is_err());
    }
}
