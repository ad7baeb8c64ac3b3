//! `UnixListener` and `UnixStream`: std's shape, parking the G on the poller.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::path::Path;
use std::time::Duration;

use crate::fd::{connect_done, dup, Dir, NetFd};

/// A Unix-domain listening socket.
pub struct UnixListener {
    fd: NetFd<mio::net::UnixListener>,
}

impl UnixListener {
    /// Listens on the socket file `path` (which must not exist).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        Ok(UnixListener { fd: NetFd::new(mio::net::UnixListener::bind(path)?)? })
    }

    /// Waits for a connection, parking the G (not the thread).
    pub fn accept(&self) -> io::Result<(UnixStream, std::os::unix::net::SocketAddr)> {
        let (s, a) = self.fd.run(Dir::Read, |l| l.accept())?;
        Ok((UnixStream { fd: NetFd::new(s)? }, a))
    }

    /// Accepted connections, forever (each `accept` result).
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        self.fd.io().local_addr()
    }
}

/// A Unix-domain stream.
pub struct UnixStream {
    fd: NetFd<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects; the connection's completion is awaited on the poller.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let s = UnixStream { fd: NetFd::new(mio::net::UnixStream::connect(path)?)? };
        s.fd.run(Dir::Write, |s| connect_done(s.take_error(), s.peer_addr()))?;
        Ok(s)
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream { fd: NetFd::new(a)? }, UnixStream { fd: NetFd::new(b)? }))
    }

    /// Shuts down the read half, the write half or both (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.io().shutdown(how)
    }

    /// Reads fail with `TimedOut` after `d`; `None` waits forever.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Dir::Read, d)
    }

    /// Writes fail with `TimedOut` after `d`; `None` waits forever.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Dir::Write, d)
    }

    /// Another handle to the same connection (a `dup`ed fd, registered on its own).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let fd = dup(self.as_raw_fd())?;
        // SAFETY: a fresh, owned, non-blocking Unix stream fd.
        let std = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd.into_raw_fd()) };
        Ok(UnixStream { fd: NetFd::new(mio::net::UnixStream::from_std(std))? })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<std::os::unix::net::SocketAddr> {
        self.fd.io().peer_addr()
    }
}

crate::fd::impl_stream_io!(UnixStream);

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.io().as_raw_fd()
    }
}

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener").field("local", &self.local_addr().ok()).finish()
    }
}

impl std::fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixStream").field("peer", &self.peer_addr().ok()).field("fd", &self.as_raw_fd()).finish()
    }
}
