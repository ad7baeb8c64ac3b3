//! A G that overflows its stack hits the guard page; the runtime prints
//! `goroutine N [name] stack overflow (stack size S)` and aborts. Run in a
//! child process (this test binary re-executed).

use std::process::Command;

const CHILD_ENV: &str = "GORO_TEST_OVERFLOW_CHILD";

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
fn overflow_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful as the child of the test below
    }
    goro::run(|| {
        let h = goro::Builder::new().name("deep").stack_size(64 * 1024).spawn(|| recurse(0)).unwrap();
        let _ = h.join();
    });
    unreachable!("the overflow should have aborted the process");
}

#[test]
fn stack_overflow_is_reported_and_aborts() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "overflow_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "child exited successfully: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("stack overflow (stack size"))
        .unwrap_or_else(|| panic!("no overflow report in: {stderr}"));
    assert!(line.starts_with("goroutine "), "{line}");
    assert!(line.contains(" [deep] stack overflow (stack size 65536)"), "{line}");
}
