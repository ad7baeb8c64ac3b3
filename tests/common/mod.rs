//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on its own thread and fails the test if it takes longer than
/// `secs`: a hang fails instead of stalling CI.
pub fn bounded<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("bounded-test".into())
        .spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => resume_unwind(p),
        Err(_) => panic!("test did not finish within {secs} s (hang?)"),
    }
}

/// Set in a child process started by `run_child`.
const CHILD_ENV: &str = "GORO_TEST_CHILD";

/// Whether this test binary runs as a child of `run_child`. Child entry
/// points are `#[ignore]`d (so a normal run lists them as ignored, not as
/// passed) and also return at once unless this is set, in case someone
/// runs them with `--ignored`.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// How long a child process may run before `run_child` kills it.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the (ignored) test `test` of this test binary in a child process,
/// with `env`, and returns its output. A child that runs longer than
/// `CHILD_TIMEOUT` is killed and the calling test fails with what the child
/// printed: a hang fails instead of stalling CI.
pub fn run_child(test: &str, env: &[(&str, &str)]) -> std::process::Output {
    run_child_for(test, env, CHILD_TIMEOUT)
}

/// `run_child` with its own time bound.
pub fn run_child_for(test: &str, env: &[(&str, &str)], limit: Duration) -> std::process::Output {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(status) => std::process::Output { status, stdout, stderr },
        None => panic!(
            "child `{test}` did not finish within {limit:?} (hang?); it printed:\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// A small deterministic PRNG for random delays (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Spins for about `micros` µs without calling the runtime.
pub fn busy(micros: u64) {
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
}

/// Waits until `cond` holds, checking every millisecond (a G sleeps, a
/// plain thread sleeps); fails after 20 s naming `what`. For waiting on a
/// state (a G parked, a counter reached) instead of sleeping and hoping.
pub fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let t = std::time::Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out waiting until {what}");
        if goro::in_goroutine() {
            goro::sleep(Duration::from_millis(1));
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Gs of the caller's runtime that are parked (status waiting).
pub fn parked_goroutines() -> usize {
    goro::stats().waiting_goroutines
}

/// procs = 1: how many times a yielding worker G runs while another G does
/// `work` (a syscall, a computation, a blocking call the runtime does not
/// know about), counted from just before to just after it; and the
/// runtime's stats after.
pub fn progress_during(policy: goro::Policy, work: fn()) -> (u64, goro::Stats) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    let rt = unsafe { goro::Runtime::builder().procs(1).policy(policy).build() }.unwrap();
    let progress = rt.block_on(move || {
        let counter = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, s2) = (counter.clone(), stop.clone());
        let worker = goro::go(move || {
            while !s2.load(Ordering::Relaxed) {
                c2.fetch_add(1, Ordering::Relaxed);
                goro::yield_now();
            }
        });
        // Let the worker start, so that both Gs are on the P.
        wait_until("the worker ran", || counter.load(Ordering::Relaxed) > 0);
        let c3 = counter.clone();
        let busy = goro::go(move || {
            let before = c3.load(Ordering::Relaxed);
            work();
            c3.load(Ordering::Relaxed) - before
        });
        let progress = busy.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        progress
    });
    (progress, rt.stats())
}

/// A runtime with `procs` Ps and the default policy.
pub fn rt(procs: usize) -> goro::Runtime {
    // SAFETY: the tests' Gs keep no thread-local state across switch points.
    unsafe { goro::Runtime::builder().procs(procs).build() }.unwrap()
}

/// The message of a panic payload (`&str` or `String`; else empty).
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<String>().map(String::as_str).or_else(|| p.downcast_ref::<&str>().copied()).unwrap_or("")
}

/// Silences the panics `expected` picks (by message), once per test
/// binary; every other panic prints as usual.
pub fn quiet_panics(expected: fn(&str) -> bool) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !expected(panic_message(info.payload())) {
                default(info);
            }
        }));
    });
}

/// A G that locks `m`, counts the acquisition and holds the lock for
/// 100 µs, over and over until the returned flag is set; the counter is
/// the third value.
pub fn mutex_hog(
    m: &std::sync::Arc<goro::sync::Mutex<()>>,
) -> (goro::JoinHandle<()>, std::sync::Arc<std::sync::atomic::AtomicBool>, std::sync::Arc<std::sync::atomic::AtomicUsize>)
{
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let (stop, locks) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let (m, s, n) = (m.clone(), stop.clone(), locks.clone());
    let hog = goro::go(move || {
        while !s.load(Ordering::Relaxed) {
            let _g = m.lock();
            n.fetch_add(1, Ordering::Relaxed);
            busy(100);
        }
    });
    (hog, stop, locks)
}

/// Runs `f` with `n` busy Gs beside it (they compute and yield, so every
/// P has work), stopped and joined afterwards.
pub fn with_busy<T>(n: usize, f: impl FnOnce() -> T) -> T {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let stop = stop.clone();
            goro::go(move || {
                while !stop.load(Ordering::Relaxed) {
                    busy(20);
                    goro::yield_now();
                }
            })
        })
        .collect();
    let r = f();
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        h.join().unwrap();
    }
    r
}
