//! sysmon: the runtime's monitor thread. It holds no P and runs no Gs.
//!
//! Each round (Go's `sysmon` → `retake`) it looks at every P:
//! - in a syscall for longer than `Policy::syscall_retake` (and with other
//!   work to do, or no M spinning or idle to take new work, or for over
//!   10 ms): CAS the P from `Syscall` to `Idle` and `handoffp` it;
//! - running a G that has run user code for `Policy::hog_threshold` without
//!   a runtime call (its user tick odd and unchanged, no call counted):
//!   take the P (`hog.rs`: `Running` → `Takeover` → `Idle`, around a
//!   process-wide barrier) and hand it to another M, if one can be started;
//! - running the same G (same `schedtick`) past the time slice: set its
//!   `preempt` flag, so the G yields at its next preemption point;
//! - running with a deferred runnext wake-up pending (`RunnextWake::Deferred`)
//!   and no switch since the last round: the readier computes without
//!   runtime calls, so wake an idle P to take the readied G (it looks again
//!   within 1 ms after first seeing the mark).
//!
//! It sleeps 20 µs between rounds, doubling after 50 rounds with nothing to
//! do, up to 10 ms, but no longer than the hog threshold while a P
//! runs; `entersyscall` wakes it from a long sleep. It also keeps
//! the coarse clock and, about once a second, trims the stack pool.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::p::PStatus;
use crate::policy::Retake;
use crate::sched::Sched;
use crate::stats::SchedCounters;

const MIN_DELAY: Duration = Duration::from_micros(20);
const MAX_DELAY: Duration = Duration::from_millis(10);
const IDLE_ROUNDS: u32 = 50;
/// How often pooled stacks that went unused give their memory back.
const TRIM_PERIOD: Duration = Duration::from_secs(1);
/// Stacks trimmed per sysmon round at most (an `madvise` or `munmap` each,
/// a few µs: about a millisecond of work).
const TRIM_BATCH: usize = 256;
/// A syscall P with nothing else to do is retaken after this anyway.
const FORCE_RETAKE: Duration = Duration::from_millis(10);
/// sysmon polls the network when no M has for this long.
const NETPOLL_STALE: Duration = Duration::from_millis(10);
/// How soon sysmon looks again at a P it saw with a deferred runnext
/// wake-up pending.
const PENDING_WAKE_RECHECK: Duration = Duration::from_millis(1);

/// sysmon's sleep: how it is stopped, and woken early.
pub(crate) struct SysmonNote {
    /// Set to stop sysmon.
    stopped: Mutex<bool>,
    /// Wakes sysmon early (stop, or a G entering a syscall).
    cv: Condvar,
    /// sysmon sleeps longer than a millisecond: `entersyscall` wakes it,
    /// so that a blocking call is retaken on time.
    deep: AtomicBool,
    /// The kernel thread id of sysmon (0 until it starts), which deadlock
    /// detection does not count as a thread that could wake a G.
    pub(crate) tid: AtomicI32,
}

impl SysmonNote {
    pub(crate) fn new() -> SysmonNote {
        SysmonNote {
            stopped: Mutex::new(false),
            cv: Condvar::new(),
            deep: AtomicBool::new(false),
            tid: AtomicI32::new(0),
        }
    }

    /// Wakes sysmon if it is in a long sleep (a G just entered a syscall
    /// that it may have to retake).
    pub(crate) fn kick(&self) {
        if self.deep.load(Ordering::Relaxed) {
            self.deep.store(false, Ordering::Relaxed);
            let _g = self.stopped.lock().unwrap();
            self.cv.notify_one();
        }
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Sleeps up to `d`. `None` if sysmon was stopped, else whether it
    /// was woken early.
    fn sleep(&self, d: Duration) -> Option<bool> {
        self.deep.store(d > Duration::from_millis(1), Ordering::Relaxed);
        let stopped = self.stopped.lock().unwrap();
        if *stopped {
            return None;
        }
        let (stopped, res) = self.cv.wait_timeout(stopped, d).unwrap();
        if *stopped {
            return None;
        }
        Some(!res.timed_out())
    }
}

pub(crate) struct Sysmon {
    sched: Arc<Sched>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sysmon {
    pub fn start(sched: Arc<Sched>, name: &str, schedtrace: Option<(Duration, bool)>) -> std::io::Result<Sysmon> {
        let s = sched.clone();
        let thread = thread::Builder::new().name(format!("{name}-sysmon")).spawn(move || run(s, schedtrace))?;
        Ok(Sysmon { sched, thread: Some(thread) })
    }

    pub fn stop(&mut self) {
        self.sched.sysmon.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What sysmon last saw of a P.
struct PSeen {
    schedtick: u32,
    schedwhen: Instant,
    syscalltick: u32,
    syscallwhen: Instant,
    /// The P's `scheduled` count when sysmon last saw a deferred runnext
    /// wake-up pending on it.
    wake_pending_at: Option<u64>,
    /// The P's user marks (hog handoff: tick and calls), and since when
    /// sysmon has seen them unchanged.
    user_tick: u32,
    user_calls: u32,
    user_since: Instant,
}

fn run(sched: Arc<Sched>, schedtrace: Option<(Duration, bool)>) {
    // SAFETY: gettid has no preconditions.
    sched.sysmon.tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
    let mut last_trace = Instant::now();
    let mut deadlock_seen = None;
    let now = Instant::now();
    let mut seen: Vec<PSeen> = (0..sched.procs)
        .map(|_| PSeen {
            schedtick: 0,
            schedwhen: now,
            syscalltick: 0,
            syscallwhen: now,
            wake_pending_at: None,
            user_tick: 0,
            user_calls: 0,
            user_since: now,
        })
        .collect();
    let mut delay = MIN_DELAY;
    let mut idle = 0u32;
    let mut last_trim = Instant::now();
    let mut trimming = false;
    loop {
        // Sleep no longer than the schedtrace period.
        match sched.sysmon.sleep(schedtrace.map_or(delay, |(p, _)| delay.min(p))) {
            None => return,
            Some(true) => {
                // Woken by entersyscall: be ready to retake soon.
                idle = 0;
                delay = MIN_DELAY;
            }
            Some(false) => {}
        }
        let now = Instant::now();
        sched.clock.tick_coarse();
        crate::dump::check_sigquit();
        sched.poller.poll_if_stale(&sched.clock, NETPOLL_STALE);
        if let Some((period, detail)) = schedtrace {
            if now.duration_since(last_trace) >= period {
                last_trace = now;
                eprint!("{}", crate::dump::schedtrace(&sched, detail));
            }
        }
        if crate::dump::check_deadlock(&sched, &mut deadlock_seen) {
            crate::dump::report_deadlock(&sched);
        }
        let (acted, recheck) = retake(&sched, &mut seen, now);
        if trimming || now.duration_since(last_trim) >= TRIM_PERIOD {
            // A bounded batch per round: the rest of sysmon's work (retake,
            // preemption, deadlock, netpoll) never waits behind a big trim.
            let (_, more) = sched.gpool.trim_stacks(TRIM_BATCH);
            trimming = more;
            if !more {
                last_trim = now;
            }
        }
        if acted {
            idle = 0;
        } else {
            idle = idle.saturating_add(1);
        }
        delay = if idle < IDLE_ROUNDS { MIN_DELAY } else { (delay * 2).min(MAX_DELAY) };
        if let Some(d) = recheck {
            delay = delay.min(d.max(MIN_DELAY));
        }
    }
}

/// Go's `retake`: one round over the Ps. Returns whether sysmon acted (or
/// is about to), and how soon it wants to look again, if sooner than its
/// back-off would (a deferred wake-up it may have to do, a G that may be
/// hogging its P).
fn retake(sched: &Arc<Sched>, seen: &mut [PSeen], now: Instant) -> (bool, Option<Duration>) {
    let slice = sched.policy.time_slice;
    let mut acted = false;
    let mut recheck: Option<Duration> = None;
    let mut soon = |d: Duration| recheck = Some(recheck.map_or(d, |r| r.min(d)));
    for (i, s) in seen.iter_mut().enumerate() {
        let p = &sched.ps[i];
        let status = p.status();
        if status == PStatus::Syscall {
            let t = p.syscalltick.load(Ordering::Relaxed);
            let fresh = t != s.syscalltick;
            if fresh {
                s.syscalltick = t;
                s.syscallwhen = now;
            }
            let due = match sched.policy.syscall_retake {
                Retake::Never => false,
                Retake::Immediate => true,
                Retake::After(d) => !fresh && now.duration_since(s.syscallwhen) >= d,
            };
            // A P in a syscall is a reason to keep checking often.
            acted = true;
            if !due {
                continue;
            }
            // Go: don't retake a P with nothing to run while other Ms can
            // take new work, unless the call has lasted long.
            if !p.has_work()
                && sched.global_queue_len() == 0
                && sched.spinning_plus_idle() > 0
                && now.duration_since(s.syscallwhen) < FORCE_RETAKE
            {
                continue;
            }
            if p.cas_status(PStatus::Syscall, PStatus::Idle) {
                SchedCounters::bump(&sched.counters.retakes);
                SchedCounters::bump(&sched.counters.handoffs);
                crate::trace::instant(&sched.tracer, "retake", format_args!(r#""p":{i}"#));
                sched.handoffp(i);
            }
            continue;
        }
        if !p.is_running() {
            s.schedwhen = now;
            s.wake_pending_at = None;
            continue;
        }
        // A G readied into `runnext` with its wake-up deferred, and the P
        // has not switched Gs since the last round: its readier runs on
        // without runtime calls. Wake an idle P to steal it (the same wake
        // the readier's own runtime call would do: none if nobody may steal).
        if p.wake_pending.load(Ordering::Relaxed) != 0 {
            let scheduled = p.counters.scheduled.load(Ordering::Relaxed);
            if s.wake_pending_at == Some(scheduled) {
                sched.wakep_for_local();
                s.wake_pending_at = None;
                acted = true;
            } else {
                s.wake_pending_at = Some(scheduled);
                soon(PENDING_WAKE_RECHECK);
            }
        } else {
            s.wake_pending_at = None;
        }
        if sched.policy.hog_handoff && status == PStatus::Running {
            // A G in user code (odd tick) that has not entered the runtime
            // since sysmon first saw it there, for the threshold: take the
            // P (`hog.rs`). The G keeps its M; the P goes to another.
            let threshold = sched.policy.hog_threshold;
            let t = p.user.tick.load(Ordering::Acquire);
            let calls = p.user.calls.load(Ordering::Relaxed);
            if t & 1 == 0 || t != s.user_tick || calls != s.user_calls {
                s.user_tick = t;
                s.user_calls = calls;
                s.user_since = now;
                // Look again in time for a G that starts hogging now.
                soon(if t & 1 == 0 { threshold / 2 } else { threshold });
            } else if now.duration_since(s.user_since) < threshold {
                soon(threshold - now.duration_since(s.user_since));
            } else if sched.can_start_m() && take_counted(sched, p, t) {
                SchedCounters::bump(&sched.counters.hog_handoffs);
                crate::trace::instant(&sched.tracer, "hog handoff", format_args!(r#""p":{i}"#));
                sched.handoffp(i);
                s.schedwhen = now;
                acted = true;
                continue;
            }
        }
        let t = p.schedtick.load(Ordering::Relaxed);
        if t != s.schedtick {
            s.schedtick = t;
            s.schedwhen = now;
            continue;
        }
        if now.duration_since(s.schedwhen) < slice {
            continue;
        }
        if !p.preempt.load(Ordering::Relaxed) {
            p.preempt.store(true, Ordering::Relaxed);
            acted = true;
        }
    }
    (acted, recheck)
}

/// `hog::take`, with the hog counted among the Ms that run without a P
/// (`Ms::hogging`) before its owner can see the takeover and count itself
/// back.
fn take_counted(sched: &Sched, p: &crate::p::P, tick: u32) -> bool {
    sched.ms.hog_taken();
    let took = crate::hog::take(p, tick);
    if !took {
        sched.ms.hog_back();
    }
    took
}
