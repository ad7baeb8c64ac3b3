//! Scheduling policy knobs. `Policy::default()` is Go's behaviour except
//! for `runnext_wake` (goro defers the wake-up; see [`RunnextWake`]) and
//! `hog_handoff` (goro's stand-in for Go's asynchronous preemption); each
//! field switches one rule so the policy lab can measure what it is worth.

use std::time::Duration;

/// How an idle M steals from another P's local queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steal {
    /// Take half of the victim's queue (Go).
    Half,
    /// Take one G at a time.
    One,
    /// Never steal: each P runs what is put on it and what it takes from the
    /// global queue.
    Off,
}

/// How many Ms may spin (look for work with a P and nothing to run) at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spinning {
    /// At most half of the busy Ps (Go: `2*nmspinning < gomaxprocs-npidle`).
    HalfBusy,
    /// At most this many at once; `Limit(0)` turns spinning, and therefore
    /// stealing, off.
    Limit(usize),
}

/// When sysmon takes the P of a G that sits in `goro::syscall`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retake {
    /// After the call has lasted this long (Go: 20 µs, with sysmon's period).
    After(Duration),
    /// At the next sysmon round, however short the call.
    Immediate,
    /// Never: the P waits for its G to come back.
    Never,
}

/// The scheduling rules of a runtime. Every field defaults to Go's choice
/// except `runnext_wake`, and `hog_handoff` (a goro extension, on: it
/// stands in for Go's signal-based preemption and its syscall wrappers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// A readied or spawned G goes to its P's `runnext` slot and runs next,
    /// inheriting the time slice (Go). Off: it goes to the tail of the queue.
    pub runnext: bool,
    /// Capacity of each P's local run queue (Go: 256).
    pub local_queue: usize,
    /// Every this many schedule ticks the global queue is checked first, so
    /// it is not starved by local work (Go: 61). 0 disables the check.
    pub global_queue_interval: u32,
    /// How much an idle M takes from a victim (Go: half).
    pub steal: Steal,
    /// Whether a thief may take the victim's `runnext` on its last round (Go: yes).
    pub steal_runnext: bool,
    /// How many Ms may spin at once (Go: half of the busy Ps).
    pub max_spinning: Spinning,
    /// When a P stuck in a syscall is retaken by sysmon (Go: after 20 µs).
    pub syscall_retake: Retake,
    /// A G that has run this long yields at its next runtime call (Go: 10 ms).
    pub time_slice: Duration,
    /// goro extension (on by default): sysmon takes the P of a G that has
    /// run user code for `hog_threshold` without a runtime call (a tight
    /// loop, or a blocking call goro was not told about) and hands it to
    /// another M, so the P's other Gs go on; the G keeps its thread. Off:
    /// such a G holds its P until it next calls the runtime (Tokio's
    /// behaviour). See `hog.rs` and ARCHITECTURE.md.
    pub hog_handoff: bool,
    /// How long a G may run user code without a runtime call before its P
    /// is taken (`hog_handoff`).
    pub hog_threshold: Duration,
    /// When readying a G into an empty `runnext` slot wakes an idle P to
    /// look for work (readying that leaves work in the local queue always
    /// wakes one). Go: at once; goro: deferred (see [`RunnextWake`]).
    pub runnext_wake: RunnextWake,
}

/// When a G readied into an empty `runnext` wakes an idle P (another M
/// could steal it from there if the readier keeps running).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunnextWake {
    /// Go's rule: at once. A G that hands off and then blocks (ping-pong)
    /// pays a futex wake-up of an M that finds nothing to do.
    Immediate,
    /// goro's default: only if the readier goes on running — at its second
    /// runtime call (channel operation, preemption point...) that follows
    /// without a switch, or when sysmon sees the P still running the same
    /// G with the wake-up pending. A readier that blocks right away (the G
    /// in `runnext` runs next) wakes nobody.
    Deferred,
    /// Tokio's LIFO-slot rule: never; the readied G waits for its P when
    /// the readier keeps running (up to the time slice).
    Never,
}

/// `Policy::hog_threshold`'s default (see ARCHITECTURE.md for how it was
/// chosen).
pub const DEFAULT_HOG_THRESHOLD: Duration = Duration::from_millis(1);

impl Default for Policy {
    fn default() -> Self {
        Policy {
            runnext: true,
            local_queue: 256,
            global_queue_interval: 61,
            steal: Steal::Half,
            steal_runnext: true,
            max_spinning: Spinning::HalfBusy,
            syscall_retake: Retake::After(Duration::from_micros(20)),
            time_slice: Duration::from_millis(10),
            hog_handoff: true,
            hog_threshold: DEFAULT_HOG_THRESHOLD,
            runnext_wake: RunnextWake::Deferred,
        }
    }
}
