//! The scheduler core: spawning, joining, parking, stealing, timers,
//! policies, several runtimes.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bounded, busy, Rng};
use goro::chan::Chan;
use goro::{Policy, RunnextWake, Runtime, Spinning, Steal};
use goro_workloads::schedload;

/// Each node spawns 10 children and joins them; the leaves return their
/// index. `depth` 6 is skynet's million leaves.
fn tree(depth: u32, base: u64) -> u64 {
    if depth == 0 {
        return base;
    }
    let hs: Vec<_> = (0..10).map(|i| goro::go(move || tree(depth - 1, base * 10 + i))).collect();
    hs.into_iter().map(|h| h.join().unwrap()).sum()
}

#[test]
fn a_million_goroutines_spawn_and_join() {
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    let sum = bounded(120, || unsafe { goro::run(|| tree(6, 0)) });
    assert_eq!(sum, 499_999_500_000);
}

#[test]
fn hundred_thousand_parked_goroutines_are_released() {
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::new() }.unwrap();
        const N: usize = 100_000;
        let parked = Arc::new(Mutex::new(Vec::with_capacity(N)));
        let go_on = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let (parked, go_on, done) = (parked.clone(), go_on.clone(), done.clone());
                rt.spawn(move || {
                    parked.lock().unwrap().push(goro::current_unparker());
                    while !go_on.load(Ordering::Acquire) {
                        goro::park(goro::WaitReason::Park);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        while parked.lock().unwrap().len() < N {
            std::thread::sleep(Duration::from_millis(5));
        }
        let waiting = rt.goroutines().iter().filter(|g| g.status == goro::GStatus::Waiting).count();
        assert!(waiting > N / 2, "only {waiting} Gs parked");
        go_on.store(true, Ordering::Release);
        for u in parked.lock().unwrap().drain(..) {
            u.unpark();
        }
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(done.load(Ordering::Relaxed), N);
    });
}

/// Spawns `n` Gs onto the caller's P, each spinning for `micros` and
/// returning the name of the thread it ran on. Those on the spawner's
/// thread then wait (up to 5 s) until one ran on another: so that with
/// hog handoff off, where only theft moves a G, a thief whose thread
/// starts late on a loaded machine still finds work to take.
fn spawn_until_one_is_stolen(n: usize, micros: u64) -> Vec<goro::JoinHandle<String>> {
    let spawner = std::thread::current().name().unwrap().to_string();
    let stolen = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    (0..n)
        .map(|_| {
            let (spawner, stolen) = (spawner.clone(), stolen.clone());
            goro::go(move || {
                busy(micros);
                let me = std::thread::current().name().unwrap().to_string();
                if me != spawner {
                    stolen.store(true, Ordering::Relaxed);
                }
                while !stolen.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(5) {
                    std::hint::spin_loop();
                }
                me
            })
        })
        .collect()
}

#[test]
fn idle_ps_steal_from_a_busy_one() {
    fn run(steal: Steal) -> goro::Stats {
        // Hog handoff off: no G leaves the spawning P except by theft.
        let policy = Policy { steal, hog_handoff: false, ..Policy::default() };
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).policy(policy).build() }.unwrap();
        let threads = rt.block_on(|| {
            // All these land on the spawning P; the other P must steal.
            let hs = spawn_until_one_is_stolen(200, 200);
            hs.into_iter().map(|h| h.join().unwrap()).collect::<HashSet<_>>()
        });
        let st = rt.stats();
        assert!(st.total.steals > 0, "no steals recorded: {st:?}");
        assert!(threads.len() >= 2, "all Gs ran on {threads:?}");
        assert!(st.per_p.iter().all(|p| p.scheduled > 0), "a P never ran: {st:?}");
        st
    }
    bounded(60, || {
        // Go's rule takes half of the victim's queue in one steal.
        let st = run(Steal::Half);
        assert!(st.total.stolen > st.total.steals, "no steal took more than one G: {st:?}");
        // The `One` policy takes exactly one each time.
        let st = run(Steal::One);
        assert_eq!(st.total.stolen, st.total.steals, "{st:?}");
    });
}

#[test]
fn a_preempted_g_wakes_an_idle_p_for_the_work_it_leaves() {
    // Go's `goschedImpl` calls `wakep` after putting the preempted G on
    // the global queue. Without it (goro before 2026-12-03) an idle P could
    // stay idle beside queued work: a hog relocking a mutex is preempted
    // to the global queue, its P takes a batch of that queue (the hog to
    // run, the waiter into its local queue) and runs the hog, which makes
    // no further runtime call; nobody was woken to steal the waiter. A short
    // time slice makes preemptions frequent; hog handoff, which would
    // bound the stall, is off. About 1 round in 10 hung before the fix.
    for _ in 0..40 {
        bounded(30, || {
            let policy = Policy { hog_handoff: false, time_slice: Duration::from_micros(200), ..Policy::default() };
            // SAFETY: the test's Gs keep no thread-local state across switch points.
            let rt = unsafe { Runtime::builder().procs(2).policy(policy).build() }.unwrap();
            rt.block_on(|| {
                let m = Arc::new(goro::sync::Mutex::new(()));
                let (hog, stop, hog_locks) = common::mutex_hog(&m);
                for _ in 0..10 {
                    let before = hog_locks.load(Ordering::Relaxed);
                    common::wait_until("the hog relocks", || hog_locks.load(Ordering::Relaxed) > before + 2);
                    drop(m.lock());
                }
                stop.store(true, Ordering::Relaxed);
                hog.join().unwrap();
            });
        });
    }
}

/// A G sleeps 1 ms on a P that then runs a hog (no runtime call, hog
/// handoff off): that P runs none of its timers until the hog ends (5 s
/// here). Returns whether the sleeper woke while the hog ran, i.e. whether
/// another P ran the timer. `yielders` Gs keep the other P busy.
fn sleeper_wakes_beside_a_hog(policy: Policy, yielders: usize) -> bool {
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    let rt = unsafe { Runtime::builder().procs(2).policy(policy).build() }.unwrap();
    rt.block_on(move || {
        common::with_busy(yielders, || {
            goro::go(|| {
                let woke = Arc::new(AtomicBool::new(false));
                let w = woke.clone();
                // Into this P's runnext: it runs at the yield below and
                // puts its timer on this P's heap.
                let sleeper = goro::go(move || {
                    goro::sleep(Duration::from_millis(1));
                    w.store(true, Ordering::Release);
                });
                goro::yield_now();
                let t = Instant::now();
                while !woke.load(Ordering::Acquire) && t.elapsed() < Duration::from_secs(5) {
                    std::hint::spin_loop();
                }
                let woke_while_hogging = woke.load(Ordering::Acquire);
                sleeper.join().unwrap();
                woke_while_hogging
            })
            .join()
            .unwrap()
        })
    })
}

#[test]
fn a_due_timer_of_a_busy_p_is_run_by_another_busy_p() {
    // The other P is busy (yielding Gs), so it never idles into the look
    // at other Ps' timers that an idle P makes. Busy Ps look at the
    // others' due timers every 64 schedules: the sleeper wakes, on the
    // other P, while the hog still runs. Before that rule it woke only
    // after the hog gave up.
    bounded(60, || {
        let policy = Policy { hog_handoff: false, ..Policy::default() };
        assert!(sleeper_wakes_beside_a_hog(policy, 4), "the sleeper woke only after its P's hog gave up");
    });
}

#[test]
fn an_idle_p_that_runs_another_ps_timer_runs_the_g_it_woke() {
    // The other P is idle; its M wakes for the timer, runs it, and the
    // woken G lands on its P. With stealing off that M does not spin, so
    // nothing would look at its P again if it went idle now: it must run
    // what the timer woke before giving the P up.
    bounded(60, || {
        let policy = Policy { hog_handoff: false, steal: Steal::Off, ..Policy::default() };
        assert!(sleeper_wakes_beside_a_hog(policy, 0), "the woken G was left on an idle P");
    });
}

#[test]
fn a_timer_not_yet_due_costs_no_lock_of_another_p() {
    // Busy Ps look at the other Ps' timers, but take another P's timer
    // lock only for timers that are due (`Stats::shared_locks`).
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        let (locks, yields) = rt.block_on(|| {
            let far = Chan::<()>::new(0);
            let f = far.clone();
            let sleeper = goro::go(move || {
                goro::select! {
                    recv(f) -> _ => {},
                    default(Duration::from_secs(3600)) => {},
                }
            });
            common::wait_until("the sleeper parked", || goro::stats().waiting_goroutines >= 1);
            let before = goro::stats();
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    goro::go(|| {
                        for _ in 0..20_000 {
                            goro::yield_now();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            let after = goro::stats();
            far.close();
            sleeper.join().unwrap();
            (
                after.shared_locks.other_timers - before.shared_locks.other_timers,
                after.total.yields - before.total.yields,
            )
        });
        assert!(yields >= 40_000);
        assert!(locks < 10, "{locks} locks of another P's timers in {yields} yields, with no timer due");
    });
}

#[test]
fn a_burst_of_due_timers_wakes_its_gs_ahead_of_the_global_queue() {
    // 1,000 sleepers due at once, on one P whose local queue is full and
    // whose global queue holds thousands of Gs that never ran. A P fires
    // at most as many timers as its local queue has room for and keeps
    // the rest due in the heap: so the woken Gs wait behind at most a
    // local queue, and every one runs before the last queued G does.
    // Firing them all at once overflowed the local queue and sent woken
    // Gs to the global queue's tail (the `timers` workload's 100 ms p99).
    bounded(60, || {
        // Hog handoff off: the main G's busy wait keeps the P.
        let policy = Policy { hog_handoff: false, ..Policy::default() };
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).policy(policy).build() }.unwrap();
        rt.block_on(|| {
            const SLEEPERS: usize = 1000;
            const QUEUED: usize = 5000;
            let seq = Arc::new(AtomicUsize::new(0));
            let due = Instant::now() + Duration::from_millis(1000);
            let sleepers: Vec<_> = (0..SLEEPERS)
                .map(|i| {
                    let seq = seq.clone();
                    goro::go(move || {
                        goro::sleep_until(due + Duration::from_micros(i as u64));
                        seq.fetch_add(1, Ordering::Relaxed)
                    })
                })
                .collect();
            common::wait_until("the sleepers parked", || goro::stats().waiting_goroutines >= SLEEPERS);
            assert!(Instant::now() < due, "the sleepers took too long to park for this test to mean anything");
            let queued: Vec<_> = (0..QUEUED)
                .map(|_| {
                    let seq = seq.clone();
                    goro::go(move || seq.fetch_add(1, Ordering::Relaxed))
                })
                .collect();
            // Every timer falls due while this G keeps the P.
            while Instant::now() < due + Duration::from_millis(5) {
                std::hint::spin_loop();
            }
            let last_woken = sleepers.into_iter().map(|h| h.join().unwrap()).max().unwrap();
            let last_queued = queued.into_iter().map(|h| h.join().unwrap()).max().unwrap();
            assert!(
                last_woken < last_queued,
                "a woken G ran as number {last_woken}, after the last of the queued Gs ({last_queued})"
            );
        });
    });
}

fn policy_variants() -> Vec<(String, Policy)> {
    let mut v = Vec::new();
    for runnext in [true, false] {
        for steal in [Steal::Half, Steal::One, Steal::Off] {
            for steal_runnext in [true, false] {
                let p = Policy { runnext, steal, steal_runnext, ..Policy::default() };
                v.push((format!("runnext={runnext} steal={steal:?} steal_runnext={steal_runnext}"), p));
            }
        }
    }
    v.push(("small local queue".into(), Policy { local_queue: 4, ..Policy::default() }));
    v.push(("no global fairness".into(), Policy { global_queue_interval: 0, ..Policy::default() }));
    v.push(("no spinning".into(), Policy { max_spinning: Spinning::Limit(0), ..Policy::default() }));
    v.push(("spin limit 1".into(), Policy { max_spinning: Spinning::Limit(1), ..Policy::default() }));
    v.push(("short time slice".into(), Policy { time_slice: Duration::from_micros(100), ..Policy::default() }));
    for runnext_wake in [RunnextWake::Immediate, RunnextWake::Never] {
        v.push((format!("{runnext_wake:?} runnext wake"), Policy { runnext_wake, ..Policy::default() }));
    }
    v
}

#[test]
fn every_policy_gives_correct_results() {
    bounded(120, || {
        for (name, policy) in policy_variants() {
            for procs in [1, 3] {
                // SAFETY: the test's Gs keep no thread-local state across switch points.
                let rt = unsafe { Runtime::builder().procs(procs).policy(policy.clone()).build() }.unwrap();
                let sum = rt.block_on(|| tree(4, 0));
                assert_eq!(sum, 49_995_000, "{name}, procs={procs}");
                let st = rt.stats();
                assert_eq!(st.total.spawned, 11_111, "{name}");
                if policy.steal == Steal::Off {
                    assert_eq!(st.total.steals, 0, "{name}");
                }
            }
        }
    });
}

#[test]
fn a_small_local_queue_overflows_to_the_global_queue() {
    bounded(30, || {
        let policy = Policy { local_queue: 8, ..Policy::default() };
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).policy(policy).build() }.unwrap();
        let (n, at_spawn) = rt.block_on(|| {
            // None of them runs before the main G blocks (one P): the
            // newest is in runnext, the others in the local and global
            // queues.
            let hs: Vec<_> = (0..100u64).map(|i| goro::go(move || i)).collect();
            let at_spawn = goro::stats();
            (hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>(), at_spawn)
        });
        assert_eq!(n, 4950);
        // Each overflow moves half of the full local queue (4 of 8) and the
        // G being queued: 5 to the global queue.
        let (global, local, overflows) =
            (at_spawn.global_queue as u64, at_spawn.per_p[0].local_queue, at_spawn.total.local_overflows);
        assert!(overflows > 0, "{at_spawn:?}");
        assert_eq!(global, 5 * overflows, "global queue after {overflows} overflows");
        // `local_queue` counts runnext too.
        assert_eq!(global + local, 100, "they all wait in the queues");
        assert!((5..=9).contains(&local), "local queue and runnext hold {local}");
        assert!(rt.stats().total.global_takes > 0);
    });
}

#[test]
fn join_from_a_plain_thread() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        let h = rt.spawn(|| {
            goro::sleep(Duration::from_millis(5));
            goro::current().id()
        });
        let id = h.id();
        let got = std::thread::spawn(move || h.join().unwrap()).join().unwrap();
        assert_eq!(got, id);
    });
}

#[test]
fn join_from_another_goroutine_parks_it() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        unsafe {
            goro::run(|| {
                let slow = goro::go(|| {
                    goro::sleep(Duration::from_millis(20));
                    7
                });
                let waiter = goro::go(move || slow.join().unwrap() * 6);
                assert_eq!(waiter.join().unwrap(), 42);
            })
        };
    });
}

#[test]
fn sleepers_wake_in_deadline_order() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let order = unsafe {
            goro::run(|| {
                let order = Arc::new(Mutex::new(Vec::new()));
                let hs: Vec<_> = [50u64, 40, 30, 20, 10]
                    .into_iter()
                    .map(|ms| {
                        let order = order.clone();
                        goro::go(move || {
                            goro::sleep(Duration::from_millis(ms));
                            order.lock().unwrap().push(ms);
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
                let v = order.lock().unwrap().clone();
                v
            })
        };
        assert_eq!(order, vec![10, 20, 30, 40, 50]);
    });
}

#[test]
fn sleep_lasts_at_least_its_duration() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        unsafe {
            goro::run(|| {
                for ms in [0u64, 1, 3, 7] {
                    let t = std::time::Instant::now();
                    goro::sleep(Duration::from_millis(ms));
                    assert!(t.elapsed() >= Duration::from_millis(ms));
                }
            })
        };
    });
}

#[test]
fn two_runtimes_run_side_by_side() {
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let a = unsafe { Runtime::builder().procs(1).name("rt-a").build() }.unwrap();
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let b = unsafe { Runtime::builder().procs(1).name("rt-b").build() }.unwrap();
        let ha = a.spawn(|| {
            let inner = goro::go(|| std::thread::current().name().unwrap().to_string());
            inner.join().unwrap()
        });
        let hb = b.spawn(|| tree(3, 0));
        assert!(ha.join().unwrap().starts_with("rt-a-m"));
        assert_eq!(hb.join().unwrap(), 499_500);
        // A G of one runtime can spawn onto another.
        let cross = a.block_on({
            let hb2 = b.spawn(|| std::thread::current().name().unwrap().to_string());
            move || hb2.join().unwrap()
        });
        assert!(cross.starts_with("rt-b-m"));
    });
}

#[test]
fn go_outside_a_runtime_fails_with_a_clear_message() {
    bounded(30, || {
        // No runtime is started behind the caller's back: that would skip
        // the `unsafe` promise about thread-locals.
        let err = std::panic::catch_unwind(|| goro::go(|| 1)).unwrap_err();
        let msg = err.downcast_ref::<String>().expect("a formatted message");
        assert!(msg.contains("outside a goro runtime"), "{msg}");
        assert!(msg.contains("unsafe { goro::run"), "{msg}");
        let err = goro::Builder::new().spawn(|| 1).unwrap_err();
        assert!(err.to_string().contains("outside a goro runtime"), "{err}");
        assert!(goro::try_current().is_none());
        // A runtime's handle spawns from a plain thread.
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).build() }.unwrap();
        assert!(rt.spawn(|| goro::current().id()).join().unwrap() > 0);
        let h = goro::Builder::new().name("on").spawn_on(&rt, || goro::current().name().map(str::to_string));
        assert_eq!(h.unwrap().join().unwrap().as_deref(), Some("on"));
    });
}

#[test]
fn builder_names_and_sizes_goroutines() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        unsafe {
            goro::run(|| {
                let h = goro::Builder::new()
                    .name("worker-7")
                    .stack_size(64 * 1024)
                    .spawn(|| goro::current().name().map(str::to_string))
                    .unwrap();
                assert_eq!(h.join().unwrap().as_deref(), Some("worker-7"));
                // A big frame on a big stack is fine.
                let h = goro::Builder::new()
                    .stack_size(4 << 20)
                    .spawn(|| {
                        let buf = [1u8; 1 << 20];
                        std::hint::black_box(&buf).iter().map(|&b| b as u64).sum::<u64>()
                    })
                    .unwrap();
                assert_eq!(h.join().unwrap(), 1 << 20);
            })
        };
    });
}

#[test]
fn a_goroutine_past_its_time_slice_yields_at_a_preemption_point() {
    bounded(30, || {
        // Hog handoff off: on a loaded machine the OS may hold the spinner's
        // thread past the hog threshold, and the handoff would then run the
        // setter instead of the preemption this test is about.
        let policy = goro::Policy { hog_handoff: false, ..goro::Policy::default() };
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).policy(policy).build() }.unwrap();
        rt.block_on(|| {
            let flag = Arc::new(AtomicBool::new(false));
            // The spinner spawns the setter (it goes to runnext) and never
            // yields by itself: only preemption lets the setter run.
            let spinner = goro::go(move || {
                let f2 = flag.clone();
                let setter = goro::go(move || f2.store(true, Ordering::Release));
                let mut rounds = 0u64;
                while !flag.load(Ordering::Acquire) {
                    goro::preempt_point();
                    rounds += 1;
                }
                setter.join().unwrap();
                rounds
            });
            assert!(spinner.join().unwrap() > 0);
        });
        assert!(rt.stats().total.preemptions > 0);
    });
}

#[test]
fn yield_now_lets_others_run_on_one_p() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).build() }.unwrap();
        let log = rt.block_on(|| {
            let log = Arc::new(Mutex::new(Vec::new()));
            let hs: Vec<_> = (0..3)
                .map(|i| {
                    let log = log.clone();
                    goro::go(move || {
                        for _ in 0..3 {
                            log.lock().unwrap().push(i);
                            goro::yield_now();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            let v = log.lock().unwrap().clone();
            v
        });
        // Interleaved, not one G running to completion first.
        assert_ne!(&log[..3], &[log[0]; 3], "{log:?}");
        assert_eq!(log.len(), 9);
    });
}

#[test]
fn unpark_before_park_is_not_lost() {
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        let mut rng = Rng(7);
        for _ in 0..2_000 {
            let delay = rng.below(20);
            let flag = Arc::new(AtomicBool::new(false));
            let slot = Arc::new(Mutex::new(None));
            let (f2, s2) = (flag.clone(), slot.clone());
            let h = rt.spawn(move || {
                *s2.lock().unwrap() = Some(goro::current_unparker());
                busy(delay);
                while !f2.load(Ordering::Acquire) {
                    goro::park(goro::WaitReason::Park);
                }
            });
            let u = loop {
                if let Some(u) = slot.lock().unwrap().take() {
                    break u;
                }
                std::hint::spin_loop();
            };
            flag.store(true, Ordering::Release);
            u.unpark();
            h.join().unwrap();
        }
    });
}

#[test]
fn park_until_times_out() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        unsafe {
            goro::run(|| {
                let t = std::time::Instant::now();
                let woken = goro::park_until(goro::WaitReason::Park, t + Duration::from_millis(15));
                assert!(!woken);
                assert!(t.elapsed() >= Duration::from_millis(15));
            })
        };
        let t = std::time::Instant::now();
        goro::park_until(goro::WaitReason::Park, t + Duration::from_millis(5));
        assert!(t.elapsed() >= Duration::from_millis(5));
    });
}

#[test]
fn the_builder_validates_its_input() {
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    let err = unsafe { Runtime::builder().procs(0).build() }.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("procs"), "{err}");
    let bad = Policy { local_queue: 1, ..Policy::default() };
    // SAFETY: as above.
    let err = unsafe { Runtime::builder().policy(bad).build() }.unwrap_err();
    assert!(err.to_string().contains("local_queue"), "{err}");
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn goro_procs_child() {
    if !common::is_child() {
        return;
    }
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    let in_run = unsafe { goro::run(|| goro::stats().procs) };
    // SAFETY: as above.
    let built = unsafe { Runtime::new() }.unwrap().procs();
    println!("RESULT default={} run={in_run} new={built}", goro::default_procs());
}

#[test]
fn goro_procs_sets_the_default_number_of_ps() {
    let result = |env: &[(&str, &str)]| {
        let out = common::run_child("goro_procs_child", env);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
            .lines()
            .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r.to_string()))
            .unwrap_or_else(|| panic!("{stdout}"))
    };
    assert_eq!(result(&[("GORO_PROCS", "3")]), "default=3 run=3 new=3");
    assert_eq!(result(&[("GORO_PROCS", " 7 ")]), "default=7 run=7 new=7");
    // Not a positive number: the CPU count, as without the variable.
    let cpus = std::thread::available_parallelism().unwrap().get();
    let want = format!("default={cpus} run={cpus} new={cpus}");
    for bad in ["0", "abc", "-2", ""] {
        assert_eq!(result(&[("GORO_PROCS", bad)]), want, "GORO_PROCS={bad:?}");
    }
}

#[test]
fn random_spawn_park_and_sleep_mix() {
    bounded(120, || {
        for seed in 0..8u64 {
            // SAFETY: the test's Gs keep no thread-local state across switch points.
            let rt = unsafe { Runtime::builder().procs(1 + (seed as usize % 3)).build() }.unwrap();
            let total = rt.block_on(move || {
                let hs: Vec<_> = (0..200u64)
                    .map(|i| {
                        goro::go(move || {
                            let mut rng = Rng(seed * 1000 + i);
                            let mut acc = 0;
                            for _ in 0..10 {
                                match rng.below(4) {
                                    0 => goro::yield_now(),
                                    1 => goro::sleep(Duration::from_micros(rng.below(500))),
                                    2 => acc += goro::go(move || i).join().unwrap(),
                                    _ => busy(rng.below(30)),
                                }
                            }
                            acc + 1
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            });
            // The same random choices, replayed without the runtime.
            let expected: u64 = (0..200u64)
                .map(|i| {
                    let mut rng = Rng(seed * 1000 + i);
                    let mut acc = 0;
                    for _ in 0..10 {
                        match rng.below(4) {
                            1 => drop(rng.below(500)),
                            2 => acc += i,
                            3 => drop(rng.below(30)),
                            _ => {}
                        }
                    }
                    acc + 1
                })
                .sum();
            assert_eq!(total, expected, "seed {seed}");
        }
    });
}

/// Two Gs take turns through a flag with bare park/unpark, on a fresh pair
/// of Gs many times over (so G structs are recycled between rounds): no
/// wake-up may be lost, whatever a previous life of a G left behind.
#[test]
fn park_unpark_turns_across_recycled_goroutines() {
    bounded(120, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::new() }.unwrap();
        let mut rng = Rng(7);
        for _ in 0..3000 {
            let iters = rng.below(50);
            rt.block_on(move || schedload::park_unpark_turns(iters));
        }
    });
}

/// With stealing off (or no spinning Ms) no other M can take work from a
/// P's local queue, so readying a G there must not wake Ms to look for it:
/// a ping-pong of 20,000 messages starts at most a handful of spinning Ms
/// (before this rule, one per message, and a busy loop on top).
#[test]
fn without_stealing_local_work_wakes_no_spinning_ms() {
    use goro::chan::Chan;
    for policy in [
        Policy { steal: Steal::Off, ..Policy::default() },
        Policy { max_spinning: Spinning::Limit(0), ..Policy::default() },
    ] {
        let spins = bounded(60, move || {
            // SAFETY: the test's Gs keep no thread-local state across switch points.
            let rt = unsafe { Runtime::builder().procs(2).policy(policy).build() }.unwrap();
            rt.block_on(|| {
                let (ping, pong) = (Chan::new(0), Chan::new(0));
                let (p2, q2) = (ping.clone(), pong.clone());
                let echo = goro::go(move || {
                    while let Some(v) = p2.recv() {
                        q2.send(v + 1u64).unwrap();
                    }
                });
                let mut v = 0;
                for _ in 0..20_000 {
                    ping.send(v).unwrap();
                    v = pong.recv().unwrap();
                }
                ping.close();
                echo.join().unwrap();
                assert_eq!(v, 20_000);
            });
            rt.stats().total.spins
        });
        assert!(spins < 100, "{spins} spinning Ms started for work they could not steal");
    }
}

/// A ping-pong of 20,000 messages on 2 Ps: with the default deferred
/// runnext wake-up, a G that readies its partner and then blocks wakes no
/// idle P (Go's immediate rule starts a spinning M for most messages).
#[test]
fn deferred_runnext_wake_spins_no_m_for_a_ping_pong() {
    let spins = bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        // `pingpong` checks that every message made the round trip.
        schedload::pingpong(&rt, 20_000);
        rt.stats().total.spins
    });
    assert!(spins < 100, "{spins} spinning Ms started for a ping-pong");
}

/// A G readies another into `runnext` and then runs on without any runtime
/// call: the deferred wake-up must still happen (sysmon does it), so that
/// the idle P takes the readied G. Under `RunnextWake::Never` this can hang.
#[test]
fn a_readier_that_never_calls_the_runtime_still_lets_an_idle_p_run_runnext() {
    use goro::chan::Chan;
    for runnext_wake in [RunnextWake::Deferred, RunnextWake::Immediate] {
        for _ in 0..5 {
            bounded(30, move || {
                let rt =
                    // SAFETY: the test's Gs keep no thread-local state across switch points.
                    unsafe { Runtime::builder().procs(2).policy(Policy { runnext_wake, ..Policy::default() }).build() }.unwrap();
                rt.block_on(|| {
                    let (started, go_on) = (Chan::new(0), Chan::new(0));
                    let done = Arc::new(AtomicBool::new(false));
                    let (s2, g2, d2) = (started.clone(), go_on.clone(), done.clone());
                    goro::go(move || {
                        s2.send(()).unwrap();
                        g2.recv().unwrap();
                        d2.store(true, Ordering::Release);
                    });
                    started.recv().unwrap();
                    // Let every other M go to sleep (run without a runtime
                    // call for a while): no spinning M may happen to be
                    // around to steal the G readied next.
                    busy(2_000);
                    go_on.send(()).unwrap();
                    // No runtime call from here on: only another P can run
                    // the G just readied into this P's runnext.
                    while !done.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                });
            });
        }
    }
}

/// The readier keeps making runtime calls that do not block: the deferred
/// wake-up happens at the second one and an idle P runs the readied G
/// while the readier polls — the readier need not be preempted for it (as
/// it would be under `RunnextWake::Never`, once per round).
#[test]
fn a_readier_that_keeps_polling_wakes_an_idle_p() {
    use goro::chan::Chan;
    let preemptions = bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        rt.block_on(|| {
            for _ in 0..20 {
                let (ch, reply) = (Chan::new(0), Chan::new(1));
                let (c2, r2) = (ch.clone(), reply.clone());
                let echo = goro::go(move || {
                    let v: u64 = c2.recv().unwrap();
                    r2.send(v * 2).unwrap();
                });
                // Let the echo G park on `ch` and every other M go to sleep
                // (as in the test above), then hand it a value and poll
                // for the answer without blocking.
                goro::yield_now();
                busy(2_000);
                ch.send(21).unwrap();
                let got = loop {
                    if let Ok(v) = reply.try_recv() {
                        break v;
                    }
                };
                assert_eq!(got, 42);
                echo.join().unwrap();
            }
        });
        rt.stats().total.preemptions
    });
    assert!(preemptions < 10, "the readier was preempted {preemptions} times in 20 rounds");
}

/// Go's fairness rule: a busy P whose local queue never empties still takes
/// a G from the global queue every 61 schedules; with the check off
/// (`global_queue_interval: 0`) the global G waits for the local queue to
/// empty.
#[test]
fn a_global_g_runs_within_61_schedules_on_a_busy_p() {
    fn schedules_until_global_g_runs(interval: u32) -> Option<u64> {
        // Hog handoff off: on a loaded machine the OS can stall a yielder's
        // thread past the hog threshold, and the handoff (a rule of its
        // own) would blur the count of this one.
        let policy = Policy { global_queue_interval: interval, hog_handoff: false, ..Policy::default() };
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).policy(policy).build() }.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        // Four Gs that yield forever keep the only P's local queue full.
        let spinners = rt.block_on(move || {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let s = s.clone();
                    goro::go(move || {
                        while !s.load(Ordering::Relaxed) {
                            goro::yield_now();
                        }
                    })
                })
                .collect();
            goro::yield_now(); // they are all queued and running now
            hs
        });
        common::wait_until("the yielders run", || rt.stats().total.yields > 1000);
        // From a plain thread, `spawn` puts the G on the global queue.
        let h = rt.spawn(|| goro::stats().total.scheduled);
        let s0 = rt.stats().total.scheduled;
        // Give it 20,000 schedules of the busy P.
        common::wait_until("20,000 schedules", || h.is_finished() || rt.stats().total.scheduled > s0 + 20_000);
        let ran_at = h.is_finished().then_some(s0);
        stop.store(true, Ordering::Relaxed);
        let s1 = h.join().unwrap();
        for h in spinners {
            h.join().unwrap();
        }
        ran_at.map(|s0| s1.saturating_sub(s0))
    }
    bounded(60, || {
        for _ in 0..20 {
            let n = schedules_until_global_g_runs(61).expect("the global G starved under the 61-tick rule");
            // 61 ticks, plus the G's own schedule and counters read a
            // moment apart.
            assert!(n <= 64, "the global G waited {n} schedules");
        }
        assert_eq!(
            schedules_until_global_g_runs(0),
            None,
            "with the check off, a busy P never looks at the global queue"
        );
    });
}

/// A thief takes the victim's queued Gs, and its `runnext` G only from a
/// victim stuck in one G (it has not switched Gs meanwhile); with
/// `steal_runnext: false`, never. (Which of the two goes first is a race:
/// a thief that found the queue empty before the second spawn may take
/// the new `runnext` on its last round, as Go's would.)
#[test]
fn a_thief_takes_queued_gs_and_runnext_only_from_a_stuck_p() {
    fn run(steal_runnext: bool) -> (Option<usize>, Option<usize>) {
        // Hog handoff off: the P must stay stuck behind its computing G.
        let policy = Policy { steal_runnext, hog_handoff: false, ..Policy::default() };
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).policy(policy).build() }.unwrap();
        rt.block_on(move || {
            goro::go(move || {
                let seq = Arc::new(AtomicUsize::new(1));
                let (a_at, b_at) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
                let mark = |at: &Arc<AtomicUsize>| {
                    let (seq, at) = (seq.clone(), at.clone());
                    move || at.store(seq.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst)
                };
                // `a` goes to runnext, then to the local queue when `b`
                // takes runnext; this G then computes without runtime calls,
                // so only a thief on the other P can run them meanwhile.
                let ha = goro::go(mark(&a_at));
                let hb = goro::go(mark(&b_at));
                let t = std::time::Instant::now();
                let limit = Duration::from_millis(if steal_runnext { 5000 } else { 300 });
                while (a_at.load(Ordering::SeqCst) == 0 || b_at.load(Ordering::SeqCst) == 0) && t.elapsed() < limit {
                    std::hint::spin_loop();
                }
                let seen = |at: &AtomicUsize| Some(at.load(Ordering::SeqCst)).filter(|&s| s != 0);
                let r = (seen(&a_at), seen(&b_at));
                ha.join().unwrap();
                hb.join().unwrap();
                r
            })
            .join()
            .unwrap()
        })
    }
    bounded(120, || {
        for _ in 0..10 {
            let (a, b) = run(true);
            assert!(a.is_some(), "the queued G was not stolen");
            assert!(b.is_some(), "runnext was not stolen from a stuck P");
        }
        let (a, b) = run(false);
        assert!(a.is_some(), "the queued G was not stolen");
        assert_eq!(b, None, "runnext was stolen with steal_runnext off");
    });
}

#[test]
fn stack_sizes_are_validated_not_crashed_on() {
    bounded(30, || {
        for bytes in [usize::MAX, usize::MAX / 2, (1 << 30) + 1] {
            // SAFETY: the test's Gs keep no thread-local state across switch points.
            let err = unsafe { Runtime::builder().stack_size(bytes).build() }.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bytes}: {err}");
            assert!(err.to_string().contains("stack_size"), "{err}");
        }
        // SAFETY: as above.
        let rt = unsafe { Runtime::builder().procs(1).stack_size(0).build() }.unwrap();
        rt.block_on(|| {
            for bytes in [usize::MAX, usize::MAX - 4095, (1 << 30) + 1] {
                let err = goro::Builder::new().stack_size(bytes).spawn(|| ()).unwrap_err();
                assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bytes}: {err}");
            }
            // Zero means the smallest stack there is; it runs.
            let h = goro::Builder::new().stack_size(0).spawn(|| 3).unwrap();
            assert_eq!(h.join().unwrap(), 3);
            // The runtime's own default of 0 too.
            assert_eq!(goro::go(|| 4).join().unwrap(), 4);
        });
    });
}

/// A G that waits really switches out (its M runs the other G): on one P,
/// each message of a ping-pong parks one side. A park that returned at once
/// (a token never consumed, a fast path gone wrong) would spin instead.
#[test]
fn a_waiting_g_parks_instead_of_spinning() {
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).build() }.unwrap();
        let before = rt.stats().total.parks;
        schedload::pingpong(&rt, 1000);
        let parks = rt.stats().total.parks - before;
        // Two messages per round trip, one side of each parks.
        assert!(parks >= 2000, "{parks} parks for 2,000 hand-offs on one P");
    });
}

/// `join_timeout`: a finished G's result at once; a running G's handle back
/// after the timeout, still joinable; from a G and from a plain thread.
#[test]
fn join_timeout_gives_the_handle_back_while_the_g_runs() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        rt.block_on(|| {
            let done = goro::go(|| 5);
            assert_eq!(done.join_timeout(Duration::from_secs(10)).ok().map(|r| r.unwrap()), Some(5));
            let gate: goro::chan::Chan<()> = goro::chan::Chan::new(0);
            let g2 = gate.clone();
            let waiting = goro::go(move || {
                g2.recv();
                6
            });
            let t = Instant::now();
            let waiting = waiting.join_timeout(Duration::from_millis(10)).expect_err("the G is blocked");
            assert!(t.elapsed() >= Duration::from_millis(10));
            gate.send(()).unwrap();
            assert_eq!(waiting.join().unwrap(), 6);
        });
        // From a plain thread.
        let gate: goro::chan::Chan<()> = goro::chan::Chan::new(0);
        let g2 = gate.clone();
        let h = rt.spawn(move || {
            g2.recv();
            7
        });
        let h = h.join_timeout(Duration::from_millis(1)).expect_err("still waiting at the gate");
        gate.send(()).unwrap();
        assert_eq!(h.join_timeout(Duration::from_secs(10)).ok().map(|r| r.unwrap()), Some(7));
    });
}

/// The runtime's stats count idle Ps: with 4 Ps and one G running, 3 are
/// idle once the spinning Ms started for the caller's wake-ups gave up.
#[test]
fn stats_count_the_idle_ps() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(4).build() }.unwrap();
        rt.block_on(|| {
            common::wait_until("3 of 4 Ps idle", || goro::stats().idle_procs == 3);
            let st = goro::stats();
            assert!(st.spinning_threads <= 1, "{} Ms spinning", st.spinning_threads);
        });
    });
}

/// Gs that exit on another P than the one that spawned them (stolen Gs)
/// take no lock of the spawner's registry: a dead G stays registered
/// (Go's `allgs`) and goes to the free list of the P it exited on, where a
/// later spawn takes it without touching any registry either. Dead, they
/// are neither listed nor counted as live, and they are reused: the G
/// objects in the process stay few however many Gs are spawned.
#[test]
fn gs_that_exit_on_another_p_take_no_lock_of_its_registry() {
    bounded(60, || {
        // Hog handoff off: a G reaches the other P only by theft.
        let policy = Policy { hog_handoff: false, ..Policy::default() };
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).policy(policy).build() }.unwrap();
        let (spawned, locks, objects) = rt.block_on(|| {
            let before = goro::stats();
            let mut spawned = 0;
            let mut objects = 0;
            while goro::stats().total.stolen < before.total.stolen + 64 {
                assert!(spawned < 20_000, "too few steals: {:?}", goro::stats());
                for h in spawn_until_one_is_stolen(100, 20) {
                    h.join().unwrap();
                }
                spawned += 100;
                // A joined G may still be on its way out (its result is
                // delivered before it exits); then it is dead, and not
                // listed or counted.
                common::wait_until("only the main G is live", || goro::stats().live_goroutines == 1);
                let listed = goro::dump().lines().filter(|l| l.starts_with("goroutine ")).count();
                assert_eq!(listed, 1, "dead Gs listed:\n{}", goro::dump());
                objects = objects.max(goro::stats().g_objects);
            }
            let locks = goro::stats().shared_locks.other_registry - before.shared_locks.other_registry;
            (spawned, locks, objects)
        });
        assert_eq!(locks, 0, "locks of another P's registry for {spawned} Gs (about half of them stolen)");
        // 100 at a time, each spawn reusing a dead G when its P has one:
        // a few hundred objects at most, against `spawned` without reuse.
        assert!(objects <= 400, "{objects} G objects for {spawned} Gs spawned 100 at a time");
    });
}

/// An unpark that comes before the park is used up by that park: the G
/// returns at once, and its next park waits for the next unpark (a token
/// left set would make every later park return at once: a G spinning
/// where it should sleep).
#[test]
fn an_early_unpark_is_used_up_by_one_park() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        rt.block_on(|| {
            let me = goro::current_unparker();
            me.unpark();
            goro::park(goro::WaitReason::Park); // returns at once
            let woken = Arc::new(AtomicBool::new(false));
            let waker = {
                let (me, woken) = (me.clone(), woken.clone());
                goro::go(move || {
                    goro::sleep(Duration::from_millis(20));
                    woken.store(true, Ordering::Release);
                    me.unpark();
                })
            };
            // Spurious wake-ups are allowed (callers loop), but only a few.
            let mut parks = 0;
            while !woken.load(Ordering::Acquire) {
                goro::park(goro::WaitReason::Park);
                parks += 1;
            }
            waker.join().unwrap();
            assert!(parks <= 5, "{parks} parks returned before the unpark");
        });
    });
}
