//! Observability: stats, schedtrace, goroutine dumps, deadlock detection,
//! Perfetto traces.

mod common;

use std::time::{Duration, Instant};

use common::{bounded, is_child, run_child};
use goro::chan::Chan;
use goro::Runtime;

#[test]
fn stats_count_what_the_program_did() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        rt.block_on(|| {
            let hs: Vec<_> = (0..500).map(|i| goro::go(move || i)).collect();
            for h in hs {
                h.join().unwrap();
            }
            let ch: Chan<u32> = Chan::new(0);
            let c2 = ch.clone();
            let h = goro::go(move || c2.recv());
            goro::sleep(Duration::from_millis(10));
            let st = goro::stats();
            assert!(st.waiting_goroutines >= 1, "{st:?}");
            assert_eq!(st.running_goroutines, 1, "only the main G runs");
            ch.send(1).unwrap();
            h.join().unwrap();
        });
        let st = rt.stats();
        assert_eq!(st.total.spawned, 502);
        assert!(st.total.parks > 0 && st.total.unparks > 0);
        assert!(st.sched_latency.count() > 0 && st.run_time.count() > 0, "{st:?}");
        assert!(st.sched_latency.percentile(0.99) >= st.sched_latency.percentile(0.5));
        assert_eq!(st.busy_per_p.len(), 2);
        assert!(st.busy_per_p.iter().any(|b| !b.is_zero()));
        assert!(st.busy_per_p.iter().all(|b| *b <= st.uptime));
    });
}

/// Listings race with spawns and exits that recycle Gs on two Ps (dead Gs
/// stay registered, and a spawn rewrites a dead G's name and id without
/// any lock a listing takes): every G listed shows the name and id of one
/// and the same life, never a dead G's or one half rewritten.
#[test]
fn listings_racing_with_recycled_gs_show_whole_lives() {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    bounded(60, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // Each G's id, as the G itself saw it, by the number in its name.
        let lives = Arc::new(Mutex::new(HashMap::new()));
        let (stop2, lives2) = (stop.clone(), lives.clone());
        let spawner = rt.spawn(move || {
            let mut spawned = 0u64;
            let mut rng = common::Rng(7);
            while !stop2.load(Ordering::Relaxed) {
                let hs: Vec<_> = (0..64)
                    .map(|_| {
                        let (k, spin, lives) = (spawned, rng.below(50), lives2.clone());
                        spawned += 1;
                        goro::Builder::new()
                            .name(format!("n{k}"))
                            .spawn(move || {
                                for _ in 0..spin {
                                    std::hint::spin_loop();
                                }
                                let me = goro::current();
                                assert_eq!(me.name(), Some(format!("n{k}").as_str()), "another life's name");
                                lives.lock().unwrap().insert(k, me.id());
                            })
                            .unwrap()
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
            }
            spawned
        });
        let mut listed = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            let gs = rt.goroutines();
            for g in gs.iter().filter(|g| g.id != spawner.id()) {
                let name = g.name.as_deref().unwrap_or_else(|| panic!("a G listed without its name: {g:?}"));
                let k: u64 = name.strip_prefix('n').and_then(|k| k.parse().ok()).unwrap_or_else(|| panic!("{g:?}"));
                if listed.len() < 100_000 {
                    listed.push((k, g.id));
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let spawned = spawner.join().unwrap();
        let lives = lives.lock().unwrap();
        assert_eq!(lives.len() as u64, spawned);
        for (k, id) in &listed {
            assert_eq!(lives[k], *id, "G n{k} was listed with another life's id");
        }
        assert!(spawned > 64 && !listed.is_empty(), "{spawned} spawned, {} listed", listed.len());
        // The Gs were recycled: far fewer objects than Gs.
        let objects = rt.stats().g_objects as u64;
        assert!(objects < 1000 && objects < spawned, "{objects} G objects for {spawned} Gs");
    });
}

/// A G that something still holds when it exits (here its own
/// `Unparker`, kept by another G) is not recycled: it leaves the registry
/// and its object is freed when the holder lets go.
#[test]
fn a_g_held_when_it_exits_leaves_the_registry_and_is_freed_later() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).build() }.unwrap();
        rt.block_on(|| {
            // Warm up: a dead G to recycle, so that the count below is steady.
            goro::go(|| ()).join().unwrap();
            let before = goro::stats().g_objects;
            let held = goro::go(goro::current_unparker).join().unwrap();
            // The G exited while `held` kept it: out of the registry.
            common::wait_until("the held G left the registry", || goro::stats().g_objects == before - 1);
            let listed = goro::dump().lines().filter(|l| l.starts_with("goroutine ")).count();
            assert_eq!(listed, 1, "{}", goro::dump());
            // Unparking a G that exited is harmless.
            held.unpark();
            drop(held);
            // No free G to reuse now: the next spawn makes an object.
            goro::go(|| ()).join().unwrap();
            assert_eq!(goro::stats().g_objects, before);
        });
    });
}

#[test]
fn dump_lists_a_parked_goroutine_with_its_wait_reason_and_spawn_site() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).build() }.unwrap();
        let (dump, line) = rt.block_on(|| {
            let ch: Chan<u8> = Chan::new(0);
            let c2 = ch.clone();
            let line = line!() + 1;
            let h = goro::Builder::new().name("waiter").spawn(move || c2.recv()).unwrap();
            goro::sleep(Duration::from_millis(5));
            let d = goro::dump();
            ch.send(1).unwrap();
            h.join().unwrap();
            (d, line)
        });
        let para = dump.split("\n\n").find(|p| p.contains("name: waiter")).unwrap_or_else(|| panic!("{dump}"));
        assert!(para.starts_with("goroutine "), "{para}");
        assert!(para.contains("[chan receive"), "{para}");
        assert!(para.contains(&format!("created by tests/observe.rs:{line}:")), "{para}");
    });
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn schedtrace_child() {
    if !is_child() {
        return;
    }
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
    rt.block_on(|| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(60) {
            let hs: Vec<_> = (0..50).map(|_| goro::go(goro::yield_now)).collect();
            for h in hs {
                h.join().unwrap();
            }
            goro::sleep(Duration::from_millis(1));
        }
    });
}

#[test]
fn schedtrace_prints_gos_line_every_period() {
    let out = run_child("schedtrace_child", &[("GORO_SCHEDTRACE", "10")]);
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(lines.len() >= 2, "{err}");
    // One line per period: the time stamps (ms since start) are a period
    // apart at least (a millisecond of rounding allowed).
    let stamps: Vec<u64> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(1).and_then(|t| t.strip_suffix("ms:")).unwrap().parse().unwrap())
        .collect();
    for w in stamps.windows(2) {
        assert!(w[1] >= w[0] + 9, "lines {} ms apart with a 10 ms period: {stamps:?}", w[1] - w[0]);
    }
    for l in &lines {
        // SCHED 12ms: procs=2 idleprocs=1 threads=3 spinningthreads=0 idlethreads=1 runqueue=0 [0 0]
        let (head, queues) = l.split_once(" [").expect("per-P queues");
        let f: Vec<&str> = head.split_whitespace().collect();
        assert!(f[1].ends_with("ms:"), "{l}");
        let keys: Vec<&str> = f[2..].iter().map(|kv| kv.split('=').next().unwrap()).collect();
        assert_eq!(keys, ["procs", "idleprocs", "threads", "spinningthreads", "idlethreads", "runqueue"], "{l}");
        for kv in &f[2..] {
            kv.split('=').nth(1).unwrap().parse::<u64>().unwrap_or_else(|_| panic!("{l}"));
        }
        let qs: Vec<u64> = queues.trim_end_matches(']').split_whitespace().map(|q| q.parse().unwrap()).collect();
        assert_eq!(qs.len(), 2, "{l}");
    }
    let out = run_child("schedtrace_child", &[("GORO_SCHEDTRACE", "10,detail")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().any(|l| l.starts_with("  P0: status=")), "{err}");
    assert!(err.lines().any(|l| l.starts_with("  M") && l.contains(" curg=")), "{err}");
}

// Deadlock reports (and the lack of false ones) are tested in child processes
// without libtest's threads: tests/deadlock.rs.

#[test]
fn no_false_deadlock_for_a_channel_a_plain_thread_holds_or_a_timer() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).build() }.unwrap();
        let ch: Chan<u8> = Chan::new(0);
        let c2 = ch.clone();
        let h = rt.spawn(move || c2.recv());
        // Several sysmon rounds with the only G parked on a channel this
        // thread holds.
        std::thread::sleep(Duration::from_millis(300));
        assert!(!rt.stats().deadlocked);
        ch.send(9).unwrap();
        assert_eq!(h.join().unwrap(), Some(9));
        let v = rt.try_block_on(|| {
            goro::sleep(Duration::from_millis(200));
            5
        });
        assert_eq!(v, Ok(5));
        assert!(!rt.stats().deadlocked);
    });
}

#[test]
fn no_false_deadlock_across_runtimes() {
    bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let a = unsafe { Runtime::builder().procs(1).name("dl-a").build() }.unwrap();
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let b = unsafe { Runtime::builder().procs(1).name("dl-b").build() }.unwrap();
        // A channel made in a G of `a`, handed to a G of `b` that sends late.
        let ch = a.block_on(|| Chan::<u8>::new(0));
        let c2 = ch.clone();
        let sender = b.spawn(move || {
            goro::sleep(Duration::from_millis(300));
            c2.send(3).unwrap();
        });
        let got = a.try_block_on(move || ch.recv());
        assert_eq!(got, Ok(Some(3)));
        // And a G of `a` joining a G of `b`.
        let late = b.spawn(|| {
            goro::sleep(Duration::from_millis(300));
            4
        });
        assert_eq!(a.try_block_on(move || late.join().unwrap()), Ok(4));
        sender.join().unwrap();
        assert!(!a.stats().deadlocked && !b.stats().deadlocked);
    });
}

#[test]
fn trace_file_is_valid_perfetto_json() {
    bounded(30, || {
        let path = std::env::temp_dir().join(format!("goro-trace-{}.json", std::process::id()));
        {
            // SAFETY: the test's Gs keep no thread-local state across switch points.
            let rt = unsafe { Runtime::builder().procs(2).trace(&path).build() }.unwrap();
            rt.block_on(|| {
                let ch = Chan::new(0);
                let c2 = ch.clone();
                let h = goro::go(move || (0..20).map(|_| c2.recv().unwrap()).sum::<u32>());
                for i in 0..20 {
                    ch.send(i).unwrap();
                }
                assert_eq!(h.join().unwrap(), 190);
                goro::syscall(|| std::thread::sleep(Duration::from_millis(1)));
                let hs: Vec<_> = (0..100).map(|_| goro::go(goro::yield_now)).collect();
                for h in hs {
                    h.join().unwrap();
                }
                // A name that needs escaping in JSON.
                let odd = goro::Builder::new().name("line\nbreak \"quoted\" back\\slash\ttab").spawn(|| 1).unwrap();
                odd.join().unwrap();
            });
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let evs = v["traceEvents"].as_array().unwrap();
        let ph = |p: &'static str| evs.iter().filter(move |e| e["ph"] == p);
        let names: Vec<String> = ph("M")
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap().to_string())
            .collect();
        assert!(names.contains(&"M0".to_string()) && names.contains(&"P0".to_string()), "{names:?}");
        let runs: Vec<_> = ph("X").collect();
        assert!(runs.len() >= 2 * 120, "a slice per G run on the M and the P tracks: {}", runs.len());
        assert!(runs.iter().all(|e| e["dur"].as_f64().unwrap() > 0.0 && e["ts"].as_f64().is_some()));
        let instants: Vec<&str> = ph("i").map(|e| e["name"].as_str().unwrap()).collect();
        assert!(instants.contains(&"park"), "{instants:?}");
        assert!(instants.contains(&"syscall enter") && instants.contains(&"syscall exit"), "{instants:?}");
        let starts: std::collections::HashSet<u64> = ph("s").map(|e| e["id"].as_u64().unwrap()).collect();
        let ends: Vec<u64> = ph("f").map(|e| e["id"].as_u64().unwrap()).collect();
        assert!(!ends.is_empty(), "flow arrows from unpark to run");
        assert!(ends.iter().all(|id| starts.contains(id)), "every flow end has its start");
        assert!(
            runs.iter().any(|e| e["name"].as_str().unwrap().ends_with("line\nbreak \"quoted\" back\\slash\ttab")),
            "the odd name survives the round trip"
        );
    });
}

/// A small program for the child-process tests below: a few Gs that talk
/// over a channel, with one parked in a named G at the end when asked.
fn small_program(park_forever: bool) {
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
    rt.block_on(move || {
        let ch = Chan::new(0);
        let c2 = ch.clone();
        let h = goro::go(move || (0..10).map(|_| c2.recv().unwrap()).sum::<u32>());
        for i in 0..10 {
            ch.send(i).unwrap();
        }
        assert_eq!(h.join().unwrap(), 45);
        if park_forever {
            let never = Chan::<()>::new(0);
            let n2 = never.clone();
            goro::Builder::new().name("sleeper-in-dump").spawn(move || n2.recv()).unwrap();
            common::wait_until("the sleeper parked", || common::parked_goroutines() >= 1);
            println!("READY");
            // Keep a handle so this is no deadlock; wait for the signal
            // (this process ends there, unless the application's own
            // SIGQUIT handler ran: then it returns).
            while !APP_QUIT_SEEN.load(std::sync::atomic::Ordering::SeqCst) {
                goro::sleep(Duration::from_millis(10));
                let _ = &never;
            }
            // The dump, if asked for, comes from sysmon's next round (at
            // most 10 ms away): give it twenty times that before exiting.
            goro::sleep(Duration::from_millis(200));
        }
    });
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn goro_trace_child() {
    if !is_child() {
        return;
    }
    match std::env::var("GORO_TEST_CASE").as_deref() {
        // A runtime that is never dropped: the trace is finished at exit.
        Ok("forget") => {
            // SAFETY: the test's Gs keep no thread-local state across switch points.
            let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
            assert_eq!(rt.block_on(|| goro::go(|| 3).join().unwrap()), 3);
            std::mem::forget(rt);
        }
        // 400 ms of yields: a recorder keeps only the end.
        Ok("busy") => {
            // SAFETY: as above.
            let rt = unsafe { Runtime::builder().procs(2).build() }.unwrap();
            rt.block_on(|| {
                let t = Instant::now();
                let hs: Vec<_> = (0..4)
                    .map(|_| {
                        goro::go(move || {
                            while t.elapsed() < Duration::from_millis(400) {
                                goro::yield_now();
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
            });
        }
        _ => small_program(false),
    }
}

/// The events of a trace file, which must be valid JSON.
fn trace_events(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("no trace at {path:?}: {e}"));
    let _ = std::fs::remove_file(path);
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    v["traceEvents"].as_array().expect("traceEvents").clone()
}

#[test]
fn a_runtime_never_dropped_still_finishes_its_trace_at_exit() {
    let path = std::env::temp_dir().join(format!("goro-forget-trace-{}.json", std::process::id()));
    let out = run_child("goro_trace_child", &[("GORO_TRACE", path.to_str().unwrap()), ("GORO_TEST_CASE", "forget")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(trace_events(&path).iter().any(|e| e["ph"] == "M"), "track names written at exit");
}

#[test]
fn a_flight_recorder_keeps_only_the_end_of_the_run() {
    let path = std::env::temp_dir().join(format!("goro-last-trace-{}.json", std::process::id()));
    let out = run_child(
        "goro_trace_child",
        &[("GORO_TRACE", path.to_str().unwrap()), ("GORO_TRACE_LAST", "0.05"), ("GORO_TEST_CASE", "busy")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events = trace_events(&path);
    let runs: Vec<f64> = events.iter().filter(|e| e["ph"] == "X").map(|e| e["ts"].as_f64().unwrap()).collect();
    assert!(!runs.is_empty());
    let first = runs.iter().cloned().fold(f64::MAX, f64::min);
    // The run lasts 400 ms; the recorder keeps chunks of the last 50 ms
    // (a chunk may start earlier than its last event, and a P that did not
    // run for a while keeps its last chunk: 150 ms into the run was seen on
    // a loaded machine). Events from the first quarter mean nothing was
    // dropped.
    assert!(first > 100_000.0, "the recorder kept events from {first} µs into a 400 ms run");
}

#[test]
fn goro_trace_env_writes_a_trace_when_the_runtime_drops() {
    let path = std::env::temp_dir().join(format!("goro-env-trace-{}.json", std::process::id()));
    let out = run_child("goro_trace_child", &[("GORO_TRACE", path.to_str().unwrap())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("trace written to"), "{err}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no trace at {path:?}: {e}\n{err}"));
    let _ = std::fs::remove_file(&path);
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let events = v["traceEvents"].as_array().expect("traceEvents");
    assert!(events.iter().any(|e| e["ph"] == "X"), "no G runs in the trace");
}

static APP_QUIT_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn app_sigquit(_: libc::c_int) {
    APP_QUIT_SEEN.store(true, std::sync::atomic::Ordering::SeqCst);
    let msg = b"APP QUIT HANDLER\n";
    // SAFETY: write(2) is async-signal-safe.
    unsafe { libc::write(2, msg.as_ptr() as *const libc::c_void, msg.len()) };
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn sigquit_child() {
    if !is_child() {
        return;
    }
    if std::env::var_os("GORO_TEST_APP_QUIT").is_some() {
        // SAFETY: installs a handler that stores to an atomic and writes.
        unsafe { libc::signal(libc::SIGQUIT, app_sigquit as *const () as libc::sighandler_t) };
    }
    small_program(true);
}

/// Runs `sigquit_child` with `env`, sends it SIGQUIT once it is ready, and
/// returns how it ended and its stderr.
fn quit_child(env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    // Like `run_child`, but the parent signals the child once it is ready.
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "sigquit_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("GORO_TEST_CHILD", "1")
        .env_remove("GORO_SIGQUIT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the child ended before it was ready");
    }
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut e = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut e).unwrap();
        e
    });
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGQUIT) }, 0);
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the child did not exit after SIGQUIT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, err.join().unwrap())
}

#[test]
fn sigquit_dumps_every_goroutine_and_exits_2_when_asked() {
    use std::os::unix::process::ExitStatusExt;
    // Asked for (as GOTRACEBACK's family is in Go): the dump, then exit 2.
    let (status, err) = quit_child(&[("GORO_SIGQUIT", "1")]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("SIGQUIT"), "{err}");
    assert!(err.contains("name: sleeper-in-dump"), "the parked G is in the dump: {err}");
    assert!(err.contains("[chan receive"), "{err}");
    // Not asked for: a library leaves SIGQUIT alone (the default action).
    let (status, err) = quit_child(&[]);
    assert_eq!(status.signal(), Some(libc::SIGQUIT), "{err}");
    assert!(!err.contains("sleeper-in-dump"), "{err}");
    // The application's own handler still runs; with the dump asked for,
    // the dump comes too and the process goes on.
    let (status, err) = quit_child(&[("GORO_TEST_APP_QUIT", "1")]);
    assert!(status.success(), "{err}");
    assert!(err.contains("APP QUIT HANDLER") && !err.contains("sleeper-in-dump"), "{err}");
    let (status, err) = quit_child(&[("GORO_TEST_APP_QUIT", "1"), ("GORO_SIGQUIT", "1")]);
    assert!(status.success(), "{err}");
    assert!(err.contains("APP QUIT HANDLER") && err.contains("sleeper-in-dump"), "{err}");
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn builder_schedtrace_child() {
    if !is_child() {
        return;
    }
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    let rt = unsafe { Runtime::builder().procs(1).schedtrace(Duration::from_millis(5), true).build() }.unwrap();
    rt.block_on(|| goro::sleep(Duration::from_millis(40)));
}

#[test]
fn builder_schedtrace_prints_without_the_environment() {
    let out = run_child("builder_schedtrace_child", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.lines().filter(|l| l.starts_with("SCHED ")).count() >= 2, "{err}");
    assert!(err.lines().any(|l| l.starts_with("  P0: status=")), "detail lines: {err}");
}

/// A poller that counts its calls and sleeps on a condition variable; the
/// test keeps a second handle to read the counts.
#[derive(Clone, Default)]
struct CountingPoller(std::sync::Arc<Counts>);

#[derive(Default)]
struct Counts {
    polls: std::sync::atomic::AtomicUsize,
    wakes: std::sync::atomic::AtomicUsize,
    woken: std::sync::Mutex<bool>,
    cv: std::sync::Condvar,
}

impl goro::Poller for CountingPoller {
    fn poll(&self, timeout: Option<Duration>) -> usize {
        use std::sync::atomic::Ordering::Relaxed;
        let me = &self.0;
        me.polls.fetch_add(1, Relaxed);
        let mut w = me.woken.lock().unwrap();
        if !*w {
            w = match timeout {
                Some(t) => me.cv.wait_timeout(w, t).unwrap().0,
                None => me.cv.wait(w).unwrap(),
            };
        }
        *w = false;
        0
    }

    fn wake(&self) {
        self.0.wakes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.0.woken.lock().unwrap() = true;
        self.0.cv.notify_one();
    }
}

#[test]
fn an_installed_poller_is_where_idle_ms_wait() {
    use std::sync::atomic::Ordering::Relaxed;
    bounded(30, || {
        let p = CountingPoller::default();
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(2).poller(Box::new(p.clone())).build() }.unwrap();
        for _ in 0..20 {
            // Every M idles between these; timers wake the one in the poller.
            let v = rt.block_on(|| {
                goro::sleep(Duration::from_millis(2));
                goro::go(|| 5).join().unwrap()
            });
            assert_eq!(v, 5);
        }
        assert!(p.0.polls.load(Relaxed) > 0, "no M ever waited in the installed poller");
        drop(rt);
        assert!(p.0.wakes.load(Relaxed) > 0, "shutdown did not wake the poller");
    });
}

#[test]
#[ignore = "child process: its parent test runs it"]
fn bad_env_child() {
    if !is_child() {
        return;
    }
    // Two runtimes: each variable is reported once, not per runtime.
    for _ in 0..2 {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::new() }.unwrap();
        assert_eq!(rt.block_on(|| 1), 1);
    }
}

#[test]
fn invalid_goro_environment_values_are_reported_once() {
    let out = run_child(
        "bad_env_child",
        &[("GORO_PROCS", "many"), ("GORO_SCHEDTRACE", "abc"), ("GORO_SIGQUIT", "maybe"), ("GORO_TRACEBACK", "loud")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for (var, value) in
        [("GORO_PROCS", "many"), ("GORO_SCHEDTRACE", "abc"), ("GORO_SIGQUIT", "maybe"), ("GORO_TRACEBACK", "loud")]
    {
        let line = format!("goro: ignoring {var}=\"{value}\": expected");
        assert_eq!(err.matches(&line).count(), 1, "one warning for {var}: {err}");
    }
    assert!(!err.contains("SCHED "), "an invalid GORO_SCHEDTRACE traced anyway: {err}");
}
