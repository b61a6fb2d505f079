// SPDX-License-Identifier: GPL-2.0

//! What cowstat hooks, and which counter each call feeds.
//!
//! Outcomes are counted where the kernel commits to them, not where a
//! function is entered, so bail-outs and retries (a lost PTE race, a memcg
//! charge failure, a userfaultfd write-protect fault handed to userspace)
//! count nothing, and the hook points exist whatever the compiler inlined:
//!
//! | hook (non-static, 6.12 and 7.x) | called from (caller ranges) | counts |
//! |---|---|---|
//! | `do_wp_page` entry | the fault handler | `wp_attempts` |
//! | `ptep_clear_flush` | [`WP_CALLERS`] | `cow_copies`, `cow_zero`, `cow_ksm`, `cow_file`, `cow_unshare` |
//! | `ptep_clear_flush` | [`HUGETLB_CALLERS`] | `hugetlb_copies` |
//! | `ptep_set_access_flags` | [`WP_CALLERS`] | `wp_reuses`, `wp_shared` |
//! | `ptep_set_access_flags` | [`HUGETLB_CALLERS`] | `hugetlb_reuses` |
//! | `set_pte_range` | any (the kernel's own test: a write fault on a private mapping) | `cow_file` (first write to a private file page) |
//! | `do_huge_pmd_wp_page` entry | the fault handler | `thp_wp_attempts` |
//! | `pmdp_set_access_flags` | [`THP_CALLERS`] | `thp_reuses` |
//! | `__split_huge_pmd` | [`THP_CALLERS`] | `thp_splits` |
//! | `split_huge_pmd_locked`, `__split_huge_pmd_locked` | [`THP_CALLERS`] | `thp_splits`, where the functions above them are inlined |
//! | `map_anon_folio_pmd_pf` (7.x only) | [`THP_CALLERS`] | `thp_zero` |
//! | `map_anon_folio_pmd_nopf` (7.x only) | [`THP_CALLERS`] | `thp_zero`, where `_pf` is inlined |
//! | `wake_up_new_task` | `kernel_clone` | `forks` (a child with its own mm) |
//! | `dup_mmap` return | `copy_process` | `fork_ns`, fork latency |
//! | `release_task` | the reaper | ends a process's row (rust/table.rs) |
//!
//! A write fault that ends in a copy or a reuse counts once in `wp_faults`
//! (`thp_wp_faults` for huge PMDs), at the same moment as its outcome.
//!
//! `wp_page_copy` swaps the PTE with `ptep_clear_flush` only after it
//! rechecked, under the page-table lock, that the PTE is the one it faulted
//! on; `wp_page_reuse` makes it writable with `ptep_set_access_flags`. Both
//! run with that lock held, on the PTE they replace, so the handler reads
//! the original PTE and classifies it exactly as `wp_page_copy` does
//! (`is_zero_pfn(pte_pfn(orig_pte))`, see rust/glue.c).

use crate::{
    callers::{Callers, Symbols},
    counter::Counter,
    event::Event,
    ftrace::{Call, EntryHook, HookInfo, HookStatus, HookTable, Hooks, MAX_HOOKS},
    glue,
    histogram::Log2Histogram,
    kretprobe::ReturnHook,
    table::ProcessTable,
    task::{self, Current},
    unshare::UnshareFaults,
};
use core::{
    ffi::{c_int, c_long, c_void, CStr},
    sync::atomic::{AtomicBool, AtomicUsize},
};
use kernel::prelude::*;

/// Per-process (and, summed, global) fault counters.
pub(crate) static TABLE: ProcessTable = ProcessTable::new();
/// Children that got their own address space (fork, not vfork or threads).
pub(crate) static FORKS: Counter = Counter::new();
/// Successful address-space copies (`dup_mmap`); more than `forks` when a
/// fork failed after copying (pids cgroup limit, `alloc_pid`).
pub(crate) static MM_COPIES: Counter = Counter::new();
/// Total nanoseconds spent in successful `dup_mmap` calls.
pub(crate) static FORK_NS: Counter = Counter::new();
/// `dup_mmap` durations in microseconds.
pub(crate) static FORK_LATENCY: Log2Histogram = Log2Histogram::new();
/// Unshare faults in flight, so their copies are told from write copies.
pub(crate) static UNSHARE: UnshareFaults = UnshareFaults::new();

/// The 4 KiB write-protect fault path of `mm/memory.c`: `do_wp_page` and
/// whatever of its helpers the compiler kept out of line.
pub(crate) static WP_CALLERS: Callers<6> = Callers::new([
    c"do_wp_page",
    c"wp_page_copy",
    c"wp_page_reuse",
    c"wp_page_shared",
    c"wp_pfn_shared",
    c"finish_mkwrite_fault",
]);
/// The huge-PMD write fault (`mm/huge_memory.c`; 7.x's
/// `do_huge_zero_wp_pmd` is static, and inlined into it on Debian's kernel).
pub(crate) static THP_CALLERS: Callers<2> =
    Callers::new([c"do_huge_pmd_wp_page", c"do_huge_zero_wp_pmd"]);
/// The hugetlb write fault (`mm/hugetlb.c`).
pub(crate) static HUGETLB_CALLERS: Callers<3> = Callers::new([
    c"hugetlb_wp",
    c"set_huge_ptep_writable",
    c"set_huge_ptep_maybe_writable",
]);
/// Every entry hook, in `/proc/cowstat/probes` order.
pub(crate) struct EntryHooks;

impl HookTable for EntryHooks {
    const HOOKS: &'static [HookInfo] = &ENTRY_HOOKS;

    fn addresses() -> &'static [AtomicUsize; MAX_HOOKS] {
        static ADDRESSES: [AtomicUsize; MAX_HOOKS] = [const { AtomicUsize::new(0) }; MAX_HOOKS];
        &ADDRESSES
    }

    fn claimed() -> &'static AtomicBool {
        static CLAIMED: AtomicBool = AtomicBool::new(false);
        &CLAIMED
    }
}

/// The hooks of [`EntryHooks`]; hook `i` uses per-CPU hit counter `i`.
pub(crate) const ENTRY_HOOKS: [HookInfo; 13] = [
    HookInfo::of::<DoWpPage>(),
    HookInfo::of::<PtepClearFlush>(),
    HookInfo::of::<PtepSetAccessFlags>(),
    HookInfo::of::<SetPteRange>(),
    HookInfo::of::<DoHugePmdWpPage>(),
    HookInfo::of::<PmdpSetAccessFlags>(),
    HookInfo::of::<SplitHugePmd>(),
    HookInfo::of::<WakeUpNewTask>(),
    HookInfo::of::<ReleaseTask>(),
    HookInfo::of::<MapAnonFolioPmdPf>(),
    HookInfo::of::<MapAnonFolioPmdNopf>(),
    HookInfo::of::<SplitHugePmdLocked>(),
    HookInfo::of::<SplitHugePmdLockedInner>(),
];

/// The return probe's state, for `/proc/cowstat/probes`.
pub(crate) static DUP_MMAP_STATUS: HookStatus = HookStatus::new(MAX_HOOKS as u32);

/// Looks up every hooked function and caller in one batch, then attaches
/// the hooks. `ENOENT`, after one dmesg line naming the function and the
/// kernel, if a required one is not a function on this kernel.
pub(crate) fn attach_all(release: &str) -> Result<Hooks<EntryHooks>> {
    let mut symbols = Symbols::new();
    for hook in &ENTRY_HOOKS {
        symbols.push(hook.function)?;
    }
    let wp = WP_CALLERS.request(&mut symbols)?;
    let thp = THP_CALLERS.request(&mut symbols)?;
    let hugetlb = HUGETLB_CALLERS.request(&mut symbols)?;
    symbols.resolve()?;
    if WP_CALLERS.store(&symbols, wp) == 0 {
        pr_err!(
            "do_wp_page is not a function on kernel {}: cannot count copy-on-write here; not loading\n",
            release
        );
        return Err(ENOENT);
    }
    THP_CALLERS.store(&symbols, thp);
    HUGETLB_CALLERS.store(&symbols, hugetlb);
    Hooks::attach(release, &symbols, 0)
}

/// Counts `event`, and the fault it ends, for the running process.
#[inline]
fn record(me: &Current, event: Event) {
    TABLE.record(me, event.fault(), event);
}

/// Counts `event` for the running process if the hooked function was
/// called from the huge-PMD write fault ([`THP_CALLERS`]): the THP hooks'
/// functions have other callers too.
#[inline]
fn record_from_thp_fault(call: &Call, event: Event) {
    if THP_CALLERS.contains(call.caller()) {
        record(&Current::get(), event);
    }
}

/// Declares a hook's status, with its index among the per-CPU hit counters
/// (its position in [`ENTRY_HOOKS`]; checked at load).
macro_rules! hook_status {
    ($index:literal) => {
        fn status() -> &'static HookStatus {
            static STATUS: HookStatus = HookStatus::new($index);
            &STATUS
        }
    };
}

/// `vm_fault_t do_wp_page(struct vm_fault *vmf)`.
pub(crate) struct DoWpPage;

// SAFETY: `entry` reads arg 0 as `struct vm_fault *`, as declared.
unsafe impl EntryHook for DoWpPage {
    const FUNCTION: &'static CStr = c"do_wp_page";
    const REQUIRED: bool = true;
    const COUNTS: &'static str = "wp_attempts";
    hook_status!(0);

    fn entry(call: &Call) {
        // SAFETY: arg 0 is the `struct vm_fault *` of this fault, valid
        // for the call (trait contract).
        let unshare = unsafe { glue::cowstat_vmf_is_unshare(call.arg(0) as *const c_void) };
        // A task handles one fault at a time: whatever unshare fault it had
        // in flight ended without a copy. (Usually none is in flight: then
        // this is one load, and the task is not even looked up.)
        if unshare || UNSHARE.any() {
            let task = task::current_task();
            UNSHARE.end(task);
            if unshare {
                UNSHARE.begin(task);
            }
        }
        if !unshare {
            TABLE.attempt(Event::WpAttempt);
        }
    }
}

/// `pte_t ptep_clear_flush(struct vm_area_struct *vma, unsigned long
/// address, pte_t *ptep)`: `wp_page_copy` and `hugetlb_wp` call it to take
/// down the old PTE right before installing the new page.
pub(crate) struct PtepClearFlush;

// SAFETY: `entry` reads arg 2 as `pte_t *`, as declared, and only when the
// caller is the COW path, which holds the page-table lock on it.
unsafe impl EntryHook for PtepClearFlush {
    const FUNCTION: &'static CStr = c"ptep_clear_flush";
    const REQUIRED: bool = true;
    const COUNTS: &'static str = "cow_* copies, hugetlb_copies";
    hook_status!(1);

    fn entry(call: &Call) {
        let caller = call.caller();
        if WP_CALLERS.contains(caller) {
            // SAFETY: arg 2 is the PTE being replaced; `wp_page_copy` holds
            // its page-table lock, so it still maps the source page.
            let source = unsafe { glue::cowstat_pte_source(call.arg(2) as *const c_void) };
            let me = Current::get();
            // LAB TODO 1: not every page `wp_page_copy` installs is a fork
            // copy. Classify it and record exactly one of:
            //   Event::CowZero     `source == glue::SRC_ZERO`: the PTE maps
            //                      the shared zero page, the new page is
            //                      zero-filled, nothing is copied;
            //   Event::CowUnshare  otherwise, if `UNSHARE.end(me.task)` says
            //                      this task is inside a GUP unshare fault;
            //   Event::CowCopy     `glue::SRC_ANON`: an anonymous page;
            //   Event::CowKsm      `glue::SRC_KSM`: a KSM-merged page;
            //   Event::CowFile     anything else (a private file page).
            // Until then every installed page is counted as a copy.
            let _ = source;
            record(&me, Event::CowCopy);
        } else if HUGETLB_CALLERS.contains(caller) {
            record(&Current::get(), Event::HugetlbCopy);
        }
    }
}

/// `int ptep_set_access_flags(struct vm_area_struct *vma, unsigned long
/// address, pte_t *ptep, pte_t entry, int dirty)`: `wp_page_reuse` calls it
/// to make the faulting PTE writable in place.
pub(crate) struct PtepSetAccessFlags;

// SAFETY: `entry` reads arg 0 as `struct vm_area_struct *`, as declared.
unsafe impl EntryHook for PtepSetAccessFlags {
    const FUNCTION: &'static CStr = c"ptep_set_access_flags";
    const REQUIRED: bool = true;
    const COUNTS: &'static str = "wp_reuses, wp_shared, hugetlb_reuses";
    hook_status!(2);

    fn entry(call: &Call) {
        let caller = call.caller();
        if WP_CALLERS.contains(caller) {
            // LAB TODO 2: `wp_page_reuse` made the page writable in place.
            // On a shared mapping that is Event::WpShared (shared pages are
            // never copied); on a private one it is Event::WpReuse (the page
            // was no longer shared, so no copy was needed). Arg 0 is the
            // VMA: `glue::cowstat_vma_is_shared(call.arg(0) as *const
            // c_void)` tells which, in an `unsafe` block with a `// SAFETY:`
            // comment (the VMA is held by the fault). Until then nothing is
            // counted.
            let _ = call;
        } else if HUGETLB_CALLERS.contains(caller) {
            record(&Current::get(), Event::HugetlbReuse);
        }
    }
}

/// `void set_pte_range(struct vm_fault *vmf, struct folio *, struct page *,
/// unsigned int nr, unsigned long addr)`: `finish_fault` maps the page a
/// file fault prepared, after it rechecked the PTE under its lock. For a
/// write fault on a private mapping that page is `do_cow_fault`'s new
/// anonymous copy: the test is the kernel's own (`set_pte_range` then adds
/// the anonymous rmap), so no caller filter is needed, and the hook stays
/// off the anonymous fault paths, which never call it. (Fault-around,
/// its other caller, serves read faults only.)
pub(crate) struct SetPteRange;

// SAFETY: `entry` reads arg 0 as `struct vm_fault *`, as declared.
unsafe impl EntryHook for SetPteRange {
    const FUNCTION: &'static CStr = c"set_pte_range";
    const REQUIRED: bool = false;
    const COUNTS: &'static str = "cow_file (first write)";
    hook_status!(3);

    fn entry(call: &Call) {
        // SAFETY: arg 0 is this fault's `struct vm_fault *`, valid (with its
        // VMA) for the call.
        if unsafe { glue::cowstat_vmf_is_private_write(call.arg(0) as *const c_void) } {
            // Not a write-protect fault: the page was not mapped before.
            TABLE.record(&Current::get(), None, Event::CowFile);
        }
    }
}

/// `vm_fault_t do_huge_pmd_wp_page(struct vm_fault *vmf)`.
pub(crate) struct DoHugePmdWpPage;

// SAFETY: `entry` reads arg 0 as `struct vm_fault *`, as declared.
unsafe impl EntryHook for DoHugePmdWpPage {
    const FUNCTION: &'static CStr = c"do_huge_pmd_wp_page";
    const REQUIRED: bool = false;
    const COUNTS: &'static str = "thp_wp_attempts";
    hook_status!(4);

    fn entry(call: &Call) {
        // SAFETY: arg 0 is this fault's `struct vm_fault *`.
        if !unsafe { glue::cowstat_vmf_is_unshare(call.arg(0) as *const c_void) } {
            TABLE.attempt(Event::ThpWpAttempt);
        }
    }
}

/// `int pmdp_set_access_flags(struct vm_area_struct *, unsigned long,
/// pmd_t *, pmd_t, int)`: `do_huge_pmd_wp_page` reuses the huge page.
pub(crate) struct PmdpSetAccessFlags;

// SAFETY: `entry` reads no argument.
unsafe impl EntryHook for PmdpSetAccessFlags {
    const FUNCTION: &'static CStr = c"pmdp_set_access_flags";
    const REQUIRED: bool = false;
    const COUNTS: &'static str = "thp_reuses";
    hook_status!(5);

    fn entry(call: &Call) {
        // LAB TODO 3: `do_huge_pmd_wp_page` reuses a huge page that only
        // this process maps by making its PMD writable in place with
        // `pmdp_set_access_flags` (mm/huge_memory.c, label `reuse:`). Other
        // callers set access flags for other reasons: count the call as
        // Event::ThpReuse only when `THP_CALLERS.contains(call.caller())`
        // (`record_from_thp_fault` does exactly that).
        let _ = call;
    }
}

/// `void __split_huge_pmd(struct vm_area_struct *, pmd_t *, unsigned long,
/// bool freeze)`: `do_huge_pmd_wp_page` falls back to 4 KiB pages.
pub(crate) struct SplitHugePmd;

// SAFETY: `entry` reads no argument.
unsafe impl EntryHook for SplitHugePmd {
    const FUNCTION: &'static CStr = c"__split_huge_pmd";
    const REQUIRED: bool = false;
    const COUNTS: &'static str = "thp_splits";
    hook_status!(6);

    fn entry(call: &Call) {
        record_from_thp_fault(call, Event::ThpSplit);
    }
}

/// `static void map_anon_folio_pmd_pf(struct folio *, pmd_t *, struct
/// vm_area_struct *, unsigned long haddr)` (7.x; out of line in Debian's
/// build): from the huge-PMD write fault, `do_huge_zero_wp_pmd` maps the
/// new huge page that replaces the huge zero page. Not in 6.12, which
/// splits the huge zero PMD instead.
pub(crate) struct MapAnonFolioPmdPf;

// SAFETY: `entry` reads no argument.
unsafe impl EntryHook for MapAnonFolioPmdPf {
    const FUNCTION: &'static CStr = c"map_anon_folio_pmd_pf";
    const REQUIRED: bool = false;
    const COUNTS: &'static str = "thp_zero (7.x)";
    hook_status!(9);

    fn entry(call: &Call) {
        // Its other caller, the first-touch THP fault, is not a write
        // fault on a present PMD.
        record_from_thp_fault(call, Event::ThpZero);
    }
}

/// `void map_anon_folio_pmd_nopf(struct folio *, pmd_t *, struct
/// vm_area_struct *, unsigned long haddr)` (7.x): what
/// [`MapAnonFolioPmdPf`] calls. `map_anon_folio_pmd_pf` is static: where
/// the compiler inlined it, this call comes from the huge-PMD write fault
/// itself and counts `thp_zero` instead. Where it did not, the caller is
/// `map_anon_folio_pmd_pf`, not in [`THP_CALLERS`], so nothing counts
/// twice.
pub(crate) struct MapAnonFolioPmdNopf;

// SAFETY: `entry` reads no argument.
unsafe impl EntryHook for MapAnonFolioPmdNopf {
    const FUNCTION: &'static CStr = c"map_anon_folio_pmd_nopf";
    const REQUIRED: bool = false;
    const COUNTS: &'static str = "thp_zero (7.x, _pf inlined)";
    hook_status!(10);

    fn entry(call: &Call) {
        record_from_thp_fault(call, Event::ThpZero);
    }
}

/// `void split_huge_pmd_locked(struct vm_area_struct *, unsigned long,
/// pmd_t *, bool freeze, struct folio *)`: what [`SplitHugePmd`] calls.
/// The split chain is `__split_huge_pmd` → `split_huge_pmd_locked` →
/// static `__split_huge_pmd_locked`; each of the three counts only when
/// called from the huge-PMD write fault itself. So exactly one counts, the
/// first one the compiler kept out of line: clang (the debug kernel)
/// inlines the first two into `do_huge_pmd_wp_page`, gcc keeps them.
pub(crate) struct SplitHugePmdLocked;

// SAFETY: `entry` reads no argument.
unsafe impl EntryHook for SplitHugePmdLocked {
    const FUNCTION: &'static CStr = c"split_huge_pmd_locked";
    const REQUIRED: bool = false;
    const COUNTS: &'static str = "thp_splits (callers inlined)";
    hook_status!(11);

    fn entry(call: &Call) {
        record_from_thp_fault(call, Event::ThpSplit);
    }
}

/// `static void __split_huge_pmd_locked(struct vm_area_struct *, pmd_t *,
/// unsigned long haddr, bool freeze)`: the last of the split chain (see
/// [`SplitHugePmdLocked`]); inlined into its caller on gcc builds.
pub(crate) struct SplitHugePmdLockedInner;

// SAFETY: `entry` reads no argument.
unsafe impl EntryHook for SplitHugePmdLockedInner {
    const FUNCTION: &'static CStr = c"__split_huge_pmd_locked";
    const REQUIRED: bool = false;
    const COUNTS: &'static str = "thp_splits (callers inlined)";
    hook_status!(12);

    fn entry(call: &Call) {
        record_from_thp_fault(call, Event::ThpSplit);
    }
}

/// `void wake_up_new_task(struct task_struct *p)`: a fork or clone
/// succeeded and the child is about to run.
pub(crate) struct WakeUpNewTask;

// SAFETY: `entry` reads arg 0 as `struct task_struct *`, as declared.
unsafe impl EntryHook for WakeUpNewTask {
    const FUNCTION: &'static CStr = c"wake_up_new_task";
    const REQUIRED: bool = false;
    const COUNTS: &'static str = "forks";
    hook_status!(7);

    fn entry(call: &Call) {
        // SAFETY: arg 0 is the new task, fully set up and not yet running.
        if unsafe { glue::cowstat_task_has_new_mm(call.arg(0) as *const c_void) } {
            FORKS.inc();
        }
    }
}

/// `void release_task(struct task_struct *p)`: a task is reaped; for the
/// group leader, the whole process is gone.
pub(crate) struct ReleaseTask;

// SAFETY: `entry` reads arg 0 as `struct task_struct *`, as declared.
unsafe impl EntryHook for ReleaseTask {
    const FUNCTION: &'static CStr = c"release_task";
    const REQUIRED: bool = true;
    const COUNTS: &'static str = "frees ended processes' rows";
    hook_status!(8);

    fn entry(call: &Call) {
        // SAFETY: arg 0 is the task being reaped, valid for the call.
        let tgid = unsafe { glue::cowstat_released_process(call.arg(0) as *const c_void) };
        if tgid > 0 {
            TABLE.release(tgid);
        }
    }
}

/// `static int dup_mmap(struct mm_struct *mm, struct mm_struct *oldmm)`.
pub(crate) struct DupMmap;

// SAFETY: `ret` reads the return value as the `int` it is declared as.
unsafe impl ReturnHook for DupMmap {
    const FUNCTION: &'static CStr = c"dup_mmap";
    const COUNTS: &'static str = "fork_ns, fork_latency";
    const MAX_ACTIVE: c_int = 64;

    fn ret(elapsed_ns: u64, retval: c_long) {
        DUP_MMAP_STATUS.count_hit();
        // 0 or a negative errno; failed copies cost time but copy nothing.
        if retval as c_int != 0 {
            return;
        }
        MM_COPIES.inc();
        FORK_NS.add(elapsed_ns);
        FORK_LATENCY.record(elapsed_ns / 1000);
    }
}

/// Zeroes every counter, row and histogram bucket. Sleeps.
pub(crate) fn reset_all() {
    TABLE.reset();
    FORKS.reset();
    MM_COPIES.reset();
    FORK_NS.reset();
    FORK_LATENCY.reset();
}
