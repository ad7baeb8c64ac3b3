//! `RwLock<T>`: Go's `sync.RWMutex` with guards. Many readers or one
//! writer. Writers are not starved by a stream of readers: once a writer
//! waits, new readers queue behind it; and readers are not starved by
//! writers: a writer's unlock admits every waiting reader first.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex as StdMutex;

use super::waitq::{WaitQueue, Waiter};
use crate::g::WaitReason;

struct State {
    readers: usize,
    writer: bool,
    readq: WaitQueue,
    writeq: WaitQueue,
}

/// A reader-writer lock for Gs (parks them) and threads (blocks them).
pub struct RwLock<T: ?Sized> {
    st: StdMutex<State>,
    data: UnsafeCell<T>,
}

// SAFETY: readers share `&T` (T: Sync), a writer gets `&mut T` alone (T: Send).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// An unlocked lock holding `v`.
    pub const fn new(v: T) -> Self {
        RwLock {
            st: StdMutex::new(State { readers: 0, writer: false, readq: WaitQueue::new(), writeq: WaitQueue::new() }),
            data: UnsafeCell::new(v),
        }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// The value, through a unique borrow: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shared access; waits while a writer holds or waits for the lock.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        crate::m::preempt_point();
        let w = {
            let mut st = self.state();
            if !st.writer && st.writeq.is_empty() {
                st.readers += 1;
                return RwLockReadGuard { l: self };
            }
            let w = Waiter::new(1);
            st.readq.push_back(w.clone());
            w
        };
        // Granted with `readers` already counted for us.
        w.wait(WaitReason::RwLockRead);
        RwLockReadGuard { l: self }
    }

    /// Exclusive access.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        crate::m::preempt_point();
        let w = {
            let mut st = self.state();
            if !st.writer && st.readers == 0 {
                st.writer = true;
                return RwLockWriteGuard { l: self };
            }
            let w = Waiter::new(1);
            st.writeq.push_back(w.clone());
            w
        };
        // Granted with `writer` already set for us.
        w.wait(WaitReason::RwLockWrite);
        RwLockWriteGuard { l: self }
    }

    /// Shared access if no writer holds or waits for the lock; never parks.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut st = self.state();
        if !st.writer && st.writeq.is_empty() {
            st.readers += 1;
            return Some(RwLockReadGuard { l: self });
        }
        None
    }

    /// Exclusive access if nobody holds the lock; never parks.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let mut st = self.state();
        if !st.writer && st.readers == 0 {
            st.writer = true;
            return Some(RwLockWriteGuard { l: self });
        }
        None
    }

    fn read_unlock(&self) {
        let next = {
            let mut st = self.state();
            st.readers -= 1;
            if st.readers == 0 {
                let w = st.writeq.pop_front();
                if w.is_some() {
                    st.writer = true;
                }
                w
            } else {
                None
            }
        };
        if let Some(w) = next {
            w.grant();
        }
    }

    fn write_unlock(&self) {
        let (readers, writer): (Vec<_>, _) = {
            let mut st = self.state();
            st.writer = false;
            if !st.readq.is_empty() {
                let rs: Vec<_> = st.readq.drain().collect();
                st.readers += rs.len();
                (rs, None)
            } else {
                let w = st.writeq.pop_front();
                if w.is_some() {
                    st.writer = true;
                }
                (Vec::new(), w)
            }
        };
        for r in readers {
            r.grant();
        }
        if let Some(w) = writer {
            w.grant();
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

/// Shared access to an [`RwLock`]'s value; the read lock is released on drop.
pub struct RwLockReadGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
}

/// Exclusive access to an [`RwLock`]'s value; the write lock is released on drop.
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard means no writer holds the lock.
        unsafe { &*self.l.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.l.read_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard means exclusive access.
        unsafe { &*self.l.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a write guard means exclusive access.
        unsafe { &mut *self.l.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.l.write_unlock();
    }
}

impl<T: ?Sized> std::fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RwLock").finish_non_exhaustive()
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}
