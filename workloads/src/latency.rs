//! Tail latency against load, open loop (the question scheduling papers
//! such as Shinjuku, NSDI '19, ask): requests arrive at Poisson times at
//! rate λ, whatever the runtime does with them; each runs on a G for a
//! service time drawn from a distribution, computing without a runtime
//! call; its latency is its completion minus its *scheduled* arrival, so a
//! generator that falls behind counts against the runtime (no coordinated
//! omission).
//!
//! The schedule is a pure function of (distribution, procs, load,
//! requests, seed): the peers (`benches/peers`) draw the same requests from
//! the same generator (splitmix64, seeded with 42), so every runtime serves
//! the same list. Parameters as docs/workloads.md gives them: service times
//! of 10 µs (fixed, exponential, or 99.5% 10 µs / 0.5% 1 ms) or 99% 50 µs /
//! 1% 20 ms; a request computes its service time as steps of the xorshift
//! chain (calibrated on this machine); the first 10% of the requests are a
//! warm-up, not counted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::goro::Runtime;

/// The seed of every schedule (docs/workloads.md).
pub const SEED: u64 = 42;

/// Service-time distributions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dist {
    /// Every request takes 10 µs.
    Fixed,
    /// Exponential, mean 10 µs.
    Exp,
    /// 99.5% take 10 µs, 0.5% take 100× longer (1 ms), as Shinjuku's.
    Bimodal,
    /// 99% take 50 µs, 1% take 20 ms: longer than a 10 ms time slice.
    Slice,
}

impl Dist {
    /// Every distribution, in the order tables show them.
    pub const ALL: [Dist; 4] = [Dist::Fixed, Dist::Exp, Dist::Bimodal, Dist::Slice];

    /// The name the lab, the peers and the CSV use.
    pub fn name(self) -> &'static str {
        match self {
            Dist::Fixed => "fixed",
            Dist::Exp => "exp",
            Dist::Bimodal => "bimodal",
            Dist::Slice => "slice",
        }
    }

    /// The distribution called `name`.
    pub fn parse(name: &str) -> Option<Dist> {
        Dist::ALL.into_iter().find(|d| d.name() == name)
    }

    /// What its requests take, in words.
    pub fn about(self) -> &'static str {
        match self {
            Dist::Fixed => "every request 10 µs",
            Dist::Exp => "exponential, mean 10 µs",
            Dist::Bimodal => "99.5% of 10 µs, 0.5% of 1 ms",
            Dist::Slice => "99% of 50 µs, 1% of 20 ms, longer than a 10 ms time slice",
        }
    }

    /// Mean service time, µs.
    pub fn mean_us(self) -> f64 {
        match self {
            Dist::Fixed | Dist::Exp => 10.0,
            Dist::Bimodal => 0.995 * 10.0 + 0.005 * 1000.0,
            Dist::Slice => 0.99 * 50.0 + 0.01 * 20_000.0,
        }
    }

    fn draw(self, rng: &mut SplitMix) -> f64 {
        let u = rng.unit();
        match self {
            Dist::Fixed => 10.0,
            Dist::Exp => -(1.0 - u).ln() * 10.0,
            Dist::Bimodal if u < 0.005 => 1000.0,
            Dist::Bimodal => 10.0,
            Dist::Slice if u < 0.01 => 20_000.0,
            Dist::Slice => 50.0,
        }
    }
}

/// splitmix64: small, and the same in Go and Rust, so peers draw the same
/// schedule.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The requests of one point: arrival offsets and service times, ns.
pub struct Schedule {
    /// Offered load, a fraction of capacity (procs / mean service time).
    pub load: f64,
    /// Arrival times since the start, ns (increasing).
    pub arrival_ns: Vec<u64>,
    /// Service times, ns.
    pub service_ns: Vec<u64>,
}

impl Schedule {
    /// `n` requests with Poisson arrivals at `load` × capacity; service
    /// times from `dist`. Arrivals and services come from one stream: for
    /// each request, first its gap, then its service time.
    pub fn new(dist: Dist, procs: usize, load: f64, n: usize, seed: u64) -> Schedule {
        Schedule::scaled(dist, 1.0, procs, load, n, seed)
    }

    /// As [`Schedule::new`], every service time multiplied by `scale` (and
    /// the arrival rate divided by it, so `load` keeps its meaning): the
    /// same shape at a machine's own time scale (where waking a thread
    /// takes 90 µs, a 10 µs request cannot keep a slowdown of 10).
    pub fn scaled(dist: Dist, scale: f64, procs: usize, load: f64, n: usize, seed: u64) -> Schedule {
        let rate_per_ns = load * procs as f64 / (dist.mean_us() * scale * 1e3);
        let mut rng = SplitMix(seed);
        let (mut arrival_ns, mut service_ns) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut t = 0.0f64;
        for _ in 0..n {
            t += -(1.0 - rng.unit()).ln() / rate_per_ns;
            arrival_ns.push(t as u64);
            service_ns.push((dist.draw(&mut rng) * scale * 1e3) as u64);
        }
        Schedule { load, arrival_ns, service_ns }
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.arrival_ns.len()
    }

    /// Whether there is no request.
    pub fn is_empty(&self) -> bool {
        self.arrival_ns.is_empty()
    }
}

/// What one point measured.
#[derive(Clone, Debug, Default)]
pub struct Point {
    /// Offered load (fraction of capacity).
    pub load: f64,
    /// Offered and achieved requests per second.
    pub offered_rps: f64,
    /// Completed requests over the time from the first arrival to the last
    /// completion.
    pub achieved_rps: f64,
    /// Latency percentiles, µs: p50, p99, p99.9.
    pub latency_us: [f64; 3],
    /// Slowdown (latency / service time) percentiles: p50, p99, p99.9.
    pub slowdown: [f64; 3],
}

impl Point {
    /// The line a peer prints for a point, read back by [`Point::parse`].
    pub fn line(&self) -> String {
        format!(
            "latency_point {:.3} {:.1} {:.1} {:.2} {:.2} {:.2} {:.3} {:.3} {:.3}",
            self.load,
            self.offered_rps,
            self.achieved_rps,
            self.latency_us[0],
            self.latency_us[1],
            self.latency_us[2],
            self.slowdown[0],
            self.slowdown[1],
            self.slowdown[2]
        )
    }

    /// Reads a `latency_point` line.
    pub fn parse(line: &str) -> Option<Point> {
        let mut it = line.strip_prefix("latency_point ")?.split_whitespace().map(|x| x.parse::<f64>().ok());
        let mut next = || it.next().flatten();
        Some(Point {
            load: next()?,
            offered_rps: next()?,
            achieved_rps: next()?,
            latency_us: [next()?, next()?, next()?],
            slowdown: [next()?, next()?, next()?],
        })
    }
}

/// The `q` quantile of sorted `v` (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The point `done_ns` (completion times since the start, per request)
/// makes of `s`, leaving out the first 10% of the requests (warm-up).
pub fn summarize(s: &Schedule, done_ns: &[u64]) -> Point {
    let skip = s.len() / 10;
    let arrivals = &s.arrival_ns[skip..];
    let done = &done_ns[skip..];
    let mut lat: Vec<f64> = arrivals.iter().zip(done).map(|(a, d)| d.saturating_sub(*a) as f64).collect();
    let mut slow: Vec<f64> = lat.iter().zip(&s.service_ns[skip..]).map(|(l, sv)| l / (*sv).max(1) as f64).collect();
    lat.sort_by(f64::total_cmp);
    slow.sort_by(f64::total_cmp);
    let qs = [0.5, 0.99, 0.999];
    let first = arrivals.first().copied().unwrap_or(0);
    let last_arrival = arrivals.last().copied().unwrap_or(0);
    let last = done.iter().copied().max().unwrap_or(0);
    let n = arrivals.len() as f64;
    Point {
        load: s.load,
        offered_rps: n / ((last_arrival.saturating_sub(first)).max(1) as f64 / 1e9),
        achieved_rps: n / ((last.saturating_sub(first)).max(1) as f64 / 1e9),
        latency_us: qs.map(|q| quantile(&lat, q) / 1e3),
        slowdown: qs.map(|q| quantile(&slow, q)),
    }
}

/// Steps of the xorshift chain per µs on this machine (measured once: the
/// fastest of a few timed runs).
pub fn steps_per_us() -> f64 {
    static RATE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *RATE.get_or_init(|| {
        const STEPS: u64 = 2_000_000;
        (0..5)
            .map(|_| {
                let t = Instant::now();
                chain(1, STEPS);
                STEPS as f64 / (t.elapsed().as_nanos().max(1) as f64 / 1e3)
            })
            .fold(0.0, f64::max)
    })
}

/// `steps` steps of the dependent xorshift64 chain of docs/workloads.md.
#[inline(never)]
pub fn chain(seed: u64, steps: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..steps {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x)
}

/// Computes for about `ns` (the chain: no runtime call, no clock read).
pub fn serve(ns: u64) {
    chain(ns, (ns as f64 / 1e3 * steps_per_us()) as u64);
}

/// How a request reaches a G.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A new G per request.
    Spawn,
    /// `procs × 4` worker Gs take requests from a channel.
    Pool,
}

impl Mode {
    /// The mode called `name` (`spawn`, `pool`).
    pub fn parse(name: &str) -> Option<Mode> {
        [Mode::Spawn, Mode::Pool].into_iter().find(|m| m.name() == name)
    }

    /// The name the lab and the peers use.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Spawn => "spawn",
            Mode::Pool => "pool",
        }
    }
}

/// What a peer's `latency` subcommand is asked to run:
/// `<dist> <spawn|pool> <procs> <load,...> <requests> <seed> [scale]`.
#[derive(Clone, Debug)]
pub struct PeerArgs {
    /// Service times.
    pub dist: Dist,
    /// How requests reach a task.
    pub mode: Mode,
    /// Workers (Ps).
    pub procs: usize,
    /// Offered loads, one point each.
    pub loads: Vec<f64>,
    /// Requests a point.
    pub requests: usize,
    /// The schedule's seed.
    pub seed: u64,
    /// The factor on every service time ([`Schedule::scaled`]; 1 if not given).
    pub scale: f64,
}

impl PeerArgs {
    /// Reads the arguments; on bad ones prints the usage of `peer` and
    /// exits with status 2. Also makes the calling thread the punctual
    /// generator ([`precise_sleeps`]) and calibrates the service loop.
    pub fn from_args(peer: &str, args: &[String]) -> PeerArgs {
        let parsed = PeerArgs::parse(args);
        let a = parsed.unwrap_or_else(|| {
            eprintln!(
                "usage: {peer} latency <fixed|exp|bimodal|slice> <spawn|pool> <procs> <load,...> <requests> <seed> [scale]"
            );
            std::process::exit(2);
        });
        if !precise_sleeps() {
            eprintln!("note: the generator runs without a real-time priority");
        }
        steps_per_us();
        a
    }

    /// The arguments, or `None` if one is missing, extra or malformed.
    pub fn parse(args: &[String]) -> Option<PeerArgs> {
        let (args, scale) = match args {
            [rest @ .., scale] if rest.len() == 6 => (rest, scale.parse().ok().filter(|s: &f64| *s > 0.0)?),
            _ => (args, 1.0),
        };
        let [dist, mode, procs, loads, requests, seed] = args else { return None };
        Some(PeerArgs {
            dist: Dist::parse(dist)?,
            mode: Mode::parse(mode)?,
            procs: procs.parse().ok()?,
            loads: loads.split(',').map(|l| l.parse().ok()).collect::<Option<_>>()?,
            requests: requests.parse().ok()?,
            seed: seed.parse().ok()?,
            scale,
        })
    }

    /// The schedule of each load, in order.
    pub fn schedules(&self) -> impl Iterator<Item = Schedule> + '_ {
        self.loads.iter().map(|&l| Schedule::scaled(self.dist, self.scale, self.procs, l, self.requests, self.seed))
    }
}

/// Makes this thread a punctual generator: its sleeps end within
/// microseconds of their deadline (timer slack 1 ns instead of the default
/// 50 µs), and it runs at a real-time priority (`SCHED_FIFO` 1) where the
/// process may, so that a request is issued on time even when a worker
/// thread computes on the CPU the generator wakes on (on a small machine
/// the OS otherwise lets it wait for up to a time slice, a millisecond or
/// more, which would count against every runtime alike). Threads it
/// creates do not inherit the priority. Returns whether it was granted.
pub fn precise_sleeps() -> bool {
    // SAFETY: PR_SET_TIMERSLACK takes an integer and touches only this
    // thread's timer slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    let param = libc::sched_param { sched_priority: 1 };
    // With SCHED_RESET_ON_FORK: threads this one creates (a runtime's
    // worker started by a spawn from the generator) do not inherit the
    // real-time policy.
    const SCHED_RESET_ON_FORK: libc::c_int = 0x4000_0000;
    // SAFETY: `param` is a valid sched_param; pid 0 is the calling thread,
    // whose scheduling policy alone changes.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO | SCHED_RESET_ON_FORK, &param) == 0 }
}

/// Waits until `t` (on the generator's thread, after [`precise_sleeps`]):
/// sleeps when it is more than 30 µs away, else returns (the request is
/// issued at most that early; lateness counts against the runtime either
/// way).
pub fn wait_until(t: Instant) {
    let now = Instant::now();
    if t > now + Duration::from_micros(30) {
        std::thread::sleep(t - now);
    }
}

/// The completion times of a point's requests (ns since `start`), and the
/// wait for the last one. Clones share them.
#[derive(Clone)]
pub struct Completions {
    done: Arc<Vec<AtomicU64>>,
    left: Arc<AtomicUsize>,
    all: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    /// Time zero of the schedule.
    pub start: Instant,
}

impl Completions {
    /// For `n` requests, starting now.
    pub fn new(n: usize) -> Completions {
        Completions {
            done: Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
            left: Arc::new(AtomicUsize::new(n)),
            all: Arc::new((std::sync::Mutex::new(n == 0), std::sync::Condvar::new())),
            start: Instant::now(),
        }
    }

    /// Request `i` has completed.
    pub fn finish(&self, i: usize) {
        self.done[i].store(self.start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.all.0.lock().unwrap() = true;
            self.all.1.notify_all();
        }
    }

    /// Blocks the thread until every request has completed; their times.
    pub fn wait(&self) -> Vec<u64> {
        let mut all = self.all.0.lock().unwrap();
        while !*all {
            all = self.all.1.wait(all).unwrap();
        }
        self.done.iter().map(|d| d.load(Ordering::Relaxed)).collect()
    }
}

/// Runs schedule `s` on `rt`: a plain thread issues the requests at their
/// arrival times (`rt.spawn`, or a send to a pool of `procs × 4` worker
/// Gs); returns the point.
pub fn run_goro(rt: &Runtime, procs: usize, mode: Mode, s: &Schedule) -> Point {
    let service = Arc::new(s.service_ns.clone());
    steps_per_us();
    let c = Completions::new(s.len());
    let pool = (mode == Mode::Pool).then(|| {
        let q = crate::goro::chan::Chan::<u32>::new(s.len().max(1));
        for _ in 0..procs * 4 {
            let (q, service, c) = (q.clone(), service.clone(), c.clone());
            drop(rt.spawn(move || {
                while let Some(i) = q.recv() {
                    serve(service[i as usize]);
                    c.finish(i as usize);
                }
            }));
        }
        q
    });
    // The generator gets a thread of its own (its priority is raised).
    std::thread::scope(|scope| {
        scope.spawn(|| {
            if !precise_sleeps() {
                eprintln!("note: the generator runs without a real-time priority (no CAP_SYS_NICE)");
            }
            for (i, &a) in s.arrival_ns.iter().enumerate() {
                wait_until(c.start + Duration::from_nanos(a));
                match &pool {
                    Some(q) => q.send(i as u32).expect("pool channel open"),
                    None => {
                        let (service, c) = (service.clone(), c.clone());
                        drop(rt.spawn(move || {
                            serve(service[i]);
                            c.finish(i);
                        }));
                    }
                }
            }
        });
    });
    if let Some(q) = pool {
        q.close();
    }
    summarize(s, &c.wait())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_offers_its_load_and_its_distribution() {
        for dist in Dist::ALL {
            let n = 400_000;
            let s = Schedule::new(dist, 2, 0.5, n, SEED);
            let want_rate = 0.5 * 2.0 / (dist.mean_us() * 1e-6);
            let rate = n as f64 / (*s.arrival_ns.last().unwrap() as f64 / 1e9);
            assert!((rate - want_rate).abs() < 0.02 * want_rate, "{dist:?}: {rate} requests/s, want {want_rate}");
            let mean = s.service_ns.iter().sum::<u64>() as f64 / n as f64 / 1e3;
            assert!((mean - dist.mean_us()).abs() < 0.1 * dist.mean_us(), "{dist:?}: mean {mean} µs");
            assert!(s.arrival_ns.windows(2).all(|w| w[0] <= w[1]));
            // The same seed draws the same requests.
            assert_eq!(s.service_ns, Schedule::new(dist, 2, 0.5, n, SEED).service_ns);
        }
    }

    #[test]
    fn a_scaled_schedule_stretches_services_and_gaps_alike() {
        let (one, ten) = (
            Schedule::new(Dist::Bimodal, 2, 0.5, 1000, SEED),
            Schedule::scaled(Dist::Bimodal, 10.0, 2, 0.5, 1000, SEED),
        );
        for (a, b) in one.service_ns.iter().zip(&ten.service_ns) {
            assert_eq!(a * 10, *b);
        }
        for (a, b) in one.arrival_ns.iter().zip(&ten.arrival_ns) {
            assert!(a * 10 <= b + 10 && *b <= a * 10 + 10, "{a} × 10 against {b}");
        }
    }

    #[test]
    fn peer_arguments_take_an_optional_scale() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let a = PeerArgs::parse(&args("bimodal pool 2 0.1,0.5 1000 42")).unwrap();
        assert_eq!(
            (a.dist, a.mode, a.procs, a.requests, a.seed, a.scale),
            (Dist::Bimodal, Mode::Pool, 2, 1000, 42, 1.0)
        );
        assert_eq!(a.loads, [0.1, 0.5]);
        assert_eq!(PeerArgs::parse(&args("slice spawn 1 0.3 10 7 10")).unwrap().scale, 10.0);
        for bad in [
            "bimodal pool 2 0.5 1000",
            "bimodal pool 2 0.5 1000 42 0",
            "bimodal pool 2 0.5 1000 42 10 1",
            "cubic pool 2 0.5 10 42",
        ] {
            assert!(PeerArgs::parse(&args(bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_point_is_summarized_from_latencies_and_read_back() {
        // 4 requests: the warm-up tenth is none of them.
        let s = Schedule { load: 0.5, arrival_ns: vec![0, 1000, 2000, 3000], service_ns: vec![100; 4] };
        let p = summarize(&s, &[100, 1200, 2100, 4000]);
        assert_eq!(p.latency_us, [0.1, 1.0, 1.0]);
        assert_eq!(p.slowdown, [1.0, 10.0, 10.0]);
        let back = Point::parse(&p.line()).unwrap();
        assert_eq!(back.latency_us, p.latency_us);
        assert_eq!(back.load, 0.5);
    }
}
