//! Never stall: a G that computes, or blocks in a call the runtime is not
//! told about, loses its P and the other Gs go on (hog handoff, on by
//! default); with `Policy::hog_handoff` off they wait, as documented.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bounded, busy, progress_during, Rng};
use goro::chan::Chan;
use goro::{Policy, Runtime};

fn rt(procs: usize, policy: Policy) -> Runtime {
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    unsafe { Runtime::builder().procs(procs).policy(policy).build() }.unwrap()
}

fn spin_200ms() {
    busy(200_000);
}

fn thread_sleep_200ms() {
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn other_gs_run_while_a_g_spins_without_runtime_calls() {
    bounded(30, || {
        let (progress, st) = progress_during(Policy::default(), spin_200ms);
        assert!(progress > 0, "the worker never ran during the spin: {st:?}");
        assert!(st.hog_handoffs >= 1, "{st:?}");
    });
}

#[test]
fn other_gs_run_while_a_g_blocks_in_a_call_the_runtime_does_not_know() {
    bounded(30, || {
        let (progress, st) = progress_during(Policy::default(), thread_sleep_200ms);
        assert!(progress > 0, "the worker never ran during std::thread::sleep: {st:?}");
        assert!(st.hog_handoffs >= 1, "{st:?}");
    });
}

#[test]
fn with_hog_handoff_off_the_other_gs_wait() {
    // The documented contrast: without the handoff, one P and a G that
    // never calls the runtime means nobody else runs until it returns.
    bounded(30, || {
        let off = Policy { hog_handoff: false, ..Policy::default() };
        for hog in [spin_200ms as fn(), thread_sleep_200ms] {
            let (progress, st) = progress_during(off.clone(), hog);
            assert_eq!(progress, 0, "{st:?}");
            assert_eq!(st.hog_handoffs, 0);
        }
    });
}

/// A hog (A) loses the only P to sysmon; the P's next M runs another hog
/// (B) that waits for a G (C) queued behind it. When A comes back to the
/// runtime it must not mark the P it lost, now B's, as "in the runtime":
/// that mark would hide B from sysmon, and C would never run.
#[test]
fn a_hog_that_lost_its_p_does_not_hide_the_next_owners_hog() {
    bounded(30, || {
        for _ in 0..3 {
            // FIFO order on the P: A, then B, then C.
            let rt = rt(1, Policy { runnext: false, ..Policy::default() });
            rt.block_on(|| {
                let a_release = Arc::new(AtomicBool::new(false));
                let b_release = Arc::new(AtomicBool::new(false));
                let ar = a_release.clone();
                let a = goro::go(move || {
                    while !ar.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    // Back in the runtime, on a P that is B's now.
                    goro::yield_now();
                });
                let br = b_release.clone();
                let b = goro::go(move || {
                    // B runs only once sysmon took the P from A.
                    a_release.store(true, Ordering::Release);
                    while !br.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                });
                let c = goro::go(move || b_release.store(true, Ordering::Release));
                a.join().unwrap();
                b.join().unwrap();
                c.join().unwrap();
            });
            assert!(rt.stats().hog_handoffs >= 2, "{:?}", rt.stats());
        }
    });
}

/// Random hogs (spins and hidden sleeps of 0-4 ms) between channel
/// operations, `goro::syscall`s, spawns and exits: every G whose P is
/// taken comes back and goes on correctly.
#[test]
fn gs_whose_p_was_taken_go_on_correctly() {
    bounded(120, || {
        let mut handoffs = 0;
        for iter in 0..6u64 {
            for procs in [1, 2, 3] {
                let rt = rt(procs, Policy { hog_threshold: Duration::from_micros(200), ..Policy::default() });
                let (steps, sent, received) = rt.block_on(move || {
                    let ch = Chan::new(2);
                    let sent = Arc::new(AtomicU64::new(0));
                    let hs: Vec<_> = (0..24u64)
                        .map(|i| {
                            let (ch, sent) = (ch.clone(), sent.clone());
                            goro::go(move || {
                                let mut rng = Rng(iter * 1000 + i * 7 + procs as u64);
                                let mut steps = 0;
                                for _ in 0..8 {
                                    steps += match rng.below(6) {
                                        0 => {
                                            busy(rng.below(4000));
                                            1
                                        }
                                        1 => {
                                            std::thread::sleep(Duration::from_micros(rng.below(4000)));
                                            1
                                        }
                                        2 => goro::syscall(|| 1),
                                        3 => goro::go(move || i + 1).join().unwrap() - i,
                                        4 => {
                                            goro::yield_now();
                                            1
                                        }
                                        _ => {
                                            ch.send(1u64).unwrap();
                                            sent.fetch_add(1, Ordering::Relaxed);
                                            1
                                        }
                                    };
                                }
                                // A last hog, then exit while the P may be gone.
                                busy(rng.below(2000));
                                steps
                            })
                        })
                        .collect();
                    let c2 = ch.clone();
                    let drain = goro::go(move || c2.iter().sum::<u64>());
                    let steps: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
                    ch.close();
                    (steps, sent.load(Ordering::Relaxed), drain.join().unwrap())
                });
                handoffs += rt.stats().hog_handoffs;
                assert_eq!(steps, 24 * 8, "iteration {iter}, procs {procs}");
                assert_eq!(sent, received, "iteration {iter}, procs {procs}");
            }
        }
        assert!(handoffs > 0, "no hog was ever handed off: the test covered nothing");
    });
}

/// 100 Gs block at once in a call the runtime does not know about: all
/// finish, the runtime uses at most one extra thread per hog (and stays
/// under `max_threads`), and the idle threads exit afterwards.
#[test]
fn a_hundred_hidden_blocks_at_once_finish_and_the_threads_come_back_down() {
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).max_threads(64).build() }.unwrap();
        let t = Instant::now();
        let n = rt.block_on(|| {
            let hs: Vec<_> = (0..100)
                .map(|_| {
                    goro::go(|| {
                        std::thread::sleep(Duration::from_millis(100));
                        1
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
        });
        assert_eq!(n, 100);
        let st = rt.stats();
        assert!(st.threads_created <= 64, "over max_threads: {st:?}");
        assert!(st.hog_handoffs >= 1, "{st:?}");
        eprintln!("100 hidden blocks: {:?}, {} threads created", t.elapsed(), st.threads_created);
        // Idle Ms beyond the Ps exit after a while (5 s idle).
        let t = Instant::now();
        loop {
            let st = rt.stats();
            if st.threads <= 2 * st.procs + 1 {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "threads stay up: {st:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// A hog that runs past `max_threads`: the P stays with it (no thread can
/// be started for the P), and nothing aborts.
#[test]
fn hogs_beyond_max_threads_keep_their_p_instead_of_failing() {
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).max_threads(3).build() }.unwrap();
        let n = rt.block_on(|| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    goro::go(|| {
                        std::thread::sleep(Duration::from_millis(20));
                        1
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
        });
        assert_eq!(n, 8);
        assert!(rt.stats().threads_created <= 3);
    });
}
