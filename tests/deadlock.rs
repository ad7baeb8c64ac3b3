//! Deadlock detection, in child processes: true deadlocks are reported
//! (exit status 2, Go's message, the dump), and programs that only look idle
//! (a plain thread, a timer, a socket or a system call will wake them) are
//! never killed. Each scenario runs 20 times.
//!
//! A test binary without libtest (`harness = false` in Cargo.toml): deadlock
//! detection counts the process's threads, and libtest's own threads would
//! make every deadlock unprovable. Run with no arguments it is the parent;
//! `--scenario NAME` runs one scenario on the main thread.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::chan::Chan;
use goro::sync::{Condvar, Mutex, RwLock, Semaphore, WaitGroup};

/// Runs `f` as the program's main G: a deadlock ends the process with 2.
fn run(f: impl FnOnce() + Send + 'static) {
    // SAFETY: the scenarios keep no thread-local state across switch points.
    unsafe { goro::run(f) };
}

fn after_ms(ms: u64, f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        f();
    });
}

/// True deadlocks, with the wait reason their dump must show.
const DEADLOCKS: &[(&str, &str)] = &[
    ("chan_recv_alone", "[chan receive"),
    ("two_gs_wait_on_each_other", "[chan receive"),
    ("send_on_a_full_channel", "[chan send"),
    ("mutex_locked_twice", "[sync.Mutex.Lock"),
    ("waitgroup_nobody_finishes", "[sync.WaitGroup.Wait"),
    ("condvar_nobody_signals", "[sync.Cond.Wait"),
    ("rwlock_writer_behind_a_forgotten_reader", "[sync.RWMutex.Lock"),
    ("select_nothing_ready", "[select"),
    ("nil_channel", "[chan receive (nil chan)"),
    ("semaphore_without_permits", "[semacquire"),
    ("join_a_stuck_g", "[goroutine join"),
    ("deadlock_with_trace", "[chan receive"),
    ("chan_made_before_the_runtime", "[chan receive"),
    ("dropped_timer_and_ticker", "[chan receive"),
];

/// Programs that look idle for a while and then go on.
const LIVE: &[&str] = &[
    "plain_thread_sends_after_1ms",
    "plain_thread_sends_after_5ms",
    "plain_thread_sends_after_50ms",
    "plain_thread_closes_a_clone",
    "mutex_unlocked_by_a_plain_thread",
    "waitgroup_finished_by_a_plain_thread",
    "condvar_signalled_by_a_plain_thread",
    "timer",
    "socket",
    "pipe_read_in_syscall",
];

fn scenario(name: &str) {
    match name {
        // --- deadlocks
        "chan_recv_alone" => run(|| {
            let c: Chan<u8> = Chan::new(0);
            let _keep = c.clone();
            c.recv();
        }),
        "two_gs_wait_on_each_other" => run(|| {
            let (a, b) = (Chan::<u8>::new(0), Chan::<u8>::new(0));
            let (a2, b2) = (a.clone(), b.clone());
            goro::go(move || {
                a2.recv();
                b2.send(1).unwrap();
            });
            b.recv();
            a.send(1).unwrap();
        }),
        "send_on_a_full_channel" => run(|| {
            let c = Chan::new(1);
            c.send(1).unwrap();
            c.send(2).unwrap();
        }),
        "mutex_locked_twice" => run(|| {
            let m = Mutex::new(0);
            let _g = m.lock();
            let _g2 = m.lock();
        }),
        "waitgroup_nobody_finishes" => run(|| {
            let wg = WaitGroup::new();
            wg.add(1);
            wg.wait();
        }),
        "condvar_nobody_signals" => run(|| {
            let (m, cv) = (Mutex::new(false), Condvar::new());
            let g = m.lock();
            let _g = cv.wait(g);
        }),
        "rwlock_writer_behind_a_forgotten_reader" => run(|| {
            let l = RwLock::new(0);
            std::mem::forget(l.read());
            let _w = l.write();
        }),
        "select_nothing_ready" => run(|| {
            let (a, b) = (Chan::<u8>::new(0), Chan::<u8>::new(0));
            goro::select! {
                recv(a) -> _ => {},
                recv(b) -> _ => {},
            }
        }),
        "nil_channel" => run(|| {
            goro::chan::nil::<u8>().recv();
        }),
        "semaphore_without_permits" => run(|| {
            let s = Semaphore::new(1);
            s.acquire();
            s.acquire();
        }),
        "join_a_stuck_g" => run(|| {
            let c: Chan<u8> = Chan::new(0);
            let c2 = c.clone();
            let h = goro::go(move || c2.recv());
            let _ = h.join();
            drop(c);
        }),
        "chan_made_before_the_runtime" => {
            // Made, and a clone kept, on the main thread, which then waits
            // in `run`: nobody is left to send.
            let c: Chan<u8> = Chan::new(0);
            let keep = c.clone();
            run(move || {
                c.recv();
            });
            drop(keep);
        }
        "dropped_timer_and_ticker" => run(|| {
            // Dropping them stops them: no pending timer keeps the
            // runtime looking alive for the hour, also when the one
            // stopped is not the first of the heap when it is stopped.
            let soon = goro::time::Timer::new(Duration::from_millis(1));
            drop(goro::time::Timer::new(Duration::from_secs(3600)));
            drop(goro::time::tick(Duration::from_secs(3600)));
            soon.chan().recv();
            let c: Chan<u8> = Chan::new(0);
            let _keep = c.clone();
            c.recv();
        }),
        // --- live programs
        "plain_thread_sends_after_1ms" | "plain_thread_sends_after_5ms" | "plain_thread_sends_after_50ms" => {
            let ms: u64 = name.trim_start_matches("plain_thread_sends_after_").trim_end_matches("ms").parse().unwrap();
            run(move || {
                // The clone is made in a G and moved to a plain thread that
                // has not used it yet when every G is asleep.
                let c = Chan::<u64>::new(0);
                let c2 = c.clone();
                after_ms(ms, move || c2.send(42).unwrap());
                assert_eq!(c.recv(), Some(42));
            })
        }
        "plain_thread_closes_a_clone" => run(|| {
            let c = Chan::<u64>::new(0);
            let c2 = c.clone();
            after_ms(20, move || c2.close());
            assert_eq!(c.recv(), None);
        }),
        "mutex_unlocked_by_a_plain_thread" => run(|| {
            let m = Arc::new(Mutex::new(0));
            let (locked_tx, locked) = std::sync::mpsc::channel();
            let m2 = m.clone();
            std::thread::spawn(move || {
                let mut g = m2.lock();
                locked_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(20));
                *g += 1;
            });
            goro::blocking(|| locked.recv().unwrap());
            assert_eq!(*m.lock(), 1);
        }),
        "waitgroup_finished_by_a_plain_thread" => run(|| {
            let wg = Arc::new(WaitGroup::new());
            wg.add(1);
            let w2 = wg.clone();
            after_ms(20, move || w2.done());
            wg.wait();
        }),
        "condvar_signalled_by_a_plain_thread" => run(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let p2 = pair.clone();
            after_ms(20, move || {
                *p2.0.lock() = true;
                p2.1.notify_all();
            });
            let mut g = pair.0.lock();
            while !*g {
                g = pair.1.wait(g);
            }
        }),
        "timer" => run(|| {
            let c = Chan::<u8>::new(0);
            let c2 = c.clone();
            goro::go(move || {
                goro::sleep(Duration::from_millis(30));
                c2.send(1).unwrap();
            });
            assert_eq!(c.recv(), Some(1));
        }),
        "socket" => run(|| {
            let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            after_ms(30, move || {
                use std::io::Write;
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(b"x").unwrap();
            });
            let (s, _) = l.accept().unwrap();
            let mut b = [0u8; 1];
            (&s).read_exact(&mut b).unwrap();
        }),
        "pipe_read_in_syscall" => run(|| {
            let mut fds = [0; 2];
            // SAFETY: pipe(2) with a valid array.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            let (r, w) = (fds[0], fds[1]);
            after_ms(30, move || {
                // SAFETY: writes one byte from a valid buffer to our pipe.
                unsafe { libc::write(w, b"x".as_ptr() as *const libc::c_void, 1) };
            });
            let mut b = [0u8; 1];
            // SAFETY: reads into a valid buffer from our pipe.
            let n = goro::syscall(|| unsafe { libc::read(r, b.as_mut_ptr() as *mut libc::c_void, 1) });
            assert_eq!(n, 1);
        }),
        // A traced program that ends on a deadlock still leaves its trace.
        "deadlock_with_trace" => {
            let path = std::env::var("GORO_TEST_TRACE").unwrap();
            // SAFETY: this child is single-threaded here, before any runtime.
            unsafe { std::env::set_var("GORO_TRACE", &path) };
            run(|| {
                let c: Chan<u8> = Chan::new(0);
                let _keep = c.clone();
                c.recv();
            })
        }
        // `Runtime::try_block_on` reports a deadlock as an error instead.
        "try_block_on" => {
            // SAFETY: as in `run`.
            let rt = unsafe { goro::Runtime::builder().procs(1).build() }.unwrap();
            let r = rt.try_block_on(|| {
                let never: Chan<u8> = Chan::new(0);
                let keep = never.clone();
                let r = never.recv();
                drop(keep);
                r
            });
            assert_eq!(r, Err(goro::Deadlock));
            assert!(rt.stats().deadlocked);
            println!("DEADLOCK AS ERROR");
            return;
        }
        other => panic!("no scenario {other}"),
    }
    println!("LIVE OK");
}

/// Runs `--scenario name` in a child process, with a time bound.
fn child(name: &str) -> Result<(Option<i32>, String, String), String> {
    let trace = trace_path(name);
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(["--scenario", name])
        .env("GORO_TEST_TRACE", &trace)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let (mut o, mut e) = (c.stdout.take().unwrap(), c.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = o.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = e.read_to_string(&mut s);
        s
    });
    let t = Instant::now();
    let status = loop {
        if let Some(st) = c.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = c.kill();
            let _ = c.wait();
            return Err(format!("{name}: hung for 30 s; stderr: {}", err.join().unwrap()));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Ok((status.code(), out.join().unwrap(), err.join().unwrap()))
}

/// A trace file of this process's own (children of one scenario run one
/// after another per thread: the thread id keeps them apart).
fn trace_path(name: &str) -> String {
    let me = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "");
    std::env::temp_dir().join(format!("goro-dl-{}-{name}-{me}.json", std::process::id())).display().to_string()
}

fn check(name: &str, expect: Option<&str>) -> Result<(), String> {
    let (code, out, err) = child(name)?;
    if name == "deadlock_with_trace" {
        let path = trace_path(name);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: no trace: {e}\n{err}"))?;
        let _ = std::fs::remove_file(&path);
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{name}: invalid trace: {e}"))?;
        if v["traceEvents"].as_array().is_none_or(|a| a.is_empty()) {
            return Err(format!("{name}: empty trace"));
        }
    }
    match (name, expect) {
        ("try_block_on", _) => {
            if code == Some(0) && out.contains("DEADLOCK AS ERROR") {
                return Ok(());
            }
        }
        (_, Some(reason)) => {
            if code == Some(2)
                && err.contains("fatal error: all goroutines are asleep - deadlock!")
                && err.contains("goroutine ")
                && err.contains(reason)
            {
                return Ok(());
            }
        }
        (_, None) => {
            if code == Some(0) && out.contains("LIVE OK") && !err.contains("deadlock") {
                return Ok(());
            }
        }
    }
    Err(format!("{name}: exit {code:?}\n--- stdout\n{out}--- stderr\n{err}"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--scenario") {
        scenario(&args[i + 1]);
        return;
    }
    // cargo test passes libtest's flags and filters; a filter selects scenarios.
    let filters: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    let mut cases: Vec<(&str, Option<&str>)> = DEADLOCKS.iter().map(|&(n, r)| (n, Some(r))).collect();
    cases.extend(LIVE.iter().map(|&n| (n, None)));
    cases.push(("try_block_on", None));
    cases.retain(|(n, _)| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())));
    const RUNS: usize = 20;
    let (mut passed, mut failed) = (0, 0);
    for (name, expect) in cases {
        // Two children at a time: a deadlock takes two quiet sysmon rounds.
        let results: Vec<Result<(), String>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..RUNS).map(|_| s.spawn(move || check(name, expect))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let bad: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        if bad.is_empty() {
            println!("test {name} ({RUNS} runs) ... ok");
            passed += 1;
        } else {
            println!("test {name} ... FAILED in {} of {RUNS} runs\n{}", bad.len(), bad[0]);
            failed += 1;
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
