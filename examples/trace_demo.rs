//! Writes a Perfetto trace of a small mixed workload (spawns, channels, a
//! select with a timeout, a blocking syscall, sleeps) and says how to open it.
//!
//!     cargo run --release --example trace_demo [-- path.json]

use std::time::Duration;

use goro::chan::Chan;
use goro::Runtime;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "goro-trace.json".into());
    // SAFETY: this program's Gs keep no thread-local state across switch points.
    let rt = unsafe { Runtime::builder().procs(2).trace(&path).build() }.expect("runtime");
    rt.block_on(|| {
        let jobs = Chan::new(8);
        let results = Chan::new(8);
        for w in 0..4u64 {
            let (jobs, results) = (jobs.clone(), results.clone());
            goro::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || {
                    for n in &jobs {
                        let v: u64 = (0..n * 1000).fold(0u64, |a, x| a.wrapping_add(x * x));
                        if n % 10 == 0 {
                            goro::syscall(|| std::thread::sleep(Duration::from_millis(2)));
                        }
                        results.send(v).unwrap();
                    }
                })
                .unwrap();
        }
        let feeder = {
            let jobs = jobs.clone();
            goro::go(move || {
                for n in 0..100u64 {
                    jobs.send(n).unwrap();
                }
                jobs.close();
            })
        };
        let mut got = 0;
        while got < 100 {
            goro::select! {
                recv(results) -> _ => got += 1,
                recv(goro::time::after(Duration::from_millis(50))) -> _ => println!("waiting..."),
            }
        }
        feeder.join().unwrap();
        goro::sleep(Duration::from_millis(3));
    });
    let st = rt.stats();
    println!(
        "ran {} goroutines, {} G runs, {} steals, {} handoffs",
        st.total.spawned, st.total.scheduled, st.total.steals, st.handoffs
    );
    drop(rt); // writes the trace
    println!("trace: {path}\nopen https://ui.perfetto.dev and drag the file in (tracks: one per M and per P)");
}
