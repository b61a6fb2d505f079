// SPDX-License-Identifier: GPL-2.0
//! The map as an SVG picture for docs and handouts: one `<rect>` per cell
//! (in `<g id="cells">`, class = the state's key), a legend with counts, and
//! the caption lines (e.g. the agreement with cowstat) underneath.

use super::classify::State;
use super::grid::{Grid, COLS};

const CELL: usize = 10;
const GAP: usize = 1;
const LEFT: usize = 56;
const TOP: usize = 28;
const LINE: usize = 16;

/// Fill colours, close to the terminal's.
fn fill(s: State) -> &'static str {
    match s {
        State::Shared => "#9e9e9e",
        State::CopiedByChild => "#1f5fbf",
        State::CopiedByParent => "#c62828",
        State::Reused => "#2e7d32",
        State::ZeroFilled => "#f9a825",
        State::Huge => "#8e24aa",
        State::Absent => "#f2f2f2",
    }
}

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// The SVG document: `title` above the grid, `caption` lines below the legend.
pub fn render(grid: &Grid, title: &str, caption: &[String]) -> String {
    let pitch = CELL + GAP;
    let rows = grid.row_count().max(1);
    let grid_h = rows * pitch;
    let width = LEFT + COLS * pitch + 16;
    let legend_y = TOP + grid_h + 12;
    let legend_rows = State::ALL.len().div_ceil(4);
    let caption_y = legend_y + legend_rows * LINE + 8;
    let height = caption_y + caption.len() * LINE + 8;
    let mut s = String::new();
    s.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" font-size=\"11\">\n"
    ));
    s.push_str("<style>\n");
    for st in State::ALL {
        s.push_str(&format!(".{} {{ fill: {} }}\n", st.key(), fill(st)));
    }
    s.push_str("text { fill: #222 }\n</style>\n");
    s.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    s.push_str(&format!(
        "<text x=\"8\" y=\"16\" font-weight=\"bold\">{}</text>\n",
        escape(title)
    ));
    s.push_str("<g id=\"labels\" text-anchor=\"end\">\n");
    for r in 0..grid.row_count() {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\">{}</text>\n",
            LEFT - 6,
            TOP + r * pitch + CELL - 1,
            escape(grid.row_label(r).trim())
        ));
    }
    s.push_str("</g>\n<g id=\"cells\">\n");
    for (i, st) in grid.cells.iter().enumerate() {
        let (r, c) = (i / COLS, i % COLS);
        s.push_str(&format!(
            "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{CELL}\" height=\"{CELL}\"/>\n",
            st.key(),
            LEFT + c * pitch,
            TOP + r * pitch
        ));
    }
    s.push_str("</g>\n<g id=\"legend\">\n");
    let counts = grid.counts();
    for (i, st) in State::ALL.iter().enumerate() {
        let (x, y) = (8 + (i % 4) * 190, legend_y + (i / 4) * LINE);
        s.push_str(&format!(
            "<rect class=\"swatch {}\" x=\"{x}\" y=\"{}\" width=\"{CELL}\" height=\"{CELL}\"/>\
             <text x=\"{}\" y=\"{}\">{} {}</text>\n",
            st.key(),
            y,
            x + CELL + 5,
            y + CELL - 1,
            escape(st.label()),
            counts.get(*st)
        ));
    }
    s.push_str("</g>\n<g id=\"caption\">\n");
    for (i, l) in caption.iter().enumerate() {
        s.push_str(&format!(
            "<text x=\"8\" y=\"{}\" xml:space=\"preserve\">{}</text>\n",
            caption_y + i * LINE + 10,
            escape(l)
        ));
    }
    s.push_str("</g>\n</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cell_classes(svg: &str) -> HashMap<String, usize> {
        let doc = roxmltree::Document::parse(svg).expect("valid XML");
        let cells = doc
            .descendants()
            .find(|n| n.attribute("id") == Some("cells"))
            .expect("a <g id=\"cells\">");
        let mut m = HashMap::new();
        for r in cells.children().filter(|n| n.has_tag_name("rect")) {
            *m.entry(r.attribute("class").unwrap().to_string())
                .or_default() += 1;
        }
        m
    }

    #[test]
    fn one_rect_per_cell_with_its_state() {
        let mut st = vec![State::Shared; 1024];
        for i in (0..1024).step_by(89).take(11) {
            st[i] = State::CopiedByChild;
        }
        st[1] = State::CopiedByParent;
        st[2] = State::CopiedByParent;
        st[1000] = State::Absent;
        let g = Grid::build(&st, 1, 4096);
        let svg = render(
            &g,
            "heap <4 MiB> & \"friends\"",
            &["map: 11 = 11: agree".into()],
        );
        let m = cell_classes(&svg);
        assert_eq!(m["child"], 11);
        assert_eq!(m["parent"], 2);
        assert_eq!(m["absent"], 1);
        assert_eq!(m["shared"], 1024 - 14);
        assert_eq!(m.values().sum::<usize>(), 1024);
        assert!(!m.contains_key("reused"));
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(texts.contains(&"heap <4 MiB> & \"friends\""));
        assert!(texts.contains(&"copied by child 11"));
        assert!(texts.contains(&"map: 11 = 11: agree"));
        // Every state has a legend swatch and a style rule.
        let swatches = doc
            .descendants()
            .filter(|n| {
                n.attribute("class")
                    .is_some_and(|c| c.starts_with("swatch "))
            })
            .count();
        assert_eq!(swatches, State::ALL.len());
    }

    #[test]
    fn grouped_cells_and_empty_grid_are_valid() {
        let st = vec![State::Huge; 5000];
        let g = Grid::build(&st, 8, 4096);
        assert_eq!(cell_classes(&render(&g, "t", &[]))["huge"], 625);
        let empty = Grid::build(&[], 1, 4096);
        assert!(cell_classes(&render(&empty, "", &[])).is_empty());
    }

    #[test]
    fn escape_drops_control_characters() {
        assert_eq!(escape("a\x1bb<"), "ab&lt;");
    }
}
