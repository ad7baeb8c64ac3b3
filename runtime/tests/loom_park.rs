//! Model checks of the park token (`src/park_token.rs`) under loom: a G
//! parking races with one or two unparkers; in every interleaving the G is
//! either never suspended (it consumed the token) or readied exactly once.

mod atomic {
    pub use loom::sync::atomic::{AtomicU8, Ordering};
}

#[path = "../src/park_token.rs"]
#[allow(dead_code)]
mod park_token;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use park_token::ParkToken;

/// The G's side of `park` + its M's side after the switch. Returns whether
/// the G ended up suspended (waiting for an unparker to ready it).
fn park(t: &ParkToken) -> bool {
    if t.try_consume() {
        return false; // an unpark was pending: return at once
    }
    // ... the G switches out; its M then commits the park ...
    t.commit_park()
}

#[test]
fn loom_one_unparker_never_loses_the_wakeup() {
    loom::model(|| {
        let t = Arc::new(ParkToken::new());
        let readied = Arc::new(AtomicUsize::new(0));
        let (t2, r2) = (t.clone(), readied.clone());
        let unparker = thread::spawn(move || {
            if t2.unpark() {
                r2.fetch_add(1, Ordering::SeqCst);
            }
        });
        let suspended = park(&t);
        unparker.join().unwrap();
        // Suspended ⇒ the unparker readied it; not suspended ⇒ nobody did.
        assert_eq!(readied.load(Ordering::SeqCst), usize::from(suspended));
    });
}

#[test]
fn loom_two_unparkers_ready_at_most_once() {
    loom::model(|| {
        let t = Arc::new(ParkToken::new());
        let readied = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (t, r) = (t.clone(), readied.clone());
                thread::spawn(move || {
                    if t.unpark() {
                        r.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let suspended = park(&t);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(readied.load(Ordering::SeqCst), usize::from(suspended));
    });
}

#[test]
fn loom_an_unpark_before_park_makes_park_return() {
    loom::model(|| {
        let t = Arc::new(ParkToken::new());
        assert!(!t.unpark(), "nobody is parked yet");
        let t2 = t.clone();
        let other = thread::spawn(move || t2.unpark());
        let suspended = park(&t);
        let readied = other.join().unwrap();
        // The first token makes park return at once; a second unpark may then
        // leave a token for the next park, but never readies anything.
        assert!(!suspended);
        assert!(!readied);
    });
}
