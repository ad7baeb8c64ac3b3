//! sysmon under housekeeping: after a burst of parked Gs exits, sysmon gives
//! their stacks back to the kernel (an `madvise` or `munmap` each). With
//! procs = 1, a G sleeping 1 ms in a loop beside a G in a system call (which
//! sysmon must retake the P from) must not wait behind that trim.
//!
//!     cargo bench --features internals --bench trim            # 500,000 Gs
//!     GORO_TRIM_GS=1000000 cargo bench --features internals --bench trim
//!
//! Prints `trim_lateness_max` and `trim_lateness_p99` (ms) over the
//! 3 s after the burst, and how many stacks were trimmed meanwhile.

use std::time::{Duration, Instant};

use goro::chan::Chan;
use goro::Runtime;

fn main() {
    let n: usize = std::env::var("GORO_TRIM_GS").ok().and_then(|v| v.parse().ok()).unwrap_or(500_000);
    // SAFETY: the probe's Gs keep no thread-local state across switch points.
    let rt = unsafe { Runtime::builder().procs(1).build() }.unwrap();
    let (lateness, stacks_before, stacks_after) = rt.block_on(move || {
        // The burst: n Gs parked at once, then all released.
        let gate = Chan::<()>::new(0);
        let parked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let (g, p) = (gate.clone(), parked.clone());
                goro::go(move || {
                    p.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    g.recv();
                })
            })
            .collect();
        // Every one of them has its own stack, parked.
        while parked.load(std::sync::atomic::Ordering::Relaxed) < n {
            goro::sleep(Duration::from_millis(1));
        }
        gate.close();
        for h in hs {
            h.join().unwrap();
        }
        let before = goro::internals::mapped_stacks();
        // A G in a blocking call the whole time: sysmon must keep retaking.
        let _sys = goro::go(|| goro::syscall(|| std::thread::sleep(Duration::from_secs(4))));
        let mut late = Vec::new();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            let s = Instant::now();
            goro::sleep(Duration::from_millis(1));
            late.push(s.elapsed().saturating_sub(Duration::from_millis(1)));
        }
        (late, before, goro::internals::mapped_stacks())
    });
    let mut late = lateness;
    late.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("trim_lateness_max {:.2} ms", ms(*late.last().unwrap()));
    println!("trim_lateness_p99 {:.2} ms", ms(late[late.len() * 99 / 100]));
    println!("trim_stacks_unmapped {} stacks", stacks_before.saturating_sub(stacks_after));
}
