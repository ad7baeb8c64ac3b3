//! A G that overflows its stack hits the guard page; the runtime prints
//! `goroutine N [name] stack overflow (stack size S)` and exits with status
//! 2, as Go does (`GORO_TRACEBACK=crash`: aborts). Faults that are not
//! goro's go to the handler installed before goro's. Each case runs in a
//! child process (this test binary re-executed).

mod common;

use common::{is_child, run_child};

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let buf = [n as u8; 512];
    if n == u64::MAX {
        return 0;
    }
    std::hint::black_box(&buf);
    recurse(n + 1) + buf[7] as u64
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn overflow_child() {
    if !is_child() {
        return; // only meaningful as the child of the test below
    }
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    unsafe {
        goro::run(|| {
            let h = goro::Builder::new().name("deep").stack_size(64 * 1024).spawn(|| recurse(0)).unwrap();
            let _ = h.join();
        })
    };
    unreachable!("the overflow should have aborted the process");
}

#[test]
fn stack_overflow_is_reported_and_exits_2() {
    use std::os::unix::process::ExitStatusExt;
    for (env, crash) in [(None, false), (Some("crash"), true)] {
        let vars: Vec<(&str, &str)> = env.map(|v| ("GORO_TRACEBACK", v)).into_iter().collect();
        let out = run_child("overflow_child", &vars);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if crash {
            assert_eq!(out.status.signal(), Some(libc::SIGABRT), "GORO_TRACEBACK=crash aborts: {stderr}");
        } else {
            assert_eq!(out.status.code(), Some(2), "Go's exit status: {stderr}");
        }
        let line = stderr
            .lines()
            .find(|l| l.contains("stack overflow (stack size"))
            .unwrap_or_else(|| panic!("no overflow report in: {stderr}"));
        assert!(line.starts_with("goroutine "), "{line}");
        assert!(line.contains(" [deep] stack overflow (stack size 65536)"), "{line}");
        assert!(stderr.contains("fatal error: stack overflow"), "{stderr}");
    }
}

/// The application's own SIGSEGV handler, installed before any runtime.
extern "C" fn app_segv(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let msg = b"APP HANDLER\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, msg.as_ptr() as *const libc::c_void, msg.len());
        libc::_exit(7);
    }
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn foreign_fault_child() {
    if !is_child() {
        return;
    }
    // SAFETY: installs a handler that only writes and exits.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = app_segv as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
    }
    let in_g = std::env::var("GORO_TEST_FAULT_IN_G").is_ok();
    fn fault() {
        // A fault far from any guard page: not goro's.
        // SAFETY: deliberately invalid; the handler ends the process.
        unsafe { std::ptr::write_volatile(16 as *mut u8, 1) };
    }
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    unsafe {
        goro::run(move || {
            if in_g {
                goro::go(fault).join().unwrap();
            } else {
                std::thread::spawn(fault).join().unwrap();
            }
        })
    };
    unreachable!("the fault should have ended the process");
}

#[test]
fn faults_that_are_not_goros_reach_the_handler_installed_before() {
    for env in [vec![], vec![("GORO_TEST_FAULT_IN_G", "1")]] {
        let out = run_child("foreign_fault_child", &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{env:?}: {stderr}");
        assert!(stderr.contains("APP HANDLER"), "{stderr}");
        assert!(!stderr.contains("stack overflow"), "{stderr}");
    }
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn stack_exhaustion_child() {
    if !is_child() {
        return; // only meaningful as the child of the test below
    }
    // 2 GiB of address space; each G below reserves 256 MiB of stack.
    let lim = libc::rlimit { rlim_cur: 2 << 30, rlim_max: 2 << 30 };
    // SAFETY: setrlimit on our own process with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    let (ok, failed_joins, failed_spawns) = unsafe {
        goro::run(|| {
            let gate = goro::chan::Chan::<()>::new(0);
            let mut hs = Vec::new();
            let mut failed_spawns = 0;
            for _ in 0..40 {
                let g = gate.clone();
                match goro::Builder::new().stack_size(256 << 20).spawn(move || g.recv()) {
                    Ok(h) => hs.push(h),
                    Err(e) => {
                        assert!(e.to_string().contains("goro:"), "{e}");
                        failed_spawns += 1;
                    }
                }
                goro::yield_now(); // let it start (and map its stack) now
            }
            gate.close();
            let (mut ok, mut failed) = (0, 0);
            for h in hs {
                match h.join() {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            // The runtime still works once memory is back.
            assert_eq!(goro::go(|| 7).join().unwrap(), 7);
            (ok, failed, failed_spawns)
        })
    };
    println!("RESULT ok={ok} failed_joins={failed_joins} failed_spawns={failed_spawns}");
}

#[test]
fn running_out_of_stack_memory_is_an_error_not_a_crash() {
    let out = run_child("stack_exhaustion_child", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child crashed: {stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("{stdout}\n{stderr}"));
    let num =
        |k: &str| -> u32 { line.split(&format!("{k}=")).nth(1).unwrap().split(' ').next().unwrap().parse().unwrap() };
    assert!(num("ok") >= 1, "{line}");
    assert!(num("failed_joins") + num("failed_spawns") >= 1, "some G must have hit the limit: {line}");
    assert!(stderr.contains("cannot map"), "the failure is reported clearly: {stderr}");
}
