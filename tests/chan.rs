//! Channels, after Go's `test/chan/*.go` and `runtime/chan_test.go`, in our
//! own words.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bounded, busy, Rng};
use goro::chan::{Chan, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use goro::Runtime;

fn rt(procs: usize) -> Runtime {
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    unsafe { Runtime::builder().procs(procs).build() }.unwrap()
}

#[test]
fn unbuffered_send_completes_only_when_received() {
    bounded(30, || {
        rt(2).block_on(|| {
            let ch = Chan::new(0);
            let received = Arc::new(AtomicUsize::new(0));
            let r2 = received.clone();
            let c2 = ch.clone();
            let h = goro::go(move || {
                goro::sleep(Duration::from_millis(20));
                r2.store(1, Ordering::SeqCst);
                c2.recv().unwrap()
            });
            ch.send(42).unwrap();
            assert_eq!(received.load(Ordering::SeqCst), 1, "send returned before the receiver was there");
            assert_eq!(h.join().unwrap(), 42);
        });
    });
}

#[test]
fn buffered_channel_is_fifo() {
    bounded(30, || {
        rt(2).block_on(|| {
            let ch = Chan::new(10);
            for i in 0..10 {
                ch.send(i).unwrap();
            }
            assert_eq!(ch.len(), 10);
            assert_eq!(ch.cap(), 10);
            assert!(matches!(ch.try_send(99), Err(TrySendError::Full(99))));
            for i in 0..10 {
                assert_eq!(ch.recv(), Some(i));
            }
            // FIFO also through blocked senders (Go's fifo.go, async part).
            let ch = Chan::new(2);
            let hs: Vec<_> = (0..2).map(|i| ch.send(i).unwrap()).collect();
            drop(hs);
            let c2 = ch.clone();
            let h = goro::go(move || {
                for i in 2..50 {
                    c2.send(i).unwrap();
                }
            });
            for i in 0..50 {
                assert_eq!(ch.recv(), Some(i));
            }
            h.join().unwrap();
        });
    });
}

#[test]
fn daisy_chain_of_ten_thousand_goroutines() {
    // Go's test/chan/goroutines.go and fifo.go's synchronous chain.
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let out = unsafe {
            goro::run(|| {
                let first = Chan::new(0);
                let mut left = first.clone();
                for _ in 0..10_000 {
                    let right = Chan::new(0);
                    let (l, r) = (left, right.clone());
                    goro::go(move || l.send(1 + r.recv().unwrap()).unwrap());
                    left = right;
                }
                goro::go(move || left.send(1).unwrap());
                first.recv().unwrap()
            })
        };
        assert_eq!(out, 10_001);
    });
}

#[test]
fn concurrent_prime_sieve() {
    // Go's test/chan/sieve1.go.
    fn generate(ch: Chan<u32>) {
        for i in 2.. {
            if ch.send(i).is_err() {
                return;
            }
        }
    }
    fn filter(inp: Chan<u32>, out: Chan<u32>, prime: u32) {
        for i in &inp {
            if i % prime != 0 && out.send(i).is_err() {
                break;
            }
        }
        // Stop the stage before us too.
        if !inp.is_closed() {
            inp.close();
        }
    }
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let primes = unsafe {
            goro::run(|| {
                let mut ch = Chan::new(0);
                let c = ch.clone();
                goro::go(move || generate(c));
                let mut primes = Vec::new();
                for _ in 0..100 {
                    let prime = ch.recv().unwrap();
                    primes.push(prime);
                    let ch1 = Chan::new(0);
                    let (i, o) = (ch.clone(), ch1.clone());
                    goro::go(move || filter(i, o, prime));
                    ch = ch1;
                }
                ch.close();
                primes
            })
        };
        assert_eq!(&primes[..10], &[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert_eq!(primes[99], 541);
    });
}

#[test]
fn close_wakes_all_receivers_and_senders() {
    bounded(30, || {
        rt(2).block_on(|| {
            let ch: Chan<u32> = Chan::new(0);
            let receivers: Vec<_> = (0..10)
                .map(|_| {
                    let c = ch.clone();
                    goro::go(move || c.recv())
                })
                .collect();
            let full: Chan<u32> = Chan::new(1);
            full.send(0).unwrap();
            let senders: Vec<_> = (0..10)
                .map(|i| {
                    let c = full.clone();
                    goro::go(move || c.send(100 + i))
                })
                .collect();
            common::wait_until("20 Gs parked", || common::parked_goroutines() >= 20);
            ch.close();
            full.close();
            for r in receivers {
                assert_eq!(r.join().unwrap(), None);
            }
            let mut back: Vec<u32> = senders.into_iter().map(|s| s.join().unwrap().unwrap_err().0).collect();
            back.sort();
            assert_eq!(back, (100..110).collect::<Vec<_>>());
            // The buffered value is still received after close, then None.
            assert_eq!(full.recv(), Some(0));
            assert_eq!(full.recv(), None);
        });
    });
}

#[test]
fn closing_a_closed_channel_panics_as_go_does() {
    let ch: Chan<()> = Chan::new(0);
    ch.close();
    let err = std::panic::catch_unwind(|| ch.close()).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"close of closed channel"));
    let nil = goro::chan::nil::<u8>();
    let err = std::panic::catch_unwind(|| nil.close()).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"close of nil channel"));
}

#[test]
fn send_on_a_closed_channel_returns_the_value() {
    let ch = Chan::new(3);
    ch.close();
    assert_eq!(ch.send(String::from("v")), Err(SendError(String::from("v"))));
    assert_eq!(ch.try_send(5u8.to_string()).unwrap_err().into_inner(), "5");
    assert!(ch.is_closed());
    assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
}

/// Go's `==` on channels: the same channel (a clone), or both nil.
#[test]
fn channels_are_equal_only_to_themselves_and_nil_to_nil() {
    let (a, b) = (Chan::<u8>::new(1), Chan::<u8>::new(1));
    assert_eq!(a, a.clone());
    assert_ne!(a, b);
    assert_eq!(goro::chan::nil::<u8>(), goro::chan::nil::<u8>());
    assert_ne!(a, goro::chan::nil::<u8>());
    assert_ne!(goro::chan::nil::<u8>(), a);
}

#[test]
fn a_channel_shows_its_length_capacity_and_state() {
    let c = Chan::<u8>::new(3);
    c.send(1).unwrap();
    assert_eq!(format!("{c:?}"), "Chan { len: 1, cap: 3, closed: false }");
    c.close();
    assert_eq!(format!("{c:?}"), "Chan { len: 1, cap: 3, closed: true }");
    assert_eq!(format!("{:?}", goro::chan::nil::<u8>()), "Chan(nil)");
    assert_eq!(format!("{:?}", c.iter()), "Iter { .. }");
    assert_eq!(format!("{:?}", c.into_iter()), "IntoIter { .. }");
}

#[test]
fn len_is_empty_and_is_closed_follow_the_channel() {
    let c = Chan::<u8>::new(2);
    assert!(c.is_empty() && !c.is_closed());
    c.send(1).unwrap();
    assert!(!c.is_empty() && c.len() == 1 && c.cap() == 2);
    c.close();
    assert!(!c.is_empty() && c.is_closed());
    // Both ways to range over a channel drain the buffer, then end.
    assert_eq!(c.clone().into_iter().collect::<Vec<_>>(), [1]);
    assert!(c.is_empty());
    let d = Chan::new(3);
    for v in [4, 5, 6] {
        d.send(v).unwrap();
    }
    d.close();
    assert_eq!(d.iter().take(2).collect::<Vec<_>>(), [4, 5]);
    assert_eq!(d.into_iter().collect::<Vec<_>>(), [6]);
}

#[test]
fn nonblocking_operations_report_full_empty_closed() {
    // Go's test/chan/nonblock.go.
    for cap in [0usize, 1, 4] {
        let ch = Chan::new(cap);
        assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
        for i in 0..cap {
            ch.try_send(i).unwrap();
        }
        assert!(matches!(ch.try_send(9), Err(TrySendError::Full(9))));
        for i in 0..cap {
            assert_eq!(ch.try_recv(), Ok(i));
        }
        ch.close();
        assert!(matches!(ch.try_send(9), Err(TrySendError::Closed(9))));
        assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
    }
    // Unbuffered try_send succeeds when a receiver waits.
    bounded(30, || {
        rt(1).block_on(|| {
            let ch = Chan::new(0);
            let c = ch.clone();
            let h = goro::go(move || c.recv());
            loop {
                match ch.try_send(7) {
                    Ok(()) => break,
                    Err(TrySendError::Full(_)) => goro::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(h.join().unwrap(), Some(7));
        });
    });
}

/// Timed sends and receives whose deadlines race with their partners: a
/// value is either delivered (the send says Ok, exactly one receive gets
/// it) or handed back to its sender (Timeout), never both and never lost.
#[test]
fn timeouts_racing_with_partners_lose_and_duplicate_nothing() {
    bounded(60, || {
        for (iter, cap) in (0..40u64).zip([0, 0, 1, 4].into_iter().cycle()) {
            let (sent, got, n) = rt(2).block_on(move || {
                let ch: Chan<u64> = Chan::new(cap);
                let producers: Vec<_> = (0..3u64)
                    .map(|p| {
                        let ch = ch.clone();
                        goro::go(move || {
                            let mut rng = Rng(iter * 100 + p);
                            let mut sent = 0;
                            for v in (1..=300).map(|i| p * 1000 + i) {
                                loop {
                                    match ch.send_timeout(v, Duration::from_micros(rng.below(12))) {
                                        Ok(()) => break sent += v,
                                        Err(SendTimeoutError::Timeout(back)) => assert_eq!(back, v),
                                        Err(e) => panic!("send: {e:?}"),
                                    }
                                }
                            }
                            sent
                        })
                    })
                    .collect();
                let consumers: Vec<_> = (0..2u64)
                    .map(|c| {
                        let ch = ch.clone();
                        goro::go(move || {
                            let mut rng = Rng(iter * 100 + 50 + c);
                            let (mut got, mut n) = (0, 0);
                            loop {
                                match ch.recv_timeout(Duration::from_micros(rng.below(12))) {
                                    Ok(v) => (got, n) = (got + v, n + 1),
                                    Err(RecvTimeoutError::Timeout) => {}
                                    Err(RecvTimeoutError::Closed) => break (got, n),
                                }
                            }
                        })
                    })
                    .collect();
                let sent: u64 = producers.into_iter().map(|h| h.join().unwrap()).sum();
                ch.close();
                let (got, n) =
                    consumers.into_iter().map(|h| h.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
                (sent, got, n)
            });
            let all: u64 = (0..3u64).flat_map(|p| (1..=300).map(move |i| p * 1000 + i)).sum();
            assert_eq!(sent, all, "iteration {iter}: every value is sent once");
            assert_eq!((got, n), (all, 900), "iteration {iter}, cap {cap}: received values");
        }
    });
}

#[test]
fn timed_operations_time_out_and_succeed() {
    bounded(30, || {
        let check = || {
            let ch: Chan<u8> = Chan::new(0);
            let t = Instant::now();
            assert_eq!(ch.recv_timeout(Duration::from_millis(15)), Err(RecvTimeoutError::Timeout));
            assert!(t.elapsed() >= Duration::from_millis(15));
            assert!(matches!(ch.send_timeout(1, Duration::from_millis(5)), Err(SendTimeoutError::Timeout(1))));
            // The timed-out waiters left no trace: a later exchange works.
            let c = ch.clone();
            let recv = move || c.recv_timeout(Duration::from_secs(5));
            // A G inside the runtime, a plain thread outside it.
            let join: Box<dyn FnOnce() -> Result<u8, RecvTimeoutError>> = if goro::in_goroutine() {
                let h = goro::go(recv);
                Box::new(move || h.join().unwrap())
            } else {
                let h = std::thread::spawn(recv);
                Box::new(move || h.join().unwrap())
            };
            ch.send_timeout(3, Duration::from_secs(5)).unwrap();
            assert_eq!(join(), Ok(3));
            ch.close();
            assert_eq!(ch.recv_timeout(Duration::from_secs(1)), Err(RecvTimeoutError::Closed));
            assert!(matches!(ch.send_timeout(4, Duration::from_secs(1)), Err(SendTimeoutError::Closed(4))));
        };
        rt(2).block_on(check);
        // And from a plain thread.
        check();
    });
}

#[test]
fn zero_sized_values() {
    // Go's test/chan/zerosize.go, plus many messages.
    bounded(30, || {
        rt(2).block_on(|| {
            let ch: Chan<()> = Chan::new(1000);
            for _ in 0..1000 {
                ch.send(()).unwrap();
            }
            assert_eq!(ch.len(), 1000);
            let c = ch.clone();
            let h = goro::go(move || c.iter().count());
            for _ in 0..10_000 {
                ch.send(()).unwrap();
            }
            ch.close();
            assert_eq!(h.join().unwrap(), 11_000);
        });
    });
}

#[test]
fn nil_channel_blocks_forever_and_is_never_selected() {
    bounded(30, || {
        let rt = rt(1);
        let nil = goro::chan::nil::<u32>();
        assert_eq!(nil.try_recv(), Err(TryRecvError::Empty));
        assert!(matches!(nil.try_send(1), Err(TrySendError::Full(1))));
        let n2 = nil.clone();
        let _blocked = rt.spawn(move || n2.recv());
        let n3 = nil.clone();
        let _blocked2 = rt.spawn(move || n3.send(5));
        goro::time::sleep(Duration::from_millis(20));
        let reasons: Vec<_> = rt.goroutines().iter().map(|g| g.wait_reason.as_str()).collect();
        assert!(reasons.contains(&"chan receive (nil chan)"), "{reasons:?}");
        assert!(reasons.contains(&"chan send (nil chan)"), "{reasons:?}");
        let ready: Chan<u32> = Chan::new(1);
        ready.send(9).unwrap();
        for _ in 0..100 {
            let got = goro::select! {
                recv(nil) -> _ => panic!("nil channel selected"),
                send(nil, 1) -> _ => panic!("nil channel selected"),
                recv(ready) -> v => v.unwrap(),
            };
            assert_eq!(got, 9);
            ready.send(9).unwrap();
        }
        let none = goro::select! {
            recv(nil) -> _ => false,
            default => true,
        };
        assert!(none);
        assert_eq!(nil.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    });
}

/// Go's TestChan: every capacity, sync and async, many senders/receivers.
#[test]
fn send_receive_matrix_with_checked_sums() {
    bounded(120, || {
        let rt = rt(3);
        for cap in [0usize, 1, 2, 5, 10, 100] {
            for (senders, receivers) in [(1u64, 1), (1, 8), (8, 1), (8, 8)] {
                let (sum, got) = rt.block_on(move || {
                    const PER: u64 = 500;
                    let ch = Chan::new(cap);
                    let out = Chan::new(0);
                    let hs: Vec<_> = (0..senders)
                        .map(|s| {
                            let c = ch.clone();
                            goro::go(move || {
                                for i in 0..PER {
                                    c.send(s * PER + i).unwrap();
                                }
                            })
                        })
                        .collect();
                    for _ in 0..receivers {
                        let (c, o) = (ch.clone(), out.clone());
                        goro::go(move || {
                            let (mut sum, mut n) = (0u64, 0u64);
                            while let Some(v) = c.recv() {
                                sum += v;
                                n += 1;
                            }
                            o.send((sum, n)).unwrap();
                        });
                    }
                    for h in hs {
                        h.join().unwrap();
                    }
                    ch.close();
                    (0..receivers).map(|_| out.recv().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
                });
                let n = senders * 500;
                assert_eq!((sum, got), (n * (n - 1) / 2, n), "cap={cap} senders={senders} receivers={receivers}");
            }
        }
    });
}

#[test]
fn channels_between_goroutines_and_plain_threads() {
    bounded(60, || {
        let rt = rt(2);
        let to_g: Chan<u64> = Chan::new(0);
        let to_t: Chan<u64> = Chan::new(3);
        let (a, b) = (to_g.clone(), to_t.clone());
        let g = rt.spawn(move || {
            let mut n = 0;
            for v in &a {
                b.send(v * 2).unwrap();
                n += 1;
            }
            b.close();
            n
        });
        let (a, b) = (to_g.clone(), to_t.clone());
        let t = std::thread::spawn(move || b.iter().sum::<u64>());
        for i in 0..10_000 {
            a.send(i).unwrap();
        }
        to_g.close();
        assert_eq!(g.join().unwrap(), 10_000);
        assert_eq!(t.join().unwrap(), 2 * (10_000 * 9_999 / 2));
    });
}

#[test]
fn many_producers_and_consumers_with_random_delays() {
    bounded(120, || {
        for seed in 0..6u64 {
            let rt = rt(1 + seed as usize % 3);
            let cap = [0usize, 1, 7][seed as usize % 3];
            let (sum, count) = rt.block_on(move || {
                let ch = Chan::new(cap);
                let results = Chan::new(16);
                let producers: Vec<_> = (0..16u64)
                    .map(|p| {
                        let c = ch.clone();
                        goro::go(move || {
                            let mut rng = Rng(seed * 100 + p);
                            for i in 0..300 {
                                if rng.below(10) == 0 {
                                    goro::sleep(Duration::from_micros(rng.below(200)));
                                } else if rng.below(5) == 0 {
                                    busy(rng.below(20));
                                }
                                c.send(p * 1000 + i).unwrap();
                            }
                        })
                    })
                    .collect();
                for k in 0..8u64 {
                    let (c, r) = (ch.clone(), results.clone());
                    goro::go(move || {
                        let mut rng = Rng(seed * 7 + k);
                        let (mut s, mut n) = (0u64, 0u64);
                        for v in &c {
                            if rng.below(20) == 0 {
                                goro::yield_now();
                            }
                            s += v;
                            n += 1;
                        }
                        r.send((s, n)).unwrap();
                    });
                }
                for p in producers {
                    p.join().unwrap();
                }
                ch.close();
                (0..8).map(|_| results.recv().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            });
            let expect: u64 = (0..16u64).map(|p| (0..300).map(|i| p * 1000 + i).sum::<u64>()).sum();
            assert_eq!((sum, count), (expect, 4800), "seed {seed}");
        }
    });
}

#[test]
fn range_over_a_channel_ends_at_close() {
    let ch = Chan::new(5);
    for i in 0..5 {
        ch.send(i).unwrap();
    }
    ch.close();
    assert_eq!(ch.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(ch.into_iter().count(), 0);
}

#[test]
fn after_tick_and_timer() {
    bounded(30, || {
        rt(2).block_on(|| {
            let t = Instant::now();
            let at = goro::time::after(Duration::from_millis(20)).recv().unwrap();
            assert!(at.duration_since(t) >= Duration::from_millis(20));

            // Ticks come on the period's grid: the i-th no earlier than
            // start + i periods.
            let period = Duration::from_millis(5);
            let start = Instant::now();
            let ticker = goro::time::tick(period);
            let mut last = start;
            for i in 1..=5u32 {
                let now = ticker.chan().recv().unwrap();
                assert!(now >= last);
                assert!(now.duration_since(start) >= period * i, "tick {i} came early: {:?}", now - start);
                last = now;
            }
            // A slow reader misses ticks rather than queueing them: one tick
            // waits in the channel, and the next is sent after it is taken.
            goro::sleep(period * 6);
            let woke = Instant::now();
            let stale = ticker.chan().recv().unwrap();
            assert!(stale <= woke);
            let fresh = ticker.chan().recv().unwrap();
            assert!(fresh > woke, "a missed tick was queued: {:?} before the reader woke", woke - fresh);
            // After stop, no tick comes (drop one that was already in flight).
            ticker.stop();
            let _ = ticker.chan().try_recv();
            assert_eq!(
                ticker.chan().recv_timeout(period * 6),
                Err(RecvTimeoutError::Timeout),
                "a stopped ticker ticked"
            );

            // Reset of a pending timer moves its deadline, both ways, and
            // the timer fires once.
            let timer = goro::time::Timer::new(Duration::from_secs(60));
            assert!(timer.reset(Duration::from_millis(5)), "reset of a pending timer reports it pending");
            assert!(timer.chan().recv_timeout(Duration::from_secs(5)).is_ok(), "the earlier deadline fired");
            assert_eq!(timer.chan().recv_timeout(Duration::from_millis(30)), Err(RecvTimeoutError::Timeout));
            let timer = goro::time::Timer::new(Duration::from_millis(5));
            assert!(timer.reset(Duration::from_secs(60)));
            assert_eq!(
                timer.chan().recv_timeout(Duration::from_millis(50)),
                Err(RecvTimeoutError::Timeout),
                "the old deadline fired after reset"
            );
            assert!(timer.stop());

            let timer = goro::time::Timer::new(Duration::from_secs(60));
            assert!(timer.stop(), "pending timer stops");
            assert!(!timer.stop(), "second stop reports nothing pending");
            assert!(!timer.reset(Duration::from_millis(5)));
            assert!(timer.chan().recv_timeout(Duration::from_secs(5)).is_ok());
        });
    });
}

/// Every duration is a valid timeout: past about a century (`goro::NEVER`)
/// it means "never" instead of overflowing `Instant` or wrapping the timer
/// clock (a wrapped 600-year timeout used to fire after about a second).
#[test]
fn huge_durations_saturate_to_never() {
    let huge = [
        Duration::MAX,
        Duration::MAX - Duration::from_nanos(1),
        Duration::from_secs(u64::MAX),
        Duration::from_nanos(u64::MAX),
        Duration::from_nanos(u64::MAX) + Duration::from_nanos(1),
        Duration::from_secs(585 * 365 * 24 * 3600),
        Duration::from_secs(586 * 365 * 24 * 3600),
        goro::NEVER,
        goro::NEVER + Duration::from_nanos(1),
    ];
    // "Never" is about a century away, and any longer wait saturates to it.
    let year = Duration::from_secs(365 * 24 * 3600);
    assert!(goro::NEVER >= 99 * year && goro::NEVER <= 101 * year, "{:?}", goro::NEVER);
    let t0 = Instant::now();
    let never = goro::deadline_after(Duration::MAX);
    assert!(never >= t0 + goro::NEVER && never <= Instant::now() + goro::NEVER);
    bounded(60, move || {
        rt(2).block_on(move || {
            let quiet = Duration::from_millis(30);
            for d in huge {
                let what = format!("{d:?}");
                let ch: Chan<u8> = Chan::new(0);
                let a = goro::time::after(d);
                let t = goro::time::Timer::new(d);
                let tick = goro::time::tick(d);
                let sleeper = goro::go(move || goro::sleep(d));
                let r = {
                    let ch = ch.clone();
                    goro::go(move || ch.recv_timeout(d))
                };
                let full: Chan<u8> = Chan::new(1);
                full.send(0).unwrap();
                let s = {
                    let full = full.clone();
                    goro::go(move || full.send_timeout(1, d))
                };
                let sel = {
                    let ch = ch.clone();
                    goro::go(move || {
                        let mut sel = goro::chan::Select::new();
                        sel.recv(&ch);
                        sel.select_timeout(d).is_none()
                    })
                };
                // Nothing fires or returns early.
                assert_eq!(a.recv_timeout(quiet), Err(RecvTimeoutError::Timeout), "after({what})");
                assert_eq!(t.chan().recv_timeout(quiet), Err(RecvTimeoutError::Timeout), "Timer({what})");
                assert_eq!(tick.chan().recv_timeout(quiet), Err(RecvTimeoutError::Timeout), "tick({what})");
                assert!(!sleeper.is_finished(), "sleep({what}) returned");
                assert!(!r.is_finished() && !s.is_finished() && !sel.is_finished(), "a timeout of {what} expired");
                // Each still works: the waits end when their channel does.
                ch.send(1).unwrap();
                ch.close();
                assert_eq!(full.recv(), Some(0));
                assert!(t.stop(), "Timer({what}) is pending");
                assert!(!t.reset(Duration::ZERO));
                assert!(t.chan().recv_timeout(Duration::from_secs(5)).is_ok(), "a reset Timer fires");
                tick.stop();
                drop(sleeper); // parked in a century-long sleep; dropped at shutdown
                               // One of the receivers got the value, the other saw the close.
                let got = r.join().unwrap();
                assert!(matches!(got, Ok(1) | Err(RecvTimeoutError::Closed)), "{what}: {got:?}");
                assert!(!sel.join().unwrap(), "select_timeout({what}) timed out");
                assert!(s.join().unwrap().is_ok(), "send_timeout({what})");
            }
            // An `Instant` given by the caller, past the timer clock's range
            // (u64 nanoseconds: 584 years), is far away too.
            // 2^64 ns from now: a wrapped clock would read it as "now".
            let far = Instant::now() + Duration::from_nanos(u64::MAX) + Duration::from_nanos(1);
            let sleeper = goro::go(move || goro::time::sleep_until(far));
            goro::sleep(Duration::from_millis(30));
            assert!(!sleeper.is_finished(), "sleep_until 585 years from now returned");
            drop(sleeper);
            // Small ones still fire.
            for d in [Duration::ZERO, Duration::from_nanos(1), Duration::from_millis(1)] {
                assert!(goro::time::after(d).recv_timeout(Duration::from_secs(5)).is_ok(), "{d:?}");
            }
        });
    });
}

/// `Timer::reset` is atomic: two Gs resetting one timer over and over, then
/// a `stop`, leave nothing armed (a lost handle used to fire seconds later).
#[test]
fn a_stopped_timer_never_fires_after_racing_resets() {
    bounded(120, || {
        rt(2).block_on(|| {
            for round in 0..5u64 {
                let t = Arc::new(goro::time::Timer::new(Duration::from_secs(60)));
                let hs: Vec<_> = (0..2u64)
                    .map(|k| {
                        let t = t.clone();
                        goro::go(move || {
                            let mut rng = Rng(round * 10 + k);
                            for _ in 0..20_000 {
                                // Due 30-60 ms out: none is due before the check below.
                                t.reset(Duration::from_micros(30_000 + rng.below(30_000)));
                                if rng.below(64) == 0 {
                                    goro::yield_now();
                                }
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
                t.stop();
                let _ = t.chan().try_recv(); // one that fired before the stop
                assert_eq!(
                    t.chan().recv_timeout(Duration::from_millis(150)),
                    Err(RecvTimeoutError::Timeout),
                    "round {round}: a stopped timer fired"
                );
            }
        });
    });
}

// A buffered channel's buffer is a lock-free ring that sends and receives
// use without the lock while nobody waits (chan/src/ring.rs). The tests
// below check that Go's rules hold across the two paths: waiting senders
// and receivers are served first and in order, and close drains.

#[test]
fn waiting_senders_are_served_in_order_before_any_later_send() {
    bounded(30, || {
        rt(2).block_on(|| {
            let ch = Chan::new(2);
            ch.send(0).unwrap();
            ch.send(1).unwrap();
            // Three senders wait, one after another, on the full buffer.
            let hs: Vec<_> = (2..5)
                .map(|v| {
                    let c = ch.clone();
                    let h = goro::go(move || c.send(v).unwrap());
                    common::wait_until("the sender waits", || common::parked_goroutines() >= (v - 1) as usize);
                    h
                })
                .collect();
            for want in 0..5 {
                // The buffer stays full while a sender waits: a later send
                // cannot slip into a slot a receive frees.
                if want < 3 {
                    assert!(matches!(ch.try_send(99), Err(TrySendError::Full(99))), "before receiving {want}");
                    assert_eq!(ch.len(), 2);
                }
                assert_eq!(ch.recv(), Some(want));
            }
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
        });
    });
}

#[test]
fn a_waiting_receiver_gets_the_next_send_before_a_later_receive() {
    bounded(30, || {
        rt(2).block_on(|| {
            let ch = Chan::new(4);
            let c = ch.clone();
            let r = goro::go(move || c.recv());
            common::wait_until("the receiver waits", || common::parked_goroutines() >= 1);
            // The send hands its value to the waiting receiver (as Go's
            // does): it never sits in the buffer for a later receive.
            ch.send(7).unwrap();
            assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
            assert_eq!(r.join().unwrap(), Some(7));
            // With nobody waiting any more, sends buffer again.
            ch.send(8).unwrap();
            assert_eq!(ch.len(), 1);
            assert_eq!(ch.try_recv(), Ok(8));
        });
    });
}

#[test]
fn values_sent_before_close_drain_then_receives_see_the_close() {
    bounded(30, || {
        for procs in [1, 2] {
            rt(procs).block_on(|| {
                let ch = Chan::new(8);
                for i in 0..5 {
                    ch.try_send(i).unwrap();
                }
                ch.close();
                assert!(matches!(ch.try_send(9), Err(TrySendError::Closed(9))));
                assert!(matches!(ch.send(9), Err(SendError(9))));
                assert_eq!(ch.len(), 5);
                let c = ch.clone();
                let drained = goro::go(move || c.iter().collect::<Vec<_>>()).join().unwrap();
                assert_eq!(drained, vec![0, 1, 2, 3, 4]);
                assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
                assert_eq!(ch.recv(), None);
            });
        }
    });
}

/// Producers and consumers mix every kind of send and receive (blocking,
/// non-blocking, select, timed) on one buffered channel, with random
/// delays: every value arrives once, and each consumer sees each
/// producer's values in the order they were sent (the channel is FIFO).
#[test]
fn mixed_operations_on_a_buffered_channel_keep_fifo_per_producer() {
    bounded(120, || {
        for seed in 0..8u64 {
            let procs = 1 + seed as usize % 4;
            let cap = [1usize, 2, 7, 64][seed as usize % 4];
            let got: Vec<Vec<u64>> = rt(procs).block_on(move || {
                let ch = Chan::new(cap);
                let producers: Vec<_> = (0..6u64)
                    .map(|p| {
                        let c = ch.clone();
                        goro::go(move || {
                            let mut rng = Rng(seed * 131 + p);
                            for i in 0..400 {
                                let mut v = p * 10_000 + i;
                                if rng.below(50) == 0 {
                                    goro::sleep(Duration::from_micros(rng.below(100)));
                                }
                                loop {
                                    match rng.below(4) {
                                        0 => match c.try_send(v) {
                                            Ok(()) => break,
                                            Err(TrySendError::Full(x)) => {
                                                v = x;
                                                goro::yield_now();
                                            }
                                            Err(e) => panic!("{e:?}"),
                                        },
                                        1 => {
                                            goro::select! { send(c, v) -> r => r.unwrap() }
                                            break;
                                        }
                                        2 => match c.send_timeout(v, Duration::from_micros(rng.below(50))) {
                                            Ok(()) => break,
                                            Err(SendTimeoutError::Timeout(x)) => v = x,
                                            Err(e) => panic!("{e:?}"),
                                        },
                                        _ => {
                                            c.send(v).unwrap();
                                            break;
                                        }
                                    }
                                }
                            }
                        })
                    })
                    .collect();
                let consumers: Vec<_> = (0..4u64)
                    .map(|k| {
                        let c = ch.clone();
                        goro::go(move || {
                            let mut rng = Rng(seed * 17 + k);
                            let mut got = Vec::new();
                            loop {
                                let v = match rng.below(4) {
                                    0 => match c.try_recv() {
                                        Ok(v) => Some(v),
                                        Err(TryRecvError::Empty) => {
                                            goro::yield_now();
                                            continue;
                                        }
                                        Err(TryRecvError::Closed) => None,
                                    },
                                    1 => goro::select! { recv(c) -> v => v },
                                    2 => match c.recv_timeout(Duration::from_micros(rng.below(50))) {
                                        Ok(v) => Some(v),
                                        Err(RecvTimeoutError::Timeout) => continue,
                                        Err(RecvTimeoutError::Closed) => None,
                                    },
                                    _ => c.recv(),
                                };
                                match v {
                                    Some(v) => got.push(v),
                                    None => return got,
                                }
                            }
                        })
                    })
                    .collect();
                for p in producers {
                    p.join().unwrap();
                }
                ch.close();
                consumers.into_iter().map(|c| c.join().unwrap()).collect()
            });
            let mut all: Vec<u64> = got.iter().flatten().copied().collect();
            all.sort_unstable();
            let want: Vec<u64> = (0..6u64).flat_map(|p| (0..400).map(move |i| p * 10_000 + i)).collect();
            assert_eq!(all, want, "seed {seed}: every value once");
            for (k, mine) in got.iter().enumerate() {
                for p in 0..6 {
                    let from_p: Vec<u64> = mine.iter().copied().filter(|v| v / 10_000 == p).collect();
                    assert!(
                        from_p.windows(2).all(|w| w[0] < w[1]),
                        "seed {seed}: consumer {k} saw producer {p} out of order"
                    );
                }
            }
        }
    });
}

/// Values still in a buffered channel when its last handle goes are
/// dropped once each, wherever the ring's head and tail stand (here after
/// the ring wrapped around).
#[test]
fn values_left_in_a_dropped_channel_are_dropped_once() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let ch = Chan::new(4);
    for _ in 0..3 {
        ch.try_send(Counted(drops.clone())).unwrap();
    }
    drop(ch.try_recv().unwrap());
    drop(ch.try_recv().unwrap());
    for _ in 0..3 {
        ch.try_send(Counted(drops.clone())).unwrap();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(ch.len(), 4);
    let other = ch.clone();
    drop(ch);
    assert_eq!(drops.load(Ordering::SeqCst), 2, "a handle remains");
    drop(other);
    assert_eq!(drops.load(Ordering::SeqCst), 6);
}

/// A send racing with close either lands before it (and is received) or
/// fails; and once a sender has seen `is_closed`, none of its sends lands.
#[test]
fn sends_racing_a_close_land_before_it_or_fail() {
    bounded(60, || {
        rt(2).block_on(|| {
            let mut rng = Rng(7);
            for round in 0..300u64 {
                let ch = Chan::new(64);
                let senders: Vec<_> = (0..2u64)
                    .map(|k| {
                        let c = ch.clone();
                        goro::go(move || {
                            let mut sent = 0u64;
                            loop {
                                let seen = c.is_closed();
                                match c.try_send(k) {
                                    Ok(()) => {
                                        assert!(!seen, "round {round}: a send landed after its sender saw the close");
                                        sent += 1;
                                    }
                                    Err(TrySendError::Closed(_)) => return sent,
                                    Err(TrySendError::Full(_)) => goro::yield_now(),
                                }
                            }
                        })
                    })
                    .collect();
                for _ in 0..rng.below(20) {
                    goro::yield_now();
                }
                ch.close();
                let sent: u64 = senders.into_iter().map(|s| s.join().unwrap()).sum();
                let received = ch.iter().count() as u64;
                assert_eq!(received, sent, "round {round}: every landed send is received once");
                assert_eq!(ch.recv(), None);
            }
        });
    });
}

/// A G whose sends and receives all complete on a buffered channel's
/// lock-free path still meets preemption points (one every few dozen
/// operations), so with one P and no hog handoff another G gets to run.
#[test]
fn a_g_streaming_through_a_buffered_channel_is_still_preempted() {
    bounded(60, || {
        let policy = goro::Policy { hog_handoff: false, ..goro::Policy::default() };
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).policy(policy).build() }.unwrap();
        let ops = rt.block_on(|| {
            let stop = Arc::new(AtomicUsize::new(0));
            let s2 = stop.clone();
            let streamer = goro::go(move || {
                let ch = Chan::new(128);
                let mut ops = 0u64;
                while s2.load(Ordering::Relaxed) == 0 {
                    ch.try_send(ops).unwrap();
                    assert_eq!(ch.try_recv(), Ok(ops));
                    ops += 1;
                }
                ops
            });
            // The streamer runs first (runnext); this G runs again only
            // when the streamer is preempted.
            goro::yield_now();
            stop.store(1, Ordering::Relaxed);
            streamer.join().unwrap()
        });
        assert!(ops > 0);
    });
}
