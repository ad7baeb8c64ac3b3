//! `Semaphore`: Go's `x/sync/semaphore.Weighted`, FIFO, parking Gs.

use std::sync::Mutex as StdMutex;

use super::lock;
use super::waitq::{WaitQueue, Waiter};
use crate::g::WaitReason;

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
        w.wait(WaitReason::Semacquire);
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
        let granted: Vec<_> = {
            let mut st = lock(&self.st);
            assert!(st.avail + k <= self.capacity, "semaphore: released more permits than acquired");
            st.avail += k;
            let mut out = Vec::new();
            while let Some(w) = st.waiters.front() {
                if w.n > st.avail {
                    break;
                }
                st.avail -= w.n;
                out.push(st.waiters.pop_front().expect("front"));
            }
            out
        };
        for w in granted {
            w.grant();
        }
    }

    /// Permits available now.
    pub fn available(&self) -> usize {
        lock(&self.st).avail
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let avail = lock(&self.st).avail;
        f.debug_struct("Semaphore").field("capacity", &self.capacity).field("available", &avail).finish()
    }
}
