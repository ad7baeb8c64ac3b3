//! Running a G: `execute` switches to it, and when it switches back, what
//! follows depends on why (Go runs these on the scheduler stack with
//! `mcall`, and names them alike): it parked (`park_m`), yielded
//! (`goyield_m`), used up its time slice (`gopreempt_m`) or returned
//! (`goexit0`). Each copes with an M that lost its P while the G ran (a
//! syscall, or a hog handoff), and then the M goes back to `schedule`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::context::Resumed;
use crate::g::{GStatus, Switch, G};
use crate::m::MCtx;
use crate::sched::{Sched, NO_P, SAMPLE_MASK};
use crate::stats::{Counters, SchedCounters};

/// Go's `execute`: runs `g` on this M until it yields, parks or exits,
/// then puts it where it goes next. What runs after the switch is
/// named as in Go, for the code that runs on the scheduler stack
/// (`mcall`): `park_m`, `goyield_m`, `gopreempt_m`, `goexit0`. Each
/// copes with an M that lost its P while the G ran (a syscall, or a
/// hog handoff).
///
/// `#[inline]`: `schedule` → `execute` → switch is the loop every G
/// switch goes through; as a call of its own it made a channel ping-pong
/// 19% slower (A/B against the inlined version, procs = 1).
#[inline]
pub(crate) fn execute(s: &Sched, c: &MCtx, g: Arc<G>, inherit: bool) {
    let p = c.p.get();
    let pp = c.held_p();
    if !inherit {
        pp.schedtick.store(pp.schedtick.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        let f = pp.fair_tick.load(Ordering::Relaxed) + 1;
        pp.fair_tick.store(if f >= s.policy.global_queue_interval { 0 } else { f }, Ordering::Relaxed);
    }
    if pp.preempt.load(Ordering::Relaxed) {
        pp.preempt.store(false, Ordering::Relaxed);
    }
    let sample = pp.counters.scheduled.load(Ordering::Relaxed) & SAMPLE_MASK == 0;
    Counters::bump(&pp.counters.scheduled);
    let ready_at = g.ready_at.load(Ordering::Relaxed);
    let mut run_start = None;
    if ready_at != 0 || sample {
        let now = s.now_nanos();
        if ready_at != 0 {
            g.ready_at.store(0, Ordering::Relaxed);
            pp.sched_latency.record(now.saturating_sub(ready_at));
        }
        if sample {
            run_start = Some(now);
        }
    }
    if s.publish_m_state {
        c.m.cur_g.store(g.id(), Ordering::Relaxed);
    }
    let mut g = g;
    loop {
        g.set_status(GStatus::Running);
        c.curg.set(Arc::as_ptr(&g));
        let trace_start = s.tracer.as_ref().map(|t| {
            let ts = t.now_ns();
            let flow = g.flow_id.swap(0, Ordering::Relaxed);
            if flow != 0 {
                t.flow_end(&c.trace, c.m.id, flow, ts);
            }
            ts
        });
        // SAFETY: a runnable G's coroutine is touched only by the M that
        // dequeued it (us); a G that never ran gets one now.
        let co = match unsafe { &*g.co.get() } {
            Some(co) => co,
            None => {
                // SAFETY: we hold P `p`.
                if let Err(e) = s.gpool.gstart(unsafe { pp.local() }, &g) {
                    eprintln!("goro: goroutine {} cannot start: {e}", g.id());
                    c.curg.set(std::ptr::null());
                    goexit0(s, c, g);
                    return;
                }
                // SAFETY: as above; gstart just stored it.
                unsafe { (*g.co.get()).as_ref().expect("coroutine") }
            }
        };
        if s.policy.hog_handoff {
            // The G runs user code: sysmon may take the P (hog.rs).
            crate::hog::enter_user(c);
        }
        #[cfg(feature = "tracing")]
        let span = tracing::trace_span!("goroutine", id = g.id(), name = g.name()).entered();
        // SAFETY: the context lives in the G (behind its `Arc`, never
        // moved) from its first run until the G is done.
        let r = unsafe { co.resume() };
        #[cfg(feature = "tracing")]
        drop(span);
        c.curg.set(std::ptr::null());
        if s.shutdown.detached() {
            // Shutdown gave up on this M and freed what it could; the
            // G (and its stack) may be half-way through anything: leak it.
            std::mem::forget(g);
            return;
        }
        let ran = run_start.take().map(|start| s.now_nanos().saturating_sub(start));
        if let (Some(t), Some(start)) = (&s.tracer, trace_start) {
            t.run(&c.trace, c.m.id, c.m.cur_p.load(Ordering::Relaxed), g.id(), g.name(), start);
            if let Resumed::Yield(Switch::Park) = r {
                t.park(&c.trace, c.m.id, g.id(), g.wait_reason().as_str());
            }
        }
        if c.in_user.get() {
            // `false`: sysmon took the P while the G ran user code; `c.p`
            // is `NO_P` now and the G goes where an M with a P finds it.
            crate::hog::enter_runtime(c);
        }
        if let Some(ns) = ran {
            // Sampled run length, if this M still holds the P it started
            // on (histograms are written by the P's owner only).
            if c.p.get() == p {
                pp.run_time.record(ns);
            }
        }
        g = match r {
            Resumed::Yield(Switch::Park) => match park_m(s, c, g) {
                Some(g) => g,
                None => return,
            },
            Resumed::Yield(Switch::Yield) => return goyield_m(s, c, g),
            Resumed::Yield(Switch::Preempt | Switch::NeedP) => return gopreempt_m(s, c, g),
            Resumed::Return => {
                crate::lock_os_thread::exited(c, &g);
                return goexit0(s, c, g);
            }
        };
    }
}

/// Go's `park_m`: the G switched out to wait. Commits the park, after
/// which an unparker may run the G elsewhere (`None`); or gives the G
/// back to run on at once if it was unparked while switching out (the
/// token is consumed).
fn park_m(s: &Sched, c: &MCtx, g: Arc<G>) -> Option<Arc<G>> {
    let p = c.p.get();
    if p != NO_P {
        Counters::bump(&s.ps[p].counters.parks);
    }
    let parked = match g.bubble() {
        None => g.park.commit_park(),
        // Under the bubble's lock, which counts durable parks and may
        // advance its clock (synctest.rs).
        Some(b) => b.commit_park(&g),
    };
    if parked {
        return None;
    }
    Some(g)
}

/// Go's `goyield_m`: `yield_now`, to the tail of the P's local queue.
#[inline]
fn goyield_m(s: &Sched, c: &MCtx, g: Arc<G>) {
    let p = c.p.get();
    if p == NO_P {
        return requeue_without_p(s, c, g);
    }
    let pp = c.held_p();
    Counters::bump(&pp.counters.yields);
    g.set_status(GStatus::Runnable);
    s.runqput(pp, g, false);
}

/// Go's `gopreempt_m`: time slice used up (or the G needs a P it lost),
/// to the global queue, behind everything already waiting. Work put on
/// the global queue is submitted work (`idle.rs`, rule 1): an idle P must
/// be woken for it, or for what this P's M now leaves in its local queue
/// when it takes a batch of the global queue and runs on (Go's
/// `goschedImpl` calls `wakep` for the same reason).
fn gopreempt_m(s: &Sched, c: &MCtx, g: Arc<G>) {
    if c.p.get() == NO_P {
        return requeue_without_p(s, c, g);
    }
    g.set_status(GStatus::Runnable);
    s.globrunqput(g);
    c.sched.wakep();
}

/// A G switched out runnable on an M that lost its P (syscall or hog
/// handoff): it goes where an M with a P finds it.
fn requeue_without_p(s: &Sched, c: &MCtx, g: Arc<G>) {
    g.set_status(GStatus::Runnable);
    s.globrunqput(g);
    c.sched.wakep();
}

/// Go's `goexit0`: the G has exited (or could not start). Its stack
/// goes back to the P's cache (the shared pool without a P) and, unless
/// shutting down, the G waits on the P's free list for the next spawn. It
/// stays in its registry (`p.rs`) all the while: an exit takes no lock
/// (unless the G cannot be recycled).
fn goexit0(s: &Sched, c: &MCtx, g: Arc<G>) {
    g.set_status(GStatus::Dead);
    if let Some(b) = g.bubble() {
        b.g_exited();
    }
    let p = c.p.get();
    if p == NO_P {
        SchedCounters::bump(&s.counters.exits_without_p);
        s.gpool.gdestroy(None, &g);
        drop(g.leave_registry());
        return;
    }
    let pp = &s.ps[p];
    Counters::bump(&pp.counters.completed);
    // SAFETY: we hold P `p`.
    let local = unsafe { pp.local() };
    s.gpool.gdestroy(Some(local), &g);
    if s.shutdown.started() {
        // Freed, not kept: free lists hold the runtime alive.
        drop(g.leave_registry());
        return;
    }
    s.gpool.gfput(local, g);
}
