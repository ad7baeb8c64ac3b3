//! The local run queue against crossbeam-deque: owner push+pop, and
//! owner push while a thief steals half. Prints `name value unit`.
//!
//!     cargo bench --features internals --bench runq

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_deque::{Steal, Worker};
use goro::internals::{RunQueue, Take};

const N: usize = 20_000_000;

fn ours_push_pop() -> f64 {
    let q = RunQueue::<u64>::new(256);
    let mut overflow = Vec::new();
    let t = Instant::now();
    for i in 0..N {
        // SAFETY: this thread owns the queue; the pointers are never dereferenced.
        unsafe {
            q.push((i + 1) as *mut u64, &mut overflow);
            black_box(q.pop());
        }
    }
    t.elapsed().as_nanos() as f64 / N as f64
}

fn crossbeam_push_pop() -> f64 {
    let w = Worker::<usize>::new_fifo();
    let t = Instant::now();
    for i in 0..N {
        w.push(i);
        black_box(w.pop());
    }
    t.elapsed().as_nanos() as f64 / N as f64
}

fn ours_with_thief() -> f64 {
    let q = Arc::new(RunQueue::<u64>::new(256));
    let stop = Arc::new(AtomicBool::new(false));
    let (q2, s2) = (q.clone(), stop.clone());
    let thief = std::thread::spawn(move || {
        let mine = RunQueue::<u64>::new(256);
        while !s2.load(Ordering::Relaxed) {
            // SAFETY: the thief owns `mine`, drained after each steal.
            unsafe {
                if q2.steal_into(&mine, Take::Half).is_some() {
                    while mine.pop().is_some() {}
                }
            }
        }
    });
    let mut overflow = Vec::new();
    let t = Instant::now();
    for i in 0..N / 4 {
        // SAFETY: owner.
        unsafe {
            q.push((i + 1) as *mut u64, &mut overflow);
            if i % 2 == 0 {
                black_box(q.pop());
            }
        }
    }
    let el = t.elapsed().as_nanos() as f64 / (N / 4) as f64;
    stop.store(true, Ordering::Relaxed);
    thief.join().unwrap();
    el
}

fn crossbeam_with_thief() -> f64 {
    let w = Worker::<usize>::new_fifo();
    let s = w.stealer();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let thief = std::thread::spawn(move || {
        let mine = Worker::<usize>::new_fifo();
        while !s2.load(Ordering::Relaxed) {
            if let Steal::Success(_) = s.steal_batch_and_pop(&mine) {
                while mine.pop().is_some() {}
            }
        }
    });
    let t = Instant::now();
    for i in 0..N / 4 {
        w.push(i);
        if i % 2 == 0 {
            black_box(w.pop());
        }
    }
    let el = t.elapsed().as_nanos() as f64 / (N / 4) as f64;
    stop.store(true, Ordering::Relaxed);
    thief.join().unwrap();
    el
}

fn main() {
    println!("runq_push_pop_goro {:.2} ns/op", ours_push_pop());
    println!("runq_push_pop_crossbeam {:.2} ns/op", crossbeam_push_pop());
    println!("runq_push_with_thief_goro {:.2} ns/op", ours_with_thief());
    println!("runq_push_with_thief_crossbeam {:.2} ns/op", crossbeam_with_thief());
}
