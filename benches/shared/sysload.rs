//! The `syscall_handoff` and `hog` workloads of WORKLOADS.md, shared by
//! `benches/workloads.rs` and `examples/syscall_handoff.rs`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Wall time (ms) of 100 compute Gs × 1,000 chunks with a yield between
/// chunks, with `blockers` Gs each making ten 50 ms sleeping syscalls.
pub fn compute_with_blockers(policy: &Policy, blockers: usize) -> f64 {
    let rt = Runtime::builder().procs(2).policy(policy.clone()).build().unwrap();
    rt.block_on(move || {
        let blockers: Vec<_> = (0..blockers)
            .map(|_| {
                goro::go(|| {
                    for _ in 0..10 {
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
                    for k in 0..1000 {
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
pub fn syscall_handoff(policy: &Policy) -> (f64, f64) {
    let base = compute_with_blockers(policy, 0);
    let with = compute_with_blockers(policy, 4);
    (with, with / base)
}

/// `hog`: ms for a G doing 100 sleeps of 1 ms while `spinners` Gs spin
/// 200 ms each without calling the runtime (procs = 2).
pub fn hog(policy: &Policy, spinners: usize) -> f64 {
    let rt = Runtime::builder().procs(2).policy(policy.clone()).build().unwrap();
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
            for _ in 0..100 {
                goro::sleep(Duration::from_millis(1));
            }
            t0.elapsed().as_secs_f64() * 1e3
        });
        *start.lock().unwrap() = Some(Instant::now());
        let spin: Vec<_> = (0..spinners)
            .map(|_| {
                goro::go(|| {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(200) {
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
