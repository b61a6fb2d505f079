// SPDX-License-Identifier: GPL-2.0
//! Plain-text layout: wrapped paragraphs and aligned tables, under 80 columns.

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

#[cfg(test)]
mod tests {
    use super::*;

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
