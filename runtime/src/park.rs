//! Park and unpark: the one way anything in goro waits (Go's `gopark` and
//! `goready`).
//!
//! The contract is std's `thread::park` token: `park` returns at once if an
//! `unpark` came since the last `park` returned, and may also return
//! spuriously, so callers loop on their own condition:
//!
//! ```ignore
//! while !done.load(Acquire) { park(WaitReason::ChanReceive) }
//! ```
//!
//! Inside a G, `park` switches to the scheduler and the G's M runs other Gs;
//! outside a G (a plain thread, a scheduler stack), it blocks the OS thread.
//!
//! The G's token is a three-state atomic (`g.park`):
//! - `EMPTY` → `NOTIFIED` by `unpark` when the G is running: the next `park`
//!   consumes the token and returns at once.
//! - `EMPTY` → `PARKED` by the G's M *after* the switch (in `sched.rs`), so
//!   an unpark between "decided to park" and "switched out" is never lost:
//!   the M's CAS fails and it resumes the G at once.
//! - `PARKED` → `EMPTY` by `unpark`, which then readies the G (exactly once).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::Thread;
use std::time::Instant;

use crate::g::{GStatus, Switch, WaitReason, G};
use crate::m;
use crate::sched::Sched;
use crate::timer::{add_timer, TimerAction};

/// A handle that makes a parked G (or thread) runnable again. Cheap to
/// clone; may be used from any thread.
#[derive(Clone)]
pub struct Unparker {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    G(Arc<G>),
    Thread(Thread),
    Waker(std::task::Waker),
}

impl Unparker {
    /// Makes the G runnable if it is parked, or makes its next `park`
    /// return at once.
    pub fn unpark(&self) {
        match &self.inner {
            Inner::G(g) => {
                if unpark_g(g) {
                    Sched::ready_g(g.clone(), true);
                }
            }
            Inner::Thread(t) => t.unpark(),
            Inner::Waker(w) => w.wake_by_ref(),
        }
    }

    /// An unparker that wakes a future's task (for future adapters over
    /// goro's primitives).
    pub fn from_waker(w: std::task::Waker) -> Unparker {
        Unparker { inner: Inner::Waker(w) }
    }

    /// Like `unpark`, consuming the handle: its reference to the G becomes
    /// the run queue's (no reference-count traffic).
    pub fn unpark_owned(self) {
        match self.inner {
            Inner::G(g) => {
                if unpark_g(&g) {
                    Sched::ready_g(g, true);
                }
            }
            Inner::Thread(t) => t.unpark(),
            Inner::Waker(w) => w.wake(),
        }
    }

    /// The G behind this handle if it belongs to a synctest bubble.
    pub(crate) fn bubble_g(&self) -> Option<&Arc<G>> {
        match &self.inner {
            Inner::G(g) if g.bubble().is_some() => Some(g),
            _ => None,
        }
    }

    /// The G id behind this handle, `None` for a plain thread.
    pub fn goroutine_id(&self) -> Option<u64> {
        match &self.inner {
            Inner::G(g) => Some(g.id()),
            Inner::Thread(_) | Inner::Waker(_) => None,
        }
    }

    /// Whether both handles wake the same G or thread.
    pub fn same(&self, other: &Unparker) -> bool {
        match (&self.inner, &other.inner) {
            (Inner::G(a), Inner::G(b)) => Arc::ptr_eq(a, b),
            (Inner::Thread(a), Inner::Thread(b)) => a.id() == b.id(),
            (Inner::Waker(a), Inner::Waker(b)) => a.will_wake(b),
            _ => false,
        }
    }
}

/// The park token's unpark, under the bubble's lock for a G of a synctest
/// bubble (which counts its durably blocked Gs). `true`: ready the G.
#[inline]
fn unpark_g(g: &G) -> bool {
    match g.bubble() {
        None => g.park.unpark(),
        Some(b) => b.unpark(g),
    }
}

/// The handle that wakes the caller: its G, or its thread outside a G.
pub fn current_unparker() -> Unparker {
    match m::current_g() {
        Some(g) => Unparker { inner: Inner::G(g) },
        None => Unparker { inner: Inner::Thread(std::thread::current()) },
    }
}

/// Parks the caller until unparked (or spuriously). See the module docs.
/// For deadlock detection, the G counts as wakeable from outside the
/// runtime (`WokenBy::AnyThread`).
pub fn park(reason: WaitReason) {
    park_woken_by(reason, WokenBy::AnyThread)
}

/// Who may unpark a parked G, as deadlock detection must assume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WokenBy {
    /// Any thread of the process: the G is never counted as deadlocked.
    AnyThread,
    /// Only Gs of the G's runtime, its timers or its poller, or a thread
    /// outside the runtime holding a handle: e.g. a channel. A runtime
    /// whose Gs all wait like this, with nothing pending and no thread
    /// outside it in the process, is deadlocked.
    RuntimeOnly,
    /// Only Gs of the parking G's synctest bubble, or the bubble's timers:
    /// the G is durably blocked (`synctest.rs`), and to deadlock detection
    /// it is `RuntimeOnly`. Outside a bubble, the same as `RuntimeOnly`.
    Bubble,
}

/// [`park`], telling deadlock detection who may wake the G.
pub fn park_woken_by(reason: WaitReason, by: WokenBy) {
    let external = by == WokenBy::AnyThread;
    let durable = by == WokenBy::Bubble;
    // One thread-local read: the M keeps its P (hog handoff) before the G
    // switches out, and the G is found from the same context.
    let gp = m::reacquire_p_then_current_g();
    if gp.is_null() {
        std::thread::park();
        return;
    }
    // SAFETY: the current G is alive while it runs.
    let g: &G = unsafe { &*gp };
    if g.park.try_consume() {
        // Unparked already: no switch, so the section ends here.
        m::back_to_user();
        return;
    }
    g.wait_reason.store(reason as u8, Ordering::Relaxed);
    g.wait_external.store(external, Ordering::Release);
    if g.bubble().is_some() {
        g.durable.store(durable, Ordering::Relaxed);
    }
    g.wait_since.store(g.sched.clock.coarse_now(), Ordering::Relaxed);
    g.set_status(GStatus::Waiting);
    // SAFETY: `gp` is the G running on this thread, on whose stack we are.
    unsafe { m::switch_out_of(gp, Switch::Park) };
}

/// Parks until unparked, or until `deadline` has passed. Returns `false` if
/// the deadline passed (the caller re-checks its condition either way).
/// Inside a synctest bubble the deadline is on the bubble's clock, and the
/// wait is durable (the clock ends it at the latest).
pub fn park_until(reason: WaitReason, deadline: Instant) -> bool {
    let by = if crate::synctest::current_bubble_id() != 0 { WokenBy::Bubble } else { WokenBy::AnyThread };
    park_until_woken_by(reason, deadline, by)
}

/// [`park_until`], telling deadlock detection (and a synctest bubble) who
/// may wake the G besides the timer.
pub fn park_until_woken_by(reason: WaitReason, deadline: Instant, by: WokenBy) -> bool {
    park_until_on(reason, deadline, by, false)
}

/// [`park_until`] with `deadline` on the real clock, also inside a
/// synctest bubble: a wait on the world outside (a socket deadline, as
/// Go's), which a bubble's clock, standing still meanwhile, would never
/// end.
pub fn park_until_real(reason: WaitReason, deadline: Instant) -> bool {
    park_until_on(reason, deadline, WokenBy::AnyThread, true)
}

/// `park_until` with the deadline on the real clock (`real`) or the
/// caller's (a synctest bubble's inside one). A plain thread has only the
/// real one.
fn park_until_on(reason: WaitReason, deadline: Instant, by: WokenBy, real: bool) -> bool {
    if !m::in_goroutine() {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::park_timeout(deadline - now);
        return Instant::now() < deadline;
    }
    let now = if real { Instant::now() } else { crate::timer::now() };
    if now >= deadline {
        return false;
    }
    let wake = TimerAction::Wake(current_unparker());
    let t = if real { crate::timer::add_real_timer(deadline, wake) } else { add_timer(deadline, wake) };
    park_woken_by(reason, by);
    !t.fired() && t.cancel()
}

impl std::fmt::Debug for Unparker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unparker").finish_non_exhaustive()
    }
}
