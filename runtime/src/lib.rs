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

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod clock;
mod context;
mod dump;
mod execute;
mod future;
mod g;
mod goroutine;
mod hog;
mod idle;
mod join_cell;
mod lock_os_thread;
mod m;
mod p;
mod park;
mod park_token;
mod policy;
mod poller;
mod recycle;
#[doc(hidden)]
pub mod runq;
mod runtime;
mod sched;
mod scope;
mod signal;
mod stack;
mod stats;
mod steal;
pub mod sync;
pub mod synctest;
mod syscall;
mod sysmon;
mod takeover;
mod timer;
mod trace;

/// Atomics of the parts that loom models (the run queue, the park token,
/// the idle counts, the takeover, the join cell, recycling): the models
/// swap in loom's.
pub(crate) mod atomic {
    pub use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

    /// `std`'s `UnsafeCell` with loom's closure API (`with_mut`), so that
    /// a module loom models can use loom's.
    pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub const fn new(v: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(v))
        }

        #[inline(always)]
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// The light side of an asymmetric barrier: only a compiler fence;
    /// `hog::process_barrier` makes it a full one when it matters.
    #[inline(always)]
    pub fn light_barrier() {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    }
}

// The user's API: the facade (`goro`) re-exports these, grouped.
pub use dump::dump;
pub use future::{block_on, go_future};
pub use g::{GStatus, GoroutineInfo, WaitReason};
pub use goroutine::{current, go, try_current, yield_now, Builder, JoinHandle};
pub use lock_os_thread::{is_locked_to_thread, lock_os_thread, unlock_os_thread};
pub use m::{in_goroutine, preempt_point};
pub use park::{current_unparker, park, park_until, Unparker};
pub use policy::{Policy, Retake, RunnextWake, Spinning, Steal};
pub use poller::Poller;
pub use runtime::{default_procs, run, stats, Deadlock, GoroutineState, Runtime, RuntimeBuilder, DEFAULT_STACK_SIZE};
pub use scope::{scope, Scope, ScopedJoinHandle};
pub use stats::{Histogram, PStats, SharedLocks, Stats};
pub use syscall::{blocking, syscall};
pub use timer::{deadline_after, deadline_from, now, sleep, sleep_until, system_now, NEVER};

/// What goro's own crates need from the runtime beyond the user's API:
/// `goro-chan` and `goro-netpoll` park Gs with deadlock bookkeeping, arm
/// timers and install their poller through it; goro's benches and tests
/// look at the run queue and the stack pool through it. Not a stable API
/// (hidden from the docs); the facade re-exports it only with its
/// `internals` feature.
#[doc(hidden)]
pub mod internals {
    pub use crate::g::live_gs;
    pub use crate::m::{current_runtime, preempt_point_in_runtime, RuntimeId};
    pub use crate::park::{park_until_real, park_until_woken_by, park_woken_by, WokenBy};
    pub use crate::poller::{runtime_poller, ParkPoller};
    pub use crate::runq::{RunQueue, Take};
    pub use crate::stack::mapped_stacks;
    pub use crate::synctest::{bubble_mismatch, bubble_rand, current_bubble_id};
    pub use crate::timer::{add_real_timer, add_timer, TimerAction, TimerHandle};
}
