//! A raw futex mutex (Drepper's three-state lock), the channel lock.
//!
//! Channels need a lock that `select` can take on several channels of
//! different element types at once and release in any order, which a guard
//! API cannot express; Go's runtime `mutex` plays this role in `chan.go`.
//! Critical sections are a few dozen instructions, so a short spin comes
//! before sleeping in the kernel.
//!
//! States: 0 unlocked, 1 locked, 2 locked with (possible) sleepers.

use std::sync::atomic::{AtomicU32, Ordering};

/// One word. (It had a cache line of its own while the buffer sat next to
/// it; a buffered channel's buffer is now a ring elsewhere, and the line
/// made every channel larger.)
pub(crate) struct RawLock {
    state: AtomicU32,
}

const SPINS: u32 = 16;
const MAX_BACKOFF: u32 = 256;

impl RawLock {
    pub const fn new() -> Self {
        RawLock { state: AtomicU32::new(0) }
    }

    #[inline]
    pub fn lock(&self) {
        if self.state.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self) {
        // Spin with exponential backoff while the holder runs its few
        // instructions, then sleep in the kernel. The backoff grows long
        // (up to 256 pauses): moving the lock's line between CPUs costs
        // more than the critical section, so under contention it pays to
        // let the holder take the lock again a few times (prodcons: 33 ns
        // per message with a cap of 64, 30 with 256, 100+ with no backoff).
        let mut backoff = 1;
        for _ in 0..SPINS {
            if self.state.load(Ordering::Relaxed) == 0
                && self.state.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                return;
            }
            for _ in 0..backoff {
                std::hint::spin_loop();
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        while self.state.swap(2, Ordering::Acquire) != 0 {
            futex_wait(&self.state, 2);
        }
    }

    #[inline]
    pub fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) == 2 {
            futex_wake(&self.state);
        }
    }
}

fn futex_wait(a: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 we borrow; the kernel only
    // reads it. Spurious returns are handled by the caller's loop.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            a.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wake(a: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid u32; wakes at most one sleeper.
    unsafe {
        libc::syscall(libc::SYS_futex, a.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::RawLock;
    use std::sync::Arc;

    struct Shared {
        lock: RawLock,
        n: std::cell::UnsafeCell<u64>,
    }
    // SAFETY: `n` is only touched with `lock` held.
    unsafe impl Sync for Shared {}

    #[test]
    fn lock_excludes_across_threads() {
        let s = Arc::new(Shared { lock: RawLock::new(), n: 0.into() });
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        s.lock.lock();
                        // SAFETY: we hold the lock.
                        unsafe { *s.n.get() += 1 };
                        s.lock.unlock();
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        // SAFETY: all threads are joined.
        assert_eq!(unsafe { *s.n.get() }, 400_000);
    }

    /// Waiters that spun out and sleep in the futex are woken by the
    /// unlock (each in turn), not left asleep.
    #[test]
    fn sleeping_waiters_are_woken() {
        let s = Arc::new(Shared { lock: RawLock::new(), n: 0.into() });
        s.lock.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..2 {
            let (s, tx) = (s.clone(), tx.clone());
            std::thread::spawn(move || {
                s.lock.lock();
                // SAFETY: we hold the lock.
                unsafe { *s.n.get() += 1 };
                s.lock.unlock();
                tx.send(()).unwrap();
            });
        }
        // A waiter marks the lock contended (2) just before it sleeps.
        let start = std::time::Instant::now();
        while s.lock.state.load(std::sync::atomic::Ordering::Relaxed) != 2 {
            assert!(start.elapsed() < std::time::Duration::from_secs(30), "no waiter went to sleep");
            std::thread::yield_now();
        }
        s.lock.unlock();
        for _ in 0..2 {
            rx.recv_timeout(std::time::Duration::from_secs(30)).expect("a sleeping waiter was never woken");
        }
        s.lock.lock();
        // SAFETY: we hold the lock, and both waiters are done.
        assert_eq!(unsafe { *s.n.get() }, 2);
        s.lock.unlock();
    }
}
