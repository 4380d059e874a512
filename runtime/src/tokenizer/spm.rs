//! SentencePiece-style BPE (`tokenizer.ggml.model = "llama"`), as llama.cpp's
//! `llm_tokenizer_spm_session` does it: the text (spaces already escaped to
//! `▁`) is split into UTF-8 chars; the adjacent pair whose concatenation is a
//! vocabulary token with the highest score (ties: leftmost) is merged until no
//! pair is a token; what is left that is not a token is emitted as byte tokens
//! `<0xXX>`.

use super::table::StrTable;
use crate::Error;
use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Ordering;

#[derive(Clone, Copy)]
struct Symbol {
    /// Byte range in the text.
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
}

/// A candidate merge; the heap's max is the best (highest score, then leftmost).
#[derive(Clone, Copy)]
struct Bigram {
    score: f32,
    left: u32,
    right: u32,
    size: u32,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        // llama.cpp's comparator: (l.score < r.score) || (l.score == r.score && l.left > r.left).
        self.score.partial_cmp(&other.score).unwrap_or(Ordering::Equal).then(other.left.cmp(&self.left))
    }
}

/// Scratch buffers of one encode call.
#[derive(Default)]
pub(crate) struct SpmScratch {
    symbols: Vec<Symbol>,
    queue: BinaryHeap<Bigram>,
}

/// Tokenizes `text` (already whitespace-escaped) into `out`.
/// `byte_tokens[b]` is the token of byte `b` (`<0xXX>`, else the one-byte token), if any.
pub(crate) fn encode(
    text: &str,
    strings: &StrTable,
    n_tokens: u32,
    scores: &[f32],
    byte_tokens: &[Option<u32>; 256],
    s: &mut SpmScratch,
    out: &mut Vec<u32>,
) -> Result<(), Error> {
    let bytes = text.as_bytes();
    let token_of =
        |start: u32, len: u32| strings.find(&bytes[start as usize..(start + len) as usize]).filter(|&id| id < n_tokens);
    let symbols = &mut s.symbols;
    let queue = &mut s.queue;
    symbols.clear();
    queue.clear();
    for (off, c) in text.char_indices() {
        let i = symbols.len() as i32;
        symbols.push(Symbol { start: off as u32, len: c.len_utf8() as u32, prev: i - 1, next: i + 1 });
    }
    if let Some(last) = symbols.last_mut() {
        last.next = -1;
    }
    let try_bigram = |symbols: &[Symbol], queue: &mut BinaryHeap<Bigram>, left: i32, right: i32| {
        if left < 0 || right < 0 {
            return;
        }
        let (l, r) = (symbols[left as usize], symbols[right as usize]);
        let size = l.len + r.len;
        if let Some(id) = token_of(l.start, size) {
            queue.push(Bigram { score: scores[id as usize], left: left as u32, right: right as u32, size });
        }
    };
    for i in 1..symbols.len() as i32 {
        try_bigram(symbols, queue, i - 1, i);
    }
    while let Some(b) = queue.pop() {
        let (li, ri) = (b.left as usize, b.right as usize);
        if symbols[li].len == 0 || symbols[ri].len == 0 || symbols[li].len + symbols[ri].len != b.size {
            continue;
        }
        symbols[li].len += symbols[ri].len;
        symbols[ri].len = 0;
        let next = symbols[ri].next;
        symbols[li].next = next;
        if next >= 0 {
            symbols[next as usize].prev = b.left as i32;
        }
        try_bigram(symbols, queue, symbols[li].prev, b.left as i32);
        try_bigram(symbols, queue, b.left as i32, next);
    }
    // Every merged symbol is a token (merges only make tokens); a symbol that is
    // not one is a single char, emitted as byte tokens (llama.cpp's `resegment`).
    let mut i = if symbols.is_empty() { -1 } else { 0 };
    while i >= 0 {
        let sym = symbols[i as usize];
        i = sym.next;
        if let Some(id) = token_of(sym.start, sym.len) {
            out.push(id);
            continue;
        }
        for &b in &bytes[sym.start as usize..(sym.start + sym.len) as usize] {
            match byte_tokens[b as usize] {
                Some(id) => out.push(id),
                None => return Err(Error::NoByteToken { byte: b }),
            }
        }
    }
    Ok(())
}
