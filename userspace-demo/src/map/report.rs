// SPDX-License-Identifier: GPL-2.0
//! One frame of the map from the sampled pagemap entries, and the final
//! report (text lines, JSON) with its agreement lines.

use serde::Serialize;

use super::agree::Agreement;
use super::ansi;
use super::classify::{state, Entry, Page, State, Tally};
use super::grid::{CellCounts, Grid, COLS};
use crate::procfs::cowstat::Counts;

/// Pagemap of both processes at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The parent's entries.
    pub parent: Vec<Entry>,
    /// The child's entries; `None` once it has exited.
    pub child: Option<Vec<Entry>>,
    /// Pages the parent maps with a huge PMD.
    pub parent_huge: Vec<bool>,
    /// Pages the child maps with a huge PMD.
    pub child_huge: Vec<bool>,
}

/// Who wrote which page since the fork (cow-demo's own workers only).
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Per page: the parent wrote it.
    pub parent: Vec<bool>,
    /// Per page: the child wrote it.
    pub child: Vec<bool>,
}

/// The pages of a sample against the fork-time `base`.
pub fn pages(base: &[Entry], s: &Sample, w: &Written) -> Vec<Page> {
    let at = |v: &[bool], i: usize| v.get(i).copied().unwrap_or(false);
    base.iter()
        .enumerate()
        .map(|(i, &b)| Page {
            base: b,
            parent: s.parent.get(i).copied().unwrap_or_default(),
            child: s
                .child
                .as_ref()
                .map(|c| c.get(i).copied().unwrap_or_default()),
            parent_wrote: at(&w.parent, i),
            child_wrote: at(&w.child, i),
            parent_huge: at(&s.parent_huge, i),
            child_huge: at(&s.child_huge, i),
        })
        .collect()
}

/// The per-page states of `pages`.
pub fn states(pages: &[Page], zero_pfn: Option<u64>) -> Vec<State> {
    pages.iter().map(|p| state(p, zero_pfn)).collect()
}

/// Counter deltas of both processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pair {
    /// The child's.
    pub child: Counts,
    /// The parent's.
    pub parent: Counts,
}

/// Everything `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct MapReport {
    /// `fork` (cow-demo's own workers) or `pid` (an existing process).
    pub mode: &'static str,
    /// The parent's pid.
    pub parent_pid: u32,
    /// The child's pid.
    pub child_pid: u32,
    /// First address of the mapped range.
    pub start: u64,
    /// One past its last byte.
    pub bytes: u64,
    /// Bytes per page.
    pub page_size: u64,
    /// Pages in the range.
    pub pages: u64,
    /// Pages per cell.
    pub pages_per_cell: u64,
    /// Cells per row.
    pub columns: usize,
    /// Rows of cells.
    pub rows: usize,
    /// Who wrote (`child`, `parent`, `both`; `unknown` for another program).
    pub writer: String,
    /// Page order of the writes (`fork` mode).
    pub pattern: Option<String>,
    /// Pages each writer wrote (`fork` mode).
    pub write_pages: Option<u64>,
    /// Write pace, pages per second (`null`: unpaced).
    pub rate: Option<f64>,
    /// Cells per state.
    pub cells: CellCounts,
    /// The grid, one glyph per cell, row after row (see the legend).
    pub grid: String,
    /// Copy-on-write events read off the map.
    pub events: Tally,
    /// cowstat's deltas over the same time; `null` without the module.
    pub cowstat: Option<Pair>,
    /// The comparisons.
    pub agreement: Vec<Agreement>,
    /// Remarks (what was not shown, and why).
    pub notes: Vec<String>,
    /// `OK`, `MISMATCH` or `UNVERIFIED`.
    pub verdict: &'static str,
    /// The counters that disagree.
    pub mismatches: Vec<String>,
}

impl MapReport {
    /// The grid as a string of glyphs.
    pub fn glyphs(grid: &Grid) -> String {
        grid.cells.iter().map(|s| s.glyph()).collect()
    }

    /// The closing lines: notes, agreement lines and the verdict.
    pub fn closing(&self) -> Vec<String> {
        let mut v: Vec<String> = self.notes.iter().map(|n| format!("note: {n}")).collect();
        v.extend(self.agreement.iter().map(|a| a.line()));
        v.push(match self.verdict {
            "OK" => "verdict: OK (the picture agrees with cowstat)".to_string(),
            "MISMATCH" => format!("verdict: MISMATCH ({})", self.mismatches.join(", ")),
            _ => "verdict: UNVERIFIED (cowstat not loaded)".to_string(),
        });
        v
    }
}

/// A whole screen: header lines, the grid with its legend, the closing lines.
pub fn screen(header: &[String], grid: &Grid, closing: &[String], colour: bool) -> Vec<String> {
    let mut v = header.to_vec();
    v.extend(ansi::grid_lines(grid, colour));
    v.extend_from_slice(closing);
    v
}

/// "1 page a cell" / "16 pages a cell".
pub fn per_cell_words(n: u64) -> String {
    if n == 1 {
        "1 page a cell".into()
    } else {
        format!("{n} pages a cell")
    }
}

/// Rows of a grid of `cells` cells.
pub fn rows_of(cells: usize) -> usize {
    cells.div_ceil(COLS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::agree::{compare, verdict, Relation};

    #[test]
    fn pages_pair_entries_with_writes() {
        let base = vec![Entry::at(1), Entry::at(2), Entry::at(3)];
        let s = Sample {
            parent: vec![Entry::at(1), Entry::at(2), Entry::at(30)],
            child: Some(vec![Entry::at(10), Entry::at(2), Entry::at(3)]),
            ..Default::default()
        };
        let w = Written {
            parent: vec![false, false, true],
            child: vec![true, false, false],
        };
        let p = pages(&base, &s, &w);
        assert_eq!(
            states(&p, None),
            [State::CopiedByChild, State::Shared, State::CopiedByParent]
        );
        assert!(p[2].parent_wrote && !p[2].child_wrote);
        let t = Tally::of(&p, None);
        assert_eq!((t.child.copies, t.parent.copies), (1, 1));
        let gone = Sample { child: None, ..s };
        assert!(pages(&base, &gone, &w).iter().all(|p| p.child.is_none()));
    }

    #[test]
    fn closing_lines_and_json() {
        let mut t = Tally::default();
        t.child.copies = 23;
        let pair = Pair {
            child: Counts {
                cow_copies: 23,
                wp_faults: 23,
                ..Default::default()
            },
            parent: Counts::default(),
        };
        let agreement = compare(&t, Some(pair.child), Some(pair.parent), Relation::Equal);
        let g = Grid::build(&[State::CopiedByChild; 23], 1, 4096);
        let r = MapReport {
            mode: "fork",
            parent_pid: 10,
            child_pid: 11,
            start: 0x7f00_0000_0000,
            bytes: 23 * 4096,
            page_size: 4096,
            pages: 23,
            pages_per_cell: 1,
            columns: COLS,
            rows: g.row_count(),
            writer: "child".into(),
            pattern: Some("seq".into()),
            write_pages: Some(23),
            rate: None,
            cells: g.counts(),
            grid: MapReport::glyphs(&g),
            events: t,
            cowstat: Some(pair),
            verdict: verdict(&agreement),
            mismatches: vec![],
            agreement,
            notes: vec!["n".into()],
        };
        assert_eq!(
            r.closing(),
            [
                "note: n",
                "map: 23 pages copied by child = cowstat child cow_copies 23: agree",
                "map: 0 pages copied by parent = cowstat parent cow_copies 0: agree",
                "verdict: OK (the picture agrees with cowstat)"
            ]
        );
        let j: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(j["cells"]["child"], 23);
        assert_eq!(j["grid"], "c".repeat(23));
        assert_eq!(j["cowstat"]["child"]["cow_copies"], 23);
        assert_eq!(j["agreement"][0]["ok"], true);
        assert_eq!(j["events"]["child"]["copies"], 23);
        let lines = screen(&["title".into()], &g, &r.closing(), false);
        assert_eq!(lines.len(), 1 + 1 + 2 + 4);
        assert!(lines.iter().all(|l| l.chars().count() <= 80));
    }
}
