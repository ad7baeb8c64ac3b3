//! The workloads of docs/workloads.md on goro, printing `name value unit`.
//!
//!     cargo bench --bench workloads                 # every workload, median of GORO_BENCH_RUNS (3)
//!     cargo bench --bench workloads -- pingpong yield
//!     GORO_BENCH_RUNS=5 cargo bench --bench workloads
//!
//! Policy overrides for A/B runs: `GORO_BENCH_RUNNEXT_WAKE=immediate|never`,
//! `GORO_BENCH_HOG_HANDOFF=off`, `GORO_BENCH_HOG_THRESHOLD_US=<µs>`.
//!
//! Each run of each workload is a fresh child process (this binary with
//! `--child <name>`), so leftovers of one cannot distort another.

use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goro::chan::Chan;
use goro::{Policy, RunnextWake, Runtime};

const ALL: &[&str] = &[
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

use goro_workloads::schedload;
use goro_workloads::sysload;
use sysload::{HiddenSize, SysSize};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("--child") {
        let name = &args[1];
        let procs = args.get(2).and_then(|p| p.parse().ok());
        run_child(name, procs);
        return;
    }
    let runs: usize = std::env::var("GORO_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    // Like cargo's own filters: a workload runs if its name contains any argument.
    let filters: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with('-')).collect();
    let names: Vec<&str> =
        ALL.iter().copied().filter(|w| filters.is_empty() || filters.iter().any(|f| w.contains(f))).collect();
    if names.is_empty() {
        eprintln!("no workload matches {filters:?}; the workloads are {}", ALL.join(", "));
        std::process::exit(2);
    }
    let exe = std::env::current_exe().unwrap();
    for name in names {
        let mut samples: std::collections::BTreeMap<String, (Vec<f64>, String)> = Default::default();
        let mut order = Vec::new();
        for _ in 0..runs {
            let out = Command::new(&exe).args(["--child", name]).output().expect("run child");
            if !out.status.success() {
                eprintln!("{name}: child failed: {}", String::from_utf8_lossy(&out.stderr));
                break;
            }
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() == 3 {
                    let v: f64 = f[1].parse().unwrap();
                    let e = samples.entry(f[0].to_string()).or_insert_with(|| {
                        order.push(f[0].to_string());
                        (Vec::new(), f[2].to_string())
                    });
                    e.0.push(v);
                }
            }
        }
        for key in order {
            let (mut v, unit) = samples.remove(&key).unwrap();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!("{key} {} {unit}", fmt(v[v.len() / 2]));
        }
    }
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The policy to measure: goro's defaults, or with `GORO_BENCH_RUNNEXT_WAKE`
/// = `immediate` (Go's rule) / `never` (Tokio's) another `Policy::runnext_wake`.
fn policy() -> Policy {
    let mut p = Policy::default();
    match std::env::var("GORO_BENCH_RUNNEXT_WAKE").as_deref() {
        Ok("immediate") => p.runnext_wake = RunnextWake::Immediate,
        Ok("never") => p.runnext_wake = RunnextWake::Never,
        Ok("deferred") | Err(_) => {}
        Ok(other) => panic!("GORO_BENCH_RUNNEXT_WAKE={other}: expected immediate, deferred or never"),
    }
    match std::env::var("GORO_BENCH_HOG_HANDOFF").as_deref() {
        Ok("off") => p.hog_handoff = false,
        Ok("on") | Err(_) => {}
        Ok(other) => panic!("GORO_BENCH_HOG_HANDOFF={other}: expected on or off"),
    }
    if let Ok(us) = std::env::var("GORO_BENCH_HOG_THRESHOLD_US") {
        let us: u64 = us.parse().expect("GORO_BENCH_HOG_THRESHOLD_US: microseconds");
        p.hog_threshold = Duration::from_micros(us);
    }
    p
}

fn runtime(procs: Option<usize>) -> Runtime {
    let mut b = Runtime::builder().policy(policy());
    if let Some(p) = procs {
        b = b.procs(p);
    }
    // SAFETY: the workloads' Gs keep no thread-local state across switch points.
    unsafe { b.build() }.unwrap()
}

fn run_child(name: &str, procs: Option<usize>) {
    match name {
        "spawn" => println!("spawn {:.1} ns/task", schedload::spawn(&runtime(procs), 100_000)),
        "skynet" => println!("skynet {:.1} ms", schedload::skynet(&runtime(procs), 1_000_000)),
        "pingpong" => println!("pingpong {:.1} ns/roundtrip", schedload::pingpong(&runtime(procs), 1_000_000)),
        "pingpong_1p" => println!("pingpong_1p {:.1} ns/roundtrip", schedload::pingpong(&runtime(Some(1)), 1_000_000)),
        "prodcons" => println!("prodcons {:.1} ns/msg", schedload::prodcons(&runtime(procs), 10_000_000)),
        "select4" => println!("select4 {:.1} ns/msg", schedload::select4(&runtime(procs), 4_000_000)),
        "yield" => println!("yield {:.1} ns/yield", schedload::yields(&runtime(procs), 1000, 1000)),
        "chained_spawn" => println!("chained_spawn {:.1} ns/task", schedload::chained_spawn(&runtime(procs), 100_000)),
        "timers" => timers(runtime(procs)),
        "parked_memory" => parked_memory(runtime(procs)),
        "echo" => echo(runtime(procs)),
        "syscall_handoff" => {
            let (ms, ratio) = sysload::syscall_handoff(&sysload::runtime(&policy()), SysSize::FULL);
            println!("syscall_handoff {ms:.1} ms");
            println!("syscall_handoff_ratio {ratio:.3} x");
        }
        "hog" => {
            let hog = |policy: &Policy, spinners| sysload::hog(&sysload::runtime(policy), SysSize::FULL, spinners);
            let no_handoff = Policy { hog_handoff: false, ..policy() };
            println!("hog_baseline {:.1} ms", hog(&policy(), 0));
            println!("hog {:.1} ms", hog(&policy(), 2));
            println!("hog_no_handoff {:.1} ms", hog(&no_handoff, 2));
        }
        "hidden_block" => {
            let p99 = |policy: &Policy, blockers| {
                let size = HiddenSize { blockers, ..HiddenSize::FULL };
                let late = sysload::hidden_block(&sysload::runtime(policy), size);
                if std::env::var_os("GORO_BENCH_VERBOSE").is_some() {
                    eprintln!("hidden_block lateness (µs), blockers {blockers}: {late:.0?}");
                }
                sysload::quantile(&late, 0.99)
            };
            let no_handoff = Policy { hog_handoff: false, ..policy() };
            println!("hidden_block_baseline_p99 {:.1} us", p99(&policy(), 0));
            println!("hidden_block_p99 {:.1} us", p99(&policy(), HiddenSize::FULL.blockers));
            println!("hidden_block_no_handoff_p99 {:.1} us", p99(&no_handoff, HiddenSize::FULL.blockers));
        }
        "blocked_pingpong" => {
            let rate = |policy: &Policy, sleeper| {
                // SAFETY: the workload's Gs keep no thread-local state across switch points.
                let rt = unsafe { Runtime::builder().procs(1).policy(policy.clone()).build() }.unwrap();
                sysload::blocked_pingpong(&rt, 1000, Duration::from_secs(1), sleeper)
            };
            let alone = rate(&policy(), false);
            let with = rate(&policy(), true);
            let no_handoff = rate(&Policy { hog_handoff: false, ..policy() }, true);
            println!("blocked_pingpong_alone {alone:.0} trips/s");
            println!("blocked_pingpong {with:.0} trips/s");
            println!("blocked_pingpong_ratio {:.3} x", with / alone);
            println!("blocked_pingpong_no_handoff_ratio {:.3} x", no_handoff / alone);
        }
        other => panic!("unknown workload {other}"),
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn timers(rt: Runtime) {
    const N: usize = 100_000;
    let (ms, p99) = rt.block_on(|| {
        let mut state = 42u64;
        let durs: Vec<u64> = (0..N).map(|_| 1 + splitmix64(&mut state) % 20).collect();
        let lateness = Arc::new(Mutex::new(Vec::with_capacity(N)));
        let t = Instant::now();
        let hs: Vec<_> = durs
            .into_iter()
            .map(|d| {
                let lateness = lateness.clone();
                goro::go(move || {
                    let start = Instant::now();
                    let d = Duration::from_millis(d);
                    goro::sleep(d);
                    let late = start.elapsed().saturating_sub(d);
                    lateness.lock().unwrap().push(late.as_micros() as u64);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let mut l = lateness.lock().unwrap().clone();
        l.sort_unstable();
        (ms, l[l.len() * 99 / 100])
    });
    println!("timers {ms:.1} ms");
    println!("timers_p99_lateness {p99} us");
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page / 1024
}

fn parked_memory(rt: Runtime) {
    const N: usize = 100_000;
    let kib = rt.block_on(|| {
        let before = rss_kib();
        let ready = Arc::new(AtomicU64::new(0));
        let chans: Vec<Chan<u64>> = (0..N).map(|_| Chan::new(0)).collect();
        let hs: Vec<_> = chans
            .iter()
            .map(|c| {
                let (c, ready) = (c.clone(), ready.clone());
                goro::go(move || {
                    ready.fetch_add(1, Ordering::Relaxed);
                    black_box(c.recv())
                })
            })
            .collect();
        while ready.load(Ordering::Relaxed) < N as u64 {
            goro::sleep(Duration::from_millis(1));
        }
        goro::sleep(Duration::from_millis(20));
        let after = rss_kib();
        for c in &chans {
            c.close();
        }
        for h in hs {
            h.join().unwrap();
        }
        (after.saturating_sub(before)) as f64 / N as f64
    });
    println!("parked_memory {kib:.2} KiB/task");
}

fn echo(rt: Runtime) {
    use goro::net::{TcpListener, TcpStream};
    use std::io::{Read, Write};
    const CLIENTS: usize = 100;
    const MSGS: usize = 10_000;
    let rate = rt.block_on(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        goro::go(move || {
            for c in l.incoming() {
                let mut c = c.unwrap();
                c.set_nodelay(true).unwrap();
                goro::go(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => c.write_all(&buf[..n]).unwrap(),
                        }
                    }
                });
            }
        });
        let t = Instant::now();
        let hs: Vec<_> = (0..CLIENTS)
            .map(|i| {
                goro::go(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_nodelay(true).unwrap();
                    let mut msg = [0u8; 64];
                    let mut back = [0u8; 64];
                    for k in 0..MSGS {
                        msg[..8].copy_from_slice(&((i * MSGS + k) as u64).to_le_bytes());
                        s.write_all(&msg).unwrap();
                        s.read_exact(&mut back).unwrap();
                        assert_eq!(msg, back);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        (CLIENTS * MSGS) as f64 / t.elapsed().as_secs_f64()
    });
    println!("echo {rate:.0} msgs/s");
}
