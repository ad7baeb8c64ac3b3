//! The WORKLOADS.md workloads on Tokio's multi-threaded runtime
//! (`tokio::sync::mpsc` for channels, `tokio::select!`), printing
//! `name value unit` like goro's benches. Usage: tokio-peer <workload>.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn rt(workers: Option<usize>) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(w) = workers {
        b.worker_threads(w);
    }
    b.enable_all().build().unwrap()
}

async fn spawn() {
    const N: usize = 100_000;
    let c = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let hs: Vec<_> = (0..N)
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
    assert_eq!(c.load(Ordering::Relaxed), N);
    println!("spawn {:.1} ns/task", t.elapsed().as_nanos() as f64 / N as f64);
}

fn skynet_node(c: mpsc::Sender<u64>, num: u64, size: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
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
    tokio::spawn(skynet_node(tx, 0, 1_000_000));
    assert_eq!(rx.recv().await, Some(499_999_500_000));
    println!("skynet {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
}

/// tokio has no unbuffered channel: capacity 1, as WORKLOADS.md allows.
async fn pingpong(name: &str) {
    const N: u64 = 1_000_000;
    let (ptx, mut prx) = mpsc::channel::<u64>(1);
    let (qtx, mut qrx) = mpsc::channel::<u64>(1);
    tokio::spawn(async move {
        while let Some(v) = prx.recv().await {
            qtx.send(v + 1).await.unwrap();
        }
    });
    let t = Instant::now();
    let mut v = 0;
    for _ in 0..N {
        ptx.send(v).await.unwrap();
        v = qrx.recv().await.unwrap();
    }
    println!("{name} {:.1} ns/roundtrip", t.elapsed().as_nanos() as f64 / N as f64);
}

async fn prodcons() {
    const N: u64 = 10_000_000;
    // mpsc has one consumer: 4 consumers share it behind a mutex.
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
                loop {
                    let v = rx.lock().await.recv().await;
                    match v {
                        Some(v) => s += v,
                        None => return s,
                    }
                }
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
    assert_eq!(sum, N * (N - 1) / 2);
    println!("prodcons {:.1} ns/msg", t.elapsed().as_nanos() as f64 / N as f64);
}

async fn select4() {
    const N: u64 = 4_000_000;
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
    assert_eq!(sum, 4 * (N / 4) * (N / 4 - 1) / 2);
    println!("select4 {:.1} ns/msg", t.elapsed().as_nanos() as f64 / N as f64);
}

async fn yields() {
    let t = Instant::now();
    let hs: Vec<_> = (0..1000)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..1000 {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    println!("yield {:.1} ns/yield", t.elapsed().as_nanos() as f64 / 1e6);
}

fn chain(n: u64, done: mpsc::Sender<()>) {
    if n == 0 {
        tokio::spawn(async move { done.send(()).await.unwrap() });
    } else {
        tokio::spawn(async move { chain(n - 1, done) });
    }
}

async fn chained_spawn() {
    const N: u64 = 100_000;
    let (tx, mut rx) = mpsc::channel(1);
    let t = Instant::now();
    chain(N - 1, tx);
    rx.recv().await.unwrap();
    println!("chained_spawn {:.1} ns/task", t.elapsed().as_nanos() as f64 / N as f64);
}

async fn timers() {
    const N: usize = 100_000;
    let mut state = 42u64;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let durs: Vec<u64> = (0..N).map(|_| 1 + next() % 20).collect();
    let t = Instant::now();
    let hs: Vec<_> = durs
        .into_iter()
        .map(|d| {
            tokio::spawn(async move {
                let start = Instant::now();
                let d = Duration::from_millis(d);
                tokio::time::sleep(d).await;
                start.elapsed().saturating_sub(d).as_micros() as u64
            })
        })
        .collect();
    let mut late = Vec::with_capacity(N);
    for h in hs {
        late.push(h.await.unwrap());
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    late.sort_unstable();
    println!("timers {ms:.1} ms");
    println!("timers_p99_lateness {} us", late[N * 99 / 100]);
}

async fn echo() {
    const CLIENTS: usize = 100;
    const MSGS: usize = 10_000;
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
    let t = Instant::now();
    let hs: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                let mut msg = [0u8; 64];
                let mut back = [0u8; 64];
                for k in 0..MSGS {
                    msg[..8].copy_from_slice(&((i * MSGS + k) as u64).to_le_bytes());
                    s.write_all(&msg).await.unwrap();
                    s.read_exact(&mut back).await.unwrap();
                    assert_eq!(msg, back);
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    println!("echo {:.0} msgs/s", (CLIENTS * MSGS) as f64 / t.elapsed().as_secs_f64());
}

fn main() {
    let name = std::env::args().nth(1).expect("workload name");
    let workers = if name == "pingpong_1p" { Some(1) } else { None };
    let rt = rt(workers);
    // The workload's main task runs on a worker, as goro's main G runs on a P.
    rt.block_on(async move {
        tokio::spawn(async move { run(&name).await }).await.unwrap();
    });
}

async fn run(name: &str) {
    {
        match name {
            "spawn" => spawn().await,
            "skynet" => skynet().await,
            "pingpong" | "pingpong_1p" => pingpong(name).await,
            "prodcons" => prodcons().await,
            "select4" => select4().await,
            "yield" => yields().await,
            "chained_spawn" => chained_spawn().await,
            "timers" => timers().await,
            "echo" => echo().await,
            other => {
                eprintln!("tokio peer: {other} not implemented");
                std::process::exit(3);
            }
        }
    }
}
