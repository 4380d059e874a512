//! Pre-tokenizers of byte-level BPE: split text into words before merging,
//! exactly as llama.cpp's `unicode_regex_split` does for each
//! `tokenizer.ggml.pre` value.
//!
//! llama.cpp runs a list of regexes one after the other, each splitting the
//! pieces the previous one left (matches and the gaps between them both
//! become pieces). Some regexes have hand-written matchers in its
//! `unicode.cpp` (`unicode_regex_split_custom_gpt2`, `_llama3`, `_qwen2`);
//! the others run through `std::regex` on a "collapsed" copy of the text in
//! which each non-ASCII codepoint is replaced by one byte naming its class.
//! Every regex used here is written below as a direct matcher that gives the
//! same pieces, with the classes of [`super::unicode`].

use super::unicode::{flags, FLAG_LETTER as L, FLAG_NUMBER as N, FLAG_PUNCTUATION, FLAG_WHITESPACE as WS};
use alloc::vec::Vec;

/// One split step (one regex of llama.cpp's list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (hand-written in llama.cpp).
    Gpt2,
    /// `(?i:'s|…)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    Llama3,
    /// As [`Split::Llama3`] with `\p{N}` (one digit per piece) instead of `\p{N}{1,3}`.
    Qwen2,
    /// `\p{N}`: every number codepoint on its own.
    EachNumber,
    /// `\p{N}+`.
    NumberRuns,
    /// `[\p{P}\$\+<=>\^~\|]+`.
    PunctuationRuns,
    /// `[0-9][0-9][0-9]`.
    AsciiDigitTriples,
}

/// The split lists of the pre-tokenizer types ember implements.
pub(crate) mod lists {
    use super::Split::{self, *};
    /// `gpt-2`, `mpt`, `olmo`, `phi-2`, ... (llama.cpp `LLAMA_VOCAB_PRE_TYPE_GPT2` and friends).
    pub const GPT2: &[Split] = &[Gpt2];
    /// `llama3`, `llama-bpe`, `dbrx`, `smaug-bpe`, `chatglm-bpe`, ...
    pub const LLAMA3: &[Split] = &[Llama3];
    /// `qwen2`, `stablelm2`, `deepseek-r1-qwen`, `megrez`, ...
    pub const QWEN2: &[Split] = &[Qwen2];
    /// `smollm`, `starcoder`, `refact`, `command-r`, `codeshell`, `exaone`, `minerva-7b`.
    pub const SMOLLM: &[Split] = &[EachNumber, Gpt2];
    /// `default` (and a missing `tokenizer.ggml.pre`).
    pub const DEFAULT: &[Split] = &[PunctuationRuns, Gpt2, NumberRuns, AsciiDigitTriples];
}

/// Reusable buffers of one pre-tokenization.
#[derive(Default)]
pub(crate) struct Words {
    /// The text's codepoints.
    pub cps: Vec<char>,
    fl: Vec<u8>,
    /// Lengths (in codepoints) of consecutive words; they cover `cps`.
    pub lens: Vec<usize>,
    tmp: Vec<usize>,
}

impl Words {
    /// Splits `text` with `splits`; the words are then `self.lens` over `self.cps`.
    pub fn split(&mut self, text: &str, splits: &[Split]) {
        self.cps.clear();
        self.cps.extend(text.chars());
        self.fl.clear();
        self.fl.extend(self.cps.iter().map(|&c| flags(c)));
        self.lens.clear();
        if self.cps.is_empty() {
            return;
        }
        self.lens.push(self.cps.len());
        for &split in splits {
            self.tmp.clear();
            let mut start = 0;
            for &len in &self.lens {
                let (cps, fl) = (&self.cps[start..start + len], &self.fl[start..start + len]);
                match split {
                    Split::Gpt2 => gpt2(cps, fl, &mut self.tmp),
                    Split::Llama3 => llama3(cps, fl, 3, &mut self.tmp),
                    Split::Qwen2 => llama3(cps, fl, 1, &mut self.tmp),
                    Split::EachNumber => isolate(cps, fl, &mut self.tmp, |_, f| f & N != 0, false),
                    Split::NumberRuns => isolate(cps, fl, &mut self.tmp, |_, f| f & N != 0, true),
                    Split::PunctuationRuns => isolate(cps, fl, &mut self.tmp, is_default_punct, true),
                    Split::AsciiDigitTriples => digit_triples(cps, &mut self.tmp),
                }
                start += len;
            }
            core::mem::swap(&mut self.lens, &mut self.tmp);
        }
    }
}

/// `[\p{P}\$\+<=>\^~\|]`: on llama.cpp's collapsed text, ASCII punctuation is
/// listed explicitly and other codepoints match through their P class (no P
/// codepoint is White_Space, which would have collapsed to `\v` instead).
fn is_default_punct(c: char, f: u8) -> bool {
    f & FLAG_PUNCTUATION != 0 || matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '~' | '|')
}

/// Emits word boundaries; keeps llama.cpp's `_add_token` shape (empty words are skipped).
struct Emit<'a> {
    out: &'a mut Vec<usize>,
    prev_end: usize,
}

impl Emit<'_> {
    #[inline]
    fn add(&mut self, end: usize) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
}

const OUT_OF_RANGE: u32 = u32::MAX;

/// llama.cpp's `unicode_regex_split_custom_gpt2`, on one piece.
fn gpt2(cps: &[char], fl: &[u8], out: &mut Vec<usize>) {
    let n = cps.len();
    let flg = |p: usize| if p < n { fl[p] } else { 0 };
    let cpt = |p: usize| if p < n { cps[p] as u32 } else { OUT_OF_RANGE };
    let mut e = Emit { out, prev_end: 0 };
    let mut pos = 0;
    while pos < n {
        let c = cps[pos];
        let f = fl[pos];
        // 's|'t|'re|'ve|'m|'ll|'d
        if c == '\'' && pos + 1 < n {
            let next = cps[pos + 1];
            if matches!(next, 's' | 't' | 'm' | 'd') {
                pos += e.add(pos + 2);
                continue;
            }
            if pos + 2 < n {
                let nn = cps[pos + 2];
                if matches!((next, nn), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                    pos += e.add(pos + 3);
                    continue;
                }
            }
        }
        let space = (c == ' ') as usize;
        let mut f2 = if c == ' ' { flg(pos + 1) } else { f };
        // <space>?\p{L}+
        if f2 & L != 0 {
            pos += space;
            while f2 & L != 0 {
                pos += 1;
                f2 = flg(pos);
            }
            e.add(pos);
            continue;
        }
        // <space>?\p{N}+
        if f2 & N != 0 {
            pos += space;
            while f2 & N != 0 {
                pos += 1;
                f2 = flg(pos);
            }
            e.add(pos);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+
        if f2 & (WS | L | N) == 0 && f2 != 0 {
            pos += space;
            while f2 & (WS | L | N) == 0 && f2 != 0 {
                pos += 1;
                f2 = flg(pos);
            }
            e.add(pos);
            continue;
        }
        let mut n_ws = 0;
        while flg(pos + n_ws) & WS != 0 {
            n_ws += 1;
        }
        // \s+(?!\S)
        if n_ws > 1 && cpt(pos + n_ws) != OUT_OF_RANGE {
            pos += n_ws - 1;
            e.add(pos);
            continue;
        }
        // \s+
        if n_ws > 0 {
            pos += n_ws;
            e.add(pos);
            continue;
        }
        pos += 1;
        e.add(pos);
    }
}

/// llama.cpp's `unicode_regex_split_custom_llama3` (`max_digits` 3) and
/// `unicode_regex_split_custom_qwen2` (`max_digits` 1), on one piece.
fn llama3(cps: &[char], fl: &[u8], max_digits: usize, out: &mut Vec<usize>) {
    let n = cps.len();
    let flg = |p: usize| if p < n { fl[p] } else { 0 };
    let cpt = |p: usize| if p < n { cps[p] as u32 } else { OUT_OF_RANGE };
    let is_rn = |c: u32| c == '\r' as u32 || c == '\n' as u32;
    let mut e = Emit { out, prev_end: 0 };
    let mut pos = 0;
    while pos < n {
        let c = cps[pos];
        let f = fl[pos];
        // (?i:'s|'t|'re|'ve|'m|'ll|'d): only ASCII capitals lower-case to these letters.
        if c == '\'' && pos + 1 < n {
            let next = cps[pos + 1].to_ascii_lowercase();
            if matches!(next, 's' | 't' | 'm' | 'd') {
                pos += e.add(pos + 2);
                continue;
            }
            if pos + 2 < n {
                let nn = cps[pos + 2].to_ascii_lowercase();
                if matches!((next, nn), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                    pos += e.add(pos + 3);
                    continue;
                }
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(c == '\r' || c == '\n' || f & N != 0) && (f & L != 0 || flg(pos + 1) & L != 0) {
            pos += 1;
            while flg(pos) & L != 0 {
                pos += 1;
            }
            e.add(pos);
            continue;
        }
        // \p{N}{1,3} (llama3) or \p{N} (qwen2)
        if f & N != 0 {
            if max_digits == 1 {
                pos += 1;
                e.add(pos);
                continue;
            }
            let mut ini = pos;
            while flg(pos) & N != 0 {
                pos += 1;
                if pos - ini >= max_digits {
                    e.add(pos);
                    ini = pos;
                }
            }
            e.add(pos);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        let mut f2 = if c == ' ' { flg(pos + 1) } else { f };
        if f2 & (WS | L | N) == 0 && f != 0 {
            pos += (c == ' ') as usize;
            while f2 & (WS | L | N) == 0 && f2 != 0 {
                pos += 1;
                f2 = flg(pos);
            }
            while is_rn(cpt(pos)) {
                pos += 1;
            }
            e.add(pos);
            continue;
        }
        let mut n_ws = 0;
        let mut last_end_rn = 0;
        while flg(pos + n_ws) & WS != 0 {
            if is_rn(cpt(pos + n_ws)) {
                last_end_rn = pos + n_ws + 1;
            }
            n_ws += 1;
        }
        // \s*[\r\n]+
        if last_end_rn > 0 {
            pos = last_end_rn;
            e.add(pos);
            continue;
        }
        // \s+(?!\S)
        if n_ws > 1 && cpt(pos + n_ws) != OUT_OF_RANGE {
            pos += n_ws - 1;
            e.add(pos);
            continue;
        }
        // \s+
        if n_ws > 0 {
            pos += n_ws;
            e.add(pos);
            continue;
        }
        pos += 1;
        e.add(pos);
    }
}

/// A `std::regex` split whose regex is one character class: `[class]` (each
/// matching codepoint alone) or `[class]+` (maximal runs, `runs`). Matches
/// and the gaps between them are pieces.
fn isolate(cps: &[char], fl: &[u8], out: &mut Vec<usize>, class: impl Fn(char, u8) -> bool, runs: bool) {
    let mut e = Emit { out, prev_end: 0 };
    let mut pos = 0;
    while pos < cps.len() {
        if class(cps[pos], fl[pos]) {
            e.add(pos);
            pos += 1;
            while runs && pos < cps.len() && class(cps[pos], fl[pos]) {
                pos += 1;
            }
            e.add(pos);
        } else {
            pos += 1;
        }
    }
    e.add(cps.len());
}

/// `[0-9][0-9][0-9]`, matched leftmost-first like `std::regex_iterator`.
fn digit_triples(cps: &[char], out: &mut Vec<usize>) {
    let mut e = Emit { out, prev_end: 0 };
    let mut pos = 0;
    while pos + 3 <= cps.len() {
        if cps[pos..pos + 3].iter().all(|c| c.is_ascii_digit()) {
            e.add(pos);
            pos += 3;
            e.add(pos);
        } else {
            pos += 1;
        }
    }
    e.add(cps.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn words(text: &str, splits: &[Split]) -> Vec<String> {
        let mut w = Words::default();
        w.split(text, splits);
        let mut start = 0;
        w.lens
            .iter()
            .map(|&len| {
                let s: String = w.cps[start..start + len].iter().collect();
                start += len;
                s
            })
            .collect()
    }

    #[test]
    fn gpt2_splits_like_the_regex() {
        assert_eq!(words("Hello, world!", lists::GPT2), ["Hello", ",", " world", "!"]);
        assert_eq!(words("I'm   here  ", lists::GPT2), ["I", "'m", "  ", " here", "  "]);
        assert_eq!(words("a\n\nb", lists::GPT2), ["a", "\n", "\n", "b"]);
        assert_eq!(words("x=12", lists::GPT2), ["x", "=", "12"]);
    }

    #[test]
    fn smollm_isolates_each_digit_first() {
        assert_eq!(words("test 123", lists::SMOLLM), ["test", " ", "1", "2", "3"]);
        assert_eq!(words("a٣b", lists::SMOLLM), ["a", "٣", "b"]);
    }

    #[test]
    fn llama3_and_qwen2() {
        assert_eq!(
            words("1234567 YOU'RE\n\n  x", lists::LLAMA3),
            ["123", "456", "7", " YOU", "'RE", "\n\n", " ", " x"]
        );
        assert_eq!(words("123 ab", lists::QWEN2), ["1", "2", "3", " ab"]);
        assert_eq!(words("hi!!\n\nok", lists::LLAMA3), ["hi", "!!\n\n", "ok"]);
        assert_eq!(words("a \n b", lists::LLAMA3), ["a", " \n", " b"]);
    }

    #[test]
    fn default_runs() {
        assert_eq!(words("a+=b 1234567", lists::DEFAULT), ["a", "+=", "b", " ", "123", "456", "7"]);
    }

    #[test]
    fn empty_text_has_no_words() {
        assert!(words("", lists::DEFAULT).is_empty());
    }
}
