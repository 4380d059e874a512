//! `ember perplexity`: bad input is a clear error (fast, any profile), and
//! with `--features e2e` (release) the full SmolLM2 run prints
//! llama-perplexity's progress and final line, within 0.5% of llama.cpp's
//! value in `../shared/reference/README.md`.

mod common;

use common::*;

fn apache() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/apache-2.0.txt").to_string()
}

fn fails_with(args: &[&str], needle: &str) {
    let out = ember(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "expected failure for {args:?}, got success:\n{err}");
    assert!(err.contains(needle), "stderr for {args:?} lacks {needle:?}:\n{err}");
}

#[test]
fn bad_input_is_an_error() {
    let scratch = Scratch::new("perplexity");
    let model = smollm2();
    let m = model.to_str().unwrap();
    let short = scratch.path("short.txt");
    std::fs::write(&short, "A few words are not enough text.\n").unwrap();
    let s = short.to_str().unwrap();
    fails_with(&["perplexity", "-m", m, "-f", s, "-c", "256"], "you need at least 512 tokens");
    let missing = scratch.path("missing.txt");
    fails_with(&["perplexity", "-m", m, "-f", missing.to_str().unwrap()], "missing.txt");
    let binary = scratch.path("binary.txt");
    std::fs::write(&binary, b"ok\xff\xfe").unwrap();
    fails_with(&["perplexity", "-m", m, "-f", binary.to_str().unwrap()], "not UTF-8");
    fails_with(&["perplexity", "-m", m, "-f", &apache(), "-c", "2"], "at least 3");
    fails_with(&["perplexity", "-m", m, "-f", &apache(), "-b", "0"], "--batch-size");
}

#[cfg(feature = "e2e")]
#[test]
fn smollm2_matches_llama_perplexity() {
    let model = smollm2();
    let out = ember(&["perplexity", "-m", model.to_str().unwrap(), "-f", &apache(), "-c", "256", "-b", "128"]);
    let text = ok_stdout(&out);
    println!("{text}{}", stderr(&out));
    let mut lines = text.lines();
    let progress = lines.next().unwrap();
    let values: Vec<f64> = progress
        .strip_suffix(',')
        .expect("progress ends with a comma")
        .split(',')
        .enumerate()
        .map(|(i, p)| {
            let v = p.strip_prefix(&format!("[{}]", i + 1)).unwrap_or_else(|| panic!("bad progress item {p:?}"));
            v.parse().unwrap()
        })
        .collect();
    assert_eq!(values.len(), 8, "SmolLM2 has 8 chunks of 256 tokens in the text, as llama.cpp");
    let last = lines.next().unwrap();
    let rest = last.strip_prefix("Final estimate: PPL = ").unwrap_or_else(|| panic!("bad final line {last:?}"));
    let (ppl, unc) = rest.split_once(" +/- ").unwrap();
    let (ppl, unc): (f64, f64) = (ppl.parse().unwrap(), unc.parse().unwrap());
    assert_eq!(format!("{:.4}", values[7]), format!("{ppl:.4}"));
    // llama.cpp: 17.7438 +/- 1.657 (../shared/reference/README.md).
    assert!((ppl / 17.7438 - 1.0).abs() <= 0.005, "PPL {ppl} vs llama.cpp 17.7438");
    assert!((unc / 1.657 - 1.0).abs() <= 0.02, "uncertainty {unc} vs llama.cpp 1.657");
}

/// `--chunks 1` failed on any text with "perplexity needs a text of at least
/// 2 x ctx tokens" (the one-chunk prefix was checked against the rule for
/// the whole text). A tiny model: fast in debug builds.
#[test]
fn one_chunk_is_scored() {
    let scratch = Scratch::new("perplexity-one-chunk");
    let model = scratch.path("tiny.gguf");
    write_tiny_llama(&model);
    let text = scratch.path("text.txt");
    std::fs::write(&text, "abcdefghijklmn".repeat(4)).unwrap();
    let (m, t) = (model.to_str().unwrap(), text.to_str().unwrap());
    for chunks in ["1", "2"] {
        let out = ember(&["perplexity", m, "-f", t, "-c", "8", "--chunks", chunks]);
        let stdout = ok_stdout(&out);
        assert!(stdout.contains("Final estimate: PPL = "), "--chunks {chunks}:\n{stdout}");
        assert!(stdout.contains(&format!("[{chunks}]")), "--chunks {chunks}:\n{stdout}");
    }
}
