//! Stack-overflow detection: a SIGSEGV/SIGBUS handler on an alternate signal
//! stack that recognises a fault in the running G's guard page.
//!
//! On a hit it writes `goroutine N [name] stack overflow (stack size S)` to
//! stderr with `write(2)` (nothing that allocates or locks) and exits with
//! status 2, as Go does (`GORO_TRACEBACK=crash` aborts instead, for a core
//! dump). Any other fault goes to the handler that was installed before ours
//! (the application's, or Rust's own, which reports overflows of thread
//! stacks), or to the default action.

use std::sync::Once;

use crate::m;

static INSTALL: Once = Once::new();
static mut OLD_SEGV: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::uninit();
static mut OLD_BUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::uninit();

/// `GORO_TRACEBACK=crash`: abort (and dump core) on a stack overflow instead
/// of exiting with status 2, as Go's `GOTRACEBACK=crash`. Read once, before
/// the handler can run (it cannot read the environment).
static CRASH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs the handler once per process.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        match std::env::var("GORO_TRACEBACK") {
            Ok(v) if v.trim() == "crash" => CRASH.store(true, std::sync::atomic::Ordering::Relaxed),
            Ok(v) if matches!(v.trim(), "" | "none" | "single" | "all" | "system") => {}
            Ok(v) => crate::runtime::warn_env("GORO_TRACEBACK", &v, "crash (or one of Go's other levels)"),
            Err(_) => {}
        }
        // SAFETY: sigaction with a valid handler; the OLD_* statics are
        // written here once, before the handler can run (it is installed by
        // this very call), and only read afterwards.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGSEGV, &sa, (*std::ptr::addr_of_mut!(OLD_SEGV)).as_mut_ptr());
            libc::sigaction(libc::SIGBUS, &sa, (*std::ptr::addr_of_mut!(OLD_BUS)).as_mut_ptr());
        }
    });
}

/// An alternate signal stack this module mapped for an M's thread; dropping
/// it (when the M's thread ends) disables and unmaps it.
pub(crate) struct AltStack(Option<(*mut libc::c_void, usize)>);

impl Drop for AltStack {
    fn drop(&mut self) {
        if let Some((p, size)) = self.0.take() {
            // SAFETY: `p` is the mapping `on_thread_start` installed as this
            // thread's alternate stack (the guard never leaves the thread).
            // No handler runs on it now: we are on the thread's own stack,
            // outside any handler. Disabling it first means a later signal
            // cannot land on unmapped memory.
            unsafe {
                let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
                if libc::sigaltstack(&off, std::ptr::null_mut()) == 0 {
                    libc::munmap(p, size);
                }
            }
        }
    }
}

/// Makes sure the calling thread has an alternate signal stack (std gives
/// its threads one, but only when its own handler is installed). Keep the
/// returned guard until the thread ends: an M that ends while the process
/// goes on (a G that exits locked to it) gives its mapping back.
pub(crate) fn on_thread_start() -> AltStack {
    // SAFETY: querying and setting sigaltstack for the calling thread; the
    // new stack is a fresh mapping that stays mapped until the guard drops
    // at the end of the thread.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut old) != 0 {
            return AltStack(None);
        }
        if old.ss_flags & libc::SS_DISABLE == 0 {
            return AltStack(None);
        }
        let size = 64 * 1024;
        let p = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return AltStack(None);
        }
        let st = libc::stack_t { ss_sp: p, ss_flags: 0, ss_size: size };
        if libc::sigaltstack(&st, std::ptr::null_mut()) != 0 {
            libc::munmap(p, size);
            return AltStack(None);
        }
        AltStack(Some((p, size)))
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let g = m::current_g_ptr();
    if !g.is_null() {
        // SAFETY: the running G is alive while it runs, and it is running:
        // the fault happened on its stack.
        let g = unsafe { &*g };
        let (lo, hi) = g.guard.get();
        if addr >= lo && addr < hi {
            report_overflow(g.id(), g.name(), g.stack_size());
        }
    }
    // Not ours: hand it on.
    // SAFETY: OLD_* were initialised by `install` before this handler could
    // run; calling the previous handler with our arguments is what chaining
    // means; resetting to SIG_DFL and returning re-raises the fault.
    unsafe {
        let old = if sig == libc::SIGSEGV {
            (*std::ptr::addr_of!(OLD_SEGV)).assume_init_ref()
        } else {
            (*std::ptr::addr_of!(OLD_BUS)).assume_init_ref()
        };
        let h = old.sa_sigaction;
        if h == libc::SIG_DFL || h == libc::SIG_IGN {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        } else if old.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
            f(sig);
        }
    }
}

/// Writes the overflow message and exits with status 2 as Go does (aborts
/// with `GORO_TRACEBACK=crash`). Async-signal-safe: formats into a stack
/// buffer.
fn report_overflow(id: u64, name: Option<&str>, size: usize) -> ! {
    let mut buf = [0u8; 512];
    let mut w = Buf { buf: &mut buf, len: 0 };
    w.put(b"goroutine ");
    w.num(id);
    if let Some(n) = name {
        w.put(b" [");
        w.put(n.as_bytes());
        w.put(b"]");
    }
    w.put(b" stack overflow (stack size ");
    w.num(size as u64);
    w.put(b")\nfatal error: stack overflow\n");
    // SAFETY: write(2), abort(3) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, w.buf.as_ptr() as *const libc::c_void, w.len);
        if CRASH.load(std::sync::atomic::Ordering::Relaxed) {
            libc::abort();
        }
        libc::_exit(2);
    }
}

struct Buf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Buf<'_> {
    fn put(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn num(&mut self, mut v: u64) {
        let mut d = [0u8; 20];
        let mut i = d.len();
        loop {
            i -= 1;
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&d[i..]);
    }
}
