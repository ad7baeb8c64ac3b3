//! The local run queue of a P: Go's `runq`, a bounded single-producer,
//! multi-consumer ring.
//!
//! Only the owner (the M holding the P) pushes, and only at `tail`. The owner
//! pops and thieves steal at `head`, each claiming slots with one CAS on
//! `head`. This is Go's `runqput`/`runqget`/`runqgrab` in Rust; it is generic
//! over the element type so that the loom model (`tests/loom_runq.rs`) can
//! check it with plain boxes.
//!
//! Invariants:
//! - `tail - head <= limit <= capacity` (wrapping `u32` arithmetic).
//! - Slots in `[head, tail)` hold owned pointers; a slot outside that range is
//!   garbage and is never read as owned.
//! - `tail` is written only by the owner, with `Release`, after the slots it
//!   publishes are written; consumers read it with `Acquire`.
//! - A consumer owns the slots it read only once its CAS on `head` succeeds.
//!
//! Why hand-written instead of crossbeam-deque: the queue must be bounded
//! (256 by default) and spill half of itself to the global queue when full,
//! and a thief takes half of the victim's queue (up to 128) in one CAS; see
//! ARCHITECTURE.md for the measurement (`cargo bench --features internals --bench runq`).

use crate::atomic::{AtomicPtr, AtomicU32, Ordering};

/// Bounded ring of owned `*mut T`.
pub struct RunQueue<T> {
    head: AtomicU32,
    tail: AtomicU32,
    mask: u32,
    limit: u32,
    slots: Box<[AtomicPtr<T>]>,
}

// SAFETY: the queue hands raw pointers between threads; ownership of the
// pointee moves with them, so `T: Send` is all that is required.
unsafe impl<T: Send> Send for RunQueue<T> {}
// SAFETY: see the module invariants; every shared field is atomic.
unsafe impl<T: Send> Sync for RunQueue<T> {}

/// How much a thief takes from a victim's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    Half,
    One,
}

impl<T> RunQueue<T> {
    /// A queue that holds at most `limit` items (`limit >= 2`).
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(2, 1 << 20) as u32;
        let cap = limit.next_power_of_two();
        let slots = (0..cap).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect();
        RunQueue { head: AtomicU32::new(0), tail: AtomicU32::new(0), mask: cap - 1, limit, slots }
    }

    /// How many items the queue holds at most.
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// An approximate length, exact when called by the owner with no thief
    /// active.
    pub fn len(&self) -> usize {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            if self.head.load(Ordering::Acquire) == h {
                return t.wrapping_sub(h).min(self.limit) as usize;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn slot(&self, i: u32) -> &AtomicPtr<T> {
        let k = (i & self.mask) as usize;
        debug_assert!(k < self.slots.len());
        // SAFETY: `slots.len()` is `mask + 1` (`new`), so `i & mask` is in
        // bounds.
        unsafe { self.slots.get_unchecked(k) }
    }

    /// The item at the head of the queue, for a prefetch hint only: it may be
    /// stale or taken by a thief by the time it is used, and must never be
    /// dereferenced. Owner only, to be meaningful.
    #[inline]
    pub fn peek_hint(&self) -> *mut T {
        let h = self.head.load(Ordering::Relaxed);
        self.slot(h).load(Ordering::Relaxed)
    }

    /// Go's `runqput` fast path. Owner only. When the queue is full, the item
    /// and half of the queue are moved to `overflow` (Go's `runqputslow`) and
    /// `true` is returned: the caller must put `overflow` on the global queue.
    ///
    /// # Safety
    /// Must be called only by the owner of the queue.
    #[inline]
    pub unsafe fn push(&self, item: *mut T, overflow: &mut Vec<*mut T>) -> bool {
        // SAFETY: the caller's contract.
        unsafe { self.try_put(item).is_err() && self.push_slow(item, overflow) }
    }

    /// Puts `item` at the tail if the queue has room; else the `head` and
    /// `tail` it saw.
    ///
    /// # Safety
    /// Must be called only by the owner of the queue.
    #[inline]
    unsafe fn try_put(&self, item: *mut T) -> Result<(), (u32, u32)> {
        let h = self.head.load(Ordering::Acquire);
        let t = self.tail.load(Ordering::Relaxed);
        if t.wrapping_sub(h) < self.limit {
            self.slot(t).store(item, Ordering::Relaxed);
            self.tail.store(t.wrapping_add(1), Ordering::Release);
            return Ok(());
        }
        Err((h, t))
    }

    /// `push` on a queue that looked full: spills half of it (or finds room
    /// a thief made meanwhile).
    ///
    /// # Safety
    /// Must be called only by the owner of the queue.
    #[cold]
    #[inline(never)]
    unsafe fn push_slow(&self, item: *mut T, overflow: &mut Vec<*mut T>) -> bool {
        loop {
            // SAFETY: the caller's contract.
            let (h, t) = match unsafe { self.try_put(item) } {
                Ok(()) => return false,
                Err(seen) => seen,
            };
            // Full: move half of it, then the item, to `overflow`.
            let n = t.wrapping_sub(h) / 2;
            overflow.clear();
            for i in 0..n {
                overflow.push(self.slot(h.wrapping_add(i)).load(Ordering::Relaxed));
            }
            if self.head.compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                overflow.push(item);
                return true;
            }
            // A thief took some; the queue has room now.
            overflow.clear();
        }
    }

    /// Go's `runqget` (without runnext). Owner only.
    ///
    /// # Safety
    /// Must be called only by the owner of the queue.
    pub unsafe fn pop(&self) -> Option<*mut T> {
        self.take_one()
    }

    fn take_one(&self) -> Option<*mut T> {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            if t == h {
                return None;
            }
            let item = self.slot(h).load(Ordering::Relaxed);
            if self.head.compare_exchange(h, h.wrapping_add(1), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return Some(item);
            }
        }
    }

    /// Go's `runqsteal`: moves items from `self` (the victim) into `dst` (the
    /// thief's own queue, which must be empty) and returns one of them to run
    /// now. `Take::Half` takes half of the victim's queue, rounded up.
    ///
    /// # Safety
    /// Must be called only by the owner of `dst`, and `dst` must be empty.
    pub unsafe fn steal_into(&self, dst: &RunQueue<T>, take: Take) -> Option<(*mut T, usize)> {
        if take == Take::One {
            return self.take_one().map(|g| (g, 1));
        }
        let dt = dst.tail.load(Ordering::Relaxed);
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            let avail = t.wrapping_sub(h);
            let n = avail - avail / 2;
            if n == 0 {
                return None;
            }
            if n > self.limit.div_ceil(2) || n > dst.limit {
                // Read an inconsistent head/tail pair; try again.
                continue;
            }
            for i in 0..n {
                let item = self.slot(h.wrapping_add(i)).load(Ordering::Relaxed);
                dst.slot(dt.wrapping_add(i)).store(item, Ordering::Relaxed);
            }
            if self.head.compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                // Keep the last one to run; publish the rest.
                let n = n - 1;
                let item = dst.slot(dt.wrapping_add(n)).load(Ordering::Relaxed);
                if n > 0 {
                    dst.tail.store(dt.wrapping_add(n), Ordering::Release);
                }
                return Some((item, n as usize + 1));
            }
        }
    }

    /// Removes everything (used at shutdown). Owner only, or with no other
    /// user left.
    pub fn drain(&self) -> Vec<*mut T> {
        let mut out = Vec::new();
        while let Some(p) = self.take_one() {
            out.push(p);
        }
        out
    }
}

impl<T> std::fmt::Debug for RunQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunQueue").field("len", &self.len()).finish()
    }
}
