//! The skynet benchmark (https://github.com/atemerev/skynet): a tree of a
//! million goroutines, each leaf sending its number to its parent through a
//! channel, each parent summing its ten children.
//!
//!     cargo run --release --example skynet [-- <runs>]

use std::time::Instant;

use goro::chan::Chan;

fn skynet(c: Chan<u64>, num: u64, size: u64, div: u64) {
    if size == 1 {
        c.send(num).unwrap();
        return;
    }
    let rc = Chan::new(div as usize);
    for i in 0..div {
        let sub = num + i * (size / div);
        let rc = rc.clone();
        goro::go(move || skynet(rc, sub, size / div, div));
    }
    let sum: u64 = (0..div).map(|_| rc.recv().unwrap()).sum();
    c.send(sum).unwrap();
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    // SAFETY: this program's Gs keep no thread-local state across switch points.
    let rt = unsafe { goro::Runtime::new() }.expect("runtime");
    println!("skynet: 1,000,000 goroutines on {} Ps", rt.procs());
    for run in 1..=runs {
        let t = Instant::now();
        let sum = rt.block_on(|| {
            let c = Chan::new(1);
            let c2 = c.clone();
            goro::go(move || skynet(c2, 0, 1_000_000, 10));
            c.recv().unwrap()
        });
        assert_eq!(sum, 499_999_500_000);
        println!("run {run}: result {sum} in {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    let st = rt.stats();
    println!(
        "spawned {} Gs, {} steals ({} Gs stolen), {} parks, {} threads",
        st.total.spawned, st.total.steals, st.total.stolen, st.total.parks, st.threads
    );
}
