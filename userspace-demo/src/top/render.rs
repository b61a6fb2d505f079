// SPDX-License-Identifier: GPL-2.0
//! Text of `cow-demo top` as pure functions of a frame: the full screen
//! (lines, then ANSI paint), the plain block, number formats and which
//! columns fit the width.

use std::fmt::Write as _;

use crate::top::rates::{Frame, ProcRate, SortKey, State};
use crate::units::format_ns;

/// Default and usual maximum width: the output fits 80 columns.
pub const DEFAULT_WIDTH: usize = 80;
/// Below this the table would lose the copies column.
pub const MIN_WIDTH: usize = 40;

/// `v` in at most `width` characters: exact if it fits, else 12.3M style.
pub fn fmt_count(v: u64, width: usize) -> String {
    let exact = v.to_string();
    if exact.len() <= width {
        return exact;
    }
    compact(v as f64)
}

/// A rate: `0`, one decimal below 10, whole numbers above, 12.3M style if
/// wider than `width`.
pub fn fmt_rate(r: f64, width: usize) -> String {
    let s = if r == 0.0 {
        "0".to_string()
    } else if r < 9.95 {
        format!("{r:.1}")
    } else {
        format!("{r:.0}")
    };
    if s.len() <= width {
        s
    } else {
        compact(r)
    }
}

fn compact(v: f64) -> String {
    let (v, unit) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(scale, _)| v >= *scale)
        .map(|(scale, unit)| (v / scale, unit))
        .unwrap_or((v, ""));
    if v < 99.95 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

/// One column of the table.
struct Column {
    head: &'static str,
    width: usize,
    left: bool,
    /// Columns are kept in rank order while they fit; 0 always.
    rank: u8,
    cell: fn(&ProcRate, usize) -> String,
}

/// Display order. At 80 columns everything but ZEROS and THP fits.
const COLUMNS: [Column; 12] = [
    Column {
        head: "PID",
        width: 7,
        left: false,
        rank: 0,
        cell: |p, _| p.pid.map_or("-".into(), |v| v.to_string()),
    },
    Column {
        head: "COMM",
        width: 15,
        left: true,
        rank: 0,
        cell: |p, w| p.comm.chars().take(w).collect(),
    },
    Column {
        head: "COPY/s",
        width: 7,
        left: false,
        rank: 1,
        cell: |p, w| fmt_rate(p.per_s.cow_copies, w),
    },
    Column {
        head: "FAULT/s",
        width: 7,
        left: false,
        rank: 2,
        cell: |p, w| fmt_rate(p.per_s.wp_faults, w),
    },
    Column {
        head: "REUSE/s",
        width: 7,
        left: false,
        rank: 4,
        cell: |p, w| fmt_rate(p.per_s.wp_reuses, w),
    },
    Column {
        head: "ZERO/s",
        width: 6,
        left: false,
        rank: 6,
        cell: |p, w| fmt_rate(p.per_s.cow_zero, w),
    },
    Column {
        head: "COPIES",
        width: 7,
        left: false,
        rank: 3,
        cell: |p, w| fmt_count(p.total.cow_copies, w),
    },
    Column {
        head: "FAULTS",
        width: 7,
        left: false,
        rank: 5,
        cell: |p, w| fmt_count(p.total.wp_faults, w),
    },
    Column {
        head: "REUSES",
        width: 7,
        left: false,
        rank: 7,
        cell: |p, w| fmt_count(p.total.wp_reuses, w),
    },
    Column {
        head: "ZEROS",
        width: 7,
        left: false,
        rank: 8,
        cell: |p, w| fmt_count(p.total.cow_zero, w),
    },
    Column {
        head: "THP",
        width: 6,
        left: false,
        rank: 9,
        cell: |p, w| fmt_count(p.total.thp_wp_faults, w),
    },
    Column {
        head: "S",
        width: 1,
        left: true,
        rank: 0,
        cell: |p, _| p.state.mark().into(),
    },
];

/// The columns that fit `width`, in display order: rank by rank while the
/// next one fits.
fn fitting(width: usize) -> Vec<&'static Column> {
    let mut by_rank: Vec<&Column> = COLUMNS.iter().collect();
    by_rank.sort_by_key(|c| c.rank);
    let mut used = 0;
    let mut keep = Vec::new();
    for c in by_rank {
        let need = c.width + usize::from(used > 0);
        if c.rank > 0 && used + need > width {
            break;
        }
        used += need;
        keep.push(c.head);
    }
    COLUMNS.iter().filter(|c| keep.contains(&c.head)).collect()
}

fn line(cols: &[&Column], cells: impl Fn(&Column) -> String) -> String {
    let mut s = String::new();
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let v = cells(c);
        if c.left {
            let _ = write!(s, "{v:<w$}", w = c.width);
        } else {
            let _ = write!(s, "{v:>w$}", w = c.width);
        }
    }
    s.trim_end().to_string()
}

/// The table's header line for `width`.
pub fn table_header(width: usize) -> String {
    line(&fitting(width), |c| c.head.to_string())
}

/// One process's table line for `width`.
pub fn table_row(p: &ProcRate, width: usize) -> String {
    line(&fitting(width), |c| (c.cell)(p, c.width))
}

/// The system-wide line: rates of the whole machine, then the mean
/// `dup_mmap` time of the interval's forks if that fits `width`.
pub fn global_line(f: &Frame, width: usize) -> String {
    let g = &f.global;
    let w = 9;
    let mut s = format!(
        "all/s: copies {}  faults {}  reuses {}  zero {}  forks {}",
        fmt_rate(g.per_s.cow_copies, w),
        fmt_rate(g.per_s.wp_faults, w),
        fmt_rate(g.per_s.wp_reuses, w),
        fmt_rate(g.per_s.cow_zero, w),
        fmt_rate(g.forks as f64 / f.interval_s, w)
    );
    if g.forks > 0 {
        let each = format!(" ({} each)", format_ns(g.fork_ns as f64 / g.forks as f64));
        if s.len() + each.len() <= width {
            s.push_str(&each);
        }
    }
    s
}

fn clip(s: &str, width: usize) -> String {
    s.chars().take(width).collect()
}

fn seconds(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// What the screen says besides the frame.
pub struct View {
    /// The nominal interval, seconds.
    pub interval: f64,
    /// The sort column.
    pub sort: SortKey,
}

/// The full screen as plain lines (no ANSI), at most `height` lines of at
/// most `width` characters: title, global line, blank, table header, rows,
/// and a footer with the legend.
pub fn screen_lines(f: &Frame, v: &View, width: usize, height: usize) -> Vec<String> {
    let count = |s: State| f.procs.iter().filter(|p| p.state == s).count();
    let ended = count(State::Exited) + count(State::Vanished);
    let title = format!(
        "cow-demo top  {}  every {}  sort {}  {} shown, {} new, {} ended",
        f.time,
        seconds(v.interval),
        v.sort.name(),
        f.procs.len(),
        count(State::New),
        ended
    );
    let mut out = vec![
        title,
        global_line(f, width),
        String::new(),
        table_header(width),
    ];
    let room = height.saturating_sub(out.len() + 1);
    let shown = f.procs.len().min(room);
    out.extend(f.procs[..shown].iter().map(|p| table_row(p, width)));
    let more = f.procs.len() - shown;
    let footer = if more > 0 {
        format!("{more} more not shown; S: + new, X ended in the interval; q quits")
    } else {
        "S: + new, X ended in the interval; q quits".to_string()
    };
    if height > out.len() {
        out.push(footer);
    }
    out.truncate(height);
    out.iter().map(|l| clip(l, width)).collect()
}

/// `lines` as one terminal update: cursor home, each line cleared to its
/// end, the table header in reverse video, the rest of the screen cleared.
/// No newline after the last line: on the bottom row it would scroll the
/// title off the screen.
pub fn paint(lines: &[String]) -> String {
    let mut s = String::from("\x1b[H");
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            s.push_str("\r\n");
        }
        if i == 3 {
            let _ = write!(s, "\x1b[7m{l}\x1b[0m\x1b[K");
        } else {
            let _ = write!(s, "{l}\x1b[K");
        }
    }
    s.push_str("\x1b[J");
    s
}

/// The plain-text block of one interval: time and global line, the table,
/// a blank line.
pub fn plain_block(f: &Frame, width: usize) -> String {
    let time = format!("{} ", f.time);
    let mut s = clip(&(time.clone() + &global_line(f, width - time.len())), width);
    s.push('\n');
    s.push_str(&table_header(width));
    s.push('\n');
    for p in &f.procs {
        s.push_str(&table_row(p, width));
        s.push('\n');
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::cowstat::Counts;
    use crate::top::rates::{Global, Rates};

    fn proc_rate(pid: u32, comm: &str, state: State, delta: u64, total: u64) -> ProcRate {
        let d = Counts {
            wp_faults: delta,
            cow_copies: delta,
            ..Default::default()
        };
        ProcRate {
            pid: Some(pid),
            comm: comm.into(),
            state,
            delta: d,
            per_s: Rates::of(&d, 1.0),
            total: Counts {
                wp_faults: total,
                cow_copies: total,
                cow_zero: 1,
                wp_reuses: 2,
                thp_wp_faults: 3,
            },
        }
    }

    fn frame(procs: Vec<ProcRate>) -> Frame {
        let delta = Counts {
            wp_faults: 1021,
            cow_copies: 1021,
            ..Default::default()
        };
        Frame {
            time: "12:00:01".into(),
            elapsed_s: 1.0,
            interval_s: 1.0,
            global: Global {
                delta,
                per_s: Rates::of(&delta, 1.0),
                forks: 2,
                fork_ns: 9_000_000,
            },
            procs,
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_count(1021, 7), "1021");
        assert_eq!(fmt_count(9_999_999, 7), "9999999");
        assert_eq!(fmt_count(12_345_678, 7), "12.3M");
        assert_eq!(fmt_count(123_456_789_012, 7), "123G");
        assert_eq!(fmt_rate(0.0, 7), "0");
        assert_eq!(fmt_rate(0.5, 7), "0.5");
        assert_eq!(fmt_rate(2042.0, 7), "2042");
        assert_eq!(fmt_rate(9.97, 7), "10");
        assert_eq!(fmt_rate(12_345_678.0, 7), "12.3M");
        assert_eq!(fmt_rate(1_500.0, 3), "1.5k");
    }

    #[test]
    fn columns_fit_the_width() {
        assert_eq!(
            table_header(80),
            "    PID COMM             COPY/s FAULT/s REUSE/s ZERO/s  COPIES  FAULTS  REUSES S"
        );
        assert_eq!(table_header(80).len(), 80);
        assert!(table_header(100).contains("ZEROS    THP S"));
        let narrow = table_header(50);
        assert!(narrow.len() <= 50, "{narrow}");
        assert!(
            narrow.contains("COPY/s") && narrow.ends_with(" S"),
            "{narrow}"
        );
        assert!(!narrow.contains("REUSES"));
        for w in [MIN_WIDTH, 60, 79, 80, 81, 120] {
            assert!(table_header(w).len() <= w, "width {w}");
        }
    }

    #[test]
    fn rows_line_up_with_header() {
        let p = proc_rate(412, "cow-demo", State::Exited, 1021, 1033);
        let row = table_row(&p, 80);
        assert_eq!(
            row,
            "    412 cow-demo           1021    1021       0      0    1033    1033       2 X"
        );
        assert_eq!(row.len(), table_header(80).len());
        let wide = table_row(&p, 100);
        assert!(wide.ends_with("      1      3 X"), "{wide}");
        let live = table_row(&proc_rate(7, "sh", State::Live, 0, 5), 80);
        assert!(live.ends_with("      2"), "no mark for a live row: {live}");
    }

    #[test]
    fn screen_fits_and_says_what_is_hidden() {
        let procs = (1..=30)
            .map(|i| proc_rate(i, "p", if i == 2 { State::New } else { State::Live }, 0, 1))
            .collect();
        let f = frame(procs);
        let v = View {
            interval: 1.0,
            sort: SortKey::Copies,
        };
        let l = screen_lines(&f, &v, 80, 24);
        assert_eq!(l.len(), 24);
        assert!(l.iter().all(|x| x.chars().count() <= 80));
        assert_eq!(
            l[0],
            "cow-demo top  12:00:01  every 1 s  sort copies  30 shown, 1 new, 0 ended"
        );
        assert_eq!(
            l[1],
            "all/s: copies 1021  faults 1021  reuses 0  zero 0  forks 2.0 (4.50 ms each)"
        );
        assert!(l[3].starts_with("    PID COMM"));
        assert!(l[23].starts_with("11 more not shown"), "{}", l[23]);
        let small = screen_lines(&f, &v, 40, 3);
        assert_eq!(small.len(), 3);
        assert!(small.iter().all(|x| x.chars().count() <= 40));
        let p = paint(&l);
        assert!(
            p.starts_with("\x1b[Hcow-demo top  12:00:01") && p.ends_with("q quits\x1b[K\x1b[J")
        );
        assert!(p.contains("\r\n\x1b[7m    PID COMM"));
        assert_eq!(
            p.matches("\x1b[K\r\n").count(),
            23,
            "no newline after the last line"
        );
    }

    #[test]
    fn plain_block_lists_every_row() {
        let f = frame(vec![
            proc_rate(412, "cow-demo", State::Live, 1021, 1021),
            proc_rate(413, "cow-demo", State::New, 0, 7),
        ]);
        let b = plain_block(&f, 80);
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[0],
            "12:00:01 all/s: copies 1021  faults 1021  reuses 0  zero 0  forks 2.0"
        );
        assert!(plain_block(&f, 90).starts_with("12:00:01 all/s: copies 1021  faults 1021  reuses 0  zero 0  forks 2.0 (4.50 ms each)\n"));
        assert!(lines[2].contains("1021    1021"));
        assert!(lines[3].ends_with(" +"));
        assert_eq!(lines[4], "");
    }
}
