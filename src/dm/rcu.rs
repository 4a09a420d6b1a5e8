//! A value that lock-free readers see under RCU and writers replace whole: the remap table's sorted run.
//!
//! Readers (`map()`, any context) borrow the current value for the length of a closure inside an RCU read-side
//! section. Writers (process context) are serialised by a mutex of their own, build a new value from the old
//! one, publish it, wait for a grace period and only then free the old value, so no reader ever sees freed
//! memory.

use core::pin::Pin;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::alloc::KBox;
use kernel::prelude::*;
use kernel::sync::rcu;
use kernel::sync::Mutex;

/// A heap value published under RCU.
pub(crate) struct RcuBox<T> {
    /// Always a pointer from `KBox::into_raw`, never null.
    ptr: AtomicPtr<T>,
    /// Held by writers; the old value is freed only under it, so a writer may read it without RCU.
    writer: Pin<KBox<Mutex<()>>>,
}

// SAFETY: readers share `&T` across threads (`T: Sync`); the value moves to whichever thread frees it
// (`T: Send`).
unsafe impl<T: Send + Sync> Send for RcuBox<T> {}
// SAFETY: as above; the pointer is atomic and writers are serialised by the mutex.
unsafe impl<T: Send + Sync> Sync for RcuBox<T> {}

impl<T> RcuBox<T> {
    /// Publishes `value`.
    pub(crate) fn new(value: KBox<T>) -> Result<Self> {
        let writer = KBox::pin_init(kernel::new_mutex!((), "dm-remap-v4 rcu writer"), GFP_KERNEL)?;
        Ok(Self {
            ptr: AtomicPtr::new(KBox::into_raw(value)),
            writer,
        })
    }

    /// Calls `f` with the current value, inside an RCU read-side section: never sleeps, so `f` must not
    /// either. Safe in `map()`.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let _guard = rcu::read_lock();
        // SAFETY: the pointer came from `KBox::into_raw` and is never null; a replaced value is freed only
        // after a grace period (`update`), which cannot end while `_guard` holds the read side.
        f(unsafe { &*self.ptr.load(Ordering::Acquire) })
    }

    /// Lets `f` build a replacement from the current value (it may sleep and allocate). `Ok(Some(new))`
    /// publishes `new`, waits for the readers of the old value, then frees it; `Ok(None)` keeps the value.
    /// Process context only.
    pub(crate) fn update(&self, f: impl FnOnce(&T) -> Result<Option<KBox<T>>>) -> Result {
        let _writer = self.writer.lock();
        // SAFETY: values are freed only below, under the writer mutex this thread holds, so the current one
        // stays alive while `old` is borrowed.
        let old = unsafe { &*self.ptr.load(Ordering::Acquire) };
        let Some(new) = f(old)? else {
            return Ok(());
        };
        let old = self.ptr.swap(KBox::into_raw(new), Ordering::AcqRel);
        rcu::synchronize_rcu();
        // SAFETY: `old` came from `KBox::into_raw`; it is unpublished and every reader that could still see it
        // has left its read-side section (grace period above).
        drop(unsafe { KBox::from_raw(old) });
        Ok(())
    }
}

impl<T> Drop for RcuBox<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no reader or writer is left; the pointer came from `KBox::into_raw`.
        drop(unsafe { KBox::from_raw(*self.ptr.get_mut()) });
    }
}
