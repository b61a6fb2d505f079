// SPDX-License-Identifier: GPL-2.0
//! The heap as rows of cells: 64 cells a row, one cell per page or per group
//! of pages, each row labelled with its offset, 71 columns wide.

use serde::Serialize;

use super::classify::State;

/// Cells per row.
pub const COLS: usize = 64;
/// Rows that fit a 24-line terminal with the header, legend and verdict.
pub const MAX_ROWS: usize = 16;
/// Width of the offset label before each row.
const LABEL: usize = 6;

/// Pages per cell so that `pages` fit in at most `max_rows` rows.
pub fn pages_per_cell(pages: u64, max_rows: usize) -> u64 {
    pages.div_ceil((COLS * max_rows.max(1)) as u64).max(1)
}

/// The cells of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    /// Pages each cell stands for (the last cell may hold fewer).
    pub per_cell: u64,
    /// Bytes per page.
    pub page_size: u64,
    /// One state per cell, row by row.
    pub cells: Vec<State>,
}

/// Cells per state, in legend order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CellCounts {
    /// Still shared.
    pub shared: u64,
    /// Copied by the child.
    pub child: u64,
    /// Copied by the parent.
    pub parent: u64,
    /// Reused.
    pub reused: u64,
    /// Zero-filled.
    pub zero: u64,
    /// Part of a huge page.
    pub huge: u64,
    /// Not present.
    pub absent: u64,
}

impl CellCounts {
    /// The count of `s`.
    pub fn get(&self, s: State) -> u64 {
        match s {
            State::Shared => self.shared,
            State::CopiedByChild => self.child,
            State::CopiedByParent => self.parent,
            State::Reused => self.reused,
            State::ZeroFilled => self.zero,
            State::Huge => self.huge,
            State::Absent => self.absent,
        }
    }

    fn bump(&mut self, s: State) {
        let slot = match s {
            State::Shared => &mut self.shared,
            State::CopiedByChild => &mut self.child,
            State::CopiedByParent => &mut self.parent,
            State::Reused => &mut self.reused,
            State::ZeroFilled => &mut self.zero,
            State::Huge => &mut self.huge,
            State::Absent => &mut self.absent,
        };
        *slot += 1;
    }
}

impl Grid {
    /// Groups the per-page `states` into cells of `per_cell` pages; a cell
    /// shows its most eventful page ([`State::merge`]).
    pub fn build(states: &[State], per_cell: u64, page_size: u64) -> Grid {
        let per_cell = per_cell.max(1);
        let cells = states
            .chunks(per_cell as usize)
            .map(|c| c.iter().copied().fold(State::Absent, State::merge))
            .collect();
        Grid {
            per_cell,
            page_size,
            cells,
        }
    }

    /// The rows of cells.
    pub fn rows(&self) -> std::slice::Chunks<'_, State> {
        self.cells.chunks(COLS)
    }

    /// Number of rows.
    pub fn row_count(&self) -> usize {
        self.cells.len().div_ceil(COLS)
    }

    /// Cells per state.
    pub fn counts(&self) -> CellCounts {
        let mut c = CellCounts::default();
        for &s in &self.cells {
            c.bump(s);
        }
        c
    }

    /// The offset label of `row`, e.g. `  256K`, right-aligned in 6 columns.
    pub fn row_label(&self, row: usize) -> String {
        let off = row as u64 * COLS as u64 * self.per_cell * self.page_size;
        let s = if off == 0 {
            "0".to_string()
        } else if off.is_multiple_of(1 << 30) {
            format!("{}G", off >> 30)
        } else if off.is_multiple_of(1 << 20) {
            format!("{}M", off >> 20)
        } else {
            format!("{}K", off >> 10)
        };
        format!("{s:>LABEL$}")
    }

    /// The rows as plain text: label, a space, one glyph per cell.
    pub fn text_rows(&self) -> Vec<String> {
        self.rows()
            .enumerate()
            .map(|(i, r)| {
                let mut s = self.row_label(i);
                s.push(' ');
                s.extend(r.iter().map(|c| c.glyph()));
                s
            })
            .collect()
    }
}

/// The two legend lines: each state's glyph, name and number of cells.
pub fn legend(counts: &CellCounts) -> [String; 2] {
    let item = |s: State| format!("{} {} {}", s.glyph(), s.label(), counts.get(s));
    let [a, b, c, d, e, f, g] = State::ALL.map(item);
    [format!("{a}  {b}  {c}  {d}"), format!("{e}  {f}  {g}")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_per_page_or_group() {
        assert_eq!(pages_per_cell(1024, MAX_ROWS), 1);
        assert_eq!(pages_per_cell(1025, MAX_ROWS), 2);
        assert_eq!(pages_per_cell(16384, MAX_ROWS), 16);
        assert_eq!(pages_per_cell(1, MAX_ROWS), 1);
        assert_eq!(pages_per_cell(0, MAX_ROWS), 1);
    }

    #[test]
    fn grouping_shows_the_most_eventful_page() {
        let mut s = vec![State::Shared; 10];
        s[5] = State::CopiedByChild;
        let g = Grid::build(&s, 4, 4096);
        assert_eq!(
            g.cells,
            vec![State::Shared, State::CopiedByChild, State::Shared]
        );
        assert_eq!(g.counts().shared, 2);
        assert_eq!(g.counts().child, 1);
    }

    #[test]
    fn rows_fit_80_columns() {
        // 64 MiB heap, 16 pages a cell: 16 rows of 64 cells, 4 MiB a row.
        let s = vec![State::Shared; 16384];
        let g = Grid::build(&s, pages_per_cell(16384, MAX_ROWS), 4096);
        let rows = g.text_rows();
        assert_eq!(rows.len(), 16);
        assert!(rows.iter().all(|r| r.chars().count() == 71));
        assert_eq!(rows[0], format!("     0 {}", ".".repeat(64)));
        assert!(rows[1].starts_with("    4M "));
        assert!(rows[15].starts_with("   60M "));
        for l in legend(&g.counts()) {
            assert!(l.chars().count() <= 80, "{l}");
        }
        // The widest legend: a grid has at most 1024 cells.
        let n = (COLS * MAX_ROWS) as u64;
        let big = CellCounts {
            shared: n,
            child: n,
            parent: n,
            reused: n,
            zero: n,
            huge: n,
            absent: n,
        };
        for l in legend(&big) {
            assert!(l.chars().count() <= 80, "{l}");
        }
    }

    #[test]
    fn labels_and_partial_last_row() {
        let s = vec![State::Shared; 100];
        let g = Grid::build(&s, 1, 4096);
        assert_eq!(g.row_count(), 2);
        assert_eq!(g.row_label(1), "  256K");
        assert_eq!(g.text_rows()[1].chars().count(), 7 + 36);
        let g = Grid::build(&s, 4096, 4096);
        assert_eq!(g.row_label(1), "    1G");
    }

    #[test]
    fn legend_counts() {
        let s = [State::Shared, State::CopiedByChild, State::CopiedByChild];
        let l = legend(&Grid::build(&s, 1, 4096).counts());
        assert_eq!(
            l[0],
            ". shared 1  c copied by child 2  p copied by parent 0  r reused 0"
        );
        assert_eq!(l[1], "z zero-filled 0  H huge page 0  - not present 0");
    }
}
