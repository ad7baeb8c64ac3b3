//! `lock_os_thread`: a locked G stays on its OS thread, the thread runs no
//! other G meanwhile, its P goes on serving other Gs while it blocks, and a
//! G that exits locked ends its thread. Also: a G that switches while it
//! unwinds finishes unwinding on the thread it started on.
//!
//! Thread identity is read with `gettid(2)`, a system call, never through a
//! thread-local (whose address LLVM may keep across a switch).

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{bounded, busy, with_busy, Rng};
use goro::chan::Chan;
use goro::Runtime;

thread_local!(static SLOT: Cell<u64> = const { Cell::new(0) });

fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

fn runtime(procs: usize) -> Runtime {
    // SAFETY: these tests keep thread-local state across switch points only
    // in Gs locked to their thread.
    unsafe { Runtime::builder().procs(procs).build() }.unwrap()
}

/// 1,000 rounds of yields, channel round trips with a partner G, and
/// `blocking` calls (which give the P away, so an unlocked G comes back on
/// whichever M finds it). Returns how many times the thread changed; if
/// `locked`, checks on every round that the thread and a thread-local's
/// address are the ones it started with.
fn switch_a_lot(locked: bool) -> usize {
    if locked {
        goro::lock_os_thread();
        assert!(goro::is_locked_to_thread());
    }
    let (ping, pong) = (Chan::new(0), Chan::new(0));
    let partner = {
        let (ping, pong) = (ping.clone(), pong.clone());
        goro::go(move || {
            for v in &ping {
                pong.send(v).unwrap();
            }
        })
    };
    let t0 = tid();
    let a0 = if locked { SLOT.with(|s| s as *const Cell<u64> as usize) } else { 0 };
    let (mut last, mut moves) = (t0, 0);
    for i in 0..1000u64 {
        match i % 3 {
            0 => goro::yield_now(),
            1 => {
                ping.send(i).unwrap();
                assert_eq!(pong.recv(), Some(i));
            }
            _ => goro::blocking(|| busy(5)),
        }
        let t = tid();
        if t != last {
            moves += 1;
            last = t;
        }
        if locked {
            assert_eq!(t, t0, "a locked G changed threads at round {i}");
            let a = SLOT.with(|s| {
                s.set(s.get() + 1);
                s as *const Cell<u64> as usize
            });
            assert_eq!(a, a0, "a locked G saw another thread's thread-local at round {i}");
        }
    }
    ping.close();
    partner.join().unwrap();
    if locked {
        assert_eq!(SLOT.with(|s| s.get()), 1000);
        SLOT.with(|s| s.set(0));
        goro::unlock_os_thread();
        assert!(!goro::is_locked_to_thread());
    }
    moves
}

#[test]
fn a_locked_goroutine_stays_on_its_thread_and_an_unlocked_one_moves() {
    bounded(120, || {
        let rt = runtime(2);
        rt.block_on(|| {
            with_busy(4, || {
                let moves = goro::go(|| switch_a_lot(true)).join().unwrap();
                assert_eq!(moves, 0);
                // The same program unlocked (under the runtime's contract: no
                // thread-local kept across a switch) is free to move, and does.
                let moves = goro::go(|| switch_a_lot(false)).join().unwrap();
                assert!(moves > 0, "an unlocked G never changed threads: the locked case proves nothing");
            });
        });
    });
}

#[test]
fn locking_nests_and_unlocking_an_unlocked_g_does_nothing() {
    bounded(60, || {
        runtime(2).block_on(|| {
            // Busy Gs on both Ps: an unwired G would move.
            with_busy(4, || {
                goro::go(|| {
                    goro::unlock_os_thread(); // not locked: no effect
                    assert!(!goro::is_locked_to_thread());
                    goro::lock_os_thread();
                    goro::lock_os_thread();
                    goro::unlock_os_thread();
                    assert!(goro::is_locked_to_thread(), "one unlock for two locks leaves the G locked");
                    let t = tid();
                    for _ in 0..100 {
                        goro::yield_now();
                        goro::blocking(|| ());
                        assert_eq!(tid(), t);
                    }
                    goro::unlock_os_thread();
                    assert!(!goro::is_locked_to_thread());
                })
                .join()
                .unwrap();
            });
        });
        // On a plain thread both calls are no-ops.
        goro::lock_os_thread();
        assert!(!goro::is_locked_to_thread());
        goro::unlock_os_thread();
    });
}

#[test]
fn a_locked_goroutine_blocked_in_recv_lets_others_run_on_one_p() {
    bounded(60, || {
        let rt = runtime(1);
        let mut rng = Rng(7);
        for round in 0..50u64 {
            let spins = rng.below(200);
            let got = rt.block_on(move || {
                let c = Chan::new(0);
                let rx = c.clone();
                let locked = goro::Builder::new()
                    .name("locked")
                    .locked(true)
                    .spawn(move || {
                        assert!(goro::is_locked_to_thread());
                        let t = tid();
                        let v = rx.recv().unwrap();
                        assert_eq!(tid(), t, "woken on another thread");
                        v
                    })
                    .unwrap();
                // With one P, this G and the others below run only if the
                // locked G's M gave the P away when it blocked.
                let counter = Arc::new(AtomicUsize::new(0));
                let hs: Vec<_> = (0..10)
                    .map(|_| {
                        let counter = counter.clone();
                        goro::go(move || {
                            for _ in 0..spins {
                                goro::yield_now();
                            }
                            counter.fetch_add(1, Ordering::Relaxed);
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
                assert_eq!(counter.load(Ordering::Relaxed), 10);
                c.send(round).unwrap();
                locked.join().unwrap()
            });
            assert_eq!(got, round);
        }
    });
}

thread_local!(static ON_EXIT: Cell<Option<mpsc::Sender<i32>>> = const { Cell::new(None) });

/// Sends the thread's id when the thread-local is destroyed (the thread ends).
struct ExitSignal;

thread_local!(static EXIT_SIGNAL: ExitSignal = const { ExitSignal });

impl Drop for ExitSignal {
    fn drop(&mut self) {
        if let Some(tx) = ON_EXIT.with(|s| s.take()) {
            let _ = tx.send(tid());
        }
    }
}

#[test]
fn a_goroutine_that_exits_locked_ends_its_thread_and_the_runtime_goes_on() {
    bounded(60, || {
        let rt = runtime(2);
        let before = rt.stats().threads_exited;
        for _ in 0..20 {
            let (tx, rx) = mpsc::channel();
            let t = rt
                .block_on(move || {
                    goro::go(move || {
                        goro::lock_os_thread();
                        // Thread state the G changed: it must die with the thread.
                        ON_EXIT.with(|s| s.set(Some(tx)));
                        EXIT_SIGNAL.with(|_| ());
                        goro::yield_now();
                        tid()
                    })
                    .join()
                })
                .unwrap();
            let ended = rx.recv_timeout(Duration::from_secs(10)).expect("the locked G's thread did not end");
            assert_eq!(ended, t);
        }
        assert_eq!(rt.stats().threads_exited - before, 20);
        // The runtime still serves, on both Ps.
        let sum = rt.block_on(|| {
            let hs: Vec<_> = (0..1000u64).map(|i| goro::go(move || i)).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(sum, 499_500);
    });
}

#[test]
fn a_locked_goroutine_dropped_at_shutdown_unwinds_on_its_own_thread() {
    struct Record(i32, Arc<Mutex<Option<(i32, i32)>>>);
    impl Drop for Record {
        fn drop(&mut self) {
            *self.1.lock().unwrap() = Some((self.0, tid()));
        }
    }
    bounded(60, || {
        let seen = Arc::new(Mutex::new(None));
        let rt = runtime(2);
        let s = seen.clone();
        rt.block_on(move || {
            let parked = Chan::<()>::new(0);
            let started = Chan::new(0);
            let p = parked.clone();
            let st = started.clone();
            goro::Builder::new()
                .locked(true)
                .spawn(move || {
                    let _r = Record(tid(), s);
                    st.send(()).unwrap();
                    p.recv(); // never sent to: parked at shutdown
                })
                .unwrap();
            started.recv().unwrap();
            std::mem::forget(parked);
        });
        drop(rt);
        let (locked_on, dropped_on) = seen.lock().unwrap().expect("the parked G was not dropped at shutdown");
        assert_eq!(locked_on, dropped_on, "the locked G was unwound on another thread");
    });
}

/// Sends on an unbuffered channel when dropped: during a panic, the G
/// switches while it unwinds.
struct SendOnDrop(Chan<u32>);

impl Drop for SendOnDrop {
    fn drop(&mut self) {
        self.0.send(7).unwrap();
    }
}

/// Records the thread it is dropped on.
struct WhereDropped(Arc<Mutex<Vec<i32>>>);

impl Drop for WhereDropped {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(tid());
    }
}

#[test]
fn a_goroutine_that_switches_while_unwinding_finishes_on_its_thread() {
    bounded(120, || {
        let rt = runtime(2);
        let mut rng = Rng(11);
        for i in 0..100 {
            let delay = rng.below(50);
            rt.block_on(move || {
                with_busy(3, || {
                    let c = Chan::new(0);
                    let tx = c.clone();
                    let threads = Arc::new(Mutex::new(Vec::new()));
                    let th = threads.clone();
                    let h = goro::go(move || {
                        th.lock().unwrap().push(tid());
                        // Dropped in reverse order: the send (a switch: the
                        // receiver is not there yet) comes first, then the
                        // record of where the unwind goes on.
                        let _after = WhereDropped(th);
                        let _send = SendOnDrop(tx);
                        panic!("boom {i}");
                    });
                    for _ in 0..delay {
                        goro::yield_now();
                    }
                    assert_eq!(c.recv(), Some(7));
                    let err = h.join().unwrap_err();
                    assert_eq!(err.downcast_ref::<String>().map(String::as_str), Some(format!("boom {i}").as_str()));
                    let threads = threads.lock().unwrap().clone();
                    assert_eq!(threads.len(), 2);
                    assert_eq!(threads[0], threads[1], "round {i}: the unwind moved to another thread");
                });
            });
        }
    });
}

#[test]
fn a_goroutine_unwired_after_an_unwinding_switch_moves_again() {
    bounded(120, || {
        runtime(2).block_on(|| {
            with_busy(4, || {
                let moves = goro::go(|| {
                    // A panic caught inside the G, whose unwinding parks once
                    // (the send waits for the receiver below).
                    let c = Chan::new(0);
                    let rx = c.clone();
                    let receiver = goro::go(move || {
                        for _ in 0..10 {
                            goro::yield_now();
                        }
                        rx.recv()
                    });
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let _send = SendOnDrop(c);
                        panic!("caught");
                    }));
                    assert!(r.is_err());
                    assert_eq!(receiver.join().unwrap(), Some(7));
                    // Wired only for that switch: the G may change threads again.
                    switch_a_lot(false)
                })
                .join()
                .unwrap();
                assert!(moves > 0, "the G stayed wired to its thread after the unwinding switch");
            });
        });
    });
}
