//! goro-chan: Go's channels (`hchan`) and `select` (`selectgo`) on goro's
//! park/unpark.
//!
//! - `chan.rs`: `Chan<T>`, send/recv/close and their non-blocking and
//!   timed forms.
//! - `sudog.rs`: waiters that live on the blocked G's stack.
//! - `select.rs`: `select!`, the dynamic `Select`.
//! - `time.rs`: `after`, `tick`, `Timer`.
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
mod select;
mod sudog;
pub mod time;

pub use chan::{nil, AsChan, Chan, IntoIter, Iter};
pub use error::{RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
pub use future::{RecvFuture, SendFuture};
pub use group::Group;
pub use select::Select;

/// Atomics used by `opstate.rs`; its loom model swaps in loom's.
pub(crate) mod atomic {
    pub use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
}

/// What the `select!` macro expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::select::{select_arms, Mode, RecvArm, SelectArm, SendArm};
    pub use crate::sudog::Waiting;
    pub use goro_runtime::deadline_after;
}
