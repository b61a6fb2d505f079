// SPDX-License-Identifier: GPL-2.0

//! The four files of `/proc/cowstat` (format: docs/proc-interface.md).

use crate::{
    hooks::{self, FORKS, FORK_LATENCY, FORK_NS, PROBES, TABLE},
    procfs::{ProcFile, SeqFile},
    table::Row,
};
use core::fmt::{self, Write};
use kernel::{c_str, prelude::*, str::CStr};

/// `stats`: global counters, one `name value` per line; write `0` to reset.
pub(crate) struct Stats;

impl ProcFile for Stats {
    const NAME: &'static CStr = c_str!("stats");
    const MODE: u16 = 0o644;
    const WRITABLE: bool = true;

    fn show(out: &mut SeqFile<'_>) -> fmt::Result {
        let t = TABLE.totals();
        let lines = [
            ("wp_faults", t.wp_faults),
            ("cow_copies", t.cow_copies),
            ("cow_zero", t.cow_zero),
            ("wp_reuses", t.wp_reuses()),
            ("wp_shared", t.wp_shared),
            ("cow_unshare", t.cow_unshare),
            ("thp_wp_faults", t.thp_wp_faults),
            ("forks", FORKS.get()),
            ("fork_ns", FORK_NS.get()),
        ];
        for (name, value) in lines {
            writeln!(out, "{name} {value}")?;
        }
        Ok(())
    }

    fn write(data: &[u8]) -> Result {
        match data {
            b"0" | b"0\n" => {
                hooks::reset_all();
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }
}

/// `procs`: one row per process that took a counted fault.
pub(crate) struct Procs;

impl ProcFile for Procs {
    const NAME: &'static CStr = c_str!("procs");
    const MODE: u16 = 0o444;

    fn size_hint() -> usize {
        // 80 bytes a line (78 + newline, rounded), header and <other> row.
        let mut rows = 2;
        TABLE.for_each_row(|_| rows += 1);
        rows * 80
    }

    fn show(out: &mut SeqFile<'_>) -> fmt::Result {
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
}

fn write_row(out: &mut SeqFile<'_>, row: &Row) -> fmt::Result {
    match row.tgid {
        Some(tgid) => write!(out, "{tgid:>7} ")?,
        None => write!(out, "{:>7} ", "-")?,
    }
    let mut comm = [0u8; 16];
    let name: &[u8] = if row.tgid.is_some() {
        &row.comm
    } else {
        b"<other>"
    };
    let len = printable_comm(name, &mut comm);
    // `printable_comm` only produces ASCII, so this cannot fail.
    let comm = core::str::from_utf8(&comm[..len]).map_err(|_| fmt::Error)?;
    let c = &row.counts;
    writeln!(
        out,
        "{comm:<16} {:>9} {:>10} {:>8} {:>9} {:>13}",
        c.wp_faults,
        c.cow_copies,
        c.cow_zero,
        c.wp_reuses(),
        c.thp_wp_faults
    )
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

/// `probes`: what is hooked, whether it is attached, how often it ran.
pub(crate) struct Probes;

impl ProcFile for Probes {
    const NAME: &'static CStr = c_str!("probes");
    const MODE: u16 = 0o444;

    fn show(out: &mut SeqFile<'_>) -> fmt::Result {
        writeln!(
            out,
            "{:<20} {:<10} {:<9} {:>12} {:>8}",
            "function", "kind", "status", "hits", "missed"
        )?;
        for probe in PROBES {
            let name = probe.symbol().to_str().map_err(|_| fmt::Error)?;
            let status = if probe.is_active() {
                "active"
            } else {
                "missing"
            };
            writeln!(
                out,
                "{name:<20} {:<10} {status:<9} {:>12} {:>8}",
                probe.kind().name(),
                probe.hits(),
                probe.missed()
            )?;
        }
        Ok(())
    }
}

/// `fork_latency`: log2 histogram of `dup_mmap` time in microseconds.
pub(crate) struct ForkLatency;

impl ProcFile for ForkLatency {
    const NAME: &'static CStr = c_str!("fork_latency");
    const MODE: u16 = 0o444;

    fn show(out: &mut SeqFile<'_>) -> fmt::Result {
        FORK_LATENCY.write_to(out, "usecs")
    }
}
