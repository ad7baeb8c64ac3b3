//! A G's execution context: its stack, where its stack pointer was when it
//! last switched out, and the switch between the G's stack and its M's.
//!
//! On x86_64 the switch is our own. It saves what the ABI says a call
//! preserves (`rbx`, `rbp` pushed; `r12`–`r15` declared clobbered, so the
//! compiler saves them only where they are live), pushes the address to
//! resume at, swaps stack pointers, and jumps to the other side's resume
//! address. Neither direction is a call or a return. A switch shaped like
//! a call (corosensei's: `call` into the G, `ret` out of it) pairs each
//! `ret` with the wrong `call` in the CPU's return-address predictor, and
//! the returns after the switch, on both sides, are predicted from the
//! other stack's calls. Two Gs resumed in turn from a loop, each switching
//! three frames down: 22–25 ns a round trip with corosensei, 15–17 ns with
//! this one, on the EPYC VM (docs/experiments.md, sixth session).
//!
//! Elsewhere (and on x86_64 built with `--cfg goro_corosensei`, which is
//! how the fallback is tested) the same API is a thin layer over
//! corosensei.
//!
//! The contract of both: the M resumes the context ([`Context::resume`]),
//! the G gives the M back ([`Context::suspend`]) or returns from its entry
//! function. A suspended G's stack is unwound in place
//! ([`Context::unwind`], at shutdown: its destructors run on the calling
//! thread); a context dropped while its G still has frames leaks its stack
//! instead of freeing memory those frames point into.
//!
//! Where the corosensei fallback differs: dropping a suspended context
//! unwinds it (corosensei's forced unwind) instead of leaking its stack, a
//! panic out of a destructor during that unwind propagates instead of
//! being dropped, and there is no stack pointer to prefetch (`sp_hint` is
//! 0).

#[cfg(all(target_arch = "x86_64", not(goro_corosensei)))]
pub(crate) use own::Context;

#[cfg(any(not(target_arch = "x86_64"), goro_corosensei))]
pub(crate) use corosensei_based::Context;

use crate::g::Switch;

/// What [`Context::resume`] came back with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resumed {
    /// The G switched out, for this reason.
    Yield(Switch),
    /// The G's entry function returned: the context is done.
    Return,
}

#[cfg(all(target_arch = "x86_64", not(goro_corosensei)))]
mod own {
    use std::any::Any;
    use std::arch::asm;
    use std::cell::Cell;
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

    use super::Resumed;
    use crate::g::Switch;
    use crate::stack::Stack;

    /// The payload that unwinds a suspended G's stack (`Context::unwind`,
    /// at shutdown). Code in the G that catches panics must let it through
    /// (`goroutine.rs` does).
    struct ForcedUnwind;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum State {
        /// Made, never resumed: the stack holds only the entry frame.
        Fresh,
        /// On the CPU (its M is inside `resume`).
        Running,
        /// Switched out; `sp` is where to resume it.
        Suspended,
        /// Resumed by `Drop` to unwind its stack.
        Unwinding,
        /// The entry function returned (or unwound): nothing lives on
        /// the stack any more.
        Done,
    }

    /// A G's stack and saved registers (see the module docs).
    ///
    /// The entry function and its argument sit at the top of the stack,
    /// above the first frame, which starts with a zero return address (the
    /// unwinder and debuggers stop there):
    ///
    /// ```text
    /// top - 8   argument
    /// top - 16  entry function
    /// top - 24  0 (return address of `trampoline`)
    /// top - 32  address of `start`          <- sp of a fresh context
    /// ```
    pub(crate) struct Context {
        /// Dropped by hand: leaked if a G's frames outlive an unwind.
        stack: std::mem::ManuallyDrop<Stack>,
        /// The G's stack pointer while it is switched out.
        sp: Cell<usize>,
        /// The resuming M's stack pointer while the G runs.
        parent: Cell<usize>,
        state: Cell<State>,
        why: Cell<Switch>,
    }

    thread_local! {
        /// A panic that escaped a G's entry function (which catches its
        /// own): `resume` raises it again on the resuming M's stack.
        static ESCAPED: Cell<Option<Box<dyn Any + Send>>> = const { Cell::new(None) };
    }

    // A G may change threads at any switch, and the compiler may keep a
    // thread-local's address across a call: G-side code reads them only
    // through functions that are never inlined (as `m.rs` does).
    #[inline(never)]
    fn escaped_set(p: Box<dyn Any + Send>) {
        ESCAPED.set(Some(p));
    }

    #[inline(never)]
    fn escaped_take() -> Option<Box<dyn Any + Send>> {
        ESCAPED.take()
    }

    /// Switches stacks: saves the resume state of this side on its stack,
    /// stores its stack pointer in `*save`, and resumes the side whose
    /// stack pointer is `to`. `arg` reaches a fresh context's trampoline
    /// (in `rdx`, its third argument).
    ///
    /// # Safety
    /// `to` is the stack pointer a switch saved (or a fresh context's), of
    /// a stack nobody runs on, and `save` is valid for a write.
    #[inline(always)]
    unsafe fn switch(save: *mut usize, to: usize, arg: usize) {
        // SAFETY: the caller's contract. The block leaves every register
        // the ABI preserves as it found it when this side is resumed: rbx
        // and rbp are pushed and popped, r12-r15 and everything
        // caller-saved are declared clobbered. The stack pointer is back
        // where it was on resumption (the other side jumped to label 2
        // with our saved pointer), and the pushes are allowed because the
        // block is not `nostack` (no red zone is live across it).
        unsafe {
            asm!(
                "push rbp",
                "push rbx",
                "lea rax, [rip + 2f]",
                "push rax",
                "mov [rdi], rsp",
                "mov rsp, rsi",
                "pop rax",
                "jmp rax",
                "2:",
                "pop rbx",
                "pop rbp",
                in("rdi") save,
                in("rsi") to,
                in("rdx") arg,
                out("rax") _,
                out("r12") _,
                out("r13") _,
                out("r14") _,
                out("r15") _,
                clobber_abi("sysv64"),
            );
        }
    }

    /// Where a fresh context starts: clears the frame pointer, so that
    /// frame-pointer walks (profilers) end at the G's first frame instead
    /// of running into the stale frames of the M that resumed it, and
    /// enters `trampoline` as if called (its return address, 0, is on the
    /// stack already).
    #[unsafe(naked)]
    unsafe extern "sysv64" fn start() -> ! {
        std::arch::naked_asm!("xor ebp, ebp", "jmp {t}", t = sym trampoline)
    }

    /// The first frame on a G's stack: runs the entry function and, when
    /// it is done, switches to the resuming M for good.
    ///
    /// # Safety
    /// Entered only from `start`, by the first `switch` into a fresh
    /// context, `ctx` being that context.
    unsafe extern "sysv64" fn trampoline(_save: usize, _sp: usize, ctx: *const Context) -> ! {
        // SAFETY: `resume` passed its own address, and the context stays
        // in place while its G runs (it is borrowed by `resume`).
        let ctx = unsafe { &*ctx };
        let top = ctx.stack.top();
        // SAFETY: `new` wrote the entry function and its argument there;
        // nothing else writes above the trampoline's frame.
        let (entry, arg) = unsafe {
            let entry: unsafe fn(*const ()) = std::mem::transmute(*((top - 16) as *const usize));
            (entry, *((top - 8) as *const *const ()))
        };
        // SAFETY: `new`'s contract: `entry(arg)` may run on this stack.
        let r = catch_unwind(AssertUnwindSafe(|| unsafe { entry(arg) }));
        if let Err(p) = r {
            if !p.is::<ForcedUnwind>() {
                escaped_set(p);
            }
        }
        ctx.state.set(State::Done);
        let to = ctx.parent.get();
        // SAFETY: `to` is the resuming M's stack pointer, saved by the
        // switch in `resume`, which this jump returns to (its label pops
        // the rest). Nothing on this stack is used again.
        unsafe { asm!("mov rsp, {to}", "pop rax", "jmp rax", to = in(reg) to, options(noreturn)) }
    }

    impl Context {
        /// A context that runs `entry(arg)` on `stack` when first resumed.
        ///
        /// # Safety
        /// Calling `entry(arg)` on another thread, at the first `resume`,
        /// must be sound.
        pub(crate) unsafe fn new(stack: Stack, entry: unsafe fn(*const ()), arg: *const ()) -> Context {
            let top = stack.top();
            debug_assert!(top.is_multiple_of(16));
            // SAFETY: the four words are the top of the stack's usable
            // part, which we own and nothing runs on.
            unsafe {
                *((top - 8) as *mut usize) = arg as usize;
                *((top - 16) as *mut usize) = entry as usize;
                *((top - 24) as *mut usize) = 0;
                *((top - 32) as *mut usize) = start as *const () as usize;
            }
            Context {
                stack: std::mem::ManuallyDrop::new(stack),
                sp: Cell::new(top - 32),
                parent: Cell::new(0),
                state: Cell::new(State::Fresh),
                why: Cell::new(Switch::Yield),
            }
        }

        /// Runs the G until it switches out or returns. Called by an M,
        /// on its own stack, for a context that is not running.
        ///
        /// # Safety
        /// The context has not moved since it was first resumed, and will
        /// not while its G has frames (it lives in its `G`, which is never
        /// moved): the G's frames hold its address.
        #[inline(always)]
        pub(crate) unsafe fn resume(&self) -> Resumed {
            let state = self.state.get();
            assert!(matches!(state, State::Fresh | State::Suspended), "goro: resuming a G that is {state:?}");
            self.state.set(State::Running);
            self.switch_in();
            self.returned()
        }

        #[inline(always)]
        fn switch_in(&self) {
            // SAFETY: the G is fresh or suspended (checked by the callers),
            // so `sp` is a stack pointer its last switch saved (or `new`
            // set) and nothing runs on its stack.
            unsafe { switch(self.parent.as_ptr(), self.sp.get(), self as *const Context as usize) };
        }

        #[inline(always)]
        fn returned(&self) -> Resumed {
            match self.state.get() {
                State::Suspended => Resumed::Yield(self.why.get()),
                _ => {
                    if let Some(p) = escaped_take() {
                        resume_unwind(p);
                    }
                    Resumed::Return
                }
            }
        }

        /// Gives the M back to whoever resumed the G.
        ///
        /// # Safety
        /// Called on this context's stack, by the G running on it.
        #[inline(always)]
        pub(crate) unsafe fn suspend(&self, why: Switch) {
            self.why.set(why);
            self.state.set(State::Suspended);
            // SAFETY: we run on this context's stack, so `parent` is the
            // stack pointer the resuming M saved, and it waits there.
            unsafe { switch(self.sp.as_ptr(), self.parent.get(), 0) };
            if self.state.get() == State::Unwinding {
                // Resumed by `Drop`: unwind the stack.
                resume_unwind(Box::new(ForcedUnwind));
            }
        }

        /// Where the G's stack pointer was when it last switched out (the
        /// top of the stack if it never ran): the line to prefetch before
        /// resuming it. Only a hint: stale while the G runs.
        #[inline]
        pub(crate) fn sp_hint(&self) -> usize {
            self.sp.get()
        }

        /// The stack of a G that is done (or never ran).
        pub(crate) fn into_stack(self) -> Stack {
            assert!(matches!(self.state.get(), State::Fresh | State::Done), "goro: taking the stack of a live G");
            let mut this = std::mem::ManuallyDrop::new(self);
            // SAFETY: taken once, from a context that is never dropped.
            unsafe { std::mem::ManuallyDrop::take(&mut this.stack) }
        }

        /// Unwinds a suspended G's stack, running its destructors on this
        /// thread. Must be called where the context will stay until it
        /// is dropped: the G's frames point into it. False if the G
        /// switched out again while unwinding (a destructor parked): its
        /// frames can never finish then, and dropping the context leaks
        /// the stack.
        ///
        /// # Safety
        /// As `resume`.
        pub(crate) unsafe fn unwind(&self) -> bool {
            if self.state.get() != State::Suspended {
                return self.state.get() != State::Unwinding;
            }
            self.state.set(State::Unwinding);
            self.switch_in();
            // A panic other than ours out of a destructor: dropped, as a
            // forced unwind has no one to report it to.
            drop(escaped_take());
            if self.state.get() == State::Suspended {
                // Parked while unwinding: never to be resumed.
                self.state.set(State::Unwinding);
            }
            self.state.get() == State::Done
        }
    }

    impl Drop for Context {
        fn drop(&mut self) {
            // A context whose G still has frames (suspended, or stuck
            // while unwinding) keeps its stack mapped for ever: the frames
            // hold pointers into it and into the context's old place, so
            // it cannot be unwound from here (it may have moved). Callers
            // that want the G's destructors run call `unwind` first, in
            // place.
            if matches!(self.state.get(), State::Fresh | State::Done) {
                // SAFETY: dropped once, here; nothing runs on it any more.
                unsafe { std::mem::ManuallyDrop::drop(&mut self.stack) };
            }
        }
    }
}

#[cfg(any(not(target_arch = "x86_64"), goro_corosensei))]
mod corosensei_based {
    use std::cell::{Cell, UnsafeCell};

    use corosensei::{Coroutine, CoroutineResult, Yielder};

    use super::Resumed;
    use crate::g::Switch;
    use crate::stack::Stack;

    /// corosensei's coroutine, with the yielder its body was given.
    pub(crate) struct Context {
        co: UnsafeCell<Coroutine<(), Switch, (), Stack>>,
        /// Set by the body when it starts; boxed so that its address does
        /// not move with the context.
        yielder: Box<Cell<*const Yielder<(), Switch>>>,
    }

    impl Context {
        /// # Safety
        /// As the x86_64 `Context::new`.
        pub(crate) unsafe fn new(stack: Stack, entry: unsafe fn(*const ()), arg: *const ()) -> Context {
            let yielder = Box::new(Cell::new(std::ptr::null()));
            let cell: *const Cell<*const Yielder<(), Switch>> = &*yielder;
            let co = Coroutine::with_stack(stack, move |y: &Yielder<(), Switch>, ()| {
                // SAFETY: the box outlives the coroutine (both are the
                // context's), and the caller's contract covers `entry`.
                unsafe {
                    (*cell).set(y);
                    entry(arg);
                }
            });
            Context { co: UnsafeCell::new(co), yielder }
        }

        /// # Safety
        /// As the x86_64 `Context::resume` (corosensei needs less).
        pub(crate) unsafe fn resume(&self) -> Resumed {
            // SAFETY: only the resuming M touches the coroutine, and the G
            // only through its yielder.
            match unsafe { (*self.co.get()).resume(()) } {
                CoroutineResult::Yield(w) => Resumed::Yield(w),
                CoroutineResult::Return(()) => Resumed::Return,
            }
        }

        /// # Safety
        /// As the x86_64 `Context::suspend`.
        pub(crate) unsafe fn suspend(&self, why: Switch) {
            // SAFETY: the yielder lives on this stack, which we run on.
            unsafe { (*self.yielder.get()).suspend(why) };
        }

        pub(crate) fn sp_hint(&self) -> usize {
            0
        }

        pub(crate) fn into_stack(self) -> Stack {
            self.co.into_inner().into_stack()
        }

        /// Unwinds a suspended G's stack in place (corosensei's forced
        /// unwind); false if it did not finish.
        ///
        /// # Safety
        /// As `resume`.
        pub(crate) unsafe fn unwind(&self) -> bool {
            // SAFETY: as `resume`: the caller is the G's only runner.
            let co = unsafe { &mut *self.co.get() };
            if co.started() && !co.done() {
                co.force_unwind();
            }
            co.done() || !co.started()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::{Context, Resumed};
    use crate::g::Switch;
    use crate::stack::Stack;

    /// What a test's entry function runs: a closure behind a pointer.
    type Body = Box<dyn FnOnce(&Context)>;

    /// The test's context and the body its entry runs; the body gets the
    /// context to suspend on.
    struct Fixture {
        ctx: Option<Context>,
        body: Option<Body>,
    }

    unsafe fn entry(arg: *const ()) {
        // SAFETY: `fixture` passes its own (boxed, never moved) address.
        let f = unsafe { &mut *(arg as *mut Fixture) };
        let body = f.body.take().unwrap();
        body(f.ctx.as_ref().unwrap());
    }

    fn fixture(body: impl FnOnce(&Context) + 'static) -> Box<Fixture> {
        let mut f = Box::new(Fixture { ctx: None, body: Some(Box::new(body)) });
        let arg = &mut *f as *mut Fixture as *const ();
        // SAFETY: `entry` runs the body on the context's stack, in the test's
        // thread; the fixture is boxed and outlives the context.
        f.ctx = Some(unsafe { Context::new(Stack::new(64 * 1024).unwrap(), entry, arg) });
        f
    }

    fn resume(f: &Fixture) -> Resumed {
        // SAFETY: the context stays in its boxed fixture.
        unsafe { f.ctx.as_ref().unwrap().resume() }
    }

    #[test]
    fn switches_carry_their_reason_and_return_ends_it() {
        let seen = Rc::new(Cell::new(0));
        let s = seen.clone();
        let f = fixture(move |ctx| {
            for (i, why) in [Switch::Yield, Switch::Park, Switch::Preempt, Switch::NeedP].into_iter().enumerate() {
                s.set(i + 1);
                // SAFETY: we run on this context's stack.
                unsafe { ctx.suspend(why) };
            }
        });
        for (i, why) in [Switch::Yield, Switch::Park, Switch::Preempt, Switch::NeedP].into_iter().enumerate() {
            assert_eq!(resume(&f), Resumed::Yield(why));
            assert_eq!(seen.get(), i + 1);
        }
        assert_eq!(resume(&f), Resumed::Return);
        let mut f = f;
        let stack = f.ctx.take().unwrap().into_stack();
        assert!(stack.size() >= 64 * 1024);
    }

    /// Six values, one step of a mix that needs all of them live: the
    /// values stay in registers in the caller (`inline(always)`).
    #[inline(always)]
    fn mix(v: (u64, u64, u64, u64, u64, u64), i: u64) -> (u64, u64, u64, u64, u64, u64) {
        let (mut a, mut b, mut c, mut d, mut e, mut g) = v;
        a = a.wrapping_mul(31).wrapping_add(i);
        b ^= a.rotate_left(7);
        c = c.wrapping_add(b);
        d = d.wrapping_mul(c | 1);
        e ^= d >> 3;
        g = g.wrapping_add(e);
        (a, b, c, d, e, g)
    }

    #[test]
    fn registers_and_locals_survive_many_switches() {
        // Enough live values that the compiler keeps some in the registers
        // a call preserves (rbx, rbp, r12-r15) across each switch.
        let out = Rc::new(Cell::new(0u64));
        let o = out.clone();
        let f = fixture(move |ctx| {
            let mut v = (1, 2, 3, 4, 5, 6);
            for i in 0..1000u64 {
                v = mix(v, i);
                // SAFETY: we run on this context's stack.
                unsafe { ctx.suspend(Switch::Yield) };
            }
            o.set(v.0 ^ v.1 ^ v.2 ^ v.3 ^ v.4 ^ v.5);
        });
        // The same arithmetic without switches.
        let v = (0..1000u64).fold((1, 2, 3, 4, 5, 6), mix);
        let mut x = 0x9e37_79b9_u64;
        while resume(&f) != Resumed::Return {
            // Busy the resumer's registers too.
            x = x.rotate_left(5).wrapping_mul(0x100_0000_01b3);
        }
        assert_ne!(x, 0);
        assert_eq!(out.get(), v.0 ^ v.1 ^ v.2 ^ v.3 ^ v.4 ^ v.5);
    }

    #[test]
    fn a_panic_out_of_the_entry_function_reaches_the_resumer() {
        let f = fixture(|_| panic!("out of the G"));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| resume(&f)));
        let msg = r.expect_err("the panic came through");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"out of the G"));
    }

    #[test]
    fn unwinding_a_suspended_context_runs_its_destructors() {
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let f = fixture(move |ctx| {
            let _flag = Flag(d);
            loop {
                // SAFETY: we run on this context's stack.
                unsafe { ctx.suspend(Switch::Park) };
            }
        });
        assert_eq!(resume(&f), Resumed::Yield(Switch::Park));
        assert!(!dropped.get());
        // SAFETY: the context stays in its boxed fixture.
        assert!(unsafe { f.ctx.as_ref().unwrap().unwind() });
        assert!(dropped.get(), "the G's locals were dropped");
    }

    #[test]
    fn a_backtrace_taken_in_a_g_ends_at_its_first_frame() {
        let bt = Rc::new(Cell::new(String::new()));
        let b = bt.clone();
        let f = fixture(move |ctx| {
            b.set(std::backtrace::Backtrace::force_capture().to_string());
            // SAFETY: we run on this context's stack.
            unsafe { ctx.suspend(Switch::Yield) };
        });
        assert_eq!(resume(&f), Resumed::Yield(Switch::Yield));
        assert_eq!(resume(&f), Resumed::Return);
        let bt = bt.take();
        // The walk went through the G's frames. Ours stops at the zero
        // return address above the trampoline: none of the resuming
        // thread's frames (the test harness's) are in it (corosensei links
        // the G's frames to the resumer's instead).
        assert!(bt.contains("a_backtrace_taken_in_a_g_ends_at_its_first_frame"), "{bt}");
        #[cfg(all(target_arch = "x86_64", not(goro_corosensei)))]
        assert!(bt.contains("trampoline") && !bt.contains("run_test"), "{bt}");
    }
}
