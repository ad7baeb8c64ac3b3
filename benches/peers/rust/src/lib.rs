//! What every Rust peer shares: the exact parameters of docs/workloads.md (the
//! splitmix64 timer durations, the ~10 µs xorshift chunk, the RSS probe),
//! the result line, and the checks that make a wrong result fail loudly.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// The workloads, in docs/workloads.md's order.
pub const ALL: [&str; 15] = [
    "spawn",
    "skynet",
    "pingpong",
    "pingpong_1p",
    "prodcons",
    "select4",
    "yield",
    "chained_spawn",
    "timers",
    "parked_memory",
    "syscall_handoff",
    "hog",
    "hidden_block",
    "blocked_pingpong",
    "echo",
];

pub const SPAWN_TASKS: usize = 100_000;
pub const SKYNET_LEAVES: u64 = 1_000_000;
pub const SKYNET_SUM: u64 = 499_999_500_000;
pub const PINGPONG_ROUNDS: u64 = 1_000_000;
pub const PRODCONS_MSGS: u64 = 10_000_000;
pub const SELECT4_MSGS: u64 = 4_000_000;
pub const YIELD_TASKS: usize = 1000;
pub const YIELDS_EACH: usize = 1000;
pub const CHAIN_TASKS: u64 = 100_000;
pub const TIMER_TASKS: usize = 100_000;
pub const PARKED_TASKS: usize = 100_000;
pub const ECHO_CLIENTS: usize = 100;
pub const ECHO_MSGS: usize = 10_000;
/// `hidden_block`: tasks blocked in `std::thread::sleep(HIDDEN_BLOCK)`, and
/// the sleeper's `HIDDEN_NAPS` naps of `HIDDEN_NAP` on the runtime's timer.
pub const HIDDEN_BLOCKERS: usize = 4;
pub const HIDDEN_BLOCK: Duration = Duration::from_millis(300);
pub const HIDDEN_NAPS: u32 = 100;
pub const HIDDEN_NAP: Duration = Duration::from_millis(5);
/// Each blocker's sleeps: as long as the naps would take undisturbed,
/// `ceil(100 × 5 ms / 300 ms)` = 2.
pub const HIDDEN_BLOCKS: u32 = (HIDDEN_NAP.as_nanos() * HIDDEN_NAPS as u128).div_ceil(HIDDEN_BLOCK.as_nanos()) as u32;
/// `blocked_pingpong`: ping-pong pairs, run for `BLOCKED_RUN`.
pub const BLOCKED_PAIRS: usize = 1000;
pub const BLOCKED_RUN: Duration = Duration::from_secs(1);

/// Prints one result line, `name value unit`.
pub fn report(name: &str, value: f64, unit: &str) {
    if value >= 100.0 || unit.ends_with("/s") {
        println!("{name} {value:.0} {unit}");
    } else {
        println!("{name} {value:.3} {unit}");
    }
}

/// Exits with 3, which `scripts/compare.sh` reads as "this peer does not
/// run that workload" (with the reason printed), never as a failure.
pub fn not_implemented(peer: &str, name: &str, why: &str) -> ! {
    eprintln!("{peer}: {name} not run: {why}");
    std::process::exit(3);
}

/// Panics with a message unless `got == want`: a wrong result must fail the run.
pub fn check(what: &str, got: u64, want: u64) {
    assert_eq!(got, want, "{what}: wrong result");
}

/// The sum `0 + 1 + ... + (n - 1)`.
pub fn triangle(n: u64) -> u64 {
    n * (n - 1) / 2
}

/// The i-th sleep of the `timers` workload: `1 + splitmix64_i % 20` ms, seed 42.
pub fn timer_durations(n: usize) -> Vec<Duration> {
    let mut state = 42u64;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            Duration::from_millis(1 + (z ^ (z >> 31)) % 20)
        })
        .collect()
}

/// Reports the `timers` figures from the wall time and every task's lateness.
pub fn report_timers(wall: Duration, mut late_us: Vec<u64>) {
    late_us.sort_unstable();
    report("timers", wall.as_secs_f64() * 1e3, "ms");
    report("timers_p99_lateness", late_us[late_us.len() * 99 / 100] as f64, "us");
}

/// How late (µs) a sleep of `d` begun at `t` woke, clamped at zero.
pub fn lateness_us(t: Instant, d: Duration) -> f64 {
    t.elapsed().saturating_sub(d).as_secs_f64() * 1e6
}

/// The 99th percentile as goro computes it: the element at index
/// `min(len - 1, len * 0.99)` of the sorted samples.
pub fn p99(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 * 0.99) as usize).min(samples.len() - 1)]
}

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

/// The blocking system call of `syscall_handoff`: a 50 ms `usleep`.
pub fn blocking_sleep() {
    // SAFETY: usleep has no memory-safety preconditions.
    unsafe {
        libc::usleep(50_000);
    }
}

/// Resident set size in KiB, from `/proc/self/statm`.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = s.split_whitespace().nth(1).and_then(|f| f.parse().ok()).expect("statm field");
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page / 1024
}

/// The 64-byte message client `client` sends as its `k`-th.
pub fn echo_message(client: usize, k: usize) -> [u8; 64] {
    let mut msg = [0u8; 64];
    msg[..8].copy_from_slice(&((client * ECHO_MSGS + k) as u64).to_le_bytes());
    msg[8] = client as u8;
    msg
}

/// One blocking echo client: `ECHO_MSGS` round trips on `s`, every echo
/// compared byte for byte; returns how many came back.
pub fn echo_client(mut s: impl std::io::Read + std::io::Write, client: usize) -> u64 {
    let mut back = [0u8; 64];
    for k in 0..ECHO_MSGS {
        let msg = echo_message(client, k);
        s.write_all(&msg).unwrap();
        s.read_exact(&mut back).unwrap();
        assert_eq!(msg, back, "echo mismatch");
    }
    ECHO_MSGS as u64
}

/// Serves one blocking echo connection until EOF or an error.
pub fn echo_serve(mut c: impl std::io::Read + std::io::Write) {
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => c.write_all(&buf[..n]).unwrap(),
        }
    }
}

/// How many CPUs (procs, workers) a workload is limited to: 1 for
/// `pingpong_1p` and `blocked_pingpong`, 2 for `syscall_handoff`, `hog` and
/// `hidden_block`; `None`: all of them.
pub fn procs_for(name: &str) -> Option<usize> {
    match name {
        "pingpong_1p" | "blocked_pingpong" => Some(1),
        "syscall_handoff" | "hog" | "hidden_block" => Some(2),
        _ => None,
    }
}

/// `procs_for`, with "all of them" counted.
pub fn workers_for(name: &str) -> usize {
    procs_for(name).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The workload named on the command line.
pub fn workload_arg() -> String {
    std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: {} <workload>   (one of: {})", std::env::args().next().unwrap(), ALL.join(", "));
        std::process::exit(2);
    })
}

/// The kernel's limit on memory mappings per process (`vm.max_map_count`).
pub fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?.trim().parse().ok()
}

/// A task of a runtime whose tasks block (may's coroutines, OS threads).
pub type Task = Box<dyn FnOnce() -> f64 + Send>;

/// The primitives of a blocking-style runtime, enough to write the
/// `syscall_handoff`, `hog` and `hidden_block` workloads once for may and
/// for threads.
pub struct Blocking {
    /// Starts a task; the returned closure joins it and gives its result.
    pub spawn: fn(Task) -> Box<dyn FnOnce() -> f64>,
    pub yield_now: fn(),
    pub sleep: fn(Duration),
}

impl Blocking {
    /// Wall time (ms) of 100 compute tasks × 1,000 chunks with a yield
    /// between chunks, while `blockers` tasks each make ten 50 ms sleeps.
    fn compute_with_blockers(&self, blockers: usize) -> f64 {
        let bs: Vec<_> = (0..blockers)
            .map(|_| {
                (self.spawn)(Box::new(|| {
                    for _ in 0..10 {
                        blocking_sleep();
                    }
                    0.0
                }))
            })
            .collect();
        let t = Instant::now();
        let yield_now = self.yield_now;
        let hs: Vec<_> = (0..100u64)
            .map(|i| {
                (self.spawn)(Box::new(move || {
                    let mut acc = 0u64;
                    for k in 0..1000 {
                        acc = acc.wrapping_add(chunk(i * 1000 + k));
                        yield_now();
                    }
                    black_box(acc);
                    0.0
                }))
            })
            .collect();
        hs.into_iter().for_each(|h| _ = h());
        let ms = t.elapsed().as_secs_f64() * 1e3;
        bs.into_iter().for_each(|b| _ = b());
        ms
    }

    /// The `syscall_handoff` workload: prints its two lines.
    pub fn syscall_handoff(&self) {
        let base = self.compute_with_blockers(0);
        let with = self.compute_with_blockers(4);
        report("syscall_handoff", with, "ms");
        report("syscall_handoff_ratio", with / base, "x");
    }

    /// ms for a task doing 100 sleeps of 1 ms while `spinners` tasks spin
    /// 200 ms each without calling the runtime.
    fn hog_run(&self, spinners: usize) -> f64 {
        let t0 = Instant::now();
        let sleep = self.sleep;
        let sleeper = (self.spawn)(Box::new(move || {
            for _ in 0..100 {
                sleep(Duration::from_millis(1));
            }
            t0.elapsed().as_secs_f64() * 1e3
        }));
        let spins: Vec<_> = (0..spinners)
            .map(|_| {
                (self.spawn)(Box::new(|| {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(200) {}
                    0.0
                }))
            })
            .collect();
        let ms = sleeper();
        spins.into_iter().for_each(|s| _ = s());
        ms
    }

    /// The `hog` workload: prints its two lines.
    pub fn hog(&self) {
        report("hog_baseline", self.hog_run(0), "ms");
        report("hog", self.hog_run(2), "ms");
    }

    /// p99 lateness (µs) of a task's 100 sleeps of 5 ms while `blockers`
    /// tasks each call `std::thread::sleep(300 ms)` twice, a blocking call
    /// the runtime is not told about.
    fn hidden_block_run(&self, blockers: usize) -> f64 {
        let bs: Vec<_> = (0..blockers)
            .map(|_| {
                (self.spawn)(Box::new(|| {
                    for _ in 0..HIDDEN_BLOCKS {
                        std::thread::sleep(HIDDEN_BLOCK);
                    }
                    0.0
                }))
            })
            .collect();
        let sleep = self.sleep;
        let sleeper = (self.spawn)(Box::new(move || {
            let late = (0..HIDDEN_NAPS)
                .map(|_| {
                    let t = Instant::now();
                    sleep(HIDDEN_NAP);
                    lateness_us(t, HIDDEN_NAP)
                })
                .collect();
            p99(late)
        }));
        let p = sleeper();
        bs.into_iter().for_each(|b| _ = b());
        p
    }

    /// The `hidden_block` workload: prints its two lines.
    pub fn hidden_block(&self) {
        report("hidden_block_baseline_p99", self.hidden_block_run(0), "us");
        report("hidden_block_p99", self.hidden_block_run(HIDDEN_BLOCKERS), "us");
    }
}
