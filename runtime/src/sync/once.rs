//! `Once`: Go's `sync.Once`, with std's poisoning.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex as StdMutex;

use super::lock;
use super::waitq::{WaitQueue, Waiter};
use crate::g::WaitReason;

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;
const POISONED: u8 = 3;

/// Runs an initializer exactly once (Go's `sync.Once`). If the initializer
/// panics, the `Once` is poisoned as std's is: that call and every later one
/// panic (Go would instead consider it done).
#[derive(Default)]
pub struct Once {
    state: AtomicU8,
    waiters: StdMutex<WaitQueue>,
}

impl Once {
    /// A `Once` that has not run.
    pub const fn new() -> Self {
        Once { state: AtomicU8::new(INCOMPLETE), waiters: StdMutex::new(WaitQueue::new()) }
    }

    /// Runs `f` if no call has run yet; otherwise waits for the running one.
    pub fn call_once(&self, f: impl FnOnce()) {
        match self.state.load(Ordering::Acquire) {
            COMPLETE => return,
            POISONED => panic!("Once instance has previously been poisoned"),
            _ => {}
        }
        if self.state.compare_exchange(INCOMPLETE, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            let r = catch_unwind(AssertUnwindSafe(f));
            let end = if r.is_ok() { COMPLETE } else { POISONED };
            let ws: Vec<_> = {
                let mut q = lock(&self.waiters);
                self.state.store(end, Ordering::Release);
                q.drain().collect()
            };
            for w in ws {
                w.grant();
            }
            if let Err(p) = r {
                resume_unwind(p);
            }
            return;
        }
        let w = {
            let mut q = lock(&self.waiters);
            if self.state.load(Ordering::Acquire) == RUNNING {
                let w = Waiter::new(1);
                q.push_back(w.clone());
                Some(w)
            } else {
                None
            }
        };
        if let Some(w) = w {
            w.wait(WaitReason::Semacquire);
        }
        if self.state.load(Ordering::Acquire) == POISONED {
            panic!("Once instance has previously been poisoned");
        }
    }

    /// Whether a call has run to completion.
    pub fn is_completed(&self) -> bool {
        self.state.load(Ordering::Acquire) == COMPLETE
    }
}

impl std::fmt::Debug for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Once").field("completed", &self.is_completed()).finish()
    }
}
