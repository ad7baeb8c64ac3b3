//! Model checks of the local run queue (`src/runq.rs`) under loom: every
//! interleaving of an owner and thieves, checking that each G is taken
//! exactly once, whatever the races on `head`.
//!
//! The queue is compiled here against loom's atomics (`crate::atomic`).

mod atomic {
    pub use loom::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
}

#[path = "../src/runq.rs"]
#[allow(dead_code)]
mod runq;

use loom::sync::Arc;
use loom::thread;
use runq::{RunQueue, Take};

fn item(v: usize) -> *mut usize {
    Box::into_raw(Box::new(v))
}

fn take(p: *mut usize) -> usize {
    // SAFETY: every pointer in these models came from Box::into_raw and is
    // taken out of a queue exactly once (that is what is being checked).
    *unsafe { Box::from_raw(p) }
}

fn check_all_once(mut got: Vec<usize>, n: usize) {
    got.sort_unstable();
    assert_eq!(got, (0..n).collect::<Vec<_>>(), "each item exactly once");
}

#[test]
fn loom_owner_pops_while_a_thief_steals_half() {
    loom::model(|| {
        let victim = Arc::new(RunQueue::<usize>::new(4));
        let mut overflow = Vec::new();
        for i in 0..3 {
            // SAFETY: this thread is the owner of `victim`.
            assert!(!unsafe { victim.push(item(i), &mut overflow) });
        }
        let v2 = victim.clone();
        let thief = thread::spawn(move || {
            let mine = RunQueue::<usize>::new(4);
            let mut got = Vec::new();
            // SAFETY: the thief owns `mine`, which is empty.
            if let Some((g, _)) = unsafe { v2.steal_into(&mine, Take::Half) } {
                got.push(take(g));
                // SAFETY: owner of `mine`.
                while let Some(g) = unsafe { mine.pop() } {
                    got.push(take(g));
                }
            }
            got
        });
        let mut got = Vec::new();
        // SAFETY: owner of `victim`.
        while let Some(g) = unsafe { victim.pop() } {
            got.push(take(g));
        }
        got.extend(thief.join().unwrap());
        check_all_once(got, 3);
    });
}

#[test]
fn loom_overflow_races_with_a_steal() {
    loom::model(|| {
        let victim = Arc::new(RunQueue::<usize>::new(2));
        let mut overflow = Vec::new();
        for i in 0..2 {
            // SAFETY: owner.
            assert!(!unsafe { victim.push(item(i), &mut overflow) });
        }
        let v2 = victim.clone();
        let thief = thread::spawn(move || {
            let mine = RunQueue::<usize>::new(2);
            // SAFETY: the thief owns `mine`, which is empty.
            match unsafe { v2.steal_into(&mine, Take::One) } {
                Some((g, _)) => vec![take(g)],
                None => vec![],
            }
        });
        let mut got = Vec::new();
        // Third push: either overflows (half + item to `overflow`) or fits
        // because the thief made room.
        // SAFETY: owner.
        if unsafe { victim.push(item(2), &mut overflow) } {
            got.extend(overflow.drain(..).map(take));
        }
        // SAFETY: owner.
        while let Some(g) = unsafe { victim.pop() } {
            got.push(take(g));
        }
        got.extend(thief.join().unwrap());
        check_all_once(got, 3);
    });
}

#[test]
fn loom_two_thieves_and_the_owner() {
    loom::model(|| {
        let victim = Arc::new(RunQueue::<usize>::new(4));
        let mut overflow = Vec::new();
        for i in 0..2 {
            // SAFETY: owner.
            assert!(!unsafe { victim.push(item(i), &mut overflow) });
        }
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let v = victim.clone();
                thread::spawn(move || {
                    let mine = RunQueue::<usize>::new(4);
                    // SAFETY: each thief owns its own empty `mine`.
                    unsafe { v.steal_into(&mine, Take::Half) }.map(|(g, _)| take(g))
                })
            })
            .collect();
        let mut got = Vec::new();
        // SAFETY: owner.
        if let Some(g) = unsafe { victim.pop() } {
            got.push(take(g));
        }
        for t in thieves {
            got.extend(t.join().unwrap());
        }
        // SAFETY: owner.
        while let Some(g) = unsafe { victim.pop() } {
            got.push(take(g));
        }
        check_all_once(got, 2);
    });
}

#[test]
fn loom_push_is_published_to_a_concurrent_thief() {
    loom::model(|| {
        let victim = Arc::new(RunQueue::<usize>::new(4));
        let v2 = victim.clone();
        let thief = thread::spawn(move || {
            let mine = RunQueue::<usize>::new(4);
            // SAFETY: the thief owns `mine`, which is empty.
            unsafe { v2.steal_into(&mine, Take::Half) }.map(|(g, _)| take(g))
        });
        let mut overflow = Vec::new();
        for i in 0..2 {
            // SAFETY: owner.
            assert!(!unsafe { victim.push(item(i), &mut overflow) });
        }
        let mut got: Vec<usize> = thief.join().unwrap().into_iter().collect();
        // SAFETY: owner.
        while let Some(g) = unsafe { victim.pop() } {
            got.push(take(g));
        }
        check_all_once(got, 2);
    });
}
