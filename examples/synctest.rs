//! Testing time-dependent code with `goro::synctest`: a rate limiter and a
//! retry loop with exponential backoff, tested the way a user would, in
//! bubbles whose clock jumps instead of waiting.
//!
//! `cargo run --example synctest` runs the checks and prints what the
//! bubbles saw; `cargo test --example synctest` runs them as tests. Each
//! check covers minutes of the code's time and takes microseconds of
//! yours, and its times are exact: no tolerance, no flakes.

use std::time::{Duration, Instant};

use goro::sync::Mutex;
use goro::{synctest, time};

/// A token bucket: `burst` requests at once, then one every `every`.
/// Reads the time with `goro::time::now()`, so a bubble can drive it.
pub struct RateLimiter {
    every: Duration,
    burst: u32,
    state: Mutex<(f64, Instant)>, // tokens, last refill
}

impl RateLimiter {
    pub fn new(every: Duration, burst: u32) -> RateLimiter {
        RateLimiter { every, burst, state: Mutex::new((f64::from(burst), time::now())) }
    }

    /// Waits (parking the G) until a request may go.
    pub fn acquire(&self) {
        loop {
            let wait = {
                let mut st = self.state.lock();
                let now = time::now();
                let refill = now.duration_since(st.1).as_secs_f64() / self.every.as_secs_f64();
                st.0 = (st.0 + refill).min(f64::from(self.burst));
                st.1 = now;
                if st.0 >= 1.0 {
                    st.0 -= 1.0;
                    return;
                }
                self.every.mul_f64(1.0 - st.0)
            };
            goro::sleep(wait);
        }
    }
}

/// Calls `op` until it succeeds or `attempts` calls failed, sleeping
/// `first`, then twice as long, and so on, between calls (capped at `cap`).
pub fn retry_with_backoff<T, E>(
    attempts: u32,
    first: Duration,
    cap: Duration,
    mut op: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut delay = first;
    let mut n = 1;
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if n == attempts => return Err(e),
            Err(_) => {
                goro::sleep(delay);
                delay = (delay * 2).min(cap);
                n += 1;
            }
        }
    }
}

/// Four Gs share a limiter of 5 at once then 10 per second: the first 5
/// requests go at 0 ms, then one every 100 ms, whoever asks.
fn check_rate_limiter() -> Vec<Duration> {
    synctest::run(|| {
        let start = time::now();
        let limiter = std::sync::Arc::new(RateLimiter::new(Duration::from_millis(100), 5));
        let times = std::sync::Arc::new(Mutex::new(Vec::new()));
        let gs: Vec<_> = (0..4)
            .map(|_| {
                let (limiter, times) = (limiter.clone(), times.clone());
                goro::go(move || {
                    for _ in 0..5 {
                        limiter.acquire();
                        times.lock().push(time::now() - start);
                    }
                })
            })
            .collect();
        for g in gs {
            g.join().unwrap();
        }
        let mut t = times.lock().clone();
        t.sort();
        let want: Vec<Duration> =
            (0..20u64).map(|i| Duration::from_millis(if i < 5 { 0 } else { (i - 4) * 100 })).collect();
        assert_eq!(t, want, "the limiter let requests through at the wrong times");
        t
    })
}

/// An operation that fails four times: it is retried after 100, 200, 400
/// and 800 ms; with a cap of 300 ms, after 100, 200, 300 and 300 ms; and
/// with three attempts it gives up at 300 ms.
fn check_backoff() -> Vec<Duration> {
    synctest::run(|| {
        let attempt_times = |attempts: u32, cap_ms: u64| {
            let start = time::now();
            let mut calls = Vec::new();
            let r = retry_with_backoff(attempts, Duration::from_millis(100), Duration::from_millis(cap_ms), || {
                calls.push(time::now() - start);
                if calls.len() < 5 {
                    Err("unavailable")
                } else {
                    Ok(calls.len())
                }
            });
            (r, calls)
        };
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
        let (r, calls) = attempt_times(10, 10_000);
        assert_eq!(r, Ok(5));
        assert_eq!(calls, ms(&[0, 100, 300, 700, 1500]));
        let (_, capped) = attempt_times(10, 300);
        assert_eq!(capped, ms(&[0, 100, 300, 600, 900]));
        let (r, gave_up) = attempt_times(3, 10_000);
        assert_eq!(r, Err("unavailable"));
        assert_eq!(gave_up, ms(&[0, 100, 300]));
        calls
    })
}

fn main() {
    // SAFETY: the example's Gs keep no thread-local state across switch points.
    unsafe {
        goro::run(|| {
            let real = Instant::now();
            let t = check_rate_limiter();
            println!(
                "rate limiter: 20 requests from 4 Gs at {:?} ms",
                t.iter().map(Duration::as_millis).collect::<Vec<_>>()
            );
            let b = check_backoff();
            println!(
                "backoff: calls at {:?} ms, success on the fifth",
                b.iter().map(Duration::as_millis).collect::<Vec<_>>()
            );
            println!("both checks passed in {:?} of real time", real.elapsed());
        })
    }
}

#[cfg(test)]
mod tests {
    fn in_runtime(f: fn() -> Vec<std::time::Duration>) {
        // SAFETY: the tests' Gs keep no thread-local state across switch points.
        let rt = unsafe { goro::Runtime::builder().build() }.unwrap();
        rt.block_on(move || drop(f()));
    }

    #[test]
    fn rate_limiter_paces_requests_exactly() {
        in_runtime(super::check_rate_limiter);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_gives_up() {
        in_runtime(super::check_backoff);
    }
}
