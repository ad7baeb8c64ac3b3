//! goro-netpoll: Go's netpoller on mio, and the network types of `goro::net`.
//!
//! - `poller.rs`: `NetPoller`, the runtime's `Poller` (one `mio::Poll` per
//!   runtime, installed on first use of a socket in that runtime).
//! - `fd.rs`: `NetFd`, a registered non-blocking socket and the
//!   "try, park on `IO wait`, retry" loop with deadlines.
//! - `tcp.rs`, `udp.rs`, `unix.rs`: std-shaped socket types.
//!
//! Every error is the kernel's `io::Error` (`AddrInUse`,
//! `ConnectionRefused`, `ConnectionReset`, `BrokenPipe`, ...), never a
//! panic. Outside a G the types block the calling thread, like std's.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod fd;
mod poller;
mod tcp;
mod udp;
mod unix;

pub use poller::NetPoller;
#[doc(hidden)]
pub use tcp::each_addr;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
