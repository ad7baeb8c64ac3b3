//! The runtime's clocks: nanoseconds since the runtime started, for timers,
//! wait times and statistics, and a coarse copy of it that sysmon refreshes,
//! for the wait times of dumps (one load instead of a clock read when a G
//! parks).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub(crate) struct Clock {
    /// When the runtime started: time zero of every nanosecond count.
    epoch: Instant,
    /// `now()` as sysmon last read it (good to its period, 20 µs to 10 ms).
    coarse: AtomicU64,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock { epoch: Instant::now(), coarse: AtomicU64::new(0) }
    }

    /// Nanoseconds since the epoch.
    pub(crate) fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The coarse clock.
    pub(crate) fn coarse_now(&self) -> u64 {
        self.coarse.load(Ordering::Relaxed)
    }

    /// Refreshes the coarse clock (sysmon, every round).
    pub(crate) fn tick_coarse(&self) {
        self.coarse.store(self.now(), Ordering::Relaxed);
    }

    /// `t` in ns since the epoch, saturating below `u64::MAX` (which means
    /// "no timer"): an `Instant` centuries away is still far away.
    pub(crate) fn nanos(&self, t: Instant) -> u64 {
        let ns = t.saturating_duration_since(self.epoch).as_nanos();
        ns.min(u128::from(u64::MAX - 1)) as u64
    }

    /// Time since the epoch.
    pub(crate) fn uptime(&self) -> std::time::Duration {
        self.epoch.elapsed()
    }
}
