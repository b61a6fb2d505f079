// SPDX-License-Identifier: GPL-2.0
//! Takes the samples `top` compares: `stats` and `procs`, read back to back,
//! stamped with a monotonic clock.

use std::time::Instant;

use crate::commands::watch::local_hms;
use crate::error::Result;
use crate::procfs::cowstat::Cowstat;
use crate::top::rates::Snapshot;

/// Reads snapshots of one cowstat directory.
pub struct Sampler {
    cs: Cowstat,
    start: Instant,
}

impl Sampler {
    /// A sampler of `cs`; its clock starts now.
    pub fn new(cs: Cowstat) -> Self {
        Sampler {
            cs,
            start: Instant::now(),
        }
    }

    /// The directory sampled.
    pub fn cowstat(&self) -> &Cowstat {
        &self.cs
    }

    /// Reads `stats` then `procs`.
    pub fn take(&self) -> Result<Snapshot> {
        let stats = self.cs.stats()?;
        let rows = self.cs.procs()?;
        Ok(Snapshot {
            t: self.start.elapsed().as_secs_f64(),
            time: local_hms(),
            stats,
            rows,
        })
    }
}
