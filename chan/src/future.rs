//! Future adapters: `Chan::recv_async` and `Chan::send_async`, so `async`
//! code (driven by `goro::block_on`, or any executor) can wait on a goro
//! channel.
//!
//! A pending operation queues a sudog like a blocked G does, but its
//! `Waiting` wakes the task's `Waker` instead of a G. The sudog lives in a
//! box owned by the future, so its address is stable across polls; dropping
//! the future unlinks it. A value delivered to a future that is dropped
//! before being polled again is dropped with it (as with any cancelled
//! receive that already completed).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use goro_runtime::Unparker;

use crate::chan::{wake, Chan, HChan, RecvNow, SendNow, State};
use crate::error::SendError;
use crate::sudog::{Sudog, Waiting};

/// The future returned by [`Chan::recv_async`].
#[must_use = "futures do nothing unless polled"]
pub struct RecvFuture<'a, T> {
    ch: &'a Chan<T>,
    pending: Option<Box<(Waiting, Sudog<T>)>>,
}

impl<T> Chan<T> {
    /// Receives as a future: `Some(v)`, or `None` once closed and drained.
    /// On a nil channel it never completes.
    pub fn recv_async(&self) -> RecvFuture<'_, T> {
        RecvFuture { ch: self, pending: None }
    }
}

impl<T> Unpin for RecvFuture<'_, T> {}

// SAFETY: the boxed waiter's raw pointers point into the box itself (which
// moves with the future) and are touched by other threads only under the
// channel lock; values of T cross threads, hence T: Send.
unsafe impl<T: Send> Send for RecvFuture<'_, T> {}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let Some(h) = self.ch.inner.as_deref() else { return Poll::Pending };
        if let Some(b) = &self.pending {
            let Poll::Ready(ok) = poll_queued(h, b, cx, goro_runtime::WaitReason::ChanReceive) else {
                return Poll::Pending;
            };
            let b = self.pending.take().expect("pending");
            // SAFETY: DONE: the sender wrote the slot before its Release.
            return Poll::Ready(if ok { unsafe { (*b.1.slot.get()).take() } } else { None });
        }
        if let Some((v, _)) = h.recv_fast() {
            return Poll::Ready(Some(v));
        }
        h.lock();
        // SAFETY: lock held.
        match unsafe { h.recv_locked() } {
            RecvNow::Got(v, u) => {
                h.unlock();
                wake(u);
                Poll::Ready(Some(v))
            }
            RecvNow::Closed => {
                h.unlock();
                Poll::Ready(None)
            }
            RecvNow::WouldBlock => {
                let mut b =
                    Box::new((Waiting::with_unparker(Unparker::from_waker(cx.waker().clone())), Sudog::new_blank()));
                b.1.waiting = &b.0;
                // SAFETY: lock held; the box outlives its time in the queue
                // (Drop unlinks it).
                unsafe { h.st().recvq.push_back(&b.1) };
                self.pending = Some(b);
                h.unlock();
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        if let (Some(b), Some(h)) = (&self.pending, self.ch.inner.as_deref()) {
            withdraw(h, b, |st| &mut st.recvq);
        }
    }
}

/// A queued operation of a future: `Ready(ok)` once a peer finished it
/// (`ok`: it completed, not closed), else its waker is refreshed.
fn poll_queued<T>(
    h: &HChan<T>,
    b: &(Waiting, Sudog<T>),
    cx: &Context<'_>,
    reason: goro_runtime::WaitReason,
) -> Poll<bool> {
    h.lock();
    if !b.0.done() {
        // SAFETY: lock held; the op is queued on this channel only.
        unsafe { b.0.set_unparker(Unparker::from_waker(cx.waker().clone())) };
        h.unlock();
        return Poll::Pending;
    }
    h.unlock();
    let (_, ok) = b.0.wait(reason, goro_runtime::internals::WokenBy::AnyThread);
    Poll::Ready(ok)
}

/// A dropped future's queued operation leaves `queue` (unless a peer
/// claimed it and finished it under the lock this takes).
fn withdraw<T>(
    h: &HChan<T>,
    b: &(Waiting, Sudog<T>),
    queue: impl FnOnce(&mut State<T>) -> &mut std::collections::VecDeque<*const Sudog<T>>,
) {
    h.lock();
    if b.0.cancel() {
        // SAFETY: lock held; `st` is the only borrow of the state here.
        unsafe { HChan::unlink(queue(h.st()), &b.1) };
    }
    h.unlock();
}

/// The future returned by [`Chan::send_async`].
#[must_use = "futures do nothing unless polled (the value is not sent)"]
pub struct SendFuture<'a, T> {
    ch: &'a Chan<T>,
    /// The value, until it is sent or queued in the sudog's slot.
    value: Option<T>,
    pending: Option<Box<(Waiting, Sudog<T>)>>,
}

impl<T> Chan<T> {
    /// Sends as a future: `Ok(())` once a receiver or the buffer took the
    /// value, `Err` with the value if the channel is (or gets) closed. On a
    /// nil channel it never completes. Dropping the future before it
    /// completes withdraws the value (it is dropped with the future).
    ///
    /// ```
    /// use goro_chan::Chan;
    /// let ch = Chan::new(1);
    /// goro_runtime::block_on(ch.send_async(5)).unwrap();
    /// assert_eq!(ch.recv(), Some(5));
    /// ```
    pub fn send_async(&self, v: T) -> SendFuture<'_, T> {
        SendFuture { ch: self, value: Some(v), pending: None }
    }
}

impl<T> Unpin for SendFuture<'_, T> {}

// SAFETY: as for `RecvFuture`: the boxed waiter's pointers point into the
// box, touched by other threads only under the channel lock; the value of T
// crosses threads, hence T: Send.
unsafe impl<T: Send> Send for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(h) = self.ch.inner.as_deref() else { return Poll::Pending };
        if let Some(b) = &self.pending {
            let Poll::Ready(ok) = poll_queued(h, b, cx, goro_runtime::WaitReason::ChanSend) else {
                return Poll::Pending;
            };
            let b = self.pending.take().expect("pending");
            if ok {
                return Poll::Ready(Ok(()));
            }
            // Closed while queued: the value is still in the slot.
            // SAFETY: DONE: no waker touches the sudog any more.
            let v = unsafe { (*b.1.slot.get()).take() }.expect("value not sent");
            return Poll::Ready(Err(SendError(v)));
        }
        let v = self.value.take().expect("SendFuture polled after it completed");
        let v = match h.send_fast(v) {
            Ok(_) => return Poll::Ready(Ok(())),
            Err(v) => v,
        };
        h.lock();
        // SAFETY: lock held.
        match unsafe { h.send_locked(v) } {
            SendNow::Sent(u) => {
                h.unlock();
                wake(u);
                Poll::Ready(Ok(()))
            }
            SendNow::Closed(v) => {
                h.unlock();
                Poll::Ready(Err(SendError(v)))
            }
            SendNow::WouldBlock(v) => {
                let mut b =
                    Box::new((Waiting::with_unparker(Unparker::from_waker(cx.waker().clone())), Sudog::new_blank()));
                b.1.waiting = &b.0;
                *b.1.slot.get_mut() = Some(v);
                // SAFETY: lock held; the box outlives its time in the queue
                // (Drop unlinks it).
                unsafe { h.st().sendq.push_back(&b.1) };
                self.pending = Some(b);
                h.unlock();
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        if let (Some(b), Some(h)) = (&self.pending, self.ch.inner.as_deref()) {
            withdraw(h, b, |st| &mut st.sendq);
        }
    }
}

impl<T> std::fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvFuture").field("pending", &self.pending.is_some()).finish()
    }
}

impl<T> std::fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendFuture").field("pending", &self.pending.is_some()).finish()
    }
}
