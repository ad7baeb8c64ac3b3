//! Go's netpoller (`runtime/netpoll.go`, `netpoll_epoll.go`) on mio: one
//! `mio::Poll` per runtime, plugged into the scheduler as its `Poller`.
//!
//! Each socket registers once, edge-triggered, for reading and writing, and
//! gets a [`PollDesc`] (Go's `pollDesc`): a sticky "an edge came" flag and
//! at most one parked waiter per direction. The scheduler calls `poll`:
//! without blocking from `findrunnable` (any M, if some G waits on I/O),
//! blocking from the one idle "poller M" with the next timer as timeout,
//! and from sysmon when nobody polled for 10 ms. Readied Gs go to the global
//! queue of the runtime (the polling M holds no P, or the P it holds gets
//! them through `ready`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goro_runtime::{Poller, Unparker};
use mio::{Events, Interest, Poll, Registry, Token, Waker};

const WAKER: Token = Token(usize::MAX);

/// The readiness state of one registered socket.
pub(crate) struct PollDesc {
    pub token: Token,
    /// An edge arrived since the last wait consumed it (sticky hint: the
    /// operation is retried, and a spurious retry just returns WouldBlock).
    pub rready: AtomicBool,
    pub wready: AtomicBool,
    /// Sticky: the poller saw a hang-up, a half-close or an error. Such a
    /// socket stays readable/writable without further edges, so "known
    /// empty" shortcuts must not be trusted any more.
    pub closed: AtomicBool,
    /// The G (or thread) parked waiting to read / write.
    pub rwait: Mutex<Option<Unparker>>,
    pub wwait: Mutex<Option<Unparker>>,
}

impl PollDesc {
    pub fn ready(&self, read: bool) -> &AtomicBool {
        if read {
            &self.rready
        } else {
            &self.wready
        }
    }

    pub fn waiter(&self, read: bool) -> &Mutex<Option<Unparker>> {
        if read {
            &self.rwait
        } else {
            &self.wwait
        }
    }

    /// Marks the direction ready and wakes its waiter. Returns 1 if a
    /// waiter was woken.
    fn fire(&self, read: bool) -> usize {
        self.ready(read).store(true, Ordering::SeqCst);
        let w = self.waiter(read).lock().unwrap_or_else(|e| e.into_inner()).take();
        match w {
            Some(u) => {
                u.unpark_owned();
                1
            }
            None => 0,
        }
    }
}

/// The network poller of one runtime.
pub struct NetPoller {
    poll: Mutex<(Poll, Events)>,
    registry: Registry,
    waker: Waker,
    descs: Mutex<Slab>,
    /// Gs (or threads) parked on a socket right now.
    pub(crate) waiters: AtomicUsize,
    /// Sockets registered right now.
    registered: AtomicUsize,
    /// An M sleeps in a blocking poll (it holds `poll` until it returns).
    blocking: AtomicBool,
}

#[derive(Default)]
struct Slab {
    slots: Vec<Option<Arc<PollDesc>>>,
    free: Vec<usize>,
}

impl NetPoller {
    /// A poller with its own epoll instance (`goro::net` installs one per runtime on first use).
    pub fn new() -> std::io::Result<NetPoller> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        Ok(NetPoller {
            poll: Mutex::new((poll, Events::with_capacity(1024))),
            registry,
            waker,
            descs: Mutex::new(Slab::default()),
            waiters: AtomicUsize::new(0),
            registered: AtomicUsize::new(0),
            blocking: AtomicBool::new(false),
        })
    }

    /// The poller of the current runtime, created on first use.
    pub(crate) fn current() -> Arc<NetPoller> {
        goro_runtime::internals::runtime_poller(|| {
            Arc::new(NetPoller::new().unwrap_or_else(|e| panic!("goro: cannot create the network poller: {e}")))
        })
    }

    /// Registers `src` edge-triggered for reading and writing.
    pub(crate) fn register(&self, src: &mut impl mio::event::Source) -> std::io::Result<Arc<PollDesc>> {
        let pd = {
            let mut s = self.descs.lock().unwrap();
            let idx = s.free.pop().unwrap_or_else(|| {
                s.slots.push(None);
                s.slots.len() - 1
            });
            let pd = Arc::new(PollDesc {
                token: Token(idx),
                rready: AtomicBool::new(false),
                wready: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                rwait: Mutex::new(None),
                wwait: Mutex::new(None),
            });
            s.slots[idx] = Some(pd.clone());
            pd
        };
        if let Err(e) = self.registry.register(src, pd.token, Interest::READABLE | Interest::WRITABLE) {
            self.release(&pd);
            return Err(e);
        }
        self.registered.fetch_add(1, Ordering::Relaxed);
        Ok(pd)
    }

    pub(crate) fn deregister(&self, src: &mut impl mio::event::Source, pd: &Arc<PollDesc>) {
        let _ = self.registry.deregister(src);
        self.registered.fetch_sub(1, Ordering::Relaxed);
        self.release(pd);
        // Anyone still parked on it (a G being torn down) must not sleep forever.
        pd.fire(true);
        pd.fire(false);
    }

    fn release(&self, pd: &Arc<PollDesc>) {
        let mut s = self.descs.lock().unwrap();
        let i = pd.token.0;
        if s.slots.get(i).and_then(|x| x.as_ref()).is_some_and(|x| Arc::ptr_eq(x, pd)) {
            s.slots[i] = None;
            s.free.push(i);
        }
    }

    /// Sockets registered now.
    pub fn registered(&self) -> usize {
        self.registered.load(Ordering::Relaxed)
    }
}

impl NetPoller {
    /// The poll lock for a non-blocking poll, or `None` if an M sleeps in a
    /// blocking poll (it will hand out what arrives). Another non-blocking
    /// poll holds the lock for a few µs: wait that long rather than report
    /// nothing, or this P goes idle while events are pending and the M
    /// that finally polls them pays a futex wake-up to hand them out. With
    /// this, echo keeps both CPUs busy (80% busy and ~122k msgs/s before).
    fn try_lock_nonblocking(&self) -> Option<std::sync::MutexGuard<'_, (Poll, Events)>> {
        // Far longer than a non-blocking poll holds the lock; a bound so
        // that a poll which turns blocking under us cannot stall this P.
        const PATIENCE: Duration = Duration::from_micros(100);
        let start = std::time::Instant::now();
        let mut tries = 0u32;
        loop {
            tries = tries.wrapping_add(1);
            if tries & 63 == 0 && start.elapsed() > PATIENCE {
                return None;
            }
            match self.poll.try_lock() {
                Ok(g) => return Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => return Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {
                    if self.blocking.load(Ordering::SeqCst) {
                        return None;
                    }
                    std::hint::spin_loop();
                }
            }
        }
    }
}

impl Poller for NetPoller {
    fn poll(&self, timeout: Option<Duration>) -> usize {
        let mut guard = if timeout == Some(Duration::ZERO) {
            match self.try_lock_nonblocking() {
                Some(g) => g,
                None => return 0,
            }
        } else {
            self.blocking.store(true, Ordering::SeqCst);
            self.poll.lock().unwrap_or_else(|e| e.into_inner())
        };
        let (poll, events) = &mut *guard;
        let polled = poll.poll(events, timeout);
        if timeout != Some(Duration::ZERO) {
            // Only the blocking poller clears its flag: a non-blocking poll
            // that a blocking one is queued behind must leave it set.
            self.blocking.store(false, Ordering::SeqCst);
        }
        if let Err(e) = polled {
            if e.kind() != std::io::ErrorKind::Interrupted {
                eprintln!("goro: netpoll: {e}");
            }
            return 0;
        }
        let mut ready = Vec::new();
        {
            let s = self.descs.lock().unwrap();
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                if let Some(Some(pd)) = s.slots.get(ev.token().0) {
                    if ev.is_read_closed() || ev.is_write_closed() || ev.is_error() {
                        pd.closed.store(true, Ordering::SeqCst);
                    }
                    let r = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                    let w = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                    ready.push((pd.clone(), r, w));
                }
            }
        }
        drop(guard);
        let mut n = 0;
        for (pd, r, w) in ready {
            if r {
                n += pd.fire(true);
            }
            if w {
                n += pd.fire(false);
            }
        }
        n
    }

    fn wake(&self) {
        let _ = self.waker.wake();
    }

    fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::Relaxed) > 0
    }
}

impl std::fmt::Debug for NetPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPoller").finish_non_exhaustive()
    }
}
