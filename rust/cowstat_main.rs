// SPDX-License-Identifier: GPL-2.0

//! cowstat: exact copy-on-write and fork counters, globally and per process.
//!
//! Loading the module hooks the points where the kernel commits to a COW
//! outcome (rust/hooks.rs has the table) and creates `/proc/cowstat/`
//! (format: docs/proc-interface.md):
//!
//! ```text
//! # insmod cowstat.ko
//! # cat /proc/cowstat/stats          # global counters, vmstat style
//! wp_faults 4203
//! cow_copies 4107
//! ...
//! # cat /proc/cowstat/procs          # one row per process
//! # cat /proc/cowstat/probes         # what is hooked and what it counts
//! # cat /proc/cowstat/fork_latency   # log2 histogram of fork copy time
//! # echo 0 > /proc/cowstat/stats     # reset everything
//! # rmmod cowstat
//! ```
//!
//! One source builds for the project's 6.12 kernel and for Debian 13's
//! stock 7.x kernel: every kernel facility the Rust kernel crate lacks goes
//! through rust/glue.c, compiled with the target kernel's headers.
//!
//! If a required hook point is missing, loading fails with `ENOENT` and one
//! dmesg line naming the function and the kernel version. Optional hooks
//! that are missing show as `missing` in `probes`; their counters stay 0.
//!
//! # Why the callbacks are sound
//!
//! - **Where they run.** An entry callback (rust/ftrace.rs) runs at the
//!   entry of the hooked function, in that function's context: a page
//!   fault (process context, `mmap_lock` or the per-VMA lock held, and for
//!   the `ptep_*`/`pmdp_*` hooks the page-table spinlock), `fork`
//!   (`wake_up_new_task`) or the reaper (`release_task`). None of the
//!   hooked functions is called from hard IRQ or NMI context. The
//!   `dup_mmap` return handler (rust/kretprobe.rs) runs in kprobe context.
//! - **Preemption and recursion.** The ftrace ops does not set
//!   `FTRACE_OPS_FL_RECURSION`, so ftrace calls its callback directly, in
//!   the state the hooked function was entered in; some are entered
//!   preemptible (`wake_up_new_task`, `release_task`,
//!   `do_huge_pmd_wp_page`, `__split_huge_pmd`). The callback (rust/glue.c,
//!   `cowstat_ftrace_call`) therefore takes ftrace's recursion lock itself,
//!   `ftrace_test_recursion_trylock`, before any handler runs: a re-entry
//!   on the same CPU in the same context is dropped, not run, and
//!   preemption stays off until the handler returns. kprobes guard the
//!   return handler the same way (a nested hit counts as `nmissed`).
//!   Preemption off is also the RCU read side that a reset waits for
//!   (rust/table.rs: bank switch, then `synchronize_rcu`). None of the
//!   hooked functions runs where RCU is not watching (idle or entry code).
//! - **What they may call.** Atomics on the module's static memory
//!   (counters, table slots, the exited ring), and the `notrace` accessors
//!   of rust/glue.c, which read fields of `current` or of the structs that
//!   the hook's `# Safety` contract names ([`ftrace::EntryHook`]). Never a
//!   function that sleeps, allocates, faults or takes a sleeping lock. One
//!   spinlock: `release_task`'s hook takes the retire seqlock's writer
//!   side, in process context, never nested and never from an interrupt.
//! - **What they may touch.** Only static module memory and the arguments
//!   the contract names, valid for the call. Unloading removes `/proc`
//!   first (waiting for open readers), then detaches the return probe and
//!   the ftrace ops, each of which waits for handlers in flight, before
//!   the module's text and data go. If ftrace refuses to detach (it has
//!   shut itself down after a bug, and no longer calls out), the ops is
//!   leaked with a WARN rather than freed under it.

use kernel::prelude::*;

mod callers;
mod counter;
mod event;
mod exited;
mod files;
mod ftrace;
mod glue;
mod histogram;
mod hooks;
mod kretprobe;
mod pidns;
mod procfs;
mod table;
mod task;
mod unshare;

use ftrace::Hooks;
use kretprobe::ReturnProbe;
use procfs::ProcDir;

// The `module!` keys differ between kernel crates: 6.12 takes `author`,
// 6.13+ `authors` (Kbuild sets the cfg from the kernel version).
#[cfg(not(cowstat_module_authors))]
module! {
    type: CowStat,
    name: "cowstat",
    author: "cowstat developers",
    description: "Exact copy-on-write and fork counters in /proc/cowstat",
    license: "GPL",
}

#[cfg(cowstat_module_authors)]
module! {
    type: CowStat,
    name: "cowstat",
    authors: ["cowstat developers"],
    description: "Exact copy-on-write and fork counters in /proc/cowstat",
    license: "GPL",
}

struct CowStat {
    // Field order is drop order: remove the /proc files (waiting for
    // readers) first, then detach the hooks (waiting for running callbacks).
    _dir: ProcDir,
    _fork_probe: Option<ReturnProbe>,
    _hooks: Hooks<hooks::EntryHooks>,
    // Last: drops the table's namespace references once no hook can run.
    _table: TableRefs,
}

/// Releases the process table's pid namespace references on unload.
///
/// # Invariants
///
/// Dropped only after every hook that can touch the table is detached
/// (the fields before it in [`CowStat`]).
struct TableRefs;

impl Drop for TableRefs {
    fn drop(&mut self) {
        hooks::TABLE.release_all();
    }
}

impl kernel::Module for CowStat {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // Declared first, so it is dropped last on every early return too.
        let table_refs = TableRefs;
        // Each hook's per-CPU hit counter is its position in the table.
        for (i, hook) in hooks::ENTRY_HOOKS.iter().enumerate() {
            if (hook.status)().index() as usize != i {
                pr_err!("hook table out of order at {}: not loading\n", i);
                return Err(EINVAL);
            }
        }
        let attached = hooks::attach_all(kernel_release())?;
        let fork_probe = match ReturnProbe::attach::<hooks::DupMmap>() {
            Ok(p) => p,
            Err(e) => {
                pr_warn!(
                    "Cannot probe dup_mmap ({:?}); fork latency stays empty\n",
                    e
                );
                None
            }
        };
        hooks::DUP_MMAP_STATUS.set_active(fork_probe.is_some());
        let dir = ProcDir::new(c"cowstat").inspect_err(|_| {
            pr_err!("Cannot create /proc/cowstat (already exists, or out of memory)\n")
        })?;
        pr_info!(
            "Loaded: {} of {} hooks attached, /proc/cowstat ready\n",
            hooks::ENTRY_HOOKS
                .iter()
                .filter(|h| (h.status)().state_name() == "active")
                .count()
                + usize::from(fork_probe.is_some()),
            hooks::ENTRY_HOOKS.len() + 1
        );
        Ok(CowStat {
            _dir: dir,
            _fork_probe: fork_probe,
            _hooks: attached,
            _table: table_refs,
        })
    }
}

impl Drop for CowStat {
    fn drop(&mut self) {
        hooks::DUP_MMAP_STATUS.set_active(false);
        pr_info!("Unloading\n");
    }
}

/// `uname -r` of the running kernel, for error messages.
fn kernel_release() -> &'static str {
    // SAFETY: `init_utsname()` is the static initial UTS namespace's name,
    // whose `release` is a NUL-terminated array fixed at boot.
    let release = unsafe { core::ffi::CStr::from_ptr(glue::cowstat_kernel_release()) };
    release.to_str().unwrap_or("?")
}
