// SPDX-License-Identifier: GPL-2.0
//! Exactness of the fork scenarios, run through `cow-demo fork`'s experiment.
//!
//! The experiment supplies the mechanics (heap, fork, write window, reads of
//! /proc/cowstat, smaps and pagemap). The expected values are computed here,
//! from K and the page list alone, not taken from the experiment's own model.

use std::collections::HashSet;

use cow_demo::cli::{ForkArgs, OnOff, Writer};
use cow_demo::commands::fork::experiment;
use cow_demo::procfs::cowstat::Counts;
use cow_demo::report::{ForkReport, ProcReport};
use cow_demo::units::Pattern;
use cow_demo::workload::{hpage_pmd_size, page_order, page_size};

use crate::{Checks, TestCase};

/// Heap of every fork case: 16384 pages, 32 huge pages.
const HEAP: u64 = 64 << 20;

/// Who writes the K pages.
#[derive(Clone, Copy)]
enum Who {
    /// The child, while the parent waits.
    Child,
    /// The parent, while the child waits.
    Parent,
    /// The parent, after the child exited without writing.
    ParentAfterExit,
}

struct Case {
    k: u64,
    pattern: Pattern,
    thp: bool,
    who: Who,
}

impl Case {
    fn name(&self) -> String {
        let who = match self.who {
            Who::Child => "child_writes",
            Who::Parent => "parent_writes_child_alive",
            Who::ParentAfterExit => "parent_writes_after_child_exit",
        };
        let pattern = match self.pattern {
            Pattern::Seq => "seq".to_string(),
            Pattern::Stride(n) => format!("stride{n}"),
            Pattern::Random => "random".to_string(),
        };
        let thp = if self.thp { "thp_on" } else { "thp_off" };
        format!("{who}_k{}_{pattern}_{thp}", self.k)
    }

    fn args(&self) -> ForkArgs {
        ForkArgs {
            heap: HEAP,
            write: None,
            pages: Some(self.k),
            writer: match self.who {
                Who::Parent => Writer::Parent,
                _ => Writer::Child,
            },
            pattern: self.pattern,
            thp: if self.thp { OnOff::On } else { OnOff::Off },
            write_after_exit: matches!(self.who, Who::ParentAfterExit),
            seed: 7,
            json: true,
        }
    }

    /// Distinct 2 MiB regions the written pages fall into.
    fn huge_regions_touched(&self) -> u64 {
        let per_region = hpage_pmd_size() / page_size();
        let pages = page_order(self.pattern, self.k, HEAP / page_size(), 7);
        pages
            .iter()
            .map(|p| p / per_region)
            .collect::<HashSet<_>>()
            .len() as u64
    }
}

/// The cases the module promises to count exactly (docs/proc-interface.md).
fn cases() -> Vec<Case> {
    use Pattern::*;
    let c = |k, pattern, thp, who| Case {
        k,
        pattern,
        thp,
        who,
    };
    vec![
        c(23, Seq, false, Who::Child),
        c(4099, Seq, false, Who::Child),
        c(4099, Stride(7), false, Who::Child),
        c(4099, Random, false, Who::Child),
        c(4099, Seq, true, Who::Child),
        c(4099, Random, true, Who::Child),
        c(1009, Random, false, Who::Parent),
        c(4099, Seq, false, Who::ParentAfterExit),
    ]
}

/// The fork cases, ready to run.
pub fn tests() -> Vec<TestCase> {
    cases()
        .into_iter()
        .map(|case| -> TestCase {
            let name = case.name();
            (
                name,
                Box::new(move || Ok(check(&case, &experiment(&case.args())?))),
            )
        })
        .collect()
}

fn observed(p: &ProcReport) -> Counts {
    p.observed.unwrap_or_default()
}

fn check(case: &Case, r: &ForkReport) -> Checks {
    let k = case.k;
    let (writer, idle) = match case.who {
        Who::Child => (&r.child, &r.parent),
        Who::Parent | Who::ParentAfterExit => (&r.parent, &r.child),
    };
    let w = observed(writer);
    let i = observed(idle);
    let mut checks: Checks = Vec::new();
    checks.push(("module loaded (1 = yes)", 1, r.cowstat_loaded as u64));
    if let Who::ParentAfterExit = case.who {
        checks.push(("writer wp_faults", k, w.wp_faults));
        checks.push(("writer wp_reuses", k, w.wp_reuses));
        checks.push(("writer cow_copies", 0, w.cow_copies));
    } else {
        checks.push(("writer cow_copies", k, w.cow_copies));
        checks.push(("writer wp_faults", k, w.wp_faults));
        checks.push(("writer wp_reuses", 0, w.wp_reuses));
        checks.push(("idle cow_copies", 0, i.cow_copies));
        checks.push(("idle wp_faults", 0, i.wp_faults));
    }
    checks.push(("writer cow_zero", 0, w.cow_zero));
    let thp_expected = if case.thp {
        case.huge_regions_touched()
    } else {
        0
    };
    checks.push(("writer thp_wp_faults", thp_expected, w.thp_wp_faults));
    if case.thp {
        // Without real huge pages the THP case would silently test nothing.
        let huge = (r.thp.anon_huge_kb_before > 0) as u64;
        checks.push(("huge pages used before fork (1 = yes)", 1, huge));
    }
    // Independent witnesses: pagemap's "exclusively mapped" bit and smaps.
    if let (Some(b), Some(a)) = (writer.pagemap_before_write, writer.pagemap_after_write) {
        if let Who::ParentAfterExit = case.who {
            // The child is gone: every page is the parent's alone, before and after.
            checks.push((
                "writer pagemap exclusive after write",
                r.heap_pages,
                a.exclusive,
            ));
        } else {
            checks.push(("writer pagemap exclusive before write", 0, b.exclusive));
            checks.push(("writer pagemap exclusive after write", k, a.exclusive));
        }
    } else {
        checks.push(("pagemap figures present (1 = yes)", 1, 0));
    }
    if !matches!(case.who, Who::ParentAfterExit) {
        match (&writer.smaps_before_write, &writer.smaps_after_write) {
            (Some(b), Some(a)) => {
                let gained = a.private_dirty_kb.saturating_sub(b.private_dirty_kb);
                checks.push((
                    "writer smaps Private_Dirty gained, kB",
                    k * page_size() / 1024,
                    gained,
                ));
            }
            _ => checks.push(("smaps figures present (1 = yes)", 1, 0)),
        }
    }
    checks
}
