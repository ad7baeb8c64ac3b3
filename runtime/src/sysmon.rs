//! sysmon: the runtime's monitor thread. It holds no P and runs no Gs.
//!
//! Each round it looks at every running P: if the P has been running the
//! same G (same `schedtick`) for longer than the time slice, it sets the P's
//! `preempt` flag, and that G yields at its next preemption point (Go's
//! `retake` → `preemptone`, cooperative only). It sleeps 20 µs between
//! rounds, doubling after 50 rounds with nothing to do, up to 10 ms. About
//! once a second it also trims the shared stack pool (see `stack.rs`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::sched::Sched;

const MIN_DELAY: Duration = Duration::from_micros(20);
const MAX_DELAY: Duration = Duration::from_millis(10);
const IDLE_ROUNDS: u32 = 50;
/// How often pooled stacks that went unused give their memory back.
const TRIM_PERIOD: Duration = Duration::from_secs(1);

pub(crate) struct Sysmon {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sysmon {
    pub fn start(sched: Arc<Sched>, name: &str) -> std::io::Result<Sysmon> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let thread = thread::Builder::new()
            .name(format!("{name}-sysmon"))
            .spawn(move || run(sched, s))?;
        Ok(Sysmon {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        *self.stop.0.lock().unwrap() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct PSeen {
    tick: u32,
    since: Instant,
}

fn run(sched: Arc<Sched>, stop: Arc<(Mutex<bool>, Condvar)>) {
    let mut seen: Vec<PSeen> = (0..sched.procs)
        .map(|_| PSeen {
            tick: 0,
            since: Instant::now(),
        })
        .collect();
    let mut delay = MIN_DELAY;
    let mut idle = 0u32;
    let mut last_trim = Instant::now();
    loop {
        {
            let stopped = stop.0.lock().unwrap();
            let (stopped, _) = stop.1.wait_timeout(stopped, delay).unwrap();
            if *stopped {
                return;
            }
        }
        let now = Instant::now();
        sched.tick_coarse_clock();
        let acted = retake(&sched, &mut seen, now);
        if now.duration_since(last_trim) >= TRIM_PERIOD {
            last_trim = now;
            sched.trim_stacks();
        }
        if acted {
            idle = 0;
        } else {
            idle = idle.saturating_add(1);
        }
        delay = if idle < IDLE_ROUNDS {
            MIN_DELAY
        } else {
            (delay * 2).min(MAX_DELAY)
        };
    }
}

/// Flags Ps whose G has run past the time slice. Returns whether it did
/// anything.
fn retake(sched: &Sched, seen: &mut [PSeen], now: Instant) -> bool {
    let slice = sched.policy.time_slice;
    let mut acted = false;
    for (p, s) in sched.ps.iter().zip(seen.iter_mut()) {
        if !p.is_running() {
            s.since = now;
            continue;
        }
        let t = p.schedtick.load(Ordering::Relaxed);
        if t != s.tick {
            s.tick = t;
            s.since = now;
        } else if now.duration_since(s.since) >= slice && !p.preempt.load(Ordering::Relaxed) {
            p.preempt.store(true, Ordering::Relaxed);
            s.since = now;
            acted = true;
        }
    }
    acted
}
