//! Wiring a G to its M: Go's `runtime.LockOSThread`, and the same wiring
//! while a G unwinds.
//!
//! A G normally resumes on whichever M takes it from a run queue. A G wired
//! to an M (`g.lockedm`, `MCtx::lockedg`) only ever runs on that M, and that
//! M runs no other G meanwhile:
//!
//! - when the wired G switches out (parks, yields, is preempted, loses its P
//!   in a syscall), its M gives its P away (`handoffp`) and sleeps in
//!   [`Sched::stoplockedm`] instead of scheduling;
//! - whichever M later takes the G from a run queue does not run it: it hands
//!   its own P and the G to the wired M and stops ([`Sched::startlockedm`]);
//! - a G that exits while locked ends its M's thread, so thread state it
//!   changed never leaks into other Gs (Go's `mexit`).
//!
//! The runtime wires a G for its own reason too: a G that switches while it
//! unwinds (a `Drop` that parks during a panic) comes back on the same
//! thread, because the panic count and the unwinder's state are per thread
//! (`m::switch_out_of`).
//!
//! Cost for Gs that never lock: one load of `g.lockedm` per schedule, and
//! one of `MCtx::lockedg` after each run.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use crate::g::{GStatus, G};
use crate::m::{self, MCtx, M};
use crate::sched::{Sched, NO_P};

/// Wires the calling G to its current OS thread (Go's
/// `runtime.LockOSThread`): until a matching [`unlock_os_thread`], the G
/// runs only on this thread and the thread runs no other G. Thread-local
/// state (`thread_local!`, `Rc`s kept in one, thread-affine C libraries) is
/// then sound to keep across channel operations and other switch points.
///
/// Calls nest: the G is unwired after as many `unlock_os_thread` calls as
/// there were `lock_os_thread` calls. While the wired G blocks, its P goes
/// to another thread, so the other Gs keep running. A G that exits while
/// locked ends its thread, as in Go. On a plain thread (outside any G) this
/// does nothing: a plain thread never changes.
///
/// ```
/// use std::cell::Cell;
/// thread_local!(static COUNT: Cell<u32> = const { Cell::new(0) });
///
/// // SAFETY: the Gs below keep thread-local state across switch points
/// // only while locked to their thread.
/// let n = unsafe {
///     goro_runtime::run(|| {
///         goro_runtime::lock_os_thread();
///         for _ in 0..10 {
///             COUNT.with(|c| c.set(c.get() + 1));
///             goro_runtime::yield_now(); // comes back on the same thread
///         }
///         let n = COUNT.with(|c| c.get());
///         goro_runtime::unlock_os_thread();
///         n
///     })
/// };
/// assert_eq!(n, 10);
/// ```
pub fn lock_os_thread() {
    let Some((c, g)) = running() else { return };
    let n = g.locked_ext.get().checked_add(1).expect("goro: lock_os_thread nested too deeply (u32 overflow)");
    g.locked_ext.set(n);
    wire(c, g);
}

/// Undoes one [`lock_os_thread`]; when none is left, the G may move to
/// other threads again. Does nothing if the G is not locked (as Go).
pub fn unlock_os_thread() {
    let Some((c, g)) = running() else { return };
    let n = g.locked_ext.get();
    if n == 0 {
        return;
    }
    g.locked_ext.set(n - 1);
    unwire_if_free(c, g);
}

/// Whether the calling G is locked to its thread by [`lock_os_thread`]
/// (false on a plain thread).
pub fn is_locked_to_thread() -> bool {
    running().is_some_and(|(_, g)| g.locked_ext.get() > 0)
}

/// The running G and its M's context; `None` on a plain thread or a
/// scheduler stack.
fn running<'a>() -> Option<(&'a MCtx, &'a G)> {
    let c = m::ctx_ptr();
    if c.is_null() {
        return None;
    }
    // SAFETY: a non-null context is this thread's live MCtx, and its `curg`
    // the G running on this thread. Neither reference is kept past a switch:
    // callers use them before returning, with no switch point in between.
    unsafe {
        let g = (*c).curg.get();
        if g.is_null() {
            return None;
        }
        Some((&*c, &*g))
    }
}

/// Wires `g` to this M. `MCtx::lockedg` owns a reference to the G while it
/// is wired, so the M can always reach it (at shutdown too).
fn wire(c: &MCtx, g: &G) {
    g.lockedm.store(Arc::as_ptr(&c.m) as *mut M, Ordering::Relaxed);
    if c.lockedg.get().is_null() {
        // SAFETY: `g` is the running G, kept alive by its M's reference
        // while it runs; the count taken here is given back in `unwire`.
        unsafe { Arc::increment_strong_count(g) };
        c.lockedg.set(g);
    }
}

fn unwire_if_free(c: &MCtx, g: &G) {
    if g.locked_ext.get() == 0 && g.locked_int.get() == 0 {
        g.lockedm.store(std::ptr::null_mut(), Ordering::Relaxed);
        let wired = c.lockedg.replace(std::ptr::null());
        if !wired.is_null() {
            // SAFETY: the count `wire` took; the running G is still held by
            // its M's own reference, so this never frees it.
            unsafe { Arc::decrement_strong_count(wired) };
        }
    }
}

/// Wires the running G to its M for one switch (it is unwinding).
pub(crate) fn wire_internal() {
    if let Some((c, g)) = running() {
        g.locked_int.set(g.locked_int.get() + 1);
        wire(c, g);
    }
}

/// Undoes `wire_internal` once the G is back (on the same M).
pub(crate) fn unwire_internal() {
    if let Some((c, g)) = running() {
        g.locked_int.set(g.locked_int.get() - 1);
        unwire_if_free(c, g);
    }
}

/// The wired G `g` returned: unwire it, and end the M's thread if the G
/// had locked it (Go: a G that exits locked takes its thread with it).
pub(crate) fn exited(c: &MCtx, g: &G) {
    if c.lockedg.get().is_null() {
        return;
    }
    debug_assert!(std::ptr::eq(c.lockedg.get(), g), "the wired G is the one that ran");
    let user_locked = g.locked_ext.get() > 0;
    g.locked_ext.set(0);
    g.locked_int.set(0);
    unwire_if_free(c, g);
    c.exit_thread.set(user_locked);
}

/// Go's `stoplockedm`: the G wired to this M switched out. Gives the P
/// away and sleeps until the G is runnable and handed back with a P.
/// Returns that G, or `None` at shutdown (after unwinding the G on this
/// thread, where its destructors may expect to run).
pub(crate) fn stoplockedm(s: &Arc<Sched>, c: &MCtx) -> Option<Arc<G>> {
    let p = c.p.replace(NO_P);
    if p != NO_P {
        c.m.cur_p.store(NO_P, Ordering::Relaxed);
        s.handoffp(p);
    }
    loop {
        let p = c.m.nextp.swap(NO_P, Ordering::AcqRel);
        if p != NO_P {
            s.acquirep(c, p);
            let g = c.m.nextg.swap(std::ptr::null_mut(), Ordering::Acquire);
            debug_assert!(std::ptr::eq(g, c.lockedg.get()), "handed back the wired G");
            // SAFETY: `startlockedm` stored an `Arc::into_raw` pointer
            // before the Release store of `nextp` we acquired; the swap
            // made us its only owner.
            return Some(unsafe { Arc::from_raw(g) });
        }
        if s.shutdown.started() {
            drop_locked_g(c);
            return None;
        }
        thread::park();
    }
}

/// Shutdown while this M's wired G is switched out: unwind the G here,
/// on its own thread. No other M ever resumes a wired G, and the
/// shutdown thread leaves wired Gs to their M.
fn drop_locked_g(c: &MCtx) {
    // SAFETY: the reference `wire` took; it keeps the G alive here
    // whatever the registry and the run queues do meanwhile.
    let g = unsafe { Arc::from_raw(c.lockedg.replace(std::ptr::null())) };
    let handed = c.m.nextg.swap(std::ptr::null_mut(), Ordering::Acquire);
    if !handed.is_null() {
        // An M handed the G back as shutdown began: drop its reference.
        // SAFETY: `startlockedm` stored an `Arc::into_raw` pointer.
        drop(unsafe { Arc::from_raw(handed) });
    }
    // Shutdown leaves wired Gs to their M (`runtime::stop_sched`), and no M
    // runs a G after shutdown began; the token makes sure only one
    // claimant unwinds it. `lockedm` stays set, so an M that takes the
    // G from a queue late still hands it here (and the handoff is
    // dropped) instead of running it.
    if g.park.kill() {
        m::set_force_unwinding(true);
        // SAFETY: `kill` made us the G's only runner.
        unsafe { g.unwind_and_free() };
        m::set_force_unwinding(false);
        g.set_status(GStatus::Dead);
    }
}

/// Go's `startlockedm`: `g`, taken from a run queue, is wired to another
/// M. Hands it this M's P and the G; the caller then stops this M.
/// `lm`: the G's `lockedm`, as the caller loaded it (non-null).
pub(crate) fn startlockedm(c: &MCtx, g: Arc<G>, lm: *const M) {
    // SAFETY: a wired G's M is alive: it waits in `stoplockedm` for this
    // G (it cannot end while the G is wired and alive, or it is past
    // shutdown, where it still is in `Sched::ms`, which holds it).
    let lm = unsafe { &*lm };
    let p = c.p.replace(NO_P);
    c.m.cur_p.store(NO_P, Ordering::Relaxed);
    lm.nextg.store(Arc::into_raw(g) as *mut G, Ordering::Relaxed);
    lm.nextp.store(p, Ordering::Release);
    lm.wake();
}
