// SPDX-License-Identifier: GPL-2.0
//! Report data (serde, stable JSON field names) and their text renderings (under 80 columns).

use std::fmt::Write as _;

use serde::Serialize;

use crate::counter::Counter;
use crate::error::Result;
use crate::procfs::cowstat::{Bucket, Counts, ProbeRow, ProcRow, Stats};
use crate::procfs::pagemap::PagemapCounts;
use crate::procfs::smaps::SmapsRange;
use crate::units::{format_bytes, format_ns};

/// Serialises `v` as one compact JSON line.
pub fn to_json<T: Serialize>(v: &T) -> Result<String> {
    Ok(serde_json::to_string(v)?)
}

/// Wraps `text` at `width` columns, breaking at spaces; continuation lines get `indent` spaces.
pub fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let len = line.chars().count();
        if len > indent && len + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
        } else if len > 0 && !line.ends_with(' ') {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// Column alignment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Pad on the right.
    Left,
    /// Pad on the left.
    Right,
}

/// A plain text table: columns as wide as their widest cell, one space apart.
pub struct Table {
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with the given header and alignments (one per column).
    pub fn new(header: &[&str], align: &[Align]) -> Self {
        Table {
            align: align.to_vec(),
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders with a trailing newline per row, no trailing spaces.
    pub fn render(&self) -> String {
        let cols = self.align.len();
        let mut w = vec![0usize; cols];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate().take(cols) {
                if i > 0 {
                    line.push(' ');
                }
                let pad = w[i] - c.chars().count();
                match self.align[i] {
                    Align::Left => {
                        line.push_str(c);
                        line.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(c);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

// ---------------------------------------------------------------- stats

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

// ---------------------------------------------------------------- fork

/// Expected counter values of one process; `None` = not predictable here, not checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// Expected write faults.
    pub wp_faults: Option<u64>,
    /// Expected copies.
    pub cow_copies: Option<u64>,
    /// Expected zero-page breaks.
    pub cow_zero: Option<u64>,
    /// Expected reuses.
    pub wp_reuses: Option<u64>,
    /// Expected huge-PMD write faults.
    pub thp_wp_faults: Option<u64>,
}

impl Expected {
    /// All five known.
    pub fn exact(c: Counts) -> Self {
        Expected {
            wp_faults: Some(c.wp_faults),
            cow_copies: Some(c.cow_copies),
            cow_zero: Some(c.cow_zero),
            wp_reuses: Some(c.wp_reuses),
            thp_wp_faults: Some(c.thp_wp_faults),
        }
    }

    /// The value expected for `c` (`None` also for non-`procs` counters).
    pub fn get(&self, c: Counter) -> Option<u64> {
        match c {
            Counter::WpFaults => self.wp_faults,
            Counter::CowCopies => self.cow_copies,
            Counter::CowZero => self.cow_zero,
            Counter::WpReuses => self.wp_reuses,
            Counter::ThpWpFaults => self.thp_wp_faults,
            _ => None,
        }
    }
}

/// Everything measured about one process of the fork experiment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcReport {
    /// Its pid.
    pub pid: u32,
    /// True if it wrote the K pages.
    pub wrote: bool,
    /// Expected cowstat deltas over the write window.
    pub expected: Expected,
    /// Observed cowstat deltas over the write window (None without the module).
    pub observed: Option<Counts>,
    /// Its whole cowstat row read after the child exited (includes start-up and
    /// measurement overhead outside the window).
    pub row_after_exit: Option<Counts>,
    /// Minor page faults (getrusage) during the write window, if measured.
    pub minor_faults: Option<u64>,
    /// Expected minor faults during the write window.
    pub expected_minor_faults: Option<u64>,
    /// Average ns per page of the first write (the faulting one), if it wrote.
    pub write_ns_per_page: Option<f64>,
    /// Average ns per page of rewriting the same pages (no fault), if it wrote.
    pub rewrite_ns_per_page: Option<f64>,
    /// Heap smaps before the fork (parent only).
    pub smaps_before_fork: Option<SmapsRange>,
    /// Heap smaps after the fork, before any write.
    pub smaps_before_write: Option<SmapsRange>,
    /// Heap smaps after the writes.
    pub smaps_after_write: Option<SmapsRange>,
    /// Heap pagemap counts after the fork, before any write.
    pub pagemap_before_write: Option<PagemapCounts>,
    /// Heap pagemap counts after the writes.
    pub pagemap_after_write: Option<PagemapCounts>,
}

/// THP facts of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ThpReport {
    /// `--thp on`.
    pub requested: bool,
    /// /sys/kernel/mm/transparent_hugepage/enabled selection, e.g. "madvise".
    pub system_mode: Option<String>,
    /// madvise(MADV_HUGEPAGE/NOHUGEPAGE) succeeded.
    pub madvise_ok: bool,
    /// PMD size in bytes.
    pub pmd_size: u64,
    /// Full PMD-sized regions in the heap.
    pub huge_regions: u64,
    /// AnonHugePages of the heap before the fork, kB.
    pub anon_huge_kb_before: u64,
    /// "off", "yes" (every region huge), "partial" or "unavailable".
    pub used: String,
    /// Distinct huge regions containing written pages.
    pub regions_touched: u64,
}

/// One compared value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// e.g. "child.cow_copies" or "child.pagemap_exclusive".
    pub name: String,
    /// Expected value.
    pub expected: u64,
    /// Observed value.
    pub observed: u64,
    /// expected == observed.
    pub ok: bool,
}

/// Output of `cow-demo fork`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ForkReport {
    /// Heap size in bytes.
    pub heap_bytes: u64,
    /// Base page size.
    pub page_size: u64,
    /// Heap pages.
    pub heap_pages: u64,
    /// K, the pages written.
    pub write_pages: u64,
    /// "child", "parent", "both" or "parent-after-exit".
    pub writer: String,
    /// "seq", "stride:N" or "random".
    pub pattern: String,
    /// Seed of the random order.
    pub seed: u64,
    /// CPU the run was pinned to.
    pub cpu: u32,
    /// THP facts.
    pub thp: ThpReport,
    /// /proc/cowstat (or $COWSTAT_PROC) was present.
    pub cowstat_loaded: bool,
    /// Nanoseconds the parent spent in fork().
    pub fork_ns: u64,
    /// Nanoseconds in dup_mmap per cowstat's fork_ns (None without the module).
    pub dup_mmap_ns: Option<u64>,
    /// Average ns of a userspace 4 KiB memcpy between distinct pages.
    pub memcpy_4k_ns: f64,
    /// The parent.
    pub parent: ProcReport,
    /// The child.
    pub child: ProcReport,
    /// Every comparison made.
    pub checks: Vec<Check>,
    /// Facts and caveats worth reading.
    pub notes: Vec<String>,
    /// "OK", "MISMATCH" or "UNVERIFIED".
    pub verdict: String,
    /// Names of failed checks.
    pub mismatches: Vec<String>,
}

fn opt(v: Option<u64>) -> String {
    v.map_or("?".to_string(), |x| x.to_string())
}

fn kind_of_write(e: &Expected) -> &'static str {
    if e.cow_copies.unwrap_or(0) > 0 {
        "COW copy"
    } else if e.wp_reuses.unwrap_or(0) > 0 || e.thp_wp_faults.unwrap_or(0) > 0 {
        "reuse"
    } else {
        "write"
    }
}

/// Text form of `cow-demo fork`.
pub fn render_fork(r: &ForkReport) -> String {
    let mut o = String::new();
    let thp = if r.thp.requested {
        format!("on ({})", r.thp.used)
    } else {
        "off".to_string()
    };
    o.push_str(&wrap(
        &format!(
            "heap {}, page {}, K {} pages, writer {}, pattern {}, THP {}",
            format_bytes(r.heap_bytes),
            format_bytes(r.page_size),
            r.write_pages,
            r.writer,
            r.pattern,
            thp
        ),
        79,
        2,
    ));
    let _ = writeln!(
        o,
        "{} heap pages, {:.1}% written; CPU {} (pinned); seed {}; pids {}/{}",
        r.heap_pages,
        r.write_pages as f64 * 100.0 / r.heap_pages.max(1) as f64,
        r.cpu,
        r.seed,
        r.parent.pid,
        r.child.pid
    );
    let dup = r.dup_mmap_ns.map_or(String::new(), |d| {
        format!(" (dup_mmap {})", format_ns(d as f64))
    });
    let _ = writeln!(o, "fork: {}{dup}", format_ns(r.fork_ns as f64));
    for n in &r.notes {
        o.push_str(&wrap(&format!("note: {n}"), 79, 6));
    }

    o.push('\n');
    if r.cowstat_loaded {
        let _ = writeln!(o, "cowstat deltas over the write window:");
        let mut t = Table::new(
            &[
                "counter",
                "parent exp",
                "parent obs",
                "child exp",
                "child obs",
            ],
            &[
                Align::Left,
                Align::Right,
                Align::Right,
                Align::Right,
                Align::Right,
            ],
        );
        for name in Counter::FORK_ROWS {
            let obs = |p: &ProcReport| {
                p.observed
                    .and_then(|c| c.get(name))
                    .map_or("-".to_string(), |v| v.to_string())
            };
            t.row(vec![
                name.to_string(),
                opt(r.parent.expected.get(name)),
                obs(&r.parent),
                opt(r.child.expected.get(name)),
                obs(&r.child),
            ]);
        }
        o.push_str(&t.render());
        if let (Some(p), Some(c)) = (r.parent.row_after_exit, r.child.row_after_exit) {
            o.push_str(&wrap(
                &format!(
                    "whole rows after exit (copies/faults, incl. start-up): \
                     parent {}/{}, child {}/{}",
                    p.cow_copies, p.wp_faults, c.cow_copies, c.wp_faults
                ),
                79,
                2,
            ));
        }
        o.push('\n');
    }

    let mf = |p: &ProcReport| match (p.minor_faults, p.expected_minor_faults) {
        (Some(o), e) => Some(format!("{o} (expected {})", opt(e))),
        _ => None,
    };
    let parts: Vec<String> = [("parent", mf(&r.parent)), ("child", mf(&r.child))]
        .into_iter()
        .filter_map(|(w, s)| s.map(|s| format!("{w} {s}")))
        .collect();
    if !parts.is_empty() {
        o.push_str(&wrap(
            &format!("minor faults in the write window: {}", parts.join(", ")),
            79,
            2,
        ));
    }
    let _ = writeln!(o, "smaps of the heap VMA (kB):");
    let mut t = Table::new(
        &["", "Rss", "Shared_Dirty", "Private_Dirty", "AnonHugePages"],
        &[
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
    );
    let mut srow = |label: &str, s: &Option<SmapsRange>| {
        if let Some(s) = s {
            t.row(vec![
                label.to_string(),
                s.rss_kb.to_string(),
                s.shared_dirty_kb.to_string(),
                s.private_dirty_kb.to_string(),
                s.anon_huge_kb.to_string(),
            ]);
        }
    };
    srow("parent before fork", &r.parent.smaps_before_fork);
    srow("parent before write", &r.parent.smaps_before_write);
    srow("parent after write", &r.parent.smaps_after_write);
    srow("child before write", &r.child.smaps_before_write);
    srow("child after write", &r.child.smaps_after_write);
    o.push_str(&t.render());

    for (who, p) in [("parent", &r.parent), ("child", &r.child)] {
        if let (Some(b), Some(a)) = (p.pagemap_before_write, p.pagemap_after_write) {
            let _ = writeln!(
                o,
                "pagemap exclusive pages, {who}: {} before write, {} after ({} present)",
                b.exclusive, a.exclusive, a.present
            );
        }
    }

    o.push('\n');
    let mut t = Table::new(
        &["cost per page", "time", "vs rewrite", "vs memcpy"],
        &[Align::Left, Align::Right, Align::Right, Align::Right],
    );
    let mut rewrite = None;
    for (who, p) in [("child", &r.child), ("parent", &r.parent)] {
        if let Some(w) = p.write_ns_per_page {
            let rw = p.rewrite_ns_per_page.unwrap_or(f64::NAN);
            rewrite.get_or_insert(rw);
            t.row(vec![
                format!("{who} write ({})", kind_of_write(&p.expected)),
                format_ns(w),
                format!("{:.1}x", w / rw),
                format!("{:.1}x", w / r.memcpy_4k_ns),
            ]);
        }
    }
    if let Some(rw) = rewrite {
        t.row(vec![
            "rewrite (no fault)".into(),
            format_ns(rw),
            String::new(),
            String::new(),
        ]);
    }
    t.row(vec![
        "memcpy 4 KiB".into(),
        format_ns(r.memcpy_4k_ns),
        String::new(),
        String::new(),
    ]);
    o.push_str(&t.render());

    let bad: Vec<&Check> = r.checks.iter().filter(|c| !c.ok).collect();
    if !bad.is_empty() {
        o.push('\n');
        for c in &bad {
            let _ = writeln!(
                o,
                "MISMATCH {}: expected {}, observed {}",
                c.name, c.expected, c.observed
            );
        }
    }
    o.push('\n');
    let scope = if r.cowstat_loaded {
        ""
    } else {
        "; smaps/pagemap cross-checks only"
    };
    match r.verdict.as_str() {
        "OK" => {
            let _ = writeln!(o, "verdict: OK (observed == expected{scope})");
        }
        "MISMATCH" => {
            let _ = writeln!(o, "verdict: MISMATCH ({}{scope})", r.mismatches.join(", "));
        }
        other => {
            let _ = writeln!(o, "verdict: {other} (nothing could be compared)");
        }
    }
    o
}

// ---------------------------------------------------------------- watch

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

// ---------------------------------------------------------------- snapshot

/// A sample of the parent's cowstat row during the save.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CopySample {
    /// Milliseconds since the fork.
    pub t_ms: f64,
    /// Parent cow_copies since the fork.
    pub cow_copies: u64,
    /// Parent small-key updates done since the fork.
    pub updates: u64,
}

/// Output of `cow-demo snapshot`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapshotReport {
    /// Small keys.
    pub keys: u64,
    /// Bytes per small value.
    pub value_size: u64,
    /// Big keys.
    pub big_keys: u64,
    /// Bytes per big value.
    pub big_size: u64,
    /// Bytes of the data set (the heap).
    pub heap_bytes: u64,
    /// Heap pages.
    pub heap_pages: u64,
    /// Baseline mode (no fork, memcpy).
    pub no_fork: bool,
    /// ns in fork() (0 with --no-fork).
    pub fork_ns: u64,
    /// ns to memcpy the whole data set (--no-fork only).
    pub memcpy_ns: Option<u64>,
    /// Checksum when the fork happened.
    pub checksum_at_fork: String,
    /// Checksum the child computed over what it saved.
    pub checksum_snapshot: String,
    /// Parent's checksum after the save.
    pub checksum_final: String,
    /// checksum_snapshot == checksum_at_fork.
    pub snapshot_exact: bool,
    /// Small-key updates done by the parent during the save.
    pub updates: u64,
    /// A big value was rewritten mid-save.
    pub big_key_updated: bool,
    /// Parent cow_copies just before / after the big-key rewrite.
    pub big_key_copies: Option<u64>,
    /// Child save duration, ns.
    pub save_ns: u64,
    /// Bytes the child wrote.
    pub saved_bytes: u64,
    /// Where it wrote them.
    pub out: String,
    /// Parent pages copied during the save: cowstat cow_copies, or without the module
    /// the heap's Private_Dirty in pages.
    pub cow_copies: Option<u64>,
    /// Child cow_copies during its life (should be ~0: it only reads).
    pub child_cow_copies: Option<u64>,
    /// Private_Dirty growth of the parent heap during the save, kB (smaps cross-check).
    pub parent_private_dirty_kb: Option<u64>,
    /// copied pages × page size / heap.
    pub overhead_percent: Option<f64>,
    /// Samples every ~100 ms.
    pub samples: Vec<CopySample>,
    /// Facts and caveats.
    pub notes: Vec<String>,
    /// "OK" or "MISMATCH".
    pub verdict: String,
}

/// Text form of `cow-demo snapshot`.
pub fn render_snapshot(r: &SnapshotReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "data set {}: {} keys x {} B + {} big keys x {} ({} pages)",
        format_bytes(r.heap_bytes),
        r.keys,
        r.value_size,
        r.big_keys,
        format_bytes(r.big_size),
        r.heap_pages
    );
    for n in &r.notes {
        o.push_str(&wrap(&format!("note: {n}"), 79, 6));
    }
    if r.no_fork {
        let m = r.memcpy_ns.unwrap_or(0);
        let _ = writeln!(
            o,
            "no-fork baseline: memcpy of the data set {} ({:.2} GB/s)",
            format_ns(m as f64),
            r.heap_bytes as f64 / m.max(1) as f64
        );
        let _ = writeln!(o, "checksum {}", r.checksum_at_fork);
        let _ = writeln!(o, "\nverdict: {}", r.verdict);
        return o;
    }
    let _ = writeln!(o, "fork: {}", format_ns(r.fork_ns as f64));
    o.push_str(&wrap(
        &format!(
            "save: {} to {} in {} while the parent made {} updates{}",
            format_bytes(r.saved_bytes),
            r.out,
            format_ns(r.save_ns as f64),
            r.updates,
            if r.big_key_updated {
                " + 1 big-key rewrite"
            } else {
                ""
            }
        ),
        79,
        2,
    ));
    let _ = writeln!(o, "checksum at fork   {}", r.checksum_at_fork);
    let _ = writeln!(
        o,
        "checksum snapshot  {}  {}",
        r.checksum_snapshot,
        if r.snapshot_exact {
            "(snapshot exact)"
        } else {
            "(DIFFERS)"
        }
    );
    let _ = writeln!(
        o,
        "checksum final     {}  {}",
        r.checksum_final,
        if r.checksum_final != r.checksum_at_fork {
            "(parent moved on)"
        } else {
            "(unchanged)"
        }
    );
    if !r.samples.is_empty() {
        let _ = writeln!(o, "\nparent pages copied during the save:");
        let mut t = Table::new(
            &["t_ms", "pages_copied", "updates", "bytes"],
            &[Align::Right, Align::Right, Align::Right, Align::Right],
        );
        for s in &r.samples {
            t.row(vec![
                format!("{:.0}", s.t_ms),
                s.cow_copies.to_string(),
                s.updates.to_string(),
                format_bytes(s.cow_copies * (r.heap_bytes / r.heap_pages.max(1))),
            ]);
        }
        o.push_str(&t.render());
    }
    if let Some(c) = r.cow_copies {
        let _ = writeln!(
            o,
            "\nmemory overhead: {} pages copied = {} = {:.1}% of the heap",
            c,
            format_bytes(c * (r.heap_bytes / r.heap_pages.max(1))),
            r.overhead_percent.unwrap_or(0.0)
        );
    }
    if let Some(pd) = r.parent_private_dirty_kb {
        let _ = writeln!(o, "smaps cross-check: parent Private_Dirty +{pd} kB");
    }
    if let Some(b) = r.big_key_copies {
        let _ = writeln!(
            o,
            "big-key rewrite: +{b} copies (value {} / page = {})",
            format_bytes(r.big_size),
            r.big_size / (r.heap_bytes / r.heap_pages.max(1))
        );
    }
    if let Some(c) = r.child_cow_copies {
        let _ = writeln!(o, "child cow_copies while saving: {c}");
    }
    let _ = writeln!(o, "\nverdict: {}", r.verdict);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(k: u64) -> Counts {
        Counts {
            wp_faults: k,
            cow_copies: k,
            ..Default::default()
        }
    }

    fn sample_fork() -> ForkReport {
        let sm = SmapsRange {
            vmas: 1,
            rss_kb: 65536,
            shared_dirty_kb: 65536,
            private_dirty_kb: 0,
            anonymous_kb: 65536,
            anon_huge_kb: 0,
        };
        ForkReport {
            heap_bytes: 64 << 20,
            page_size: 4096,
            heap_pages: 16384,
            write_pages: 4096,
            writer: "child".into(),
            pattern: "stride:512".into(),
            seed: 1,
            cpu: 1,
            thp: ThpReport {
                used: "off".into(),
                ..Default::default()
            },
            cowstat_loaded: true,
            fork_ns: 1_234_567,
            dup_mmap_ns: Some(1_100_000),
            memcpy_4k_ns: 306.0,
            parent: ProcReport {
                pid: 4_194_303,
                expected: Expected::exact(Counts::default()),
                observed: Some(Counts::default()),
                row_after_exit: Some(counts(123_456)),
                smaps_before_fork: Some(sm),
                smaps_before_write: Some(sm),
                ..Default::default()
            },
            child: ProcReport {
                pid: 4_194_304,
                wrote: true,
                expected: Expected::exact(counts(4096)),
                observed: Some(counts(4096)),
                row_after_exit: Some(counts(4_123)),
                write_ns_per_page: Some(2512.0),
                rewrite_ns_per_page: Some(130.0),
                smaps_before_write: Some(sm),
                smaps_after_write: Some(SmapsRange {
                    shared_dirty_kb: 49152,
                    private_dirty_kb: 16384,
                    ..sm
                }),
                pagemap_before_write: Some(PagemapCounts {
                    pages: 16384,
                    present: 16384,
                    exclusive: 0,
                }),
                pagemap_after_write: Some(PagemapCounts {
                    pages: 16384,
                    present: 16384,
                    exclusive: 4096,
                }),
                ..Default::default()
            },
            checks: vec![Check {
                name: "child.cow_copies".into(),
                expected: 4096,
                observed: 4096,
                ok: true,
            }],
            notes: vec![
                "cowstat module not loaded: showing smaps/pagemap figures only (load it with insmod cowstat.ko)".into(),
            ],
            verdict: "OK".into(),
            mismatches: vec![],
        }
    }

    #[test]
    fn fork_text_fits_80_columns() {
        let s = render_fork(&sample_fork());
        for l in s.lines() {
            assert!(l.chars().count() < 80, "too wide: {l:?}");
        }
        assert!(s.starts_with("heap 64 MiB, page 4 KiB, K 4096 pages, writer child"));
        assert!(s.contains("verdict: OK (observed == expected)"));
        assert!(s.contains("child write (COW copy)"));
        assert!(s.contains("19.3x"));
        assert!(s.contains(
            "pagemap exclusive pages, child: 0 before write, 4096 after (16384 present)"
        ));
    }

    #[test]
    fn fork_text_mismatch_and_no_module() {
        let mut r = sample_fork();
        r.checks[0].observed = 4097;
        r.checks[0].ok = false;
        r.verdict = "MISMATCH".into();
        r.mismatches = vec!["child.cow_copies".into()];
        let s = render_fork(&r);
        assert!(s.contains("MISMATCH child.cow_copies: expected 4096, observed 4097"));
        assert!(s.contains("verdict: MISMATCH (child.cow_copies)"));
        r.cowstat_loaded = false;
        r.verdict = "OK".into();
        let s = render_fork(&r);
        assert!(!s.contains("cowstat deltas"));
        assert!(s.contains("verdict: OK (observed == expected; smaps/pagemap cross-checks only)"));
    }

    #[test]
    fn fork_json_field_names() {
        let v: serde_json::Value = serde_json::from_str(&to_json(&sample_fork()).unwrap()).unwrap();
        for k in [
            "heap_bytes",
            "page_size",
            "write_pages",
            "writer",
            "pattern",
            "thp",
            "fork_ns",
            "memcpy_4k_ns",
            "parent",
            "child",
            "checks",
            "verdict",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["child"]["observed"]["cow_copies"], 4096);
        assert_eq!(v["child"]["expected"]["wp_reuses"], 0);
        assert_eq!(v["child"]["pagemap_after_write"]["exclusive"], 4096);
        assert_eq!(v["child"]["smaps_after_write"]["private_dirty_kb"], 16384);
    }

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

    #[test]
    fn snapshot_text() {
        let r = SnapshotReport {
            keys: 100_000,
            value_size: 64,
            big_keys: 2,
            big_size: 4 << 20,
            heap_bytes: 3611 * 4096,
            heap_pages: 3611,
            fork_ns: 768_000,
            checksum_at_fork: "11ecb47aeaf272fd".into(),
            checksum_snapshot: "11ecb47aeaf272fd".into(),
            checksum_final: "a08fea756127355c".into(),
            snapshot_exact: true,
            updates: 14994,
            big_key_updated: true,
            big_key_copies: Some(1024),
            save_ns: 1_500_000_000,
            saved_bytes: 14_788_608,
            out: "/a/rather/long/path/to/a/dump/file/somewhere/deep/down/dump.rdb".into(),
            cow_copies: Some(2587),
            overhead_percent: Some(71.6),
            samples: vec![CopySample {
                t_ms: 100.0,
                cow_copies: 1500,
                updates: 1000,
            }],
            notes: vec!["a long note ".repeat(10)],
            verdict: "OK (snapshot exact: child checksum == checksum at fork)".into(),
            ..Default::default()
        };
        let s = render_snapshot(&r);
        for l in s.lines() {
            assert!(l.chars().count() < 80, "too wide: {l:?}");
        }
        assert!(s.contains("(snapshot exact)"));
        assert!(s.contains("(parent moved on)"));
        assert!(s.contains("big-key rewrite: +1024 copies (value 4 MiB / page = 1024)"));
        assert!(s.contains("2587 pages copied = 10.1 MiB = 71.6% of the heap"));
        let v: serde_json::Value = serde_json::from_str(&to_json(&r).unwrap()).unwrap();
        assert_eq!(v["snapshot_exact"], true);
        assert_eq!(v["samples"][0]["cow_copies"], 1500);
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a b c", 79, 2), "a b c\n");
        assert_eq!(wrap("aaa bbb ccc", 7, 2), "aaa bbb\n  ccc\n");
        let long = "note: ".to_string() + &"word ".repeat(40);
        let w = wrap(&long, 79, 6);
        assert!(w.lines().all(|l| l.len() <= 79));
        assert!(w.lines().nth(1).unwrap().starts_with("      word"));
    }

    #[test]
    fn table_alignment() {
        let mut t = Table::new(&["a", "bb"], &[Align::Left, Align::Right]);
        t.row(vec!["xyz".into(), "1".into()]);
        assert_eq!(t.render(), "a   bb\nxyz  1\n");
    }
}
