// SPDX-License-Identifier: GPL-2.0
//! cowstat-kdiff: small copy-on-write workloads whose outcome differs between
//! kernel versions (6.12 and 7.x), each printed with its witnesses.
//!
//! It only measures and prints `name value` lines; which values a kernel
//! version should give is decided by tests/guest/kernel-differences.sh and
//! explained in docs/kernel-differences.md. Every scenario sets the sysfs
//! THP knobs it needs and restores them when it ends.
//!
//! Witnesses beside cowstat's own row: /proc/vmstat (`pgreuse`,
//! `thp_fault_alloc`, `thp_split_pmd`), the per-size mTHP counter
//! `hugepages-<size>kB/stats/anon_fault_alloc`, smaps of the heap, and the
//! page frame numbers in /proc/self/pagemap (root): a reuse keeps the
//! written page's PFN, a copy changes it.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use cow_demo::counter::Counter;
use cow_demo::error::{Error, Result};
use cow_demo::procfs::cowstat::{find_row, stats_value, Counts, Cowstat, PROCS_BUF};
use cow_demo::procfs::smaps;
use cow_demo::procfs::window::WindowFile;
use cow_demo::workload::{
    exit_child, fork, page_size, pin_to_current_cpu, pipe, prefault_stack, recv, send, wait_child,
    Forked, Heap,
};

const THP: &str = "/sys/kernel/mm/transparent_hugepage";

const EXAMPLES: &str = "\
EXAMPLES:
    cowstat-kdiff mthp --size 64 --pages 23 --case exit
    cowstat-kdiff thp-split-exit --pages 23
    cowstat-kdiff huge-zero

Output: one `name value` line per observation. Exit status: 0 measured,
1 error (one line on stderr), 2 usage. Needs root, /proc/cowstat and THP.";

/// Copy-on-write workloads whose outcome differs between kernel versions.
#[derive(Debug, Parser)]
#[command(name = "cowstat-kdiff", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Fork over a heap of PTE-mapped multi-size THPs (mTHP), then the parent
    /// writes K pages: does it copy or reuse them?
    Mthp {
        /// mTHP size in kB (a hugepages-<size>kB directory must exist)
        #[arg(long, default_value_t = 64)]
        size: u64,
        /// Pages the parent writes after the fork
        #[arg(long, default_value_t = 23)]
        pages: u64,
        /// What the child does before the parent writes
        #[arg(long, value_enum, default_value_t = Case::Exit)]
        case: Case,
    },
    /// PMD-mapped THPs: after the fork the parent writes one page of each
    /// huge page (splits), the child exits, then the parent writes K more
    /// pages of the same huge pages.
    ThpSplitExit {
        /// Pages the parent writes after the child exited
        #[arg(long, default_value_t = 23)]
        pages: u64,
    },
    /// Read a fresh 2 MiB-aligned THP region (maps the huge zero page), then
    /// write one byte to it. No fork.
    HugeZero,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Case {
    /// The child exits at once
    Exit,
    /// The child stays alive and idle
    Alive,
    /// The child writes every heap page (copies them all), then waits
    ChildWrote,
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Cmd::Mthp { size, pages, case } => mthp(size, pages, case),
        Cmd::ThpSplitExit { pages } => thp_split_exit(pages),
        Cmd::HugeZero => huge_zero(),
    };
    if let Err(e) = r {
        eprintln!("cowstat-kdiff: error: {e}");
        std::process::exit(1);
    }
}

/// Sets sysfs files and puts the old values back when dropped.
struct Knobs(Vec<(PathBuf, String)>);

impl Knobs {
    fn new() -> Self {
        Knobs(Vec::new())
    }

    /// Writes `value` to `path` (relative to the THP directory), remembering
    /// the selected (`[x]`) or plain old value.
    fn set(&mut self, path: &str, value: &str) -> Result<()> {
        let p = Path::new(THP).join(path);
        let old = fs::read_to_string(&p).map_err(|e| Error::io("read", &p, e))?;
        let old = match (old.find('['), old.find(']')) {
            (Some(a), Some(b)) if a < b => old[a + 1..b].to_string(),
            _ => old.trim().to_string(),
        };
        fs::write(&p, value).map_err(|e| Error::io("write", &p, e))?;
        println!("# set {path} = {value} (was {old})");
        self.0.push((p, old));
        Ok(())
    }
}

impl Drop for Knobs {
    fn drop(&mut self) {
        for (p, old) in self.0.iter().rev() {
            let _ = fs::write(p, old);
        }
    }
}

fn out(name: &str, value: impl std::fmt::Display) {
    println!("{name} {value}");
}

/// `name value` of a vmstat-style text (0 if absent).
fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

fn read_u64(p: &Path) -> Result<u64> {
    let s = fs::read_to_string(p).map_err(|e| Error::io("read", p, e))?;
    s.trim()
        .parse()
        .map_err(|_| Error::Child(format!("{} is not a number: {s:?}", p.display())))
}

/// Page frame numbers of `n` pages from `addr` (0 where not present).
fn pfns(addr: u64, n: u64) -> Result<Vec<u64>> {
    let ps = page_size();
    let p = Path::new("/proc/self/pagemap");
    let f = fs::File::open(p).map_err(|e| Error::io("open", p, e))?;
    let mut buf = vec![0u8; (n * 8) as usize];
    f.read_exact_at(&mut buf, addr / ps * 8)
        .map_err(|e| Error::io("read", p, e))?;
    Ok(buf
        .chunks_exact(8)
        .map(|b| {
            let e = u64::from_le_bytes(b.try_into().unwrap());
            if e >> 63 & 1 == 1 {
                e & ((1 << 55) - 1)
            } else {
                0
            }
        })
        .collect())
}

/// The files read at each end of a measurement window.
struct Window {
    procs: WindowFile,
    vmstat: WindowFile,
    stats: WindowFile,
}

impl Window {
    fn new(cs: &Cowstat) -> Self {
        Window {
            procs: WindowFile::new(cs.path("procs"), PROCS_BUF),
            vmstat: WindowFile::new("/proc/vmstat", 64 << 10),
            stats: WindowFile::new(cs.path("stats"), 16 << 10),
        }
    }

    /// Prepares the buffers and the stack (see [`WindowFile::prefault`]).
    fn prefault(&mut self) {
        self.procs.prefault();
        self.vmstat.prefault();
        self.stats.prefault();
        prefault_stack();
    }

    /// Reads procs, /proc/vmstat and stats.
    fn read(&mut self) -> Result<()> {
        self.procs.read()?;
        self.vmstat.read()?;
        self.stats.read()?;
        Ok(())
    }
}

/// Deltas over a window of cowstat's row of this process, vmstat and stats.
struct Deltas {
    row: Counts,
    vmstat: (String, String),
    stats: (String, String),
}

impl Deltas {
    fn vm(&self, name: &str) -> u64 {
        field(&self.vmstat.1, name).saturating_sub(field(&self.vmstat.0, name))
    }

    fn stat(&self, c: Counter) -> u64 {
        let v = |t: &str| stats_value(t, c).unwrap_or(0);
        v(&self.stats.1).saturating_sub(v(&self.stats.0))
    }

    fn print(&self) {
        use Counter::*;
        for c in [CowCopies, WpReuses, WpFaults, CowZero, ThpWpFaults] {
            out(c.name(), self.row.get(c).unwrap_or(0));
        }
        for c in [ThpWpAttempts, ThpSplits, ThpReuses, ThpZero] {
            out(&format!("stats_{c}"), self.stat(c));
        }
        for v in ["pgreuse", "thp_fault_alloc", "thp_split_pmd"] {
            out(&format!("vmstat_{v}"), self.vm(v));
        }
    }
}

/// Runs `work` between two snapshots; `w` must be prefaulted.
fn measure(w: &mut Window, after: &mut Window, work: impl FnOnce()) -> Result<Deltas> {
    w.read()?;
    work();
    after.read()?;
    let pid = std::process::id();
    let parse = |x: &Window| {
        find_row(x.procs.text(), pid).map_err(|source| Error::Parse {
            path: x.procs.path().to_path_buf(),
            source,
        })
    };
    let row = parse(after)?.delta(&parse(w)?);
    Ok(Deltas {
        row,
        vmstat: (w.vmstat.text().into(), after.vmstat.text().into()),
        stats: (w.stats.text().into(), after.stats.text().into()),
    })
}

/// Pages of `[0, n)` whose PFN is the same in both lists (and present).
fn same_pfns(before: &[u64], after: &[u64], pages: &[u64]) -> u64 {
    pages
        .iter()
        .filter(|&&p| before[p as usize] != 0 && before[p as usize] == after[p as usize])
        .count() as u64
}

/// Folios of `per` pages whose PFNs are contiguous and aligned to `per`.
fn contiguous_folios(pfn: &[u64], per: u64) -> u64 {
    pfn.chunks(per as usize)
        .filter(|c| {
            c[0] != 0 && c[0] % per == 0 && c.iter().enumerate().all(|(i, &p)| p == c[0] + i as u64)
        })
        .count() as u64
}

fn mthp(size_kb: u64, k: u64, case: Case) -> Result<()> {
    let cs = Cowstat::locate();
    cs.require()?;
    let ps = page_size();
    let per = size_kb * 1024 / ps;
    let dir = format!("hugepages-{size_kb}kB");
    if per < 2 || !Path::new(THP).join(&dir).join("enabled").exists() {
        return Err(Error::Child(format!(
            "no anonymous mTHP size {size_kb} kB on this kernel ({THP}/{dir}/enabled)"
        )));
    }
    let mut knobs = Knobs::new();
    knobs.set(&format!("{dir}/enabled"), "always")?;
    if size_kb != 2048 {
        knobs.set("hugepages-2048kB/enabled", "never")?;
    }
    pin_to_current_cpu()?;
    let folios = 16;
    let mut heap = Heap::new(folios * per * ps, true)?;
    let n = heap.pages();
    let k = k.min(n);
    let alloc = Path::new(THP).join(&dir).join("stats/anon_fault_alloc");
    let a0 = read_u64(&alloc)?;
    heap.touch_all(true);
    let a1 = read_u64(&alloc)?;
    let pfn0 = pfns(heap.addr(), n)?;
    out("mthp_size_kb", size_kb);
    out("heap_pages", n);
    out("folios_expected", folios);
    out("mthp_anon_fault_alloc", a1 - a0);
    out("folios_contiguous", contiguous_folios(&pfn0, per));
    let pages: Vec<u64> = (0..k).collect();

    let (to_child_r, mut to_child_w) = pipe()?;
    let (mut to_parent_r, to_parent_w) = pipe()?;
    let (side, _) = fork()?;
    let child = match side {
        Forked::Child => {
            let (mut r, mut w) = (to_child_r, to_parent_w);
            if case == Case::ChildWrote {
                let all: Vec<u64> = (0..n).collect();
                heap.write_pages(&all, 2);
            }
            if case != Case::Exit {
                let _ = send(&mut w, b"r");
                let mut b = [0u8; 1];
                let _ = recv(&mut r, &mut b);
            }
            exit_child(0)
        }
        Forked::Parent(pid) => pid,
    };
    drop((to_child_r, to_parent_w));
    if case == Case::Exit {
        wait_child(child)?;
    } else {
        let mut b = [0u8; 1];
        recv(&mut to_parent_r, &mut b)?;
    }
    let mut w = Window::new(&cs);
    let mut a = Window::new(&cs);
    w.prefault();
    a.prefault();
    let d = measure(&mut w, &mut a, || {
        heap.write_pages(&pages, 3);
    })?;
    if case != Case::Exit {
        send(&mut to_child_w, b"x")?;
        wait_child(child)?;
    }
    let pfn1 = pfns(heap.addr(), n)?;
    out(
        "case",
        case.to_possible_value()
            .map_or("?".into(), |v| v.get_name().to_string()),
    );
    out("parent_wrote", k);
    d.print();
    out("pfn_unchanged", same_pfns(&pfn0, &pfn1, &pages));
    Ok(())
}

fn thp_split_exit(k: u64) -> Result<()> {
    let cs = Cowstat::locate();
    cs.require()?;
    let ps = page_size();
    let mut knobs = Knobs::new();
    knobs.set("hugepages-2048kB/enabled", "always")?;
    pin_to_current_cpu()?;
    let huge = 4;
    let per = (2 << 20) / ps;
    let mut heap = Heap::new(huge * per * ps, true)?;
    let n = heap.pages();
    heap.touch_all(true);
    let sm = smaps::read_range(None, heap.addr(), heap.end())?;
    out("huge_pages", huge);
    out("anon_huge_kb_before_fork", sm.anon_huge_kb);
    // First writes: page 0 of each huge page; then K others, round robin.
    let first: Vec<u64> = (0..huge).map(|h| h * per).collect();
    let later: Vec<u64> = (0..k.min(huge * (per - 1)))
        .map(|i| (i % huge) * per + 1 + i / huge)
        .collect();

    let (to_child_r, mut to_child_w) = pipe()?;
    let (side, _) = fork()?;
    let child = match side {
        Forked::Child => {
            let mut r = to_child_r;
            let mut b = [0u8; 1];
            let _ = recv(&mut r, &mut b);
            exit_child(0)
        }
        Forked::Parent(pid) => pid,
    };
    drop(to_child_r);
    let mut w = Window::new(&cs);
    let mut a = Window::new(&cs);
    w.prefault();
    a.prefault();
    let d = measure(&mut w, &mut a, || {
        heap.write_pages(&first, 3);
    })?;
    println!("# phase 1: the child alive, the parent writes page 0 of each huge page");
    out("phase1_thp_wp_faults", d.row.thp_wp_faults);
    out("phase1_cow_copies", d.row.cow_copies);
    out("phase1_stats_thp_splits", d.stat(Counter::ThpSplits));
    let sm = smaps::read_range(None, heap.addr(), heap.end())?;
    out("phase1_anon_huge_kb_after", sm.anon_huge_kb);
    send(&mut to_child_w, b"x")?;
    wait_child(child)?;
    let pfn0 = pfns(heap.addr(), n)?;
    w.prefault();
    a.prefault();
    let d = measure(&mut w, &mut a, || {
        heap.write_pages(&later, 4);
    })?;
    let pfn1 = pfns(heap.addr(), n)?;
    println!(
        "# phase 2: the child exited, the parent writes K other pages of the split huge pages"
    );
    out("parent_wrote", later.len());
    d.print();
    out("pfn_unchanged", same_pfns(&pfn0, &pfn1, &later));
    Ok(())
}

fn huge_zero() -> Result<()> {
    let cs = Cowstat::locate();
    cs.require()?;
    let ps = page_size();
    let mut knobs = Knobs::new();
    knobs.set("hugepages-2048kB/enabled", "always")?;
    knobs.set("use_zero_page", "1")?;
    pin_to_current_cpu()?;
    let per = (2 << 20) / ps;
    let heap = Heap::new(per * ps, true)?;
    // SAFETY: page 0 is inside the heap; a volatile read maps without writing.
    unsafe { std::ptr::read_volatile(heap.addr() as *const u8) };
    let p = pfns(heap.addr(), per)?;
    // The huge zero page: 512 consecutive frames; the 4 KiB zero page: one
    // frame mapped 512 times.
    let huge_zero = p[0] != 0 && p.iter().enumerate().all(|(i, &f)| f == p[0] + i as u64);
    out("read_mapped_huge_zero_page", huge_zero as u8);
    let sm = smaps::read_range(None, heap.addr(), heap.end())?;
    out("rss_kb_after_read", sm.rss_kb);
    let mut w = Window::new(&cs);
    let mut a = Window::new(&cs);
    w.prefault();
    a.prefault();
    let d = measure(&mut w, &mut a, || heap.write_page(0, 1))?;
    d.print();
    let sm = smaps::read_range(None, heap.addr(), heap.end())?;
    out("rss_kb_after_write", sm.rss_kb);
    out("anon_huge_kb_after_write", sm.anon_huge_kb);
    let q = pfns(heap.addr(), per)?;
    // 6.12: the written page plus 511 PTEs of the one 4 KiB zero page (2
    // frames); 7.x: a whole new huge page (512 frames).
    let mut frames: Vec<u64> = q.iter().copied().filter(|&f| f != 0).collect();
    frames.sort_unstable();
    frames.dedup();
    out("distinct_frames_after_write", frames.len());
    Ok(())
}
