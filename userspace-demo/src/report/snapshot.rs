// SPDX-License-Identifier: GPL-2.0
//! `cow-demo snapshot`: the report and its text form.

use std::fmt::Write as _;

use serde::Serialize;

use crate::units::{format_bytes, format_ns};

use super::text::{wrap, Align, Table};

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
    use crate::report::to_json;

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
}
