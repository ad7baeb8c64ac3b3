//! The scheduler: Go's `proc.go` in Rust.
//!
//! # Design (after Go's proc.go design note)
//!
//! G is a goroutine, M an OS thread, P a logical processor: an M must hold a
//! P to run Gs, and there are exactly `procs` Ps. Each P has a bounded local
//! run queue and a `runnext` slot; there is one global queue under
//! `sched.lock`.
//!
//! The hard part is parking and unparking Ms: enough Ms must be awake to use
//! every P when there is work, and as few as possible when there is not. Like
//! Go, goro keeps *spinning* Ms: an M is spinning when it holds a P, has
//! nothing in its local queue, and is looking for work in the global queue,
//! the poller and other Ps. The invariant is:
//!
//! > If there is an idle P and runnable work that no M will get to, there is
//! > a spinning M (or one is being woken).
//!
//! It holds because (1) whoever submits work (`ready`, `newproc`) calls
//! `wakep`, which wakes a spinning M if there is an idle P and no spinning M;
//! (2) the last spinning M to find work calls `wakep` for the next piece of
//! work; (3) a spinning M that gives up first decrements `nmspinning` and then
//! re-checks every queue (SeqCst on both sides), so it cannot miss work
//! submitted while it was giving up. Ms that are not spinning and have no
//! work park on their own parker (a futex) until handed a P.
//!
//! One idle M at a time is the *poller M*: it blocks in `Poller::poll` with
//! the earliest timer of any P as timeout, so timers fire while every M
//! sleeps. Others park with no timeout.
//!
//! # Where things are
//! - `newproc`, `ready`, `runqput`/`runqget`, `globrunqput`/`globrunqget`:
//!   putting Gs on queues.
//! - `wakep`, `startm`, `newm`, `stopm`, `pidleget`/`pidleput`: Ms and Ps.
//! - `mstart` → `schedule` → `find_runnable` → `execute`: the M's loop.
//! - `steal_work`, `runqsteal`: stealing.
//! - `shutdown`: tearing a runtime down.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::io;
use std::panic::Location;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};

use crate::g::{GStatus, GYielder, Switch, G};
use crate::m::{self, MCtx, M};
use crate::p::{PStatus, P};
use crate::policy::{Policy, RunnextWake, Spinning, Steal};
use crate::poller::Poller;
use crate::runq::Take;
use crate::signal;
use crate::stack::{self, SharedPool, Stack};
use crate::stats::{Counters, Stats};

/// "No P" in an M's `p` or `nextp`.
pub(crate) const NO_P: usize = usize::MAX;

/// How long a thief waits before taking a running P's `runnext` (Go's
/// `usleep(3)`; the kernel's timer slack makes it ~50 µs): the G there is
/// usually about to run, and taking it would bounce a ping-pong pair
/// between Ps. Sleeping, not spinning: a spinning thief burns a CPU the
/// runtime's other threads could use. If the victim scheduled any G during
/// the wait, the thief leaves `runnext` alone.
const RUNNEXT_STEAL_WAIT: Duration = Duration::from_micros(3);

/// Scheduling latency and run time are measured for one event in 64.
const SAMPLE_MASK: u64 = 63;

/// How long shutdown waits for Ms still running user code, and for the
/// destructors of the Gs it drops, before it leaves them running detached.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

/// An idle M exits after this long if more Ms than Ps are idle.
const IDLE_M_EXIT: Duration = Duration::from_secs(5);

/// Dead Gs a P keeps for reuse; it moves `GFREE_BATCH` to or from the
/// shared list when it has too many or none (Go: 64 and 32).
const GFREE_LOCAL: usize = 64;
const GFREE_BATCH: usize = 32;

/// Largest G stack a `Builder` may ask for.
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;

static NEXT_GOID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Sched {
    pub policy: Policy,
    pub procs: usize,
    pub ps: Box<[P]>,
    lock: Mutex<Locked>,
    /// Length of the global queue, readable without the lock.
    runq_size: AtomicUsize,
    npidle: AtomicUsize,
    nmspinning: AtomicUsize,
    pub shutdown: AtomicBool,
    /// Shutdown gave up waiting for some M (`SHUTDOWN_GRACE`): Ms that come
    /// back to the runtime leak their G instead of touching it.
    pub(crate) detached: AtomicBool,
    epoch: Instant,
    coarse_clock: AtomicU64,
    /// The poller given at build time (`ParkPoller` by default).
    base_poller: Box<dyn Poller>,
    /// A poller installed later, once (goro-netpoll installs its mio poller
    /// on first use of `goro::net`), with an `Any` view for downcasting.
    installed_poller: std::sync::OnceLock<(Arc<dyn Poller>, Arc<dyn std::any::Any + Send + Sync>)>,
    /// When a poller was last polled (ns since epoch), for sysmon.
    last_poll: AtomicU64,
    poller_busy: AtomicBool,
    /// Deadline (ns since epoch) the poller M sleeps until; 0 when no M is
    /// in the poller.
    poll_until: AtomicU64,
    pub stack_size: usize,
    shared_stacks: SharedPool,
    ms: Mutex<Vec<Arc<M>>>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    mcount: AtomicUsize,
    external_readies: AtomicU64,
    external_spawns: AtomicU64,
    /// Ps handed to another M because of a syscall (`blocking` or retake).
    handoffs: AtomicU64,
    /// Ps sysmon took from a G in a syscall.
    pub(crate) retakes: AtomicU64,
    /// Ps sysmon took from a G that hogged them.
    pub(crate) hog_handoffs: AtomicU64,
    /// Ms that exited after idling too long.
    ms_exited: AtomicUsize,
    pub(crate) max_threads: usize,
    /// sysmon's sleep: a flag to stop it and a condvar to wake it early.
    pub(crate) sysmon_note: Mutex<bool>,
    pub(crate) sysmon_cv: std::sync::Condvar,
    /// sysmon sleeps longer than a millisecond (entersyscall then wakes it).
    pub(crate) sysmon_deep: AtomicBool,
    pub(crate) tracer: Option<crate::trace::Tracer>,
    /// Ms publish their current G for schedtrace's detail lines (only when
    /// those are printed, to keep the stores off the hot path).
    pub(crate) publish_m_state: bool,
    /// Set once sysmon found every G asleep with nothing to wake them.
    pub(crate) deadlocked: AtomicBool,
    /// `goro::run`: exit the process with status 2 on deadlock, as Go does.
    pub(crate) exit_on_deadlock: AtomicBool,
    /// Plain threads blocked in `block_on`, woken on deadlock, and their
    /// kernel thread ids (deadlock detection accounts for them: they wait
    /// for a G of this runtime).
    pub(crate) deadlock_watchers: Mutex<Vec<(crate::park::Unparker, i32)>>,
    /// The kernel thread id of sysmon (0 until it starts).
    pub(crate) sysmon_tid: std::sync::atomic::AtomicI32,
    /// Dead Gs shared between Ps (Go's `sched.gFree`).
    gfree: Mutex<Vec<Arc<G>>>,
    /// Set when mapping a stack failed, cleared when one is freed: spawn
    /// fails fast meanwhile.
    stack_exhausted: AtomicBool,
    coprimes: Vec<usize>,
    name: String,
}

struct Locked {
    runq: VecDeque<Arc<G>>,
    pidle: Vec<usize>,
    midle: Vec<Arc<M>>,
}

pub(crate) struct SchedConfig {
    pub procs: usize,
    pub stack_size: usize,
    pub policy: Policy,
    pub poller: Box<dyn Poller>,
    pub name: String,
    pub max_threads: usize,
    pub trace: Option<std::path::PathBuf>,
    pub schedtrace_detail: bool,
    pub sigquit_dump: bool,
    pub trace_last: Option<Duration>,
}

impl Sched {
    pub fn new(cfg: SchedConfig) -> Arc<Sched> {
        let procs = cfg.procs.max(1);
        let ps: Box<[P]> = (0..procs).map(|_| P::new(cfg.policy.local_queue)).collect();
        let coprimes = (1..=procs).filter(|&i| gcd(i, procs) == 1).collect();
        signal::install();
        let s = Arc::new(Sched {
            policy: cfg.policy,
            procs,
            ps,
            lock: Mutex::new(Locked { runq: VecDeque::new(), pidle: (0..procs).rev().collect(), midle: Vec::new() }),
            runq_size: AtomicUsize::new(0),
            npidle: AtomicUsize::new(procs),
            nmspinning: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            detached: AtomicBool::new(false),
            epoch: Instant::now(),
            coarse_clock: AtomicU64::new(0),
            base_poller: cfg.poller,
            installed_poller: std::sync::OnceLock::new(),
            last_poll: AtomicU64::new(0),
            poller_busy: AtomicBool::new(false),
            poll_until: AtomicU64::new(0),
            stack_size: cfg.stack_size,
            shared_stacks: SharedPool::new(cfg.stack_size),
            ms: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            mcount: AtomicUsize::new(0),
            external_readies: AtomicU64::new(0),
            external_spawns: AtomicU64::new(0),
            handoffs: AtomicU64::new(0),
            retakes: AtomicU64::new(0),
            hog_handoffs: AtomicU64::new(0),
            ms_exited: AtomicUsize::new(0),
            max_threads: cfg.max_threads,
            sysmon_note: Mutex::new(false),
            sysmon_cv: std::sync::Condvar::new(),
            sysmon_deep: AtomicBool::new(false),
            tracer: cfg.trace.map(|p| crate::trace::Tracer::new(p, procs, cfg.trace_last)),
            publish_m_state: cfg.schedtrace_detail,
            deadlocked: AtomicBool::new(false),
            exit_on_deadlock: AtomicBool::new(false),
            deadlock_watchers: Mutex::new(Vec::new()),
            sysmon_tid: std::sync::atomic::AtomicI32::new(0),
            stack_exhausted: AtomicBool::new(false),
            gfree: Mutex::new(Vec::new()),
            coprimes,
            name: cfg.name,
        });
        crate::dump::register(&s, cfg.sigquit_dump);
        if s.tracer.is_some() {
            crate::dump::finish_traces_at_exit();
        }
        s
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn now_nanos(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// A clock good to sysmon's period (20 µs to 10 ms), for wait times in
    /// dumps: reading it costs one load instead of a clock read.
    pub fn coarse_now(&self) -> u64 {
        self.coarse_clock.load(Ordering::Relaxed)
    }

    pub(crate) fn tick_coarse_clock(&self) {
        self.coarse_clock.store(self.now_nanos(), Ordering::Relaxed);
    }

    /// `t` in ns since the epoch, saturating below `u64::MAX` (which
    /// means "no timer"): an `Instant` centuries away is still far away.
    pub fn nanos(&self, t: Instant) -> u64 {
        let ns = t.saturating_duration_since(self.epoch).as_nanos();
        ns.min(u128::from(u64::MAX - 1)) as u64
    }

    pub fn is_current(&self) -> bool {
        match m::current_sched() {
            Some(s) => std::ptr::eq(&*s, self),
            None => false,
        }
    }

    /// The P the calling M holds on this runtime, if any.
    fn current_p(&self) -> Option<(&MCtx, usize)> {
        let c = m::ctx_reacquired();
        if c.is_null() {
            return None;
        }
        // SAFETY: a non-null context is the live MCtx of this thread.
        let c = unsafe { &*c };
        if !std::ptr::eq(&*c.sched, self) || c.p.get() == NO_P {
            return None;
        }
        Some((c, c.p.get()))
    }

    // ---------------------------------------------------------------
    // Creating Gs and putting them on queues.

    /// Go's `newproc`: creates a G running `body` and queues it (in
    /// `runnext` of the current P, or on the global queue from outside).
    pub fn newproc<F>(
        self: &Arc<Self>,
        body: F,
        name: Option<String>,
        stack_size: Option<usize>,
        site: &'static Location<'static>,
    ) -> io::Result<Arc<G>>
    where
        F: FnOnce() + Send + 'static,
    {
        if self.shutdown.load(Ordering::Acquire) {
            return Err(io::Error::other("goro: spawn on a runtime that is shutting down"));
        }
        let size = stack_size.unwrap_or(self.stack_size);
        if size != self.stack_size && size > MAX_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("goro: stack size {size} is over the limit of {MAX_STACK_SIZE} bytes"),
            ));
        }
        if self.stack_exhausted.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "goro: no memory could be mapped for the last G stack (address space or vm.max_map_count \
                 exhausted); not spawning more until a stack is freed",
            ));
        }
        let here = self.current_p();
        let id = match here {
            Some((_, p)) => {
                // SAFETY: we hold P `p`.
                let local = unsafe { self.ps[p].local() };
                if local.goid_next == local.goid_end {
                    // Go's goidcache: take ids in batches of 16.
                    local.goid_next = NEXT_GOID.fetch_add(16, Ordering::Relaxed);
                    local.goid_end = local.goid_next + 16;
                }
                let id = local.goid_next;
                local.goid_next += 1;
                id
            }
            None => NEXT_GOID.fetch_add(1, Ordering::Relaxed),
        };
        let name = name.map(String::into_boxed_str);
        let body = crate::g::Body::new(body);
        // Go's gfget: reuse a dead G of this P if there is one.
        let recycled = here.and_then(|(_, p)| {
            // SAFETY: we hold P `p`.
            let local = unsafe { self.ps[p].local() };
            if local.gfree.is_empty() {
                let mut global = self.gfree.lock().unwrap();
                let k = global.len().min(GFREE_BATCH);
                let at = global.len() - k;
                local.gfree.extend(global.drain(at..));
            }
            local.gfree.pop()
        });
        let g = match recycled {
            Some(mut g) => {
                let m = Arc::get_mut(&mut g).expect("a free G has no other reference");
                m.id = id;
                m.name = name;
                *m.status.get_mut() = GStatus::Runnable as u8;
                *m.wait_reason.get_mut() = 0;
                *m.wait_since.get_mut() = 0;
                m.park.reset();
                m.spawn_site = site;
                m.stack_size = size;
                m.guard.set((0, 0));
                *m.start.get_mut() = Some(body);
                m.yielder.set(std::ptr::null());
                *m.ready_at.get_mut() = 0;
                *m.flow_id.get_mut() = 0;
                *m.wait_external.get_mut() = true;
                debug_assert!(m.lockedm.get_mut().is_null(), "a free G is wired to no M");
                m.locked_ext.set(0);
                m.locked_int.set(0);
                g
            }
            None => Arc::new(G {
                id,
                name,
                sched: self.clone(),
                status: AtomicU8::new(GStatus::Runnable as u8),
                wait_reason: AtomicU8::new(0),
                wait_since: AtomicU64::new(0),
                park: Default::default(),
                slot: AtomicU64::new(0),
                spawn_site: site,
                stack_size: size,
                guard: Default::default(),
                start: UnsafeCell::new(Some(body)),
                co: Default::default(),
                yielder: Default::default(),
                ready_at: AtomicU64::new(0),
                flow_id: AtomicU64::new(0),
                wait_external: AtomicBool::new(true),
                lockedm: Default::default(),
                locked_ext: Cell::new(0),
                locked_int: Cell::new(0),
            }),
        };

        let shard = here.map_or((id as usize) % self.procs, |(_, p)| p);
        let idx = self.ps[shard].registry.lock().unwrap().insert(g.clone());
        g.slot.store(((shard as u64) << 32) | idx as u64, Ordering::Relaxed);

        match here {
            Some((_, p)) => {
                Counters::bump(&self.ps[p].counters.spawned);
                self.runqput(p, g.clone(), true);
                self.wakep_for_local();
            }
            None => {
                self.external_spawns.fetch_add(1, Ordering::Relaxed);
                self.globrunqput(g.clone());
                self.wakep();
            }
        }
        Ok(g)
    }

    /// Go's `ready`: makes a parked G runnable. On an M of the G's runtime it
    /// goes to the M's P (`runnext` if `next`); elsewhere to the global
    /// queue. The runtime's reference count is not touched on the hot path:
    /// on an M of that runtime the M's context keeps the runtime alive (the
    /// G may run, exit and be freed elsewhere as soon as it is queued, so
    /// `g.sched` cannot be used after).
    pub(crate) fn ready_g(g: Arc<G>, next: bool) {
        let c = m::ctx_reacquired();
        if !c.is_null() {
            // SAFETY: a non-null context is this thread's live MCtx.
            let c = unsafe { &*c };
            let p = c.p.get();
            if p != NO_P && std::ptr::eq(&*c.sched, &*g.sched) {
                c.sched.ready_local(c, p, g, next);
                return;
            }
        }
        let sched = g.sched.clone();
        sched.ready_external(g);
    }

    fn ready_local(self: &Arc<Self>, c: &MCtx, p: usize, g: Arc<G>, next: bool) {
        g.set_status(GStatus::Runnable);
        if let Some(t) = &self.tracer {
            g.flow_id.store(t.flow_start(Some(&c.trace), Some(c.m.id), g.id), Ordering::Relaxed);
        }
        let pp = &self.ps[p];
        if pp.counters.unparks.load(Ordering::Relaxed) & SAMPLE_MASK == 0 {
            g.ready_at.store(self.now_nanos().max(1), Ordering::Relaxed);
        }
        Counters::bump(&pp.counters.unparks);
        if self.runqput(p, g, next) {
            // Work behind the running G: an idle P should look (and a
            // deferred wake-up is covered by this one).
            pp.clear_wake_pending();
            self.wakep_for_local();
            return;
        }
        match self.policy.runnext_wake {
            RunnextWake::Immediate => self.wakep_for_local(),
            RunnextWake::Deferred => pp.wake_pending.store(1, Ordering::Relaxed),
            RunnextWake::Never => {}
        }
    }

    fn ready_external(self: &Arc<Self>, g: Arc<G>) {
        g.set_status(GStatus::Runnable);
        if let Some(t) = &self.tracer {
            g.flow_id.store(t.flow_start(None, None, g.id), Ordering::Relaxed);
        }
        if self.shutdown.load(Ordering::Acquire) {
            return;
        }
        self.external_readies.fetch_add(1, Ordering::Relaxed);
        self.globrunqput(g);
        if !self.poll_dispatching() {
            self.wakep();
        }
    }

    /// Whether this thread is the poller M dispatching its poll's results.
    fn poll_dispatching(&self) -> bool {
        let c = m::ctx_ptr();
        // SAFETY: a non-null context is the live MCtx of this thread.
        !c.is_null() && unsafe { std::ptr::eq(&*(*c).sched, self) && (*c).poll_dispatch.get() }
    }

    /// Go's `runqput`. Must be called by the M holding P `p`.
    /// Returns false if the G went into an empty `runnext` (nothing was
    /// queued behind the running G).
    fn runqput(&self, p: usize, g: Arc<G>, next: bool) -> bool {
        let pp = &self.ps[p];
        let mut gp = Arc::into_raw(g) as *mut G;
        if next && self.policy.runnext {
            let old = pp.runnext.swap(gp, Ordering::AcqRel);
            if old.is_null() {
                return false;
            }
            gp = old;
        }
        // SAFETY: we hold P `p`, so we own its local part and its queue's
        // producer side.
        let local = unsafe { pp.local() };
        // SAFETY: as above.
        if unsafe { pp.runq.push(gp, &mut local.overflow) } {
            Counters::bump(&pp.counters.local_overflows);
            let batch: Vec<Arc<G>> = local
                .overflow
                .drain(..)
                // SAFETY: each pointer came from Arc::into_raw and was removed
                // from the queue by the successful CAS in push.
                .map(|x| unsafe { Arc::from_raw(x) })
                .collect();
            self.globrunqputbatch(batch);
        }
        true
    }

    /// Go's `runqget`: `runnext` first (inheriting the time slice), then the
    /// local queue. Must be called by the M holding P `p`.
    fn runqget(&self, p: usize) -> Option<(Arc<G>, bool)> {
        let pp = &self.ps[p];
        if !pp.runnext.load(Ordering::Relaxed).is_null() {
            let g = pp.runnext.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !g.is_null() {
                pp.clear_wake_pending();
                Counters::bump(&pp.counters.runnext_hits);
                // SAFETY: runnext holds pointers from Arc::into_raw; the swap
                // made us their only owner.
                return Some((unsafe { Arc::from_raw(g) }, true));
            }
        }
        // SAFETY: we hold P `p`.
        let g = unsafe { pp.runq.pop() }?;
        // SAFETY: queue slots hold pointers from Arc::into_raw; the pop's CAS
        // made us their only owner.
        Some((unsafe { Arc::from_raw(g) }, false))
    }

    pub fn globrunqput(&self, g: Arc<G>) {
        let mut l = self.lock();
        l.runq.push_back(g);
        self.runq_size.store(l.runq.len(), Ordering::SeqCst);
    }

    fn globrunqputbatch(&self, batch: Vec<Arc<G>>) {
        let mut l = self.lock();
        l.runq.extend(batch);
        self.runq_size.store(l.runq.len(), Ordering::SeqCst);
    }

    /// Go's `globrunqget`: takes `min(len/procs+1, max, room)` Gs, returns
    /// one and puts the rest on P `p`'s local queue.
    fn globrunqget(&self, l: &mut Locked, p: usize, max: usize) -> Option<Arc<G>> {
        let size = l.runq.len();
        if size == 0 {
            return None;
        }
        let pp = &self.ps[p];
        let room = pp.runq.limit() - pp.runq.len();
        let mut n = (size / self.procs + 1).min(size).min(pp.runq.limit() / 2);
        if max > 0 {
            n = n.min(max);
        }
        n = n.min(room + 1).max(1);
        let first = l.runq.pop_front();
        for _ in 1..n {
            let Some(g) = l.runq.pop_front() else { break };
            self.runqput(p, g, false);
        }
        self.runq_size.store(l.runq.len(), Ordering::SeqCst);
        Counters::bump(&pp.counters.global_takes);
        first
    }

    // ---------------------------------------------------------------
    // Ms and Ps.

    fn pidleget(&self, l: &mut Locked) -> Option<usize> {
        let p = l.pidle.pop()?;
        self.npidle.fetch_sub(1, Ordering::SeqCst);
        self.end_idle(p);
        Some(p)
    }

    /// Accounts the idle period of P `p`, which is leaving the idle list.
    fn end_idle(&self, p: usize) {
        let pp = &self.ps[p];
        let idle = self.now_nanos().saturating_sub(pp.idle_since.load(Ordering::Relaxed));
        pp.idle_total.fetch_add(idle, Ordering::Relaxed);
    }

    fn pidleput(&self, l: &mut Locked, p: usize) {
        self.ps[p].idle_since.store(self.now_nanos(), Ordering::Relaxed);
        self.ps[p].set_status(PStatus::Idle);
        self.ps[p].wake_pending.store(0, Ordering::Relaxed);
        l.pidle.push(p);
        self.npidle.fetch_add(1, Ordering::SeqCst);
    }

    /// An idle P, `prefer` if it is idle (a G back from a syscall wants its
    /// old P).
    pub(crate) fn pidleget_prefer(&self, prefer: Option<usize>) -> Option<usize> {
        let mut l = self.lock();
        if let Some(want) = prefer {
            if let Some(i) = l.pidle.iter().position(|&q| q == want) {
                l.pidle.swap_remove(i);
                self.npidle.fetch_sub(1, Ordering::SeqCst);
                self.end_idle(want);
                return Some(want);
            }
        }
        self.pidleget(&mut l)
    }

    /// Puts P `p` on the idle list unless the global queue has work (then
    /// returns false and the caller must run it).
    pub(crate) fn pidleput_unless_work(&self, p: usize) -> bool {
        let mut l = self.lock();
        if !l.runq.is_empty() {
            return false;
        }
        self.pidleput(&mut l, p);
        true
    }

    pub(crate) fn global_queue_len(&self) -> usize {
        self.runq_size.load(Ordering::SeqCst)
    }

    pub(crate) fn spinning_plus_idle(&self) -> usize {
        self.nmspinning.load(Ordering::SeqCst) + self.npidle.load(Ordering::SeqCst)
    }

    pub(crate) fn try_become_spinning(&self) -> bool {
        self.nmspinning.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Wakes sysmon if it is in a long sleep (a G just entered a syscall
    /// that it may have to retake).
    pub(crate) fn kick_sysmon(&self) {
        if self.sysmon_deep.load(Ordering::Relaxed) {
            self.sysmon_deep.store(false, Ordering::Relaxed);
            let _g = self.sysmon_note.lock().unwrap();
            self.sysmon_cv.notify_one();
        }
    }

    pub(crate) fn count_handoff(&self) {
        self.handoffs.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets whether M `c` spins, publishing it for schedtrace's detail lines.
    /// An M starts spinning only while it holds a P, whose counter it bumps.
    fn set_spinning(&self, c: &MCtx, v: bool) {
        c.spinning.set(v);
        if v {
            Counters::bump(&self.ps[c.p.get()].counters.spins);
        }
        if self.publish_m_state {
            c.m.spinning.store(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn acquirep(&self, c: &MCtx, p: usize) {
        c.p.set(p);
        c.m.cur_p.store(p, Ordering::Relaxed);
        self.ps[p].set_status(PStatus::Running);
    }

    fn may_spin(&self) -> bool {
        let spinning = self.nmspinning.load(Ordering::SeqCst);
        match self.policy.max_spinning {
            Spinning::HalfBusy => {
                let busy = self.procs - self.npidle.load(Ordering::SeqCst).min(self.procs);
                2 * spinning < busy
            }
            Spinning::Limit(n) => spinning < n,
        }
    }

    fn steals_at_all(&self) -> bool {
        self.policy.steal != Steal::Off && self.policy.max_spinning != Spinning::Limit(0)
    }

    /// `wakep` after work went to a local run queue: only another M that
    /// may steal can take it, so with stealing off nobody is woken for it.
    pub(crate) fn wakep_for_local(self: &Arc<Self>) {
        if self.steals_at_all() {
            self.wakep();
        }
    }

    /// Go's `wakep`: if there is an idle P and no spinning M, start an M
    /// spinning on it.
    pub fn wakep(self: &Arc<Self>) {
        if self.npidle.load(Ordering::SeqCst) == 0 {
            return;
        }
        if self.nmspinning.load(Ordering::SeqCst) != 0
            || self.nmspinning.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_err()
        {
            return;
        }
        let p = {
            let mut l = self.lock();
            self.pidleget(&mut l)
        };
        match p {
            Some(p) => self.startm(p, true),
            None => {
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Go's `startm`: runs P `p` on an idle M, or on a new one.
    pub(crate) fn startm(self: &Arc<Self>, p: usize, spinning: bool) {
        let m = self.lock().midle.pop();
        match m {
            Some(m) => {
                m.next_spinning.store(spinning, Ordering::Relaxed);
                m.nextp.store(p, Ordering::Release);
                m.wake();
            }
            None => self.newm(p, spinning),
        }
    }

    /// Go's `newm`: a new OS thread that starts by running P `p`.
    fn newm(self: &Arc<Self>, p: usize, spinning: bool) {
        let this = self.clone();
        if self.shutdown.load(Ordering::Acquire) {
            let mut l = self.lock();
            self.pidleput(&mut l, p);
            if spinning {
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        }
        let id = self.mcount.fetch_add(1, Ordering::Relaxed);
        if id - self.ms_exited.load(Ordering::Relaxed) >= self.max_threads {
            // Go: "runtime: program exceeds 10000-thread limit / fatal error:
            // thread exhaustion". Nothing sane can continue.
            eprintln!(
                "goro: runtime {:?} exceeds its {}-thread limit (RuntimeBuilder::max_threads)\nfatal error: thread exhaustion",
                self.name, self.max_threads
            );
            std::process::abort();
        }
        let m = Arc::new(M::new(id));
        self.ms.lock().unwrap().push(m.clone());
        // Under the threads lock, so that shutdown either sees this M in the
        // list or this M sees shutdown (and never starts).
        let mut threads = self.threads.lock().unwrap();
        if self.shutdown.load(Ordering::SeqCst) {
            drop(threads);
            self.ms.lock().unwrap().retain(|x| !Arc::ptr_eq(x, &m));
            self.ms_exited.fetch_add(1, Ordering::Relaxed);
            let mut l = self.lock();
            self.pidleput(&mut l, p);
            if spinning {
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        }
        // Threads that ended (idle too long, or taken by a G that exited
        // locked) need no join at shutdown.
        threads.retain(|t| !t.is_finished());
        let name = format!("{}-m{}", self.name, id);
        let h = thread::Builder::new()
            .name(name)
            .spawn(move || this.mstart(m, p, spinning))
            .unwrap_or_else(|e| panic!("goro: cannot create an OS thread for an M: {e}"));
        threads.push(h);
    }

    /// Go's `stopm`: parks the M until it is handed a P. Returns false on
    /// shutdown.
    fn stopm(&self, c: &MCtx) -> bool {
        self.lock().midle.push(c.m.clone());
        let mut idle_since = Instant::now();
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return false;
            }
            let p = c.m.nextp.swap(NO_P, Ordering::AcqRel);
            if p != NO_P {
                self.acquirep(c, p);
                self.set_spinning(c, c.m.next_spinning.load(Ordering::Relaxed));
                return true;
            }
            thread::park_timeout(IDLE_M_EXIT);
            if idle_since.elapsed() >= IDLE_M_EXIT {
                // Idle for long: exit if more Ms than Ps are idle.
                let mut l = self.lock();
                if l.midle.len() > self.procs {
                    if let Some(i) = l.midle.iter().position(|x| Arc::ptr_eq(x, &c.m)) {
                        l.midle.swap_remove(i);
                        drop(l);
                        self.ms_exited.fetch_add(1, Ordering::Relaxed);
                        self.ms.lock().unwrap().retain(|x| !Arc::ptr_eq(x, &c.m));
                        return false;
                    }
                }
                idle_since = Instant::now();
            }
        }
    }

    // ---------------------------------------------------------------
    // The M's loop.

    fn mstart(self: Arc<Self>, m: Arc<M>, p: usize, spinning: bool) {
        let _ = m.thread.set(thread::current());
        // SAFETY: gettid has no preconditions.
        m.tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
        let _altstack = signal::on_thread_start();
        let ctx = MCtx {
            sched: self.clone(),
            m,
            p: std::cell::Cell::new(NO_P),
            spinning: std::cell::Cell::new(spinning),
            curg: std::cell::Cell::new(std::ptr::null()),
            rng: std::cell::Cell::new(seed()),
            in_user: std::cell::Cell::new(false),
            poll_dispatch: std::cell::Cell::new(false),
            lockedg: std::cell::Cell::new(std::ptr::null()),
            exit_thread: std::cell::Cell::new(false),
            trace: Default::default(),
        };
        m::set_ctx(&ctx);
        self.acquirep(&ctx, p);
        self.set_spinning(&ctx, spinning);
        self.schedule(&ctx);
        if let Some(t) = &self.tracer {
            t.flush(&ctx.trace);
        }
        let p = ctx.p.replace(NO_P);
        if p != NO_P {
            let mut l = self.lock();
            self.pidleput(&mut l, p);
        }
        m::set_ctx(std::ptr::null());
    }

    /// Go's `schedule`: finds a runnable G and runs it, forever (until
    /// shutdown, or until a G that locked this M's thread exits).
    fn schedule(self: &Arc<Self>, c: &MCtx) {
        while let Some((mut g, mut inherit)) = self.find_runnable(c) {
            if c.spinning.get() {
                self.resetspinning(c);
            }
            let lm = g.lockedm.load(Ordering::Relaxed);
            if !lm.is_null() {
                // Wired to another M (`lock_os_thread.rs`): hand it our P
                // and the G, and wait for work like an idle M.
                self.startlockedm(c, g, lm);
                if !self.stopm(c) {
                    return;
                }
                continue;
            }
            loop {
                self.execute(c, g, inherit);
                if self.publish_m_state {
                    c.m.cur_g.store(0, Ordering::Relaxed);
                }
                if c.lockedg.get().is_null() {
                    break;
                }
                // The G is wired to this M: run nothing else until it is
                // runnable again and handed back.
                match self.stoplockedm(c) {
                    Some(next) => (g, inherit) = (next, false),
                    None => return,
                }
            }
            if c.exit_thread.get() {
                self.mexit(c);
                return;
            }
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            // The G's syscall or hog handoff took the P away from this M.
            if c.p.get() == NO_P && !self.block_idle(c) {
                return;
            }
        }
    }

    /// Go's `mexit`: a G exited while locked to this M, whose thread ends
    /// now (the thread state the G may have changed dies with it).
    fn mexit(self: &Arc<Self>, c: &MCtx) {
        let p = c.p.replace(NO_P);
        if p != NO_P {
            c.m.cur_p.store(NO_P, Ordering::Relaxed);
            self.handoffp(p);
        }
        self.ms_exited.fetch_add(1, Ordering::Relaxed);
        self.ms.lock().unwrap().retain(|x| !Arc::ptr_eq(x, &c.m));
    }

    /// The M stops spinning because it found work; if it was the last
    /// spinning M, another is woken to look for the next piece of work.
    fn resetspinning(&self, c: &MCtx) {
        self.set_spinning(c, false);
        let before = self.nmspinning.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "nmspinning underflow");
        if before == 1 {
            c.sched.wakep();
        }
    }

    /// Go's `findRunnable`: blocks until there is a G to run; `None` on
    /// shutdown. On return the M holds a P.
    fn find_runnable(&self, c: &MCtx) -> Option<(Arc<G>, bool)> {
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return None;
            }
            let p = c.p.get();
            debug_assert!(p != NO_P);
            let pp = &self.ps[p];

            if pp.timer_next.load(Ordering::Relaxed) != u64::MAX {
                self.run_timers(p, self.now_nanos(), &pp.counters);
            }

            // Fairness: every `global_queue_interval` ticks, the global queue first.
            if self.policy.global_queue_interval > 0
                && pp.fair_tick.load(Ordering::Relaxed) == 0
                && self.runq_size.load(Ordering::Relaxed) > 0
            {
                let mut l = self.lock();
                if let Some(g) = self.globrunqget(&mut l, p, 1) {
                    return Some((g, false));
                }
            }

            if let Some(x) = self.runqget(p) {
                return Some(x);
            }

            if self.runq_size.load(Ordering::Relaxed) > 0 {
                let mut l = self.lock();
                if let Some(g) = self.globrunqget(&mut l, p, 0) {
                    return Some((g, false));
                }
            }

            // Non-blocking poll of the network (readied Gs land on this P).
            if self.poller().has_waiters() && !self.poller_busy.load(Ordering::Relaxed) {
                self.last_poll.store(self.now_nanos(), Ordering::Relaxed);
                if self.poller().poll(Some(Duration::ZERO)) > 0 {
                    continue;
                }
            }

            if self.steals_at_all() && (c.spinning.get() || self.may_spin()) {
                if !c.spinning.get() {
                    self.set_spinning(c, true);
                    self.nmspinning.fetch_add(1, Ordering::SeqCst);
                }
                if let Some(g) = self.steal_work(c) {
                    return Some((g, false));
                }
            }

            // Timers of other Ps that are due (their Gs come to this P).
            // The clock is read only if some P has a timer at all.
            if self.next_timer() != u64::MAX {
                let now = self.now_nanos();
                let mut fired = 0;
                for q in 0..self.procs {
                    if q != p && self.ps[q].timer_next.load(Ordering::SeqCst) <= now {
                        fired += self.run_timers(q, now, &pp.counters);
                    }
                }
                if fired > 0 {
                    continue;
                }
            }

            // Nothing: give up the P.
            {
                let mut l = self.lock();
                if let Some(g) = self.globrunqget(&mut l, p, 0) {
                    return Some((g, false));
                }
                self.pidleput(&mut l, p);
                c.p.set(NO_P);
            }

            if c.spinning.get() {
                self.set_spinning(c, false);
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
                // Work submitted while we were giving up saw nmspinning > 0
                // and did not wake anyone: look again (at other Ps' queues
                // only if this M may steal from them).
                fence(Ordering::SeqCst);
                if self.runq_size.load(Ordering::SeqCst) > 0
                    || (self.steals_at_all() && self.ps.iter().any(|q| q.has_work()))
                {
                    let p = {
                        let mut l = self.lock();
                        self.pidleget(&mut l)
                    };
                    if let Some(p) = p {
                        self.acquirep(c, p);
                        self.set_spinning(c, true);
                        self.nmspinning.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                }
            }

            if !self.block_idle(c) {
                return None;
            }
        }
    }

    /// An M with no P and no work sleeps: in the poller until the next timer
    /// if no other M is there, else on its own parker until handed a P.
    /// Returns with a P, or false on shutdown.
    fn block_idle(&self, c: &MCtx) -> bool {
        if self.poller_busy.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            let mut deadline = self.next_timer();
            self.poll_until.store(deadline.max(1), Ordering::SeqCst);
            deadline = deadline.min(self.next_timer());
            let now = self.now_nanos();
            let timeout = (deadline != u64::MAX).then(|| Duration::from_nanos(deadline.saturating_sub(now)));
            if self.runq_size.load(Ordering::SeqCst) == 0 && !self.shutdown.load(Ordering::Acquire) {
                c.poll_dispatch.set(true);
                self.poller().poll(timeout);
                c.poll_dispatch.set(false);
                self.last_poll.store(self.now_nanos(), Ordering::Relaxed);
            }
            self.poll_until.store(0, Ordering::SeqCst);
            self.poller_busy.store(false, Ordering::SeqCst);
            if self.shutdown.load(Ordering::Acquire) {
                return false;
            }
            let p = {
                let mut l = self.lock();
                self.pidleget(&mut l)
            };
            if let Some(p) = p {
                self.acquirep(c, p);
                // This M runs the first of the Gs the poll readied; if
                // there are more and another P idles, start one M for them.
                if self.runq_size.load(Ordering::SeqCst) > 1 {
                    c.sched.wakep();
                }
                return true;
            }
            // Every P is busy: the readied Gs wait in the global queue,
            // which busy Ps check at least every 61 schedules, and which a
            // P about to go idle checks under the scheduler lock.
        }
        self.stopm(c)
    }

    /// Called after a timer was added with deadline `when`: wakes the poller
    /// M if it sleeps past it.
    pub(crate) fn timer_added(self: &Arc<Self>, when: u64) {
        let until = self.poll_until.load(Ordering::SeqCst);
        if until != 0 && when < until {
            self.poller().wake();
        } else if until == 0 && self.current_p().is_none() {
            // Added from outside the runtime: make sure some M will see it.
            self.wakep();
            if self.poller_busy.load(Ordering::SeqCst) {
                self.poller().wake();
            }
        }
    }

    /// Go's `stealWork`: up to 4 rounds over the other Ps in random order;
    /// `runnext` only on the last round.
    fn steal_work(&self, c: &MCtx) -> Option<Arc<G>> {
        let me = c.p.get();
        const ROUNDS: usize = 4;
        for round in 0..ROUNDS {
            let last = round == ROUNDS - 1;
            let r = c.rand() as usize;
            let mut pos = r % self.procs;
            let inc = self.coprimes[(r / self.procs) % self.coprimes.len()];
            for _ in 0..self.procs {
                let v = pos;
                pos = (pos + inc) % self.procs;
                if v == me {
                    continue;
                }
                if self.shutdown.load(Ordering::Relaxed) {
                    return None;
                }
                if let Some(g) = self.runqsteal(me, v, last && self.policy.steal_runnext) {
                    return Some(g);
                }
            }
        }
        None
    }

    /// Go's `runqsteal`: takes from P `v`'s queue into P `me`'s.
    fn runqsteal(&self, me: usize, v: usize, steal_next: bool) -> Option<Arc<G>> {
        let take = match self.policy.steal {
            Steal::Half => Take::Half,
            Steal::One => Take::One,
            Steal::Off => return None,
        };
        let (mine, victim) = (&self.ps[me], &self.ps[v]);
        // SAFETY: we hold P `me` and its queue is empty (find_runnable only
        // steals after runqget failed).
        if let Some((g, n)) = unsafe { victim.runq.steal_into(&mine.runq, take) } {
            Counters::bump(&mine.counters.steals);
            Counters::add(&mine.counters.stolen, n as u64);
            self.trace_instant("steal", &format!(r#""from":{v},"to":{me},"n":{n}"#));
            // SAFETY: the pointer came from Arc::into_raw; the steal's CAS
            // made us its owner.
            return Some(unsafe { Arc::from_raw(g) });
        }
        if steal_next {
            let next = victim.runnext.load(Ordering::Acquire);
            if !next.is_null() {
                if victim.is_running() {
                    let before = victim.counters.scheduled.load(Ordering::Relaxed);
                    std::thread::sleep(RUNNEXT_STEAL_WAIT);
                    // The victim switched Gs meanwhile: it is not stuck
                    // behind a long-running G and will run `runnext` itself
                    // (in a ping-pong, `runnext` now holds the *other* G of
                    // the pair, or the same pointer again: taking it would
                    // split the pair across Ps for nothing).
                    if victim.counters.scheduled.load(Ordering::Relaxed) != before {
                        return None;
                    }
                }
                if victim
                    .runnext
                    .compare_exchange(next, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    Counters::bump(&mine.counters.steals);
                    Counters::bump(&mine.counters.stolen);
                    // SAFETY: as above; the CAS made us the owner.
                    return Some(unsafe { Arc::from_raw(next) });
                }
            }
        }
        None
    }

    /// Go's `execute`: runs `g` on this M until it yields, parks or exits.
    fn execute(&self, c: &MCtx, g: Arc<G>, inherit: bool) {
        let p = c.p.get();
        let pp = &self.ps[p];
        if !inherit {
            pp.schedtick.store(pp.schedtick.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            let f = pp.fair_tick.load(Ordering::Relaxed) + 1;
            pp.fair_tick.store(if f >= self.policy.global_queue_interval { 0 } else { f }, Ordering::Relaxed);
        }
        if pp.preempt.load(Ordering::Relaxed) {
            pp.preempt.store(false, Ordering::Relaxed);
        }
        let sample = pp.counters.scheduled.load(Ordering::Relaxed) & SAMPLE_MASK == 0;
        Counters::bump(&pp.counters.scheduled);
        let ready_at = g.ready_at.load(Ordering::Relaxed);
        let mut run_start = None;
        if ready_at != 0 || sample {
            let now = self.now_nanos();
            if ready_at != 0 {
                g.ready_at.store(0, Ordering::Relaxed);
                pp.sched_latency.record(now.saturating_sub(ready_at));
            }
            if sample {
                run_start = Some(now);
            }
        }
        if self.publish_m_state {
            c.m.cur_g.store(g.id, Ordering::Relaxed);
        }
        loop {
            g.set_status(GStatus::Running);
            c.curg.set(Arc::as_ptr(&g));
            let trace_start = self.tracer.as_ref().map(|t| {
                let ts = t.now_ns();
                let flow = g.flow_id.swap(0, Ordering::Relaxed);
                if flow != 0 {
                    t.flow_end(&c.trace, c.m.id, flow, ts);
                }
                ts
            });
            // SAFETY: a runnable G's coroutine is touched only by the M that
            // dequeued it (us); a G that never ran gets one now.
            let co = match unsafe { &mut *g.co.get() } {
                Some(co) => co,
                None => {
                    if self.gstart(p, &g).is_none() {
                        c.curg.set(std::ptr::null());
                        self.gdestroy(p, g);
                        return;
                    }
                    // SAFETY: as above; gstart just stored it.
                    unsafe { (*g.co.get()).as_mut().expect("coroutine") }
                }
            };
            if self.policy.hog_handoff {
                // The G runs user code: sysmon may take the P (syscall.rs).
                crate::syscall::enter_user(c);
            }
            #[cfg(feature = "tracing")]
            let span = tracing::trace_span!("goroutine", id = g.id, name = g.name()).entered();
            let r = co.resume(());
            #[cfg(feature = "tracing")]
            drop(span);
            c.curg.set(std::ptr::null());
            if self.detached.load(Ordering::Relaxed) {
                // Shutdown gave up on this M and freed what it could; the
                // G (and its stack) may be half-way through anything: leak it.
                std::mem::forget(g);
                return;
            }
            let ran = run_start.take().map(|start| self.now_nanos().saturating_sub(start));
            if let (Some(t), Some(start)) = (&self.tracer, trace_start) {
                t.run(&c.trace, c.m.id, c.m.cur_p.load(Ordering::Relaxed), g.id, g.name(), start);
                if let CoroutineResult::Yield(Switch::Park) = r {
                    t.park(&c.trace, c.m.id, g.id, g.wait_reason().as_str());
                }
            }
            if c.in_user.replace(false) {
                let p = c.p.get();
                if !self.ps[p].cas_status(PStatus::User, PStatus::Running) {
                    c.p.set(NO_P);
                }
            }
            if let Some(ns) = ran {
                // Sampled run length, if this M still holds the P it started
                // on (histograms are written by the P's owner only).
                if c.p.get() == p {
                    pp.run_time.record(ns);
                }
            }
            let p = c.p.get();
            if p == NO_P {
                // This M has no P: the G is in a syscall, or sysmon took the
                // P while it ran. Put the G where an M with a P finds it.
                match r {
                    CoroutineResult::Yield(Switch::Park) => {
                        if g.park.commit_park() {
                            return;
                        }
                        continue;
                    }
                    CoroutineResult::Yield(_) => {
                        g.set_status(GStatus::Runnable);
                        self.globrunqput(g);
                        c.sched.wakep();
                    }
                    CoroutineResult::Return(()) => {
                        crate::lock_os_thread::exited(c, &g);
                        self.gdestroy_nop(&g)
                    }
                }
                return;
            }
            let pp = &self.ps[p];
            match r {
                CoroutineResult::Yield(Switch::Yield) => {
                    Counters::bump(&pp.counters.yields);
                    g.set_status(GStatus::Runnable);
                    self.runqput(p, g, false);
                    return;
                }
                CoroutineResult::Yield(Switch::Preempt) | CoroutineResult::Yield(Switch::NeedP) => {
                    g.set_status(GStatus::Runnable);
                    self.globrunqput(g);
                    return;
                }
                CoroutineResult::Yield(Switch::Park) => {
                    Counters::bump(&pp.counters.parks);
                    if g.park.commit_park() {
                        // From here on an unparker may run the G elsewhere.
                        return;
                    }
                    // Unparked while switching out: the token is consumed, resume.
                }
                CoroutineResult::Return(()) => {
                    crate::lock_os_thread::exited(c, &g);
                    self.gdestroy(p, g);
                    return;
                }
            }
        }
    }

    /// A runtime-wide instant event in the trace, if tracing (and a
    /// `tracing` event with the `tracing` feature).
    pub(crate) fn trace_instant(&self, name: &str, args: &str) {
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "goro", event = name, args);
        if let Some(t) = &self.tracer {
            let c = m::ctx_ptr();
            if c.is_null() {
                t.instant(None, None, name, args);
            } else {
                // SAFETY: a non-null context is this thread's live MCtx.
                let c = unsafe { &*c };
                t.instant(Some(&c.trace), Some(c.m.id), name, args);
            }
        }
    }

    /// Gives a G that runs for the first time its stack and coroutine.
    /// `None` if no stack could be mapped: the G's body is dropped, which
    /// reports the failure to its joiner.
    fn gstart(&self, p: usize, g: &Arc<G>) -> Option<()> {
        // SAFETY: we hold P `p` and we are the only M touching `g`.
        let local = unsafe { self.ps[p].local() };
        // SAFETY: as above.
        let body = unsafe { (*g.start.get()).take() }.expect("a new G has a body");
        let stk = match stack::get(&mut local.stacks, &self.shared_stacks, g.stack_size) {
            Ok(s) => s,
            Err(e) => {
                self.stack_exhausted.store(true, Ordering::Relaxed);
                eprintln!("goro: goroutine {} cannot start: {e}", g.id);
                drop(body);
                return None;
            }
        };
        g.guard.set(stk.guard_range());
        let gp = SendPtr(Arc::as_ptr(g));
        let co: Coroutine<(), Switch, (), Stack> = Coroutine::with_stack(stk, move |y: &GYielder, ()| {
            let gp = gp;
            // SAFETY: the G outlives its coroutine (the G owns it).
            unsafe { (*gp.0).yielder.set(y) };
            body.run();
        });
        // SAFETY: only this M touches the G's coroutine.
        unsafe { *g.co.get() = Some(co) };
        Some(())
    }

    /// Go's `gdestroy`: the G has exited; recycle its stack, unregister it.
    fn gdestroy(&self, p: usize, g: Arc<G>) {
        g.set_status(GStatus::Dead);
        let pp = &self.ps[p];
        // SAFETY: we hold P `p`.
        let local = unsafe { pp.local() };
        // SAFETY: the G has returned; only this M touches its coroutine.
        if let Some(co) = unsafe { (*g.co.get()).take() } {
            stack::put(&mut local.stacks, &self.shared_stacks, co.into_stack());
            self.stack_exhausted.store(false, Ordering::Relaxed);
        }
        self.unregister(&g);
        Counters::bump(&pp.counters.completed);
        // Go's gfput: keep the G for the next spawn if nobody else holds it
        // (an Unparker or a timer may still; then it is simply freed).
        if Arc::strong_count(&g) == 1 && !self.shutdown.load(Ordering::Relaxed) {
            if local.gfree.len() >= GFREE_LOCAL {
                let at = local.gfree.len() - GFREE_BATCH;
                let spill: Vec<Arc<G>> = local.gfree.drain(at..).collect();
                self.gfree.lock().unwrap().extend(spill);
            }
            local.gfree.push(g);
        }
    }

    /// `gdestroy` on an M without a P: the stack goes to the shared pool.
    fn gdestroy_nop(&self, g: &Arc<G>) {
        g.set_status(GStatus::Dead);
        // SAFETY: the G has returned; only this M touches its coroutine.
        if let Some(co) = unsafe { (*g.co.get()).take() } {
            self.shared_stacks.put_many([co.into_stack()]);
        }
        self.unregister(g);
    }

    fn unregister(&self, g: &G) {
        let slot = g.slot.load(Ordering::Relaxed);
        let (shard, idx) = ((slot >> 32) as usize, slot as u32);
        drop(self.ps[shard].registry.lock().unwrap().remove(idx));
    }

    // ---------------------------------------------------------------
    // Observability and shutdown.

    pub fn stats(&self) -> Stats {
        let per_p: Vec<_> = self
            .ps
            .iter()
            .map(|p| {
                let mut s = p.counters.snapshot();
                s.local_queue = p.queue_len() as u64;
                s
            })
            .collect();
        let mut total = Stats::sum(&per_p);
        total.spawned += self.external_spawns.load(Ordering::Relaxed);
        let (global_queue, idle_threads) = {
            let l = self.lock();
            (l.runq.len(), l.midle.len())
        };
        let now = self.now_nanos();
        let busy_per_p = self
            .ps
            .iter()
            .map(|p| {
                let mut idle = p.idle_total.load(Ordering::Relaxed);
                if p.status() == PStatus::Idle as u8 {
                    idle += now.saturating_sub(p.idle_since.load(Ordering::Relaxed));
                }
                Duration::from_nanos(now.saturating_sub(idle))
            })
            .collect();
        let mut sched_latency = crate::stats::Histogram::default();
        let mut run_time = crate::stats::Histogram::default();
        for p in self.ps.iter() {
            sched_latency.merge(&p.sched_latency.snapshot());
            run_time.merge(&p.run_time.snapshot());
        }
        let mut by_state = [0usize; 5];
        let mut live = 0;
        for g in self.all_gs() {
            by_state[g.status() as usize] += 1;
            live += 1;
        }
        Stats {
            procs: self.procs,
            idle_procs: self.npidle.load(Ordering::Relaxed),
            threads: self.mcount.load(Ordering::Relaxed) - self.ms_exited.load(Ordering::Relaxed),
            threads_created: self.mcount.load(Ordering::Relaxed),
            handoffs: self.handoffs.load(Ordering::Relaxed),
            retakes: self.retakes.load(Ordering::Relaxed),
            hog_handoffs: self.hog_handoffs.load(Ordering::Relaxed),
            threads_exited: self.ms_exited.load(Ordering::Relaxed),
            idle_threads,
            spinning_threads: self.nmspinning.load(Ordering::Relaxed),
            global_queue,
            live_goroutines: live,
            runnable_goroutines: by_state[GStatus::Runnable as usize],
            running_goroutines: by_state[GStatus::Running as usize],
            waiting_goroutines: by_state[GStatus::Waiting as usize],
            syscall_goroutines: by_state[GStatus::Syscall as usize],
            external_readies: self.external_readies.load(Ordering::Relaxed),
            uptime: self.epoch.elapsed(),
            per_p,
            total,
            busy_per_p,
            sched_latency,
            run_time,
            deadlocked: self.deadlocked.load(Ordering::Relaxed),
        }
    }

    /// The Ms of this runtime (for schedtrace).
    pub(crate) fn ms(&self) -> Vec<Arc<M>> {
        self.ms.lock().unwrap().clone()
    }

    pub(crate) fn threads_created(&self) -> usize {
        self.mcount.load(Ordering::Relaxed)
    }

    pub(crate) fn external_readies_count(&self) -> u64 {
        self.external_readies.load(Ordering::Relaxed)
    }

    /// The poller idle Ms block in.
    pub(crate) fn poller(&self) -> &dyn Poller {
        match self.installed_poller.get() {
            Some((p, _)) => &**p,
            None => &*self.base_poller,
        }
    }

    /// Installs a poller made by `make` unless one was installed already;
    /// returns the installed one.
    pub(crate) fn install_poller(
        &self,
        make: &mut dyn FnMut() -> (Arc<dyn Poller>, Arc<dyn std::any::Any + Send + Sync>),
    ) -> Arc<dyn std::any::Any + Send + Sync> {
        let mut fresh = false;
        let (_, any) = self.installed_poller.get_or_init(|| {
            fresh = true;
            make()
        });
        if fresh {
            // An M blocked in the old poller must come back and use the new.
            self.base_poller.wake();
        }
        any.clone()
    }

    /// Polls the network without blocking if nobody has for `max_age`
    /// (sysmon; Go's "poll network if not polled for more than 10ms").
    pub(crate) fn poll_if_stale(&self, max_age: Duration) {
        let now = self.now_nanos();
        if self.installed_poller.get().is_some()
            && now.saturating_sub(self.last_poll.load(Ordering::Relaxed)) > max_age.as_nanos() as u64
            && self.poller().has_waiters()
        {
            self.last_poll.store(now, Ordering::Relaxed);
            self.poller().poll(Some(Duration::ZERO));
        }
    }

    pub(crate) fn poller_has_waiters(&self) -> bool {
        self.poller().has_waiters()
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Stops every M, then drops every G that has not exited: parked and
    /// runnable Gs are unwound so their destructors run. Bounded in time
    /// whatever the Gs do: an M still running user code after
    /// `SHUTDOWN_GRACE` (a G in a blocking call, or computing without
    /// runtime calls) is detached, and nothing it may touch is freed: its G,
    /// that G's stack, its P's local part. Destructors that block are
    /// given the same grace, then left running on their own thread.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        loop {
            for m in self.ms.lock().unwrap().iter() {
                m.wake();
            }
            self.poller().wake();
            let all = std::mem::take(&mut *self.threads.lock().unwrap());
            let (done, running): (Vec<_>, Vec<_>) = all.into_iter().partition(|t| t.is_finished());
            for t in done {
                let _ = t.join();
            }
            // `newm` pushes under this lock after checking `shutdown`: an
            // M started meanwhile is in the list now, or never starts.
            let mut threads = self.threads.lock().unwrap();
            threads.extend(running);
            if threads.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                // Dropping the handles detaches the threads.
                self.detached.store(true, Ordering::SeqCst);
                threads.clear();
                break;
            }
            drop(threads);
            thread::sleep(Duration::from_millis(1));
        }
        let detached = self.detached.load(Ordering::SeqCst);
        // Gs no M runs: the queued ones. The local queues are emptied from
        // the consumer side (as a thief would), which is safe even while a
        // detached M still pushes to its own.
        let mut victims: Vec<Arc<G>> = self.lock().runq.drain(..).collect();
        self.runq_size.store(0, Ordering::SeqCst);
        for p in self.ps.iter() {
            let next = p.runnext.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !next.is_null() {
                // SAFETY: runnext holds an Arc::into_raw pointer we now own.
                victims.push(unsafe { Arc::from_raw(next) });
            }
            for x in p.runq.drain() {
                // SAFETY: as above, for queue slots (taken by CAS).
                victims.push(unsafe { Arc::from_raw(x) });
            }
        }
        // A G wired to an M is that M's to unwind, on its own thread
        // (`drop_locked_g`).
        let wired = |g: &Arc<G>| !g.lockedm.load(Ordering::Relaxed).is_null();
        victims.retain(|g| !wired(g) && g.park.kill());
        for p in self.ps.iter() {
            p.timers.lock().unwrap().clear();
            for g in p.registry.lock().unwrap().drain() {
                // With every M gone, any G is ours; a detached M may still
                // run its own G, so then only parked ones are.
                let claimed = !wired(&g) && if detached { g.park.kill_parked() } else { g.park.kill() };
                if claimed {
                    victims.push(g);
                }
            }
        }
        // Unwind them on a thread of their own: a destructor that blocks
        // forever must not hold up shutdown.
        let (done_tx, done) = std::sync::mpsc::channel();
        let unwinder = thread::Builder::new().name(format!("{}-unwind", self.name)).spawn(move || {
            m::set_force_unwinding(true);
            for g in victims {
                // SAFETY: `kill` made us the G's only runner: no M resumes it
                // and no unpark readies it; its coroutine is ours to drop.
                unsafe {
                    drop((*g.co.get()).take());
                    drop((*g.start.get()).take());
                }
                g.set_status(GStatus::Dead);
            }
            m::set_force_unwinding(false);
            let _ = done_tx.send(());
        });
        let unwound = match unwinder {
            Ok(h) => match done.recv_timeout(SHUTDOWN_GRACE) {
                Ok(()) => {
                    let _ = h.join();
                    true
                }
                Err(_) => false,
            },
            Err(_) => false,
        };
        if !detached && unwound {
            for p in self.ps.iter() {
                // SAFETY: no M holds any P any more.
                unsafe {
                    p.local().stacks.clear();
                    // Free Gs hold the Sched: break the cycle.
                    p.local().gfree.clear();
                }
            }
        }
        self.gfree.lock().unwrap().clear();
        self.shared_stacks.clear();
    }

    /// Finishes the trace file, if tracing (once; later calls do nothing).
    pub(crate) fn finish_trace(&self) {
        if let Some(t) = &self.tracer {
            // Not `eprintln!`: this may run at process exit, where a panic on
            // a closed stderr would abort.
            use std::io::Write as _;
            let mut err = std::io::stderr();
            let _ = match t.write(self.threads_created()) {
                Ok(false) => Ok(()),
                Ok(true) => {
                    writeln!(err, "goro: trace written to {} (open it in https://ui.perfetto.dev)", t.path().display())
                }
                Err(e) => writeln!(err, "goro: cannot write the trace to {}: {e}", t.path().display()),
            };
        }
    }

    /// Gives back the memory of up to `max` pooled stacks that went unused
    /// (sysmon); whether more are left.
    pub fn trim_stacks(&self, max: usize) -> (usize, bool) {
        self.shared_stacks.trim(max)
    }

    /// Live Gs of this runtime (for dumps and tests).
    pub fn all_gs(&self) -> Vec<Arc<G>> {
        let mut out = Vec::new();
        for p in self.ps.iter() {
            out.extend(p.registry.lock().unwrap().iter().cloned());
        }
        out
    }
}

struct SendPtr(*const G);
// SAFETY: the pointer is only dereferenced by the G's own coroutine, which
// the G owns.
unsafe impl Send for SendPtr {}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish() | 1
}
