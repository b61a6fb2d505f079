// SPDX-License-Identifier: GPL-2.0
//! Text frames of the map: coloured cells for a terminal (16 ANSI colours,
//! so TERM=screen and the Linux console show them), plain glyphs otherwise.

use super::classify::State;
use super::grid::{legend, CellCounts, Grid};

/// SGR attributes of a state's cell: a background colour, a readable glyph.
fn sgr(s: State) -> &'static str {
    match s {
        State::Shared => "37;100",
        State::CopiedByChild => "97;44",
        State::CopiedByParent => "97;41",
        State::Reused => "30;42",
        State::ZeroFilled => "30;43",
        State::Huge => "97;45",
        State::Absent => "90",
    }
}

/// One glyph per state, in colour when `colour`; one SGR run per change of
/// state so a row stays short.
pub fn paint(states: &[State], colour: bool) -> String {
    let mut out = String::new();
    let mut cur = None;
    for &s in states {
        if colour && cur != Some(s) {
            out.push_str(&format!("\x1b[{}m", sgr(s)));
            cur = Some(s);
        }
        out.push(s.glyph());
    }
    if colour && cur.is_some() {
        out.push_str("\x1b[0m");
    }
    out
}

/// The grid rows and the legend, coloured when `colour`.
pub fn grid_lines(grid: &Grid, colour: bool) -> Vec<String> {
    let mut v: Vec<String> = grid
        .rows()
        .enumerate()
        .map(|(i, r)| format!("{} {}", grid.row_label(i), paint(r, colour)))
        .collect();
    v.extend(legend_lines(&grid.counts(), colour));
    v
}

/// [`legend`] with each glyph painted like its cells.
pub fn legend_lines(counts: &CellCounts, colour: bool) -> [String; 2] {
    let plain = legend(counts);
    if !colour {
        return plain;
    }
    // Repaint the glyph that starts each item ("g label n").
    plain.map(|line| {
        line.split("  ")
            .map(|item| {
                let g = item.chars().next().unwrap_or(' ');
                match State::ALL.iter().find(|s| s.glyph() == g) {
                    Some(&s) => format!("{}{}", paint(&[s], true), &item[g.len_utf8()..]),
                    None => item.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    })
}

/// Redraws a whole screen in place: cursor home, each line cleared to its
/// end, everything below cleared (no flicker, no scrolling).
pub fn redraw(lines: &[String]) -> String {
    let mut s = String::from("\x1b[H");
    for l in lines {
        s.push_str(l);
        s.push_str("\x1b[K\n");
    }
    s.push_str("\x1b[J");
    s
}

/// Clears the screen and hides the cursor before the first frame.
pub const START: &str = "\x1b[2J\x1b[?25l";
/// Shows the cursor again after the last frame.
pub const END: &str = "\x1b[?25h";

/// `s` without ANSI escape sequences (what a terminal shows as text).
pub fn strip(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            if it.peek() == Some(&'[') {
                it.next();
                for d in it.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_runs_and_plain() {
        let s = [State::Shared, State::Shared, State::CopiedByChild];
        assert_eq!(paint(&s, false), "..c");
        let c = paint(&s, true);
        assert_eq!(c, "\x1b[37;100m..\x1b[97;44mc\x1b[0m");
        assert_eq!(strip(&c), "..c");
        assert_eq!(paint(&[], true), "");
    }

    #[test]
    fn coloured_lines_show_the_same_text() {
        let mut st = vec![State::Shared; 200];
        st[3] = State::CopiedByParent;
        st[150] = State::ZeroFilled;
        let g = Grid::build(&st, 1, 4096);
        let plain = grid_lines(&g, false);
        let colour = grid_lines(&g, true);
        assert_eq!(plain.len(), 4 + 2);
        for (p, c) in plain.iter().zip(&colour) {
            assert_eq!(&strip(c), p);
            assert!(p.chars().count() <= 80);
        }
        assert!(colour[5].contains("\x1b[30;43mz\x1b[0m zero-filled 1"));
    }

    #[test]
    fn redraw_homes_and_clears() {
        let r = redraw(&["a".into(), "b".into()]);
        assert_eq!(r, "\x1b[Ha\x1b[K\nb\x1b[K\n\x1b[J");
        assert_eq!(strip(&r), "a\nb\n");
    }
}
