//! G: a goroutine. A stackful coroutine (corosensei) with its identity,
//! status, wait reason and park token.
//!
//! A G is shared as `Arc<G>`: run queues hold it as a raw `Arc` pointer,
//! waiters hold an `Unparker` (a clone), and the runtime's registry holds one
//! reference until the G exits, so that shutdown can find parked Gs.
//!
//! The coroutine itself (`co`) is touched only by the M that runs the G, or
//! by the thread that shuts the runtime down once every M has exited.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use corosensei::{Coroutine, Yielder};

use crate::sched::Sched;
use crate::stack::Stack;

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

pub(crate) type Co = Coroutine<(), Switch, (), Stack>;
pub(crate) type GYielder = Yielder<(), Switch>;

/// The state of a G, as Go's `_Grunnable`, `_Grunning`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GStatus {
    Runnable = 0,
    Running = 1,
    Waiting = 2,
    Syscall = 3,
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
    ChanReceive => "chan receive",
    ChanSend => "chan send",
    ChanReceiveNilChan => "chan receive (nil chan)",
    ChanSendNilChan => "chan send (nil chan)",
    Select => "select",
    SelectNoCases => "select (no cases)",
    Sleep => "sleep",
    IoWait => "IO wait",
    Syscall => "syscall",
    Semacquire => "semacquire",
    MutexLock => "sync.Mutex.Lock",
    RwLockRead => "sync.RWMutex.RLock",
    RwLockWrite => "sync.RWMutex.Lock",
    CondWait => "sync.Cond.Wait",
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

pub struct G {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    pub(crate) sched: Arc<Sched>,
    pub(crate) status: AtomicU8,
    pub(crate) wait_reason: AtomicU8,
    /// Nanoseconds since the runtime's epoch when the G last parked.
    pub(crate) wait_since: AtomicU64,
    pub(crate) park: crate::park_token::ParkToken,
    /// Registry slot: `shard << 32 | index`.
    pub(crate) slot: AtomicU64,
    pub(crate) spawn_site: &'static Location<'static>,
    pub(crate) stack_size: usize,
    /// The guard page `[lo, hi)` of the G's stack once it has one, for the
    /// stack-overflow handler.
    pub(crate) guard: Cell<(usize, usize)>,
    /// The body of a G that has not run yet. A G gets its stack (and its
    /// coroutine) only when it first runs, from its P's cache of hot stacks:
    /// a burst of spawned Gs that run one after another reuses the same
    /// few stacks instead of touching a fresh one each.
    pub(crate) start: UnsafeCell<Option<Body>>,
    pub(crate) co: UnsafeCell<Option<Co>>,
    pub(crate) yielder: Cell<*const GYielder>,
    /// When the G was made runnable (ns since epoch; sampled, 0 if not).
    pub(crate) ready_at: AtomicU64,
    /// Trace flow id of the unpark that readied it (0 if none).
    pub(crate) flow_id: AtomicU64,
    /// Whether something outside the runtime may wake the G (deadlock
    /// detection counts only Gs for which this is false).
    pub(crate) wait_external: std::sync::atomic::AtomicBool,
    /// The M this G is wired to (Go's `g.lockedm`), null if none: set and
    /// cleared only by the G itself while it runs (`lock_os_thread.rs`),
    /// read by the M that takes the G from a run queue, after the queue's
    /// Acquire.
    pub(crate) lockedm: AtomicPtr<crate::m::M>,
    /// Nesting depth of `lock_os_thread` calls (Go's `lockedExt`), and
    /// switches made while unwinding (Go's `lockedInt` has this role for
    /// the runtime's own reasons). Touched only by the G while it runs.
    pub(crate) locked_ext: Cell<u32>,
    pub(crate) locked_int: Cell<u32>,
}

// SAFETY: `co` and `yielder` are touched only by the single M running the G
// (a G runs on one M at a time; handing it over goes through run queues with
// Release/Acquire), or by the shutdown thread after every M has exited.
// Every other field is immutable or atomic.
unsafe impl Send for G {}
// SAFETY: as above.
unsafe impl Sync for G {}

impl G {
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn status(&self) -> GStatus {
        GStatus::from_u8(self.status.load(Ordering::Relaxed))
    }

    pub(crate) fn set_status(&self, s: GStatus) {
        self.status.store(s as u8, Ordering::Relaxed);
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
        GoroutineInfo { id: g.id, name: g.name.as_ref().map(|s| s.to_string()) }
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
    let f = std::ptr::read(p as *mut F);
    f()
}

/// # Safety
/// `p` points to a live `F` that is not used again.
unsafe fn drop_inline<F>(p: *mut u8) {
    std::ptr::drop_in_place(p as *mut F)
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

impl Drop for Body {
    fn drop(&mut self) {
        if let Body::Inline { buf, drop, .. } = self {
            // SAFETY: the closure is live (`run` did not consume it) and is
            // dropped exactly once, here.
            unsafe { drop(buf.0.as_mut_ptr() as *mut u8) }
        }
    }
}
