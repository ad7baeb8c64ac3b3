//! `Mutex<T>`: Go's `sync.Mutex` (normal and starvation modes) with a
//! std-shaped guard API. No poisoning: Go has none (like parking_lot).
//!
//! `state` bits: `LOCKED`, `STARVING`, and the number of queued waiters
//! above them. Fast path: one CAS 0 → LOCKED, and one CAS back. Slow path:
//! waiters queue FIFO and park.
//!
//! - Normal mode: unlock releases the lock and wakes the first waiter, which
//!   competes with newly arriving lockers (they usually win: they are
//!   already running). A woken waiter that loses goes back to the *front*.
//! - Starvation mode (a waiter waited over 1 ms): unlock hands the lock
//!   directly to the first waiter, and newcomers queue at the tail instead
//!   of grabbing it. The mode ends when the queue drains or a waiter got the
//!   lock after less than 1 ms.
//!
//! Invariant: `STARVING` is set only while `LOCKED` is (so a starving,
//! unlocked mutex with queued waiters cannot happen).
//!
//! Lost wake-ups: a locker adds itself to the waiter count with a CAS that
//! expects `LOCKED` to be set, so the unlock fast path (CAS `LOCKED` → 0)
//! fails once anyone has queued, and the slow path (under the queue lock)
//! sees the waiter.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use super::waitq::{WaitQueue, Waiter};
use crate::g::WaitReason;

const LOCKED: usize = 1;
const STARVING: usize = 2;
const WAITER: usize = 4;
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// The lock without the data: also the base of `Condvar`.
pub(crate) struct RawMutex {
    state: AtomicUsize,
    queue: StdMutex<WaitQueue>,
}

impl RawMutex {
    pub const fn new() -> Self {
        RawMutex { state: AtomicUsize::new(0), queue: StdMutex::new(WaitQueue::new()) }
    }

    pub fn try_lock(&self) -> bool {
        self.state.compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    #[inline]
    pub fn lock(&self) {
        if !self.try_lock() {
            self.lock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self) {
        crate::m::preempt_point();
        let mut requeue_front = false;
        let mut first_wait = None;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & (LOCKED | STARVING) == 0 {
                if self.state.compare_exchange(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return;
                }
                continue;
            }
            let w = Waiter::new(1);
            let since = *first_wait.get_or_insert(w.since);
            {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                // Count ourselves in only while the lock is held (or
                // starving), so unlock cannot miss us.
                let s = self.state.load(Ordering::Relaxed);
                if s & (LOCKED | STARVING) == 0 {
                    continue;
                }
                if self.state.compare_exchange(s, s + WAITER, Ordering::Relaxed, Ordering::Relaxed).is_err() {
                    continue;
                }
                if requeue_front {
                    q.push_front(w.clone());
                } else {
                    q.push_back(w.clone());
                }
            }
            w.wait(WaitReason::MutexLock);
            if w.handed_off() {
                return; // starvation mode: the lock is ours
            }
            requeue_front = true;
            if since.elapsed() > STARVATION_THRESHOLD {
                // Starving only while someone holds the lock (STARVING
                // implies LOCKED), else the next loop simply takes it.
                let mut s = self.state.load(Ordering::Relaxed);
                while s & LOCKED != 0 && s & STARVING == 0 {
                    match self.state.compare_exchange(s, s | STARVING, Ordering::Relaxed, Ordering::Relaxed) {
                        Ok(_) => break,
                        Err(v) => s = v,
                    }
                }
            }
        }
    }

    #[inline]
    pub fn unlock(&self) {
        if self.state.compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed).is_err() {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let w = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let Some(w) = q.pop_front() else {
                // Nobody queued: a woken waiter that lost the lock to a
                // newcomer marked it STARVING and has yet to queue again
                // (it will find the lock free). Release it.
                self.state.fetch_and(!(LOCKED | STARVING), Ordering::Release);
                return;
            };
            // One CAS decides, so a waiter cannot turn STARVING on between
            // our look at the state and our release of the lock.
            let last = q.is_empty() || w.since.elapsed() < STARVATION_THRESHOLD;
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                let (new, handoff) = if s & STARVING != 0 {
                    // Hand off: LOCKED stays set and becomes the waiter's.
                    (if last { (s - WAITER) & !STARVING } else { s - WAITER }, true)
                } else {
                    ((s - WAITER) & !LOCKED, false)
                };
                match self.state.compare_exchange(s, new, Ordering::Release, Ordering::Relaxed) {
                    Ok(_) => {
                        if handoff {
                            w.set_handed_off();
                        }
                        break;
                    }
                    Err(v) => s = v,
                }
            }
            w
        };
        w.grant();
    }

    /// Whether someone holds the lock now (may be stale at once).
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }
}

/// A mutual-exclusion lock for Gs (parks them) and threads (blocks them).
///
/// ```
/// use goro_runtime::sync::Mutex;
/// let m = Mutex::new(1);
/// *m.lock() += 1;
/// assert_eq!(*m.lock(), 2);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives exclusive access to `data`, as std's Mutex.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `v`.
    pub const fn new(v: T) -> Self {
        Mutex { raw: RawMutex::new(), data: UnsafeCell::new(v) }
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the G (or blocking the thread) while another holds it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard { m: self }
    }

    /// Locks if nobody holds the lock; never parks.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then_some(MutexGuard { m: self })
    }

    /// The value, through a unique borrow: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Whether someone holds the lock now (may be stale at once).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("Mutex").field("data", &&*g).finish(),
            None => f.write_str("Mutex { <locked> }"),
        }
    }
}

/// Holds the lock; unlocks on drop.
pub struct MutexGuard<'a, T: ?Sized> {
    m: &'a Mutex<T>,
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.m
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.m.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, exclusively.
        unsafe { &mut *self.m.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.m.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlocking_a_starving_mutex_nobody_queues_for_frees_it() {
        // What a holder finds when the woken waiter that marked the mutex
        // starving has not queued again yet: LOCKED | STARVING, no waiter.
        let m = RawMutex::new();
        m.state.store(LOCKED | STARVING, Ordering::Relaxed);
        m.unlock();
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
        assert!(m.try_lock());
    }

    #[test]
    fn the_state_counts_waiters_above_the_flags() {
        // Two waiters queued behind a holder (as `lock_slow` counts them):
        // each unlock hands the lock on and takes one off the count.
        let m = RawMutex::new();
        assert!(m.try_lock());
        let ws: Vec<_> = (0..2).map(|_| Waiter::new(1)).collect();
        for w in &ws {
            m.state.fetch_add(WAITER, Ordering::Relaxed);
            m.queue.lock().unwrap().push_back(w.clone());
        }
        m.unlock();
        assert!(ws[0].is_granted() && !ws[1].is_granted());
        // Normal mode: the lock was released for the woken one to race for.
        assert_eq!(m.state.load(Ordering::Relaxed), WAITER);
        assert!(!m.is_locked());
        // Taken again and starving: the next unlock hands the lock over
        // (LOCKED stays set, now the waiter's), and the mode ends with the
        // queue.
        m.state.store(WAITER | LOCKED | STARVING, Ordering::Relaxed);
        m.unlock();
        assert!(ws[1].is_granted() && ws[1].handed_off());
        assert_eq!(m.state.load(Ordering::Relaxed), LOCKED);
        m.unlock();
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn starvation_ends_when_a_waiter_got_the_lock_quickly_or_none_is_left() {
        // Queued: one that waited past the threshold, a fresh one, and
        // another old one; the mutex held and starving.
        let old = || Waiter::queued_at(std::time::Instant::now() - 10 * STARVATION_THRESHOLD);
        let (old1, old2) = (old(), old());
        // (Its wait ends in the future: under the threshold however slow the test.)
        let fresh = Waiter::queued_at(std::time::Instant::now() + Duration::from_secs(3600));
        let m = RawMutex::new();
        for w in [&old1, &fresh, &old2] {
            m.queue.lock().unwrap().push_back(w.clone());
        }
        m.state.store(LOCKED | STARVING | (3 * WAITER), Ordering::Relaxed);
        // The old waiter is handed the lock; others wait: still starving.
        m.unlock();
        assert!(old1.is_granted() && old1.handed_off());
        assert_eq!(m.state.load(Ordering::Relaxed), LOCKED | STARVING | (2 * WAITER));
        // The fresh one got it in under the threshold: the mode ends,
        // though a waiter is left.
        m.unlock();
        assert!(fresh.is_granted() && fresh.handed_off());
        assert_eq!(m.state.load(Ordering::Relaxed), LOCKED | WAITER);
        // Normal mode again: the lock is released for the last one to race for.
        m.unlock();
        assert!(old2.is_granted() && !old2.handed_off());
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
    }
}
