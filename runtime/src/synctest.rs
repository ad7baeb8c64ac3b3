//! Bubbles with their own clock (Go's `testing/synctest`; the user's guide
//! is the facade's `goro::synctest`): what happens
//! when a test runs a function in a bubble, how a bubble knows that every
//! one of its Gs is durably blocked, and how its fake clock then jumps.
//!
//! A bubble is a set of Gs: the one [`run`] starts and every G they spawn.
//! Time inside is a fake clock that starts at [`BUBBLE_START`] and moves
//! only when every G of the bubble is *durably blocked* — blocked on
//! something only another G of the bubble can end: a channel created in the
//! bubble, a select whose channels all are, a `sleep` or timer, a
//! `Condvar`, a `Semaphore`, a `WaitGroup` the bubble added to, a join of
//! a G of the bubble. Then, in this order: a G in [`wait`] returns; else
//! the clock jumps to the earliest pending timer of the bubble, which
//! fires (one timer per such moment, in deadline order, then creation
//! order); else nothing can ever wake the Gs and the bubble is
//! deadlocked, which [`run`] reports by panicking with the list of its Gs.
//! A G blocked on a socket, in `syscall`/`blocking`, on a `Mutex`, or on
//! a channel created outside the bubble is not durably blocked (something
//! outside may end its wait), so time stands still while it waits.
//!
//! The accounting is exact because every park-token transition of a
//! bubble's G that crosses `PARKED` happens under the bubble's lock: the
//! M's commit of a park (`park_m`) and the unparker's `PARKED → EMPTY`.
//! `running` counts the bubble's Gs that are not durably parked; it drops
//! to zero only when the last one commits a durable park or exits, and
//! whoever brings it there advances the clock (`settle`), on the
//! scheduler stack, never holding the lock while a timer's action runs.

use std::cell::Cell;
use std::collections::{BinaryHeap, VecDeque};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::g::{GStatus, WaitReason, G};
use crate::m;
use crate::park::{current_unparker, park_woken_by, Unparker, WokenBy};
use crate::sched::Sched;
use crate::timer::{HeapItem, TimerAction, TimerEntry};

/// Where a bubble's wall clock starts ([`crate::system_now`] inside a
/// bubble), since the Unix epoch: 2000-01-01 00:00:00 UTC, as Go's
/// bubbles do.
pub const BUBBLE_START: Duration = Duration::from_secs(946_684_800);

/// Bubbles whose clock is being advanced right now (a timer's action is
/// running outside the bubble's lock): deadlock detection of the whole
/// runtime waits for them (`dump::check_deadlock`).
pub(crate) static ADVANCING: AtomicUsize = AtomicUsize::new(0);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The end of a bubble's clock (about 584 years in): a deadline past it
/// never comes.
const NEVER_NS: u64 = u64::MAX - 1;

thread_local! {
    /// The bubble whose timer action this thread runs (`settle`), so
    /// that the action sees the bubble's clock and arms its timers there.
    static FIRING: Cell<*const Bubble> = const { Cell::new(std::ptr::null()) };
}

/// A bubble: its clock, its timers and the count of its Gs.
pub(crate) struct Bubble {
    pub(crate) id: u64,
    /// The runtime the bubble lives in (`RuntimeId`'s address).
    sched: *const Sched,
    /// The real instant the bubble started: fake time zero, as an
    /// `Instant`.
    epoch: Instant,
    /// Fake nanoseconds since `epoch`; written under `st`.
    now: AtomicU64,
    /// Select's random choices in the bubble (xorshift; seeded).
    rng: AtomicU64,
    st: Mutex<State>,
}

// SAFETY: `sched` is only compared, never dereferenced.
unsafe impl Send for Bubble {}
// SAFETY: as above; everything else is atomic or under `st`.
unsafe impl Sync for Bubble {}

#[derive(Default)]
struct State {
    /// Gs of the bubble that are not durably parked.
    running: usize,
    /// Live Gs of the bubble.
    total: usize,
    timers: BinaryHeap<HeapItem>,
    /// Timers taken from the heap that are due at the current instant,
    /// in order (one heap pass for a burst of them).
    due: VecDeque<HeapItem>,
    seq: u64,
    cancelled: usize,
    /// A G in `wait()`, and the flag that lets it go (its own, so that a
    /// later `wait` cannot take back a release on its way).
    waiter: Option<(Unparker, Arc<AtomicBool>)>,
    /// `settle` is running an action outside the lock.
    advancing: bool,
    main_returned: bool,
    /// How the bubble ended, once it has.
    end: Option<End>,
    /// The G in `run`, waiting for `end`.
    owner: Option<Unparker>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Every G of the bubble exited.
    Finished,
    /// The main function panicked (its payload comes through its join).
    MainPanicked,
    /// Every G durably blocked, nothing pending that could wake one.
    Deadlock,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Bubble {
    fn new(sched: *const Sched, seed: u64) -> Bubble {
        Bubble {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            sched,
            epoch: Instant::now(),
            now: AtomicU64::new(0),
            rng: AtomicU64::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            st: Mutex::new(State::default()),
        }
    }

    /// The bubble's clock as an `Instant`.
    pub(crate) fn now(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.now.load(Ordering::Acquire))
    }

    /// The bubble's clock as wall time (from 2000-01-01 UTC).
    pub(crate) fn system_now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + BUBBLE_START + Duration::from_nanos(self.now.load(Ordering::Acquire))
    }

    /// The next pseudo-random number of the bubble.
    pub(crate) fn rand(&self) -> u64 {
        let step = |mut x: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let prev = self.rng.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x))).unwrap_or(1);
        step(prev)
    }

    fn nanos(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.epoch).as_nanos()).min(u128::from(NEVER_NS)) as u64
    }

    /// A timer on the bubble's clock. One already due fires at once, in
    /// the caller (as Go's: `Timer::new(0)`'s channel is ready at once).
    pub(crate) fn add_timer(&self, when: Instant, entry: Arc<TimerEntry>) {
        let when = self.nanos(when);
        {
            let mut st = lock(&self.st);
            // `NEVER_NS`: past the end of the clock; it never fires (and
            // must not fire at once once the clock has got that far).
            if when > self.now.load(Ordering::Relaxed) || when == NEVER_NS {
                st.seq += 1;
                let seq = st.seq;
                st.timers.push(HeapItem { when, seq, entry });
                return;
            }
        }
        if let Some(a) = entry.claim_fired() {
            a.run();
        }
    }

    /// A pending timer of the bubble was cancelled: drop cancelled
    /// entries once they are more than half of the heap.
    pub(crate) fn timer_cancelled(&self) {
        let mut st = lock(&self.st);
        st.cancelled += 1;
        if st.cancelled > 64 && st.cancelled * 2 > st.timers.len() {
            let items = std::mem::take(&mut st.timers).into_vec();
            st.timers = items.into_iter().filter(|t| t.entry.pending()).collect();
            st.cancelled = 0;
        }
    }

    /// A G joins the bubble (before it is queued to run).
    pub(crate) fn g_spawned(&self) {
        let mut st = lock(&self.st);
        st.running += 1;
        st.total += 1;
    }

    /// A G of the bubble exited.
    pub(crate) fn g_exited(&self) {
        let mut st = lock(&self.st);
        debug_assert!(st.running > 0 && st.total > 0, "a G of the bubble exited twice");
        st.running = st.running.saturating_sub(1);
        st.total = st.total.saturating_sub(1);
        self.settle(st);
    }

    /// `park_m` for a G of the bubble: commits the park under the lock and
    /// counts a durable one. `true`: parked.
    pub(crate) fn commit_park(&self, g: &G) -> bool {
        let mut st = lock(&self.st);
        if !g.park.commit_park() {
            return false;
        }
        if g.durable.load(Ordering::Relaxed) {
            debug_assert!(st.running > 0, "a durable park of a G the bubble counts as blocked");
            st.running = st.running.saturating_sub(1);
            self.settle(st);
        }
        true
    }

    /// An unpark of a G of the bubble. `true`: it was parked and the
    /// caller readies it.
    pub(crate) fn unpark(&self, g: &G) -> bool {
        let mut st = lock(&self.st);
        if !g.park.unpark() {
            return false;
        }
        if g.durable.load(Ordering::Relaxed) {
            st.running += 1;
        }
        true
    }

    /// Called with the lock held after `running` may have dropped to zero:
    /// lets the waiter go, or fires the next timer, or declares the end,
    /// until some G of the bubble runs again.
    fn settle<'a>(&'a self, mut st: MutexGuard<'a, State>) {
        loop {
            if st.running > 0 || st.end.is_some() {
                return;
            }
            if st.advancing {
                // The advancer re-checks once its action has run.
                return;
            }
            if st.total == 0 {
                return self.finish(st, End::Finished);
            }
            if let Some((w, released)) = st.waiter.take() {
                released.store(true, Ordering::Release);
                st = self.outside_lock(st, || w.unpark());
                continue;
            }
            // The next live timer: the clock jumps to it and it fires.
            // Time stops once the main function has returned (Go's rule):
            // then only timers due now still fire.
            let mut action = None;
            while let Some(top) = self.next_timer(&mut st) {
                if let Some(a) = top.entry.claim_fired() {
                    if top.when > self.now.load(Ordering::Relaxed) {
                        self.now.store(top.when, Ordering::Release);
                    }
                    action = Some(a);
                    break;
                }
                st.cancelled = st.cancelled.saturating_sub(1);
            }
            match action {
                // The common case (a sleeper of the bubble), without
                // leaving the lock: the unpark's accounting is done here.
                Some(TimerAction::Wake(u)) if u.bubble_g().is_some_and(|g| g.bubble_is(self)) => {
                    let g = u.bubble_g().expect("checked");
                    let ready = g.park.unpark();
                    if ready && g.durable.load(Ordering::Relaxed) {
                        st.running += 1;
                    }
                    // The handle is dropped without the lock held.
                    let g = g.clone();
                    drop(st);
                    drop(u);
                    if ready {
                        Sched::ready_g(g, true);
                        return;
                    }
                    st = lock(&self.st);
                }
                Some(a) => st = self.outside_lock(st, || a.run()),
                None => return self.finish(st, End::Deadlock),
            }
        }
    }

    /// The next timer in firing order, if it may fire now: the clock may
    /// still move, or it is due already.
    fn next_timer(&self, st: &mut State) -> Option<HeapItem> {
        if st.due.is_empty() {
            let when = st.timers.peek()?.when;
            if when == NEVER_NS || st.main_returned && when > self.now.load(Ordering::Relaxed) {
                return None;
            }
            while st.timers.peek().is_some_and(|t| t.when == when) {
                let t = st.timers.pop().expect("peeked");
                st.due.push_back(t);
            }
        }
        st.due.pop_front()
    }

    /// Runs `f` with the lock released, as the bubble's one advancer,
    /// with the bubble's clock and timers in effect on this thread. If `f`
    /// panics, the thread's and the bubble's state are restored first.
    fn outside_lock<'a>(&'a self, mut st: MutexGuard<'a, State>, f: impl FnOnce()) -> MutexGuard<'a, State> {
        struct Restore<'b> {
            bubble: &'b Bubble,
            prev: *const Bubble,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                FIRING.with(|c| c.set(self.prev));
                if std::thread::panicking() {
                    lock(&self.bubble.st).advancing = false;
                    ADVANCING.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        st.advancing = true;
        ADVANCING.fetch_add(1, Ordering::SeqCst);
        drop(st);
        let restore = Restore { bubble: self, prev: FIRING.with(|c| c.replace(self)) };
        f();
        drop(restore);
        let mut st = lock(&self.st);
        st.advancing = false;
        ADVANCING.fetch_sub(1, Ordering::SeqCst);
        st
    }

    /// The bubble is over: pending timers are dropped, `run` is woken.
    fn finish(&self, mut st: MutexGuard<'_, State>, end: End) {
        st.end = Some(end);
        let mut timers = std::mem::take(&mut st.timers).into_vec();
        timers.extend(st.due.drain(..));
        let owner = st.owner.take();
        let waiter = st.waiter.take();
        drop(st);
        for t in timers {
            drop(t.entry.claim_cancelled());
        }
        if let Some((w, _)) = waiter {
            w.unpark_owned();
        }
        if let Some(o) = owner {
            o.unpark_owned();
        }
    }

    /// The main function returned (or panicked: then the bubble is over
    /// at once, and `run` passes the panic on).
    fn main_returned(&self, panicked: bool) {
        let mut st = lock(&self.st);
        st.main_returned = true;
        if panicked && st.end.is_none() {
            self.finish(st, End::MainPanicked);
        }
    }
}

/// The bubble of the running G, or of the timer action this thread runs;
/// null outside both. Valid while that G runs (or that action).
fn current_ptr() -> *const Bubble {
    let g = m::current_g_ptr();
    if g.is_null() {
        return FIRING.with(Cell::get);
    }
    // SAFETY: the running G is alive while it runs; its bubble is fixed
    // for its life.
    unsafe { (*g).bubble().map_or(std::ptr::null(), Arc::as_ptr) }
}

/// The bubble of the running G, or of the timer action this thread runs.
pub(crate) fn current() -> Option<Arc<Bubble>> {
    let b = current_ptr();
    if b.is_null() {
        return None;
    }
    // SAFETY: every bubble lives in an `Arc`, kept alive by the running G
    // (or by `settle`, for the action it runs).
    unsafe {
        Arc::increment_strong_count(b);
        Some(Arc::from_raw(b))
    }
}

/// `f` of the caller's bubble, without taking a reference on it.
pub(crate) fn with_current<R>(f: impl FnOnce(&Bubble) -> R) -> Option<R> {
    let b = current_ptr();
    // SAFETY: see `current_ptr`; used while the caller runs.
    (!b.is_null()).then(|| f(unsafe { &*b }))
}

/// The bubble a G spawned now on `s` joins: the spawner's, if it runs in
/// a bubble of that runtime.
pub(crate) fn inherited(s: &Sched) -> Option<Arc<Bubble>> {
    let g = m::current_g_ptr();
    if g.is_null() {
        return None;
    }
    // SAFETY: as in `current`.
    inherited_from(unsafe { &*g }, s)
}

/// [`inherited`] with the spawning G `g` in hand.
#[inline]
pub(crate) fn inherited_from(g: &crate::g::G, s: &Sched) -> Option<Arc<Bubble>> {
    let b = g.bubble()?;
    std::ptr::eq(b.sched, s).then(|| b.clone())
}

/// The id of the caller's bubble; 0 outside any bubble. Channels and
/// sync primitives record it to know whether a wait on them is durable
/// and to refuse use from outside their bubble.
#[doc(hidden)]
pub fn current_bubble_id() -> u64 {
    with_current(|b| b.id).unwrap_or(0)
}

/// A pseudo-random number from the caller's bubble (seeded, so that a
/// bubble on one P replays), or `None` outside a bubble.
#[doc(hidden)]
pub fn bubble_rand() -> Option<u64> {
    with_current(Bubble::rand)
}

/// Panics: the caller used `what` of bubble `id` from outside it. Not
/// while the thread unwinds (a G of a deadlocked bubble dropped at
/// shutdown may close its channels from its destructors): a second panic
/// would abort the process.
#[cold]
#[track_caller]
#[doc(hidden)]
pub fn bubble_mismatch(id: u64, what: &str) {
    if std::thread::panicking() {
        return;
    }
    match current_bubble_id() {
        0 => panic!("{what} of synctest bubble {id} used outside the bubble"),
        other => panic!("{what} of synctest bubble {id} used from synctest bubble {other}"),
    }
}

/// Runs `f` in a new bubble with a fake clock and returns its value; see
/// the module documentation of `goro::synctest`. Must be called from a G
/// that is not in a bubble itself.
///
/// # Panics
/// - outside a G, or inside a bubble (bubbles do not nest);
/// - if every G of the bubble is durably blocked with no timer pending
///   (`deadlock`), naming the bubble and its Gs; if the main function had
///   returned, the message says so (Gs leaked out of it);
/// - with `f`'s own panic payload if `f` panics.
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run_with_seed(0, f)
}

/// [`run`] with the seed of the bubble's random choices (which arm a
/// `select!` with several ready arms takes). On one P a bubble's run is a
/// function of its seed; see the crate docs for what else decides order on
/// more Ps.
#[track_caller]
pub fn run_with_seed<F, T>(seed: u64, f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let Some(sched) = m::current_sched().filter(|_| m::in_goroutine()) else {
        panic!(
            "goro::synctest::run must be called from a goroutine: enter a runtime first \
             (`unsafe {{ goro::run(|| goro::synctest::run(..)) }}` or `Runtime::block_on`)"
        )
    };
    if current().is_some() {
        panic!("goro::synctest::run called inside a synctest bubble: bubbles do not nest");
    }
    let b = Arc::new(Bubble::new(Arc::as_ptr(&sched), seed));
    let b2 = b.clone();
    let main = move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        b2.main_returned(r.is_err());
        match r {
            Ok(v) => v,
            Err(p) => resume_unwind(p),
        }
    };
    let site = std::panic::Location::caller();
    let h = crate::goroutine::spawn_in(&sched, main, Some("synctest main".into()), None, site, Some(b.clone()))
        .unwrap_or_else(|e| panic!("goro::synctest::run: {e}"));
    let end = loop {
        {
            let mut st = lock(&b.st);
            if let Some(end) = st.end {
                break end;
            }
            st.owner = Some(current_unparker());
        }
        park_woken_by(WaitReason::SynctestRun, WokenBy::RuntimeOnly);
    };
    match end {
        End::Finished | End::MainPanicked => match h.join() {
            Ok(v) => v,
            Err(p) => resume_unwind(p),
        },
        End::Deadlock => {
            let main_returned = lock(&b.st).main_returned;
            let gs = crate::dump::goroutines_where(&sched, |g| {
                g.status() != GStatus::Dead && g.bubble().is_some_and(|x| Arc::ptr_eq(x, &b))
            });
            if main_returned {
                panic!(
                    "goro::synctest: the main function of bubble {} returned while goroutines of the bubble \
                     remain durably blocked (they leak out of it):\n\n{gs}",
                    b.id
                )
            }
            panic!("goro::synctest: deadlock: every goroutine of bubble {} is durably blocked:\n\n{gs}", b.id)
        }
    }
}

/// Waits until every other G of the caller's bubble is durably blocked
/// (Go's `synctest.Wait`).
///
/// # Panics
/// Outside a bubble, or if another G of the bubble is in `wait` already.
pub fn wait() {
    let Some(b) = current() else { panic!("goro::synctest::wait called outside a synctest bubble") };
    let released = Arc::new(AtomicBool::new(false));
    {
        let mut st = lock(&b.st);
        if st.waiter.is_some() {
            panic!("goro::synctest::wait called from two goroutines of bubble {} at once", b.id);
        }
        if st.end.is_some() {
            return;
        }
        st.waiter = Some((current_unparker(), released.clone()));
    }
    while !released.load(Ordering::Acquire) {
        park_woken_by(WaitReason::SynctestWait, WokenBy::Bubble);
        if lock(&b.st).end.is_some() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timer::TimerAction;

    /// Cancelled timers leave the heap once they are more than 64 and more
    /// than half of it (as a P's heap does), not before.
    #[test]
    fn cancelled_timers_are_compacted_past_half_the_heap() {
        // (timers, cancels before the compaction): half of a big heap; 65
        // of a small one (more than 64).
        for (n, at) in [(200, 101), (100, 65)] {
            let b = Bubble::new(std::ptr::null(), 1);
            let entries: Vec<_> = (0..n)
                .map(|_| {
                    let e = TimerEntry::new(TimerAction::Call(Box::new(|| {})), 0);
                    b.add_timer(Instant::now() + Duration::from_secs(3600), e.clone());
                    e
                })
                .collect();
            for (i, e) in entries.iter().take(at + 5).enumerate() {
                drop(e.claim_cancelled());
                b.timer_cancelled();
                let len = lock(&b.st).timers.len();
                let cancelled = i + 1;
                let want = if cancelled < at { n } else { n - at };
                assert_eq!(len, want, "{n} timers, {cancelled} cancelled");
            }
        }
    }

    /// The bubble's random sequence is xorshift64's: full period, never 0.
    #[test]
    fn the_random_sequence_does_not_degenerate() {
        let b = Bubble::new(std::ptr::null(), 7);
        let v: Vec<u64> = (0..1000).map(|_| b.rand()).collect();
        assert!(v.iter().all(|&x| x != 0 && x != u64::MAX));
        let distinct: std::collections::HashSet<_> = v.iter().collect();
        assert_eq!(distinct.len(), 1000);
        // Every bit flips about half the time.
        for bit in 0..64 {
            let ones = v.iter().filter(|&&x| x >> bit & 1 == 1).count();
            assert!((400..600).contains(&ones), "bit {bit} set in {ones} of 1000");
        }
    }
}
