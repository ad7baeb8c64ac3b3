//! Model checks of the join cell (`src/join_cell.rs`) under loom: a G's
//! completer races with its joiner, which waits, gives up or drops the
//! handle. The result and the waiter are loom `UnsafeCell`s, so loom
//! reports any access of one side not ordered with the other's; the
//! checks below add that the result reaches the joiner exactly once, that
//! a waiting joiner is woken, and that exactly one owner frees the cell.

mod atomic {
    pub use loom::cell::UnsafeCell;
    pub use loom::sync::atomic::{fence, AtomicU32, Ordering};
}

#[path = "../src/join_cell.rs"]
#[allow(dead_code)]
mod join_cell;

use join_cell::JoinCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// A waiter: counts its wake-ups.
struct Waiter(Arc<AtomicUsize>);

type Cell = JoinCell<u32, Waiter>;

/// The completer's side: deliver 7, wake the waiter it hands back, let go.
/// Returns whether it was the last owner.
fn complete(c: &Cell) -> bool {
    if let Some(w) = c.complete(7) {
        w.0.fetch_add(1, Ordering::SeqCst);
    }
    c.release()
}

#[test]
fn loom_a_joiner_gets_the_result_or_is_woken_for_it() {
    loom::model(|| {
        let c = Arc::new(Cell::new());
        let woken = Arc::new(AtomicUsize::new(0));
        let c2 = c.clone();
        let completer = thread::spawn(move || complete(&c2));
        // The joiner's loop, with the park left out: a wait that returned
        // `Err` must be followed by a wake-up once the result is in.
        let w = woken.clone();
        // SAFETY: one joiner.
        let got = match unsafe { c.take_or_wait(|| Waiter(w)) } {
            Ok(r) => r,
            Err(()) => {
                let last = completer.join().unwrap();
                assert_eq!(woken.load(Ordering::SeqCst), 1, "the waiting joiner was not woken");
                // SAFETY: one joiner.
                let r = unsafe { c.take_or_wait(|| unreachable!("the result is in")) }.unwrap();
                assert!(last != c.release());
                assert_eq!(r, Some(7));
                return;
            }
        };
        assert_eq!(got, Some(7));
        let last = completer.join().unwrap();
        assert!(last != c.release(), "exactly one owner frees the cell");
    });
}

#[test]
fn loom_a_joiner_that_gives_up_leaves_no_waiter_behind() {
    loom::model(|| {
        let c = Arc::new(Cell::new());
        let woken = Arc::new(AtomicUsize::new(0));
        let c2 = c.clone();
        let completer = thread::spawn(move || complete(&c2));
        let w = woken.clone();
        // SAFETY: one joiner.
        let first = unsafe { c.take_or_wait(|| Waiter(w)) };
        // A timed-out join: takes the waiter back, or the result if it came.
        // SAFETY: one joiner.
        let late = if first.is_err() { unsafe { c.cancel_wait() } } else { None };
        let last = completer.join().unwrap();
        let got = first.ok().flatten().or(late);
        match got {
            Some(r) => assert_eq!(r, 7),
            None => {
                // Gave up before the result: nobody was woken, and the
                // result is there for a later join.
                assert_eq!(woken.load(Ordering::SeqCst), 0, "a cancelled waiter was woken");
                // SAFETY: one joiner.
                let r = unsafe { c.take_or_wait(|| unreachable!("the result is in")) }.unwrap();
                assert_eq!(r, Some(7));
            }
        }
        assert!(woken.load(Ordering::SeqCst) <= 1);
        assert!(last != c.release(), "exactly one owner frees the cell");
    });
}

#[test]
fn loom_a_dropped_handle_and_the_completer_free_the_cell_once() {
    loom::model(|| {
        let c = Arc::new(Cell::new());
        let c2 = c.clone();
        let completer = thread::spawn(move || complete(&c2));
        let handle_last = c.release();
        let completer_last = completer.join().unwrap();
        assert!(handle_last != completer_last);
    });
}

/// A joiner woken spuriously registers again (a new waiter replaces the
/// old one) while the completer may be taking the old one.
#[test]
fn loom_a_joiner_that_waits_again_replaces_its_waiter() {
    loom::model(|| {
        let c = Arc::new(Cell::new());
        let woken = Arc::new(AtomicUsize::new(0));
        let c2 = c.clone();
        let completer = thread::spawn(move || complete(&c2));
        let mut got = None;
        for _ in 0..2 {
            let w = woken.clone();
            // SAFETY: one joiner.
            if let Ok(r) = unsafe { c.take_or_wait(|| Waiter(w)) } {
                got = r;
                break;
            }
        }
        let last = completer.join().unwrap();
        if got.is_none() {
            // Still waiting after the second registration: woken once.
            assert_eq!(woken.load(Ordering::SeqCst), 1, "the waiting joiner was not woken once");
            // SAFETY: one joiner.
            got = unsafe { c.take_or_wait(|| unreachable!("the result is in")) }.unwrap();
        }
        assert_eq!(got, Some(7));
        assert!(woken.load(Ordering::SeqCst) <= 1);
        assert!(last != c.release(), "exactly one owner frees the cell");
    });
}
