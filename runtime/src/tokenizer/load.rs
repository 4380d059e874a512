//! Building a [`Tokenizer`] from GGUF metadata, step by step as llama.cpp's
//! `llama_vocab::impl::load` does it: vocabulary and token types, per-model
//! defaults, the file's flags and special ids, special tokens detected by
//! their text, end-of-generation tokens, the special-token list.

use super::bpe::Bpe;
use super::pretokenize::{lists, Split};
use super::table::StrTable;
use super::{attr, text_of, Model, Tokenizer};
use crate::gguf::{self, ShortStr, Value};
use crate::Error;
use alloc::string::ToString;
use alloc::vec::Vec;

/// The `tokenizer.*` metadata of a file, read in one pass (each `File::get` walks the metadata).
struct Meta<'a> {
    entries: Vec<(&'a str, Value<'a>)>,
}

impl<'a> Meta<'a> {
    fn get(&self, key: &str) -> Option<Value<'a>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn str(&self, key: &'static str) -> Result<Option<&'a str>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or(Error::Tokenizer { key, problem: "is not a string" }),
        }
    }

    fn bool(&self, key: &'static str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or(Error::Tokenizer { key, problem: "is not a bool" }),
        }
    }

    fn id(&self, key: &'static str) -> Result<Option<u64>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or(Error::Tokenizer { key, problem: "is not a token id" }),
        }
    }
}

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_SCORES: &str = "tokenizer.ggml.scores";
const KEY_TYPES: &str = "tokenizer.ggml.token_type";
const KEY_MERGES: &str = "tokenizer.ggml.merges";

/// Settings that follow from `tokenizer.ggml.pre` (llama.cpp's `load`).
struct PreSettings {
    splits: &'static [Split],
    clean_spaces: bool,
    ignore_merges: bool,
    add_bos: bool,
    no_bos: bool,
}

fn pre_settings(pre: &str) -> Option<PreSettings> {
    let s = |splits, clean_spaces, ignore_merges, add_bos| PreSettings {
        splits,
        clean_spaces,
        ignore_merges,
        add_bos,
        no_bos: false,
    };
    Some(match pre {
        "" | "default" => s(lists::DEFAULT, true, false, false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
        | "jina-v5-nano" => s(lists::LLAMA3, true, true, true),
        "dbrx" | "smaug-bpe" => s(lists::LLAMA3, true, false, false),
        "chatglm-bpe" => PreSettings { no_bos: true, ..s(lists::LLAMA3, true, false, false) },
        "glm4" | "glm5" => PreSettings { no_bos: true, ..s(lists::LLAMA3, true, true, false) },
        "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de" | "a.x-4.0"
        | "mellum" | "modern-bert" | "exaone4" | "mpt" | "olmo" | "jais" | "jina-v1-en" | "jina-v2-code"
        | "roberta-bpe" => s(lists::GPT2, true, false, false),
        "trillion" | "granite-docling" => s(lists::GPT2, false, false, false),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            s(lists::SMOLLM, true, false, false)
        }
        "smollm" | "command-r" => s(lists::SMOLLM, false, false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open" => {
            s(lists::QWEN2, false, false, false)
        }
        "megrez" | "stablelm2" => s(lists::QWEN2, true, false, false),
        _ => return None,
    })
}

/// Token texts that mark the end of a turn (llama.cpp's EOT auto-detection list).
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
/// Token texts that end generation (llama.cpp's EOG list).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

impl Tokenizer {
    /// Builds the tokenizer described by `file`'s `tokenizer.*` metadata.
    pub fn from_gguf(file: &gguf::File<'_>) -> Result<Tokenizer, Error> {
        let meta = Meta {
            entries: file
                .metadata()
                .filter(|(k, _)| k.starts_with("tokenizer.") || *k == "general.name" || *k == "general.architecture")
                .collect(),
        };
        let tok = Self::from_meta(&meta)?;
        // A model's ids index its embeddings: a vocabulary of another size
        // tokenizes into ids the model does not mean (llama.cpp refuses the
        // file: token_embd.weight "has wrong shape"). A vocabulary-only file
        // has no embeddings to check.
        if let Some(embd) = file.tensor("token_embd.weight") {
            if embd.dims[1] != tok.vocab_size() as u64 {
                return Err(Error::Tokenizer {
                    key: KEY_TOKENS,
                    problem: "has a different number of tokens than token_embd.weight has rows",
                });
            }
        }
        Ok(tok)
    }

    fn from_meta(meta: &Meta<'_>) -> Result<Tokenizer, Error> {
        let model_name = meta.str(KEY_MODEL)?.ok_or(Error::Tokenizer { key: KEY_MODEL, problem: "is missing" })?;
        let pre_name = meta.str(KEY_PRE)?.unwrap_or("");
        let tokens = meta
            .get(KEY_TOKENS)
            .ok_or(Error::Tokenizer { key: KEY_TOKENS, problem: "is missing" })?
            .as_array()
            .ok_or(Error::Tokenizer { key: KEY_TOKENS, problem: "is not an array" })?;
        let n = tokens.len();
        let n_tokens = u32::try_from(n)
            .ok()
            .filter(|&n| n < u32::MAX / 2)
            .ok_or(Error::Tokenizer { key: KEY_TOKENS, problem: "has too many tokens" })?;
        let token_strs =
            tokens.strings().ok_or(Error::Tokenizer { key: KEY_TOKENS, problem: "is not an array of strings" })?;

        // Vocabulary: texts (empty ones renamed as llama.cpp does), no duplicates.
        let mut strings = StrTable::with_capacity(n, tokens.raw_bytes().len());
        let mut count = 0usize;
        for (i, t) in token_strs.enumerate() {
            let renamed;
            let text = if t.is_empty() {
                renamed = alloc::format!("[EMPTY_{i}]");
                renamed.as_str()
            } else {
                t
            };
            match strings.insert(text.as_bytes()) {
                Some(Ok(_)) => {}
                Some(Err(_)) => return Err(Error::Tokenizer { key: KEY_TOKENS, problem: "has a duplicate token" }),
                None => return Err(Error::Tokenizer { key: KEY_TOKENS, problem: "is too large" }),
            }
            count += 1;
        }
        if count != n {
            return Err(Error::Tokenizer { key: KEY_TOKENS, problem: "has an unreadable string" });
        }

        let scores: Vec<f32> = match meta.get(KEY_SCORES) {
            None => alloc::vec![0.0; n],
            Some(v) => {
                let a = v.as_array().ok_or(Error::Tokenizer { key: KEY_SCORES, problem: "is not an array" })?;
                if a.len() < n {
                    return Err(Error::Tokenizer { key: KEY_SCORES, problem: "is shorter than the vocabulary" });
                }
                if let Some(it) = a.f32_iter() {
                    it.take(n).collect()
                } else if let Some(it) = a.i32_iter() {
                    it.take(n).map(|s| s as f32).collect()
                } else {
                    return Err(Error::Tokenizer { key: KEY_SCORES, problem: "is not an f32 or i32 array" });
                }
            }
        };
        let mut attrs: Vec<u16> = match meta.get(KEY_TYPES) {
            None => alloc::vec![attr::NORMAL; n],
            Some(v) => {
                let a = v.as_array().ok_or(Error::Tokenizer { key: KEY_TYPES, problem: "is not an array" })?;
                if a.len() < n {
                    return Err(Error::Tokenizer { key: KEY_TYPES, problem: "is shorter than the vocabulary" });
                }
                let it = a.i32_iter().ok_or(Error::Tokenizer { key: KEY_TYPES, problem: "is not an i32 array" })?;
                it.take(n)
                    .map(|t| match t {
                        1 => attr::NORMAL,
                        2 => attr::UNKNOWN,
                        3 => attr::CONTROL,
                        4 => attr::USER_DEFINED,
                        5 => attr::UNUSED,
                        6 => attr::BYTE,
                        _ => 0, // UNDEFINED
                    })
                    .collect()
            }
        };

        // Per-model defaults, then the file's settings (llama.cpp's order).
        let (mut bos, mut eos, mut unk): (Option<u32>, Option<u32>, Option<u32>);
        let (mut add_bos, mut add_eos, mut add_space_prefix, clean_spaces);
        let model = match model_name {
            "llama" => {
                (bos, eos, unk) = (Some(1), Some(2), Some(0));
                (add_bos, add_eos, add_space_prefix, clean_spaces) = (true, false, true, false);
                Model::Spm
            }
            "gpt2" => {
                let p = pre_settings(pre_name)
                    .ok_or(Error::UnsupportedTokenizer { key: KEY_PRE, name: ShortStr::new(pre_name) })?;
                (bos, eos, unk) = (if p.no_bos { None } else { Some(11) }, Some(11), None);
                (add_bos, add_eos, add_space_prefix, clean_spaces) = (p.add_bos, false, false, p.clean_spaces);
                let merges = meta
                    .get(KEY_MERGES)
                    .ok_or(Error::Tokenizer { key: KEY_MERGES, problem: "is missing" })?
                    .as_array()
                    .ok_or(Error::Tokenizer { key: KEY_MERGES, problem: "is not an array" })?;
                let merge_strs = merges
                    .strings()
                    .ok_or(Error::Tokenizer { key: KEY_MERGES, problem: "is not an array of strings" })?;
                Model::Bpe(Bpe::new(merge_strs, merges.len(), &mut strings, p.splits, p.ignore_merges)?)
            }
            other => return Err(Error::UnsupportedTokenizer { key: KEY_MODEL, name: ShortStr::new(other) }),
        };
        if let Some(v) = meta.bool("tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = v;
        }

        // Special token ids: defaults out of range are dropped; file ids out of range are ignored.
        let in_range = |id: Option<u32>| id.filter(|&id| id < n_tokens);
        let read_id = |key: &'static str, default: Option<u32>| -> Result<Option<u32>, Error> {
            Ok(match meta.id(key)? {
                Some(v) if v < n_tokens as u64 => Some(v as u32),
                _ => in_range(default),
            })
        };
        bos = read_id("tokenizer.ggml.bos_token_id", bos)?;
        eos = read_id("tokenizer.ggml.eos_token_id", eos)?;
        let mut eot = read_id("tokenizer.ggml.eot_token_id", None)?;
        let mut eom = read_id("tokenizer.ggml.eom_token_id", None)?;
        unk = read_id("tokenizer.ggml.unknown_token_id", unk)?;
        let pad = read_id("tokenizer.ggml.padding_token_id", None)?;
        let mut fim_pre = read_id("tokenizer.ggml.fim_pre_token_id", None)?;
        let mut fim_suf = read_id("tokenizer.ggml.fim_suf_token_id", None)?;
        let mut fim_mid = read_id("tokenizer.ggml.fim_mid_token_id", None)?;
        let mut fim_pad = read_id("tokenizer.ggml.fim_pad_token_id", None)?;
        let mut fim_rep = read_id("tokenizer.ggml.fim_rep_token_id", None)?;
        let mut fim_sep = read_id("tokenizer.ggml.fim_sep_token_id", None)?;
        fim_pre = read_id("tokenizer.ggml.prefix_token_id", fim_pre)?;
        fim_suf = read_id("tokenizer.ggml.suffix_token_id", fim_suf)?;
        fim_mid = read_id("tokenizer.ggml.middle_token_id", fim_mid)?;

        if let Some(v) = meta.bool("tokenizer.ggml.add_bos_token")? {
            add_bos = v;
        }
        if let Some(v) = meta.bool("tokenizer.ggml.add_eos_token")? {
            add_eos = v;
        }
        if add_bos && bos.is_none() {
            return Err(Error::Tokenizer {
                key: "tokenizer.ggml.add_bos_token",
                problem: "is true but there is no BOS token",
            });
        }
        if add_eos && eos.is_none() {
            return Err(Error::Tokenizer {
                key: "tokenizer.ggml.add_eos_token",
                problem: "is true but there is no EOS token",
            });
        }

        // Auto-detected special tokens (by text), made CONTROL if they are not.
        // llama.cpp walks a hash map here, so when several texts match, which one
        // it picks is unspecified; ember takes the lowest id. This can only matter
        // for `eot()` (every EOT text is also an EOG text, so all of them end
        // generation and are CONTROL anyway) and for a vocabulary with several
        // non-control FIM-looking tokens (only the picked one becomes CONTROL).
        let detect = |slot: &mut Option<u32>, texts: &[&str], attrs: &mut [u16]| {
            if slot.is_some() {
                return;
            }
            for t in texts {
                if let Some(id) = strings.find(t.as_bytes()).filter(|&id| id < n_tokens) {
                    if slot.is_none_or(|s| id < s) {
                        *slot = Some(id);
                    }
                }
            }
            if let Some(id) = *slot {
                attrs[id as usize] |= attr::CONTROL;
            }
        };
        for (slot, texts) in [
            (&mut fim_pre, FIM_PRE_TEXTS),
            (&mut fim_suf, FIM_SUF_TEXTS),
            (&mut fim_mid, FIM_MID_TEXTS),
            (&mut fim_pad, FIM_PAD_TEXTS),
            (&mut fim_rep, FIM_REP_TEXTS),
            (&mut fim_sep, FIM_SEP_TEXTS),
        ] {
            detect(slot, texts, &mut attrs);
        }
        detect(&mut eot, EOT_TEXTS, &mut attrs);
        detect(&mut eom, EOM_TEXTS, &mut attrs);

        // CONTROL tokens whose text says "unused" are UNUSED too.
        for id in 0..n_tokens {
            let a = &mut attrs[id as usize];
            if *a & attr::CONTROL != 0 && text_of(&strings, id).contains("unused") {
                *a |= attr::UNUSED;
            }
        }

        // End-of-generation tokens.
        let mut eog: Vec<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
        for t in EOG_TEXTS {
            if let Some(id) = strings.find(t.as_bytes()).filter(|&id| id < n_tokens) {
                eog.push(id);
                attrs[id as usize] |= attr::CONTROL;
            }
        }
        for t in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = strings.find(t.as_bytes()).filter(|&id| id < n_tokens) {
                attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        eog.extend([eos, eot, eom].into_iter().flatten());
        eog.sort_unstable();
        eog.dedup();
        let eog_has = |eog: &[u32], text: &str| eog.iter().copied().find(|&id| text_of(&strings, id) == text);
        // o200k_harmony / solar-open: "<|end|>" is not end-of-generation there.
        if let Some(end) = eog_has(&eog, "<|end|>") {
            let has_return = eog_has(&eog, "<|return|>").is_some();
            let has_call = eog_has(&eog, "<|call|>").is_some() || eog_has(&eog, "<|calls|>").is_some();
            let has_flush = eog_has(&eog, "<|flush|>").is_some();
            if has_call && (has_return || has_flush) {
                eog.retain(|&id| id != end);
                attrs[end as usize] = attr::USER_DEFINED;
            }
        }
        // gemma4 / plamo: "</s>" is a normal token there.
        if let Some(s) = eog_has(&eog, "</s>") {
            if eog_has(&eog, "<|tool_response>").is_some() || eog_has(&eog, "<|plamo:eos|>").is_some() {
                eog.retain(|&id| id != s);
                attrs[s as usize] = attr::NORMAL;
            }
        }

        // Tokens cut out of text before tokenizing, longest first.
        let mut special: Vec<u32> = (0..n_tokens)
            .filter(|&id| attrs[id as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
            .collect();
        special.sort_by_key(|&id| core::cmp::Reverse(strings.get(id).len()));

        // SentencePiece byte fallback tokens.
        let mut byte_tokens = [None; 256];
        if matches!(model, Model::Spm) {
            for (b, slot) in byte_tokens.iter_mut().enumerate() {
                let hex = alloc::format!("<0x{b:02X}>");
                *slot = strings.find(hex.as_bytes()).or_else(|| strings.find(&[b as u8])).filter(|&id| id < n_tokens);
            }
        }

        let mut tok = Tokenizer {
            model,
            pre: pre_name.to_string(),
            strings,
            n_tokens,
            scores,
            attrs,
            pieces: Vec::new(),
            piece_offsets: Vec::new(),
            special,
            byte_tokens,
            bos,
            eos,
            eot,
            eom,
            unk,
            pad,
            eog,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
        };
        tok.build_pieces();
        tok.set_model_specific_attrs(meta)?;
        Ok(tok)
    }

    /// llama.cpp's per-model LSTRIP/RSTRIP attributes (set after the piece cache, as there).
    fn set_model_specific_attrs(&mut self, meta: &Meta<'_>) -> Result<(), Error> {
        let name = meta.str("general.name")?.unwrap_or("").to_ascii_lowercase();
        let arch = meta.str("general.architecture")?.unwrap_or("");
        let set = |t: &mut Tokenizer, text: &str, bit: u16, on: bool| {
            if let Some(id) = t.token_id(text) {
                let a = &mut t.attrs[id as usize];
                *a = if on { *a | bit } else { *a & !bit };
            }
        };
        let pre = self.pre.clone();
        if ["jina-v2-de", "jina-v2-es", "jina-v2-code"].iter().any(|p| pre.contains(p))
            || ["nomic-bert-moe", "jina-bert-v3"].iter().any(|a| arch.contains(a))
        {
            set(self, "<mask>", attr::LSTRIP, true);
        } else if name.contains("phi-3") || name.contains("phi3") {
            for i in 0..self.special.len() {
                let id = self.special[i] as usize;
                self.attrs[id] |= attr::RSTRIP;
            }
            set(self, "</s>", attr::RSTRIP, true);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                set(self, t, attr::RSTRIP, false);
            }
        } else if name.contains("modern-bert") {
            set(self, "[MASK]", attr::LSTRIP, true);
        }
        Ok(())
    }
}
