//! Timers: a min-heap per P, fired by the P's M in `schedule()`, and by the M
//! that sleeps for the whole runtime (the poller M, see `sched.rs`) when
//! every M is idle.
//!
//! A timer is an `Arc<TimerEntry>` with an atomic state: whoever moves it
//! from `PENDING` first (the firing M, or `cancel`) owns its action.
//! Cancelled entries stay in the heap until they come due or until more than
//! half of the heap is cancelled, when it is compacted (Go's `timerDeleted`).
//!
//! Invariant (no lost timer): after `add` stores the P's `timer_next`, it
//! reads `sched.poll_until`; the poller M stores `poll_until` before it reads
//! the `timer_next` of every P. Both sides use SeqCst, so either the poller
//! sees the new timer or `add` sees the poller and wakes it.

use std::cell::UnsafeCell;
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::g::WaitReason;
use crate::m;
use crate::p::P;
use crate::park::{self, Unparker};
use crate::sched::Sched;
use crate::stats::{Counters, SchedCounters};
use crate::synctest::{self, Bubble};

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;

/// What a timer does when it fires. Runs on a scheduler stack: it must not
/// block (a channel send from a timer must be non-blocking, as Go's
/// `sendTime`).
pub enum TimerAction {
    /// Readies the parked G.
    Wake(Unparker),
    /// Calls the function (non-blocking).
    Call(Box<dyn FnOnce() + Send>),
}

impl TimerAction {
    pub(crate) fn run(self) {
        match self {
            TimerAction::Wake(u) => u.unpark(),
            TimerAction::Call(f) => f(),
        }
    }
}

pub(crate) struct TimerEntry {
    state: AtomicU8,
    action: UnsafeCell<Option<TimerAction>>,
    /// The P whose heap holds the entry.
    p: usize,
}

// SAFETY: `action` is taken only by the thread that moved `state` out of
// PENDING, exactly once.
unsafe impl Sync for TimerEntry {}
// SAFETY: TimerAction is Send.
unsafe impl Send for TimerEntry {}

impl TimerEntry {
    pub(crate) fn new(action: TimerAction, p: usize) -> Arc<TimerEntry> {
        Arc::new(TimerEntry { state: AtomicU8::new(PENDING), action: UnsafeCell::new(Some(action)), p })
    }

    /// Not fired nor cancelled yet.
    pub(crate) fn pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == PENDING
    }

    /// Takes the action to run it, if nobody fired or cancelled it first.
    pub(crate) fn claim_fired(&self) -> Option<TimerAction> {
        self.claim(FIRED)
    }

    /// Takes the action to drop it, if nobody fired or cancelled it first.
    pub(crate) fn claim_cancelled(&self) -> Option<TimerAction> {
        self.claim(CANCELLED)
    }

    fn claim(&self, to: u8) -> Option<TimerAction> {
        if self.state.compare_exchange(PENDING, to, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // SAFETY: we won the CAS, so no one else touches `action`.
            unsafe { (*self.action.get()).take() }
        } else {
            None
        }
    }
}

pub(crate) struct HeapItem {
    pub(crate) when: u64,
    pub(crate) seq: u64,
    pub(crate) entry: Arc<TimerEntry>,
}

impl PartialEq for HeapItem {
    fn eq(&self, o: &Self) -> bool {
        (self.when, self.seq) == (o.when, o.seq)
    }
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for HeapItem {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (o.when, o.seq).cmp(&(self.when, self.seq))
    }
}

#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<HeapItem>,
    seq: u64,
    cancelled: usize,
}

impl TimerHeap {
    fn next(&self) -> u64 {
        self.heap.peek().map_or(u64::MAX, |t| t.when)
    }

    /// Adds an entry due at `when`; among entries due at the same time, the
    /// one added first comes out first.
    fn push(&mut self, when: u64, entry: Arc<TimerEntry>) {
        self.seq += 1;
        let seq = self.seq;
        self.heap.push(HeapItem { when, seq, entry });
    }

    /// One of the entries was cancelled: drop cancelled entries from the
    /// top, or, once more than 64 of them make up more than half the heap,
    /// all of them.
    fn note_cancelled(&mut self) {
        self.cancelled += 1;
        if self.cancelled > 64 && self.cancelled * 2 > self.heap.len() {
            self.compact();
        } else {
            self.clean_head();
        }
    }

    /// Drops cancelled entries from the top (Go's `cleanHead`), so that
    /// `next` is a timer that will fire: a P whose timers were all stopped
    /// has none (deadlock detection, the idle M's sleep).
    fn clean_head(&mut self) {
        while self.heap.peek().is_some_and(|t| !t.entry.pending()) {
            self.heap.pop();
            self.cancelled = self.cancelled.saturating_sub(1);
        }
    }

    fn compact(&mut self) {
        let items = std::mem::take(&mut self.heap).into_vec();
        self.heap = items.into_iter().filter(|t| t.entry.pending()).collect();
        self.cancelled = 0;
    }

    /// Removes every entry (shutdown), dropping the actions.
    pub fn clear(&mut self) {
        for t in self.heap.drain() {
            drop(t.entry.claim(CANCELLED));
        }
        self.cancelled = 0;
    }
}

/// A pending timer; `cancel` stops it.
pub struct TimerHandle {
    entry: Arc<TimerEntry>,
    home: Home,
}

/// Whose heap holds a timer.
enum Home {
    /// A P's heap of this runtime (`entry.p`).
    P(Arc<Sched>),
    /// A synctest bubble's heap (on its fake clock).
    Bubble(Arc<Bubble>),
}

impl TimerHandle {
    /// Stops the timer. Returns `true` if it had not fired yet (its action
    /// is dropped without running), `false` if it fired or was cancelled.
    pub fn cancel(&self) -> bool {
        match self.entry.claim(CANCELLED) {
            Some(action) => {
                drop(action);
                let sched = match &self.home {
                    Home::P(s) => s,
                    Home::Bubble(b) => {
                        b.timer_cancelled();
                        return true;
                    }
                };
                let p = &sched.ps[self.entry.p];
                if !m::holds_p_of(sched, self.entry.p) {
                    SchedCounters::bump(&sched.counters.lock_other_timers);
                }
                let mut heap = p.timers.lock().unwrap();
                heap.note_cancelled();
                // Only ever later: written when the top went (a line other
                // Ps read, so not rewritten with the same value).
                let next = heap.next();
                if next != p.timer_next.load(Ordering::Relaxed) {
                    p.timer_next.store(next, Ordering::SeqCst);
                }
                true
            }
            None => false,
        }
    }

    /// Whether the timer has fired.
    pub fn fired(&self) -> bool {
        self.entry.state.load(Ordering::Acquire) == FIRED
    }

    /// The synctest bubble whose clock the timer runs on (0: none).
    pub fn bubble_id(&self) -> u64 {
        match &self.home {
            Home::P(_) => 0,
            Home::Bubble(b) => b.id,
        }
    }
}

/// Adds a timer to P `p` (the caller's P when it has one: `own`).
pub(crate) fn add_timer_on(s: &Arc<Sched>, p: usize, own: bool, when: Instant, action: TimerAction) -> TimerHandle {
    let when = s.clock.nanos(when);
    let entry = TimerEntry::new(action, p);
    let pp = &s.ps[p];
    if !own {
        SchedCounters::bump(&s.counters.lock_other_timers);
    }
    {
        let mut heap = pp.timers.lock().unwrap();
        heap.push(when, entry.clone());
        pp.timer_next.store(heap.next(), Ordering::SeqCst);
    }
    s.timer_added(when);
    TimerHandle { entry, home: Home::P(s.clone()) }
}

/// Fires the due timers of P `pp`, at most `max` of them, earliest first.
/// Returns how many fired. Called by the M holding some P (not
/// necessarily `pp`); actions run after the heap lock is released.
///
/// `max` is the room left in the caller's local queue: the Gs the actions
/// wake go there, and a burst of due timers that overflowed it would send
/// woken Gs to the tail of the global queue, behind every G queued there
/// (100,000 fresh Gs in the `timers` workload: 100 ms and more). Timers
/// left due stay in the heap, in due order, with `timer_next` still due:
/// the owner P runs them at its next schedule, which frees a slot (or
/// another P does, idle or at its periodic look at the others' timers).
pub(crate) fn run_timers(pp: &P, now: u64, counters: &Counters, max: usize) -> usize {
    if pp.timer_next.load(Ordering::SeqCst) > now || max == 0 {
        return 0;
    }
    let mut due = Vec::new();
    {
        let mut heap = pp.timers.lock().unwrap();
        while let Some(top) = heap.heap.peek() {
            if top.when > now || due.len() == max {
                break;
            }
            let item = heap.heap.pop().expect("peeked");
            match item.entry.claim(FIRED) {
                Some(a) => due.push(a),
                None => heap.cancelled = heap.cancelled.saturating_sub(1),
            }
        }
        heap.clean_head();
        pp.timer_next.store(heap.next(), Ordering::SeqCst);
    }
    let n = due.len();
    Counters::add(&counters.timers_fired, n as u64);
    for a in due {
        a.run();
    }
    n
}

/// The earliest timer of any P, in ns since the epoch.
pub(crate) fn next_timer(ps: &[P]) -> u64 {
    ps.iter().map(|p| p.timer_next.load(Ordering::SeqCst)).min().unwrap_or(u64::MAX)
}

/// Runs `action` at `when` on the current runtime (or the global one when
/// called from a plain thread); inside a synctest bubble, at `when` on the
/// bubble's clock.
pub fn add_timer(when: Instant, action: TimerAction) -> TimerHandle {
    if let Some(b) = synctest::current() {
        let entry = TimerEntry::new(action, 0);
        b.add_timer(when, entry.clone());
        return TimerHandle { entry, home: Home::Bubble(b) };
    }
    add_real_timer(when, action)
}

/// [`add_timer`] on the real clock, also inside a synctest bubble: for
/// what waits on the world outside the bubble (socket deadlines).
pub fn add_real_timer(when: Instant, action: TimerAction) -> TimerHandle {
    let (sched, p, own) = m::current_sched_and_p();
    let h = add_timer_on(&sched, p, own, when, action);
    m::back_to_user();
    h
}

/// The current time: `Instant::now()`, or inside a synctest bubble the
/// bubble's clock, which moves only when every G of the bubble is durably
/// blocked. Every deadline in goro is measured against it.
pub fn now() -> Instant {
    synctest::with_current(Bubble::now).unwrap_or_else(Instant::now)
}

/// The wall-clock time: `SystemTime::now()`, or inside a synctest bubble
/// the bubble's clock, which starts at 2000-01-01 00:00:00 UTC.
pub fn system_now() -> SystemTime {
    synctest::with_current(Bubble::system_now).unwrap_or_else(SystemTime::now)
}

/// The longest wait goro arms a timer for: a duration past it means
/// "never" (about a century; `Duration::MAX` saturates to it instead of
/// overflowing `Instant` or the timer heap's nanosecond clock).
pub const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `Instant::now() + d`, saturating at [`NEVER`] from now: every timeout in
/// goro goes through this, so that any `Duration` is a valid timeout.
pub fn deadline_after(d: Duration) -> Instant {
    deadline_from(now(), d)
}

/// `t + d`, saturating at [`NEVER`] after `t`.
pub fn deadline_from(t: Instant, d: Duration) -> Instant {
    t + d.min(NEVER)
}

/// Puts the current G to sleep for `d` (at least; timers fire when an M gets
/// to them). Outside a G, sleeps the OS thread. Durations past [`NEVER`]
/// sleep as long as that.
pub fn sleep(d: Duration) {
    sleep_until(deadline_after(d))
}

/// Sleeps until `deadline`.
pub fn sleep_until(deadline: Instant) {
    if !m::in_goroutine() {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return;
    }
    m::preempt_point();
    if deadline <= now() {
        return;
    }
    let t = add_timer(deadline, TimerAction::Wake(park::current_unparker()));
    // In a bubble only the bubble's clock ends the sleep: a durable wait.
    let by = if t.bubble_id() != 0 { park::WokenBy::Bubble } else { park::WokenBy::AnyThread };
    while !t.fired() {
        park::park_woken_by(WaitReason::Sleep, by);
    }
}

impl std::fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerHandle").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TimerAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimerAction::Wake(_) => "TimerAction::Wake",
            TimerAction::Call(_) => "TimerAction::Call",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Arc<TimerEntry> {
        TimerEntry::new(TimerAction::Call(Box::new(|| {})), 0)
    }

    /// Pops everything, returning the entries' `when`s in order.
    fn drain(h: &mut TimerHeap) -> Vec<u64> {
        std::iter::from_fn(|| h.heap.pop().map(|t| t.when)).collect()
    }

    #[test]
    fn earliest_first_then_in_the_order_added() {
        let mut h = TimerHeap::default();
        let es: Vec<_> = (0..4).map(|_| entry()).collect();
        for (when, e) in [30, 10, 10, 20].into_iter().zip(&es) {
            h.push(when, e.clone());
        }
        assert_eq!(h.next(), 10);
        let order: Vec<_> = std::iter::from_fn(|| h.heap.pop().map(|t| t.entry)).collect();
        let pos = |e: &Arc<TimerEntry>| es.iter().position(|x| Arc::ptr_eq(x, e)).unwrap();
        assert_eq!(order.iter().map(pos).collect::<Vec<_>>(), [1, 2, 3, 0]);
        assert_eq!(h.next(), u64::MAX);
    }

    #[test]
    fn a_cancelled_top_leaves_at_once_and_the_next_is_live() {
        let mut h = TimerHeap::default();
        let es: Vec<_> = (0..3).map(|_| entry()).collect();
        for (when, e) in [10, 20, 30].into_iter().zip(&es) {
            h.push(when, e.clone());
        }
        // Cancelled below the top: stays until it reaches the top.
        assert!(es[1].claim_cancelled().is_some());
        h.note_cancelled();
        assert_eq!((h.heap.len(), h.next()), (3, 10));
        assert!(es[0].claim_cancelled().is_some());
        h.note_cancelled();
        assert_eq!((h.heap.len(), h.next(), h.cancelled), (1, 30, 0));
        assert!(es[2].pending());
    }

    /// A heap of `live` entries due at even times (the top, at 0, is
    /// live: only compaction removes entries below it) and `dead` ones at
    /// odd times, to be cancelled.
    fn live_and_dead(live: usize, dead: usize) -> (TimerHeap, Vec<Arc<TimerEntry>>, Vec<Arc<TimerEntry>>) {
        let mut h = TimerHeap::default();
        let live: Vec<_> = (0..live).map(|_| entry()).collect();
        let dead: Vec<_> = (0..dead).map(|_| entry()).collect();
        for (i, e) in live.iter().enumerate() {
            h.push(i as u64 * 2, e.clone());
        }
        for (i, e) in dead.iter().enumerate() {
            h.push(i as u64 * 2 + 1, e.clone());
        }
        (h, live, dead)
    }

    fn cancel_all(h: &mut TimerHeap, es: &[Arc<TimerEntry>]) {
        for e in es {
            assert!(e.claim_cancelled().is_some());
            h.note_cancelled();
        }
    }

    #[test]
    fn more_than_64_cancelled_and_over_half_the_heap_are_compacted() {
        let (mut h, live, dead) = live_and_dead(70, 70);
        // 64 cancelled of 140: not yet (needs more than 64).
        cancel_all(&mut h, &dead[..64]);
        assert_eq!((h.heap.len(), h.cancelled), (140, 64));
        // 65..=70 cancelled of 140: still at most half.
        cancel_all(&mut h, &dead[64..]);
        assert_eq!((h.heap.len(), h.cancelled), (140, 70));
        // One live one more: 71 of 140 is over half; only live ones stay.
        cancel_all(&mut h, &live[69..]);
        assert_eq!((h.heap.len(), h.cancelled), (69, 0));
        assert_eq!(drain(&mut h), (0..69).map(|i| i * 2).collect::<Vec<u64>>());
    }

    #[test]
    fn at_most_64_cancelled_are_not_compacted_even_over_half() {
        let (mut h, _live, dead) = live_and_dead(36, 65);
        cancel_all(&mut h, &dead[..64]);
        assert_eq!((h.heap.len(), h.cancelled), (101, 64));
        cancel_all(&mut h, &dead[64..]);
        assert_eq!((h.heap.len(), h.cancelled), (36, 0));
    }

    #[test]
    fn handles_and_actions_say_what_they_are() {
        assert_eq!(format!("{:?}", TimerAction::Call(Box::new(|| {}))), "TimerAction::Call");
        assert_eq!(format!("{:?}", TimerAction::Wake(park::current_unparker())), "TimerAction::Wake");
        // From a plain thread: a timer of the global runtime.
        let h = add_timer(deadline_after(Duration::from_secs(3600)), TimerAction::Call(Box::new(|| {})));
        assert_eq!(format!("{h:?}"), "TimerHandle { .. }");
        assert!(h.cancel());
    }

    #[test]
    fn clear_drops_every_action() {
        let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        struct Count(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for Count {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let mut h = TimerHeap::default();
        let es: Vec<_> = (0..3)
            .map(|_| {
                let c = Count(dropped.clone());
                TimerEntry::new(TimerAction::Call(Box::new(move || drop(c))), 0)
            })
            .collect();
        for (i, e) in es.iter().enumerate() {
            h.push(i as u64, e.clone());
        }
        h.clear();
        assert_eq!((h.heap.len(), dropped.load(Ordering::SeqCst)), (0, 3));
        assert!(es.iter().all(|e| !e.pending()));
    }
}
