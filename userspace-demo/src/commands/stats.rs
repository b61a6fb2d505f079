// SPDX-License-Identifier: GPL-2.0
//! `cow-demo stats`: read and print the cowstat counters and per-process rows.

use crate::cli::StatsArgs;
use crate::commands::{print_out, Outcome};
use crate::error::Result;
use crate::procfs::cowstat::Cowstat;
use crate::report::{render_stats, to_json, StatsReport};

/// Reads all cowstat files of `cs`; `probes` and `fork_latency` are optional.
pub fn collect(cs: &Cowstat) -> Result<StatsReport> {
    cs.require()?;
    let optional = |name: &str| cs.path(name).exists();
    Ok(StatsReport {
        source: cs.dir().display().to_string(),
        stats: cs.stats()?,
        procs: cs.procs()?,
        probes: if optional("probes") {
            Some(cs.probes()?)
        } else {
            None
        },
        fork_latency: if optional("fork_latency") {
            Some(cs.fork_latency()?)
        } else {
            None
        },
    })
}

/// Runs the command.
pub fn run(a: &StatsArgs) -> Result<Outcome> {
    let r = collect(&Cowstat::locate())?;
    if a.json {
        print_out(&(to_json(&r)? + "\n"))?;
    } else {
        print_out(&render_stats(&r))?;
    }
    Ok(Outcome::Ok)
}
