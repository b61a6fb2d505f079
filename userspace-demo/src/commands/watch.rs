// SPDX-License-Identifier: GPL-2.0
//! `cow-demo watch [interval [count]]`: vmstat-style deltas of /proc/cowstat/stats
//! (`--pid`: one process's, in commands/watch_pid.rs).

use std::time::{Duration, Instant};

use crate::cli::WatchArgs;
use crate::commands::{print_out, Outcome};
use crate::error::Result;
use crate::procfs::cowstat::Cowstat;
use crate::report::{to_json, watch_header, watch_line, WatchSample};

/// Local time of day as HH:MM:SS.
pub fn local_hms() -> String {
    // SAFETY: time(NULL) has no preconditions; localtime_r writes only into `tm`.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return "--:--:--".to_string();
        }
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    }
}

/// Runs the command.
pub fn run(a: &WatchArgs) -> Result<Outcome> {
    crate::commands::top::check_interval_count(a.interval, a.count)?;
    if let Some(pid) = a.pid {
        return crate::commands::watch_pid::run(a, pid);
    }
    let cs = Cowstat::locate();
    cs.require()?;
    let interval = Duration::from_secs_f64(a.interval);
    let mut prev = cs.stats()?;
    let start = Instant::now();
    if !a.json {
        eprintln!(
            "Printing {} deltas every {} s... Hit Ctrl-C to end.",
            cs.path("stats").display(),
            a.interval
        );
        print_out(&(watch_header() + "\n"))?;
    }
    let mut n = 0u64;
    let mut next = start + interval;
    loop {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += interval;
        let cur = cs.stats()?;
        let s = WatchSample {
            time: local_hms(),
            elapsed_s: start.elapsed().as_secs_f64(),
            delta: cur.delta(&prev),
        };
        prev = cur;
        let line = if a.json { to_json(&s)? } else { watch_line(&s) };
        print_out(&(line + "\n"))?;
        n += 1;
        if a.count.is_some_and(|c| n >= c) {
            return Ok(Outcome::Ok);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hms_shape() {
        let t = super::local_hms();
        assert_eq!(t.len(), 8);
        assert_eq!(&t[2..3], ":");
    }
}
