//! Blocking-syscall handoff, sysmon's retake, hog handoff, the thread limit.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bounded, busy, is_child, progress_during, run_child, Rng};
use goro::chan::Chan;
use goro::{Policy, Retake, Runtime, Steal};

fn rt(procs: usize, policy: Policy) -> Runtime {
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    unsafe { Runtime::builder().procs(procs).policy(policy).build() }.unwrap()
}

fn usleep(us: u32) {
    // SAFETY: usleep has no memory-safety preconditions.
    unsafe {
        libc::usleep(us);
    }
}

#[test]
fn other_goroutines_run_while_one_sits_in_a_syscall() {
    bounded(30, || {
        let (progress, st) = progress_during(Policy::default(), || goro::syscall(|| usleep(200_000)));
        assert!(progress > 0, "no progress during the syscall");
        assert!(st.retakes >= 1, "{st:?}");
        assert!(st.total.syscalls >= 1);
    });
}

#[test]
fn with_retake_never_the_p_waits_for_its_syscall() {
    // The documented contrast: with Retake::Never and one P, nothing else
    // runs while the G is in its syscall.
    bounded(30, || {
        let policy = Policy { syscall_retake: Retake::Never, ..Policy::default() };
        let (progress, st) = progress_during(policy, || goro::syscall(|| usleep(200_000)));
        assert_eq!(progress, 0);
        assert_eq!(st.retakes, 0);
    });
}

#[test]
fn retake_immediate_also_hands_off() {
    bounded(30, || {
        let policy = Policy { syscall_retake: Retake::Immediate, ..Policy::default() };
        let (progress, st) = progress_during(policy, || goro::syscall(|| usleep(200_000)));
        assert!(progress > 0);
        assert!(st.retakes >= 1);
    });
}

#[test]
fn blocking_hands_off_at_once() {
    bounded(30, || {
        // Retake::Never: only blocking()'s own handoff can free the P.
        let policy = Policy { syscall_retake: Retake::Never, ..Policy::default() };
        let (progress, st) = progress_during(policy, || goro::blocking(|| usleep(200_000)));
        assert!(progress > 0, "blocking() did not hand its P off");
        assert!(st.handoffs >= 1);
        assert_eq!(st.retakes, 0);
    });
}

/// `blocking` hands its P off; the P's local queue holds Gs (with
/// `runnext` off nothing sits in `runnext`) and stealing is off, so only an
/// M started for that P can run them: handoff must not park a P with
/// queued work.
#[test]
fn a_p_handed_off_with_queued_gs_gets_an_m() {
    bounded(30, || {
        for _ in 0..10 {
            let policy = Policy {
                runnext: false,
                steal: Steal::Off,
                syscall_retake: Retake::Never,
                hog_handoff: false,
                ..Policy::default()
            };
            let n = rt(2, policy).block_on(|| {
                let (tx, rx) = std::sync::mpsc::channel();
                for i in 0..8 {
                    let tx = tx.clone();
                    goro::go(move || tx.send(i).unwrap());
                }
                drop(tx);
                // The 8 Gs wait in this P's queue until the handoff.
                goro::blocking(move || rx.iter().count())
            });
            assert_eq!(n, 8);
        }
    });
}

#[test]
fn a_goroutine_whose_p_was_taken_resumes_correctly() {
    bounded(30, || {
        let rt = rt(1, Policy::default());
        let r = rt.block_on(|| {
            let ch = Chan::new(0);
            let c2 = ch.clone();
            // Keeps the P busy so the returning G cannot get it back at once.
            let spinner = goro::go(move || {
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(150) {
                    goro::yield_now();
                }
            });
            let g = goro::go(move || {
                let id = goro::current().id();
                let v = goro::syscall(|| {
                    usleep(50_000);
                    7
                });
                // Back from the syscall on whatever M and P: the runtime works.
                assert_eq!(goro::current().id(), id);
                let child = goro::go(move || v * 2);
                c2.send(child.join().unwrap()).unwrap();
                goro::sleep(Duration::from_millis(1));
                v
            });
            let got = ch.recv().unwrap();
            spinner.join().unwrap();
            (g.join().unwrap(), got)
        });
        assert_eq!(r, (7, 14));
        let st = rt.stats();
        assert!(st.retakes >= 1, "{st:?}");
        // A short call returns on the fast path.
        rt.block_on(|| goro::syscall(|| 1 + 1));
        assert!(rt.stats().total.syscall_fast_exits >= 1);
    });
}

#[test]
fn a_hundred_concurrent_blocking_calls_complete_with_bounded_threads() {
    bounded(60, || {
        let rt = rt(2, Policy::default());
        let total = rt.block_on(|| {
            let hs: Vec<_> = (0..100u64)
                .map(|i| {
                    goro::go(move || {
                        goro::blocking(|| usleep(20_000));
                        i
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(total, 4950);
        let st = rt.stats();
        // At most one M per blocked G plus the Ps' own and a spare or two.
        assert!(st.threads_created <= 100 + 2 + 4, "{} threads", st.threads_created);
        // Every call hands its P off, unless a G returning from its own
        // syscall took that P first (exitsyscall's CAS wins the race; the P
        // changed hands either way, as in Go).
        assert!(st.handoffs >= 1, "{st:?}");
        assert_eq!(st.total.syscalls, 100);
    });
}

/// procs = 1: a G spins 300 ms without any runtime call while a sleeper
/// does ten 1 ms sleeps. Returns whether the spinner saw the sleeper finish.
fn sleeper_finishes_during_hog(hog_handoff: bool) -> (bool, goro::Stats) {
    let rt = rt(1, Policy { hog_handoff, ..Policy::default() });
    let saw = rt.block_on(|| {
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let sleeper = goro::go(move || {
            for _ in 0..10 {
                goro::sleep(Duration::from_millis(1));
            }
            d2.store(true, Ordering::SeqCst);
        });
        let d3 = done.clone();
        let spinner = goro::go(move || {
            let t = Instant::now();
            let mut saw = false;
            while t.elapsed() < Duration::from_millis(300) {
                saw |= d3.load(Ordering::SeqCst);
            }
            saw
        });
        let saw = spinner.join().unwrap();
        sleeper.join().unwrap();
        saw
    });
    (saw, rt.stats())
}

#[test]
fn hog_handoff_lets_a_sleeper_finish_while_a_goroutine_spins() {
    bounded(30, || {
        let (saw, st) = sleeper_finishes_during_hog(true);
        assert!(saw, "the sleeper did not finish while the hog spun: {st:?}");
        assert!(st.hog_handoffs >= 1);
    });
}

#[test]
fn without_hog_handoff_a_spinning_goroutine_starves_its_p() {
    // Documented behaviour: cooperative preemption cannot stop a loop with
    // no runtime call, so with one P the sleeper waits for the spinner.
    bounded(30, || {
        let (saw, st) = sleeper_finishes_during_hog(false);
        assert!(!saw);
        assert_eq!(st.hog_handoffs, 0);
    });
}

#[test]
fn random_syscalls_mixed_with_channels_and_spawns() {
    bounded(120, || {
        let policies = [
            Policy::default(),
            Policy { syscall_retake: Retake::Immediate, ..Policy::default() },
            Policy { syscall_retake: Retake::After(Duration::from_micros(5)), hog_handoff: true, ..Policy::default() },
            Policy { syscall_retake: Retake::Never, ..Policy::default() },
        ];
        for (k, policy) in policies.into_iter().enumerate() {
            for procs in [1, 2, 3] {
                let rt = rt(procs, policy.clone());
                let sum = rt.block_on(move || {
                    let ch = Chan::new(3);
                    let hs: Vec<_> = (0..40u64)
                        .map(|i| {
                            let ch = ch.clone();
                            goro::go(move || {
                                let mut rng = Rng(i * 7 + k as u64 * 1000 + procs as u64);
                                for _ in 0..20 {
                                    match rng.below(5) {
                                        0 => goro::syscall(|| usleep(rng.below(300) as u32)),
                                        1 => goro::blocking(|| busy(rng.below(100))),
                                        2 => goro::syscall(|| busy(rng.below(50))),
                                        3 => ch.send(i).unwrap(),
                                        _ => goro::yield_now(),
                                    }
                                }
                                i
                            })
                        })
                        .collect();
                    let c2 = ch.clone();
                    let drain = goro::go(move || c2.iter().count());
                    let s = hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>();
                    ch.close();
                    drain.join().unwrap();
                    s
                });
                assert_eq!(sum, 780, "policy {k}, procs {procs}");
            }
        }
    });
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn thread_limit_child() {
    if !is_child() {
        return; // only meaningful as the child of the test below
    }
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    let rt = unsafe { Runtime::builder().procs(1).max_threads(3).build() }.unwrap();
    rt.block_on(|| {
        let hs: Vec<_> = (0..10).map(|_| goro::go(|| goro::blocking(|| usleep(300_000)))).collect();
        for h in hs {
            let _ = h.join();
        }
    });
    unreachable!("the thread limit should have stopped the process");
}

#[test]
fn going_over_the_thread_limit_is_fatal_with_a_clear_message() {
    let out = run_child("thread_limit_child", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("exceeds its 3-thread limit"), "{stderr}");
    assert!(stderr.contains("fatal error: thread exhaustion"), "{stderr}");
}

#[test]
fn parking_and_nesting_inside_a_syscall_keep_the_scheduler_consistent() {
    bounded(30, || {
        let rt = rt(2, Policy::default());
        let total = rt.block_on(|| {
            let ch = Chan::new(0);
            let c2 = ch.clone();
            let feeder = goro::go(move || {
                for i in 0..100u64 {
                    c2.send(i).unwrap();
                }
            });
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let ch = ch.clone();
                    goro::go(move || {
                        let mut sum = 0;
                        for _ in 0..25 {
                            // A channel receive (which parks) inside a
                            // syscall, and a syscall nested in another.
                            sum += goro::syscall(|| {
                                let v = ch.recv().unwrap();
                                goro::blocking(|| usleep(100));
                                v
                            });
                        }
                        sum
                    })
                })
                .collect();
            feeder.join().unwrap();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(total, 4950);
        // Every P is accounted for: the runtime still runs Gs on all of them.
        let st = rt.stats();
        assert_eq!(st.procs, 2);
        assert_eq!(rt.block_on(|| goro::go(|| 1).join().unwrap()), 1);
    });
}

/// Go's retake rule: a P sitting in a system call with nothing to run is
/// left alone while another M or idle P can take new work (unless the call
/// lasts over 10 ms): taking it would only wake a thread to find nothing.
/// Two Ps, one G making 40 calls of 300 µs each, the other P idle.
#[test]
fn a_p_in_a_syscall_with_nothing_to_run_is_not_retaken_while_a_p_is_idle() {
    bounded(30, || {
        let rt = rt(2, Policy::default());
        rt.block_on(|| {
            goro::go(|| {
                for _ in 0..40 {
                    goro::syscall(|| usleep(300));
                }
            })
            .join()
            .unwrap()
        });
        let st = rt.stats();
        assert_eq!(st.total.syscalls, 40);
        // A call stretched past 10 ms by a loaded machine may be retaken;
        // most must not be.
        assert!(st.retakes <= 10, "{} of 40 calls retaken with a P idle", st.retakes);
    });
}

/// The runtime's stats before and after a G of `rt` calls `call` `n`
/// times (the G alone in the runtime).
fn stats_around(rt: Runtime, n: usize, call: fn()) -> (goro::Stats, goro::Stats) {
    rt.block_on(move || {
        goro::go(move || {
            let before = goro::stats();
            for _ in 0..n {
                call();
            }
            (before, goro::stats())
        })
        .join()
        .unwrap()
    })
}

/// A G back from a system call whose P was retaken takes an idle P itself
/// (its old one first), on its own thread: it does not queue for another
/// M to pick it up. One P, retaken at once by sysmon; 10 calls.
#[test]
fn a_g_back_from_a_syscall_takes_an_idle_p_itself() {
    bounded(30, || {
        let policy = Policy { syscall_retake: Retake::Immediate, ..Policy::default() };
        let (before, after) = stats_around(rt(1, policy), 10, || goro::syscall(|| usleep(2_000)));
        let (takes, retakes) = (after.total.global_takes - before.total.global_takes, after.retakes - before.retakes);
        assert!(retakes >= 1, "sysmon retook no P");
        // Usually none is queued; on a loaded machine the M that sysmon
        // started for the retaken P may still hold it, spinning, when the
        // G comes back (then it queues, as in Go). Queueing every time is
        // the bug.
        assert!(takes < retakes, "a G back from a syscall was queued globally {takes} times in {retakes} retakes");
    });
}

/// `blocking` hands its P off at once; with nothing to run and another P
/// idle the P goes idle too: no M is started (or spins) for it. 20 calls;
/// a bug that starts an M for every handoff shows about one spin per call.
#[test]
fn a_p_handed_off_with_nothing_to_run_goes_idle_without_waking_an_m() {
    bounded(30, || {
        let policy = Policy { syscall_retake: Retake::Never, ..Policy::default() };
        let (before, after) = stats_around(rt(2, policy), 20, || goro::blocking(|| usleep(300)));
        let (spins, handoffs) = (after.total.spins - before.total.spins, after.handoffs - before.handoffs);
        assert_eq!(handoffs, 20);
        assert!(spins <= 5, "{spins} spinning Ms for 20 handoffs of a P with nothing to run");
    });
}

/// Ms left idle by a burst of blocking calls exit after 5 s idle, down to
/// one idle M per P (Go keeps its Ms; goro gives the threads back but
/// keeps enough to run every P at once).
#[test]
fn surplus_idle_ms_exit_down_to_one_per_p() {
    bounded(30, || {
        let rt = rt(2, Policy::default());
        let st = rt.block_on(|| {
            let hs: Vec<_> = (0..8).map(|_| goro::go(|| goro::blocking(|| usleep(50_000)))).collect();
            for h in hs {
                h.join().unwrap();
            }
            let busy = goro::stats();
            // More Ms than Ps (else there is nothing to give back).
            assert!(busy.threads_created >= 4, "{} threads for 8 blocking calls", busy.threads_created);
            // Every idle M looks again 5 s after it parked. (This G blocks
            // its own M meanwhile; hog handoff gives its P to an idle M.)
            std::thread::sleep(Duration::from_millis(7_000));
            goro::stats()
        });
        assert_eq!(
            st.idle_threads, 2,
            "idle Ms after 7 s ({} created, {} exited)",
            st.threads_created, st.threads_exited
        );
        assert!(st.threads_exited >= 1);
    });
}
