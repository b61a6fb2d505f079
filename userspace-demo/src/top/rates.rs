// SPDX-License-Identifier: GPL-2.0
//! From two samples of `procs` and `stats` to one frame of `cow-demo top`:
//! per-process deltas and rates, which processes are new or ended in the
//! interval, the filters and the sort order. No I/O here.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use clap::ValueEnum;
use serde::Serialize;

use crate::counter::Counter;
use crate::procfs::cowstat::{Counts, ProcRow, Stats};

/// What was read at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Seconds since the first sample (monotonic clock).
    pub t: f64,
    /// Local wall-clock time, HH:MM:SS.
    pub time: String,
    /// Global counters (`stats`).
    pub stats: Stats,
    /// Every row of `procs`.
    pub rows: Vec<ProcRow>,
}

/// What happened to a process in the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Seen in both samples, still alive.
    Live,
    /// First seen in this interval (forked, or its first counted event).
    New,
    /// Ended in the interval: `total` is its final row.
    Exited,
    /// Ended in the interval and its final row is gone already (more than
    /// 1024 processes ended, or a reset): `total` is its last row seen.
    Vanished,
}

impl State {
    /// The mark in the `S` column: blank, `+` new, `X` ended.
    pub fn mark(self) -> &'static str {
        match self {
            State::Live => "",
            State::New => "+",
            State::Exited | State::Vanished => "X",
        }
    }
}

/// Events per second, one field per counter of a `procs` row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Write-protect faults per second.
    pub wp_faults: f64,
    /// Pages copied per second.
    pub cow_copies: f64,
    /// Zero-page breaks per second.
    pub cow_zero: f64,
    /// Pages reused in place per second.
    pub wp_reuses: f64,
    /// Huge-PMD write faults per second.
    pub thp_wp_faults: f64,
}

impl Rates {
    /// `d` spread over `secs` seconds.
    pub fn of(d: &Counts, secs: f64) -> Rates {
        let r = |v: u64| v as f64 / secs;
        Rates {
            wp_faults: r(d.wp_faults),
            cow_copies: r(d.cow_copies),
            cow_zero: r(d.cow_zero),
            wp_reuses: r(d.wp_reuses),
            thp_wp_faults: r(d.thp_wp_faults),
        }
    }
}

/// One process in a frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcRate {
    /// Pid; `None` for the `<other>` row.
    pub pid: Option<u32>,
    /// Command name.
    pub comm: String,
    /// New, live or ended in the interval.
    pub state: State,
    /// Events in the interval.
    pub delta: Counts,
    /// The same per second.
    pub per_s: Rates,
    /// Totals since the process's first event (or the last reset).
    pub total: Counts,
}

/// System-wide figures of the interval, from `stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Global {
    /// Events in the interval.
    pub delta: Counts,
    /// The same per second.
    pub per_s: Rates,
    /// Address spaces duplicated in the interval.
    pub forks: u64,
    /// Nanoseconds spent in `dup_mmap` in the interval.
    pub fork_ns: u64,
}

/// One refresh of `cow-demo top`: what the screen, a plain block or a JSON
/// line shows.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    /// Local time of the second sample, HH:MM:SS.
    pub time: String,
    /// Seconds since the first sample.
    pub elapsed_s: f64,
    /// Seconds between the two samples.
    pub interval_s: f64,
    /// System-wide deltas and rates.
    pub global: Global,
    /// The processes that pass the filters, in sort order.
    pub procs: Vec<ProcRate>,
}

/// The column `top` sorts by (descending, pid and comm ascending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// Pages copied per second.
    Copies,
    /// Write-protect faults per second.
    Faults,
    /// Pages reused per second.
    Reuses,
    /// Zero-page breaks per second.
    Zero,
    /// Total pages copied.
    CopiesTotal,
    /// Total write-protect faults.
    FaultsTotal,
    /// Total pages reused.
    ReusesTotal,
    /// Total zero-page breaks.
    ZeroTotal,
    /// Process id.
    Pid,
    /// Command name.
    Comm,
}

impl SortKey {
    /// The name as given on the command line.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// Which processes to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these pids (all if empty).
    pub pids: Vec<u32>,
    /// Only commands containing this text.
    pub comm: Option<String>,
    /// Pids whose command matched once: a row's comm is that of the
    /// process's latest event, which may be one of its threads (Redis's
    /// `bio_lazy_free`), so a match sticks.
    pub comm_seen: HashSet<Option<u32>>,
}

impl Filter {
    /// A filter on pids (all if empty) and command text.
    pub fn new(pids: Vec<u32>, comm: Option<String>) -> Self {
        Filter {
            pids,
            comm,
            comm_seen: HashSet::new(),
        }
    }

    /// True if `p` passes; remembers a command match.
    pub fn matches(&mut self, p: &ProcRate) -> bool {
        let pid_ok = self.pids.is_empty() || p.pid.is_some_and(|pid| self.pids.contains(&pid));
        let comm_ok = match &self.comm {
            None => true,
            Some(c) if p.comm.contains(c.as_str()) => {
                self.comm_seen.insert(p.pid);
                true
            }
            Some(_) => self.comm_seen.contains(&p.pid),
        };
        pid_ok && comm_ok
    }
}

/// The global counters of `stats` that `procs` rows also have.
pub fn stats_counts(s: &Stats) -> Counts {
    Counts::from_columns(Counter::PROCS.map(|c| s[c]))
}

fn key(c: &Counts) -> [u64; 5] {
    Counter::PROCS.map(|k| c.get(k).unwrap_or(0))
}

/// `cur - prev`, or all of `cur` if a counter went down: a reset, or a new
/// process that got the pid of one that ended.
pub fn since(cur: &Counts, prev: &Counts) -> Counts {
    if key(cur).iter().zip(key(prev)).all(|(c, p)| *c >= p) {
        cur.delta(prev)
    } else {
        *cur
    }
}

/// Matches the rows of two samples, process by process.
///
/// A live row (or `<other>`) is matched by pid. An ended row (`X`) that was
/// already in `prev` ended before the interval and is left out; a new one
/// ended in the interval. A live row of `prev` with neither a live nor a new
/// ended row now has vanished.
pub fn match_rows(prev: &[ProcRow], cur: &[ProcRow], secs: f64) -> Vec<ProcRate> {
    let live: HashMap<Option<u32>, &ProcRow> = prev
        .iter()
        .filter(|r| !r.exited)
        .map(|r| (r.pid, r))
        .collect();
    let ended_before: HashSet<(Option<u32>, [u64; 5])> = prev
        .iter()
        .filter(|r| r.exited)
        .map(|r| (r.pid, key(&r.counts)))
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for r in cur {
        if r.exited && ended_before.contains(&(r.pid, key(&r.counts))) {
            continue;
        }
        let before = live.get(&r.pid);
        let state = match (r.exited, before) {
            (true, _) => State::Exited,
            (false, Some(_)) => State::Live,
            (false, None) => State::New,
        };
        let delta = match before {
            Some(b) => since(&r.counts, &b.counts),
            None => r.counts,
        };
        seen.insert(r.pid);
        out.push(ProcRate {
            pid: r.pid,
            comm: r.comm.clone(),
            state,
            delta,
            per_s: Rates::of(&delta, secs),
            total: r.counts,
        });
    }
    for r in prev.iter().filter(|r| !r.exited && !seen.contains(&r.pid)) {
        out.push(ProcRate {
            pid: r.pid,
            comm: r.comm.clone(),
            state: State::Vanished,
            delta: Counts::default(),
            per_s: Rates::default(),
            total: r.counts,
        });
    }
    out
}

impl SortKey {
    /// The counter it sorts by, and whether totals come before the interval's deltas.
    fn counter(self) -> Option<(Counter, bool)> {
        Some(match self {
            SortKey::Copies => (Counter::CowCopies, false),
            SortKey::Faults => (Counter::WpFaults, false),
            SortKey::Reuses => (Counter::WpReuses, false),
            SortKey::Zero => (Counter::CowZero, false),
            SortKey::CopiesTotal => (Counter::CowCopies, true),
            SortKey::FaultsTotal => (Counter::WpFaults, true),
            SortKey::ReusesTotal => (Counter::WpReuses, true),
            SortKey::ZeroTotal => (Counter::CowZero, true),
            SortKey::Pid | SortKey::Comm => return None,
        })
    }
}

/// Orders `procs` by `by`: counters descending (the interval's delta, then
/// the total, or the other way round for the `-total` keys), ties by pid.
pub fn sort(procs: &mut [ProcRate], by: SortKey) {
    let pid = |p: &ProcRate| p.pid.unwrap_or(u32::MAX);
    procs.sort_by(|a, b| -> Ordering {
        match by.counter() {
            Some((c, total_first)) => {
                let k = |p: &ProcRate| {
                    let (d, t) = (p.delta.get(c).unwrap_or(0), p.total.get(c).unwrap_or(0));
                    if total_first {
                        (t, d)
                    } else {
                        (d, t)
                    }
                };
                k(b).cmp(&k(a)).then(pid(a).cmp(&pid(b)))
            }
            None if by == SortKey::Comm => a.comm.cmp(&b.comm).then(pid(a).cmp(&pid(b))),
            None => pid(a).cmp(&pid(b)),
        }
    });
}

/// The frame between two samples: rows matched, filtered and sorted.
pub fn frame(prev: &Snapshot, cur: &Snapshot, filter: &mut Filter, by: SortKey) -> Frame {
    // Two reads are never at the same instant; the floor only guards the division.
    let secs = (cur.t - prev.t).max(1e-6);
    let mut procs: Vec<ProcRate> = match_rows(&prev.rows, &cur.rows, secs)
        .into_iter()
        .filter(|p| filter.matches(p))
        .collect();
    sort(&mut procs, by);
    let delta = since(&stats_counts(&cur.stats), &stats_counts(&prev.stats));
    Frame {
        time: cur.time.clone(),
        elapsed_s: cur.t,
        interval_s: secs,
        global: Global {
            delta,
            per_s: Rates::of(&delta, secs),
            forks: cur.stats[Counter::Forks].saturating_sub(prev.stats[Counter::Forks]),
            fork_ns: cur.stats[Counter::ForkNs].saturating_sub(prev.stats[Counter::ForkNs]),
        },
        procs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::cowstat::parse_procs;

    const HEAD: &str =
        "    pid comm             wp_faults cow_copies cow_zero wp_reuses thp_wp_faults S\n";

    fn rows(body: &str) -> Vec<ProcRow> {
        parse_procs(&format!("{HEAD}{body}")).unwrap()
    }

    fn find(f: &[ProcRate], pid: u32) -> &ProcRate {
        f.iter().find(|p| p.pid == Some(pid)).unwrap()
    }

    #[test]
    fn deltas_rates_and_states() {
        let prev = rows(
            "    10 sh                 5   4   0   1   0 L
     20 cow-demo          100  90   3   7   0 L
     30 gone               1   1   0   0   0 L
     40 old                2   2   0   0   0 X
      - <other>            3   3   0   0   0 -
",
        );
        let cur = rows(
            "    10 sh                 5   4   0   1   0 L
     20 cow-demo         1121 1111  3   7   0 X
     50 child            1021 1021  0   0   0 L
     40 old                2   2   0   0   0 X
     60 brief             23  23    0   0   0 X
      - <other>            5   4   1   0   0 -
",
        );
        let f = match_rows(&prev, &cur, 0.5);
        assert_eq!(f.len(), 6, "old X row left out: {f:?}");
        assert_eq!(find(&f, 10).state, State::Live);
        assert_eq!(find(&f, 10).delta, Counts::default());
        let p20 = find(&f, 20);
        assert_eq!(p20.state, State::Exited);
        assert_eq!((p20.delta.cow_copies, p20.delta.wp_faults), (1021, 1021));
        assert_eq!(p20.per_s.cow_copies, 2042.0);
        assert_eq!(p20.total.cow_copies, 1111);
        let p50 = find(&f, 50);
        assert_eq!((p50.state, p50.delta.cow_copies), (State::New, 1021));
        let p60 = find(&f, 60);
        assert_eq!((p60.state, p60.delta.cow_copies), (State::Exited, 23));
        let p30 = find(&f, 30);
        assert_eq!((p30.state, p30.total.wp_faults), (State::Vanished, 1));
        assert_eq!(p30.delta, Counts::default());
        let other = f.iter().find(|p| p.pid.is_none()).unwrap();
        assert_eq!(
            (other.state, other.delta.cow_copies, other.delta.cow_zero),
            (State::Live, 1, 1)
        );
    }

    #[test]
    fn reset_or_reused_pid_counts_from_zero() {
        let prev = rows("    10 sh   50 40 0 10 0 L\n");
        let cur = rows("    10 sh    3  3 0  0 0 L\n");
        let f = match_rows(&prev, &cur, 1.0);
        assert_eq!(f[0].delta.cow_copies, 3);
        assert_eq!(f[0].state, State::Live);
    }

    fn pr(pid: u32, comm: &str, delta_copies: u64, total_copies: u64) -> ProcRate {
        let d = Counts {
            cow_copies: delta_copies,
            wp_faults: 100 - delta_copies,
            ..Default::default()
        };
        ProcRate {
            pid: Some(pid),
            comm: comm.into(),
            state: State::Live,
            delta: d,
            per_s: Rates::of(&d, 1.0),
            total: Counts {
                cow_copies: total_copies,
                ..Default::default()
            },
        }
    }

    fn pids(v: &[ProcRate]) -> Vec<u32> {
        v.iter().map(|p| p.pid.unwrap()).collect()
    }

    #[test]
    fn sort_orders() {
        let mut v = vec![
            pr(3, "b", 5, 10),
            pr(1, "c", 7, 7),
            pr(2, "a", 5, 50),
            pr(4, "a", 0, 99),
        ];
        sort(&mut v, SortKey::Copies);
        assert_eq!(pids(&v), [1, 2, 3, 4]);
        sort(&mut v, SortKey::CopiesTotal);
        assert_eq!(pids(&v), [4, 2, 3, 1]);
        sort(&mut v, SortKey::Faults);
        assert_eq!(pids(&v), [4, 2, 3, 1]);
        sort(&mut v, SortKey::Pid);
        assert_eq!(pids(&v), [1, 2, 3, 4]);
        sort(&mut v, SortKey::Comm);
        assert_eq!(pids(&v), [2, 4, 3, 1]);
        assert_eq!(SortKey::CopiesTotal.name(), "copies-total");
    }

    #[test]
    fn filters() {
        let v = [pr(3, "redis-server", 1, 1), pr(4, "sh", 1, 1)];
        let mut f = Filter::new(vec![4, 9], None);
        assert_eq!(v.iter().filter(|p| f.matches(p)).count(), 1);
        let mut f = Filter::new(vec![], Some("redis".into()));
        assert!(f.matches(&v[0]) && !f.matches(&v[1]));
        // The row's comm is now a thread's: pid 3 matched before, so it stays.
        let thread = pr(3, "bio_lazy_free", 1, 1);
        assert!(f.matches(&thread));
        assert!(!f.matches(&pr(5, "bio_lazy_free", 1, 1)));
        let mut f = Filter::new(vec![4], Some("redis".into()));
        assert!(!f.matches(&v[0]) && !f.matches(&v[1]));
    }

    #[test]
    fn frame_global_rates_and_order() {
        let prev = Snapshot {
            t: 1.0,
            time: "00:00:01".into(),
            stats: crate::procfs::cowstat::parse_stats(
                "wp_faults 10\ncow_copies 5\nforks 1\nfork_ns 100\n",
            )
            .unwrap(),
            rows: rows("    10 a 1 1 0 0 0 L\n    11 b 1 1 0 0 0 L\n"),
        };
        let cur = Snapshot {
            t: 3.0,
            time: "00:00:03".into(),
            stats: crate::procfs::cowstat::parse_stats(
                "wp_faults 20\ncow_copies 11\nforks 3\nfork_ns 900\n",
            )
            .unwrap(),
            rows: rows("    10 a 3 3 0 0 0 L\n    11 b 7 7 0 0 0 L\n"),
        };
        let f = frame(&prev, &cur, &mut Filter::default(), SortKey::Copies);
        assert_eq!(f.interval_s, 2.0);
        assert_eq!(f.global.delta.cow_copies, 6);
        assert_eq!(f.global.per_s.wp_faults, 5.0);
        assert_eq!((f.global.forks, f.global.fork_ns), (2, 800));
        assert_eq!(pids(&f.procs), [11, 10]);
        assert_eq!(f.procs[0].per_s.cow_copies, 3.0);
    }
}
