//! The user's view of a G: `go`, `Builder`, `JoinHandle`, `yield_now`,
//! `current`.
//!
//! A G's body is wrapped in a panic boundary: a panic is caught where the G
//! starts, handed to whoever joins it, and the M goes on running other Gs.

use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use crate::g::{Body, GoroutineInfo, Life, Switch, WaitReason, G};
use crate::join_cell::JoinCell;
use crate::m;
use crate::park::{self, Unparker};
use crate::sched::{Sched, MAX_STACK_SIZE};
use crate::stats::{Counters, SchedCounters};

/// Spawns a G on the runtime the caller runs on and returns its handle.
///
/// ```
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// let answer = unsafe { goro_runtime::run(|| goro_runtime::go(|| 6 * 7).join().unwrap()) };
/// assert_eq!(answer, 42);
/// ```
///
/// # Panics
/// Outside any runtime (on a plain thread: use [`Runtime::spawn`](crate::Runtime::spawn)
/// there), and, like `std::thread::spawn`, if the G cannot be created (no
/// memory for its stack).
#[track_caller]
pub fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let site = Location::caller();
    let g = m::current_g_ptr();
    if g.is_null() {
        return go_off_g(f, site);
    }
    // SAFETY: `g` is the running G: it (and the runtime it holds) lives
    // at least until it returns from this call, whichever M it is on then.
    let g = unsafe { &*g };
    let sched = &g.sched;
    let bubble = crate::synctest::inherited_from(g, sched);
    match spawn_in(sched, f, None, None, site, bubble) {
        Ok(h) => h,
        Err(_) if m::force_unwinding() => JoinHandle::dropped(),
        Err(e) => panic!("goro::go: {e}"),
    }
}

/// `go` called outside any G: on the scheduler stack of an M, or on a
/// plain thread.
#[cold]
fn go_off_g<F, T>(f: F, site: &'static Location<'static>) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if m::force_unwinding() {
        // A destructor of a G that shutdown is dropping: a panic here would
        // abort the process. The new G is refused the way shutdown refuses
        // every G: its join reports it was dropped.
        drop(f);
        return JoinHandle::dropped();
    }
    let sched = m::current_sched().unwrap_or_else(|| panic!("goro::go: {}", NO_RUNTIME));
    spawn_on(&sched, f, None, None, site).unwrap_or_else(|e| panic!("goro::go: {e}"))
}

/// Why `go` and `Builder::spawn` refuse to run on a plain thread.
const NO_RUNTIME: &str = "called outside a goro runtime; start one with `unsafe { goro::run(..) }` or \
                          `unsafe { Runtime::builder().build() }` and spawn with `Runtime::spawn` from plain threads";

/// Configures a G before spawning it, as `std::thread::Builder` does a thread.
///
/// ```
/// use goro_runtime::{current, Builder};
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// let name = unsafe {
///     goro_runtime::run(|| {
///         let h = Builder::new()
///             .name("worker")
///             .stack_size(64 * 1024)
///             .spawn(|| current().name().map(str::to_owned))
///             .expect("a stack could be mapped");
///         h.join().unwrap()
///     })
/// };
/// assert_eq!(name.as_deref(), Some("worker"));
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    locked: bool,
}

impl Builder {
    /// A builder with no name, the runtime's stack size and no thread lock.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the G; the name shows in `current()`, dumps and overflow reports.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Usable stack bytes (rounded up to pages). Memory is committed only
    /// as the G touches it.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Makes the G start locked to the thread that first runs it, as if
    /// its first instruction were [`lock_os_thread`](crate::lock_os_thread)
    /// (it may still call `unlock_os_thread`).
    pub fn locked(mut self, locked: bool) -> Builder {
        self.locked = locked;
        self
    }

    /// Spawns the G on the runtime the caller runs on; an error on a plain
    /// thread (outside any runtime: use [`Builder::spawn_on`] there).
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let site = Location::caller();
        let sched = m::current_sched().ok_or_else(|| io::Error::other(format!("goro: Builder::spawn {NO_RUNTIME}")))?;
        self.spawn_at(&sched, f, site)
    }

    fn spawn_at<F, T>(self, sched: &Arc<Sched>, f: F, site: &'static Location<'static>) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.locked {
            let f = move || {
                crate::lock_os_thread();
                f()
            };
            spawn_on(sched, f, self.name, self.stack_size, site)
        } else {
            spawn_on(sched, f, self.name, self.stack_size, site)
        }
    }

    /// Spawns the G on `rt`.
    #[track_caller]
    pub fn spawn_on<F, T>(self, rt: &crate::Runtime, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_at(rt.sched(), f, Location::caller())
    }
}

pub(crate) fn spawn_on<F, T>(
    sched: &Arc<Sched>,
    f: F,
    name: Option<String>,
    stack_size: Option<usize>,
    site: &'static Location<'static>,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_in(sched, f, name, stack_size, site, crate::synctest::inherited(sched))
}

/// `spawn_on` into synctest bubble `bubble` (`None`: no bubble).
pub(crate) fn spawn_in<F, T>(
    sched: &Arc<Sched>,
    f: F,
    name: Option<String>,
    stack_size: Option<usize>,
    site: &'static Location<'static>,
    bubble: Option<Arc<crate::synctest::Bubble>>,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let cell = new_cell();
    let completer = Completer(Some(cell));
    let body = move || {
        let completer = completer;
        let r = catch_unwind(AssertUnwindSafe(f));
        if let Err(e) = r {
            if m::force_unwinding() {
                // The runtime is unwinding this parked G at shutdown: let
                // the unwind reach the context's root (`context.rs`).
                resume_unwind(e);
            }
            completer.complete(Err(e));
        } else {
            completer.complete(r);
        }
    };
    let bubble_id = bubble.as_ref().map_or(0, |b| b.id);
    let id = newproc(sched, body, name, stack_size, site, bubble)?;
    Ok(JoinHandle { cell, id, runtime: Some(m::RuntimeId::of(sched)), bubble: bubble_id, _t: PhantomData })
}

/// Go's `newproc`: creates a G running `body` and queues it (in
/// `runnext` of the current P, or on the global queue from outside).
/// Returns its id.
pub(crate) fn newproc<F>(
    s: &Arc<Sched>,
    body: F,
    name: Option<String>,
    stack_size: Option<usize>,
    site: &'static Location<'static>,
    bubble: Option<Arc<crate::synctest::Bubble>>,
) -> io::Result<u64>
where
    F: FnOnce() + Send + 'static,
{
    if s.shutdown.started() {
        return Err(io::Error::other("goro: spawn on a runtime that is shutting down"));
    }
    let size = stack_size.unwrap_or(s.gpool.stack_size);
    if size != s.gpool.stack_size && size > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("goro: stack size {size} is over the limit of {MAX_STACK_SIZE} bytes"),
        ));
    }
    if s.gpool.stack_exhausted() {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            "goro: no memory could be mapped for the last G stack (address space or vm.max_map_count \
             exhausted); not spawning more until a stack is freed",
        ));
    }
    let here = s.current_p();
    let id = match here {
        Some((_, p)) => {
            // SAFETY: we hold P `p`.
            let local = unsafe { s.ps[p].local() };
            if local.goid_next == local.goid_end {
                // Go's goidcache: take ids in batches of 16.
                local.goid_next = NEXT_GOID.fetch_add(16, Ordering::Relaxed);
                local.goid_end = local.goid_next + 16;
            }
            let id = local.goid_next;
            local.goid_next += 1;
            id
        }
        None => NEXT_GOID.fetch_add(1, Ordering::Relaxed),
    };
    if let Some(b) = &bubble {
        b.g_spawned();
    }
    let life =
        Life { id, name: name.map(String::into_boxed_str), body: Body::new(body), site, stack_size: size, bubble };
    // Go's gfget: reuse a dead G of this P if there is one.
    // SAFETY: we hold P `p`.
    let recycled = here.and_then(|(_, p)| s.gpool.gfget(unsafe { s.ps[p].local() }));
    let g = match recycled {
        Some(g) => {
            // SAFETY: `gfput` put the G on the free list as its only
            // holder, and `gfget` gave it to us.
            unsafe { g.begin_life(life) };
            g
        }
        None => {
            // A new G enters the registry for good (`g.rs`).
            let g = G::new(s.clone(), life);
            let shard = here.map_or((id as usize) % s.procs, |(_, p)| p);
            if here.is_none() {
                SchedCounters::bump(&s.counters.lock_other_registry);
            }
            let idx = s.ps[shard].registry.lock().unwrap().insert(g.clone());
            g.slot.store(((shard as u64) << 32) | idx as u64, Ordering::Relaxed);
            g
        }
    };

    match here {
        Some((c, p)) => {
            let pp = &s.ps[p];
            Counters::bump(&pp.counters.spawned);
            // Into `runnext`: woken for as a readied G is (a spawner that
            // blocks at once, as in spawn-and-join, wakes nobody).
            let behind = s.runqput(pp, g, true);
            s.wake_for_queued(c, p, behind);
        }
        None => {
            SchedCounters::bump(&s.counters.external_spawns);
            s.globrunqput(g);
            s.wakep();
        }
    }
    match here {
        Some((c, _)) => m::back_to_user_in(c),
        None => m::back_to_user(),
    }
    Ok(id)
}

/// Ids of Gs; each P takes them in batches (Go's `goidcache`).
static NEXT_GOID: AtomicU64 = AtomicU64::new(1);

/// A G's result on its way to the handle (`join_cell.rs`).
type Cell<T> = JoinCell<thread::Result<T>, Unparker>;

/// A cell on the heap, for its two owners (a completer and a handle).
fn new_cell<T>() -> NonNull<Cell<T>> {
    NonNull::from(Box::leak(Box::new(JoinCell::new())))
}

/// An owner lets go of `cell`; the last frees it.
///
/// # Safety
/// The caller is one of the two owners, and lets go once.
unsafe fn let_go<T>(cell: NonNull<Cell<T>>) {
    // SAFETY: the contract: the cell lives until its second release.
    if unsafe { cell.as_ref() }.release() {
        // SAFETY: the last owner: nobody else touches it any more.
        drop(unsafe { Box::from_raw(cell.as_ptr()) });
    }
}

/// The G's owner of its cell: delivers the G's result; if dropped unused
/// (the G was dropped at runtime shutdown before finishing), delivers an
/// error instead.
struct Completer<T>(Option<NonNull<Cell<T>>>);

// SAFETY: the completer moves into the G's body, and the cell hands the
// result over to the handle's thread: what crosses threads is a `T`.
unsafe impl<T: Send> Send for Completer<T> {}

impl<T> Completer<T> {
    fn complete(mut self, r: thread::Result<T>) {
        if let Some(cell) = self.0.take() {
            deliver(cell, r);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(cell) = self.0.take() {
            let msg: &'static str = "goroutine was dropped before it finished (its runtime shut down)";
            deliver(cell, Err(Box::new(msg)));
        }
    }
}

fn deliver<T>(cell: NonNull<Cell<T>>, r: thread::Result<T>) {
    // SAFETY: the completer owns the cell until its release below.
    let waiter = unsafe { cell.as_ref() }.complete(r);
    // SAFETY: the completer's one release.
    unsafe { let_go(cell) };
    if let Some(w) = waiter {
        w.unpark_owned();
    }
}

/// An owned permission to join a G (wait for it to finish and take its
/// result). Dropping it detaches the G. A panic in the G is contained and
/// reported to the joiner:
///
/// ```
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// let caught = unsafe {
///     goro_runtime::run(|| {
///         let h = goro_runtime::go(|| -> u32 { panic!("boom") });
///         h.join().unwrap_err().downcast_ref::<&str>().map(|s| s.to_string())
///     })
/// };
/// assert_eq!(caught.as_deref(), Some("boom"));
/// ```
pub struct JoinHandle<T> {
    /// The handle's share of the G's result cell.
    cell: NonNull<Cell<T>>,
    id: u64,
    /// The runtime the G runs on (`None`: a handle to a G never run).
    runtime: Option<m::RuntimeId>,
    /// The G's synctest bubble (0: none).
    bubble: u64,
    _t: PhantomData<T>,
}

// SAFETY: a handle is the joiner's share of the cell: `join`,
// `join_timeout` and `try_take` (the only ones that touch the cell's
// joiner side) take it by value or `&mut`; through `&` only `is_finished`
// (an atomic load) and `id` are reachable. What crosses threads is a `T`.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: the handle's one release (drop runs once).
        unsafe { let_go(self.cell) };
    }
}

impl<T> JoinHandle<T> {
    /// A handle to a G that was never run: its join reports the drop.
    fn dropped() -> JoinHandle<T> {
        let cell = new_cell();
        drop(Completer(Some(cell)));
        JoinHandle { cell, id: 0, runtime: None, bubble: 0, _t: PhantomData }
    }

    /// The cell's joiner side: the result, or `Err` after leaving the
    /// waiter `waiter()` makes.
    fn take_or_wait(&mut self, waiter: impl FnOnce() -> Unparker) -> Result<thread::Result<T>, ()> {
        // SAFETY: `&mut self`: the one joiner. The handle is its cell's
        // owner until dropped.
        let r = unsafe { self.cell.as_ref().take_or_wait(waiter) }?;
        Ok(r.expect("a G's result is taken once: join consumes the handle"))
    }

    /// Waits for the G to finish: parks the calling G, or blocks the calling
    /// thread outside a G. `Err` holds the G's panic payload.
    pub fn join(mut self) -> thread::Result<T> {
        loop {
            if let Ok(r) = self.take_or_wait(park::current_unparker) {
                return r;
            }
            park::park_woken_by(WaitReason::Join, self.woken_by());
        }
    }

    /// Waits up to `timeout` for the G to finish: `Ok` as [`join`](Self::join),
    /// or `Err` with the handle back if the G still runs, to join later.
    ///
    /// ```
    /// use std::time::Duration;
    /// // SAFETY: the Gs keep no thread-local state across switch points.
    /// unsafe {
    ///     goro_runtime::run(|| {
    ///         let slow = goro_runtime::go(|| goro_runtime::sleep(Duration::from_millis(50)));
    ///         let slow = slow.join_timeout(Duration::from_millis(1)).unwrap_err();
    ///         assert!(slow.join().is_ok());
    ///     })
    /// };
    /// ```
    pub fn join_timeout(mut self, timeout: std::time::Duration) -> Result<thread::Result<T>, JoinHandle<T>> {
        let deadline = crate::timer::deadline_after(timeout);
        loop {
            if let Ok(r) = self.take_or_wait(park::current_unparker) {
                return Ok(r);
            }
            if crate::timer::now() >= deadline {
                // A wake-up already on its way is a spurious one for the
                // caller's next park, which parks allow.
                // SAFETY: `self` is the one joiner.
                if let Some(r) = unsafe { self.cell.as_ref().cancel_wait() } {
                    return Ok(r);
                }
                return Err(self);
            }
            park::park_until_woken_by(WaitReason::Join, deadline, self.woken_by());
        }
    }

    /// Who may end a join: the joined G, so its runtime's Gs (or its
    /// bubble's, a durable wait) if the joiner runs there too.
    fn woken_by(&self) -> park::WokenBy {
        match m::current_runtime() {
            Some(_) if self.bubble != 0 && self.bubble == crate::synctest::current_bubble_id() => park::WokenBy::Bubble,
            Some(r) if Some(r) == self.runtime => park::WokenBy::RuntimeOnly,
            _ => park::WokenBy::AnyThread,
        }
    }

    /// Takes the result if the G has finished; else registers `waiter` to
    /// be woken when it does.
    pub(crate) fn try_take(&mut self, waiter: Unparker) -> Option<thread::Result<T>> {
        self.take_or_wait(|| waiter).ok()
    }

    /// Whether the G has finished (returned or panicked).
    pub fn is_finished(&self) -> bool {
        // SAFETY: the handle owns its share of the cell until dropped.
        unsafe { self.cell.as_ref() }.is_done()
    }

    /// The id of the G.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

/// Yields the M to other runnable Gs (Go's `runtime.Gosched`); the G goes to
/// the tail of its P's queue. Outside a G, yields the OS thread.
pub fn yield_now() {
    // One thread-local read (the M keeps its P first, as `switch_out` does).
    let g = m::reacquire_p_then_current_g();
    if g.is_null() {
        thread::yield_now();
    } else {
        // SAFETY: `g` is the G running on this thread, on whose stack we are.
        unsafe { m::switch_out_of(g, Switch::Yield) };
    }
}

/// The running G's id and name. Panics outside a G.
pub fn current() -> GoroutineInfo {
    try_current().expect("goro::current() called outside a goroutine")
}

/// The running G's id and name, or `None` on a plain thread.
pub fn try_current() -> Option<GoroutineInfo> {
    m::current_g().map(|g| GoroutineInfo::of(&g))
}

#[cfg(test)]
mod tests {
    /// A `JoinHandle<()>`'s cell fits a 64-byte heap chunk (56 bytes and
    /// the allocator's 8-byte header): every spawn allocates one.
    #[test]
    fn a_unit_results_cell_is_56_bytes() {
        assert_eq!(std::mem::size_of::<super::Cell<()>>(), 56);
    }
}
