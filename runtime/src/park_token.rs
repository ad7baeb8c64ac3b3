//! The park token of a G: the lock-free state machine behind "no lost
//! wake-up" (see `park.rs`). Generic over nothing, compiled against
//! `crate::atomic` so the loom model (`tests/loom_park.rs`) checks this very
//! code.
//!
//! States: `EMPTY` (running, no token), `NOTIFIED` (running, an unpark is
//! pending), `PARKED` (switched out, waiting). Transitions:
//! - the G, before switching out: `NOTIFIED` → `EMPTY` means "return at once";
//! - its M, after the switch: `EMPTY` → `PARKED`; if that fails an unpark came
//!   in between: back to `EMPTY` and resume the G;
//! - an unparker: `EMPTY` → `NOTIFIED` (nothing else to do), or
//!   `PARKED` → `EMPTY` and the unparker readies the G (exactly one does);
//! - shutdown, for a G no M runs: any state → `DEAD` (`kill`, or
//!   `kill_parked` from `PARKED` only); unparks of a dead G do nothing.

use crate::atomic::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const NOTIFIED: u8 = 1;
const PARKED: u8 = 2;
/// Claimed by shutdown (`kill`): never readied again.
const DEAD: u8 = 3;

pub struct ParkToken(AtomicU8);

impl Default for ParkToken {
    fn default() -> Self {
        Self::new()
    }
}

impl ParkToken {
    pub fn new() -> Self {
        ParkToken(AtomicU8::new(EMPTY))
    }

    /// The G, about to park: takes a pending unpark. `true`: do not park.
    /// A plain load first: a failed CAS costs a locked instruction too, and
    /// parking with no unpark pending is the common case. An unpark that
    /// lands after the load is caught by `commit_park`.
    pub fn try_consume(&self) -> bool {
        self.0.load(Ordering::Relaxed) == NOTIFIED
            && self.0.compare_exchange(NOTIFIED, EMPTY, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The G's M, after the G switched out to park. `true`: parked (an
    /// unparker will ready it); `false`: an unpark arrived meanwhile, the
    /// token is consumed and the M must resume the G.
    pub fn commit_park(&self) -> bool {
        if self.0.compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return true;
        }
        self.0.store(EMPTY, Ordering::Release);
        false
    }

    /// An unpark. `true`: the G was parked and the caller must make it
    /// runnable (only one unparker ever gets `true` per park).
    pub fn unpark(&self) -> bool {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            let (next, ready) = match cur {
                EMPTY => (NOTIFIED, false),
                PARKED => (EMPTY, true),
                _ => return false, // already notified
            };
            match self.0.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return ready,
                Err(v) => cur = v,
            }
        }
    }

    /// Shutdown claims a G that no M runs (taken from a run queue, or
    /// parked): afterwards no unpark readies it. `true` if this call
    /// claimed it (whoever claims it unwinds it).
    pub fn kill(&self) -> bool {
        self.0.swap(DEAD, Ordering::AcqRel) != DEAD
    }

    /// `kill` only if the G is parked (its M has let go of it): a G whose
    /// token is `EMPTY` or `NOTIFIED` may be running.
    pub fn kill_parked(&self) -> bool {
        self.0.compare_exchange(PARKED, DEAD, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Back to `EMPTY` (a recycled G; no other reference exists).
    pub fn reset(&self) {
        self.0.store(EMPTY, Ordering::Relaxed);
    }

    /// Whether the token is `EMPTY` (a G between lives: checks only).
    pub fn is_empty(&self) -> bool {
        self.0.load(Ordering::Relaxed) == EMPTY
    }
}
