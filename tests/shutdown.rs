//! Dropping a runtime shuts it down cleanly: threads joined, parked and
//! queued Gs dropped (their destructors run), stacks unmapped. One test per
//! binary: it counts process-wide stacks.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::bounded;
use goro::Runtime;

struct CountDrop(Arc<AtomicUsize>);
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_a_runtime_drops_parked_goroutines_and_frees_everything() {
    bounded(60, || {
        let before = goro_runtime::internals::mapped_stacks();
        let gs_before = goro_runtime::internals::live_gs();
        let dropped = Arc::new(AtomicUsize::new(0));
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        let mut handles = Vec::new();
        for i in 0..1000 {
            let guard = CountDrop(dropped.clone());
            handles.push(rt.spawn(move || {
                let _g = guard;
                if i % 3 == 0 {
                    // Parks forever: nobody will unpark it.
                    loop {
                        goro::park(goro::WaitReason::Park);
                    }
                } else if i % 3 == 1 {
                    goro::sleep(Duration::from_secs(3600));
                }
                i
            }));
        }
        // Gs that lock their thread and unlock it (nested too), or exit
        // locked (their M exits with them): each wiring holds a reference
        // to the G that unlocking or exiting must give back.
        let mut locked = Vec::new();
        for depth in 0..3 {
            for exit_locked in [false, true] {
                locked.push(rt.spawn(move || {
                    for _ in 0..depth {
                        goro::lock_os_thread();
                    }
                    goro::yield_now();
                    if !exit_locked {
                        for _ in 0..depth {
                            goro::unlock_os_thread();
                        }
                    }
                    7
                }));
            }
        }
        // Channel waits that time out, alone and in a select: the wait's
        // reference to its G goes when the wait does.
        for _ in 0..4 {
            locked.push(rt.spawn(|| {
                let c: goro::chan::Chan<u8> = goro::chan::Chan::new(0);
                assert!(c.recv_timeout(Duration::from_micros(50)).is_err());
                goro::select! {
                    recv(c) -> _ => unreachable!(),
                    default(Duration::from_micros(50)) => {},
                }
                7
            }));
        }
        for h in locked {
            assert_eq!(h.join().unwrap(), 7);
        }
        // Let the parkers and sleepers get parked.
        while rt.goroutines().iter().filter(|g| g.status == goro::GStatus::Waiting).count() < 666 {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(goro_runtime::internals::mapped_stacks() > before);
        drop(rt);
        assert_eq!(dropped.load(Ordering::SeqCst), 1000, "every G's locals were dropped");
        let mut finished = 0;
        for h in handles {
            match h.join() {
                Ok(_) => finished += 1,
                Err(p) => assert!(p.downcast_ref::<&str>().unwrap().contains("dropped")),
            }
        }
        assert_eq!(finished, 333);
        assert_eq!(goro_runtime::internals::mapped_stacks(), before, "stacks leaked");
        assert_eq!(goro_runtime::internals::live_gs(), gs_before, "Gs leaked");
    });
}
