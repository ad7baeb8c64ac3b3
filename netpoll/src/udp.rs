//! `UdpSocket`: std's shape, parking the G on the poller.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::time::Duration;

use crate::fd::{dup, Dir, NetFd};
use crate::tcp::each_addr;

/// A UDP socket.
pub struct UdpSocket {
    fd: NetFd<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// A socket bound to the first of `addr`'s addresses that works.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(addr, |a| Ok(UdpSocket { fd: NetFd::new(mio::net::UdpSocket::bind(a)?)? }))
    }

    /// Sends one datagram to `addr` (its first address), parking while the socket buffer is full.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let a = crate::tcp::resolve(addr)?
            .into_iter()
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to send to"))?;
        self.fd.run(Dir::Write, |s| s.send_to(buf, a))
    }

    /// Receives one datagram and its sender, parking until one arrives.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.fd.run(Dir::Read, |s| s.recv_from(buf))
    }

    /// Sets the default peer for `send` and `recv`.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        each_addr(addr, |a| self.fd.io().connect(a))
    }

    /// Sends one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd.run(Dir::Write, |s| s.send(buf))
    }

    /// Receives one datagram from the connected peer, parking until one arrives.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.run(Dir::Read, |s| s.recv(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.io().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.io().peer_addr()
    }

    /// Receives fail with `TimedOut` after `d`; `None` waits forever.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Dir::Read, d)
    }

    /// Sends fail with `TimedOut` after `d`; `None` waits forever.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Dir::Write, d)
    }

    /// Another handle to the same socket (a `dup`ed fd, registered on its own).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let fd = dup(self.as_raw_fd())?;
        // SAFETY: a fresh, owned, non-blocking UDP socket fd.
        let std = unsafe { std::net::UdpSocket::from_raw_fd(fd.into_raw_fd()) };
        Ok(UdpSocket { fd: NetFd::new(mio::net::UdpSocket::from_std(std))? })
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.io().as_raw_fd()
    }
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket").field("local", &self.local_addr().ok()).field("fd", &self.as_raw_fd()).finish()
    }
}
