// SPDX-License-Identifier: GPL-2.0
//! The names a record carries: its benchmark, its metric (with the unit)
//! and the guest driver's tag (scripts/guest/lib/bench.sh passes `--tag`;
//! tests/guest/bench-smoke.sh and the report select records by them).
//! On the wire they are the same plain strings as ever.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A benchmark family: the `bench` field and the subcommand that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bench {
    /// COW fault, rewrite, memcpy and first-touch cost per page; fork().
    Overhead,
    /// fork() latency of a touched heap.
    Fork,
    /// The cost of knowing: a child's row vs its smaps.
    Know,
    /// N processes taking COW faults at once.
    Scale,
    /// Rows left behind by short-lived processes.
    Fill,
    /// One process's figures: self and pid vs its smaps.
    One,
}

/// What a record's samples are: the `metric` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// fork() in the overhead run.
    Fork,
    /// COW write fault, per page.
    CowFault,
    /// COW write fault, p10 of chunks.
    CowFaultP10,
    /// Derived by the report: COW fault / first-touch fault, same run.
    CowFaultNorm,
    /// Rewriting a page already copied.
    Rewrite,
    /// First write to a fresh page.
    FirstTouch,
    /// The same, p10 of chunks.
    FirstTouchP10,
    /// A userspace 4 KiB memcpy.
    #[serde(rename = "memcpy_4k")]
    Memcpy4k,
    /// The overhead child's own cowstat row.
    ChildCowCopies,
    /// fork() as userspace sees it.
    ForkUser,
    /// dup_mmap per cowstat's fork_ns.
    ForkDupMmap,
    /// fork() minus dup_mmap.
    ForkGap,
    /// Finding one row in `procs`.
    ReadProcs,
    /// Reading a process's smaps.
    ReadSmaps,
    /// Reading its smaps_rollup.
    ReadSmapsRollup,
    /// Reading /proc/PID/stat.
    ReadPidStat,
    /// Wall time per fault over all processes.
    WallPerFault,
    /// A child's own time per fault.
    ChildPerFault,
    /// Global cow_copies over the run.
    GlobalCowCopies,
    /// Copies that landed in the `<other>` row.
    OtherRowCopies,
    /// fork, write a page, exit: per child.
    ForkWriteExit,
    /// Reading the whole `procs` table.
    ReadProcsAll,
    /// /proc/cowstat/self, opened each time.
    ReadSelf,
    /// The same, the file kept open.
    ReadSelfKeptFd,
    /// /proc/cowstat/pid, opened each time.
    ReadPid,
    /// The same, the file kept open.
    ReadPidKeptFd,
    /// `procs` read and searched for one pid.
    ReadProcsFind,
}

impl Metric {
    /// The unit of every sample.
    pub fn unit(self) -> &'static str {
        use Metric::*;
        match self {
            CowFault | CowFaultP10 | Rewrite | FirstTouch | FirstTouchP10 | Memcpy4k
            | WallPerFault | ChildPerFault => "ns/page",
            ChildCowCopies | GlobalCowCopies | OtherRowCopies => "pages",
            CowFaultNorm => "ratio",
            _ => "ns",
        }
    }

    /// Every metric.
    #[cfg(test)]
    pub const ALL: [Metric; 27] = [
        Metric::Fork,
        Metric::CowFault,
        Metric::CowFaultP10,
        Metric::CowFaultNorm,
        Metric::Rewrite,
        Metric::FirstTouch,
        Metric::FirstTouchP10,
        Metric::Memcpy4k,
        Metric::ChildCowCopies,
        Metric::ForkUser,
        Metric::ForkDupMmap,
        Metric::ForkGap,
        Metric::ReadProcs,
        Metric::ReadSmaps,
        Metric::ReadSmapsRollup,
        Metric::ReadPidStat,
        Metric::WallPerFault,
        Metric::ChildPerFault,
        Metric::GlobalCowCopies,
        Metric::OtherRowCopies,
        Metric::ForkWriteExit,
        Metric::ReadProcsAll,
        Metric::ReadSelf,
        Metric::ReadSelfKeptFd,
        Metric::ReadPid,
        Metric::ReadPidKeptFd,
        Metric::ReadProcsFind,
    ];

    /// Its name in the records.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Fork => "fork",
            Metric::CowFault => "cow_fault",
            Metric::CowFaultP10 => "cow_fault_p10",
            Metric::CowFaultNorm => "cow_fault_norm",
            Metric::Rewrite => "rewrite",
            Metric::FirstTouch => "first_touch",
            Metric::FirstTouchP10 => "first_touch_p10",
            Metric::Memcpy4k => "memcpy_4k",
            Metric::ChildCowCopies => "child_cow_copies",
            Metric::ForkUser => "fork_user",
            Metric::ForkDupMmap => "fork_dup_mmap",
            Metric::ForkGap => "fork_gap",
            Metric::ReadProcs => "read_procs",
            Metric::ReadSmaps => "read_smaps",
            Metric::ReadSmapsRollup => "read_smaps_rollup",
            Metric::ReadPidStat => "read_pid_stat",
            Metric::WallPerFault => "wall_per_fault",
            Metric::ChildPerFault => "child_per_fault",
            Metric::GlobalCowCopies => "global_cow_copies",
            Metric::OtherRowCopies => "other_row_copies",
            Metric::ForkWriteExit => "fork_write_exit",
            Metric::ReadProcsAll => "read_procs_all",
            Metric::ReadSelf => "read_self",
            Metric::ReadSelfKeptFd => "read_self_kept_fd",
            Metric::ReadPid => "read_pid",
            Metric::ReadPidKeptFd => "read_pid_kept_fd",
            Metric::ReadProcsFind => "read_procs_find",
        }
    }
}

/// Metrics compare with their names, as the report selects them.
impl PartialEq<&str> for Metric {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where in the guest driver's plan a run stands: the `tag` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tag {
    /// No `--tag` given.
    #[default]
    None,
    /// Overhead round N, stock module or none.
    Round(u32),
    /// Overhead round N with the bare module (entry hooks that return).
    Bare(u32),
    /// Overhead round N with the baseline build (`scripts/bench --baseline`).
    Base(u32),
    /// A host run.
    Host,
    /// The fork heap sweep.
    Sweep,
    /// A heap-size sweep (know, one).
    Heap,
    /// A VMA-count sweep (know, one).
    Vmas,
    /// One process's read cost against table rows.
    Rows,
    /// Scale round N.
    Scale(u32),
    /// With 1000 rows left in the table.
    Rows1000,
    /// A full table (fill); with N, the N-th overhead run on it.
    TableFull(Option<u32>),
    /// The N-th overhead run on an emptied table.
    TableEmpty(u32),
}

impl Tag {
    /// Runs with 1000 rows left in the table.
    pub fn is_rows_1000(&self) -> bool {
        *self == Tag::Rows1000
    }

    /// Runs on a full table (the fill, and the overhead runs after it).
    pub fn is_table_full(&self) -> bool {
        matches!(self, Tag::TableFull(_))
    }
}

/// The tag forms, for errors and `--help`.
pub const TAG_FORMS: &str = "roundN, bareN, baseN, host, sweep, heap, vmas, rows, scaleN, \
                             rows_1000, table_full, table_fullN, table_emptyN";

impl FromStr for Tag {
    type Err = String;

    fn from_str(s: &str) -> Result<Tag, String> {
        let numbered = |prefix: &str| s.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok());
        Ok(match s {
            "" => Tag::None,
            "host" => Tag::Host,
            "sweep" => Tag::Sweep,
            "heap" => Tag::Heap,
            "vmas" => Tag::Vmas,
            "rows" => Tag::Rows,
            "rows_1000" => Tag::Rows1000,
            "table_full" => Tag::TableFull(None),
            _ => {
                if let Some(n) = numbered("round") {
                    Tag::Round(n)
                } else if let Some(n) = numbered("bare") {
                    Tag::Bare(n)
                } else if let Some(n) = numbered("base") {
                    Tag::Base(n)
                } else if let Some(n) = numbered("scale") {
                    Tag::Scale(n)
                } else if let Some(n) = numbered("table_full") {
                    Tag::TableFull(Some(n))
                } else if let Some(n) = numbered("table_empty") {
                    Tag::TableEmpty(n)
                } else {
                    return Err(format!("unknown tag '{s}': expected one of {TAG_FORMS}"));
                }
            }
        })
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tag::None => Ok(()),
            Tag::Round(n) => write!(f, "round{n}"),
            Tag::Bare(n) => write!(f, "bare{n}"),
            Tag::Base(n) => write!(f, "base{n}"),
            Tag::Host => f.write_str("host"),
            Tag::Sweep => f.write_str("sweep"),
            Tag::Heap => f.write_str("heap"),
            Tag::Vmas => f.write_str("vmas"),
            Tag::Rows => f.write_str("rows"),
            Tag::Scale(n) => write!(f, "scale{n}"),
            Tag::Rows1000 => f.write_str("rows_1000"),
            Tag::TableFull(None) => f.write_str("table_full"),
            Tag::TableFull(Some(n)) => write!(f, "table_full{n}"),
            Tag::TableEmpty(n) => write!(f, "table_empty{n}"),
        }
    }
}

/// Tags compare with their text (parsed), as the report selects them.
impl PartialEq<&str> for Tag {
    fn eq(&self, other: &&str) -> bool {
        other.parse::<Tag>() == Ok(*self)
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tag, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for s in [
            "",
            "round3",
            "bare1",
            "base20",
            "host",
            "sweep",
            "heap",
            "vmas",
            "rows",
            "scale2",
            "rows_1000",
            "table_full",
            "table_full2",
            "table_empty1",
        ] {
            let t: Tag = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert_eq!("round12".parse::<Tag>(), Ok(Tag::Round(12)));
        assert_eq!("table_full".parse::<Tag>(), Ok(Tag::TableFull(None)));
        let e = "rounds".parse::<Tag>().unwrap_err();
        assert!(
            e.contains("unknown tag 'rounds'") && e.contains("roundN"),
            "{e}"
        );
        assert!("round".parse::<Tag>().is_err());
    }

    #[test]
    fn metric_names_and_units() {
        assert_eq!(Metric::Memcpy4k.to_string(), "memcpy_4k");
        assert_eq!(Metric::CowFaultP10.to_string(), "cow_fault_p10");
        assert_eq!(Metric::ReadSelfKeptFd.to_string(), "read_self_kept_fd");
        assert_eq!(Metric::CowFault.unit(), "ns/page");
        assert_eq!(Metric::OtherRowCopies.unit(), "pages");
        assert_eq!(Metric::ReadSmaps.unit(), "ns");
        for m in Metric::ALL {
            assert_eq!(
                serde_json::to_value(m).unwrap(),
                m.name(),
                "serde name of {m:?}"
            );
        }
        let b: Bench = serde_json::from_str("\"overhead\"").unwrap();
        assert_eq!(b, Bench::Overhead);
    }

    /// Every tag the drivers pass is one of ours (their loop variables
    /// stand for a number; `$s` for the variant module).
    #[test]
    fn driver_tags_parse() {
        let mut seen = 0;
        for driver in ["scripts/guest/lib/bench.sh", "scripts/bench"] {
            let path = format!("{}/../{driver}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replace("$((i + 1))", "2");
            for w in text.split_whitespace().collect::<Vec<_>>().windows(2) {
                let raw = match (w[0], w[1]) {
                    ("--tag", t) if t != "$tag" => t,
                    (_, t) if t.starts_with("tag=") => t[4..].trim_end_matches(';'),
                    _ => continue,
                };
                for module in ["bare", "base"] {
                    let t = raw
                        .replace("$r", "1")
                        .replace("$i", "1")
                        .replace("$s", module);
                    assert!(t.parse::<Tag>().is_ok(), "{driver}: tag {raw} -> {t}");
                    seen += 1;
                }
            }
        }
        assert!(seen >= 30, "found only {seen} tags in the drivers");
    }
}
