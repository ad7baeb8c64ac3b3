//! `goro::scope`: Gs that borrow from their caller, all joined before the
//! scope returns, also when a G or the body panics.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{bounded, rt, Rng};

fn quiet_expected_panics() {
    common::quiet_panics(|msg| msg.starts_with("expected:"));
}

#[test]
fn scoped_gs_borrow_locals_and_are_all_joined() {
    bounded(30, || {
        for procs in [1, 2, 4] {
            let out = rt(procs).block_on(|| {
                let input: Vec<u64> = (1..=1000).collect();
                let mut sums = [0u64; 10];
                let counted = AtomicUsize::new(0);
                let total = goro::scope(|s| {
                    for (sum, chunk) in sums.iter_mut().zip(input.chunks(100)) {
                        let counted = &counted;
                        s.go(move || {
                            let mut rng = Rng(chunk[0]);
                            goro::sleep(Duration::from_micros(rng.below(500)));
                            *sum = chunk.iter().sum();
                            counted.fetch_add(chunk.len(), Ordering::Relaxed);
                        });
                    }
                    // A joined G's result, borrowing too.
                    s.go(|| input.len()).join().unwrap()
                });
                // Every G finished before `scope` returned.
                assert_eq!(counted.load(Ordering::Relaxed), 1000);
                (total, sums.iter().sum::<u64>())
            });
            assert_eq!(out, (1000, 500_500), "procs {procs}");
        }
    });
}

#[test]
fn an_unjoined_panicking_g_makes_the_scope_panic_after_the_others_finish() {
    quiet_expected_panics();
    bounded(30, || {
        rt(2).block_on(|| {
            let finished = AtomicUsize::new(0);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                goro::scope(|s| {
                    s.go(|| panic!("expected: child"));
                    for _ in 0..5 {
                        s.go(|| {
                            goro::sleep(Duration::from_millis(5));
                            finished.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                })
            }));
            let payload = r.expect_err("the scope panics");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"expected: child"));
            assert_eq!(finished.load(Ordering::SeqCst), 5, "the scope unwound before its Gs finished");
        });
    });
}

#[test]
fn a_joined_panic_is_the_joiners_and_not_the_scopes() {
    quiet_expected_panics();
    bounded(30, || {
        rt(2).block_on(|| {
            let v = goro::scope(|s| {
                let h = s.go(|| -> u32 { panic!("expected: joined") });
                assert!(h.join().is_err());
                7
            });
            assert_eq!(v, 7);
        });
    });
}

#[test]
fn a_panicking_body_waits_for_its_running_gs() {
    quiet_expected_panics();
    bounded(30, || {
        rt(2).block_on(|| {
            let finished = AtomicUsize::new(0);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                goro::scope(|s| {
                    for _ in 0..8 {
                        s.go(|| {
                            goro::sleep(Duration::from_millis(10));
                            finished.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    panic!("expected: body");
                })
            }));
            assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&"expected: body"));
            assert_eq!(finished.load(Ordering::SeqCst), 8);
        });
    });
}

#[test]
fn nested_scopes() {
    bounded(30, || {
        let n = rt(2).block_on(|| {
            let count = AtomicUsize::new(0);
            goro::scope(|outer| {
                for _ in 0..4 {
                    outer.go(|| {
                        goro::scope(|inner| {
                            for _ in 0..4 {
                                inner.go(|| count.fetch_add(1, Ordering::Relaxed));
                            }
                        })
                    });
                }
            });
            count.load(Ordering::Relaxed)
        });
        assert_eq!(n, 16);
    });
}

#[test]
fn many_scopes_with_random_delays() {
    bounded(60, || {
        rt(3).block_on(|| {
            for seed in 0..200u64 {
                let mut data = vec![0u64; 8];
                goro::scope(|s| {
                    for (i, d) in data.iter_mut().enumerate() {
                        s.go(move || {
                            let mut rng = Rng(seed * 31 + i as u64);
                            if rng.below(2) == 0 {
                                goro::yield_now();
                            } else {
                                common::busy(rng.below(50));
                            }
                            *d = seed + i as u64;
                        });
                    }
                });
                let want: Vec<u64> = (0..8).map(|i| seed + i).collect();
                assert_eq!(data, want, "seed {seed}");
            }
        });
    });
}

/// A scoped G's result whose destructor panics (its handle dropped): the
/// scope reports the panic instead of waiting forever for the G.
#[test]
fn a_result_that_panics_when_dropped_does_not_hang_the_scope() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("expected: drop");
        }
    }
    quiet_expected_panics();
    bounded(30, || {
        rt(2).block_on(|| {
            let r = std::panic::catch_unwind(|| {
                goro::scope(|s| {
                    drop(s.go(|| PanicOnDrop));
                })
            });
            assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&"expected: drop"));
        });
    });
}
