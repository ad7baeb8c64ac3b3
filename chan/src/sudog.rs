//! Waiters: Go's `sudog` (one per channel a blocked G waits on) and the
//! per-operation [`Waiting`] record they share.
//!
//! Both live on the blocked G's stack (or the blocked thread's), so blocking
//! allocates nothing. Channel wait queues hold raw pointers to sudogs. The
//! lifetime rule that makes this sound:
//!
//! - A sudog is in a channel's queue only while its owner is inside the
//!   blocking operation, and it is touched only with that channel's lock held.
//! - The owner leaves the operation only after every one of its sudogs is out
//!   of every queue: removed by a waker (under the lock) or by the owner
//!   itself (under the lock).
//! - A waker *claims* the operation (CAS on `state`), so at most one waker
//!   completes it: for `select`, the first channel to fire wins and the others
//!   discard the stale sudog. The waker's last access to the `Waiting` is the
//!   `Release` store of `DONE`; it moves the unparker out before that store
//!   and unparks through it, so the owner may return as soon as it sees
//!   `DONE` (and does not drop the unparker then: the waker owns it).

use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;

use goro_runtime::internals::{park_until_woken_by, park_woken_by, WokenBy};
use goro_runtime::{Unparker, WaitReason};

use crate::opstate::OpState;

/// One blocking operation (a send, a receive, or a whole select).
#[doc(hidden)]
pub struct Waiting {
    state: OpState,
    /// Replaced only by a future adapter re-polled with a new waker, with
    /// the (single) channel's lock held; moved out by the one waker that
    /// claims the operation (`finish`), under that lock. Dropped by `Drop`
    /// unless a waker took it (the state is then `DONE`).
    unparker: UnsafeCell<ManuallyDrop<Unparker>>,
}

impl Default for Waiting {
    fn default() -> Self {
        Self::new()
    }
}

impl Waiting {
    /// A new operation of the calling G (or thread).
    pub fn new() -> Self {
        Self::with_unparker(goro_runtime::current_unparker())
    }

    /// An operation woken through `u` (a future adapter's waker).
    pub fn with_unparker(u: Unparker) -> Self {
        Waiting { state: OpState::new(), unparker: UnsafeCell::new(ManuallyDrop::new(u)) }
    }

    /// Replaces the unparker.
    ///
    /// # Safety
    /// The operation is queued on one channel only, whose lock the caller
    /// holds (wakers read the unparker under it).
    pub unsafe fn set_unparker(&self, u: Unparker) {
        debug_assert!(!self.done(), "set_unparker on a finished operation");
        // SAFETY: wakers read the unparker only under the channel lock,
        // which the caller holds, so this is the only access.
        let slot = unsafe { &mut *self.unparker.get() };
        // SAFETY: the slot holds a live unparker (set at construction or
        // by the previous call), replaced right below and never read between.
        unsafe { ManuallyDrop::drop(slot) };
        *slot = ManuallyDrop::new(u);
    }

    /// Claims the operation for a waker. Only one claim ever succeeds.
    pub fn claim(&self) -> bool {
        self.state.claim()
    }

    /// Completes a claimed operation: case `case` fired, `success` false
    /// meaning "woken by close". Returns the unparker to call once the
    /// channel lock is released (moved out, not cloned: a reference count
    /// less per wake-up).
    pub fn finish(&self, case: usize, success: bool) -> Unparker {
        // SAFETY: called once per operation, by the claimer (claims succeed
        // once), with the channel lock held, which excludes `set_unparker`;
        // moved out before DONE, our last access; once DONE, `Drop` leaves
        // the slot alone.
        let u = unsafe { ManuallyDrop::take(&mut *self.unparker.get()) };
        self.state.finish(case, success);
        u
    }

    /// The owner gives up (timeout). False if a waker claimed it first: the
    /// owner must then wait for `DONE`.
    pub fn cancel(&self) -> bool {
        self.state.cancel()
    }

    pub fn done(&self) -> bool {
        self.state.done()
    }

    /// Parks until a waker finishes the operation. Returns (case, success).
    /// `by`: who may complete it (deadlock detection, synctest bubbles).
    pub fn wait(&self, reason: WaitReason, by: WokenBy) -> (usize, bool) {
        while !self.done() {
            park_woken_by(reason, by);
        }
        self.result()
    }

    /// Parks until finished or `deadline`; `None` if the deadline passed and
    /// the operation was cancelled (no waker will touch it any more, but the
    /// owner must still unlink its sudogs).
    pub fn wait_until(&self, reason: WaitReason, deadline: std::time::Instant, by: WokenBy) -> Option<(usize, bool)> {
        loop {
            if self.done() {
                return Some(self.result());
            }
            if goro_runtime::now() >= deadline {
                if self.cancel() {
                    return None;
                }
                // A waker has claimed it and is finishing: it runs.
                return Some(self.wait(reason, WokenBy::AnyThread));
            }
            park_until_woken_by(reason, deadline, by);
        }
    }

    fn result(&self) -> (usize, bool) {
        self.state.result()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        // Not DONE: no waker claimed the operation (or it was cancelled), so
        // the unparker is still ours. (The owner drops a `Waiting` only once
        // no waker can touch it any more: DONE, or never claimed.)
        if !self.done() {
            // SAFETY: not moved out (only `finish` does, before DONE), and
            // dropped once, here.
            unsafe { ManuallyDrop::drop(self.unparker.get_mut()) };
        }
    }
}

/// A waiter on one channel: which operation, which case, and the value slot
/// (the value to send, or where a received value is put).
pub(crate) struct Sudog<T> {
    pub waiting: *const Waiting,
    pub case: usize,
    pub slot: UnsafeCell<Option<T>>,
}

impl<T> Sudog<T> {
    pub fn new(waiting: &Waiting, case: usize, value: Option<T>) -> Self {
        Sudog { waiting, case, slot: UnsafeCell::new(value) }
    }

    /// A sudog not yet tied to an operation (`waiting` set before queueing).
    pub fn new_blank() -> Self {
        Sudog { waiting: std::ptr::null(), case: 0, slot: UnsafeCell::new(None) }
    }

    /// # Safety
    /// The sudog is in a queue (so its owner is blocked and it is alive) and
    /// the caller holds that queue's channel lock.
    pub unsafe fn waiting(&self) -> &Waiting {
        // SAFETY: a queued sudog's operation lives on its blocked G's stack
        // (contract: queued, lock held).
        unsafe { &*self.waiting }
    }
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting").field("done", &self.done()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Waiting;

    #[test]
    fn a_waiting_shows_whether_it_is_done() {
        let w = Waiting::new();
        assert_eq!(format!("{w:?}"), "Waiting { done: false }");
        assert!(w.claim());
        w.finish(0, true).unpark();
        assert_eq!(format!("{w:?}"), "Waiting { done: true }");
    }
}
