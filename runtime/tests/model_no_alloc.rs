//! After the session is created, producing a token allocates nothing: a
//! counting global allocator watches 64 `decode_next` calls (sampling with
//! temperature, top-k, top-p, min-p and penalties, on two threads).
#![cfg(feature = "e2e")]

mod common;

use ember::sampler::{SamplerParams, SamplerScratch};
use ember::session::{Session, SessionOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments; the
// counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn generating_64_tokens_allocates_nothing() {
    let model = ember::Model::open(common::smollm2()).unwrap();
    // The counter works: creating the session does allocate (the arena, the weights table).
    COUNTING.store(true, Ordering::SeqCst);
    let mut session = Session::new(&model, SessionOptions { ctx_len: 256, threads: 2, ..Default::default() }).unwrap();
    COUNTING.store(false, Ordering::SeqCst);
    assert!(ALLOCATIONS.swap(0, Ordering::SeqCst) > 0, "the counting allocator saw no allocation at all");
    let params = SamplerParams {
        temperature: 0.8,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.05,
        repeat_penalty: 1.1,
        seed: 5,
        ..Default::default()
    };
    let mut scratch = SamplerScratch::new(session.config().n_vocab, 64);
    let mut sampler = scratch.sampler(params).unwrap();
    // "Once upon a time" in SmolLM2's vocabulary.
    session.prefill(&[9690, 2107, 253, 655]).unwrap();
    // one token first, so lazily initialized runtime state (thread wake-ups) exists
    session.decode_next(&mut sampler).unwrap();

    COUNTING.store(true, Ordering::SeqCst);
    let mut tokens = [0u32; 64];
    for t in tokens.iter_mut() {
        *t = session.decode_next(&mut sampler).unwrap();
    }
    COUNTING.store(false, Ordering::SeqCst);

    let n = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(n, 0, "{n} heap allocations while generating 64 tokens");
    assert!(tokens.iter().all(|&t| (t as usize) < session.config().n_vocab));
    assert_eq!(session.pos(), 4 + 65);
}
