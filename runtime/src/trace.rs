//! Execution traces in Chrome/Perfetto trace-event JSON (`GORO_TRACE=<file>`
//! or `RuntimeBuilder::trace(path)`); open the file in ui.perfetto.dev.
//!
//! One track per M (`M3`) and one per P (`P0`); a slice for each G run on
//! both; instant events for park, steal, handoff, retake, syscall enter and
//! exit; a flow arrow from each unpark to the run it caused.
//!
//! Each M formats its events into its own buffer (no lock on the hot path)
//! and hands a full buffer (`CHUNK` bytes) to the sink, which either streams
//! it to the file at once (the default: memory stays bounded however long
//! the run) or, as a flight recorder (`RuntimeBuilder::trace_last(d)`,
//! `GORO_TRACE_LAST=<seconds>`), keeps only the chunks of the last `d` (and
//! at most `RECORDER_BYTES`, 16 MiB) in memory and writes them at the end. The file
//! is finished (track names, closing bracket) when the runtime is dropped,
//! when the process exits on a deadlock, or at process exit for a runtime
//! never dropped. Strings (G names) are escaped by serde_json.
//!
//! With tracing off, every hook is one branch on an `Option`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes an M buffers before it hands them to the sink.
const CHUNK: usize = 64 * 1024;
/// The most a flight recorder keeps in memory, whatever its window.
const RECORDER_BYTES: usize = 16 << 20;
/// Track ids: Ms are 1..; Ps are P_TRACK + p.
const P_TRACK: usize = 100_000;

pub(crate) struct Tracer {
    epoch: Instant,
    path: PathBuf,
    sink: Mutex<Sink>,
    next_flow: AtomicU64,
    procs: usize,
    finished: AtomicBool,
    /// A flight recorder (`Sink::Recent`): buffers note their last event's time.
    recent: bool,
}

enum Sink {
    /// Streaming to the file; `first` until the first event is written.
    File { out: std::io::BufWriter<std::fs::File>, first: bool },
    /// Flight recorder: chunks with the time (µs) of their last event.
    Recent { window_us: f64, chunks: VecDeque<(f64, String)>, bytes: usize },
    /// The file could not be created (reported once); events are dropped.
    Broken,
}

/// Per-M event buffer: events as JSON, comma-separated.
#[derive(Default)]
pub(crate) struct TraceBuf {
    events: RefCell<String>,
    /// When the last event went in (µs; flight recorder only): a chunk an
    /// idle M hands over late is as old as its events, not as its hand-over.
    last_us: std::cell::Cell<f64>,
}

/// Nanoseconds written as the trace format's microseconds, three decimals,
/// with integer formatting only (floats cost more than the rest of an event).
struct Us(u64);

impl std::fmt::Display for Us {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

fn num(s: &mut String, v: u64) {
    s.push_str(itoa::Buffer::new().format(v));
}

/// Nanoseconds as the format's microseconds with three decimals.
fn us(s: &mut String, ns: u64) {
    num(s, ns / 1000);
    let frac = ns % 1000;
    s.push('.');
    if frac < 100 {
        s.push('0');
    }
    if frac < 10 {
        s.push('0');
    }
    num(s, frac);
}

/// The start of an event: `{"ph":..,"pid":1,"tid":..,"ts":..` (open).
fn head(s: &mut String, ph: &str, tid: u64, ts_ns: u64) {
    s.push_str(r#"{"ph":""#);
    s.push_str(ph);
    s.push_str(r#"","pid":1,"tid":"#);
    num(s, tid);
    s.push_str(r#","ts":"#);
    us(s, ts_ns);
}

/// `s` as a JSON string literal, quotes included.
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into())
}

impl Tracer {
    /// `last`: keep only that much of the end of the run (flight recorder).
    pub fn new(path: PathBuf, procs: usize, last: Option<Duration>) -> Tracer {
        let sink = match last {
            Some(d) => Sink::Recent { window_us: d.as_secs_f64() * 1e6, chunks: VecDeque::new(), bytes: 0 },
            None => match std::fs::File::create(&path) {
                Ok(f) => {
                    let mut out = std::io::BufWriter::with_capacity(CHUNK, f);
                    let _ = out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
                    Sink::File { out, first: true }
                }
                Err(e) => {
                    eprintln!("goro: cannot create the trace file {}: {e}", path.display());
                    Sink::Broken
                }
            },
        };
        Tracer {
            epoch: Instant::now(),
            path,
            sink: Mutex::new(sink),
            next_flow: AtomicU64::new(1),
            procs,
            finished: AtomicBool::new(false),
            recent: last.is_some(),
        }
    }

    /// Nanoseconds since the trace began.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Appends one event (formatted by `ev`) to `buf`, or straight to the
    /// sink without one (threads that are not Ms).
    fn push(&self, buf: Option<&TraceBuf>, ev: impl FnOnce(&mut String)) {
        match buf {
            Some(b) => {
                let mut s = b.events.borrow_mut();
                if !s.is_empty() {
                    s.push_str(",\n");
                }
                ev(&mut s);
                if self.recent {
                    b.last_us.set(self.now_ns() as f64 / 1000.0);
                }
                if s.len() >= CHUNK {
                    let chunk = std::mem::replace(&mut *s, String::with_capacity(CHUNK + 1024));
                    drop(s);
                    self.sink(chunk, None);
                }
            }
            None => {
                let mut s = String::new();
                ev(&mut s);
                self.sink(s, None);
            }
        }
    }

    /// Takes a chunk of events whose last one happened at `at` (µs; now if
    /// `None`).
    fn sink(&self, chunk: String, at: Option<f64>) {
        if chunk.is_empty() || self.finished.load(Ordering::Relaxed) {
            return;
        }
        let now = self.now_ns() as f64 / 1000.0;
        let at = at.unwrap_or(now);
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *sink {
            Sink::File { out, first } => {
                if !std::mem::take(first) {
                    let _ = out.write_all(b",\n");
                }
                let _ = out.write_all(chunk.as_bytes());
            }
            Sink::Recent { window_us, chunks, bytes } => {
                if at < now - *window_us {
                    // Handed over late (an M that idled, then exited).
                    return;
                }
                *bytes += chunk.len();
                chunks.push_back((at, chunk));
                while let Some((t, c)) = chunks.front() {
                    if *t >= now - *window_us && *bytes <= RECORDER_BYTES {
                        break;
                    }
                    *bytes -= c.len();
                    chunks.pop_front();
                }
            }
            Sink::Broken => {}
        }
    }

    /// Hands what `buf` holds to the sink (an M that exits).
    pub fn flush(&self, buf: &TraceBuf) {
        let chunk = std::mem::take(&mut *buf.events.borrow_mut());
        self.sink(chunk, self.recent.then(|| buf.last_us.get()));
    }

    /// A G ran on M `m` and P `p` from `start` (ns) to now: a slice on the
    /// M's track and one on the P's. Written field by field with integer
    /// formatting: a traced run emits millions of these.
    pub fn run(&self, buf: &TraceBuf, m: usize, p: usize, g: u64, name: Option<&str>, start: u64) {
        let dur = self.now_ns().saturating_sub(start).max(1);
        let label = name.map(|n| json_str(&format!("G{g} {n}")));
        // No P track when the M ran the G without one (a G parked inside
        // a system call and was resumed on its M alone).
        let p_track = (p != usize::MAX).then(|| P_TRACK + p);
        for tid in std::iter::once(m + 1).chain(p_track) {
            self.push(Some(buf), |s| {
                head(s, "X", tid as u64, start);
                s.push_str(r#","dur":"#);
                us(s, dur);
                s.push_str(r#","name":"#);
                match &label {
                    Some(l) => s.push_str(l),
                    None => {
                        s.push_str("\"G");
                        num(s, g);
                        s.push('"');
                    }
                }
                s.push_str(r#","args":{"g":"#);
                num(s, g);
                s.push_str(r#","m":"#);
                num(s, m as u64);
                s.push_str(r#","p":"#);
                num(s, p as u64);
                s.push_str("}}");
            });
        }
    }

    /// An instant event on M `m`'s track (or a runtime-wide one if `m` is
    /// `None`). `args` is the inside of a JSON object.
    pub fn instant(&self, buf: Option<&TraceBuf>, m: Option<usize>, name: &str, args: std::fmt::Arguments<'_>) {
        let ts = self.now_ns();
        let (tid, scope) = match m {
            Some(m) => (m + 1, "t"),
            None => (0, "g"),
        };
        let name = json_str(name);
        self.push(buf, |s| {
            let _ = write!(
                s,
                r#"{{"ph":"i","s":"{scope}","pid":1,"tid":{tid},"ts":{},"name":{name},"args":{{{args}}}}}"#,
                Us(ts)
            );
        });
    }

    /// A G parked (why: `reason`), on M `m`'s track.
    pub fn park(&self, buf: &TraceBuf, m: usize, g: u64, reason: &str) {
        let ts = self.now_ns();
        self.push(Some(buf), |s| {
            let _ = write!(
                s,
                r#"{{"ph":"i","s":"t","pid":1,"tid":{},"ts":{},"name":"park","args":{{"g":{g},"reason":"{reason}"}}}}"#,
                m + 1,
                Us(ts)
            );
        });
    }

    /// Start of a flow arrow (an unpark); returns its id for `flow_end`.
    pub fn flow_start(&self, buf: Option<&TraceBuf>, m: Option<usize>, g: u64) -> u64 {
        let id = self.next_flow.fetch_add(1, Ordering::Relaxed);
        let ts = self.now_ns();
        let tid = m.map_or(0, |m| m + 1);
        self.push(buf, |s| {
            head(s, "s", tid as u64, ts);
            s.push_str(r#","id":"#);
            num(s, id);
            s.push_str(r#","name":"unpark","cat":"wake","args":{"g":"#);
            num(s, g);
            s.push_str("}}");
        });
        id
    }

    /// End of flow `id`, at the start (ns) of the run it caused.
    pub fn flow_end(&self, buf: &TraceBuf, m: usize, id: u64, ts: u64) {
        self.push(Some(buf), |s| {
            head(s, "f", m as u64 + 1, ts);
            s.push_str(r#","id":"#);
            num(s, id);
            s.push_str(r#","bp":"e","name":"unpark","cat":"wake"}"#);
        });
    }

    /// Finishes the trace file (once: `Ok(false)` after the first call):
    /// track names for `ms` Ms and the closing bracket, after the
    /// recorder's chunks if it is one. Events still in the buffers of
    /// running Ms are lost.
    pub fn write(&self, ms: usize) -> std::io::Result<bool> {
        if self.finished.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        let mut meta = String::from(r#"{"ph":"M","pid":1,"name":"process_name","args":{"name":"goro runtime"}}"#);
        meta.push_str(",\n");
        meta.push_str(r#"{"ph":"M","pid":1,"tid":0,"name":"thread_name","args":{"name":"runtime"}}"#);
        for m in 0..ms {
            let _ = write!(
                meta,
                ",\n{{\"ph\":\"M\",\"pid\":1,\"tid\":{},\"name\":\"thread_name\",\"args\":{{\"name\":\"M{m}\"}}}}",
                m + 1
            );
        }
        for p in 0..self.procs {
            let _ = write!(
                meta,
                ",\n{{\"ph\":\"M\",\"pid\":1,\"tid\":{},\"name\":\"thread_name\",\"args\":{{\"name\":\"P{p}\"}}}}",
                P_TRACK + p
            );
        }
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *sink, Sink::Broken) {
            Sink::File { mut out, first } => {
                if !first {
                    out.write_all(b",\n")?;
                }
                out.write_all(meta.as_bytes())?;
                out.write_all(b"\n]}\n")?;
                out.flush()?;
                Ok(true)
            }
            Sink::Recent { window_us, chunks, .. } => {
                // Chunks arrive roughly in time order; one handed over late
                // may sit behind newer ones: the window is applied again.
                let from = self.now_ns() as f64 / 1000.0 - window_us;
                let chunks = chunks.into_iter().filter(|(t, _)| *t >= from);
                let f = std::fs::File::create(&self.path)?;
                let mut out = std::io::BufWriter::with_capacity(CHUNK, f);
                out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
                out.write_all(meta.as_bytes())?;
                for (_, c) in chunks {
                    out.write_all(b",\n")?;
                    out.write_all(c.as_bytes())?;
                }
                out.write_all(b"\n]}\n")?;
                out.flush()?;
                Ok(true)
            }
            Sink::Broken => Err(std::io::Error::other("the trace file could not be created")),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// A runtime-wide instant event in the trace, if tracing (and a `tracing`
/// event with the `tracing` feature). `args` (JSON object members, from
/// `format_args!`) is formatted only if something records it: without a
/// trace this costs one branch.
pub(crate) fn instant(tracer: &Option<Tracer>, name: &str, args: std::fmt::Arguments<'_>) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "goro", event = name, args = %args);
    if let Some(t) = tracer {
        let c = crate::m::ctx_ptr();
        if c.is_null() {
            t.instant(None, None, name, args);
        } else {
            // SAFETY: a non-null context is this thread's live MCtx.
            let c = unsafe { &*c };
            t.instant(Some(&c.trace), Some(c.m.id), name, args);
        }
    }
}

/// Finishes the trace file, if tracing (once; later calls do nothing).
/// `threads`: the Ms the runtime created (the trace names their tracks).
pub(crate) fn finish(tracer: &Option<Tracer>, threads: usize) {
    if let Some(t) = tracer {
        // Not `eprintln!`: this may run at process exit, where a panic on
        // a closed stderr would abort.
        use std::io::Write as _;
        let mut err = std::io::stderr();
        let _ = match t.write(threads) {
            Ok(false) => Ok(()),
            Ok(true) => {
                writeln!(err, "goro: trace written to {} (open it in https://ui.perfetto.dev)", t.path().display())
            }
            Err(e) => writeln!(err, "goro: cannot write the trace to {}: {e}", t.path().display()),
        };
    }
}
