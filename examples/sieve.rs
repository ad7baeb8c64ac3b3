//! Go's concurrent prime sieve: a generator goroutine feeds a chain of
//! filter goroutines, one per prime found, connected by unbuffered channels.
//!
//!     cargo run --release --example sieve [-- <count>]

use goro::chan::Chan;

/// Sends 2, 3, 4, ... until the channel is closed.
fn generate(ch: Chan<u64>) {
    for i in 2.. {
        if ch.send(i).is_err() {
            return;
        }
    }
}

/// Copies values from `inp` to `out`, dropping multiples of `prime`.
fn filter(inp: Chan<u64>, out: Chan<u64>, prime: u64) {
    for v in &inp {
        if v % prime != 0 && out.send(v).is_err() {
            break;
        }
    }
    // Tear the chain down towards the generator.
    if !inp.is_closed() {
        inp.close();
    }
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    // SAFETY: this program's Gs keep no thread-local state across switch points.
    let primes = unsafe {
        goro::run(move || {
            let mut ch = Chan::new(0);
            let g = ch.clone();
            goro::go(move || generate(g));
            let mut primes = Vec::with_capacity(n);
            for _ in 0..n {
                let prime = ch.recv().expect("the chain is open");
                primes.push(prime);
                let next = Chan::new(0);
                let (i, o) = (ch.clone(), next.clone());
                goro::go(move || filter(i, o, prime));
                ch = next;
            }
            ch.close();
            primes
        })
    };
    for (i, p) in primes.iter().enumerate() {
        print!("{p}{}", if (i + 1) % 10 == 0 { "\n" } else { " " });
    }
    println!();
}
