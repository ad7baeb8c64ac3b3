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
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        Ok(UnixListener { fd: NetFd::new(mio::net::UnixListener::bind(path)?)? })
    }

    pub fn accept(&self) -> io::Result<(UnixStream, std::os::unix::net::SocketAddr)> {
        let (s, a) = self.fd.run(Dir::Read, |l| l.accept())?;
        Ok((UnixStream { fd: NetFd::new(s)? }, a))
    }

    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

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

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.io().shutdown(how)
    }

    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Dir::Read, d)
    }

    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Dir::Write, d)
    }

    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let fd = dup(self.as_raw_fd())?;
        // SAFETY: a fresh, owned, non-blocking Unix stream fd.
        let std = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd.into_raw_fd()) };
        Ok(UnixStream { fd: NetFd::new(mio::net::UnixStream::from_std(std))? })
    }

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
