//! Structured concurrency: `scope`, Gs that may borrow from the caller's
//! stack, as `std::thread::scope` does for threads.
//!
//! `scope(|s| ..)` runs its body, then waits for every G started with
//! `s.go` before it returns, also when the body or a G panics; so a G may
//! borrow anything that outlives the call. A G that panicked and was not
//! joined makes `scope` panic with that G's payload (the first such
//! panic), after all the others finished; a panicking body wins over them.
//!
//! How it is sound: `go` needs a `'static` closure, so each scoped G's
//! closure has its lifetime erased; the erasure is undone by waiting. The
//! counter the scope waits for is decremented only after the G's closure
//! and everything it captured are gone, including its result if nobody
//! holds the handle any more (the result may borrow too).

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::goroutine::{go, JoinHandle};
use crate::sync::WaitGroup;

/// Runs `f` with a [`Scope`] whose [`go`](Scope::go) starts Gs that may
/// borrow from the caller; returns once all of them have finished. Call it
/// from a G (like `go`).
///
/// # Panics
/// If `f` panics, once every scoped G has finished, with `f`'s payload;
/// else if a scoped G that was not joined panicked, with the first such
/// payload.
///
/// ```
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// let total = unsafe {
///     goro_runtime::run(|| {
///         let mut parts = vec![0u64; 4];
///         let input: Vec<u64> = (1..=100).collect();
///         goro_runtime::scope(|s| {
///             for (part, chunk) in parts.iter_mut().zip(input.chunks(25)) {
///                 s.go(move || *part = chunk.iter().sum());
///             }
///         });
///         parts.iter().sum::<u64>()
///     })
/// };
/// assert_eq!(total, 5050);
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        state: Arc::new(ScopeState { running: WaitGroup::new(), panic: Mutex::new(None) }),
        scope: PhantomData,
        env: PhantomData,
    };
    let v = match catch_unwind(AssertUnwindSafe(|| f(&scope))) {
        Ok(v) => v,
        Err(payload) => {
            if crate::m::force_unwinding() {
                // Shutdown is unwinding this G, on a thread of its own where
                // it cannot park: the scoped Gs may still use this frame, so
                // it stays until they are done (or forever, if one never is).
                wait_by_sleeping(&scope.state);
            } else {
                scope.state.running.wait();
            }
            resume_unwind(payload);
        }
    };
    // Every handle is gone now (they cannot outlive `f`): wait for the Gs.
    // A forced unwind out of this wait (shutdown unwinding a parked G) must
    // not leave the frame while they run either.
    let stay = StayWhileRunning(&scope.state);
    scope.state.running.wait();
    drop(stay);
    let child = scope.state.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(payload) = child {
        resume_unwind(payload);
    }
    v
}

/// Waits for a scope's Gs without parking (a thread that cannot park).
fn wait_by_sleeping(state: &ScopeState) {
    while state.running.count() > 0 {
        thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Keeps a scope's frame alive, if it is being unwound, until its Gs are
/// done.
struct StayWhileRunning<'a>(&'a ScopeState);

impl Drop for StayWhileRunning<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            wait_by_sleeping(self.0);
        }
    }
}

/// What the scoped Gs report to their scope.
struct ScopeState {
    /// Scoped Gs not finished (their closure and captures not yet gone).
    running: WaitGroup,
    /// The first panic of a scoped G nobody joined.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// Starts Gs that may borrow from the caller of [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    state: Arc<ScopeState>,
    /// Invariance over `'scope` and `'env`, as `std::thread::Scope`.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

/// Where a scoped G leaves its result, for its handle (or, unjoined, its
/// panic for the scope).
struct Packet<T> {
    result: Mutex<Option<thread::Result<T>>>,
    scope: Arc<ScopeState>,
}

impl<T> Drop for Packet<T> {
    fn drop(&mut self) {
        // The last reference: a panic nobody took goes to the scope.
        if let Some(Err(payload)) = self.result.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            self.scope.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
        }
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Starts a G running `f`, which may borrow anything that outlives the
    /// scope. The scope waits for it; join the handle for its result.
    pub fn go<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let packet = Arc::new(Packet { result: Mutex::new(None), scope: self.state.clone() });
        self.state.running.add(1);
        let body = ScopedBody { f: Some(f), packet: Some(packet.clone()), state: self.state.clone() };
        let main: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || body.run());
        // SAFETY: only the lifetime changes. `scope` does not return before
        // `running` is back to zero, which `ScopedBody` decrements as its
        // very last action, after dropping everything that may borrow from
        // the scope, whether the G ran it or it was dropped unrun (a runtime
        // shutting down, `go` refusing); so nothing borrowed is used after
        // `'scope` ends.
        let main: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(main) };
        let handle = go(main);
        ScopedJoinHandle { packet, handle, scope: PhantomData }
    }
}

/// A scoped G's body: runs `f` into the packet; dropped (run or not), it
/// drops `f` and its packet reference first and then counts the G out of
/// its scope.
struct ScopedBody<F, T> {
    f: Option<F>,
    packet: Option<Arc<Packet<T>>>,
    state: Arc<ScopeState>,
}

impl<F: FnOnce() -> T, T> ScopedBody<F, T> {
    fn run(mut self) {
        let f = self.f.take().expect("a scoped body runs once");
        let r = catch_unwind(AssertUnwindSafe(f));
        if let Some(p) = &self.packet {
            *p.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        }
    }
}

impl<F, T> Drop for ScopedBody<F, T> {
    fn drop(&mut self) {
        let (f, packet) = (self.f.take(), self.packet.take());
        // With no handle left, this drops the result too (it may borrow).
        // A destructor that panics must not skip the count below (the
        // scope would wait forever): its panic goes to the scope.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop((f, packet)))) {
            self.state.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
        }
        self.state.running.done();
    }
}

/// The handle of a G started with [`Scope::go`].
pub struct ScopedJoinHandle<'scope, T> {
    packet: Arc<Packet<T>>,
    handle: JoinHandle<()>,
    scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the G; `Err` holds its panic payload (which then does not
    /// make the scope panic).
    pub fn join(self) -> thread::Result<T> {
        // The G's body catches a panic, so its G returns unless it never
        // ran (a runtime shutting down drops it): then that is the error.
        let joined = self.handle.join();
        let r = self.packet.result.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (r, joined) {
            (Some(r), _) => r,
            (None, Err(e)) => Err(e),
            (None, Ok(())) => unreachable!("a scoped G that ran left no result"),
        }
    }

    /// Whether the G has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl<T> std::fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedJoinHandle").field("id", &self.handle.id()).finish()
    }
}
