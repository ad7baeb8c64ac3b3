//! The poller hook: where an M with nothing to run blocks, and what interrupts
//! it.
//!
//! One M at a time (the "poller M") blocks in `Poller::poll` with the nearest
//! timer as its timeout; other idle Ms park on their own parkers. The facade
//! installs goro-netpoll's mio poller here (`RuntimeBuilder::poller`), so the
//! runtime does not depend on the network crate. Without one, [`ParkPoller`]
//! just sleeps until woken or until the timeout.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

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
pub fn runtime_poller<P: Poller>(make: impl FnOnce() -> std::sync::Arc<P>) -> std::sync::Arc<P> {
    let sched = crate::m::current_sched().unwrap_or_else(crate::runtime::global_sched);
    let mut make = Some(make);
    let mut mk = || {
        let p = (make.take().expect("called once"))();
        let as_poller: std::sync::Arc<dyn Poller> = p.clone();
        let as_any: std::sync::Arc<dyn std::any::Any + Send + Sync> = p;
        (as_poller, as_any)
    };
    let any = sched.install_poller(&mut mk);
    any.downcast::<P>().unwrap_or_else(|_| panic!("goro: this runtime already has a poller of another type"))
}
