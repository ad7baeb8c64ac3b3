//! P: a logical processor. An M must hold a P to run Gs; `procs` Ps exist
//! per runtime (GOMAXPROCS).
//!
//! A P holds what makes running Gs cheap and local: its run queue and
//! `runnext` slot, its timers, a cache of stacks and of G ids, and its
//! counters. Ownership: at most one M holds a P at a time; the fields in
//! [`PLocal`] are touched only by that M. A P moves between Ms only through
//! the idle-P list (under `sched.lock`) or a handoff through an M's `nextp`,
//! both of which order the previous owner's writes before the next owner's
//! reads.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::g::G;
use crate::runq::RunQueue;
use crate::stack::Stack;
use crate::stats::{Counters, Hist};
use crate::timer::TimerHeap;

/// What a P is doing: the low byte of [`P::status`]'s word. The rest of
/// the word counts the P's acquisitions (its *generation*), so that an M
/// can tell "my P is still running" from "my P was taken and is running
/// again, for another M" with one load (`hog.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PStatus {
    /// In the idle list, no M.
    Idle = 0,
    /// Held by an M (in runtime code, or running a G).
    Running = 1,
    /// sysmon is taking the P from an M whose G has run user code past
    /// `Policy::hog_threshold` (`hog.rs`): it ends as `Idle` (taken) or
    /// back at `Running` (the M came back first).
    Takeover = 2,
    /// Its M's G is in `goro::syscall`; the M does not touch the P until
    /// `exitsyscall` wins the CAS back to Running, or sysmon retakes it.
    Syscall = 3,
}

impl PStatus {
    pub(crate) fn of_word(word: u64) -> PStatus {
        match word as u8 {
            0 => PStatus::Idle,
            1 => PStatus::Running,
            2 => PStatus::Takeover,
            _ => PStatus::Syscall,
        }
    }

    /// `word` with its state replaced by `self` (same generation).
    pub(crate) fn in_word(self, word: u64) -> u64 {
        (word & !0xff) | self as u64
    }
}

/// Where the owner's G is, for hog handoff (`hog.rs`).
pub(crate) struct UserMarks {
    /// Odd while the G runs user code; changed at every runtime section's
    /// entry and exit. The takeover's safety rests on it: sysmon takes the
    /// P only while it stays odd and unchanged.
    pub tick: AtomicU32,
    /// Bumped at every runtime call that needs no section (a hint of
    /// progress: a G that calls the runtime often is no hog, even if no
    /// call touches the P). A stray bump can only delay a takeover.
    pub calls: AtomicU32,
}

/// A value on a cache line (pair) of its own.
#[repr(align(128))]
pub(crate) struct OwnLine<T>(pub T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[repr(align(128))]
pub(crate) struct P {
    pub runq: RunQueue<G>,
    /// A G readied by the running G, run next and inheriting the time slice.
    /// Holds an `Arc<G>` as a raw pointer, or null.
    pub runnext: AtomicPtr<G>,
    /// `generation << 8 | PStatus`. 56 bits of generation do not wrap.
    pub status: AtomicU64,
    /// Hog handoff's marks, written by the owner (`hog.rs`), on a line of
    /// their own: they are written at runtime calls, and thieves read
    /// `runnext` and the queue all the time.
    pub user: OwnLine<UserMarks>,
    /// Incremented by the owner each time it schedules a G without inherited
    /// time; sysmon reads it to detect a G that has run too long.
    pub schedtick: AtomicU32,
    /// `schedtick` modulo `Policy::global_queue_interval`, kept by the
    /// owner next to it (the fairness check would otherwise divide on
    /// every schedule).
    pub fair_tick: AtomicU32,
    /// Incremented by the owner at each `entersyscall`; sysmon reads it.
    pub syscalltick: AtomicU32,
    /// Set by sysmon: the running G yields at its next preemption point.
    pub preempt: AtomicBool,
    /// `RunnextWake::Deferred`: a G went into an empty `runnext` without
    /// waking an idle P (1; the readier's M counts its runtime calls from
    /// there, `MCtx::wake_calls`). Cleared when `runnext` is taken or the
    /// wake-up is paid. Written by the owner; sysmon reads it.
    pub wake_pending: AtomicU8,
    pub timers: Mutex<TimerHeap>,
    /// Earliest timer deadline (ns since the runtime epoch), `u64::MAX` if none.
    pub timer_next: AtomicU64,
    pub counters: Counters,
    pub sched_latency: Hist,
    pub run_time: Hist,
    /// ns since the epoch when the P last went idle (0 at start).
    pub idle_since: AtomicU64,
    /// Total ns the P spent idle before `idle_since`.
    pub idle_total: AtomicU64,
    /// Gs created on this P that have not exited (Go's `allgs`, sharded).
    pub registry: Mutex<Registry>,
    local: UnsafeCell<PLocal>,
}

/// Fields only the M holding the P touches.
pub(crate) struct PLocal {
    pub stacks: Vec<Stack>,
    pub goid_next: u64,
    pub goid_end: u64,
    pub overflow: Vec<*mut G>,
    /// Dead Gs for reuse (Go's `p.gFree`), each held only here and by
    /// its registry.
    pub gfree: Vec<Arc<G>>,
}

// SAFETY: `local` is accessed only through `P::local`, whose contract is that
// the caller holds the P; everything else is atomic or locked.
unsafe impl Sync for P {}
// SAFETY: as above.
unsafe impl Send for P {}

impl P {
    pub fn new(local_queue: usize) -> P {
        P {
            runq: RunQueue::new(local_queue),
            runnext: AtomicPtr::new(std::ptr::null_mut()),
            status: AtomicU64::new(PStatus::Idle as u64),
            user: OwnLine(UserMarks { tick: AtomicU32::new(0), calls: AtomicU32::new(0) }),
            schedtick: AtomicU32::new(0),
            fair_tick: AtomicU32::new(0),
            syscalltick: AtomicU32::new(0),
            preempt: AtomicBool::new(false),
            wake_pending: AtomicU8::new(0),
            timers: Mutex::new(TimerHeap::default()),
            timer_next: AtomicU64::new(u64::MAX),
            counters: Counters::default(),
            sched_latency: Hist::default(),
            run_time: Hist::default(),
            idle_since: AtomicU64::new(0),
            idle_total: AtomicU64::new(0),
            registry: Mutex::new(Registry::default()),
            local: UnsafeCell::new(PLocal {
                stacks: Vec::new(),
                goid_next: 0,
                goid_end: 0,
                overflow: Vec::new(),
                gfree: Vec::new(),
            }),
        }
    }

    /// The owner: a deferred wake-up is moot (`runnext` was taken, or the P
    /// goes idle). Stores only if set, to keep the line clean.
    #[inline]
    pub fn clear_wake_pending(&self) {
        if self.wake_pending.load(Ordering::Relaxed) != 0 {
            self.wake_pending.store(0, Ordering::Relaxed);
        }
    }

    /// The owner-only part of the P.
    ///
    /// # Safety
    /// The caller holds the P (it is its M's current P), or no M runs any
    /// more, and does not keep two of these borrows alive at once.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn local(&self) -> &mut PLocal {
        // SAFETY: the caller holds the P and no other borrow of its local
        // part is alive (this function's contract).
        unsafe { &mut *self.local.get() }
    }

    /// Sets the state, keeping the generation. Only by the P's owner, in
    /// runtime code (or under the scheduler lock for an idle P): a
    /// takeover that sysmon began meanwhile then fails (`hog.rs`).
    pub fn set_status(&self, s: PStatus) {
        let w = self.status.load(Ordering::Relaxed);
        self.status.store(s.in_word(w), Ordering::Release);
    }

    /// A new owner takes the idle P: `Running`, next generation. Returns
    /// the word the owner checks at its runtime entries.
    pub fn acquire(&self) -> u64 {
        crate::takeover::acquire(&self.status, &self.user.tick, PStatus::Running as u64)
    }

    /// An M takes the P back from state `from` (`exitsyscall`'s fast
    /// path): `Running`, next generation. Returns the owner's word.
    pub fn take_from(&self, from: PStatus) -> Option<u64> {
        // No tick to reset: a P in `Syscall` got its G's entry mark
        // (even) in `entersyscall`.
        let mut w = self.status.load(Ordering::Acquire);
        while PStatus::of_word(w) == from {
            let next = crate::takeover::next_generation(w, PStatus::Running as u64);
            match self.status.compare_exchange_weak(w, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(next),
                Err(now) => w = now,
            }
        }
        None
    }

    pub fn status(&self) -> PStatus {
        PStatus::of_word(self.status.load(Ordering::Acquire))
    }

    /// Whether an M is running Gs on the P (in runtime or user code).
    pub fn is_running(&self) -> bool {
        matches!(PStatus::of_word(self.status.load(Ordering::Relaxed)), PStatus::Running | PStatus::Takeover)
    }

    /// Moves the state from `from` to `to` if it is `from`, keeping the
    /// generation.
    pub fn cas_status(&self, from: PStatus, to: PStatus) -> bool {
        let mut w = self.status.load(Ordering::Acquire);
        while PStatus::of_word(w) == from {
            match self.status.compare_exchange_weak(w, to.in_word(w), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
        false
    }

    /// Whether the P has runnable Gs (runnext or local queue). Racy.
    pub fn has_work(&self) -> bool {
        !self.runnext.load(Ordering::Acquire).is_null() || !self.runq.is_empty()
    }

    /// Free slots in the local queue (racy, as `len`: thieves only make
    /// more).
    pub fn runq_room(&self) -> usize {
        self.runq.limit().saturating_sub(self.runq.len())
    }

    pub fn queue_len(&self) -> usize {
        self.runq.len() + usize::from(!self.runnext.load(Ordering::Relaxed).is_null())
    }
}

/// A slab of the G objects created on one P, dead ones included (Go's
/// `allgs`), so that shutdown and dumps can find every live G and a parked
/// G nobody will wake stays alive. A G enters when it is made (`newproc`)
/// and leaves when it cannot be recycled or at shutdown (`g.rs`): spawns
/// and exits of recycled Gs never touch it. Readers clone a G with
/// `G::clone_if_live`.
#[derive(Default)]
pub(crate) struct Registry {
    slots: Vec<Option<Arc<G>>>,
    free: Vec<u32>,
}

impl Registry {
    pub fn insert(&mut self, g: Arc<G>) -> u32 {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(g);
            i
        } else {
            self.slots.push(Some(g));
            (self.slots.len() - 1) as u32
        }
    }

    /// Takes out entry `i` if it is G `g`'s.
    pub fn remove(&mut self, i: u32, g: *const G) -> Option<Arc<G>> {
        let slot = self.slots.get_mut(i as usize)?;
        if !slot.as_ref().is_some_and(|x| std::ptr::eq(Arc::as_ptr(x), g)) {
            return None;
        }
        self.free.push(i);
        slot.take()
    }

    /// How many Gs it holds.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<G>> {
        self.slots.iter().flatten()
    }

    pub fn drain(&mut self) -> Vec<Arc<G>> {
        self.free.clear();
        self.slots.drain(..).flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{PStatus, P};

    /// Every acquisition is a new generation, one more than the last, so
    /// an M holding an old word can never mistake the P for its own.
    #[test]
    fn each_acquisition_is_the_next_generation() {
        let p = P::new(4);
        let first = p.acquire();
        assert_eq!(PStatus::of_word(first), PStatus::Running);
        p.set_status(PStatus::Idle);
        let second = p.acquire();
        assert_eq!(second >> 8, (first >> 8) + 1);
        assert_eq!(PStatus::of_word(second), PStatus::Running);
        // Syscall round trip: the same owner takes it back, next generation.
        p.set_status(PStatus::Syscall);
        let third = p.take_from(PStatus::Syscall).expect("in a syscall");
        assert_eq!(third >> 8, (second >> 8) + 1);
        assert!(p.take_from(PStatus::Syscall).is_none(), "taken twice");
    }
}
