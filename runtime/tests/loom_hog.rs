//! Model checks of hog handoff's takeover (`src/takeover.rs`, explained in
//! `src/hog.rs`) under loom: sysmon takes a P from an owner whose G ran
//! user code, while the owner comes back into the runtime. The P's
//! owner-only state is a loom `UnsafeCell`: in every interleaving exactly
//! one side goes on to touch it, and never both at once (loom reports any
//! access that is not ordered after the other side's).
//!
//! `membarrier(2)` has no loom counterpart. It acts as a full fence on
//! every other thread at some point during the call, which is what the
//! owner's compiler fence becomes: the model writes the owner's light
//! barrier and sysmon's heavy one as SeqCst fences. The second model
//! leaves both out, and loom finds the interleaving where both sides
//! think they hold the P.

mod atomic {
    pub use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    thread_local! {
        /// The model without barriers (loom runs every model thread on
        /// the test's own OS thread).
        pub static WEAK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    pub fn light_barrier() {
        if !WEAK.with(|w| w.get()) {
            loom::sync::atomic::fence(Ordering::SeqCst);
        }
    }
}

#[path = "../src/takeover.rs"]
#[allow(dead_code)]
mod takeover;

use atomic::{AtomicU32, AtomicU64, Ordering};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

const IDLE: u64 = 0;
const RUNNING: u64 = 1;
const TAKEOVER: u64 = 2;
/// Generation 1 of the P, as its owner acquired it.
const GEN: u64 = 1 << 8;

struct P {
    status: AtomicU64,
    user_tick: AtomicU32,
    /// The owner-only part of the P (its run queue, its caches).
    local: UnsafeCell<u32>,
}

fn run(weak: bool) {
    atomic::WEAK.with(|w| w.set(weak));
    loom::model(move || {
        let p = Arc::new(P {
            status: AtomicU64::new(GEN | RUNNING),
            user_tick: AtomicU32::new(0),
            local: UnsafeCell::new(0),
        });
        // The owner used the P, then its G went to user code.
        p.local.with_mut(|l| unsafe { *l += 1 });
        takeover::owner_leave(&p.user_tick);
        let seen = p.user_tick.load(Ordering::Relaxed);

        let p2 = p.clone();
        let sysmon = thread::spawn(move || {
            let heavy = || {
                if !atomic::WEAK.with(|w| w.get()) {
                    loom::sync::atomic::fence(Ordering::SeqCst);
                }
                true
            };
            let took = takeover::sysmon_take(
                &p2.status,
                &p2.user_tick,
                seen,
                GEN | RUNNING,
                GEN | TAKEOVER,
                GEN | IDLE,
                heavy,
            );
            if took {
                // handoffp: the next owner uses the P.
                // SAFETY (model): loom checks this access's ordering.
                p2.local.with_mut(|l| unsafe { *l += 10 });
            }
            took
        });

        // The G comes back to the runtime.
        let kept = takeover::owner_enter(&p.status, &p.user_tick, GEN | RUNNING, GEN | TAKEOVER);
        if kept {
            p.local.with_mut(|l| unsafe { *l += 100 });
        }
        let took = sysmon.join().unwrap();
        assert!(kept != took, "kept {kept}, took {took}: the P must have exactly one owner");
        let status = p.status.load(Ordering::Relaxed);
        assert_eq!(status, if kept { GEN | RUNNING } else { GEN | IDLE });
    });
}

#[test]
fn loom_a_taken_p_has_exactly_one_owner() {
    run(false);
}

/// The model can fail: without the barriers the owner's tick store can be
/// invisible to sysmon's second look while the owner reads the status from
/// before the takeover, and both go on with the P.
#[test]
#[should_panic(expected = "Causality violation")]
fn loom_without_the_barriers_both_sides_take_the_p() {
    run(true);
}

/// After a takeover, a new owner acquires the P (next generation) and
/// works on it while sysmon, which still remembers the old owner's odd
/// tick, tries to take it again: the new owner's even tick, published
/// before its status word, keeps sysmon off.
#[test]
fn loom_a_new_owner_is_not_taken_for_the_old_hog() {
    loom::model(|| {
        let p =
            Arc::new(P { status: AtomicU64::new(GEN | IDLE), user_tick: AtomicU32::new(0), local: UnsafeCell::new(0) });
        // The old owner left the tick odd when its P was taken.
        takeover::owner_leave(&p.user_tick);
        let seen = p.user_tick.load(Ordering::Relaxed);
        let p2 = p.clone();
        let sysmon = thread::spawn(move || {
            // hog::take: the word it sees, then the tick it remembers.
            let word = p2.status.load(Ordering::Acquire);
            if word & 0xff != RUNNING || p2.user_tick.load(Ordering::Acquire) != seen {
                return;
            }
            let heavy = || {
                loom::sync::atomic::fence(Ordering::SeqCst);
                true
            };
            let taking = (word & !0xff) | TAKEOVER;
            if takeover::sysmon_take(&p2.status, &p2.user_tick, seen, word, taking, word & !0xff, heavy) {
                p2.local.with_mut(|l| unsafe { *l += 10 });
            }
        });
        // The new owner (handoffp's M) in the scheduler, on the P.
        let mine = takeover::acquire(&p.status, &p.user_tick, RUNNING);
        p.local.with_mut(|l| unsafe { *l += 1 });
        sysmon.join().unwrap();
        assert_eq!(p.status.load(Ordering::Relaxed), mine, "the new owner's P was taken");
    });
}
