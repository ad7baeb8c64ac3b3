//! `select!` and `Select`, after Go's select tests (`test/chan/select*.go`,
//! `doubleselect.go`, `runtime/chan_test.go`).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bounded, Rng};
use goro::chan::{Chan, Select, SendError};
use goro::{select, Runtime};

fn rt(procs: usize) -> Runtime {
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    unsafe { Runtime::builder().procs(procs).build() }.unwrap()
}

#[test]
fn select_is_fair_between_ready_arms() {
    // Go's TestSelectFairness: both arms always ready; the split must be
    // within 10 standard deviations of even.
    const TRIALS: usize = 10_000;
    let c1 = Chan::new(TRIALS + 1);
    let c2 = Chan::new(TRIALS + 1);
    for _ in 0..=TRIALS {
        c1.send(1u8).unwrap();
        c2.send(2u8).unwrap();
    }
    let (c3, c4) = (Chan::<u8>::new(0), Chan::<u8>::new(0));
    let (mut n1, mut n2) = (0, 0);
    for _ in 0..TRIALS {
        let v = select! {
            recv(c1) -> v => v.unwrap(),
            recv(c2) -> v => v.unwrap(),
            recv(c3) -> v => v.unwrap(),
            recv(c4) -> v => v.unwrap(),
        };
        if v == 1 {
            n1 += 1;
        } else {
            n2 += 1;
        }
    }
    let sigma = ((TRIALS as f64) * 0.25).sqrt();
    let dev = ((n1 as f64) - TRIALS as f64 / 2.0).abs();
    assert!(dev < 10.0 * sigma, "unfair select: {n1} vs {n2}");
}

#[test]
fn select_send_picks_arms_pseudo_randomly() {
    // Go's TestPseudoRandomSend.
    bounded(30, || {
        for cap in [0usize, 2] {
            let (n0, n1) = rt(2).block_on(move || {
                const N: usize = 1000;
                let c = Chan::new(cap);
                let c2 = c.clone();
                let h = goro::go(move || {
                    let (mut n0, mut n1) = (0, 0);
                    for _ in 0..N {
                        match c2.recv().unwrap() {
                            0 => n0 += 1,
                            _ => n1 += 1,
                        }
                    }
                    (n0, n1)
                });
                for _ in 0..N {
                    select! {
                        send(c, 0) -> r => r.unwrap(),
                        send(c, 1) -> r => r.unwrap(),
                    }
                }
                h.join().unwrap()
            });
            assert!(n0 > 100 && n1 > 100, "cap {cap}: {n0} zeros, {n1} ones");
        }
    });
}

#[test]
fn select_never_receives_its_own_send() {
    // Go's TestSelfSelect: two Gs select-send and select-receive on one
    // channel; on an unbuffered channel a G must never get its own value.
    // On both, every value sent is received exactly once.
    bounded(60, || {
        for cap in [0usize, 10] {
            rt(2).block_on(move || {
                let c = Chan::new(cap);
                let done = Chan::<()>::new(0);
                let hs: Vec<_> = (0..2u64)
                    .map(|p| {
                        let c = c.clone();
                        goro::go(move || {
                            let (mut sent, mut got) = (Vec::new(), Vec::new());
                            for i in 0..1000u64 {
                                let mine = p * 1_000_000 + i;
                                select! {
                                    send(c, mine) -> r => {
                                        r.unwrap();
                                        sent.push(mine);
                                    }
                                    recv(c) -> v => {
                                        let v = v.unwrap();
                                        if cap == 0 {
                                            assert_ne!(v, mine, "received own value");
                                        }
                                        got.push(v);
                                    }
                                }
                            }
                            (sent, got)
                        })
                    })
                    .collect();
                // The two Gs may end unbalanced: receive for whoever is left
                // until both are done, then take what is still buffered.
                let drain = {
                    let (c, done) = (c.clone(), done.clone());
                    goro::go(move || {
                        let mut got = Vec::new();
                        loop {
                            select! {
                                recv(c) -> v => got.push(v.unwrap()),
                                recv(done) -> _ => break,
                            }
                        }
                        while let Ok(v) = c.try_recv() {
                            got.push(v);
                        }
                        got
                    })
                };
                let (mut sent, mut got) = (Vec::new(), Vec::new());
                for h in hs {
                    let (s, g) = h.join().unwrap();
                    sent.extend(s);
                    got.extend(g);
                }
                done.close();
                got.extend(drain.join().unwrap());
                assert!(!sent.is_empty());
                sent.sort_unstable();
                got.sort_unstable();
                assert_eq!(got, sent, "cap {cap}: every value sent is received exactly once");
            });
        }
    });
}

#[test]
fn double_select_delivers_each_value_once() {
    // Go's test/chan/doubleselect.go: a sender selects over four channels;
    // four muxes forward to one channel; every value arrives exactly once.
    bounded(60, || {
        let seen = rt(3).block_on(|| {
            const N: u64 = 20_000;
            let cs: Vec<Chan<u64>> = (0..4).map(|_| Chan::new(0)).collect();
            let out = Chan::new(0);
            {
                let cs = cs.clone();
                goro::go(move || {
                    for i in 0..N {
                        select! {
                            send(cs[0], i) -> r => r.unwrap(),
                            send(cs[1], i) -> r => r.unwrap(),
                            send(cs[2], i) -> r => r.unwrap(),
                            send(cs[3], i) -> r => r.unwrap(),
                        }
                    }
                    for c in &cs {
                        c.close();
                    }
                });
            }
            let done = Arc::new(AtomicUsize::new(0));
            for c in &cs {
                let (c, out, done) = (c.clone(), out.clone(), done.clone());
                goro::go(move || {
                    for v in &c {
                        out.send(v).unwrap();
                    }
                    if done.fetch_add(1, Ordering::SeqCst) == 3 {
                        out.close();
                    }
                });
            }
            let mut seen = HashSet::new();
            for v in &out {
                assert!(seen.insert(v), "{v} delivered twice");
            }
            seen.len() as u64
        });
        assert_eq!(seen, 20_000);
    });
}

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_losing_send_arm_drops_its_value_exactly_once() {
    bounded(30, || {
        rt(2).block_on(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let a: Chan<Counted> = Chan::new(0);
            let b: Chan<u8> = Chan::new(0);
            let b2 = b.clone();
            // Wins after the select has queued on both channels (the
            // selecting G is the only other one, and it parks in select).
            goro::go(move || {
                common::wait_until("the select parked", || common::parked_goroutines() >= 1);
                b2.send(1).unwrap();
            });
            let r = select! {
                send(a, Counted(drops.clone())) -> _ => "sent",
                recv(b) -> _ => "received",
            };
            assert_eq!(r, "received");
            assert_eq!(drops.load(Ordering::SeqCst), 1, "the unsent value is dropped once");
            // Nothing of the losing arm is left on `a`.
            assert!(a.try_recv().is_err());
            // Immediate case: the default wins, the value is dropped once.
            let r = select! {
                send(a, Counted(drops.clone())) -> _ => 1,
                default => 2,
            };
            assert_eq!(r, 2);
            assert_eq!(drops.load(Ordering::SeqCst), 2);
        });
    });
}

#[test]
fn select_on_closed_channels() {
    let c: Chan<u8> = Chan::new(0);
    c.close();
    let r = select! { recv(c) -> v => v };
    assert_eq!(r, None);
    let r = select! { send(c, 5) -> r => r };
    assert_eq!(r, Err(SendError(5)));
}

#[test]
fn the_same_channel_in_several_arms() {
    bounded(30, || {
        rt(2).block_on(|| {
            let c = Chan::new(0);
            let c2 = c.clone();
            let h = goro::go(move || (0..100).map(|_| c2.recv().unwrap()).sum::<u32>());
            for _ in 0..100 {
                select! {
                    send(c, 1) -> r => r.unwrap(),
                    send(c, 1) -> r => r.unwrap(),
                    recv(c) -> _ => panic!("nobody sends"),
                }
            }
            // `h` has taken all 100: it is done before the next phase.
            let c3 = c.clone();
            goro::go(move || {
                for _ in 0..100 {
                    c3.send(1).unwrap();
                }
            });
            for _ in 0..100 {
                select! {
                    recv(c) -> v => assert_eq!(v, Some(1)),
                    recv(c) -> v => assert_eq!(v, Some(1)),
                }
            }
            assert_eq!(h.join().unwrap(), 100);
        });
    });
}

#[test]
fn select_bodies_can_break_and_continue_a_loop() {
    let c = Chan::new(10);
    for i in 0..10 {
        c.send(i).unwrap();
    }
    c.close();
    let mut odd = Vec::new();
    loop {
        select! {
            recv(c) -> v => {
                let Some(v) = v else { break };
                if v % 2 == 0 {
                    continue;
                }
                odd.push(v);
            }
        }
    }
    assert_eq!(odd, vec![1, 3, 5, 7, 9]);
}

#[test]
fn select_with_a_timeout_arm() {
    bounded(30, || {
        rt(1).block_on(|| {
            let never: Chan<u8> = Chan::new(0);
            let t = Instant::now();
            let r = select! {
                recv(never) -> _ => "value",
                recv(goro::time::after(Duration::from_millis(20))) -> _ => "timeout",
            };
            assert_eq!(r, "timeout");
            assert!(t.elapsed() >= Duration::from_millis(20));
            // The timed-out select left no waiter behind on `never`.
            assert!(never.try_send(1).is_err());
        });
    });
}

#[test]
fn default_makes_select_nonblocking() {
    let c: Chan<u8> = Chan::new(1);
    let empty = select! { recv(c) -> _ => false, default => true };
    assert!(empty);
    c.send(3).unwrap();
    let got = select! { recv(c) -> v => v, default => None };
    assert_eq!(got, Some(3));
    let only_default = select! { default => 7 };
    assert_eq!(only_default, 7);
}

#[test]
fn select_between_a_goroutine_and_plain_threads() {
    bounded(30, || {
        let rt = rt(2);
        let a: Chan<u32> = Chan::new(0);
        let b: Chan<u32> = Chan::new(0);
        let (a2, b2) = (a.clone(), b.clone());
        let g = rt.spawn(move || {
            let (mut a2, mut b2) = (a2, b2);
            let mut sum = 0;
            // Go's idiom: a closed channel is replaced by nil so its arm
            // stops firing.
            while !(a2.is_nil() && b2.is_nil()) {
                select! {
                    recv(a2) -> v => match v { Some(v) => sum += v, None => a2 = goro::chan::nil() },
                    recv(b2) -> v => match v { Some(v) => sum += v, None => b2 = goro::chan::nil() },
                }
            }
            sum
        });
        let ta = std::thread::spawn(move || {
            for i in 0..1000 {
                a.send(i).unwrap();
            }
            a.close();
        });
        let tb = std::thread::spawn(move || {
            for i in 0..1000 {
                b.send(i).unwrap();
            }
            b.close();
        });
        ta.join().unwrap();
        tb.join().unwrap();
        assert_eq!(g.join().unwrap(), 2 * 999 * 1000 / 2);
    });
}

/// Every arm of a select with many ready arms wins about as often, around
/// the sizes where the poll order's scratch buffer and random words change
/// (16 arms fit the fixed buffer; 4 arms share a random word).
#[test]
fn select_is_fair_over_many_ready_arms() {
    for n in [5, 8, 16, 17, 20] {
        let trials = 500 * n;
        let chans: Vec<Chan<usize>> = (0..n).map(|_| Chan::new(trials)).collect();
        for (i, c) in chans.iter().enumerate() {
            for _ in 0..trials {
                c.send(i).unwrap();
            }
        }
        let mut wins = vec![0usize; n];
        for _ in 0..trials {
            let mut sel = Select::new();
            for c in &chans {
                sel.recv(c);
            }
            let i = sel.select();
            assert_eq!(sel.take_recv::<usize>(i), Some(i));
            wins[i] += 1;
        }
        // Each arm: binomial(trials, 1/n), mean 500; 10 standard deviations.
        let p = 1.0 / n as f64;
        let sigma = (trials as f64 * p * (1.0 - p)).sqrt();
        for (i, &w) in wins.iter().enumerate() {
            assert!((w as f64 - 500.0).abs() < 10.0 * sigma, "{n} arms: arm {i} won {w} times: {wins:?}");
        }
    }
}

/// The dynamic `Select`'s own API: the indices `recv` and `send` return,
/// `try_select` on a ready arm, a send arm's outcome on a closed channel,
/// a losing send arm that keeps its value for the next round, `Debug`.
#[test]
fn dynamic_select_indices_outcomes_and_reuse() {
    bounded(30, || {
        let (a, b, out) = (Chan::<u8>::new(1), Chan::<u8>::new(1), Chan::<&str>::new(1));
        let mut sel = Select::new();
        assert_eq!(sel.recv(&a), 0);
        assert_eq!(sel.recv(&b), 1);
        let s = sel.send(&out, "v");
        assert_eq!(s, 2);
        out.send("full").unwrap();
        assert_eq!(format!("{sel:?}"), "Select { arms: 3 }");
        assert_eq!(sel.try_select(), None);
        b.send(7).unwrap();
        // Only arm 1 is ready: the send arm loses and keeps "v".
        assert_eq!(sel.try_select(), Some(1));
        assert_eq!(sel.take_recv::<u8>(1), Some(7));
        assert_eq!(out.recv(), Some("full"));
        assert_eq!(sel.select(), s);
        sel.take_send::<&str>(s).unwrap();
        assert_eq!(out.recv(), Some("v"));

        // A send arm on a closed channel fires with its value back.
        let closed = Chan::<String>::new(0);
        closed.close();
        let mut sel = Select::new();
        let s = sel.send(&closed, "back".to_string());
        assert_eq!(sel.select(), s);
        assert_eq!(sel.take_send::<String>(s), Err(SendError("back".to_string())));

        // The same after the select parked: the send arm that lost while
        // queued gets its value back from its queue entry.
        rt(2).block_on(|| {
            let (a, out) = (Chan::<u8>::new(0), Chan::<&str>::new(0));
            let mut sel = Select::new();
            let r = sel.recv(&a);
            let s = sel.send(&out, "v");
            let a2 = a.clone();
            let sender = goro::go(move || {
                common::wait_until("the select parked", || common::parked_goroutines() >= 1);
                a2.send(1).unwrap();
            });
            assert_eq!(sel.select(), r);
            assert_eq!(sel.take_recv::<u8>(r), Some(1));
            sender.join().unwrap();
            let o = out.clone();
            let receiver = goro::go(move || o.recv());
            assert_eq!(sel.select(), s);
            sel.take_send::<&str>(s).unwrap();
            assert_eq!(receiver.join().unwrap(), Some("v"));
        });
    });
}

#[test]
fn dynamic_select_over_many_channels() {
    bounded(60, || {
        rt(2).block_on(|| {
            let chans: Vec<Chan<usize>> = (0..40).map(|_| Chan::new(0)).collect();
            for (i, c) in chans.iter().enumerate() {
                let c = c.clone();
                goro::go(move || {
                    for _ in 0..10 {
                        c.send(i).unwrap();
                    }
                });
            }
            let mut counts = [0; 40];
            for _ in 0..400 {
                let mut sel = Select::new();
                for c in &chans {
                    sel.recv(c);
                }
                let i = sel.select();
                let v = sel.take_recv::<usize>(i).unwrap();
                assert_eq!(v, i);
                counts[v] += 1;
            }
            assert!(counts.iter().all(|&n| n == 10));
            let idle = Chan::<u8>::new(0);
            let out = Chan::new(1);
            let mut sel = Select::new();
            sel.recv(&idle);
            assert_eq!(sel.try_select(), None);
            assert_eq!(sel.select_timeout(Duration::from_millis(5)), None);
            let mut sel = Select::new();
            sel.recv(&idle);
            let s = sel.send(&out, "x");
            assert_eq!(sel.select(), s);
            sel.take_send::<&str>(s).unwrap();
            assert_eq!(out.recv(), Some("x"));
        });
    });
}

#[test]
fn random_select_stress_with_timeouts() {
    bounded(120, || {
        for seed in 0..4u64 {
            let (sent, got) = rt(1 + seed as usize % 2).block_on(move || {
                let chans: Vec<Chan<u64>> = (0..3).map(Chan::new).collect();
                let sent = Arc::new(AtomicUsize::new(0));
                let senders: Vec<_> = (0..6u64)
                    .map(|k| {
                        let (cs, sent) = (chans.clone(), sent.clone());
                        goro::go(move || {
                            let mut rng = Rng(seed * 31 + k);
                            for i in 0..300 {
                                let r = select! {
                                    send(cs[0], i) -> r => r.is_ok(),
                                    send(cs[1], i) -> r => r.is_ok(),
                                    send(cs[2], i) -> r => r.is_ok(),
                                    recv(goro::time::after(Duration::from_micros(rng.below(300)))) -> _ => false,
                                };
                                if r {
                                    sent.fetch_add(1, Ordering::SeqCst);
                                }
                                if rng.below(8) == 0 {
                                    goro::yield_now();
                                }
                            }
                        })
                    })
                    .collect();
                let got = Arc::new(AtomicUsize::new(0));
                let stop: Chan<()> = Chan::new(0);
                let receivers: Vec<_> = (0..3)
                    .map(|_| {
                        let (cs, got, stop) = (chans.clone(), got.clone(), stop.clone());
                        goro::go(move || loop {
                            select! {
                                recv(cs[0]) -> _ => { got.fetch_add(1, Ordering::SeqCst); }
                                recv(cs[1]) -> _ => { got.fetch_add(1, Ordering::SeqCst); }
                                recv(cs[2]) -> _ => { got.fetch_add(1, Ordering::SeqCst); }
                                recv(stop) -> _ => break,
                            }
                        })
                    })
                    .collect();
                for s in senders {
                    s.join().unwrap();
                }
                // Drain what is buffered, then stop the receivers.
                while chans.iter().any(|c| !c.is_empty()) {
                    goro::yield_now();
                }
                stop.close();
                for r in receivers {
                    r.join().unwrap();
                }
                (sent.load(Ordering::SeqCst), got.load(Ordering::SeqCst))
            });
            assert_eq!(sent, got, "seed {seed}: every successful send is received once");
            assert!(sent > 0);
        }
    });
}

/// crossbeam-channel's `default(timeout)`: an arm that is ready wins at
/// once; with none ready the select waits for the timeout, then runs the
/// default body; an arm that becomes ready during the wait wins.
#[test]
fn default_with_a_timeout_waits_then_gives_up() {
    bounded(30, || {
        rt(2).block_on(|| {
            let ready = Chan::new(1);
            ready.send(7).unwrap();
            let quiet: Chan<i32> = Chan::new(0);
            let t = Instant::now();
            let got = goro::select! {
                recv(ready) -> v => v,
                recv(quiet) -> _ => None,
                default(Duration::from_secs(60)) => Some(-1),
            };
            assert_eq!(got, Some(7));
            assert!(t.elapsed() < Duration::from_secs(60), "a ready arm waited for the timeout");

            let t = Instant::now();
            let got = goro::select! {
                recv(quiet) -> _ => 0,
                default(Duration::from_millis(20)) => 1,
            };
            assert_eq!(got, 1);
            assert!(t.elapsed() >= Duration::from_millis(20), "gave up early: {:?}", t.elapsed());

            // Zero: like `default`, non-blocking in effect.
            let got = goro::select! { recv(quiet) -> _ => 0, default(Duration::ZERO) => 1 };
            assert_eq!(got, 1);

            // An arm that becomes ready while the select waits wins.
            let late = Chan::new(0);
            let l2 = late.clone();
            goro::go(move || {
                goro::sleep(Duration::from_millis(5));
                l2.send(3).unwrap();
            });
            let got = goro::select! {
                recv(late) -> v => v.unwrap(),
                default(Duration::from_secs(10)) => -1,
            };
            assert_eq!(got, 3);
        });
    });
}
