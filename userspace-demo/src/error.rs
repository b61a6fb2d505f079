// SPDX-License-Identifier: GPL-2.0
//! Error type of cow-demo: every message names the flag, file or syscall at fault and, where one exists, the fix.

use std::io;
use std::path::PathBuf;

/// Exit status: success.
pub const EXIT_OK: i32 = 0;
/// Exit status: the experiment ran but observed != expected (or a check failed).
pub const EXIT_MISMATCH: i32 = 1;
/// Exit status: bad usage or a runtime error (I/O, syscall, parse).
pub const EXIT_ERROR: i32 = 2;

/// A line of a /proc file that did not have the documented format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong with it.
    pub reason: String,
}

impl ParseError {
    /// Builds a parse error for 1-based `line`.
    pub fn new(line: usize, reason: impl Into<String>) -> Self {
        ParseError {
            line,
            reason: reason.into(),
        }
    }
}

/// Everything that makes cow-demo exit with status 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line error reported by clap (unknown flag, bad value, conflict);
    /// holds clap's text without its own `error: ` prefix.
    #[error("{}", .0.trim_start_matches("error: ").trim_end())]
    Usage(String),
    /// A flag value that parsed but makes no sense in context.
    #[error("invalid value '{value}' for '{flag}': {expected}")]
    InvalidValue {
        /// The flag, with dashes (`--pages`).
        flag: &'static str,
        /// What the user gave.
        value: String,
        /// The accepted form or range.
        expected: String,
    },
    /// The heap does not fit into available memory.
    #[error(
        "heap of {heap} ('--heap') is larger than MemAvailable {available} (/proc/meminfo): \
         choose a smaller --heap"
    )]
    HeapTooLarge {
        /// Requested size, formatted.
        heap: String,
        /// MemAvailable, formatted.
        available: String,
    },
    /// /proc/cowstat does not exist but the command needs it.
    #[error(
        "cowstat module not loaded: {} not found (load it with insmod cowstat.ko, \
         or point COWSTAT_PROC at a directory with the same files)",
        .0.display()
    )]
    NotLoaded(PathBuf),
    /// Reading or writing a file failed.
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        /// "read", "open", "write".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A /proc file did not have the documented format.
    #[error("failed to parse {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Which line and why.
        #[source]
        source: ParseError,
    },
    /// A system call failed.
    #[error("{call} failed: {source}")]
    Syscall {
        /// The call and what it was for, e.g. "mmap of the 64.0 MiB heap".
        call: String,
        /// errno.
        #[source]
        source: io::Error,
    },
    /// The child process misbehaved (died, sent a short record...).
    #[error("child process: {0}")]
    Child(String),
    /// Writing the report failed (e.g. JSON serialisation).
    #[error("failed to write the report: {0}")]
    Output(String),
}

impl Error {
    /// Wraps the current errno for `call`.
    pub fn last_os(call: impl Into<String>) -> Self {
        Error::Syscall {
            call: call.into(),
            source: io::Error::last_os_error(),
        }
    }

    /// Wraps an I/O error on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Output(e.to_string())
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_flag_and_fix() {
        let e = Error::InvalidValue {
            flag: "--heap",
            value: "12Q".into(),
            expected: crate::units::SIZE_FORM.into(),
        };
        assert_eq!(
            e.to_string(),
            "invalid value '12Q' for '--heap': expected a size like 64M, 1G or 4096K"
        );
        let e = Error::HeapTooLarge {
            heap: "1.0 TiB".into(),
            available: "23.0 GiB".into(),
        };
        assert!(e.to_string().contains("MemAvailable 23.0 GiB"));
        assert!(e.to_string().contains("smaller --heap"));
        let e = Error::NotLoaded("/proc/cowstat/stats".into());
        assert!(e.to_string().contains("insmod cowstat.ko"));
    }
}
