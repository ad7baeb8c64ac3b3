//! `Chan<T>`: Go's `hchan` (`runtime/chan.go`).
//!
//! A channel is a lock, a FIFO ring buffer of `cap` values, and two FIFO wait
//! queues of sudogs (blocked receivers, blocked senders). The rules, as Go's:
//!
//! - A send with a receiver waiting hands the value straight to it (no trip
//!   through the buffer) and readies it into the current P's `runnext`, so a
//!   ping-pong pair stays on one P.
//! - Otherwise a send goes into the buffer if there is room, else blocks.
//! - A receive with a sender waiting: unbuffered, takes the sender's value;
//!   buffered (the buffer is then full), takes the head of the buffer and
//!   puts the sender's value at the tail, so FIFO order holds.
//! - Otherwise a receive takes from the buffer if non-empty; on a closed,
//!   drained channel it returns `None`; else it blocks.
//! - `close` wakes every blocked receiver (`None`) and sender (their value
//!   comes back in `SendError`). Closing twice panics, as in Go.
//!
//! All queue state is touched with the lock held. A buffered channel's
//! buffer is a lock-free ring (`ring.rs`): a send or receive whose end of
//! the ring has no G waiting on it (its gate open) pushes or pops without
//! the lock (crossbeam-channel's `array` flavor). Before a G waits, the locked
//! operation closes the ring's gate on the side the G waits for (pushes
//! for a receiver, pops for a sender), and it stays closed while one
//! waits, so everything that parks, wakes or hands a value over runs under
//! the lock as in Go. `closed` is mirrored in an atomic so `is_closed`
//! needs no lock.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro_runtime::internals::{bubble_mismatch, current_bubble_id, park_woken_by, WokenBy};
use goro_runtime::{preempt_point, Unparker, WaitReason};

use crate::error::{RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use crate::lock::RawLock;
use crate::ring::{End, Ring, Who};
use crate::sudog::{Sudog, Waiting};

/// A channel is its ring (the buffer, of the channel's capacity; 0:
/// unbuffered, the ring is never used) with the rest of the channel
/// between the ring's two ends (`ring.rs`): a fast send or receive touches
/// its end and its slot, nothing else.
pub(crate) struct HChan<T> {
    ring: Ring<T, Core<T>>,
}

/// Everything of a channel but its buffer.
pub(crate) struct Core<T> {
    /// The synctest bubble of the creator (0: none): only its Gs may use
    /// the channel, and a wait on it is durable. (Also the ring's tag: the
    /// fast path runs only for channels of no bubble.)
    bubble: u64,
    closed: AtomicBool,
    /// Taken through `lock`/`unlock` (`unlock` opens the ring's gates
    /// nobody needs shut any more).
    mutex: RawLock,
    state: UnsafeCell<State<T>>,
}

pub(crate) struct State<T> {
    closed: bool,
    /// Whether the ring's gate of pops is closed (buffered channels only):
    /// from a sender's decision to wait until no sender waits.
    head_gated: bool,
    /// Whether the ring's gate of pushes is closed: from a receiver's
    /// decision to wait until no receiver waits.
    tail_gated: bool,
    pub recvq: VecDeque<*const Sudog<T>>,
    pub sendq: VecDeque<*const Sudog<T>>,
}

// SAFETY: `state` is only accessed with the lock held; sudog pointers in
// the queues follow the protocol in sudog.rs; the ring's slots follow
// ring.rs. Values of T move between threads, hence T: Send.
unsafe impl<T: Send> Send for HChan<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for HChan<T> {}

// A panic never leaves a channel half-updated (the only user-caused panic
// under the lock, double close, releases it first; the others are checks
// of the ring's invariants, i.e. bugs of ours), so handles may cross
// `catch_unwind`.
impl<T> std::panic::RefUnwindSafe for HChan<T> {}
impl<T> std::panic::UnwindSafe for HChan<T> {}

/// A send or receive that completes on the ring is a preemption point
/// only when its slot's index is a multiple of this (at least once a lap,
/// and once in 64 slots of a large ring): the check costs a thread-local
/// read, 8% of prodcons when every operation made it, and a G streaming
/// through a channel still meets one every few dozen operations (time
/// slices and sysmon's progress count see it; Go's channel operations are
/// no preemption points at all, its preemption is asynchronous).
const PREEMPT_EVERY: usize = 64;

/// What a send attempt under the lock did.
pub(crate) enum SendNow<T> {
    Sent(Option<Unparker>),
    Closed(T),
    WouldBlock(T),
}

/// What a receive attempt under the lock did.
pub(crate) enum RecvNow<T> {
    Got(T, Option<Unparker>),
    Closed,
    WouldBlock,
}

impl<T> HChan<T> {
    fn new(cap: usize, bubble: u64) -> Self {
        let core = Core {
            bubble,
            closed: AtomicBool::new(false),
            mutex: RawLock::new(),
            state: UnsafeCell::new(State {
                closed: false,
                head_gated: false,
                tail_gated: false,
                recvq: VecDeque::new(),
                sendq: VecDeque::new(),
            }),
        };
        HChan { ring: Ring::new(cap, bubble, core) }
    }

    /// The synctest bubble of the creator (0: none).
    pub fn bubble(&self) -> u64 {
        self.ring.mid.bubble
    }

    /// Takes the channel lock.
    pub fn lock(&self) {
        self.ring.mid.mutex.lock();
    }

    /// Releases the lock, opening each gate of the ring whose waiters are
    /// all gone (a waiter must be woken by whoever makes its operation
    /// possible, and only lock holders do that).
    pub fn unlock(&self) {
        if self.cap() > 0 {
            // SAFETY: the lock is held; the borrow ends here.
            let st = unsafe { self.st() };
            if st.head_gated && st.sendq.is_empty() {
                self.ring.open_gate(End::Head);
                st.head_gated = false;
            }
            if st.tail_gated && st.recvq.is_empty() {
                self.ring.open_gate(End::Tail);
                st.tail_gated = false;
            }
        }
        self.ring.mid.mutex.unlock();
    }

    /// Closes the ring's gate at `end` unless `shut` says it is. Lock held
    /// (`shut` is the state's record of that gate).
    fn shut(&self, shut: &mut bool, end: End) {
        if !*shut {
            self.ring.close_gate(end);
            *shut = true;
        }
    }

    /// The lock-free send: `Err` gives `v` back when it must take the lock
    /// (unbuffered, full, closed, or the gate is closed). `Ok(true)`: a
    /// preemption point is due (see `PREEMPT_EVERY`).
    #[inline]
    pub fn send_fast(&self, v: T) -> Result<bool, T> {
        if self.ring.tag(End::Tail) != 0 {
            return Err(v);
        }
        match self.ring.push_at(v, Who::Fast) {
            Ok(i) => Ok(i % PREEMPT_EVERY == 0),
            Err(e) => Err(e.into_value()),
        }
    }

    /// The lock-free receive: `None` when it must take the lock
    /// (unbuffered, empty, closed, or the gate is closed); with the value,
    /// whether a preemption point is due.
    #[inline]
    pub fn recv_fast(&self) -> Option<(T, bool)> {
        if self.ring.tag(End::Head) != 0 {
            return None;
        }
        self.ring.pop_at(Who::Fast).ok().map(|(v, i)| (v, i % PREEMPT_EVERY == 0))
    }

    /// How every blocking or non-blocking send of `Chan` begins: the
    /// lock-free push (then a preemption point only if one is due), or,
    /// when the send must take the lock, the preemption point and the
    /// bubble check (the fast path runs only for channels of no bubble, so
    /// it needs none). `Err` gives `v` back for the locked path.
    fn begin_send(&self, v: T) -> Result<(), T> {
        match self.send_fast(v) {
            Ok(due) => {
                if due {
                    preempt_point();
                }
                Ok(())
            }
            Err(v) => {
                preempt_point();
                self.check_bubble();
                Err(v)
            }
        }
    }

    /// `begin_send` for receives: `Some` is the value the ring gave.
    fn begin_recv(&self) -> Option<T> {
        match self.recv_fast() {
            Some((v, due)) => {
                if due {
                    preempt_point();
                }
                Some(v)
            }
            None => {
                preempt_point();
                self.check_bubble();
                None
            }
        }
    }

    /// Values in the buffer.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// The buffer's capacity.
    pub fn cap(&self) -> usize {
        self.ring.cap()
    }

    /// A lock-free guess that a receive would not block (buffered value, or
    /// closed); may be stale either way.
    pub fn recv_hint(&self) -> bool {
        self.len() > 0 || self.ring.mid.closed.load(Ordering::Relaxed)
    }

    /// A lock-free guess that a send would not block (room in the buffer,
    /// or closed); may be stale either way.
    pub fn send_hint(&self) -> bool {
        self.len() < self.cap() || self.ring.mid.closed.load(Ordering::Relaxed)
    }

    /// Who may end a wait on this channel: the bubble's Gs for a channel
    /// of a synctest bubble (a durable wait), else whoever holds a handle.
    /// Deadlock detection counts such a wait as internal: it reports only
    /// when no thread outside the runtime exists that could hold a handle
    /// (`dump.rs`, `no_thread_outside`).
    pub fn woken_by(&self) -> WokenBy {
        if self.bubble() != 0 {
            WokenBy::Bubble
        } else {
            WokenBy::RuntimeOnly
        }
    }

    /// Panics unless the caller runs in the channel's bubble (if it has one).
    #[inline]
    #[track_caller]
    pub fn check_bubble(&self) {
        let b = self.bubble();
        if b != 0 && b != current_bubble_id() {
            bubble_mismatch(b, "channel");
        }
    }

    /// # Safety
    /// The caller holds the lock, and keeps only one such borrow at a time.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn st(&self) -> &mut State<T> {
        // SAFETY: the lock is held and this is the only borrow (contract).
        unsafe { &mut *self.ring.mid.state.get() }
    }

    /// Pops the first waiter whose operation can still be claimed (a select
    /// may have completed elsewhere: its stale sudogs are dropped here).
    ///
    /// # Safety
    /// Lock held.
    unsafe fn dequeue(q: &mut VecDeque<*const Sudog<T>>) -> Option<&Sudog<T>> {
        while let Some(sg) = q.pop_front() {
            // SAFETY: a queued sudog is alive (its G is blocked in the
            // operation until it is dequeued or unlinked under the lock,
            // which the caller holds).
            let sg = unsafe { &*sg };
            // SAFETY: queued, and the lock is held.
            if unsafe { sg.waiting() }.claim() {
                return Some(sg);
            }
        }
        None
    }

    /// Go's `chansend` minus blocking. Lock held.
    ///
    /// # Safety
    /// Lock held.
    pub unsafe fn send_locked(&self, v: T) -> SendNow<T> {
        // SAFETY: the caller holds the lock; `st` is the only borrow here.
        let st = unsafe { self.st() };
        if st.closed {
            return SendNow::Closed(v);
        }
        // SAFETY: the lock is held.
        if let Some(sg) = unsafe { Self::dequeue(&mut st.recvq) } {
            // SAFETY: we claimed the receiver's operation: its slot is ours
            // to fill until `finish` publishes it; the lock is held.
            unsafe {
                *sg.slot.get() = Some(v);
                return SendNow::Sent(Some(sg.waiting().finish(sg.case, true)));
            }
        }
        if self.cap() == 0 {
            return SendNow::WouldBlock(v);
        }
        // Callers come here when the lock-free push failed: the ring is
        // probably full. A fast pop may free a slot at any moment, so shut
        // pops out before looking: a ring full now then stays full while
        // we queue (a receiver moves our value in under the lock, as in
        // Go).
        self.shut(&mut st.head_gated, End::Head);
        match self.ring.push(v, Who::Holder) {
            Ok(()) => SendNow::Sent(None),
            Err(e) => SendNow::WouldBlock(e.into_value()),
        }
    }

    /// Go's `chanrecv` minus blocking.
    ///
    /// # Safety
    /// Lock held.
    pub unsafe fn recv_locked(&self) -> RecvNow<T> {
        // SAFETY: the caller holds the lock; `st` is the only borrow here.
        let st = unsafe { self.st() };
        // SAFETY: the lock is held.
        if let Some(sg) = unsafe { Self::dequeue(&mut st.sendq) } {
            // SAFETY: we claimed the sender's operation: its slot is ours
            // to take until `finish`; the lock is held.
            let theirs = unsafe { (*sg.slot.get()).take() }.expect("a blocked sender has a value");
            let v = if self.cap() == 0 {
                theirs
            } else {
                // The buffer is full (a sender waits, so pops are shut
                // out): take its head, the sender's value goes to the
                // tail. Shut pushes out too, so the freed slot is the
                // sender's.
                self.shut(&mut st.tail_gated, End::Tail);
                let head = self.ring.pop(Who::Holder).expect("a sender waits on a full buffer");
                if self.ring.push(theirs, Who::Holder).is_err() {
                    unreachable!("a pop under the lock left no room");
                }
                head
            };
            // SAFETY: still queued-and-claimed by us, lock held.
            return RecvNow::Got(v, Some(unsafe { sg.waiting() }.finish(sg.case, true)));
        }
        if self.cap() > 0 {
            if !st.closed {
                // As in `send_locked`: the ring is probably empty, and a
                // fast push may fill it at any moment; shut pushes out
                // before looking, so an empty ring stays empty while we
                // queue (a sender hands its value to us under the lock).
                self.shut(&mut st.tail_gated, End::Tail);
            }
            if let Ok(v) = self.ring.pop(Who::Holder) {
                return RecvNow::Got(v, None);
            }
        }
        if st.closed {
            return RecvNow::Closed;
        }
        RecvNow::WouldBlock
    }

    /// Parks until the queued operation `w` completes (`Some(success)`) or
    /// `deadline` passes (`None`: the caller must unlink its sudog).
    fn wait(&self, w: &Waiting, reason: WaitReason, deadline: Option<Instant>) -> Option<bool> {
        match deadline {
            None => Some(w.wait(reason, self.woken_by()).1),
            Some(d) => w.wait_until(reason, d, self.woken_by()).map(|(_, ok)| ok),
        }
    }

    /// Takes the lock and removes `sg` from the queue `q` picks, if there.
    fn unlink_locked(&self, q: impl FnOnce(&mut State<T>) -> &mut VecDeque<*const Sudog<T>>, sg: &Sudog<T>) {
        self.lock();
        // SAFETY: lock held.
        unsafe { Self::unlink(q(self.st()), sg) };
        self.unlock();
    }

    /// Removes `sg` from a queue if it is still there.
    ///
    /// # Safety
    /// Lock held.
    pub unsafe fn unlink(q: &mut VecDeque<*const Sudog<T>>, sg: *const Sudog<T>) {
        if let Some(i) = q.iter().position(|&p| std::ptr::eq(p, sg)) {
            q.remove(i);
        }
    }

    fn close(&self) {
        let mut wake = Vec::new();
        self.lock();
        // SAFETY: lock held.
        let st = unsafe { self.st() };
        if st.closed {
            self.unlock();
            panic!("close of closed channel");
        }
        st.closed = true;
        // The ring first: whoever sees `is_closed` (Acquire) then finds
        // every push failing.
        self.ring.close();
        self.ring.mid.closed.store(true, Ordering::Release);
        // SAFETY: lock held; queued sudogs are alive (sudog.rs).
        unsafe {
            while let Some(sg) = Self::dequeue(&mut st.recvq) {
                wake.push(sg.waiting().finish(sg.case, false));
            }
            while let Some(sg) = Self::dequeue(&mut st.sendq) {
                wake.push(sg.waiting().finish(sg.case, false));
            }
        }
        self.unlock();
        for u in wake {
            u.unpark_owned();
        }
    }
}

/// A Go channel. Cloning gives another handle to the same channel (`Clone`
/// is cheap); all operations work from Gs (which park) and from plain
/// threads (which block).
///
/// ```
/// use goro_chan::Chan;
/// let ch = Chan::new(1);
/// ch.send(5).unwrap();
/// assert_eq!(ch.recv(), Some(5));
/// ch.close();
/// assert_eq!(ch.recv(), None);
/// ```
pub struct Chan<T> {
    pub(crate) inner: Option<Arc<HChan<T>>>,
}

/// Go's nil channel: sends and receives block forever, and in a select its
/// arms are never ready.
pub fn nil<T>() -> Chan<T> {
    Chan { inner: None }
}

impl<T> Clone for Chan<T> {
    fn clone(&self) -> Self {
        Chan { inner: self.inner.clone() }
    }
}

impl<T> PartialEq for Chan<T> {
    /// Channels are equal when they are the same channel (or both nil), as in Go.
    fn eq(&self, o: &Self) -> bool {
        match (&self.inner, &o.inner) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}
impl<T> Eq for Chan<T> {}

impl<T> fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("Chan(nil)"),
            Some(h) => f
                .debug_struct("Chan")
                .field("len", &self.len())
                .field("cap", &h.cap())
                .field("closed", &self.is_closed())
                .finish(),
        }
    }
}

/// How a blocking operation ended: its result, or closed / timed out with
/// what goes back to the caller.
enum Done<T, B> {
    Ok(T),
    Closed(B),
    Timeout(B),
}

/// Wakes the G a channel operation completed, if any (after unlocking).
pub(crate) fn wake(u: Option<Unparker>) {
    if let Some(u) = u {
        u.unpark_owned();
    }
}

fn block_forever(reason: WaitReason) -> ! {
    loop {
        // Nothing wakes it: durable in a bubble, as in Go.
        park_woken_by(reason, WokenBy::Bubble);
    }
}

impl<T> Chan<T> {
    /// A channel with a buffer of `cap` values; `cap == 0` is unbuffered
    /// (every send waits for a receiver).
    pub fn new(cap: usize) -> Self {
        Chan { inner: Some(Arc::new(HChan::new(cap, current_bubble_id()))) }
    }

    /// Whether this is a nil channel.
    pub fn is_nil(&self) -> bool {
        self.inner.is_none()
    }

    /// Sends `v`, parking while the channel is full (or, unbuffered, until a
    /// receiver takes it). `Err` gives `v` back if the channel is closed.
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        match self.send_until(v, None) {
            Done::Ok(()) => Ok(()),
            Done::Closed(v) | Done::Timeout(v) => Err(SendError(v)),
        }
    }

    /// Receives a value, parking while the channel is empty. `None` once the
    /// channel is closed and drained (Go's `v, ok := <-ch` with `ok == false`).
    pub fn recv(&self) -> Option<T> {
        match self.recv_until(None) {
            Done::Ok(v) => Some(v),
            Done::Closed(()) | Done::Timeout(()) => None,
        }
    }

    /// Sends without blocking.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let Some(h) = &self.inner else { return Err(TrySendError::Full(v)) };
        let v = match h.begin_send(v) {
            Ok(()) => return Ok(()),
            Err(v) => v,
        };
        h.lock();
        // SAFETY: lock held.
        let r = unsafe { h.send_locked(v) };
        h.unlock();
        match r {
            SendNow::Sent(u) => {
                wake(u);
                Ok(())
            }
            SendNow::Closed(v) => Err(TrySendError::Closed(v)),
            SendNow::WouldBlock(v) => Err(TrySendError::Full(v)),
        }
    }

    /// Receives without blocking.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let Some(h) = &self.inner else { return Err(TryRecvError::Empty) };
        if let Some(v) = h.begin_recv() {
            return Ok(v);
        }
        h.lock();
        // SAFETY: lock held.
        let r = unsafe { h.recv_locked() };
        h.unlock();
        match r {
            RecvNow::Got(v, u) => {
                wake(u);
                Ok(v)
            }
            RecvNow::Closed => Err(TryRecvError::Closed),
            RecvNow::WouldBlock => Err(TryRecvError::Empty),
        }
    }

    /// Sends, waiting at most `d`.
    pub fn send_timeout(&self, v: T, d: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(v, goro_runtime::deadline_after(d))
    }

    /// Sends, waiting until `deadline` at most.
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        match self.send_until(v, Some(deadline)) {
            Done::Ok(()) => Ok(()),
            Done::Closed(v) => Err(SendTimeoutError::Closed(v)),
            Done::Timeout(v) => Err(SendTimeoutError::Timeout(v)),
        }
    }

    /// Receives, waiting at most `d`.
    pub fn recv_timeout(&self, d: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(goro_runtime::deadline_after(d))
    }

    /// Receives, waiting until `deadline` at most.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        match self.recv_until(Some(deadline)) {
            Done::Ok(v) => Ok(v),
            Done::Closed(()) => Err(RecvTimeoutError::Closed),
            Done::Timeout(()) => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Go's `chansend`: sends, blocking until done, closed, or `deadline`.
    fn send_until(&self, v: T, deadline: Option<Instant>) -> Done<(), T> {
        let Some(h) = &self.inner else {
            match deadline {
                None => block_forever(WaitReason::ChanSendNilChan),
                Some(d) => {
                    goro_runtime::sleep_until(d);
                    return Done::Timeout(v);
                }
            }
        };
        let v = match h.begin_send(v) {
            Ok(()) => return Done::Ok(()),
            Err(v) => v,
        };
        h.lock();
        // SAFETY: lock held.
        let v = match unsafe { h.send_locked(v) } {
            SendNow::Sent(u) => {
                h.unlock();
                wake(u);
                return Done::Ok(());
            }
            SendNow::Closed(v) => {
                h.unlock();
                return Done::Closed(v);
            }
            SendNow::WouldBlock(v) => v,
        };
        let w = Waiting::new();
        let sg = Sudog::new(&w, 0, Some(v));
        // SAFETY: lock held; `sg` outlives its time in the queue: we return
        // only once it is DONE (dequeued by a waker) or unlinked below.
        unsafe { h.st().sendq.push_back(&sg) };
        h.unlock();
        let take = || {
            // SAFETY: no waker touches `sg` any more (DONE, or cancelled and unlinked).
            unsafe { (*sg.slot.get()).take() }.expect("value not sent")
        };
        match h.wait(&w, WaitReason::ChanSend, deadline) {
            Some(true) => Done::Ok(()),
            Some(false) => Done::Closed(take()),
            None => {
                h.unlink_locked(|st| &mut st.sendq, &sg);
                Done::Timeout(take())
            }
        }
    }

    /// Go's `chanrecv`: receives, blocking until a value, close, or `deadline`.
    fn recv_until(&self, deadline: Option<Instant>) -> Done<T, ()> {
        let Some(h) = &self.inner else {
            match deadline {
                None => block_forever(WaitReason::ChanReceiveNilChan),
                Some(d) => {
                    goro_runtime::sleep_until(d);
                    return Done::Timeout(());
                }
            }
        };
        if let Some(v) = h.begin_recv() {
            return Done::Ok(v);
        }
        h.lock();
        // SAFETY: lock held.
        match unsafe { h.recv_locked() } {
            RecvNow::Got(v, u) => {
                h.unlock();
                wake(u);
                return Done::Ok(v);
            }
            RecvNow::Closed => {
                h.unlock();
                return Done::Closed(());
            }
            RecvNow::WouldBlock => {}
        }
        let w = Waiting::new();
        let sg = Sudog::new(&w, 0, None);
        // SAFETY: as in `send_until`.
        unsafe { h.st().recvq.push_back(&sg) };
        h.unlock();
        match h.wait(&w, WaitReason::ChanReceive, deadline) {
            // SAFETY: DONE: the sender wrote the slot before its Release.
            Some(true) => Done::Ok(unsafe { (*sg.slot.get()).take() }.expect("value delivered")),
            Some(false) => Done::Closed(()),
            None => {
                h.unlink_locked(|st| &mut st.recvq, &sg);
                Done::Timeout(())
            }
        }
    }

    /// Closes the channel: blocked receivers get `None` (after the buffer
    /// drains), blocked senders get their value back in `SendError`.
    ///
    /// # Panics
    /// `close of closed channel` if already closed; `close of nil channel`
    /// on a nil channel (both as in Go).
    pub fn close(&self) {
        match &self.inner {
            None => panic!("close of nil channel"),
            Some(h) => {
                h.check_bubble();
                h.close()
            }
        }
    }

    /// `close` without the bubble check, for the runtime's own closes that
    /// may run outside the channel's bubble (a context's cancel).
    pub(crate) fn close_unchecked(&self) {
        if let Some(h) = &self.inner {
            h.close();
        }
    }

    /// Who may end a wait on this channel (a nil channel: nobody, as
    /// durable as it gets).
    pub(crate) fn woken_by(&self) -> WokenBy {
        self.inner.as_ref().map_or(WokenBy::Bubble, |h| h.woken_by())
    }

    /// A channel that belongs to no synctest bubble even when made in one.
    pub(crate) fn new_outside_bubbles(cap: usize) -> Self {
        Chan { inner: Some(Arc::new(HChan::new(cap, 0))) }
    }

    /// Values in the buffer.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |h| h.len())
    }

    /// Whether the buffer holds no value (always true for unbuffered and nil channels).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buffer capacity (0 for unbuffered and nil channels).
    pub fn cap(&self) -> usize {
        self.inner.as_ref().map_or(0, |h| h.cap())
    }

    /// Whether `close` has been called (a nil channel is never closed).
    pub fn is_closed(&self) -> bool {
        self.inner.as_ref().is_some_and(|h| h.ring.mid.closed.load(Ordering::Acquire))
    }

    /// Iterates over received values until the channel is closed and drained
    /// (Go's `for v := range ch`).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { ch: self }
    }
}

/// Iterator over a channel's values, ending at close.
pub struct Iter<'a, T> {
    ch: &'a Chan<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.ch.recv()
    }
}

impl<'a, T> IntoIterator for &'a Chan<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Owning iterator over a channel's values, ending at close.
pub struct IntoIter<T> {
    ch: Chan<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.ch.recv()
    }
}

impl<T> IntoIterator for Chan<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { ch: self }
    }
}

/// Anything that is, or holds, a channel of `T` (a `Chan`, a `Ticker`, a
/// `Timer`), so it can appear in `select!`.
pub trait AsChan<T> {
    /// The channel `select!` operates on.
    fn as_chan(&self) -> &Chan<T>;
}

impl<T> AsChan<T> for Chan<T> {
    fn as_chan(&self) -> &Chan<T> {
        self
    }
}

impl<T, C: AsChan<T>> AsChan<T> for &C {
    fn as_chan(&self) -> &Chan<T> {
        (**self).as_chan()
    }
}

impl<T> std::fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntoIter").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Chan;
    use crate::ring::End;

    /// (pops shut, pushes shut)
    fn gates(ch: &Chan<u32>) -> (bool, bool) {
        let h = ch.inner.as_deref().expect("not nil");
        (h.ring.gate_shut(End::Head), h.ring.gate_shut(End::Tail))
    }

    /// (receivers, senders) queued.
    fn queued(ch: &Chan<u32>) -> (usize, usize) {
        let h = ch.inner.as_deref().expect("not nil");
        h.lock();
        // SAFETY: lock held; the borrow ends here.
        let n = unsafe { (h.st().recvq.len(), h.st().sendq.len()) };
        h.unlock();
        n
    }

    fn wait_queued(ch: &Chan<u32>, want: (usize, usize)) {
        let start = std::time::Instant::now();
        while queued(ch) != want {
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "never queued {want:?}");
            std::thread::yield_now();
        }
    }

    /// While nobody waits, buffered sends and receives take no lock: they
    /// complete while another thread holds the channel's lock.
    #[test]
    fn buffered_operations_need_no_lock_while_nobody_waits() {
        let ch = Chan::new(4);
        let h = ch.inner.as_deref().expect("not nil");
        h.lock();
        let c = ch.clone();
        let t = std::thread::spawn(move || {
            c.try_send(1).unwrap();
            c.send(2).unwrap();
            (c.try_recv(), c.recv())
        });
        let start = std::time::Instant::now();
        while !t.is_finished() && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let done = t.is_finished();
        h.unlock();
        assert!(done, "a send or receive waited for the channel lock");
        assert_eq!(t.join().unwrap(), (Ok(1), Some(2)));
    }

    /// A gate is shut exactly while someone waits for its end, and opens
    /// when the last one leaves (a gate left shut would lose the fast path
    /// for good, unnoticed by every other test: each operation would still
    /// be right, only slower).
    #[test]
    fn a_gate_is_shut_while_someone_waits_for_its_end_and_opens_after() {
        let ch = Chan::new(1);
        assert_eq!(gates(&ch), (false, false));
        // A receiver waits on the empty channel: pushes are shut out.
        let c = ch.clone();
        let r = std::thread::spawn(move || c.recv());
        wait_queued(&ch, (1, 0));
        assert_eq!(gates(&ch), (false, true));
        ch.send(1).unwrap();
        assert_eq!(r.join().unwrap(), Some(1));
        assert_eq!(gates(&ch), (false, false));
        // A sender waits on the full channel: pops are shut out.
        ch.send(2).unwrap();
        let c = ch.clone();
        let s = std::thread::spawn(move || c.send(3).unwrap());
        wait_queued(&ch, (0, 1));
        assert_eq!(gates(&ch), (true, false));
        assert_eq!(ch.recv(), Some(2));
        s.join().unwrap();
        assert_eq!(gates(&ch), (false, false));
        assert_eq!(ch.recv(), Some(3));
        // Failed non-blocking operations leave them open.
        assert!(ch.try_recv().is_err());
        ch.try_send(4).unwrap();
        assert!(ch.try_send(5).is_err());
        assert_eq!(gates(&ch), (false, false));
        // A receive that times out leaves with its gate opened behind it.
        assert_eq!(ch.recv(), Some(4));
        assert!(ch.recv_timeout(std::time::Duration::from_millis(5)).is_err());
        assert_eq!(queued(&ch), (0, 0));
        assert_eq!(gates(&ch), (false, false));
    }
}
