//! A panicking G is contained: its panic is reported through `join` and the
//! runtime keeps serving every other G.

mod common;

use common::bounded;
use goro::Runtime;

/// Silences the panics these tests provoke, and only those.
fn quiet_expected_panics() {
    common::quiet_panics(|msg| msg.starts_with("boom") || msg == "main G failed");
}

#[test]
fn thousand_panicking_goroutines_are_contained() {
    quiet_expected_panics();
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        let hs: Vec<_> = (0..1000u32)
            .map(|i| {
                rt.spawn(move || {
                    if i % 2 == 0 {
                        panic!("boom {i}");
                    }
                    i
                })
            })
            .collect();
        let mut oks = 0;
        for (i, h) in hs.into_iter().enumerate() {
            match h.join() {
                Ok(v) => {
                    assert_eq!(v as usize, i);
                    oks += 1;
                }
                Err(p) => {
                    let msg = p.downcast_ref::<String>().expect("panic payload is the message");
                    assert_eq!(msg, &format!("boom {i}"));
                }
            }
        }
        assert_eq!(oks, 500);
        // Still serving.
        assert_eq!(rt.block_on(|| goro::go(|| 41 + 1).join().unwrap()), 42);
        // The main G's exit is counted just after it hands over its result.
        while rt.stats().total.completed < 1002 {
            std::thread::yield_now();
        }
        assert_eq!(rt.stats().total.spawned, 1002);
    });
}

#[test]
fn block_on_resumes_the_panic_in_the_caller_and_the_runtime_survives() {
    quiet_expected_panics();
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).build() }.unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(|| panic!("main G failed"))));
        let p = r.unwrap_err();
        assert_eq!(p.downcast_ref::<&str>(), Some(&"main G failed"));
        assert_eq!(rt.block_on(|| 5), 5);
    });
}
