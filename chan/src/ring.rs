//! The buffer of a buffered channel: a bounded lock-free ring (Vyukov's
//! bounded MPMC queue, laid out as crossbeam-channel's `array` flavor: a
//! stamp per slot says which lap may write or read it next).
//!
//! `head` and `tail` each hold a lap, an index and flag bits. `tail`'s
//! `mark` bit is set once by `close` (no push succeeds after it). The
//! `gate` bit of a word is how the channel lock shuts the lock-free path
//! of one side: while `tail`'s gate is closed only the lock's holder
//! pushes, while `head`'s is closed only the holder pops (a fast push or
//! pop whose compare-and-swap races with the gate's `fetch_or` fails and
//! takes the lock). `chan.rs` closes a side's gate before a G waits for
//! that side (a receiver for a push, a sender for a pop) and keeps it
//! closed while one waits, so waiting, waking and Go's direct hand-offs
//! happen exactly as in Go's `hchan`; the ring only lets a send or receive
//! that finds nobody waiting skip the lock.
//!
//! Memory order: a push publishes its value with a `Release` store of the
//! slot's stamp and a pop reads it after an `Acquire` load of it (Go's "a
//! send is synchronized before the corresponding receive completes"); a
//! pop frees the slot the same way for the push a lap later (Go's "the
//! k-th receive is synchronized before the (k+C)-th send completes"). The
//! loom model `tests/loom_ring.rs` checks this very code.

use std::mem::MaybeUninit;

use crate::atomic::{spin, AtomicUsize, Ordering, UnsafeCell};

struct Slot<T> {
    /// `pos` of the push that may write the slot next, or `pos + 1` once
    /// that push wrote it (the pop of `pos` may read it).
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// Keeps `head` and `tail` on cache lines of their own. (One line each,
/// not the pair x86 prefetches together: channels are made by the million
/// (skynet), and 128 bytes each made a channel half again as large.)
#[repr(align(64))]
struct Padded<T>(T);

/// Why a push failed; the value comes back.
#[derive(Debug)]
pub(crate) enum PushError<T> {
    Full(T),
    Closed(T),
    /// The tail's gate is closed: the caller must take the channel lock.
    Gated(T),
}

/// Why a pop failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PopError {
    Empty,
    /// Closed and drained.
    Closed,
    /// The head's gate is closed: the caller must take the channel lock.
    Gated,
}

/// Whether the caller holds the channel lock (and may push or pop through
/// a closed gate) or is on the lock-free fast path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    Fast,
    Holder,
}

/// One end of the ring, for its gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Pops.
    Head,
    /// Pushes.
    Tail,
}

/// `head` and `tail` on lines of their own, the settings after them on a
/// line only read.
#[repr(C)]
pub(crate) struct Ring<T> {
    head: Padded<AtomicUsize>,
    tail: Padded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    cap: usize,
    /// `tail`'s closed bit; also one above the largest index.
    mark: usize,
    /// The gate bit of `head` and `tail`.
    gate: usize,
    /// One lap: added to a position when its index wraps.
    one_lap: usize,
}

impl<T> Ring<T> {
    /// A ring of `cap` slots (0 is allowed: an unbuffered channel never
    /// uses its ring).
    ///
    /// # Panics
    /// `makechan: size out of range` when `cap` is too large to lay out.
    pub fn new(cap: usize) -> Self {
        let mark = cap
            .checked_add(1)
            .and_then(usize::checked_next_power_of_two)
            .filter(|m| m.checked_mul(16).is_some())
            .expect("makechan: size out of range");
        let slots = (0..cap)
            .map(|i| Slot { stamp: AtomicUsize::new(i), value: UnsafeCell::new(MaybeUninit::uninit()) })
            .collect();
        Ring {
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            slots,
            cap,
            mark,
            gate: mark * 2,
            one_lap: mark * 4,
        }
    }

    fn flags(&self) -> usize {
        self.mark | self.gate
    }

    /// The position after `pos` (index + 1, or the next lap's index 0).
    fn next(&self, pos: usize) -> usize {
        if (pos & (self.mark - 1)) + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Appends `v`. `Who::Fast` fails with `Gated` while the tail's gate is
    /// closed.
    pub fn push(&self, v: T, who: Who) -> Result<(), PushError<T>> {
        let mut step = 0;
        let mut tail = self.tail.0.load(Ordering::SeqCst);
        loop {
            if tail & self.mark != 0 {
                return Err(PushError::Closed(v));
            }
            if tail & self.gate != 0 && who == Who::Fast {
                return Err(PushError::Gated(v));
            }
            let pos = tail & !self.flags();
            let slot = &self.slots[pos & (self.mark - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos {
                // The slot is free for this lap: claim the position (the
                // gate bit, if set, stays).
                let new = self.next(pos) | (tail & self.gate);
                match self.tail.0.compare_exchange_weak(tail, new, Ordering::SeqCst, Ordering::Relaxed) {
                    Ok(_) => {
                        // SAFETY: the CAS made position `pos` ours alone:
                        // no other push writes it this lap, and no pop
                        // reads it before the stamp below says it is full.
                        slot.value.with_mut(|p| unsafe { (*p).write(v) });
                        slot.stamp.store(pos + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(t) => {
                        spin(&mut step);
                        tail = t;
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == pos + 1 {
                // The slot still holds the previous lap's value: full,
                // unless a pop has claimed it and is reading it. (No fence
                // before looking: a stale `head` can only report a full
                // ring that no longer is; the caller then takes the lock,
                // and a holder, after shutting pops out with a
                // read-modify-write of `head`, reads the latest one.)
                let head = self.head.0.load(Ordering::SeqCst) & !self.gate;
                if head.wrapping_add(self.one_lap) == pos {
                    return Err(PushError::Full(v));
                }
                spin(&mut step);
                tail = self.tail.0.load(Ordering::SeqCst);
            } else {
                // Another push claimed `pos` and is writing it, or `tail`
                // is stale.
                spin(&mut step);
                tail = self.tail.0.load(Ordering::SeqCst);
            }
        }
    }

    /// Takes the oldest value. `Who::Fast` fails with `Gated` while the
    /// head's gate is closed; `Closed` only once the ring is closed and
    /// empty.
    pub fn pop(&self, who: Who) -> Result<T, PopError> {
        let mut step = 0;
        let mut head = self.head.0.load(Ordering::SeqCst);
        loop {
            if head & self.gate != 0 && who == Who::Fast {
                return Err(PopError::Gated);
            }
            let pos = head & !self.gate;
            let slot = &self.slots[pos & (self.mark - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos + 1 {
                let new = self.next(pos) | (head & self.gate);
                match self.head.0.compare_exchange_weak(head, new, Ordering::SeqCst, Ordering::Relaxed) {
                    Ok(_) => {
                        // SAFETY: the CAS made position `pos` ours alone,
                        // and its stamp (Acquire) says the push that wrote
                        // it is done; the push a lap later waits for the
                        // stamp below.
                        let v = slot.value.with_mut(|p| unsafe { (*p).assume_init_read() });
                        slot.stamp.store(pos.wrapping_add(self.one_lap), Ordering::Release);
                        return Ok(v);
                    }
                    Err(h) => {
                        spin(&mut step);
                        head = h;
                    }
                }
            } else if stamp == pos {
                // Not written this lap: empty, unless a push has claimed it
                // and is writing it (a stale `tail` errs towards empty, as
                // `head` towards full in `push`).
                let tail = self.tail.0.load(Ordering::SeqCst);
                if tail & !self.flags() == pos {
                    return Err(if tail & self.mark != 0 { PopError::Closed } else { PopError::Empty });
                }
                spin(&mut step);
                head = self.head.0.load(Ordering::SeqCst);
            } else {
                spin(&mut step);
                head = self.head.0.load(Ordering::SeqCst);
            }
        }
    }

    fn end(&self, end: End) -> &AtomicUsize {
        match end {
            End::Head => &self.head.0,
            End::Tail => &self.tail.0,
        }
    }

    /// Closes `end`'s gate: from now on only `Who::Holder` pops (`Head`)
    /// or pushes (`Tail`). A fast one that claimed its position before
    /// this finishes (the holder's own push or pop waits for it); none
    /// succeeds after. Only the channel lock's holder calls this and
    /// `open_gate`.
    pub fn close_gate(&self, end: End) {
        self.end(end).fetch_or(self.gate, Ordering::SeqCst);
    }

    /// Opens `end`'s gate again.
    pub fn open_gate(&self, end: End) {
        self.end(end).fetch_and(!self.gate, Ordering::SeqCst);
    }

    /// Marks the ring closed: pushes fail from now on; pops drain what is
    /// left, then fail with `Closed`.
    pub fn close(&self) {
        self.tail.0.fetch_or(self.mark, Ordering::SeqCst);
    }

    /// Values in the ring (a snapshot: both ends are read together).
    pub fn len(&self) -> usize {
        loop {
            let tail = self.tail.0.load(Ordering::SeqCst);
            let head = self.head.0.load(Ordering::SeqCst);
            if self.tail.0.load(Ordering::SeqCst) == tail {
                let (t, h) = (tail & !self.flags(), head & !self.gate);
                let (ti, hi) = (t & (self.mark - 1), h & (self.mark - 1));
                return if hi < ti {
                    ti - hi
                } else if hi > ti {
                    self.cap - hi + ti
                } else if t == h {
                    0
                } else {
                    self.cap
                };
            }
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Every push and pop has finished (we own the ring): drop the
        // values between head and tail.
        let n = self.len();
        let hi = self.head.0.load(Ordering::Relaxed) & (self.mark - 1);
        for i in 0..n {
            let idx = if hi + i < self.cap { hi + i } else { hi + i - self.cap };
            // SAFETY: positions from head (inclusive) for `len` slots hold
            // values written by finished pushes and not yet popped.
            self.slots[idx].value.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}
