//! Fan-out / fan-in with select and a timeout, in the style of Go's
//! "pipelines and cancellation" post: a source, a pool of workers, a merger
//! that collects results with a deadline, and a `done` channel that cancels
//! everything when the deadline passes.
//!
//!     cargo run --release --example pipeline [-- <jobs> <timeout-ms>]

use std::time::{Duration, Instant};

use goro::chan::Chan;
use goro::select;

fn source(jobs: u64, out: Chan<u64>, done: Chan<()>) {
    for n in 1..=jobs {
        select! {
            send(out, n) -> r => if r.is_err() { return },
            recv(done) -> _ => return,
        }
    }
    out.close();
}

/// Squares its inputs slowly (a stand-in for real work).
fn worker(id: usize, inp: Chan<u64>, out: Chan<(usize, u64)>, done: Chan<()>) {
    for n in &inp {
        goro::sleep(Duration::from_micros(200 + (n % 7) * 100));
        select! {
            send(out, (id, n * n)) -> r => if r.is_err() { return },
            recv(done) -> _ => return,
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let jobs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let timeout = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(2000));
    // SAFETY: this program's Gs keep no thread-local state across switch points.
    let (sum, got, per_worker, elapsed, timed_out) = unsafe {
        goro::run(move || {
            let t = Instant::now();
            let done: Chan<()> = Chan::new(0);
            let numbers = Chan::new(16);
            let results = Chan::new(16);
            {
                let (n, d) = (numbers.clone(), done.clone());
                goro::go(move || source(jobs, n, d));
            }
            const WORKERS: usize = 8;
            let ws: Vec<_> = (0..WORKERS)
                .map(|id| {
                    let (i, o, d) = (numbers.clone(), results.clone(), done.clone());
                    goro::go(move || worker(id, i, o, d))
                })
                .collect();
            let deadline = goro::time::after(timeout);
            let (mut sum, mut got, mut per_worker, mut timed_out) = (0u64, 0u64, [0u64; WORKERS], false);
            while got < jobs {
                select! {
                    recv(results) -> r => {
                        let (id, v) = r.expect("results stay open while we collect");
                        sum += v;
                        got += 1;
                        per_worker[id] += 1;
                    }
                    recv(deadline) -> _ => {
                        timed_out = true;
                        break;
                    }
                }
            }
            // Cancel whatever is still running, then wait for the workers.
            done.close();
            for w in ws {
                w.join().unwrap();
            }
            (sum, got, per_worker, t.elapsed(), timed_out)
        })
    };
    println!(
        "{got} of {jobs} results in {:.1} ms{}",
        elapsed.as_secs_f64() * 1e3,
        if timed_out { " (timed out)" } else { "" }
    );
    println!("sum of squares: {sum}");
    println!("results per worker: {per_worker:?}");
}
