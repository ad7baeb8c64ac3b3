//! Scheduler counters and the `Stats` snapshot.
//!
//! Each P has its own [`Counters`]. Only the M holding the P writes them, with
//! a plain load-add-store (no locked instruction, no shared cache line with
//! other Ps), so counting costs nothing measurable on the hot path; readers
//! on other threads see slightly stale but never torn values. Counters that
//! belong to no P (Ms created, Gs readied from plain threads) are runtime-wide
//! atomics touched only off the fast path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Per-P event counters (owner-written).
        #[derive(Default)]
        pub(crate) struct Counters {
            $(pub $name: AtomicU64,)*
        }

        /// A snapshot of scheduler counters, per P or summed.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct PStats {
            $($(#[$doc])* pub $name: u64,)*
            /// Gs in the local run queue and `runnext` when the snapshot was taken.
            pub local_queue: u64,
        }

        impl Counters {
            pub fn snapshot(&self) -> PStats {
                PStats { $($name: self.$name.load(Ordering::Relaxed),)* local_queue: 0 }
            }
        }

        impl PStats {
            fn add(&mut self, o: &PStats) {
                $(self.$name += o.$name;)*
                self.local_queue += o.local_queue;
            }
        }
    };
}

counters! {
    /// Gs created on this P.
    spawned,
    /// Gs that exited on this P.
    completed,
    /// Times a G was scheduled on this P.
    scheduled,
    /// Times an M holding this P started spinning (looking for work to steal).
    spins,
    /// Steal operations that took at least one G.
    steals,
    /// Gs taken by those steals.
    stolen,
    /// Batches taken from the global queue.
    global_takes,
    /// Times the local queue overflowed to the global queue.
    local_overflows,
    /// Times `runnext` supplied the next G.
    runnext_hits,
    /// Times a G parked.
    parks,
    /// Times a parked G was made runnable by code running on this P.
    unparks,
    /// Times a G yielded because its time slice was used up.
    preemptions,
    /// Times a G called `yield_now`.
    yields,
    /// Timers fired by this P's M.
    timers_fired,
    /// `syscall`/`blocking` calls entered by Gs on this P.
    syscalls,
    /// Returns from a syscall that found the P still theirs (Go's fast path).
    syscall_fast_exits,
}

impl Counters {
    /// Adds one. Must be called only by the M holding the P.
    #[inline]
    pub fn bump(c: &AtomicU64) {
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
}

/// Counters and gauges of a runtime, from `Runtime::stats()`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Number of Ps (GOMAXPROCS).
    pub procs: usize,
    /// Ps with no M.
    pub idle_procs: usize,
    /// OS worker threads (Ms) alive.
    pub threads: usize,
    /// OS worker threads (Ms) created since the runtime started.
    pub threads_created: usize,
    /// Ms parked with nothing to do.
    pub idle_threads: usize,
    /// Ms looking for work right now.
    pub spinning_threads: usize,
    /// Gs in the global run queue.
    pub global_queue: usize,
    /// Gs that exist (created and not yet exited).
    pub live_goroutines: usize,
    /// G objects the runtime holds: the live Gs and the dead ones kept for
    /// reuse (Go's `allglen`). Dead Gs are reused by later spawns, so this
    /// follows the most Gs alive at once, not the number spawned.
    pub g_objects: usize,
    /// Gs readied by plain OS threads (they go to the global queue).
    pub external_readies: u64,
    /// Ps handed to another M because their G blocked in a syscall
    /// (`blocking`, or a retake).
    pub handoffs: u64,
    /// Ps sysmon took from a G in a syscall.
    pub retakes: u64,
    /// Ps sysmon took from a G that ran user code for
    /// `Policy::hog_threshold` without a runtime call (`Policy::hog_handoff`).
    pub hog_handoffs: u64,
    /// Ms that exited after idling (surplus threads).
    pub threads_exited: usize,
    /// Time since the runtime started.
    pub uptime: Duration,
    /// One entry per P.
    pub per_p: Vec<PStats>,
    /// The sum of `per_p`.
    pub total: PStats,
    /// Live Gs by state: runnable, running, waiting, syscall.
    pub runnable_goroutines: usize,
    /// Live Gs running on an M.
    pub running_goroutines: usize,
    /// Live Gs parked.
    pub waiting_goroutines: usize,
    /// Live Gs in a system call.
    pub syscall_goroutines: usize,
    /// Time each P spent with an M (not in the idle list).
    pub busy_per_p: Vec<Duration>,
    /// Time from "made runnable" to "running" (sampled).
    pub sched_latency: Histogram,
    /// Length of G runs between switches (sampled).
    pub run_time: Histogram,
    /// Whether this runtime detected a deadlock.
    pub deadlocked: bool,
    /// Acquisitions of the locks that Ps share (taken by collecting these
    /// statistics too: a handful per call).
    pub shared_locks: SharedLocks,
}

/// Runtime-wide counters: events that belong to no P (or to a P its owner
/// is not holding), bumped off the fast path.
#[derive(Default)]
pub(crate) struct SchedCounters {
    /// Gs readied from plain threads (to the global queue).
    pub external_readies: AtomicU64,
    /// Gs spawned from plain threads.
    pub external_spawns: AtomicU64,
    /// Ps handed to another M because of a syscall (`blocking` or retake).
    pub handoffs: AtomicU64,
    /// Ps sysmon took from a G in a syscall.
    pub retakes: AtomicU64,
    /// Ps sysmon took from a G that hogged them.
    pub hog_handoffs: AtomicU64,
    /// Gs that exited on an M without a P (their P was taken while they
    /// ran: a syscall, or hog handoff); counted in `total.completed`.
    pub exits_without_p: AtomicU64,
    /// Acquisitions of the scheduler's lock (global queue, idle Ps and Ms).
    pub lock_sched: AtomicU64,
    /// Acquisitions of a P's registry lock by anyone but that P (a G that
    /// exits on another P than the one it was registered on, a spawn from
    /// a plain thread).
    pub lock_other_registry: AtomicU64,
    /// Acquisitions of a P's timer heap lock by anyone but that P.
    pub lock_other_timers: AtomicU64,
}

impl SchedCounters {
    /// Adds one to counter `c`.
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Copies the counters into `st`.
    pub(crate) fn fill(&self, st: &mut Stats) {
        st.total.spawned += self.external_spawns.load(Ordering::Relaxed);
        st.total.completed += self.exits_without_p.load(Ordering::Relaxed);
        st.external_readies = self.external_readies.load(Ordering::Relaxed);
        st.handoffs = self.handoffs.load(Ordering::Relaxed);
        st.retakes = self.retakes.load(Ordering::Relaxed);
        st.hog_handoffs = self.hog_handoffs.load(Ordering::Relaxed);
        st.shared_locks.sched = self.lock_sched.load(Ordering::Relaxed);
        st.shared_locks.other_registry = self.lock_other_registry.load(Ordering::Relaxed);
        st.shared_locks.other_timers = self.lock_other_timers.load(Ordering::Relaxed);
    }
}

/// A snapshot of runtime `s` (`Runtime::stats`, `goro::stats`).
pub(crate) fn collect(s: &crate::sched::Sched) -> Stats {
    use crate::g::GStatus;
    use crate::p::PStatus;
    let per_p: Vec<_> =
        s.ps.iter()
            .map(|p| {
                let mut st = p.counters.snapshot();
                st.local_queue = p.queue_len() as u64;
                st
            })
            .collect();
    let total = Stats::sum(&per_p);
    let (global_queue, idle_threads) = s.queue_and_idle_ms();
    let now = s.now_nanos();
    let busy_per_p =
        s.ps.iter()
            .map(|p| {
                let mut idle = p.idle_total.load(Ordering::Relaxed);
                if p.status() == PStatus::Idle {
                    idle += now.saturating_sub(p.idle_since.load(Ordering::Relaxed));
                }
                Duration::from_nanos(now.saturating_sub(idle))
            })
            .collect();
    let mut sched_latency = Histogram::default();
    let mut run_time = Histogram::default();
    for p in s.ps.iter() {
        sched_latency.merge(&p.sched_latency.snapshot());
        run_time.merge(&p.run_time.snapshot());
    }
    let mut by_state = [0usize; 5];
    let mut live = 0;
    for g in s.all_gs() {
        by_state[g.status() as usize] += 1;
        live += 1;
    }
    let (spinning_threads, idle_procs) = s.spinning_and_idle();
    let (free_gs, stack_pool) = s.gpool.shared_locks();
    let mut st = Stats {
        procs: s.procs,
        idle_procs,
        threads: s.ms.created() - s.ms.exited(),
        threads_created: s.ms.created(),
        threads_exited: s.ms.exited(),
        idle_threads,
        spinning_threads,
        global_queue,
        live_goroutines: live,
        g_objects: s.ps.iter().map(|p| p.registry.lock().unwrap().len()).sum(),
        runnable_goroutines: by_state[GStatus::Runnable as usize],
        running_goroutines: by_state[GStatus::Running as usize],
        waiting_goroutines: by_state[GStatus::Waiting as usize],
        syscall_goroutines: by_state[GStatus::Syscall as usize],
        uptime: s.clock.uptime(),
        per_p,
        total,
        busy_per_p,
        sched_latency,
        run_time,
        deadlocked: s.deadlock.found.load(Ordering::Relaxed),
        ..Stats::default()
    };
    s.counters.fill(&mut st);
    st.shared_locks.free_gs = free_gs;
    st.shared_locks.stack_pool = stack_pool;
    st
}

impl Stats {
    pub(crate) fn sum(per_p: &[PStats]) -> PStats {
        let mut t = PStats::default();
        for p in per_p {
            t.add(p);
        }
        t
    }
}

/// How often the locks shared between Ps were taken: the scaling figure
/// (ARCHITECTURE.md, "What Ps share"). In steady state each should be a
/// small fraction of the operations (spawns, switches, channel operations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SharedLocks {
    /// The scheduler's lock: global run queue, idle Ps and Ms.
    pub sched: u64,
    /// The shared free list of dead Gs.
    pub free_gs: u64,
    /// The shared pool of stacks.
    pub stack_pool: u64,
    /// A P's registry of its Gs, taken by another P or thread.
    pub other_registry: u64,
    /// A P's timer heap, taken by another P or thread.
    pub other_timers: u64,
}

impl SharedLocks {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.sched + self.free_gs + self.stack_pool + self.other_registry + self.other_timers
    }
}

/// Sub-buckets per power of two (HdrHistogram's log-linear layout): a
/// bucket is at most 1/16 of its lower bound wide, so a percentile read as
/// its bucket's midpoint is within about 3% of the true value.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;

/// Buckets of a [`Histogram`]: values below 32 ns one per nanosecond, then
/// 16 per power of two up to 2^40 ns (18 minutes; longer values land in the
/// last bucket). See [`Histogram::bucket_bounds`].
pub const HIST_BUCKETS: usize = (40 - SUB_BITS as usize) * SUB;

/// The bucket of `ns`.
#[inline]
fn bucket_of(ns: u64) -> usize {
    if ns < 2 * SUB as u64 {
        return ns as usize;
    }
    let m = 63 - ns.leading_zeros();
    let i = (m - SUB_BITS + 1) as usize * SUB + ((ns >> (m - SUB_BITS)) as usize - SUB);
    i.min(HIST_BUCKETS - 1)
}

/// The values `[lo, hi)` bucket `i` holds.
fn bounds_of(i: usize) -> (u64, u64) {
    if i < 2 * SUB {
        return (i as u64, i as u64 + 1);
    }
    let m = (i / SUB) as u32 + SUB_BITS - 1;
    let width = 1u64 << (m - SUB_BITS);
    let lo = (SUB + i % SUB) as u64 * width;
    (lo, lo + width)
}

/// A per-P log-linear histogram of durations (owner-written, like
/// `Counters`).
pub(crate) struct Hist {
    b: Box<[AtomicU64; HIST_BUCKETS]>,
}

impl Default for Hist {
    fn default() -> Self {
        Hist { b: Box::new(std::array::from_fn(|_| AtomicU64::new(0))) }
    }
}

impl Hist {
    #[inline]
    pub fn record(&self, ns: u64) {
        Counters::bump(&self.b[bucket_of(ns)]);
    }

    pub fn snapshot(&self) -> Histogram {
        Histogram { buckets: self.b.iter().map(|c| c.load(Ordering::Relaxed)).collect() }
    }
}

/// A histogram of durations with log-linear buckets (sampled: one
/// schedule in 64), fine enough that a percentile is within ~3% of the
/// true value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// `buckets[i]`: samples in [`Histogram::bucket_bounds`]`(i)`
    /// nanoseconds.
    pub buckets: Vec<u64>,
}

impl Histogram {
    /// The number of samples.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The nanoseconds `[lo, hi)` that bucket `i` counts.
    pub fn bucket_bounds(i: usize) -> (u64, u64) {
        bounds_of(i)
    }

    pub(crate) fn merge(&mut self, o: &Histogram) {
        if self.buckets.len() < o.buckets.len() {
            self.buckets.resize(o.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
    }

    /// The `q`-quantile (0.0..=1.0), as the midpoint of its bucket (within
    /// about 3% of the sample's value).
    pub fn percentile(&self, q: f64) -> Duration {
        let n = self.count();
        if n == 0 {
            return Duration::ZERO;
        }
        let want = ((n as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= want {
                let (lo, hi) = bounds_of(i);
                return Duration::from_nanos(lo + (hi - lo) / 2);
            }
        }
        Duration::from_nanos(bounds_of(HIST_BUCKETS - 1).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_and_are_at_most_a_sixteenth_wide() {
        let mut next = 0;
        for i in 0..HIST_BUCKETS {
            let (lo, hi) = bounds_of(i);
            assert_eq!(lo, next, "bucket {i} starts where {} ends", i.saturating_sub(1));
            assert!(hi > lo);
            assert!((hi - lo) * 16 <= lo.max(16), "bucket {i} [{lo}, {hi}) is too wide");
            assert_eq!(bucket_of(lo), i);
            assert_eq!(bucket_of(hi - 1), i);
            next = hi;
        }
        assert_eq!(bucket_of(u64::MAX), HIST_BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_within_a_few_percent() {
        let h = Hist::default();
        // 1..=100_000 µs, one sample each: the q-quantile is q * 100 ms.
        for us in 1..=100_000u64 {
            h.record(us * 1000);
        }
        let snap = h.snapshot();
        for q in [0.5, 0.9, 0.99, 0.999] {
            let got = snap.percentile(q).as_nanos() as f64;
            let want = q * 100_000.0 * 1000.0;
            assert!((got - want).abs() / want < 0.035, "p{q}: {got} ns, want {want}");
        }
        assert_eq!(snap.count(), 100_000);
    }
}
