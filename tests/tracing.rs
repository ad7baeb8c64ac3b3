//! The `tracing` feature: a span per G run (`goroutine`, with the G's id
//! and name) and events for handoffs, seen by an installed subscriber.
//! Run with `cargo test --features tracing --test tracing` (CI does).
#![cfg(feature = "tracing")]

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

static GOROUTINE_SPANS: AtomicUsize = AtomicUsize::new(0);
static NAMED_SPANS: AtomicUsize = AtomicUsize::new(0);
static GORO_EVENTS: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Counts what goro reports; no dependency beyond `tracing` itself.
struct Count;

/// Finds a field's value as text.
struct Find<'a>(&'a str, Option<String>);

impl tracing::field::Visit for Find<'_> {
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        if f.name() == self.0 {
            self.1 = Some(format!("{v:?}"));
        }
    }
}

impl Subscriber for Count {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, a: &Attributes<'_>) -> Id {
        if a.metadata().name() == "goroutine" {
            GOROUTINE_SPANS.fetch_add(1, Ordering::Relaxed);
            let mut name = Find("name", None);
            a.record(&mut name);
            if name.1.is_some_and(|n| n.contains("traced-g")) {
                NAMED_SPANS.fetch_add(1, Ordering::Relaxed);
            }
        }
        Id::from_u64(NEXT_ID.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        if e.metadata().target() == "goro" {
            GORO_EVENTS.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn g_runs_are_spans_and_handoffs_are_events() {
    tracing::subscriber::set_global_default(Count).unwrap();
    common::bounded(30, || {
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { goro::Runtime::builder().procs(2).build() }.unwrap();
        rt.block_on(|| {
            let h = goro::Builder::new()
                .name("traced-g")
                .spawn(|| {
                    goro::yield_now();
                    goro::blocking(|| std::thread::sleep(Duration::from_millis(1)));
                })
                .unwrap();
            h.join().unwrap();
        });
    });
    assert!(GOROUTINE_SPANS.load(Ordering::Relaxed) >= 3, "a span per run of each G");
    assert!(NAMED_SPANS.load(Ordering::Relaxed) >= 2, "the named G ran at least twice (it yielded)");
    assert!(GORO_EVENTS.load(Ordering::Relaxed) > 0, "no handoff event");
}
