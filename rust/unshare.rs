// SPDX-License-Identifier: GPL-2.0

//! Which tasks are inside a GUP "unshare" fault.
//!
//! An unshare fault (`FAULT_FLAG_UNSHARE`: a read-only pin of a page still
//! shared since fork) copies the page like a write does. The flag is only in
//! `struct vm_fault`, seen at `do_wp_page`'s entry, and the copy is
//! committed later in the same call chain, possibly on another CPU after
//! sleeping in the allocator. So `do_wp_page` marks the task here and the
//! commit looks it up. A task handles one fault at a time, and every commit
//! follows its own `do_wp_page` entry, which first clears any mark the task
//! left behind (a fault that bailed out), so a mark never outlives its fault
//! as far as any count can tell, even if a task exits and its `task_struct`
//! is reused. Unshare faults are rare, so the common path is one load.

use crate::counter::Counter;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Unshare faults tracked at once; more are counted in `untracked`.
const SLOTS: usize = 32;

/// Tasks with an unshare fault in flight, by `task_struct` address.
pub(crate) struct UnshareFaults {
    /// Marks set. Only an optimisation: 0 means "nothing to look up".
    marked: AtomicUsize,
    tasks: [AtomicUsize; SLOTS],
    /// Unshare faults that found no free slot: their copies count as
    /// `cow_copies`. Shown in `/proc/cowstat/stats`.
    pub(crate) untracked: Counter,
}

impl UnshareFaults {
    /// No marks (usable in statics).
    pub(crate) const fn new() -> Self {
        Self {
            marked: AtomicUsize::new(0),
            tasks: [const { AtomicUsize::new(0) }; SLOTS],
            untracked: Counter::new(),
        }
    }

    /// Marks `task` as inside an unshare fault.
    pub(crate) fn begin(&self, task: usize) {
        self.marked.fetch_add(1, Relaxed);
        for slot in &self.tasks {
            if slot.compare_exchange(0, task, Relaxed, Relaxed).is_ok() {
                return;
            }
        }
        self.marked.fetch_sub(1, Relaxed);
        self.untracked.inc();
    }

    /// Whether any task has a mark (one load).
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.marked.load(Relaxed) != 0
    }

    /// Clears `task`'s mark; returns whether it had one. Only `task` itself
    /// sets or clears its mark, so its own program order is all that counts.
    #[inline]
    pub(crate) fn end(&self, task: usize) -> bool {
        if self.marked.load(Relaxed) == 0 {
            return false;
        }
        for slot in &self.tasks {
            if slot.load(Relaxed) == task {
                slot.store(0, Relaxed);
                self.marked.fetch_sub(1, Relaxed);
                return true;
            }
        }
        false
    }
}
