// SPDX-License-Identifier: GPL-2.0
//! cowstat-bench: what cowstat costs and what copy-on-write costs, as JSON lines (see docs/benchmarks.md).

mod mem;
mod one;
mod record;
mod report;
mod run;
mod tags;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cow_demo::units::parse_size;

const EXAMPLES: &str = "\
EXAMPLES:
    cowstat-bench overhead --heap 256M --repeats 5
    cowstat-bench fork --heap 1G --thp on --repeats 5
    cowstat-bench know --heap 64M --vmas 10000
    cowstat-bench scale --procs 256
    cowstat-bench one --heap 1G             # self/pid vs smaps, one process
    kill $(cowstat-bench hold --procs 999)  # 999 live processes with rows
    cowstat-bench report --out-dir build/bench guest.jsonl host.jsonl

Each measurement is printed as one JSON line on stdout. `make bench` runs
everything in one VM boot (scripts/bench) and renders the report and plots.
Exit status: 0 ok, 2 usage or runtime error.";

/// Benchmarks of cowstat's overhead and of copy-on-write itself.
#[derive(Debug, Parser)]
#[command(
    name = "cowstat-bench",
    version,
    about = "Benchmarks of cowstat's overhead and of copy-on-write itself",
    after_help = EXAMPLES
)]
struct Cli {
    /// Recorded in every record: guest (the test VM) or host (native)
    #[arg(long, value_enum, global = true, default_value_t = Place::Guest)]
    place: Place,
    /// Recorded in every record: the driver's place in its plan, one of
    /// roundN, bareN, baseN, host, sweep, heap, vmas, rows, scaleN,
    /// rows_1000, table_full, table_fullN, table_emptyN
    #[arg(long, global = true, default_value = "", value_name = "TAG")]
    tag: tags::Tag,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Place {
    Guest,
    Host,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// COW fault, rewrite, memcpy and first-touch cost per page; fork()
    #[command(
        after_help = "EXAMPLES:\n    cowstat-bench overhead --heap 256M --pages 32768 --repeats 3"
    )]
    Overhead(OverheadArgs),
    /// fork() latency of a touched heap, userspace and cowstat fork_ns
    #[command(after_help = "EXAMPLES:\n    cowstat-bench fork --heap 512M --thp off --repeats 5")]
    Fork(ForkArgs),
    /// Cost of knowing: a child's cowstat row vs its smaps
    #[command(after_help = "EXAMPLES:\n    cowstat-bench know --heap 1G\n    \
        cowstat-bench know --heap 160M --vmas 10000")]
    Know(KnowArgs),
    /// N processes taking COW faults concurrently: cost per fault.
    #[command(after_help = "EXAMPLES:\n    cowstat-bench scale --procs 1000 --total-pages 16384")]
    Scale(ScaleArgs),
    /// One process's figures: /proc/cowstat/self and pid vs its own smaps
    #[command(
        after_help = "EXAMPLES:\n    cowstat-bench one --heap 1G --repeats 20\n    \
        cowstat-bench one --heap 160M --vmas 10000"
    )]
    One(KnowArgs),
    /// Keep N processes with rows alive; prints the pid to kill to end them
    #[command(
        after_help = "EXAMPLES:\n    keeper=$(cowstat-bench hold --procs 999); ...; kill $keeper"
    )]
    Hold(HoldArgs),
    /// Leave N rows in /proc/cowstat/procs (N children copy a page)
    #[command(after_help = "EXAMPLES:\n    cowstat-bench fill --procs 1100\n    \
        cowstat-bench fill --procs 8000 --reads 5   # fill 4096 slots, time reads")]
    Fill(FillArgs),
    /// Summarise JSON lines into results.json, report.md, plot data
    #[command(
        after_help = "EXAMPLES:\n    cowstat-bench report --out-dir build/bench guest.jsonl host.jsonl"
    )]
    Report(ReportArgs),
}

#[derive(Debug, Args)]
struct OverheadArgs {
    /// Heap touched before each fork (256M, 1G, bytes).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    heap: u64,
    /// Pages the child writes after each fork (default: all).
    #[arg(long, value_name = "N")]
    pages: Option<u64>,
    /// Fresh memory written once per repeat for the first-touch cost.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    touch: u64,
    /// Forks (and first-touch rounds) per invocation.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

#[derive(Debug, Args)]
struct ForkArgs {
    /// Heap touched before the forks.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    heap: u64,
    /// MADV_HUGEPAGE (on) or MADV_NOHUGEPAGE (off) on the heap.
    #[arg(long, value_enum, default_value_t = OnOff::Off)]
    thp: OnOff,
    /// Forks to time.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
struct KnowArgs {
    /// Total heap, split evenly over --vmas mappings.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    heap: u64,
    /// Number of separate mappings (VMAs) of the heap.
    #[arg(long, value_name = "N", default_value_t = 1)]
    vmas: usize,
    /// Percentage of the heap's pages the child writes (COW) before the reads.
    #[arg(long, value_name = "PCT", default_value_t = 10.0)]
    write: f64,
    /// Reads of each kind.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

#[derive(Debug, Args)]
struct ScaleArgs {
    /// Concurrent processes taking COW faults.
    #[arg(long, value_name = "N", default_value_t = 2)]
    procs: usize,
    /// COW faults in total, split evenly over the processes.
    #[arg(long, value_name = "N", default_value_t = 16384)]
    total_pages: u64,
    /// Runs.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

#[derive(Debug, Args)]
struct HoldArgs {
    /// Processes to keep alive, each with a row (one copied page).
    #[arg(long, value_name = "N", default_value_t = 999)]
    procs: usize,
}

#[derive(Debug, Args)]
struct FillArgs {
    /// Children to fork.
    #[arg(long, value_name = "N", default_value_t = 1100)]
    procs: usize,
    /// Then time N whole-file reads of procs.
    #[arg(long, value_name = "N", default_value_t = 3)]
    reads: usize,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Directory for results.json, report.md and the *.dat plot data.
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
    /// Text appended to report.md's header (the command and versions).
    #[arg(long, value_name = "TEXT", default_value = "")]
    header: String,
    /// JSON-line files written by the other subcommands.
    #[arg(required = true, value_name = "FILE")]
    inputs: Vec<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let place = match cli.place {
        Place::Guest => "guest",
        Place::Host => "host",
    };
    let ctx = record::Context::detect(place, cli.tag);
    let r = match &cli.command {
        Command::Overhead(a) => run::overhead(&ctx, a.heap, a.pages, a.touch, a.repeats.max(1)),
        Command::Fork(a) => run::fork_latency(&ctx, a.heap, a.thp == OnOff::On, a.repeats.max(1)),
        Command::Know(a) => {
            if !(a.write > 0.0 && a.write <= 100.0) {
                eprintln!("cowstat-bench: error: invalid value '{}' for '--write': expected a percentage in (0, 100]", a.write);
                std::process::exit(2);
            }
            run::know(&ctx, a.heap, a.vmas.max(1), a.write, a.repeats.max(1))
        }
        Command::One(a) => {
            if !(a.write > 0.0 && a.write <= 100.0) {
                eprintln!("cowstat-bench: error: invalid value '{}' for '--write': expected a percentage in (0, 100]", a.write);
                std::process::exit(2);
            }
            one::one(&ctx, a.heap, a.vmas.max(1), a.write, a.repeats.max(1))
        }
        Command::Hold(a) => one::hold(a.procs),
        Command::Scale(a) => run::scale(&ctx, a.procs, a.total_pages, a.repeats.max(1)),
        Command::Fill(a) => run::fill(&ctx, a.procs, a.reads),
        Command::Report(a) => report::run(&a.inputs, &a.out_dir, &a.header),
    };
    if let Err(e) = r {
        eprintln!("cowstat-bench: error: {e}");
        std::process::exit(2);
    }
}
