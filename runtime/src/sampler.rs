//! Choosing the next token from the logits: greedy, or temperature sampling
//! after top-k, top-p and min-p truncation, with repetition / frequency /
//! presence penalties over a window of recent tokens, from a seeded PCG32.
//!
//! The order of the steps is llama.cpp's default sampler chain (`common/sampling.cpp`):
//! penalties → top-k → top-p → min-p → temperature → draw. The penalties
//! follow `llama_sampler_penalties_apply`: a logit `l > 0` is divided by the
//! repetition penalty, `l <= 0` multiplied by it, and `count * frequency +
//! (count > 0) * presence` is subtracted.
//!
//! Nothing allocates per token: the candidate list and the window of recent
//! tokens are buffers the caller provides ([`SamplerScratch`] makes them with
//! `alloc`). Sampling runs on one thread and depends only on the logits and
//! the seed, so a fixed seed gives the same tokens whatever the thread count.

use crate::ops::math;
use crate::Error;

/// Sampling settings. [`SamplerParams::greedy`] always takes the most likely token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerParams {
    /// Softmax temperature; `<= 0` means greedy.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (1: all).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0: none).
    pub min_p: f32,
    /// Repetition penalty (1: none).
    pub repeat_penalty: f32,
    /// Subtracted per occurrence in the window (0: none).
    pub frequency_penalty: f32,
    /// Subtracted once if the token occurs in the window (0: none).
    pub presence_penalty: f32,
    /// Number of recent tokens the penalties look at.
    pub penalty_last_n: usize,
    /// Seed of the random generator.
    pub seed: u64,
}

impl Default for SamplerParams {
    /// llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p
    /// 0.05, no penalties (window 64), seed 0.
    fn default() -> Self {
        SamplerParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplerParams {
    /// Greedy decoding: always the highest logit (the lowest id on ties).
    pub fn greedy() -> Self {
        SamplerParams { temperature: 0.0, top_k: 1, ..Self::default() }
    }

    fn penalties_on(&self) -> bool {
        self.penalty_last_n > 0
            && (self.repeat_penalty != 1.0 || self.frequency_penalty != 0.0 || self.presence_penalty != 0.0)
    }
}

/// One token and its (possibly adjusted) logit.
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Candidate {
    /// Token id.
    pub id: u32,
    /// Logit, after penalties.
    pub logit: f32,
}

/// PCG32 (XSH-RR), O'Neill's reference constants. Tiny, `no_std`, and the
/// same stream on every platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
    inc: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut r = Rng { state: 0, inc: (0xda3e_39cb_94b9_5bdb << 1) | 1 };
        r.next_u32();
        r.state = r.state.wrapping_add(seed);
        r.next_u32();
        r
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(self.inc);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// A uniform float in `[0, 1)` (24 random bits).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }
}

/// A sampler over caller-provided buffers.
pub struct Sampler<'s> {
    params: SamplerParams,
    rng: Rng,
    cand: &'s mut [Candidate],
    recent: &'s mut [u32],
    recent_len: usize,
    recent_next: usize,
}

/// A logit no token can be drawn by: NaN or +infinity.
fn unusable(l: f32) -> bool {
    l.is_nan() || l == f32::INFINITY
}

/// Refuses logits no token can be drawn from: a NaN or +infinity anywhere
/// (every later step, softmax or comparison, would turn it into an arbitrary
/// token), or -infinity everywhere. -infinity alone is a banned token.
pub(crate) fn check_logits(logits: &[f32]) -> Result<(), Error> {
    // One pass the compiler can vectorize; the index only on failure.
    let (bad, any_finite) =
        logits.iter().fold((false, false), |(bad, fin), &l| (bad | unusable(l), fin | (l > f32::NEG_INFINITY)));
    if bad {
        let t = logits.iter().position(|&l| unusable(l)).unwrap_or(0);
        return Err(Error::BadLogits { token: Some(t as u32) });
    }
    if !any_finite {
        return Err(Error::BadLogits { token: None });
    }
    Ok(())
}

fn desc(a: &Candidate, b: &Candidate) -> core::cmp::Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

impl<'s> Sampler<'s> {
    /// A sampler using `cand` (at least the vocabulary size) for candidates
    /// and `recent` (at least `params.penalty_last_n`, may be empty without
    /// penalties) for the penalty window.
    pub fn new(params: SamplerParams, cand: &'s mut [Candidate], recent: &'s mut [u32]) -> Result<Self, Error> {
        if params.penalties_on() && recent.len() < params.penalty_last_n {
            return Err(Error::BadOption("the penalty window buffer is shorter than penalty_last_n"));
        }
        if !(params.top_p > 0.0 && params.top_p <= 1.0) {
            return Err(Error::BadOption("top-p must be in (0, 1]"));
        }
        if !(0.0..=1.0).contains(&params.min_p) {
            return Err(Error::BadOption("min-p must be in [0, 1]"));
        }
        if params.repeat_penalty.is_nan() || params.repeat_penalty <= 0.0 || !params.temperature.is_finite() {
            return Err(Error::BadOption("the repetition penalty must be positive and the temperature finite"));
        }
        if !(params.frequency_penalty.is_finite() && params.presence_penalty.is_finite()) {
            return Err(Error::BadOption("the frequency and presence penalties must be finite numbers"));
        }
        Ok(Sampler { params, rng: Rng::new(params.seed), cand, recent, recent_len: 0, recent_next: 0 })
    }

    /// The settings.
    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Forgets the penalty window and reseeds the generator.
    pub fn reset(&mut self) {
        self.recent_len = 0;
        self.recent_next = 0;
        self.rng = Rng::new(self.params.seed);
    }

    /// Adds `token` to the penalty window (the sampler does this itself for
    /// the tokens it returns; call it for prompt tokens to penalize them too).
    pub fn accept(&mut self, token: u32) {
        let n = self.params.penalty_last_n.min(self.recent.len());
        if n == 0 {
            return;
        }
        self.recent[self.recent_next % n] = token;
        self.recent_next = (self.recent_next + 1) % n;
        self.recent_len = (self.recent_len + 1).min(n);
    }

    /// Chooses the next token from `logits` and adds it to the penalty window.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32, Error> {
        let t = self.choose(logits)?;
        self.accept(t);
        Ok(t)
    }

    fn choose(&mut self, logits: &[f32]) -> Result<u32, Error> {
        let nv = logits.len();
        if nv == 0 {
            return Err(Error::BadOption("no logits to sample from"));
        }
        if self.cand.len() < nv {
            return Err(Error::BadOption("the candidate buffer is smaller than the vocabulary"));
        }
        let p = self.params;
        let cand = &mut self.cand[..nv];
        // The candidates are built and the logits checked in one pass; the
        // error (which token) is found only on failure.
        let (mut bad, mut any_finite) = (false, false);
        for (i, (c, &l)) in cand.iter_mut().zip(logits).enumerate() {
            *c = Candidate { id: i as u32, logit: l };
            bad |= unusable(l);
            any_finite |= l > f32::NEG_INFINITY;
        }
        if bad || !any_finite {
            check_logits(logits)?;
        }
        if p.penalties_on() {
            let window = &self.recent[..self.recent_len];
            for (j, &tok) in window.iter().enumerate() {
                if window[..j].contains(&tok) || tok as usize >= nv {
                    continue;
                }
                let count = window.iter().filter(|&&t| t == tok).count() as f32;
                let l = &mut cand[tok as usize].logit;
                *l = if *l <= 0.0 { *l * p.repeat_penalty } else { *l / p.repeat_penalty };
                *l -= count * p.frequency_penalty + p.presence_penalty;
            }
        }
        if p.temperature <= 0.0 || p.top_k == 1 {
            let best = cand.iter().copied().reduce(|a, b| if b.logit > a.logit { b } else { a });
            return Ok(best.map_or(0, |c| c.id));
        }

        // top-k (then sorted, most likely first)
        let mut len = nv;
        if p.top_k > 0 && p.top_k < nv {
            cand.select_nth_unstable_by(p.top_k - 1, desc);
            len = p.top_k;
        }
        let cand = &mut cand[..len];
        cand.sort_unstable_by(desc);

        // top-p on the softmax of the (penalized) logits, min-p relative to the best
        let max = cand[0].logit;
        let total: f32 = cand.iter().map(|c| math::expf(c.logit - max)).sum();
        let mut keep = len;
        if p.top_p < 1.0 {
            let mut cum = 0.0f32;
            for (i, c) in cand.iter().enumerate() {
                cum += math::expf(c.logit - max) / total;
                if cum >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
        }
        if p.min_p > 0.0 {
            let floor = max + math::logf(p.min_p);
            keep = keep.min(cand.iter().take_while(|c| c.logit >= floor).count().max(1));
        }
        let cand = &cand[..keep];

        // temperature, softmax, draw
        let inv_t = 1.0 / p.temperature;
        let sum: f32 = cand.iter().map(|c| math::expf((c.logit - max) * inv_t)).sum();
        let r = self.rng.next_f32() * sum;
        let mut cum = 0.0f32;
        for c in cand {
            cum += math::expf((c.logit - max) * inv_t);
            if r < cum {
                return Ok(c.id);
            }
        }
        Ok(cand[cand.len() - 1].id)
    }
}

/// Heap buffers for a [`Sampler`] (feature `alloc`): made once, reused for
/// every token.
#[cfg(feature = "alloc")]
pub struct SamplerScratch {
    cand: alloc::vec::Vec<Candidate>,
    recent: alloc::vec::Vec<u32>,
}

#[cfg(feature = "alloc")]
impl SamplerScratch {
    /// Buffers for a vocabulary of `n_vocab` tokens and a penalty window of `last_n`.
    pub fn new(n_vocab: usize, last_n: usize) -> SamplerScratch {
        SamplerScratch { cand: alloc::vec![Candidate::default(); n_vocab], recent: alloc::vec![0; last_n] }
    }

    /// A sampler over these buffers.
    pub fn sampler(&mut self, params: SamplerParams) -> Result<Sampler<'_>, Error> {
        if self.recent.len() < params.penalty_last_n {
            self.recent.resize(params.penalty_last_n, 0);
        }
        Sampler::new(params, &mut self.cand, &mut self.recent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn logits(n: usize, seed: u64) -> Vec<f32> {
        let mut r = Rng::new(seed);
        (0..n).map(|_| r.next_f32() * 10.0 - 5.0).collect()
    }

    fn argmax(x: &[f32]) -> u32 {
        let mut b = 0;
        for i in 1..x.len() {
            if x[i] > x[b] {
                b = i;
            }
        }
        b as u32
    }

    #[test]
    fn greedy_is_argmax() {
        let mut s = SamplerScratch::new(1000, 64);
        let mut smp = s.sampler(SamplerParams::greedy()).unwrap();
        for seed in 0..20 {
            let l = logits(1000, seed);
            assert_eq!(smp.sample(&l).unwrap(), argmax(&l));
        }
        // ties: the lowest id
        assert_eq!(smp.sample(&[1.0, 3.0, 3.0, 2.0]).unwrap(), 1);
    }

    /// NaN or +infinite logits (a model with NaN weights) were turned into
    /// an arbitrary token; they are an error naming the first bad token, for
    /// greedy and sampled choices alike. -infinity bans a token, and only
    /// -infinity everywhere is an error.
    #[test]
    fn nan_or_infinite_logits_are_an_error() {
        let mut s = SamplerScratch::new(8, 64);
        for params in [SamplerParams::greedy(), SamplerParams { seed: 3, ..Default::default() }] {
            let mut smp = s.sampler(params).unwrap();
            let mut l = [0.5f32, 1.0, -2.0, 0.0];
            assert!(smp.sample(&l).is_ok());
            l[1] = f32::NEG_INFINITY;
            assert_ne!(smp.sample(&l).unwrap(), 1, "a -inf logit is a banned token");
            l[2] = f32::NAN;
            assert_eq!(smp.sample(&l), Err(Error::BadLogits { token: Some(2) }));
            l[2] = 0.0;
            l[3] = f32::INFINITY;
            assert_eq!(smp.sample(&l), Err(Error::BadLogits { token: Some(3) }));
            assert_eq!(smp.sample(&[f32::NEG_INFINITY; 4]), Err(Error::BadLogits { token: None }));
        }
        let nan_penalty = SamplerParams { frequency_penalty: f32::NAN, ..Default::default() };
        assert!(matches!(s.sampler(nan_penalty), Err(Error::BadOption(_))));
    }

    #[test]
    fn top_k_one_is_greedy_at_any_temperature() {
        let mut s = SamplerScratch::new(500, 64);
        let mut smp = s.sampler(SamplerParams { temperature: 1.5, top_k: 1, seed: 7, ..Default::default() }).unwrap();
        for seed in 0..20 {
            let l = logits(500, seed);
            assert_eq!(smp.sample(&l).unwrap(), argmax(&l));
        }
    }

    #[test]
    fn fixed_seed_is_deterministic_and_seeds_differ() {
        let params =
            SamplerParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 42, ..Default::default() };
        let draw = |params: SamplerParams| {
            let mut s = SamplerScratch::new(300, 64);
            let mut smp = s.sampler(params).unwrap();
            (0..200).map(|i| smp.sample(&logits(300, i)).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(draw(params), draw(params));
        assert_ne!(draw(params), draw(SamplerParams { seed: 43, ..params }));
    }

    #[test]
    fn draws_follow_the_softmax() {
        let l = [2.0f32, 1.0, 0.0, -1.0];
        let p: Vec<f64> = {
            let e: Vec<f64> = l.iter().map(|&v| (v as f64).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        let mut s = SamplerScratch::new(4, 0);
        let mut smp = s
            .sampler(SamplerParams {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                penalty_last_n: 0,
                seed: 1,
                ..Default::default()
            })
            .unwrap();
        let n = 40000;
        let mut counts = [0usize; 4];
        for _ in 0..n {
            counts[smp.sample(&l).unwrap() as usize] += 1;
        }
        for i in 0..4 {
            let f = counts[i] as f64 / n as f64;
            // 5 standard deviations
            let sd = (p[i] * (1.0 - p[i]) / n as f64).sqrt();
            assert!((f - p[i]).abs() < 5.0 * sd + 1e-3, "token {i}: {f} vs {}", p[i]);
        }
    }

    #[test]
    fn truncations_remove_unlikely_tokens() {
        // probabilities about 0.64, 0.24, 0.09, 0.03
        let l = [3.0f32, 2.0, 1.0, 0.0];
        let run = |params: SamplerParams| {
            let mut s = SamplerScratch::new(4, 0);
            let mut smp = s.sampler(params).unwrap();
            let mut seen = [false; 4];
            for _ in 0..5000 {
                seen[smp.sample(&l).unwrap() as usize] = true;
            }
            seen
        };
        let base = SamplerParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            penalty_last_n: 0,
            seed: 3,
            ..Default::default()
        };
        assert_eq!(run(base), [true; 4]);
        assert_eq!(run(SamplerParams { top_k: 2, ..base }), [true, true, false, false]);
        assert_eq!(run(SamplerParams { top_p: 0.8, ..base }), [true, true, false, false]);
        // min-p 0.2: keep p >= 0.2 * 0.64 = 0.128
        assert_eq!(run(SamplerParams { min_p: 0.2, ..base }), [true, true, false, false]);
        assert_eq!(run(SamplerParams { min_p: 0.5, ..base }), [true, false, false, false]);
    }

    #[test]
    fn penalties_follow_llama_cpp_formula() {
        let mut s = SamplerScratch::new(4, 8);
        let params = SamplerParams {
            temperature: 0.0,
            repeat_penalty: 2.0,
            frequency_penalty: 0.5,
            presence_penalty: 0.25,
            penalty_last_n: 8,
            ..Default::default()
        };
        let mut smp = s.sampler(params).unwrap();
        // token 0 seen twice, token 1 once
        for t in [0, 1, 0] {
            smp.accept(t);
        }
        // logits: 4.0 -> 4/2 - 2*0.5 - 0.25 = 0.75 ; -1.0 -> -2 - 0.5 - 0.25 = -2.75 ; 1.0 stays ; 0.9 stays
        assert_eq!(smp.sample(&[4.0, -1.0, 1.0, 0.9]).unwrap(), 2);
        assert_eq!(smp.cand[0].logit, 0.75);
        assert_eq!(smp.cand[1].logit, -2.75);
        // the window slides: after 8 more tokens 0 and 1 are forgotten
        for _ in 0..8 {
            smp.accept(3);
        }
        assert_eq!(smp.sample(&[4.0, -1.0, 1.0, 0.9]).unwrap(), 0);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let mut s = SamplerScratch::new(4, 0);
        assert!(s.sampler(SamplerParams { top_p: 0.0, ..Default::default() }).is_err());
        assert!(s.sampler(SamplerParams { min_p: 2.0, ..Default::default() }).is_err());
        assert!(s.sampler(SamplerParams { repeat_penalty: 0.0, ..Default::default() }).is_err());
        let mut smp = s.sampler(SamplerParams::greedy()).unwrap();
        assert!(smp.sample(&[0.0; 5]).is_err(), "vocabulary larger than the candidate buffer");
        assert!(smp.sample(&[]).is_err());
    }

    #[test]
    fn pcg32_matches_reference_stream() {
        // O'Neill's pcg32 demo, seed 42, stream 54: first outputs.
        let mut r = Rng { state: 0, inc: (54u64 << 1) | 1 };
        r.next_u32();
        r.state = r.state.wrapping_add(42);
        r.next_u32();
        let got: Vec<u32> = (0..6).map(|_| r.next_u32()).collect();
        assert_eq!(got, vec![0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]);
    }
}
