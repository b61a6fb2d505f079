// SPDX-License-Identifier: GPL-2.0

//! cowstat: exact copy-on-write and fork counters, globally and per process.
//!
//! Loading the module attaches ftrace callbacks to the 6.12 COW path
//! (`do_wp_page`, `wp_page_copy`, `do_huge_pmd_wp_page`) and a kretprobe to
//! `dup_mmap`, and creates `/proc/cowstat/` (format:
//! docs/proc-interface.md):
//!
//! ```text
//! # insmod cowstat.ko
//! # cat /proc/cowstat/stats          # global counters, vmstat style
//! wp_faults 4203
//! cow_copies 4107
//! ...
//! # cat /proc/cowstat/procs          # one row per process
//! # cat /proc/cowstat/probes         # which hooks are attached
//! # cat /proc/cowstat/fork_latency   # log2 histogram of fork copy time
//! # echo 0 > /proc/cowstat/stats     # reset everything
//! # rmmod cowstat
//! ```
//!
//! If `do_wp_page` or `wp_page_copy` cannot be probed (inlined away by the
//! compiler), loading fails with `ENOENT` and dmesg names the function. The
//! other hooks are optional: if missing they show as `missing` in `probes`
//! and their counters stay 0.

use kernel::{c_str, prelude::*};

mod counter;
mod files;
mod histogram;
mod hooks;
mod probe;
mod procfs;
mod table;
mod task;

use probe::Registration;
use procfs::ProcDir;

module! {
    type: CowStat,
    name: "cowstat",
    author: "cowstat developers",
    description: "Exact copy-on-write and fork counters in /proc/cowstat",
    license: "GPL",
}

struct CowStat {
    // Field order is drop order: remove the /proc files (waiting for readers)
    // first, then detach the probes (waiting for running handlers). Both only
    // touch statics, so either order is memory-safe; this one means no reader
    // ever sees a probe half-detached.
    _dir: ProcDir,
    _probes: KVec<Registration>,
}

impl kernel::Module for CowStat {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if let Err(seen) = task::check_layout() {
            pr_err!(
                "Rust bindings disagree with the kernel on task_struct layout (read tgid {}); rebuild the kernel with scripts/kernel/cowstat.config\n",
                seen
            );
            return Err(EINVAL);
        }
        let mut probes = KVec::with_capacity(hooks::PROBES.len(), GFP_KERNEL)?;
        for (i, probe) in hooks::PROBES.iter().enumerate() {
            let name = probe.symbol();
            match probe.register() {
                Ok(registration) => probes.push(registration, GFP_KERNEL)?,
                Err(e) if i < hooks::ESSENTIAL => {
                    pr_err!(
                        "Cannot probe {} ({:?}): this kernel inlined or lacks it; not loading\n",
                        name,
                        e
                    );
                    return Err(e);
                }
                Err(e) => pr_warn!("Cannot probe {} ({:?}); its counters stay 0\n", name, e),
            }
        }
        let dir = ProcDir::new(c_str!("cowstat")).inspect_err(|_| {
            pr_err!("Cannot create /proc/cowstat (already exists, or out of memory)\n")
        })?;
        dir.create_file::<files::Stats>()?;
        dir.create_file::<files::Procs>()?;
        dir.create_file::<files::Probes>()?;
        dir.create_file::<files::ForkLatency>()?;
        pr_info!(
            "Loaded: {} of {} probes attached, /proc/cowstat ready\n",
            probes.len(),
            hooks::PROBES.len()
        );
        Ok(CowStat {
            _dir: dir,
            _probes: probes,
        })
    }
}

impl Drop for CowStat {
    fn drop(&mut self) {
        pr_info!("Unloading\n");
    }
}
