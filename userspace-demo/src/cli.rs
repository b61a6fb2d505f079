// SPDX-License-Identifier: GPL-2.0
//! Command-line interface (clap derive): subcommands, flags and their help texts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::top::cli::TopArgs;
use crate::units::{parse_pattern, parse_percent, parse_size, Pattern};

const EXAMPLES: &str = "\
EXAMPLES:
    cow-demo stats                      # counters and per-process rows
    cow-demo stats --json               # the same as one JSON object
    cow-demo fork                       # 64M heap, child writes 25%: K copies
    cow-demo fork --heap 4M --pages 23  # a prime number of COW events
    cow-demo fork --writer both         # child copies K, parent reuses K
    cow-demo fork --write-after-exit    # child exits first: K reuses, 0 copies
    cow-demo fork --thp on --pattern stride:512
    cow-demo watch 1 10                 # ten 1-second deltas of the counters
    cow-demo top                        # copies per second, process by process
    cow-demo snapshot --big-key-update  # Redis BGSAVE: pages copied over time
    cow-demo map --pages 23             # the heap's pages as a live grid

Exit status: 0 ok, 1 observed != expected, 2 usage or runtime error.
The cowstat directory is /proc/cowstat, or $COWSTAT_PROC if set.";

/// Copy-on-write experiments cross-checked against /proc/cowstat, smaps and pagemap.
#[derive(Debug, Parser)]
#[command(
    name = "cow-demo",
    version,
    about,
    long_about = "Copy-on-write experiments for the cowstat kernel module.\n\n\
        Runs known fork/COW workloads (K pages written, K copies expected), compares \
        the per-process counters in /proc/cowstat with what the kernel must have done, \
        and cross-checks them against /proc/PID/smaps and /proc/PID/pagemap.",
    after_help = EXAMPLES,
    propagate_version = true,
    // Help fits 80 columns whatever the terminal (and on a serial console).
    term_width = 80
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print /proc/cowstat/stats and the per-process rows of /proc/cowstat/procs.
    #[command(
        after_help = "EXAMPLES:\n    cow-demo stats\n    cow-demo stats --json | jq .stats.cow_copies"
    )]
    Stats(StatsArgs),
    /// Fork with a touched heap, write K pages, and compare the COW counters with the expected values.
    #[command(after_help = "EXAMPLES:\n    \
        cow-demo fork --heap 4M --pages 23\n    \
        cow-demo fork --write 50% --writer parent\n    \
        cow-demo fork --writer both --pattern random --seed 7\n    \
        cow-demo fork --thp on --pattern stride:512 --json")]
    Fork(ForkArgs),
    /// Print deltas of /proc/cowstat/stats every interval, vmstat style.
    #[command(after_help = "EXAMPLES:\n    \
        cow-demo watch          # every second until Ctrl-C\n    \
        cow-demo watch 0.5 20   # 20 samples, 500 ms apart\n    \
        cow-demo watch 1 5 --json\n    \
        cow-demo watch --pid 412   # one process, until it ends")]
    Watch(WatchArgs),
    /// Show copy-on-write rates and totals per process, refreshed like top.
    #[command(after_help = crate::top::cli::EXAMPLES)]
    Top(TopArgs),
    /// Redis BGSAVE scenario: fork a child that saves a data set while the parent keeps writing.
    #[command(after_help = "EXAMPLES:\n    \
        cow-demo snapshot\n    \
        cow-demo snapshot --keys 200000 --rate 20000 --big-key-update\n    \
        cow-demo snapshot --out /tmp/dump.bin --save-rate 100\n    \
        cow-demo snapshot --no-fork")]
    Snapshot(SnapshotArgs),
    /// Draw the heap's pages as a grid while a forked child writes: shared, copied, reused.
    #[command(after_help = crate::commands::map::EXAMPLES)]
    Map(crate::commands::map::MapArgs),
}

/// Flags of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one JSON object (stats, procs, probes, fork_latency) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Which process writes the K pages after the fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Writer {
    /// The child writes; the parent idles (expect K copies in the child).
    Child,
    /// The parent writes while the child idles (expect K copies in the parent).
    Parent,
    /// The child writes, then the parent writes the same pages (child copies, parent reuses).
    Both,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Flags of `fork`.
#[derive(Debug, Args)]
pub struct ForkArgs {
    /// Size of the private anonymous heap that is touched before the fork (64M, 1G, 4096K, bytes).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    pub heap: u64,

    /// Fraction of the heap's pages to write after the fork, e.g. 25% (default 25%).
    #[arg(long, value_name = "P%", value_parser = parse_percent, conflicts_with = "pages")]
    pub write: Option<f64>,

    /// Exact number of pages (K) to write after the fork, e.g. 23.
    #[arg(long, value_name = "N")]
    pub pages: Option<u64>,

    /// Which process writes after the fork.
    #[arg(long, value_enum, default_value_t = Writer::Child)]
    pub writer: Writer,

    /// Order of the written pages: seq, stride:N (0, N, 2N, ... then 1, N+1, ...) or random.
    #[arg(long, value_name = "PATTERN", default_value = "seq", value_parser = parse_pattern)]
    pub pattern: Pattern,

    /// Back the heap with transparent huge pages (MADV_HUGEPAGE) or forbid them (MADV_NOHUGEPAGE).
    #[arg(long, value_enum, default_value_t = OnOff::Off)]
    pub thp: OnOff,

    /// The child exits without writing, then the parent writes: K reuses, no copies.
    #[arg(long, conflicts_with = "writer")]
    pub write_after_exit: bool,

    /// Seed of the random page order (same seed, same pages).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Seconds between samples (fractions allowed).
    #[arg(value_name = "INTERVAL", default_value_t = 1.0)]
    pub interval: f64,

    /// Number of samples to print, then exit (default: until Ctrl-C).
    #[arg(value_name = "COUNT")]
    pub count: Option<u64>,

    /// Print one JSON object per interval (JSON lines) instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Deltas of this one process (read from /proc/cowstat/pid) until it ends.
    #[arg(long, short = 'p', value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Option<u32>,
}

/// Flags of `snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Number of small keys in the data set.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub keys: u64,

    /// Size of each small value (bytes or 64, 1K, ...); at least 16.
    #[arg(long, value_name = "SIZE", default_value = "64", value_parser = parse_size)]
    pub value_size: u64,

    /// Number of big keys.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub big_keys: u64,

    /// Size of each big value.
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = parse_size)]
    pub big_size: u64,

    /// Updates of random small keys per second by the parent while the child saves.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub rate: u64,

    /// Also rewrite one big value completely in the middle of the save.
    #[arg(long)]
    pub big_key_update: bool,

    /// Where the child writes the snapshot.
    #[arg(long, value_name = "FILE", default_value = "/dev/null")]
    pub out: PathBuf,

    /// Pace of the save in MB/s (default: paced to last about 1.5 s).
    #[arg(long, value_name = "MB/s")]
    pub save_rate: Option<f64>,

    /// Baseline without fork: copy the whole data set with memcpy and compare with fork time.
    #[arg(long)]
    pub no_fork: bool,

    /// Seed of the random key updates.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn fork_defaults() {
        let c = Cli::try_parse_from(["cow-demo", "fork"]).unwrap();
        let Command::Fork(f) = c.command else {
            panic!()
        };
        assert_eq!(f.heap, 64 << 20);
        assert_eq!(f.write, None);
        assert_eq!(f.pages, None);
        assert_eq!(f.writer, Writer::Child);
        assert_eq!(f.pattern, Pattern::Seq);
        assert_eq!(f.thp, OnOff::Off);
        assert!(!f.write_after_exit);
    }

    #[test]
    fn fork_flags() {
        let c = Cli::try_parse_from([
            "cow-demo",
            "fork",
            "--heap",
            "4M",
            "--write",
            "50%",
            "--pattern",
            "stride:8",
            "--thp",
            "on",
        ])
        .unwrap();
        let Command::Fork(f) = c.command else {
            panic!()
        };
        assert_eq!(f.heap, 4 << 20);
        assert_eq!(f.write, Some(0.5));
        assert_eq!(f.pattern, Pattern::Stride(8));
        assert_eq!(f.thp, OnOff::On);
    }

    #[test]
    fn conflicts_and_bad_values() {
        let e =
            Cli::try_parse_from(["cow-demo", "fork", "--write", "5%", "--pages", "3"]).unwrap_err();
        assert!(e.to_string().contains("cannot be used with"));
        let e = Cli::try_parse_from(["cow-demo", "fork", "--heap", "12Q"]).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("'12Q'") && s.contains("--heap") && s.contains("64M, 1G or 4096K"));
        assert!(Cli::try_parse_from([
            "cow-demo",
            "fork",
            "--write-after-exit",
            "--writer",
            "both"
        ])
        .is_err());
        assert!(Cli::try_parse_from(["cow-demo", "fork", "--write-after-exit"]).is_ok());
    }

    #[test]
    fn watch_pid() {
        let c = Cli::try_parse_from(["cow-demo", "watch", "--pid", "7", "0.5"]).unwrap();
        let Command::Watch(w) = c.command else {
            panic!()
        };
        assert_eq!((w.pid, w.interval), (Some(7), 0.5));
        assert!(Cli::try_parse_from(["cow-demo", "watch", "--pid", "0"]).is_err());
    }

    #[test]
    fn watch_positionals() {
        let c = Cli::try_parse_from(["cow-demo", "watch", "0.5", "3"]).unwrap();
        let Command::Watch(w) = c.command else {
            panic!()
        };
        assert_eq!(w.interval, 0.5);
        assert_eq!(w.count, Some(3));
    }
}
