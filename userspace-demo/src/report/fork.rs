// SPDX-License-Identifier: GPL-2.0
//! `cow-demo fork`: the report (stable JSON field names).

use serde::Serialize;

use crate::counter::Counter;
use crate::procfs::cowstat::Counts;
use crate::procfs::pagemap::PagemapCounts;
use crate::procfs::smaps::SmapsRange;

/// Expected counter values of one process; `None` = not predictable here, not checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// Expected write faults.
    pub wp_faults: Option<u64>,
    /// Expected copies.
    pub cow_copies: Option<u64>,
    /// Expected zero-page breaks.
    pub cow_zero: Option<u64>,
    /// Expected reuses.
    pub wp_reuses: Option<u64>,
    /// Expected huge-PMD write faults.
    pub thp_wp_faults: Option<u64>,
}

impl Expected {
    /// All five known.
    pub fn exact(c: Counts) -> Self {
        Expected {
            wp_faults: Some(c.wp_faults),
            cow_copies: Some(c.cow_copies),
            cow_zero: Some(c.cow_zero),
            wp_reuses: Some(c.wp_reuses),
            thp_wp_faults: Some(c.thp_wp_faults),
        }
    }

    /// The value expected for `c` (`None` also for non-`procs` counters).
    pub fn get(&self, c: Counter) -> Option<u64> {
        match c {
            Counter::WpFaults => self.wp_faults,
            Counter::CowCopies => self.cow_copies,
            Counter::CowZero => self.cow_zero,
            Counter::WpReuses => self.wp_reuses,
            Counter::ThpWpFaults => self.thp_wp_faults,
            _ => None,
        }
    }
}

/// Everything measured about one process of the fork experiment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcReport {
    /// Its pid.
    pub pid: u32,
    /// True if it wrote the K pages.
    pub wrote: bool,
    /// Expected cowstat deltas over the write window.
    pub expected: Expected,
    /// Observed cowstat deltas over the write window (None without the module).
    pub observed: Option<Counts>,
    /// Its whole cowstat row read after the child exited (includes start-up and
    /// measurement overhead outside the window).
    pub row_after_exit: Option<Counts>,
    /// Minor page faults (getrusage) during the write window, if measured.
    pub minor_faults: Option<u64>,
    /// Expected minor faults during the write window.
    pub expected_minor_faults: Option<u64>,
    /// Average ns per page of the first write (the faulting one), if it wrote.
    pub write_ns_per_page: Option<f64>,
    /// Average ns per page of rewriting the same pages (no fault), if it wrote.
    pub rewrite_ns_per_page: Option<f64>,
    /// Heap smaps before the fork (parent only).
    pub smaps_before_fork: Option<SmapsRange>,
    /// Heap smaps after the fork, before any write.
    pub smaps_before_write: Option<SmapsRange>,
    /// Heap smaps after the writes.
    pub smaps_after_write: Option<SmapsRange>,
    /// Heap pagemap counts after the fork, before any write.
    pub pagemap_before_write: Option<PagemapCounts>,
    /// Heap pagemap counts after the writes.
    pub pagemap_after_write: Option<PagemapCounts>,
}

/// THP facts of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ThpReport {
    /// `--thp on`.
    pub requested: bool,
    /// /sys/kernel/mm/transparent_hugepage/enabled selection, e.g. "madvise".
    pub system_mode: Option<String>,
    /// madvise(MADV_HUGEPAGE/NOHUGEPAGE) succeeded.
    pub madvise_ok: bool,
    /// PMD size in bytes.
    pub pmd_size: u64,
    /// Full PMD-sized regions in the heap.
    pub huge_regions: u64,
    /// AnonHugePages of the heap before the fork, kB.
    pub anon_huge_kb_before: u64,
    /// "off", "yes" (every region huge), "partial" or "unavailable".
    pub used: String,
    /// Distinct huge regions containing written pages.
    pub regions_touched: u64,
}

/// One compared value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// e.g. "child.cow_copies" or "child.pagemap_exclusive".
    pub name: String,
    /// Expected value.
    pub expected: u64,
    /// Observed value.
    pub observed: u64,
    /// expected == observed.
    pub ok: bool,
}

/// Output of `cow-demo fork`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ForkReport {
    /// Heap size in bytes.
    pub heap_bytes: u64,
    /// Base page size.
    pub page_size: u64,
    /// Heap pages.
    pub heap_pages: u64,
    /// K, the pages written.
    pub write_pages: u64,
    /// "child", "parent", "both" or "parent-after-exit".
    pub writer: String,
    /// "seq", "stride:N" or "random".
    pub pattern: String,
    /// Seed of the random order.
    pub seed: u64,
    /// CPU the run was pinned to.
    pub cpu: u32,
    /// THP facts.
    pub thp: ThpReport,
    /// /proc/cowstat (or $COWSTAT_PROC) was present.
    pub cowstat_loaded: bool,
    /// Nanoseconds the parent spent in fork().
    pub fork_ns: u64,
    /// Nanoseconds in dup_mmap per cowstat's fork_ns (None without the module).
    pub dup_mmap_ns: Option<u64>,
    /// Average ns of a userspace 4 KiB memcpy between distinct pages.
    pub memcpy_4k_ns: f64,
    /// The parent.
    pub parent: ProcReport,
    /// The child.
    pub child: ProcReport,
    /// Every comparison made.
    pub checks: Vec<Check>,
    /// Facts and caveats worth reading.
    pub notes: Vec<String>,
    /// "OK", "MISMATCH" or "UNVERIFIED".
    pub verdict: String,
    /// Names of failed checks.
    pub mismatches: Vec<String>,
}

#[cfg(test)]
fn counts(k: u64) -> Counts {
    Counts {
        wp_faults: k,
        cow_copies: k,
        ..Default::default()
    }
}

/// A report as a run of the default experiment gives, for rendering tests.
#[cfg(test)]
pub(crate) fn sample() -> ForkReport {
    let sm = SmapsRange {
        vmas: 1,
        rss_kb: 65536,
        shared_dirty_kb: 65536,
        private_dirty_kb: 0,
        anonymous_kb: 65536,
        anon_huge_kb: 0,
    };
    ForkReport {
            heap_bytes: 64 << 20,
            page_size: 4096,
            heap_pages: 16384,
            write_pages: 4096,
            writer: "child".into(),
            pattern: "stride:512".into(),
            seed: 1,
            cpu: 1,
            thp: ThpReport {
                used: "off".into(),
                ..Default::default()
            },
            cowstat_loaded: true,
            fork_ns: 1_234_567,
            dup_mmap_ns: Some(1_100_000),
            memcpy_4k_ns: 306.0,
            parent: ProcReport {
                pid: 4_194_303,
                expected: Expected::exact(Counts::default()),
                observed: Some(Counts::default()),
                row_after_exit: Some(counts(123_456)),
                smaps_before_fork: Some(sm),
                smaps_before_write: Some(sm),
                ..Default::default()
            },
            child: ProcReport {
                pid: 4_194_304,
                wrote: true,
                expected: Expected::exact(counts(4096)),
                observed: Some(counts(4096)),
                row_after_exit: Some(counts(4_123)),
                write_ns_per_page: Some(2512.0),
                rewrite_ns_per_page: Some(130.0),
                smaps_before_write: Some(sm),
                smaps_after_write: Some(SmapsRange {
                    shared_dirty_kb: 49152,
                    private_dirty_kb: 16384,
                    ..sm
                }),
                pagemap_before_write: Some(PagemapCounts {
                    pages: 16384,
                    present: 16384,
                    exclusive: 0,
                }),
                pagemap_after_write: Some(PagemapCounts {
                    pages: 16384,
                    present: 16384,
                    exclusive: 4096,
                }),
                ..Default::default()
            },
            checks: vec![Check {
                name: "child.cow_copies".into(),
                expected: 4096,
                observed: 4096,
                ok: true,
            }],
            notes: vec![
                "cowstat module not loaded: showing smaps/pagemap figures only (load it with insmod cowstat.ko)".into(),
            ],
            verdict: "OK".into(),
            mismatches: vec![],
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::to_json;

    #[test]
    fn fork_json_field_names() {
        let v: serde_json::Value = serde_json::from_str(&to_json(&sample()).unwrap()).unwrap();
        for k in [
            "heap_bytes",
            "page_size",
            "write_pages",
            "writer",
            "pattern",
            "thp",
            "fork_ns",
            "memcpy_4k_ns",
            "parent",
            "child",
            "checks",
            "verdict",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["child"]["observed"]["cow_copies"], 4096);
        assert_eq!(v["child"]["expected"]["wp_reuses"], 0);
        assert_eq!(v["child"]["pagemap_after_write"]["exclusive"], 4096);
        assert_eq!(v["child"]["smaps_after_write"]["private_dirty_kb"], 16384);
    }
}
