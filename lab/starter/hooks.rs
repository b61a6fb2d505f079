// SPDX-License-Identifier: GPL-2.0

//! What each probed kernel function means, and the counters it feeds.
//!
//! 6.12's COW path (`mm/memory.c`): a write to a present, write-protected PTE
//! enters `do_wp_page`, which either reuses the page in place (inline
//! `wp_page_reuse`) or calls `wp_page_copy` to allocate a new page, copied
//! from the old one or zero-filled for the zero page. A write to a
//! write-protected huge PMD enters `do_huge_pmd_wp_page` first, which
//! reuses the huge page or splits it and retries at PTE level. `fork()`
//! duplicates the address space in `dup_mmap` (`kernel/fork.c`).

use crate::{
    counter::Counter,
    histogram::Log2Histogram,
    probe::{EntryHandler, Probe, Regs, ReturnHandler},
    table::{Event, ProcessTable},
    task,
};
use kernel::{bindings, c_str};

/// Per-process (and, summed, global) fault counters.
pub(crate) static TABLE: ProcessTable = ProcessTable::new();
/// Successful address-space duplications.
pub(crate) static FORKS: Counter = Counter::new();
/// Total nanoseconds spent in successful `dup_mmap` calls.
pub(crate) static FORK_NS: Counter = Counter::new();
/// `dup_mmap` durations in microseconds.
pub(crate) static FORK_LATENCY: Log2Histogram = Log2Histogram::new();

/// Every probe, in `/proc/cowstat/probes` order. The first two are essential.
pub(crate) static PROBES: [&Probe; 4] =
    [&DO_WP_PAGE, &WP_PAGE_COPY, &DO_HUGE_PMD_WP_PAGE, &DUP_MMAP];
/// How many leading entries of [`PROBES`] the module cannot work without.
pub(crate) const ESSENTIAL: usize = 2;

static DO_WP_PAGE: Probe = Probe::ftrace::<DoWpPage>(c_str!("do_wp_page"));
static WP_PAGE_COPY: Probe = Probe::ftrace::<WpPageCopy>(c_str!("wp_page_copy"));
static DO_HUGE_PMD_WP_PAGE: Probe = Probe::ftrace::<DoHugePmdWpPage>(c_str!("do_huge_pmd_wp_page"));
/// Concurrent forks beyond this many are counted in `missed`, not `forks`.
const FORK_MAXACTIVE: i32 = 64;
static DUP_MMAP: Probe = Probe::kretprobe::<DupMmap>(c_str!("dup_mmap"), FORK_MAXACTIVE);

/// Counts `event` for the process running the probed function.
fn record(event: Event) {
    let me = task::Current::get();
    TABLE.record(me.tgid, &me.comm, event);
}

/// Read-only view of the `struct vm_fault` a fault handler was called with.
struct Fault(*const bindings::vm_fault);

impl Fault {
    /// # Safety
    ///
    /// `regs` must be the registers at the entry of a function whose first
    /// parameter is a valid `struct vm_fault *` (true for all three fault
    /// functions probed here in 6.12), and the result must not outlive the
    /// probe handler.
    unsafe fn from_entry(regs: &Regs<'_>) -> Self {
        Self(regs.arg0() as *const bindings::vm_fault)
    }

    /// The fault is a GUP "unshare" request, not a write.
    fn is_unshare(&self) -> bool {
        // SAFETY: The pointer is valid for the handler's duration (see `from_entry`).
        let flags = unsafe { (*self.0).flags };
        flags & bindings::fault_flag_FAULT_FLAG_UNSHARE != 0
    }

    // LAB TODO 1: add `fn has_page(&self) -> bool`, true when the fault
    // has a normal source page. `do_wp_page` stores it in `vmf->page`
    // (`(*self.0).page`, a `*mut bindings::page`); it stays NULL when the
    // PTE maps the shared zero page (see `vm_normal_page` in mm/memory.c).
    // Read it like `is_unshare` reads `flags`, with a `// SAFETY:` comment.

    /// The faulting VMA's flags.
    fn vm_flags(&self) -> u64 {
        // SAFETY: As in `is_unshare`; `vma` is valid while the fault holds
        // the VMA or mmap lock, and `vm_flags` is a plain integer in a union
        // whose members all have that type.
        unsafe { (*(*self.0).__bindgen_anon_1.vma).__bindgen_anon_2.vm_flags as u64 }
    }
}

struct DoWpPage;

impl EntryHandler for DoWpPage {
    fn probe() -> &'static Probe {
        &DO_WP_PAGE
    }

    fn entry(regs: &Regs<'_>) {
        // SAFETY: `do_wp_page(struct vm_fault *vmf)`.
        let fault = unsafe { Fault::from_entry(regs) };
        if fault.is_unshare() {
            return;
        }
        record(Event::WpFault);
        if fault.vm_flags() & u64::from(bindings::VM_SHARED | bindings::VM_MAYSHARE) != 0 {
            record(Event::WpShared);
        }
    }
}

struct WpPageCopy;

impl EntryHandler for WpPageCopy {
    fn probe() -> &'static Probe {
        &WP_PAGE_COPY
    }

    fn entry(regs: &Regs<'_>) {
        // SAFETY: `wp_page_copy(struct vm_fault *vmf)`.
        let fault = unsafe { Fault::from_entry(regs) };
        // LAB TODO 2: not every `wp_page_copy` call copies a page. Classify
        // the hit and record exactly one of:
        //   Event::CowUnshare  a GUP unshare fault (`fault.is_unshare()`);
        //   Event::CowCopy     a source page exists (TODO 1), or the VMA is
        //                      `VM_PFNMAP | VM_MIXEDMAP` (raw PFN, copied too);
        //   Event::CowZero     otherwise: a write to the shared zero page gets
        //                      a fresh zeroed page (`vmf_anon_prepare` +
        //                      `folio_prealloc(..., true)` in `wp_page_copy`).
        // `fault.vm_flags()` returns the VMA flags; the constants are
        // `bindings::VM_PFNMAP` and `bindings::VM_MIXEDMAP` (u32: use
        // `u64::from`). Until then every hit is counted as a copy.
        let _ = fault;
        record(Event::CowCopy);
    }
}

struct DoHugePmdWpPage;

impl EntryHandler for DoHugePmdWpPage {
    fn probe() -> &'static Probe {
        &DO_HUGE_PMD_WP_PAGE
    }

    fn entry(regs: &Regs<'_>) {
        // SAFETY: `do_huge_pmd_wp_page(struct vm_fault *vmf)`.
        let fault = unsafe { Fault::from_entry(regs) };
        // LAB TODO 3: a write to a write-protected huge PMD enters here
        // (mm/huge_memory.c) before it is reused whole or split by
        // `__split_huge_pmd` and retried at 4 KiB level. Record
        // Event::ThpWpFault for write faults, not for GUP unshare faults
        // (look at how `DoWpPage::entry` skips them).
        let _ = fault;
    }
}

/// Monotonic nanoseconds, safe in probe context.
fn now_ns() -> u64 {
    // SAFETY: `ktime_get_mono_fast_ns` has no preconditions and is NMI-safe.
    unsafe { bindings::ktime_get_mono_fast_ns() }
}

struct DupMmap;

impl ReturnHandler for DupMmap {
    type Data = u64;

    fn probe() -> &'static Probe {
        &DUP_MMAP
    }

    fn entry(_regs: &Regs<'_>) -> Option<u64> {
        Some(now_ns())
    }

    fn ret(start_ns: u64, regs: &Regs<'_>) {
        // `dup_mmap` returns 0 or a negative errno; failed forks copy nothing.
        if regs.return_int() != 0 {
            return;
        }
        let ns = now_ns().saturating_sub(start_ns);
        FORKS.inc();
        FORK_NS.add(ns);
        FORK_LATENCY.record(ns / 1000);
    }
}

/// Zeroes every counter, row and histogram bucket.
pub(crate) fn reset_all() {
    TABLE.reset();
    FORKS.reset();
    FORK_NS.reset();
    FORK_LATENCY.reset();
}
