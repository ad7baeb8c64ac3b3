//! Futures on Gs: `block_on` polls a future on the current G and parks the
//! G while it is pending; the future's waker readies the G. On a plain
//! thread it blocks the thread instead. `go_future` spawns a G that drives
//! a future.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::g::WaitReason;
use crate::goroutine::{go, JoinHandle};
use crate::park::{current_unparker, park, Unparker};

struct GWaker(Unparker);

impl Wake for GWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `fut` to completion on the calling G (parking it while the future
/// is pending) or thread.
///
/// ```
/// // SAFETY: the G keeps no thread-local state across switch points.
/// let v = unsafe { goro_runtime::run(|| goro_runtime::block_on(async { 40 + 2 })) };
/// assert_eq!(v, 42);
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(GWaker(current_unparker())));
    let mut cx = Context::from_waker(&waker);
    loop {
        crate::m::preempt_point();
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => park(WaitReason::Future),
        }
    }
}

/// Spawns a G that drives `fut`; its output comes through the handle.
#[track_caller]
pub fn go_future<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    go(move || block_on(fut))
}
