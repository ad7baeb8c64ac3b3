//! `TcpListener` and `TcpStream`: std's shape, parking the G on the poller
//! instead of blocking the M.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::time::Duration;

use crate::fd::{connect_done, dup, Dir, NetFd};

/// A TCP listening socket. Bound with `SO_REUSEADDR`, so a restarted server
/// does not fail on connections in TIME_WAIT. goro owns its non-blocking
/// mode.
///
/// An echo server and a client, each G parked on the poller while it waits:
///
/// ```
/// use goro_netpoll::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// let echoed = unsafe {
///     goro_runtime::run(|| {
///         let l = TcpListener::bind("127.0.0.1:0").unwrap();
///         let addr = l.local_addr().unwrap();
///         goro_runtime::go(move || {
///             let (mut c, _) = l.accept().unwrap();
///             let mut buf = [0u8; 5];
///             c.read_exact(&mut buf).unwrap();
///             c.write_all(&buf).unwrap();
///         });
///         let mut s = TcpStream::connect(addr).unwrap();
///         s.write_all(b"hello").unwrap();
///         let mut back = [0u8; 5];
///         s.read_exact(&mut back).unwrap();
///         back
///     })
/// };
/// assert_eq!(&echoed, b"hello");
/// ```
pub struct TcpListener {
    fd: NetFd<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to the first address of `addr` that works, with the system's
    /// largest listen backlog (`net.core.somaxconn`, as Go does: a burst of
    /// connects must not overflow std's and mio's 128).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let l = mio::net::TcpListener::bind(a)?;
            // Listening again on a listening socket sets its backlog (Linux).
            // SAFETY: `l` owns a valid listening socket.
            if unsafe { libc::listen(l.as_raw_fd(), max_backlog()) } != 0 {
                return Err(io::Error::last_os_error());
            }
            TcpListener::from_mio(l)
        })
    }

    fn from_mio(l: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener { fd: NetFd::new(l)? })
    }

    /// Waits for a connection (parks the G).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self.fd.run(Dir::Read, |l| l.accept())?;
        Ok((TcpStream::from_mio(s)?, a))
    }

    /// Accepted connections, forever (each `accept` result).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { l: self }
    }

    /// The local address (with the port the kernel chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.io().local_addr()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.io().take_error()
    }
}

/// The kernel's cap on listen backlogs, read once (Go's `maxListenerBacklog`).
fn max_backlog() -> libc::c_int {
    static MAX: std::sync::OnceLock<libc::c_int> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<libc::c_int>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(libc::SOMAXCONN)
    })
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.io().as_raw_fd()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener").field("addr", &self.local_addr().ok()).field("fd", &self.as_raw_fd()).finish()
    }
}

/// Iterator of `TcpListener::incoming`.
pub struct Incoming<'a> {
    l: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.l.accept().map(|(s, _)| s))
    }
}

/// A TCP connection.
pub struct TcpStream {
    fd: NetFd<mio::net::TcpStream>,
}

impl TcpStream {
    /// Connects to the first address of `addr` that accepts; the connect's
    /// completion is awaited on the poller.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, TcpStream::connect_one)
    }

    /// Connects with a deadline on the connection's establishment.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let s = TcpStream::from_mio(mio::net::TcpStream::connect(*addr)?)?;
        s.fd.set_timeout(Dir::Write, Some(timeout))?;
        s.finish_connect()?;
        s.fd.set_timeout(Dir::Write, None)?;
        Ok(s)
    }

    fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        let s = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?;
        s.finish_connect()?;
        Ok(s)
    }

    /// A non-blocking connect completes when the socket becomes writable:
    /// then either an error is pending or the peer address is known.
    fn finish_connect(&self) -> io::Result<()> {
        self.fd.run(Dir::Write, |s| connect_done(s.take_error(), s.peer_addr()))
    }

    fn from_mio(s: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream { fd: NetFd::new(s)? })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.io().peer_addr()
    }

    /// The local address (with the port the kernel chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.io().local_addr()
    }

    /// Shuts down the read half, the write half or both (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.io().shutdown(how)
    }

    /// Sets `TCP_NODELAY` (Nagle off when true).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.fd.io().set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.fd.io().nodelay()
    }

    /// Reads fail with `TimedOut` after `d` (Go's read deadline, re-armed
    /// per call). `None` waits forever; `Some(ZERO)` is an error, as in std.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Dir::Read, d)
    }

    /// Writes fail with `TimedOut` after `d`, as `set_read_timeout` for reads.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Dir::Write, d)
    }

    /// The read timeout, if set.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.fd.get_timeout(Dir::Read))
    }

    /// The write timeout, if set.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.fd.get_timeout(Dir::Write))
    }

    /// Reads without consuming.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.run(Dir::Read, |s| s.peek(buf))
    }

    /// Another handle to the same connection (a `dup`ed fd, registered on
    /// its own).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let fd = dup(self.as_raw_fd())?;
        // SAFETY: `fd` is a fresh, owned, non-blocking TCP socket fd.
        let std = unsafe { std::net::TcpStream::from_raw_fd(fd.into_raw_fd()) };
        TcpStream::from_mio(mio::net::TcpStream::from_std(std))
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.io().take_error()
    }
}

crate::fd::impl_stream_io!(TcpStream);

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.io().as_raw_fd()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

/// `addr`'s addresses. A host name is looked up with `getaddrinfo(3)`,
/// which blocks (DNS): the lookup runs as a `goro::syscall`, so that a slow
/// one hands the G's P to another M instead of holding it (an address
/// literal is parsed at once, and the syscall costs two stores).
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    goro_runtime::syscall(|| addr.to_socket_addrs().map(Iterator::collect))
}

/// Tries `f` on each address, returning the first success or the last error.
#[doc(hidden)]
pub fn each_addr<T>(addr: impl ToSocketAddrs, mut f: impl FnMut(SocketAddr) -> io::Result<T>) -> io::Result<T> {
    let mut last = None;
    for a in resolve(addr)? {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses")))
}

impl std::fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming").field("listener", &self.l).finish()
    }
}
