//! What happens when a G blocks in a system call (Go's `entersyscall`,
//! `exitsyscall`, `entersyscallblock`, `handoffp`), and when sysmon takes the
//! P of a G that hogs it.
//!
//! `goro::syscall(f)`: the G keeps its M and runs `f` on it; the P stays
//! attached but is marked `Syscall`, and the M promises not to touch it.
//! sysmon retakes a P that has been in a syscall longer than
//! `Policy::syscall_retake` (CAS `Syscall` → `Idle`) and hands it to another
//! M (`handoffp`), so the P's other Gs keep running. On return,
//! `exitsyscall` tries the CAS back to `Running` (fast path: the P was not
//! taken), else takes any idle P, else queues the G on the global queue and
//! stops the M (`Switch::NeedP`).
//!
//! `goro::blocking(f)`: the same, but the P is handed off at once.
//!
//! A G that runs too long without telling the runtime (a loop, or a
//! blocking call goro does not know about) has its P taken by sysmon the
//! same way: that is `hog.rs`; such a G, back in the runtime, gets a P here
//! (`reacquire_after_takeover`) as a G returning from a syscall does.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use crate::g::{GStatus, Switch, WaitReason, G};
use crate::m::{self, MCtx};
use crate::p::PStatus;
use crate::sched::NO_P;
use crate::stats::{Counters, SchedCounters};

/// Runs a blocking call `f` from a G. If it lasts longer than the retake
/// threshold (`Policy::syscall_retake`, Go's 20 µs), sysmon hands the G's P
/// to another M so the P's other Gs keep running. Outside a G, just calls `f`.
///
/// ```
/// // SAFETY: the G keeps no thread-local state across switch points.
/// let n = unsafe { goro_runtime::run(|| goro_runtime::syscall(|| std::fs::read_dir(".").map(|d| d.count()))) };
/// assert!(n.unwrap() > 0);
/// ```
pub fn syscall<R>(f: impl FnOnce() -> R) -> R {
    run_syscall(f, false)
}

/// Like [`syscall`], for a call known to block for long: the P is handed to
/// another M at once (Go's `entersyscallblock`).
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    run_syscall(f, true)
}

fn run_syscall<R>(f: impl FnOnce() -> R, block: bool) -> R {
    let p = if m::in_goroutine() { entersyscall(block) } else { None };
    let Some(p) = p else {
        // A plain thread, or already in a syscall (nested): just call.
        return f();
    };
    // A panic in `f` must not unwind through a possible switch to another
    // thread in `exitsyscall` (the panic count is per thread): catch it,
    // exit the syscall, then resume it.
    let r = catch_unwind(AssertUnwindSafe(f));
    exitsyscall(p);
    m::back_to_user();
    match r {
        Ok(v) => v,
        Err(p) => resume_unwind(p),
    }
}

fn with_ctx<R>(f: impl FnOnce(&MCtx) -> R) -> R {
    let c = m::ctx_ptr();
    debug_assert!(!c.is_null());
    // SAFETY: in a G, the context is the live MCtx of this thread; it is not
    // kept past a switch (callers re-read it).
    f(unsafe { &*c })
}

/// Returns the P the G leaves for the call (for `exitsyscall`), or `None`
/// (doing nothing) if the M holds no P: the G is already inside a syscall.
/// The P travels on the caller's stack, so syscalls nest and a G may park
/// inside one and come back on another M.
fn entersyscall(block: bool) -> Option<usize> {
    m::reacquire_p_then_ctx();
    with_ctx(|c| {
        let sched = &c.sched;
        let p = c.p.get();
        if p == NO_P {
            return None;
        }
        // SAFETY: the current G is alive while it runs.
        let g: &G = unsafe { &*c.curg.get() };
        let pp = &sched.ps[p];
        g.set_status(GStatus::Syscall);
        g.wait_reason.store(WaitReason::Syscall as u8, Ordering::Relaxed);
        g.wait_since.store(sched.clock.coarse_now(), Ordering::Relaxed);
        Counters::bump(&pp.counters.syscalls);
        pp.syscalltick.store(pp.syscalltick.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        c.p.set(NO_P);
        c.m.cur_p.store(NO_P, Ordering::Relaxed);
        // Owner-only store (the P is Running, ours): keeps the generation.
        let w = pp.status.load(Ordering::Relaxed);
        pp.status.store(PStatus::Syscall.in_word(w), Ordering::SeqCst);
        crate::trace::instant(
            &sched.tracer,
            "syscall enter",
            format_args!(r#""g":{},"p":{p},"blocking":{block}"#, g.id()),
        );
        if block {
            if pp.cas_status(PStatus::Syscall, PStatus::Idle) {
                SchedCounters::bump(&sched.counters.handoffs);
                crate::trace::instant(&sched.tracer, "handoff", format_args!(r#""p":{p}"#));
                sched.handoffp(p);
            }
        } else {
            sched.sysmon.kick();
        }
        Some(p)
    })
}

/// `p`: what `entersyscall` returned.
fn exitsyscall(p: usize) {
    let got = with_ctx(|c| {
        let sched = &c.sched;
        // SAFETY: the current G is alive while it runs.
        let g: &G = unsafe { &*c.curg.get() };
        let pp = &sched.ps[p];
        crate::trace::instant(&sched.tracer, "syscall exit", format_args!(r#""g":{},"p":{p}"#, g.id()));
        if c.p.get() != NO_P {
            // The G parked inside `f` and came back on an M with a P: it
            // keeps that one; give up the syscall P if nobody retook it.
            if pp.cas_status(PStatus::Syscall, PStatus::Idle) {
                sched.handoffp(p);
            }
            g.set_status(GStatus::Running);
            return true;
        }
        if let Some(word) = pp.take_from(PStatus::Syscall) {
            // Fast path: nobody took the P.
            c.p_word.set(word);
            c.pp.set(pp);
            c.p.set(p);
            c.m.cur_p.store(p, Ordering::Relaxed);
            Counters::bump(&pp.counters.syscall_fast_exits);
            g.set_status(GStatus::Running);
            return true;
        }
        acquire_idle_p(c, Some(p))
    });
    if !got {
        // No P anywhere: queue the G, stop the M; we resume with a P.
        wait_for_p();
    }
    with_ctx(|c| {
        // SAFETY: as above.
        unsafe { &*c.curg.get() }.set_status(GStatus::Running);
    });
}

/// Takes an idle P (preferring `prefer`) for the M of the current G.
fn acquire_idle_p(c: &MCtx, prefer: Option<usize>) -> bool {
    match c.sched.pidleget_prefer(prefer) {
        Some(p) => {
            c.sched.acquirep(c, p);
            true
        }
        None => false,
    }
}

/// A G whose P sysmon took while it ran user code (`hog.rs`) is back in
/// the runtime: it gets an idle P, or waits for one like a G returning
/// from a system call (it may resume on another M: callers re-read the
/// thread context afterwards).
#[cold]
pub(crate) fn reacquire_after_takeover(c: &MCtx) {
    if !acquire_idle_p(c, None) {
        wait_for_p();
    }
}

/// Switches the G out with no P to come back to: `execute` queues it
/// globally and it resumes on whichever M takes it (not
/// `m::switch_out`, which would first try to reacquire the P: that is
/// what failed).
fn wait_for_p() {
    // SAFETY: called from the running G (`exitsyscall`, `reacquire_slow`),
    // on its own stack.
    unsafe { m::switch_out_of(m::current_g_ptr(), Switch::NeedP) }
}
