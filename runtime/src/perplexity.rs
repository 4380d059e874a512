//! Perplexity of a model on a text, computed the way llama.cpp's
//! `llama-perplexity` does it (`tools/perplexity/perplexity.cpp`, function
//! `perplexity`, the default mode without `--ppl-stride`):
//!
//! 1. The whole text is tokenized once with the model's own BOS/EOS
//!    (`add_special`), special-token text left as plain text.
//! 2. It is cut into `n_tokens / ctx` chunks of `ctx` tokens (the tail is
//!    dropped); at least `2 * ctx` tokens are required.
//! 3. Each chunk is evaluated from an empty KV cache, in batches of at most
//!    `batch` tokens at positions `0..ctx`. When the model adds BOS, the
//!    chunk's first token is *replaced* by BOS (not prepended).
//! 4. Only the second half of each chunk is scored: the logits at positions
//!    `first = ctx / 2` to `ctx - 2` predict the tokens at `first + 1` to
//!    `ctx - 1`, so `ctx - first - 1` tokens per chunk.
//! 5. Each scored token adds `nll = -(logit[t] - max - ln Σ exp(logit - max))`
//!    (the exponentials summed in f64, `expf` on f32 differences, as
//!    llama.cpp's `log_softmax`) to a running sum, and `nll²` to another.
//!    After chunk `i` the running value `exp(Σnll / count)` is reported
//!    (llama.cpp prints `[i]value,`); at the end
//!    `PPL = exp(mean) ± PPL * sqrt((mean(nll²) - mean²) / (count - 1))`.
//!
//! The arithmetic ([`token_nll`], [`NllSum`], [`chunk_count`]) is `no_std`
//! without allocation; the driver [`evaluate`] takes any [`Evaluator`] and
//! is implemented for [`Session`](crate::session::Session) (feature `alloc`).

use crate::ops::math;
use crate::Error;

/// Natural logarithm and exponential in f64: the platform's (glibc's, as
/// llama.cpp's `log`/`exp`) with `std`, the `libm` crate's without.
mod math64 {
    #[cfg(feature = "std")]
    pub fn ln(x: f64) -> f64 {
        x.ln()
    }
    #[cfg(feature = "std")]
    pub fn exp(x: f64) -> f64 {
        x.exp()
    }
    #[cfg(feature = "std")]
    pub fn sqrt(x: f64) -> f64 {
        x.sqrt()
    }
    #[cfg(not(feature = "std"))]
    pub use libm::{exp, log as ln, sqrt};
}

/// The first scored position of a chunk of `ctx` tokens: `ctx / 2`. Its
/// logits predict the token at `ctx / 2 + 1`.
pub const fn first_scored(ctx: usize) -> usize {
    ctx / 2
}

/// Tokens scored per chunk of `ctx` tokens: `ctx - ctx / 2 - 1`.
pub const fn scored_per_chunk(ctx: usize) -> usize {
    ctx.saturating_sub(first_scored(ctx) + 1)
}

/// Number of chunks of `ctx` tokens in a text of `n_tokens` tokens
/// (`n_tokens / ctx`, as llama.cpp). Fails if `ctx` scores no token
/// (`ctx < 3`) or the text has fewer than `2 * ctx` tokens (llama.cpp's rule).
pub fn chunk_count(n_tokens: usize, ctx: usize) -> Result<usize, Error> {
    scores_some(ctx)?;
    if n_tokens < ctx.saturating_mul(2) {
        return Err(Error::BadOption("perplexity needs a text of at least 2 x ctx tokens"));
    }
    Ok(n_tokens / ctx)
}

/// Fails if a chunk of `ctx` tokens scores no token (`ctx < 3`).
fn scores_some(ctx: usize) -> Result<(), Error> {
    if scored_per_chunk(ctx) == 0 {
        return Err(Error::BadOption(
            "perplexity needs a context of at least 3 tokens (the second half of each chunk is scored)",
        ));
    }
    Ok(())
}

/// Negative log-likelihood of `target` under one row of `logits`, computed as
/// llama.cpp's `log_softmax`: `max` over the row in f32, `Σ expf(l - max)`
/// accumulated in f64 in index order, then `-(logit[target] - max) + ln Σ`.
pub fn token_nll(logits: &[f32], target: u32) -> Result<f64, Error> {
    let t = target as usize;
    let Some(&logit) = logits.get(t) else {
        return Err(Error::TokenOutOfRange { token: target, n_vocab: logits.len() });
    };
    let mut max = logits[0];
    for &l in &logits[1..] {
        // std::max(max, l): keeps `max` unless `max < l`.
        if max < l {
            max = l;
        }
    }
    let mut sum = 0.0f64;
    for &l in logits {
        sum += math::expf(l - max) as f64;
    }
    if sum.is_nan() || max == f32::INFINITY {
        // A NaN or +infinite logit, or -infinity everywhere: an error naming it.
        crate::sampler::check_logits(logits)?;
    }
    Ok(-(((logit - max) as f64) - math64::ln(sum)))
}

/// The running sums of negative log-likelihoods (llama.cpp's `nll`, `nll2`,
/// `count`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NllSum {
    /// Σ nll.
    pub nll: f64,
    /// Σ nll².
    pub nll2: f64,
    /// Tokens scored.
    pub count: usize,
}

/// A perplexity with its uncertainty.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// `exp(mean nll)`.
    pub ppl: f64,
    /// One standard error of `ppl`: `ppl * sqrt(var(nll) / (count - 1))`;
    /// `None` when the variance is not positive (llama.cpp then prints
    /// "Unexpected negative standard deviation of log(prob)"), or fewer than
    /// two tokens were scored.
    pub uncertainty: Option<f64>,
}

impl NllSum {
    /// Adds one token's negative log-likelihood.
    pub fn add(&mut self, nll: f64) {
        self.nll += nll;
        self.nll2 += nll * nll;
        self.count += 1;
    }

    /// Adds another sum (e.g. one thread's share).
    pub fn merge(&mut self, other: &NllSum) {
        self.nll += other.nll;
        self.nll2 += other.nll2;
        self.count += other.count;
    }

    /// `exp(Σnll / count)`: the value llama.cpp prints after each chunk
    /// (NaN before any token is scored).
    pub fn ppl(&self) -> f64 {
        math64::exp(self.nll / self.count as f64)
    }

    /// The final estimate, with llama.cpp's uncertainty formula.
    pub fn estimate(&self) -> Estimate {
        let n = self.count as f64;
        let mean = self.nll / n;
        let ppl = math64::exp(mean);
        let var = self.nll2 / n - mean * mean;
        let uncertainty = (var > 0.0 && self.count > 1).then(|| math64::sqrt(var / (n - 1.0)) * ppl);
        Estimate { ppl, uncertainty }
    }
}

/// What [`evaluate`] reports after each chunk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkDone {
    /// Chunk number, from 1 (as llama.cpp prints it).
    pub chunk: usize,
    /// Number of chunks.
    pub n_chunks: usize,
    /// Sums over every chunk so far; `running.ppl()` is the printed value.
    pub running: NllSum,
}

/// Something that turns tokens into logits, one row per token: a model
/// [`Session`](crate::session::Session), or a synthetic model in tests.
pub trait Evaluator {
    /// Logits per row.
    fn n_vocab(&self) -> usize;
    /// Most tokens one [`Evaluator::eval`] call may take while returning
    /// a row of logits for each.
    fn max_batch(&self) -> usize;
    /// Empties the KV cache: the next token is at position 0.
    fn reset(&mut self);
    /// Appends `tokens` to the KV cache and returns the logits of every one
    /// of them: `tokens.len() * n_vocab` values.
    fn eval(&mut self, tokens: &[u32]) -> Result<&[f32], Error>;
}

#[cfg(feature = "alloc")]
impl Evaluator for crate::session::Session<'_> {
    fn n_vocab(&self) -> usize {
        self.config().n_vocab
    }

    /// The rows of logits the session keeps: its batch with
    /// `SessionOptions::logits_all`, else 1 (correct but slow).
    fn max_batch(&self) -> usize {
        self.plan().logits_rows.max(1)
    }

    fn reset(&mut self) {
        crate::session::Session::reset(self);
    }

    fn eval(&mut self, tokens: &[u32]) -> Result<&[f32], Error> {
        self.prefill(tokens)?;
        Ok(self.all_logits())
    }
}

/// What to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Tokens per chunk (llama-perplexity's `-c`).
    pub ctx: usize,
    /// Tokens per evaluation call (`-b`); capped at the context and at the
    /// evaluator's [`Evaluator::max_batch`].
    pub batch: usize,
    /// The token that replaces each chunk's first token: the model's BOS
    /// when it adds one (see [`bos_for`]), else `None`.
    pub bos: Option<u32>,
}

/// Runs llama-perplexity's method (module docs) over `tokens`, calling
/// `on_chunk` after each chunk, and returns the final sums (see
/// [`NllSum::estimate`]). `tokens` is the text tokenized with the model's BOS
/// (see [`tokenize`]); every whole chunk of `ctx` tokens in it is scored, so
/// a caller scoring fewer chunks passes a prefix. llama.cpp's rule that the
/// whole text has at least `2 * ctx` tokens is [`chunk_count`]'s: a prefix of
/// one chunk is accepted here (`ember perplexity --chunks 1`).
#[cfg(feature = "alloc")]
pub fn evaluate<E: Evaluator + ?Sized>(
    model: &mut E,
    tokens: &[u32],
    opts: &Options,
    on_chunk: &mut dyn FnMut(&ChunkDone),
) -> Result<NllSum, Error> {
    let ctx = opts.ctx;
    scores_some(ctx)?;
    let n_chunks = tokens.len() / ctx;
    if n_chunks == 0 {
        return Err(Error::BadOption("perplexity needs at least one chunk of ctx tokens"));
    }
    let n_vocab = model.n_vocab();
    if n_vocab == 0 {
        return Err(Error::BadOption("the model has an empty vocabulary"));
    }
    let batch = opts.batch.min(ctx).min(model.max_batch());
    if batch == 0 {
        return Err(Error::BadOption("the batch size must be at least 1"));
    }
    let first = first_scored(ctx);
    let mut sum = NllSum::default();
    let mut buf = alloc::vec![0u32; ctx];
    for c in 0..n_chunks {
        let chunk = &tokens[c * ctx..(c + 1) * ctx];
        buf.copy_from_slice(chunk);
        if let Some(bos) = opts.bos {
            buf[0] = bos;
        }
        model.reset();
        let mut start = 0;
        while start < ctx {
            let end = (start + batch).min(ctx);
            let logits = model.eval(&buf[start..end])?;
            score_rows(logits, n_vocab, start, end, first, chunk, &mut sum)?;
            start = end;
        }
        on_chunk(&ChunkDone { chunk: c + 1, n_chunks, running: sum });
    }
    Ok(sum)
}

/// Scores the rows of `logits` (positions `start..end` of `chunk`) that
/// llama-perplexity scores: positions `first..ctx-1`, each against the next token.
#[cfg(feature = "alloc")]
fn score_rows(
    logits: &[f32],
    n_vocab: usize,
    start: usize,
    end: usize,
    first: usize,
    chunk: &[u32],
    sum: &mut NllSum,
) -> Result<(), Error> {
    if logits.len() != (end - start) * n_vocab {
        return Err(Error::BadOption("the evaluator returned the wrong number of logits for a batch"));
    }
    for pos in start.max(first)..end.min(chunk.len() - 1) {
        let row = &logits[(pos - start) * n_vocab..(pos - start + 1) * n_vocab];
        sum.add(token_nll(row, chunk[pos + 1])?);
    }
    Ok(())
}

/// The token llama-perplexity puts at the start of every chunk: BOS when the
/// model adds BOS. Fails if the model adds EOS (llama.cpp refuses those too).
#[cfg(feature = "alloc")]
pub fn bos_for(tokenizer: &crate::tokenizer::Tokenizer) -> Result<Option<u32>, Error> {
    if tokenizer.add_eos() {
        return Err(Error::BadOption("perplexity is not defined for models that add EOS to every text"));
    }
    Ok(if tokenizer.add_bos() { tokenizer.bos() } else { None })
}

/// Tokenizes a whole text as llama-perplexity does: with the model's own
/// BOS, special-token text kept as text. `text` is the file's contents with
/// one final `\n` removed, as llama.cpp's `-f` reads it (see
/// [`strip_final_newline`]).
#[cfg(feature = "alloc")]
pub fn tokenize(tokenizer: &crate::tokenizer::Tokenizer, text: &str) -> Result<alloc::vec::Vec<u32>, Error> {
    tokenizer.encode(text, true, false)
}

/// `text` without one trailing `\n`, as llama.cpp's `-f FILE` reads a prompt.
pub fn strip_final_newline(text: &str) -> &str {
    text.strip_suffix('\n').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A synthetic model: the logits of token `t` are 0 everywhere except
    /// `a` at `(t + 1) % n_vocab`. Records every call.
    struct Synthetic {
        n_vocab: usize,
        a: f32,
        max_batch: usize,
        pos: usize,
        calls: Vec<(usize, Vec<u32>)>,
        resets: usize,
        out: Vec<f32>,
    }

    impl Synthetic {
        fn new(n_vocab: usize, a: f32, max_batch: usize) -> Self {
            Synthetic { n_vocab, a, max_batch, pos: 0, calls: Vec::new(), resets: 0, out: Vec::new() }
        }
    }

    impl Evaluator for Synthetic {
        fn n_vocab(&self) -> usize {
            self.n_vocab
        }
        fn max_batch(&self) -> usize {
            self.max_batch
        }
        fn reset(&mut self) {
            self.pos = 0;
            self.resets += 1;
        }
        fn eval(&mut self, tokens: &[u32]) -> Result<&[f32], Error> {
            assert!(tokens.len() <= self.max_batch, "batch of {} > {}", tokens.len(), self.max_batch);
            self.calls.push((self.pos, tokens.to_vec()));
            self.pos += tokens.len();
            self.out.clear();
            for &t in tokens {
                let mut row = vec![0.0f32; self.n_vocab];
                row[(t as usize + 1) % self.n_vocab] = self.a;
                self.out.extend_from_slice(&row);
            }
            Ok(&self.out)
        }
    }

    #[test]
    fn uniform_logits_give_the_vocabulary_size() {
        for n_vocab in [2usize, 7, 1000, 49152] {
            let mut m = Synthetic::new(n_vocab, 0.0, 16);
            let tokens: Vec<u32> = (0..100u32).map(|i| (i * 31) % n_vocab as u32).collect();
            let opts = Options { ctx: 20, batch: 8, bos: Some(1) };
            let sum = evaluate(&mut m, &tokens, &opts, &mut |_| {}).unwrap();
            assert_eq!(sum.count, 5 * 9);
            let e = sum.estimate();
            assert!((e.ppl - n_vocab as f64).abs() < 1e-9 * n_vocab as f64, "{} vs {n_vocab}", e.ppl);
            // Every token has the same nll: the variance is (numerically) zero.
            assert!(e.uncertainty.is_none_or(|u| u < 1e-6 * n_vocab as f64), "{e:?}");
        }
    }

    #[test]
    fn chunks_batches_bos_and_scored_positions() {
        // ctx 10: first = 5; positions 5..=8 predict tokens 6..=9: 4 per chunk.
        // 35 tokens -> 3 chunks, the last 5 tokens dropped.
        let n_vocab = 50;
        let a = 3.0f32;
        let tokens: Vec<u32> = vec![
            7, 8, 9, 10, 4, 5, 6, 30, 31, 2, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 40, 41, 1, 2, 3, 4, 5, 6, 7, 8, 9,
            9, 9, 9, 9,
        ];
        let mut m = Synthetic::new(n_vocab, a, 64);
        let opts = Options { ctx: 10, batch: 4, bos: Some(49) };
        let mut seen = Vec::new();
        let sum = evaluate(&mut m, &tokens, &opts, &mut |d| seen.push(*d)).unwrap();

        // Expected calls: per chunk, tokens 0..4 with token 0 replaced by BOS
        // at position 0, then 4..8 at 4, 8..10 at 8.
        assert_eq!(m.resets, 3);
        let mut want_calls = Vec::new();
        for c in 0..3 {
            let ch = &tokens[c * 10..c * 10 + 10];
            want_calls.push((0, vec![49, ch[1], ch[2], ch[3]]));
            want_calls.push((4, ch[4..8].to_vec()));
            want_calls.push((8, ch[8..10].to_vec()));
        }
        assert_eq!(m.calls, want_calls);

        // Hand count: scored pairs (input at pos p, target at p+1) for p in 5..=8:
        // chunk 0: (5,6) hit, (6,30) miss, (30,31) hit, (31,2) miss
        // chunk 1: (16,17) hit, (17,18) hit, (18,19) hit, (19,20) hit
        // chunk 2: (5,6) hit, (6,7) hit, (7,8) hit, (8,9) hit
        let z = (n_vocab as f64 - 1.0) + (a as f64).exp();
        let hit = z.ln() - a as f64;
        let miss = z.ln();
        let per_chunk = [(2, 2), (4, 0), (4, 0)];
        assert_eq!(sum.count, 12);
        let mut nll = 0.0;
        for (c, &(h, mi)) in per_chunk.iter().enumerate() {
            nll += h as f64 * hit + mi as f64 * miss;
            let n = 4.0 * (c + 1) as f64;
            assert_eq!(seen[c].chunk, c + 1);
            assert_eq!(seen[c].n_chunks, 3);
            let (got, want) = (seen[c].running.ppl(), (nll / n).exp());
            // f32 logits and expf: agreement to f32 precision.
            assert!((got - want).abs() < 1e-6 * want, "chunk {c}: {got} vs {want}");
        }
        let mean = nll / 12.0;
        let mean2 = (10.0 * hit * hit + 2.0 * miss * miss) / 12.0;
        let var = mean2 - mean * mean;
        let e = sum.estimate();
        assert!((e.ppl - mean.exp()).abs() < 1e-6 * mean.exp(), "{e:?} vs {}", mean.exp());
        let unc = (var / 11.0).sqrt() * mean.exp();
        assert!((e.uncertainty.unwrap() - unc).abs() < 1e-5 * unc, "{e:?} vs {unc}");
    }

    #[test]
    fn without_bos_the_first_token_is_kept_and_batches_fill() {
        let tokens: Vec<u32> = (0..16).collect();
        let mut m = Synthetic::new(20, 1.0, 64);
        let opts = Options { ctx: 8, batch: 64, bos: None };
        let sum = evaluate(&mut m, &tokens, &opts, &mut |_| {}).unwrap();
        assert_eq!(m.calls, vec![(0, tokens[..8].to_vec()), (0, tokens[8..].to_vec())]);
        assert_eq!(m.resets, 2);
        assert_eq!(sum.count, 2 * 3);
        // Every target is input + 1: all hits.
        let hit = (19.0f64 + 1.0f64.exp()).ln() - 1.0;
        assert!((sum.ppl() - hit.exp()).abs() < 1e-6 * hit.exp(), "{} vs {}", sum.ppl(), hit.exp());
    }

    #[test]
    fn batch_capped_by_the_evaluator() {
        let tokens: Vec<u32> = (0..24).collect();
        let mut m = Synthetic::new(30, 1.0, 1);
        let opts = Options { ctx: 12, batch: 512, bos: Some(0) };
        let sum = evaluate(&mut m, &tokens, &opts, &mut |_| {}).unwrap();
        assert_eq!(m.calls.len(), 24);
        assert!(m.calls.iter().all(|(_, t)| t.len() == 1));
        assert_eq!(sum.count, 2 * 5);
    }

    #[test]
    fn odd_context() {
        // ctx 7: first = 3; positions 3..=5 scored: 3 per chunk.
        assert_eq!(first_scored(7), 3);
        assert_eq!(scored_per_chunk(7), 3);
        assert_eq!(scored_per_chunk(256), 127);
        let tokens: Vec<u32> = (0..15).collect();
        let mut m = Synthetic::new(16, 0.0, 4);
        let sum = evaluate(&mut m, &tokens, &Options { ctx: 7, batch: 3, bos: None }, &mut |_| {}).unwrap();
        assert_eq!(sum.count, 6);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(chunk_count(100, 2).is_err());
        assert!(chunk_count(100, 0).is_err());
        assert!(chunk_count(511, 256).is_err());
        assert_eq!(chunk_count(512, 256).unwrap(), 2);
        assert_eq!(chunk_count(2303, 256).unwrap(), 8);
        assert!(token_nll(&[0.0, 1.0], 2).is_err());
        let mut m = Synthetic::new(10, 0.0, 4);
        let e = evaluate(&mut m, &[1, 2, 3], &Options { ctx: 4, batch: 4, bos: None }, &mut |_| {});
        assert!(e.is_err());
        let e = evaluate(&mut m, &[1; 8], &Options { ctx: 4, batch: 0, bos: None }, &mut |_| {});
        assert!(e.is_err());
        let e = evaluate(&mut m, &[1; 8], &Options { ctx: 2, batch: 2, bos: None }, &mut |_| {});
        assert!(e.is_err());
        // One chunk is scored: the 2 x ctx rule is chunk_count's, for the whole text.
        let one = evaluate(&mut m, &[1, 2, 3, 4], &Options { ctx: 4, batch: 4, bos: None }, &mut |_| {});
        assert_eq!(one.unwrap().count, scored_per_chunk(4));
        // A target outside the vocabulary is an error, not a panic.
        let e = evaluate(&mut m, &[1, 2, 3, 99, 1, 2, 3, 4], &Options { ctx: 4, batch: 4, bos: None }, &mut |_| {});
        assert!(matches!(e, Err(Error::TokenOutOfRange { token: 99, .. })), "{e:?}");
        // NaN or +infinite logits (a model with NaN weights) gave a NaN
        // perplexity; they are an error. A -infinite target logit is an
        // infinite loss, not an error.
        assert_eq!(token_nll(&[0.0, f32::NAN, 1.0], 0), Err(Error::BadLogits { token: Some(1) }));
        assert_eq!(token_nll(&[f32::NAN, 0.0], 1), Err(Error::BadLogits { token: Some(0) }));
        assert_eq!(token_nll(&[0.0, f32::INFINITY], 0), Err(Error::BadLogits { token: Some(1) }));
        assert_eq!(token_nll(&[f32::NEG_INFINITY; 2], 0), Err(Error::BadLogits { token: None }));
        assert_eq!(token_nll(&[f32::NEG_INFINITY, 0.0], 0), Ok(f64::INFINITY));
    }

    #[test]
    fn token_nll_matches_a_direct_log_softmax() {
        let logits = [1.5f32, -2.0, 0.25, 3.0, 3.0, -7.5];
        let z: f64 = logits.iter().map(|&l| (l as f64).exp()).sum();
        for t in 0..logits.len() {
            let want = z.ln() - logits[t] as f64;
            let got = token_nll(&logits, t as u32).unwrap();
            assert!((got - want).abs() < 1e-6, "{t}: {got} vs {want}");
        }
    }

    #[test]
    fn trailing_newline() {
        assert_eq!(strip_final_newline("a\n\n"), "a\n");
        assert_eq!(strip_final_newline("a"), "a");
    }
}
