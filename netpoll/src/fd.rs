//! `NetFd`: a non-blocking socket registered with the runtime's poller, and
//! the retry loop every operation goes through (Go's `internal/poll.FD`).
//!
//! An operation runs; on `WouldBlock` the G parks on the socket's
//! `PollDesc` (wait reason `IO wait`) until the poller sees an edge, or
//! until the operation's deadline (from `set_read_timeout` /
//! `set_write_timeout`, implemented with runtime timers) gives `TimedOut`.
//! Readers are serialized by a goro mutex, and so are writers, so at most
//! one reader and one writer wait per socket, as in Go.
//!
//! On a plain thread (outside any G) the wait is a `poll(2)` on the fd, so
//! the types behave like std's blocking ones.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use goro_runtime::internals::{park_until_real, preempt_point_in_runtime};
use goro_runtime::sync::Mutex;
use goro_runtime::{current_unparker, park, WaitReason};

use crate::poller::{NetPoller, PollDesc};

pub(crate) struct NetFd<S: mio::event::Source + AsRawFd> {
    io: S,
    pd: Arc<PollDesc>,
    poller: Arc<NetPoller>,
    rlock: Mutex<()>,
    wlock: Mutex<()>,
    /// The last operation in this direction proved the socket empty (read)
    /// or full (write): WouldBlock, or a short stream read/write. Only an
    /// edge seen after that can change it, so the next operation waits for
    /// the edge first instead of spending a system call on WouldBlock. Not
    /// trusted once the socket is half-closed or in error (`PollDesc::closed`):
    /// EOF stays readable without a new edge. Touched only under the
    /// direction's lock.
    rempty: std::sync::atomic::AtomicBool,
    wempty: std::sync::atomic::AtomicBool,
    timeouts: StdMutex<(Option<Duration>, Option<Duration>)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

impl<S: mio::event::Source + AsRawFd> NetFd<S> {
    pub fn new(mut io: S) -> io::Result<Self> {
        let poller = NetPoller::current();
        let pd = poller.register(&mut io)?;
        Ok(NetFd {
            io,
            pd,
            poller,
            rlock: Mutex::new(()),
            wlock: Mutex::new(()),
            rempty: std::sync::atomic::AtomicBool::new(false),
            wempty: std::sync::atomic::AtomicBool::new(false),
            timeouts: StdMutex::new((None, None)),
        })
    }

    pub fn io(&self) -> &S {
        &self.io
    }

    /// Runs `op` until it does not return `WouldBlock`, waiting for the
    /// socket in between.
    pub fn run<R>(&self, dir: Dir, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.run_stream(dir, usize::MAX, op, |_| 0)
    }

    /// `run` for a stream read or write of `len` bytes: a result shorter
    /// than `len` (bytes from `count`) proves the socket empty (or full).
    pub fn run_stream<R>(
        &self,
        dir: Dir,
        len: usize,
        mut op: impl FnMut(&S) -> io::Result<R>,
        count: impl Fn(&R) -> usize,
    ) -> io::Result<R> {
        // Whether we run in a G (else: a plain thread, blocking in poll(2)).
        let in_g = preempt_point_in_runtime().is_some();
        let _serial = match dir {
            Dir::Read => self.rlock.lock(),
            Dir::Write => self.wlock.lock(),
        };
        let read = dir == Dir::Read;
        let empty = if read { &self.rempty } else { &self.wempty };
        let ready = self.pd.ready(read);
        // Real time, also in a synctest bubble (whose clock stands still
        // while a G waits on a socket), as Go's socket deadlines.
        let deadline = self.timeout(dir).map(|d| goro_runtime::deadline_from(Instant::now(), d));
        loop {
            if in_g && empty.load(Ordering::Relaxed) && !self.pd.closed.load(Ordering::SeqCst) {
                // Known empty: only an edge since then can have changed it.
                if !ready.swap(false, Ordering::SeqCst) {
                    self.wait(in_g, dir, deadline)?;
                }
                empty.store(false, Ordering::Relaxed);
            } else {
                // This operation looks at the socket: edges so far are
                // covered by it.
                ready.store(false, Ordering::SeqCst);
            }
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if in_g {
                        empty.store(true, Ordering::Relaxed);
                    } else {
                        self.wait(in_g, dir, deadline)?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(v) => {
                    let n = count(&v);
                    if in_g && n > 0 && n < len {
                        empty.store(true, Ordering::Relaxed);
                    }
                    return Ok(v);
                }
                r => return r,
            }
        }
    }

    /// Parks until the poller reports an edge in `dir`, or `deadline`.
    pub fn wait(&self, in_g: bool, dir: Dir, deadline: Option<Instant>) -> io::Result<()> {
        if !in_g {
            return poll_fd(self.io.as_raw_fd(), dir, deadline);
        }
        let read = dir == Dir::Read;
        let ready = self.pd.ready(read);
        if ready.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        *self.pd.waiter(read).lock().unwrap_or_else(|e| e.into_inner()) = Some(current_unparker());
        self.poller.waiters.fetch_add(1, Ordering::Relaxed);
        // An edge between our op's WouldBlock and registering the waiter set
        // `ready` (the poller sets it before taking the waiter): then the
        // swap consumed it and we do not park.
        let mut timed_out = false;
        if !ready.swap(false, Ordering::SeqCst) {
            match deadline {
                None => park(WaitReason::IoWait),
                Some(d) => timed_out = !park_until_real(WaitReason::IoWait, d) && Instant::now() >= d,
            }
        }
        self.pd.waiter(read).lock().unwrap_or_else(|e| e.into_inner()).take();
        self.poller.waiters.fetch_sub(1, Ordering::Relaxed);
        if timed_out && !ready.swap(false, Ordering::SeqCst) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "goro: I/O deadline passed"));
        }
        ready.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn timeout(&self, dir: Dir) -> Option<Duration> {
        let t = self.timeouts.lock().unwrap_or_else(|e| e.into_inner());
        match dir {
            Dir::Read => t.0,
            Dir::Write => t.1,
        }
    }

    /// std's contract: `Some(ZERO)` is an error.
    pub fn set_timeout(&self, dir: Dir, d: Option<Duration>) -> io::Result<()> {
        if d == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        let mut t = self.timeouts.lock().unwrap_or_else(|e| e.into_inner());
        match dir {
            Dir::Read => t.0 = d,
            Dir::Write => t.1 = d,
        }
        Ok(())
    }

    pub fn get_timeout(&self, dir: Dir) -> Option<Duration> {
        self.timeout(dir)
    }
}

impl<S: mio::event::Source + AsRawFd> Drop for NetFd<S> {
    fn drop(&mut self) {
        self.poller.deregister(&mut self.io, &self.pd);
    }
}

/// The blocking wait of a plain thread.
fn poll_fd(fd: RawFd, dir: Dir, deadline: Option<Instant>) -> io::Result<()> {
    let events = match dir {
        Dir::Read => libc::POLLIN,
        Dir::Write => libc::POLLOUT,
    };
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "goro: I/O deadline passed"));
                }
                (d - now).as_millis().clamp(1, i32::MAX as u128) as i32
            }
        };
        let mut p = libc::pollfd { fd, events, revents: 0 };
        // SAFETY: one valid pollfd on our stack.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            return Ok(());
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Whether a non-blocking connect has completed, once the socket is
/// writable: a pending error, or a known peer; `WouldBlock` if not yet.
pub(crate) fn connect_done<A>(err: io::Result<Option<io::Error>>, peer: io::Result<A>) -> io::Result<()> {
    if let Some(e) = err? {
        return Err(e);
    }
    match peer {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e),
    }
}

/// Duplicates a socket fd (for `try_clone`).
pub(crate) fn dup(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd we own.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `n` is a fresh fd owned by no one else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(n) })
}

/// `Read` and `Write` for a stream type with a `fd: NetFd<_>` field, and
/// for shared references to it (like std's `&TcpStream`).
macro_rules! impl_stream_io {
    ($t:ty) => {
        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let len = buf.len();
                self.fd.run_stream($crate::fd::Dir::Read, len, |mut s| std::io::Read::read(&mut s, buf), |n| *n)
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.fd.run_stream(
                    $crate::fd::Dir::Write,
                    buf.len(),
                    |mut s| std::io::Write::write(&mut s, buf),
                    |n| *n,
                )
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}
pub(crate) use impl_stream_io;
