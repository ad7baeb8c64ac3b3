//! The run queue's rules, as plain tests (the loom models check the races,
//! not the amounts): a thief takes half of the victim's queue, rounded up,
//! oldest first; a full queue moves half of itself plus the new G to the
//! overflow batch (for the global queue); `Take::One` takes one.

mod atomic {
    pub use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
}

#[path = "../src/runq.rs"]
#[allow(dead_code)]
mod runq;

use runq::{RunQueue, Take};

fn item(v: usize) -> *mut usize {
    Box::into_raw(Box::new(v))
}

fn take(p: *mut usize) -> usize {
    // SAFETY: every pointer here came from Box::into_raw and is taken out of
    // a queue exactly once.
    *unsafe { Box::from_raw(p) }
}

/// A queue of `limit` slots holding `0..n`, pushed by its owner (this thread).
fn filled(limit: usize, n: usize) -> RunQueue<usize> {
    let q = RunQueue::new(limit);
    let mut overflow = Vec::new();
    for i in 0..n {
        // SAFETY: this thread owns `q`.
        assert!(!unsafe { q.push(item(i), &mut overflow) }, "no overflow below the limit");
    }
    q
}

/// Everything left in `q`, in order.
fn rest(q: &RunQueue<usize>) -> Vec<usize> {
    // SAFETY: this thread owns `q`.
    std::iter::from_fn(|| unsafe { q.pop() }).map(take).collect()
}

#[test]
fn a_thief_takes_half_rounded_up_oldest_first() {
    for n in 1..=9usize {
        let victim = filled(16, n);
        let thief = RunQueue::new(16);
        // SAFETY: this thread owns `thief`, which is empty.
        let (first, got) = unsafe { victim.steal_into(&thief, Take::Half) }.expect("something to steal");
        let want = n.div_ceil(2);
        assert_eq!(got, want, "from {n}: took {got}, want ceil({n}/2) = {want}");
        // The thief runs the newest of what it took and queues the others.
        let mut taken = rest(&thief);
        taken.push(take(first));
        assert_eq!(taken, (0..want).collect::<Vec<_>>(), "from {n}");
        assert_eq!(rest(&victim), (want..n).collect::<Vec<_>>(), "the victim keeps the newer half");
    }
    // A full default-sized queue gives 128.
    let victim = filled(256, 256);
    let thief = RunQueue::new(256);
    // SAFETY: as above.
    let (first, got) = unsafe { victim.steal_into(&thief, Take::Half) }.unwrap();
    assert_eq!(got, 128);
    take(first);
    assert_eq!(rest(&thief).len(), 127);
    assert_eq!(rest(&victim).len(), 128);
}

#[test]
fn take_one_takes_the_oldest_only() {
    let victim = filled(8, 5);
    let thief = RunQueue::new(8);
    // SAFETY: this thread owns `thief`, which is empty.
    let (first, got) = unsafe { victim.steal_into(&thief, Take::One) }.unwrap();
    assert_eq!((take(first), got), (0, 1));
    assert!(rest(&thief).is_empty());
    assert_eq!(rest(&victim), vec![1, 2, 3, 4]);
    let empty = RunQueue::<usize>::new(8);
    // SAFETY: as above.
    assert!(unsafe { empty.steal_into(&thief, Take::Half) }.is_none());
}

#[test]
fn a_full_queue_moves_half_of_itself_and_the_new_g_to_the_overflow_batch() {
    for limit in [4usize, 8, 256] {
        let q = filled(limit, limit);
        let mut overflow = Vec::new();
        // SAFETY: this thread owns `q`.
        assert!(unsafe { q.push(item(1000), &mut overflow) }, "a full queue overflows");
        let batch: Vec<usize> = overflow.drain(..).map(take).collect();
        let mut want: Vec<usize> = (0..limit / 2).collect();
        want.push(1000);
        assert_eq!(batch, want, "limit {limit}: the oldest half, then the new G");
        assert_eq!(rest(&q), (limit / 2..limit).collect::<Vec<_>>());
    }
}

#[test]
fn drain_empties_the_queue_in_order_and_debug_shows_its_length() {
    let q = filled(8, 5);
    assert_eq!(format!("{q:?}"), "RunQueue { len: 5 }");
    assert!(!q.is_empty());
    let all: Vec<usize> = q.drain().into_iter().map(take).collect();
    assert_eq!(all, [0, 1, 2, 3, 4]);
    assert!(q.is_empty());
    assert_eq!(format!("{q:?}"), "RunQueue { len: 0 }");
}
