//! The policy lab: runs scheduling workloads under a set of scheduling
//! policies and shows how each policy moves each figure, as a table (stdout
//! and `policy_lab.md`) and a chart (`policy_lab.svg`).
//!
//!     cargo run --release --example policy_lab            # all policies, 3 runs each
//!     cargo run --release --example policy_lab -- --quick # 1 run, smaller workloads
//!     cargo run --release --example policy_lab -- --out DIR
//!
//! Every figure is a median of runs, in the workload's unit (lower is
//! better); the chart shows each policy's figure relative to Go's defaults.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use goro::{Policy, Retake, Runtime, Spinning, Steal};

#[path = "../benches/shared/schedload.rs"]
mod schedload;
#[path = "../benches/shared/sysload.rs"]
mod sysload;

struct Workload {
    name: &'static str,
    unit: &'static str,
    run: Run,
}

enum Run {
    /// Runs once on a runtime with the policy, with size factor `scale`
    /// (1.0 = full), and returns the figure.
    OnRuntime(fn(&Runtime, f64) -> f64),
    /// Builds its own runtimes (procs = 2) from the policy.
    WithPolicy(fn(&Policy) -> f64),
}

fn policies() -> Vec<(&'static str, Policy)> {
    let go = Policy::default();
    vec![
        ("go-default", go.clone()),
        ("no-runnext", Policy { runnext: false, ..go.clone() }),
        ("steal-one", Policy { steal: Steal::One, ..go.clone() }),
        ("steal-off", Policy { steal: Steal::Off, ..go.clone() }),
        ("no-steal-runnext", Policy { steal_runnext: false, ..go.clone() }),
        ("no-spinning", Policy { max_spinning: Spinning::Limit(0), ..go.clone() }),
        ("local-queue-16", Policy { local_queue: 16, ..go.clone() }),
        ("global-every-tick", Policy { global_queue_interval: 1, ..go.clone() }),
        ("slice-1ms", Policy { time_slice: Duration::from_millis(1), ..go.clone() }),
        ("retake-never", Policy { syscall_retake: Retake::Never, ..go.clone() }),
        ("hog-handoff", Policy { hog_handoff: true, ..go.clone() }),
        ("no-runnext-wake", Policy { wake_for_runnext: false, ..go }),
    ]
}

fn workloads() -> Vec<Workload> {
    let on_rt = |name, unit, f| Workload { name, unit, run: Run::OnRuntime(f) };
    vec![
        on_rt("skynet", "ms", skynet),
        on_rt("spawn", "ns/task", spawn),
        on_rt("pingpong", "ns/rt", pingpong),
        on_rt("prodcons", "ns/msg", prodcons),
        on_rt("select4", "ns/msg", select4),
        on_rt("yield", "ns/yield", yields),
        on_rt("fanout", "ms", fanout),
        Workload { name: "syscall", unit: "x", run: Run::WithPolicy(|p| sysload::syscall_handoff(p).1) },
        Workload { name: "hog", unit: "ms", run: Run::WithPolicy(|p| sysload::hog(p, 2)) },
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out_dir =
        args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| ".".into());
    let runs = if quick { 1 } else { 3 };
    let scale = if quick { 0.1 } else { 1.0 };
    let policies = policies();
    let workloads = workloads();
    let total = policies.len() * workloads.len();
    println!(
        "policy lab: {} workloads x {} policies, {} run(s) each, procs = {}",
        workloads.len(),
        policies.len(),
        runs,
        goro::default_procs()
    );
    let mut results = vec![vec![0f64; policies.len()]; workloads.len()];
    let started = Instant::now();
    let mut done = 0;
    for (pi, (pname, policy)) in policies.iter().enumerate() {
        for (wi, w) in workloads.iter().enumerate() {
            let mut samples = Vec::new();
            for _ in 0..runs {
                samples.push(match w.run {
                    Run::OnRuntime(f) => {
                        let rt = Runtime::builder().policy(policy.clone()).build().expect("runtime");
                        f(&rt, scale)
                    }
                    Run::WithPolicy(f) => f(policy),
                });
            }
            samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
            results[wi][pi] = samples[samples.len() / 2];
            done += 1;
            eprint!(
                "\r[{done:>3}/{total}] {pname:<18} {:<10} {:>10.1} {:<8} ({:.0}s)   ",
                w.name,
                results[wi][pi],
                w.unit,
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!();
    let table = table(&policies, &workloads, &results);
    println!("\n{table}");
    let md = format!(
        "# Policy lab\n\nMedian of {runs} run(s), scale {scale}, procs = {}. Lower is better; \
         in brackets: relative to go-default.\n\n{table}",
        goro::default_procs()
    );
    let svg = chart(&policies, &workloads, &results);
    std::fs::create_dir_all(&out_dir).ok();
    let md_path = format!("{out_dir}/policy_lab.md");
    let svg_path = format!("{out_dir}/policy_lab.svg");
    std::fs::write(&md_path, md).expect("write table");
    std::fs::write(&svg_path, svg).expect("write chart");
    println!("wrote {md_path} and {svg_path}");
}

fn table(policies: &[(&str, Policy)], workloads: &[Workload], r: &[Vec<f64>]) -> String {
    let mut s = String::from("| policy |");
    for w in workloads {
        let _ = write!(s, " {} ({}) |", w.name, w.unit);
    }
    s.push_str("\n|---|");
    for _ in workloads {
        s.push_str("---:|");
    }
    s.push('\n');
    for (pi, (pname, _)) in policies.iter().enumerate() {
        let _ = write!(s, "| {pname} |");
        for (wi, _) in workloads.iter().enumerate() {
            let v = r[wi][pi];
            let rel = v / r[wi][0];
            let v = if v < 10.0 { format!("{v:.2}") } else { format!("{v:.1}") };
            if pi == 0 {
                let _ = write!(s, " {v} |");
            } else {
                let _ = write!(s, " {v} ({rel:.2}x) |");
            }
        }
        s.push('\n');
    }
    s
}

/// A grouped bar chart: one group per workload, one bar per policy, height =
/// figure relative to go-default (1.0 line drawn), log-free and clamped at 3x.
fn chart(policies: &[(&str, Policy)], workloads: &[Workload], r: &[Vec<f64>]) -> String {
    const COLORS: [&str; 12] = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
        "#17becf", "#8c564b",
    ];
    let (w, h) = (1100.0, 520.0);
    let (left, right, top, bottom) = (60.0, 200.0, 50.0, 70.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max_rel = 3.0f64;
    let group_w = plot_w / workloads.len() as f64;
    let bar_w = (group_w * 0.8) / policies.len() as f64;
    let y = |rel: f64| top + plot_h * (1.0 - rel.min(max_rel) / max_rel);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="24" font-size="16" font-weight="bold">goro policy lab: figure relative to Go's defaults (lower is better)</text>"#
    );
    for k in 0..=6 {
        let rel = k as f64 * 0.5;
        let yy = y(rel);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="{}" stroke-width="{}"/><text x="{}" y="{:.1}" text-anchor="end">{rel:.1}x</text>"##,
            left + plot_w,
            if k == 2 { "#333" } else { "#ddd" },
            if k == 2 { 1.5 } else { 1.0 },
            left - 6.0,
            yy + 4.0
        );
    }
    for (wi, wl) in workloads.iter().enumerate() {
        let gx = left + wi as f64 * group_w + group_w * 0.1;
        for (pi, _) in policies.iter().enumerate() {
            let rel = r[wi][pi] / r[wi][0];
            let x = gx + pi as f64 * bar_w;
            let yy = y(rel);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} / {}: {:.1} {} ({rel:.2}x)</title></rect>"#,
                bar_w * 0.9,
                top + plot_h - yy,
                COLORS[pi % COLORS.len()],
                policies[pi].0,
                wl.name,
                r[wi][pi],
                wl.unit
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + wi as f64 * group_w + group_w / 2.0,
            top + plot_h + 20.0,
            wl.name
        );
    }
    for (pi, (pname, _)) in policies.iter().enumerate() {
        let yy = top + 10.0 + pi as f64 * 20.0;
        let x = left + plot_w + 20.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{yy}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{pname}</text>"#,
            COLORS[pi % COLORS.len()],
            x + 18.0,
            yy + 10.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn scaled(n: f64, scale: f64) -> u64 {
    ((n * scale) as u64).max(1)
}

fn skynet(rt: &Runtime, scale: f64) -> f64 {
    schedload::skynet(rt, if scale < 1.0 { 100_000 } else { 1_000_000 })
}

fn spawn(rt: &Runtime, scale: f64) -> f64 {
    schedload::spawn(rt, scaled(100_000.0, scale) as usize)
}

fn pingpong(rt: &Runtime, scale: f64) -> f64 {
    schedload::pingpong(rt, scaled(200_000.0, scale))
}

fn prodcons(rt: &Runtime, scale: f64) -> f64 {
    schedload::prodcons(rt, scaled(2_000_000.0, scale))
}

fn select4(rt: &Runtime, scale: f64) -> f64 {
    schedload::select4(rt, scaled(1_000_000.0, scale))
}

fn yields(rt: &Runtime, scale: f64) -> f64 {
    schedload::yields(rt, 1000, scaled(1000.0, scale) as usize)
}

/// Uneven fan-out: one G spawns many Gs of very different lengths; shows
/// what stealing and spinning are for.
fn fanout(rt: &Runtime, scale: f64) -> f64 {
    let n = scaled(2000.0, scale);
    rt.block_on(move || {
        let t = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|i| {
                goro::go(move || {
                    let mut x = i | 1;
                    for _ in 0..(1 + (i % 7) * 3000) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                    }
                    std::hint::black_box(x)
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        t.elapsed().as_secs_f64() * 1e3
    })
}
