// SPDX-License-Identifier: GPL-2.0
//! `cow-demo top [interval [count]]`: copy-on-write rates per process,
//! refreshed in place on a terminal, as plain blocks or as JSON lines.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::TopArgs;
use crate::commands::{print_out, Outcome};
use crate::error::{Error, Result};
use crate::procfs::cowstat::{Cowstat, ProcRow};
use crate::report::to_json;
use crate::top::rates::{frame, Filter, Frame};
use crate::top::render::{paint, plain_block, screen_lines, View, MIN_WIDTH};
use crate::top::sample::Sampler;
use crate::top::term::{self, Screen, Wake};

/// How the frames are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Refreshed in place (stdout is a terminal).
    Screen,
    /// One block per interval.
    Plain,
    /// One JSON object per interval.
    Json,
}

/// Checks `INTERVAL` and `COUNT` as `watch` and `top` take them.
pub fn check_interval_count(interval: f64, count: Option<u64>) -> Result<()> {
    if !(0.01..=86_400.0).contains(&interval) {
        return Err(Error::InvalidValue {
            flag: "INTERVAL",
            value: interval.to_string(),
            expected: "expected seconds from 0.01 to 86400, like 1 or 0.5".into(),
        });
    }
    if count == Some(0) {
        return Err(Error::InvalidValue {
            flag: "COUNT",
            value: "0".into(),
            expected: "expected a number of samples >= 1 (leave it out to run until Ctrl-C)".into(),
        });
    }
    Ok(())
}

/// A pid with no row may still be a process that has not copied yet; one
/// that is neither is a typo.
fn check_pids(pids: &[u32], rows: &[ProcRow]) -> Result<()> {
    for pid in pids {
        let has_row = rows.iter().any(|r| r.pid == Some(*pid));
        if !has_row && !Path::new("/proc").join(pid.to_string()).exists() {
            return Err(Error::InvalidValue {
                flag: "--pid",
                value: pid.to_string(),
                expected: "no such process, and no row in procs (see `cow-demo stats` or ps)"
                    .into(),
            });
        }
    }
    Ok(())
}

/// Runs the command.
pub fn run(a: &TopArgs) -> Result<Outcome> {
    check_interval_count(a.interval, a.count)?;
    if a.width < MIN_WIDTH {
        return Err(Error::InvalidValue {
            flag: "--width",
            value: a.width.to_string(),
            expected: format!("expected at least {MIN_WIDTH} columns"),
        });
    }
    let cs = Cowstat::locate();
    cs.require()?;
    let sampler = Sampler::new(cs);
    let mut prev = sampler.take()?;
    check_pids(&a.pid, &prev.rows)?;
    let mut filter = Filter::new(a.pid.clone(), a.comm.clone());
    let mode = if a.json {
        Mode::Json
    } else if a.plain || !term::is_tty(libc::STDOUT_FILENO) {
        Mode::Plain
    } else {
        Mode::Screen
    };
    let view = View {
        interval: a.interval,
        sort: a.sort,
    };
    term::install_signal_handlers();
    let screen = (mode == Mode::Screen).then(Screen::enter);
    let draw = |s: &Screen, f: &Frame| -> Result<()> {
        let (cols, rows) = term::size().unwrap_or((a.width, 24));
        let lines = screen_lines(f, &view, cols.min(a.width), rows);
        s.draw(&paint(&lines))
            .map_err(|e| Error::Output(e.to_string()))
    };
    match &screen {
        Some(s) => s
            .draw(&paint(&[format!(
                "cow-demo top: first refresh in {} s (q or Ctrl-C quits)",
                a.interval
            )]))
            .map_err(|e| Error::Output(e.to_string()))?,
        None if mode == Mode::Plain => eprintln!(
            "Printing copy-on-write rates per process from {} every {} s... Hit Ctrl-C to end.",
            sampler.cowstat().path("procs").display(),
            a.interval
        ),
        None => {}
    }
    // Keys only from a terminal: /dev/null would read as end of file at once.
    let keys = screen.is_some() && term::is_tty(libc::STDIN_FILENO);
    let interval = Duration::from_secs_f64(a.interval);
    let mut next = Instant::now() + interval;
    let mut last: Option<Frame> = None;
    let mut shown = 0u64;
    loop {
        match term::wait_until(next, keys) {
            Wake::Quit => break,
            Wake::Resized => {
                if let (Some(s), Some(f)) = (&screen, &last) {
                    draw(s, f)?;
                }
                continue;
            }
            Wake::Due => {}
        }
        // After a stall (a stopped process, a slow read) restart the beat
        // instead of refreshing in a burst.
        next += interval;
        if next < Instant::now() {
            next = Instant::now() + interval;
        }
        let cur = sampler.take()?;
        let f = frame(&prev, &cur, &mut filter, a.sort);
        prev = cur;
        match (&screen, mode) {
            (Some(s), _) => draw(s, &f)?,
            (None, Mode::Json) => print_out(&(to_json(&f)? + "\n"))?,
            (None, _) => print_out(&plain_block(&f, a.width))?,
        }
        last = Some(f);
        shown += 1;
        if a.count.is_some_and(|c| shown >= c) {
            break;
        }
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_and_count_checks_name_the_argument() {
        assert!(check_interval_count(1.0, None).is_ok());
        assert!(check_interval_count(0.05, Some(3)).is_ok());
        let e = check_interval_count(0.0, None).unwrap_err().to_string();
        assert!(
            e.contains("'INTERVAL'") && e.contains("like 1 or 0.5"),
            "{e}"
        );
        assert!(check_interval_count(f64::NAN, None).is_err());
        let e = check_interval_count(1.0, Some(0)).unwrap_err().to_string();
        assert!(e.contains("'COUNT'") && e.contains("Ctrl-C"), "{e}");
    }
}
