//! `WaitGroup`: Go's `sync.WaitGroup`, parking Gs.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex as StdMutex;

use super::lock;
use super::waitq::{WaitQueue, Waiter};
use crate::g::WaitReason;
use crate::park::WokenBy;

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
    /// The synctest bubble its adds came from since its count was last
    /// zero (Go's association; 0: none): a wait on it from that bubble is
    /// durable.
    bubble: AtomicU64,
}

impl WaitGroup {
    /// A wait group with a zero counter.
    pub const fn new() -> Self {
        WaitGroup { count: AtomicI64::new(0), waiters: StdMutex::new(WaitQueue::new()), bubble: AtomicU64::new(0) }
    }

    /// Adds `n` (which may be negative) to the counter; at zero, every
    /// waiter is released.
    ///
    /// # Panics
    /// `sync: negative WaitGroup counter` if the counter goes below zero, as in Go;
    /// if added to from inside and outside a synctest bubble (also as Go's).
    #[track_caller]
    pub fn add(&self, n: i64) {
        if n > 0 {
            self.note_bubble();
        }
        let v = self.count.fetch_add(n, Ordering::AcqRel) + n;
        if v < 0 {
            self.count.fetch_sub(n, Ordering::AcqRel);
            panic!("sync: negative WaitGroup counter");
        }
        if v == 0 {
            // Free of any bubble again (Go's rule).
            if self.bubble.load(Ordering::Relaxed) != 0 {
                self.bubble.store(0, Ordering::Relaxed);
            }
            let ws: Vec<_> = lock(&self.waiters).drain().collect();
            for w in ws {
                w.grant();
            }
        }
    }

    /// Ties the group to the synctest bubble its adds come from while its
    /// count is above zero (Go's rule: at zero it is free again); an add
    /// from the other side panics, as in Go. Outside any bubble, with the
    /// group untied: one load.
    #[track_caller]
    fn note_bubble(&self) {
        let me = crate::synctest::current_bubble_id();
        loop {
            let tied = self.bubble.load(Ordering::Relaxed);
            if tied == me {
                return;
            }
            // A first add from bubble `me`: only if no add from outside is
            // pending. A racing add of the same bubble that won the tie
            // counts (its tie is visible once its add is: Acquire on the
            // count), and so does one that ties first: look again.
            let free = me != 0
                && tied == 0
                && (self.count.load(Ordering::Acquire) <= 0 || self.bubble.load(Ordering::Relaxed) == me);
            if !free {
                panic!("sync: WaitGroup.add called from inside and outside a synctest bubble");
            }
            if self.bubble.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                return;
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
        let tied = self.bubble.load(Ordering::Relaxed);
        let by = if tied != 0 && tied == crate::synctest::current_bubble_id() {
            WokenBy::Bubble
        } else {
            WokenBy::RuntimeOnly
        };
        w.wait_by(WaitReason::WaitGroupWait, by);
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
