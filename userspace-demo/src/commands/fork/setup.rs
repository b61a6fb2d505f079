// SPDX-License-Identifier: GPL-2.0
//! Before the fork: check the flags, touch the heap, learn how THP backs it,
//! and so the shape of the writes the model predicts for.

use crate::cli::{ForkArgs, OnOff};
use crate::error::{Error, Result};
use crate::procfs::cowstat::Cowstat;
use crate::procfs::meminfo;
use crate::procfs::pagemap;
use crate::procfs::smaps::{self, SmapsRange};
use crate::report::ThpReport;
use crate::units::format_bytes;
use crate::workload::{hpage_pmd_size, page_order, page_size, pin_to_current_cpu, thp_mode, Heap};

use super::model::{thp_use, Mode, Shape};

/// A touched heap ready to fork, and what is known about it.
pub(super) struct Setup {
    /// Base page size.
    pub ps: u64,
    pub heap_bytes: u64,
    pub heap_pages: u64,
    /// K, the pages to write.
    pub k: u64,
    pub mode: Mode,
    pub cs: Cowstat,
    /// The module's files are there.
    pub loaded: bool,
    /// CPU the run is pinned to.
    pub cpu: u32,
    pub heap: Heap,
    /// The K page indexes, in write order.
    pub order: Vec<u64>,
    pub smaps_before_fork: Option<SmapsRange>,
    /// PMD size and pages per PMD.
    pub pmd: u64,
    pub ppr: u64,
    pub thp: ThpReport,
    pub shape: Shape,
    /// Facts and caveats for the report.
    pub notes: Vec<String>,
}

/// Number of pages to write for the flags, validated against the heap.
pub fn pages_to_write(a: &ForkArgs, heap_pages: u64) -> Result<u64> {
    match (a.pages, a.write) {
        (Some(n), _) => {
            if n == 0 || n > heap_pages {
                return Err(Error::InvalidValue {
                    flag: "--pages",
                    value: n.to_string(),
                    expected: format!(
                        "expected 1 to {heap_pages} (the heap has {heap_pages} pages; \
                         raise --heap for more)"
                    ),
                });
            }
            Ok(n)
        }
        (None, f) => {
            let f = f.unwrap_or(0.25);
            Ok(((heap_pages as f64 * f).round() as u64).clamp(1, heap_pages))
        }
    }
}

/// Checks the flags and prepares the heap.
pub(super) fn setup(a: &ForkArgs) -> Result<Setup> {
    let ps = page_size();
    let heap_bytes = a.heap.div_ceil(ps) * ps;
    if heap_bytes == 0 {
        return Err(Error::InvalidValue {
            flag: "--heap",
            value: a.heap.to_string(),
            expected: "expected a size of at least one page, like 4K or 64M".into(),
        });
    }
    let heap_pages = heap_bytes / ps;
    let k = pages_to_write(a, heap_pages)?;
    let avail = meminfo::mem_available()?;
    if heap_bytes > avail {
        return Err(Error::HeapTooLarge {
            heap: format_bytes(heap_bytes),
            available: format_bytes(avail),
        });
    }
    let mode = Mode::from_args(a.writer, a.write_after_exit);
    let cs = Cowstat::locate();
    let loaded = cs.is_loaded();
    let mut notes = Vec::new();
    if !loaded {
        notes.push(
            "cowstat module not loaded: showing smaps/pagemap figures only \
             (load it with insmod cowstat.ko)"
                .to_string(),
        );
    }

    // Pin before touching memory: see pin_to_current_cpu for the LRU-batch reason.
    let cpu = pin_to_current_cpu()?;
    let thp_req = a.thp == OnOff::On;
    let mut heap = Heap::new(heap_bytes, thp_req)?;
    heap.touch_all(false);
    let order = page_order(a.pattern, k, heap_pages, a.seed);

    let smaps_before_fork = match smaps::read_range(None, heap.addr(), heap.end()) {
        Ok(s) => Some(s),
        Err(e) => {
            notes.push(format!(
                "smaps unavailable ({e}): smaps cross-checks skipped"
            ));
            None
        }
    };
    if let Err(e) = pagemap::read_range(None, heap.addr(), heap.end(), ps) {
        notes.push(format!(
            "pagemap unavailable ({e}): exclusive-page cross-check skipped"
        ));
    }

    let pmd = hpage_pmd_size();
    let ppr = (pmd / ps).max(1);
    let huge_regions = if thp_req { heap_pages / ppr } else { 0 };
    let anon_huge = smaps_before_fork.map_or(0, |s| s.anon_huge_kb);
    let used = thp_use(thp_req, anon_huge, huge_regions, pmd);
    let shape = Shape::of(k, &order, used, ppr, huge_regions);
    let thp = ThpReport {
        requested: thp_req,
        system_mode: thp_mode(),
        madvise_ok: heap.advice_ok,
        pmd_size: pmd,
        huge_regions,
        anon_huge_kb_before: anon_huge,
        used: used.to_string(),
        regions_touched: shape.regions,
    };
    // khugepaged (every 10 s by default) may collapse a region the writer
    // rewrote completely back into a huge page during the write window, and
    // smaps would then show fewer splits than happened. Measured on Debian's
    // 7.3 kernel with a 100 ms scan interval: 3 to 8 of 9 regions collapsed.
    if thp_req && used != "unavailable" {
        notes.push(match heap.keep_khugepaged_away() {
            Ok(()) => "khugepaged kept off the heap after it was touched \
                       (MADV_NOHUGEPAGE): huge pages stay until a write splits them"
                .to_string(),
            Err(e) => format!(
                "could not keep khugepaged off the heap ({e}): it may collapse \
                 rewritten regions during the writes, and smaps then shows fewer splits"
            ),
        });
    }
    match used {
        "unavailable" => notes.push(format!(
            "THP requested but the heap has AnonHugePages 0 kB (system THP mode: {}): \
             huge pages were not used, expectations are for {} pages",
            thp.system_mode.as_deref().unwrap_or("not compiled in"),
            format_bytes(ps)
        )),
        "partial" => notes.push(format!(
            "THP only partly used (AnonHugePages {anon_huge} kB of {} kB): \
             huge-page expectations not checked",
            huge_regions * pmd / 1024
        )),
        _ => {}
    }
    Ok(Setup {
        ps,
        heap_bytes,
        heap_pages,
        k,
        mode,
        cs,
        loaded,
        cpu,
        heap,
        order,
        smaps_before_fork,
        pmd,
        ppr,
        thp,
        shape,
        notes,
    })
}
