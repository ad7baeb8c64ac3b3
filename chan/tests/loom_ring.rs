//! Model checks of a buffered channel's ring (`src/ring.rs`) under loom:
//! values pass exactly once and in order between lock-free pushes and
//! pops, a slot is reused only after its value was read (loom's cell
//! checks every access), and a gate shut by the lock's holder either sees
//! a racing fast push or pop land or makes it fail, never neither: the
//! property that lets a G decide to wait under the channel lock while
//! other threads use the lock-free path.

mod atomic {
    pub use loom::cell::UnsafeCell;
    pub use loom::sync::atomic::{AtomicUsize, Ordering};

    pub fn spin(_step: &mut u32) {
        loom::thread::yield_now();
    }
}

#[path = "../src/ring.rs"]
#[allow(dead_code)]
mod ring;

use loom::sync::Arc;
use loom::thread;
use ring::{End, PopError, PushError, Ring, Who};

fn model(f: impl Fn() + Sync + Send + 'static) {
    loom::model(f);
}

/// Pushes `v`, yielding while the ring is full.
fn push_wait(r: &Ring<u32>, mut v: u32) {
    loop {
        match r.push(v, Who::Fast) {
            Ok(()) => return,
            Err(PushError::Full(x)) => {
                v = x;
                thread::yield_now();
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

/// Pops, yielding while the ring is empty.
fn pop_wait(r: &Ring<u32>) -> u32 {
    loop {
        match r.pop(Who::Fast) {
            Ok(v) => return v,
            Err(PopError::Empty) => thread::yield_now(),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

#[test]
fn loom_two_pushers_and_a_popper_pass_each_value_once() {
    // Capacity 1, one attempt each (no waiting loops: every interleaving
    // of the three attempts is explored): the pushers race for the one
    // slot, and the second push lands only if the pop freed it first.
    model(|| {
        let r = Arc::new(Ring::new(1, 0, ()));
        let (ra, rb) = (r.clone(), r.clone());
        let a = thread::spawn(move || ra.push(1, Who::Fast).is_ok());
        let b = thread::spawn(move || rb.push(2, Who::Fast).is_ok());
        let popped = r.pop(Who::Fast).ok();
        let pushed: Vec<u32> =
            [(a.join().unwrap(), 1), (b.join().unwrap(), 2)].iter().filter(|(ok, _)| *ok).map(|&(_, v)| v).collect();
        let mut out: Vec<u32> = popped.into_iter().collect();
        while let Ok(v) = r.pop(Who::Fast) {
            out.push(v);
        }
        out.sort_unstable();
        assert_eq!(out, pushed, "every value that was pushed comes out once");
        assert!(!pushed.is_empty(), "the first push to an empty ring lands");
        assert_eq!(r.len(), 0);
    });
}

#[test]
fn loom_a_slot_is_reused_only_after_its_value_was_read() {
    // Capacity 1: every push after the first writes the slot a pop just
    // read (Go's "the k-th receive happens before the (k+C)-th send
    // completes"); loom's cell reports any overlap of the two.
    model(|| {
        let r = Arc::new(Ring::new(1, 0, ()));
        let r2 = r.clone();
        let pusher = thread::spawn(move || {
            for v in 0..2 {
                push_wait(&r2, v);
            }
        });
        for want in 0..2 {
            assert_eq!(pop_wait(&r), want);
        }
        pusher.join().unwrap();
    });
}

#[test]
fn loom_a_shut_tail_sees_a_racing_push_land_or_makes_it_fail() {
    model(|| {
        let r = Arc::new(Ring::new(1, 0, ()));
        let r2 = r.clone();
        let pusher = thread::spawn(move || r2.push(7, Who::Fast));
        // The lock's holder (a receiver about to wait) shuts pushes out,
        // then looks.
        r.close_gate(End::Tail);
        let seen = r.pop(Who::Holder);
        let pushed = pusher.join().unwrap();
        match (pushed, seen) {
            (Ok(()), Ok(7)) => {}
            (Err(PushError::Gated(7)), Err(PopError::Empty)) => {}
            (p, s) => panic!("push {p:?}, holder saw {s:?}"),
        }
        // After the gate opens the fast path works again.
        r.open_gate(End::Tail);
        assert!(r.push(8, Who::Fast).is_ok());
    });
}

#[test]
fn loom_a_shut_head_sees_a_racing_pop_land_or_makes_it_fail() {
    model(|| {
        let r = Arc::new(Ring::new(1, 0, ()));
        r.push(1, Who::Fast).unwrap();
        let r2 = r.clone();
        let popper = thread::spawn(move || r2.pop(Who::Fast));
        // The lock's holder (a sender about to wait on a full ring) shuts
        // pops out, then looks.
        r.close_gate(End::Head);
        let pushed = r.push(2, Who::Holder);
        let popped = popper.join().unwrap();
        match (popped, pushed) {
            (Ok(1), Ok(())) => assert_eq!(r.pop(Who::Holder), Ok(2)),
            (Err(PopError::Gated), Err(PushError::Full(2))) => assert_eq!(r.pop(Who::Holder), Ok(1)),
            (p, s) => panic!("pop {p:?}, holder's push {s:?}"),
        }
    });
}

#[test]
fn loom_close_lets_pushes_that_landed_drain_and_fails_the_rest() {
    model(|| {
        let r = Arc::new(Ring::new(2, 0, ()));
        let r2 = r.clone();
        let pusher = thread::spawn(move || (r2.push(1, Who::Fast).is_ok(), r2.push(2, Who::Fast).is_ok()));
        r.close();
        let (a, b) = pusher.join().unwrap();
        assert!(a || !b, "a push after a failed one cannot land");
        let mut drained = Vec::new();
        loop {
            match r.pop(Who::Fast) {
                Ok(v) => drained.push(v),
                Err(PopError::Closed) => break,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        let want: Vec<u32> = [(a, 1), (b, 2)].iter().filter(|(ok, _)| *ok).map(|&(_, v)| v).collect();
        assert_eq!(drained, want);
        assert!(matches!(r.push(3, Who::Fast), Err(PushError::Closed(3))));
    });
}

#[test]
fn loom_values_left_in_a_dropped_ring_are_dropped_once() {
    model(|| {
        let r = Arc::new(Ring::new(2, 0, ()));
        let v = Arc::new(());
        let (r2, v2) = (r.clone(), v.clone());
        let pusher = thread::spawn(move || {
            r2.push(v2.clone(), Who::Fast).unwrap();
            r2.push(v2, Who::Fast).unwrap();
        });
        let first = loop {
            match r.pop(Who::Fast) {
                Ok(x) => break x,
                Err(_) => thread::yield_now(),
            }
        };
        pusher.join().unwrap();
        drop(first);
        drop(r);
        assert_eq!(Arc::strong_count(&v), 1, "the value left in the ring was dropped with it");
    });
}

#[test]
fn loom_a_holder_push_and_a_racing_fast_push_share_the_room() {
    // `send_locked` on a ring with one free slot, pops shut out: the
    // holder's push and a fast push race for it; exactly one lands.
    model(|| {
        let r = Arc::new(Ring::new(1, 0, ()));
        let r2 = r.clone();
        let fast = thread::spawn(move || r2.push(1, Who::Fast).is_ok());
        r.close_gate(End::Head);
        let held = r.push(2, Who::Holder).is_ok();
        let fast = fast.join().unwrap();
        assert!(fast != held, "exactly one push takes the one slot (fast {fast}, holder {held})");
        assert_eq!(r.pop(Who::Holder), Ok(if fast { 1 } else { 2 }));
    });
}

#[test]
fn loom_a_waiting_senders_value_takes_the_slot_its_receive_frees() {
    // `recv_locked` with a sender waiting on a full ring (pops shut): it
    // shuts pushes, pops the head and pushes the sender's value, while a
    // fast push races for the freed slot and must not get it.
    model(|| {
        let r = Arc::new(Ring::new(1, 0, ()));
        r.push(1, Who::Fast).unwrap();
        r.close_gate(End::Head);
        let r2 = r.clone();
        let fast = thread::spawn(move || r2.push(9, Who::Fast));
        r.close_gate(End::Tail);
        assert_eq!(r.pop(Who::Holder), Ok(1));
        assert!(r.push(2, Who::Holder).is_ok(), "the freed slot is the waiting sender's");
        match fast.join().unwrap() {
            Err(PushError::Full(9) | PushError::Gated(9)) => {}
            other => panic!("a fast push got past the holder: {other:?}"),
        }
        assert_eq!(r.pop(Who::Holder), Ok(2));
    });
}
