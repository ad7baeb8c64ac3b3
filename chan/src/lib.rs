//! goro-chan: Go's channels (`hchan`) and `select` (`selectgo`) on goro's
//! park/unpark.
//!
//! - `chan.rs`: `Chan<T>`, send/recv/close and their non-blocking and
//!   timed forms.
//! - `sudog.rs`: waiters that live on the blocked G's stack.
//! - `select.rs`: `select!`, the dynamic `Select`.
//! - `time.rs`: `after`, `tick`, `Timer`.
//! - `ring.rs`: a buffered channel's lock-free ring (the path that skips
//!   the lock when nobody waits).
//! - `lock.rs`: the futex lock each channel holds.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod chan;
pub mod context;
mod error;
mod future;
mod group;
mod lock;
mod opstate;
mod ring;
mod select;
mod sudog;
pub mod time;

pub use chan::{nil, AsChan, Chan, IntoIter, Iter};
pub use error::{RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
pub use future::{RecvFuture, SendFuture};
pub use group::Group;
pub use select::Select;

/// Atomics, the cell and the spin of `opstate.rs` and `ring.rs`; their
/// loom models swap in loom's.
pub(crate) mod atomic {
    pub use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

    /// `std`'s `UnsafeCell` behind loom's API (`with_mut`), so the loom
    /// model can check every access to a ring slot.
    pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub fn new(v: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(v))
        }

        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// One wait for another thread's few instructions (a ring slot being
    /// written or read, a lost compare-and-swap): spins that double up to
    /// 256 pauses; after 16 waits, yields the thread (only a writer or
    /// reader preempted mid-slot makes a wait that long).
    pub fn spin(step: &mut u32) {
        if *step <= 8 {
            for _ in 0..1u32 << *step {
                std::hint::spin_loop();
            }
        } else if *step > 16 {
            std::thread::yield_now();
        } else {
            for _ in 0..256 {
                std::hint::spin_loop();
            }
        }
        *step += 1;
    }
}

/// What the `select!` macro expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::select::{select_arms, Mode, RecvArm, SelectArm, SendArm};
    pub use crate::sudog::Waiting;
    pub use goro_runtime::deadline_after;
}
