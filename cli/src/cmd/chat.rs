//! `ember chat [-m MODEL] [--system TEXT]`: a conversation read from stdin,
//! one user turn per line (a line ending in `\` continues on the next), the
//! replies streamed to stdout. Works on a terminal and on a pipe.
//!
//! The conversation is rendered with the model's chat template and its
//! history stays in the KV cache: each turn only the part of the rendered
//! prompt that is new is run through the model ([`ember::chat::Chat`]). When
//! the context fills, the oldest turns are dropped (the system prompt stays)
//! and the rest is run again; this is said on stderr.
//!
//! Lines `/reset` (forget the conversation) and `/exit` are commands.

use super::run::{self, SamplingArgs, SessionArgs};
use crate::model_arg::ModelArg;
use anyhow::{bail, Context};
use ember::chat::{Chat, ChatError, ChatTemplate, Message, StopReason, TemplateSource};
use ember::sampler::SamplerScratch;
use std::io::{BufRead, IsTerminal};
use std::time::Instant;

/// Arguments of `ember chat`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// System prompt (kept when old turns are dropped).
    #[arg(long, value_name = "TEXT")]
    system: Option<String>,
    /// Most tokens per reply; -1 (any negative): until the end of the turn or a full context.
    #[arg(short = 'n', long = "n-predict", value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    n_predict: i64,
    /// Use this template instead of the model's: a built-in name (`chatml`,
    /// `gemma`) or a file with a Jinja2 chat template.
    #[arg(long, value_name = "NAME|FILE")]
    chat_template: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    session: SessionArgs,
    /// Print the kernel tier and, per turn, the tokens reused from the KV
    /// cache, prefilled and generated, with their speed.
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Reads one user turn, as bytes: a line, continued while it ends in `\`.
/// `None` at end of input. The caller checks that it is UTF-8.
fn read_turn(input: &mut impl BufRead, prompt: bool) -> anyhow::Result<Option<Vec<u8>>> {
    let mut turn = Vec::new();
    loop {
        if prompt {
            eprint!("{}", if turn.is_empty() { "> " } else { ". " });
        }
        let mut buf = Vec::new();
        if input.read_until(b'\n', &mut buf).context("reading stdin")? == 0 {
            return Ok((!turn.is_empty()).then_some(turn));
        }
        let mut line = buf.as_slice();
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        match line.strip_suffix(b"\\") {
            Some(head) => {
                turn.extend_from_slice(head);
                turn.push(b'\n');
            }
            None => {
                turn.extend_from_slice(line);
                return Ok(Some(turn));
            }
        }
    }
}

/// Runs `ember chat`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut params = args.sampling.params()?;
    let opts = args.session.options()?;
    let loaded = run::load(&args.model)?;
    let session = run::session(&loaded.model, opts, &mut params)?;
    let ctx = session.ctx_len();
    let template = match &args.chat_template {
        Some(t) if ember::chat::builtin(t).is_some() => {
            ChatTemplate::given(t, &format!("`{t}` (built-in, --chat-template)"), &loaded.tokenizer)
        }
        Some(file) => {
            let text = super::read_text(file.as_ref()).with_context(|| {
                let names: Vec<&str> = ember::chat::BUILTIN_TEMPLATES.iter().map(|(n, _)| *n).collect();
                format!(
                    "--chat-template {file:?} is not a built-in template ({}) and cannot be read as a file",
                    names.join(", ")
                )
            })?;
            ChatTemplate::given(&text, &format!("from {file} (--chat-template)"), &loaded.tokenizer)
        }
        None => ChatTemplate::for_model(&loaded.model.gguf(), &loaded.tokenizer),
    }
    .map_err(anyhow::Error::msg)?;
    if args.verbose {
        eprintln!("{}", run::describe_session(&session));
        eprintln!("ember: model {}; seed {}", loaded.path.display(), params.seed);
    }
    if args.verbose || !matches!(template.source(), TemplateSource::Gguf) {
        eprintln!("ember: chat template: {}", template.source());
    }

    let n_vocab = session.config().n_vocab;
    let mut chat = Chat::new(session, loaded.tokenizer, template, args.system.as_deref());
    // Render a sample turn to find a broken template before any input is read.
    let mut sample = chat.messages().to_vec();
    sample.push(Message::new("user", "Hello"));
    if let Err(e) = chat.template().render(&sample, true) {
        bail!("{e}");
    }
    let mut scratch = SamplerScratch::new(n_vocab, params.penalty_last_n);
    let mut sampler = scratch.sampler(params).context("sampler settings")?;
    let max_tokens = usize::try_from(args.n_predict).unwrap_or(0);
    // Room kept for a reply when deciding whether old turns must go.
    let reserve = if max_tokens > 0 { max_tokens } else { 512 }.min(ctx / 2);

    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut failed = 0usize;
    let mut turn_no = 0usize;
    if interactive {
        eprintln!("ember: chatting with {}; /reset forgets, /exit or Ctrl-D ends", loaded.path.display());
    }
    while let Some(bytes) = read_turn(&mut input, interactive)? {
        let line = match String::from_utf8(bytes) {
            Ok(line) => line,
            Err(e) => {
                // Not sent with U+FFFD in place of the bad bytes: the turn is
                // refused, the conversation so far is kept.
                turn_no += 1;
                eprintln!(
                    "ember: error: turn {turn_no}: the input is not UTF-8 text (invalid byte at offset {} of the \
                     turn); the turn is skipped",
                    e.utf8_error().valid_up_to()
                );
                failed += 1;
                continue;
            }
        };
        let text = line.trim();
        match text {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                chat.clear();
                eprintln!("ember: conversation forgotten");
                continue;
            }
            _ => {}
        }
        turn_no += 1;
        let t0 = Instant::now();
        let start = match chat.user(text, reserve) {
            Ok(s) => s,
            Err(e @ (ChatError::TooLong { .. } | ChatError::Template(_))) => {
                eprintln!("ember: error: turn {turn_no}: {e}");
                failed += 1;
                continue;
            }
            Err(e) => return Err(anyhow::Error::msg(e.to_string())).context(format!("turn {turn_no}")),
        };
        let prefill_time = t0.elapsed();
        if start.dropped_messages > 0 {
            let kept = if args.system.is_some() { ", kept the system prompt" } else { "" };
            eprintln!(
                "ember: the conversation no longer fits in the context ({ctx} tokens): dropped the {} oldest \
                 message(s){kept}; {} tokens run again",
                start.dropped_messages, start.prefilled
            );
        }
        if args.verbose {
            eprintln!(
                "ember: turn {turn_no}: prompt {} tokens, {} reused from the KV cache, {} prefilled in {:.1} ms ({})",
                start.prompt_tokens,
                start.reused,
                start.prefilled,
                prefill_time.as_secs_f64() * 1000.0,
                run::rate(
                    (start.prefilled > 0 && !prefill_time.is_zero())
                        .then(|| start.prefilled as f64 / prefill_time.as_secs_f64())
                )
            );
        }

        let t1 = Instant::now();
        let mut out = stdout.lock();
        let mut write_err = None;
        let end = chat
            .reply(&mut sampler, max_tokens, &mut |s| {
                if write_err.is_none() {
                    write_err = run::write_flush(&mut out, s).err();
                }
            })
            .map_err(|e| anyhow::Error::msg(e.to_string()))
            .with_context(|| format!("turn {turn_no}"))?;
        if let Some(e) = write_err.or_else(|| run::write_flush(&mut out, "\n").err()) {
            // stdout is gone (nobody reads the replies any more), or failed.
            return super::closed_or_failed(e);
        }
        drop(out);
        let gen_time = t1.elapsed();
        if end.reason == StopReason::ContextFull {
            eprintln!("ember: the reply was cut: the context ({ctx} tokens) is full; older turns go next turn");
        }
        if args.verbose {
            let reason = match end.reason {
                StopReason::EndOfGeneration => "end of turn",
                StopReason::MaxTokens => "-n reached",
                StopReason::ContextFull => "context full",
            };
            eprintln!(
                "ember: turn {turn_no}: reply {} tokens in {:.1} ms ({}), stopped: {reason}; {} tokens in the KV cache",
                end.tokens,
                gen_time.as_secs_f64() * 1000.0,
                run::rate((end.tokens > 0).then(|| end.tokens as f64 / gen_time.as_secs_f64())),
                chat.session().pos()
            );
        }
    }
    if failed > 0 {
        bail!("{failed} turn(s) failed");
    }
    Ok(())
}
