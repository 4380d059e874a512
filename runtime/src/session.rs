//! A generation session: a model's config and weights, a memory plan and its
//! arena, the kernel table and the threads, and the position reached in the
//! KV cache.
//!
//! ```no_run
//! # fn main() -> Result<(), ember::Error> {
//! use ember::sampler::{SamplerParams, SamplerScratch};
//! use ember::session::{Session, SessionOptions};
//! let model = ember::Model::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let mut session = Session::new(&model, SessionOptions::default())?;
//! session.prefill(&[1, 9690, 28])?; // prompt ids
//! let mut scratch = SamplerScratch::new(session.config().n_vocab, 64);
//! let mut sampler = scratch.sampler(SamplerParams::greedy())?;
//! for _ in 0..32 {
//!     let token = session.decode_next(&mut sampler)?; // allocation-free
//!     # let _ = token;
//! }
//! # Ok(()) }
//! ```
//!
//! Everything is sized in [`Session::new`]; after that, [`Session::prefill`]
//! and [`Session::decode_next`] allocate nothing.

use crate::gguf::File;
use crate::kv_cache::KvType;
use crate::memory::{Arena, Plan, PlanOptions};
use crate::model::forward::{forward, Model as FwdModel};
use crate::model::{Activation, Config, Weights};
use crate::sampler::Sampler;
use crate::Error;
use ember_quant::Kernels;

/// Choices made when a session is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Context length in tokens; 0 means the model's training context capped
    /// at 4096 (an error if the model gives none).
    pub ctx_len: usize,
    /// Prompt tokens per forward call (capped at the context length).
    pub batch: usize,
    /// KV cache element type (f16 by default, as llama.cpp).
    pub kv_type: KvType,
    /// Threads for matrix work, at most [`MAX_THREADS`](crate::threads::MAX_THREADS);
    /// 0 means the number of physical cores (capped there).
    pub threads: usize,
    /// Keep the logits of every prompt token of the last batch (for perplexity).
    pub logits_all: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { ctx_len: 0, batch: 256, kv_type: KvType::F16, threads: 0, logits_all: false }
    }
}

impl SessionOptions {
    fn resolve(&self, cfg: &Config) -> Result<PlanOptions, Error> {
        let ctx_len = match (self.ctx_len, cfg.ctx_train) {
            // As llama.cpp: "n_ctx and n_ctx_train cannot both be zero".
            (0, 0) => return Err(Error::BadOption("the model's context_length is 0: give a context length")),
            (0, train) => train.min(4096),
            (asked, _) => asked,
        };
        #[cfg(feature = "std")]
        let threads = if self.threads == 0 {
            crate::threads::physical_cores().min(crate::threads::MAX_THREADS)
        } else {
            self.threads
        };
        #[cfg(not(feature = "std"))]
        let threads = 1;
        Ok(PlanOptions { ctx_len, batch: self.batch, kv_type: self.kv_type, threads, logits_all: self.logits_all })
    }
}

/// The memory plan a session with `opts` would use for the model in `file`
/// (what `ember info --plan` prints).
pub fn plan_for(file: &File<'_>, opts: &SessionOptions) -> Result<Plan, Error> {
    let cfg = Config::from_gguf(file)?;
    Plan::with_options(&cfg, opts.resolve(&cfg)?)
}

#[cfg(feature = "std")]
type Pool = crate::threads::ThreadPool;
#[cfg(not(feature = "std"))]
type Pool = crate::threads::Serial;

/// A model loaded for generation. See the module docs.
pub struct Session<'m> {
    cfg: Config,
    weights: Weights<'m>,
    kernels: Kernels,
    plan: Plan,
    arena: Arena,
    pool: Pool,
    pos: usize,
    /// Rows of valid logits (0 before the first forward call).
    logit_rows: usize,
}

impl<'m> Session<'m> {
    /// A session over `model` (opened with [`crate::Model::open`] or
    /// [`crate::Model::from_static`]).
    pub fn new(model: &'m crate::Model, opts: SessionOptions) -> Result<Session<'m>, Error> {
        Session::from_file(model.gguf(), opts)
    }

    /// A session over a parsed GGUF file, with the best kernels for this
    /// CPU (`EMBER_KERNELS` may force a lower tier).
    pub fn from_file(file: File<'m>, opts: SessionOptions) -> Result<Session<'m>, Error> {
        #[cfg(feature = "std")]
        let kernels = Kernels::detect()?;
        #[cfg(not(feature = "std"))]
        let kernels = Kernels::from_target_features();
        Session::with_kernels(file, opts, kernels)
    }

    /// A session over a parsed GGUF file using the given kernel table (for
    /// comparing tiers).
    pub fn with_kernels(file: File<'m>, opts: SessionOptions, kernels: Kernels) -> Result<Session<'m>, Error> {
        let cfg = Config::from_gguf(&file)?;
        let weights = Weights::from_gguf(&file, &cfg)?;
        let popts = opts.resolve(&cfg)?;
        let plan = Plan::with_options(&cfg, popts)?;
        let mut arena = Arena::new(&plan)?;
        {
            let bufs = plan.carve(arena.bytes_mut())?;
            if cfg.activation == Activation::GeluTanh {
                crate::ops::gelu_table(bufs.gelu);
            }
        }
        #[cfg(feature = "std")]
        let pool = crate::threads::ThreadPool::try_new(plan.opts.threads).map_err(|e| Error::io("spawn", &e))?;
        #[cfg(not(feature = "std"))]
        let pool = crate::threads::Serial;
        Ok(Session { cfg, weights, kernels, plan, arena, pool, pos: 0, logit_rows: 0 })
    }

    /// The model's config.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The memory plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The kernel table in use.
    pub fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    /// The weights.
    pub fn weights(&self) -> &Weights<'m> {
        &self.weights
    }

    /// Context length.
    pub fn ctx_len(&self) -> usize {
        self.plan.opts.ctx_len
    }

    /// Tokens in the KV cache (the position of the next token).
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Forgets everything in the KV cache.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.logit_rows = 0;
    }

    /// Keeps only the first `pos` tokens of the KV cache, so generation can
    /// continue from there (e.g. to redo a turn). The logits are cleared:
    /// feed at least one token before sampling. Fails if `pos` is past the
    /// current position, or if a sliding-window layer no longer holds what
    /// position `pos` would need to see.
    pub fn truncate(&mut self, pos: usize) -> Result<(), Error> {
        if pos > self.pos {
            return Err(Error::BadOption("cannot truncate the KV cache past its current position"));
        }
        let kv = &self.plan.kv_layout;
        if self.cfg.sliding_window > 0 && kv.swa_cells < kv.full_cells {
            // Positions pos-window+1 .. pos-1 must not have been overwritten by
            // positions up to self.pos-1 in a ring of swa_cells.
            let oldest_needed = pos.saturating_sub(self.cfg.sliding_window);
            if self.pos > oldest_needed + kv.swa_cells {
                return Err(Error::BadOption(
                    "the sliding-window KV cache no longer holds the positions needed to truncate there",
                ));
            }
        }
        self.pos = pos;
        self.logit_rows = 0;
        Ok(())
    }

    /// Runs `tokens` through the model in batches, appending them to the KV
    /// cache; afterwards [`Session::logits`] holds the last token's logits.
    /// Fails, without processing anything, if they do not fit in the context.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<(), Error> {
        let needed = self.pos.saturating_add(tokens.len());
        if needed > self.plan.opts.ctx_len {
            return Err(Error::ContextFull { ctx_len: self.plan.opts.ctx_len, needed });
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= self.cfg.n_vocab) {
            return Err(Error::TokenOutOfRange { token: t, n_vocab: self.cfg.n_vocab });
        }
        let fm = FwdModel {
            cfg: &self.cfg,
            weights: &self.weights,
            kernels: &self.kernels,
            par: &self.pool,
            plan: &self.plan,
        };
        // With sliding-window attention, llama.cpp's server evaluates the last
        // 4 (and the last 4 + 512) tokens of a prompt as batches of their own
        // (to checkpoint the SWA cache; server-context.cpp, PR 20288). The
        // batch split decides which activation rows its repacked Q4_K gemm
        // takes four at a time, so ember splits there too to give its ids
        // (not when every row's logits are kept: llama-perplexity does not).
        let n = tokens.len();
        let split = self.cfg.sliding_window > 0 && self.plan.logits_rows <= 1;
        let cuts = if split { [n.saturating_sub(516), n.saturating_sub(4)] } else { [0, 0] };
        let mut start = 0;
        for end in cuts.into_iter().chain([n]) {
            if end <= start {
                continue;
            }
            for chunk in tokens[start..end].chunks(self.plan.opts.batch) {
                let mut bufs = self.plan.carve(self.arena.bytes_mut())?;
                forward(&fm, &mut bufs, chunk, self.pos)?;
                self.pos += chunk.len();
                self.logit_rows = if self.plan.logits_rows > 1 { chunk.len() } else { 1 };
            }
            start = end;
        }
        Ok(())
    }

    /// Samples the next token from the current logits, feeds it to the model
    /// (so the logits after it are ready and it is in the KV cache), and
    /// returns it. Allocation-free.
    pub fn decode_next(&mut self, sampler: &mut Sampler<'_>) -> Result<u32, Error> {
        if self.logit_rows == 0 {
            return Err(Error::BadOption("no logits to sample from: prefill at least one token first"));
        }
        let token = sampler.sample(self.logits())?;
        self.prefill(core::slice::from_ref(&token))?;
        Ok(token)
    }

    /// Logits of the last token processed (`n_vocab` values; empty before
    /// the first forward call).
    pub fn logits(&self) -> &[f32] {
        let all = self.all_logits();
        let nv = self.cfg.n_vocab;
        if all.len() < nv {
            return &[];
        }
        &all[all.len() - nv..]
    }

    /// Logits of every token of the last forward call when the session keeps
    /// them (`logits_all`), else of its last token: `rows * n_vocab` values.
    pub fn all_logits(&self) -> &[f32] {
        let r = self.plan.logits;
        let bytes = &self.arena.bytes()[r.offset..r.offset + r.bytes];
        let all: &[f32] = bytemuck::try_cast_slice(bytes).unwrap_or(&[]);
        &all[..(self.logit_rows * self.cfg.n_vocab).min(all.len())]
    }
}
