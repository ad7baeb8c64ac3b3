//! The poller hook: where an M with nothing to run blocks, and what interrupts
//! it.
//!
//! One M at a time (the "poller M") blocks in `Poller::poll` with the nearest
//! timer as its timeout; other idle Ms park on their own parkers. The facade
//! installs goro-netpoll's mio poller here (`RuntimeBuilder::poller`), so the
//! runtime does not depend on the network crate. Without one, [`ParkPoller`]
//! just sleeps until woken or until the timeout.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use crate::clock::Clock;

/// What idle Ms block in when no G is runnable: the runtime's own parker
/// ([`ParkPoller`]) or an I/O poller (`goro::net` installs its epoll one).
pub trait Poller: Send + Sync + 'static {
    /// Blocks up to `timeout` (`None`: until woken; `Some(ZERO)`: not at all)
    /// and makes runnable the Gs whose I/O is ready (through their
    /// `Unparker`s). Returns how many it readied.
    fn poll(&self, timeout: Option<Duration>) -> usize;

    /// Interrupts a blocked `poll`, or makes the next one return at once.
    fn wake(&self);

    /// Whether anything is registered, so that a non-blocking poll in
    /// `findrunnable` is worth its system call.
    fn has_waiters(&self) -> bool {
        false
    }
}

/// The default poller: a condition variable with a wake flag.
#[derive(Default)]
pub struct ParkPoller {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Poller for ParkPoller {
    fn poll(&self, timeout: Option<Duration>) -> usize {
        let mut woken = self.woken.lock().unwrap();
        match timeout {
            Some(d) if d.is_zero() => {}
            Some(d) => {
                if !*woken {
                    woken = self.cv.wait_timeout(woken, d).unwrap().0;
                }
            }
            None => {
                while !*woken {
                    woken = self.cv.wait(woken).unwrap();
                }
            }
        }
        *woken = false;
        0
    }

    fn wake(&self) {
        *self.woken.lock().unwrap() = true;
        self.cv.notify_one();
    }
}

/// The poller of type `P` of the runtime the caller runs on (the global
/// runtime outside any), installing the one `make` builds if the runtime has
/// none yet. goro-netpoll calls this on first use of a socket, so runtimes
/// that do no I/O never open an epoll instance.
///
/// # Panics
/// If the runtime already has an installed poller of another type.
pub fn runtime_poller<P: Poller>(make: impl FnOnce() -> Arc<P>) -> Arc<P> {
    let sched = crate::m::current_sched().unwrap_or_else(crate::runtime::global_sched);
    let mut make = Some(make);
    let mut mk = || {
        let p = (make.take().expect("called once"))();
        let as_poller: Arc<dyn Poller> = p.clone();
        let as_any: Arc<dyn Any + Send + Sync> = p;
        (as_poller, as_any)
    };
    let any = sched.poller.install(&mut mk);
    any.downcast::<P>().unwrap_or_else(|_| panic!("goro: this runtime already has a poller of another type"))
}

/// A poller and its `Any` view, for `runtime_poller`'s downcast.
type Installed = (Arc<dyn Poller>, Arc<dyn Any + Send + Sync>);

/// A runtime's poller and who is in it: the one idle M that blocks in it
/// (the poller M) and when the network was last polled.
pub(crate) struct PollerSlot {
    /// The poller given at build time (`ParkPoller` by default).
    base: Box<dyn Poller>,
    /// A poller installed later, once (goro-netpoll installs its mio poller
    /// on first use of `goro::net`).
    installed: OnceLock<Installed>,
    /// When a poller was last polled (ns since the runtime's epoch), for
    /// sysmon's "poll the network if nobody has for 10 ms".
    last_poll: AtomicU64,
    /// An M is the poller M (blocks in `poll`).
    busy: AtomicBool,
    /// Deadline (ns since the epoch) the poller M sleeps until; 0 when no
    /// M is in the poller. A timer added before it wakes the poller.
    until: AtomicU64,
}

impl PollerSlot {
    pub(crate) fn new(base: Box<dyn Poller>) -> PollerSlot {
        PollerSlot {
            base,
            installed: OnceLock::new(),
            last_poll: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            until: AtomicU64::new(0),
        }
    }

    /// The poller idle Ms block in.
    pub(crate) fn get(&self) -> &dyn Poller {
        match self.installed.get() {
            Some((p, _)) => &**p,
            None => &*self.base,
        }
    }

    /// Installs a poller made by `make` unless one was installed already;
    /// returns the installed one.
    pub(crate) fn install(&self, make: &mut dyn FnMut() -> Installed) -> Arc<dyn Any + Send + Sync> {
        let mut fresh = false;
        let (_, any) = self.installed.get_or_init(|| {
            fresh = true;
            make()
        });
        if fresh {
            // An M blocked in the old poller must come back and use the new.
            self.base.wake();
        }
        any.clone()
    }

    /// Whether anything waits on the poller.
    pub(crate) fn has_waiters(&self) -> bool {
        self.get().has_waiters()
    }

    /// Whether an M is the poller M now.
    pub(crate) fn busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// A non-blocking poll if anything waits and no M blocks in the
    /// poller; how many Gs it readied.
    pub(crate) fn poll_now(&self, clock: &Clock) -> usize {
        if !self.has_waiters() || self.busy.load(Ordering::Relaxed) {
            return 0;
        }
        self.last_poll.store(clock.now(), Ordering::Relaxed);
        self.get().poll(Some(Duration::ZERO))
    }

    /// Polls without blocking if nobody has for `max_age` (sysmon; Go's
    /// "poll network if not polled for more than 10ms").
    pub(crate) fn poll_if_stale(&self, clock: &Clock, max_age: Duration) {
        let now = clock.now();
        if self.installed.get().is_some()
            && now.saturating_sub(self.last_poll.load(Ordering::Relaxed)) > max_age.as_nanos() as u64
            && self.has_waiters()
        {
            self.last_poll.store(now, Ordering::Relaxed);
            self.get().poll(Some(Duration::ZERO));
        }
    }

    /// Becomes the poller M, if no M is.
    pub(crate) fn try_enter(&self) -> bool {
        self.busy.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Publishes the deadline the poller M is about to sleep until.
    pub(crate) fn set_until(&self, deadline: u64) {
        self.until.store(deadline.max(1), Ordering::SeqCst);
    }

    /// The deadline the poller M sleeps until, 0 if no M sleeps in it.
    pub(crate) fn until(&self) -> u64 {
        self.until.load(Ordering::SeqCst)
    }

    /// The poller M is back (its poll returned at `now`).
    pub(crate) fn leave(&self, polled_at: Option<u64>) {
        if let Some(now) = polled_at {
            self.last_poll.store(now, Ordering::Relaxed);
        }
        self.until.store(0, Ordering::SeqCst);
        self.busy.store(false, Ordering::SeqCst);
    }

    /// Interrupts the poller M.
    pub(crate) fn wake(&self) {
        self.get().wake();
    }
}

impl std::fmt::Debug for ParkPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkPoller").finish_non_exhaustive()
    }
}
