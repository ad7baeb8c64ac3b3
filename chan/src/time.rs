//! Timers as channels: Go's `time.After`, `time.Tick`/`NewTicker` and
//! `time.Timer`, on the runtime's per-P timer heaps.
//!
//! A timer delivers the current `Instant` on a channel of capacity 1 with a
//! non-blocking send (Go's `sendTime`): a reader that is slow misses ticks
//! instead of queueing them.
//!
//! ```
//! use goro_chan::{select, time};
//! use std::time::Duration;
//! let ticker = time::tick(Duration::from_millis(2));
//! let deadline = time::after(Duration::from_millis(30));
//! let mut ticks = 0;
//! loop {
//!     select! {
//!         recv(ticker) -> _ => ticks += 1,
//!         recv(deadline) -> _ => break,
//!     }
//! }
//! assert!(ticks >= 1);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goro_runtime::internals::{
    add_real_timer, add_timer, bubble_mismatch, current_bubble_id, TimerAction, TimerHandle,
};
use goro_runtime::{deadline_after, deadline_from};

use crate::chan::{AsChan, Chan};

/// A channel that receives the time once, after `d`.
#[must_use = "the time arrives on the returned channel"]
pub fn after(d: Duration) -> Chan<Instant> {
    Timer::new(d).into_chan()
}

/// A ticker that delivers the time every `d`.
#[must_use = "dropping the ticker stops it"]
pub fn tick(d: Duration) -> Ticker {
    Ticker::new(d)
}

fn fire(ch: &Chan<Instant>) {
    let _ = ch.try_send(goro_runtime::now());
}

/// Panics unless the caller runs in the bubble of the timer in `slot`
/// (if any), after letting go of the slot's lock.
#[track_caller]
fn check_bubble(slot: &Mutex<Option<TimerHandle>>, what: &str) {
    let b = slot.lock().unwrap().as_ref().map_or(0, TimerHandle::bubble_id);
    if b != 0 && b != current_bubble_id() {
        bubble_mismatch(b, what);
    }
}

/// A one-shot timer (Go's `time.Timer`): its channel receives the time when
/// it fires.
#[must_use = "dropping the timer stops it"]
pub struct Timer {
    ch: Chan<Instant>,
    handle: Mutex<Option<TimerHandle>>,
    /// The synctest bubble the timer was made in (0: none): its clock for
    /// the timer's whole life, as in Go.
    bubble: u64,
}

impl Timer {
    /// A timer that fires after `d`.
    pub fn new(d: Duration) -> Timer {
        let t = Timer { ch: Chan::new(1), handle: Mutex::new(None), bubble: current_bubble_id() };
        *t.handle.lock().unwrap() = Some(t.arm(d));
        t
    }

    /// A new pending timer for this timer's channel, due after `d`.
    fn arm(&self, d: Duration) -> TimerHandle {
        let ch = self.ch.clone();
        let action = TimerAction::Call(Box::new(move || fire(&ch)));
        if self.bubble == 0 {
            // Made outside any bubble: real time, also when reset inside one.
            add_real_timer(Instant::now() + d.min(goro_runtime::NEVER), action)
        } else {
            add_timer(deadline_after(d), action)
        }
    }

    /// The channel the time is delivered on.
    pub fn chan(&self) -> &Chan<Instant> {
        &self.ch
    }

    fn into_chan(self) -> Chan<Instant> {
        // The pending timer keeps its own handle on the channel.
        self.handle.lock().unwrap().take();
        self.ch.clone()
    }

    /// Stops the timer. Returns `true` if that prevented it from firing.
    ///
    /// # Panics
    /// If the timer was created in a synctest bubble and the caller runs
    /// outside it.
    #[track_caller]
    pub fn stop(&self) -> bool {
        check_bubble(&self.handle, "timer");
        self.handle.lock().unwrap().take().is_some_and(|h| h.cancel())
    }

    /// Re-arms the timer to fire after `d`, on the clock it was made on (a
    /// synctest bubble's, or real time). Returns `true` if it was still
    /// pending (Go's `Reset`). A value already delivered stays in the channel.
    /// Atomic with respect to other `reset`s and `stop`s: after a `stop`
    /// that follows any number of concurrent resets, the timer fires no more
    /// (a firing already under way when `stop` is called may still deliver
    /// its value, as in Go).
    #[track_caller]
    pub fn reset(&self, d: Duration) -> bool {
        check_bubble(&self.handle, "timer");
        // Arm first (`add_timer` may switch the G: no lock is held across
        // it), then swap the handle in and cancel the one it replaces. Every
        // handle that leaves the slot is cancelled by whoever took it out,
        // so none is lost, whatever the interleaving of resets and stops.
        let new = self.arm(d);
        let old = self.handle.lock().unwrap().replace(new);
        old.is_some_and(|h| h.cancel())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // A dropped Timer's channel is unreachable; stop it so the heap does
        // not keep it (`after` detaches its handle first). Allowed from
        // anywhere, also outside the timer's bubble.
        if let Some(h) = self.handle.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            h.cancel();
        }
    }
}

impl AsChan<Instant> for Timer {
    fn as_chan(&self) -> &Chan<Instant> {
        &self.ch
    }
}

struct TickState {
    ch: Chan<Instant>,
    period: Duration,
    stopped: AtomicBool,
    handle: Mutex<Option<TimerHandle>>,
}

fn arm_tick(st: &Arc<TickState>, when: Instant) {
    let st2 = st.clone();
    let h = add_timer(
        when,
        TimerAction::Call(Box::new(move || {
            if st2.stopped.load(Ordering::Acquire) {
                return;
            }
            fire(&st2.ch);
            arm_tick(&st2, next_tick(when, goro_runtime::now(), st2.period));
        })),
    );
    let mut slot = st.handle.lock().unwrap();
    if st.stopped.load(Ordering::Acquire) {
        h.cancel();
    } else {
        *slot = Some(h);
    }
}

/// The tick after the one due at `when` that fired at `now`: the first
/// instant of the period's grid (`when + k * period`) after `now`, so a
/// ticker that fell behind skips the ticks it missed instead of bunching
/// them.
fn next_tick(when: Instant, now: Instant, period: Duration) -> Instant {
    let next = deadline_from(when, period);
    if next > now {
        return next;
    }
    let behind = now.duration_since(when).as_nanos() % period.as_nanos().max(1);
    now + period - Duration::from_nanos(behind as u64)
}

/// Delivers the time every period (Go's `time.Ticker`). Dropping it stops it.
#[must_use = "dropping the ticker stops it"]
pub struct Ticker {
    st: Arc<TickState>,
}

impl Ticker {
    /// # Panics
    /// If `period` is zero (as Go's `NewTicker` does).
    pub fn new(period: Duration) -> Ticker {
        assert!(!period.is_zero(), "non-positive interval for goro::time::tick");
        let st =
            Arc::new(TickState { ch: Chan::new(1), period, stopped: AtomicBool::new(false), handle: Mutex::new(None) });
        arm_tick(&st, deadline_after(period));
        Ticker { st }
    }

    /// The channel the ticks arrive on (capacity 1: a slow reader drops ticks, as in Go).
    pub fn chan(&self) -> &Chan<Instant> {
        &self.st.ch
    }

    /// Stops the ticker; no more ticks are sent.
    ///
    /// # Panics
    /// If the ticker was created in a synctest bubble and the caller runs
    /// outside it.
    #[track_caller]
    pub fn stop(&self) {
        check_bubble(&self.st.handle, "ticker");
        self.stop_inner();
    }

    fn stop_inner(&self) {
        self.st.stopped.store(true, Ordering::Release);
        if let Some(h) = self.st.handle.lock().unwrap().take() {
            h.cancel();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

impl AsChan<Instant> for Ticker {
    fn as_chan(&self) -> &Chan<Instant> {
        &self.st.ch
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker").field("period", &self.st.period).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::next_tick;
    use std::time::{Duration, Instant};

    #[test]
    fn a_late_tick_skips_to_the_next_instant_of_the_grid() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // On time: one period later.
        assert_eq!(next_tick(t0, t0, ms(10)), t0 + ms(10));
        assert_eq!(next_tick(t0, t0 + ms(5), ms(10)), t0 + ms(10));
        // Late: the first grid instant after now; missed ticks are skipped.
        assert_eq!(next_tick(t0, t0 + ms(10), ms(10)), t0 + ms(20));
        assert_eq!(next_tick(t0, t0 + ms(35), ms(10)), t0 + ms(40));
        assert_eq!(next_tick(t0, t0 + ms(40), ms(10)), t0 + ms(50));
        assert_eq!(next_tick(t0, t0 + ms(12_345) + Duration::from_nanos(7), ms(1000)), t0 + ms(13_000));
    }
}
