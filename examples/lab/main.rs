//! The policy lab: runs scheduling workloads under a set of scheduling
//! policies, several times each, and shows how each policy moves each
//! figure and which scheduler counters explain it.
//!
//!     cargo run --release --example lab                      # --quick: small sizes, about a minute on 2 cores
//!     cargo run --release --example lab -- --full            # docs/workloads.md sizes (about ten minutes)
//!     cargo run --release --example lab -- --runs 9          # runs per cell (default 5)
//!     cargo run --release --example lab -- --workloads pingpong,hog --policies default,runnext-off
//!     cargo run --release --example lab -- --procs 4 --out /tmp/lab
//!     cargo run --release --example lab -- --sweep time_slice=100us,1ms,10ms
//!     cargo run --release --example lab -- --latency        # tail latency against load, with Go, Tokio and may
//!     cargo run --release --example lab -- --latency --dist slice --mode pool --peers tokio
//!
//! Prints a table and writes `lab.md`, `lab.csv` and `lab.svg` (a heat map:
//! each policy's figure relative to goro's defaults) to `target/lab/`;
//! with `--latency`, `latency.{md,csv,svg}` (`latency.rs`).
//! A policy variant is one line in `variants()`.

mod latency;

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use goro::{Policy, Retake, RunnextWake, Runtime, Spinning, Steal};
use goro_workloads::latency::{Dist, Mode};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use goro_workloads::schedload;
use goro_workloads::sysload;
use sysload::{HiddenSize, SysSize};

/// A named change to goro's default policy.
struct Variant {
    name: String,
    about: String,
    apply: Box<dyn Fn(&mut Policy)>,
}

/// Every policy the lab knows, the first being goro's defaults. To add one,
/// add a line here.
fn variants() -> Vec<Variant> {
    let v = |name: &str, about: &str, apply: fn(&mut Policy)| Variant {
        name: name.into(),
        about: about.into(),
        apply: Box::new(apply),
    };
    vec![
        v(
            "default",
            "goro's defaults: Go's rules (runnext, global queue every 61 ticks, steal half, 10 ms slice), \
             runnext wake-ups deferred",
            |_| {},
        ),
        v("go-wake", "Go's rule: readying into runnext wakes an idle P at once", |p| {
            p.runnext_wake = RunnextWake::Immediate
        }),
        v("runnext-off", "readied Gs go to the tail of the local queue", |p| p.runnext = false),
        v("global-1", "check the global queue first on every schedule", |p| p.global_queue_interval = 1),
        v("global-never", "never check the global queue before the local one", |p| p.global_queue_interval = 0),
        v("steal-one", "thieves take one G instead of half", |p| p.steal = Steal::One),
        v("steal-off", "no work stealing", |p| p.steal = Steal::Off),
        v("spin-unlimited", "every idle M may spin looking for work", |p| p.max_spinning = Spinning::Limit(usize::MAX)),
        v("spin-none", "no spinning Ms (and so no stealing)", |p| p.max_spinning = Spinning::Limit(0)),
        v("retake-immediate", "sysmon retakes a syscall's P at its next round", |p| {
            p.syscall_retake = Retake::Immediate
        }),
        v("retake-never", "a syscall keeps its P until it returns", |p| p.syscall_retake = Retake::Never),
        v("no-handoff", "a G that runs without runtime calls keeps its P (Tokio's behaviour)", |p| {
            p.hog_handoff = false
        }),
        v("slice-1ms", "1 ms time slice instead of 10 ms", |p| p.time_slice = Duration::from_millis(1)),
        v("runnext-no-wake", "Tokio's LIFO rule: readying into runnext wakes no idle P", |p| {
            p.runnext_wake = RunnextWake::Never
        }),
        v("local-queue-16", "goro: local run queues of 16 instead of 256", |p| p.local_queue = 16),
        v("hog-250us", "hog handoff after 250 µs without a runtime call instead of 1 ms", |p| {
            p.hog_threshold = Duration::from_micros(250)
        }),
    ]
}

/// The numeric `Policy` fields `--sweep` can vary, and how to set one.
fn knob(name: &str) -> Option<fn(&mut Policy, f64)> {
    Some(match name {
        "time_slice" => |p, v| p.time_slice = Duration::from_secs_f64(v),
        "hog_threshold" => |p, v| p.hog_threshold = Duration::from_secs_f64(v),
        "global_queue_interval" => |p, v| p.global_queue_interval = v as u32,
        "local_queue" => |p, v| p.local_queue = v as usize,
        "max_spinning" => |p, v| p.max_spinning = Spinning::Limit(v as usize),
        _ => return None,
    })
}

/// `--sweep knob=a,b,c`: one variant per value. Durations take `ns`,
/// `us`, `ms` or `s`; counts are plain numbers.
fn sweep(spec: &str) -> Vec<Variant> {
    let (name, values) = spec.split_once('=').unwrap_or_else(|| usage("--sweep takes knob=value,value,..."));
    let set = knob(name).unwrap_or_else(|| {
        usage(&format!(
            "--sweep: no numeric knob {name:?} (time_slice, hog_threshold, global_queue_interval, local_queue, max_spinning)"
        ))
    });
    values
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|raw| {
            let value = parse_quantity(raw).unwrap_or_else(|| usage(&format!("--sweep: cannot read {raw:?}")));
            Variant {
                name: format!("{name}={raw}"),
                about: format!("Policy::{name} = {raw}"),
                apply: Box::new(move |p| set(p, value)),
            }
        })
        .collect()
}

/// `100us` → 1e-4 (seconds), `7` → 7.
fn parse_quantity(s: &str) -> Option<f64> {
    let units = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)];
    for (u, f) in units {
        if let Some(n) = s.strip_suffix(u) {
            return n.parse::<f64>().ok().map(|n| n * f);
        }
    }
    s.parse().ok()
}

#[derive(Clone, Copy, PartialEq)]
enum Size {
    Quick,
    Full,
}

struct Workload {
    name: &'static str,
    unit: &'static str,
    /// Runs with this many Ps, not `--procs` (the system-call workloads:
    /// 2, or 1 for `blocked_pingpong`).
    fixed_procs: Option<usize>,
    run: fn(&Runtime, Size) -> f64,
}

impl Workload {
    /// A runtime for one run: with the workload's own number of Ps, or
    /// `procs`.
    fn runtime(&self, procs: usize, policy: &Policy) -> Runtime {
        let procs = self.fixed_procs.unwrap_or(procs);
        // SAFETY: this program's Gs keep no thread-local state across switch points.
        unsafe { Runtime::builder().procs(procs).policy(policy.clone()).build() }.expect("runtime")
    }
}

fn pick<T>(size: Size, quick: T, full: T) -> T {
    if size == Size::Quick {
        quick
    } else {
        full
    }
}

fn sys_size(size: Size) -> SysSize {
    pick(size, SysSize { chunks: 150, sleeps: 2, spin: Duration::from_millis(60), naps: 30 }, SysSize::FULL)
}

fn workloads() -> Vec<Workload> {
    let w = |name, unit, run| Workload { name, unit, fixed_procs: None, run };
    let sys = |name, unit, procs, run| Workload { name, unit, fixed_procs: Some(procs), run };
    vec![
        w("skynet", "ms", |rt, s| schedload::skynet(rt, pick(s, 100_000, 1_000_000))),
        w("spawn", "ns/task", |rt, s| schedload::spawn(rt, pick(s, 20_000, 100_000))),
        w("chained_spawn", "ns/task", |rt, s| schedload::chained_spawn(rt, pick(s, 20_000, 100_000))),
        w("pingpong", "ns/rt", |rt, s| schedload::pingpong(rt, pick(s, 100_000, 1_000_000))),
        w("prodcons", "ns/msg", |rt, s| schedload::prodcons(rt, pick(s, 1_000_000, 10_000_000))),
        w("select4", "ns/msg", |rt, s| schedload::select4(rt, pick(s, 400_000, 4_000_000))),
        w("yield", "ns/yield", |rt, s| schedload::yields(rt, 1000, pick(s, 100, 1000))),
        w("fanout", "ms", |rt, s| fanout(rt, pick(s, 1000, 4000))),
        sys("syscall", "x", 2, |rt, s| sysload::syscall_handoff(rt, sys_size(s)).1),
        sys("hog", "ms", 2, |rt, s| sysload::hog(rt, sys_size(s), 2)),
        sys("hidden_block", "p99 µs", 2, |rt, s| {
            let quick = HiddenSize { block: Duration::from_millis(100), naps: 30, ..HiddenSize::FULL };
            sysload::quantile(&sysload::hidden_block(rt, pick(s, quick, HiddenSize::FULL)), 0.99)
        }),
        // ms for a fixed number of round trips beside the blocked G.
        sys("blocked_pingpong", "ms", 1, |rt, s| {
            let block = pick(s, Duration::from_millis(100), Duration::from_secs(1));
            sysload::blocked_pingpong_fixed(rt, pick(s, 200, 1000), pick(s, 500, 1000), block)
        }),
    ]
}

/// Uneven fan-out: one G spawns `n` Gs of very different lengths; shows
/// what stealing and spinning are for. ms.
fn fanout(rt: &Runtime, n: u64) -> f64 {
    rt.block_on(move || {
        let t = Instant::now();
        // G `i` runs 1 + i % 7 chunks of ~10 µs.
        let hs: Vec<_> =
            (0..n).map(|i| goro::go(move || (0..=i % 7).fold(0u64, |a, k| a ^ sysload::chunk(i * 8 + k)))).collect();
        for (i, h) in hs.into_iter().enumerate() {
            std::hint::black_box((h.join().unwrap(), i));
        }
        t.elapsed().as_secs_f64() * 1e3
    })
}

struct Options {
    size: Size,
    runs: usize,
    procs: usize,
    out: String,
    workloads: Option<Vec<String>>,
    policies: Option<Vec<String>>,
    sweep: Option<String>,
    latency: bool,
    dist: Dist,
    scale: f64,
    mode: Mode,
    loads: Option<Vec<f64>>,
    peers: Vec<String>,
    slowdown: Vec<f64>,
}

fn usage(err: &str) -> ! {
    let names = |v: Vec<&str>| v.join(", ");
    eprintln!(
        "{err}\nusage: lab [--quick | --full] [--runs N] [--workloads a,b] [--policies x,y] [--sweep knob=a,b] [--procs N] [--out DIR]\n       \
         lab --latency [--dist fixed|exp|bimodal|slice] [--scale N] [--mode spawn|pool] [--loads 0.1,0.5] [--peers go,tokio,may] [--slowdown 10,50,100] [--policies x,y] ...\n  \
         workloads: {}\n  policies: {}\n  sweep knobs: time_slice, hog_threshold (durations: 100us, 1ms), global_queue_interval, local_queue, max_spinning",
        names(workloads().iter().map(|w| w.name).collect()),
        names(variants().iter().map(|v| v.name.as_str()).collect()),
    );
    std::process::exit(2);
}

fn options() -> Options {
    let mut o = Options {
        size: Size::Quick,
        runs: 0,
        procs: goro::default_procs(),
        out: "target/lab".into(),
        workloads: None,
        policies: None,
        sweep: None,
        latency: false,
        dist: Dist::Bimodal,
        scale: 1.0,
        mode: Mode::Spawn,
        loads: None,
        peers: vec!["go".into(), "tokio".into(), "may".into()],
        slowdown: latency::SLOWDOWN_TARGETS.to_vec(),
    };
    // `--flag value` and `--flag=value` alike.
    let mut args = std::env::args().skip(1).flat_map(|a| match a.split_once('=') {
        Some((k, v)) if k.starts_with("--") && k != "--sweep" => vec![k.to_string(), v.to_string()],
        _ => vec![a],
    });
    let mut runs = None;
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{a} needs a value")));
        let list = |s: String| s.split(',').filter(|x| !x.is_empty()).map(String::from).collect::<Vec<_>>();
        match a.as_str() {
            "--quick" => o.size = Size::Quick,
            "--full" => o.size = Size::Full,
            "--runs" => runs = Some(value().parse::<usize>().unwrap_or_else(|_| usage("--runs takes a number"))),
            "--procs" => o.procs = value().parse().unwrap_or_else(|_| usage("--procs takes a number")),
            "--out" => o.out = value(),
            "--workloads" => o.workloads = Some(list(value())),
            "--policies" => o.policies = Some(list(value())),
            "--latency" => o.latency = true,
            "--dist" => {
                let d = value();
                o.dist = Dist::parse(&d)
                    .unwrap_or_else(|| usage(&format!("no distribution {d:?} (fixed, exp, bimodal, slice)")))
            }
            "--scale" => {
                o.scale = value()
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0 && s.is_finite())
                    .unwrap_or_else(|| usage("--scale takes a positive factor on every service time, like 10"))
            }
            "--mode" => {
                let m = value();
                o.mode = Mode::parse(&m).unwrap_or_else(|| usage(&format!("no mode {m:?} (spawn, pool)")))
            }
            "--loads" => {
                let loads: Vec<f64> = list(value())
                    .iter()
                    .map(|l| l.parse().ok().filter(|l| (0.0..=2.0).contains(l) && *l > 0.0))
                    .collect::<Option<_>>()
                    .unwrap_or_else(|| usage("--loads takes fractions of capacity, like 0.1,0.5,0.9"));
                o.loads = Some(loads);
            }
            "--peers" => o.peers = list(value()),
            "--slowdown" => {
                o.slowdown = list(value())
                    .iter()
                    .map(|s| s.parse().ok().filter(|s: &f64| *s >= 1.0))
                    .collect::<Option<Vec<_>>>()
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| {
                        usage("--slowdown takes the p99 slowdowns a sustained load keeps (at least 1), like 10,50")
                    })
            }
            "-h" | "--help" => usage("the goro policy lab"),
            a if a.starts_with("--sweep") => {
                o.sweep = Some(match a.strip_prefix("--sweep=") {
                    Some(spec) => spec.to_string(),
                    None => value(),
                })
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    o.runs = match runs {
        Some(0) => usage("--runs must be at least 1"),
        Some(n) => n,
        None if o.latency => pick(o.size, 2, 5),
        None => 5,
    };
    if o.procs == 0 {
        usage("--procs must be at least 1");
    }
    o
}

/// Keeps the entries of `all` named in `wanted` (all when `None`), failing
/// on a name that is not there.
fn select<T>(all: Vec<T>, wanted: Option<&Vec<String>>, name: fn(&T) -> &str, what: &str) -> Vec<T> {
    let Some(wanted) = wanted else { return all };
    for w in wanted {
        if !all.iter().any(|x| name(x) == w) {
            usage(&format!("no {what} named {w:?}"));
        }
    }
    all.into_iter().filter(|x| wanted.iter().any(|w| w == name(x))).collect()
}

/// One cell of the results: a workload under a policy, over the runs.
#[derive(Clone, Default)]
struct Cell {
    figures: Vec<f64>,
    steals: Vec<f64>,
    spins: Vec<f64>,
    handoffs: Vec<f64>,
    latency_p99_us: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

impl Cell {
    fn median(&self) -> f64 {
        median(&self.figures)
    }
    fn spread(&self) -> (f64, f64) {
        let min = self.figures.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.figures.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }
}

fn main() {
    let o = options();
    let default_policies =
        o.latency.then(|| ["default", "no-handoff", "hog-250us", "slice-1ms"].map(String::from).to_vec());
    let mut vs = select(variants(), o.policies.as_ref().or(default_policies.as_ref()), |v| &v.name, "policy");
    if let Some(spec) = &o.sweep {
        vs.extend(sweep(spec));
    }
    // goro's defaults are the reference every figure is relative to.
    if vs.first().map(|v| v.name.as_str()) != Some("default") {
        vs.retain(|v| v.name != "default");
        vs.insert(0, variants().remove(0));
    }
    let note = machine_note();
    if !note.is_empty() {
        eprintln!("{note}");
    }
    if o.latency {
        return latency::run(&o, &vs);
    }
    let ws = select(workloads(), o.workloads.as_ref(), |w| w.name, "workload");
    if ws.is_empty() {
        usage("no workload selected");
    }
    let total = vs.len() * ws.len() * o.runs;
    eprintln!(
        "goro policy lab: {} workloads x {} policies x {} runs ({}), procs = {} (syscall, hog, hidden_block: 2; blocked_pingpong: 1)",
        ws.len(),
        vs.len(),
        o.runs,
        if o.size == Size::Quick { "quick sizes" } else { "docs/workloads.md sizes" },
        o.procs
    );
    let mut cells = vec![vec![Cell::default(); vs.len()]; ws.len()];
    let started = Instant::now();
    let mut done = 0;
    // One untimed round first: the first runs in a fresh process pay for
    // page faults on new stacks and thread creation, and would otherwise
    // all land on default, the reference.
    for w in &ws {
        progress(0, total, started, &format!("warm-up / {}", w.name));
        (w.run)(&w.runtime(o.procs, &Policy::default()), o.size);
    }
    // Runs go round-robin over the policies, so drift in the machine spreads
    // over all of them instead of landing on one.
    for run in 0..o.runs {
        for (vi, v) in vs.iter().enumerate() {
            let mut policy = Policy::default();
            (v.apply)(&mut policy);
            for (wi, w) in ws.iter().enumerate() {
                progress(done, total, started, &format!("run {}/{} {} / {}", run + 1, o.runs, v.name, w.name));
                let rt = w.runtime(o.procs, &policy);
                let figure = (w.run)(&rt, o.size);
                let st = rt.stats();
                drop(rt);
                let c = &mut cells[wi][vi];
                c.figures.push(figure);
                c.steals.push(st.total.steals as f64);
                c.spins.push(st.total.spins as f64);
                c.handoffs.push((st.handoffs + st.hog_handoffs) as f64);
                c.latency_p99_us.push(st.sched_latency.percentile(0.99).as_secs_f64() * 1e6);
                done += 1;
            }
        }
    }
    progress(done, total, started, "done");
    eprintln!();

    let summary = summary_table(&vs, &ws, &cells);
    let details = detail_tables(&vs, &ws, &cells);
    println!("\n{summary}\n{details}");
    let header = format!(
        "# goro policy lab\n\n{} of {} runs per cell ({}), procs = {} (syscall, hog, hidden_block: 2; blocked_pingpong: 1), {:.0} s. \
         Lower is better. Relative figures: the policy's median over default's median, with the 95% \
         bootstrap confidence interval of the paired run-by-run ratio; `~` marks a change whose interval \
         contains 1.0 (noise).\n\n",
        "Median",
        o.runs,
        if o.size == Size::Quick { "quick sizes" } else { "docs/workloads.md sizes" },
        o.procs,
        started.elapsed().as_secs_f64()
    );
    let policies: String = vs.iter().map(|v| format!("- `{}`: {}\n", v.name, v.about)).collect();
    let header = format!("{header}{}", if note.is_empty() { String::new() } else { format!("{note}\n\n") });
    std::fs::create_dir_all(&o.out).unwrap_or_else(|e| panic!("cannot create {}: {e}", o.out));
    let write = |name: &str, text: &str| {
        let path = format!("{}/{name}", o.out);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        path
    };
    let md = write("lab.md", &format!("{header}{policies}\n{summary}\n{details}"));
    let csv = write("lab.csv", &csv(&vs, &ws, &cells));
    let svg = format!("{}/lab.svg", o.out);
    heatmap(&svg, &vs, &ws, &cells, o.procs).unwrap_or_else(|e| panic!("cannot draw {svg}: {e}"));
    println!("wrote {md}, {csv} and {svg}");
}

/// A progress bar on a terminal; on a pipe or a log file, a plain line
/// every tenth of the way (no `\r` in logs).
fn progress(done: usize, total: usize, started: Instant, what: &str) {
    use std::io::IsTerminal;
    const WIDTH: usize = 30;
    let filled = WIDTH * done / total.max(1);
    let elapsed = started.elapsed().as_secs_f64();
    let left = if done > 0 { elapsed / done as f64 * (total - done) as f64 } else { 0.0 };
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(
            err,
            "\r[{}{}] {done:>4}/{total} {elapsed:>4.0}s elapsed, ~{left:>3.0}s left  {what:<44}",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled)
        );
        let _ = err.flush();
    } else {
        let step = (total / 10).max(1);
        if done == total || done.is_multiple_of(step) {
            let _ = writeln!(err, "{done}/{total} {elapsed:.0}s elapsed, ~{left:.0}s left: {what}");
        }
    }
}

/// What the lab knows about how busy the machine is: the load average
/// before it starts and the CPU time stolen by the hypervisor over a
/// second, from `/proc`. Empty when the machine looks quiet.
fn machine_note() -> String {
    use std::sync::OnceLock;
    static NOTE: OnceLock<String> = OnceLock::new();
    NOTE.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let load1 = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse::<f64>().ok()));
        let cpu = || -> Option<(u64, u64)> {
            let s = std::fs::read_to_string("/proc/stat").ok()?;
            let v: Vec<u64> = s.lines().next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            Some((v.iter().sum(), *v.get(7)?))
        };
        let a = cpu();
        std::thread::sleep(Duration::from_secs(1));
        let b = cpu();
        let steal = match (a, b) {
            (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => 100.0 * (s1 - s0) as f64 / (t1 - t0) as f64,
            _ => 0.0,
        };
        let mut notes = Vec::new();
        if let Some(l) = load1.filter(|l| *l > 0.5 * cpus) {
            notes.push(format!("load average {l:.2} on {cpus} CPUs before the lab started"));
        }
        if steal > 2.0 {
            notes.push(format!("{steal:.0}% of CPU time stolen by the hypervisor"));
        }
        if notes.is_empty() {
            String::new()
        } else {
            format!("WARNING: busy machine ({}): figures will be noisy.", notes.join("; "))
        }
    })
    .clone()
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The relative figure of policy `vi` for workload row `row`, and whether
/// the change is within noise: its 95% confidence interval (below)
/// contains 1.0, or with fewer than 3 runs, it falls inside default's own
/// run-to-run spread.
fn relative(row: &[Cell], vi: usize) -> (f64, bool) {
    let base = row[0].median();
    let rel = row[vi].median() / base;
    match ratio_ci(row, vi) {
        Some((lo, hi)) => (rel, vi > 0 && lo <= 1.0 && 1.0 <= hi),
        None => {
            let (min, max) = row[0].spread();
            (rel, (min / base..=max / base).contains(&rel))
        }
    }
}

/// A 95% bootstrap confidence interval of the median of the paired ratios
/// policy / default, run by run (the runs alternate over the policies, so
/// run `r` of each was measured close in time). `None` under 3 runs.
fn ratio_ci(row: &[Cell], vi: usize) -> Option<(f64, f64)> {
    let ratios: Vec<f64> = row[vi].figures.iter().zip(&row[0].figures).map(|(a, b)| a / b).collect();
    if ratios.len() < 3 {
        return None;
    }
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (vi as u64 + 1);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut medians: Vec<f64> = (0..2000)
        .map(|_| {
            let sample: Vec<f64> = (0..ratios.len()).map(|_| ratios[(next() % ratios.len() as u64) as usize]).collect();
            median(&sample)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    Some((medians[medians.len() * 25 / 1000], medians[medians.len() * 975 / 1000]))
}

fn summary_table(vs: &[Variant], ws: &[Workload], cells: &[Vec<Cell>]) -> String {
    let mut s = String::from("| policy |");
    for w in ws {
        let _ = write!(s, " {} ({}) |", w.name, w.unit);
    }
    s.push_str("\n|---|");
    s.push_str(&"---:|".repeat(ws.len()));
    s.push('\n');
    for (vi, v) in vs.iter().enumerate() {
        let _ = write!(s, "| {} |", v.name);
        for row in cells {
            if vi == 0 {
                let _ = write!(s, " {} |", num(row[0].median()));
            } else {
                let (rel, noise) = relative(row, vi);
                let _ = write!(s, " {}{rel:.2}x |", if noise { "~" } else { "" });
            }
        }
        s.push('\n');
    }
    s
}

fn detail_tables(vs: &[Variant], ws: &[Workload], cells: &[Vec<Cell>]) -> String {
    let mut s = String::new();
    for (w, row) in ws.iter().zip(cells) {
        let _ = writeln!(s, "### {} ({})\n", w.name, w.unit);
        s.push_str(
            "| policy | median | min–max | vs default | 95% CI | steals | spins | handoffs | sched p99 (µs) |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (vi, (v, c)) in vs.iter().zip(row).enumerate() {
            let (min, max) = c.spread();
            let (rel, noise) = relative(row, vi);
            let ci = match ratio_ci(row, vi) {
                Some((lo, hi)) if vi > 0 => format!("{lo:.2}–{hi:.2}"),
                _ => "–".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {}–{} | {}{rel:.2}x | {ci} | {:.0} | {:.0} | {:.0} | {} |",
                v.name,
                num(c.median()),
                num(min),
                num(max),
                if noise && vi > 0 { "~" } else { "" },
                median(&c.steals),
                median(&c.spins),
                median(&c.handoffs),
                num(median(&c.latency_p99_us)),
            );
        }
        s.push('\n');
    }
    s
}

fn csv(vs: &[Variant], ws: &[Workload], cells: &[Vec<Cell>]) -> String {
    let mut s = String::from(
        "policy,workload,unit,median,min,max,relative,ci_lo,ci_hi,runs,steals,spins,handoffs,sched_p99_us\n",
    );
    for (w, row) in ws.iter().zip(cells) {
        for (vi, (v, c)) in vs.iter().zip(row).enumerate() {
            let (min, max) = c.spread();
            let (lo, hi) = ratio_ci(row, vi)
                .map_or((String::new(), String::new()), |(a, b)| (format!("{a:.4}"), format!("{b:.4}")));
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{:.4},{lo},{hi},{},{},{},{},{:.1}",
                v.name,
                w.name,
                w.unit,
                c.median(),
                min,
                max,
                relative(row, vi).0,
                c.figures.len(),
                median(&c.steals),
                median(&c.spins),
                median(&c.handoffs),
                median(&c.latency_p99_us)
            );
        }
    }
    s
}

/// Colour for a relative figure: green when faster, red when slower, white
/// at 1.0, saturating at 2x either way (on a log scale).
fn shade(rel: f64) -> RGBColor {
    let t = rel.log2().clamp(-1.0, 1.0);
    let mix = |a: u8, b: u8, f: f64| (a as f64 + (b as f64 - a as f64) * f) as u8;
    if t < 0.0 {
        RGBColor(mix(255, 46, -t), mix(255, 160, -t), mix(255, 90, -t))
    } else {
        RGBColor(mix(255, 214, t), mix(255, 60, t), mix(255, 50, t))
    }
}

/// A heat map: one row per policy, one column per workload; each cell is
/// the policy's median relative to default's (whose row shows the
/// absolute figures).
fn heatmap(
    path: &str,
    vs: &[Variant],
    ws: &[Workload],
    cells: &[Vec<Cell>],
    procs: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let (label_w, cell_w, cell_h, top, legend_h) = (170i32, 96i32, 30i32, 92i32, 70i32);
    let width = (label_w + cell_w * ws.len() as i32 + 20) as u32;
    let height = (top + cell_h * vs.len() as i32 + legend_h) as u32;
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let grey = RGBColor(100, 100, 100);
    let text = |size: f64, bold: bool, color: RGBColor, h: HPos| {
        let style = if bold { FontStyle::Bold } else { FontStyle::Normal };
        ("sans-serif", size, style).into_font().color(&color).pos(Pos::new(h, VPos::Center))
    };
    root.draw(&Text::new("goro policy lab", (12, 20), text(20.0, true, BLACK, HPos::Left)))?;
    root.draw(&Text::new(
        format!(
            "each policy's median relative to goro's defaults (lower is better); procs = {procs}, syscall, hog, hidden_block: 2; blocked_pingpong: 1"
        ),
        (12, 44),
        text(13.0, false, grey, HPos::Left),
    ))?;
    for (wi, w) in ws.iter().enumerate() {
        let x = label_w + wi as i32 * cell_w + cell_w / 2;
        root.draw(&Text::new(w.name.to_string(), (x, top - 30), text(13.0, true, BLACK, HPos::Center)))?;
        root.draw(&Text::new(format!("({})", w.unit), (x, top - 13), text(11.0, false, grey, HPos::Center)))?;
    }
    for (vi, v) in vs.iter().enumerate() {
        let y = top + vi as i32 * cell_h;
        root.draw(&Text::new(
            v.name.to_string(),
            (label_w - 8, y + cell_h / 2),
            text(13.0, false, BLACK, HPos::Right),
        ))?;
        for (wi, row) in cells.iter().enumerate() {
            let x = label_w + wi as i32 * cell_w;
            let (rel, noise) = relative(row, vi);
            let (fill, label) = if vi == 0 {
                (RGBColor(235, 238, 245), num(row[0].median()))
            } else if noise {
                // Within noise: no colour, whatever the median says.
                (RGBColor(232, 232, 232), format!("{rel:.2}x"))
            } else {
                (shade(rel), format!("{rel:.2}x"))
            };
            root.draw(&Rectangle::new([(x + 1, y + 1), (x + cell_w - 1, y + cell_h - 1)], fill.filled()))?;
            let ink = if noise && vi > 0 { RGBColor(150, 150, 150) } else { BLACK };
            root.draw(&Text::new(label, (x + cell_w / 2, y + cell_h / 2), text(12.0, false, ink, HPos::Center)))?;
        }
    }
    // Legend: the colour scale from 2x faster to 2x slower.
    let ly = top + cell_h * vs.len() as i32 + 22;
    let steps = 40;
    for i in 0..steps {
        let rel = 2f64.powf(-1.0 + 2.0 * i as f64 / (steps - 1) as f64);
        let x = label_w + i * 6;
        root.draw(&Rectangle::new([(x, ly), (x + 6, ly + 14)], shade(rel).filled()))?;
    }
    let lx = label_w + steps * 6;
    let legend = "2x faster  ←  1.0  →  2x slower;  grey: the 95% CI of the paired ratio contains 1.0 (noise)";
    root.draw(&Text::new(legend, (lx + 10, ly + 7), text(12.0, false, grey, HPos::Left)))?;
    root.present()?;
    Ok(())
}
