//! `Runtime`: one scheduler instance (its Ps, Ms, sysmon) and its builder;
//! `run`; and the lazily built global runtime that hosts timers and the
//! poller used from plain threads (no user G ever runs on it).
//!
//! Creating a runtime is the one `unsafe` step of goro: a G may resume on
//! another OS thread after any switch point, which safe Rust cannot see
//! (thread-locals would hand out another thread's value: a data race). The
//! caller of `run` or `RuntimeBuilder::build` promises, for every G of the
//! runtime, what the compiler cannot check; see [`RuntimeBuilder::build`].

use std::io;
use std::panic::{resume_unwind, Location};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::g::{GStatus, G};
use crate::goroutine::{spawn_on, JoinHandle};
use crate::policy::Policy;
use crate::poller::{ParkPoller, Poller};
use crate::sched::{Sched, SchedConfig};
use crate::stats::Stats;
use crate::sysmon::Sysmon;

/// Default usable bytes of a G stack. Reserved, not committed: a G that
/// touches 8 KiB of it costs 8 KiB.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// A goro runtime. Dropping it shuts it down: its threads are joined, Gs that
/// have not finished are dropped (their destructors run), their stacks are
/// unmapped.
///
/// ```
/// use goro_runtime::Runtime;
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
/// // From a plain thread: spawn, or run a main G and wait for it.
/// let h = rt.spawn(|| 1 + 1);
/// assert_eq!(rt.block_on(move || h.join().unwrap() * 10), 20);
/// assert_eq!(rt.procs(), 2);
/// ```
pub struct Runtime {
    sched: Arc<Sched>,
    sysmon: Option<Sysmon>,
}

/// Configures a [`Runtime`].
///
/// ```
/// use goro_runtime::{Policy, Runtime};
/// use std::time::Duration;
/// let policy = Policy { time_slice: Duration::from_millis(5), ..Policy::default() };
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// let rt = unsafe { Runtime::builder().procs(1).stack_size(128 * 1024).policy(policy).build() }.unwrap();
/// assert_eq!(rt.policy().time_slice, Duration::from_millis(5));
/// ```
pub struct RuntimeBuilder {
    procs: Option<usize>,
    stack_size: usize,
    policy: Policy,
    poller: Option<Box<dyn Poller>>,
    name: String,
    max_threads: usize,
    trace: Option<std::path::PathBuf>,
    schedtrace: Option<(Duration, bool)>,
    sigquit_dump: bool,
    trace_last: Option<Duration>,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            procs: None,
            stack_size: DEFAULT_STACK_SIZE,
            policy: Policy::default(),
            poller: None,
            name: "goro".into(),
            max_threads: 10_000,
            trace: None,
            schedtrace: None,
            sigquit_dump: false,
            trace_last: None,
        }
    }
}

/// `GORO_SCHEDTRACE=<ms>[,detail]`.
fn schedtrace_from_env() -> Option<(Duration, bool)> {
    let v = std::env::var("GORO_SCHEDTRACE").ok()?;
    let mut parts = v.split(',');
    let ms = parts.next().and_then(|ms| ms.trim().parse::<u64>().ok()).filter(|&ms| ms > 0);
    let rest: Vec<&str> = parts.map(str::trim).collect();
    match ms {
        Some(ms) if rest.iter().all(|p| *p == "detail") => Some((Duration::from_millis(ms), !rest.is_empty())),
        _ => {
            warn_env("GORO_SCHEDTRACE", &v, "a period in milliseconds above 0, optionally followed by `,detail`");
            None
        }
    }
}

/// `GORO_TRACE_LAST=<seconds>`.
fn trace_last_from_env() -> Option<Duration> {
    let v = std::env::var("GORO_TRACE_LAST").ok()?;
    match v.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s.min(1e9))),
        _ => {
            warn_env("GORO_TRACE_LAST", &v, "a number of seconds above 0");
            None
        }
    }
}

/// Prints one line about an invalid `GORO_*` value, once per variable in
/// the process: a typo must not be ignored silently, nor flood stderr.
pub(crate) fn warn_env(var: &str, value: &str, expected: &str) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !warned.iter().any(|w| w == var) {
        warned.push(var.to_string());
        eprintln!("goro: ignoring {var}={value:?}: expected {expected}");
    }
}

/// A `GORO_*` switch: `1`/`true`/`yes` on, `0`/`false`/`no`/unset off,
/// anything else off with a warning.
pub(crate) fn env_flag(var: &str) -> bool {
    match std::env::var(var) {
        Err(_) => false,
        Ok(v) => match v.trim() {
            "1" | "true" | "yes" => true,
            "0" | "false" | "no" | "" => false,
            _ => {
                warn_env(var, &v, "1 or 0");
                false
            }
        },
    }
}

/// `try_block_on` found every G asleep with nothing left to wake them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlock;

impl std::fmt::Display for Deadlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("all goroutines are asleep - deadlock!")
    }
}

impl std::error::Error for Deadlock {}

/// The number of Ps when none is configured: `GORO_PROCS`, else the number
/// of CPUs.
pub fn default_procs() -> usize {
    let Ok(v) = std::env::var("GORO_PROCS") else { return num_cpus::get() };
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => {
            warn_env("GORO_PROCS", &v, "a number of Ps above 0");
            num_cpus::get()
        }
    }
}

impl RuntimeBuilder {
    /// Number of Ps (GOMAXPROCS). Default: `GORO_PROCS` or the CPU count.
    pub fn procs(mut self, n: usize) -> Self {
        self.procs = Some(n);
        self
    }

    /// Default G stack size in bytes (rounded up to pages; at most 1 GiB,
    /// else `build` fails with `InvalidInput`). Reserved, not committed.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// The scheduling rules (default: `Policy::default()`).
    pub fn policy(mut self, p: Policy) -> Self {
        self.policy = p;
        self
    }

    /// Installs the poller idle Ms block in (the facade installs goro's
    /// netpoller here).
    pub fn poller(mut self, p: Box<dyn Poller>) -> Self {
        self.poller = Some(p);
        self
    }

    /// Most OS threads (Ms) the runtime may create (Go: 10,000). Going over
    /// it is fatal, as Go's "thread exhaustion".
    pub fn max_threads(mut self, n: usize) -> Self {
        self.max_threads = n.max(1);
        self
    }

    /// Writes a Chrome/Perfetto trace of the runtime to `path` when it is
    /// dropped (also: `GORO_TRACE=<file>`).
    pub fn trace(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.trace = Some(path.into());
        self
    }

    /// With `trace`: keep only the last `d` of the run (a flight recorder,
    /// at most 16 MiB in memory), written when the runtime is dropped; also
    /// `GORO_TRACE_LAST=<seconds>`. Without it the trace streams to the file
    /// as the run goes.
    pub fn trace_last(mut self, d: Duration) -> Self {
        self.trace_last = Some(d);
        self
    }

    /// Prints Go's schedtrace line every `period` on stderr, with per-P, M
    /// and G lines if `detail` (also: `GORO_SCHEDTRACE=<ms>[,detail]`).
    pub fn schedtrace(mut self, period: Duration, detail: bool) -> Self {
        self.schedtrace = Some((period, detail));
        self
    }

    /// Installs the SIGQUIT goroutine dump (Go prints one and exits 2;
    /// goro does so only when asked: here or with `GORO_SIGQUIT=1`). A
    /// SIGQUIT handler the application installed before keeps running, and
    /// then the process goes on.
    pub fn sigquit_dump(mut self, on: bool) -> Self {
        self.sigquit_dump = on;
        self
    }

    /// Prefix of the runtime's thread names.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Builds the runtime: its Ps, sysmon, and Ms as work needs them.
    ///
    /// # Safety
    /// A G of this runtime may resume on a different OS thread after any
    /// point where it can switch: a channel operation, `select!`, a `sync`
    /// wait, `sleep`, `yield_now`, `join`, a network call, spawning, or any
    /// runtime call (each is a preemption point). The caller promises that
    /// code run by the runtime's Gs keeps no thread-local state, and no
    /// reference or value derived from one that is not `Send`, across such
    /// a point, unless the G is locked to its thread with
    /// [`lock_os_thread`](crate::lock_os_thread). This covers libraries
    /// called from the Gs: `thread_local!` caches (`rand::thread_rng`, a
    /// `tracing` subscriber's per-thread state, `RefCell`s in thread-locals),
    /// thread-affine C libraries, `std::thread::current()` used as an
    /// identity. LLVM may keep a thread-local's address across calls within
    /// one function, so even a fresh `with` after a switch is exposed.
    /// Values that are `Send` (an `Arc`, a channel) may be held freely.
    pub unsafe fn build(self) -> io::Result<Runtime> {
        let procs = self.procs.unwrap_or_else(default_procs);
        if procs == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "goro: procs must be at least 1"));
        }
        if self.stack_size > crate::sched::MAX_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "goro: stack_size {} is over the limit of {} bytes",
                    self.stack_size,
                    crate::sched::MAX_STACK_SIZE
                ),
            ));
        }
        if self.policy.local_queue < 2 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "goro: policy.local_queue must be at least 2"));
        }
        let schedtrace = self.schedtrace.or_else(schedtrace_from_env);
        let sched = Sched::new(SchedConfig {
            procs,
            stack_size: self.stack_size,
            policy: self.policy,
            poller: self.poller.unwrap_or_else(|| Box::new(ParkPoller::default())),
            name: self.name.clone(),
            max_threads: self.max_threads,
            trace: self.trace.or_else(|| std::env::var_os("GORO_TRACE").map(Into::into)),
            schedtrace_detail: schedtrace.is_some_and(|(_, d)| d),
            sigquit_dump: self.sigquit_dump,
            trace_last: self.trace_last.or_else(trace_last_from_env),
        });
        let sysmon = Sysmon::start(sched.clone(), &self.name, schedtrace)?;
        Ok(Runtime { sched, sysmon: Some(sysmon) })
    }
}

impl Runtime {
    /// A builder with the defaults: `GORO_PROCS` (else the CPU count) Ps,
    /// 256 KiB stacks, `Policy::default()`.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with the default settings.
    ///
    /// # Safety
    /// The contract of [`RuntimeBuilder::build`].
    pub unsafe fn new() -> io::Result<Runtime> {
        // SAFETY: the caller takes on `build`'s contract.
        unsafe { RuntimeBuilder::default().build() }
    }

    pub(crate) fn sched(&self) -> &Arc<Sched> {
        &self.sched
    }

    /// Runs `f` as a G on this runtime and waits for it (blocking the calling
    /// thread, or parking the calling G). A panic in `f` resumes in the
    /// caller; the runtime stays usable.
    ///
    /// # Panics
    /// With `all goroutines are asleep - deadlock!` if the runtime detects a
    /// deadlock (see [`Runtime::try_block_on`]).
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.try_block_on_at(f, Location::caller()) {
            Ok(v) => v,
            Err(d) => panic!("goro: {d}"),
        }
    }

    /// Like `block_on`, but a detected deadlock (every G asleep, nothing
    /// that could wake them) is returned as `Err(Deadlock)` after the runtime
    /// printed its report; the deadlocked Gs stay parked until the runtime
    /// is dropped.
    #[track_caller]
    pub fn try_block_on<F, T>(&self, f: F) -> Result<T, Deadlock>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.try_block_on_at(f, Location::caller())
    }

    fn try_block_on_at<F, T>(&self, f: F, site: &'static Location<'static>) -> Result<T, Deadlock>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if crate::m::in_goroutine() {
            let h = spawn_on(&self.sched, f, Some("main".into()), None, site)
                .unwrap_or_else(|e| panic!("goro: block_on: {e}"));
            return match h.join() {
                Ok(v) => Ok(v),
                Err(p) => resume_unwind(p),
            };
        }
        let me = crate::park::current_unparker();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        // While this thread waits here it only waits for the main G:
        // deadlock detection may count it as the runtime's own. The main G
        // takes it off the list before its result is published (the thread
        // is about to run again, with whatever the result holds).
        self.sched.deadlock.watchers.lock().unwrap().push((me.clone(), tid));
        struct Unwatch(Arc<Sched>, i32);
        impl Drop for Unwatch {
            fn drop(&mut self) {
                self.0.deadlock.watchers.lock().unwrap_or_else(|e| e.into_inner()).retain(|(_, t)| *t != self.1);
            }
        }
        let unwatch = Unwatch(self.sched.clone(), tid);
        let body = move || {
            let _unwatch = unwatch;
            f()
        };
        let mut h = spawn_on(&self.sched, body, Some("main".into()), None, site)
            .unwrap_or_else(|e| panic!("goro: block_on: {e}"));
        let _unwatch = Unwatch(self.sched.clone(), tid);
        let r = loop {
            if let Some(r) = h.try_take(me.clone()) {
                break r;
            }
            if self.sched.deadlock.found.load(Ordering::SeqCst) {
                return Err(Deadlock);
            }
            std::thread::park();
        };
        match r {
            Ok(v) => Ok(v),
            Err(p) => resume_unwind(p),
        }
    }

    /// Spawns a G on this runtime.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_on(&self.sched, f, None, None, Location::caller()).unwrap_or_else(|e| panic!("goro: spawn: {e}"))
    }

    /// Number of Ps.
    pub fn procs(&self) -> usize {
        self.sched.procs
    }

    /// The scheduling rules the runtime was built with.
    pub fn policy(&self) -> &Policy {
        &self.sched.policy
    }

    /// A snapshot of the scheduler's counters.
    pub fn stats(&self) -> Stats {
        crate::stats::collect(&self.sched)
    }

    /// Id, name, status and wait reason of every live G (a small dump).
    pub fn goroutines(&self) -> Vec<GoroutineState> {
        let now = self.sched.now_nanos();
        let mut v: Vec<_> = self
            .sched
            .all_gs()
            .iter()
            .map(|g| GoroutineState {
                id: g.id(),
                name: g.name().map(str::to_string),
                status: g.status(),
                wait_reason: g.wait_reason(),
                waiting_for: std::time::Duration::from_nanos(
                    now.saturating_sub(g.wait_since.load(std::sync::atomic::Ordering::Relaxed)),
                ),
                spawn_site: g.spawn_site(),
            })
            .collect();
        v.sort_by_key(|g| g.id);
        v
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("name", &self.sched.name()).field("procs", &self.sched.procs).finish()
    }
}

/// One G as `Runtime::goroutines` reports it.
#[derive(Clone, Debug)]
pub struct GoroutineState {
    /// The G's id (Go's goid), unique in the process.
    pub id: u64,
    /// The name given with `Builder::name`.
    pub name: Option<String>,
    /// Runnable, running, waiting, in a syscall.
    pub status: crate::g::GStatus,
    /// What it waits for (when waiting).
    pub wait_reason: crate::g::WaitReason,
    /// Time since the G last parked (meaningful when waiting).
    pub waiting_for: std::time::Duration,
    /// Where `go` (or `spawn`) was called.
    pub spawn_site: &'static Location<'static>,
}

impl Drop for Runtime {
    /// Shuts the runtime down in bounded time (about 100 ms for Ms still in
    /// user code, as much again for destructors that block; see
    /// `stop_sched`). Dropped from one of its own Gs, the runtime is
    /// shut down by a new thread instead and the drop returns at once: the
    /// G goes on until its next switch point, where its M stops.
    fn drop(&mut self) {
        let (sched, sysmon) = (self.sched.clone(), self.sysmon.take());
        if sched.is_current() {
            let name = format!("{}-shutdown", sched.name());
            let spawned = std::thread::Builder::new().name(name).spawn(move || shut_down(sched, sysmon));
            if let Err(e) = spawned {
                eprintln!("goro: cannot start a thread to shut the runtime down: {e}");
            }
            return;
        }
        shut_down(sched, sysmon);
    }
}

fn shut_down(sched: Arc<Sched>, sysmon: Option<Sysmon>) {
    if let Some(mut s) = sysmon {
        s.stop();
    }
    stop_sched(&sched);
    crate::trace::finish(&sched.tracer, sched.ms.created());
}

/// How long shutdown waits for Ms still running user code, and for the
/// destructors of the Gs it drops, before it leaves them running detached.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

/// Whether a runtime is shutting down.
#[derive(Default)]
pub(crate) struct ShutdownState {
    /// Set once, when shutdown begins: no M starts, no G is spawned or
    /// queued from outside, and every M leaves its loop.
    started: AtomicBool,
    /// Shutdown gave up waiting for some M (`SHUTDOWN_GRACE`): Ms that come
    /// back to the runtime leak their G instead of touching it.
    detached: AtomicBool,
}

impl ShutdownState {
    /// Whether shutdown has begun.
    #[inline]
    pub(crate) fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Whether shutdown detached Ms that were still running user code.
    #[inline]
    pub(crate) fn detached(&self) -> bool {
        self.detached.load(Ordering::Relaxed)
    }

    /// The flag itself, for `Ms::start`, which checks it under its lock.
    pub(crate) fn flag(&self) -> &AtomicBool {
        &self.started
    }
}

/// Stops every M of `sched`, then drops every G that has not exited:
/// parked and runnable Gs are unwound so their destructors run. Bounded
/// in time whatever the Gs do: an M still running user code after
/// `SHUTDOWN_GRACE` (a G in a blocking call, or computing without runtime
/// calls) is detached, and nothing it may touch is freed: its G, that G's
/// stack, its P's local part. Destructors that block are given the same
/// grace, then left running on their own thread.
fn stop_sched(sched: &Sched) {
    let state = &sched.shutdown;
    state.started.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    loop {
        sched.ms.wake_all();
        sched.poller.wake();
        if sched.ms.join_ended() {
            break;
        }
        if Instant::now() >= deadline {
            state.detached.store(true, Ordering::SeqCst);
            sched.ms.detach_all();
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    let detached = state.detached.load(Ordering::SeqCst);
    // Gs no M runs: the queued ones.
    let mut victims = sched.drain_queues();
    // A G wired to an M is that M's to unwind, on its own thread
    // (`lock_os_thread::drop_locked_g`).
    let wired = |g: &Arc<G>| !g.lockedm.load(Ordering::Relaxed).is_null();
    victims.retain(|g| !wired(g) && g.park.kill());
    for p in sched.ps.iter() {
        p.timers.lock().unwrap().clear();
        let registered = p.registry.lock().unwrap().drain();
        for g in registered {
            // Dead Gs (free ones) have nothing to unwind.
            if g.status() == GStatus::Dead {
                continue;
            }
            g.slot.store(crate::g::UNREGISTERED, Ordering::Relaxed);
            // With every M gone, any G is ours; a detached M may still
            // run its own G, so then only parked ones are.
            let claimed = !wired(&g) && if detached { g.park.kill_parked() } else { g.park.kill() };
            if claimed {
                victims.push(g);
            }
        }
    }
    // Unwind them on a thread of their own: a destructor that blocks
    // forever must not hold up shutdown.
    let (done_tx, done) = std::sync::mpsc::channel();
    let unwinder = thread::Builder::new().name(format!("{}-unwind", sched.name())).spawn(move || {
        crate::m::set_force_unwinding(true);
        for g in victims {
            // SAFETY: `kill` made us the G's only runner: no M resumes it
            // and no unpark readies it; its coroutine is ours to drop.
            unsafe { g.unwind_and_free() };
            g.set_status(GStatus::Dead);
        }
        crate::m::set_force_unwinding(false);
        let _ = done_tx.send(());
    });
    let unwound = match unwinder {
        Ok(h) => match done.recv_timeout(SHUTDOWN_GRACE) {
            Ok(()) => {
                let _ = h.join();
                true
            }
            Err(_) => false,
        },
        Err(_) => false,
    };
    if !detached && unwound {
        for p in sched.ps.iter() {
            // SAFETY: no M holds any P any more.
            unsafe {
                p.local().stacks.clear();
                // Free Gs hold the Sched: break the cycle.
                p.local().gfree.clear();
            }
        }
    }
    sched.gpool.clear();
}

static GLOBAL: OnceLock<Runtime> = OnceLock::new();

/// The runtime that timers and the poller use when called from a plain
/// thread; built on first use with the default settings, never shut down.
pub(crate) fn global_sched() -> Arc<Sched> {
    GLOBAL
        .get_or_init(|| {
            // SAFETY: no user G runs on this runtime: `go` and
            // `Builder::spawn` refuse plain threads, and nothing else
            // spawns on it. Timer actions run on scheduler stacks, which
            // are their M's own thread stack and never switch.
            unsafe { Runtime::builder().name("goro-global").build() }
                .unwrap_or_else(|e| panic!("goro: cannot start the global runtime: {e}"))
        })
        .sched
        .clone()
}

/// Whether `s` is the global runtime.
pub(crate) fn is_global(s: &Arc<Sched>) -> bool {
    GLOBAL.get().is_some_and(|g| Arc::ptr_eq(&g.sched, s))
}

/// Builds a runtime with the default settings, runs `f` as its main G,
/// shuts the runtime down and returns `f`'s result (a panic in `f` resumes
/// here). Gs still running when `f` returns are dropped, as Go's are when
/// `main` returns. A deadlock ends the process with status 2, as in Go.
///
/// ```
/// // SAFETY: the Gs keep no thread-local state across switch points.
/// let v = unsafe { goro_runtime::run(|| goro_runtime::go(|| 6 * 7).join().unwrap()) };
/// assert_eq!(v, 42);
/// ```
///
/// # Safety
/// Gs may move between OS threads: the contract of
/// [`RuntimeBuilder::build`] holds for every G of the runtime.
#[track_caller]
pub unsafe fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: the caller takes on `build`'s contract.
    let rt = unsafe { Runtime::new() }.unwrap_or_else(|e| panic!("goro: cannot start a runtime: {e}"));
    // As Go's main: a deadlock ends the process with status 2.
    rt.sched.deadlock.exit_process.store(true, Ordering::SeqCst);
    rt.block_on(f)
}

/// Statistics of the runtime the caller runs on (the global one outside any).
pub fn stats() -> Stats {
    crate::stats::collect(&crate::m::current_sched().unwrap_or_else(global_sched))
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("procs", &self.procs)
            .field("stack_size", &self.stack_size)
            .field("policy", &self.policy)
            .field("name", &self.name)
            .field("max_threads", &self.max_threads)
            .finish_non_exhaustive()
    }
}
