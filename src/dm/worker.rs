//! Deferred bios: a queue of bios the target took over, drained in process context by a work item on the
//! target's own workqueue.
//!
//! `map()` and `end_io()` run where they must not sleep (`end_io()` possibly in interrupt context), but
//! relocating a unit means synchronous I/O and a durable metadata commit. They hand such bios over with
//! [`BioWorker::defer`]; the workqueue passes them to [`HandleBio::handle`] in groups of up to [`GROUP`], so
//! the bios that piled up while one commit was being written share the next commit (group commit).

use core::ptr::NonNull;

use kernel::prelude::*;
use kernel::sync::{new_spinlock_irq, Arc, SpinLockIrq};
use kernel::workqueue::{impl_has_work, new_work, Queue, Work, WorkItem};

use super::bio::{BioList, OwnedBio};
use super::ffi;

/// What the worker does with each deferred bio.
pub(crate) trait HandleBio: Send + Sync + 'static {
    /// The target's per-bio data.
    type PerBio: Send + Unpin;

    /// Completes every bio of `bios`, oldest first (process context: may sleep and do I/O).
    fn handle(&self, bios: BioList<Self::PerBio>);
}

/// Most bios handed to the handler at once: enough to fill a journal commit when every bio moves a unit or
/// two, few enough that the first of them does not wait long for the last.
pub(crate) const GROUP: usize = 32;

/// How many groups one run of the work item handles before it requeues itself, so one busy target cannot keep
/// a worker thread forever.
const GROUPS_PER_RUN: usize = 4;

/// The deferred-bio queue and its handler.
#[pin_data]
pub(crate) struct BioWorker<H: HandleBio> {
    #[pin]
    bios: SpinLockIrq<BioList<H::PerBio>>,
    #[pin]
    work: Work<BioWorker<H>>,
    #[pin]
    handler: H,
    queue: OwnedQueue,
}

impl_has_work! {
    impl{H: HandleBio} HasWork<Self> for BioWorker<H> { self.work }
}

impl<H: HandleBio> BioWorker<H> {
    /// A worker with its own workqueue, named after `name`.
    pub(crate) fn new(name: &CStr, handler: impl PinInit<H, Error>) -> Result<Arc<Self>> {
        let queue = OwnedQueue::new(name)?;
        Arc::pin_init(
            try_pin_init!(Self {
                bios <- new_spinlock_irq!(BioList::new(), "dm-remap-v4 deferred bios"),
                work <- new_work!("dm-remap-v4 worker"),
                handler <- handler,
                queue,
            }? Error),
            GFP_KERNEL,
        )
    }

    /// The handler, for the target's other callbacks.
    pub(crate) fn handler(&self) -> &H {
        &self.handler
    }

    /// Queues `bio` for the handler. Never sleeps; callable from any context.
    pub(crate) fn defer(self: &Arc<Self>, bio: OwnedBio<H::PerBio>) {
        self.bios.lock().push(bio);
        // Already queued: the running or pending work item picks the bio up.
        let _ = self.queue.get().enqueue(self.clone());
    }

    /// Waits until every deferred bio has been handled (the destructor calls it before the devices go).
    pub(crate) fn drain(&self) {
        // SAFETY: `queue` is a live workqueue we own.
        unsafe { ffi::drain_workqueue(self.queue.raw()) };
    }
}

impl<H: HandleBio> WorkItem for BioWorker<H> {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        let _noio = NoIoScope::enter();
        for _ in 0..GROUPS_PER_RUN {
            let group = this.bios.lock().take_front(GROUP);
            if group.is_empty() {
                return;
            }
            this.handler.handle(group);
        }
        if !this.bios.lock().is_empty() {
            let _ = this.queue.get().enqueue(this.clone());
        }
    }
}

/// A workqueue of our own (`alloc_workqueue`), destroyed when dropped.
pub(crate) struct OwnedQueue(NonNull<ffi::workqueue_struct>);

// SAFETY: a workqueue may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: queueing work is safe from any thread.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// A workqueue named `dm-remap-v4/<name>`, one work item at a time.
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated; the workqueue copies it.
        let wq = unsafe { ffi::dmr_alloc_workqueue(name.as_char_ptr()) };
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }

    fn raw(&self) -> *mut ffi::workqueue_struct {
        self.0.as_ptr()
    }

    pub(crate) fn get(&self) -> &Queue {
        // SAFETY: the workqueue lives until `self` is dropped.
        unsafe { Queue::from_raw(self.raw()) }
    }

    /// Waits until every work item queued before the call has finished.
    pub(crate) fn flush(&self) {
        // SAFETY: `queue` is a live workqueue we own.
        unsafe { ffi::__flush_workqueue(self.raw()) };
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, destroyed once. Only reached when the last `Arc<BioWorker>` goes, and
        // every queued work item holds one, so the queue is idle.
        unsafe { ffi::destroy_workqueue(self.raw()) };
    }
}

/// Allocations inside do not start I/O: the worker completes I/O that memory reclaim may be waiting for.
pub(crate) struct NoIoScope(u32);

impl NoIoScope {
    pub(crate) fn enter() -> Self {
        // SAFETY: saves and changes the current task's allocation flags; restored in `drop`.
        Self(unsafe { ffi::dmr_noio_save() })
    }
}

impl Drop for NoIoScope {
    fn drop(&mut self) {
        // SAFETY: restores what `enter` saved, on the same task.
        unsafe { ffi::dmr_noio_restore(self.0) };
    }
}
