//! The `syscall_handoff` and `hog` workloads of docs/workloads.md, shared by
//! `benches/workloads.rs`, `examples/syscall_handoff.rs` and the policy lab.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::goro;
use goro::{Policy, Runtime};

/// One "~10 µs" chunk: 7,000 steps of a dependent xorshift64 chain.
pub fn chunk(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..7000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

fn usleep(us: u32) {
    // SAFETY: usleep has no memory-safety preconditions.
    unsafe {
        libc::usleep(us);
    }
}

/// How big the system-call workloads are: docs/workloads.md's sizes, or the
/// policy lab's quick ones.
#[derive(Clone, Copy, Debug)]
pub struct SysSize {
    /// Chunks per compute G (of 100), with a yield after each.
    pub chunks: u64,
    /// Blocking 50 ms sleeps per blocker (of 4).
    pub sleeps: u32,
    /// How long each hog spinner spins.
    pub spin: Duration,
    /// The hog sleeper's 1 ms sleeps.
    pub naps: u32,
}

impl SysSize {
    pub const FULL: SysSize = SysSize { chunks: 1000, sleeps: 10, spin: Duration::from_millis(200), naps: 100 };
}

/// The runtime these workloads run on: procs = 2, as docs/workloads.md says.
pub fn runtime(policy: &Policy) -> Runtime {
    // SAFETY: the workloads' Gs keep no thread-local state across switch points.
    unsafe { Runtime::builder().procs(2).policy(policy.clone()).build() }.unwrap()
}

/// Wall time (ms) of 100 compute Gs × `size.chunks` chunks with a yield
/// between chunks, with `blockers` Gs each making `size.sleeps` 50 ms
/// sleeping syscalls.
pub fn compute_with_blockers(rt: &Runtime, size: SysSize, blockers: usize) -> f64 {
    rt.block_on(move || {
        let blockers: Vec<_> = (0..blockers)
            .map(|_| {
                goro::go(move || {
                    for _ in 0..size.sleeps {
                        goro::syscall(|| usleep(50_000));
                    }
                })
            })
            .collect();
        let t = Instant::now();
        let hs: Vec<_> = (0..100u64)
            .map(|i| {
                goro::go(move || {
                    let mut acc = 0u64;
                    for k in 0..size.chunks {
                        acc = acc.wrapping_add(chunk(i * 1000 + k));
                        goro::yield_now();
                    }
                    acc
                })
            })
            .collect();
        for h in hs {
            black_box(h.join().unwrap());
        }
        let ms = t.elapsed().as_secs_f64() * 1e3;
        for b in blockers {
            b.join().unwrap();
        }
        ms
    })
}

/// `syscall_handoff`: (ms with 4 blockers, ratio to the same work without).
pub fn syscall_handoff(rt: &Runtime, size: SysSize) -> (f64, f64) {
    let base = compute_with_blockers(rt, size, 0);
    let with = compute_with_blockers(rt, size, 4);
    (with, with / base)
}

/// `hog`: ms for a G doing `size.naps` sleeps of 1 ms while `spinners` Gs
/// spin `size.spin` each without calling the runtime.
pub fn hog(rt: &Runtime, size: SysSize, spinners: usize) -> f64 {
    rt.block_on(move || {
        let start = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let s2 = start.clone();
        let sleeper = goro::go(move || {
            // Wait until the spinners are about to be spawned.
            let t0 = loop {
                if let Some(t) = *s2.lock().unwrap() {
                    break t;
                }
                goro::yield_now();
            };
            for _ in 0..size.naps {
                goro::sleep(Duration::from_millis(1));
            }
            t0.elapsed().as_secs_f64() * 1e3
        });
        *start.lock().unwrap() = Some(Instant::now());
        let spin: Vec<_> = (0..spinners)
            .map(|_| {
                goro::go(move || {
                    let t = Instant::now();
                    while t.elapsed() < size.spin {
                        black_box(());
                    }
                })
            })
            .collect();
        let ms = sleeper.join().unwrap();
        for s in spin {
            s.join().unwrap();
        }
        ms
    })
}
