//! The workloads of `docs/workloads.md` on goro, sized by the caller: one
//! copy shared by `benches/workloads.rs` (full size), `benches/micro/micro.rs`,
//! the policy lab (`examples/lab/main.rs`, full or scaled down) and the tests.
//! A researcher adds a workload here and every one of them can run it; a
//! crate of one's own can depend on this one to use them too.
//!
//! - `schedload`: scheduling and channels (skynet, spawn, pingpong,
//!   prodcons, select4, yield, chained_spawn, park/unpark turns).
//! - `sysload`: blocking system calls and hogs (syscall handoff, hog).
//! - `latency`: open-loop Poisson requests with dispersed service times
//!   (tail latency against load).
//!
//! Each takes the runtime to run on and returns its figure.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod latency;
pub mod schedload;
pub mod sysload;

/// The facade's names, taken from the crates behind it (the facade itself
/// cannot be a dependency here: goro's own benches and tests use this
/// crate, and would see two copies of its types).
mod goro {
    pub use goro_chan::select;
    pub use goro_runtime::*;

    pub mod chan {
        pub use goro_chan::Chan;
    }
}
