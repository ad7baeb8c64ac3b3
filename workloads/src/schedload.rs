//! The scheduling and channel workloads of docs/workloads.md, sized by the
//! caller: shared by `benches/workloads.rs` (full size) and `examples/lab/main.rs`
//! (full or scaled down). Each runs on `rt` and returns its figure. Also
//! the park/unpark turn-taking loop that `benches/micro/micro.rs` times and
//! `tests/sched.rs` checks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::goro;
use goro::chan::Chan;
use goro::{select, Runtime};

fn skynet_node(c: Chan<u64>, num: u64, size: u64) {
    if size == 1 {
        c.send(num).unwrap();
        return;
    }
    let rc = Chan::new(10);
    for i in 0..10 {
        let rc = rc.clone();
        let sub = num + i * (size / 10);
        goro::go(move || skynet_node(rc, sub, size / 10));
    }
    let sum: u64 = (0..10).map(|_| rc.recv().unwrap()).sum();
    c.send(sum).unwrap();
}

/// `skynet` over `size` leaves (a power of 10); ms.
pub fn skynet(rt: &Runtime, size: u64) -> f64 {
    rt.block_on(move || {
        let t = Instant::now();
        let c = Chan::new(1);
        let c2 = c.clone();
        goro::go(move || skynet_node(c2, 0, size));
        assert_eq!(c.recv(), Some(size * (size - 1) / 2));
        t.elapsed().as_secs_f64() * 1e3
    })
}

/// `spawn` of `n` tasks; ns per task.
pub fn spawn(rt: &Runtime, n: usize) -> f64 {
    rt.block_on(move || {
        let counter = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let c = counter.clone();
                goro::go(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(counter.load(Ordering::Relaxed), n);
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

/// `pingpong` of `n` round trips over two unbuffered channels; ns per round trip.
pub fn pingpong(rt: &Runtime, n: u64) -> f64 {
    rt.block_on(move || {
        let (ping, pong) = (Chan::new(0), Chan::new(0));
        let (p2, q2) = (ping.clone(), pong.clone());
        let h = goro::go(move || {
            while let Some(v) = p2.recv() {
                q2.send(v + 1).unwrap();
            }
        });
        let t = Instant::now();
        let mut v = 0u64;
        for _ in 0..n {
            ping.send(v).unwrap();
            v = pong.recv().unwrap();
        }
        let el = t.elapsed();
        assert_eq!(v, n);
        ping.close();
        h.join().unwrap();
        el.as_nanos() as f64 / n as f64
    })
}

/// `prodcons`: 4 producers, 4 consumers, capacity 128, `n` messages; ns per message.
pub fn prodcons(rt: &Runtime, n: u64) -> f64 {
    let n = n / 4 * 4;
    rt.block_on(move || {
        let ch = Chan::new(128);
        let t = Instant::now();
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let ch = ch.clone();
                goro::go(move || {
                    for i in (p * n / 4)..((p + 1) * n / 4) {
                        ch.send(i).unwrap();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let ch = ch.clone();
                goro::go(move || ch.iter().sum::<u64>())
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        ch.close();
        let sum: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(sum, n * (n - 1) / 2);
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

/// `select4`: one task selects over 4 channels (capacity 16) fed by their
/// own producers, `n` messages; ns per message.
pub fn select4(rt: &Runtime, n: u64) -> f64 {
    let n = n / 4 * 4;
    rt.block_on(move || {
        let cs: Vec<Chan<u64>> = (0..4).map(|_| Chan::new(16)).collect();
        let t = Instant::now();
        for c in &cs {
            let c = c.clone();
            goro::go(move || {
                for i in 0..n / 4 {
                    c.send(i).unwrap();
                }
            });
        }
        let mut sum = 0u64;
        for _ in 0..n {
            sum += select! {
                recv(cs[0]) -> v => v.unwrap(),
                recv(cs[1]) -> v => v.unwrap(),
                recv(cs[2]) -> v => v.unwrap(),
                recv(cs[3]) -> v => v.unwrap(),
            };
        }
        assert_eq!(sum, 4 * (n / 4) * (n / 4).saturating_sub(1) / 2);
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

/// `yield`: `tasks` tasks each yield `per` times; ns per yield.
pub fn yields(rt: &Runtime, tasks: usize, per: usize) -> f64 {
    rt.block_on(move || {
        let t = Instant::now();
        let hs: Vec<_> = (0..tasks)
            .map(|_| {
                goro::go(move || {
                    for _ in 0..per {
                        goro::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        t.elapsed().as_nanos() as f64 / (tasks * per) as f64
    })
}

fn chain(n: u64, done: Chan<()>) {
    if n == 0 {
        done.send(()).unwrap();
    } else {
        goro::go(move || chain(n - 1, done));
    }
}

/// `chained_spawn` of `n` tasks; ns per task.
pub fn chained_spawn(rt: &Runtime, n: u64) -> f64 {
    rt.block_on(move || {
        let done = Chan::new(1);
        let t = Instant::now();
        let d = done.clone();
        goro::go(move || chain(n - 1, d));
        done.recv().unwrap();
        t.elapsed().as_nanos() as f64 / n as f64
    })
}

/// Two Gs (the caller and a partner) take `iters` turns through a shared
/// flag, each parking until the other unparks it: the runtime's bare
/// park/unpark, under every channel and lock. Call from a G.
pub fn park_unpark_turns(iters: u64) {
    let turn = Arc::new(AtomicBool::new(false)); // false: the caller's turn
    let (t2, me) = (turn.clone(), goro::current_unparker());
    let tx = Chan::<goro::Unparker>::new(1);
    let rx = tx.clone();
    let partner = goro::go(move || {
        tx.send(goro::current_unparker()).unwrap();
        for _ in 0..iters {
            while !t2.load(Ordering::Acquire) {
                goro::park(goro::WaitReason::Park);
            }
            t2.store(false, Ordering::Release);
            me.unpark();
        }
    });
    let other = rx.recv().unwrap();
    for _ in 0..iters {
        turn.store(true, Ordering::Release);
        other.unpark();
        while turn.load(Ordering::Acquire) {
            goro::park(goro::WaitReason::Park);
        }
    }
    partner.join().unwrap();
}
