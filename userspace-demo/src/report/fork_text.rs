// SPDX-License-Identifier: GPL-2.0
//! `cow-demo fork`: the text form of its report.

use std::fmt::Write as _;

use crate::counter::Counter;
use crate::procfs::smaps::SmapsRange;
use crate::units::{format_bytes, format_ns};

use super::fork::{Check, Expected, ForkReport, ProcReport};
use super::text::{wrap, Align, Table};
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

#[cfg(test)]
mod tests {
    use super::super::fork::sample as sample_fork;
    use super::*;

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
}
