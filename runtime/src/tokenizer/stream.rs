//! Streaming detokenization: text comes out as soon as it is complete UTF-8,
//! never a partial character, even when one character spans several tokens
//! (byte-fallback tokens, or byte-level BPE splitting an emoji).
//!
//! Like llama.cpp's server, the stream is the concatenation of the token
//! pieces (control tokens render as nothing unless asked for); it does not
//! apply `detokenize`'s `clean_spaces` or leading-space removal, which matter
//! only for vocabularies that ask for them (not SmolLM2 or Gemma 3).

use super::Tokenizer;
use crate::Error;
use alloc::string::String;
use alloc::vec::Vec;

/// Turns ids, fed one at a time, into text that is always whole characters.
#[derive(Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    out: String,
    render_special: bool,
}

impl StreamDecoder {
    /// A decoder that renders control tokens as nothing (like [`Tokenizer::decode`]).
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// A decoder that renders control tokens (`<|im_end|>`, ...) as their text.
    pub fn with_special_tokens() -> StreamDecoder {
        StreamDecoder { render_special: true, ..StreamDecoder::default() }
    }

    /// Adds token `id`; returns the text that became complete (possibly empty).
    /// Bytes that can never become valid UTF-8 are emitted as U+FFFD.
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<&str, Error> {
        let piece = tokenizer.piece(id, self.render_special)?;
        self.pending.extend_from_slice(piece);
        self.out.clear();
        let mut used = 0;
        loop {
            match core::str::from_utf8(&self.pending[used..]) {
                Ok(s) => {
                    self.out.push_str(s);
                    used = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix was just checked to be valid UTF-8.
                    self.out.push_str(core::str::from_utf8(&self.pending[used..used + valid]).unwrap_or_default());
                    used += valid;
                    match e.error_len() {
                        // An incomplete character at the end: wait for the next token.
                        None => break,
                        Some(bad) => {
                            self.out.push(char::REPLACEMENT_CHARACTER);
                            used += bad;
                        }
                    }
                }
            }
        }
        self.pending.drain(..used);
        Ok(&self.out)
    }

    /// Bytes held back waiting for the rest of a character.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Ends the stream: whatever is held back, with incomplete characters as U+FFFD.
    pub fn flush(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}
