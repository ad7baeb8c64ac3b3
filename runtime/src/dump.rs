//! Looking inside a running scheduler: goroutine dumps (`goro::dump()`,
//! SIGQUIT when asked for), Go's `schedtrace` line (`GORO_SCHEDTRACE=<ms>[,detail]`), and
//! deadlock detection ("all goroutines are asleep").
//!
//! Deadlock: when every P is idle and every live G is waiting on something
//! only another G could wake (a channel, a `sync`
//! primitive, a join, a nil channel), with no timer pending, no G in a
//! syscall and nothing registered with the poller, *and no thread in the
//! process that the runtime cannot account for* (which may hold a handle
//! cloned in a G and moved out, and wake a G later), and that picture is
//! unchanged across two sysmon rounds, the runtime prints `fatal error: all
//! goroutines are asleep - deadlock!` and the dump. It reports only what it
//! can prove: a correct program is never killed. `goro::run` then exits the
//! process with status 2, as Go does; `Runtime::try_block_on` returns
//! `Err(Deadlock)` and `block_on` panics with that message.
//!
//! The SIGQUIT dump is opt-in (`GORO_SIGQUIT=1`, `sigquit_dump`) and chains
//! to the application's own handler.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::g::{GStatus, G};
use crate::p::PStatus;
use crate::sched::{Sched, NO_P};

/// What deadlock detection found, and whom it tells.
#[derive(Default)]
pub(crate) struct DeadlockState {
    /// Set once sysmon found every G asleep with nothing to wake them.
    pub(crate) found: AtomicBool,
    /// `goro::run`: exit the process with status 2 on deadlock, as Go does.
    pub(crate) exit_process: AtomicBool,
    /// Plain threads blocked in `block_on`, woken on deadlock, and their
    /// kernel thread ids (deadlock detection accounts for them: they wait
    /// for a G of this runtime).
    pub(crate) watchers: Mutex<Vec<(crate::park::Unparker, i32)>>,
}

fn fmt_wait(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 60.0 {
        format!("{} minutes", (s / 60.0) as u64)
    } else if s >= 1.0 {
        format!("{s:.1}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A goroutine dump, Go's format without stacks: one paragraph per G.
pub(crate) fn goroutines(s: &Sched) -> String {
    goroutines_where(s, |_| true)
}

/// [`goroutines`] of the Gs `keep` picks.
pub(crate) fn goroutines_where(s: &Sched, keep: impl Fn(&G) -> bool) -> String {
    let now = s.clock.coarse_now().max(s.now_nanos());
    let mut gs = s.all_gs();
    gs.retain(|g| keep(g));
    gs.sort_by_key(|g| g.id());
    let mut out = String::new();
    for g in gs {
        let _ = writeln!(out, "goroutine {} [{}]:", g.id(), describe(&g, now));
        if let Some(n) = g.name() {
            let _ = writeln!(out, "\tname: {n}");
        }
        let _ = writeln!(out, "\tcreated by {}\n", g.spawn_site());
    }
    out
}

/// Go's `schedtrace` line, plus per-P, per-M and per-G lines with `detail`.
pub(crate) fn schedtrace(s: &Sched, detail: bool) -> String {
    let st = crate::stats::collect(s);
    let mut out = format!(
        "SCHED {}ms: procs={} idleprocs={} threads={} spinningthreads={} idlethreads={} runqueue={} [",
        st.uptime.as_millis(),
        st.procs,
        st.idle_procs,
        st.threads,
        st.spinning_threads,
        st.idle_threads,
        st.global_queue
    );
    let qs: Vec<String> = st.per_p.iter().map(|p| p.local_queue.to_string()).collect();
    out.push_str(&qs.join(" "));
    out.push_str("]\n");
    if !detail {
        return out;
    }
    let ms = s.ms.all();
    for (i, p) in s.ps.iter().enumerate() {
        let m = ms.iter().find(|m| m.cur_p.load(Ordering::Relaxed) == i).map_or(-1, |m| m.id as i64);
        let _ = writeln!(
            out,
            "  P{i}: status={} schedtick={} syscalltick={} m={m} runqsize={} timer_next={}",
            p.status() as u8,
            p.schedtick.load(Ordering::Relaxed),
            p.syscalltick.load(Ordering::Relaxed),
            p.queue_len(),
            match p.timer_next.load(Ordering::Relaxed) {
                u64::MAX => "none".to_string(),
                t => format!("{}ms", t / 1_000_000),
            }
        );
    }
    for m in &ms {
        let p = m.cur_p.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "  M{}: p={} curg={} spinning={}",
            m.id,
            if p == NO_P { -1 } else { p as i64 },
            m.cur_g.load(Ordering::Relaxed),
            m.spinning.load(Ordering::Relaxed)
        );
    }
    let now = s.now_nanos();
    let mut gs = s.all_gs();
    gs.sort_by_key(|g| g.id());
    for g in gs {
        let m = ms.iter().find(|m| m.cur_g.load(Ordering::Relaxed) == g.id()).map_or(-1, |m| m.id as i64);
        let _ = writeln!(out, "  G{}: status={}({}) m={m}", g.id(), g.status() as u8, describe(&g, now));
    }
    out
}

/// One deadlock check (sysmon). Returns true once a deadlock is
/// confirmed (`stable` is sysmon's memory between rounds).
pub(crate) fn check_deadlock(s: &Sched, stable: &mut Option<u64>) -> bool {
    if s.deadlock.found.load(Ordering::Relaxed) || s.shutdown.started() {
        return false;
    }
    let quiet = s.ps.iter().all(|p| p.status() == PStatus::Idle)
        && s.global_queue_len() == 0
        && crate::synctest::ADVANCING.load(Ordering::SeqCst) == 0;
    if !quiet || s.poller.has_waiters() || s.ps.iter().any(|p| p.timer_next.load(Ordering::SeqCst) != u64::MAX) {
        *stable = None;
        return false;
    }
    let gs = s.all_gs();
    if gs.is_empty()
        || !gs.iter().all(|g| g.status() == GStatus::Waiting && !g.wait_external.load(Ordering::Acquire))
        || !no_thread_outside(s)
    {
        *stable = None;
        return false;
    }
    // Everything asleep; confirm it did not change since the last round.
    let sig: u64 =
        s.ps.iter()
            .map(|p| {
                p.counters.scheduled.load(Ordering::Relaxed)
                    + p.counters.unparks.load(Ordering::Relaxed)
                    + p.counters.spawned.load(Ordering::Relaxed)
            })
            .sum::<u64>()
            + s.counters.external_readies.load(Ordering::Relaxed);
    match *stable {
        Some(s) if s == sig => true,
        _ => {
            *stable = Some(sig);
            false
        }
    }
}

/// Whether every thread of the process is one this runtime accounts for:
/// its Ms and sysmon, the threads blocked in its `block_on` (they wait
/// for its main G), and the global runtime's threads while that one has
/// nothing pending. Any other thread (a `std::thread`, another runtime's
/// M, a library's worker) may hold a handle to what the Gs wait on — a
/// channel clone moved out of a G, a `Mutex` it will unlock, a
/// `WaitGroup` it will finish — and wake them: then nothing is proven.
/// Read from `/proc/self/task`, only when every G already sleeps.
fn no_thread_outside(s: &Sched) -> bool {
    let mut known: Vec<i32> = s.ms.all().iter().map(|m| m.tid.load(Ordering::Relaxed)).collect();
    known.push(s.sysmon.tid.load(Ordering::Relaxed));
    known.extend(s.deadlock.watchers.lock().unwrap().iter().map(|(_, t)| *t));
    for other in RUNTIMES.lock().unwrap().iter().filter_map(Weak::upgrade) {
        if std::ptr::eq(&*other, s) || other.shutdown.started() {
            // Ourselves, or a runtime whose threads have all ended.
            continue;
        }
        // Another runtime's threads count as ours only if it is the
        // global one (which runs no user G) and is idle with nothing
        // pending: no timer or socket of a plain thread's.
        if !crate::runtime::is_global(&other) || !is_idle_and_empty(&other) {
            return false;
        }
        known.extend(other.ms.all().iter().map(|m| m.tid.load(Ordering::Relaxed)));
        known.push(other.sysmon.tid.load(Ordering::Relaxed));
    }
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return false };
    tasks.into_iter().all(|t| {
        t.ok()
            .and_then(|t| t.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
            .is_some_and(|tid| known.contains(&tid))
    })
}

/// No G, no queued work, no timer and no socket waiter.
fn is_idle_and_empty(s: &Sched) -> bool {
    s.ps.iter().all(|p| p.status() == PStatus::Idle && p.timer_next.load(Ordering::SeqCst) == u64::MAX)
        && s.global_queue_len() == 0
        && !s.poller.has_waiters()
        && s.all_gs().is_empty()
}

/// Reports a confirmed deadlock: message and dump on stderr, then exit
/// (`goro::run`) or wake the `block_on` callers.
pub(crate) fn report_deadlock(s: &Sched) {
    s.deadlock.found.store(true, Ordering::SeqCst);
    eprintln!("fatal error: all goroutines are asleep - deadlock!\n\n{}", goroutines(s));
    if s.deadlock.exit_process.load(Ordering::SeqCst) {
        crate::trace::finish(&s.tracer, s.ms.created());
        std::process::exit(2);
    }
    for (u, _) in s.deadlock.watchers.lock().unwrap().iter() {
        u.unpark();
    }
}

fn describe(g: &G, now: u64) -> String {
    match g.status() {
        GStatus::Waiting | GStatus::Syscall => {
            let waited = Duration::from_nanos(now.saturating_sub(g.wait_since.load(Ordering::Relaxed)));
            let reason = if g.status() == GStatus::Syscall { "syscall" } else { g.wait_reason().as_str() };
            if waited >= Duration::from_millis(1) {
                format!("{reason}, {}", fmt_wait(waited))
            } else {
                reason.to_string()
            }
        }
        s => s.as_str().to_string(),
    }
}

/// Every runtime of the process, for SIGQUIT dumps.
static RUNTIMES: Mutex<Vec<Weak<Sched>>> = Mutex::new(Vec::new());
static SIGQUIT: AtomicBool = AtomicBool::new(false);

/// `sigquit_dump`: install the SIGQUIT dump (also: `GORO_SIGQUIT=1`).
pub(crate) fn register(s: &Arc<Sched>, sigquit_dump: bool) {
    let mut v = RUNTIMES.lock().unwrap();
    v.retain(|w| w.strong_count() > 0);
    v.push(Arc::downgrade(s));
    drop(v);
    if sigquit_dump || crate::runtime::env_flag("GORO_SIGQUIT") {
        install_sigquit();
    }
}

/// The SIGQUIT disposition before goro's (`sa_sigaction`, `sa_flags`),
/// written once before the handler is installed.
static OLD_QUIT: std::sync::OnceLock<(usize, libc::c_int)> = std::sync::OnceLock::new();

/// A library does not take the process over: the dump is opt-in, and a
/// handler the application had keeps running (goro's dump comes first, and
/// the process then goes on instead of exiting).
fn install_sigquit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        extern "C" fn on_sigquit(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
            // Async-signal-safe: an atomic store; sysmon does the work.
            SIGQUIT.store(true, Ordering::SeqCst);
            if let Some(&(h, flags)) = OLD_QUIT.get() {
                if h != libc::SIG_DFL && h != libc::SIG_IGN {
                    // SAFETY: `h` is the handler the application installed
                    // for this signal, called as it asked to be.
                    unsafe {
                        if flags & libc::SA_SIGINFO != 0 {
                            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                                std::mem::transmute(h);
                            f(sig, info, ctx);
                        } else {
                            let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
                            f(sig);
                        }
                    }
                }
            }
        }
        // SAFETY: reads the current disposition, then installs a handler
        // that stores to an atomic and calls the previous handler.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGQUIT, std::ptr::null(), &mut old);
            let _ = OLD_QUIT.set((old.sa_sigaction, old.sa_flags));
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigquit as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGQUIT, &sa, std::ptr::null_mut());
        }
    });
}

/// Called by every sysmon round: on SIGQUIT, dump every runtime; then exit
/// with status 2 (Go's behaviour) unless the application had a SIGQUIT
/// handler of its own, which has run.
pub(crate) fn check_sigquit() {
    if !SIGQUIT.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = String::from("SIGQUIT: quit\n\n");
    for s in RUNTIMES.lock().unwrap().iter().filter_map(Weak::upgrade) {
        let _ = writeln!(out, "runtime {:?}:\n{}", s.name(), goroutines(&s));
    }
    eprint!("{out}");
    if OLD_QUIT.get().is_none_or(|&(h, _)| h == libc::SIG_DFL) {
        std::process::exit(2);
    }
}

/// Finishes the trace of every live runtime when the process exits
/// (`exit`, or `main` returning) without dropping them: a runtime kept for
/// the whole run, a deadlock or SIGQUIT exit. Registered once.
pub(crate) fn finish_traces_at_exit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn at_exit() {
        // Never wait on a lock at exit: another thread may hold it.
        let Ok(v) = RUNTIMES.try_lock() else { return };
        let live: Vec<Arc<Sched>> = v.iter().filter_map(Weak::upgrade).collect();
        drop(v);
        for s in live {
            crate::trace::finish(&s.tracer, s.ms.created());
        }
    }
    ONCE.call_once(|| {
        // SAFETY: registers a function with the C runtime's exit handlers.
        unsafe { libc::atexit(at_exit) };
    });
}

/// A goroutine dump of the runtime the caller runs on (the global one
/// outside any runtime): id, state, wait reason and time, name, spawn site.
pub fn dump() -> String {
    goroutines(&crate::m::current_sched().unwrap_or_else(crate::runtime::global_sched))
}
