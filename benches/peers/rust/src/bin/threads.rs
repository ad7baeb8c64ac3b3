//! The docs/workloads.md workloads on plain OS threads with `crossbeam-channel`
//! (`bounded(0)` is a true rendezvous channel, `select!` its select), the
//! baseline a user would write without any runtime. Usage: peer-threads <workload>.
//!
//! Not run, as docs/workloads.md says: `skynet` (a million threads) and
//! `parked_memory` (100,000 parked threads); `timers` and `spawn` too, for
//! the same reason (100,000 sleeping threads; 100,000 spawned before the
//! first join exhaust the machine's mappings). Nor `blocked_pingpong`: a
//! blocking call holds only its own thread, so nothing shared stalls.
//! `pingpong_1p`, `syscall_handoff`, `hog` and `hidden_block` pin the process
//! to one or two CPUs, the threads' "procs".

use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{bounded, never, select, Receiver, Sender};
use goro_peers::*;

fn main() {
    let name = workload_arg();
    if let Some(n) = procs_for(&name) {
        pin_to_cpus(n);
    }
    match name.as_str() {
        "pingpong" | "pingpong_1p" => pingpong(&name),
        "prodcons" => prodcons(),
        "select4" => select4(),
        "yield" => yields(),
        "chained_spawn" => chained_spawn(),
        "syscall_handoff" => THREADS.syscall_handoff(),
        "hog" => THREADS.hog(),
        "hidden_block" => THREADS.hidden_block(),
        "blocked_pingpong" => not_implemented(
            "threads",
            &name,
            "a blocking call holds only its own OS thread, so there is no shared worker to stall (and 2,000 threads on one CPU would measure the kernel's scheduler)",
        ),
        "echo" => echo(),
        "spawn" | "skynet" | "parked_memory" | "timers" => {
            not_implemented("threads", &name, "needs 100,000+ simultaneous OS threads")
        }
        other => not_implemented("threads", other, "unknown workload"),
    }
}

/// Restricts the process to its first `n` allowed CPUs.
fn pin_to_cpus(n: usize) {
    // SAFETY: the cpu_set_t is a plain bit set owned by this frame; the
    // libc calls only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return;
        }
        let mut pinned: libc::cpu_set_t = std::mem::zeroed();
        let mut left = n;
        for cpu in 0..libc::CPU_SETSIZE as usize {
            if left > 0 && libc::CPU_ISSET(cpu, &set) {
                libc::CPU_SET(cpu, &mut pinned);
                left -= 1;
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &pinned);
    }
}

/// OS threads for the workloads written once in `goro_peers::Blocking`.
const THREADS: Blocking = Blocking {
    spawn: |task| {
        let h = thread::spawn(task);
        Box::new(move || h.join().unwrap())
    },
    yield_now: thread::yield_now,
    sleep: thread::sleep,
};

fn join_all<T>(hs: Vec<JoinHandle<T>>) -> Vec<T> {
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

fn pingpong(name: &str) {
    let (ptx, prx) = bounded::<u64>(0);
    let (qtx, qrx) = bounded::<u64>(0);
    let echo = thread::spawn(move || {
        for v in prx {
            qtx.send(v + 1).unwrap();
        }
    });
    let t = Instant::now();
    let mut v = 0;
    for _ in 0..PINGPONG_ROUNDS {
        ptx.send(v).unwrap();
        v = qrx.recv().unwrap();
    }
    let el = t.elapsed();
    drop(ptx);
    echo.join().unwrap();
    check("pingpong counter", v, PINGPONG_ROUNDS);
    report(name, el.as_nanos() as f64 / PINGPONG_ROUNDS as f64, "ns/roundtrip");
}

fn prodcons() {
    const N: u64 = PRODCONS_MSGS;
    let (tx, rx) = bounded::<u64>(128);
    let t = Instant::now();
    let ps: Vec<_> = (0..4u64)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
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
            thread::spawn(move || rx.iter().sum::<u64>())
        })
        .collect();
    join_all(ps);
    let sum: u64 = join_all(cs).into_iter().sum();
    check("prodcons sum", sum, triangle(N));
    report("prodcons", t.elapsed().as_nanos() as f64 / N as f64, "ns/msg");
}

fn select4() {
    const N: u64 = SELECT4_MSGS;
    let t = Instant::now();
    let mut rxs: Vec<Receiver<u64>> = Vec::new();
    for _ in 0..4 {
        let (tx, rx): (Sender<u64>, _) = bounded(16);
        rxs.push(rx);
        thread::spawn(move || {
            for i in 0..N / 4 {
                tx.send(i).unwrap();
            }
        });
    }
    // A drained producer's channel disconnects; its arm becomes `never()`.
    let [mut a, mut b, mut c, mut d]: [Receiver<u64>; 4] = rxs.try_into().unwrap();
    let (mut sum, mut got) = (0, 0);
    while got < N {
        let v = select! {
            recv(a) -> v => v.map_err(|_| a = never()),
            recv(b) -> v => v.map_err(|_| b = never()),
            recv(c) -> v => v.map_err(|_| c = never()),
            recv(d) -> v => v.map_err(|_| d = never()),
        };
        if let Ok(v) = v {
            sum += v;
            got += 1;
        }
    }
    check("select4 sum", sum, 4 * triangle(N / 4));
    report("select4", t.elapsed().as_nanos() as f64 / N as f64, "ns/msg");
}

fn yields() {
    let t = Instant::now();
    let hs: Vec<_> = (0..YIELD_TASKS)
        .map(|_| {
            thread::spawn(|| {
                for _ in 0..YIELDS_EACH {
                    thread::yield_now();
                }
            })
        })
        .collect();
    join_all(hs);
    report("yield", t.elapsed().as_nanos() as f64 / (YIELD_TASKS * YIELDS_EACH) as f64, "ns/yield");
}

fn chain(n: u64, done: Sender<u64>) {
    if n == 1 {
        done.send(CHAIN_TASKS).unwrap();
    } else {
        thread::spawn(move || chain(n - 1, done));
    }
}

fn chained_spawn() {
    let (tx, rx) = bounded(1);
    let t = Instant::now();
    thread::spawn(move || chain(CHAIN_TASKS, tx));
    check("chained_spawn signal", rx.recv().unwrap(), CHAIN_TASKS);
    report("chained_spawn", t.elapsed().as_nanos() as f64 / CHAIN_TASKS as f64, "ns/task");
}

fn echo() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for c in l.incoming() {
            let c = c.unwrap();
            c.set_nodelay(true).unwrap();
            thread::spawn(move || echo_serve(c));
        }
    });
    let t = Instant::now();
    let hs: Vec<_> = (0..ECHO_CLIENTS)
        .map(|i| {
            thread::spawn(move || {
                let s = std::net::TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                echo_client(s, i)
            })
        })
        .collect();
    let done: u64 = join_all(hs).into_iter().sum();
    check("echo messages", done, (ECHO_CLIENTS * ECHO_MSGS) as u64);
    report("echo", (ECHO_CLIENTS * ECHO_MSGS) as f64 / t.elapsed().as_secs_f64(), "msgs/s");
}
