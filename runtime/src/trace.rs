//! Execution traces in Chrome/Perfetto trace-event JSON (`GORO_TRACE=<file>`
//! or `RuntimeBuilder::trace(path)`); open the file in ui.perfetto.dev.
//!
//! One track per M (`M3`) and one per P (`P0`); a slice for each G run on
//! both; instant events for park, steal, handoff, retake, syscall enter and
//! exit; a flow arrow from each unpark to the run it caused.
//!
//! Each M buffers its events (no lock on the hot path) and hands them to the
//! shared sink when the buffer is full and when it exits; the file is
//! written when the runtime is dropped. With tracing off, every hook is one
//! branch on an `Option`.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const FLUSH_AT: usize = 4096;
/// Track ids: Ms are 1..; Ps are P_TRACK + p.
const P_TRACK: usize = 100_000;

pub(crate) struct Tracer {
    epoch: Instant,
    path: PathBuf,
    sink: Mutex<Vec<String>>,
    next_flow: AtomicU64,
    procs: usize,
}

/// Per-M event buffer.
#[derive(Default)]
pub(crate) struct TraceBuf {
    events: RefCell<Vec<String>>,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Tracer {
    pub fn new(path: PathBuf, procs: usize) -> Tracer {
        Tracer { epoch: Instant::now(), path, sink: Mutex::new(Vec::new()), next_flow: AtomicU64::new(1), procs }
    }

    pub fn now_us(&self) -> f64 {
        self.epoch.elapsed().as_nanos() as f64 / 1000.0
    }

    fn push(&self, buf: Option<&TraceBuf>, ev: String) {
        match buf {
            Some(b) => {
                let mut v = b.events.borrow_mut();
                v.push(ev);
                if v.len() >= FLUSH_AT {
                    self.sink.lock().unwrap().append(&mut v);
                }
            }
            None => self.sink.lock().unwrap().push(ev),
        }
    }

    pub fn flush(&self, buf: &TraceBuf) {
        let mut v = buf.events.borrow_mut();
        self.sink.lock().unwrap().append(&mut v);
    }

    /// A G ran on M `m` and P `p` from `start` (µs) to now.
    pub fn run(&self, buf: &TraceBuf, m: usize, p: usize, g: u64, name: Option<&str>, start: f64) {
        let dur = (self.now_us() - start).max(0.001);
        let label = match name {
            Some(n) => format!("G{g} {}", esc(n)),
            None => format!("G{g}"),
        };
        for tid in [m + 1, P_TRACK + p] {
            self.push(
                Some(buf),
                format!(
                    r#"{{"ph":"X","pid":1,"tid":{tid},"ts":{start:.3},"dur":{dur:.3},"name":"{label}","cat":"run","args":{{"g":{g},"m":{m},"p":{p}}}}}"#
                ),
            );
        }
    }

    /// An instant event on M `m`'s track (or a runtime-wide one if `m` is
    /// `None`).
    pub fn instant(&self, buf: Option<&TraceBuf>, m: Option<usize>, name: &str, args: &str) {
        let ts = self.now_us();
        let (tid, scope) = match m {
            Some(m) => (m + 1, "t"),
            None => (0, "g"),
        };
        self.push(
            buf,
            format!(r#"{{"ph":"i","s":"{scope}","pid":1,"tid":{tid},"ts":{ts:.3},"name":"{name}","args":{{{args}}}}}"#),
        );
    }

    /// Start of a flow arrow (an unpark); returns its id for `flow_end`.
    pub fn flow_start(&self, buf: Option<&TraceBuf>, m: Option<usize>, g: u64) -> u64 {
        let id = self.next_flow.fetch_add(1, Ordering::Relaxed);
        let ts = self.now_us();
        let tid = m.map_or(0, |m| m + 1);
        self.push(
            buf,
            format!(r#"{{"ph":"s","pid":1,"tid":{tid},"ts":{ts:.3},"id":{id},"name":"unpark","cat":"wake","args":{{"g":{g}}}}}"#),
        );
        id
    }

    /// End of flow `id`, at the start of the run it caused.
    pub fn flow_end(&self, buf: &TraceBuf, m: usize, id: u64, ts: f64) {
        self.push(
            Some(buf),
            format!(
                r#"{{"ph":"f","bp":"e","pid":1,"tid":{},"ts":{ts:.3},"id":{id},"name":"unpark","cat":"wake"}}"#,
                m + 1
            ),
        );
    }

    /// Writes the trace file. `ms` is the number of Ms created.
    pub fn write(&self, ms: usize) -> std::io::Result<()> {
        let events = std::mem::take(&mut *self.sink.lock().unwrap());
        let mut out = String::from("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
        let _ = write!(out, r#"{{"ph":"M","pid":1,"name":"process_name","args":{{"name":"goro runtime"}}}}"#);
        out.push_str(",\n");
        out.push_str(r#"{"ph":"M","pid":1,"tid":0,"name":"thread_name","args":{"name":"runtime"}}"#);
        for m in 0..ms {
            let _ = write!(
                out,
                ",\n{{\"ph\":\"M\",\"pid\":1,\"tid\":{},\"name\":\"thread_name\",\"args\":{{\"name\":\"M{m}\"}}}}",
                m + 1
            );
        }
        for p in 0..self.procs {
            let _ = write!(
                out,
                ",\n{{\"ph\":\"M\",\"pid\":1,\"tid\":{},\"name\":\"thread_name\",\"args\":{{\"name\":\"P{p}\"}}}}",
                P_TRACK + p
            );
        }
        for e in events {
            out.push_str(",\n");
            out.push_str(&e);
        }
        out.push_str("\n]}\n");
        std::fs::write(&self.path, out)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}
