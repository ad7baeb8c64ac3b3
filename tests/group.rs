//! `goro::Group`: Go's errgroup.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{bounded, rt, Rng};
use goro::context::ContextError;
use goro::Group;

#[test]
fn the_first_error_wins_and_cancels_the_others() {
    bounded(30, || {
        rt(2).block_on(|| {
            let g: Group<u32> = Group::new();
            let saw_cancel = Arc::new(AtomicUsize::new(0));
            for i in 0..8u32 {
                let ctx = g.context().clone();
                let saw = saw_cancel.clone();
                g.go(move || {
                    if i == 0 {
                        goro::sleep(Duration::from_millis(2));
                        return Err(100);
                    }
                    // The others wait for the cancellation the error brings.
                    ctx.done().recv();
                    assert_eq!(ctx.err(), Some(ContextError::Canceled));
                    saw.fetch_add(1, Ordering::SeqCst);
                    Err(i)
                });
            }
            let ctx = g.context().clone();
            assert_eq!(g.wait(), Err(100), "a later error replaced the first");
            assert_eq!(saw_cancel.load(Ordering::SeqCst), 7);
            assert!(ctx.is_done());
        });
    });
}

#[test]
fn no_error_waits_for_all_and_then_cancels_the_context() {
    bounded(30, || {
        rt(2).block_on(|| {
            let g: Group<()> = Group::new();
            let done = Arc::new(AtomicUsize::new(0));
            for i in 0..50u64 {
                let done = done.clone();
                g.go(move || {
                    goro::sleep(Duration::from_micros(Rng(i).below(2000)));
                    done.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                });
            }
            let ctx = g.context().clone();
            assert!(!ctx.is_done());
            assert_eq!(g.wait(), Ok(()));
            assert_eq!(done.load(Ordering::SeqCst), 50);
            assert!(ctx.is_done(), "wait cancels the group's context, as Go's");
        });
    });
}

#[test]
fn the_limit_holds() {
    bounded(30, || {
        rt(4).block_on(|| {
            let g: Group<()> = Group::new().with_limit(3);
            let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            for i in 0..40u64 {
                let (now, most) = (now.clone(), most.clone());
                g.go(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    goro::sleep(Duration::from_micros(Rng(i).below(1000)));
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                });
            }
            g.wait().unwrap();
            let most = most.load(Ordering::SeqCst);
            assert!(most <= 3, "{most} Gs ran at once under a limit of 3");
            assert!(most >= 2, "the limit was never approached ({most}): the test covered nothing");
        });
    });
}

#[test]
fn try_go_refuses_past_the_limit() {
    bounded(30, || {
        rt(2).block_on(|| {
            let g: Group<()> = Group::new().with_limit(1);
            let gate: goro::chan::Chan<()> = goro::chan::Chan::new(0);
            let g2 = gate.clone();
            assert!(g.try_go(move || {
                g2.recv();
                Ok(())
            }));
            assert!(!g.try_go(|| Ok(())), "a second G ran past a limit of 1");
            gate.send(()).unwrap();
            g.wait().unwrap();
        });
    });
}

#[test]
fn a_group_under_a_cancelled_parent_starts_cancelled() {
    bounded(30, || {
        rt(1).block_on(|| {
            let (parent, cancel) = goro::context::with_cancel(&goro::context::background());
            cancel.cancel();
            let g: Group<()> = Group::with_context(&parent);
            assert_eq!(g.context().err(), Some(ContextError::Canceled));
            assert_eq!(g.wait(), Ok(()));
        });
    });
}

#[test]
fn a_g_the_runtime_refuses_does_not_hang_wait() {
    // Off a runtime `go` panics: the group must not count that G as running.
    bounded(30, || {
        let g: Group<()> = Group::new().with_limit(1);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.go(|| Ok(()))));
        assert!(r.is_err());
        // The slot came back too (else this would wait for it forever).
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.go(|| Ok(())))).is_err());
        assert_eq!(g.wait(), Ok(()));
    });
}
