//! Work stealing: the order in which an idle P visits the others, and what
//! it takes from one (Go's `randomOrder` and `runqsteal`).
//!
//! `Sched::steal_work` (sched.rs) runs the rounds; this file holds the two
//! pieces that do not need the scheduler: a random visiting order that
//! covers every P exactly once, and the theft from one victim (half its
//! queue, or as the policy says, and on the last round its `runnext`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::g::G;
use crate::p::P;
use crate::policy::Steal;
use crate::runq::Take;
use crate::stats::Counters;

/// How long a thief waits before taking a running P's `runnext` (Go's
/// `usleep(3)`; the kernel's timer slack makes it ~50 µs): the G there is
/// usually about to run, and taking it would bounce a ping-pong pair
/// between Ps. Sleeping, not spinning: a spinning thief burns a CPU the
/// runtime's other threads could use. If the victim scheduled any G during
/// the wait, the thief leaves `runnext` alone.
const RUNNEXT_STEAL_WAIT: Duration = Duration::from_micros(3);

/// Go's `randomOrder`: a walk over `0..count` from a random start with a
/// random stride coprime with `count`, so every P is visited once per walk
/// and thieves starting together spread out.
pub(crate) struct StealOrder {
    count: usize,
    coprimes: Vec<usize>,
}

impl StealOrder {
    pub(crate) fn new(count: usize) -> StealOrder {
        let coprimes = (1..=count).filter(|&i| gcd(i, count) == 1).collect();
        StealOrder { count, coprimes }
    }

    /// The Ps in the order the random number `r` picks.
    pub(crate) fn walk(&self, r: usize) -> impl Iterator<Item = usize> + '_ {
        let start = r % self.count;
        let inc = self.coprimes[(r / self.count) % self.coprimes.len()];
        (0..self.count).map(move |i| (start + i * inc) % self.count)
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Go's `runqsteal`: takes from P `v`'s queue into P `me`'s and returns
/// one G to run; with `steal_next`, `runnext` too if `v`'s queue is empty.
///
/// # Safety
///
/// The caller holds P `me`, and `me`'s local queue is empty.
pub(crate) unsafe fn runqsteal(
    ps: &[P],
    me: usize,
    v: usize,
    steal: Steal,
    steal_next: bool,
    tracer: &Option<crate::trace::Tracer>,
) -> Option<Arc<G>> {
    let take = match steal {
        Steal::Half => Take::Half,
        Steal::One => Take::One,
        Steal::Off => return None,
    };
    let (mine, victim) = (&ps[me], &ps[v]);
    // SAFETY: the caller holds P `me` and its queue is empty.
    if let Some((g, n)) = unsafe { victim.runq.steal_into(&mine.runq, take) } {
        Counters::bump(&mine.counters.steals);
        Counters::add(&mine.counters.stolen, n as u64);
        crate::trace::instant(tracer, "steal", format_args!(r#""from":{v},"to":{me},"n":{n}"#));
        // SAFETY: the pointer came from Arc::into_raw; the steal's CAS
        // made us its owner.
        return Some(unsafe { Arc::from_raw(g) });
    }
    if !steal_next {
        return None;
    }
    let next = victim.runnext.load(Ordering::Acquire);
    if next.is_null() {
        return None;
    }
    if victim.is_running() {
        let before = victim.counters.scheduled.load(Ordering::Relaxed);
        std::thread::sleep(RUNNEXT_STEAL_WAIT);
        // The victim switched Gs meanwhile: it is not stuck behind a
        // long-running G and will run `runnext` itself (in a ping-pong,
        // `runnext` now holds the *other* G of the pair, or the same
        // pointer again: taking it would split the pair across Ps for
        // nothing).
        if victim.counters.scheduled.load(Ordering::Relaxed) != before {
            return None;
        }
    }
    if victim.runnext.compare_exchange(next, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
        Counters::bump(&mine.counters.steals);
        Counters::bump(&mine.counters.stolen);
        // SAFETY: as above; the CAS made us the owner.
        return Some(unsafe { Arc::from_raw(next) });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::StealOrder;

    #[test]
    fn every_walk_visits_each_p_once() {
        for count in 1..=12 {
            let order = StealOrder::new(count);
            for r in 0..500 {
                let mut seen: Vec<usize> = order.walk(r).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..count).collect::<Vec<_>>(), "count {count}, r {r}");
            }
        }
    }

    #[test]
    fn walks_differ_in_start_and_stride() {
        let order = StealOrder::new(5);
        let walks: std::collections::HashSet<Vec<usize>> = (0..100).map(|r| order.walk(r).collect()).collect();
        // 5 starts × 4 strides coprime with 5.
        assert_eq!(walks.len(), 20);
    }
}
