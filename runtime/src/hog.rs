//! Hog handoff: **what happens when a G runs too long without telling the
//! runtime** — a tight loop, or a blocking call the runtime never hears
//! about (`std::thread::sleep`, `std::fs`, a blocking client library).
//!
//! Go preempts such a G with a signal and sees every system call. goro
//! cannot do either, so it takes the G's P instead: when a G has run user
//! code for `Policy::hog_threshold` without a runtime call, sysmon takes
//! its P and hands it to another M, so the P's other Gs go on; the G keeps
//! its M (its thread) and, at its next runtime call, gets a P back the way
//! a G returning from a system call does. A hog costs one extra thread
//! while it hogs, never a stalled P.
//!
//! # Sections: where a G is
//!
//! A G is *in user code* from the moment `execute` resumes it until it
//! next needs its P; runtime code that touches the P (readying a G onto
//! its queue, spawning, arming a timer, parking, a syscall's entry and
//! exit, a preemption that is due) is a *section*: it begins with an entry
//! (`m::reacquire_p_then_ctx` → [`enter_runtime`]) and ends either with a
//! switch (after which `execute` puts the next G in user code) or with
//! [`enter_user`] (`m::back_to_user`). Runtime calls that do not touch the
//! P (a channel operation that wakes nobody, say) stay in user code and
//! only bump a progress counter (`P::user.calls`) in the preemption point,
//! so that sysmon does not take the P of a G that calls the runtime often.
//!
//! # The takeover (no read-modify-write on the owner's path)
//!
//! The owner M marks sections in the P's `user.tick`, which only it
//! writes: odd in user code ([`enter_user`]), even inside a section
//! ([`enter_runtime`]). An entry then checks with one load that the P's
//! status word is still the one it acquired (state `Running`, its
//! generation): a plain store and a plain load, separated only by a
//! compiler fence.
//!
//! sysmon, seeing the tick odd and neither it nor the calls counter
//! changed for the threshold:
//! 1. CASes the status `Running` → `Takeover` (same generation);
//! 2. issues a process-wide memory barrier (`membarrier(2)`, which runs a
//!    full fence on every CPU that runs one of our threads);
//! 3. reads the tick again: changed → the owner came back, so sysmon puts
//!    `Running` back (CAS) and leaves; unchanged → it CASes `Takeover` →
//!    `Idle` and hands the P off.
//!
//! The barrier turns the owner's compiler fence into a full one at some
//! point during step 2: an entry whose tick store came before that point is
//! seen by step 3, and an entry after it sees `Takeover` (or `Idle`) and
//! takes the slow path, where a CAS settles who has the P. An owner that
//! loses finds a word of another state or generation (the P may be running
//! again, for another M) and never touches the P again. The model of this
//! race is `tests/loom_hog.rs` (the barrier modelled as a SeqCst fence on
//! both sides; without the barriers loom finds the double owner).
//!
//! A P taken from a hog keeps the hog's odd tick; the next owner makes it
//! even before it publishes its generation (`takeover::acquire`), or
//! sysmon, remembering the odd tick, would take the P from an M that is
//! in the scheduler (modelled too).
//!
//! Only the tick decides safety; the calls counter is a hint that can only
//! delay a takeover. sysmon takes a P only if an M can be started for it
//! (`max_threads`); it looks at a running P within a threshold of seeing
//! its tick change, so a hog keeps its P for two thresholds at most.

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use crate::m::MCtx;
use crate::p::{PStatus, P};
use crate::sched::NO_P;
use crate::takeover;

/// The owner: its G is about to run user code; from here until its next
/// runtime entry, sysmon may take the P.
#[inline]
pub(crate) fn enter_user(c: &MCtx) {
    let p = c.p.get();
    if p == NO_P || c.curg.get().is_null() {
        return;
    }
    c.in_user.set(true);
    // SAFETY: `pp` is the held P while `p` is set (`MCtx::pp`).
    let pp = unsafe { &*c.pp.get() };
    takeover::owner_leave(&pp.user.tick);
}

/// The owner, at a runtime entry after `enter_user`: whether it still
/// holds its P. `false`: sysmon took it (`c.p` is `NO_P` now).
#[inline]
pub(crate) fn enter_runtime(c: &MCtx) -> bool {
    c.in_user.set(false);
    // SAFETY: `in_user` was set, so the M holds the P `pp` points to
    // (`MCtx::pp`), or held it until sysmon took it: Ps live as long as
    // their runtime, which the context keeps alive.
    let pp = unsafe { &*c.pp.get() };
    let mine = c.p_word.get();
    if takeover::owner_enter(&pp.status, &pp.user.tick, mine, PStatus::Takeover.in_word(mine)) {
        return true;
    }
    c.sched.ms.hog_back();
    c.p.set(NO_P);
    c.m.cur_p.store(NO_P, Ordering::Relaxed);
    false
}

/// sysmon: takes P `pp` from its owner, whose G has run user code since
/// it stored `tick` (odd, seen unchanged for the threshold). `true`: the
/// P is `Idle` and the caller must hand it off.
pub(crate) fn take(pp: &P, tick: u32) -> bool {
    if matches!(barrier(), Barrier::None) {
        return false;
    }
    let word = pp.status.load(Ordering::Acquire);
    if PStatus::of_word(word) != PStatus::Running || pp.user.tick.load(Ordering::Acquire) != tick {
        return false;
    }
    takeover::sysmon_take(
        &pp.status,
        &pp.user.tick,
        tick,
        word,
        PStatus::Takeover.in_word(word),
        PStatus::Idle.in_word(word),
        process_barrier,
    )
}

/// How the process-wide barrier is made on this machine.
enum Barrier {
    /// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` (Linux 4.14+).
    Membarrier,
    /// No membarrier (an old kernel, or a seccomp filter), on x86-64:
    /// changing the protection of a page this process has written makes
    /// the kernel flush its TLB entry on every CPU that runs one of our
    /// threads, by an interrupt that drains those CPUs' store buffers (the
    /// fallback .NET uses for its `FlushProcessWriteBuffers`).
    Mprotect(usize),
    /// Neither: hog handoff cannot be done safely, and is not (sysmon
    /// never starts a takeover).
    None,
}

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

fn barrier() -> &'static Barrier {
    static BARRIER: OnceLock<Barrier> = OnceLock::new();
    BARRIER.get_or_init(|| {
        // SAFETY: membarrier takes integer arguments only.
        if unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) } == 0 {
            return Barrier::Membarrier;
        }
        // The page-protection trick is a barrier only where a TLB shootdown
        // interrupts the other CPUs (x86); on ARM it is a broadcast TLB
        // invalidate that drains no store buffer.
        if !cfg!(target_arch = "x86_64") {
            return Barrier::None;
        }
        // SAFETY: an anonymous private mapping of one page; no pointers in.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Barrier::None;
        }
        Barrier::Mprotect(page as usize)
    })
}

/// Registers the process for expedited membarriers (done once, before the
/// first runtime's Ms start, so the first takeover does not pay it).
pub(crate) fn init() {
    barrier();
}

/// A full memory barrier on every CPU running a thread of this process
/// (and on this one). `false` if the machine offers no way to make one.
fn process_barrier() -> bool {
    match barrier() {
        Barrier::Membarrier => {
            // SAFETY: as above.
            unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 }
        }
        Barrier::Mprotect(page) => {
            static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let p = *page as *mut libc::c_void;
            // SAFETY: `page` is our own mapping of one page, used by
            // nobody else; the lock serialises the protection changes.
            unsafe {
                libc::mprotect(p, 4096, libc::PROT_READ | libc::PROT_WRITE) == 0 && {
                    std::ptr::write_volatile(p as *mut u8, 1);
                    libc::mprotect(p, 4096, libc::PROT_NONE) == 0
                }
            }
        }
        Barrier::None => false,
    }
}
