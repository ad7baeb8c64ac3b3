//! The state of one blocking channel operation (a send, a receive or a
//! whole select), as a small lock-free state machine. `sudog.rs` wraps it
//! with the unparker; the loom model `tests/loom_opstate.rs` checks this
//! very code.
//!
//! `WAITING` → `CLAIMED` (a waker, under its channel's lock; at most one
//! claim succeeds, so a select completes once) → `DONE` (the waker published
//! the case and outcome with Release; the owner may return as soon as it
//! sees it). `WAITING` → `CANCELLED` (the owner's deadline passed; no waker
//! will touch the operation any more).

use crate::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

const WAITING: u32 = 0;
const CLAIMED: u32 = 1;
const DONE: u32 = 2;
const CANCELLED: u32 = 3;

pub struct OpState {
    state: AtomicU32,
    fired: AtomicUsize,
    success: AtomicBool,
}

impl Default for OpState {
    fn default() -> Self {
        Self::new()
    }
}

impl OpState {
    pub fn new() -> Self {
        OpState { state: AtomicU32::new(WAITING), fired: AtomicUsize::new(0), success: AtomicBool::new(false) }
    }

    /// A waker claims the operation. Only one claim ever succeeds, and none
    /// after a cancel.
    pub fn claim(&self) -> bool {
        self.state.compare_exchange(WAITING, CLAIMED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The claimer publishes the outcome: case `case` fired; `success`
    /// false means "woken by close". Its last access to the state.
    pub fn finish(&self, case: usize, success: bool) {
        self.fired.store(case, Ordering::Relaxed);
        self.success.store(success, Ordering::Relaxed);
        self.state.store(DONE, Ordering::Release);
    }

    /// The owner gives up (deadline). False if a waker claimed it first: the
    /// owner must then wait for `done`.
    pub fn cancel(&self) -> bool {
        self.state.compare_exchange(WAITING, CANCELLED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    pub fn done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// (case, success); meaningful once `done`.
    pub fn result(&self) -> (usize, bool) {
        (self.fired.load(Ordering::Relaxed), self.success.load(Ordering::Relaxed))
    }
}
