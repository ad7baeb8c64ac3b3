//! `Semaphore`: Go's `x/sync/semaphore.Weighted`, FIFO, parking Gs.

use std::sync::Mutex as StdMutex;

use super::lock;
use super::waitq::{WaitQueue, Waiter};
use crate::g::WaitReason;
use crate::park::WokenBy;

/// A weighted semaphore (Go's `x/sync/semaphore.Weighted`): FIFO, so a large
/// request is not starved by a stream of small ones.
pub struct Semaphore {
    capacity: usize,
    st: StdMutex<SemState>,
}

struct SemState {
    avail: usize,
    waiters: WaitQueue,
}

impl SemState {
    /// Takes the permits of the waiters at the front that now fit, in
    /// order; the caller grants them after unlocking.
    fn satisfy(&mut self) -> Vec<std::sync::Arc<Waiter>> {
        let mut out = Vec::new();
        while let Some(w) = self.waiters.front() {
            if w.n > self.avail {
                break;
            }
            self.avail -= w.n;
            out.push(self.waiters.pop_front().expect("front"));
        }
        out
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits (its capacity).
    pub fn new(permits: usize) -> Self {
        Semaphore { capacity: permits, st: StdMutex::new(SemState { avail: permits, waiters: WaitQueue::new() }) }
    }

    /// Acquires one permit, parking until it is available.
    pub fn acquire(&self) {
        self.acquire_n(1)
    }

    /// Acquires `k` permits, parking until they are available.
    ///
    /// # Panics
    /// If `k` exceeds the capacity (it could never succeed).
    pub fn acquire_n(&self, k: usize) {
        assert!(k <= self.capacity, "semaphore: acquire of {k} permits exceeds the capacity of {}", self.capacity);
        crate::m::preempt_point();
        let w = {
            let mut st = lock(&self.st);
            if st.waiters.is_empty() && st.avail >= k {
                st.avail -= k;
                return;
            }
            let w = Waiter::new(k);
            st.waiters.push_back(w.clone());
            w
        };
        w.wait_by(WaitReason::Semacquire, WokenBy::Bubble);
    }

    /// Acquires one permit if one is free and nobody waits; never parks.
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_n(1)
    }

    /// Acquires `k` permits if they are free and nobody waits; never parks.
    pub fn try_acquire_n(&self, k: usize) -> bool {
        let mut st = lock(&self.st);
        if st.waiters.is_empty() && st.avail >= k {
            st.avail -= k;
            return true;
        }
        false
    }

    /// Returns one permit (see `release_n`).
    pub fn release(&self) {
        self.release_n(1)
    }

    /// Returns `k` permits and wakes the waiters they satisfy, in order.
    ///
    /// # Panics
    /// If that would hold more permits than the capacity.
    pub fn release_n(&self, k: usize) {
        let granted = {
            let mut st = lock(&self.st);
            assert!(st.avail + k <= self.capacity, "semaphore: released more permits than acquired");
            st.avail += k;
            st.satisfy()
        };
        for w in granted {
            w.grant();
        }
    }

    /// Acquires `k` permits unless `stop` returns true first (checked
    /// whenever the caller is woken): the cancellable wait behind
    /// `goro::sync::SemaphoreExt::acquire_ctx`. `waiting` is called once the
    /// caller is queued, with the handle that wakes it, so that whatever
    /// makes `stop` true can wake it. Returns whether the permits were
    /// acquired (then they are the caller's, even if `stop` became true
    /// meanwhile). `by`: who may make `stop` true (or release permits).
    ///
    /// # Panics
    /// If `k` exceeds the capacity.
    #[doc(hidden)]
    pub fn acquire_n_unless(
        &self,
        k: usize,
        stop: &dyn Fn() -> bool,
        waiting: &dyn Fn(&crate::Unparker),
        by: WokenBy,
    ) -> bool {
        assert!(k <= self.capacity, "semaphore: acquire of {k} permits exceeds the capacity of {}", self.capacity);
        crate::m::preempt_point();
        let w = {
            let mut st = lock(&self.st);
            // Stopped already: nothing is taken, even if permits are free
            // (as x/sync's `Acquire` on a done context).
            if stop() {
                return false;
            }
            if st.waiters.is_empty() && st.avail >= k {
                st.avail -= k;
                return true;
            }
            let w = Waiter::new(k);
            st.waiters.push_back(w.clone());
            w
        };
        waiting(w.unparker());
        loop {
            if w.is_granted() {
                return true;
            }
            if stop() {
                let granted = {
                    let mut st = lock(&self.st);
                    // Granted as we gave up (or taken off the queue by a
                    // release that has yet to grant it): the permits are ours.
                    if w.is_granted() || !st.waiters.remove(&w) {
                        return true;
                    }
                    // The waiter may have held up smaller requests behind it.
                    st.satisfy()
                };
                for g in granted {
                    g.grant();
                }
                return false;
            }
            crate::park::park_woken_by(WaitReason::Semacquire, by);
        }
    }

    /// Permits available now.
    pub fn available(&self) -> usize {
        lock(&self.st).avail
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore").field("capacity", &self.capacity).field("available", &self.available()).finish()
    }
}
