// SPDX-License-Identifier: GPL-2.0
//! Does the picture agree with cowstat? The page events counted from pagemap
//! against each process's counter deltas, one line per comparison.

use serde::Serialize;

use super::classify::{Events, Tally};
use crate::counter::Counter;
use crate::procfs::cowstat::Counts;

/// How the two numbers must relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// cow-demo's own workload: only the mapped heap is written in the
    /// window, so every counted event is a page of the map.
    Equal,
    /// Another program: the map shows one VMA, cowstat counts the whole
    /// process, so the map can only show fewer events.
    AtMost,
}

/// One comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agreement {
    /// `child` or `parent`.
    pub who: &'static str,
    /// The cowstat counter.
    pub counter: &'static str,
    /// Events counted on the map.
    pub map: u64,
    /// The counter's delta; `None` without the module.
    pub cowstat: Option<u64>,
    /// How they must relate.
    pub relation: Relation,
    /// `None` when not compared.
    pub ok: Option<bool>,
}

/// Map event, cowstat counter, words for the line.
const KINDS: [(Counter, &str); 4] = [
    (Counter::CowCopies, "pages copied by"),
    (Counter::CowZero, "zero pages filled by"),
    (Counter::WpReuses, "pages reused by"),
    (Counter::ThpWpFaults, "huge pages split by"),
];

fn event(e: &Events, counter: Counter) -> u64 {
    match counter {
        Counter::CowCopies => e.copies,
        Counter::CowZero => e.zero,
        Counter::WpReuses => e.reuses,
        _ => e.thp_splits,
    }
}

/// The comparisons for both processes: copies always, the other counters
/// where the map or cowstat saw any (for another program, only where the
/// map saw any: it cannot see reuses without knowing what was written, and
/// other VMAs' events say nothing about this one).
pub fn compare(
    t: &Tally,
    child: Option<Counts>,
    parent: Option<Counts>,
    relation: Relation,
) -> Vec<Agreement> {
    let mut v = Vec::new();
    for (counter, _) in KINDS {
        for (who, ev, c) in [("child", &t.child, child), ("parent", &t.parent, parent)] {
            let map = event(ev, counter);
            let cowstat = c.and_then(|c| c.get(counter));
            let seen = match relation {
                Relation::Equal => map > 0 || cowstat.unwrap_or(0) > 0,
                Relation::AtMost => map > 0,
            };
            if counter != Counter::CowCopies && !seen {
                continue;
            }
            let ok = cowstat.map(|n| match relation {
                Relation::Equal => map == n,
                Relation::AtMost => map <= n,
            });
            v.push(Agreement {
                who,
                counter: counter.info().name,
                map,
                cowstat,
                relation,
                ok,
            });
        }
    }
    v
}

impl Agreement {
    /// e.g. `map: 23 pages copied by child = cowstat child cow_copies 23: agree`.
    pub fn line(&self) -> String {
        let words = KINDS
            .iter()
            .find(|(c, _)| c.info().name == self.counter)
            .map_or("", |k| k.1);
        let head = format!("map: {} {words} {}", self.map, self.who);
        match (self.cowstat, self.ok, self.relation) {
            (Some(n), Some(ok), Relation::Equal) => format!(
                "{head} {} cowstat {} {} {n}: {}",
                if ok { "=" } else { "!=" },
                self.who,
                self.counter,
                if ok { "agree" } else { "DISAGREE" }
            ),
            (Some(n), Some(ok), Relation::AtMost) => format!(
                "{head} {} cowstat {} {} {n}: {}",
                if ok { "<=" } else { ">" },
                self.who,
                self.counter,
                if ok { "consistent" } else { "DISAGREE" }
            ),
            _ => format!("{head} (cowstat not loaded: not compared)"),
        }
    }
}

/// `OK`, `MISMATCH` (some comparison failed) or `UNVERIFIED` (none made).
pub fn verdict(a: &[Agreement]) -> &'static str {
    if a.iter().any(|x| x.ok == Some(false)) {
        "MISMATCH"
    } else if a.iter().any(|x| x.ok == Some(true)) {
        "OK"
    } else {
        "UNVERIFIED"
    }
}

/// The counters that disagree, as `who.counter`.
pub fn mismatches(a: &[Agreement]) -> Vec<String> {
    a.iter()
        .filter(|x| x.ok == Some(false))
        .map(|x| format!("{}.{}", x.who, x.counter))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(copies: u64, reuses: u64) -> Counts {
        Counts {
            wp_faults: copies + reuses,
            cow_copies: copies,
            wp_reuses: reuses,
            ..Default::default()
        }
    }

    #[test]
    fn agree_and_disagree() {
        let mut t = Tally::default();
        t.child.copies = 1021;
        let a = compare(
            &t,
            Some(counts(1021, 0)),
            Some(counts(0, 0)),
            Relation::Equal,
        );
        assert_eq!(a.len(), 2, "copies only: nothing else happened");
        assert_eq!(
            a[0].line(),
            "map: 1021 pages copied by child = cowstat child cow_copies 1021: agree"
        );
        assert_eq!(
            a[1].line(),
            "map: 0 pages copied by parent = cowstat parent cow_copies 0: agree"
        );
        assert_eq!(verdict(&a), "OK");
        let a = compare(
            &t,
            Some(counts(1020, 0)),
            Some(counts(0, 1)),
            Relation::Equal,
        );
        assert_eq!(a.len(), 3, "the parent's reuse shows up");
        assert_eq!(
            a[0].line(),
            "map: 1021 pages copied by child != cowstat child cow_copies 1020: DISAGREE"
        );
        assert_eq!(
            a[2].line(),
            "map: 0 pages reused by parent != cowstat parent wp_reuses 1: DISAGREE"
        );
        assert_eq!(verdict(&a), "MISMATCH");
        assert_eq!(mismatches(&a), ["child.cow_copies", "parent.wp_reuses"]);
    }

    #[test]
    fn at_most_and_not_loaded() {
        let mut t = Tally::default();
        t.parent.copies = 1850;
        let a = compare(
            &t,
            Some(counts(3, 0)),
            Some(counts(1901, 0)),
            Relation::AtMost,
        );
        assert_eq!(
            a[1].line(),
            "map: 1850 pages copied by parent <= cowstat parent cow_copies 1901: consistent"
        );
        assert_eq!(verdict(&a), "OK");
        let busy = Counts {
            cow_zero: 32,
            wp_reuses: 40,
            ..counts(20, 0)
        };
        let a = compare(&t, Some(busy), Some(busy), Relation::AtMost);
        assert_eq!(a.len(), 2, "reuses and zero-fills elsewhere are not lines");
        let a = compare(&t, None, None, Relation::Equal);
        assert_eq!(
            a[0].line(),
            "map: 0 pages copied by child (cowstat not loaded: not compared)"
        );
        assert_eq!(verdict(&a), "UNVERIFIED");
    }

    #[test]
    fn thp_and_zero_lines() {
        let mut t = Tally::default();
        t.child.zero = 23;
        t.child.thp_splits = 9;
        let c = Counts {
            cow_zero: 23,
            thp_wp_faults: 9,
            ..Default::default()
        };
        let a = compare(&t, Some(c), Some(Counts::default()), Relation::Equal);
        let lines: Vec<String> = a.iter().map(|x| x.line()).collect();
        assert!(lines.contains(
            &"map: 23 zero pages filled by child = cowstat child cow_zero 23: agree".to_string()
        ));
        assert!(lines.contains(
            &"map: 9 huge pages split by child = cowstat child thp_wp_faults 9: agree".to_string()
        ));
    }
}
