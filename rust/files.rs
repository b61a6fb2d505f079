// SPDX-License-Identifier: GPL-2.0

//! The files of `/proc/cowstat` (format: docs/proc-interface.md).

use crate::{
    callers::Callers,
    event::Event,
    hooks::{
        self, DUP_MMAP_STATUS, ENTRY_HOOKS, FORKS, FORK_LATENCY, FORK_NS, MM_COPIES, TABLE, UNSHARE,
    },
    kretprobe::ReturnHook,
    pidns::Reader,
    procfs::{ProcFile, SeqFile, Writer},
    table::Row,
};
use core::fmt::{self, Write};
use kernel::prelude::*;

/// Every file, in creation order; the index is the file's id in glue.c.
pub(crate) static FILES: [ProcFile; 6] = [
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
    ProcFile {
        name: c"self",
        mode: 0o444,
        show: show_self,
        size_hint: no_hint,
        write: None,
    },
    ProcFile {
        name: c"pid",
        mode: 0o666,
        show: show_pid,
        size_hint: no_hint,
        write: Some(write_pid),
    },
];

fn no_hint() -> usize {
    0
}

/// `stats`: global counters, one `name value` per line.
fn show_stats(out: &mut SeqFile<'_>, _arg: i64) -> fmt::Result {
    // New counters go at the end: scripts read these by name, people by
    // position.
    let totals = TABLE.totals();
    let (v1, added) = Event::ALL.split_at(Event::V1);
    let (v2, v3) = added.split_at(Event::BEFORE_MM_COPIES - Event::V1);
    let events = |out: &mut SeqFile<'_>, events: &[Event]| -> fmt::Result {
        for event in events {
            writeln!(out, "{} {}", event.name(), totals.get(*event))?;
        }
        Ok(())
    };
    events(out, v1)?;
    writeln!(out, "forks {}", FORKS.get())?;
    writeln!(out, "fork_ns {}", FORK_NS.get())?;
    events(out, v2)?;
    writeln!(out, "mm_copies {}", MM_COPIES.get())?;
    writeln!(out, "unshare_untracked {}", UNSHARE.untracked.get())?;
    events(out, v3)
}

/// Writing `0` to `stats` resets everything; only for `CAP_SYS_ADMIN` in
/// the initial user namespace, checked at write time.
fn write_stats(data: &[u8], writer: Writer, _arg: &mut i64) -> Result {
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
    // 81 bytes a line (80 + newline), header and <other> row.
    let mut rows = 2;
    TABLE.for_each_row(&Reader::current(), |_| rows += 1);
    rows * 81
}

fn write_header(out: &mut SeqFile<'_>) -> fmt::Result {
    writeln!(
        out,
        "{:>7} {:<16} {:>9} {:>10} {:>8} {:>9} {:>13} S",
        "pid", "comm", "wp_faults", "cow_copies", "cow_zero", "wp_reuses", "thp_wp_faults"
    )
}

/// `procs`: one row per live process with a counted event, then the final
/// rows of recently ended ones (`S` column `X`), then `<other>`; pids as
/// the reader's pid namespace sees them, and only processes in it.
fn show_procs(out: &mut SeqFile<'_>, _arg: i64) -> fmt::Result {
    write_header(out)?;
    let mut result = Ok(());
    TABLE.for_each_row(&Reader::current(), |row| {
        if result.is_ok() {
            result = write_row(out, row);
        }
    });
    result
}

/// `self`: the reading process's own row, with the `procs` header. One hash
/// lookup: what a Redis BGSAVE child measuring itself reads.
fn show_self(out: &mut SeqFile<'_>, _arg: i64) -> fmt::Result {
    let reader = Reader::current();
    write_header(out)?;
    match TABLE.row_of(&reader, crate::task::own_pid()) {
        Some(row) => write_row(out, &row),
        None => Ok(()),
    }
}

/// `pid`: write a pid (as the writer's namespace numbers it), then read that
/// process's row, live or recently ended; no other row is looked at.
fn show_pid(out: &mut SeqFile<'_>, arg: i64) -> fmt::Result {
    write_header(out)?;
    let Ok(nr) = i32::try_from(arg) else {
        return Ok(());
    };
    if nr <= 0 {
        return Ok(());
    }
    match TABLE.row_of(&Reader::current(), nr) {
        Some(row) => write_row(out, &row),
        None => Ok(()),
    }
}

/// Parses a decimal pid, with an optional newline. `ESRCH` if no such
/// process is alive or recently ended in the writer's namespace.
fn write_pid(data: &[u8], _writer: Writer, arg: &mut i64) -> Result {
    let text = data.strip_suffix(b"\n").unwrap_or(data);
    let text = core::str::from_utf8(text).map_err(|_| EINVAL)?;
    let nr: i32 = text.parse().map_err(|_| EINVAL)?;
    if nr <= 0 {
        return Err(EINVAL);
    }
    if TABLE.row_of(&Reader::current(), nr).is_none() {
        return Err(ESRCH);
    }
    *arg = i64::from(nr);
    Ok(())
}

fn write_row(out: &mut SeqFile<'_>, row: &Row) -> fmt::Result {
    match row.pid {
        Some(pid) => write!(out, "{pid:>7} ")?,
        None => write!(out, "{:>7} ", "-")?,
    }
    let mut comm = [0u8; 16];
    let len = printable_comm(&row.comm, &mut comm);
    // `printable_comm` only produces ASCII, so this cannot fail.
    let comm = core::str::from_utf8(&comm[..len]).map_err(|_| fmt::Error)?;
    let [faults, copies, zero, reuses, thp] = PROCS_COLUMNS.map(|e| row.counts.get(e));
    let state = match (row.pid, row.exited) {
        (None, _) => "-",
        (_, true) => "X",
        _ => "L",
    };
    writeln!(
        out,
        "{comm:<16} {faults:>9} {copies:>10} {zero:>8} {reuses:>9} {thp:>13} {state}"
    )
}

/// Copies a NUL-padded command name, replacing anything that is not
/// printable ASCII or is a space with `?`, so columns stay splittable on
/// whitespace. Returns the length written.
fn printable_comm(name: &[u8], out: &mut [u8; 16]) -> usize {
    if name[0] == 0 {
        out[0] = b'?';
        return 1;
    }
    let mut len = 0;
    for (&b, slot) in name.iter().take_while(|&&b| b != 0).zip(out.iter_mut()) {
        *slot = if b.is_ascii_graphic() { b } else { b'?' };
        len += 1;
    }
    len
}

/// `probes`: each hook, whether it is attached, how often it ran and what
/// it counts; then the caller functions the counting hooks filter on.
fn show_probes(out: &mut SeqFile<'_>, _arg: i64) -> fmt::Result {
    writeln!(
        out,
        "{:<24} {:<9} {:<7} {:>10}  counts",
        "function", "kind", "status", "hits"
    )?;
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
    write_callers(out, &hooks::HUGETLB_CALLERS, "hugetlb write fault")
}

fn write_callers<const N: usize>(
    out: &mut SeqFile<'_>,
    set: &Callers<N>,
    part: &str,
) -> fmt::Result {
    for (name, present) in set.each() {
        let name = name.to_str().map_err(|_| fmt::Error)?;
        let status = if present { "function" } else { "inlined/none" };
        writeln!(out, "{name:<28} {status:<12} {part}")?;
    }
    Ok(())
}

/// `fork_latency`: log2 histogram of `dup_mmap` time in microseconds.
fn show_fork_latency(out: &mut SeqFile<'_>, _arg: i64) -> fmt::Result {
    FORK_LATENCY.write_to(out, "usecs")
}
