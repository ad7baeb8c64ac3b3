//! `goro::context`: Go's cancellation and deadlines.

mod common;

use std::time::{Duration, Instant};

use common::{bounded, rt};
use goro::chan::Chan;
use goro::context::{self, ContextError};

#[test]
fn cancellation_reaches_grandchildren_and_not_parents() {
    bounded(30, || {
        rt(2).block_on(|| {
            let root = context::background();
            let (a, cancel_a) = context::with_cancel(&root);
            let (b, _cancel_b) = context::with_cancel(&a);
            let (c, _cancel_c) = context::with_timeout(&b, Duration::from_secs(60));
            let (sibling, cancel_sibling) = context::with_cancel(&root);
            // Gs waiting on the grandchild and on a sibling.
            let waiter = {
                let c = c.clone();
                goro::go(move || {
                    c.done().recv();
                    c.err()
                })
            };
            assert_eq!(b.err(), None);
            cancel_a.cancel();
            assert_eq!(waiter.join().unwrap(), Some(ContextError::Canceled));
            assert_eq!(a.err(), Some(ContextError::Canceled));
            assert_eq!(b.err(), Some(ContextError::Canceled));
            assert_eq!(c.err(), Some(ContextError::Canceled), "the grandchild's timer did not win");
            assert_eq!(sibling.err(), None, "a sibling was cancelled");
            assert!(root.err().is_none());
            // A child of a cancelled context is born cancelled.
            let (late, _c) = context::with_cancel(&a);
            assert_eq!(late.err(), Some(ContextError::Canceled));
            cancel_sibling.cancel();
            // Cancelling twice keeps the first reason.
            cancel_sibling.cancel();
            assert_eq!(sibling.err(), Some(ContextError::Canceled));
        });
    });
}

#[test]
fn a_timeout_fires_once_and_the_earlier_deadline_wins() {
    bounded(30, || {
        rt(2).block_on(|| {
            let root = context::background();
            let t = Instant::now();
            let (ctx, cancel) = context::with_timeout(&root, Duration::from_millis(20));
            ctx.done().recv();
            assert!(t.elapsed() >= Duration::from_millis(20));
            assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
            // Cancelling after the deadline keeps DeadlineExceeded.
            cancel.cancel();
            assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
            // A child asking for a later deadline gets the parent's.
            let (parent, _p) = context::with_timeout(&root, Duration::from_millis(10));
            let (child, _c) = context::with_timeout(&parent, Duration::from_secs(60));
            assert_eq!(child.deadline(), parent.deadline());
            child.done().recv();
            assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
        });
    });
}

#[test]
fn done_in_select_beside_channels() {
    bounded(30, || {
        rt(2).block_on(|| {
            let root = context::background();
            let (ctx, cancel) = context::with_cancel(&root);
            let work: Chan<u32> = Chan::new(0);
            let w2 = work.clone();
            let worker = {
                let ctx = ctx.clone();
                goro::go(move || {
                    let mut got = 0;
                    loop {
                        goro::select! {
                            recv(w2) -> v => got += v.unwrap(),
                            recv(ctx.done()) -> _ => return (got, ctx.err()),
                        }
                    }
                })
            };
            for i in 1..=10 {
                work.send(i).unwrap();
            }
            cancel.cancel();
            assert_eq!(worker.join().unwrap(), (55, Some(ContextError::Canceled)));
            // The background context's done() never fires.
            let bg = context::background();
            let fired = goro::select! {
                recv(bg.done()) -> _ => true,
                default(Duration::from_millis(5)) => false,
            };
            assert!(!fired);
        });
    });
}

#[test]
fn cancellation_after_the_parent_returned() {
    bounded(30, || {
        rt(2).block_on(|| {
            let root = context::background();
            let (ctx, cancel) = context::with_cancel(&root);
            // The G that made the child returns; the child lives on.
            let child = goro::go(move || context::with_cancel(&ctx)).join().unwrap();
            let (child_ctx, _child_cancel) = child;
            assert_eq!(child_ctx.err(), None);
            cancel.cancel();
            child_ctx.done().recv();
            assert_eq!(child_ctx.err(), Some(ContextError::Canceled));
        });
    });
}

#[test]
fn ten_thousand_contexts_created_and_cancelled_leave_the_parent_empty() {
    bounded(60, || {
        rt(2).block_on(|| {
            let root = context::background();
            let (parent, _cancel) = context::with_cancel(&root);
            for i in 0..10_000 {
                let (ctx, cancel) = if i % 2 == 0 {
                    context::with_cancel(&parent)
                } else {
                    context::with_timeout(&parent, Duration::from_secs(60))
                };
                cancel.cancel();
                assert!(ctx.is_done());
            }
            assert_eq!(parent.children(), 0, "cancelled children stay registered");
            // Children dropped without a cancel are swept on the next one.
            for _ in 0..1000 {
                drop(context::with_cancel(&parent));
            }
            let (_last, c) = context::with_cancel(&parent);
            assert_eq!(parent.children(), 1);
            c.cancel();
            assert_eq!(parent.children(), 0);
        });
    });
}

#[test]
fn a_semaphore_wait_ends_with_its_context() {
    use goro::sync::{Semaphore, SemaphoreExt};
    use std::sync::Arc;
    bounded(30, || {
        rt(2).block_on(|| {
            let sem = Arc::new(Semaphore::new(2));
            let root = context::background();
            // Free permits: taken at once, whatever the context.
            assert_eq!(sem.acquire_ctx(&root, 2), Ok(()));
            // None free: the wait ends when the context is cancelled.
            let (ctx, cancel) = context::with_cancel(&root);
            let waiter = {
                let (sem, ctx) = (sem.clone(), ctx.clone());
                goro::go(move || sem.acquire_ctx(&ctx, 1))
            };
            common::wait_until("the waiter parks", || goro::stats().waiting_goroutines >= 1);
            cancel.cancel();
            assert_eq!(waiter.join().unwrap(), Err(ContextError::Canceled));
            // ... or with its deadline.
            let (ctx, _c) = context::with_timeout(&root, Duration::from_millis(10));
            assert_eq!(sem.acquire_ctx(&ctx, 1), Err(ContextError::DeadlineExceeded));
            // A given-up waiter took nothing and left the queue: a release
            // serves the next one.
            sem.release();
            let (ctx, _c) = context::with_timeout(&root, Duration::from_secs(10));
            assert_eq!(sem.acquire_ctx(&ctx, 1), Ok(()));
            // A done context takes nothing, even with permits free (as
            // x/sync's Acquire).
            sem.release_n(2);
            let (done, c) = context::with_cancel(&root);
            c.cancel();
            assert_eq!(sem.acquire_ctx(&done, 1), Err(ContextError::Canceled));
            assert_eq!(sem.available(), 2);
        });
    });
}

#[test]
fn a_given_up_large_request_lets_the_smaller_ones_behind_it_through() {
    use goro::sync::{Semaphore, SemaphoreExt};
    use std::sync::Arc;
    bounded(30, || {
        rt(2).block_on(|| {
            let sem = Arc::new(Semaphore::new(4));
            sem.acquire_n(3); // 1 left
            let root = context::background();
            let (big_ctx, cancel_big) = context::with_cancel(&root);
            let big = {
                let (sem, ctx) = (sem.clone(), big_ctx.clone());
                goro::go(move || sem.acquire_ctx(&ctx, 4))
            };
            common::wait_until("the big request waits", || goro::stats().waiting_goroutines >= 1);
            // FIFO: a small request queues behind the big one.
            let small = {
                let sem = sem.clone();
                goro::go(move || sem.acquire_ctx(&context::background(), 1))
            };
            common::wait_until("the small request waits", || goro::stats().waiting_goroutines >= 2);
            cancel_big.cancel();
            assert_eq!(big.join().unwrap(), Err(ContextError::Canceled));
            assert_eq!(small.join().unwrap(), Ok(()), "the small request stayed stuck behind a withdrawn one");
        });
    });
}

#[test]
fn a_past_deadline_is_done_at_once_and_a_dropped_parent_keeps_its_deadline() {
    bounded(30, || {
        rt(2).block_on(|| {
            let root = context::background();
            let (past, _c) = context::with_deadline(&root, Instant::now() - Duration::from_secs(1));
            assert_eq!(past.err(), Some(ContextError::DeadlineExceeded));
            let (zero, _c) = context::with_timeout(&root, Duration::ZERO);
            assert_eq!(zero.err(), Some(ContextError::DeadlineExceeded));
            // The parent (with the deadline) is dropped at once; the child
            // keeps it alive, and its deadline still ends the child.
            let (child, _c) = context::with_cancel(&context::with_timeout(&root, Duration::from_millis(10)).0);
            child.done().recv();
            assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
        });
    });
}
