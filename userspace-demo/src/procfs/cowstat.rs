// SPDX-License-Identifier: GPL-2.0
//! Readers and parsers for the /proc/cowstat files (stats, procs, probes, fork_latency; interface version 1).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::counter::Counter;
use crate::error::{Error, ParseError, Result};
use crate::procfs::window::WindowFile;

/// Where the module puts its files.
pub const DEFAULT_DIR: &str = "/proc/cowstat";
/// Environment variable overriding [`DEFAULT_DIR`] (host tests point it at fixtures).
pub const ENV_DIR: &str = "COWSTAT_PROC";

/// The per-process counters of one `procs` row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Write faults on a present write-protected PTE.
    pub wp_faults: u64,
    /// Pages allocated and filled by copying.
    pub cow_copies: u64,
    /// Writes to the shared zero page.
    pub cow_zero: u64,
    /// Write faults resolved by reusing the page.
    pub wp_reuses: u64,
    /// Write faults on a write-protected huge PMD.
    pub thp_wp_faults: u64,
}

impl Counts {
    /// The counters in `procs` column order.
    pub fn from_columns(v: [u64; 5]) -> Counts {
        let mut c = Counts::default();
        for (counter, value) in Counter::PROCS.into_iter().zip(v) {
            *c.slot(counter).expect("a procs column") = value;
        }
        c
    }

    fn slot(&mut self, c: Counter) -> Option<&mut u64> {
        Some(match c {
            Counter::WpFaults => &mut self.wp_faults,
            Counter::CowCopies => &mut self.cow_copies,
            Counter::CowZero => &mut self.cow_zero,
            Counter::WpReuses => &mut self.wp_reuses,
            Counter::ThpWpFaults => &mut self.thp_wp_faults,
            _ => return None,
        })
    }

    /// `self - before`, per counter (saturating: a reset in between gives 0).
    pub fn delta(&self, before: &Counts) -> Counts {
        let mut d = *self;
        for c in Counter::PROCS {
            let b = before.get(c).unwrap_or(0);
            if let Some(v) = d.slot(c) {
                *v = v.saturating_sub(b);
            }
        }
        d
    }

    /// Adds `other` to these counts, per counter (summing rows).
    pub fn add(&mut self, other: &Counts) {
        for c in Counter::PROCS {
            let v = other.get(c).unwrap_or(0);
            if let Some(s) = self.slot(c) {
                *s += v;
            }
        }
    }

    /// The value of `c`; `None` if `procs` has no such column.
    pub fn get(&self, c: Counter) -> Option<u64> {
        let mut copy = *self;
        copy.slot(c).map(|v| *v)
    }
}

/// One row of `procs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcRow {
    /// Thread-group id; `None` for the `<other>` overflow row (pid `-`).
    pub pid: Option<u32>,
    /// Command name of the first process seen with this tgid.
    pub comm: String,
    /// The counters.
    #[serde(flatten)]
    pub counts: Counts,
    /// The process has ended (state `X`: its final row, kept for a while).
    pub exited: bool,
}

/// The global counters of `stats`, by [`Counter`]; names a newer module
/// adds that this crate does not know are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    values: [u64; Counter::COUNT],
    /// Which of the counters after interface version 1's the file had.
    seen: [bool; Counter::COUNT],
    /// Counters this crate does not know, by name.
    pub extra: BTreeMap<String, u64>,
}

impl Stats {
    /// Sets counter `c` (as if the file had a line for it).
    pub fn set(&mut self, c: Counter, v: u64) {
        self.values[c.index()] = v;
        self.seen[c.index()] = true;
    }

    /// The value of `c`; `None` if this module does not report it (a
    /// counter added after interface version 1 on an older module).
    pub fn get(&self, c: Counter) -> Option<u64> {
        (c.is_v1() || self.seen[c.index()]).then_some(self.values[c.index()])
    }

    /// The counter called `name`, known or in `extra`.
    pub fn by_name(&self, name: &str) -> Option<u64> {
        match Counter::from_name(name) {
            Some(c) => self.get(c),
            None => self.extra.get(name).copied(),
        }
    }

    /// All counters as (name, value): interface version 1's in file order,
    /// then the rest by name.
    pub fn entries(&self) -> Vec<(&str, u64)> {
        let (v1, later) = Counter::ALL.split_at(Counter::V1);
        let mut rest: BTreeMap<&str, u64> = later
            .iter()
            .filter_map(|c| Some((c.name(), self.get(*c)?)))
            .collect();
        rest.extend(self.extra.iter().map(|(n, v)| (n.as_str(), *v)));
        v1.iter()
            .map(|c| (c.name(), self[*c]))
            .chain(rest)
            .collect()
    }

    /// `self - before` for every counter (saturating).
    pub fn delta(&self, before: &Stats) -> Stats {
        let mut d = self.clone();
        for (v, b) in d.values.iter_mut().zip(before.values) {
            *v = v.saturating_sub(b);
        }
        for (k, v) in d.extra.iter_mut() {
            *v = v.saturating_sub(before.extra.get(k).copied().unwrap_or(0));
        }
        d
    }
}

impl std::ops::Index<Counter> for Stats {
    type Output = u64;

    /// The value of `c`, 0 if the module does not report it.
    fn index(&self, c: Counter) -> &u64 {
        &self.values[c.index()]
    }
}

impl Serialize for Stats {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let entries = self.entries();
        let mut m = s.serialize_map(Some(entries.len()))?;
        for (name, v) in entries {
            m.serialize_entry(name, &v)?;
        }
        m.end()
    }
}

/// The value of counter `c` in `stats` text, without allocating (for
/// readers inside a measurement window); `None` if the line is missing.
pub fn stats_value(text: &str, c: Counter) -> Option<u64> {
    text.lines().find_map(|l| {
        let (name, v) = l.trim().split_once(' ')?;
        (name == c.name()).then(|| v.trim().parse().ok())?
    })
}

/// One row of `probes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeRow {
    /// Kernel function.
    pub function: String,
    /// `ftrace` or `kretprobe` (`kprobe` on modules before session 2).
    pub kind: String,
    /// `active`, `missing` or `leaked`.
    pub status: String,
    /// Times the probe fired.
    pub hits: u64,
    /// The counters its calls feed.
    pub counts: String,
}

/// One row of the `fork_latency` log2 histogram (microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Lower bound, usecs (inclusive).
    pub low_us: u64,
    /// Upper bound, usecs (inclusive).
    pub high_us: u64,
    /// Number of forks in the bucket.
    pub count: u64,
}

fn num(tok: &str, line: usize, what: &str) -> Result<u64, ParseError> {
    tok.parse()
        .map_err(|_| ParseError::new(line, format!("{what} '{tok}' is not a number")))
}

/// Parses `stats`: one `name value` line per counter; unknown names are kept in `extra`.
pub fn parse_stats(text: &str) -> Result<Stats, ParseError> {
    let mut s = Stats::default();
    let mut seen = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(name), Some(value), None) = (it.next(), it.next(), it.next()) else {
            return Err(ParseError::new(i + 1, "expected 'name value'"));
        };
        let v = num(value, i + 1, name)?;
        match Counter::from_name(name) {
            Some(c) => s.set(c, v),
            None => {
                s.extra.insert(name.to_string(), v);
            }
        }
        seen += 1;
    }
    if seen == 0 {
        return Err(ParseError::new(1, "no counters found"));
    }
    Ok(s)
}

/// Parses one data row of `procs` without allocating: (pid, comm, counters).
///
/// The comm may contain spaces, so the five counters are taken from the right,
/// after the state column (`L` live, `X` exited, `-` for `<other>`) if any.
pub fn parse_proc_line(
    line: &str,
    lineno: usize,
) -> Result<(Option<u32>, &str, Counts), ParseError> {
    let t = strip_state(line.trim()).0;
    let (pid_tok, mut rest) = t
        .split_once(char::is_whitespace)
        .ok_or_else(|| ParseError::new(lineno, "expected 'pid comm' and 5 counters"))?;
    let pid = if pid_tok == "-" {
        None
    } else {
        Some(
            pid_tok
                .parse::<u32>()
                .map_err(|_| ParseError::new(lineno, format!("pid '{pid_tok}' is not a number")))?,
        )
    };
    let mut vals = [0u64; 5];
    for slot in vals.iter_mut().rev() {
        rest = rest.trim_end();
        let (head, tok) = match rest.rfind(char::is_whitespace) {
            Some(p) => (&rest[..p], &rest[p + 1..]),
            None => {
                return Err(ParseError::new(
                    lineno,
                    "expected 'pid comm' and 5 counters",
                ))
            }
        };
        *slot = num(tok, lineno, "counter")?;
        rest = head;
    }
    let comm = rest.trim();
    if comm.is_empty() {
        return Err(ParseError::new(lineno, "missing comm"));
    }
    Ok((pid, comm, Counts::from_columns(vals)))
}

/// Splits off a trailing state column: (rest, exited).
fn strip_state(line: &str) -> (&str, bool) {
    match line.rsplit_once(char::is_whitespace) {
        Some((rest, "X")) => (rest.trim_end(), true),
        Some((rest, "L" | "-")) => (rest.trim_end(), false),
        _ => (line, false),
    }
}

fn check_procs_header(text: &str) -> Result<(), ParseError> {
    let header = text.lines().next().unwrap_or("");
    let cols: Vec<&str> = header.split_whitespace().collect();
    let want: Vec<&str> = ["pid", "comm"]
        .into_iter()
        .chain(Counter::PROCS.map(Counter::name))
        .collect();
    // Since interface version 2 a state column `S` ends the header.
    let cols = cols.strip_suffix(&["S"]).unwrap_or(&cols);
    if cols != want {
        return Err(ParseError::new(
            1,
            format!("expected header '{}'", want.join(" ")),
        ));
    }
    Ok(())
}

/// Parses `procs`: the header line then one row per tgid.
pub fn parse_procs(text: &str) -> Result<Vec<ProcRow>, ParseError> {
    check_procs_header(text)?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (pid, comm, counts) = parse_proc_line(line, i + 1)?;
        rows.push(ProcRow {
            pid,
            comm: comm.to_string(),
            counts,
            exited: strip_state(line.trim()).1,
        });
    }
    Ok(rows)
}

/// Finds the row of `pid` in `procs` text without allocating; a missing row means all zero.
pub fn find_row(text: &str, pid: u32) -> Result<Counts, ParseError> {
    check_procs_header_fast(text)?;
    for (i, line) in text.lines().enumerate().skip(1) {
        let t = line.trim_start();
        let tok = t.split(char::is_whitespace).next().unwrap_or("");
        if tok.parse::<u32>().ok() == Some(pid) {
            return Ok(parse_proc_line(line, i + 1)?.2);
        }
    }
    Ok(Counts::default())
}

fn check_procs_header_fast(text: &str) -> Result<(), ParseError> {
    let header = text.lines().next().unwrap_or("");
    if header.split_whitespace().next() != Some("pid") {
        return Err(ParseError::new(1, "expected a header starting with 'pid'"));
    }
    Ok(())
}

/// Parses `probes`: a header, then `function kind status hits counts...`
/// rows up to the first blank line (the caller table that follows is for
/// people).
pub fn parse_probes(text: &str) -> Result<Vec<ProbeRow>, ParseError> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.is_empty() {
            break;
        }
        if i == 0 && toks[0] == "function" {
            continue;
        }
        if toks.len() < 4 {
            return Err(ParseError::new(
                i + 1,
                "expected 'function kind status hits counts'",
            ));
        }
        rows.push(ProbeRow {
            function: toks[0].to_string(),
            kind: toks[1].to_string(),
            status: toks[2].to_string(),
            hits: num(toks[3], i + 1, "hits")?,
            counts: toks[4..].join(" "),
        });
    }
    Ok(rows)
}

/// Parses `fork_latency`: a `usecs : count distribution` header then `low -> high : count |bars|` rows.
pub fn parse_fork_latency(text: &str) -> Result<Vec<Bucket>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("usecs") {
            continue;
        }
        let bad = || ParseError::new(i + 1, "expected 'low -> high : count |distribution|'");
        let (range, rest) = t.split_once(':').ok_or_else(bad)?;
        let (lo, hi) = range.split_once("->").ok_or_else(bad)?;
        let count = rest.split_whitespace().next().ok_or_else(bad)?;
        out.push(Bucket {
            low_us: num(lo.trim(), i + 1, "bucket low")?,
            high_us: num(hi.trim(), i + 1, "bucket high")?,
            count: num(count, i + 1, "count")?,
        });
    }
    Ok(out)
}

/// Handle on the cowstat directory (`/proc/cowstat` or `$COWSTAT_PROC`).
#[derive(Debug, Clone)]
pub struct Cowstat {
    dir: PathBuf,
}

impl Default for Cowstat {
    fn default() -> Self {
        Self::locate()
    }
}

impl Cowstat {
    /// Uses `$COWSTAT_PROC` if set and non-empty, else `/proc/cowstat`.
    pub fn locate() -> Self {
        let dir = std::env::var_os(ENV_DIR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
        Cowstat { dir }
    }

    /// A handle on an explicit directory.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Cowstat { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of file `name` in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// True if `stats` exists (the module is loaded, or the fixture dir is complete).
    pub fn is_loaded(&self) -> bool {
        self.path("stats").exists()
    }

    /// Returns [`Error::NotLoaded`] unless [`Cowstat::is_loaded`].
    pub fn require(&self) -> Result<()> {
        if self.is_loaded() {
            Ok(())
        } else {
            Err(Error::NotLoaded(self.path("stats")))
        }
    }

    fn read(&self, name: &str) -> Result<(PathBuf, String)> {
        let p = self.path(name);
        match fs::read_to_string(&p) {
            Ok(s) => Ok((p, s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "stats" => {
                Err(Error::NotLoaded(p))
            }
            Err(e) => Err(Error::io("read", p, e)),
        }
    }

    /// Reads and parses `stats`.
    pub fn stats(&self) -> Result<Stats> {
        let (p, s) = self.read("stats")?;
        parse_stats(&s).map_err(|source| Error::Parse { path: p, source })
    }

    /// Reads and parses `procs`.
    pub fn procs(&self) -> Result<Vec<ProcRow>> {
        let (p, s) = self.read("procs")?;
        parse_procs(&s).map_err(|source| Error::Parse { path: p, source })
    }

    /// Reads and parses `probes`.
    pub fn probes(&self) -> Result<Vec<ProbeRow>> {
        let (p, s) = self.read("probes")?;
        parse_probes(&s).map_err(|source| Error::Parse { path: p, source })
    }

    /// Reads and parses `fork_latency`.
    pub fn fork_latency(&self) -> Result<Vec<Bucket>> {
        let (p, s) = self.read("fork_latency")?;
        parse_fork_latency(&s).map_err(|source| Error::Parse { path: p, source })
    }

    /// The row of `pid` (all zero if absent).
    pub fn row(&self, pid: u32) -> Result<Counts> {
        let (p, s) = self.read("procs")?;
        find_row(&s, pid).map_err(|source| Error::Parse { path: p, source })
    }

    /// Reads `procs` into the caller's buffer without allocating; returns the text.
    pub fn read_procs_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str> {
        read_file_into(&self.path("procs"), buf)
    }
}

/// Reads a whole file into `buf` without allocating (except on error); returns the text.
pub fn read_file_into<'b>(p: &Path, buf: &'b mut [u8]) -> Result<&'b str> {
    let mut f = fs::File::open(p).map_err(|e| Error::io("open", p, e))?;
    let n = read_all_into(&mut f, buf).map_err(|e| Error::io("read", p, e))?;
    std::str::from_utf8(&buf[..n]).map_err(|_| Error::Parse {
        path: p.into(),
        source: ParseError::new(1, "not UTF-8"),
    })
}

/// Reads `r` to its end into `buf` without allocating; returns the length.
/// A /proc file must come whole in one pass, so a full buffer is an error.
pub fn read_all_into(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    loop {
        if n == buf.len() {
            return Err(std::io::Error::other(
                "file larger than the reserved buffer",
            ));
        }
        match r.read(&mut buf[n..]) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Room for a full `procs` table: 4096 rows + header + `<other>` at ~80
/// bytes each is ~330 KB; 1 MiB leaves room for wide numbers.
pub const PROCS_BUF: usize = 1 << 20;

/// Reads per-process rows inside a measurement window (see
/// [`WindowFile`]): call [`ProcsReader::prefault`] after the fork, before
/// the window.
pub struct ProcsReader {
    file: WindowFile,
}

impl ProcsReader {
    /// Prepares a reader of `procs` in `cs`.
    pub fn new(cs: &Cowstat) -> Self {
        ProcsReader {
            file: WindowFile::new(cs.path("procs"), PROCS_BUF),
        }
    }

    /// Writes every page of the buffer (call after fork, before the window).
    pub fn prefault(&mut self) {
        self.file.prefault();
    }

    /// The rows of `a` and `b` (all zero where a row is missing).
    pub fn rows(&mut self, a: u32, b: u32) -> Result<(Counts, Counts)> {
        self.file.read()?;
        let f = &self.file;
        let parse = |pid| {
            find_row(f.text(), pid).map_err(|source| Error::Parse {
                path: f.path().to_path_buf(),
                source,
            })
        };
        Ok((parse(a)?, parse(b)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const STATS: &str = "wp_faults 4111\ncow_copies 4107\ncow_zero 3\nwp_reuses 1\n\
        wp_shared 0\ncow_unshare 0\nthp_wp_faults 32\nforks 17\nfork_ns 12600000\n";
    pub(crate) const PROCS: &str =
        "    pid comm             wp_faults cow_copies cow_zero wp_reuses thp_wp_faults
    412 cow-demo              4099       4099        0         0             0
    413 cow-demo                 0          0        0         0            32
  41234 my prog name             1          1        0         0             0
      - <other>                 12         12        0         0             0
";
    const PROBES: &str = "function                 kind      status        hits  counts
do_wp_page               ftrace    active        1234  wp_attempts
ptep_clear_flush         ftrace    active        1100  cow_* copies, hugetlb_copies
do_huge_pmd_wp_page      ftrace    missing          0  thp_wp_attempts
dup_mmap                 kretprobe active          17  fork_ns, fork_latency

caller                       status       part of
do_wp_page                   function     write-protect fault
";
    const HIST: &str = "     usecs               : count     distribution
         0 -> 1          : 0        |                                        |
         2 -> 3          : 0        |                                        |
         4 -> 7          : 1        |****************************************|
";

    #[test]
    fn stats_doc_example() {
        let s = parse_stats(STATS).unwrap();
        assert_eq!(s[Counter::WpFaults], 4111);
        assert_eq!(s[Counter::CowCopies], 4107);
        assert_eq!(s[Counter::CowZero], 3);
        assert_eq!(s[Counter::WpReuses], 1);
        assert_eq!(s[Counter::ThpWpFaults], 32);
        assert_eq!(s[Counter::Forks], 17);
        assert_eq!(s[Counter::ForkNs], 12_600_000);
        assert!(s.extra.is_empty());
        assert_eq!(s.entries().len(), 9);
        assert_eq!(s.entries()[0], ("wp_faults", 4111));
    }

    #[test]
    fn stats_keeps_new_counters_and_rejects_garbage() {
        let s = parse_stats("wp_faults 1\nnew_thing 7\n").unwrap();
        assert_eq!(s.extra.get("new_thing"), Some(&7));
        assert_eq!(s.entries().last().unwrap(), &("new_thing", 7));
        let e = parse_stats("wp_faults 1\ncow_copies x\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("'x'"));
        assert!(parse_stats("wp_faults\n").is_err());
        assert!(parse_stats("").is_err());
    }

    #[test]
    fn stats_get_typed_and_extra() {
        let s = parse_stats("wp_faults 3\ncow_file 5\nzz_new 1\naa_new 2\n").unwrap();
        assert_eq!(s.get(Counter::WpFaults), Some(3));
        assert_eq!(s.get(Counter::CowFile), Some(5));
        assert_eq!(s.get(Counter::CowCopies), Some(0));
        assert_eq!(s.get(Counter::CowKsm), None);
        assert_eq!(s[Counter::CowKsm], 0);
        assert_eq!(s.by_name("cow_file"), Some(5));
        assert_eq!(s.by_name("zz_new"), Some(1));
        assert_eq!(s.by_name("nope"), None);
        // Interface version 1's nine in file order, then the rest by name.
        let names: Vec<&str> = s.entries().iter().map(|e| e.0).collect();
        assert_eq!(names[8..], ["fork_ns", "aa_new", "cow_file", "zz_new"]);
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.starts_with("{\"wp_faults\":3,\"cow_copies\":0,"),
            "{json}"
        );
        assert!(json.ends_with("\"fork_ns\":0,\"aa_new\":2,\"cow_file\":5,\"zz_new\":1}"));
    }

    #[test]
    fn stats_delta() {
        let a = parse_stats("wp_faults 10\ncow_copies 5\nnew 3\n").unwrap();
        let b = parse_stats("wp_faults 4\ncow_copies 7\nnew 1\n").unwrap();
        let d = a.delta(&b);
        assert_eq!(d[Counter::WpFaults], 6);
        assert_eq!(d[Counter::CowCopies], 0);
        assert_eq!(d.extra["new"], 2);
    }

    #[test]
    fn stats_value_without_parsing_all() {
        assert_eq!(stats_value(STATS, Counter::CowZero), Some(3));
        assert_eq!(stats_value(STATS, Counter::Forks), Some(17));
        assert_eq!(stats_value(STATS, Counter::CowFile), None);
    }

    #[test]
    fn procs_doc_example() {
        let rows = parse_procs(PROCS).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].pid, Some(412));
        assert_eq!(rows[0].comm, "cow-demo");
        assert_eq!(rows[0].counts.wp_faults, 4099);
        assert_eq!(rows[0].counts.cow_copies, 4099);
        assert_eq!(rows[1].counts.thp_wp_faults, 32);
        assert_eq!(rows[2].comm, "my prog name");
        assert_eq!(rows[2].pid, Some(41234));
        assert_eq!(rows[3].pid, None);
        assert_eq!(rows[3].comm, "<other>");
        assert_eq!(rows[3].counts.cow_copies, 12);
    }

    #[test]
    fn procs_wide_numbers_and_errors() {
        let t = "    pid comm             wp_faults cow_copies cow_zero wp_reuses thp_wp_faults
    412 cow-demo         12345678901 12345678901        0         0             0
";
        assert_eq!(parse_procs(t).unwrap()[0].counts.wp_faults, 12_345_678_901);
        assert!(parse_procs("pid comm\n").is_err());
        let bad = PROCS.replace("4099       4099", "4099       x");
        let e = parse_procs(&bad).unwrap_err();
        assert_eq!(e.line, 2);
        let short = format!("{}    1 a 1 2\n", PROCS.lines().next().unwrap());
        assert!(parse_procs(&short).is_err());
        // Header only: no rows yet.
        assert!(parse_procs(PROCS.lines().next().unwrap())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn find_row_by_pid() {
        assert_eq!(find_row(PROCS, 413).unwrap().thp_wp_faults, 32);
        assert_eq!(find_row(PROCS, 412).unwrap().cow_copies, 4099);
        assert_eq!(find_row(PROCS, 41).unwrap(), Counts::default());
        assert!(find_row("garbage\n", 1).is_err());
    }

    #[test]
    fn counts_delta_and_get() {
        let a = Counts {
            wp_faults: 10,
            cow_copies: 9,
            cow_zero: 1,
            wp_reuses: 0,
            thp_wp_faults: 2,
        };
        let d = a.delta(&Counts {
            wp_faults: 3,
            ..Default::default()
        });
        assert_eq!(d.wp_faults, 7);
        for c in Counter::PROCS {
            assert!(a.get(c).is_some());
        }
        assert_eq!(a.get(Counter::ThpWpFaults), Some(2));
        assert_eq!(a.get(Counter::WpShared), None);
        assert_eq!(Counts::from_columns([1, 2, 3, 4, 5]).wp_reuses, 4);
        let mut sum = a;
        sum.add(&Counts::from_columns([1, 2, 3, 4, 5]));
        assert_eq!(sum, Counts::from_columns([11, 11, 4, 4, 7]));
    }

    #[test]
    fn procs_state_column() {
        let text =
            "    pid comm             wp_faults cow_copies cow_zero wp_reuses thp_wp_faults S
     66 sh                      45         24        1        18             0 L
     64 exe                     11          5        1         3             0 X
      - <other>                  2          2        0         0             0 -
";
        let rows = parse_procs(text).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(!rows[0].exited && rows[1].exited && !rows[2].exited);
        assert_eq!(rows[1].counts.cow_copies, 5);
        assert_eq!(rows[2].pid, None);
        assert_eq!(find_row(text, 64).unwrap().wp_reuses, 3);
    }

    #[test]
    fn probes_doc_example() {
        let p = parse_probes(PROBES).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].function, "do_wp_page");
        assert_eq!(p[0].hits, 1234);
        assert_eq!(p[2].status, "missing");
        assert_eq!(p[3].kind, "kretprobe");
        assert_eq!(p[1].counts, "cow_* copies, hugetlb_copies");
        assert!(parse_probes("function kind status hits counts\nx y z\n").is_err());
    }

    #[test]
    fn histogram_doc_example() {
        let h = parse_fork_latency(HIST).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(
            h[2],
            Bucket {
                low_us: 4,
                high_us: 7,
                count: 1
            }
        );
        assert!(
            parse_fork_latency("     usecs               : count     distribution\n")
                .unwrap()
                .is_empty()
        );
        assert!(parse_fork_latency("0 -> x : 1 ||\n").is_err());
    }

    #[test]
    fn dir_handle_reads_fixture_files() {
        let d = tempfile::tempdir().unwrap();
        let c = Cowstat::at(d.path());
        assert!(!c.is_loaded());
        assert!(matches!(c.stats(), Err(Error::NotLoaded(_))));
        fs::write(d.path().join("stats"), STATS).unwrap();
        fs::write(d.path().join("procs"), PROCS).unwrap();
        assert!(c.is_loaded());
        assert_eq!(c.stats().unwrap()[Counter::Forks], 17);
        assert_eq!(c.procs().unwrap().len(), 4);
        assert_eq!(c.row(412).unwrap().wp_faults, 4099);
        let mut buf = vec![0u8; 4096];
        let t = c.read_procs_into(&mut buf).unwrap();
        assert_eq!(t, PROCS);
        let mut small = vec![0u8; 16];
        assert!(c.read_procs_into(&mut small).is_err());
        let mut r = ProcsReader::new(&c);
        r.prefault();
        let (a, b) = r.rows(412, 9999).unwrap();
        assert_eq!(a.cow_copies, 4099);
        assert_eq!(b, Counts::default());
        assert!(matches!(c.probes(), Err(Error::Io { .. })));
    }
}
