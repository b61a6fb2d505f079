// SPDX-License-Identifier: GPL-2.0
//! The flags of `cow-demo top` and its help text (clap derive; the
//! subcommand itself is declared in crate::cli).

use clap::Args;

use crate::top::rates::SortKey;

/// The end of `top --help`.
pub const EXAMPLES: &str = "\
EXAMPLES:
    cow-demo top                     # every second; q or Ctrl-C quits
    cow-demo top --sort faults 0.5   # by write faults, twice a second
    cow-demo top --comm redis        # Redis and its BGSAVE child
    cow-demo top --pid 412,413 1 10  # two processes, ten refreshes
    cow-demo top 1 5 | cat           # not a terminal: plain blocks
    cow-demo top --json 1 3 | jq '.procs[0]'

Columns: COPY/s FAULT/s REUSE/s ZERO/s are pages copied, write faults, pages
reused and zero-page breaks per second in the interval; COPIES FAULTS REUSES
(ZEROS THP on wider screens) are totals since the process's first event.
S: + first seen in the interval, X ended in it.";

/// Flags of `top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Seconds between refreshes (fractions allowed).
    #[arg(value_name = "INTERVAL", default_value_t = 1.0)]
    pub interval: f64,

    /// Number of refreshes, then exit (default: until q or Ctrl-C).
    #[arg(value_name = "COUNT")]
    pub count: Option<u64>,

    /// Sort by this column, largest first (pid and comm ascending).
    #[arg(long, short = 's', value_enum, default_value_t = SortKey::Copies)]
    pub sort: SortKey,

    /// Only these processes (comma-separated, or the flag repeated).
    #[arg(long, short = 'p', value_name = "PID", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Vec<u32>,

    /// Only processes whose command name contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub comm: Option<String>,

    /// One plain-text block per interval even on a terminal.
    #[arg(long, conflicts_with = "json")]
    pub plain: bool,

    /// One JSON object per interval (JSON lines) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Widest output, in columns (a narrower terminal wins).
    #[arg(long, value_name = "COLS", default_value_t = 80)]
    pub width: usize,
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use crate::top::rates::SortKey;
    use clap::Parser;

    #[test]
    fn top_flags() {
        let c = Cli::try_parse_from(["cow-demo", "top"]).unwrap();
        let Command::Top(t) = c.command else { panic!() };
        assert_eq!(
            (t.interval, t.count, t.sort, t.width),
            (1.0, None, SortKey::Copies, 80)
        );
        let c = Cli::try_parse_from([
            "cow-demo",
            "top",
            "0.5",
            "3",
            "--pid",
            "4,5",
            "-p",
            "6",
            "--sort",
            "zero-total",
        ])
        .unwrap();
        let Command::Top(t) = c.command else { panic!() };
        assert_eq!((t.interval, t.count), (0.5, Some(3)));
        assert_eq!(t.pid, [4, 5, 6]);
        assert_eq!(t.sort, SortKey::ZeroTotal);
        let e = Cli::try_parse_from(["cow-demo", "top", "--sort", "copy"]).unwrap_err();
        assert!(e.to_string().contains("--sort") && e.to_string().contains("copies"));
        let e = Cli::try_parse_from(["cow-demo", "top", "--pid", "0"]).unwrap_err();
        assert!(e.to_string().contains("--pid"));
        assert!(Cli::try_parse_from(["cow-demo", "top", "--plain", "--json"]).is_err());
    }
}
