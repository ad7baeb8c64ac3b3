//! Go's `sync` package for Gs: every wait parks the G (or blocks a plain
//! thread) through `park.rs`, never the M.
//!
//! - `mutex.rs`: `Mutex` (Go's normal and starvation modes)
//! - `rwlock.rs`: `RwLock` (writers not starved by readers)
//! - `waitgroup.rs`, `once.rs`, `semaphore.rs`, `condvar.rs`
//! - `waitq.rs`: the FIFO of parked waiters they share

mod condvar;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod waitgroup;
mod waitq;

pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
pub use once::Once;
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::Semaphore;
pub use waitgroup::WaitGroup;

/// Locks an internal std mutex, ignoring poison (the state it guards is
/// kept consistent before any panic can happen).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
