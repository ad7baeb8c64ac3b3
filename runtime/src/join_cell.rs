//! The cell a G's result travels through to its `JoinHandle`
//! (`goroutine.rs`): one allocation per spawn, owned by exactly two, the
//! handle and the G's completer, and freed by whichever lets go last.
//! Lock-free, so that neither side waits on the other, and small (56 bytes
//! for a `JoinHandle<()>`: one 64-byte heap chunk), as every spawn makes
//! one. Generic over the result and the waiter so that loom can check it
//! (`tests/loom_join_cell.rs`).
//!
//! The state word has two bits: `DONE` (the result is in the cell) and
//! `WAITER` (a waiter is in the cell). Whoever sets a bit owns what it
//! guards until then:
//!
//! - the completer writes the result, then sets `DONE`; if `WAITER` was
//!   set, the waiter is its to take and wake;
//! - a joiner clears `WAITER` (taking the waiter field back) before it
//!   writes a waiter, then sets `WAITER`; if `DONE` is set at either
//!   step, it takes the result instead and leaves the waiter field alone
//!   (the completer may be taking the waiter).
//!
//! Both bits are set with AcqRel read-modify-writes, so each side sees
//! what the other wrote before its own.

use crate::atomic::{fence, AtomicU32, Ordering, UnsafeCell};

const DONE: u32 = 1;
const WAITER: u32 = 2;

pub(crate) struct JoinCell<T, W> {
    /// Owners left: 2, then 1, then 0 (freed).
    refs: AtomicU32,
    state: AtomicU32,
    waiter: UnsafeCell<Option<W>>,
    result: UnsafeCell<Option<T>>,
}

// SAFETY: the fields behind `UnsafeCell` are handed between the owners by
// the state word's protocol (module docs); each is moved across threads,
// never shared, so `Send` of the contents is what is needed.
unsafe impl<T: Send, W: Send> Send for JoinCell<T, W> {}
// SAFETY: as above.
unsafe impl<T: Send, W: Send> Sync for JoinCell<T, W> {}

impl<T, W> JoinCell<T, W> {
    /// An empty cell with its two owners.
    pub(crate) fn new() -> Self {
        JoinCell {
            refs: AtomicU32::new(2),
            state: AtomicU32::new(0),
            waiter: UnsafeCell::new(None),
            result: UnsafeCell::new(None),
        }
    }

    /// The completer's side, once: puts the result in and returns the
    /// waiter to wake, if one is waiting.
    pub(crate) fn complete(&self, r: T) -> Option<W> {
        // SAFETY: until `DONE` is set the result is the completer's alone,
        // and it completes once.
        self.result.with_mut(|p| unsafe { *p = Some(r) });
        if self.state.fetch_or(DONE, Ordering::AcqRel) & WAITER == 0 {
            return None;
        }
        // SAFETY: `WAITER` was set before `DONE`: the joiner that set it
        // no longer touches the waiter (it sees `DONE` from now on).
        self.waiter.with_mut(|p| unsafe { (*p).take() })
    }

    /// Whether the result is in (taken or not).
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & DONE != 0
    }

    /// The joiner's side: the result if it is in (`None` if it was taken
    /// already, which the callers never do), else leaves the waiter
    /// `waiter()` makes, replacing any earlier one, and returns `Err`.
    ///
    /// # Safety
    /// One joiner at a time (the handle's owner).
    pub(crate) unsafe fn take_or_wait(&self, waiter: impl FnOnce() -> W) -> Result<Option<T>, ()> {
        if self.is_done() {
            // SAFETY: the contract: one joiner.
            return Ok(unsafe { self.take() });
        }
        if self.state.fetch_and(!WAITER, Ordering::AcqRel) & DONE != 0 {
            // SAFETY: as above.
            return Ok(unsafe { self.take() });
        }
        // `WAITER` is clear and the completer has not set `DONE` yet:
        // when it does, it leaves the waiter field alone.
        // SAFETY: see just above, and one joiner.
        self.waiter.with_mut(|p| unsafe { *p = Some(waiter()) });
        if self.state.fetch_or(WAITER, Ordering::AcqRel) & DONE != 0 {
            // SAFETY: as above.
            return Ok(unsafe { self.take() });
        }
        Err(())
    }

    /// A joiner that gives up waiting takes its waiter back; the result if
    /// it came meanwhile.
    ///
    /// # Safety
    /// As for `take_or_wait`.
    pub(crate) unsafe fn cancel_wait(&self) -> Option<T> {
        if self.state.fetch_and(!WAITER, Ordering::AcqRel) & DONE != 0 {
            // The completer may be taking the waiter: leave it.
            // SAFETY: the contract.
            return unsafe { self.take() };
        }
        // SAFETY: `WAITER` is clear and `DONE` not set: the field is ours.
        self.waiter.with_mut(|p| unsafe { *p = None });
        None
    }

    /// # Safety
    /// `DONE` is set (seen with Acquire) and the caller is the joiner.
    unsafe fn take(&self) -> Option<T> {
        // SAFETY: the contract: the completer is done with the result.
        self.result.with_mut(|p| unsafe { (*p).take() })
    }

    /// One owner lets go; `true` for the last, which then frees the cell
    /// (it sees everything the other owner wrote).
    pub(crate) fn release(&self) -> bool {
        if self.refs.fetch_sub(1, Ordering::Release) != 1 {
            return false;
        }
        fence(Ordering::Acquire);
        true
    }
}
