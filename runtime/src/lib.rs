//! goro-runtime: Go's G/M/P scheduler for Rust.
//!
//! Gs (stackful coroutines) run on Ms (OS threads) that hold Ps (logical
//! processors, `procs` of them) with local run queues; a global queue, work
//! stealing, spinning Ms, per-P timers and a monitor thread (sysmon) complete
//! the picture. `sched.rs` opens with the design; ARCHITECTURE.md maps the
//! modules.
//!
//! ```
//! // SAFETY: the Gs keep no thread-local state across switch points.
//! let sum = unsafe {
//!     goro_runtime::run(|| {
//!         let hs: Vec<_> = (0..10u64).map(|i| goro_runtime::go(move || i * i)).collect();
//!         hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//!     })
//! };
//! assert_eq!(sum, 285);
//! ```

mod clock;
mod dump;
mod execute;
mod future;
mod g;
mod goroutine;
mod idle;
mod lock_os_thread;
mod m;
mod p;
mod park;
mod park_token;
mod policy;
mod poller;
pub mod runq;
mod runtime;
mod sched;
mod signal;
mod stack;
mod stats;
pub mod sync;
mod syscall;
mod sysmon;
mod timer;
mod trace;

/// Atomics of the parts that loom models (the run queue, the park token,
/// the idle counts): the models swap in loom's.
pub(crate) mod atomic {
    pub use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};
}

pub use dump::dump;
pub use future::{block_on, go_future};
pub use g::{GStatus, GoroutineInfo, WaitReason};
pub use goroutine::{current, go, try_current, yield_now, Builder, JoinHandle};
pub use lock_os_thread::{is_locked_to_thread, lock_os_thread, unlock_os_thread};
pub use m::{current_runtime_id, in_goroutine, preempt_check, preempt_point};
pub use park::{current_unparker, park, park_internal, park_until, Unparker};
pub use policy::{Policy, Retake, RunnextWake, Spinning, Steal};
pub use poller::{runtime_poller, ParkPoller, Poller};
pub use runtime::{default_procs, run, stats, Deadlock, GoroutineState, Runtime, RuntimeBuilder, DEFAULT_STACK_SIZE};
pub use stack::mapped_stacks;
pub use stats::{Histogram, PStats, Stats};
pub use syscall::{blocking, syscall};
pub use timer::{add_timer, deadline_after, deadline_from, sleep, sleep_until, TimerAction, TimerHandle, NEVER};
