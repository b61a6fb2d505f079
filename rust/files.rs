// SPDX-License-Identifier: GPL-2.0

//! The files of `/proc/cowstat` (format: docs/proc-interface.md).

use crate::{
    callers::Callers,
    hooks::{self, DUP_MMAP_STATUS, ENTRY_HOOKS, FORKS, FORK_LATENCY, FORK_NS, MM_COPIES, TABLE, UNSHARE},
    kretprobe::ReturnHook,
    procfs::{ProcFile, SeqFile, Writer},
    table::{Event, Row},
};
use core::fmt::{self, Write};
use kernel::prelude::*;

/// Every file, in creation order; the index is the file's id in glue.c.
pub(crate) static FILES: [ProcFile; 4] = [
    ProcFile {
        name: c"stats",
        mode: 0o644,
        show: show_stats,
        size_hint: no_hint,
        write: Some(write_stats),
    },
    ProcFile {
        name: c"procs",
        mode: 0o444,
        show: show_procs,
        size_hint: procs_size_hint,
        write: None,
    },
    ProcFile {
        name: c"probes",
        mode: 0o444,
        show: show_probes,
        size_hint: no_hint,
        write: None,
    },
    ProcFile {
        name: c"fork_latency",
        mode: 0o444,
        show: show_fork_latency,
        size_hint: no_hint,
        write: None,
    },
];

fn no_hint() -> usize {
    0
}

/// `stats`: global counters, one `name value` per line.
fn show_stats(out: &mut SeqFile<'_>) -> fmt::Result {
    // New counters go at the end: scripts read these by name, people by
    // position.
    let totals = TABLE.totals();
    let (v1, added) = Event::ALL.split_at(Event::V1);
    for event in v1 {
        writeln!(out, "{} {}", event.name(), totals.get(*event))?;
    }
    writeln!(out, "forks {}", FORKS.get())?;
    writeln!(out, "fork_ns {}", FORK_NS.get())?;
    for event in added {
        writeln!(out, "{} {}", event.name(), totals.get(*event))?;
    }
    writeln!(out, "mm_copies {}", MM_COPIES.get())?;
    writeln!(out, "unshare_untracked {}", UNSHARE.untracked.get())
}

/// Writing `0` to `stats` resets everything; only for `CAP_SYS_ADMIN` in
/// the initial user namespace, checked at write time.
fn write_stats(data: &[u8], writer: Writer) -> Result {
    if writer != Writer::Admin {
        return Err(EPERM);
    }
    match data {
        b"0" | b"0\n" => {
            hooks::reset_all();
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

/// The counters `procs` shows per process (80 columns).
const PROCS_COLUMNS: [Event; 5] = [
    Event::WpFault,
    Event::CowCopy,
    Event::CowZero,
    Event::WpReuse,
    Event::ThpWpFault,
];

fn procs_size_hint() -> usize {
    // 80 bytes a line (78 + newline, rounded), header and <other> row.
    let mut rows = 2;
    TABLE.for_each_row(|_| rows += 1);
    rows * 80
}

/// `procs`: one row per process that had a counted event.
fn show_procs(out: &mut SeqFile<'_>) -> fmt::Result {
    writeln!(
        out,
        "{:>7} {:<16} {:>9} {:>10} {:>8} {:>9} {:>13}",
        "pid", "comm", "wp_faults", "cow_copies", "cow_zero", "wp_reuses", "thp_wp_faults"
    )?;
    let mut result = Ok(());
    TABLE.for_each_row(|row| {
        if result.is_ok() {
            result = write_row(out, row);
        }
    });
    result
}

fn write_row(out: &mut SeqFile<'_>, row: &Row) -> fmt::Result {
    match row.tgid {
        Some(tgid) => write!(out, "{tgid:>7} ")?,
        None => write!(out, "{:>7} ", "-")?,
    }
    let mut comm = [0u8; 16];
    let name: &[u8] = if row.tgid.is_some() { &row.comm } else { b"<other>" };
    let len = printable_comm(name, &mut comm);
    // `printable_comm` only produces ASCII, so this cannot fail.
    let comm = core::str::from_utf8(&comm[..len]).map_err(|_| fmt::Error)?;
    let [faults, copies, zero, reuses, thp] = PROCS_COLUMNS.map(|e| row.counts.get(e));
    writeln!(out, "{comm:<16} {faults:>9} {copies:>10} {zero:>8} {reuses:>9} {thp:>13}")
}

/// Copies a NUL-padded command name, replacing anything that is not
/// printable ASCII or is a space with `?`, so columns stay splittable on
/// whitespace. Returns the length written.
fn printable_comm(name: &[u8], out: &mut [u8; 16]) -> usize {
    let mut len = 0;
    for (&b, slot) in name.iter().take_while(|&&b| b != 0).zip(out.iter_mut()) {
        *slot = if b.is_ascii_graphic() { b } else { b'?' };
        len += 1;
    }
    len
}

/// `probes`: each hook, whether it is attached, how often it ran and what
/// it counts; then the caller functions the counting hooks filter on.
fn show_probes(out: &mut SeqFile<'_>) -> fmt::Result {
    writeln!(out, "{:<24} {:<9} {:<7} {:>10}  counts", "function", "kind", "status", "hits")?;
    for hook in &ENTRY_HOOKS {
        let status = (hook.status)();
        let name = hook.function.to_str().map_err(|_| fmt::Error)?;
        writeln!(
            out,
            "{name:<24} {:<9} {:<7} {:>10}  {}",
            "ftrace",
            status.state_name(),
            status.hits(),
            hook.counts
        )?;
    }
    let name = hooks::DupMmap::FUNCTION.to_str().map_err(|_| fmt::Error)?;
    writeln!(
        out,
        "{name:<24} {:<9} {:<7} {:>10}  {}",
        "kretprobe",
        DUP_MMAP_STATUS.state_name(),
        DUP_MMAP_STATUS.hits(),
        hooks::DupMmap::COUNTS
    )?;
    writeln!(out)?;
    writeln!(out, "{:<28} {:<12} part of", "caller", "status")?;
    write_callers(out, &hooks::WP_CALLERS, "write-protect fault")?;
    write_callers(out, &hooks::THP_CALLERS, "huge PMD write fault")?;
    write_callers(out, &hooks::HUGETLB_CALLERS, "hugetlb write fault")?;
    write_callers(out, &hooks::FILE_COW_CALLERS, "private file write fault")
}

fn write_callers<const N: usize>(out: &mut SeqFile<'_>, set: &Callers<N>, part: &str) -> fmt::Result {
    for (name, present) in set.each() {
        let name = name.to_str().map_err(|_| fmt::Error)?;
        let status = if present { "function" } else { "inlined/none" };
        writeln!(out, "{name:<28} {status:<12} {part}")?;
    }
    Ok(())
}

/// `fork_latency`: log2 histogram of `dup_mmap` time in microseconds.
fn show_fork_latency(out: &mut SeqFile<'_>) -> fmt::Result {
    FORK_LATENCY.write_to(out, "usecs")
}
