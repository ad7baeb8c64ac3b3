//! Model checks of a blocking channel operation's state (`src/opstate.rs`)
//! under loom: a select's two channels race to complete it while its owner
//! may time out. In every interleaving exactly one party decides the
//! outcome, and the owner sees the winner's published case and result.

mod atomic {
    pub use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
}

#[path = "../src/opstate.rs"]
#[allow(dead_code)]
mod opstate;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use opstate::OpState;

#[test]
fn loom_two_wakers_and_a_timeout_decide_once() {
    loom::model(|| {
        let op = Arc::new(OpState::new());
        let claims = Arc::new(AtomicUsize::new(0));
        let wakers: Vec<_> = (0..2usize)
            .map(|case| {
                let (op, claims) = (op.clone(), claims.clone());
                thread::spawn(move || {
                    if op.claim() {
                        claims.fetch_add(1, Ordering::SeqCst);
                        op.finish(case, case == 0);
                    }
                })
            })
            .collect();
        // The owner's deadline passes.
        let cancelled = op.cancel();
        if !cancelled {
            // A waker claimed it first: wait for its result.
            while !op.done() {
                thread::yield_now();
            }
            let (case, success) = op.result();
            assert!(case < 2);
            assert_eq!(success, case == 0, "the owner sees the winner's own outcome");
        }
        for w in wakers {
            w.join().unwrap();
        }
        assert_eq!(claims.load(Ordering::SeqCst), usize::from(!cancelled), "exactly one decision");
    });
}

#[test]
fn loom_a_waker_completes_an_owner_that_waits() {
    loom::model(|| {
        let op = Arc::new(OpState::new());
        let op2 = op.clone();
        let waker = thread::spawn(move || {
            if op2.claim() {
                op2.finish(7, true);
            }
        });
        while !op.done() {
            thread::yield_now();
        }
        assert_eq!(op.result(), (7, true));
        assert!(!op.cancel(), "a completed operation cannot be cancelled");
        waker.join().unwrap();
    });
}
