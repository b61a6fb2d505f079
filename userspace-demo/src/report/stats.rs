// SPDX-License-Identifier: GPL-2.0
//! `cow-demo stats`: the report and its text form (the module's own layouts).

use std::fmt::Write as _;

use serde::Serialize;

use crate::counter::Counter;
use crate::procfs::cowstat::{Bucket, ProbeRow, ProcRow, Stats};

use super::text::{Align, Table};

/// Output of `cow-demo stats`.
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    /// The directory read.
    pub source: String,
    /// Global counters.
    pub stats: Stats,
    /// Per-process rows.
    pub procs: Vec<ProcRow>,
    /// Probe status (None if the file is missing).
    pub probes: Option<Vec<ProbeRow>>,
    /// dup_mmap latency histogram (None if the file is missing).
    pub fork_latency: Option<Vec<Bucket>>,
}

/// Renders the procs rows in the module's own 78-column layout.
pub fn render_procs(rows: &[ProcRow]) -> String {
    let [f, c, z, r, t] = Counter::PROCS.map(Counter::name);
    let mut out = format!(
        "{:>7} {:<16} {f:>9} {c:>10} {z:>8} {r:>9} {t:>13}\n",
        "pid", "comm"
    );
    for r in rows {
        let pid = r.pid.map_or("-".to_string(), |p| p.to_string());
        let c = &r.counts;
        let _ = writeln!(
            out,
            "{:>7} {:<16} {:>9} {:>10} {:>8} {:>9} {:>13}",
            pid, r.comm, c.wp_faults, c.cow_copies, c.cow_zero, c.wp_reuses, c.thp_wp_faults
        );
    }
    out
}

/// Renders a log2 histogram, bcc biolatency style.
pub fn render_histogram(b: &[Bucket]) -> String {
    let mut out = format!(
        "{:>10} {:<13}: {:<8} {}\n",
        "usecs", "", "count", "distribution"
    );
    let max = b.iter().map(|x| x.count).max().unwrap_or(0);
    for x in b {
        let stars = if max > 0 {
            ((x.count * 40).div_ceil(max)) as usize
        } else {
            0
        };
        let _ = writeln!(
            out,
            "{:>10} -> {:<10}: {:<8} |{:<40}|",
            x.low_us,
            x.high_us,
            x.count,
            "*".repeat(stars.min(40))
        );
    }
    out
}

/// Text form of `cow-demo stats`.
pub fn render_stats(r: &StatsReport) -> String {
    let mut out = format!("{}/stats\n", r.source);
    for (name, v) in r.stats.entries() {
        let _ = writeln!(out, "  {name:<16}{v:>14}");
    }
    let _ = writeln!(out, "\n{}/procs ({} rows)", r.source, r.procs.len());
    out.push_str(&render_procs(&r.procs));
    if let Some(p) = &r.probes {
        let _ = writeln!(out, "\n{}/probes", r.source);
        let mut t = Table::new(
            &["function", "kind", "status", "hits", "counts"],
            &[
                Align::Left,
                Align::Left,
                Align::Left,
                Align::Right,
                Align::Left,
            ],
        );
        for x in p {
            t.row(vec![
                x.function.clone(),
                x.kind.clone(),
                x.status.clone(),
                x.hits.to_string(),
                x.counts.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    if let Some(h) = &r.fork_latency {
        let _ = writeln!(out, "\n{}/fork_latency", r.source);
        out.push_str(&render_histogram(h));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procs_table_matches_module_layout() {
        let rows = crate::procfs::cowstat::parse_procs(
            "    pid comm             wp_faults cow_copies cow_zero wp_reuses thp_wp_faults
    412 cow-demo              4099       4099        0         0             0
      - <other>                 12         12        0         0             0
",
        )
        .unwrap();
        let s = render_procs(&rows);
        assert_eq!(s.lines().next().unwrap().len(), 78);
        assert_eq!(
            s.lines().nth(1).unwrap(),
            "    412 cow-demo              4099       4099        0         0             0"
        );
        assert!(s.lines().nth(2).unwrap().starts_with("      - <other>"));
    }

    #[test]
    fn histogram_bars() {
        let h = [
            Bucket {
                low_us: 0,
                high_us: 1,
                count: 0,
            },
            Bucket {
                low_us: 4,
                high_us: 7,
                count: 2,
            },
            Bucket {
                low_us: 8,
                high_us: 15,
                count: 1,
            },
        ];
        let s = render_histogram(&h);
        assert!(s.lines().nth(2).unwrap().contains(&"*".repeat(40)));
        assert!(s.lines().nth(3).unwrap().contains(&format!(
            "|{}{}|",
            "*".repeat(20),
            " ".repeat(20)
        )));
        assert!(s.lines().all(|l| l.len() < 80));
    }
}
