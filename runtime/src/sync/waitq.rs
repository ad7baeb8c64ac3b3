//! A FIFO of parked waiters, the base of goro's sync primitives (in the
//! role of Go's `sema.go` wait lists). Each waiter is an `Arc<Waiter>`: the
//! waker sets `granted` (with whatever it hands over already done) and
//! unparks; the waiter parks until it sees `granted`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::g::WaitReason;
use crate::park::{current_unparker, park_woken_by, Unparker, WokenBy};

pub(crate) struct Waiter {
    granted: AtomicBool,
    /// Set (before `grant`) when ownership was handed over directly.
    handoff: AtomicBool,
    unparker: Unparker,
    /// How much the waiter asks for (semaphore permits); 1 elsewhere.
    pub n: usize,
    pub since: Instant,
}

impl Waiter {
    pub fn new(n: usize) -> Arc<Waiter> {
        Arc::new(Waiter {
            granted: AtomicBool::new(false),
            handoff: AtomicBool::new(false),
            unparker: current_unparker(),
            n,
            since: Instant::now(),
        })
    }

    /// A waiter that has waited since `since` (a state for unit tests).
    #[cfg(test)]
    pub fn queued_at(since: Instant) -> Arc<Waiter> {
        let w = Waiter::new(1);
        Arc::new(Waiter { since, ..Arc::into_inner(w).expect("just made") })
    }

    /// Marks the waiter granted and wakes it. Call after releasing the lock
    /// that protects the queue, or under it (unpark never blocks).
    pub fn grant(&self) {
        self.granted.store(true, Ordering::Release);
        self.unparker.unpark();
    }

    pub fn set_handed_off(&self) {
        self.handoff.store(true, Ordering::Relaxed);
    }

    /// Whether `grant` has been called.
    pub fn is_granted(&self) -> bool {
        self.granted.load(Ordering::Acquire)
    }

    /// The handle that wakes the waiting G (or thread).
    pub fn unparker(&self) -> &Unparker {
        &self.unparker
    }

    /// Whether `grant` handed ownership over (read after `wait`).
    pub fn handed_off(&self) -> bool {
        self.handoff.load(Ordering::Relaxed)
    }

    /// Parks until granted. Only a holder of the primitive can grant: a G,
    /// or a plain thread, which deadlock detection sees in its census of
    /// the process's threads (`dump.rs`), so the wait counts as internal.
    pub fn wait(&self, reason: WaitReason) {
        self.wait_by(reason, WokenBy::RuntimeOnly)
    }

    /// [`wait`](Self::wait); `WokenBy::Bubble` makes it durable in a
    /// synctest bubble (the primitives Go's `synctest` counts as durably
    /// blocking: `Condvar`, `WaitGroup` of the bubble, `Semaphore`).
    pub fn wait_by(&self, reason: WaitReason, by: WokenBy) {
        while !self.granted.load(Ordering::Acquire) {
            park_woken_by(reason, by);
        }
    }
}

/// FIFO of waiters; protect it with the primitive's own lock.
#[derive(Default)]
pub(crate) struct WaitQueue {
    q: VecDeque<Arc<Waiter>>,
}

impl WaitQueue {
    pub const fn new() -> Self {
        WaitQueue { q: VecDeque::new() }
    }

    pub fn push_back(&mut self, w: Arc<Waiter>) {
        self.q.push_back(w);
    }
    pub fn push_front(&mut self, w: Arc<Waiter>) {
        self.q.push_front(w);
    }
    pub fn pop_front(&mut self) -> Option<Arc<Waiter>> {
        self.q.pop_front()
    }
    pub fn front(&self) -> Option<&Arc<Waiter>> {
        self.q.front()
    }
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
    /// Takes `w` out of the queue if it is there.
    pub fn remove(&mut self, w: &Arc<Waiter>) -> bool {
        match self.q.iter().position(|x| Arc::ptr_eq(x, w)) {
            Some(i) => {
                self.q.remove(i);
                true
            }
            None => false,
        }
    }
    pub fn drain(&mut self) -> impl Iterator<Item = Arc<Waiter>> + '_ {
        self.q.drain(..)
    }
}
