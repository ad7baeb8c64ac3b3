//! `WaitGroup`: Go's `sync.WaitGroup`, parking Gs.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex as StdMutex;

use super::lock;
use super::waitq::{WaitQueue, Waiter};
use crate::g::WaitReason;

/// Waits for a collection of Gs to finish (Go's `sync.WaitGroup`).
///
/// ```
/// use goro_runtime::sync::WaitGroup;
/// use std::sync::Arc;
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// unsafe {
///     goro_runtime::run(|| {
///         let wg = Arc::new(WaitGroup::new());
///         for _ in 0..10 {
///             wg.add(1);
///             let wg = wg.clone();
///             goro_runtime::go(move || wg.done());
///         }
///         wg.wait();
///     })
/// };
/// ```
#[derive(Default)]
pub struct WaitGroup {
    count: AtomicI64,
    waiters: StdMutex<WaitQueue>,
}

impl WaitGroup {
    /// A wait group with a zero counter.
    pub const fn new() -> Self {
        WaitGroup { count: AtomicI64::new(0), waiters: StdMutex::new(WaitQueue::new()) }
    }

    /// Adds `n` (which may be negative) to the counter; at zero, every
    /// waiter is released.
    ///
    /// # Panics
    /// `sync: negative WaitGroup counter` if the counter goes below zero, as in Go.
    pub fn add(&self, n: i64) {
        let v = self.count.fetch_add(n, Ordering::AcqRel) + n;
        if v < 0 {
            self.count.fetch_sub(n, Ordering::AcqRel);
            panic!("sync: negative WaitGroup counter");
        }
        if v == 0 {
            let ws: Vec<_> = lock(&self.waiters).drain().collect();
            for w in ws {
                w.grant();
            }
        }
    }

    /// Decrements the counter (`add(-1)`).
    pub fn done(&self) {
        self.add(-1);
    }

    /// Parks until the counter is zero.
    pub fn wait(&self) {
        crate::m::preempt_point();
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let w = {
            let mut q = lock(&self.waiters);
            // Re-checked under the lock `add` takes to release waiters.
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            let w = Waiter::new(1);
            q.push_back(w.clone());
            w
        };
        w.wait(WaitReason::WaitGroupWait);
    }

    /// The current counter.
    pub fn count(&self) -> i64 {
        self.count.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitGroup").field("count", &self.count()).finish()
    }
}
