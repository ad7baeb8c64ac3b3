//! `Group`: Go's `errgroup` — Gs working on one task, the first error
//! cancelling the others through the group's context.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use goro_runtime::sync::{Semaphore, WaitGroup};

use crate::context::{self, CancelFunc, Context};

/// A group of Gs doing parts of one task (Go's `errgroup.Group`): `wait`
/// returns the first error any of them returned, and that error cancels
/// the group's [`context`](Group::context), so the others can stop early.
/// An optional limit bounds how many run at once.
///
/// ```
/// use goro_chan::Group;
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// let r = unsafe {
///     goro_runtime::run(|| {
///         let g: Group<String> = Group::new();
///         for i in 0..10 {
///             let ctx = g.context().clone();
///             g.go(move || {
///                 if i == 3 {
///                     return Err(format!("part {i} failed"));
///                 }
///                 // The others stop once the group's context is done.
///                 ctx.done().recv();
///                 Ok(())
///             });
///         }
///         g.wait()
///     })
/// };
/// assert_eq!(r, Err("part 3 failed".to_string()));
/// ```
pub struct Group<E> {
    ctx: Context,
    cancel: CancelFunc,
    shared: Arc<Shared<E>>,
    limit: Option<Arc<Semaphore>>,
}

struct Shared<E> {
    running: WaitGroup,
    first: Mutex<First<E>>,
}

/// The first failure of a G of the group.
enum First<E> {
    None,
    Err(E),
    Panic(Box<dyn Any + Send>),
}

impl<E: Send + 'static> Default for Group<E> {
    fn default() -> Self {
        Group::new()
    }
}

impl<E: Send + 'static> Group<E> {
    /// A group whose context is a child of the background context.
    pub fn new() -> Group<E> {
        Group::with_context(&context::background())
    }

    /// A group whose context is a child of `parent` (Go's
    /// `errgroup.WithContext`).
    pub fn with_context(parent: &Context) -> Group<E> {
        let (ctx, cancel) = context::with_cancel(parent);
        Group {
            ctx,
            cancel,
            shared: Arc::new(Shared { running: WaitGroup::new(), first: Mutex::new(First::None) }),
            limit: None,
        }
    }

    /// At most `n` of the group's Gs run at once from now on: `go` waits
    /// for a slot (Go's `SetLimit`).
    ///
    /// # Panics
    /// If `n` is 0 (nothing could ever run).
    pub fn with_limit(mut self, n: usize) -> Group<E> {
        assert!(n > 0, "goro::Group: a limit of 0 Gs");
        self.limit = Some(Arc::new(Semaphore::new(n)));
        self
    }

    /// The group's context: cancelled by the first error, and by `wait`.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Runs `f` in a new G of the group; with a limit, first waits until
    /// fewer than the limit run.
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        if let Some(sem) = &self.limit {
            sem.acquire();
        }
        self.spawn(f);
    }

    /// Like `go`, but returns `false` instead of waiting when the limit is
    /// reached (Go's `TryGo`).
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        if let Some(sem) = &self.limit {
            if !sem.try_acquire() {
                return false;
            }
        }
        self.spawn(f);
        true
    }

    fn spawn<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        self.shared.running.add(1);
        // Gives back the slot and counts the G out when dropped: after the
        // body, or unrun if `go` refuses the G (off a runtime, no stack).
        let slot = Slot { shared: self.shared.clone(), limit: self.limit.clone() };
        let cancel = self.cancel.clone();
        goro_runtime::go(move || {
            let failed = match catch_unwind(AssertUnwindSafe(f)) {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(First::Err(e)),
                Err(p) => Some(First::Panic(p)),
            };
            if let Some(failure) = failed {
                let mut first = slot.shared.first.lock().unwrap_or_else(|e| e.into_inner());
                if matches!(*first, First::None) {
                    *first = failure;
                    drop(first);
                    cancel.cancel();
                }
            }
            drop(slot);
        });
    }

    /// Waits for every G of the group, cancels the group's context, and
    /// returns the first error. A G that panicked makes `wait` panic with
    /// its payload (if it was the first failure).
    pub fn wait(self) -> Result<(), E> {
        self.shared.running.wait();
        self.cancel.cancel();
        let first = std::mem::replace(&mut *self.shared.first.lock().unwrap_or_else(|e| e.into_inner()), First::None);
        match first {
            First::None => Ok(()),
            First::Err(e) => Err(e),
            First::Panic(p) => resume_unwind(p),
        }
    }
}

impl<E> std::fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("ctx", &self.ctx).field("limited", &self.limit.is_some()).finish()
    }
}

/// A running G's place in its group.
struct Slot<E> {
    shared: Arc<Shared<E>>,
    limit: Option<Arc<Semaphore>>,
}

impl<E> Drop for Slot<E> {
    fn drop(&mut self) {
        if let Some(sem) = &self.limit {
            sem.release();
        }
        self.shared.running.done();
    }
}
