//! Model checks of the handshake between recycling a dead G and a
//! registry reader cloning it (`src/recycle.rs`, explained in `src/g.rs`)
//! under loom. A G's life fields are a loom `UnsafeCell`: the recycler
//! writes them (reset, then the next life) only when `may_recycle` says so,
//! and a reader reads them only when `reader_sees_live` says so; loom
//! reports any read not ordered with those writes. Models with either
//! fence left out find the interleaving where both sides go ahead.

mod atomic {
    pub use loom::sync::atomic::{AtomicU8, Ordering};

    thread_local! {
        /// The fence a model leaves out, if any (loom runs every model
        /// thread on the test's own OS thread).
        pub static LEFT_OUT: std::cell::Cell<Option<Ordering>> = const { std::cell::Cell::new(None) };
    }

    pub fn fence(o: Ordering) {
        if LEFT_OUT.with(|l| l.get()) != Some(o) {
            loom::sync::atomic::fence(o);
        }
    }
}

#[path = "../src/recycle.rs"]
mod recycle;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

const DEAD: u8 = 0;
const LIVE: u8 = 1;

/// A G as far as the handshake goes: its status, its reference count and
/// one life field.
struct G {
    status: AtomicU8,
    refs: AtomicUsize,
    life: UnsafeCell<u64>,
}

/// The G exits (status dead) while holding one reference besides the
/// registry's; a reader clones it meanwhile and reads its life if alive.
/// Returns what the reader read, if anything, and whether it was recycled.
fn exit_races_with_a_reader() -> (Option<u64>, bool) {
    let g = Arc::new(G { status: AtomicU8::new(LIVE), refs: AtomicUsize::new(2), life: UnsafeCell::new(1) });
    let g2 = g.clone();
    let reader = thread::spawn(move || {
        // `clone_if_live`: take a reference, then look.
        g2.refs.fetch_add(1, Ordering::Relaxed);
        let seen = recycle::reader_sees_live(&g2.status, DEAD).then(|| g2.life.with(|l| unsafe { *l }));
        g2.refs.fetch_sub(1, Ordering::Release);
        seen
    });
    // `goexit0` then `gfput`.
    g.status.store(DEAD, Ordering::Relaxed);
    let recycled = recycle::may_recycle(|| g.refs.load(Ordering::Relaxed), 2);
    if recycled {
        // `end_life`, then the next spawn's `begin_life`.
        g.life.with_mut(|l| unsafe { *l = 0 });
        g.life.with_mut(|l| unsafe { *l = 2 });
        g.status.store(LIVE, Ordering::Release);
    }
    (reader.join().unwrap(), recycled)
}

#[test]
fn loom_a_reader_never_reads_a_life_being_rewritten() {
    loom::model(|| {
        let (seen, _) = exit_races_with_a_reader();
        // A reader sees a whole life: the one that ended, or the next.
        assert!(matches!(seen, None | Some(1) | Some(2)), "{seen:?}");
    });
}

#[test]
#[should_panic(expected = "Causality violation")]
fn loom_without_the_seqcst_fences_a_reader_reads_a_life_being_rewritten() {
    atomic::LEFT_OUT.with(|l| l.set(Some(Ordering::SeqCst)));
    loom::model(|| {
        exit_races_with_a_reader();
    });
}

/// Without the recycler's Acquire fence, a reader that read the life and
/// dropped its reference before the count was read is not ordered before
/// the reset.
#[test]
#[should_panic(expected = "Causality violation")]
fn loom_without_the_acquire_fence_a_reader_reads_a_life_being_rewritten() {
    atomic::LEFT_OUT.with(|l| l.set(Some(Ordering::Acquire)));
    loom::model(|| {
        exit_races_with_a_reader();
    });
}
