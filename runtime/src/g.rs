//! G: a goroutine. A stackful coroutine (`context.rs`) with its identity,
//! status, wait reason and park token.
//!
//! A G is shared as `Arc<G>`: run queues hold it as a raw `Arc` pointer,
//! waiters hold an `Unparker` (a clone), free lists hold dead Gs, and the
//! runtime's registry (`p.rs`) holds one reference to every G object from
//! its creation on, dead ones included (Go's `allgs`): so that shutdown
//! and dumps can find parked Gs, a parked G nobody will wake stays alive,
//! and a spawn or an exit of a recycled G never touches the registry. A G
//! leaves it only when it cannot be recycled (something else still held it
//! when it exited) or at shutdown.
//!
//! The coroutine itself (`co`) is touched only by the M that runs the G, or
//! by the thread that shuts the runtime down once every M has exited.
//!
//! Also here: a G's lives. `newproc` makes a G with [`G::new`] or reuses a
//! dead one from the free lists ([`GPool::gfget`], Go's `gfget`); either
//! way [`G::begin_life`] sets what a new life needs. A G gets its stack
//! when it first runs ([`GPool::gstart`]) and gives it back when it exits
//! ([`GPool::gdestroy`]); if nothing else holds it then, the G is put back
//! as it was made ([`G::end_life`]) and kept for the next spawn
//! ([`GPool::gfput`], Go's `gfput`).
//!
//! **Who may write a life's fields** (`goid`, `name`, `spawn_site`,
//! `stack_size`, `bubble`, and the ones `end_life` puts back): only the
//! holder of a dead G that no one else holds besides the registry, in
//! `gfput` and `begin_life`. Everybody else reads them through a reference
//! taken while the G was alive, which keeps `gfput` from recycling it. A
//! registry reader that clones a G races with that check; the two sides
//! order themselves with `SeqCst` fences (`recycle.rs`, loom-checked):
//! either `gfput` counts the reader's reference and frees the G instead of
//! recycling it, or the reader sees the G dead and reads nothing else.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::p::PLocal;
use crate::sched::Sched;
use crate::stack::{self, SharedPool};

/// `G::slot` of a G not in a registry.
pub(crate) const UNREGISTERED: u64 = u64::MAX;

/// G objects alive in this process (all runtimes), for leak checks.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// How many G objects exist in the process right now (running, parked,
/// dead and kept for reuse): back to its earlier value once a runtime is
/// dropped and its handles are joined, unless a reference leaked.
pub fn live_gs() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Why a G gives its M back to the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Switch {
    /// `yield_now`: back to the tail of the local queue.
    Yield,
    /// Time slice used up at a preemption point: to the global queue (Go's
    /// `gopreempt_m`).
    Preempt,
    /// Waiting: see `park.rs`.
    Park,
    /// The M lost its P (syscall retaken, hog handoff) and no idle P was
    /// free: queue the G globally and stop the M (Go's `exitsyscall0`).
    NeedP,
}

pub(crate) type Co = crate::context::Context;

/// Hints the CPU to fetch the cache line holding `addr` (x86_64; nothing
/// elsewhere). Any address will do: a prefetch never faults and reads
/// nothing the program sees.
#[inline]
fn prefetch_line(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE (baseline on x86_64) and never
    // faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Hints the CPU to fetch the two cache lines of `g` that running it
/// touches (`G`'s layout). `g` is only a hint: it may be null, stale or
/// freed (its address is used, never dereferenced).
#[inline]
pub(crate) fn prefetch(g: *const G) {
    prefetch_line(g as usize);
    prefetch_line((g as usize).wrapping_add(64));
}

// The layout `G`'s doc describes: what only the running M writes fills the
// first line, what other Ms write starts the second.
const _: () = assert!(std::mem::offset_of!(G, status) == 64);
const _: () = assert!(std::mem::offset_of!(G, bubble) + 8 <= 128);

/// Hints the CPU to fetch the top of `g`'s stack, where resuming it lands
/// (the line of its last stack pointer and the one below). `g` must be a
/// G this M owns (dequeued, not yet running).
#[inline]
pub(crate) fn prefetch_stack(g: &G) {
    // SAFETY: the caller owns `g` (it is not running), so nothing writes
    // its context now.
    let sp = unsafe { (*g.co.get()).as_ref() }.map_or(0, Co::sp_hint);
    if sp != 0 {
        prefetch_line(sp);
        prefetch_line(sp.wrapping_sub(64));
    }
}

/// The state of a G, as Go's `_Grunnable`, `_Grunning`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GStatus {
    /// In a run queue, waiting for an M (`_Grunnable`).
    Runnable = 0,
    /// Running on an M (`_Grunning`).
    Running = 1,
    /// Parked until something readies it (`_Gwaiting`); see its wait reason.
    Waiting = 2,
    /// In `goro::syscall` or `goro::blocking`, its P free for others (`_Gsyscall`).
    Syscall = 3,
    /// Returned, or not started yet (`_Gdead`).
    Dead = 4,
}

impl GStatus {
    pub(crate) fn from_u8(v: u8) -> GStatus {
        match v {
            0 => GStatus::Runnable,
            1 => GStatus::Running,
            2 => GStatus::Waiting,
            3 => GStatus::Syscall,
            _ => GStatus::Dead,
        }
    }

    /// The name a goroutine dump prints.
    pub fn as_str(self) -> &'static str {
        match self {
            GStatus::Runnable => "runnable",
            GStatus::Running => "running",
            GStatus::Waiting => "waiting",
            GStatus::Syscall => "syscall",
            GStatus::Dead => "dead",
        }
    }
}

/// Declares `WaitReason` with its variants' dump strings, in one list.
macro_rules! wait_reasons {
    ($($(#[$doc:meta])* $v:ident => $s:literal,)*) => {
        /// Why a G is waiting; the strings are Go's, as a goroutine dump shows them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum WaitReason {
            $($(#[$doc])* $v,)*
        }

        impl WaitReason {
            const ALL: &'static [WaitReason] = &[$(WaitReason::$v,)*];

            pub(crate) fn from_u8(v: u8) -> WaitReason {
                Self::ALL.get(v as usize).copied().unwrap_or(WaitReason::None)
            }

            /// The name a goroutine dump prints.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(WaitReason::$v => $s,)*
                }
            }
        }
    };
}

wait_reasons! {
    /// Not waiting.
    None => "",
    /// Receiving from a channel.
    ChanReceive => "chan receive",
    /// Sending on a channel.
    ChanSend => "chan send",
    /// Receiving from a nil channel: forever.
    ChanReceiveNilChan => "chan receive (nil chan)",
    /// Sending on a nil channel: forever.
    ChanSendNilChan => "chan send (nil chan)",
    /// In a `select!` with no ready arm.
    Select => "select",
    /// In a `select!` without arms: forever.
    SelectNoCases => "select (no cases)",
    /// In `sleep`.
    Sleep => "sleep",
    /// In `synctest::wait`, for the rest of the bubble to block.
    SynctestWait => "synctest.Wait",
    /// In `synctest::run`, for the bubble to end.
    SynctestRun => "synctest.Run",
    /// Waiting for a socket to be ready (`goro::net`).
    IoWait => "IO wait",
    /// Waiting for a P after a system call.
    Syscall => "syscall",
    /// Waiting for `Semaphore` permits.
    Semacquire => "semacquire",
    /// Waiting for a `Mutex`.
    MutexLock => "sync.Mutex.Lock",
    /// Waiting to read-lock an `RwLock`.
    RwLockRead => "sync.RWMutex.RLock",
    /// Waiting to write-lock an `RwLock`.
    RwLockWrite => "sync.RWMutex.Lock",
    /// In `Condvar::wait`.
    CondWait => "sync.Cond.Wait",
    /// In `WaitGroup::wait`.
    WaitGroupWait => "sync.WaitGroup.Wait",
    /// goro: waiting in `JoinHandle::join`.
    Join => "goroutine join",
    /// goro: a future in `block_on` is pending.
    Future => "future",
    /// goro: a raw `goro::park`.
    Park => "park",
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A goroutine. `repr(C, align(64))`, hot fields first, in two cache
/// lines by who writes them: the first only the M running the G writes
/// (its context: stack and saved stack pointer); the second other Ms write too
/// (status and park token, set by whoever readies the G; `ready_at`), or
/// read when they take the G from a queue (`lockedm`, `bubble`). The
/// scheduler prefetches both for the G it will run next (`prefetch`): with
/// hundreds of runnable Gs they are not in L1. Keeping the two apart
/// matters: with the coroutine's saved stack pointer on the line an
/// unparker writes, `select4` (Gs parked and readied from the other P) was
/// 1.15x slower.
#[repr(C, align(64))]
pub struct G {
    /// Its stack and saved stack pointer (`context.rs`), from its first
    /// run until it exits.
    pub(crate) co: UnsafeCell<Option<Co>>,
    /// Nesting depth of `lock_os_thread` calls (Go's `lockedExt`), and
    /// switches made while unwinding (Go's `lockedInt` has this role for
    /// the runtime's own reasons). Touched only by the G while it runs.
    pub(crate) locked_ext: Cell<u32>,
    pub(crate) locked_int: Cell<u32>,
    pub(crate) status: AtomicU8,
    pub(crate) wait_reason: AtomicU8,
    pub(crate) park: crate::park_token::ParkToken,
    /// Whether something outside the runtime may wake the G (deadlock
    /// detection counts only Gs for which this is false).
    pub(crate) wait_external: AtomicBool,
    /// Whether the G's current (or last) park is durable in its bubble:
    /// written by the G before it parks, read under the bubble's lock.
    pub(crate) durable: AtomicBool,
    /// The M this G is wired to (Go's `g.lockedm`), null if none: set and
    /// cleared only by the G itself while it runs (`lock_os_thread.rs`),
    /// read by the M that takes the G from a run queue, after the queue's
    /// Acquire.
    pub(crate) lockedm: AtomicPtr<crate::m::M>,
    /// When the G was made runnable (ns since epoch; sampled, 0 if not).
    pub(crate) ready_at: AtomicU64,
    /// The synctest bubble the G belongs to, fixed for its life
    /// (`synctest.rs`). A life's field: see the module docs.
    bubble: UnsafeCell<Option<Arc<crate::synctest::Bubble>>>,
    /// The G's id (a life's field).
    goid: Cell<u64>,
    /// Nanoseconds since the runtime's epoch when the G last parked.
    pub(crate) wait_since: AtomicU64,
    /// Registry slot: `shard << 32 | index`, set when the G is registered
    /// (`UNREGISTERED` before and after).
    pub(crate) slot: AtomicU64,
    /// Trace flow id of the unpark that readied it (0 if none).
    pub(crate) flow_id: AtomicU64,
    /// Life's fields (module docs): the name given at spawn, where the
    /// spawn was, and the stack size asked for.
    name: UnsafeCell<Option<Box<str>>>,
    pub(crate) sched: Arc<Sched>,
    spawn_site: Cell<&'static Location<'static>>,
    stack_size: Cell<usize>,
    /// The guard page `[lo, hi)` of the G's stack once it has one, for the
    /// stack-overflow handler.
    pub(crate) guard: Cell<(usize, usize)>,
    /// The body of a G that has not run yet. A G gets its stack (and its
    /// coroutine) only when it first runs, from its P's cache of hot stacks:
    /// a burst of spawned Gs that run one after another reuses the same
    /// few stacks instead of touching a fresh one each.
    pub(crate) start: UnsafeCell<Option<Body>>,
}

// SAFETY: `co` is touched only by the single M running the G or, for the
// saved stack pointer's prefetch, about to run it (a G runs on one M at a
// time; handing it over goes through run queues with Release/Acquire), or by
// the shutdown thread after every M has exited. The other `Cell`s follow
// the same rule: `locked_ext` and `locked_int` are the running G's own,
// `guard` is set by the M that starts the G or resets it where it exited,
// and read by the overflow handler on the thread running it. A life's
// fields (`goid`, `name`, `spawn_site`, `stack_size`, `bubble`) are written
// only by the sole holder of a dead G and read only through references
// that keep it from being recycled (the module docs). Every other field is
// immutable or atomic.
unsafe impl Send for G {}
// SAFETY: as above.
unsafe impl Sync for G {}

/// What a spawn gives a G: everything that differs from one life to the
/// next.
pub(crate) struct Life {
    pub id: u64,
    pub name: Option<Box<str>>,
    pub body: Body,
    pub site: &'static Location<'static>,
    pub stack_size: usize,
    pub bubble: Option<Arc<crate::synctest::Bubble>>,
}

impl G {
    /// A new G of runtime `sched` that starts life `life` (not yet
    /// registered: `newproc` does that).
    pub(crate) fn new(sched: Arc<Sched>, life: Life) -> Arc<G> {
        let g = G {
            goid: Cell::new(0),
            name: UnsafeCell::new(None),
            sched,
            status: AtomicU8::new(GStatus::Dead as u8),
            wait_reason: AtomicU8::new(0),
            wait_since: AtomicU64::new(0),
            park: Default::default(),
            slot: AtomicU64::new(UNREGISTERED),
            spawn_site: Cell::new(life.site),
            stack_size: Cell::new(0),
            guard: Default::default(),
            start: UnsafeCell::new(None),
            co: Default::default(),
            ready_at: AtomicU64::new(0),
            flow_id: AtomicU64::new(0),
            wait_external: AtomicBool::new(true),
            lockedm: Default::default(),
            locked_ext: Cell::new(0),
            locked_int: Cell::new(0),
            bubble: UnsafeCell::new(None),
            durable: AtomicBool::new(false),
        };
        LIVE.fetch_add(1, Ordering::Relaxed);
        // SAFETY: nobody else can see `g` yet.
        unsafe { g.begin_life(life) };
        Arc::new(g)
    }

    /// Starts a life of the G, new or dead (then recycled: Go's `gfget`
    /// and `newproc1`): sets what a new life needs; everything else a life
    /// may change was put back when the last one ended (`end_life`).
    ///
    /// # Safety
    /// The caller is the G's only holder besides its registry (a new G, or
    /// one `gfput` put on a free list and `gfget` took off it): no one else
    /// reads a life's fields meanwhile (module docs).
    pub(crate) unsafe fn begin_life(&self, life: Life) {
        // `end_life` ran on the P where the G exited, whose cache usually
        // still holds it; the spawning P, often another (through the shared
        // free list), writes only these fields, so that it waits on as few
        // of the G's cache lines as it can. It only writes them: the fields
        // a life takes (`name`, `start`, `bubble`) are `None` between
        // lives, so there is no old value to load and drop, and a store
        // to a line not in this P's cache does not stall as a load would.
        debug_assert!(self.is_reset(), "a recycled G went through end_life");
        self.goid.set(life.id);
        if life.name.is_some() {
            // SAFETY: the contract; the old value is `None` (nothing to drop).
            unsafe { self.name.get().write(life.name) };
        }
        self.spawn_site.set(life.site);
        self.stack_size.set(life.stack_size);
        // SAFETY: as for `name` (the body is, besides, the runner's only).
        unsafe { self.start.get().write(Some(life.body)) };
        if life.bubble.is_some() {
            // SAFETY: as for `name`.
            unsafe { self.bubble.get().write(life.bubble) };
        }
        // Release: a registry reader that sees the G alive sees its life's
        // fields (`clone_if_live`).
        self.status.store(GStatus::Runnable as u8, Ordering::Release);
    }

    /// A reference to registered G `g` if it is alive (not dead: free, or
    /// being recycled). Its life's fields may be read through it: holding
    /// it keeps `gfput` from recycling the G. The caller holds the
    /// registry's lock, so the registry's own reference outlives the call
    /// and a clone dropped here is never the last.
    pub(crate) fn clone_if_live(g: &Arc<G>) -> Option<Arc<G>> {
        let g = g.clone();
        // Either `gfput` counts this reference, or we see the G dead
        // (`recycle.rs`).
        crate::recycle::reader_sees_live(&g.status, GStatus::Dead as u8).then_some(g)
    }

    /// Takes the G out of its registry (it will not be recycled, or the
    /// runtime shuts down). Returns the registry's reference, for the
    /// caller to drop: outside the lock, as it may be the last.
    pub(crate) fn leave_registry(&self) -> Option<Arc<G>> {
        let slot = self.slot.swap(UNREGISTERED, Ordering::Relaxed);
        if slot == UNREGISTERED {
            return None;
        }
        let (shard, idx) = ((slot >> 32) as usize, slot as u32);
        if !crate::m::holds_p_of(&self.sched, shard) {
            crate::stats::SchedCounters::bump(&self.sched.counters.lock_other_registry);
        }
        let mut reg = self.sched.ps[shard].registry.lock().unwrap_or_else(|e| e.into_inner());
        reg.remove(idx, self)
    }

    /// Unwinds the G's suspended stack where it is (its destructors run on
    /// this thread, `context.rs`), then frees its context and any body it
    /// never ran. Shutdown's end of a G.
    ///
    /// # Safety
    /// The caller is the G's only runner (`ParkToken::kill` made it so),
    /// and no M resumes it after this.
    pub(crate) unsafe fn unwind_and_free(self: &Arc<G>) {
        // SAFETY: the contract: nobody else touches the context or body;
        // the context is in its G, where it has always been.
        unsafe {
            if let Some(co) = (*self.co.get()).as_ref() {
                if !co.unwind() {
                    // A destructor parked during the unwind: its frames
                    // still point into the context. Keep the G (and so the
                    // context and its stack) for ever.
                    std::mem::forget(self.clone());
                    return;
                }
            }
            drop((*self.co.get()).take());
            drop((*self.start.get()).take());
        }
    }

    /// Ends a life: puts back what `begin_life` does not set, and drops
    /// the name and the bubble (a dead G keeps nothing alive).
    ///
    /// # Safety
    /// The G is dead and the caller its only holder besides its registry
    /// (`gfput` checked).
    unsafe fn end_life(&self) {
        // SAFETY: the contract.
        unsafe { *self.name.get() = None };
        self.wait_reason.store(0, Ordering::Relaxed);
        self.wait_since.store(0, Ordering::Relaxed);
        self.park.reset();
        self.guard.set((0, 0));
        debug_assert!(
            // SAFETY: the contract: nobody runs the G.
            unsafe { (*self.start.get()).is_none() && (*self.co.get()).is_none() },
            "a dead G has no body or coroutine"
        );
        self.ready_at.store(0, Ordering::Relaxed);
        self.flow_id.store(0, Ordering::Relaxed);
        self.wait_external.store(true, Ordering::Relaxed);
        debug_assert!(self.lockedm.load(Ordering::Relaxed).is_null(), "a dead G is wired to no M");
        self.locked_ext.set(0);
        self.locked_int.set(0);
        // SAFETY: the contract.
        unsafe { *self.bubble.get() = None };
        self.durable.store(false, Ordering::Relaxed);
    }

    /// Whether every field `end_life` puts back is as it left it (checks
    /// only; the caller holds the G alone).
    fn is_reset(&self) -> bool {
        // SAFETY: `begin_life`'s contract: nobody else touches the G.
        let (name, start, co, bubble) = unsafe {
            (
                (*self.name.get()).is_none(),
                (*self.start.get()).is_none(),
                (*self.co.get()).is_none(),
                (*self.bubble.get()).is_none(),
            )
        };
        name && start
            && co
            && bubble
            && self.wait_reason.load(Ordering::Relaxed) == 0
            && self.wait_since.load(Ordering::Relaxed) == 0
            && self.park.is_empty()
            && self.guard.get() == (0, 0)
            && self.ready_at.load(Ordering::Relaxed) == 0
            && self.flow_id.load(Ordering::Relaxed) == 0
            && self.wait_external.load(Ordering::Relaxed)
            && self.lockedm.load(Ordering::Relaxed).is_null()
            && self.locked_ext.get() == 0
            && self.locked_int.get() == 0
            && !self.durable.load(Ordering::Relaxed)
    }

    /// The G's id, unique in the process (Go's `goid`).
    pub fn id(&self) -> u64 {
        self.goid.get()
    }

    /// Where the G was spawned.
    pub(crate) fn spawn_site(&self) -> &'static Location<'static> {
        self.spawn_site.get()
    }

    /// The stack size the G asked for.
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_size.get()
    }

    /// The synctest bubble the G belongs to.
    pub(crate) fn bubble(&self) -> Option<&Arc<crate::synctest::Bubble>> {
        // SAFETY: a life's field, read through a reference that keeps the
        // G's life from ending (module docs).
        unsafe { (*self.bubble.get()).as_ref() }
    }

    pub fn name(&self) -> Option<&str> {
        // SAFETY: a life's field, read as `bubble` is.
        unsafe { (*self.name.get()).as_deref() }
    }

    pub fn status(&self) -> GStatus {
        GStatus::from_u8(self.status.load(Ordering::Relaxed))
    }

    pub(crate) fn set_status(&self, s: GStatus) {
        self.status.store(s as u8, Ordering::Relaxed);
    }

    /// Whether the G belongs to bubble `b`.
    pub(crate) fn bubble_is(&self, b: &crate::synctest::Bubble) -> bool {
        self.bubble().is_some_and(|x| std::ptr::eq(Arc::as_ptr(x), b))
    }

    pub fn wait_reason(&self) -> WaitReason {
        WaitReason::from_u8(self.wait_reason.load(Ordering::Relaxed))
    }
}

/// What `goro::current()` tells about the running G.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoroutineInfo {
    id: u64,
    name: Option<String>,
}

impl GoroutineInfo {
    pub(crate) fn of(g: &G) -> Self {
        GoroutineInfo { id: g.id(), name: g.name().map(str::to_string) }
    }

    /// The G's id, unique in the process (Go's `goid`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The name given with `Builder::name`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// Bytes of closure a G stores inline (no allocation).
const INLINE_BODY: usize = 96;

#[repr(C, align(16))]
pub(crate) struct InlineBuf([std::mem::MaybeUninit<u8>; INLINE_BODY]);

/// A G's body before it runs: the closure stored inline in the G when it is
/// small (most are: a few captured handles), boxed otherwise. With G
/// recycling this makes spawning allocation-free but for the join slot:
/// allocations freed on another thread were the main cost of spawn (glibc's
/// arena locks).
pub(crate) enum Body {
    Inline { buf: InlineBuf, call: unsafe fn(*mut u8), drop: unsafe fn(*mut u8) },
    Boxed(Box<dyn FnOnce() + Send>),
}

// SAFETY: built only from `F: Send` closures (see `Body::new`).
unsafe impl Send for Body {}

/// # Safety
/// `p` points to a live `F` that is not used again.
unsafe fn call_inline<F: FnOnce()>(p: *mut u8) {
    // SAFETY: `p` points to a live `F` that is not used again (contract).
    let f = unsafe { std::ptr::read(p as *mut F) };
    f()
}

/// # Safety
/// `p` points to a live `F` that is not used again.
unsafe fn drop_inline<F>(p: *mut u8) {
    // SAFETY: `p` points to a live `F` that is not used again (contract).
    unsafe { std::ptr::drop_in_place(p as *mut F) }
}

impl Body {
    pub fn new<F: FnOnce() + Send + 'static>(f: F) -> Body {
        if std::mem::size_of::<F>() <= INLINE_BODY && std::mem::align_of::<F>() <= 16 {
            let mut buf = InlineBuf([std::mem::MaybeUninit::uninit(); INLINE_BODY]);
            // SAFETY: the buffer is large and aligned enough for F (checked
            // above) and owned by us.
            unsafe { std::ptr::write(buf.0.as_mut_ptr() as *mut F, f) };
            Body::Inline { buf, call: call_inline::<F>, drop: drop_inline::<F> }
        } else {
            Body::Boxed(Box::new(f))
        }
    }

    /// Runs the body, consuming it.
    pub fn run(self) {
        let mut this = std::mem::ManuallyDrop::new(self);
        match &mut *this {
            // SAFETY: `buf` holds the live closure `call` was made for; the
            // ManuallyDrop keeps our Drop from dropping it again.
            Body::Inline { buf, call, .. } => unsafe { call(buf.0.as_mut_ptr() as *mut u8) },
            Body::Boxed(b) => {
                // SAFETY: we own the box and `this` is never used or dropped again.
                let b = unsafe { std::ptr::read(b) };
                b()
            }
        }
    }
}

impl Drop for G {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Body::Inline { buf, drop, .. } = self {
            // SAFETY: the closure is live (`run` did not consume it) and is
            // dropped exactly once, here.
            unsafe { drop(buf.0.as_mut_ptr() as *mut u8) }
        }
    }
}

/// Dead Gs a P keeps for reuse; it moves `GFREE_BATCH` to or from the
/// shared list when it has too many or none (Go: 64 and 32).
const GFREE_LOCAL: usize = 64;
const GFREE_BATCH: usize = 32;

/// What Gs are made of, shared between Ps: dead Gs for reuse (Go's
/// `sched.gFree`) and G stacks. Each P caches both in its `PLocal`.
pub(crate) struct GPool {
    /// Stack size of a G whose spawn asks for none.
    pub(crate) stack_size: usize,
    stacks: SharedPool,
    /// Set when mapping a stack failed, cleared when one is freed: spawn
    /// fails fast meanwhile.
    stack_exhausted: AtomicBool,
    /// Dead Gs, each held only here and by its registry.
    gfree: Mutex<Vec<Arc<G>>>,
    /// Acquisitions of `gfree`'s lock (`Stats::shared_locks`).
    pub(crate) gfree_locks: AtomicU64,
    /// `gfree`'s length, so that an empty list costs no lock.
    gfree_len: AtomicUsize,
}

impl GPool {
    pub(crate) fn new(stack_size: usize) -> GPool {
        GPool {
            stack_size,
            stacks: SharedPool::new(stack_size),
            stack_exhausted: AtomicBool::new(false),
            gfree: Mutex::new(Vec::new()),
            gfree_locks: AtomicU64::new(0),
            gfree_len: AtomicUsize::new(0),
        }
    }

    /// Acquisitions of the shared free list's and stack pool's locks.
    pub(crate) fn shared_locks(&self) -> (u64, u64) {
        (self.gfree_locks.load(Ordering::Relaxed), self.stacks.locks())
    }

    /// Whether the last stack mapping failed (and none was freed since).
    pub(crate) fn stack_exhausted(&self) -> bool {
        self.stack_exhausted.load(Ordering::Relaxed)
    }

    /// Go's `gfget`: a dead G from the P's list, refilled from the shared
    /// one when empty.
    pub(crate) fn gfget(&self, local: &mut PLocal) -> Option<Arc<G>> {
        if local.gfree.is_empty() && self.gfree_len.load(Ordering::Relaxed) > 0 {
            self.gfree_locks.fetch_add(1, Ordering::Relaxed);
            let mut global = self.gfree.lock().unwrap();
            let k = global.len().min(GFREE_BATCH);
            let at = global.len() - k;
            local.gfree.extend(global.drain(at..));
            self.gfree_len.store(global.len(), Ordering::Relaxed);
        }
        local.gfree.pop()
    }

    /// Gives a G that runs for the first time its stack and coroutine.
    /// `Err` if no stack could be mapped: the G's body is dropped, which
    /// reports the failure to its joiner.
    pub(crate) fn gstart(&self, local: &mut PLocal, g: &Arc<G>) -> io::Result<()> {
        let stk = match stack::get(&mut local.stacks, &self.stacks, g.stack_size()) {
            Ok(s) => s,
            Err(e) => {
                self.stack_exhausted.store(true, Ordering::Relaxed);
                // SAFETY: the caller's M dequeued the G (the `gstart`
                // contract of `execute`): it alone touches its body.
                drop(unsafe { (*g.start.get()).take() });
                return Err(e);
            }
        };
        g.guard.set(stk.guard_range());
        // SAFETY: `run_body` takes the G's body and runs it, on whichever
        // M first resumes the context; the G outlives its context (it
        // owns it).
        let co = unsafe { Co::new(stk, run_body, Arc::as_ptr(g).cast()) };
        // SAFETY: as above: only this M touches the G's coroutine.
        unsafe { *g.co.get() = Some(co) };
        Ok(())
    }

    /// Go's `gdestroy`: the G has exited (or never started); its stack
    /// goes to the P's cache (`local`; to the shared pool for an M without
    /// a P). The G itself is the caller's: [`GPool::gfput`], or dropped.
    pub(crate) fn gdestroy(&self, local: Option<&mut PLocal>, g: &G) {
        g.set_status(GStatus::Dead);
        // SAFETY: the G has returned (or never ran); only this M touches
        // its coroutine.
        let Some(co) = (unsafe { (*g.co.get()).take() }) else {
            return;
        };
        match local {
            Some(local) => {
                stack::put(&mut local.stacks, &self.stacks, co.into_stack());
                // Written only when set: every spawn reads it.
                if self.stack_exhausted.load(Ordering::Relaxed) {
                    self.stack_exhausted.store(false, Ordering::Relaxed);
                }
            }
            None => self.stacks.put_many([co.into_stack()]),
        }
    }

    /// Go's `gfput`: a dead G goes to the P's free list if nothing but the
    /// registry holds it. If something else does (an `Unparker`, a timer,
    /// a dump), it leaves the registry and is freed when they let go.
    pub(crate) fn gfput(&self, local: &mut PLocal, g: Arc<G>) {
        debug_assert_eq!(g.status(), GStatus::Dead);
        // The status is `Dead` already: a registry reader that clones the
        // G after this count sees it dead and reads nothing else
        // (`recycle.rs`).
        if !crate::recycle::may_recycle(|| Arc::strong_count(&g), 2) {
            drop(g.leave_registry());
            return;
        }
        // SAFETY: the G is dead and ours alone besides the registry, whose
        // readers from now on see it dead.
        unsafe { g.end_life() };
        if local.gfree.len() >= GFREE_LOCAL {
            let at = local.gfree.len() - GFREE_BATCH;
            let spill: Vec<Arc<G>> = local.gfree.drain(at..).collect();
            self.gfree_locks.fetch_add(1, Ordering::Relaxed);
            let mut global = self.gfree.lock().unwrap();
            global.extend(spill);
            self.gfree_len.store(global.len(), Ordering::Relaxed);
        }
        local.gfree.push(g);
    }

    /// Gives back the memory of up to `max` pooled stacks that went unused
    /// (sysmon); whether more are left.
    pub(crate) fn trim_stacks(&self, max: usize) -> (usize, bool) {
        self.stacks.trim(max)
    }

    /// Frees the shared lists (shutdown: free Gs hold the `Sched`).
    pub(crate) fn clear(&self) {
        self.gfree.lock().unwrap().clear();
        self.gfree_len.store(0, Ordering::Relaxed);
        self.stacks.clear();
    }
}

/// The entry function of a G's context: runs the G's body.
///
/// # Safety
/// `g` points to the live G whose context calls this, once, when it first
/// runs (the G owns the context, so it outlives the call).
unsafe fn run_body(g: *const ()) {
    // SAFETY: the contract; the M running the G alone touches its body.
    let body = unsafe { (*(*g.cast::<G>()).start.get()).take() };
    body.expect("a new G has a body").run();
}
