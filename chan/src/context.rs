//! Go's `context`: cancellation and deadlines that flow from a parent to
//! everything started on its behalf.
//!
//! A [`Context`] is cancelled by its [`CancelFunc`], by its deadline, or by
//! its parent's cancellation, whichever comes first; from then on its
//! [`done`](Context::done) channel is closed (so a `recv` arm on it fires
//! in `select!`, as `<-ctx.Done()` does in Go) and [`err`](Context::err)
//! says why. A child is registered with its parent only until it is
//! cancelled: cancelling a child releases it, so creating and cancelling
//! contexts under a long-lived parent does not grow it (a child dropped
//! without being cancelled is released at the parent's next registration
//! or cancellation; as in Go, call the cancel function).
//!
//! ```
//! use goro_chan::context;
//! use std::time::Duration;
//! let (ctx, cancel) = context::with_timeout(&context::background(), Duration::from_millis(5));
//! ctx.done().recv(); // blocks until the deadline
//! assert_eq!(ctx.err(), Some(context::ContextError::DeadlineExceeded));
//! cancel.cancel(); // releases the timer; the error stays
//! assert_eq!(ctx.err(), Some(context::ContextError::DeadlineExceeded));
//! ```

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use goro_runtime::deadline_after;
use goro_runtime::internals::{add_timer, TimerAction, TimerHandle, WokenBy};

use crate::chan::{nil, Chan};

/// Why a context is done (Go's `context.Canceled` and
/// `context.DeadlineExceeded`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// Its cancel function (or an ancestor's) was called.
    Canceled,
    /// Its deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContextError::Canceled => "context canceled",
            ContextError::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for ContextError {}

/// A cancellation signal and an optional deadline, passed down from a
/// parent (Go's `context.Context`). Cloning shares it.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    /// Closed when the context is cancelled; a nil channel (never ready)
    /// for the background context.
    done: Chan<()>,
    deadline: Option<Instant>,
    /// The background context: never cancelled, so children need not
    /// register with it.
    root: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    err: Option<ContextError>,
    /// Live children, cancelled with this context.
    children: Vec<(u64, Weak<Inner>)>,
    /// This context's registration with its parent, removed on cancel. A
    /// strong reference, as in Go: a child keeps its ancestors (and their
    /// deadlines' timers) alive.
    parent: Option<(Arc<Inner>, u64)>,
    /// The deadline's timer, stopped on cancel.
    timer: Option<TimerHandle>,
    next_id: u64,
    /// Run once on cancel (waits that cancellation must end: a semaphore
    /// acquire).
    hooks: Vec<(u64, Box<dyn FnOnce() + Send>)>,
}

/// Cancels the context it came with, and its children (Go's
/// `context.CancelFunc`; clones cancel the same context). Dropping it does
/// not cancel.
#[derive(Clone)]
pub struct CancelFunc {
    ctx: Context,
}

impl CancelFunc {
    /// Cancels the context with `ContextError::Canceled` unless it is done
    /// already; releases its timer and its registration with its parent.
    pub fn cancel(&self) {
        self.ctx.inner.cancel(ContextError::Canceled);
    }
}

impl std::fmt::Debug for CancelFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelFunc").field("ctx", &self.ctx).finish()
    }
}

/// The root context: never cancelled, no deadline (Go's
/// `context.Background()`).
pub fn background() -> Context {
    Context { inner: Arc::new(Inner { done: nil(), deadline: None, root: true, state: Mutex::default() }) }
}

/// A child of `parent` cancelled by the returned function (or with the
/// parent).
#[must_use = "call the cancel function when the work is done (it releases the context)"]
pub fn with_cancel(parent: &Context) -> (Context, CancelFunc) {
    child(parent, parent.deadline())
}

/// A child of `parent` cancelled at `deadline` at the latest.
#[must_use = "call the cancel function when the work is done (it releases the context and its timer)"]
pub fn with_deadline(parent: &Context, deadline: Instant) -> (Context, CancelFunc) {
    let d = match parent.deadline() {
        Some(p) if p <= deadline => return child(parent, Some(p)),
        _ => deadline,
    };
    let (ctx, cancel) = child(parent, Some(d));
    if d <= goro_runtime::now() {
        // Already past, as Go's: done at once.
        ctx.inner.cancel(ContextError::DeadlineExceeded);
    }
    if ctx.err().is_none() {
        let weak = Arc::downgrade(&ctx.inner);
        let timer = add_timer(
            d,
            TimerAction::Call(Box::new(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.cancel(ContextError::DeadlineExceeded);
                }
            })),
        );
        let mut st = ctx.inner.lock();
        if st.err.is_none() {
            st.timer = Some(timer);
        } else {
            drop(st);
            timer.cancel();
        }
    }
    (ctx, cancel)
}

/// A child of `parent` cancelled after `timeout` at the latest.
#[must_use = "call the cancel function when the work is done (it releases the context and its timer)"]
pub fn with_timeout(parent: &Context, timeout: Duration) -> (Context, CancelFunc) {
    with_deadline(parent, deadline_after(timeout))
}

fn child(parent: &Context, deadline: Option<Instant>) -> (Context, CancelFunc) {
    // A context derived from one that something outside the caller's
    // synctest bubble can cancel can be cancelled from outside too: its
    // channel is not the bubble's (waits on it are not durable).
    let done = if parent.inner.root || parent.done().woken_by() == WokenBy::Bubble {
        Chan::new(0)
    } else {
        Chan::new_outside_bubbles(0)
    };
    let inner = Arc::new(Inner { done, deadline, root: false, state: Mutex::default() });
    let mut pst = parent.inner.lock();
    match pst.err {
        Some(e) => {
            drop(pst);
            inner.cancel(e);
        }
        None if parent.inner.root => {
            // The background context is never cancelled: no registration.
        }
        None => {
            // Children dropped without a cancel leave dead entries: sweep
            // them before adding, so the list stays as long as the live ones.
            pst.children.retain(|(_, w)| w.strong_count() > 0);
            let id = pst.next_id;
            pst.next_id += 1;
            pst.children.push((id, Arc::downgrade(&inner)));
            inner.lock().parent = Some((parent.inner.clone(), id));
        }
    }
    let ctx = Context { inner };
    (ctx.clone(), CancelFunc { ctx })
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cancels with `why` (once), its children with it.
    fn cancel(&self, why: ContextError) {
        let (children, parent, timer, hooks) = {
            let mut st = self.lock();
            if st.err.is_some() {
                return;
            }
            st.err = Some(why);
            let hooks = std::mem::take(&mut st.hooks);
            (std::mem::take(&mut st.children), st.parent.take(), st.timer.take(), hooks)
        };
        if let Some(t) = timer {
            t.cancel();
        }
        for (_, hook) in hooks {
            hook();
        }
        // Unchecked: a cancel may come from outside the bubble the context
        // was made in (a parent's timer, on a scheduler stack), which must
        // not panic there.
        self.done.close_unchecked();
        for (_, c) in children {
            if let Some(c) = c.upgrade() {
                c.cancel(why);
            }
        }
        if let Some((p, id)) = parent {
            p.lock().children.retain(|(k, _)| *k != id);
        }
    }
}

impl Context {
    /// A channel that is closed when the context is done: receive from it
    /// (in `select!`: `recv(ctx.done()) -> _ => ..`) to wait for that. The
    /// background context's never becomes ready.
    pub fn done(&self) -> &Chan<()> {
        &self.inner.done
    }

    /// `None` while the context is live; then why it is done.
    pub fn err(&self) -> Option<ContextError> {
        self.inner.lock().err
    }

    /// When the context will be cancelled at the latest, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// Runs `hook` when the context is cancelled (at once if it is done
    /// already); dropping the returned guard unregisters it.
    pub(crate) fn on_cancel(&self, hook: Box<dyn FnOnce() + Send>) -> HookGuard<'_> {
        let mut st = self.inner.lock();
        if st.err.is_some() {
            drop(st);
            hook();
            return HookGuard { ctx: self, id: None };
        }
        let id = st.next_id;
        st.next_id += 1;
        st.hooks.push((id, hook));
        HookGuard { ctx: self, id: Some(id) }
    }

    /// Whether the context is done (`err().is_some()`).
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// How many children are registered, dropped ones not yet swept
    /// included (tests and leak checks).
    #[doc(hidden)]
    pub fn children(&self) -> usize {
        self.inner.lock().children.len()
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("deadline", &self.inner.deadline).field("err", &self.err()).finish()
    }
}

/// Unregisters a cancel hook when dropped.
pub(crate) struct HookGuard<'a> {
    ctx: &'a Context,
    id: Option<u64>,
}

impl Drop for HookGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.ctx.inner.lock().hooks.retain(|(k, _)| *k != id);
        }
    }
}

/// `Semaphore` waits that a context ends (Go's
/// `x/sync/semaphore.Weighted.Acquire(ctx, n)`).
///
/// ```
/// use goro_chan::context::{self, ContextError, SemaphoreExt};
/// use goro_runtime::sync::Semaphore;
/// use std::time::Duration;
/// let sem = Semaphore::new(1);
/// sem.acquire(); // all permits taken
/// let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(5));
/// assert_eq!(sem.acquire_ctx(&ctx, 1), Err(ContextError::DeadlineExceeded));
/// ```
pub trait SemaphoreExt {
    /// Acquires `k` permits, or gives up when `ctx` is done: `Err` with why
    /// (and no permits taken). Permits granted as the context ends are
    /// kept: `Ok`.
    ///
    /// # Panics
    /// If `k` exceeds the capacity.
    fn acquire_ctx(&self, ctx: &Context, k: usize) -> Result<(), ContextError>;
}

impl SemaphoreExt for goro_runtime::sync::Semaphore {
    fn acquire_ctx(&self, ctx: &Context, k: usize) -> Result<(), ContextError> {
        let guard = std::cell::RefCell::new(None);
        // Durable in a bubble only if the context cannot be cancelled
        // from outside it (Go: a select on the semaphore's channel and
        // `ctx.Done()`): the background context, or one of the bubble.
        let by = if ctx.inner.root { WokenBy::Bubble } else { ctx.done().woken_by() };
        let acquired = self.acquire_n_unless(
            k,
            &|| ctx.is_done(),
            &|u| {
                let u = u.clone();
                *guard.borrow_mut() = Some(ctx.on_cancel(Box::new(move || u.unpark())));
            },
            by,
        );
        drop(guard);
        if acquired {
            Ok(())
        } else {
            Err(ctx.err().expect("given up only when the context is done"))
        }
    }
}
