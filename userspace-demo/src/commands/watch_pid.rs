// SPDX-License-Identifier: GPL-2.0
//! `cow-demo watch --pid PID`: per-interval deltas of one process, read in
//! O(1) from /proc/cowstat/pid, until it ends.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cli::WatchArgs;
use crate::commands::watch::local_hms;
use crate::commands::{print_out, Outcome};
use crate::error::{Error, Result};
use crate::procfs::cowstat::{Counts, Cowstat, ProcRow};
use crate::report::to_json;
use crate::top::pidfile::PidFile;
use crate::top::rates::since;
use crate::top::term::{self, Wake};

/// One interval of one process.
#[derive(Debug, Clone, Serialize)]
pub struct PidSample {
    /// Local wall-clock time, HH:MM:SS.
    pub time: String,
    /// Seconds since the first read.
    pub elapsed_s: f64,
    /// The process.
    pub pid: u32,
    /// Its command name.
    pub comm: String,
    /// True once this is its final row (it ended in the interval).
    pub exited: bool,
    /// Events in the interval.
    pub delta: Counts,
    /// Totals since its first event.
    pub total: Counts,
}

/// The text table's header (70 columns).
pub fn header() -> String {
    format!(
        "{:<8} {:>9} {:>10} {:>8} {:>9} {:>6} {:>12} {}",
        "TIME", "WP_FAULTS", "COW_COPIES", "COW_ZERO", "WP_REUSES", "THP_WP", "TOTAL_COPIES", "S"
    )
}

/// One line: the interval's deltas, the total copies and `X` once ended.
pub fn line(s: &PidSample) -> String {
    let d = &s.delta;
    format!(
        "{:<8} {:>9} {:>10} {:>8} {:>9} {:>6} {:>12} {}",
        s.time,
        d.wp_faults,
        d.cow_copies,
        d.cow_zero,
        d.wp_reuses,
        d.thp_wp_faults,
        s.total.cow_copies,
        if s.exited { "X" } else { "L" }
    )
}

/// The closing note once the process has ended.
pub fn ended_note(pid: u32, row: &ProcRow) -> String {
    let c = &row.counts;
    format!(
        "pid {pid} ({}) ended: {} copies, {} faults, {} reuses, {} zero-fills, {} THP faults in all",
        row.comm, c.cow_copies, c.wp_faults, c.wp_reuses, c.cow_zero, c.thp_wp_faults
    )
}

/// Runs `watch --pid PID` (INTERVAL and COUNT already checked).
pub fn run(a: &WatchArgs, pid: u32) -> Result<Outcome> {
    let cs = Cowstat::locate();
    let mut pf = PidFile::open(&cs, pid)?;
    let gone = || Error::InvalidValue {
        flag: "--pid",
        value: pid.to_string(),
        expected: "the process ended and its row is gone (see `cow-demo top` or ps for pids)"
            .into(),
    };
    let mut prev = pf.read()?.ok_or_else(gone)?;
    if prev.exited {
        eprintln!("{}", ended_note(pid, &prev));
        return Ok(Outcome::Ok);
    }
    term::install_signal_handlers();
    if !a.json {
        eprintln!(
            "Printing the deltas of pid {pid} ({}) from {} every {} s... Hit Ctrl-C to end.",
            prev.comm,
            cs.path("pid").display(),
            a.interval
        );
        print_out(&(header() + "\n"))?;
    }
    let start = Instant::now();
    let interval = Duration::from_secs_f64(a.interval);
    let mut next = start + interval;
    let mut n = 0u64;
    loop {
        if term::wait_until(next, false) == Wake::Quit {
            return Ok(Outcome::Ok);
        }
        next += interval;
        let Some(cur) = pf.read()? else {
            eprintln!(
                "pid {pid} ({}) is gone: it ended and its final row was dropped",
                prev.comm
            );
            return Ok(Outcome::Ok);
        };
        let delta = since(&cur.counts, &prev.counts);
        let s = PidSample {
            time: local_hms(),
            elapsed_s: start.elapsed().as_secs_f64(),
            pid,
            comm: cur.comm.clone(),
            exited: cur.exited,
            delta,
            total: cur.counts,
        };
        print_out(&((if a.json { to_json(&s)? } else { line(&s) }) + "\n"))?;
        if cur.exited {
            if !a.json {
                eprintln!("{}", ended_note(pid, &cur));
            }
            return Ok(Outcome::Ok);
        }
        prev = cur;
        n += 1;
        if a.count.is_some_and(|c| n >= c) {
            return Ok(Outcome::Ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_line_up_and_mark_the_end() {
        let s = PidSample {
            time: "12:00:01".into(),
            elapsed_s: 1.0,
            pid: 412,
            comm: "cow-demo".into(),
            exited: true,
            delta: Counts {
                wp_faults: 1021,
                cow_copies: 1021,
                ..Default::default()
            },
            total: Counts {
                cow_copies: 1033,
                ..Default::default()
            },
        };
        let l = line(&s);
        assert_eq!(header().len(), l.len());
        assert_eq!(
            l,
            "12:00:01      1021       1021        0         0      0         1033 X"
        );
        let row = ProcRow {
            pid: Some(412),
            comm: "cow-demo".into(),
            counts: s.total,
            exited: true,
        };
        assert!(
            ended_note(412, &row).starts_with("pid 412 (cow-demo) ended: 1033 copies, 0 faults")
        );
    }
}
