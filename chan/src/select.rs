//! `select`: Go's `selectgo` (`runtime/select.go`), behind the `select!`
//! macro and the dynamic [`Select`].
//!
//! 1. Arms are polled in a uniformly random order (Fisher–Yates), so no arm
//!    starves another; channels are locked in address order (each once, even
//!    if it appears in several arms), so two selects cannot deadlock.
//! 2. Pass 0 (goro's shortcut, not in Go): in poll order, each arm tries
//!    its channel's lock-free ring (buffered channels nobody waits on),
//!    then, if the channel looks ready from its length and closed flag,
//!    with only its own channel locked. Pass 1, all locks held: the
//!    first arm in poll order that can proceed completes, and select
//!    returns it.
//! 3. Otherwise (and without `default`): a sudog per arm is queued on its
//!    channel, all sharing one `Waiting`; the locks are released and the G
//!    parks once.
//! 4. The first channel to fire claims the `Waiting` and completes its arm.
//!    The G wakes, unlinks its other sudogs (each under its channel's lock)
//!    and returns the winning arm. A send arm that did not win keeps its
//!    value, which is dropped with the arm (exactly once).
//!
//! Nil-channel arms are never ready and are never queued.

use std::any::TypeId;
use std::cell::Cell;
use std::time::{Duration, Instant};

use goro_runtime::internals::{bubble_rand, park_woken_by, WokenBy};
use goro_runtime::{preempt_point, Unparker, WaitReason};

use crate::chan::{wake, AsChan, Chan, HChan, RecvNow, SendNow};
use crate::error::SendError;
use crate::sudog::{Sudog, Waiting};

/// One arm of a select, type-erased. Public only for the `select!` macro.
#[doc(hidden)]
pub trait SelectArm {
    /// The channel's address (lock order and identity); 0 for nil.
    fn addr(&self) -> usize;
    /// Who may end a wait on the arm's channel (`None`: a nil channel,
    /// which nothing ends).
    fn woken_by(&self) -> Option<WokenBy>;
    fn lock(&self);
    fn unlock(&self);
    /// Completes the arm now if it can. Lock held. `Some(u)`: done, unpark
    /// `u` (if any) after unlocking.
    ///
    /// # Safety
    /// The channel's lock is held.
    unsafe fn try_now(&mut self) -> Option<Option<Unparker>>;
    /// Queues the arm's sudog. Lock held; the arm must not move until it is
    /// unlinked.
    ///
    /// # Safety
    /// The channel's lock is held.
    unsafe fn enqueue(&mut self, w: &Waiting, case: usize);
    /// Unlinks the sudog if still queued and, for a losing send arm, takes
    /// its value back. Lock held.
    ///
    /// # Safety
    /// The channel's lock is held.
    unsafe fn unlink(&mut self, won: bool);
    /// The winner completes from its sudog (`success` false: closed).
    fn complete(&mut self, success: bool);
    /// Pass 0 for this arm: if its hint says it could complete, locks only
    /// its channel and tries (`try_now`). One dynamic call per arm.
    fn try_alone(&mut self) -> Option<Option<Unparker>>;
}

/// A `recv(ch)` arm.
#[doc(hidden)]
pub struct RecvArm<'a, T> {
    chan: Option<&'a HChan<T>>,
    sudog: Sudog<T>,
    result: Option<Option<T>>,
}

/// A `send(ch, v)` arm.
#[doc(hidden)]
pub struct SendArm<'a, T> {
    chan: Option<&'a HChan<T>>,
    value: Option<T>,
    sudog: Sudog<T>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> RecvArm<'a, T> {
    #[track_caller]
    pub fn new<C: AsChan<T> + ?Sized>(c: &'a C) -> Self {
        let chan = c.as_chan().inner.as_deref();
        if let Some(h) = chan {
            h.check_bubble();
        }
        RecvArm { chan, sudog: Sudog::new_blank(), result: None }
    }

    /// The received value (`None`: closed). Panics if the arm did not fire.
    pub fn take_result(&mut self) -> Option<T> {
        self.result.take().expect("select arm did not fire")
    }
}

impl<'a, T> SendArm<'a, T> {
    #[track_caller]
    pub fn new<C: AsChan<T> + ?Sized>(c: &'a C, v: T) -> Self {
        let chan = c.as_chan().inner.as_deref();
        if let Some(h) = chan {
            h.check_bubble();
        }
        SendArm { chan, value: Some(v), sudog: Sudog::new_blank(), result: None }
    }

    pub fn take_result(&mut self) -> Result<(), SendError<T>> {
        self.result.take().expect("select arm did not fire")
    }
}

/// The `SelectArm` methods that only look at the arm's channel (`self.chan`).
macro_rules! arm_channel_methods {
    () => {
        fn addr(&self) -> usize {
            addr_of(self.chan)
        }
        fn woken_by(&self) -> Option<WokenBy> {
            self.chan.map(|h| h.woken_by())
        }
        fn lock(&self) {
            if let Some(h) = self.chan {
                h.lock();
            }
        }
        fn unlock(&self) {
            if let Some(h) = self.chan {
                h.unlock();
            }
        }
        fn try_alone(&mut self) -> Option<Option<Unparker>> {
            let h = self.chan?;
            if self.fast() {
                return Some(None);
            }
            if !self.hint() {
                return None;
            }
            h.lock();
            // SAFETY: the arm's channel is locked.
            let done = unsafe { self.try_now() };
            h.unlock();
            done
        }
    };
}

fn addr_of<T>(c: Option<&HChan<T>>) -> usize {
    c.map_or(0, |h| h as *const HChan<T> as usize)
}

impl<T> RecvArm<'_, T> {
    /// A lock-free guess that the arm could complete now.
    fn hint(&self) -> bool {
        self.chan.is_some_and(|h| h.recv_hint())
    }

    /// Completes the arm on the buffer's lock-free path, if it can.
    fn fast(&mut self) -> bool {
        // (select's own preemption point is at its start.)
        match self.chan.and_then(|h| h.recv_fast()) {
            Some((v, _)) => {
                self.result = Some(Some(v));
                true
            }
            None => false,
        }
    }
}

impl<T> SelectArm for RecvArm<'_, T> {
    arm_channel_methods!();
    unsafe fn try_now(&mut self) -> Option<Option<Unparker>> {
        let h = self.chan?;
        // SAFETY: select holds every arm's channel lock while it tries arms.
        match unsafe { h.recv_locked() } {
            RecvNow::Got(v, u) => {
                self.result = Some(Some(v));
                Some(u)
            }
            RecvNow::Closed => {
                self.result = Some(None);
                Some(None)
            }
            RecvNow::WouldBlock => None,
        }
    }
    unsafe fn enqueue(&mut self, w: &Waiting, case: usize) {
        if let Some(h) = self.chan {
            self.sudog.waiting = w;
            self.sudog.case = case;
            // SAFETY: select holds the channel's lock while enqueueing; the
            // sudog lives in this arm, on the blocked G's stack, until
            // `unlink` takes it out under the lock again.
            unsafe { h.st() }.recvq.push_back(&self.sudog);
        }
    }
    unsafe fn unlink(&mut self, _won: bool) {
        if let Some(h) = self.chan {
            // SAFETY: select holds the channel's lock while unlinking.
            unsafe { HChan::unlink(&mut h.st().recvq, &self.sudog) };
        }
    }
    fn complete(&mut self, success: bool) {
        self.result = Some(if success { self.sudog.slot.get_mut().take() } else { None });
    }
}

impl<T> SendArm<'_, T> {
    /// A lock-free guess that the arm could complete now.
    fn hint(&self) -> bool {
        self.chan.is_some_and(|h| h.send_hint())
    }

    /// Completes the arm on the buffer's lock-free path, if it can.
    fn fast(&mut self) -> bool {
        let (Some(h), Some(v)) = (self.chan, self.value.take()) else { return false };
        match h.send_fast(v) {
            Ok(_) => {
                self.result = Some(Ok(()));
                true
            }
            Err(v) => {
                self.value = Some(v);
                false
            }
        }
    }
}

impl<T> SelectArm for SendArm<'_, T> {
    arm_channel_methods!();
    unsafe fn try_now(&mut self) -> Option<Option<Unparker>> {
        let h = self.chan?;
        let v = self.value.take().expect("send arm already used");
        // SAFETY: select holds every arm's channel lock while it tries arms.
        match unsafe { h.send_locked(v) } {
            SendNow::Sent(u) => {
                self.result = Some(Ok(()));
                Some(u)
            }
            SendNow::Closed(v) => {
                self.result = Some(Err(SendError(v)));
                Some(None)
            }
            SendNow::WouldBlock(v) => {
                self.value = Some(v);
                None
            }
        }
    }
    unsafe fn enqueue(&mut self, w: &Waiting, case: usize) {
        if let Some(h) = self.chan {
            self.sudog.waiting = w;
            self.sudog.case = case;
            *self.sudog.slot.get_mut() = self.value.take();
            // SAFETY: as for the receive arm: lock held, the sudog outlives
            // its time in the queue.
            unsafe { h.st() }.sendq.push_back(&self.sudog);
        }
    }
    unsafe fn unlink(&mut self, won: bool) {
        if let Some(h) = self.chan {
            // SAFETY: select holds the channel's lock while unlinking.
            unsafe { HChan::unlink(&mut h.st().sendq, &self.sudog) };
            if !won {
                self.value = self.sudog.slot.get_mut().take();
            }
        }
    }
    fn complete(&mut self, success: bool) {
        self.result = Some(if success {
            Ok(())
        } else {
            Err(SendError(self.sudog.slot.get_mut().take().expect("value not sent")))
        });
    }
}

/// How a select waits when no arm is ready.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Block,
    NonBlocking,
    Until(Instant),
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// Who may end a select's wait: durable in a bubble only if every channel
/// is of the bubble (Go's rule); any channel a plain thread holds makes it
/// external.
fn select_woken_by(arms: &[&mut dyn SelectArm]) -> WokenBy {
    let mut by = WokenBy::Bubble;
    for a in arms {
        match a.woken_by() {
            None | Some(WokenBy::Bubble) => {}
            Some(WokenBy::AnyThread) => return WokenBy::AnyThread,
            Some(WokenBy::RuntimeOnly) => by = WokenBy::RuntimeOnly,
        }
    }
    by
}

/// A per-thread xorshift; only used before the select parks. Inside a
/// synctest bubble, the bubble's seeded sequence.
#[inline(never)]
fn fastrand() -> u64 {
    if let Some(x) = bubble_rand() {
        return x;
    }
    RNG.with(|r| {
        let mut x = r.get();
        if x == 0 {
            x = (r as *const _ as u64) ^ 0x9E37_79B9_7F4A_7C15 ^ Instant::now().elapsed().as_nanos() as u64 | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}

/// Small fixed buffers so a select of a few arms allocates nothing.
struct Scratch {
    small: [usize; 16],
    big: Vec<usize>,
    n: usize,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch { small: [0; 16], big: if n > 16 { vec![0; n] } else { Vec::new() }, n }
    }
    fn get(&mut self) -> &mut [usize] {
        if self.n > 16 {
            &mut self.big
        } else {
            &mut self.small[..self.n]
        }
    }
}

fn lock_all(arms: &[&mut dyn SelectArm], lockorder: &[usize]) {
    let mut last = 0;
    for &i in lockorder {
        let a = arms[i].addr();
        if a != last {
            arms[i].lock();
            last = a;
        }
    }
}

fn unlock_all(arms: &[&mut dyn SelectArm], lockorder: &[usize]) {
    let mut last = 0;
    for &i in lockorder.iter().rev() {
        let a = arms[i].addr();
        if a != last {
            arms[i].unlock();
            last = a;
        }
    }
}

/// Runs a select over `arms`. Returns the index of the arm that fired, or
/// `None` if none was ready (`NonBlocking`) or the deadline passed.
#[doc(hidden)]
pub fn select_arms(arms: &mut [&mut dyn SelectArm], mode: Mode) -> Option<usize> {
    preempt_point();
    let n = arms.len();
    // Random poll order.
    let mut po = Scratch::new(n);
    let pollorder = po.get();
    // One random word serves four arms: 16 bits each, mapped to 0..=i by
    // multiply-shift (no division; the bias is below (i + 1) / 65536).
    for first in (0..n).step_by(4) {
        let mut bits = fastrand();
        for i in first..n.min(first + 4) {
            let j = (((bits & 0xFFFF) * (i as u64 + 1)) >> 16) as usize;
            bits >>= 16;
            pollorder[i] = pollorder[j];
            pollorder[j] = i;
        }
    }
    // Pass 0 (a goro shortcut): in poll order, try the arms whose channel
    // looks ready, locking only that channel. Usually one lock instead of
    // all of them; the full pass below still decides when nothing was.
    for &i in pollorder.iter() {
        if let Some(u) = arms[i].try_alone() {
            wake(u);
            return Some(i);
        }
    }

    // Lock order (only needed from here on): by channel address, nil arms
    // left out.
    let mut lo = Scratch::new(n);
    let all = lo.get();
    let mut k = 0;
    for (i, arm) in arms.iter().enumerate() {
        if arm.addr() != 0 {
            all[k] = i;
            k += 1;
        }
    }
    let lockorder = &mut all[..k];
    lockorder.sort_unstable_by_key(|&i| arms[i].addr());

    if lockorder.is_empty() {
        match mode {
            Mode::NonBlocking => return None,
            Mode::Until(d) => {
                goro_runtime::sleep_until(d);
                return None;
            }
            Mode::Block => loop {
                // Nothing wakes it: durable in a bubble, as in Go.
                park_woken_by(if n == 0 { WaitReason::SelectNoCases } else { WaitReason::Select }, WokenBy::Bubble);
            },
        }
    }

    lock_all(arms, lockorder);
    // Pass 1: anything ready?
    for &i in pollorder.iter() {
        // SAFETY: every arm's channel is locked.
        if let Some(u) = unsafe { arms[i].try_now() } {
            unlock_all(arms, lockorder);
            wake(u);
            return Some(i);
        }
    }
    if let Mode::NonBlocking = mode {
        unlock_all(arms, lockorder);
        return None;
    }

    // Pass 2: queue on every channel and park once.
    let w = Waiting::new();
    for &i in lockorder.iter() {
        // SAFETY: locks held; the arms do not move until unlinked below.
        unsafe { arms[i].enqueue(&w, i) };
    }
    unlock_all(arms, lockorder);
    let by = select_woken_by(arms);
    let fired = match mode {
        Mode::Until(d) => w.wait_until(WaitReason::Select, d, by),
        _ => Some(w.wait(WaitReason::Select, by)),
    };

    // Pass 3: unlink from every channel (one lock at a time is enough: a
    // waker only touches `w` with its channel's lock held).
    let winner = fired.map(|(i, _)| i);
    for &i in lockorder.iter() {
        arms[i].lock();
        // SAFETY: this arm's channel lock is held.
        unsafe { arms[i].unlink(Some(i) == winner) };
        arms[i].unlock();
    }
    let (i, success) = fired?;
    arms[i].complete(success);
    Some(i)
}

/// A select over a set of arms built at run time (Go's `reflect.Select`).
///
/// ```
/// use goro_chan::{Chan, Select};
/// let chans: Vec<Chan<u32>> = (0..4).map(|_| Chan::new(1)).collect();
/// chans[2].send(7).unwrap();
/// let mut sel = Select::new();
/// let arms: Vec<_> = chans.iter().map(|c| sel.recv(c)).collect();
/// let i = sel.select();
/// assert_eq!(i, arms[2]);
/// assert_eq!(sel.take_recv::<u32>(i), Some(7));
/// ```
#[derive(Default)]
pub struct Select<'a> {
    arms: Vec<Box<dyn SelectArm + 'a>>,
    kinds: Vec<TypeId>,
}

struct RecvOf<T>(T);
struct SendOf<T>(T);

impl<'a> Select<'a> {
    /// An empty select; add arms with `recv`/`send`, then `select` or `try_select`.
    pub fn new() -> Self {
        Select { arms: Vec::new(), kinds: Vec::new() }
    }

    /// Adds a receive arm; returns its index.
    pub fn recv<T: 'static>(&mut self, ch: &'a Chan<T>) -> usize {
        self.arms.push(Box::new(RecvArm::new(ch)));
        self.kinds.push(TypeId::of::<RecvOf<T>>());
        self.arms.len() - 1
    }

    /// Adds a send arm of `v`; returns its index. If another arm wins, `v`
    /// is dropped with the `Select`.
    pub fn send<T: 'static>(&mut self, ch: &'a Chan<T>, v: T) -> usize {
        self.arms.push(Box::new(SendArm::new(ch, v)));
        self.kinds.push(TypeId::of::<SendOf<T>>());
        self.arms.len() - 1
    }

    fn run(&mut self, mode: Mode) -> Option<usize> {
        let mut refs: Vec<&mut dyn SelectArm> = self.arms.iter_mut().map(|b| &mut **b as &mut dyn SelectArm).collect();
        select_arms(&mut refs, mode)
    }

    /// Blocks until an arm fires; returns its index.
    pub fn select(&mut self) -> usize {
        self.run(Mode::Block).expect("a blocking select returns an arm")
    }

    /// Fires an arm that is ready now, if any.
    pub fn try_select(&mut self) -> Option<usize> {
        self.run(Mode::NonBlocking)
    }

    /// Waits at most `d` for an arm to fire.
    pub fn select_timeout(&mut self, d: Duration) -> Option<usize> {
        self.run(Mode::Until(goro_runtime::deadline_after(d)))
    }

    /// The value received by arm `i` (`None`: channel closed).
    ///
    /// # Panics
    /// If arm `i` is not a receive of `T`, or did not fire.
    pub fn take_recv<T: 'static>(&mut self, i: usize) -> Option<T> {
        assert_eq!(self.kinds[i], TypeId::of::<RecvOf<T>>(), "arm {i} is not a recv of this type");
        let arm: *mut (dyn SelectArm + 'a) = &mut *self.arms[i];
        // SAFETY: the TypeId check proves arm `i` was built as RecvArm<'a, T>.
        unsafe { (*(arm as *mut RecvArm<'a, T>)).take_result() }
    }

    /// The outcome of send arm `i`.
    ///
    /// # Panics
    /// If arm `i` is not a send of `T`, or did not fire.
    pub fn take_send<T: 'static>(&mut self, i: usize) -> Result<(), SendError<T>> {
        assert_eq!(self.kinds[i], TypeId::of::<SendOf<T>>(), "arm {i} is not a send of this type");
        let arm: *mut (dyn SelectArm + 'a) = &mut *self.arms[i];
        // SAFETY: the TypeId check proves arm `i` was built as SendArm<'a, T>.
        unsafe { (*(arm as *mut SendArm<'a, T>)).take_result() }
    }
}

/// Go's `select` statement, in crossbeam-channel's syntax:
///
/// ```
/// use goro_chan::{select, Chan};
/// let a = Chan::new(1);
/// let b: Chan<&str> = Chan::new(1);
/// a.send(1).unwrap();
/// let got = select! {
///     recv(a) -> v => v.unwrap(),
///     send(b, "hi") -> r => { r.unwrap(); 0 }
/// };
/// assert!(got == 1 || b.recv() == Some("hi"));
/// ```
///
/// Arms: `recv(ch) -> v => body` (`v: Option<T>`, `None` once closed),
/// `send(ch, value) -> r => body` (`r: Result<(), SendError<T>>`), and an
/// optional `default => body` that makes the select non-blocking, or
/// `default(timeout) => body` (a `Duration`) that runs `body` if no arm
/// fires within `timeout`, as crossbeam-channel's does:
///
/// ```
/// use goro_chan::{select, Chan};
/// use std::time::Duration;
/// let quiet: Chan<u8> = Chan::new(0);
/// let waited = select! {
///     recv(quiet) -> _ => false,
///     default(Duration::from_millis(5)) => true,
/// };
/// assert!(waited);
/// ```
/// Bodies are
/// expressions or blocks, and may `break`/`continue` an enclosing loop; the
/// channels are borrowed; up to 32 arms.
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(
            [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31]
            [] [] $($tokens)*
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // An arm's head becomes `(ArmType (args) pattern)`; `@body` then parses
    // its body, the same way for both kinds.
    ([$($is:tt)*] [$($arms:tt)*] [$($d:tt)*] recv($r:expr) -> $p:pat => $($rest:tt)*) => {
        $crate::__select_parse!(@body [$($is)*] [$($arms)*] [$($d)*] (RecvArm (&$r) $p) $($rest)*)
    };
    ([$($is:tt)*] [$($arms:tt)*] [$($d:tt)*] send($s:expr, $v:expr) -> $p:pat => $($rest:tt)*) => {
        $crate::__select_parse!(@body [$($is)*] [$($arms)*] [$($d)*] (SendArm (&$s, $v) $p) $($rest)*)
    };
    (@body [$i:tt $($is:tt)*] [$($arms:tt)*] [$($d:tt)*] ($k:ident $a:tt $p:pat) $body:block, $($rest:tt)*) => {
        $crate::__select_parse!([$($is)*] [$($arms)* ($i $k $a $p => $body)] [$($d)*] $($rest)*)
    };
    (@body [$i:tt $($is:tt)*] [$($arms:tt)*] [$($d:tt)*] ($k:ident $a:tt $p:pat) $body:block $($rest:tt)*) => {
        $crate::__select_parse!([$($is)*] [$($arms)* ($i $k $a $p => $body)] [$($d)*] $($rest)*)
    };
    (@body [$i:tt $($is:tt)*] [$($arms:tt)*] [$($d:tt)*] ($k:ident $a:tt $p:pat) $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!([$($is)*] [$($arms)* ($i $k $a $p => { $body })] [$($d)*] $($rest)*)
    };
    (@body [$i:tt $($is:tt)*] [$($arms:tt)*] [$($d:tt)*] ($k:ident $a:tt $p:pat) $body:expr) => {
        $crate::__select_parse!([$($is)*] [$($arms)* ($i $k $a $p => { $body })] [$($d)*])
    };
    // default(timeout): block until an arm fires or the timeout passes
    ([$($is:tt)*] [$($arms:tt)*] [] default($t:expr) => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!([$($is)*] [$($arms)*] [@until ($t) $body] $($rest)*)
    };
    ([$($is:tt)*] [$($arms:tt)*] [] default($t:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_parse!([$($is)*] [$($arms)*] [@until ($t) $body] $($rest)*)
    };
    ([$($is:tt)*] [$($arms:tt)*] [] default($t:expr) => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!([$($is)*] [$($arms)*] [@until ($t) { $body }] $($rest)*)
    };
    ([$($is:tt)*] [$($arms:tt)*] [] default($t:expr) => $body:expr) => {
        $crate::__select_parse!([$($is)*] [$($arms)*] [@until ($t) { $body }])
    };
    // default
    ([$($is:tt)*] [$($arms:tt)*] [] default => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!([$($is)*] [$($arms)*] [$body] $($rest)*)
    };
    ([$($is:tt)*] [$($arms:tt)*] [] default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!([$($is)*] [$($arms)*] [$body] $($rest)*)
    };
    ([$($is:tt)*] [$($arms:tt)*] [] default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!([$($is)*] [$($arms)*] [{ $body }] $($rest)*)
    };
    ([$($is:tt)*] [$($arms:tt)*] [] default => $body:expr) => {
        $crate::__select_parse!([$($is)*] [$($arms)*] [{ $body }])
    };
    // done: blocking without a default arm, non-blocking with one, bounded
    // with `default(timeout)`
    ([$($is:tt)*] [$(($i:tt $kind:ident ($($args:tt)*) $p:pat => $body:tt))*] [$($default:tt)*]) => {
        match ($($crate::__private::$kind::new($($args)*),)*) {
            #[allow(unused_mut)]
            mut __goro_arms => {
                let __goro_fired = $crate::__private::select_arms(
                    &mut [$(&mut __goro_arms.$i as &mut dyn $crate::__private::SelectArm),*],
                    $crate::__select_default!(mode $($default)*),
                );
                match __goro_fired {
                    $(::core::option::Option::Some($i) => {
                        #[allow(unused_variables)]
                        let $p = __goro_arms.$i.take_result();
                        $body
                    })*
                    _ => $crate::__select_default!(body $($default)*),
                }
            }
        }
    };
}

/// What a `default` arm (or its absence) makes of a select: its mode, and
/// what runs when no arm fired.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_default {
    (mode) => {
        $crate::__private::Mode::Block
    };
    (mode @until ($t:expr) $d:tt) => {
        $crate::__private::Mode::Until($crate::__private::deadline_after($t))
    };
    (mode $d:tt) => {
        $crate::__private::Mode::NonBlocking
    };
    (body) => {
        unreachable!("a blocking select returned no arm")
    };
    (body @until ($t:expr) $d:tt) => {
        $d
    };
    (body $d:tt) => {
        $d
    };
}

impl<T> std::fmt::Debug for RecvArm<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvArm").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for SendArm<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendArm").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Select").field("arms", &self.arms.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    /// The poll order's random words: on a fresh thread (a fresh seed),
    /// 10,000 of them all distinct and every bit set in half of them
    /// within 8 standard deviations (50 each; a good sequence stays within
    /// 4, one that drifts towards ones, as `|=` for `^=` makes it, is 17 off).
    #[test]
    fn fastrand_does_not_degenerate() {
        let xs: Vec<u64> = std::thread::spawn(|| (0..10_000).map(|_| super::fastrand()).collect()).join().unwrap();
        let distinct: std::collections::HashSet<u64> = xs.iter().copied().collect();
        assert_eq!(distinct.len(), xs.len(), "repeated values");
        for bit in 0..64 {
            let ones = xs.iter().filter(|&&x| (x >> bit) & 1 == 1).count();
            assert!((4600..5400).contains(&ones), "bit {bit} set in {ones} of 10,000");
        }
    }

    #[test]
    fn arms_show_their_kind() {
        let c = crate::Chan::<u8>::new(0);
        assert_eq!(format!("{:?}", super::RecvArm::new(&c)), "RecvArm { .. }");
        assert_eq!(format!("{:?}", super::SendArm::new(&c, 1)), "SendArm { .. }");
    }
}
