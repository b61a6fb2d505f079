// SPDX-License-Identifier: GPL-2.0
//! The subcommands: stats, fork, watch, top, snapshot and map.

pub mod fork;
pub mod map;
pub mod snapshot;
pub mod stats;
pub mod top;
pub mod watch;
pub mod watch_pid;

use std::io::Write;

use crate::error::{Error, Result};

/// How a command that ran to completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything as expected (exit 0).
    Ok,
    /// Observed != expected, or a check failed (exit 1).
    Mismatch,
}

/// Writes `s` to stdout; a closed pipe (`| head`) ends the program quietly with status 0.
pub fn print_out(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Error::Output(e.to_string())),
    }
}
