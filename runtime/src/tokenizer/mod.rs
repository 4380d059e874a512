//! Tokenizers built from GGUF metadata, giving exactly llama.cpp's token ids.
//!
//! Follows llama.cpp's `src/llama-vocab.cpp` (`llama_vocab::impl::load`,
//! `tokenize`, `tokenizer_st_partition`, `token_to_piece`, `detokenize`) and
//! `src/unicode.cpp`:
//!
//! - `tokenizer.ggml.model = "llama"`: SentencePiece BPE over scores, byte
//!   fallback `<0xXX>`, `▁` for spaces, optional space prefix (`spm.rs`).
//! - `tokenizer.ggml.model = "gpt2"`: byte-level BPE over ranked merges, with
//!   the pre-tokenizer named by `tokenizer.ggml.pre` (`bpe.rs`, `pretokenize.rs`):
//!   `default`; `gpt-2` (also `gpt2`), `mpt`, `olmo`, `phi-2`, `jais`,
//!   `exaone4`, `trillion`, `granite-docling`, `roberta-bpe`, ...; `llama3`,
//!   `llama-v3`, `llama-bpe`, `falcon3`, `dbrx`, `smaug-bpe`, `chatglm-bpe`,
//!   `glm4`, ...; `qwen2`, `deepseek-r1-qwen`, `stablelm2`, `megrez`,
//!   `hunyuan`, ...; `smollm`, `starcoder`, `refact`, `command-r`,
//!   `codeshell`, `exaone`, `minerva-7b`.
//!
//! Special tokens (CONTROL, USER_DEFINED and UNKNOWN types) are cut out of the
//! text first, longest first, as llama.cpp does; CONTROL ones only when
//! `parse_special` is set. End-of-generation tokens are decided from the same
//! metadata and token texts llama.cpp uses.

mod bpe;
mod load;
mod pretokenize;
mod spm;
mod stream;
mod table;
mod unicode;

pub use stream::StreamDecoder;

use crate::Error;
use alloc::string::String;
use alloc::vec::Vec;
use bpe::{Bpe, BpeScratch};
use spm::SpmScratch;
use table::StrTable;

/// llama.cpp's `llama_token_attr` bits.
mod attr {
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;
    pub const LSTRIP: u16 = 1 << 7;
    pub const RSTRIP: u16 = 1 << 8;
}

/// Which algorithm the vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// SentencePiece BPE (`tokenizer.ggml.model = "llama"`): Llama 1/2, Mistral, Gemma.
    SentencePiece,
    /// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): GPT-2, Llama 3, Qwen 2, SmolLM.
    BytePairEncoding,
}

enum Model {
    Spm,
    Bpe(Bpe),
}

/// A tokenizer read from a GGUF file: `encode` text to ids, `decode` ids to text.
pub struct Tokenizer {
    model: Model,
    pre: String,
    /// Token texts (ids `< n_tokens`), then strings interned for BPE merges.
    strings: StrTable,
    n_tokens: u32,
    scores: Vec<f32>,
    attrs: Vec<u16>,
    /// Rendered pieces (`token_to_piece` with `special = true`): `pieces[piece_offsets[i]..piece_offsets[i+1]]`.
    pieces: Vec<u8>,
    piece_offsets: Vec<u32>,
    /// Tokens cut out of text before tokenizing, longest first.
    special: Vec<u32>,
    /// SentencePiece byte fallback: the token of each byte.
    byte_tokens: [Option<u32>; 256],
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    eom: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    /// End-of-generation tokens, sorted.
    eog: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
}

fn text_of(strings: &StrTable, id: u32) -> &str {
    core::str::from_utf8(strings.get(id)).unwrap_or("")
}

/// C's `isspace` in the "C" locale (what llama.cpp's LSTRIP/RSTRIP use).
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fragment {
    /// A byte range of the input text.
    Text(usize, usize),
    Token(u32),
}

impl Tokenizer {
    /// Renders every token's piece once (llama.cpp's `cache_token_to_piece`).
    fn build_pieces(&mut self) {
        let mut pieces = Vec::with_capacity(self.strings.heap_bytes() / 4);
        let mut offsets = Vec::with_capacity(self.n_tokens as usize + 1);
        offsets.push(0u32);
        for id in 0..self.n_tokens {
            self.render_piece(id, &mut pieces);
            offsets.push(pieces.len() as u32);
        }
        self.pieces = pieces;
        self.piece_offsets = offsets;
    }

    fn render_piece(&self, id: u32, out: &mut Vec<u8>) {
        let a = self.attrs[id as usize];
        let text = self.strings.get(id);
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(text);
        } else if a & attr::NORMAL != 0 {
            match self.model {
                Model::Spm => {
                    // "▁" → " "
                    let mut rest = text;
                    while let Some(p) = find_bytes(rest, "\u{2581}".as_bytes()) {
                        out.extend_from_slice(&rest[..p]);
                        out.push(b' ');
                        rest = &rest[p + 3..];
                    }
                    out.extend_from_slice(rest);
                }
                Model::Bpe(_) => {
                    // GPT-2 byte↔unicode mapping undone (llama.cpp's `llama_decode_text`).
                    let s = core::str::from_utf8(text).unwrap_or("");
                    for c in s.chars() {
                        match unicode::char_to_byte(c) {
                            Some(b) => out.push(b),
                            None => {
                                out.extend_from_slice(b"[UNK_BYTE_0x");
                                let mut buf = [0u8; 4];
                                for b in c.encode_utf8(&mut buf).bytes() {
                                    out.extend_from_slice(alloc::format!("{b:02x}").as_bytes());
                                }
                                out.extend_from_slice(text);
                                out.push(b']');
                            }
                        }
                    }
                }
            }
        } else if a & attr::BYTE != 0 {
            // "<0xXX>": llama.cpp parses the two characters after "<0x" with strtol.
            let hex = text.get(3..5).and_then(|h| core::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(parse_hex_prefix) {
                out.push(b);
            }
        }
    }

    /// The kind of vocabulary.
    pub fn kind(&self) -> TokenizerKind {
        match self.model {
            Model::Spm => TokenizerKind::SentencePiece,
            Model::Bpe(_) => TokenizerKind::BytePairEncoding,
        }
    }

    /// The pre-tokenizer name (`tokenizer.ggml.pre`, empty if absent).
    pub fn pre(&self) -> &str {
        &self.pre
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.n_tokens as usize
    }

    /// Number of BPE merges (0 for SentencePiece).
    pub fn n_merges(&self) -> usize {
        match &self.model {
            Model::Bpe(b) => b.n_merges(),
            Model::Spm => 0,
        }
    }

    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// End-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// End-of-turn token (`<|im_end|>`, `<end_of_turn>`, ...), from metadata or detected by text.
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }

    /// End-of-message token (`<|eom_id|>`).
    pub fn eom(&self) -> Option<u32> {
        self.eom
    }

    /// Unknown-token id.
    pub fn unk(&self) -> Option<u32> {
        self.unk
    }

    /// Padding token.
    pub fn pad(&self) -> Option<u32> {
        self.pad
    }

    /// Whether `encode(.., add_special = true, ..)` puts BOS first.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether `encode(.., add_special = true, ..)` puts EOS last.
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// True if generating `id` ends generation (EOS, EOT, EOM, `<|im_end|>`, `<end_of_turn>`, ...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// Every end-of-generation token, ascending.
    pub fn eog_tokens(&self) -> &[u32] {
        &self.eog
    }

    /// True for control tokens (BOS, EOS, chat markers), which `decode` renders as nothing.
    pub fn is_control(&self, id: u32) -> bool {
        self.attrs.get(id as usize).is_some_and(|a| a & attr::CONTROL != 0)
    }

    /// The id of the token whose vocabulary text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.strings.find(text.as_bytes()).filter(|&id| id < self.n_tokens)
    }

    /// The token's text as stored in the vocabulary (`▁`/`Ġ` and `<0x0A>` as they are).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        (id < self.n_tokens).then(|| core::str::from_utf8(self.strings.get(id)).unwrap_or(""))
    }

    /// The token's score (SentencePiece log-probability; 0 where the file has none).
    pub fn score(&self, id: u32) -> Option<f32> {
        self.scores.get(id as usize).copied()
    }

    /// The bytes the token stands for: byte tokens resolved, `▁` / GPT-2 byte
    /// mapping undone; control tokens as their text (llama.cpp's
    /// `token_to_piece(.., special = true)`). May be a partial UTF-8 sequence.
    pub fn token_to_piece(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        if id >= self.n_tokens {
            return None;
        }
        Some(&self.pieces[self.piece_offsets[i] as usize..self.piece_offsets[i + 1] as usize])
    }

    /// The piece `decode` uses: empty for control and unknown tokens unless `render_special`.
    fn piece(&self, id: u32, render_special: bool) -> Result<&[u8], Error> {
        let p = self.token_to_piece(id).ok_or(Error::TokenOutOfRange { token: id, n_vocab: self.n_tokens as usize })?;
        if !render_special && self.attrs[id as usize] & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return Ok(&[]);
        }
        Ok(p)
    }

    /// Encodes `text`. `add_special` adds BOS/EOS as the model asks
    /// (`tokenizer.ggml.add_bos_token` / `add_eos_token`, llama.cpp's defaults
    /// otherwise); `parse_special` turns control-token text such as
    /// `<|im_start|>` into that token (user-defined tokens are always matched).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>, Error> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let mut frags = Vec::new();
        self.partition(text, parse_special, &mut frags);
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        match &self.model {
            Model::Spm => {
                let mut scratch = SpmScratch::default();
                let mut buf = String::new();
                let mut is_prev_special = true;
                for f in &frags {
                    match *f {
                        Fragment::Text(a, b) => {
                            buf.clear();
                            if self.add_space_prefix && is_prev_special {
                                buf.push('\u{2581}');
                            }
                            for c in text[a..b].chars() {
                                buf.push(if c == ' ' { '\u{2581}' } else { c });
                            }
                            spm::encode(
                                &buf,
                                &self.strings,
                                self.n_tokens,
                                &self.scores,
                                &self.byte_tokens,
                                &mut scratch,
                                &mut out,
                            )?;
                            is_prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            is_prev_special = true;
                        }
                    }
                }
            }
            Model::Bpe(bpe) => {
                let mut scratch = BpeScratch::default();
                for f in &frags {
                    match *f {
                        Fragment::Text(a, b) => {
                            bpe.encode(&text[a..b], &self.strings, self.n_tokens, &mut scratch, &mut out)
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        Ok(out)
    }

    /// Cuts special tokens out of `text` (llama.cpp's `tokenizer_st_partition`):
    /// for each special token, longest first, every occurrence in every
    /// remaining text fragment, left to right.
    fn partition(&self, text: &str, parse_special: bool, frags: &mut Vec<Fragment>) {
        frags.clear();
        if text.is_empty() {
            return;
        }
        frags.push(Fragment::Text(0, text.len()));
        let bytes = text.as_bytes();
        // Which bytes and byte pairs occur: a token with any pair that does not cannot match.
        let mut has_byte = [false; 256];
        let mut has_pair = alloc::vec![0u64; 1024];
        for &b in bytes {
            has_byte[b as usize] = true;
        }
        for w in bytes.windows(2) {
            let k = (w[0] as usize) << 8 | w[1] as usize;
            has_pair[k >> 6] |= 1 << (k & 63);
        }
        let may_occur = |t: &[u8]| {
            t.iter().all(|&b| has_byte[b as usize])
                && t.windows(2).all(|w| {
                    let k = (w[0] as usize) << 8 | w[1] as usize;
                    has_pair[k >> 6] & (1 << (k & 63)) != 0
                })
        };
        let mut next = Vec::new();
        for &id in &self.special {
            let a = self.attrs[id as usize];
            if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let tok = self.strings.get(id);
            if tok.is_empty() || tok.len() > bytes.len() || !may_occur(tok) {
                continue;
            }
            next.clear();
            let mut found = false;
            for &f in frags.iter() {
                let Fragment::Text(mut start, end) = f else {
                    next.push(f);
                    continue;
                };
                loop {
                    let Some(p) = find_bytes(&bytes[start..end], tok) else {
                        next.push(Fragment::Text(start, end));
                        break;
                    };
                    found = true;
                    let m = start + p;
                    let mut left_end = m;
                    if a & attr::LSTRIP != 0 {
                        while left_end > start && c_isspace(bytes[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > start {
                        next.push(Fragment::Text(start, left_end));
                    }
                    next.push(Fragment::Token(id));
                    let mut r = m + tok.len();
                    if r >= end {
                        break;
                    }
                    if a & attr::RSTRIP != 0 {
                        while r < end && c_isspace(bytes[r]) {
                            r += 1;
                        }
                    }
                    if r >= end {
                        break;
                    }
                    start = r;
                }
            }
            if found {
                core::mem::swap(frags, &mut next);
            }
        }
    }

    /// Decodes ids to text like llama.cpp's `llama_detokenize(.., remove_special
    /// = false, unparse_special = false)`: control tokens render as nothing,
    /// the leading space of a space-prefixed vocabulary is removed, and
    /// vocabularies that ask for it get llama.cpp's `clean_spaces` passes.
    /// Bytes that are not valid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String, Error> {
        let bytes = self.detokenize(ids, false)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// The raw bytes of [`Tokenizer::decode`]; `render_special` renders control
    /// tokens as their text.
    pub fn detokenize(&self, ids: &[u32], render_special: bool) -> Result<Vec<u8>, Error> {
        let mut text = Vec::with_capacity(ids.len() * 4);
        let mut remove_space = self.add_space_prefix;
        for &id in ids {
            let mut p = self.piece(id, render_special)?;
            if remove_space && p.first() == Some(&b' ') {
                p = &p[1..];
            }
            remove_space = false;
            text.extend_from_slice(p);
        }
        if self.clean_spaces {
            clean_spaces(&mut text);
        }
        Ok(text)
    }
}

/// llama.cpp's three `clean_spaces` passes of `detokenize`, ported literally
/// (they read the buffer they are rewriting).
fn clean_spaces(text: &mut Vec<u8>) {
    // " ?", " !", " .", " ," → drop the space
    let total1 = text.len();
    let mut total = usize::from(total1 > 0);
    for i in 1..total1 {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    // " ' " → "'"
    let total2 = total;
    total = usize::from(total2 > 0);
    let mut i = 1;
    while i < total2 {
        let x = text[i];
        if x == b'\'' && i + 1 < total2 && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    // " 's", " 'm", " 're", " 've" → drop the space
    let total3 = total;
    total = usize::from(total3 > 0);
    for i in 1..total3 {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < total3 {
            let x1 = text[i + 1];
            if x1 == b't' || x1 == b'd' {
            } else if x1 == b's' || x1 == b'm' {
                total -= 1;
            } else if i + 2 < total3 {
                let x2 = text[i + 2];
                if matches!((x1, x2), (b'r', b'e') | (b'v', b'e')) {
                    total -= 1;
                }
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

/// `strtol(s, 16)` on a two-char string: the value of its leading hex digits (0 if none).
fn parse_hex_prefix(s: &str) -> Option<u8> {
    let mut v: u32 = 0;
    for c in s.chars() {
        match c.to_digit(16) {
            Some(d) => v = v * 16 + d,
            None => break,
        }
    }
    Some(v as u8)
}

/// First occurrence of `needle` (non-empty) in `hay`.
fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    if hay.len() < needle.len() {
        return None;
    }
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        let p = hay[i..=last_start].iter().position(|&b| b == first)?;
        let s = i + p;
        if &hay[s + 1..s + needle.len()] == rest {
            return Some(s);
        }
        i = s + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_spaces_matches_llama_cpp() {
        let run = |s: &str| {
            let mut v = s.as_bytes().to_vec();
            clean_spaces(&mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(run("Hello , world !"), "Hello, world!");
        assert_eq!(run("it ' s"), "it's");
        assert_eq!(run("it 's he 'll we 're"), "it's he 'll we're");
        assert_eq!(run(""), "");
        assert_eq!(run(" ."), "."); // the first pass drops a leading space too
    }

    #[test]
    fn find_bytes_finds_first() {
        assert_eq!(find_bytes(b"abcabc", b"bc"), Some(1));
        assert_eq!(find_bytes(b"abc", b"abcd"), None);
        assert_eq!(find_bytes(b"aab", b"ab"), Some(1));
        assert_eq!(find_bytes(b"", b"a"), None);
    }
}
