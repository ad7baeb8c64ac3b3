//! The docs/workloads.md workloads on Tokio's multi-threaded runtime
//! (`tokio::sync::mpsc` for channels, `tokio::select!`, `spawn_blocking` as
//! its syscall entry), printing `name value unit` lines like goro's benches.
//! Usage: peer-tokio <workload>.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro_peers::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("latency") {
        return latency(std::env::args().skip(2).collect());
    }
    let name = workload_arg();
    let workers = workers_for(&name);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
    // The workload's main task runs on a worker, as goro's main G runs on a P.
    rt.block_on(async move { tokio::spawn(async move { run(&name).await }).await.unwrap() });
}

async fn run(name: &str) {
    match name {
        "spawn" => spawn().await,
        "skynet" => skynet().await,
        "pingpong" | "pingpong_1p" => pingpong(name).await,
        "prodcons" => prodcons().await,
        "select4" => select4().await,
        "yield" => yields().await,
        "chained_spawn" => chained_spawn().await,
        "timers" => timers().await,
        "parked_memory" => parked_memory().await,
        "syscall_handoff" => syscall_handoff().await,
        "hog" => hog().await,
        "hidden_block" => hidden_block().await,
        "blocked_pingpong" => blocked_pingpong().await,
        "echo" => echo().await,
        other => not_implemented("tokio", other, "unknown workload"),
    }
}

async fn spawn() {
    let c = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let hs: Vec<_> = (0..SPAWN_TASKS)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                c.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    check("spawn count", c.load(Ordering::Relaxed) as u64, SPAWN_TASKS as u64);
    report("spawn", t.elapsed().as_nanos() as f64 / SPAWN_TASKS as f64, "ns/task");
}

fn skynet_node(c: mpsc::Sender<u64>, num: u64, size: u64) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        if size == 1 {
            c.send(num).await.unwrap();
            return;
        }
        let (tx, mut rx) = mpsc::channel(10);
        for i in 0..10 {
            tokio::spawn(skynet_node(tx.clone(), num + i * (size / 10), size / 10));
        }
        let mut sum = 0;
        for _ in 0..10 {
            sum += rx.recv().await.unwrap();
        }
        c.send(sum).await.unwrap();
    })
}

async fn skynet() {
    let t = Instant::now();
    let (tx, mut rx) = mpsc::channel(1);
    tokio::spawn(skynet_node(tx, 0, SKYNET_LEAVES));
    check("skynet sum", rx.recv().await.unwrap(), SKYNET_SUM);
    report("skynet", t.elapsed().as_secs_f64() * 1e3, "ms");
}

/// Tokio has no unbuffered channel: capacity 1, as docs/workloads.md allows.
async fn pingpong(name: &str) {
    let (ptx, mut prx) = mpsc::channel::<u64>(1);
    let (qtx, mut qrx) = mpsc::channel::<u64>(1);
    tokio::spawn(async move {
        while let Some(v) = prx.recv().await {
            qtx.send(v + 1).await.unwrap();
        }
    });
    let t = Instant::now();
    let mut v = 0;
    for _ in 0..PINGPONG_ROUNDS {
        ptx.send(v).await.unwrap();
        v = qrx.recv().await.unwrap();
    }
    check("pingpong counter", v, PINGPONG_ROUNDS);
    report(name, t.elapsed().as_nanos() as f64 / PINGPONG_ROUNDS as f64, "ns/roundtrip");
}

async fn prodcons() {
    const N: u64 = PRODCONS_MSGS;
    // mpsc has one consumer: the 4 consumers share it behind a mutex.
    let (tx, rx) = mpsc::channel::<u64>(128);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let t = Instant::now();
    let ps: Vec<_> = (0..4u64)
        .map(|p| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in (p * N / 4)..((p + 1) * N / 4) {
                    tx.send(i).await.unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let cs: Vec<_> = (0..4)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut s = 0u64;
                while let Some(v) = rx.lock().await.recv().await {
                    s += v;
                }
                s
            })
        })
        .collect();
    for p in ps {
        p.await.unwrap();
    }
    let mut sum = 0;
    for c in cs {
        sum += c.await.unwrap();
    }
    check("prodcons sum", sum, triangle(N));
    report("prodcons", t.elapsed().as_nanos() as f64 / N as f64, "ns/msg");
}

async fn select4() {
    const N: u64 = SELECT4_MSGS;
    let mut rxs = Vec::new();
    let t = Instant::now();
    for _ in 0..4 {
        let (tx, rx) = mpsc::channel::<u64>(16);
        rxs.push(rx);
        tokio::spawn(async move {
            for i in 0..N / 4 {
                tx.send(i).await.unwrap();
            }
        });
    }
    let [mut a, mut b, mut c, mut d]: [mpsc::Receiver<u64>; 4] = rxs.try_into().unwrap();
    let mut sum = 0;
    for _ in 0..N {
        sum += tokio::select! {
            Some(v) = a.recv() => v,
            Some(v) = b.recv() => v,
            Some(v) = c.recv() => v,
            Some(v) = d.recv() => v,
        };
    }
    check("select4 sum", sum, 4 * triangle(N / 4));
    report("select4", t.elapsed().as_nanos() as f64 / N as f64, "ns/msg");
}

async fn yields() {
    let t = Instant::now();
    let hs: Vec<_> = (0..YIELD_TASKS)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..YIELDS_EACH {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    report("yield", t.elapsed().as_nanos() as f64 / (YIELD_TASKS * YIELDS_EACH) as f64, "ns/yield");
}

fn chain(n: u64, done: mpsc::Sender<u64>) {
    if n == 1 {
        tokio::spawn(async move { done.send(CHAIN_TASKS).await.unwrap() });
    } else {
        tokio::spawn(async move { chain(n - 1, done) });
    }
}

async fn chained_spawn() {
    let (tx, mut rx) = mpsc::channel(1);
    let t = Instant::now();
    chain(CHAIN_TASKS, tx);
    check("chained_spawn signal", rx.recv().await.unwrap(), CHAIN_TASKS);
    report("chained_spawn", t.elapsed().as_nanos() as f64 / CHAIN_TASKS as f64, "ns/task");
}

async fn timers() {
    let t = Instant::now();
    let hs: Vec<_> = timer_durations(TIMER_TASKS)
        .into_iter()
        .map(|d| {
            tokio::spawn(async move {
                let start = Instant::now();
                tokio::time::sleep(d).await;
                start.elapsed().saturating_sub(d).as_micros() as u64
            })
        })
        .collect();
    let mut late = Vec::with_capacity(TIMER_TASKS);
    for h in hs {
        late.push(h.await.unwrap());
    }
    report_timers(t.elapsed(), late);
}

async fn parked_memory() {
    let before = rss_kib();
    let ready = Arc::new(AtomicUsize::new(0));
    let mut txs = Vec::with_capacity(PARKED_TASKS);
    let mut hs = Vec::with_capacity(PARKED_TASKS);
    for _ in 0..PARKED_TASKS {
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        txs.push(tx);
        let ready = ready.clone();
        hs.push(tokio::spawn(async move {
            ready.fetch_add(1, Ordering::Relaxed);
            rx.recv().await
        }));
    }
    while ready.load(Ordering::Relaxed) < PARKED_TASKS {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after = rss_kib();
    drop(txs);
    for h in hs {
        assert!(h.await.unwrap().is_none());
    }
    report("parked_memory", (after - before) as f64 / PARKED_TASKS as f64, "KiB/task");
}

async fn compute_with_blockers(blockers: usize) -> f64 {
    let bs: Vec<_> = (0..blockers)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..10 {
                    tokio::task::spawn_blocking(blocking_sleep).await.unwrap();
                }
            })
        })
        .collect();
    let t = Instant::now();
    let hs: Vec<_> = (0..100u64)
        .map(|i| {
            tokio::spawn(async move {
                let mut acc = 0u64;
                for k in 0..1000 {
                    acc = acc.wrapping_add(chunk(i * 1000 + k));
                    tokio::task::yield_now().await;
                }
                acc
            })
        })
        .collect();
    for h in hs {
        std::hint::black_box(h.await.unwrap());
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    for b in bs {
        b.await.unwrap();
    }
    ms
}

async fn syscall_handoff() {
    let base = compute_with_blockers(0).await;
    let with = compute_with_blockers(4).await;
    report("syscall_handoff", with, "ms");
    report("syscall_handoff_ratio", with / base, "x");
}

async fn hog_run(spinners: usize) -> f64 {
    let t0 = Instant::now();
    let sleeper = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        t0.elapsed().as_secs_f64() * 1e3
    });
    let spins: Vec<_> = (0..spinners)
        .map(|_| {
            tokio::spawn(async {
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(200) {}
            })
        })
        .collect();
    let ms = sleeper.await.unwrap();
    for s in spins {
        s.await.unwrap();
    }
    ms
}

async fn hog() {
    report("hog_baseline", hog_run(0).await, "ms");
    report("hog", hog_run(2).await, "ms");
}

/// p99 lateness (µs) of a task's 100 `tokio::time::sleep`s of 5 ms while
/// `blockers` tasks each call `std::thread::sleep(300 ms)` twice, blocking
/// their worker thread.
async fn hidden_block_run(blockers: usize) -> f64 {
    let bs: Vec<_> = (0..blockers)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..HIDDEN_BLOCKS {
                    std::thread::sleep(HIDDEN_BLOCK);
                }
            })
        })
        .collect();
    let sleeper = tokio::spawn(async {
        let mut late = Vec::with_capacity(HIDDEN_NAPS as usize);
        for _ in 0..HIDDEN_NAPS {
            let t = Instant::now();
            tokio::time::sleep(HIDDEN_NAP).await;
            late.push(lateness_us(t, HIDDEN_NAP));
        }
        p99(late)
    });
    let p = sleeper.await.unwrap();
    for b in bs {
        b.await.unwrap();
    }
    p
}

async fn hidden_block() {
    report("hidden_block_baseline_p99", hidden_block_run(0).await, "us");
    report("hidden_block_p99", hidden_block_run(HIDDEN_BLOCKERS).await, "us");
}

/// Round trips per second of 1,000 ping-pong pairs run for 1 s, beside a
/// task that calls `std::thread::sleep(1 s)` if `sleeper`. Channels of
/// capacity 1, as in `pingpong`.
async fn blocked_pingpong_run(sleeper: bool) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let trips = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let pairs: Vec<_> = (0..BLOCKED_PAIRS)
        .map(|_| {
            let (ptx, mut prx) = mpsc::channel::<u64>(1);
            let (qtx, mut qrx) = mpsc::channel::<u64>(1);
            let echo = tokio::spawn(async move {
                while let Some(v) = prx.recv().await {
                    if qtx.send(v).await.is_err() {
                        break;
                    }
                }
            });
            let (stop, trips) = (stop.clone(), trips.clone());
            let player = tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    ptx.send(n).await.unwrap();
                    qrx.recv().await.unwrap();
                    n += 1;
                }
                drop(ptx);
                trips.fetch_add(n, Ordering::Relaxed);
            });
            (player, echo)
        })
        .collect();
    // Spawned last, so it runs next and blocks from the start of the run.
    let blocker = sleeper.then(|| tokio::spawn(async { std::thread::sleep(BLOCKED_RUN) }));
    tokio::time::sleep(BLOCKED_RUN).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    for (player, echo) in pairs {
        player.await.unwrap();
        echo.await.unwrap();
    }
    if let Some(b) = blocker {
        b.await.unwrap();
    }
    trips.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

async fn blocked_pingpong() {
    let alone = blocked_pingpong_run(false).await;
    let with = blocked_pingpong_run(true).await;
    report("blocked_pingpong_alone", alone, "trips/s");
    report("blocked_pingpong", with, "trips/s");
    report("blocked_pingpong_ratio", with / alone, "x");
}

async fn echo() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut c, _) = l.accept().await.unwrap();
            c.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => c.write_all(&buf[..n]).await.unwrap(),
                    }
                }
            });
        }
    });
    let done = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let hs: Vec<_> = (0..ECHO_CLIENTS)
        .map(|i| {
            let done = done.clone();
            tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                let mut back = [0u8; 64];
                for k in 0..ECHO_MSGS {
                    let msg = echo_message(i, k);
                    s.write_all(&msg).await.unwrap();
                    s.read_exact(&mut back).await.unwrap();
                    assert_eq!(msg, back, "echo mismatch");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    check("echo messages", done.load(Ordering::Relaxed), (ECHO_CLIENTS * ECHO_MSGS) as u64);
    report("echo", (ECHO_CLIENTS * ECHO_MSGS) as f64 / t.elapsed().as_secs_f64(), "msgs/s");
}

/// `latency <dist> <spawn|pool> <procs> <load,...> <requests> <seed> [scale]`:
/// goro's open-loop workload (workloads/src/latency.rs) on Tokio, the same
/// requests from the same schedule; a plain thread issues them, as goro's
/// lab does (`Handle::spawn`, or an unbounded channel to `procs × 4`
/// worker tasks). One `latency_point` line per load.
fn latency(args: Vec<String>) {
    use goro_workloads::latency::{serve, summarize, wait_until, Completions, Mode, PeerArgs};
    let a = PeerArgs::from_args("peer-tokio", &args);
    let (pool, procs) = (a.mode == Mode::Pool, a.procs);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(procs).enable_all().build().unwrap();
    for s in a.schedules() {
        let service = Arc::new(s.service_ns.clone());
        let c = Completions::new(s.len());
        if pool {
            let (qtx, qrx) = mpsc::unbounded_channel::<usize>();
            let qrx = Arc::new(tokio::sync::Mutex::new(qrx));
            for _ in 0..procs * 4 {
                let (qrx, service, c) = (qrx.clone(), service.clone(), c.clone());
                rt.spawn(async move {
                    loop {
                        let next = qrx.lock().await.recv().await;
                        let Some(i) = next else { return };
                        serve(service[i]);
                        c.finish(i);
                    }
                });
            }
            for (i, &a) in s.arrival_ns.iter().enumerate() {
                wait_until(c.start + Duration::from_nanos(a));
                qtx.send(i).unwrap();
            }
        } else {
            for (i, &a) in s.arrival_ns.iter().enumerate() {
                wait_until(c.start + Duration::from_nanos(a));
                let (service, c) = (service.clone(), c.clone());
                rt.spawn(async move {
                    serve(service[i]);
                    c.finish(i);
                });
            }
        }
        println!("{}", summarize(&s, &c.wait()).line());
    }
}
