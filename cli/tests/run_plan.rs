//! `ember info --plan -c N`: the memory plan a `run`/`chat` session would use,
//! its KV cache sized from the model's shape (SmolLM2-135M: 30 layers, 3 KV
//! heads of 64), the context and the cache type.

mod common;

use common::{ember, ok_stdout};
use serde_json::Value;

#[test]
fn plan_follows_context_and_kv_type() {
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    let text = ok_stdout(&ember(&["info", m, "--plan", "-c", "512", "-t", "1"]));
    assert!(text.contains("memory plan: context 512 tokens, batch 256, KV cache f16, 1 thread"), "{text}");
    assert!(text.contains("30 x 2 x 512 x 192 f16"), "{text}");

    let kv_bytes = |args: &[&str]| -> u64 {
        let mut all = vec!["info", m, "--json", "--plan"];
        all.extend_from_slice(args);
        let v: Value = serde_json::from_str(&ok_stdout(&ember(&all))).unwrap();
        assert!(v["plan"]["total_bytes"].as_u64().unwrap() > v["plan"]["kv_cache_bytes"].as_u64().unwrap());
        v["plan"]["kv_cache_bytes"].as_u64().unwrap()
    };
    // layers x (K and V) x positions x kv_heads*head_dim x bytes
    assert_eq!(kv_bytes(&["-c", "512"]), 30 * 2 * 512 * 192 * 2);
    assert_eq!(kv_bytes(&["-c", "512", "--kv-type", "f32"]), 30 * 2 * 512 * 192 * 4);
    assert_eq!(kv_bytes(&["-c", "2048"]), 30 * 2 * 2048 * 192 * 2);
    // no --plan, no plan
    let v: Value = serde_json::from_str(&ok_stdout(&ember(&["info", m, "--json"]))).unwrap();
    assert!(v.get("plan").is_none());
}
