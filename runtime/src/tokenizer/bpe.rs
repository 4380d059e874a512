//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`), as llama.cpp's
//! `llm_tokenizer_bpe_session` does it: each pre-tokenized word is mapped
//! byte by byte through the GPT-2 byte↔unicode table, split into chars, and
//! the adjacent pair with the lowest merge rank (ties: leftmost) is merged
//! until no pair has a rank.
//!
//! Merges are strings `"left right"`; every left, right and merged string is
//! interned into the vocabulary's [`StrTable`] (ids past the vocabulary for
//! strings that are not tokens), so merging compares ids, never strings.

use super::pretokenize::{Split, Words};
use super::table::{PairMap, StrTable};
use super::unicode::byte_to_char;
use crate::Error;
use alloc::collections::BinaryHeap;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Reverse;

const NONE: u32 = u32::MAX;

/// Candidate merges, smallest `(rank, left index)` first; also the right index and both ids.
type Queue = BinaryHeap<Reverse<(u32, u32, u32, u32, u32)>>;

/// The merge table and pre-tokenizer of a byte-level BPE vocabulary.
pub(crate) struct Bpe {
    /// `(left id, right id)` → `(rank, merged id)`.
    merges: PairMap<(u32, u32)>,
    pub splits: &'static [Split],
    /// Emit a whole word as one token when it is in the vocabulary (llama3 and a few others).
    pub ignore_merges: bool,
}

impl Bpe {
    /// Reads the merges (`"left right"` strings, rank = index); interns their parts into `strings`.
    pub fn new<'a>(
        merges: impl Iterator<Item = &'a str>,
        n_merges: usize,
        strings: &mut StrTable,
        splits: &'static [Split],
        ignore_merges: bool,
    ) -> Result<Bpe, Error> {
        let mut map = PairMap::with_capacity(n_merges);
        let mut joined = Vec::new();
        for (rank, m) in merges.enumerate() {
            // llama.cpp: `word.find(' ', 1)`; a merge without a space becomes ("", "").
            // (A space byte is always a char boundary, so the slices are valid.)
            let (left, right) = match m.bytes().skip(1).position(|b| b == b' ') {
                Some(p) => (&m[..p + 1], &m[p + 2..]),
                None => ("", ""),
            };
            joined.clear();
            joined.extend_from_slice(left.as_bytes());
            joined.extend_from_slice(right.as_bytes());
            let too_big = || Error::Tokenizer { key: "tokenizer.ggml.merges", problem: "merge strings exceed 4 GiB" };
            let l = intern(strings, left.as_bytes()).ok_or_else(too_big)?;
            let r = intern(strings, right.as_bytes()).ok_or_else(too_big)?;
            let j = intern(strings, &joined).ok_or_else(too_big)?;
            let rank = u32::try_from(rank)
                .map_err(|_| Error::Tokenizer { key: "tokenizer.ggml.merges", problem: "more than 2^32 merges" })?;
            map.insert_if_absent(l, r, (rank, j));
        }
        Ok(Bpe { merges: map, splits, ignore_merges })
    }

    /// Number of distinct merges.
    pub fn n_merges(&self) -> usize {
        self.merges.len()
    }
}

fn intern(strings: &mut StrTable, s: &[u8]) -> Option<u32> {
    strings.insert(s).map(|r| match r {
        Ok(id) | Err(id) => id,
    })
}

#[derive(Clone, Copy)]
struct Symbol {
    /// Byte range in the encoded word.
    start: u32,
    len: u32,
    /// Interned id of the text, or `NONE`.
    id: u32,
    prev: i32,
    next: i32,
}

/// Scratch buffers of one encode call.
#[derive(Default)]
pub(crate) struct BpeScratch {
    words: Words,
    word: String,
    symbols: Vec<Symbol>,
    queue: Queue,
}

impl Bpe {
    /// Tokenizes one text fragment (no special tokens in it) into `out`.
    pub fn encode(&self, text: &str, strings: &StrTable, n_tokens: u32, s: &mut BpeScratch, out: &mut Vec<u32>) {
        s.words.split(text, self.splits);
        let mut start = 0;
        for i in 0..s.words.lens.len() {
            let len = s.words.lens[i];
            s.word.clear();
            let mut utf8 = [0u8; 4];
            for &c in &s.words.cps[start..start + len] {
                for &b in c.encode_utf8(&mut utf8).as_bytes() {
                    s.word.push(byte_to_char(b));
                }
            }
            start += len;
            self.encode_word(strings, n_tokens, &mut s.symbols, &mut s.queue, &s.word, out);
        }
    }

    fn encode_word(
        &self,
        strings: &StrTable,
        n_tokens: u32,
        symbols: &mut Vec<Symbol>,
        queue: &mut Queue,
        word: &str,
        out: &mut Vec<u32>,
    ) {
        if self.ignore_merges {
            if let Some(id) = strings.find(word.as_bytes()).filter(|&id| id < n_tokens) {
                out.push(id);
                return;
            }
        }
        symbols.clear();
        queue.clear();
        for (off, c) in word.char_indices() {
            let text = &word.as_bytes()[off..off + c.len_utf8()];
            let i = symbols.len() as i32;
            symbols.push(Symbol {
                start: off as u32,
                len: text.len() as u32,
                id: strings.find(text).unwrap_or(NONE),
                prev: i - 1,
                next: i + 1,
            });
        }
        if let Some(last) = symbols.last_mut() {
            last.next = -1;
        }
        let try_pair = |symbols: &[Symbol], queue: &mut Queue, left: i32, right: i32| {
            if left < 0 || right < 0 {
                return;
            }
            let (l, r) = (symbols[left as usize].id, symbols[right as usize].id);
            if l == NONE || r == NONE {
                return;
            }
            if let Some((rank, _)) = self.merges.get(l, r) {
                queue.push(Reverse((rank, left as u32, right as u32, l, r)));
            }
        };
        for i in 1..symbols.len() as i32 {
            try_pair(symbols, queue, i - 1, i);
        }
        while let Some(Reverse((_, left, right, l_id, r_id))) = queue.pop() {
            let (li, ri) = (left as usize, right as usize);
            // Stale entry: one side was merged away or grew since it was queued.
            if symbols[li].len == 0 || symbols[ri].len == 0 || symbols[li].id != l_id || symbols[ri].id != r_id {
                continue;
            }
            let Some((_, merged)) = self.merges.get(l_id, r_id) else { continue };
            symbols[li].len += symbols[ri].len;
            symbols[li].id = merged;
            symbols[ri].len = 0;
            let next = symbols[ri].next;
            symbols[li].next = next;
            if next >= 0 {
                symbols[next as usize].prev = left as i32;
            }
            try_pair(symbols, queue, symbols[li].prev, left as i32);
            try_pair(symbols, queue, left as i32, next);
        }
        let mut i = if symbols.is_empty() { -1 } else { 0 };
        while i >= 0 {
            let sym = symbols[i as usize];
            i = sym.next;
            if sym.len == 0 {
                continue;
            }
            if sym.id < n_tokens {
                out.push(sym.id);
                continue;
            }
            // Not a token: llama.cpp looks up each single byte of the encoded text
            // and silently drops the ones that are not tokens.
            let text = &word.as_bytes()[sym.start as usize..(sym.start + sym.len) as usize];
            for b in text {
                if let Some(id) = strings.find(core::slice::from_ref(b)).filter(|&id| id < n_tokens) {
                    out.push(id);
                }
            }
        }
    }
}
