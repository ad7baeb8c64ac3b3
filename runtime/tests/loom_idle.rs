//! Model checks of the idle-P and spinning-M counts (`src/idle.rs`) under
//! loom: the last spinning M gives up its P while another thread submits
//! work to the global queue. In every interleaving the work is found by
//! the giving-up M's last look, or the submitter's `wakep` starts an M on
//! the idle P: no work is stranded while every M sleeps.
//!
//! Loom treats SeqCst loads and stores as Acquire and Release (its README,
//! "Unsupported features"), which is too weak for the submitter's side of
//! the protocol: its SeqCst store of the queue length followed by its
//! SeqCst loads of the counts. The model writes that store-then-load order
//! as the `fence(SeqCst)` it amounts to; the spinner's side is the code's
//! own (its fence is real).

mod atomic {
    pub use loom::sync::atomic::{AtomicUsize, Ordering};
}

#[path = "../src/idle.rs"]
#[allow(dead_code)]
mod idle;

use idle::{Idle, IdleList};
use loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// One runtime of one P: the counts, and under the scheduler lock the idle
/// list and the global queue's length.
struct World {
    idle: Idle,
    lock: Mutex<IdleList>,
    runq_size: AtomicUsize,
    /// The submitter's `wakep` started an M on the idle P.
    woken: AtomicBool,
    /// The spinning M found the work in its last look.
    found: AtomicBool,
}

fn world() -> Arc<World> {
    let (idle, mut list) = Idle::new(1);
    // The P is held by the spinning M, which claimed the spinning role.
    assert_eq!(idle.take(&mut list), Some(0));
    idle.start_spinning();
    Arc::new(World {
        idle,
        lock: Mutex::new(list),
        runq_size: AtomicUsize::new(0),
        woken: AtomicBool::new(false),
        found: AtomicBool::new(false),
    })
}

/// `Sched::wakep` as the submitter runs it.
fn wakep(w: &World) {
    if w.idle.npidle() == 0 || !w.idle.claim_spinning() {
        return;
    }
    let p = w.idle.take(&mut w.lock.lock().unwrap());
    match p {
        Some(_) => w.woken.store(true, Ordering::SeqCst),
        None => w.idle.unclaim_spinning(),
    }
}

/// `find_runnable`'s end: the spinning M found nothing and gives up its P;
/// with `recheck`, it then looks at the queue once more (`idle.rs`,
/// rule 3).
fn give_up(w: &World, recheck: bool) {
    w.idle.put(&mut w.lock.lock().unwrap(), 0);
    w.idle.stop_spinning();
    if !recheck {
        return;
    }
    fence(Ordering::SeqCst);
    if w.runq_size.load(Ordering::SeqCst) > 0 {
        let p = w.idle.take(&mut w.lock.lock().unwrap());
        if p.is_some() {
            w.idle.start_spinning();
            w.found.store(true, Ordering::SeqCst);
        }
    }
}

/// `globrunqput` then `wakep`.
fn submit(w: &World) {
    {
        let _l = w.lock.lock().unwrap();
        w.runq_size.store(1, Ordering::SeqCst);
    }
    // Stands for the SeqCst store above followed by wakep's SeqCst loads.
    fence(Ordering::SeqCst);
    wakep(w);
}

fn run(recheck: bool) {
    loom::model(move || {
        let w = world();
        let w2 = w.clone();
        let spinner = thread::spawn(move || give_up(&w2, recheck));
        submit(&w);
        spinner.join().unwrap();
        assert!(
            w.found.load(Ordering::SeqCst) || w.woken.load(Ordering::SeqCst),
            "work stranded: a P is idle, no M spins and nobody was woken"
        );
        // Whoever took the P holds the one spinning role; nobody else does.
        let spinning = w.idle.nmspinning();
        let idle = w.idle.npidle();
        assert_eq!(spinning + idle, 1, "spinning {spinning}, idle {idle}");
    });
}

#[test]
fn loom_work_submitted_while_the_last_spinner_gives_up_is_never_stranded() {
    run(true);
}

/// The model can fail: without the last look (rule 3) loom finds the
/// interleaving where the submitter sees the M still spinning and the M
/// then sleeps without having seen the work.
#[test]
#[should_panic(expected = "work stranded")]
fn loom_without_the_last_look_work_is_stranded() {
    run(false);
}
