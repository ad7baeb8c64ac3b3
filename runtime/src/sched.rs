//! The scheduler core: Go's `proc.go` in Rust.
//!
//! # Design (after Go's proc.go design note)
//!
//! G is a goroutine, M an OS thread, P a logical processor: an M must hold a
//! P to run Gs, and there are exactly `procs` Ps. Each P has a bounded local
//! run queue and a `runnext` slot; there is one global queue under
//! `Sched::lock`.
//!
//! The hard part is parking and unparking Ms: enough Ms must be awake to use
//! every P when there is work, and as few as possible when there is not. Like
//! Go, goro keeps *spinning* Ms: an M is spinning when it holds a P, has
//! nothing in its local queue, and is looking for work in the global queue,
//! the poller and other Ps. `idle.rs` states the invariant that lets every
//! other M sleep without a timeout, and the rules that keep it. Ms that are
//! not spinning and have no work park on their own parker until handed a P.
//!
//! One idle M at a time is the *poller M*: it blocks in `Poller::poll` with
//! the earliest timer of any P as timeout, so timers fire while every M
//! sleeps. Others park with no timeout.
//!
//! # Where things are
//! - here: `ready`, `runqput`/`runqget`, `globrunqput`/`globrunqget`
//!   (queues); `wakep`, `handoffp`, `startm`, `newm`, `stopm`,
//!   `pidleget`/`pidleput` (Ms and Ps); `mstart` → `schedule` →
//!   `find_runnable` (the M's loop); `steal_work` (stealing;
//!   `steal.rs`: the visiting order and `runqsteal`).
//! - `goroutine.rs`: `newproc`; `g.rs`: a G's lives (`G::new`,
//!   `begin_life`, `GPool`'s `gfget`/`gstart`/`gdestroy`).
//! - `execute.rs`: running a G and what follows its switch back.
//! - `syscall.rs`: a G in a blocking call and the P it hands off;
//!   `lock_os_thread.rs`: a G wired to its M; `sysmon.rs`: retake and
//!   preemption; `timer.rs`: per-P timers; `runtime.rs`: shutdown.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::g::{GPool, GStatus, G};
use crate::idle::{Idle, IdleList};
use crate::m::{self, MCtx, Ms, M};
use crate::p::{PStatus, P};
use crate::policy::{Policy, RunnextWake, Spinning, Steal};
use crate::poller::{Poller, PollerSlot};
use crate::runtime::ShutdownState;
use crate::signal;
use crate::stats::{Counters, SchedCounters};
use crate::steal::{runqsteal, StealOrder};
use crate::sysmon::SysmonNote;

/// "No P" in an M's `p` or `nextp`.
pub(crate) const NO_P: usize = usize::MAX;

/// Scheduling latency and run time are measured for one event in 64.
pub(crate) const SAMPLE_MASK: u64 = 63;

/// An idle M exits after this long if more Ms than Ps are idle.
const IDLE_M_EXIT: Duration = Duration::from_secs(5);

/// Largest G stack a `Builder` may ask for.
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;

/// One runtime's scheduler: its Ps, its queues and the parts the rest of
/// the runtime reaches through it. Each part owns its fields and the
/// methods that keep them consistent.
pub(crate) struct Sched {
    /// The policy knobs, fixed when the runtime is built.
    pub policy: Policy,
    /// How many Ps there are (GOMAXPROCS).
    pub procs: usize,
    /// The Ps.
    pub ps: Box<[P]>,
    /// The global run queue, the idle-P list and the idle Ms (Go's
    /// `sched.lock` and what it guards).
    lock: Mutex<Locked>,
    /// Length of the global queue, readable without the lock.
    runq_size: AtomicUsize,
    /// Idle-P and spinning-M counts (`idle.rs`: the rules for waking Ms).
    idle: Idle,
    /// The Ms and their threads (`m.rs`).
    pub(crate) ms: Ms,
    /// The poller idle Ms block in, and who is in it (`poller.rs`).
    pub(crate) poller: PollerSlot,
    /// Dead Gs and stacks shared between Ps (`g.rs`).
    pub(crate) gpool: GPool,
    /// Time since the runtime started (`clock.rs`).
    pub(crate) clock: Clock,
    /// Runtime-wide counters (`stats.rs`).
    pub(crate) counters: SchedCounters,
    /// sysmon's sleep and thread id (`sysmon.rs`).
    pub(crate) sysmon: SysmonNote,
    /// What deadlock detection found, and who to tell (`dump.rs`).
    pub(crate) deadlock: crate::dump::DeadlockState,
    /// Whether the runtime is shutting down (`runtime.rs`).
    pub(crate) shutdown: ShutdownState,
    /// The trace being recorded (`GORO_TRACE`, `RuntimeBuilder::trace`).
    pub(crate) tracer: Option<crate::trace::Tracer>,
    /// Ms publish their current G and spinning for schedtrace's detail
    /// lines (only when those are printed: the stores stay off the hot
    /// path otherwise).
    pub(crate) publish_m_state: bool,
    /// The random order in which a thief visits the other Ps (`steal.rs`).
    steal_order: StealOrder,
    /// The runtime's name, for threads and messages.
    name: String,
}

/// What `Sched::lock` guards.
struct Locked {
    /// The global run queue.
    runq: VecDeque<Arc<G>>,
    /// The idle Ps (counted by `Sched::idle`).
    pidle: IdleList,
    /// Ms parked with no P, waiting to be handed one.
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
        let (idle, pidle) = Idle::new(procs);
        signal::install();
        if cfg.policy.hog_handoff {
            crate::hog::init();
        }
        let s = Arc::new(Sched {
            policy: cfg.policy,
            procs,
            ps,
            lock: Mutex::new(Locked { runq: VecDeque::new(), pidle, midle: Vec::new() }),
            runq_size: AtomicUsize::new(0),
            idle,
            ms: Ms::new(cfg.max_threads),
            poller: PollerSlot::new(cfg.poller),
            gpool: GPool::new(cfg.stack_size),
            clock: Clock::new(),
            counters: SchedCounters::default(),
            sysmon: SysmonNote::new(),
            deadlock: Default::default(),
            shutdown: ShutdownState::default(),
            tracer: cfg.trace.map(|p| crate::trace::Tracer::new(p, procs, cfg.trace_last)),
            publish_m_state: cfg.schedtrace_detail,
            steal_order: StealOrder::new(procs),
            name: cfg.name,
        });
        crate::dump::register(&s, cfg.sigquit_dump);
        if s.tracer.is_some() {
            crate::dump::finish_traces_at_exit();
        }
        s
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        SchedCounters::bump(&self.counters.lock_sched);
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nanoseconds since the runtime started.
    pub fn now_nanos(&self) -> u64 {
        self.clock.now()
    }

    pub fn is_current(&self) -> bool {
        match m::current_sched() {
            Some(s) => std::ptr::eq(&*s, self),
            None => false,
        }
    }

    /// The P the calling M holds on this runtime, if any.
    pub(crate) fn current_p(&self) -> Option<(&MCtx, usize)> {
        let c = m::reacquire_p_then_ctx();
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

    /// Go's `ready`: makes a parked G runnable. On an M of the G's runtime it
    /// goes to the M's P (`runnext` if `next`); elsewhere to the global
    /// queue. The runtime's reference count is not touched on the hot path:
    /// on an M of that runtime the M's context keeps the runtime alive (the
    /// G may run, exit and be freed elsewhere as soon as it is queued, so
    /// `g.sched` cannot be used after).
    pub(crate) fn ready_g(g: Arc<G>, next: bool) {
        let c = m::reacquire_p_then_ctx();
        if !c.is_null() {
            // SAFETY: a non-null context is this thread's live MCtx.
            let c = unsafe { &*c };
            let p = c.p.get();
            if p != NO_P && std::ptr::eq(&*c.sched, &*g.sched) {
                c.sched.ready_local(c, p, g, next);
                m::back_to_user_in(c);
                return;
            }
        }
        let sched = g.sched.clone();
        sched.ready_external(g);
        // The entry above may have opened a section on this M's own P.
        m::back_to_user();
    }

    fn ready_local(self: &Arc<Self>, c: &MCtx, p: usize, g: Arc<G>, next: bool) {
        g.set_status(GStatus::Runnable);
        if let Some(t) = &self.tracer {
            g.flow_id.store(t.flow_start(Some(&c.trace), Some(c.m.id), g.id()), Ordering::Relaxed);
        }
        let pp = &self.ps[p];
        if pp.counters.unparks.load(Ordering::Relaxed) & SAMPLE_MASK == 0 {
            g.ready_at.store(self.now_nanos().max(1), Ordering::Relaxed);
        }
        Counters::bump(&pp.counters.unparks);
        let behind = self.runqput(pp, g, next);
        self.wake_for_queued(c, p, behind);
    }

    /// After a G was queued on the caller's P `p` (readied, or spawned):
    /// if work waits behind the running G (`behind`), an idle P should
    /// look (and a deferred wake-up is covered by this one); if the G went
    /// to an empty `runnext`, `Policy::runnext_wake` decides.
    pub(crate) fn wake_for_queued(self: &Arc<Self>, c: &MCtx, p: usize, behind: bool) {
        let pp = &self.ps[p];
        if behind {
            pp.clear_wake_pending();
            self.wakep_for_local();
            return;
        }
        match self.policy.runnext_wake {
            RunnextWake::Immediate => self.wakep_for_local(),
            RunnextWake::Deferred => {
                pp.wake_pending.store(1, Ordering::Relaxed);
                c.wake_calls.set(0);
            }
            RunnextWake::Never => {}
        }
    }

    fn ready_external(self: &Arc<Self>, g: Arc<G>) {
        g.set_status(GStatus::Runnable);
        if let Some(t) = &self.tracer {
            g.flow_id.store(t.flow_start(None, None, g.id()), Ordering::Relaxed);
        }
        if self.shutdown.started() {
            return;
        }
        SchedCounters::bump(&self.counters.external_readies);
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

    /// Go's `runqput`. Must be called by the M holding P `pp`.
    /// Returns false if the G went into an empty `runnext` (nothing was
    /// queued behind the running G).
    #[inline]
    pub(crate) fn runqput(&self, pp: &P, g: Arc<G>, next: bool) -> bool {
        let mut gp = Arc::into_raw(g) as *mut G;
        if next && self.policy.runnext {
            let old = pp.runnext.swap(gp, Ordering::AcqRel);
            if old.is_null() {
                return false;
            }
            gp = old;
        }
        // SAFETY: we hold P `pp`, so we own its local part and its queue's
        // producer side.
        let local = unsafe { pp.local() };
        // SAFETY: as above.
        if unsafe { pp.runq.push(gp, &mut local.overflow) } {
            self.runq_overflowed(pp, local);
        }
        true
    }

    /// The local queue of `pp` was full: half of it went to `overflow`,
    /// which goes to the global queue (Go's `runqputslow`).
    #[cold]
    #[inline(never)]
    fn runq_overflowed(&self, pp: &P, local: &mut crate::p::PLocal) {
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

    /// Go's `runqget`: `runnext` first (inheriting the time slice), then the
    /// local queue. Must be called by the M holding P `pp`.
    #[inline]
    fn runqget(&self, pp: &P) -> Option<(Arc<G>, bool)> {
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
        // SAFETY: we hold P `pp`.
        let g = unsafe { pp.runq.pop() }?;
        // The G after it runs next unless something comes first: start
        // fetching the parts of it that a switch touches (with hundreds of
        // runnable Gs they are not in this CPU's L1).
        crate::g::prefetch(pp.runq.peek_hint());
        // SAFETY: queue slots hold pointers from Arc::into_raw; the pop's CAS
        // made us their only owner.
        let g = unsafe { Arc::from_raw(g) };
        crate::g::prefetch_stack(&g);
        Some((g, false))
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

    /// Go's `globrunqget`: takes a batch of Gs ([`global_batch`]), returns
    /// one and puts the rest on P `p`'s local queue.
    fn globrunqget(&self, l: &mut Locked, p: usize, max: usize) -> Option<Arc<G>> {
        let size = l.runq.len();
        if size == 0 {
            return None;
        }
        let pp = &self.ps[p];
        let n = global_batch(size, self.procs, pp.runq.limit(), pp.runq.len(), max);
        let first = l.runq.pop_front();
        for _ in 1..n {
            let Some(g) = l.runq.pop_front() else { break };
            self.runqput(pp, g, false);
        }
        self.runq_size.store(l.runq.len(), Ordering::SeqCst);
        Counters::bump(&pp.counters.global_takes);
        first
    }

    // ---------------------------------------------------------------
    // Ms and Ps.

    /// Go's `pidleget`: takes an idle P, accounting the end of its idle
    /// period.
    fn pidleget(&self, l: &mut Locked) -> Option<usize> {
        let p = self.idle.take(&mut l.pidle)?;
        self.end_idle(p);
        Some(p)
    }

    /// Accounts the idle period of P `p`, which is leaving the idle list.
    fn end_idle(&self, p: usize) {
        let pp = &self.ps[p];
        let idle = self.now_nanos().saturating_sub(pp.idle_since.load(Ordering::Relaxed));
        pp.idle_total.fetch_add(idle, Ordering::Relaxed);
    }

    /// Go's `pidleput`: P `p` goes idle.
    fn pidleput(&self, l: &mut Locked, p: usize) {
        self.ps[p].idle_since.store(self.now_nanos(), Ordering::Relaxed);
        self.ps[p].set_status(PStatus::Idle);
        self.ps[p].wake_pending.store(0, Ordering::Relaxed);
        self.idle.put(&mut l.pidle, p);
    }

    /// An idle P, `prefer` if it is idle (a G back from a syscall wants its
    /// old P).
    pub(crate) fn pidleget_prefer(&self, prefer: Option<usize>) -> Option<usize> {
        let mut l = self.lock();
        if let Some(want) = prefer {
            if self.idle.take_this(&mut l.pidle, want) {
                self.end_idle(want);
                return Some(want);
            }
        }
        self.pidleget(&mut l)
    }

    /// Puts P `p` on the idle list unless the global queue has work (then
    /// returns false and the caller must run it).
    fn pidleput_unless_work(&self, p: usize) -> bool {
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

    /// Ms spinning plus Ps idle: whether anything can take new work
    /// without being started.
    pub(crate) fn spinning_plus_idle(&self) -> usize {
        self.idle.nmspinning() + self.idle.npidle()
    }

    /// M `c` (holding a P) starts spinning.
    fn spin_start(&self, c: &MCtx) {
        self.set_spinning(c, true);
        self.idle.start_spinning();
    }

    /// M `c` stops spinning; whether it was the last spinning M.
    fn spin_stop(&self, c: &MCtx) -> bool {
        self.set_spinning(c, false);
        self.idle.stop_spinning()
    }

    /// Sets whether M `c` spins, publishing it for schedtrace's detail lines.
    /// An M starts spinning only while it holds a P, whose counter it bumps.
    /// The spinning count is `Idle`'s, changed by the caller.
    fn set_spinning(&self, c: &MCtx, v: bool) {
        c.spinning.set(v);
        if v {
            Counters::bump(&self.ps[c.p.get()].counters.spins);
        }
        if self.publish_m_state {
            c.m.spinning.store(v, Ordering::Relaxed);
        }
    }

    /// Go's `acquirep`: M `c` now holds P `p`.
    pub(crate) fn acquirep(&self, c: &MCtx, p: usize) {
        c.p_word.set(self.ps[p].acquire());
        c.pp.set(&self.ps[p]);
        c.p.set(p);
        c.m.cur_p.store(p, Ordering::Relaxed);
    }

    /// Whether one more M may start spinning (`Policy::max_spinning`).
    fn may_spin(&self) -> bool {
        spin_allowed(self.policy.max_spinning, self.idle.nmspinning(), self.procs, self.idle.npidle())
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
    /// spinning on it (`idle.rs`, rule 1).
    pub fn wakep(self: &Arc<Self>) {
        if self.idle.npidle() == 0 || !self.idle.claim_spinning() {
            return;
        }
        let p = {
            let mut l = self.lock();
            self.pidleget(&mut l)
        };
        match p {
            Some(p) => self.startm(p, true),
            None => self.idle.unclaim_spinning(),
        }
    }

    /// Go's `handoffp`: P `p` has no M (retaken, handed off by `blocking`,
    /// or left by a G wired to its M): start an M for it if it has work, or
    /// if no M is looking for work; else put it on the idle list.
    pub(crate) fn handoffp(self: &Arc<Self>, p: usize) {
        let pp = &self.ps[p];
        if pp.has_work() || self.global_queue_len() > 0 {
            self.startm(p, false);
            return;
        }
        if self.spinning_plus_idle() == 0 && self.idle.claim_spinning() {
            self.startm(p, true);
            return;
        }
        if pp.timer_next.load(Ordering::SeqCst) != u64::MAX {
            self.startm(p, false);
            return;
        }
        if !self.pidleput_unless_work(p) {
            self.startm(p, false);
        }
    }

    /// Go's `startm`: runs P `p` on an idle M, or on a new one. With
    /// `spinning`, the M takes over the caller's claim to spin.
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
        // No M will run the P: it goes back, with the claim to spin.
        let give_back = || {
            let mut l = self.lock();
            self.pidleput(&mut l, p);
            drop(l);
            if spinning {
                self.idle.unclaim_spinning();
            }
        };
        if self.shutdown.started() {
            give_back();
            return;
        }
        let Some(m) = self.ms.create() else {
            if self.ms.hogging() > 0 {
                // Hogs hold Ms of their own (`hog.rs`): they come back and
                // take idle Ps, so the P waits for them instead.
                give_back();
                return;
            }
            // Go: "runtime: program exceeds 10000-thread limit / fatal error:
            // thread exhaustion". Nothing sane can continue.
            eprintln!(
                "goro: runtime {:?} exceeds its {}-thread limit (RuntimeBuilder::max_threads)\nfatal error: thread exhaustion",
                self.name, self.ms.max
            );
            std::process::abort();
        };
        let this = self.clone();
        let name = format!("{}-m{}", self.name, m.id);
        let m2 = m.clone();
        if !self.ms.start(&m, name, self.shutdown.flag(), move || this.mstart(m2, p, spinning)) {
            give_back();
        }
    }

    /// Go's `stopm`: parks the M until it is handed a P. Returns false on
    /// shutdown, or when the M exits for having idled too long.
    fn stopm(&self, c: &MCtx) -> bool {
        self.lock().midle.push(c.m.clone());
        let mut idle_since = Instant::now();
        loop {
            if self.shutdown.started() {
                return false;
            }
            let p = c.m.nextp.swap(NO_P, Ordering::AcqRel);
            if p != NO_P {
                self.acquirep(c, p);
                // The spinning role, if handed, was counted by the claimant.
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
                        self.ms.remove(&c.m);
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
        let ctx = MCtx::new(self.clone(), m, spinning);
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
                crate::lock_os_thread::startlockedm(c, g, lm);
                if !self.stopm(c) {
                    return;
                }
                continue;
            }
            loop {
                crate::execute::execute(self, c, g, inherit);
                if self.publish_m_state {
                    c.m.cur_g.store(0, Ordering::Relaxed);
                }
                if c.lockedg.get().is_null() {
                    break;
                }
                // The G is wired to this M: run nothing else until it is
                // runnable again and handed back.
                match crate::lock_os_thread::stoplockedm(self, c) {
                    Some(next) => (g, inherit) = (next, false),
                    None => return,
                }
            }
            if c.exit_thread.get() {
                self.mexit(c);
                return;
            }
            if self.shutdown.started() {
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
        self.ms.remove(&c.m);
    }

    /// The M stops spinning because it found work; if it was the last
    /// spinning M, another is woken to look for the next piece of work.
    fn resetspinning(&self, c: &MCtx) {
        if self.spin_stop(c) {
            c.sched.wakep();
        }
    }

    /// Go's `findRunnable`: blocks until there is a G to run; `None` on
    /// shutdown. On return the M holds a P.
    fn find_runnable(&self, c: &MCtx) -> Option<(Arc<G>, bool)> {
        loop {
            if self.shutdown.started() {
                return None;
            }
            let p = c.p.get();
            debug_assert!(p != NO_P);
            let pp = c.held_p();

            if pp.timer_next.load(Ordering::Relaxed) != u64::MAX {
                crate::timer::run_timers(pp, self.now_nanos(), &pp.counters, pp.runq_room());
            }
            // A P whose G runs without switching runs none of its timers
            // until it does (up to a time slice, or for ever under a hog
            // with hog handoff off): busy Ps look at the others' timers
            // too, every `OTHER_TIMERS_INTERVAL` schedules, and run those
            // that are due (the Gs they wake come to this P).
            let look = c.timer_look.get().wrapping_add(1);
            c.timer_look.set(look);
            if self.procs > 1 && look & (OTHER_TIMERS_INTERVAL - 1) == 0 {
                self.run_other_timers(p, pp);
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

            if let Some(x) = self.runqget(pp) {
                return Some(x);
            }

            if self.runq_size.load(Ordering::Relaxed) > 0 {
                let mut l = self.lock();
                if let Some(g) = self.globrunqget(&mut l, p, 0) {
                    return Some((g, false));
                }
            }

            // Non-blocking poll of the network (readied Gs land on this P).
            if self.poller.poll_now(&self.clock) > 0 {
                continue;
            }

            if self.steals_at_all() && (c.spinning.get() || self.may_spin()) {
                if !c.spinning.get() {
                    self.spin_start(c);
                }
                if let Some(g) = self.steal_work(c) {
                    return Some((g, false));
                }
            }

            // Timers of other Ps that are due (their Gs come to this P).
            if self.run_other_timers(p, pp) > 0 {
                continue;
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
                // `idle.rs`, rule 3: work submitted while we were giving up
                // saw a spinning M and did not wake anyone: look again (at
                // other Ps' queues only if this M may steal from them).
                self.spin_stop(c);
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
                        self.spin_start(c);
                        continue;
                    }
                }
            }

            if !self.block_idle(c) {
                return None;
            }
        }
    }

    /// Runs the due timers of every P but `p`, the caller's: the Gs they
    /// wake come to `p`. The clock is read only if some P has a timer at
    /// all. Returns how many fired.
    fn run_other_timers(&self, p: usize, pp: &P) -> usize {
        if crate::timer::next_timer(&self.ps) == u64::MAX {
            return 0;
        }
        let now = self.now_nanos();
        let mut fired = 0;
        for (q, qp) in self.ps.iter().enumerate() {
            if q != p && qp.timer_next.load(Ordering::SeqCst) <= now {
                SchedCounters::bump(&self.counters.lock_other_timers);
                fired += crate::timer::run_timers(qp, now, &pp.counters, pp.runq_room());
            }
        }
        fired
    }

    /// An M with no P and no work sleeps: in the poller until the next timer
    /// if no other M is there, else on its own parker until handed a P.
    /// Returns with a P, or false on shutdown.
    fn block_idle(&self, c: &MCtx) -> bool {
        if self.poller.try_enter() {
            let mut deadline = crate::timer::next_timer(&self.ps);
            self.poller.set_until(deadline);
            // A timer added meanwhile saw no deadline to beat: read again.
            deadline = deadline.min(crate::timer::next_timer(&self.ps));
            let now = self.now_nanos();
            let timeout = (deadline != u64::MAX).then(|| Duration::from_nanos(deadline.saturating_sub(now)));
            let mut polled = None;
            if self.runq_size.load(Ordering::SeqCst) == 0 && !self.shutdown.started() {
                c.poll_dispatch.set(true);
                self.poller.get().poll(timeout);
                c.poll_dispatch.set(false);
                polled = Some(self.now_nanos());
            }
            self.poller.leave(polled);
            if self.shutdown.started() {
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
        let until = self.poller.until();
        if until != 0 && when < until {
            self.poller.wake();
        } else if until == 0 && self.current_p().is_none() {
            // Added from outside the runtime: make sure some M will see it.
            self.wakep();
            if self.poller.busy() {
                self.poller.wake();
            }
        }
        m::back_to_user();
    }

    /// Go's `stealWork`: up to 4 rounds over the other Ps in random order;
    /// `runnext` only on the last round.
    fn steal_work(&self, c: &MCtx) -> Option<Arc<G>> {
        let me = c.p.get();
        const ROUNDS: usize = 4;
        for round in 0..ROUNDS {
            let steal_next = self.policy.steal_runnext && takes_runnext(round, ROUNDS);
            for v in self.steal_order.walk(c.rand() as usize) {
                if v == me {
                    continue;
                }
                if self.shutdown.started() {
                    return None;
                }
                // SAFETY: we hold P `me` and its queue is empty
                // (find_runnable only steals after runqget failed).
                let g = unsafe { runqsteal(&self.ps, me, v, self.policy.steal, steal_next, &self.tracer) };
                if g.is_some() {
                    return g;
                }
            }
        }
        None
    }

    // ---------------------------------------------------------------
    // Observability and shutdown.

    /// The global queue's length and the idle Ms, under the lock (stats).
    pub(crate) fn queue_and_idle_ms(&self) -> (usize, usize) {
        let l = self.lock();
        (l.runq.len(), l.midle.len())
    }

    /// Whether an M could be started for a P now without passing
    /// `max_threads` (an idle one, or room for a new one): hog handoff
    /// takes a P only then, since the hog keeps its own M.
    pub(crate) fn can_start_m(&self) -> bool {
        !self.lock().midle.is_empty() || self.ms.has_room()
    }

    /// Spinning Ms and idle Ps (stats).
    pub(crate) fn spinning_and_idle(&self) -> (usize, usize) {
        (self.idle.nmspinning(), self.idle.npidle())
    }

    /// Empties the global queue and every P's `runnext` and local queue
    /// (shutdown). The local queues are emptied from the consumer side,
    /// as a thief would, which is safe even while a detached M still
    /// pushes to its own.
    pub(crate) fn drain_queues(&self) -> Vec<Arc<G>> {
        let mut out: Vec<Arc<G>> = self.lock().runq.drain(..).collect();
        self.runq_size.store(0, Ordering::SeqCst);
        for p in self.ps.iter() {
            let next = p.runnext.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !next.is_null() {
                // SAFETY: runnext holds an Arc::into_raw pointer we now own.
                out.push(unsafe { Arc::from_raw(next) });
            }
            for x in p.runq.drain() {
                // SAFETY: as above, for queue slots (taken by CAS).
                out.push(unsafe { Arc::from_raw(x) });
            }
        }
        out
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Live Gs of this runtime (for dumps and tests). The registries also
    /// hold dead Gs (free ones): those are left out.
    pub fn all_gs(&self) -> Vec<Arc<G>> {
        let mut out = Vec::new();
        for p in self.ps.iter() {
            out.extend(p.registry.lock().unwrap().iter().filter_map(G::clone_if_live));
        }
        out
    }
}

/// How often, in `find_runnable` calls of an M, a P with work of its own
/// runs other Ps' due timers (a power of two: a mask, not a division, on
/// every schedule).
const OTHER_TIMERS_INTERVAL: u32 = 64;

/// How many Gs a P takes from a global queue of `size` (Go's
/// `globrunqget`): a fair share, `size / procs + 1`, at most half its
/// local queue's capacity `limit` (and `max` when not 0), no more than it
/// has room for besides the one it runs (`len` Gs queued already), and at
/// least that one.
fn global_batch(size: usize, procs: usize, limit: usize, len: usize, max: usize) -> usize {
    let mut n = (size / procs + 1).min(size).min(limit / 2);
    if max > 0 {
        n = n.min(max);
    }
    n.min(limit - len + 1).max(1)
}

/// Whether a thief takes its victims' `runnext` Gs in stealing round
/// `round` of `rounds`: only in the last (Go's `stealWork`), so that a G
/// just readied by a running G stays with it for a while (the ping-pong
/// case) and moves only when nothing else is left to take.
fn takes_runnext(round: usize, rounds: usize) -> bool {
    round + 1 == rounds
}

/// Whether one more M may spin with `spinning` spinning already and
/// `idle` of `procs` Ps idle: under Go's rule (`HalfBusy`) while spinning
/// Ms are fewer than half the busy Ps, so an idle runtime does not burn
/// CPUs looking for work; else under the policy's fixed limit.
fn spin_allowed(rule: Spinning, spinning: usize, procs: usize, idle: usize) -> bool {
    match rule {
        Spinning::HalfBusy => {
            let busy = procs - idle.min(procs);
            2 * spinning < busy
        }
        Spinning::Limit(n) => spinning < n,
    }
}

#[cfg(test)]
mod tests {
    use super::{global_batch, spin_allowed, takes_runnext};
    use crate::Spinning;

    #[test]
    fn thieves_take_runnext_only_in_the_last_round() {
        let rounds: Vec<bool> = (0..4).map(|r| takes_runnext(r, 4)).collect();
        assert_eq!(rounds, [false, false, false, true]);
        assert!(takes_runnext(0, 1));
    }

    #[test]
    fn spinning_ms_stay_under_half_the_busy_ps() {
        let half = Spinning::HalfBusy;
        // 4 busy Ps: a first and a second spinning M, not a third.
        assert!(spin_allowed(half, 0, 4, 0));
        assert!(spin_allowed(half, 1, 4, 0));
        assert!(!spin_allowed(half, 2, 4, 0));
        // 3 of 4 idle: one busy P, and no M spins for it at all
        // (2 × 0 < 1 lets the first one).
        assert!(spin_allowed(half, 0, 4, 3));
        assert!(!spin_allowed(half, 1, 4, 3));
        // All idle (and a count above procs, read racily): none.
        assert!(!spin_allowed(half, 0, 4, 4));
        assert!(!spin_allowed(half, 0, 4, 9));
        // A fixed limit ignores the busy Ps.
        assert!(spin_allowed(Spinning::Limit(3), 2, 4, 4));
        assert!(!spin_allowed(Spinning::Limit(3), 3, 4, 0));
        assert!(!spin_allowed(Spinning::Limit(0), 0, 4, 0));
    }

    #[test]
    fn a_p_takes_its_share_of_the_global_queue_within_its_room() {
        // A fair share: a procs-th of the queue, plus one.
        assert_eq!(global_batch(100, 4, 256, 0, 0), 26);
        assert_eq!(global_batch(100, 1, 256, 0, 0), 100);
        assert_eq!(global_batch(7, 2, 256, 0, 0), 4);
        // Never more than the queue holds, and at least one.
        assert_eq!(global_batch(1, 4, 256, 0, 0), 1);
        assert_eq!(global_batch(3, 1, 256, 0, 0), 3);
        // At most half the local capacity, and `max` when given.
        assert_eq!(global_batch(1000, 1, 256, 0, 0), 128);
        assert_eq!(global_batch(100, 2, 256, 0, 10), 10);
        assert_eq!(global_batch(100, 2, 256, 0, 1), 1);
        // Room: what fits besides the queued Gs, plus the one it runs.
        assert_eq!(global_batch(100, 1, 256, 250, 0), 7);
        assert_eq!(global_batch(100, 1, 256, 256, 0), 1);
    }
}
