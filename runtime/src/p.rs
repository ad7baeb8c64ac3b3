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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PStatus {
    /// In the idle list, no M.
    Idle = 0,
    /// Held by an M that is in runtime code (or runs a G with hog handoff off).
    Running = 1,
    /// Held by an M whose G runs user code, with hog handoff on: sysmon may
    /// take the P (CAS to Idle); the M re-checks with a CAS at its next
    /// runtime call (`syscall.rs`).
    User = 2,
    /// Its M's G is in `goro::syscall`; the M does not touch the P until
    /// `exitsyscall` wins the CAS back to Running, or sysmon retakes it.
    Syscall = 3,
}

#[repr(align(128))]
pub(crate) struct P {
    pub runq: RunQueue<G>,
    /// A G readied by the running G, run next and inheriting the time slice.
    /// Holds an `Arc<G>` as a raw pointer, or null.
    pub runnext: AtomicPtr<G>,
    pub status: AtomicU8,
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
    /// waking an idle P (1), and the readier has since made one runtime
    /// call (2); the next one wakes. Cleared when `runnext` is taken.
    /// Written by the owner; sysmon reads it.
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
    /// Dead Gs for reuse (Go's `p.gFree`); each is the only reference.
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
            status: AtomicU8::new(PStatus::Idle as u8),
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

    /// The owner, at a runtime call of the running G: advances a deferred
    /// wake-up; `true` when it is due (the readier kept running).
    #[inline]
    pub fn wake_due(&self) -> bool {
        match self.wake_pending.load(Ordering::Relaxed) {
            0 => false,
            1 => {
                self.wake_pending.store(2, Ordering::Relaxed);
                false
            }
            _ => {
                self.wake_pending.store(0, Ordering::Relaxed);
                true
            }
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

    pub fn set_status(&self, s: PStatus) {
        self.status.store(s as u8, Ordering::Relaxed);
    }

    pub fn status(&self) -> PStatus {
        match self.status.load(Ordering::Acquire) {
            0 => PStatus::Idle,
            1 => PStatus::Running,
            2 => PStatus::User,
            _ => PStatus::Syscall,
        }
    }

    /// Whether an M is running Gs on the P (in runtime or user code).
    pub fn is_running(&self) -> bool {
        let s = self.status.load(Ordering::Relaxed);
        s == PStatus::Running as u8 || s == PStatus::User as u8
    }

    /// Moves the status from `from` to `to` if it is `from`.
    pub fn cas_status(&self, from: PStatus, to: PStatus) -> bool {
        self.status.compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Whether the P has runnable Gs (runnext or local queue). Racy.
    pub fn has_work(&self) -> bool {
        !self.runnext.load(Ordering::Acquire).is_null() || !self.runq.is_empty()
    }

    pub fn queue_len(&self) -> usize {
        self.runq.len() + usize::from(!self.runnext.load(Ordering::Relaxed).is_null())
    }
}

/// A slab of the Gs created on one P, so that shutdown and dumps can find
/// every live G.
#[derive(Default)]
pub(crate) struct Registry {
    slots: Vec<Option<Arc<G>>>,
    free: Vec<u32>,
    live: usize,
}

impl Registry {
    pub fn insert(&mut self, g: Arc<G>) -> u32 {
        self.live += 1;
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(g);
            i
        } else {
            self.slots.push(Some(g));
            (self.slots.len() - 1) as u32
        }
    }

    pub fn remove(&mut self, i: u32) -> Option<Arc<G>> {
        let g = self.slots.get_mut(i as usize)?.take();
        if g.is_some() {
            self.live -= 1;
            self.free.push(i);
        }
        g
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<G>> {
        self.slots.iter().flatten()
    }

    pub fn drain(&mut self) -> Vec<Arc<G>> {
        self.free.clear();
        self.live = 0;
        self.slots.drain(..).flatten().collect()
    }
}
