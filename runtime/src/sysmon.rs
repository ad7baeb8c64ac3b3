//! sysmon: the runtime's monitor thread. It holds no P and runs no Gs.
//!
//! Each round (Go's `sysmon` → `retake`) it looks at every P:
//! - in a syscall for longer than `Policy::syscall_retake` (and with other
//!   work to do, or no M spinning or idle to take new work, or for over
//!   10 ms): CAS the P from `Syscall` to `Idle` and `handoffp` it;
//! - running the same G (same `schedtick`) past the time slice: set its
//!   `preempt` flag, so the G yields at its next preemption point; with
//!   `Policy::hog_handoff`, if the G runs user code, also take the P
//!   (`User` → `Idle`) and hand it to another M;
//! - running with a deferred runnext wake-up pending (`RunnextWake::Deferred`)
//!   and no switch since the last round: the readier computes without
//!   runtime calls, so wake an idle P to take the readied G (it looks again
//!   within 1 ms after first seeing the mark).
//!
//! It sleeps 20 µs between rounds, doubling after 50 rounds with nothing to
//! do, up to 10 ms; `entersyscall` wakes it from a long sleep. It also keeps
//! the coarse clock and, about once a second, trims the stack pool.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::p::PStatus;
use crate::policy::Retake;
use crate::sched::Sched;

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
        *self.sched.sysmon_note.lock().unwrap() = true;
        self.sched.sysmon_cv.notify_all();
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
}

fn run(sched: Arc<Sched>, schedtrace: Option<(Duration, bool)>) {
    // SAFETY: gettid has no preconditions.
    sched.sysmon_tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
    let mut last_trace = Instant::now();
    let mut deadlock_seen = None;
    let now = Instant::now();
    let mut seen: Vec<PSeen> = (0..sched.procs)
        .map(|_| PSeen { schedtick: 0, schedwhen: now, syscalltick: 0, syscallwhen: now, wake_pending_at: None })
        .collect();
    let mut delay = MIN_DELAY;
    let mut idle = 0u32;
    let mut last_trim = Instant::now();
    let mut trimming = false;
    loop {
        {
            sched.sysmon_deep.store(delay > Duration::from_millis(1), Ordering::Relaxed);
            let stopped = sched.sysmon_note.lock().unwrap();
            if *stopped {
                return;
            }
            // Sleep no longer than the schedtrace period.
            let sleep = schedtrace.map_or(delay, |(p, _)| delay.min(p));
            let (stopped, res) = sched.sysmon_cv.wait_timeout(stopped, sleep).unwrap();
            if *stopped {
                return;
            }
            if !res.timed_out() {
                // Woken by entersyscall: be ready to retake soon.
                idle = 0;
                delay = MIN_DELAY;
            }
        }
        let now = Instant::now();
        sched.tick_coarse_clock();
        crate::dump::check_sigquit();
        sched.poll_if_stale(NETPOLL_STALE);
        if let Some((period, detail)) = schedtrace {
            if now.duration_since(last_trace) >= period {
                last_trace = now;
                eprint!("{}", sched.schedtrace(detail));
            }
        }
        if sched.check_deadlock(&mut deadlock_seen) {
            sched.report_deadlock();
        }
        let (acted, soon) = retake(&sched, &mut seen, now);
        if trimming || now.duration_since(last_trim) >= TRIM_PERIOD {
            // A bounded batch per round: the rest of sysmon's work (retake,
            // preemption, deadlock, netpoll) never waits behind a big trim.
            let (_, more) = sched.trim_stacks(TRIM_BATCH);
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
        if soon {
            delay = delay.min(PENDING_WAKE_RECHECK);
        }
    }
}

/// Go's `retake`. Returns whether it did anything (or is about to).
/// One round over the Ps. Returns whether sysmon acted, and whether it
/// wants to look again soon (a deferred wake-up it may have to do).
fn retake(sched: &Arc<Sched>, seen: &mut [PSeen], now: Instant) -> (bool, bool) {
    let slice = sched.policy.time_slice;
    let mut acted = false;
    let mut soon = false;
    for (i, s) in seen.iter_mut().enumerate() {
        let p = &sched.ps[i];
        let status = p.status();
        if status == PStatus::Syscall as u8 {
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
                sched.retakes.fetch_add(1, Ordering::Relaxed);
                sched.count_handoff();
                sched.trace_instant("retake", &format!(r#""p":{i}"#));
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
                soon = true;
            }
        } else {
            s.wake_pending_at = None;
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
        if sched.policy.hog_handoff && status == PStatus::User as u8 && p.cas_status(PStatus::User, PStatus::Idle) {
            // The hog keeps its M; its P goes to another M.
            sched.hog_handoffs.fetch_add(1, Ordering::Relaxed);
            sched.trace_instant("hog handoff", &format!(r#""p":{i}"#));
            sched.handoffp(i);
            s.schedwhen = now;
            acted = true;
        }
    }
    (acted, soon)
}
