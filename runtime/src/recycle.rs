//! The handshake between recycling a dead G and reading a live one, on
//! their own so that loom can check them (`tests/loom_recycle.rs`).
//!
//! A dead G stays in its registry (`g.rs`), and registry readers (dumps,
//! stats, shutdown) clone Gs from it without any lock the G's exit or
//! next spawn takes. Two sides race:
//!
//! - the recycler (`GPool::gfput`) has stored the G's status `Dead`; it
//!   may reset the G's life fields only if no reference but its own and
//!   the registry's exists;
//! - a reader (`G::clone_if_live`) has taken a reference; it may read the
//!   life fields only if the G is not dead.
//!
//! Each side writes first (the status, the count) and reads the other's
//! word after a `SeqCst` fence, so at least one of them sees the other:
//! either the recycler counts the reader's reference and does not
//! recycle, or the reader sees `Dead` and reads nothing. A reader that
//! read the life and let go before the count was read is ordered before
//! the reset by its Release drop and the recycler's Acquire fence. A reader that
//! sees a later life's status reads that life's fields after `begin_life`
//! wrote them: that status is stored with Release, and loaded here with
//! Acquire.

use crate::atomic::{fence, AtomicU8, Ordering};

/// The recycler's side, once the G's status is dead: whether the G may be
/// reset, `strong_count` being read after the fence and `alone` the count
/// of the recycler's and the registry's references.
#[inline]
pub(crate) fn may_recycle(strong_count: impl FnOnce() -> usize, alone: usize) -> bool {
    fence(Ordering::SeqCst);
    if strong_count() != alone {
        return false;
    }
    // A reader that came and went dropped its reference with Release
    // (as `Arc` does); the count read above may be that drop's: acquire
    // it, so that the reader's reads of the life come before the reset.
    // (`Arc::get_mut` does the same.)
    fence(Ordering::Acquire);
    true
}

/// A reader's side, once it holds its reference: whether the G is alive
/// (its status is not `dead`), so that its life fields may be read.
#[inline]
pub(crate) fn reader_sees_live(status: &AtomicU8, dead: u8) -> bool {
    fence(Ordering::SeqCst);
    status.load(Ordering::Acquire) != dead
}
