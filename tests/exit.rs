//! Exit and shutdown never hang: `goro::run` returns and a `Runtime` drops
//! in bounded time whatever its Gs are doing (blocked in a call the runtime
//! cannot interrupt, computing without runtime calls, or blocking in a
//! destructor), and a runtime dropped from one of its own Gs shuts down
//! without a panic. Each case runs in a child process under a time bound.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{is_child, run_child};
use goro::chan::Chan;
use goro::Runtime;

fn runtime(name: &str) -> Runtime {
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    unsafe { Runtime::builder().procs(2).name(name).build() }.unwrap()
}

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn exit_child() {
    if !is_child() {
        return;
    }
    let case = std::env::var("GORO_TEST_CASE").unwrap();
    let t = Instant::now();
    match case.as_str() {
        // `goro::run` returns while a G reads stdin (never written) in
        // `blocking`, in `syscall`, or spins without runtime calls.
        "stdin_blocking" | "stdin_syscall" | "spin" => {
            let case2 = case.clone();
            let case2_main = case.clone();
            let main = move || {
                let started = Chan::new(1);
                let s = started.clone();
                // The spinner starts spinning only as the main G returns:
                // with one P it would otherwise never let the main G run
                // again (a G that never calls the runtime keeps its P).
                let last_word = Chan::<()>::new(0);
                let lw = last_word.clone();
                // A pipe nobody writes to stands for a terminal nobody
                // types at (the child's own stdin is /dev/null).
                let mut fds = [0; 2];
                // SAFETY: pipe(2) with a valid array; both ends stay open.
                assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
                let input = fds[0];
                goro::go(move || {
                    s.send(()).unwrap();
                    let mut b = [0u8; 1];
                    // SAFETY: reads into a valid buffer from our pipe.
                    let read = || unsafe { libc::read(input, b.as_mut_ptr() as *mut libc::c_void, 1) };
                    match case2.as_str() {
                        "stdin_blocking" => drop(goro::blocking(read)),
                        "stdin_syscall" => drop(goro::syscall(read)),
                        _ => {
                            lw.recv();
                            loop {
                                std::hint::spin_loop();
                            }
                        }
                    }
                });
                started.recv().unwrap();
                goro::sleep(Duration::from_millis(10));
                if case2_main == "spin" {
                    last_word.send(()).unwrap();
                }
                7
            };
            // SAFETY: the test's Gs keep no thread-local state across switch points.
            let v = unsafe { goro::run(main) };
            assert_eq!(v, 7);
        }
        // Dropping a runtime whose G sleeps in a system call for ten
        // minutes; the process goes on and starts another runtime.
        "drop_in_syscall" => {
            let rt = runtime("insys");
            let started = Chan::new(1);
            let s = started.clone();
            rt.spawn(move || {
                s.send(()).unwrap();
                goro::syscall(|| std::thread::sleep(Duration::from_secs(600)));
            });
            started.recv().unwrap();
            drop(rt);
            assert_eq!(runtime("after").block_on(|| goro::go(|| 5).join().unwrap()), 5);
        }
        // A parked G whose destructor blocks forever when it is dropped.
        "blocking_destructor" => {
            struct SendOnDrop(Chan<u8>);
            impl Drop for SendOnDrop {
                fn drop(&mut self) {
                    let _ = self.0.send(1); // nobody will ever receive
                }
            }
            let rt = runtime("dtor");
            let parked = rt.block_on(|| {
                let c = Chan::<u8>::new(0);
                let never = Chan::<u8>::new(0);
                let (c2, n2) = (c.clone(), never.clone());
                goro::go(move || {
                    let _d = SendOnDrop(c2);
                    n2.recv();
                });
                (c, never)
            });
            common::wait_until("the G parked", || rt.stats().waiting_goroutines >= 1);
            drop(rt);
            drop(parked);
        }
        // Dropping a runtime while a G is in a long `blocking` call: its M
        // is detached after the grace period. A parked G is still unwound
        // (its locals dropped); the G in the call is not touched (its M may
        // run it on), and once the call returns it runs to its end.
        "detached" => {
            struct Flag(Arc<AtomicBool>);
            impl Drop for Flag {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let rt = runtime("detach");
            let (in_call_dropped, parked_dropped) =
                (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
            let returned = Arc::new(AtomicBool::new(false));
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let started = Chan::new(2);
            let (s1, s2) = (started.clone(), started.clone());
            let (f1, r1) = (in_call_dropped.clone(), returned.clone());
            rt.spawn(move || {
                let _f = Flag(f1);
                s1.send(()).unwrap();
                goro::blocking(|| wait.recv().unwrap());
                r1.store(true, Ordering::SeqCst);
            });
            let never = Chan::<u8>::new(0);
            let (f2, n2) = (parked_dropped.clone(), never.clone());
            rt.spawn(move || {
                let _f = Flag(f2);
                s2.send(()).unwrap();
                n2.recv();
            });
            started.recv().unwrap();
            started.recv().unwrap();
            common::wait_until("the G parked", || rt.stats().waiting_goroutines >= 1);
            drop(rt);
            assert!(parked_dropped.load(Ordering::SeqCst), "the parked G was not unwound");
            assert!(!in_call_dropped.load(Ordering::SeqCst), "the G in a blocking call was unwound under its M");
            release.send(()).unwrap();
            common::wait_until("the G back from its call ran to its end", || in_call_dropped.load(Ordering::SeqCst));
            assert!(returned.load(Ordering::SeqCst));
            drop(never);
        }
        // The last handle of a runtime dropped inside one of its own Gs.
        "drop_inside" => {
            let slot = Arc::new(Mutex::new(Some(runtime("dropme"))));
            let s2 = slot.clone();
            let h = slot.lock().unwrap().as_ref().unwrap().spawn(move || {
                let rt = s2.lock().unwrap().take();
                drop(rt); // no panic; the shutdown happens on another thread
                7
            });
            assert_eq!(h.join().unwrap(), 7);
            common::wait_until("the runtime's threads ended", || {
                !thread_names().iter().any(|n| n.starts_with("dropme"))
            });
        }
        other => panic!("no case {other}"),
    }
    println!("RESULT ok after {} ms", t.elapsed().as_millis());
}

fn check(case: &str) {
    let out = run_child("exit_child", &[("GORO_TEST_CASE", case)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{case}: {stdout}{stderr}");
    let line = stdout.lines().find(|l| l.contains("RESULT ok")).unwrap_or_else(|| panic!("{case}: {stdout}{stderr}"));
    // Not an assertion on speed: the figure is printed for the reader.
    println!("{case}: {}", line.split("RESULT ").nth(1).unwrap());
}

#[test]
fn run_returns_while_a_g_reads_stdin_in_blocking() {
    check("stdin_blocking");
}

#[test]
fn run_returns_while_a_g_reads_stdin_in_syscall() {
    check("stdin_syscall");
}

#[test]
fn run_returns_while_a_g_spins() {
    check("spin");
}

#[test]
fn a_runtime_drops_while_a_g_sleeps_in_a_syscall() {
    check("drop_in_syscall");
}

#[test]
fn a_destructor_that_blocks_does_not_hang_shutdown() {
    check("blocking_destructor");
}

#[test]
fn the_last_runtime_handle_dropped_in_its_own_g_shuts_it_down() {
    check("drop_inside");
}

#[test]
fn a_runtime_drops_while_a_g_is_in_a_long_blocking_call() {
    check("detached");
}
