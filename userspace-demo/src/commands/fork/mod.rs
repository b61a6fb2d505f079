// SPDX-License-Identifier: GPL-2.0
//! `cow-demo fork`: the core experiment — fork with a touched heap, write K
//! pages, compare COW counters with expectations.
//!
//! [`model`] says what the kernel must count (pure), [`setup`] prepares the
//! heap, `measure` and `child` run the two processes, `checks` compares;
//! the text form lives in `crate::report`.

mod checks;
mod child;
mod measure;
pub mod model;
mod setup;

use crate::cli::ForkArgs;
use crate::commands::{print_out, Outcome};
use crate::error::Result;
use crate::procfs::cowstat::Cowstat;
use crate::report::{render_fork, to_json, ForkReport};

pub use child::{ChildRecord, RECORD_BYTES};
pub use measure::minor_faults;
pub use model::{expected, expected_faults, Mode, Shape};
pub use setup::pages_to_write;

use checks::{compare, verdict, Geometry};

/// Runs the experiment and returns the report (no printing).
pub fn experiment(a: &ForkArgs) -> Result<ForkReport> {
    let s = setup::setup(a)?;
    let m = measure::measure(&s, expected(s.mode, s.shape))?;
    let (mut parent, mut child) = (m.parent, m.child);
    let memcpy_4k_ns = crate::workload::memcpy_page_ns(s.heap.as_slice(), s.ps);

    let (fp, fc) = expected_faults(s.mode, s.shape);
    parent.expected_minor_faults = fp;
    child.expected_minor_faults = fc;
    let geometry = Geometry {
        ps: s.ps,
        pmd: s.pmd,
        ppr: s.ppr,
        heap_pages: s.heap_pages,
        all_huge: s.thp.used == "yes",
    };
    let checks = compare(s.mode, s.shape, &geometry, &parent, &child);
    let mut notes = s.notes;
    if s.loaded {
        notes.push(
            "counters are deltas over the write window (between two reads while both \
             processes wait); start-up and measurement faults fall outside it"
                .to_string(),
        );
    }
    let mismatches: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.clone())
        .collect();
    if s.loaded && !mismatches.is_empty() && table_is_full() {
        notes.push(
            "the per-process table is full (/proc/cowstat/procs has an <other> row): \
             new processes are counted there, not in their own rows; reset with \
             echo 0 > /proc/cowstat/stats"
                .to_string(),
        );
    }
    Ok(ForkReport {
        heap_bytes: s.heap_bytes,
        page_size: s.ps,
        heap_pages: s.heap_pages,
        write_pages: s.k,
        writer: s.mode.as_str().to_string(),
        pattern: a.pattern.to_string(),
        seed: a.seed,
        cpu: s.cpu,
        thp: s.thp,
        cowstat_loaded: s.loaded,
        fork_ns: m.fork_ns,
        dup_mmap_ns: m.dup_mmap_ns,
        memcpy_4k_ns,
        parent,
        child,
        verdict: verdict(&checks).to_string(),
        checks,
        notes,
        mismatches,
    })
}

/// True if cowstat has an `<other>` row: processes beyond the table's
/// capacity have no rows of their own.
fn table_is_full() -> bool {
    Cowstat::locate()
        .procs()
        .map(|rows| rows.iter().any(|r| r.pid.is_none()))
        .unwrap_or(false)
}
/// Runs the command: experiment, then text or JSON.
pub fn run(a: &ForkArgs) -> Result<Outcome> {
    let r = experiment(a)?;
    if a.json {
        print_out(&(to_json(&r)? + "\n"))?;
    } else {
        print_out(&render_fork(&r))?;
    }
    Ok(if r.verdict == "MISMATCH" {
        Outcome::Mismatch
    } else {
        Outcome::Ok
    })
}
