//! Dialing with a context (Go's `net.Dialer.DialContext`): the facade
//! joins `goro::net` and `goro::context`, which live in crates that do not
//! depend on each other.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use goro_chan::context::{Context, ContextError};
use goro_chan::{select, Chan};
use goro_netpoll::TcpStream;

/// The `io::Error` for a context that ended a network operation:
/// `TimedOut` for its deadline, `Interrupted` for a cancel, with the
/// [`ContextError`] inside.
fn ctx_error(e: ContextError) -> io::Error {
    let kind = match e {
        ContextError::DeadlineExceeded => io::ErrorKind::TimedOut,
        ContextError::Canceled => io::ErrorKind::Interrupted,
    };
    io::Error::new(kind, e)
}

/// Connects to the first of `addr`'s addresses that accepts, giving up
/// when `ctx` is done (its deadline, or a cancel) as Go's `DialContext`
/// does. From a plain thread, the context's deadline bounds the connect but
/// a cancel is only seen before it starts. Unlike Go's, the addresses share
/// the deadline in turn (the first may use all of it), name resolution does
/// not watch the context, and after a cancel the connect attempt itself
/// runs on in its own G until it ends (its connection, if any, is closed).
///
/// ```
/// use goro::context;
/// use goro::net::{connect_ctx, TcpListener};
/// use std::time::Duration;
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// unsafe {
///     goro::run(|| {
///         let l = TcpListener::bind("127.0.0.1:0").unwrap();
///         let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_secs(5));
///         let s = connect_ctx(l.local_addr().unwrap(), &ctx).unwrap();
///         assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
///     })
/// };
/// ```
pub fn connect_ctx(addr: impl ToSocketAddrs, ctx: &Context) -> io::Result<TcpStream> {
    if let Some(e) = ctx.err() {
        return Err(ctx_error(e));
    }
    // Resolving may block (DNS): a syscall, as `goro::net` resolves.
    let addrs: Vec<SocketAddr> = goro_runtime::syscall(|| addr.to_socket_addrs().map(Iterator::collect))?;
    let deadline = ctx.deadline();
    let dial = move || -> io::Result<TcpStream> {
        goro_netpoll::each_addr(&addrs[..], |a| match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(goro_runtime::now());
                if left.is_zero() {
                    return Err(ctx_error(ContextError::DeadlineExceeded));
                }
                TcpStream::connect_timeout(&a, left)
            }
            None => TcpStream::connect(a),
        })
    };
    if !goro_runtime::in_goroutine() {
        return dial();
    }
    // The connect runs in a G of its own so that a cancel can end the wait;
    // a connection made after that is dropped with the channel.
    let result = Chan::new(1);
    let r2 = result.clone();
    goro_runtime::go(move || {
        let _ = r2.try_send(dial());
    });
    select! {
        recv(result) -> r => r.expect("the dialing G sends before it exits"),
        recv(ctx.done()) -> _ => Err(ctx_error(ctx.err().expect("done"))),
    }
}
