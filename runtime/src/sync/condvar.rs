//! `Condvar`: Go's `sync.Cond`, for a goro `Mutex`.

use std::sync::Mutex as StdMutex;

use super::lock;
use super::mutex::MutexGuard;
use super::waitq::{WaitQueue, Waiter};
use crate::g::WaitReason;
use crate::park::WokenBy;

/// A condition variable for a goro `Mutex` (Go's `sync.Cond`).
#[derive(Default)]
pub struct Condvar {
    waiters: StdMutex<WaitQueue>,
}

impl Condvar {
    /// A condition variable with no waiters.
    pub const fn new() -> Self {
        Condvar { waiters: StdMutex::new(WaitQueue::new()) }
    }

    /// Unlocks the guard's mutex, parks until notified, relocks. As with
    /// std, re-check the condition in a loop.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let m = guard.mutex();
        let w = Waiter::new(1);
        lock(&self.waiters).push_back(w.clone());
        // Queued before unlocking: a notify after the unlock finds us.
        drop(guard);
        w.wait_by(WaitReason::CondWait, WokenBy::Bubble);
        m.lock()
    }

    /// Wakes the longest-waiting G, if any.
    pub fn notify_one(&self) {
        let w = lock(&self.waiters).pop_front();
        if let Some(w) = w {
            w.grant();
        }
    }

    /// Wakes every waiting G.
    pub fn notify_all(&self) {
        let ws: Vec<_> = lock(&self.waiters).drain().collect();
        for w in ws {
            w.grant();
        }
    }
}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
