// SPDX-License-Identifier: GPL-2.0
//! cow-demo: userspace experiments for the cowstat kernel module (library part, reusable by selftests).

pub mod cli;
pub mod commands;
pub mod counter;
pub mod error;
pub mod ktap;
pub mod map;
pub mod procfs;
pub mod record;
pub mod report;
pub mod top;
pub mod units;
pub mod workload;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Command};
pub use crate::commands::Outcome;
pub use crate::error::{Error, Result};

/// Parses `args` (including argv[0]) and runs the subcommand.
///
/// `--help` and `--version` print and return `Ok(Outcome::Ok)`; other clap errors
/// become [`Error::Usage`].
pub fn run<I, T>(args: I) -> Result<Outcome>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                commands::print_out(&e.render().to_string())?;
                return Ok(Outcome::Ok);
            }
            return Err(Error::Usage(e.render().to_string()));
        }
    };
    match &cli.command {
        Command::Stats(a) => commands::stats::run(a),
        Command::Fork(a) => commands::fork::run(a),
        Command::Watch(a) => commands::watch::run(a),
        Command::Top(a) => commands::top::run(a),
        Command::Snapshot(a) => commands::snapshot::run(a),
        Command::Map(a) => commands::map::run(a),
    }
}

/// Maps a result to the process exit status (0 ok, 1 mismatch, 2 error), printing
/// errors to stderr with one `cow-demo: error:` prefix.
pub fn exit_code(r: &Result<Outcome>) -> i32 {
    match r {
        Ok(Outcome::Ok) => error::EXIT_OK,
        Ok(Outcome::Mismatch) => error::EXIT_MISMATCH,
        Err(e) => {
            eprintln!("cow-demo: error: {e}");
            error::EXIT_ERROR
        }
    }
}
