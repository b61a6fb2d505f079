// SPDX-License-Identifier: GPL-2.0
//! `cow-demo watch`: one sample and its table line.

use serde::Serialize;

use crate::counter::Counter;
use crate::procfs::cowstat::Stats;

/// One interval of `cow-demo watch` (deltas over the interval).
#[derive(Debug, Clone, Serialize)]
pub struct WatchSample {
    /// Local wall-clock time, HH:MM:SS.
    pub time: String,
    /// Seconds since the first sample was taken.
    pub elapsed_s: f64,
    /// Counter deltas.
    pub delta: Stats,
}

/// The header line of the watch table (79 columns).
pub fn watch_header() -> String {
    format!(
        "{:<8} {:>9} {:>10} {:>8} {:>9} {:>9} {:>7} {:>6} {:>5}",
        "TIME",
        "WP_FAULTS",
        "COW_COPIES",
        "COW_ZERO",
        "WP_REUSES",
        "WP_SHARED",
        "UNSHARE",
        "THP_WP",
        "FORKS"
    )
}

/// One table line of watch.
pub fn watch_line(s: &WatchSample) -> String {
    let d = &s.delta;
    format!(
        "{:<8} {:>9} {:>10} {:>8} {:>9} {:>9} {:>7} {:>6} {:>5}",
        s.time,
        d[Counter::WpFaults],
        d[Counter::CowCopies],
        d[Counter::CowZero],
        d[Counter::WpReuses],
        d[Counter::WpShared],
        d[Counter::CowUnshare],
        d[Counter::ThpWpFaults],
        d[Counter::Forks]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_line_width() {
        assert!(watch_header().len() < 80);
        let s = WatchSample {
            time: "12:34:56".into(),
            elapsed_s: 1.0,
            delta: Stats::default(),
        };
        assert_eq!(watch_line(&s).len(), watch_header().len());
    }
}
