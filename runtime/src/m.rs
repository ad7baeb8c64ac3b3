//! M: an OS worker thread, and the thread-local context that tells runtime
//! code which M, P and G it is running on.
//!
//! Every worker thread runs `mstart`: it installs its [`MCtx`] in a
//! thread-local and loops in `schedule()` until the runtime shuts down.
//!
//! Thread-locals and stackful coroutines: a G may park on one M and resume on
//! another, so the thread-local context must be read again after every
//! switch. LLVM may cache the address of a thread-local within a function
//! (the thread pointer is assumed constant), so every accessor here is
//! `#[inline(never)]` and returns the *value* read, never a reference, and
//! no runtime code holds a `&MCtx` across a switch. User code has no such
//! discipline to rely on: that is why entering a runtime is `unsafe` (the
//! caller promises it for the code its Gs run) and why a G may be wired to
//! its thread with `lock_os_thread` (`lock_os_thread.rs`).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};

use crate::g::{Switch, G};
use crate::sched::{Sched, NO_P};
use crate::stats::Counters;

/// An M as the rest of the runtime sees it: something to hand a P to and
/// wake.
pub(crate) struct M {
    pub id: usize,
    /// What the M is doing, for schedtrace: its P (`NO_P`), its G (0), and
    /// whether it spins. Relaxed stores by the M itself (G and spinning only
    /// when schedtrace's detail lines are on).
    pub cur_p: AtomicUsize,
    pub cur_g: std::sync::atomic::AtomicU64,
    pub spinning: AtomicBool,
    pub thread: OnceLock<Thread>,
    /// A P handed to this M while it was parked (`NO_P` if none).
    pub nextp: AtomicUsize,
    /// Whether the handed P comes with the spinning role.
    pub next_spinning: AtomicBool,
    /// With `nextp`: the G wired to this M, handed back to it by the M
    /// that found it runnable (Go's `startlockedm`). An `Arc<G>` as a raw
    /// pointer, or null.
    pub nextg: AtomicPtr<G>,
    /// The kernel's id of the M's thread (for dumps and tests).
    pub tid: AtomicI32,
}

impl M {
    pub fn new(id: usize) -> M {
        M {
            id,
            cur_p: AtomicUsize::new(NO_P),
            cur_g: std::sync::atomic::AtomicU64::new(0),
            spinning: AtomicBool::new(false),
            thread: OnceLock::new(),
            nextp: AtomicUsize::new(NO_P),
            next_spinning: AtomicBool::new(false),
            nextg: AtomicPtr::new(std::ptr::null_mut()),
            tid: AtomicI32::new(0),
        }
    }

    pub fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

/// The Ms of a runtime and their threads.
pub(crate) struct Ms {
    /// Every M that has not exited (for shutdown's wake-ups, dumps, traces).
    all: Mutex<Vec<Arc<M>>>,
    /// The threads to join at shutdown. `start` checks for shutdown under
    /// this lock, so shutdown either sees a new M's thread here or the M
    /// never starts.
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Ms ever created; the next M's id.
    created: AtomicUsize,
    /// Ms that exited (idle too long, or taken by a G that exited locked).
    exited: AtomicUsize,
    /// Most Ms alive at once (`RuntimeBuilder::max_threads`).
    pub(crate) max: usize,
    /// Ms whose P sysmon took while their G hogged it, not back yet.
    hogging: AtomicUsize,
}

impl Ms {
    pub(crate) fn new(max: usize) -> Ms {
        Ms {
            all: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            created: AtomicUsize::new(0),
            exited: AtomicUsize::new(0),
            max,
            hogging: AtomicUsize::new(0),
        }
    }

    /// A new M, counted; `None` if that would make more than `max` alive.
    pub(crate) fn create(&self) -> Option<Arc<M>> {
        let id = self.created.fetch_add(1, Ordering::Relaxed);
        if id - self.exited.load(Ordering::Relaxed) >= self.max {
            return None;
        }
        let m = Arc::new(M::new(id));
        self.all.lock().unwrap().push(m.clone());
        Some(m)
    }

    /// Starts M `m`'s thread running `f`, unless `shutdown` is set (then
    /// the M is counted as exited and `false` returned).
    pub(crate) fn start(
        &self,
        m: &Arc<M>,
        name: String,
        shutdown: &AtomicBool,
        f: impl FnOnce() + Send + 'static,
    ) -> bool {
        let mut threads = self.threads.lock().unwrap();
        if shutdown.load(Ordering::SeqCst) {
            drop(threads);
            self.remove(m);
            return false;
        }
        // Threads that ended need no join at shutdown.
        threads.retain(|t| !t.is_finished());
        let h = std::thread::Builder::new()
            .name(name)
            .spawn(f)
            .unwrap_or_else(|e| panic!("goro: cannot create an OS thread for an M: {e}"));
        threads.push(h);
        true
    }

    /// M `m` exits: it leaves the set.
    pub(crate) fn remove(&self, m: &Arc<M>) {
        self.exited.fetch_add(1, Ordering::Relaxed);
        self.all.lock().unwrap().retain(|x| !Arc::ptr_eq(x, m));
    }

    /// The Ms that have not exited.
    pub(crate) fn all(&self) -> Vec<Arc<M>> {
        self.all.lock().unwrap().clone()
    }

    /// Wakes every M (shutdown).
    pub(crate) fn wake_all(&self) {
        for m in self.all.lock().unwrap().iter() {
            m.wake();
        }
    }

    /// Joins the threads that have ended; whether none is left running.
    pub(crate) fn join_ended(&self) -> bool {
        let all = std::mem::take(&mut *self.threads.lock().unwrap());
        let (done, running): (Vec<_>, Vec<_>) = all.into_iter().partition(|t| t.is_finished());
        for t in done {
            let _ = t.join();
        }
        // `start` pushes under this lock after checking for shutdown: an
        // M started meanwhile is in the list now, or never starts.
        let mut threads = self.threads.lock().unwrap();
        threads.extend(running);
        threads.is_empty()
    }

    /// Forgets the threads still running (dropping a handle detaches it).
    pub(crate) fn detach_all(&self) {
        self.threads.lock().unwrap().clear();
    }

    /// A hog's P was taken: its M runs on without one.
    pub(crate) fn hog_taken(&self) {
        self.hogging.fetch_add(1, Ordering::Relaxed);
    }

    /// A hog whose P was taken is back in the runtime.
    pub(crate) fn hog_back(&self) {
        self.hogging.fetch_sub(1, Ordering::Relaxed);
    }

    /// Ms running a hog without a P.
    pub(crate) fn hogging(&self) -> usize {
        self.hogging.load(Ordering::Relaxed)
    }

    /// Whether one more M may be created (`max` not reached).
    pub(crate) fn has_room(&self) -> bool {
        self.created.load(Ordering::Relaxed) - self.exited.load(Ordering::Relaxed) < self.max
    }

    /// Ms created since the runtime started.
    pub(crate) fn created(&self) -> usize {
        self.created.load(Ordering::Relaxed)
    }

    /// Ms that exited.
    pub(crate) fn exited(&self) -> usize {
        self.exited.load(Ordering::Relaxed)
    }
}

/// The per-thread state of a running M; lives on the M's own stack.
pub(crate) struct MCtx {
    pub sched: Arc<Sched>,
    pub m: Arc<M>,
    /// Index of the held P, or `NO_P`.
    pub p: Cell<usize>,
    pub spinning: Cell<bool>,
    /// The G running on this M (null on the scheduler stack).
    pub curg: Cell<*const G>,
    pub rng: Cell<u64>,
    /// The G runs user code, and sysmon may take the P (hog handoff on;
    /// `hog.rs`).
    pub in_user: Cell<bool>,
    /// The held P's status word as this M acquired it (state Running, its
    /// generation): a runtime entry checks that the P still has it.
    pub p_word: Cell<u64>,
    /// The held P itself, set with `p` whenever `p` is set to a P (so
    /// valid whenever `p` is not `NO_P`): the hot paths of hog handoff use
    /// it instead of indexing the runtime's Ps.
    pub pp: Cell<*const crate::p::P>,
    /// Runtime calls the running G has made since it readied a G into
    /// `runnext` with the wake-up deferred (`RunnextWake::Deferred`): at
    /// the second, the wake-up is due. Counted here, not on the P, so
    /// that counting writes no shared memory.
    pub wake_calls: Cell<u8>,
    /// `find_runnable` calls of this M, for the look at other Ps' timers
    /// every `OTHER_TIMERS_INTERVAL` of them (`schedtick` stands still
    /// while Gs pass through `runnext`, so it cannot pace that look).
    pub timer_look: Cell<u32>,
    /// The M is the poller M handing out what its blocking poll found: Gs
    /// it readies are queued without waking other Ms, because this M takes
    /// an idle P itself right after (Go's `findrunnable` after `netpoll`).
    pub poll_dispatch: Cell<bool>,
    /// The G wired to this M by `lock_os_thread` (or by a switch while it
    /// unwinds), null if none: the M runs no other G until it is unwired.
    pub lockedg: Cell<*const G>,
    /// The wired G exited while locked: the M's thread ends (Go's `mexit`).
    pub exit_thread: Cell<bool>,
    pub trace: crate::trace::TraceBuf,
}

impl MCtx {
    /// The P this M holds; meaningful only while `p` is not `NO_P` (it is
    /// then the P `p` names). Always a live P of this runtime: `pp` starts
    /// at P 0 and is set only to Ps, which live as long as the runtime
    /// (`sched` keeps it alive).
    #[inline]
    pub(crate) fn held_p(&self) -> &crate::p::P {
        debug_assert!(self.p.get() != NO_P, "held_p on an M without a P");
        // SAFETY: see above: never null, never dangling.
        unsafe { &*self.pp.get() }
    }

    /// The context of M `m` of runtime `sched`, holding no P yet.
    pub(crate) fn new(sched: Arc<Sched>, m: Arc<M>, spinning: bool) -> MCtx {
        let first_p: *const crate::p::P = &sched.ps[0];
        MCtx {
            sched,
            m,
            p: Cell::new(NO_P),
            spinning: Cell::new(spinning),
            curg: Cell::new(std::ptr::null()),
            rng: Cell::new(seed()),
            in_user: Cell::new(false),
            p_word: Cell::new(0),
            pp: Cell::new(first_p),
            wake_calls: Cell::new(0),
            timer_look: Cell::new(0),
            poll_dispatch: Cell::new(false),
            lockedg: Cell::new(std::ptr::null()),
            exit_thread: Cell::new(false),
            trace: Default::default(),
        }
    }

    /// A runtime call of the running G: counts it if a deferred runnext
    /// wake-up is pending on P `pp`, and says whether the wake-up is due
    /// (the readier went on running instead of switching to the G).
    #[inline]
    pub(crate) fn wake_call_due(&self, pp: &crate::p::P) -> bool {
        if pp.wake_pending.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let n = self.wake_calls.get() + 1;
        self.wake_calls.set(n);
        n >= 2
    }

    pub fn rand(&self) -> u32 {
        // xorshift64*
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
}

/// A random odd seed for an M's generator.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::Instant::now().elapsed().as_nanos() as u64);
    h.finish() | 1
}

thread_local! {
    static CTX: Cell<*const MCtx> = const { Cell::new(std::ptr::null()) };
    static FORCE_UNWIND: Cell<bool> = const { Cell::new(false) };
}

/// The current M's context, or null on a plain thread.
#[inline(never)]
pub(crate) fn ctx_ptr() -> *const MCtx {
    CTX.with(|c| c.get())
}

/// The P this thread's M holds, if `s` is its runtime (for counting the
/// locks a P takes of another P's).
pub(crate) fn holds_p_of(s: &Sched, p: usize) -> bool {
    let c = ctx_ptr();
    // SAFETY: a non-null context is this thread's live MCtx.
    !c.is_null() && unsafe { std::ptr::eq(&*(*c).sched, s) && (*c).p.get() == p }
}

pub(crate) fn set_ctx(c: *const MCtx) {
    CTX.with(|x| x.set(c));
}

/// The running G, or null.
#[inline(never)]
pub(crate) fn current_g_ptr() -> *const G {
    let c = ctx_ptr();
    if c.is_null() {
        return std::ptr::null();
    }
    // SAFETY: a non-null CTX points to the MCtx on this thread's M stack,
    // alive for as long as the thread runs `mstart`.
    unsafe { (*c).curg.get() }
}

/// Which runtime a G belongs to: an identity to compare, valid while the
/// runtime lives (its address; never reused while a G of it runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuntimeId(std::num::NonZeroUsize);

impl RuntimeId {
    #[inline]
    pub(crate) fn of(s: &Arc<Sched>) -> RuntimeId {
        RuntimeId(std::num::NonZeroUsize::new(Arc::as_ptr(s) as usize).expect("an Arc is never null"))
    }
}

/// The runtime whose G the caller is; `None` outside any G.
pub fn current_runtime() -> Option<RuntimeId> {
    let c = ctx_ptr();
    // SAFETY: a non-null context is this thread's live MCtx.
    if c.is_null() || unsafe { (*c).curg.get().is_null() } {
        return None;
    }
    // SAFETY: as above.
    Some(RuntimeId::of(unsafe { &(*c).sched }))
}

/// Whether the caller runs inside a G.
pub fn in_goroutine() -> bool {
    !current_g_ptr().is_null()
}

/// A new reference to the running G.
pub(crate) fn current_g() -> Option<Arc<G>> {
    let g = current_g_ptr();
    if g.is_null() {
        return None;
    }
    // SAFETY: the running G is kept alive by the reference its M holds
    // while running it; we add one of our own.
    unsafe {
        Arc::increment_strong_count(g);
        Some(Arc::from_raw(g))
    }
}

/// The runtime and P to put new work on: the current M's, or the global
/// runtime's P 0 from a plain thread (or an M without a P); and whether
/// the caller holds that P.
pub(crate) fn current_sched_and_p() -> (Arc<Sched>, usize, bool) {
    let c = reacquire_p_then_ctx();
    if !c.is_null() {
        // SAFETY: see `current_g_ptr`.
        let c = unsafe { &*c };
        let p = c.p.get();
        return (c.sched.clone(), if p == NO_P { 0 } else { p }, p != NO_P);
    }
    (crate::runtime::global_sched(), 0, false)
}

/// The runtime the caller runs on, if any.
pub(crate) fn current_sched() -> Option<Arc<Sched>> {
    let c = ctx_ptr();
    if c.is_null() {
        return None;
    }
    // SAFETY: see `current_g_ptr`.
    Some(unsafe { (*c).sched.clone() })
}

/// Makes sure the M still holds its P (hog handoff may have taken it: see
/// `syscall::reacquire_slow`), then returns the current M's context: one
/// thread-local read on the common path. Null on a plain thread. A switch
/// point: if the slow path ran, the G may be on another M now, which is why
/// the context is read again after it.
#[inline]
pub(crate) fn reacquire_p_then_ctx() -> *const MCtx {
    let c = ctx_ptr();
    // SAFETY: a non-null CTX is this thread's live MCtx.
    if !c.is_null() && unsafe { (*c).in_user.get() } {
        // SAFETY: as above.
        let c = unsafe { &*c };
        if !crate::hog::enter_runtime(c) {
            crate::syscall::reacquire_after_takeover(c);
            return ctx_ptr();
        }
    }
    c
}

/// `reacquire_p_then_ctx`, then the running G (null outside one): for a G
/// about to switch out, whose M must hold its P. A switch point as well.
#[inline]
pub(crate) fn reacquire_p_then_current_g() -> *const G {
    let c = reacquire_p_then_ctx();
    if c.is_null() {
        return std::ptr::null();
    }
    // SAFETY: a non-null context is this thread's live MCtx.
    unsafe { (*c).curg.get() }
}

/// Gives the M back to the scheduler, after making sure it holds its P
/// (which it needs to schedule the next G). Must be called from a G.
pub(crate) fn switch_out(why: Switch) {
    // SAFETY: called from a G (the contract), so this is the running G.
    unsafe { switch_out_of(reacquire_p_then_current_g(), why) }
}

/// Suspends `g`'s coroutine back to its M's scheduler stack.
///
/// # Safety
/// `g` is the G running on this thread, and the caller runs on its stack.
pub(crate) unsafe fn switch_out_of(g: *const G, why: Switch) {
    debug_assert!(!g.is_null(), "switch_out outside a G");
    // The panic count and the unwinder's state are per thread: a G that
    // switches while it unwinds (a `Drop` that parks) must come back on
    // this M. One load of std's global panic count when nothing panics.
    let unwinding = std::thread::panicking();
    if unwinding {
        crate::lock_os_thread::wire_internal();
    }
    // SAFETY: the running G is alive and has its context (it runs on it:
    // the caller's contract), which nothing else touches while it runs.
    unsafe {
        match &*(*g).co.get() {
            Some(co) => co.suspend(why),
            None => unreachable!("a running G has a context"),
        }
    }
    if unwinding {
        crate::lock_os_thread::unwire_internal();
    }
}

/// A preemption point: yields if sysmon flagged the P because the running G
/// has used up its time slice. Cheap when not flagged (two loads).
#[inline]
pub fn preempt_point() {
    preempt_point_in_runtime();
}

/// [`preempt_point`], then the runtime whose G the caller is (after the
/// switch, if it yielded; `None` outside any G): runtime-aware code (a
/// socket operation) needs both, and this costs one thread-local read
/// instead of two.
#[inline]
pub fn preempt_point_in_runtime() -> Option<RuntimeId> {
    let c = ctx_ptr();
    if c.is_null() {
        return None;
    }
    // SAFETY: see `current_g_ptr`.
    let c = unsafe { &*c };
    if c.curg.get().is_null() {
        return None;
    }
    let id = Some(RuntimeId::of(&c.sched));
    let p = c.p.get();
    if p == NO_P {
        return id;
    }
    if !c.in_user.get() {
        let id = preempt_checks(c, &c.sched.ps[p], id);
        if c.sched.policy.hog_handoff {
            // A section some path left open (the G runs user code with an
            // even tick, invisible to sysmon): close it here, at the start
            // of a runtime call, where nothing touches the P before the
            // next entry.
            back_to_user();
        }
        return id;
    }
    // SAFETY: `pp` is the held P while `p` is set (see `MCtx::pp`); Ps live
    // as long as their runtime, which the context keeps alive.
    let pp = unsafe { &*c.pp.get() };
    // Hog handoff is on and the G is in user code (`hog.rs`): stay there,
    // with loads only, unless the P has something for us or was taken;
    // then enter the runtime properly.
    if !pp.preempt.load(Ordering::Relaxed) && pp.status.load(Ordering::Relaxed) == c.p_word.get() {
        if !c.wake_call_due(pp) {
            // Progress, for sysmon: this G calls the runtime.
            let calls = &pp.user.calls;
            calls.store(calls.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            return id;
        }
        // Counted already: `preempt_checks` will count it again.
        c.wake_calls.set(c.wake_calls.get() - 1);
    }
    preempt_point_entering(c)
}

/// What the preemption point does for a G in the runtime (or with hog
/// handoff off): yield if the time slice is used up, pay a deferred
/// runnext wake-up that fell due.
#[inline]
fn preempt_checks(c: &MCtx, pp: &crate::p::P, id: Option<RuntimeId>) -> Option<RuntimeId> {
    if pp.preempt.load(Ordering::Relaxed) {
        pp.preempt.store(false, Ordering::Relaxed);
        Counters::bump(&pp.counters.preemptions);
        switch_out(Switch::Preempt);
        return current_runtime();
    }
    if c.wake_call_due(pp) {
        // A G this one readied into `runnext` still waits (RunnextWake::Deferred).
        pp.clear_wake_pending();
        c.sched.wakep_for_local();
    }
    id
}

/// `preempt_point_in_runtime` for a G in user code whose P needs it: enters
/// the runtime (getting a P back if sysmon took it), does what the P asks,
/// and goes back to user code.
#[cold]
fn preempt_point_entering(c: &MCtx) -> Option<RuntimeId> {
    let id = Some(RuntimeId::of(&c.sched));
    if !crate::hog::enter_runtime(c) {
        // Gets an idle P, or switches out until an M with a P runs the G
        // (then `execute` has put it back in user code already).
        crate::syscall::reacquire_after_takeover(c);
        back_to_user();
        return current_runtime();
    }
    let id = preempt_checks(c, &c.sched.ps[c.p.get()], id);
    back_to_user();
    id
}

/// The end of a runtime section that touched the P (`hog.rs`): the G goes
/// back to user code, where sysmon may take the P. Nothing when the G is
/// already there, hog handoff is off, or this is no G.
#[inline]
pub(crate) fn back_to_user() {
    let c = ctx_ptr();
    if !c.is_null() {
        // SAFETY: a non-null context is this thread's live MCtx.
        back_to_user_in(unsafe { &*c });
    }
}

/// [`back_to_user`] with the context in hand (no switch since it was read).
#[inline]
pub(crate) fn back_to_user_in(c: &MCtx) {
    if !c.in_user.get() && c.sched.policy.hog_handoff {
        crate::hog::enter_user(c);
    }
}

/// Set while the shutdown thread unwinds parked Gs: their panic boundary
/// must let the forced unwind (`context::ForcedUnwind`) through.
#[inline(never)]
pub(crate) fn force_unwinding() -> bool {
    FORCE_UNWIND.with(|f| f.get())
}

pub(crate) fn set_force_unwinding(v: bool) {
    FORCE_UNWIND.with(|f| f.set(v));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::ctx_ptr;

    fn tid() -> i32 {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() }
    }

    /// The M context as the accessor reads it after a switch must be this
    /// thread's: if `ctx_ptr` were inlined and LLVM kept the thread-local's
    /// address across the switch, a G that moved would read the old M's
    /// context, whose thread id is not the one the kernel reports.
    #[test]
    fn the_context_read_after_a_switch_is_this_threads() {
        // SAFETY: the Gs keep no thread-local state across switch points
        // (the accessors under test read theirs afresh).
        let rt = unsafe { crate::Runtime::builder().procs(2).build() }.unwrap();
        let moves = Arc::new(AtomicUsize::new(0));
        let m = moves.clone();
        rt.block_on(move || {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let m = m.clone();
                    crate::go(move || {
                        let mut last = tid();
                        for i in 0..2000 {
                            // A read before the switch that a cached address
                            // would reuse after it.
                            let before = ctx_ptr();
                            assert!(!before.is_null());
                            if i % 2 == 0 {
                                crate::yield_now();
                            } else {
                                // Gives the P away: the G comes back on
                                // whichever M finds it.
                                crate::blocking(|| ());
                            }
                            let c = ctx_ptr();
                            assert!(!c.is_null());
                            // SAFETY: a non-null context is this thread's live MCtx.
                            let mm: &super::M = unsafe { &(*c).m };
                            let ctx_tid = mm.tid.load(Ordering::Relaxed);
                            let t = tid();
                            assert_eq!(ctx_tid, t, "the M context read after a switch belongs to another thread");
                            if t != last {
                                m.fetch_add(1, Ordering::Relaxed);
                                last = t;
                            }
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        assert!(moves.load(Ordering::Relaxed) > 0, "no G changed threads: the check proves nothing");
    }
}
