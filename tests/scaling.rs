//! No lock shared between Ps on a hot path: over a million steady-state
//! operations of each kind, the locks Ps share (`Stats::shared_locks`: the
//! scheduler's lock, the shared free lists, another P's registry or
//! timers) are taken for fewer than one operation in a hundred. This is
//! what lets goro scale past this machine's two cores (ARCHITECTURE.md,
//! "What Ps share").

mod common;

use common::{bounded, rt};
use goro_workloads::schedload;

const N: u64 = 1_000_000;

/// Runs `work` (which does `N` operations) once to warm up the caches and
/// free lists, then again, and returns the shared-lock acquisitions per
/// operation of the second run.
fn per_op(what: &'static str, work: fn(&goro::Runtime)) -> f64 {
    bounded(300, move || {
        let rt = rt(2);
        work(&rt);
        let before = rt.stats().shared_locks;
        work(&rt);
        let after = rt.stats().shared_locks;
        let d = after.total() - before.total();
        let per = d as f64 / N as f64;
        println!(
            "{what}: {d} shared-lock acquisitions in {N} operations ({per:.5} each; sched {}, free Gs {}, stacks {}, \
             other registry {}, other timers {})",
            after.sched - before.sched,
            after.free_gs - before.free_gs,
            after.stack_pool - before.stack_pool,
            after.other_registry - before.other_registry,
            after.other_timers - before.other_timers
        );
        per
    })
}

fn check(what: &'static str, work: fn(&goro::Runtime)) {
    let per = per_op(what, work);
    assert!(per < 0.01, "{what}: {per:.4} shared-lock acquisitions per operation");
}

#[test]
fn spawn_and_exit_take_no_shared_lock() {
    check("spawn+exit", |rt| {
        rt.block_on(|| {
            for i in 0..N {
                assert_eq!(goro::go(move || i).join().unwrap(), i);
            }
        })
    });
}

#[test]
fn yields_take_no_shared_lock() {
    check("yield", |rt| {
        schedload::yields(rt, 2, (N / 2) as usize);
    });
}

#[test]
fn unbuffered_round_trips_take_no_shared_lock() {
    check("unbuffered round trip", |rt| {
        schedload::pingpong(rt, N);
    });
}

#[test]
fn buffered_channel_traffic_takes_no_shared_lock() {
    check("buffered send+recv", |rt| {
        schedload::prodcons(rt, N);
    });
}

#[test]
fn park_unpark_takes_no_shared_lock() {
    check("park/unpark", |rt| rt.block_on(|| schedload::park_unpark_turns(N)));
}

#[test]
fn selects_take_no_shared_lock() {
    check("select", |rt| {
        schedload::select4(rt, N);
    });
}

/// A G's timers live on its own P: adding and stopping them (and sleeping)
/// with one P takes no lock of another P's timers.
#[test]
fn timers_on_the_gs_own_p_take_no_shared_lock() {
    bounded(30, || {
        let rt = rt(1);
        rt.block_on(|| {
            for _ in 0..1000 {
                let t = goro::time::Timer::new(std::time::Duration::from_secs(3600));
                assert!(t.stop());
            }
            for _ in 0..100 {
                goro::sleep(std::time::Duration::from_micros(1));
            }
        });
        let locks = rt.stats().shared_locks;
        assert!(locks.other_timers < 10, "{locks:?}");
    });
}
