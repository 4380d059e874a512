//! Chat: the model's own chat template rendered with `minijinja`, and a
//! multi-turn conversation that keeps its history in the KV cache.
//!
//! Templates are the Jinja2 text of `tokenizer.chat_template` (the same
//! template Hugging Face keeps in `tokenizer_config.json`). They are rendered
//! the way `transformers` renders them (`apply_chat_template`): blocks
//! trimmed (`trim_blocks`, `lstrip_blocks`), `{% break %}`/`{% continue %}`,
//! Python string/dict methods (`.strip()`, `.startswith()`, `.items()`, ...),
//! `raise_exception(msg)`, `strftime_now(fmt)` and `tojson`, with the
//! variables `messages` (`role`, `content`), `add_generation_prompt`,
//! `bos_token` and `eos_token`.
//!
//! A model whose file has no template gets a built-in one chosen from its
//! vocabulary (Gemma's `<start_of_turn>` format when the vocabulary has those
//! markers, else ChatML), and [`TemplateSource`] says so, so the caller can
//! report it.
//!
//! A template comes with the model file, so a render has a budget: at most
//! [`TEMPLATE_FUEL`] units of work (instructions and bytes of strings built)
//! and [`TEMPLATE_RECURSION`] levels of nesting. A template that loops,
//! doubles a string or recurses without end fails with an error instead of
//! hanging, exhausting memory or overflowing the stack.
//!
//! [`Chat`] drives a conversation: each user turn re-renders the whole
//! conversation, tokenizes it, keeps the longest prefix already in the KV
//! cache and prefills only the rest. When the conversation no longer fits in
//! the context, the oldest turns are dropped (the system prompt is kept) and
//! the cache is refilled from the point where the text changed.
//!
//! Errors: template problems carry minijinja's message, which is heap text;
//! the crate's [`Error`] is heap-free by design (it must work without
//! `alloc`), so this std-only module has its own [`ChatError`] wrapping it.

use crate::gguf::File;
use crate::sampler::Sampler;
use crate::session::Session;
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::Error;
use minijinja::{Environment, ErrorKind, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

/// llama.cpp's fallback template (`CHATML_TEMPLATE_SRC` in `common/chat.cpp`).
pub const CHATML_TEMPLATE: &str = "{%- for message in messages -%}
  {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|im_start|>assistant\\n' -}}
{%- endif -%}";

/// The chat template of Google's Gemma 3 instruction-tuned models
/// (`tokenizer_config.json` of `google/gemma-3-*-it`), used for Gemma
/// vocabularies whose GGUF carries no template (such as gemma-3-270m).
pub const GEMMA_TEMPLATE: &str = "{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = \"\" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = \"model\" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception(\"Invalid content type\") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
";

/// The built-in templates, by name (`ember chat --chat-template NAME`).
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = &[("chatml", CHATML_TEMPLATE), ("gemma", GEMMA_TEMPLATE)];

/// An error of the chat layer.
#[derive(Debug)]
pub enum ChatError {
    /// The template does not compile or failed while rendering (`raise_exception`
    /// included); the message is minijinja's, with the line.
    Template(String),
    /// A runtime error (tokenizer, session).
    Ember(Error),
    /// The conversation cannot fit in the context even with every earlier
    /// turn dropped.
    TooLong {
        /// Tokens of the smallest prompt that could be built (system prompt and the new message).
        tokens: usize,
        /// Context length.
        ctx_len: usize,
    },
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::Template(m) => write!(f, "chat template: {m}"),
            ChatError::Ember(e) => write!(f, "{e}"),
            ChatError::TooLong { tokens, ctx_len } => write!(
                f,
                "the message does not fit in the context: with every earlier turn dropped the prompt is \
                 {tokens} tokens, the context holds {ctx_len} (use a larger context or a shorter message)"
            ),
        }
    }
}

impl std::error::Error for ChatError {}

impl From<Error> for ChatError {
    fn from(e: Error) -> Self {
        ChatError::Ember(e)
    }
}

fn template_error(e: minijinja::Error) -> ChatError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    ChatError::Template(msg)
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: &str, content: &str) -> Message {
        Message { role: role.to_string(), content: content.to_string() }
    }
}

/// Where a [`ChatTemplate`] came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateSource {
    /// `tokenizer.chat_template` in the GGUF file.
    Gguf,
    /// A built-in template, because the file has none.
    BuiltIn {
        /// Its name in [`BUILTIN_TEMPLATES`].
        name: &'static str,
        /// Why this one.
        reason: &'static str,
    },
    /// Given by the caller (a file or a name on the command line).
    Given(String),
}

impl fmt::Display for TemplateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateSource::Gguf => f.write_str("the model's own template (tokenizer.chat_template)"),
            TemplateSource::BuiltIn { name, reason } => {
                write!(f, "built-in `{name}` template: the model file has no tokenizer.chat_template; {reason}")
            }
            TemplateSource::Given(what) => write!(f, "template {what}"),
        }
    }
}

/// A compiled chat template with the model's BOS/EOS texts.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: TemplateSource,
    bos_token: String,
    eos_token: String,
}

impl fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatTemplate").field("source", &self.source).finish_non_exhaustive()
    }
}

const NAME: &str = "chat_template";

/// The most work one render may do, in `minijinja` fuel: one unit per
/// instruction, or per 64 bytes of the strings it builds (charged before
/// they are built). A template comes with the model file, so a crafted one
/// could otherwise loop for hours (`range` nested in `range`) or double a
/// string until memory runs out; with this budget it fails with "engine ran
/// out of fuel" after at most 2 million instructions or 128 MiB of strings.
/// Real templates need far less: a conversation of 20 000 short messages
/// renders within it through either built-in template (40 000 do not
/// through the Gemma one), where a 32 768-token context holds a few
/// thousand.
pub const TEMPLATE_FUEL: u64 = 2_000_000;

/// The deepest nesting a render may reach, in `minijinja`'s recursion
/// levels (its own limit is 500; a macro calling itself takes about five a
/// call, so this allows some 40 such calls in a row, against the handful a
/// template's recursive macros need): a template that recurses without end
/// fails with an error well before a thread's stack runs out (with the
/// budget above, 500 overflowed the 2 MiB stack of a test thread in a
/// debug build).
pub const TEMPLATE_RECURSION: usize = 200;

impl ChatTemplate {
    /// Compiles `text` (Jinja2). `bos_token`/`eos_token` are the texts the
    /// template sees under those names.
    pub fn new(
        text: &str,
        source: TemplateSource,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, ChatError> {
        let mut env = Environment::new();
        // transformers renders with trim_blocks and lstrip_blocks.
        let syntax = minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build();
        env.set_syntax(syntax.map_err(template_error)?);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_recursion_limit(TEMPLATE_RECURSION);
        env.add_function("raise_exception", |msg: String| -> Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("raise_exception: {msg}")))
        });
        env.add_function("strftime_now", |fmt: String| -> String { strftime_utc(&fmt, unix_now()) });
        env.add_template_owned(NAME, text.to_string()).map_err(template_error)?;
        Ok(ChatTemplate { env, source, bos_token: bos_token.to_string(), eos_token: eos_token.to_string() })
    }

    /// The template of the model in `file`: `tokenizer.chat_template` if it
    /// has one, else a built-in one chosen from the vocabulary (see
    /// [`builtin_for`]).
    pub fn for_model(file: &File<'_>, tokenizer: &Tokenizer) -> Result<ChatTemplate, ChatError> {
        let (bos, eos) = special_texts(tokenizer);
        match file.get_str("tokenizer.chat_template") {
            Some(text) if !text.trim().is_empty() => ChatTemplate::new(text, TemplateSource::Gguf, bos, eos),
            _ => {
                let (name, reason) = builtin_for(tokenizer);
                ChatTemplate::new(
                    builtin(name).unwrap_or(CHATML_TEMPLATE),
                    TemplateSource::BuiltIn { name, reason },
                    bos,
                    eos,
                )
            }
        }
    }

    /// A template given by the user: a built-in name (`chatml`, `gemma`) or Jinja2 text.
    pub fn given(text: &str, what: &str, tokenizer: &Tokenizer) -> Result<ChatTemplate, ChatError> {
        let (bos, eos) = special_texts(tokenizer);
        ChatTemplate::new(builtin(text).unwrap_or(text), TemplateSource::Given(what.to_string()), bos, eos)
    }

    /// Where the template came from.
    pub fn source(&self) -> &TemplateSource {
        &self.source
    }

    /// Renders `messages`; `add_generation_prompt` appends the opening of
    /// the assistant's turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, ChatError> {
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut map = BTreeMap::new();
                map.insert("role".to_string(), Value::from(m.role.as_str()));
                map.insert("content".to_string(), Value::from(m.content.as_str()));
                Value::from_object(map)
            })
            .collect();
        let mut ctx = BTreeMap::new();
        ctx.insert("messages".to_string(), Value::from(msgs));
        ctx.insert("add_generation_prompt".to_string(), Value::from(add_generation_prompt));
        ctx.insert("bos_token".to_string(), Value::from(self.bos_token.as_str()));
        ctx.insert("eos_token".to_string(), Value::from(self.eos_token.as_str()));
        let tmpl = self.env.get_template(NAME).map_err(template_error)?;
        tmpl.render(Value::from_object(ctx)).map_err(template_error)
    }

    /// Renders `messages` and tokenizes the result as a prompt: special-token
    /// text is parsed, and BOS/EOS are added as the tokenizer asks unless the
    /// template already wrote them (llama.cpp's `common_chat_templates_apply`).
    pub fn tokenize(
        &self,
        tokenizer: &Tokenizer,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>, ChatError> {
        let text = self.render(messages, add_generation_prompt)?;
        let mut s = text.as_str();
        if tokenizer.add_bos() && !self.bos_token.is_empty() {
            s = s.strip_prefix(self.bos_token.as_str()).unwrap_or(s);
        }
        if tokenizer.add_eos() && !self.eos_token.is_empty() {
            s = s.strip_suffix(self.eos_token.as_str()).unwrap_or(s);
        }
        Ok(tokenizer.encode(s, true, true)?)
    }
}

/// The built-in template called `name`.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN_TEMPLATES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The built-in template for a vocabulary without one, and why.
pub fn builtin_for(tokenizer: &Tokenizer) -> (&'static str, &'static str) {
    if tokenizer.token_id("<start_of_turn>").is_some() && tokenizer.token_id("<end_of_turn>").is_some() {
        ("gemma", "the vocabulary has Gemma's <start_of_turn>/<end_of_turn> markers")
    } else if tokenizer.token_id("<|im_start|>").is_some() {
        ("chatml", "the vocabulary has ChatML's <|im_start|>/<|im_end|> markers")
    } else {
        ("chatml", "no known turn markers in the vocabulary, so ChatML (llama.cpp's fallback)")
    }
}

fn special_texts(tokenizer: &Tokenizer) -> (&str, &str) {
    let text = |id: Option<u32>| id.and_then(|i| tokenizer.token_text(i)).unwrap_or("");
    (text(tokenizer.bos()), text(tokenizer.eos()))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `strftime` for the specifiers chat templates use (`%Y %m %d %e %H %M %S
/// %B %b %A %a %j %%`), in UTC; other specifiers are kept as they are.
fn strftime_utc(fmt: &str, unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUM[(m - 1) as usize] + d + i64::from(leap && m > 2);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('H') => out.push_str(&format!("{:02}", secs / 3600)),
            Some('M') => out.push_str(&format!("{:02}", secs / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", secs % 60)),
            Some('B') => out.push_str(month),
            Some('b') => out.push_str(&month[..3]),
            Some('A') => out.push_str(weekday),
            Some('a') => out.push_str(&weekday[..3]),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

/// What [`Chat::user`] did with the KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TurnStart {
    /// Tokens of the whole rendered conversation (the prompt of this turn).
    pub prompt_tokens: usize,
    /// Of those, tokens already in the KV cache and kept.
    pub reused: usize,
    /// Tokens run through the model now.
    pub prefilled: usize,
    /// Earlier messages dropped to make the conversation fit.
    pub dropped_messages: usize,
}

/// Why a reply ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// The reply reached the token limit.
    MaxTokens,
    /// The context is full.
    ContextFull,
}

/// The end of a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnEnd {
    /// Tokens generated (the end-of-generation token not counted).
    pub tokens: usize,
    /// Why it ended.
    pub reason: StopReason,
    /// The reply's text.
    pub text: String,
}

/// A conversation with a model, its history kept in the KV cache. See the module docs.
pub struct Chat<'m> {
    session: Session<'m>,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    messages: Vec<Message>,
    /// Whether `messages[0]` is the system prompt (never dropped).
    has_system: bool,
    /// The tokens in the KV cache, in order (`session.pos()` of them).
    cached: Vec<u32>,
}

impl<'m> Chat<'m> {
    /// A conversation over a fresh `session`, with an optional system prompt.
    pub fn new(
        mut session: Session<'m>,
        tokenizer: Tokenizer,
        template: ChatTemplate,
        system: Option<&str>,
    ) -> Chat<'m> {
        session.reset();
        let messages = system.map(|s| vec![Message::new("system", s)]).unwrap_or_default();
        Chat { session, tokenizer, template, has_system: !messages.is_empty(), messages, cached: Vec::new() }
    }

    /// The session.
    pub fn session(&self) -> &Session<'m> {
        &self.session
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The conversation so far.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Forgets the conversation (keeps the system prompt) and the KV cache.
    pub fn clear(&mut self) {
        self.messages.truncate(usize::from(self.has_system));
        self.cached.clear();
        self.session.reset();
    }

    /// Adds the user's message and makes the model ready to reply: renders the
    /// conversation with the generation prompt, drops the oldest turns while
    /// the prompt and `reserve` tokens for the reply do not fit in the
    /// context, and prefills what the KV cache does not hold yet.
    ///
    /// On error the conversation is left as it was.
    pub fn user(&mut self, text: &str, reserve: usize) -> Result<TurnStart, ChatError> {
        let ctx = self.session.ctx_len();
        let mut messages = self.messages.clone();
        messages.push(Message::new("user", text));
        let first = usize::from(self.has_system);
        let mut dropped = 0;
        let ids = loop {
            let ids = self.template.tokenize(&self.tokenizer, &messages, true)?;
            // Something to drop: a message between the system prompt and the new one.
            let can_drop = messages.len() - first > 1;
            if ids.len() + reserve <= ctx || !can_drop {
                break ids;
            }
            // Drop one message, then up to the next user message, so roles keep alternating.
            messages.remove(first);
            dropped += 1;
            while messages.len() - first > 1 && messages[first].role != "user" {
                messages.remove(first);
                dropped += 1;
            }
        };
        if ids.is_empty() {
            // A template that renders nothing, with no BOS added: nothing to prefill, no logits to sample.
            return Err(ChatError::Template("the conversation renders to no tokens".to_string()));
        }
        if ids.len() >= ctx {
            return Err(ChatError::TooLong { tokens: ids.len(), ctx_len: ctx });
        }

        // Keep the longest common prefix (at least one token is fed so there are fresh logits).
        let common = self.cached.iter().zip(&ids).take_while(|(a, b)| a == b).count();
        let mut keep = common.min(ids.len() - 1);
        if self.session.truncate(keep).is_err() {
            // A sliding-window cache may no longer hold what that position needs.
            self.session.reset();
            keep = 0;
        }
        self.cached.truncate(keep);
        if let Err(e) = self.session.prefill(&ids[keep..]) {
            // The cache is in an unknown state: start over next time.
            self.session.reset();
            self.cached.clear();
            return Err(e.into());
        }
        self.cached.extend_from_slice(&ids[keep..]);
        self.messages = messages;
        Ok(TurnStart { prompt_tokens: ids.len(), reused: keep, prefilled: ids.len() - keep, dropped_messages: dropped })
    }

    /// Generates the assistant's reply after [`Chat::user`], passing text to
    /// `emit` as it becomes complete UTF-8, until an end-of-generation token,
    /// `max_tokens` tokens (0: no limit) or a full context. The reply joins the
    /// conversation (also when it was cut short).
    pub fn reply(
        &mut self,
        sampler: &mut Sampler<'_>,
        max_tokens: usize,
        emit: &mut dyn FnMut(&str),
    ) -> Result<TurnEnd, ChatError> {
        let ctx = self.session.ctx_len();
        let mut decoder = StreamDecoder::new();
        let mut text = String::new();
        let mut tokens = 0;
        let reason = loop {
            let t = sampler.sample(self.session.logits())?;
            let room = self.session.pos() < ctx;
            let eog = self.tokenizer.is_eog(t);
            if !eog {
                tokens += 1;
                let piece = decoder.push(&self.tokenizer, t)?;
                text.push_str(piece);
                emit(piece);
            }
            // The token goes into the cache (the end-of-turn token too: the
            // next turn's prompt starts with it).
            if room {
                self.session.prefill(&[t])?;
                self.cached.push(t);
            }
            if eog {
                break StopReason::EndOfGeneration;
            }
            if !room {
                break StopReason::ContextFull;
            }
            if max_tokens > 0 && tokens >= max_tokens {
                break StopReason::MaxTokens;
            }
        };
        let rest = decoder.flush();
        if !rest.is_empty() {
            text.push_str(&rest);
            emit(&rest);
        }
        self.messages.push(Message::new("assistant", &text));
        Ok(TurnEnd { tokens, reason, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(list: &[(&str, &str)]) -> Vec<Message> {
        list.iter().map(|(r, c)| Message::new(r, c)).collect()
    }

    #[test]
    fn chatml_renders_like_llama_cpp() {
        let t = ChatTemplate::new(CHATML_TEMPLATE, TemplateSource::Given("test".into()), "", "").unwrap();
        let m = msgs(&[("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "2+2?")]);
        assert_eq!(
            t.render(&m, true).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            t.render(&m[..2], false).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
    }

    #[test]
    fn gemma_template_folds_system_into_first_user_turn() {
        let t = ChatTemplate::new(GEMMA_TEMPLATE, TemplateSource::Given("test".into()), "<bos>", "<eos>").unwrap();
        let m = msgs(&[("system", "Be brief."), ("user", "  Hi \n"), ("assistant", "Hello!"), ("user", "2+2?")]);
        assert_eq!(
            t.render(&m, true).unwrap(),
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n\
             <start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n"
        );
        let e = t.render(&msgs(&[("user", "a"), ("user", "b")]), true).unwrap_err();
        assert!(e.to_string().contains("Conversation roles must alternate"), "{e}");
    }

    #[test]
    fn smollm2_template_adds_its_default_system_prompt() {
        // tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf, verbatim.
        let src = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
        let t = ChatTemplate::new(src, TemplateSource::Gguf, "<|im_start|>", "<|im_end|>").unwrap();
        assert_eq!(
            t.render(&msgs(&[("user", "Hi")]), true).unwrap(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_blocks_and_loop_controls() {
        // Features common in Hugging Face templates (Qwen, Llama 3, Mistral).
        // Expected output from Python's jinja2 3.1.6 as transformers configures it
        // (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols).
        let src = "{%- for m in messages %}\n  {%- if m.role == 'system' %}{% continue %}{% endif %}\n  \
                   {{- m.role.upper() }}: {{ m.content.strip() }}{% if m.content.strip().startswith('x') %}!{% endif %}\n\
                   {{ '\\n' }}\n  {%- if loop.index > 2 %}{% break %}{% endif %}\n{% endfor %}\n\
                   {{ messages | length }} {{ {'a': 1} | tojson }} {{ strftime_now('%Y') | length }} \
                   {{ messages[-1].content.split(',') | join('+') }}";
        let t = ChatTemplate::new(src, TemplateSource::Given("test".into()), "", "").unwrap();
        let m = msgs(&[("system", "s"), ("user", " xy "), ("assistant", "ok"), ("user", "a,b")]);
        assert_eq!(t.render(&m, false).unwrap(), "USER: xy!\nASSISTANT: ok\n4 {\"a\": 1} 4 a+b");
    }

    #[test]
    fn template_errors_are_reported_not_panics() {
        let e = ChatTemplate::new("{% for x in %}", TemplateSource::Given("test".into()), "", "").unwrap_err();
        assert!(matches!(e, ChatError::Template(_)), "{e}");
        let t = ChatTemplate::new("{{ raise_exception('no tools here') }}", TemplateSource::Gguf, "", "").unwrap();
        let e = t.render(&[], true).unwrap_err();
        assert!(e.to_string().contains("no tools here"), "{e}");
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        for src in [
            // Hours of loops.
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            // A string doubled 40 times (a terabyte) by a namespace, 30 times
            // (a gigabyte) by a macro calling itself.
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
            "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s }}{% endif %}{% endmacro %}{{ d('x', 30) }}",
        ] {
            let t = ChatTemplate::new(src, TemplateSource::Gguf, "", "").unwrap();
            let e = t.render(&msgs(&[("user", "Hi")]), true).unwrap_err();
            assert!(e.to_string().contains("fuel"), "{src}: {e}");
        }
    }

    #[test]
    fn endless_recursion_is_an_error() {
        let t =
            ChatTemplate::new("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", TemplateSource::Gguf, "", "").unwrap();
        let e = t.render(&msgs(&[("user", "Hi")]), true).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
        // Macros calling themselves a few dozen levels deep still render.
        let src = "{% macro c(n) %}{% if n %}({{ c(n - 1) }}){% endif %}{% endmacro %}{{ c(30) }}";
        let t = ChatTemplate::new(src, TemplateSource::Gguf, "", "").unwrap();
        assert_eq!(t.render(&[], true).unwrap(), format!("{}{}", "(".repeat(30), ")".repeat(30)));
    }

    #[test]
    fn long_conversations_render_within_the_fuel() {
        let turns: Vec<(&str, &str)> =
            (0..1000).flat_map(|_| [("user", "What is the capital of France?"), ("assistant", "Paris is.")]).collect();
        let m = msgs(&turns);
        for (name, text) in BUILTIN_TEMPLATES {
            let t = ChatTemplate::new(text, TemplateSource::Given((*name).into()), "<bos>", "<eos>").unwrap();
            let out = t.render(&m, true).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out.matches("Paris is.").count(), 1000, "{name}");
        }
    }

    #[test]
    fn strftime_known_dates() {
        // 2024-02-29 13:05:09 UTC, a Thursday, day 60 of a leap year.
        let t = 1_709_211_909;
        assert_eq!(
            strftime_utc("%Y-%m-%d %H:%M:%S %a %A %b %B %j %e %% %q", t),
            "2024-02-29 13:05:09 Thu Thursday Feb February 060 29 % %q"
        );
        assert_eq!(strftime_utc("%d %b %Y", 0), "01 Jan 1970");
        assert_eq!(strftime_utc("%d %b %Y %A", 951_782_400), "29 Feb 2000 Tuesday");
    }

    #[test]
    fn builtins_are_listed() {
        assert_eq!(builtin("chatml"), Some(CHATML_TEMPLATE));
        assert_eq!(builtin("gemma"), Some(GEMMA_TEMPLATE));
        assert_eq!(builtin("nope"), None);
    }
}
