//! The atomics of hog handoff's takeover (`hog.rs` has the why and the
//! callers): the owner's runtime entry and exit, and sysmon's takeover,
//! on a P's status word and its `user.tick`. Standalone so that loom can
//! model it (`tests/loom_hog.rs`); status words come in as arguments.

use crate::atomic::{light_barrier, AtomicU32, AtomicU64, Ordering};

/// The owner: its G is about to run user code (tick odd and new).
#[inline]
pub(crate) fn owner_leave(tick: &AtomicU32) {
    let t = tick.load(Ordering::Relaxed);
    // Release: sysmon's Acquire load of this value orders everything the
    // owner did with the P before a handoff that may follow.
    tick.store(t.wrapping_add(2) | 1, Ordering::Release);
}

/// The owner, at a runtime entry after `owner_leave`: whether it still
/// holds the P whose status word it acquired as `mine` (state Running).
/// `takeover`: `mine` in state Takeover.
#[inline]
pub(crate) fn owner_enter(status: &AtomicU64, tick: &AtomicU32, mine: u64, takeover: u64) -> bool {
    // A P already taken (and perhaps running for another M) is not ours to
    // mark: an even tick from us would hide that M's G from sysmon. (Only
    // an OS preemption between this load and the store below can still
    // let a stale mark through; it can only delay a takeover.)
    let now = status.load(Ordering::Relaxed);
    if now != mine && now != takeover {
        return false;
    }
    let t = tick.load(Ordering::Relaxed);
    tick.store(t.wrapping_add(1) & !1, Ordering::Relaxed);
    // The light side of the barrier: sysmon's process-wide barrier makes
    // it a full fence.
    light_barrier();
    if status.load(Ordering::Relaxed) == mine {
        return true;
    }
    owner_enter_slow(status, mine, takeover)
}

#[cold]
fn owner_enter_slow(status: &AtomicU64, mine: u64, takeover: u64) -> bool {
    // sysmon is taking the P: take it back, unless it has finished. If
    // sysmon gave it back first, the word is ours again.
    match status.compare_exchange(takeover, mine, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => true,
        Err(now) => now == mine,
    }
}

/// sysmon: takes the P whose status word is `running` (state Running)
/// from an owner whose tick has stayed at `seen` (odd). `takeover` and
/// `idle` are the same word in states Takeover and Idle; `barrier` is the
/// heavy side (`false` if it could not be made). `true`: the P is idle
/// and the caller hands it off.
pub(crate) fn sysmon_take(
    status: &AtomicU64,
    tick: &AtomicU32,
    seen: u32,
    running: u64,
    takeover: u64,
    idle: u64,
    barrier: impl FnOnce() -> bool,
) -> bool {
    if status.compare_exchange(running, takeover, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return false;
    }
    if !barrier() || tick.load(Ordering::Acquire) != seen {
        // The owner came back (or no barrier could be made): give the P
        // back, unless the owner took it back itself.
        let _ = status.compare_exchange(takeover, running, Ordering::AcqRel, Ordering::Relaxed);
        return false;
    }
    status.compare_exchange(takeover, idle, Ordering::AcqRel, Ordering::Acquire).is_ok()
}

/// A new owner takes an idle P (`P::acquire`): the tick goes even first (a
/// P taken from a hog keeps its odd tick), then the status word of the
/// next generation, state `running` (low byte), is published with
/// Release; sysmon, seeing that word, sees the even tick and leaves the
/// P alone. Returns the owner's word.
pub(crate) fn acquire(status: &AtomicU64, tick: &AtomicU32, running: u64) -> u64 {
    let t = tick.load(Ordering::Relaxed);
    if t & 1 == 1 {
        tick.store(t.wrapping_add(1), Ordering::Relaxed);
    }
    let next = next_generation(status.load(Ordering::Relaxed), running);
    status.store(next, Ordering::Release);
    next
}

/// Status word `w`'s next generation, in state `running` (an owner's word).
#[inline]
pub(crate) fn next_generation(w: u64, running: u64) -> u64 {
    ((w >> 8).wrapping_add(1) << 8) | running
}
