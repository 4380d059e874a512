//! Splitting matrix work across threads.
//!
//! The forward pass hands each phase (the q/k/v projections, attention, the
//! FFN, the output head) to a [`Parallel`] executor as one job cut into
//! chunks (blocks of output rows, groups of attention heads). Threads claim
//! chunks from a shared counter, so a thread that the OS does not schedule
//! (another process on the core) leaves its chunks to the others instead of
//! stalling the step. Results depend only on the chunk, never on which
//! thread ran it, so they are identical for every thread count. One-token
//! matrix products (`ops::matvec`) go one step further: each pool call
//! claims a chunk of the weights from a region of its own thread first
//! (`ops::RowPlan`), so that each thread streams one contiguous range.
//!
//! [`Serial`] runs everything on the calling thread (the `no_std` path);
//! [`ThreadPool`] (feature `std`) keeps workers alive between jobs so that a
//! decode step, which hands out many small jobs per token, pays little
//! per hand-off: idle workers spin on an atomic generation counter for a
//! short while (then park, so an idle session costs no CPU) and the calling
//! thread works on the job too. A SmolLM2 decode step is 151 jobs (five per
//! block: q/k/v, attention, output projection, gate/up with the activation,
//! down; then the head), Gemma 3 270M's 91.
//!
//! When another process takes a worker's core while the worker holds a
//! chunk, the caller waits for the rest of an OS time slice, far longer than
//! a decode job; the pool then runs the next jobs on the caller alone for a
//! while (see `Solo`), so that two threads under contention are not slower
//! than one. Meanwhile [`Parallel::active_threads`] says 1, and the decode
//! step cuts its work as for one thread (one gemv call per matrix, not a
//! region per thread in guided chunks).
//!
//! Why not rayon: a decode-time matrix product of SmolLM2 is 10–40 µs of
//! work, so the hand-off must cost far less. `runtime/tests/model_threads.rs`
//! measures both (an empty job handed to 2 threads, and a 1536×576 Q4_1
//! matrix-vector product split over 2 threads).

use core::marker::PhantomData;
use core::ops::Range;

/// Most threads a session runs on (ggml's `GGML_MAX_N_THREADS`): a larger
/// count is an option error, not thousands of spawned threads.
pub const MAX_THREADS: usize = 512;

/// Something that runs a job's chunks on `threads()` threads at once:
/// `job(chunk, thread)` for every chunk in `0..chunks`, each exactly once,
/// with `thread < threads()` naming the thread (for per-thread scratch).
/// Returns when every chunk is done.
pub trait Parallel: Sync {
    /// Number of threads a job is spread over (at least 1): the bound on
    /// the `thread` index a job sees, for sizing per-thread scratch.
    fn threads(&self) -> usize;
    /// Number of threads the next job will most likely run on: what to cut
    /// work for. [`ThreadPool`] says 1 while it runs jobs on the caller
    /// alone (under contention, see `Solo`), so that the caller does not
    /// run a job cut for two as many small pieces. Only a hint: a job may
    /// still run on up to [`Parallel::threads`] threads, so results and
    /// scratch must not depend on it.
    fn active_threads(&self) -> usize {
        self.threads()
    }
    /// Runs `job(chunk, thread)` for each chunk, concurrently, and waits.
    fn run(&self, chunks: usize, job: &(dyn Fn(usize, usize) + Sync));
}

/// Runs every job on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl Parallel for Serial {
    fn threads(&self) -> usize {
        1
    }
    fn run(&self, chunks: usize, job: &(dyn Fn(usize, usize) + Sync)) {
        (0..chunks).for_each(|c| job(c, 0))
    }
}

/// The share of `0..n` that part `i` of `parts` takes: contiguous ranges whose
/// boundaries are multiples of `align` (except the end), as even as that allows.
pub fn split_rows(n: usize, parts: usize, i: usize, align: usize) -> Range<usize> {
    let parts = parts.max(1);
    let align = align.max(1);
    let units = n.div_ceil(align);
    let per = units / parts;
    let extra = units % parts;
    let start_u = i * per + i.min(extra);
    let end_u = start_u + per + usize::from(i < extra);
    (start_u * align).min(n)..(end_u * align).min(n)
}

/// A mutable slice that several threads write through, each to its own
/// disjoint part. Creating it borrows the slice mutably for `'a`, so nothing
/// else can touch it meanwhile.
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: `SharedMut` only hands out sub-slices through the `unsafe fn
// slice`, whose callers guarantee that no two live sub-slices overlap; with
// that, sending or sharing it across threads is like sending `&mut [T]` pieces.
unsafe impl<T: Send> Send for SharedMut<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    /// Wraps `s` for disjoint writes from several threads.
    pub fn new(s: &'a mut [T]) -> Self {
        SharedMut { ptr: s.as_mut_ptr(), len: s.len(), _borrow: PhantomData }
    }

    /// Length of the whole slice.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the whole slice is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sub-slice `r`. Panics if `r` is out of bounds.
    ///
    /// # Safety
    /// No two sub-slices obtained from this `SharedMut` that are alive at the
    /// same time may overlap (each thread takes its own rows).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, r: Range<usize>) -> &'a mut [T] {
        assert!(r.start <= r.end && r.end <= self.len, "SharedMut::slice out of bounds");
        // SAFETY: in bounds (checked above) of a slice borrowed mutably for
        // 'a; exclusivity of the range is the caller's contract.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start) }
    }
}

/// The first error reported by any thread of a job (later ones are dropped).
pub struct FirstError<E> {
    taken: core::sync::atomic::AtomicBool,
    slot: core::cell::UnsafeCell<Option<E>>,
}

// SAFETY: `slot` is written only by the one thread that wins the `taken`
// compare-exchange, and read only through `into_inner`, which consumes self
// (so after every thread is done with it).
unsafe impl<E: Send> Sync for FirstError<E> {}

impl<E> FirstError<E> {
    /// No error yet.
    pub fn new() -> Self {
        FirstError { taken: core::sync::atomic::AtomicBool::new(false), slot: core::cell::UnsafeCell::new(None) }
    }

    /// Records `e` if no error was recorded before.
    pub fn set(&self, e: E) {
        use core::sync::atomic::Ordering;
        if self.taken.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            // SAFETY: only the winner of the exchange above gets here, once.
            unsafe { *self.slot.get() = Some(e) };
        }
    }

    /// Records the error of `r`, if any.
    pub fn check<T>(&self, r: Result<T, E>) {
        if let Err(e) = r {
            self.set(e);
        }
    }

    /// The recorded error, as a `Result`.
    pub fn into_result(self) -> Result<(), E> {
        match self.slot.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<E> Default for FirstError<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// Number of physical cores this process may use: distinct (package, core)
/// pairs in `/proc/cpuinfo` on Linux, capped by the CPUs the process is
/// allowed to run on; elsewhere the number of logical CPUs.
#[cfg(feature = "std")]
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let physical = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        let mut pairs: std::vec::Vec<(u32, u32)> = std::vec::Vec::new();
        let mut phys = 0u32;
        for line in s.lines() {
            let mut it = line.splitn(2, ':');
            let (k, v) = (it.next().unwrap_or("").trim(), it.next().unwrap_or("").trim());
            if k == "physical id" {
                phys = v.parse().unwrap_or(0);
            } else if k == "core id" {
                let c = v.parse().unwrap_or(0);
                if !pairs.contains(&(phys, c)) {
                    pairs.push((phys, c));
                }
            }
        }
        (!pairs.is_empty()).then_some(pairs.len())
    });
    physical.unwrap_or(logical).min(logical).max(1)
}

#[cfg(feature = "std")]
pub use pool::ThreadPool;

#[cfg(feature = "std")]
mod pool {
    use super::Parallel;
    use std::boxed::Box;
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};
    use std::vec::Vec;

    type Job = *const (dyn Fn(usize, usize) + Sync + 'static);

    /// Keeps `T` on a cache line (two, for the adjacent-line prefetcher) of
    /// its own, so that threads writing one hot field do not invalidate the
    /// line another thread is spinning on.
    #[repr(align(128))]
    struct Line<T>(T);

    impl<T> core::ops::Deref for Line<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.0
        }
    }

    /// The state the caller and the workers share. The fields are grouped by
    /// who writes them when, one group per cache line: `next` is hammered by
    /// every thread during a job; `generation` is what idle workers spin on
    /// (written once per job); `active` is what the caller spins on at the
    /// end of a job (written by workers entering and leaving); the rest is
    /// written once per job by the caller, before `generation`.
    struct Shared {
        /// Next chunk to claim.
        next: Line<AtomicUsize>,
        /// Bumped for every job.
        generation: Line<AtomicU64>,
        /// Workers inside the current job.
        active: Line<AtomicUsize>,
        /// The current job; written by the caller before `generation` is
        /// bumped, read by a worker only while it is counted in `active`
        /// and the job's generation is not `closed`.
        job: UnsafeCell<Option<Job>>,
        /// Chunks of the current job.
        chunks: AtomicUsize,
        /// The last generation whose chunks are all claimed and done by the caller.
        closed: AtomicU64,
        /// Per worker: parked (or about to park) waiting for work.
        sleeping: Box<[AtomicBool]>,
        stop: AtomicBool,
        panicked: AtomicBool,
        busy: AtomicBool,
        spin: Duration,
    }

    // SAFETY: `job` is the only non-Sync field. It is written only by the
    // thread inside `ThreadPool::run` (exclusive through `busy`) before the
    // generation is published and while no worker can read it: a worker
    // reads it only after counting itself in `active` and seeing that its
    // generation is not yet `closed` (all SeqCst), and the caller closes a
    // generation and waits for `active == 0` before writing the next job.
    unsafe impl Sync for Shared {}
    // SAFETY: the raw job pointer is only dereferenced under the protocol above.
    unsafe impl Send for Shared {}

    impl Shared {
        /// Claims and runs chunks of the current job until none are left;
        /// returns how many this thread ran.
        fn work(&self, job: &(dyn Fn(usize, usize) + Sync), thread: usize) -> usize {
            let chunks = self.chunks.load(Acquire);
            let mut ran = 0;
            loop {
                let c = self.next.fetch_add(1, AcqRel);
                if c >= chunks {
                    return ran;
                }
                job(c, thread);
                ran += 1;
            }
        }

        /// Spins, then yields, until no worker is inside the job.
        fn wait_idle(&self) {
            let mut spins = 0u32;
            while self.active.load(SeqCst) != 0 {
                spins = spins.wrapping_add(1);
                if spins < 1 << 12 {
                    core::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// A persistent pool: `threads - 1` workers plus the calling thread.
    pub struct ThreadPool {
        shared: Arc<Shared>,
        workers: Vec<JoinHandle<()>>,
        pub(super) solo: Solo,
    }

    /// Time the caller runs jobs alone after a first stall (see [`Solo`]): a
    /// few time slices of the OS, some 250 SmolLM2 decode jobs or half a
    /// Gemma 3 token under contention. (2 ms lost a tenth of Gemma 3's
    /// tg64 -t 2 with a busy process on the other core, 3 alternated pairs;
    /// 8 ms was even with the 64 jobs before.)
    pub(super) const SOLO_MIN: Duration = Duration::from_millis(8);
    /// The longest time alone between two tries of the workers (2^6 times
    /// [`SOLO_MIN`]: some 15 000 SmolLM2 decode jobs).
    pub(super) const SOLO_MAX: Duration = Duration::from_millis(512);
    /// Time with the workers and without a stall after which a stall counts
    /// as a first one again. A stall costs the caller about a time slice,
    /// about what the second thread saves over a few milliseconds, so stalls
    /// that keep coming as soon as the workers are tried again make two
    /// threads a loss, and rarer ones do not.
    pub(super) const CLEAN_RESET: Duration = Duration::from_millis(64);
    /// The shortest wait for workers that counts as a stall.
    const STALL_MIN: Duration = Duration::from_micros(100);

    /// When to leave the workers out. A worker that the OS deschedules while
    /// it holds a chunk (another process wants its core) makes the caller
    /// wait for the rest of an OS time slice (milliseconds) at the end of the
    /// job, while a decode job takes tens of microseconds: two threads are
    /// then slower than one. So when the caller had to wait for the workers
    /// much longer than a chunk takes it (a stall), the pool runs the jobs of
    /// the next `backoff` of time on the caller alone (the workers park after
    /// their spin), then tries them again; a stall within [`CLEAN_RESET`] of
    /// the end of the last time alone doubles `backoff`, up to [`SOLO_MAX`].
    /// Results do not depend on this: chunks compute the same numbers on any
    /// thread. Only the thread that hands out jobs touches these (inside
    /// `run`, and in `active_threads`, whose `take` may end a time alone).
    ///
    /// The periods are measured in time, not jobs: a prompt batch's jobs
    /// take milliseconds, and a single short stall (a worker preempted for
    /// about a millisecond) sent the next 64 jobs, a third of a SmolLM2
    /// pp512 step, to one thread (pp512 -t 2 rounds 300 against 395 t/s).
    pub(super) struct Solo {
        /// Where the times below count from.
        epoch: Instant,
        /// End of the time alone, in ns since `epoch`; 0 when the workers
        /// take part.
        until: AtomicU64,
        /// End of the last time alone, in ns since `epoch` (0: none yet).
        last_end: AtomicU64,
        /// Length of the next time alone, in ns.
        backoff: AtomicU64,
    }

    impl Solo {
        pub(super) fn new() -> Solo {
            Solo {
                epoch: Instant::now(),
                until: AtomicU64::new(0),
                last_end: AtomicU64::new(0),
                backoff: AtomicU64::new(SOLO_MIN.as_nanos() as u64),
            }
        }

        /// Nanoseconds since `epoch` (at least 1, so never "none").
        fn now(&self) -> u64 {
            (self.epoch.elapsed().as_nanos() as u64).max(1)
        }

        /// Whether the next job runs on the caller alone. Reads the clock
        /// only during a time alone.
        pub(super) fn take(&self) -> bool {
            if self.until.load(Relaxed) == 0 {
                return false;
            }
            self.take_at(self.now())
        }

        /// [`Self::take`] at time `now` (ns since `epoch`).
        pub(super) fn take_at(&self, now: u64) -> bool {
            let until = self.until.load(Relaxed);
            if until == 0 {
                return false;
            }
            if now < until {
                return true;
            }
            self.until.store(0, Relaxed);
            false
        }

        /// Records a job the workers took part in: the caller ran `mine`
        /// chunks in `worked`, then waited `waited` for the workers.
        pub(super) fn record(&self, mine: usize, worked: Duration, waited: Duration) {
            if Self::is_stall(mine, worked, waited) {
                self.stall_at(self.now());
            }
        }

        /// Whether the wait was a stall: a worker holds a chunk at most about
        /// as long as the caller takes for one, and waiting much longer means
        /// it was descheduled.
        pub(super) fn is_stall(mine: usize, worked: Duration, waited: Duration) -> bool {
            let chunk = worked / (mine.max(1) as u32);
            mine > 0 && waited > STALL_MIN.max(4 * chunk)
        }

        /// A stall seen at time `now`: the jobs of the next `backoff` run on
        /// the caller alone.
        pub(super) fn stall_at(&self, now: u64) {
            let last = self.last_end.load(Relaxed);
            let min = SOLO_MIN.as_nanos() as u64;
            let b = if last == 0 || now.saturating_sub(last) > CLEAN_RESET.as_nanos() as u64 {
                min
            } else {
                self.backoff.load(Relaxed)
            };
            let until = now + b;
            self.until.store(until, Relaxed);
            self.last_end.store(until, Relaxed);
            self.backoff.store((2 * b).min(SOLO_MAX.as_nanos() as u64), Relaxed);
        }

        /// The end of the current time alone, if any (for tests).
        #[cfg(test)]
        pub(super) fn deadline(&self) -> Option<Instant> {
            let until = self.until.load(Relaxed);
            (until != 0).then(|| self.epoch + Duration::from_nanos(until))
        }
    }

    /// How long an idle worker of [`ThreadPool::new`] spins before parking.
    const SPIN: Duration = Duration::from_micros(100);

    impl ThreadPool {
        /// A pool running jobs on `threads` threads (the caller included).
        /// Idle workers spin for about 100 µs before parking.
        pub fn new(threads: usize) -> ThreadPool {
            ThreadPool::with_spin(threads, SPIN)
        }

        /// Like [`ThreadPool::new`] with a chosen spin time before an idle
        /// worker parks (zero: park at once).
        pub fn with_spin(threads: usize, spin: Duration) -> ThreadPool {
            ThreadPool::try_with_spin(threads, spin).expect("spawning a worker thread")
        }

        /// Like [`ThreadPool::new`], but a worker the OS refuses to start is
        /// an error (the workers already started are stopped), not a panic.
        pub fn try_new(threads: usize) -> std::io::Result<ThreadPool> {
            ThreadPool::try_with_spin(threads, SPIN)
        }

        fn try_with_spin(threads: usize, spin: Duration) -> std::io::Result<ThreadPool> {
            let n = threads.max(1);
            let shared = Arc::new(Shared {
                next: Line(AtomicUsize::new(0)),
                generation: Line(AtomicU64::new(0)),
                active: Line(AtomicUsize::new(0)),
                job: UnsafeCell::new(None),
                chunks: AtomicUsize::new(0),
                closed: AtomicU64::new(0),
                sleeping: (1..n).map(|_| AtomicBool::new(false)).collect(),
                stop: AtomicBool::new(false),
                panicked: AtomicBool::new(false),
                busy: AtomicBool::new(false),
                spin,
            });
            let mut pool = ThreadPool { shared, workers: Vec::with_capacity(n - 1), solo: Solo::new() };
            for i in 1..n {
                let s = Arc::clone(&pool.shared);
                // On an error, dropping `pool` stops and joins the workers started so far.
                let w =
                    std::thread::Builder::new().name(std::format!("ember-worker-{i}")).spawn(move || worker(&s, i))?;
                pool.workers.push(w);
            }
            Ok(pool)
        }
    }

    fn worker(s: &Shared, index: usize) {
        let mut seen = 0u64;
        loop {
            let mut since = Instant::now();
            let mut spins = 0u32;
            loop {
                if s.stop.load(Acquire) {
                    return;
                }
                let g = s.generation.load(SeqCst);
                if g != seen {
                    seen = g;
                    break;
                }
                spins = spins.wrapping_add(1);
                if !spins.is_multiple_of(1024) {
                    core::hint::spin_loop();
                    continue;
                }
                if since.elapsed() < s.spin {
                    continue;
                }
                let flag = &s.sleeping[index - 1];
                flag.store(true, SeqCst);
                if s.generation.load(SeqCst) == seen && !s.stop.load(SeqCst) {
                    std::thread::park();
                }
                flag.store(false, SeqCst);
                since = Instant::now();
            }
            s.active.fetch_add(1, SeqCst);
            if s.closed.load(SeqCst) < seen {
                // SAFETY: generation `seen` is not closed and we are counted
                // in `active`, so the caller of `run` is still inside it and
                // will not return (or replace the job) before we leave.
                let job = unsafe { (*s.job.get()).expect("a published job") };
                // SAFETY: as above, the job outlives this call.
                let job = unsafe { &*job };
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.work(job, index))).is_err() {
                    s.panicked.store(true, SeqCst);
                    // stop the others claiming chunks of a failed job
                    s.next.store(usize::MAX / 2, SeqCst);
                }
            }
            s.active.fetch_sub(1, SeqCst);
        }
    }

    /// Closes the generation and waits until no worker is inside the job,
    /// even while the caller's share is unwinding (the job must outlive the
    /// workers' use of it).
    struct CloseGuard<'a>(&'a Shared, u64);

    impl Drop for CloseGuard<'_> {
        fn drop(&mut self) {
            let s = self.0;
            // No chunk may start after this: claim everything that is left.
            s.next.store(usize::MAX / 2, SeqCst);
            s.closed.store(self.1, SeqCst);
            s.wait_idle();
            s.busy.store(false, Release);
        }
    }

    impl Parallel for ThreadPool {
        fn threads(&self) -> usize {
            self.workers.len() + 1
        }

        fn active_threads(&self) -> usize {
            if self.workers.is_empty() || self.solo.take() {
                1
            } else {
                self.threads()
            }
        }

        fn run(&self, chunks: usize, job: &(dyn Fn(usize, usize) + Sync)) {
            let s = &*self.shared;
            if chunks <= 1 || self.active_threads() == 1 {
                return (0..chunks).for_each(|c| job(c, 0));
            }
            assert!(
                s.busy.compare_exchange(false, true, Acquire, Relaxed).is_ok(),
                "ThreadPool::run called while another job is running on the same pool"
            );
            // SAFETY: lifetime erasure only. Workers dereference the pointer
            // only while counted in `active` with this generation open, and
            // `CloseGuard` closes it and waits for `active == 0` before this
            // function returns or unwinds, so `job` outlives every use.
            let erased: Job = unsafe {
                core::mem::transmute::<*const (dyn Fn(usize, usize) + Sync + '_), Job>(
                    job as *const (dyn Fn(usize, usize) + Sync),
                )
            };
            // SAFETY: `busy` gives this thread exclusive write access, and no
            // worker reads `job` now: the previous generation was closed with
            // `active == 0`, and workers check `closed` before reading.
            unsafe { *s.job.get() = Some(erased) };
            s.chunks.store(chunks, SeqCst);
            s.next.store(0, SeqCst);
            let generation = s.generation.fetch_add(1, SeqCst) + 1;
            for (w, flag) in self.workers.iter().zip(s.sleeping.iter()) {
                if flag.load(SeqCst) {
                    w.thread().unpark();
                }
            }
            let guard = CloseGuard(s, generation);
            let start = Instant::now();
            let mine = s.work(job, 0);
            let worked = start.elapsed();
            // Every chunk is claimed; chunks claimed by workers may still be
            // running: wait for them (the guard would too, also on unwinding).
            s.wait_idle();
            self.solo.record(mine, worked, start.elapsed() - worked);
            drop(guard);
            if s.panicked.swap(false, SeqCst) {
                panic!("a worker thread panicked while running a job");
            }
        }
    }

    impl Drop for ThreadPool {
        fn drop(&mut self) {
            self.shared.stop.store(true, SeqCst);
            for w in &self.workers {
                w.thread().unpark();
            }
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rows_covers_everything_once() {
        for n in [0usize, 1, 5, 64, 577, 1536] {
            for parts in 1..6 {
                for align in [1usize, 4, 16] {
                    let mut next = 0;
                    for i in 0..parts {
                        let r = split_rows(n, parts, i, align);
                        assert_eq!(r.start, next, "n={n} parts={parts} align={align}");
                        if r.end < n {
                            assert_eq!(r.end % align, 0);
                        }
                        next = r.end;
                    }
                    assert_eq!(next, n);
                }
            }
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn pool_runs_every_index_once_and_many_times() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for threads in 1..4 {
            let pool = ThreadPool::with_spin(threads, std::time::Duration::from_micros(50));
            assert_eq!(pool.threads(), threads);
            assert_eq!(pool.active_threads(), threads, "no stall yet: every thread takes part");
            let hits: std::vec::Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
            for round in 0..2000 {
                pool.run(7, &|c, t| {
                    assert!(t < threads);
                    hits[c % threads].fetch_add(1, Ordering::Relaxed);
                });
                if round == 1000 {
                    // let the workers park, then wake them again
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
            let total: usize = hits.iter().map(|h| h.load(Ordering::Relaxed)).sum();
            assert_eq!(total, 2000 * 7, "every chunk ran exactly once");
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn pool_writes_disjoint_rows() {
        let pool = ThreadPool::new(3);
        let mut out = std::vec![0u32; 1000];
        let shared = SharedMut::new(&mut out);
        pool.run(3, &|i, _| {
            let r = split_rows(1000, 3, i, 8);
            // SAFETY: `split_rows` ranges of distinct parts are disjoint.
            let s = unsafe { shared.slice(r.clone()) };
            for (k, v) in s.iter_mut().enumerate() {
                *v = (r.start + k) as u32;
            }
        });
        assert!(out.iter().enumerate().all(|(k, v)| *v == k as u32));
    }

    #[cfg(feature = "std")]
    #[test]
    fn stalls_send_jobs_to_the_caller_alone_with_a_doubling_backoff() {
        use pool::*;
        use std::time::Duration;
        let us = Duration::from_micros;
        let ns = |d: Duration| d.as_nanos() as u64;
        // the caller ran 4 chunks in 40 µs: a chunk takes 10 µs
        assert!(!Solo::is_stall(4, us(40), us(30)));
        assert!(!Solo::is_stall(4, us(40), us(99)), "waits under 100 µs are no stall");
        assert!(!Solo::is_stall(4, us(400), us(390)), "a wait under 4 chunks is no stall");
        assert!(!Solo::is_stall(0, us(0), us(5000)), "no judgement when the caller ran no chunk");
        assert!(Solo::is_stall(4, us(40), us(2000)));
        let solo = Solo::new();
        assert!(!solo.take_at(1), "the workers take part at first");
        // A first stall at t = 1 s: the caller alone until t + SOLO_MIN.
        let mut t = ns(Duration::from_secs(1));
        solo.stall_at(t);
        assert!(solo.take_at(t) && solo.take_at(t + ns(SOLO_MIN) - 1));
        assert!(!solo.take_at(t + ns(SOLO_MIN)), "the workers are tried again");
        assert!(!solo.take_at(t + ns(SOLO_MIN) - 1), "and stay in until the next stall");
        // stalls soon after the last time alone double it, up to SOLO_MAX
        let mut want = 2 * SOLO_MIN;
        t += ns(SOLO_MIN);
        for _ in 0..12 {
            t += ns(CLEAN_RESET) - 1;
            solo.stall_at(t);
            assert!(solo.take_at(t + ns(want) - 1), "alone for {want:?}");
            assert!(!solo.take_at(t + ns(want)));
            t += ns(want);
            want = (2 * want).min(SOLO_MAX);
        }
        assert_eq!(want, SOLO_MAX);
        // a stall more than CLEAN_RESET after the last time alone counts as a first one again
        t += ns(CLEAN_RESET) + 1;
        solo.stall_at(t);
        assert!(solo.take_at(t + ns(SOLO_MIN) - 1));
        assert!(!solo.take_at(t + ns(SOLO_MIN)));
    }

    #[cfg(feature = "std")]
    #[test]
    fn a_worker_descheduled_in_a_chunk_leaves_the_next_jobs_to_the_caller() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::{Duration, Instant};
        let pool = ThreadPool::new(2);
        // A worker chunk that sleeps 3 ms stands for a worker the OS took
        // off its core. The caller's chunks take 20 µs each, so that the
        // worker (once scheduled) gets a chunk of some job. On a busy machine
        // the caller may be descheduled too and the wait not look long next
        // to its own chunks: try again until the pool saw a stall.
        let start = Instant::now();
        while pool.solo.deadline().is_none() {
            assert!(start.elapsed() < Duration::from_secs(20), "no stall seen in 20 s of jobs");
            pool.run(4, &|_, t| {
                if t == 0 {
                    let s = Instant::now();
                    while s.elapsed() < Duration::from_micros(20) {
                        core::hint::spin_loop();
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(3));
                }
            });
        }
        // The jobs of the next SOLO_MIN run on the caller alone, every chunk
        // exactly once: a chunk on a worker can only start once that time is
        // over (the pool checks the clock before handing a job out).
        let end = pool.solo.deadline().expect("a stall was seen");
        assert!(end <= Instant::now() + pool::SOLO_MIN, "the first stall: the shortest time alone");
        // Meanwhile work is cut for one thread.
        let active = pool.active_threads();
        assert!(active == 1 || Instant::now() >= end, "alone, yet work cut for {active} threads");
        while Instant::now() < end {
            let ran = AtomicUsize::new(0);
            pool.run(8, &|_, t| {
                assert!(t == 0 || Instant::now() >= end, "a job in the time alone ran on a worker");
                ran.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(ran.into_inner(), 8);
        }
        // Then the workers are tried again (and take part once scheduled),
        // and work is cut for both threads, unless the last job above,
        // started just before `end`, met a new stall on a loaded machine.
        let active = pool.active_threads();
        assert!(active == 2 || pool.solo.deadline().is_some_and(|d| d > end), "work cut for {active} threads");
        let start = Instant::now();
        let on_worker = AtomicUsize::new(0);
        while on_worker.load(Ordering::Relaxed) == 0 {
            assert!(start.elapsed() < Duration::from_secs(20), "the worker was not tried again within 20 s");
            pool.run(4, &|_, t| {
                if t != 0 {
                    on_worker.fetch_add(1, Ordering::Relaxed);
                } else {
                    std::thread::sleep(Duration::from_micros(20));
                }
            });
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn worker_panic_is_reported_to_the_caller() {
        let pool = ThreadPool::new(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(64, &|i, _| {
                if i == 17 {
                    panic!("boom");
                }
                std::thread::sleep(std::time::Duration::from_micros(50));
            })
        }));
        assert!(r.is_err());
        // the pool still works afterwards
        let n = std::sync::atomic::AtomicUsize::new(0);
        pool.run(5, &|_, _| {
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(n.into_inner(), 5);
    }
}
