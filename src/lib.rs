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
//! # The model in five sentences
//!
//! [`go`] starts a G, a coroutine with its own stack, and returns a
//! [`JoinHandle`]. A G runs on one of the runtime's OS threads (Ms), which
//! must hold one of its `procs` logical processors (Ps) to run Gs, so at
//! most `procs` Gs run at once ([`RuntimeBuilder::procs`], `GORO_PROCS`).
//! Whatever waits — a channel operation, [`sleep`], a [`sync`] lock, a
//! socket in [`net`], a join — parks the G and its thread runs another. A
//! G that calls no runtime function for 10 ms is asked to yield at its
//! next call, and one that runs a millisecond or two without any call loses its P to
//! another thread, so the other Gs go on ([`Policy`]). Gs that borrow from
//! their caller run in a [`scope`]; Gs that share a task and an error run
//! in a [`Group`] with a [`context`].
//!
//! # Blocking calls
//!
//! A call that blocks its thread (file I/O, `std::thread::sleep`, a
//! blocking client library, DNS) should be wrapped: [`syscall`]`(|| ..)`
//! hands the G's P to another thread if the call lasts over 20 µs, as Go
//! does for every system call; [`blocking`]`(|| ..)` hands it off at once,
//! for calls known to be long. Unwrapped, such a call still does not stall
//! the other Gs past about a millisecond (hog handoff), but it holds the
//! P that long.
//!
//! # When something hangs or is slow
//!
//! [`dump`] (or `GORO_SIGQUIT=1` and `kill -QUIT`) prints every G with its
//! state and wait reason, as Go's goroutine dump does; a program whose Gs
//! all wait on each other is reported as deadlocked and exits with status 2,
//! as in Go. `GORO_SCHEDTRACE=1000` prints the scheduler's state every
//! second; `GORO_TRACE=trace.json` writes a trace to open in Perfetto
//! (`GORO_TRACE_LAST=<s>` keeps only the end); [`stats`] has the counters.
//!
//! # Testing
//!
//! Code that waits, times out, ticks or backs off is tested in a
//! [`synctest`] bubble: its clock jumps forward whenever every G of the
//! bubble is blocked, so a test of an hour-long timeout runs in
//! microseconds and asserts exact times.
//!
//! The crates behind the facade: `goro-runtime` (scheduler), `goro-chan`
//! (channels, select, timers as channels, context, groups), `goro-netpoll`
//! (network).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

// Goroutines.
pub use goro_runtime::{
    current, go, go_future, in_goroutine, preempt_point, try_current, yield_now, Builder, GoroutineInfo, JoinHandle,
};
// Structured concurrency: Gs that borrow from their caller; Go's errgroup.
pub use goro_chan::Group;
pub use goro_runtime::{scope, Scope, ScopedJoinHandle};
// Threads: wiring a G to its OS thread, and calls that block it.
pub use goro_runtime::{blocking, is_locked_to_thread, lock_os_thread, syscall, unlock_os_thread};
// Runtimes and the scheduling policy.
pub use goro_runtime::{
    block_on, default_procs, run, Deadlock, Policy, Poller, Retake, RunnextWake, Runtime, RuntimeBuilder, Spinning,
    Steal, DEFAULT_STACK_SIZE,
};
// Parking a G by hand (what channels and `sync` are built on).
pub use goro_runtime::{current_unparker, park, park_until, Unparker, WaitReason};
// Observability.
pub use goro_runtime::{dump, stats, GStatus, GoroutineState, Histogram, PStats, SharedLocks, Stats};
// Sleeping and deadlines.
pub use goro_runtime::{deadline_after, deadline_from, sleep, sleep_until, NEVER};

/// Go's `sync`: `Mutex`, `RwLock`, `Condvar`, `WaitGroup`, `Once` and a
/// counting `Semaphore` that park the G instead of blocking its M.
pub mod sync {
    pub use goro_chan::context::SemaphoreExt;
    pub use goro_runtime::sync::*;
}

/// The runtime's internals (run queue, stack pool, the hooks goro's own
/// crates use): not a stable API, for experiments only.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use goro_runtime::internals;

/// Go's `context`: cancellation and deadlines passed down to the Gs doing
/// the work (`background`, `with_cancel`, `with_timeout`, `with_deadline`;
/// `ctx.done()` in `select!`, `ctx.err()`).
pub mod context {
    pub use goro_chan::context::*;
}
/// Go's channels and `select`.
pub mod chan {
    pub use goro_chan::{
        nil, AsChan, Chan, IntoIter, Iter, RecvFuture, RecvTimeoutError, Select, SendError, SendFuture,
        SendTimeoutError, TryRecvError, TrySendError,
    };
}

/// Timers as channels (Go's `time.After`, `time.Tick`, `time.Timer`),
/// sleeping, and the clock every deadline is measured on ([`time::now`]:
/// a synctest bubble's fake clock inside a bubble).
pub mod time {
    pub use goro_chan::time::{after, tick, Ticker, Timer};
    pub use goro_runtime::{now, sleep, sleep_until, system_now};
}

/// Testing concurrent code with a fake clock (Go's `testing/synctest`).
///
/// [`run`](synctest::run) runs a function in a *bubble*: it and every G it
/// spawns belong to the bubble, and time inside is a fake clock (starting
/// at 2000-01-01 00:00:00 UTC for [`time::system_now`]) that jumps forward
/// only when every G of the bubble is durably blocked. A test that sleeps
/// for an hour finishes at once, and it never flakes: what it sees of time
/// is exact.
///
/// ```
/// use std::time::Duration;
/// use goro::{chan::Chan, select, synctest, time};
///
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// unsafe {
///     goro::run(|| {
///         synctest::run(|| {
///             let start = time::now();
///             let done = Chan::new(0);
///             let d = done.clone();
///             goro::go(move || {
///                 goro::sleep(Duration::from_secs(3600));
///                 d.send(()).unwrap();
///             });
///             // Waits an hour of the bubble's time, not of yours.
///             select! {
///                 recv(done) -> _ => {}
///                 recv(time::after(Duration::from_secs(7200))) -> _ => panic!("too late"),
///             }
///             assert_eq!(time::now() - start, Duration::from_secs(3600));
///         })
///     })
/// };
/// ```
///
/// # Durably blocked
///
/// A G of a bubble is durably blocked when only another G of the bubble
/// (or the bubble's clock) can end its wait: a send, receive or `select!`
/// on channels created in the bubble (every channel of the select), a nil
/// channel, [`sleep`], a timer or ticker of the bubble, [`sync::Condvar`],
/// [`sync::Semaphore`], a [`sync::WaitGroup`] the bubble added to, a join
/// of a G of the bubble, [`wait`](synctest::wait). A G on a socket, in
/// [`syscall`]/[`blocking`], on a [`sync::Mutex`] or [`sync::RwLock`] (Go
/// counts neither: their holder may be outside), on a channel created
/// outside the bubble, or in code the runtime does not see
/// (`std::thread::sleep`) is not: time stands still while it waits, and
/// the test waits with it.
///
/// When every G of the bubble is durably blocked: a G in
/// [`wait`](synctest::wait) returns; otherwise the clock jumps to the
/// earliest timer of the bubble, which fires (timers due at the same
/// instant fire one by one, in deadline order, then creation order);
/// otherwise nothing can ever wake the bubble and `run` panics with
/// `deadlock`, naming the bubble's Gs.
///
/// # Rules, as in Go
///
/// - Use [`time::now`] and [`time::system_now`] for the time in code under
///   test: `Instant::now()` reads the real clock. Every goro timeout
///   (channel, socket, `context`, `select!`'s `default(d)`) is on the
///   bubble's clock inside a bubble.
/// - A channel, timer or ticker created in a bubble may only be used by
///   the bubble's Gs: a send, receive, close, `select!`, `stop` or `reset`
///   from outside panics with a message naming the bubble.
/// - `run` returns when every G of the bubble has exited. If its main
///   function returns while other Gs of the bubble stay durably blocked
///   with nothing pending, `run` panics naming them (they leak out of the
///   test). A panic of the main function comes out of `run`.
/// - Bubbles do not nest; `run` is called from a G (inside a runtime).
///   Gs outside the bubble, in the same runtime, keep real time.
///
/// # Order
///
/// With one P ([`RuntimeBuilder::procs`]`(1)`), a bubble's run is a
/// function of its seed ([`run_with_seed`](synctest::run_with_seed): the
/// arm a `select!` with several ready arms takes), as long as no G of the
/// bubble runs past the hog threshold (about a millisecond of computation
/// without a runtime call, when its P is handed to another thread) or
/// waits on something outside the bubble. With more Ps, which Gs run at
/// the same time, and so the order of their effects between two durable
/// blocks, depends on the OS's scheduling of the Ms, as in Go.
pub mod synctest {
    pub use goro_runtime::synctest::{run, run_with_seed, wait};
}

pub use goro_chan::select;

/// Network types that park the G on the runtime's poller instead of
/// blocking its M (Go's `net`), std-shaped.
pub mod net {
    pub use crate::dial::connect_ctx;
    pub use goro_netpoll::{Incoming, NetPoller, TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
}

mod dial;
