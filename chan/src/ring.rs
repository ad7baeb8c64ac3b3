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
use std::ptr::NonNull;

use crate::atomic::{spin, AtomicUsize, Ordering, UnsafeCell};

struct Slot<T> {
    /// `pos` of the push that may write the slot next, or `pos + 1` once
    /// that push wrote it (the pop of `pos` may read it).
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// One end: its position word and a copy of the ring's shape, so a push
/// or pop reads and writes its end and its slot and nothing else of the
/// ring.
#[repr(C)]
struct Side<T> {
    pos: AtomicUsize,
    shape: Shape<T>,
}

/// What a ring looks like: where its slots are and how positions encode.
struct Shape<T> {
    /// The ring's slots (`Ring::buf`), which outlive every use of this
    /// pointer.
    slots: NonNull<Slot<T>>,
    cap: usize,
    /// `tail`'s closed bit; also one above the largest index.
    mark: usize,
    /// One lap: added to a position when its index wraps. The gate bit is
    /// `mark * 2`, between the two.
    one_lap: usize,
    /// The owner's word, kept next to each end (the channel's synctest
    /// bubble, which its fast path must check).
    tag: u64,
}

impl<T> Shape<T> {
    fn gate(&self) -> usize {
        self.mark * 2
    }

    fn flags(&self) -> usize {
        self.mark * 3
    }

    /// The position after `pos` (index + 1, or the next lap's index 0).
    fn next(&self, pos: usize) -> usize {
        if (pos & (self.mark - 1)) + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// The slot of position `pos`.
    fn slot(&self, pos: usize) -> &Slot<T> {
        let i = pos & (self.mark - 1);
        assert!(i < self.cap, "ring index {i} out of {}", self.cap);
        // SAFETY: `slots` points at the ring's `buf` of `cap` slots, alive
        // as long as the ring (and `&self` borrows the ring), and `i < cap`.
        unsafe { &*self.slots.as_ptr().add(i) }
    }
}

/// Why a push failed; the value comes back.
#[derive(Debug)]
pub(crate) enum PushError<T> {
    Full(T),
    Closed(T),
    /// The tail's gate is closed: the caller must take the channel lock.
    Gated(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed, whatever the reason.
    pub(crate) fn into_value(self) -> T {
        match self {
            PushError::Full(v) | PushError::Closed(v) | PushError::Gated(v) => v,
        }
    }
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

/// The ring, with its owner's `mid` between the two ends: pushes write
/// `tail`, pops write `head`, and `mid` (the channel's lock and queues,
/// more than a cache line) keeps the two on different lines without
/// padding. (Each end on a 64-byte line of its own made a channel twice
/// as large, and a fresh one slower to share: skynet 1.11×.)
#[repr(C)]
pub(crate) struct Ring<T, M = ()> {
    head: Side<T>,
    pub mid: M,
    tail: Side<T>,
    /// The slots both sides point at: a boxed slice the ring owns, kept
    /// as a raw pointer (a `Box` moved into the ring would claim unique
    /// access and invalidate the sides' pointers under Rust's aliasing
    /// rules); freed in `Drop`.
    buf: NonNull<[Slot<T>]>,
}

// SAFETY: the raw slot pointers only point into `buf`, which the ring
// owns; values of T move between threads through the slots (T: Send), and
// every shared access to a slot follows the stamp protocol above.
unsafe impl<T: Send, M: Send> Send for Ring<T, M> {}
// SAFETY: as above; `mid` is shared as any field is.
unsafe impl<T: Send, M: Sync> Sync for Ring<T, M> {}

impl<T, M> Ring<T, M> {
    /// A ring of `cap` slots (0 is allowed: an unbuffered channel never
    /// uses its ring), with `tag` kept at each end and `mid` between them.
    ///
    /// # Panics
    /// `makechan: size out of range` when `cap` is too large to lay out.
    pub fn new(cap: usize, tag: u64, mid: M) -> Self {
        let mark = cap
            .checked_add(1)
            .and_then(usize::checked_next_power_of_two)
            .filter(|m| m.checked_mul(16).is_some())
            .expect("makechan: size out of range");
        let buf: Box<[Slot<T>]> = (0..cap)
            .map(|i| Slot { stamp: AtomicUsize::new(i), value: UnsafeCell::new(MaybeUninit::uninit()) })
            .collect();
        let buf = NonNull::from(Box::leak(buf));
        let slots = buf.cast::<Slot<T>>();
        let side = || Side { pos: AtomicUsize::new(0), shape: Shape { slots, cap, mark, one_lap: mark * 4, tag } };
        Ring { head: side(), mid, tail: side(), buf }
    }

    /// The owner's word, as kept at `end`.
    pub fn tag(&self, end: End) -> u64 {
        self.side(end).shape.tag
    }

    /// The number of slots.
    pub fn cap(&self) -> usize {
        self.head.shape.cap
    }

    /// Appends `v`. `Who::Fast` fails with `Gated` while the tail's gate is
    /// closed.
    pub fn push(&self, v: T, who: Who) -> Result<(), PushError<T>> {
        self.push_at(v, who).map(|_| ())
    }

    /// `push`, telling which slot (its index) took the value.
    pub fn push_at(&self, v: T, who: Who) -> Result<usize, PushError<T>> {
        let sh = &self.tail.shape;
        if sh.cap == 0 {
            return Err(PushError::Full(v));
        }
        let mut step = 0;
        let mut tail = self.tail.pos.load(Ordering::SeqCst);
        loop {
            if tail & sh.mark != 0 {
                return Err(PushError::Closed(v));
            }
            if tail & sh.gate() != 0 && who == Who::Fast {
                return Err(PushError::Gated(v));
            }
            let pos = tail & !sh.flags();
            let slot = sh.slot(pos);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos {
                // The slot is free for this lap: claim the position (the
                // gate bit, if set, stays).
                let new = sh.next(pos) | (tail & sh.gate());
                match self.tail.pos.compare_exchange_weak(tail, new, Ordering::SeqCst, Ordering::Relaxed) {
                    Ok(_) => {
                        // SAFETY: the CAS made position `pos` ours alone:
                        // no other push writes it this lap, and no pop
                        // reads it before the stamp below says it is full.
                        slot.value.with_mut(|p| unsafe { (*p).write(v) });
                        slot.stamp.store(pos + 1, Ordering::Release);
                        return Ok(pos & (sh.mark - 1));
                    }
                    Err(t) => {
                        spin(&mut step);
                        tail = t;
                    }
                }
            } else if stamp.wrapping_add(sh.one_lap) == pos + 1 {
                // The slot still holds the previous lap's value: full,
                // unless a pop has claimed it and is reading it. (No fence
                // before looking: a stale `head` can only report a full
                // ring that no longer is; the caller then takes the lock,
                // and a holder, after shutting pops out with a
                // read-modify-write of `head`, reads the latest one.)
                let head = self.head.pos.load(Ordering::SeqCst) & !sh.gate();
                if head.wrapping_add(sh.one_lap) == pos {
                    return Err(PushError::Full(v));
                }
                spin(&mut step);
                tail = self.tail.pos.load(Ordering::SeqCst);
            } else {
                // Another push claimed `pos` and is writing it, or `tail`
                // is stale.
                spin(&mut step);
                tail = self.tail.pos.load(Ordering::SeqCst);
            }
        }
    }

    /// Takes the oldest value. `Who::Fast` fails with `Gated` while the
    /// head's gate is closed; `Closed` only once the ring is closed and
    /// empty.
    pub fn pop(&self, who: Who) -> Result<T, PopError> {
        self.pop_at(who).map(|(v, _)| v)
    }

    /// `pop`, telling which slot (its index) held the value.
    pub fn pop_at(&self, who: Who) -> Result<(T, usize), PopError> {
        let sh = &self.head.shape;
        if sh.cap == 0 {
            return Err(PopError::Empty);
        }
        let mut step = 0;
        let mut head = self.head.pos.load(Ordering::SeqCst);
        loop {
            if head & sh.gate() != 0 && who == Who::Fast {
                return Err(PopError::Gated);
            }
            let pos = head & !sh.gate();
            let slot = sh.slot(pos);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == pos + 1 {
                let new = sh.next(pos) | (head & sh.gate());
                match self.head.pos.compare_exchange_weak(head, new, Ordering::SeqCst, Ordering::Relaxed) {
                    Ok(_) => {
                        // SAFETY: the CAS made position `pos` ours alone,
                        // and its stamp (Acquire) says the push that wrote
                        // it is done; the push a lap later waits for the
                        // stamp below.
                        let v = slot.value.with_mut(|p| unsafe { (*p).assume_init_read() });
                        slot.stamp.store(pos.wrapping_add(sh.one_lap), Ordering::Release);
                        return Ok((v, pos & (sh.mark - 1)));
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
                let tail = self.tail.pos.load(Ordering::SeqCst);
                if tail & !sh.flags() == pos {
                    return Err(if tail & sh.mark != 0 { PopError::Closed } else { PopError::Empty });
                }
                spin(&mut step);
                head = self.head.pos.load(Ordering::SeqCst);
            } else {
                spin(&mut step);
                head = self.head.pos.load(Ordering::SeqCst);
            }
        }
    }

    fn side(&self, end: End) -> &Side<T> {
        match end {
            End::Head => &self.head,
            End::Tail => &self.tail,
        }
    }

    /// Closes `end`'s gate: from now on only `Who::Holder` pops (`Head`)
    /// or pushes (`Tail`). A fast one that claimed its position before
    /// this finishes (the holder's own push or pop waits for it); none
    /// succeeds after. Only the channel lock's holder calls this and
    /// `open_gate`.
    pub fn close_gate(&self, end: End) {
        let side = self.side(end);
        side.pos.fetch_or(side.shape.gate(), Ordering::SeqCst);
    }

    /// Whether `end`'s gate is shut (for tests).
    #[cfg(test)]
    pub fn gate_shut(&self, end: End) -> bool {
        let side = self.side(end);
        side.pos.load(Ordering::SeqCst) & side.shape.gate() != 0
    }

    /// Opens `end`'s gate again.
    pub fn open_gate(&self, end: End) {
        let side = self.side(end);
        side.pos.fetch_and(!side.shape.gate(), Ordering::SeqCst);
    }

    /// Marks the ring closed: pushes fail from now on; pops drain what is
    /// left, then fail with `Closed`.
    pub fn close(&self) {
        self.tail.pos.fetch_or(self.tail.shape.mark, Ordering::SeqCst);
    }

    /// Values in the ring (a snapshot: both ends are read together).
    pub fn len(&self) -> usize {
        let sh = &self.head.shape;
        loop {
            let tail = self.tail.pos.load(Ordering::SeqCst);
            let head = self.head.pos.load(Ordering::SeqCst);
            if self.tail.pos.load(Ordering::SeqCst) == tail {
                let (t, h) = (tail & !sh.flags(), head & !sh.gate());
                let (ti, hi) = (t & (sh.mark - 1), h & (sh.mark - 1));
                return if hi < ti {
                    ti - hi
                } else if hi > ti {
                    sh.cap - hi + ti
                } else if t == h {
                    0
                } else {
                    sh.cap
                };
            }
        }
    }
}

impl<T, M> Drop for Ring<T, M> {
    fn drop(&mut self) {
        // Every push and pop has finished (we own the ring): drop the
        // values between head and tail.
        let n = self.len();
        let cap = self.cap();
        let hi = self.head.pos.load(Ordering::Relaxed) & (self.head.shape.mark - 1);
        for i in 0..n {
            let idx = if hi + i < cap { hi + i } else { hi + i - cap };
            // SAFETY: positions from head (inclusive) for `len` slots hold
            // values written by finished pushes and not yet popped.
            self.head.shape.slot(idx).value.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
        // SAFETY: `buf` came from `Box::leak` in `new` and is freed only
        // here; no slot reference outlives this point. The slots' values
        // are `MaybeUninit` (the live ones were dropped above).
        drop(unsafe { Box::from_raw(self.buf.as_ptr()) });
    }
}
