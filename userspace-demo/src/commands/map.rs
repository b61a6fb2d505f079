// SPDX-License-Identifier: GPL-2.0
//! `cow-demo map`: the heap as a grid while processes write, one cell per
//! page or group of pages, checked against cowstat's per-process counters.
//!
//! Default: two worker processes (a parent with a touched heap and its
//! forked child) write pages at `--rate` while this process watches their
//! pagemaps. `--pid`: watch an existing process and its next child (e.g. a
//! redis-server and its BGSAVE child) over its largest anonymous VMA.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::cli::{OnOff, Writer};
use crate::commands::{print_out, Outcome};
use crate::error::{Error, Result};
use crate::map::agree::{compare, mismatches, verdict, Relation};
use crate::map::ansi;
use crate::map::classify::{splits, Entry, Tally};
use crate::map::grid::{pages_per_cell, Grid, COLS, MAX_ROWS};
use crate::map::report::{pages, per_cell_words, screen, states, MapReport, Pair, Sample, Written};
use crate::map::scan;
use crate::map::svg;
use crate::map::workers::{Touch, Who, Workers};
use crate::procfs::cowstat::{Counts, Cowstat};
use crate::procfs::meminfo;
use crate::units::{format_bytes, parse_pattern, parse_percent, parse_size, Pattern};
use crate::workload::{hpage_pmd_size, page_order, page_size, pin_to_current_cpu};

/// How the heap is touched before the fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TouchArg {
    /// Write every page: the writes after the fork copy.
    Write,
    /// Read every page (all map the zero page): the writes zero-fill.
    Read,
}

/// Flags of `map`.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// Size of the heap (64M, 1G, 4096K, bytes); 4M = 1024 pages, one cell each.
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = parse_size)]
    pub heap: u64,

    /// Fraction of the heap's pages to write after the fork, e.g. 25% (default 25%).
    #[arg(long, value_name = "P%", value_parser = parse_percent, conflicts_with = "pages")]
    pub write: Option<f64>,

    /// Exact number of pages (K) to write after the fork, e.g. 23.
    #[arg(long, value_name = "N")]
    pub pages: Option<u64>,

    /// Which process writes; both: the child, then the parent the same pages.
    #[arg(long, value_enum, default_value_t = Writer::Child)]
    pub writer: Writer,

    /// Order of the written pages: seq, stride:N or random.
    #[arg(long, value_name = "PATTERN", default_value = "seq", value_parser = parse_pattern)]
    pub pattern: Pattern,

    /// Back the heap with transparent huge pages (MADV_HUGEPAGE) or not.
    #[arg(long, value_enum, default_value_t = OnOff::Off)]
    pub thp: OnOff,

    /// Touch the heap before the fork by writing (writes copy) or reading (writes zero-fill).
    #[arg(long, value_enum, default_value_t = TouchArg::Write)]
    pub touch: TouchArg,

    /// Seed of the random page order.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Pages written per second (default: about 3 s per writer on a terminal, unpaced otherwise).
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,

    /// Watch this existing process and its child instead (largest anonymous VMA).
    #[arg(long, value_name = "PID", conflicts_with_all = ["heap", "write", "pages", "writer", "pattern", "thp", "touch", "rate"])]
    pub pid: Option<u32>,

    /// With --pid: its child to compare with (default: wait for its next child).
    #[arg(long, value_name = "PID", requires = "pid")]
    pub child: Option<u32>,

    /// With --pid: seconds to wait for a child to appear.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, requires = "pid")]
    pub wait: f64,

    /// With --pid: stop after this many seconds (default: when the child exits).
    #[arg(long, value_name = "SECONDS", requires = "pid")]
    pub duration: Option<f64>,

    /// Also write the final picture as SVG to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,

    /// Print one JSON object at the end instead of the picture.
    #[arg(long)]
    pub json: bool,

    /// Print the final picture once, without colours or redraws (the default
    /// when stdout is not a terminal or TERM is dumb).
    #[arg(long)]
    pub plain: bool,
}

/// The help's examples.
pub const EXAMPLES: &str = "EXAMPLES:
    cow-demo map                          # child writes 256 of 1024 pages
    cow-demo map --pages 23 --pattern random --seed 7
    cow-demo map --writer both --pages 101  # copies, then reuses
    cow-demo map --touch read --pages 23  # zero-filled pages
    cow-demo map --heap 16M --thp on --pattern stride:512 --pages 8
    cow-demo map --pages 23 --svg map.svg --json
    cow-demo map --pid $(pidof redis-server) --svg bgsave.svg &  # then BGSAVE

Needs root: the page frame numbers in /proc/PID/pagemap are hidden from
other users. Exit status 1 if the picture and cowstat disagree.";

/// Where frames go.
struct Screen {
    live: bool,
    /// The screen was cleared (at the first frame, so an error before it
    /// leaves the terminal alone).
    started: std::cell::Cell<bool>,
}

impl Screen {
    fn new(a: &MapArgs) -> Screen {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let live = !a.json && !a.plain && !dumb && std::io::stdout().is_terminal();
        Screen {
            live,
            started: false.into(),
        }
    }

    fn frame(&self, lines: &[String]) -> Result<()> {
        if self.live {
            if !self.started.replace(true) {
                print_out(ansi::START)?;
            }
            print_out(&ansi::redraw(lines))?;
        }
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if self.started.get() {
            let _ = print_out(ansi::END);
        }
    }
}

fn needs_root() -> Error {
    Error::Child(
        "cow-demo map compares page frame numbers from /proc/PID/pagemap, which \
         are zero without CAP_SYS_ADMIN: run it as root"
            .into(),
    )
}

/// Reads both processes' pagemaps (and huge mappings, where the kernel has
/// PAGEMAP_SCAN); `None` for the child once it is gone.
fn sample(
    parent: u32,
    child: u32,
    start: u64,
    end: u64,
    ps: u64,
    notes: &mut Vec<String>,
) -> Result<Sample> {
    let parent_e = scan::entries(parent, start, end, ps)?;
    let child_e = scan::entries(child, start, end, ps).ok();
    let n = parent_e.len();
    let mut huge = |pid| match scan::huge_pages(pid, start, end, ps) {
        Ok(h) => h,
        Err(e) => {
            let note = format!("huge pages not shown: {e}");
            if !notes.contains(&note) {
                notes.push(note);
            }
            vec![false; n]
        }
    };
    let parent_huge = huge(parent);
    let child_huge = if child_e.is_some() {
        huge(child)
    } else {
        vec![false; n]
    };
    Ok(Sample {
        parent: parent_e,
        child: child_e,
        parent_huge,
        child_huge,
    })
}

fn row(cs: &Cowstat, loaded: bool, pid: u32) -> Result<Option<Counts>> {
    if loaded {
        scan::row(cs, pid).map(Some)
    } else {
        Ok(None)
    }
}

fn delta(a: Option<Counts>, b: Option<Counts>) -> Option<Counts> {
    Some(a?.delta(&b?))
}

/// Number of pages to write, validated against the heap.
fn pages_to_write(a: &MapArgs, heap_pages: u64) -> Result<u64> {
    match a.pages {
        Some(n) if n == 0 || n > heap_pages => Err(Error::InvalidValue {
            flag: "--pages",
            value: n.to_string(),
            expected: format!(
                "expected 1 to {heap_pages} (the heap's pages; raise --heap for more)"
            ),
        }),
        Some(n) => Ok(n),
        None => {
            Ok(((heap_pages as f64 * a.write.unwrap_or(0.25)).round() as u64).clamp(1, heap_pages))
        }
    }
}

/// The whole run of cow-demo's own workers; returns the report and the last grid.
fn run_workers(a: &MapArgs, scr: &Screen) -> Result<(MapReport, Grid)> {
    let ps = page_size();
    let bytes = a.heap.div_ceil(ps) * ps;
    if bytes == 0 {
        return Err(Error::InvalidValue {
            flag: "--heap",
            value: a.heap.to_string(),
            expected: "expected a size of at least one page, like 4K or 4M".into(),
        });
    }
    if let Some(r) = a.rate.filter(|r| !(*r > 0.0 && r.is_finite())) {
        return Err(Error::InvalidValue {
            flag: "--rate",
            value: r.to_string(),
            expected: "expected pages per second, more than 0, like 200".into(),
        });
    }
    let n = bytes / ps;
    let k = pages_to_write(a, n)?;
    let avail = meminfo::mem_available()?;
    if bytes > avail {
        return Err(Error::HeapTooLarge {
            heap: format_bytes(bytes),
            available: format_bytes(avail),
        });
    }
    let zero = scan::zero_pfn(ps).ok_or_else(needs_root)?;
    let cs = Cowstat::locate();
    let loaded = cs.is_loaded();
    let mut notes = Vec::new();
    if !loaded {
        notes.push("cowstat module not loaded: the picture is not checked".to_string());
    }
    // Same reason as `fork`: per-CPU LRU batches make reuses look shared.
    pin_to_current_cpu()?;
    let order = page_order(a.pattern, k, n, a.seed);
    let touch = match a.touch {
        TouchArg::Write => Touch::Write,
        TouchArg::Read => Touch::Read,
    };
    let mut w = Workers::spawn(bytes, a.thp == OnOff::On, touch, &order)?;
    let (start, end) = (w.addr, w.addr + bytes);
    let (pp, cp) = (w.parent, w.child);

    let base_sample = sample(pp, cp, start, end, ps, &mut notes)?;
    let base = base_sample.parent.clone();
    if base.iter().all(|e| !e.present || e.pfn == 0) {
        return Err(needs_root());
    }
    let (p0, c0) = (row(&cs, loaded, pp)?, row(&cs, loaded, cp)?);
    let per_cell = pages_per_cell(n, MAX_ROWS);
    let phases: Vec<Who> = match a.writer {
        Writer::Child => vec![Who::Child],
        Writer::Parent => vec![Who::Parent],
        Writer::Both => vec![Who::Child, Who::Parent],
    };
    let rate = a.rate.or(scr.live.then_some((k as f64 / 3.0).max(1.0)));
    let writer = match a.writer {
        Writer::Child => "child",
        Writer::Parent => "parent",
        Writer::Both => "both",
    };
    let mut title = format!(
        "cow-demo map: {} heap, {n} pages, {}; {}",
        format_bytes(bytes),
        per_cell_words(per_cell),
        match a.writer {
            Writer::Both => format!("child, then parent write {k}"),
            _ => format!("{writer} writes {k}"),
        }
    );
    if a.thp == OnOff::On {
        title.push_str(", THP");
    }
    if touch == Touch::Read {
        title.push_str(", read first");
    }
    let mut written = Written {
        parent: vec![false; n as usize],
        child: vec![false; n as usize],
    };
    let draw = |s: &Sample, written: &Written, status: String| -> Result<Grid> {
        let g = Grid::build(&states(&pages(&base, s, written), Some(zero)), per_cell, ps);
        scr.frame(&screen(&[title.clone(), status], &g, &[], true))?;
        Ok(g)
    };
    let status = |who: &str, done: usize, p: Option<Counts>, c: Option<Counts>| {
        let mut s = format!("parent {pp}, child {cp}: {who} wrote {done} of {k}");
        if let (Some(p), Some(c)) = (p, c) {
            s.push_str(&format!(
                "; cowstat copies: child {}, parent {}",
                c.cow_copies, p.cow_copies
            ));
        }
        s
    };
    draw(
        &base_sample,
        &written,
        status(writer, 0, delta(p0, p0), delta(c0, c0)),
    )?;
    for who in phases {
        let name = if who == Who::Child { "child" } else { "parent" };
        let t = Instant::now();
        let mut done = 0usize;
        while done < order.len() {
            let due = match rate {
                Some(r) => ((t.elapsed().as_secs_f64() * r).floor() as usize + 1).min(order.len()),
                None => order.len(),
            };
            if due > done {
                w.write(who, done, due)?;
                let mark = if who == Who::Child {
                    &mut written.child
                } else {
                    &mut written.parent
                };
                for &p in &order[done..due] {
                    mark[p as usize] = true;
                }
                done = due;
                if scr.live {
                    let s = sample(pp, cp, start, end, ps, &mut notes)?;
                    let (p1, c1) = (row(&cs, loaded, pp)?, row(&cs, loaded, cp)?);
                    draw(
                        &s,
                        &written,
                        status(name, done, delta(p1, p0), delta(c1, c0)),
                    )?;
                }
            }
            if let (Some(r), true) = (rate, done < order.len()) {
                let next = (done as f64) / r;
                let wait = next - t.elapsed().as_secs_f64();
                std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.001, 0.1)));
            }
        }
    }
    let last = sample(pp, cp, start, end, ps, &mut notes)?;
    let (p1, c1) = (row(&cs, loaded, pp)?, row(&cs, loaded, cp)?);
    w.finish()?;
    let all = pages(&base, &last, &written);
    let mut tally = Tally::of(&all, Some(zero));
    let ppr = (hpage_pmd_size() / ps) as usize;
    tally.child.thp_splits = splits(&base_sample.child_huge, &last.child_huge, ppr);
    tally.parent.thp_splits = splits(&base_sample.parent_huge, &last.parent_huge, ppr);
    let grid = Grid::build(&states(&all, Some(zero)), per_cell, ps);
    let cowstat = delta(p1, p0)
        .zip(delta(c1, c0))
        .map(|(parent, child)| Pair { child, parent });
    let agreement = compare(
        &tally,
        cowstat.map(|c| c.child),
        cowstat.map(|c| c.parent),
        Relation::Equal,
    );
    let report = MapReport {
        mode: "fork",
        parent_pid: pp,
        child_pid: cp,
        start,
        bytes,
        page_size: ps,
        pages: n,
        pages_per_cell: per_cell,
        columns: COLS,
        rows: grid.row_count(),
        writer: writer.into(),
        pattern: Some(a.pattern.to_string()),
        write_pages: Some(k),
        rate,
        cells: grid.counts(),
        grid: MapReport::glyphs(&grid),
        events: tally,
        cowstat,
        verdict: verdict(&agreement),
        mismatches: mismatches(&agreement),
        agreement,
        notes,
    };
    Ok((report, grid))
}

/// The process's next child (or `--child`), with the parent's pagemap
/// just before the fork as the fork-time base, and the parent's row then.
fn attach(
    a: &MapArgs,
    pid: u32,
    start: u64,
    end: u64,
    ps: u64,
    cs: &Cowstat,
    loaded: bool,
) -> Result<(u32, Vec<Entry>, Option<Counts>)> {
    if let Some(c) = a.child {
        // Attached late: the child still holds the fork-time page wherever
        // the parent copied, so its pagemap is the base; compare whole rows.
        let base = scan::entries(c, start, end, ps).map_err(|e| {
            Error::Child(format!(
                "--child {c}: {e} (is it a child of {pid}, still running?)"
            ))
        })?;
        return Ok((c, base, loaded.then(Counts::default)));
    }
    let before = scan::children(pid);
    let t = Instant::now();
    eprintln!(
        "cow-demo: map: waiting up to {} s for a new child of pid {pid} \
         ({} VMA at {start:#x})...",
        a.wait,
        format_bytes(end - start)
    );
    let mut base = scan::entries(pid, start, end, ps)?;
    let mut r = row(cs, loaded, pid)?;
    let mut read_at = Instant::now();
    loop {
        if let Some(&c) = scan::children(pid).iter().find(|c| !before.contains(c)) {
            return Ok((c, base, r));
        }
        // The base need not be fresh: before the fork the parent's pages
        // keep their frames; pages it faults in later are taken from the
        // child. So a base twice a second, a look for the child 20 times.
        if read_at.elapsed() > Duration::from_millis(500) {
            base = scan::entries(pid, start, end, ps)?;
            r = row(cs, loaded, pid)?;
            read_at = Instant::now();
        }
        if t.elapsed().as_secs_f64() > a.wait {
            return Err(Error::Child(format!(
                "no new child of pid {pid} within {} s (--wait): start cow-demo map \
                 first, then make it fork (e.g. redis-cli BGSAVE)",
                a.wait
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Watches an existing process and its child until the child exits.
fn run_pid(a: &MapArgs, pid: u32, scr: &Screen) -> Result<(MapReport, Grid)> {
    let ps = page_size();
    let smaps_path = format!("/proc/{pid}/smaps");
    let smaps =
        std::fs::read_to_string(&smaps_path).map_err(|e| Error::io("read", smaps_path, e))?;
    let (start, end) =
        scan::largest_anon_vma_by_rss(&smaps).ok_or_else(|| Error::InvalidValue {
            flag: "--pid",
            value: pid.to_string(),
            expected: "expected a process with a private anonymous mapping".into(),
        })?;
    let zero = scan::zero_pfn(ps).ok_or_else(needs_root)?;
    let cs = Cowstat::locate();
    let loaded = cs.is_loaded();
    let mut notes = Vec::new();
    if !loaded {
        notes.push("cowstat module not loaded: the picture is not checked".to_string());
    }
    let (child, mut base, p0) = attach(a, pid, start, end, ps, &cs, loaded)?;
    let n = (end - start) / ps;
    let per_cell = pages_per_cell(n, MAX_ROWS);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let title = format!(
        "cow-demo map: pid {pid} ({}) and child {child}, {} VMA at {start:#x}",
        comm.trim(),
        format_bytes(end - start)
    );
    let t = Instant::now();
    let none = Written::default();
    let mut last: Option<Sample> = None;
    let mut first = true;
    loop {
        let s = sample(pid, child, start, end, ps, &mut notes)?;
        let Some(ce) = s.child.as_ref() else { break };
        if first {
            // Pages faulted in after the base was read: the child's are the originals.
            for (b, c) in base.iter_mut().zip(ce) {
                if !b.present {
                    *b = *c;
                }
            }
            first = false;
        }
        let g = Grid::build(&states(&pages(&base, &s, &none), Some(zero)), per_cell, ps);
        let tally = Tally::of(&pages(&base, &s, &none), Some(zero));
        let status = format!(
            "{}, {:.1} s: parent copied {}, child copied {}",
            per_cell_words(per_cell),
            t.elapsed().as_secs_f64(),
            tally.parent.copies,
            tally.child.copies
        );
        scr.frame(&screen(&[title.clone(), status], &g, &[], true))?;
        last = Some(s);
        if a.duration.is_some_and(|d| t.elapsed().as_secs_f64() >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let last =
        last.ok_or_else(|| Error::Child(format!("child {child} exited before the first sample")))?;
    let (p1, c1) = (row(&cs, loaded, pid)?, row(&cs, loaded, child)?);
    let all = pages(&base, &last, &none);
    let tally = Tally::of(&all, Some(zero));
    let grid = Grid::build(&states(&all, Some(zero)), per_cell, ps);
    let cowstat = delta(p1, p0)
        .zip(c1)
        .map(|(parent, child)| Pair { child, parent });
    notes.push(format!(
        "the map shows one VMA ({} of the process); cowstat counts all its memory",
        format_bytes(end - start)
    ));
    let agreement = compare(
        &tally,
        cowstat.map(|c| c.child),
        cowstat.map(|c| c.parent),
        Relation::AtMost,
    );
    let report = MapReport {
        mode: "pid",
        parent_pid: pid,
        child_pid: child,
        start,
        bytes: end - start,
        page_size: ps,
        pages: n,
        pages_per_cell: per_cell,
        columns: COLS,
        rows: grid.row_count(),
        writer: "unknown".into(),
        pattern: None,
        write_pages: None,
        rate: None,
        cells: grid.counts(),
        grid: MapReport::glyphs(&grid),
        events: tally,
        cowstat,
        verdict: verdict(&agreement),
        mismatches: mismatches(&agreement),
        agreement,
        notes,
    };
    Ok((report, grid))
}

/// The header of the final picture.
fn final_header(r: &MapReport) -> Vec<String> {
    let what = match r.mode {
        "fork" => format!(
            "{} wrote {} pages ({}{})",
            if r.writer == "both" {
                "child, then parent"
            } else {
                &r.writer
            },
            r.write_pages.unwrap_or(0),
            r.pattern.as_deref().unwrap_or(""),
            r.rate
                .map_or(String::new(), |x| format!(", {x:.0} pages/s"))
        ),
        _ => format!("{} VMA at {:#x}", format_bytes(r.bytes), r.start),
    };
    vec![
        format!(
            "cow-demo map: {} pages, {}; {what}",
            r.pages,
            per_cell_words(r.pages_per_cell)
        ),
        format!("parent pid {}, child pid {}", r.parent_pid, r.child_pid),
    ]
}

/// Runs the command.
pub fn run(a: &MapArgs) -> Result<Outcome> {
    let scr = Screen::new(a);
    let (report, grid) = match a.pid {
        Some(pid) => run_pid(a, pid, &scr)?,
        None => run_workers(a, &scr)?,
    };
    let header = final_header(&report);
    let closing = report.closing();
    if let Some(path) = &a.svg {
        let caption: Vec<String> = header.iter().skip(1).chain(&closing).cloned().collect();
        std::fs::write(path, svg::render(&grid, &header[0], &caption))
            .map_err(|e| Error::io("write", path.clone(), e))?;
    }
    if a.json {
        print_out(&(crate::report::to_json(&report)? + "\n"))?;
    } else if scr.live {
        scr.frame(&screen(&header, &grid, &closing, true))?;
    } else {
        print_out(&(screen(&header, &grid, &closing, false).join("\n") + "\n"))?;
    }
    Ok(if report.verdict == "MISMATCH" {
        Outcome::Mismatch
    } else {
        Outcome::Ok
    })
}
