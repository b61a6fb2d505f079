// SPDX-License-Identifier: GPL-2.0
//! Report data (serde, stable JSON field names) and their text renderings
//! (under 80 columns), one file per command.

mod fork;
mod fork_text;
mod snapshot;
mod stats;
mod text;
mod watch;

use serde::Serialize;

use crate::error::Result;

pub use fork::{Check, Expected, ForkReport, ProcReport, ThpReport};
pub use fork_text::render_fork;
pub use snapshot::{render_snapshot, CopySample, SnapshotReport};
pub use stats::{render_histogram, render_procs, render_stats, StatsReport};
pub use text::{wrap, Align, Table};
pub use watch::{watch_header, watch_line, WatchSample};

/// Serialises `v` as one compact JSON line.
pub fn to_json<T: Serialize>(v: &T) -> Result<String> {
    Ok(serde_json::to_string(v)?)
}
