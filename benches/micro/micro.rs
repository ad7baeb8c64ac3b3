//! Criterion micro-benchmarks of goro's basic operations, each measured
//! inside a G of a runtime with the machine's procs (`iter_custom`: the
//! timed loop runs in the G, so criterion's own code never runs on a P).
//!
//!     cargo bench -p goro-micro --bench micro
//!     cargo bench -p goro-micro --bench micro -- chan       # a subset
//!
//! Per iteration: `yield` is one yield in each of two Gs (two switches);
//! `spawn_join` one spawn and join; `chan_*` one message passed between two
//! Gs; `select2` one message received by a 2-arm select; `park_unpark` one
//! round trip of two Gs waking each other; `mutex` one uncontended
//! lock/unlock.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use goro::chan::Chan;
use goro::sync::Mutex;
use goro::{select, Runtime};
use goro_workloads::schedload;

/// Times `body(iters)` run inside a G of `rt`.
fn in_g(rt: &Runtime, iters: u64, body: fn(u64)) -> Duration {
    rt.block_on(move || {
        let t = Instant::now();
        body(iters);
        t.elapsed()
    })
}

fn yield_pair(iters: u64) {
    let other = goro::go(move || {
        for _ in 0..iters {
            goro::yield_now();
        }
    });
    for _ in 0..iters {
        goro::yield_now();
    }
    other.join().unwrap();
}

fn spawn_join(iters: u64) {
    for i in 0..iters {
        black_box(goro::go(move || black_box(i)).join().unwrap());
    }
}

/// One receiver G takes `iters` messages over a channel of capacity `cap`.
fn pass(iters: u64, cap: usize) {
    let c = Chan::new(cap);
    let rx = c.clone();
    let receiver = goro::go(move || {
        let mut sum = 0u64;
        for _ in 0..iters {
            sum += rx.recv().unwrap();
        }
        sum
    });
    for i in 0..iters {
        c.send(i).unwrap();
    }
    assert_eq!(receiver.join().unwrap(), iters * iters.saturating_sub(1) / 2);
}

fn select2(iters: u64) {
    let (a, b) = (Chan::new(64), Chan::new(64));
    let (ta, tb) = (a.clone(), b.clone());
    let producer = goro::go(move || {
        for i in 0..iters {
            if i % 2 == 0 { &ta } else { &tb }.send(i).unwrap();
        }
    });
    let mut sum = 0u64;
    for _ in 0..iters {
        sum += select! {
            recv(a) -> v => v.unwrap(),
            recv(b) -> v => v.unwrap(),
        };
    }
    producer.join().unwrap();
    assert_eq!(sum, iters * iters.saturating_sub(1) / 2);
}

fn mutex(iters: u64) {
    let m = Mutex::new(0u64);
    for _ in 0..iters {
        *m.lock() += 1;
    }
    assert_eq!(*m.lock(), iters);
}

/// A benchmark: its name and the body timed inside a G.
type Case = (&'static str, fn(u64));

fn benches(c: &mut Criterion) {
    // SAFETY: the workloads' Gs keep no thread-local state across switch points.
    let rt = unsafe { Runtime::new() }.expect("runtime");
    let cases: [Case; 8] = [
        ("yield", yield_pair),
        ("spawn_join", spawn_join),
        ("chan_unbuffered", |n| pass(n, 0)),
        ("chan_buffered", |n| pass(n, 128)),
        ("select2", select2),
        ("park_unpark", schedload::park_unpark_turns),
        ("mutex", mutex),
        ("chan_buffered_1", |n| pass(n, 1)),
    ];
    for (name, body) in cases {
        c.bench_function(name, |b| b.iter_custom(|iters| in_g(&rt, iters, body)));
    }
}

criterion_group! {
    name = micro;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(micro);
