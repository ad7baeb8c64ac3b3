//! goro: Go's goroutine scheduler as a Rust library.
//!
//! Stackful goroutines (G) run on OS worker threads (M) that hold logical
//! processors (P) with local run queues, a global queue and work stealing,
//! as in Go's runtime; channels and `select!` park and wake them.
//!
//! ```
//! use goro::chan::Chan;
//!
//! // SAFETY: these Gs keep no thread-local state across switch points.
//! let total = unsafe {
//!     goro::run(|| {
//!         let results = Chan::new(0);
//!         for i in 0..10u64 {
//!             let results = results.clone();
//!             goro::go(move || results.send(i * i).unwrap());
//!         }
//!         (0..10).map(|_| results.recv().unwrap()).sum::<u64>()
//!     })
//! };
//! assert_eq!(total, 285);
//! ```
//!
//! # Why starting a runtime is `unsafe`
//!
//! A G may resume on another OS thread after any point where it can switch
//! (a channel operation, a lock, `sleep`, `yield_now`, spawning). Safe Rust
//! assumes code stays on its thread, so a thread-local read before such a
//! point and used after it would be a data race. Starting a runtime
//! ([`run`], [`RuntimeBuilder::build`]) is the one place where you promise
//! that your Gs do not do that; inside the runtime everything is safe. Code
//! that needs thread-local state (a thread-affine C library, a
//! `thread_local!` cache) calls [`lock_os_thread`] first: the G then stays on
//! its thread, as with Go's `runtime.LockOSThread`.
//!
//! The crates behind the facade: `goro-runtime` (scheduler), `goro-chan`
//! (channels, select, timers as channels), `goro-netpoll` (network).

pub use goro_runtime::*;

/// Go's channels and `select`.
pub mod chan {
    pub use goro_chan::{
        nil, AsChan, Chan, IntoIter, Iter, RecvFuture, RecvTimeoutError, Select, SendError, SendTimeoutError,
        TryRecvError, TrySendError,
    };
}

/// Timers as channels (Go's `time.After`, `time.Tick`, `time.Timer`) and
/// sleeping.
pub mod time {
    pub use goro_chan::time::{after, tick, Ticker, Timer};
    pub use goro_runtime::{sleep, sleep_until};
}

pub use goro_chan::select;

/// Network types that park the G on the runtime's poller instead of
/// blocking its M (Go's `net`), std-shaped.
pub mod net {
    pub use goro_netpoll::{Incoming, NetPoller, TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
}
