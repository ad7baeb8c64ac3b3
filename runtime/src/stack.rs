//! G stacks: mmap'd, lazily committed, with a guard page below, pooled.
//!
//! A stack is one anonymous private mapping of `guard + size` bytes. Pages are
//! committed by the kernel only when touched, so a parked G costs what it
//! used, not its reservation. The lowest page is a guard:
//! `madvise(MADV_GUARD_INSTALL)` on Linux 6.13+ (the guard needs no VMA of its
//! own, so adjacent stacks merge into one VMA and a million stacks fit under
//! `vm.max_map_count`), else `mprotect(PROT_NONE)` (two VMAs per stack). When
//! the kernel refuses a mapping, spawning fails with an `io::Error` that names
//! the limit; nothing crashes.
//!
//! Pools: each P keeps up to [`P_CACHE`] stacks of the runtime's default size
//! hot (not reset); beyond that they go to the runtime's [`SharedPool`],
//! which sysmon trims (see there). Stacks of other sizes are never pooled.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

#[cfg(any(not(target_arch = "x86_64"), goro_corosensei))]
use corosensei::stack::{Stack as CoroStack, StackPointer};

/// Linux 6.13's `MADV_GUARD_INSTALL` (not yet in the libc crate).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// The smallest usable stack: room for the first frames and the
/// overflow handler's view of them (corosensei's minimum too).
const MIN_STACK_SIZE: usize = 4096;

/// Hot stacks kept per P.
pub const P_CACHE: usize = 64;
/// Reset stacks kept per runtime.
pub const SHARED_CACHE: usize = 4096;
/// Stacks mapped at once when the pools are empty.
const BATCH: usize = 16;
/// Stacks a P moves to the shared pool at once when its cache is full.
const SPILL: usize = P_CACHE / 2;

static GUARD_INSTALL_UNSUPPORTED: AtomicBool = AtomicBool::new(false);
/// Stacks mapped in this process (all runtimes), for leak checks.
static MAPPED: AtomicUsize = AtomicUsize::new(0);

/// How many G stacks are mapped in the process right now (pooled or in use).
pub fn mapped_stacks() -> usize {
    MAPPED.load(Ordering::Relaxed)
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// One G stack. Unmapped on drop.
pub struct Stack {
    /// Lowest address of the mapping (the guard page starts here).
    base: usize,
    /// Bytes of the mapping, guard included.
    len: usize,
    guard: usize,
}

// SAFETY: a Stack is an owned region of memory with no thread affinity.
unsafe impl Send for Stack {}

impl Stack {
    /// Maps a stack with `size` usable bytes (rounded up to pages).
    pub fn new(size: usize) -> io::Result<Stack> {
        Ok(Stack::new_batch(size, 1)?.pop().expect("one stack"))
    }

    /// Maps `n` stacks with one `mmap` (each with its own guard page), so a
    /// burst of spawns does not take the kernel's mmap lock once per G.
    pub fn new_batch(size: usize, n: usize) -> io::Result<Vec<Stack>> {
        let page = page_size();
        let too_big = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("goro: {n} G stack(s) of {size} bytes overflow the address space"),
            )
        };
        let size = size.max(MIN_STACK_SIZE).checked_next_multiple_of(page).ok_or_else(too_big)?;
        let len = size.checked_add(page).ok_or_else(too_big)?;
        let total = len.checked_mul(n).ok_or_else(too_big)?;
        // SAFETY: an anonymous mapping at an address of the kernel's choosing
        // touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!("goro: cannot map {n} G stack(s) of {len} bytes: {err} (address space or vm.max_map_count exhausted)"),
            ));
        }
        MAPPED.fetch_add(n, Ordering::Relaxed);
        // Each Stack owns (and unmaps) its own part of the mapping.
        let stacks: Vec<Stack> = (0..n).map(|i| Stack { base: ptr as usize + i * len, len, guard: page }).collect();
        for s in &stacks {
            s.install_guard()?;
        }
        Ok(stacks)
    }

    fn install_guard(&self) -> io::Result<()> {
        let addr = self.base as *mut libc::c_void;
        if !GUARD_INSTALL_UNSUPPORTED.load(Ordering::Relaxed) {
            // SAFETY: the range is the first page of our own mapping.
            if unsafe { libc::madvise(addr, self.guard, MADV_GUARD_INSTALL) } == 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINVAL) {
                return Err(io::Error::new(err.kind(), format!("goro: cannot install a stack guard page: {err}")));
            }
            GUARD_INSTALL_UNSUPPORTED.store(true, Ordering::Relaxed);
        }
        // SAFETY: as above; this splits the mapping into two VMAs.
        if unsafe { libc::mprotect(addr, self.guard, libc::PROT_NONE) } != 0 {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!(
                    "goro: cannot protect a stack guard page: {err} (vm.max_map_count = {} reached? \
                     each stack needs two mappings on kernels before 6.13)",
                    max_map_count().map_or("?".into(), |n| n.to_string())
                ),
            ));
        }
        Ok(())
    }

    /// Usable bytes (guard excluded).
    pub fn size(&self) -> usize {
        self.len - self.guard
    }

    /// One past the highest address: where the stack starts (it grows
    /// down). Page-aligned.
    #[cfg(all(target_arch = "x86_64", not(goro_corosensei)))]
    pub fn top(&self) -> usize {
        self.base + self.len
    }

    /// The guard page's range `[lo, hi)`.
    pub fn guard_range(&self) -> (usize, usize) {
        (self.base, self.base + self.guard)
    }

    /// Gives the stack's committed pages back to the kernel (they read as
    /// zero on next touch). The guard stays installed: `MADV_DONTNEED` keeps
    /// guard markers, and an `mprotect`ed page is untouched by it.
    pub fn reset(&self) {
        // SAFETY: the range is the usable part of our own mapping and no G
        // runs on it (it is in a pool).
        unsafe {
            libc::madvise((self.base + self.guard) as *mut libc::c_void, self.size(), libc::MADV_DONTNEED);
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: we own the mapping and nothing runs on it any more.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
        MAPPED.fetch_sub(1, Ordering::Relaxed);
    }
}

// (corosensei is the context switch only off x86_64: `context.rs`.)
#[cfg(any(not(target_arch = "x86_64"), goro_corosensei))]
// SAFETY: `base` is the top of the mapping and `limit` its bottom (guard
// included), both page-aligned, hence aligned to STACK_ALIGNMENT; the guard
// page catches overflows; the usable size is at least MIN_STACK_SIZE.
unsafe impl CoroStack for Stack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.base + self.len).expect("stack top is not null")
    }
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.base).expect("stack base is not null")
    }
}

fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?.trim().parse().ok()
}

/// The stack pool shared by a runtime's Ps (the per-P part lives in P).
///
/// Stacks come back here dirty (`hot`) with no system call on the G exit
/// path. sysmon calls [`SharedPool::trim`] about once a second: the stacks
/// that stayed unused for the whole period (the pool's low-water mark) are
/// reset with `MADV_DONTNEED` and kept `cold`, or unmapped beyond
/// [`SHARED_CACHE`]. So a burst of Gs leaves no lasting RSS, and a steady
/// spawn rate pays no madvise (whose TLB shootdowns cost more than the G).
pub struct SharedPool {
    size: usize,
    inner: Mutex<PoolInner>,
    /// Acquisitions of `inner` (`Stats::shared_locks`).
    locks: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct PoolInner {
    hot: Vec<Stack>,
    cold: Vec<Stack>,
    /// Fewest hot stacks seen since the last trim.
    low_water: usize,
}

impl SharedPool {
    pub fn new(size: usize) -> Self {
        SharedPool { size, inner: Mutex::new(PoolInner::default()), locks: Default::default() }
    }

    /// The pool's lock, counted.
    fn lock(&self) -> std::sync::MutexGuard<'_, PoolInner> {
        self.locks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.lock().unwrap()
    }

    /// How many times the pool's lock was taken.
    pub fn locks(&self) -> u64 {
        self.locks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The pooled stack size (the runtime's default G stack size).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Refills `cache` with up to `n` stacks from the shared pool.
    pub fn refill(&self, cache: &mut Vec<Stack>, n: usize) {
        let mut pool = self.lock();
        let k = n.min(pool.hot.len());
        let at = pool.hot.len() - k;
        cache.extend(pool.hot.drain(at..));
        pool.low_water = pool.low_water.min(pool.hot.len());
        let k = (n - k).min(pool.cold.len());
        let at = pool.cold.len() - k;
        cache.extend(pool.cold.drain(at..));
    }

    /// Puts back several stacks.
    pub fn put_many(&self, stacks: impl IntoIterator<Item = Stack>) {
        let mut pool = self.lock();
        pool.hot.extend(stacks.into_iter().filter(|s| s.size() == self.size));
    }

    /// Resets the stacks that went unused since the last call (see above).
    /// Returns how many were reset or unmapped.
    /// At most `max` stacks per call (each costs an `madvise`, or a
    /// `munmap`): the caller, sysmon, must not stall behind a trim of a
    /// million stacks. Returns how many were trimmed and whether more of
    /// this period's idle stacks are left (call again soon).
    pub fn trim(&self, max: usize) -> (usize, bool) {
        let (idle, more): (Vec<Stack>, bool) = {
            let mut pool = self.lock();
            let n = pool.low_water.min(pool.hot.len()).min(max);
            let idle = pool.hot.drain(..n).collect::<Vec<_>>();
            // What is left of the low-water mark is still idle.
            pool.low_water = (pool.low_water - n).min(pool.hot.len());
            let more = pool.low_water > 0;
            if !more {
                // A new period starts: measure its low-water mark.
                pool.low_water = pool.hot.len();
            }
            (idle, more)
        };
        let n = idle.len();
        if n == 0 {
            return (0, false);
        }
        for s in &idle {
            s.reset();
        }
        let mut pool = self.lock();
        let room = SHARED_CACHE.saturating_sub(pool.cold.len());
        let mut idle = idle;
        let excess = idle.len().saturating_sub(room);
        let keep = idle.len() - excess;
        let extra: Vec<Stack> = idle.drain(keep..).collect();
        pool.cold.extend(idle);
        drop(pool);
        drop(extra);
        (n, more)
    }

    pub fn clear(&self) {
        let mut pool = self.lock();
        let (hot, cold) = (std::mem::take(&mut pool.hot), std::mem::take(&mut pool.cold));
        pool.low_water = 0;
        drop(pool);
        drop(hot);
        drop(cold);
    }
}

/// A P's stack cache: get from it, or the shared pool, or a fresh mapping.
pub fn get(cache: &mut Vec<Stack>, shared: &SharedPool, size: usize) -> io::Result<Stack> {
    if size == shared.size() {
        if let Some(s) = cache.pop() {
            return Ok(s);
        }
        shared.refill(cache, P_CACHE / 4);
        if let Some(s) = cache.pop() {
            return Ok(s);
        }
        cache.extend(Stack::new_batch(size, BATCH)?);
        return Ok(cache.pop().expect("a fresh batch"));
    }
    Stack::new(size)
}

/// Returns a stack to a P's cache, spilling half of it to the shared pool
/// when full (one lock per `SPILL` stacks).
pub fn put(cache: &mut Vec<Stack>, shared: &SharedPool, stack: Stack) {
    if stack.size() != shared.size() {
        return; // unmapped on drop
    }
    if cache.len() >= P_CACHE {
        let at = cache.len() - SPILL;
        shared.put_many(cache.drain(at..));
    }
    cache.push(stack);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_is_writable_and_reset_zeroes_it() {
        let s = Stack::new(64 * 1024).unwrap();
        let top = s.base + s.len - 8;
        // SAFETY: top is inside the usable part of the mapping.
        unsafe {
            *(top as *mut u64) = 42;
            assert_eq!(*(top as *const u64), 42);
        }
        s.reset();
        // SAFETY: as above; MADV_DONTNEED pages read back as zero.
        unsafe { assert_eq!(*(top as *const u64), 0) };
    }

    fn vmas() -> usize {
        std::fs::read_to_string("/proc/self/maps").map(|m| m.lines().count()).unwrap_or(0)
    }

    #[test]
    fn a_million_stacks_fit_under_the_map_count_or_fail_clearly() {
        // Untouched stacks cost no memory, only address space: 1M x 68 KiB.
        const N: usize = 1_000_000;
        let before = vmas();
        let mut stacks = Vec::with_capacity(N);
        let mut err = None;
        while stacks.len() < N {
            match Stack::new_batch(64 * 1024, 1024) {
                Ok(b) => stacks.extend(b),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if GUARD_INSTALL_UNSUPPORTED.load(Ordering::Relaxed) {
            // mprotect guards split VMAs: the budget runs out, with an error
            // that says so instead of a crash.
            let e = err.expect("a kernel without MADV_GUARD_INSTALL runs out of mappings");
            assert!(e.to_string().contains("max_map_count"), "{e}");
        } else {
            assert!(err.is_none(), "{err:?}");
            assert!(stacks.len() >= N);
            let grown = vmas().saturating_sub(before);
            assert!(grown < 65_530 / 2, "guard pages must not cost a VMA each: {grown} new VMAs");
        }
    }

    #[test]
    fn sizes_round_up_to_pages() {
        let s = Stack::new(5000).unwrap();
        assert_eq!(s.size() % page_size(), 0);
        assert!(s.size() >= 5000);
    }

    #[test]
    fn pool_reuses_default_size_only() {
        let shared = SharedPool::new(64 * 1024);
        let mut cache = Vec::new();
        let a = get(&mut cache, &shared, 64 * 1024).unwrap();
        let base = a.base;
        put(&mut cache, &shared, a);
        let b = get(&mut cache, &shared, 64 * 1024).unwrap();
        assert_eq!(b.base, base);
        let n = cache.len();
        let odd = get(&mut cache, &shared, 128 * 1024).unwrap();
        assert_eq!(odd.size(), 128 * 1024);
        put(&mut cache, &shared, odd);
        assert_eq!(cache.len(), n, "odd sizes are not pooled");
    }
}
