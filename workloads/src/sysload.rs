//! The `syscall_handoff`, `hog`, `hidden_block` and `blocked_pingpong`
//! workloads of docs/workloads.md, shared by `benches/workloads.rs`,
//! `examples/syscall_handoff.rs`, the policy lab and the tests.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::goro;
use goro::{Policy, Runtime};

/// One "~10 µs" chunk: 7,000 steps of a dependent xorshift64 chain.
pub fn chunk(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..7000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

fn usleep(us: u32) {
    // SAFETY: usleep has no memory-safety preconditions.
    unsafe {
        libc::usleep(us);
    }
}

/// How big the system-call workloads are: docs/workloads.md's sizes, or the
/// policy lab's quick ones.
#[derive(Clone, Copy, Debug)]
pub struct SysSize {
    /// Chunks per compute G (of 100), with a yield after each.
    pub chunks: u64,
    /// Blocking 50 ms sleeps per blocker (of 4).
    pub sleeps: u32,
    /// How long each hog spinner spins.
    pub spin: Duration,
    /// The hog sleeper's 1 ms sleeps.
    pub naps: u32,
}

impl SysSize {
    pub const FULL: SysSize = SysSize { chunks: 1000, sleeps: 10, spin: Duration::from_millis(200), naps: 100 };
}

/// The runtime these workloads run on: procs = 2, as docs/workloads.md says.
pub fn runtime(policy: &Policy) -> Runtime {
    // SAFETY: the workloads' Gs keep no thread-local state across switch points.
    unsafe { Runtime::builder().procs(2).policy(policy.clone()).build() }.unwrap()
}

/// Wall time (ms) of 100 compute Gs × `size.chunks` chunks with a yield
/// between chunks, with `blockers` Gs each making `size.sleeps` 50 ms
/// sleeping syscalls.
pub fn compute_with_blockers(rt: &Runtime, size: SysSize, blockers: usize) -> f64 {
    rt.block_on(move || {
        let blockers: Vec<_> = (0..blockers)
            .map(|_| {
                goro::go(move || {
                    for _ in 0..size.sleeps {
                        goro::syscall(|| usleep(50_000));
                    }
                })
            })
            .collect();
        let t = Instant::now();
        let hs: Vec<_> = (0..100u64)
            .map(|i| {
                goro::go(move || {
                    let mut acc = 0u64;
                    for k in 0..size.chunks {
                        acc = acc.wrapping_add(chunk(i * 1000 + k));
                        goro::yield_now();
                    }
                    acc
                })
            })
            .collect();
        for h in hs {
            black_box(h.join().unwrap());
        }
        let ms = t.elapsed().as_secs_f64() * 1e3;
        for b in blockers {
            b.join().unwrap();
        }
        ms
    })
}

/// `syscall_handoff`: (ms with 4 blockers, ratio to the same work without).
pub fn syscall_handoff(rt: &Runtime, size: SysSize) -> (f64, f64) {
    let base = compute_with_blockers(rt, size, 0);
    let with = compute_with_blockers(rt, size, 4);
    (with, with / base)
}

/// `hog`: ms for a G doing `size.naps` sleeps of 1 ms while `spinners` Gs
/// spin `size.spin` each without calling the runtime.
pub fn hog(rt: &Runtime, size: SysSize, spinners: usize) -> f64 {
    rt.block_on(move || {
        let start = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let s2 = start.clone();
        let sleeper = goro::go(move || {
            // Wait until the spinners are about to be spawned.
            let t0 = loop {
                if let Some(t) = *s2.lock().unwrap() {
                    break t;
                }
                goro::yield_now();
            };
            for _ in 0..size.naps {
                goro::sleep(Duration::from_millis(1));
            }
            t0.elapsed().as_secs_f64() * 1e3
        });
        *start.lock().unwrap() = Some(Instant::now());
        let spin: Vec<_> = (0..spinners)
            .map(|_| {
                goro::go(move || {
                    let t = Instant::now();
                    while t.elapsed() < size.spin {
                        black_box(());
                    }
                })
            })
            .collect();
        let ms = sleeper.join().unwrap();
        for s in spin {
            s.join().unwrap();
        }
        ms
    })
}

/// How big `hidden_block` is.
#[derive(Clone, Copy, Debug)]
pub struct HiddenSize {
    /// Gs that loop in `std::thread::sleep(block)`.
    pub blockers: usize,
    pub block: Duration,
    /// The sleeper's `goro::sleep(nap)` calls.
    pub naps: u32,
    pub nap: Duration,
}

impl HiddenSize {
    pub const FULL: HiddenSize =
        HiddenSize { blockers: 4, block: Duration::from_millis(300), naps: 100, nap: Duration::from_millis(5) };
}

/// `hidden_block`: `size.blockers` Gs each call `std::thread::sleep(size.block)`,
/// a blocking call the runtime is not told about, in a loop that lasts as
/// long as the sleeper's naps would take undisturbed, while another G does
/// `size.naps` sleeps of `size.nap`. Returns the sleeper's lateness per
/// nap (time past the nap's end, µs), sorted.
pub fn hidden_block(rt: &Runtime, size: HiddenSize) -> Vec<f64> {
    rt.block_on(move || {
        let blocks = (size.nap * size.naps).as_nanos().div_ceil(size.block.as_nanos()).max(1);
        let blockers: Vec<_> = (0..size.blockers)
            .map(|_| {
                goro::go(move || {
                    for _ in 0..blocks {
                        std::thread::sleep(size.block);
                    }
                })
            })
            .collect();
        let sleeper = goro::go(move || {
            let mut late: Vec<f64> = (0..size.naps)
                .map(|_| {
                    let t = Instant::now();
                    goro::sleep(size.nap);
                    t.elapsed().saturating_sub(size.nap).as_secs_f64() * 1e6
                })
                .collect();
            late.sort_by(f64::total_cmp);
            late
        });
        let late = sleeper.join().unwrap();
        for b in blockers {
            b.join().unwrap();
        }
        late
    })
}

/// The `q`-quantile of sorted samples.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// A ping-pong pair's channels (`ping`, `pong`, both unbuffered) and its
/// echo G, which sends back on `pong` what arrives on `ping` until `ping`
/// closes.
fn echo_pair() -> (goro::chan::Chan<u64>, goro::chan::Chan<u64>, goro::JoinHandle<()>) {
    let (ping, pong) = (goro::chan::Chan::<u64>::new(0), goro::chan::Chan::<u64>::new(0));
    let (ping2, pong2) = (ping.clone(), pong.clone());
    let echo = goro::go(move || {
        for v in ping2.iter() {
            if pong2.send(v).is_err() {
                break;
            }
        }
    });
    (ping, pong, echo)
}

/// `blocked_pingpong`: `pairs` ping-pong pairs exchange messages for
/// `run`, beside a G that calls `std::thread::sleep(run)` if `sleeper`.
/// Returns round trips per second. Meant for procs = 1.
pub fn blocked_pingpong(rt: &Runtime, pairs: usize, run: Duration, sleeper: bool) -> f64 {
    rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let trips = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let players: Vec<_> = (0..pairs)
            .map(|_| {
                let (ping, pong, echo) = echo_pair();
                let (stop, trips) = (stop.clone(), trips.clone());
                let player = goro::go(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        ping.send(n).unwrap();
                        pong.recv().unwrap();
                        n += 1;
                    }
                    ping.close();
                    trips.fetch_add(n, Ordering::Relaxed);
                });
                (player, echo)
            })
            .collect();
        // Spawned last, so it runs next and blocks from the start of the run.
        let blocker = sleeper.then(|| goro::go(move || std::thread::sleep(run)));
        goro::sleep(run);
        stop.store(true, Ordering::Relaxed);
        let elapsed = start.elapsed();
        for (player, echo) in players {
            player.join().unwrap();
            echo.join().unwrap();
        }
        if let Some(b) = blocker {
            b.join().unwrap();
        }
        trips.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
    })
}

/// `blocked_pingpong` as a fixed amount of work, for the policy lab: ms
/// for `pairs` ping-pong pairs to make `trips` round trips each, beside a
/// G that calls `std::thread::sleep(block)` (spawned last, so that it runs
/// next). Meant for procs = 1.
pub fn blocked_pingpong_fixed(rt: &Runtime, pairs: usize, trips: u64, block: Duration) -> f64 {
    rt.block_on(move || {
        let start = Instant::now();
        let players: Vec<_> = (0..pairs)
            .map(|_| {
                let (ping, pong, echo) = echo_pair();
                let player = goro::go(move || {
                    for n in 0..trips {
                        ping.send(n).unwrap();
                        assert_eq!(pong.recv().unwrap(), n);
                    }
                    ping.close();
                });
                (player, echo)
            })
            .collect();
        let blocker = goro::go(move || std::thread::sleep(block));
        for (player, echo) in players {
            player.join().unwrap();
            echo.join().unwrap();
        }
        let ms = start.elapsed().as_secs_f64() * 1e3;
        blocker.join().unwrap();
        ms
    })
}
