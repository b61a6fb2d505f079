// SPDX-License-Identifier: GPL-2.0
//! Compares what `cow-demo fork` measured with what the model expects:
//! cowstat deltas, minor faults, pagemap's exclusive bit and smaps.

use crate::counter::Counter;
use crate::report::{Check, ProcReport};

use super::model::{Mode, Shape};

/// The heap's geometry the checks need.
pub(super) struct Geometry {
    /// Base page size and PMD size, bytes.
    pub ps: u64,
    pub pmd: u64,
    /// Pages per PMD.
    pub ppr: u64,
    pub heap_pages: u64,
    /// Every huge region of the heap is PMD-mapped (THP "yes").
    pub all_huge: bool,
}

fn check(checks: &mut Vec<Check>, name: &str, expected: u64, observed: u64) {
    checks.push(Check {
        name: name.to_string(),
        expected,
        observed,
        ok: expected == observed,
    });
}

/// Every comparison that can be made (those without an observation or an
/// expectation are left out).
pub(super) fn compare(
    mode: Mode,
    shape: Shape,
    g: &Geometry,
    parent: &ProcReport,
    child: &ProcReport,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for (who, p) in [("parent", parent), ("child", child)] {
        if let Some(obs) = p.observed {
            for name in Counter::FORK_ROWS {
                if let (Some(e), Some(o)) = (p.expected.get(name), obs.get(name)) {
                    check(&mut checks, &format!("{who}.{name}"), e, o);
                }
            }
        }
    }
    for (who, p) in [("parent", parent), ("child", child)] {
        if let (Some(e), Some(o)) = (p.expected_minor_faults, p.minor_faults) {
            check(&mut checks, &format!("{who}.minor_faults"), e, o);
        }
    }
    let (k, heap_pages, ppr) = (shape.k, g.heap_pages, g.ppr);
    let kb = g.ps / 1024;
    let pmd_kb = g.pmd / 1024;
    let writers: Vec<(&str, &ProcReport, u64)> = match mode {
        Mode::Child => vec![("child", child, shape.regions)],
        Mode::Parent => vec![("parent", parent, shape.regions)],
        Mode::Both => vec![
            ("child", child, shape.regions),
            (
                "parent",
                parent,
                shape.regions - shape.full_region_pages / ppr,
            ),
        ],
        Mode::AfterExit => vec![("parent", parent, 0)],
    };
    for (who, p, split) in writers {
        if let Some(a) = p.pagemap_after_write {
            let want = if mode == Mode::AfterExit {
                heap_pages
            } else {
                k
            };
            check(
                &mut checks,
                &format!("{who}.pagemap_exclusive"),
                want,
                a.exclusive,
            );
        }
        if let (Some(b), Some(a)) = (p.smaps_before_write, p.smaps_after_write) {
            if mode == Mode::AfterExit {
                check(
                    &mut checks,
                    &format!("{who}.smaps_private_dirty_kb"),
                    heap_pages * kb,
                    a.private_dirty_kb,
                );
            } else {
                check(
                    &mut checks,
                    &format!("{who}.smaps_private_dirty_kb_delta"),
                    k * kb,
                    a.private_dirty_kb.saturating_sub(b.private_dirty_kb),
                );
            }
            if g.all_huge {
                check(
                    &mut checks,
                    &format!("{who}.smaps_anon_huge_kb_drop"),
                    split * pmd_kb,
                    b.anon_huge_kb.saturating_sub(a.anon_huge_kb),
                );
            }
        }
    }
    checks
}

/// "OK", "MISMATCH", or "UNVERIFIED" when nothing could be compared.
pub(super) fn verdict(checks: &[Check]) -> &'static str {
    if checks.is_empty() {
        "UNVERIFIED"
    } else if checks.iter().all(|c| c.ok) {
        "OK"
    } else {
        "MISMATCH"
    }
}
