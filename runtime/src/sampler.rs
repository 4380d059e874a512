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
//! The top-k candidates (one, for greedy) are found in one pass over the
//! logits, with a heap of k and a vectorizable look at each block of 64
//! logits that skips the blocks with nothing better than the k-th best so
//! far. Without a top-k, the best 256 are taken the same way, and where
//! top-p and min-p cut within them (or, as one pass over the softmax of
//! every logit shows, within the best 4096) nothing else is sorted. Only a
//! top-k above 4096, or a cut further down, builds and sorts a candidate
//! for every token. At Gemma 3's 262,144 logits (medians of 7×200 samples):
//! greedy 66 µs, the default chain 75-85 µs, against 277 and 629-672 µs
//! for building and selecting from every candidate; no top-k 113 µs on a
//! real Gemma 3 distribution (975 µs with min-p 0, which needs the pass
//! over every logit) against 8 ms for sorting them all.
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

/// Most candidates [`top_by_scan`] keeps: a larger top-k (or none) sorts
/// the whole vocabulary ([`top_by_sort`]).
const SCAN_MAX_K: usize = 4096;

/// The first number of candidates [`Sampler`] takes without a top-k, to see
/// whether top-p and min-p cut within them.
const PREFIX_START: usize = 256;

/// Logits per block of [`top_by_scan`]'s pass.
const SCAN_BLOCK: usize = 64;

/// `f32::total_cmp`'s order as integers: `key(a) < key(b)` exactly when
/// `a.total_cmp(&b)` is `Less` (negative NaNs, -infinity, ..., +infinity,
/// positive NaNs).
fn key(l: f32) -> i32 {
    let b = l.to_bits() as i32;
    b ^ ((((b >> 31) as u32) >> 1) as i32)
}

/// Whether `a` ranks before `b`: a higher logit, or the same and a lower id
/// (the order of [`desc`]).
fn ranks_before(a: Candidate, b: Candidate) -> bool {
    let (ka, kb) = (key(a.logit), key(b.logit));
    ka > kb || (ka == kb && a.id < b.id)
}

/// The penalty window's distinct tokens below `nv`, each with how often it
/// occurs, in the window's order (for [`top_by_sort`], which has no room
/// to sort them).
fn window_counts(window: &[u32], nv: usize) -> impl Iterator<Item = (u32, usize)> + '_ {
    window.iter().enumerate().filter_map(move |(j, &tok)| {
        let first = !window[..j].contains(&tok) && (tok as usize) < nv;
        first.then(|| (tok, window.iter().filter(|&&t| t == tok).count()))
    })
}

/// `l` penalized for a token that occurs `count` times in the window
/// (`llama_sampler_penalties_apply`).
fn penalized(p: &SamplerParams, l: f32, count: usize) -> f32 {
    let l = if l <= 0.0 { l * p.repeat_penalty } else { l / p.repeat_penalty };
    l - (count as f32 * p.frequency_penalty + p.presence_penalty)
}

/// The error for logits that [`top_by_scan`]'s pass found unusable.
fn bad_logits(logits: &[f32]) -> Error {
    check_logits(logits).err().unwrap_or(Error::BadLogits { token: None })
}

/// The `k` most likely candidates (penalties applied), sorted most likely
/// first in `cand[..k]`, by one pass over the logits: the best so far are
/// a heap at the front of `cand` with the least likely at its root, and a
/// block of [`SCAN_BLOCK`] logits whose largest does not beat the root is
/// passed over after one vectorizable look (a block's largest and smallest,
/// which also find NaN and +infinity). The window's tokens are left out of
/// the pass and offered with their penalized logits at the end (from the
/// tail of `cand`, sorted by id). The same candidates as [`top_by_sort`]:
/// the order is `desc`'s, ids break ties. Needs `k + window.len()` at most
/// `cand.len()`, the vocabulary size. Returns the number of candidates and
/// of penalized tokens, which stay sorted by id at
/// `cand[cand.len() - window.len()..]` (for [`mass`]).
fn top_by_scan(
    p: &SamplerParams,
    logits: &[f32],
    window: &[u32],
    k: usize,
    cand: &mut [Candidate],
) -> Result<(usize, usize), Error> {
    let nv = logits.len();
    let (top, tail) = cand.split_at_mut(nv - window.len());
    // The window's tokens sorted, then each run of one token replaced by
    // one candidate (a sort, not a count per token: the window may be as
    // long as the context).
    let mut n = 0;
    for &tok in window.iter().filter(|&&t| (t as usize) < nv) {
        tail[n] = Candidate { id: tok, logit: 0.0 };
        n += 1;
    }
    tail[..n].sort_unstable_by_key(|c| c.id);
    let (mut n_pen, mut i) = (0, 0);
    while i < n {
        let tok = tail[i].id;
        let run = tail[i..n].iter().take_while(|c| c.id == tok).count();
        tail[n_pen] = Candidate { id: tok, logit: penalized(p, logits[tok as usize], run) };
        (n_pen, i) = (n_pen + 1, i + run);
    }
    let pen: &[Candidate] = &tail[..n_pen];

    let (mut hi, mut lo) = (i32::MIN, i32::MAX);
    let mut len = 0;
    for (b, block) in logits.chunks(SCAN_BLOCK).enumerate() {
        let (bhi, blo) = block.iter().fold((i32::MIN, i32::MAX), |(h, l), &x| (h.max(key(x)), l.min(key(x))));
        (hi, lo) = (hi.max(bhi), lo.min(blo));
        if len == k && bhi <= key(top[0].logit) {
            continue;
        }
        for (j, &l) in block.iter().enumerate() {
            // Ids only grow in the pass: a logit equal to the root's ranks after it.
            if len == k && key(l) <= key(top[0].logit) {
                continue;
            }
            let id = (b * SCAN_BLOCK + j) as u32;
            if !pen.is_empty() && pen.binary_search_by_key(&id, |c| c.id).is_ok() {
                continue;
            }
            offer(top, &mut len, k, Candidate { id, logit: l });
        }
    }
    // NaN or +infinity anywhere, or nothing above -infinity.
    if hi >= key(f32::INFINITY) || lo < key(f32::NEG_INFINITY) || hi == key(f32::NEG_INFINITY) {
        return Err(bad_logits(logits));
    }
    for &c in pen {
        offer(top, &mut len, k, c);
    }
    top[..len].sort_unstable_by(desc);
    Ok((len, pen.len()))
}

/// What [`Sampler`] needs of every token when there is no top-k: the sum
/// of `exp(logit - max)` (the softmax's denominator) and how many logits
/// are at least `floor` (min-p's cut), with the penalized logits of `pen`
/// (sorted by id) in place of their tokens' own.
fn mass(logits: &[f32], pen: &[Candidate], max: f32, floor: f32) -> (f32, usize) {
    let (mut total, mut above) = (0.0f32, 0);
    let mut next = pen.iter().peekable();
    for (i, &l) in logits.iter().enumerate() {
        let l = match next.peek() {
            Some(c) if c.id as usize == i => next.next().map_or(l, |c| c.logit),
            _ => l,
        };
        total += math::expf(l - max);
        above += usize::from(l >= floor);
    }
    (total, above)
}

/// Adds `c` to the heap `top[..*len]` of at most `k` candidates (the one
/// ranking last at the root) if it is among the `k` best so far.
fn offer(top: &mut [Candidate], len: &mut usize, k: usize, c: Candidate) {
    if *len < k {
        let mut i = *len;
        top[i] = c;
        *len += 1;
        while i > 0 && ranks_before(top[(i - 1) / 2], top[i]) {
            top.swap(i, (i - 1) / 2);
            i = (i - 1) / 2;
        }
    } else if ranks_before(c, top[0]) {
        top[0] = c;
        let heap = &mut top[..k];
        let mut i = 0;
        loop {
            let mut last = i;
            for child in [2 * i + 1, 2 * i + 2] {
                if child < k && ranks_before(heap[last], heap[child]) {
                    last = child;
                }
            }
            if last == i {
                break;
            }
            heap.swap(i, last);
            i = last;
        }
    }
}

/// The `k` most likely candidates (penalties applied), sorted most likely
/// first in `cand[..k]`, by building every candidate and selecting: for a
/// large top-k or none, or a window nearly as long as the vocabulary.
fn top_by_sort(
    p: &SamplerParams,
    logits: &[f32],
    window: &[u32],
    k: usize,
    cand: &mut [Candidate],
) -> Result<usize, Error> {
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
    for (tok, count) in window_counts(window, logits.len()) {
        let c = &mut cand[tok as usize];
        c.logit = penalized(p, c.logit, count);
    }
    if k < cand.len() {
        cand.select_nth_unstable_by(k - 1, desc);
    }
    cand[..k].sort_unstable_by(desc);
    Ok(k)
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
        if !(params.repeat_penalty.is_finite() && params.repeat_penalty > 0.0 && params.temperature.is_finite()) {
            return Err(Error::BadOption(
                "the repetition penalty must be a positive number and the temperature finite",
            ));
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
        let greedy = p.temperature <= 0.0 || p.top_k == 1;
        let k = match p.top_k {
            _ if greedy => 1,
            k if k > 0 && k < nv => k,
            _ => nv,
        };
        let window = &self.recent[..if p.penalties_on() { self.recent_len } else { 0 }];
        let fits = |k: usize| k <= SCAN_MAX_K && k + window.len() <= nv;
        // The top k, most likely first, in `cand[..k]`.
        let top = |k: usize, cand: &mut [Candidate]| {
            if fits(k) {
                top_by_scan(&p, logits, window, k, cand).map(|(len, _)| len)
            } else {
                top_by_sort(&p, logits, window, k, cand)
            }
        };
        let cand = &mut self.cand[..nv];
        if greedy {
            top(1, cand)?;
            return Ok(cand[0].id);
        }
        if k == nv && (p.top_p < 1.0 || p.min_p > 0.0) && fits(PREFIX_START) {
            if let Some(keep) = cut_within_best(&p, logits, window, cand)? {
                return Ok(draw(&mut self.rng, &cand[..keep], p.temperature));
            }
        }
        let len = top(k, cand)?;
        // The top k, most likely first: every token's share of the softmax
        // is among them.
        let cand = &cand[..len];
        let max = cand[0].logit;
        let total: f32 = cand.iter().map(|c| math::expf(c.logit - max)).sum();
        let keep = truncation(&p, cand, total, true).unwrap_or(len);
        Ok(draw(&mut self.rng, &cand[..keep], p.temperature))
    }
}

/// Without a top-k, top-p and min-p mostly keep a few dozen tokens:
/// finds their cut among the best [`PREFIX_START`] candidates (or, when
/// the whole vocabulary's softmax shows it lies further, the best
/// [`SCAN_MAX_K`]), leaving them sorted in `cand`, or `None` where only
/// sorting every token will do. The first look needs no pass over every
/// logit: min-p's cut is within the best, and top-p, measured against
/// the best ones' share alone (which only overstates every share), does
/// not cut before it.
fn cut_within_best(
    p: &SamplerParams,
    logits: &[f32],
    window: &[u32],
    cand: &mut [Candidate],
) -> Result<Option<usize>, Error> {
    let nv = logits.len();
    let window_len = window.len();
    let (len, n_pen) = top_by_scan(p, logits, window, PREFIX_START, cand)?;
    let best = &cand[..len];
    let max = best[0].logit;
    let floor = if p.min_p > 0.0 { max + math::logf(p.min_p) } else { f32::INFINITY };
    let by_min = best.iter().take_while(|c| c.logit >= floor).count();
    // The best ones' share of the softmax, in units of the best one's.
    let share: f32 = best.iter().map(|c| math::expf(c.logit - max)).sum();
    if p.min_p > 0.0 && by_min < len {
        let keep = by_min.max(1);
        let before: f32 = best[..keep - 1].iter().map(|c| math::expf(c.logit - max)).sum();
        // A margin for rounding: the cut proper divides term by term.
        if p.top_p >= 1.0 || before < p.top_p * share * (1.0 - 1e-4) {
            return Ok(Some(keep));
        }
    }
    let pen = &cand[nv - window_len..][..n_pen];
    let (total, above) = mass(logits, pen, max, floor);
    if let Some(keep) = truncation(p, best, total, false) {
        return Ok(Some(keep));
    }
    // Too few: every further candidate has at most the last one's share,
    // which bounds how many top-p needs; min-p needs `above`.
    let last = math::expf(best[len - 1].logit - max);
    let by_p = if p.top_p < 1.0 { len as f32 + (p.top_p * total - share) / last } else { f32::INFINITY };
    let by_min = if p.min_p > 0.0 { above as f32 } else { f32::INFINITY };
    if by_min.min(by_p) >= SCAN_MAX_K as f32 || SCAN_MAX_K + window_len > nv {
        return Ok(None);
    }
    let (len, _) = top_by_scan(p, logits, window, SCAN_MAX_K, cand)?;
    Ok(truncation(p, &cand[..len], total, false))
}

/// How many of `cand` (sorted, most likely first) top-p and min-p keep, with
/// `total` the sum of `exp(logit - max)` over every candidate the top-k
/// left, which with `whole` are all in `cand`; without, `cand` holds only
/// the most likely of them, and the answer is `None` when the cut may lie
/// past its end.
fn truncation(p: &SamplerParams, cand: &[Candidate], total: f32, whole: bool) -> Option<usize> {
    let max = cand[0].logit;
    let (mut keep, mut unknown) = (None::<usize>, false);
    if p.top_p < 1.0 {
        let mut cum = 0.0f32;
        match cand.iter().position(|c| {
            cum += math::expf(c.logit - max) / total;
            cum >= p.top_p
        }) {
            Some(i) => keep = Some(i + 1),
            None => unknown = true,
        }
    }
    if p.min_p > 0.0 {
        let floor = max + math::logf(p.min_p);
        let n = cand.iter().take_while(|c| c.logit >= floor).count();
        if n < cand.len() || whole {
            keep = Some(keep.map_or(n.max(1), |k| k.min(n.max(1))));
        } else {
            unknown = true;
        }
    }
    match keep {
        Some(k) => Some(k),
        None if whole || !unknown => Some(cand.len()),
        None => None,
    }
}

/// Draws one of `cand` (sorted, most likely first) from the softmax of
/// its logits at temperature `t`.
fn draw(rng: &mut Rng, cand: &[Candidate], t: f32) -> u32 {
    let max = cand[0].logit;
    let inv_t = 1.0 / t;
    let sum: f32 = cand.iter().map(|c| math::expf((c.logit - max) * inv_t)).sum();
    let r = rng.next_f32() * sum;
    let mut cum = 0.0f32;
    for c in cand {
        cum += math::expf((c.logit - max) * inv_t);
        if r < cum {
            return c.id;
        }
    }
    cand[cand.len() - 1].id
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
        // 4.0 -> 4/2 - 2*0.5 - 0.25 = 0.75; -1.0 -> -2 - 0.5 - 0.25 = -2.75;
        // the others stay (`choose` leaves the window as it is)
        assert_eq!(smp.choose(&[4.0, -1.0, 0.76, 0.7]).unwrap(), 2);
        assert_eq!(smp.choose(&[4.0, -1.0, 0.74, 0.7]).unwrap(), 0);
        let ninf = f32::NEG_INFINITY;
        assert_eq!(smp.choose(&[ninf, -1.0, -2.76, -2.8]).unwrap(), 1);
        assert_eq!(smp.choose(&[ninf, -1.0, -2.74, -2.8]).unwrap(), 2);
        assert_eq!(smp.sample(&[4.0, -1.0, 1.0, 0.9]).unwrap(), 2);
        // the window slides: after 8 more tokens 0 and 1 are forgotten
        for _ in 0..8 {
            smp.accept(3);
        }
        assert_eq!(smp.sample(&[4.0, -1.0, 1.0, 0.9]).unwrap(), 0);
    }

    /// The one-pass top-k (`top_by_scan`) keeps the same candidates in the
    /// same order as building and sorting them all (`top_by_sort`): random
    /// logits with many ties, ±0, -infinity (NaN and +infinity: the same
    /// error), penalty windows with repeats
    /// and out-of-vocabulary tokens, any k, vocabularies shorter and longer
    /// than a block.
    #[test]
    fn one_pass_top_k_matches_sorting_every_candidate() {
        let mut r = Rng::new(11);
        let (mut errors, mut compared) = (0, 0);
        for case in 0..400 {
            let nv = 1 + (r.next_u32() as usize % 300);
            let levels = 1 + r.next_u32() % 40;
            let logits: Vec<f32> = (0..nv)
                .map(|_| match r.next_u32() % 20 {
                    0 => f32::NEG_INFINITY,
                    1 => -0.0,
                    2 => 0.0,
                    3 if case % 13 == 0 => f32::NAN,
                    4 if case % 17 == 0 => f32::INFINITY,
                    _ => (r.next_u32() % levels) as f32 * 0.25 - 3.0,
                })
                .collect();
            let wlen = r.next_u32() as usize % 12;
            let window: Vec<u32> = (0..wlen).map(|_| r.next_u32() % (nv as u32 + 3)).collect();
            let p = SamplerParams {
                repeat_penalty: [1.0, 1.3, 0.5][case % 3],
                frequency_penalty: [0.0, 0.25][case % 2],
                presence_penalty: [0.0, 0.5, -0.25][case % 3],
                ..Default::default()
            };
            let k = 1 + r.next_u32() as usize % nv;
            if k + wlen > nv {
                continue;
            }
            let (mut a, mut b) = (vec![Candidate::default(); nv], vec![Candidate::default(); nv]);
            let la = top_by_scan(&p, &logits, &window, k, &mut a).map(|r| r.0);
            let lb = top_by_sort(&p, &logits, &window, k, &mut b);
            match (la, lb) {
                (Ok(la), Ok(lb)) => {
                    assert_eq!(la, lb, "case {case}");
                    let bits = |c: &[Candidate]| c.iter().map(|c| (c.id, c.logit.to_bits())).collect::<Vec<_>>();
                    assert_eq!(bits(&a[..la]), bits(&b[..lb]), "case {case}: nv {nv} k {k} window {window:?}");
                    compared += 1;
                }
                (la, lb) => {
                    assert!(la.is_err(), "case {case}");
                    assert_eq!(la, lb, "case {case}");
                    errors += 1;
                }
            }
        }
        assert!(compared > 150 && errors > 5, "{compared} lists and {errors} errors compared");
    }

    /// Without a top-k, the sampler sorts only the best 256 (4096) candidates
    /// when top-p or min-p cut within them; it draws what sorting every
    /// candidate draws, for peaked and flat logits, with and without a
    /// penalty window.
    #[test]
    fn without_top_k_the_best_few_give_what_sorting_every_token_gives() {
        let nv = 6000;
        let (mut within, mut past) = (0, 0);
        for case in 0..72u64 {
            let c = case as usize;
            let mut r = Rng::new(case);
            let spread = [1.0f32, 10.0, 100.0, 400.0][c % 4];
            let logits: Vec<f32> = (0..nv).map(|_| r.next_f32() * spread).collect();
            let params = SamplerParams {
                top_k: 0,
                top_p: [0.9, 0.99, 1.0][(c / 4) % 3],
                min_p: [0.0, 0.05, 0.3][(c / 12) % 3],
                repeat_penalty: [1.0, 1.5][(c / 36) % 2],
                presence_penalty: [0.0, 2.0][(c / 36) % 2],
                seed: case,
                ..Default::default()
            };
            let mut s = SamplerScratch::new(nv, 64);
            let mut smp = s.sampler(params).unwrap();
            let best = argmax(&logits);
            for t in [best, 17, best, 5999] {
                smp.accept(t);
            }
            let window = if params.penalties_on() { smp.recent[..smp.recent_len].to_vec() } else { Vec::new() };
            let mut cand = vec![Candidate::default(); nv];
            let len = top_by_sort(&params, &logits, &window, nv, &mut cand).unwrap();
            let max = cand[0].logit;
            let total: f32 = cand[..len].iter().map(|c| math::expf(c.logit - max)).sum();
            let keep = truncation(&params, &cand[..len], total, true).unwrap();
            let want = draw(&mut Rng::new(case), &cand[..keep], params.temperature);
            assert_eq!(smp.choose(&logits).unwrap(), want, "case {case}: keep {keep}");
            if params.top_p < 1.0 || params.min_p > 0.0 {
                if keep < PREFIX_START {
                    within += 1;
                } else {
                    past += 1;
                }
            }
        }
        assert!(within > 10 && past > 5, "{within} cases cut within the first candidates, {past} past them");
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
