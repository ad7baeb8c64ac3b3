//! `lab --latency`: tail latency against offered load, open loop, per
//! policy and per peer (Go, Tokio, may), with the requests of
//! `goro_workloads::latency`. Writes `latency.md`, `latency.csv` and
//! `latency.svg` (p99 latency, log scale, against load; one line per
//! policy and peer).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use goro::{Policy, Runtime};
use goro_workloads::latency::{run_goro, Dist, Mode, Point, Schedule, SEED};
use plotters::prelude::*;

use crate::{median, progress, Options, Size, Variant};

/// Loads swept, as fractions of capacity (procs / mean service time).
pub const LOADS: [f64; 10] = [0.1, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];

/// The p99 slowdowns a load must keep to count as sustained (one row of
/// the table each), unless `--slowdown` says otherwise: Shinjuku's 10, and
/// looser ones, which a machine whose thread wake-up alone is a sizeable
/// part of a short request may be able to tell apart.
pub const SLOWDOWN_TARGETS: [f64; 3] = [10.0, 50.0, 100.0];

/// One line of the chart: a goro policy or a peer.
enum Series<'a> {
    Goro(&'a Variant),
    Peer { name: &'static str, cmd: PathBuf },
}

impl Series<'_> {
    fn name(&self) -> String {
        match self {
            Series::Goro(v) => v.name.clone(),
            Series::Peer { name, .. } => (*name).to_string(),
        }
    }

    /// One point at `load` (a fresh runtime, or a peer process).
    fn point(&self, o: &Options, load: f64) -> Result<Point, String> {
        let n = requests(o.size);
        match self {
            Series::Goro(v) => {
                let mut policy = Policy::default();
                (v.apply)(&mut policy);
                // SAFETY: the lab's Gs keep no thread-local state across switch points.
                let rt = unsafe { Runtime::builder().procs(o.procs).policy(policy).build() }
                    .map_err(|e| format!("runtime: {e}"))?;
                let s = Schedule::scaled(o.dist, o.scale, o.procs, load, n, SEED);
                Ok(run_goro(&rt, o.procs, o.mode, &s))
            }
            Series::Peer { name, cmd } => {
                let out = Command::new(cmd)
                    .args([
                        "latency",
                        o.dist.name(),
                        o.mode.name(),
                        &o.procs.to_string(),
                        &format!("{load}"),
                        &n.to_string(),
                        &SEED.to_string(),
                        &o.scale.to_string(),
                    ])
                    .output()
                    .map_err(|e| format!("{name}: {e}"))?;
                let text = String::from_utf8_lossy(&out.stdout);
                text.lines()
                    .find_map(Point::parse)
                    .ok_or_else(|| format!("{name} printed no latency_point: {}", String::from_utf8_lossy(&out.stderr)))
            }
        }
    }
}

/// Requests per point (docs/workloads.md), the first tenth a warm-up.
fn requests(size: Size) -> usize {
    if size == Size::Quick {
        20_000
    } else {
        200_000
    }
}

/// Builds the peers asked for; a peer that cannot be built is left out
/// with the reason.
fn peers(wanted: &[String], notes: &mut Vec<String>) -> Vec<Series<'static>> {
    let mut out = Vec::new();
    for p in wanted {
        match p.as_str() {
            "go" => match go_peer() {
                Ok(cmd) => out.push(Series::Peer { name: "Go", cmd }),
                Err(e) => notes.push(format!("Go left out: {e}")),
            },
            "tokio" => match rust_peer("peer-tokio") {
                Ok(cmd) => out.push(Series::Peer { name: "Tokio", cmd }),
                Err(e) => notes.push(format!("Tokio left out: {e}")),
            },
            "may" => match rust_peer("peer-may") {
                Ok(cmd) => out.push(Series::Peer { name: "may", cmd }),
                Err(e) => notes.push(format!("may left out: {e}")),
            },
            other => crate::usage(&format!("no peer named {other:?} (go, tokio, may)")),
        }
    }
    out
}

/// `go` on PATH, or the one `scripts/compare.sh` installs.
fn go_binary() -> Option<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates = [
        "go".into(),
        "target/go-venv/bin/go".into(),
        "/opt/gobin/bin/go".into(),
        format!("{home}/.cache/goro-gobin/bin/go"),
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|c| Command::new(c).arg("version").output().is_ok_and(|o| o.status.success()))
}

fn go_peer() -> Result<PathBuf, String> {
    let go = go_binary().ok_or("no Go toolchain (run scripts/compare.sh once to install one)")?;
    let out = Path::new("target/peers/peer-go");
    eprintln!("building the Go peer ...");
    let st = Command::new(&go)
        .args(["build", "-o"])
        .arg(std::env::current_dir().map_err(|e| e.to_string())?.join(out))
        .arg(".")
        .current_dir("benches/peers/go")
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("go build failed".into());
    }
    Ok(out.to_path_buf())
}

/// A binary of `benches/peers/rust` (Tokio's, may's), built now.
fn rust_peer(bin: &str) -> Result<PathBuf, String> {
    eprintln!("building {bin} (the first time takes a minute or two) ...");
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--bin", bin, "--manifest-path", "benches/peers/rust/Cargo.toml"])
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("cargo build of benches/peers/rust failed".into());
    }
    Ok(PathBuf::from("benches/peers/rust/target/release").join(bin))
}

/// Medians (and spread) of one series at one load over the runs.
#[derive(Clone, Default)]
struct Cell {
    points: Vec<Point>,
}

impl Cell {
    fn med(&self, f: impl Fn(&Point) -> f64) -> f64 {
        median(&self.points.iter().map(f).collect::<Vec<_>>())
    }
    fn spread(&self, f: impl Fn(&Point) -> f64) -> (f64, f64) {
        let v: Vec<f64> = self.points.iter().map(f).collect();
        (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(0.0, f64::max))
    }
}

/// The highest load whose median p99 slowdown is at most the target (with
/// every lower load meeting it too).
fn sustained(row: &[Cell], loads: &[f64], target: f64) -> f64 {
    let mut best = 0.0;
    for (c, &l) in row.iter().zip(loads) {
        if c.points.is_empty() || c.med(|p| p.slowdown[1]) > target {
            break;
        }
        best = l;
    }
    best
}

/// Runs the sweep and writes its results.
pub fn run(o: &Options, vs: &[Variant]) {
    let dist = o.dist;
    let mode = o.mode;
    let loads: Vec<f64> = o.loads.clone().unwrap_or_else(|| LOADS.to_vec());
    let mut notes = Vec::new();
    let mut series: Vec<Series> = vs.iter().map(Series::Goro).collect();
    series.extend(peers(&o.peers, &mut notes));
    let runs = o.runs;
    let total = runs * loads.len() * series.len();
    eprintln!(
        "goro latency lab: {} service times (mean {:.1} µs), {} mode, procs = {}, {} loads x {} series x {} runs, {} requests per point",
        dist_name(dist, o.scale),
        dist.mean_us() * o.scale,
        mode.name(),
        o.procs,
        loads.len(),
        series.len(),
        runs,
        requests(o.size)
    );
    let mut cells = vec![vec![Cell::default(); loads.len()]; series.len()];
    let started = Instant::now();
    let mut done = 0;
    for run in 0..runs {
        for (li, &load) in loads.iter().enumerate() {
            // Alternate the series' order from run to run, so drift in the
            // machine does not always land on the same one.
            let order: Vec<usize> =
                if run % 2 == 0 { (0..series.len()).collect() } else { (0..series.len()).rev().collect() };
            for si in order {
                let s = &series[si];
                progress(
                    done,
                    total,
                    started,
                    &format!("run {}/{runs} load {:.0}% {}", run + 1, load * 100.0, s.name()),
                );
                match s.point(o, load) {
                    Ok(p) => cells[si][li].points.push(p),
                    Err(e) => notes.push(e),
                }
                done += 1;
            }
        }
    }
    progress(done, total, started, "done");
    eprintln!();
    let names: Vec<String> = series.iter().map(Series::name).collect();
    let table = table(&names, &loads, &cells, &o.slowdown);
    println!("\n{table}");
    for n in &notes {
        println!("note: {n}");
    }
    let out = &o.out;
    std::fs::create_dir_all(out).unwrap_or_else(|e| panic!("cannot create {out}: {e}"));
    let header = format!(
        "# goro latency lab\n\n{} service times (mean {:.1} µs; {}), requests handed out by {}, procs = {}, \
         Poisson arrivals, {} requests per point (the first tenth a warm-up), median of {runs} runs \
         (min–max in the CSV), {:.0} s. \
         Latency is completion minus scheduled arrival. Sustained: the highest load whose p99 slowdown \
         (latency / service time) stays at most the target, at every load up to it.\n\n{}\n",
        dist_name(dist, o.scale),
        dist.mean_us() * o.scale,
        if o.scale == 1.0 { dist.about().to_string() } else { format!("{}, every time × {}", dist.about(), o.scale) },
        if mode == Mode::Spawn { "a G spawned per request" } else { "a pool of procs × 4 worker Gs" },
        o.procs,
        requests(o.size),
        started.elapsed().as_secs_f64(),
        crate::machine_note()
    );
    let md = format!("{out}/latency.md");
    std::fs::write(&md, format!("{header}\n{table}")).unwrap_or_else(|e| panic!("cannot write {md}: {e}"));
    let csv_path = format!("{out}/latency.csv");
    std::fs::write(&csv_path, csv(&names, &loads, &cells)).unwrap_or_else(|e| panic!("cannot write {csv_path}: {e}"));
    let svg = format!("{out}/latency.svg");
    chart(&svg, &names, &loads, &cells, o).unwrap_or_else(|e| panic!("cannot draw {svg}: {e}"));
    println!("wrote {md}, {csv_path} and {svg}");
}

/// The distribution's name, with its scale when it is not 1 (`bimodal×10`).
fn dist_name(dist: Dist, scale: f64) -> String {
    if scale == 1.0 {
        dist.name().to_string()
    } else {
        format!("{}×{scale}", dist.name())
    }
}

fn table(names: &[String], loads: &[f64], cells: &[Vec<Cell>], targets: &[f64]) -> String {
    let mut s = String::from("p99 latency (µs) against offered load; in brackets the p99 slowdown\n\n| load |");
    for n in names {
        let _ = write!(s, " {n} |");
    }
    s.push_str("\n|---:|");
    s.push_str(&"---:|".repeat(names.len()));
    s.push('\n');
    for (li, l) in loads.iter().enumerate() {
        let _ = write!(s, "| {:.0}% |", l * 100.0);
        for row in cells {
            let c = &row[li];
            if c.points.is_empty() {
                s.push_str(" – |");
            } else {
                let _ = write!(
                    s,
                    " {} ({}) |",
                    crate::num(c.med(|p| p.latency_us[1])),
                    crate::num(c.med(|p| p.slowdown[1]))
                );
            }
        }
        s.push('\n');
    }
    for &target in targets {
        s.push_str(&format!("| **sustained at p99 slowdown ≤ {target}** |"));
        for row in cells {
            let _ = write!(s, " **{:.0}%** |", sustained(row, loads, target) * 100.0);
        }
        s.push('\n');
    }
    s
}

fn csv(names: &[String], loads: &[f64], cells: &[Vec<Cell>]) -> String {
    let mut s = String::from(
        "series,load,runs,offered_rps,achieved_rps,p50_us,p99_us,p999_us,p99_us_min,p99_us_max,slowdown_p50,slowdown_p99,slowdown_p999\n",
    );
    for (n, row) in names.iter().zip(cells) {
        for (l, c) in loads.iter().zip(row) {
            if c.points.is_empty() {
                continue;
            }
            let (lo, hi) = c.spread(|p| p.latency_us[1]);
            let _ = writeln!(
                s,
                "{n},{l},{},{:.1},{:.1},{:.2},{:.2},{:.2},{lo:.2},{hi:.2},{:.3},{:.3},{:.3}",
                c.points.len(),
                c.med(|p| p.offered_rps),
                c.med(|p| p.achieved_rps),
                c.med(|p| p.latency_us[0]),
                c.med(|p| p.latency_us[1]),
                c.med(|p| p.latency_us[2]),
                c.med(|p| p.slowdown[0]),
                c.med(|p| p.slowdown[1]),
                c.med(|p| p.slowdown[2]),
            );
        }
    }
    s
}

/// p99 latency (log scale) against load, one line per series, with each
/// point's spread over the runs as a vertical bar.
fn chart(
    path: &str,
    names: &[String],
    loads: &[f64],
    cells: &[Vec<Cell>],
    o: &Options,
) -> Result<(), Box<dyn std::error::Error>> {
    let procs = o.procs;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let all: Vec<f64> = cells.iter().flatten().flat_map(|c| c.points.iter().map(|p| p.latency_us[1])).collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(1.0) * 0.7;
    let hi = all.iter().copied().fold(1.0, f64::max) * 1.4;
    let caption = format!(
        "p99 latency against load — {} service times (mean {:.0} µs), {}, procs = {procs}",
        dist_name(o.dist, o.scale),
        o.dist.mean_us() * o.scale,
        if o.mode == Mode::Spawn { "a G per request" } else { "worker pool" }
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0f64..100.0f64, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered load (% of capacity); hollow points: completed under 97% of the offered rate (overloaded)")
        .y_desc("p99 latency (µs, log scale)")
        .x_label_formatter(&|x| format!("{x:.0}%"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let palette = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(23, 190, 207),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
    ];
    for (si, (name, row)) in names.iter().zip(cells).enumerate() {
        let color = palette[si % palette.len()];
        // Peers dashed-looking (thinner), goro's policies solid.
        let width = if ["Go", "Tokio", "may"].contains(&name.as_str()) { 3 } else { 2 };
        let pts: Vec<(f64, f64)> = loads
            .iter()
            .zip(row)
            .filter(|(_, c)| !c.points.is_empty())
            .map(|(l, c)| (l * 100.0, c.med(|p| p.latency_us[1])))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
        // Filled: the runtime kept up; hollow: it completed under 97% of
        // the offered rate (overloaded, latency grows with the run).
        let kept_up: Vec<bool> = loads
            .iter()
            .zip(row)
            .filter(|(_, c)| !c.points.is_empty())
            .map(|(_, c)| c.med(|p| p.achieved_rps) >= 0.97 * c.med(|p| p.offered_rps))
            .collect();
        chart.draw_series(
            pts.iter()
                .zip(&kept_up)
                .map(|(&(x, y), &ok)| Circle::new((x, y), 4, if ok { color.filled() } else { color.stroke_width(2) })),
        )?;
        for (l, c) in loads.iter().zip(row).filter(|(_, c)| c.points.len() > 1) {
            let (a, b) = c.spread(|p| p.latency_us[1]);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(l * 100.0, a), (l * 100.0, b)],
                color.stroke_width(1),
            )))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(())
}
