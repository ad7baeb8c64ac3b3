//! The docs/workloads.md workloads on may's stackful coroutines (`may::go!`,
//! `may::sync::mpsc`/`mpmc`, a `cqueue` for select), printing
//! `name value unit` lines like goro's benches. Usage: peer-may <workload>.
//!
//! may's channels are unbounded, so `pingpong`, `prodcons`, `select4` and
//! `skynet` run without the workload's capacity bound (said in BENCHMARKS.md);
//! may has no syscall entry, so `syscall_handoff` calls `usleep` directly.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro_peers::*;
use may::coroutine::{self, JoinHandle};
use may::go;
use may::sync::{mpmc, mpsc};

fn main() {
    if std::env::args().nth(1).as_deref() == Some("latency") {
        return latency(std::env::args().skip(2).collect());
    }
    let name = workload_arg();
    let workers = workers_for(&name);
    may::config().set_workers(workers);
    // The workload runs in a coroutine, as goro's main G runs on a P.
    go!(move || run(&name)).join().unwrap();
}

fn run(name: &str) {
    let live = match name {
        "spawn" => SPAWN_TASKS,
        "skynet" => SKYNET_LEAVES as usize,
        "timers" => TIMER_TASKS,
        "parked_memory" => PARKED_TASKS,
        _ => 0,
    };
    // Each may stack is two mappings (the stack and its guard page); past
    // the kernel's limit the allocation panics, so say so instead.
    if let Some(limit) = max_map_count() {
        if 2 * live as u64 + 10_000 > limit {
            let why = format!("{live} live coroutines need ~{} mappings, vm.max_map_count is {limit}", 2 * live);
            not_implemented("may", name, &why);
        }
    }
    match name {
        "spawn" => spawn(),
        "skynet" => skynet(),
        "pingpong" | "pingpong_1p" => pingpong(name),
        "prodcons" => prodcons(),
        "select4" => select4(),
        "yield" => yields(),
        "chained_spawn" => chained_spawn(),
        "timers" => timers(),
        "parked_memory" => parked_memory(),
        "syscall_handoff" => MAY.syscall_handoff(),
        "hog" => MAY.hog(),
        "hidden_block" => MAY.hidden_block(),
        "blocked_pingpong" => blocked_pingpong(),
        "echo" => echo(),
        other => not_implemented("may", other, "unknown workload"),
    }
}

/// may's coroutines for the workloads written once in `goro_peers::Blocking`.
const MAY: Blocking = Blocking {
    spawn: |task| {
        let h = go!(task);
        Box::new(move || h.join().unwrap())
    },
    yield_now: coroutine::yield_now,
    sleep: coroutine::sleep,
};

fn join_all<T>(hs: Vec<JoinHandle<T>>) -> Vec<T> {
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

fn spawn() {
    let c = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let hs: Vec<_> = (0..SPAWN_TASKS)
        .map(|_| {
            let c = c.clone();
            go!(move || {
                c.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    join_all(hs);
    check("spawn count", c.load(Ordering::Relaxed) as u64, SPAWN_TASKS as u64);
    report("spawn", t.elapsed().as_nanos() as f64 / SPAWN_TASKS as f64, "ns/task");
}

fn skynet_node(c: mpsc::Sender<u64>, num: u64, size: u64) {
    if size == 1 {
        c.send(num).unwrap();
        return;
    }
    let (tx, rx) = mpsc::channel();
    for i in 0..10 {
        let tx = tx.clone();
        go!(move || skynet_node(tx, num + i * (size / 10), size / 10));
    }
    let sum: u64 = (0..10).map(|_| rx.recv().unwrap()).sum();
    c.send(sum).unwrap();
}

fn skynet() {
    let t = Instant::now();
    let (tx, rx) = mpsc::channel();
    go!(move || skynet_node(tx, 0, SKYNET_LEAVES));
    check("skynet sum", rx.recv().unwrap(), SKYNET_SUM);
    report("skynet", t.elapsed().as_secs_f64() * 1e3, "ms");
}

fn pingpong(name: &str) {
    let (ptx, prx) = mpsc::channel::<u64>();
    let (qtx, qrx) = mpsc::channel::<u64>();
    go!(move || {
        while let Ok(v) = prx.recv() {
            qtx.send(v + 1).unwrap();
        }
    });
    let t = Instant::now();
    let mut v = 0;
    for _ in 0..PINGPONG_ROUNDS {
        ptx.send(v).unwrap();
        v = qrx.recv().unwrap();
    }
    check("pingpong counter", v, PINGPONG_ROUNDS);
    report(name, t.elapsed().as_nanos() as f64 / PINGPONG_ROUNDS as f64, "ns/roundtrip");
}

fn prodcons() {
    const N: u64 = PRODCONS_MSGS;
    let (tx, rx) = mpmc::channel::<u64>();
    let t = Instant::now();
    let ps: Vec<_> = (0..4u64)
        .map(|p| {
            let tx = tx.clone();
            go!(move || {
                for i in (p * N / 4)..((p + 1) * N / 4) {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let cs: Vec<_> = (0..4)
        .map(|_| {
            let rx = rx.clone();
            go!(move || rx.iter().sum::<u64>())
        })
        .collect();
    drop(rx);
    join_all(ps);
    let sum: u64 = join_all(cs).into_iter().sum();
    check("prodcons sum", sum, triangle(N));
    report("prodcons", t.elapsed().as_nanos() as f64 / N as f64, "ns/msg");
}

/// may's select is a `cqueue`: one selector coroutine per arm receives and
/// posts an event (the value as its `extra`) that the polling coroutine takes.
fn select4() {
    const N: u64 = SELECT4_MSGS;
    let t = Instant::now();
    let mut rxs = Vec::new();
    for _ in 0..4 {
        let (tx, rx) = mpsc::channel::<u64>();
        rxs.push(rx);
        go!(move || {
            for i in 0..N / 4 {
                tx.send(i).unwrap();
            }
        });
    }
    let (sum, events) = may::cqueue::scope(|cq| {
        for (token, rx) in rxs.into_iter().enumerate() {
            go!(cq, token, move |es| {
                while let Ok(v) = rx.recv() {
                    es.send(v as usize);
                }
            });
        }
        let (mut sum, mut events) = (0u64, 0u64);
        while let Ok(ev) = cq.poll(None) {
            sum += ev.extra as u64;
            events += 1;
        }
        (sum, events)
    });
    check("select4 messages", events, N);
    check("select4 sum", sum, 4 * triangle(N / 4));
    report("select4", t.elapsed().as_nanos() as f64 / N as f64, "ns/msg");
}

fn yields() {
    let t = Instant::now();
    let hs: Vec<_> = (0..YIELD_TASKS)
        .map(|_| {
            go!(|| {
                for _ in 0..YIELDS_EACH {
                    coroutine::yield_now();
                }
            })
        })
        .collect();
    join_all(hs);
    report("yield", t.elapsed().as_nanos() as f64 / (YIELD_TASKS * YIELDS_EACH) as f64, "ns/yield");
}

fn chain(n: u64, done: mpsc::Sender<u64>) {
    if n == 1 {
        go!(move || done.send(CHAIN_TASKS).unwrap());
    } else {
        go!(move || chain(n - 1, done));
    }
}

fn chained_spawn() {
    let (tx, rx) = mpsc::channel();
    let t = Instant::now();
    chain(CHAIN_TASKS, tx);
    check("chained_spawn signal", rx.recv().unwrap(), CHAIN_TASKS);
    report("chained_spawn", t.elapsed().as_nanos() as f64 / CHAIN_TASKS as f64, "ns/task");
}

fn timers() {
    let t = Instant::now();
    let hs: Vec<_> = timer_durations(TIMER_TASKS)
        .into_iter()
        .map(|d| {
            go!(move || {
                let start = Instant::now();
                coroutine::sleep(d);
                start.elapsed().saturating_sub(d).as_micros() as u64
            })
        })
        .collect();
    let late = join_all(hs);
    report_timers(t.elapsed(), late);
}

fn parked_memory() {
    let before = rss_kib();
    let ready = Arc::new(AtomicUsize::new(0));
    let mut txs = Vec::with_capacity(PARKED_TASKS);
    let mut hs = Vec::with_capacity(PARKED_TASKS);
    for _ in 0..PARKED_TASKS {
        let (tx, rx) = mpsc::channel::<u64>();
        txs.push(tx);
        let ready = ready.clone();
        hs.push(go!(move || {
            ready.fetch_add(1, Ordering::Relaxed);
            rx.recv().is_err()
        }));
    }
    while ready.load(Ordering::Relaxed) < PARKED_TASKS {
        coroutine::sleep(Duration::from_millis(1));
    }
    coroutine::sleep(Duration::from_millis(20));
    let after = rss_kib();
    drop(txs);
    assert!(join_all(hs).into_iter().all(|closed| closed), "a parked task got a value");
    report("parked_memory", (after - before) as f64 / PARKED_TASKS as f64, "KiB/task");
}

/// Round trips per second of 1,000 ping-pong pairs run for 1 s, beside a
/// coroutine that calls `std::thread::sleep(1 s)` if `sleeper`.
fn blocked_pingpong_run(sleeper: bool) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let trips = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let pairs: Vec<_> = (0..BLOCKED_PAIRS)
        .map(|_| {
            let (ptx, prx) = mpsc::channel::<u64>();
            let (qtx, qrx) = mpsc::channel::<u64>();
            let echo = go!(move || {
                while let Ok(v) = prx.recv() {
                    if qtx.send(v).is_err() {
                        break;
                    }
                }
            });
            let (stop, trips) = (stop.clone(), trips.clone());
            let player = go!(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    ptx.send(n).unwrap();
                    qrx.recv().unwrap();
                    n += 1;
                }
                drop(ptx);
                trips.fetch_add(n, Ordering::Relaxed);
            });
            (player, echo)
        })
        .collect();
    // Spawned last, so it runs next and blocks from the start of the run.
    let blocker = sleeper.then(|| go!(|| std::thread::sleep(BLOCKED_RUN)));
    coroutine::sleep(BLOCKED_RUN);
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    for (player, echo) in pairs {
        player.join().unwrap();
        echo.join().unwrap();
    }
    if let Some(b) = blocker {
        b.join().unwrap();
    }
    trips.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

fn blocked_pingpong() {
    let alone = blocked_pingpong_run(false);
    let with = blocked_pingpong_run(true);
    report("blocked_pingpong_alone", alone, "trips/s");
    report("blocked_pingpong", with, "trips/s");
    report("blocked_pingpong_ratio", with / alone, "x");
}

fn echo() {
    let l = may::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    go!(move || {
        for c in l.incoming() {
            let c = c.unwrap();
            c.set_nodelay(true).unwrap();
            go!(move || echo_serve(c));
        }
    });
    let t = Instant::now();
    let hs: Vec<_> = (0..ECHO_CLIENTS)
        .map(|i| {
            go!(move || {
                let s = may::net::TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                echo_client(s, i)
            })
        })
        .collect();
    let done: u64 = join_all(hs).into_iter().sum();
    check("echo messages", done, (ECHO_CLIENTS * ECHO_MSGS) as u64);
    report("echo", (ECHO_CLIENTS * ECHO_MSGS) as f64 / t.elapsed().as_secs_f64(), "msgs/s");
    // The accept loop never ends: leave without waiting for it.
    std::process::exit(0);
}

/// `latency <dist> <spawn|pool> <procs> <load,...> <requests> <seed> [scale]`:
/// goro's open-loop workload (workloads/src/latency.rs) on may: the same
/// requests from the same schedule, issued by a plain thread at
/// `SCHED_FIFO` 1 (`go!` per request, or an unbounded `mpmc` channel to
/// `procs × 4` worker coroutines). One `latency_point` line per load.
fn latency(args: Vec<String>) {
    use goro_workloads::latency::{serve, summarize, wait_until, Completions, Mode, PeerArgs};
    let a = PeerArgs::from_args("peer-may", &args);
    let (pool, procs) = (a.mode == Mode::Pool, a.procs);
    may::config().set_workers(procs);
    for s in a.schedules() {
        let service = Arc::new(s.service_ns.clone());
        let c = Completions::new(s.len());
        if pool {
            let (tx, rx) = mpmc::channel::<usize>();
            for _ in 0..procs * 4 {
                let (rx, service, c) = (rx.clone(), service.clone(), c.clone());
                go!(move || {
                    while let Ok(i) = rx.recv() {
                        serve(service[i]);
                        c.finish(i);
                    }
                });
            }
            for (i, &a) in s.arrival_ns.iter().enumerate() {
                wait_until(c.start + Duration::from_nanos(a));
                tx.send(i).unwrap();
            }
        } else {
            for (i, &a) in s.arrival_ns.iter().enumerate() {
                wait_until(c.start + Duration::from_nanos(a));
                let (service, c) = (service.clone(), c.clone());
                go!(move || {
                    serve(service[i]);
                    c.finish(i);
                });
            }
        }
        println!("{}", summarize(&s, &c.wait()).line());
    }
}
