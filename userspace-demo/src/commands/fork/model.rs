// SPDX-License-Identifier: GPL-2.0
//! The pure model of `cow-demo fork`: what writing K pages after a fork must
//! make the kernel count, for each writer and page shape. No I/O here.

use crate::cli::Writer;
use crate::procfs::cowstat::Counts;
use crate::report::Expected;
use crate::workload::{distinct_regions, full_regions};

/// Who writes, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The child writes K pages; the parent idles.
    Child,
    /// The parent writes K pages while the child idles.
    Parent,
    /// The child writes, then (child still alive) the parent writes the same pages.
    Both,
    /// The child exits without writing, then the parent writes.
    AfterExit,
}

impl Mode {
    /// From the flags.
    pub fn from_args(writer: Writer, write_after_exit: bool) -> Mode {
        match (write_after_exit, writer) {
            (true, _) => Mode::AfterExit,
            (false, Writer::Child) => Mode::Child,
            (false, Writer::Parent) => Mode::Parent,
            (false, Writer::Both) => Mode::Both,
        }
    }

    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Child => "child",
            Mode::Parent => "parent",
            Mode::Both => "both",
            Mode::AfterExit => "parent-after-exit",
        }
    }

    /// The child writes the K pages.
    pub fn child_writes(self) -> bool {
        matches!(self, Mode::Child | Mode::Both)
    }

    /// The parent writes the K pages.
    pub fn parent_writes(self) -> bool {
        matches!(self, Mode::Parent | Mode::Both | Mode::AfterExit)
    }
}

/// What the kernel must do for the written pages, as counted by the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// K, pages written.
    pub k: u64,
    /// Written pages that lie in PMD-mapped (huge) regions; 0 without THP.
    pub k_huge: u64,
    /// Distinct huge regions written.
    pub regions: u64,
    /// Written pages in huge regions that the child wrote completely (those the
    /// parent later reuses as a whole PMD in `both` mode).
    pub full_region_pages: u64,
    /// Number of those completely written huge regions.
    pub full_regions: u64,
    /// THP was used for some but not all regions: huge-page expectations unknown.
    pub thp_partial: bool,
}

/// How far THP backs the heap: "off" (not asked for), "unavailable" (no
/// huge page at all), "yes" (every huge region) or "partial".
pub fn thp_use(requested: bool, anon_huge_kb: u64, huge_regions: u64, pmd: u64) -> &'static str {
    if !requested {
        "off"
    } else if anon_huge_kb == 0 {
        "unavailable"
    } else if anon_huge_kb >= huge_regions * pmd / 1024 {
        "yes"
    } else {
        "partial"
    }
}

impl Shape {
    /// The shape of writing K pages, `order` (page indexes), into a heap
    /// whose first `huge_regions` regions of `ppr` pages each are huge as
    /// `used` says.
    pub fn of(k: u64, order: &[u64], used: &str, ppr: u64, huge_regions: u64) -> Shape {
        let mut shape = Shape {
            k,
            thp_partial: used == "partial",
            ..Default::default()
        };
        if matches!(used, "yes" | "partial") {
            shape.regions = distinct_regions(order, ppr, huge_regions);
        }
        if used == "yes" {
            shape.k_huge = order.iter().filter(|&&p| p < huge_regions * ppr).count() as u64;
            shape.full_regions = full_regions(order, ppr, huge_regions);
            shape.full_region_pages = shape.full_regions * ppr;
        }
        shape
    }
}

/// Expected (parent, child) deltas over the write window.
///
/// 4 KiB pages: the first write to a page shared after fork copies it; a write to a
/// page only this process maps (the other one copied it, or exited) reuses it.
/// Huge PMDs (6.12 semantics, the same on newer kernels for these cases): the first
/// write into a shared huge PMD counts one `thp_wp_faults`, splits the PMD and falls
/// back to a 4 KiB COW; a write into a huge PMD no longer shared reuses the whole PMD
/// (no 4 KiB fault after it); subpages of a split huge page that is still mapped by
/// the other process are copied, not reused.
pub fn expected(mode: Mode, s: Shape) -> (Expected, Expected) {
    let zero = Counts::default();
    let copy_all = Counts {
        wp_faults: s.k,
        cow_copies: s.k,
        thp_wp_faults: s.regions,
        ..zero
    };
    let small = s.k - s.k_huge;
    let (mut p, mut c) = match mode {
        Mode::Child => (Expected::exact(zero), Expected::exact(copy_all)),
        Mode::Parent => (Expected::exact(copy_all), Expected::exact(zero)),
        Mode::Both => (
            Expected::exact(Counts {
                wp_faults: s.k - s.full_region_pages,
                cow_copies: s.k_huge - s.full_region_pages,
                wp_reuses: small,
                thp_wp_faults: s.regions,
                cow_zero: 0,
            }),
            Expected::exact(copy_all),
        ),
        Mode::AfterExit => (
            Expected::exact(Counts {
                wp_faults: small,
                wp_reuses: small,
                thp_wp_faults: s.regions,
                ..zero
            }),
            Expected::exact(zero),
        ),
    };
    if s.thp_partial {
        for e in [&mut p, &mut c] {
            if e.wp_faults != Some(0) {
                e.thp_wp_faults = None;
            }
        }
        if matches!(mode, Mode::Both | Mode::AfterExit) {
            p.wp_faults = None;
            p.cow_copies = None;
            p.wp_reuses = None;
            p.thp_wp_faults = None;
        }
    }
    (p, c)
}
/// Expected minor faults (parent, child) over the write window: one per write fault
/// (`wp_faults`), plus one per huge PMD reused whole (its fault never reaches the
/// 4 KiB path). `None` where THP was only partly used.
pub fn expected_faults(mode: Mode, s: Shape) -> (Option<u64>, Option<u64>) {
    let (p, c) = expected(mode, s);
    let reused = match mode {
        Mode::Both => s.full_regions,
        Mode::AfterExit => s.regions,
        _ => 0,
    };
    let f = |e: &Expected, extra: u64| e.wp_faults.map(|w| w + extra);
    match mode {
        Mode::Child => (Some(0), f(&c, 0)),
        Mode::Parent => (f(&p, 0), Some(0)),
        Mode::Both | Mode::AfterExit => (f(&p, reused), f(&c, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(e: &Expected) -> [Option<u64>; 5] {
        [
            e.wp_faults,
            e.cow_copies,
            e.cow_zero,
            e.wp_reuses,
            e.thp_wp_faults,
        ]
    }

    #[test]
    fn expectations_4k() {
        let s = Shape {
            k: 23,
            ..Default::default()
        };
        let (p, ch) = expected(Mode::Child, s);
        assert_eq!(c(&p), [Some(0); 5]);
        assert_eq!(c(&ch), [Some(23), Some(23), Some(0), Some(0), Some(0)]);
        let (p, ch) = expected(Mode::Parent, s);
        assert_eq!(c(&p), [Some(23), Some(23), Some(0), Some(0), Some(0)]);
        assert_eq!(expected_faults(Mode::Parent, s), (Some(23), Some(0)));
        assert_eq!(expected_faults(Mode::AfterExit, s), (Some(23), Some(0)));
        assert_eq!(c(&ch), [Some(0); 5]);
        let (p, ch) = expected(Mode::Both, s);
        assert_eq!(c(&p), [Some(23), Some(0), Some(0), Some(23), Some(0)]);
        assert_eq!(c(&ch), [Some(23), Some(23), Some(0), Some(0), Some(0)]);
        let (p, ch) = expected(Mode::AfterExit, s);
        assert_eq!(c(&p), [Some(23), Some(0), Some(0), Some(23), Some(0)]);
        assert_eq!(c(&ch), [Some(0); 5]);
    }

    #[test]
    fn expectations_thp() {
        // Synthetic: 1024 pages in 8 huge regions, 2 of them written completely.
        let s = Shape {
            k: 1024,
            k_huge: 1024,
            regions: 8,
            full_region_pages: 1024,
            full_regions: 2,
            thp_partial: false,
        };
        let (p, ch) = expected(Mode::Child, s);
        assert_eq!(c(&ch), [Some(1024), Some(1024), Some(0), Some(0), Some(8)]);
        assert_eq!(c(&p), [Some(0); 5]);
        let (p, _) = expected(Mode::Both, s);
        assert_eq!(c(&p), [Some(0), Some(0), Some(0), Some(0), Some(8)]);
        assert_eq!(expected_faults(Mode::Both, s), (Some(2), Some(1024)));
        assert_eq!(expected_faults(Mode::AfterExit, s), (Some(8), Some(0)));
        assert_eq!(expected_faults(Mode::Child, s), (Some(0), Some(1024)));
        let partial_regions = Shape {
            full_region_pages: 0,
            full_regions: 0,
            ..s
        };
        assert_eq!(
            expected_faults(Mode::Both, partial_regions),
            (Some(1024), Some(1024))
        );
        let (p, _) = expected(Mode::Both, partial_regions);
        assert_eq!(c(&p), [Some(1024), Some(1024), Some(0), Some(0), Some(8)]);
        let (p, _) = expected(Mode::AfterExit, s);
        assert_eq!(c(&p), [Some(0), Some(0), Some(0), Some(0), Some(8)]);
        let (p, ch) = expected(
            Mode::Both,
            Shape {
                thp_partial: true,
                ..s
            },
        );
        assert_eq!(c(&p), [None, None, Some(0), None, None]);
        assert_eq!(c(&ch), [Some(1024), Some(1024), Some(0), Some(0), None]);
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::from_args(Writer::Both, false), Mode::Both);
        assert_eq!(Mode::from_args(Writer::Child, true), Mode::AfterExit);
        assert_eq!(Mode::AfterExit.as_str(), "parent-after-exit");
    }
}
