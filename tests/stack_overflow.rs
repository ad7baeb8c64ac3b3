//! A G that overflows its stack hits the guard page; the runtime prints
//! `goroutine N [name] stack overflow (stack size S)` and aborts. Run in a
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
fn stack_overflow_is_reported_and_aborts() {
    let out = run_child("overflow_child", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "child exited successfully: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("stack overflow (stack size"))
        .unwrap_or_else(|| panic!("no overflow report in: {stderr}"));
    assert!(line.starts_with("goroutine "), "{line}");
    assert!(line.contains(" [deep] stack overflow (stack size 65536)"), "{line}");
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
