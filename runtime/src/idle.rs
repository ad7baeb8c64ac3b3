//! Idle Ps and spinning Ms: the two counts that decide whether submitting
//! work must wake an M (Go's `sched.npidle`, `sched.nmspinning` and
//! `sched.pidle`).
//!
//! # The invariant
//!
//! > If a P is idle and there is runnable work no running M will get to,
//! > some M is spinning (or has been claimed to spin and is being woken).
//!
//! Every M can then sleep without a timeout: nothing is stranded. It holds
//! because of three rules, each a transition of [`Idle`]:
//!
//! 1. Whoever submits work (`ready`, `newproc`, a handoff, a preempted G
//!    put on the global queue) calls `wakep` after the work is visible,
//!    which starts an M spinning on an idle P unless one already spins
//!    ([`Idle::claim_spinning`]). One spinning M is
//!    enough: it either finds the work or, being the last spinning M to give
//!    up, looks again (rule 3).
//! 2. A spinning M that finds work stops spinning; if it was the last one
//!    ([`Idle::stop_spinning`] returns true) it calls `wakep` for the next
//!    piece of work, which the submitter of that piece did not wake anyone
//!    for (it saw a spinning M).
//! 3. A spinning M that gives up puts its P on the idle list *first*, then
//!    stops spinning, then (after a SeqCst fence) looks at every queue once
//!    more. Work submitted meanwhile either saw the P idle and no spinning M
//!    (and woke one), or was visible to the last look. The submitter's side
//!    is the mirror: work store, then SeqCst loads of the counts. Both sides
//!    are modelled under loom (`tests/loom_idle.rs`).
//!
//! Work in `runnext` is the one exception the rules allow: under
//! `RunnextWake::Deferred` a G readied into an empty `runnext` wakes no one
//! at once, because the readier usually parks next and its M runs the G
//! (the ping-pong case). The P records the debt (`P::wake_pending`), the
//! readier's M counts its runtime calls from there (`MCtx::wake_calls`),
//! and the second one pays it (the preemption point every runtime call
//! passes, `m::preempt_point`, calls `wakep` if the slot is still full) or, if the readier runs on without
//! one, at sysmon's next pass over the P; either way an M is woken before
//! the G could wait long for a P that is not coming. Work that goes behind
//! a full `runnext` is submitted as usual (rule 1).
//!
//! The idle list itself ([`IdleList`]) lives under the scheduler lock beside
//! the global queue, so "the global queue is empty, so this P goes idle" is
//! one step that no submitter to the global queue can fall between.

use crate::atomic::{AtomicUsize, Ordering};

/// The counts, readable without the scheduler lock.
pub(crate) struct Idle {
    /// Ps on the idle list. Changed only together with the list, under the
    /// scheduler lock; read without it (`wakep`'s fast path).
    npidle: AtomicUsize,
    /// Ms spinning, plus the claims of `wakep` for an M it is starting.
    nmspinning: AtomicUsize,
}

/// The idle Ps, by index; kept under the scheduler lock.
pub(crate) struct IdleList {
    ps: Vec<usize>,
}

impl Idle {
    /// The counts and the list for `procs` Ps, all idle.
    pub(crate) fn new(procs: usize) -> (Idle, IdleList) {
        let idle = Idle { npidle: AtomicUsize::new(procs), nmspinning: AtomicUsize::new(0) };
        (idle, IdleList { ps: (0..procs).rev().collect() })
    }

    /// How many Ps are idle.
    pub(crate) fn npidle(&self) -> usize {
        self.npidle.load(Ordering::SeqCst)
    }

    /// How many Ms spin (or are claimed to).
    pub(crate) fn nmspinning(&self) -> usize {
        self.nmspinning.load(Ordering::SeqCst)
    }

    /// Takes the most recently idled P off the list.
    pub(crate) fn take(&self, list: &mut IdleList) -> Option<usize> {
        let p = list.ps.pop()?;
        self.npidle.fetch_sub(1, Ordering::SeqCst);
        Some(p)
    }

    /// Takes P `p` off the list if it is there.
    pub(crate) fn take_this(&self, list: &mut IdleList, p: usize) -> bool {
        match list.ps.iter().position(|&q| q == p) {
            Some(i) => {
                list.ps.swap_remove(i);
                self.npidle.fetch_sub(1, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Puts P `p` on the list.
    pub(crate) fn put(&self, list: &mut IdleList, p: usize) {
        list.ps.push(p);
        self.npidle.fetch_add(1, Ordering::SeqCst);
    }

    /// `wakep`'s claim (rule 1): the right to start one spinning M, taken
    /// only if no M spins. The caller then takes an idle P and starts an M
    /// on it with the spinning role, or gives the claim back with
    /// [`Idle::unclaim_spinning`].
    pub(crate) fn claim_spinning(&self) -> bool {
        self.nmspinning.load(Ordering::SeqCst) == 0
            && self.nmspinning.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// A claim that found no P to spin on (or a runtime shutting down).
    pub(crate) fn unclaim_spinning(&self) {
        let before = self.nmspinning.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "nmspinning underflow");
    }

    /// An M that holds a P starts looking for work on other Ps.
    pub(crate) fn start_spinning(&self) {
        self.nmspinning.fetch_add(1, Ordering::SeqCst);
    }

    /// An M stops spinning (found work, or gives up). Returns whether it was
    /// the last spinning M: then it owes a `wakep` if it found work (rule 2)
    /// and a last look at the queues if it gave up (rule 3, after a SeqCst
    /// fence).
    pub(crate) fn stop_spinning(&self) -> bool {
        let before = self.nmspinning.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "nmspinning underflow");
        before == 1
    }
}
