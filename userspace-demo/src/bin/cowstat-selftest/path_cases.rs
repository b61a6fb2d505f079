// SPDX-License-Identifier: GPL-2.0
//! Every copy-on-write path of docs/proc-interface.md ("Every copy-on-write
//! path, and what cowstat reports"), one KTAP case each, on a kernel with
//! SWAP, KSM, USERFAULTFD, HUGETLBFS, MEMCG and PREEMPT.
//!
//! Each case computes its expected values from the workload alone (K pages,
//! N huge pages, the write order) and checks cowstat's GLOBAL stats deltas,
//! and the writer's own `procs` row where there is one, against independent
//! witnesses: pagemap (PFN changes, bit 56 "exclusively mapped", bit 62
//! swap, bit 57 uffd-wp), /proc/kpageflags (KSM), smaps, /proc/vmstat
//! (`pgreuse`, `cow_ksm`, `thp_split_pmd`, `pswpin`), /proc/meminfo
//! `HugePages_*`, and the cgroup files `memory.events` and `pids.events`.
//!
//! Measurement windows follow own_cases.rs: every buffer, the stack and the
//! probe structs are written before a window opens (after a fork our own
//! pages are write-protected too), nothing allocates inside a window, and a
//! window's ends are quiet instants: `stats` read twice around `procs` with
//! the same text, and /proc/vmstat read before and after with the same
//! values of the counters the case compares (see [`Probe::take`]). So a
//! global delta holds the workload's events and nothing else, and every
//! counter the case does not name must not move.
//!
//! What a case needs and the guest may lack (swap, cgroup2, zram) it sets up
//! itself and takes down again; what the kernel lacks is a KTAP SKIP with
//! the reason, which is not a pass.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cow_demo::counter::Counter;
use cow_demo::error::{Error, Result};
use cow_demo::procfs::cowstat::{find_row, parse_stats, Counts, Cowstat, Stats};
use cow_demo::procfs::pagemap::{
    self, PM_FILE, PM_MMAP_EXCLUSIVE, PM_PFN_MASK, PM_PRESENT, PM_SWAP, PM_UFFD_WP,
};
use cow_demo::procfs::smaps;
use cow_demo::procfs::window::WindowFile;
use cow_demo::units::Pattern;
use cow_demo::workload::{
    self, exit_child, fork, hpage_pmd_size, page_order, page_size, pin_to_current_cpu, thp_mode,
    Forked, Heap,
};

use crate::{Checks, MaybeCase, Verdict};

/// Seed of every random write order.
const SEED: u64 = 7;

/// The cases, in run order.
pub fn tests() -> Vec<MaybeCase> {
    use Pattern::{Random, Seq};
    let mut v: Vec<MaybeCase> = Vec::new();
    let mut add = |name: String, f: Box<dyn FnOnce() -> Result<Verdict>>| v.push((name, f));
    for (k, p) in [(23, Seq), (1009, Random)] {
        add(
            format!("path_private_file_first_write_k{k}_{}", pat(p)),
            Box::new(move || private_file(k, p, false)),
        );
        add(
            format!("path_private_file_read_then_write_k{k}_{}", pat(p)),
            Box::new(move || private_file(k, p, true)),
        );
    }
    for (n, p) in [(3, Seq), (7, Random)] {
        add(
            format!("path_hugetlb_private_fork_n{n}_{}", pat(p)),
            Box::new(move || hugetlb(n, p)),
        );
    }
    for (n, p) in [(3, Seq), (13, Random)] {
        add(
            format!("path_thp_reuse_after_child_exit_n{n}_{}", pat(p)),
            Box::new(move || thp_reuse(n, p)),
        );
    }
    for (n, per, p) in [(3, 1, Seq), (13, 3, Random)] {
        add(
            format!("path_thp_split_child_writes_n{n}_x{per}_{}", pat(p)),
            Box::new(move || thp_split(n, per, p)),
        );
    }
    add(
        "path_thp_huge_zero_page_write_n5_seq".into(),
        Box::new(|| thp_huge_zero(5, Seq)),
    );
    for (k, p) in [(23, Seq), (1009, Random)] {
        add(
            format!("path_ksm_write_after_merge_k{k}_{}", pat(p)),
            Box::new(move || ksm(k, p)),
        );
    }
    for (k, p, who) in [
        (23, Seq, UffdPages::Exclusive),
        (1009, Random, UffdPages::Exclusive),
        (23, Random, UffdPages::AfterChildExit),
        (1009, Seq, UffdPages::AfterChildExit),
        (23, Seq, UffdPages::ChildAlive),
    ] {
        add(
            format!("path_uffd_wp_{}_k{k}_{}", who.name(), pat(p)),
            Box::new(move || uffd_wp(k, p, who)),
        );
    }
    for (k, p, who) in [
        (23, Seq, SwapWriter::Child),
        (1009, Random, SwapWriter::Child),
        (1009, Seq, SwapWriter::ParentAfterChildExit),
    ] {
        add(
            format!("path_swapin_{}_k{k}_{}", who.name(), pat(p)),
            Box::new(move || swap_in(k, p, who)),
        );
    }
    add(
        "path_memcg_at_limit_swap_k1009_seq".into(),
        Box::new(|| memcg(1009, Seq, true)),
    );
    add(
        "path_memcg_at_limit_noswap_oom_retries_k1009_random".into(),
        Box::new(|| memcg(1009, Random, false)),
    );
    for (k, p) in [(23, Seq), (1009, Random)] {
        add(
            format!("path_two_threads_same_pages_k{k}_{}", pat(p)),
            Box::new(move || two_threads(k, p)),
        );
    }
    for (k, p) in [(23, Seq), (101, Random)] {
        add(
            format!("path_anon_prepare_retry_k{k}_{}", pat(p)),
            Box::new(move || anon_prepare_retry(k, p)),
        );
    }
    for (k, poisoned, p) in [(23, 3, Seq), (101, 5, Random)] {
        add(
            format!("path_hwpoison_fork_shared_k{k}_p{poisoned}_{}", pat(p)),
            Box::new(move || hwpoison(k, poisoned, p)),
        );
    }
    for k in [23, 251] {
        add(
            format!("path_pinned_at_fork_k{k}"),
            Box::new(move || pinned_at_fork(k)),
        );
    }
    add(
        "path_fork_fails_after_dup_mmap_pids_max".into(),
        Box::new(fork_fails_after_dup_mmap),
    );
    add(
        "path_gup_unshare_odirect_k23_one_write".into(),
        Box::new(|| gup_unshare(23, Seq, true)),
    );
    add(
        "path_gup_unshare_odirect_k1009_random_per_page".into(),
        Box::new(|| gup_unshare(1009, Random, false)),
    );
    v
}

fn pat(p: Pattern) -> &'static str {
    match p {
        Pattern::Seq => "seq",
        Pattern::Random => "random",
        Pattern::Stride(_) => "stride",
    }
}

// ---- Reading /proc without faulting -------------------------------------

/// The value of `key` in `key value` or `key: value [kB]` text (vmstat,
/// meminfo, memory.events, pids.events); no allocation.
fn kv(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?;
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Tries this many times before calling the system too busy to compare.
const QUIET_TRIES: u32 = 100;

/// One end of a measurement window.
struct Probe {
    vm_a: WindowFile,
    stats_a: WindowFile,
    procs: WindowFile,
    extra: Vec<WindowFile>,
    stats_b: WindowFile,
    vm_b: WindowFile,
    tries: u32,
}

impl Probe {
    /// A probe of cowstat, /proc/vmstat and the `extra` files.
    fn new(cs: &Cowstat, extra: &[PathBuf]) -> Self {
        Probe {
            vm_a: WindowFile::new("/proc/vmstat", 64 << 10),
            stats_a: WindowFile::new(cs.path("stats"), 16 << 10),
            procs: WindowFile::new(cs.path("procs"), 1 << 20),
            extra: extra.iter().map(|p| WindowFile::new(p, 64 << 10)).collect(),
            stats_b: WindowFile::new(cs.path("stats"), 16 << 10),
            vm_b: WindowFile::new("/proc/vmstat", 64 << 10),
            tries: 0,
        }
    }

    /// Call after the last fork before the window, and before it opens.
    fn prefault(&mut self) {
        // SAFETY: `tries` is a valid, aligned field of `self`.
        unsafe { std::ptr::write_volatile(&mut self.tries, 0) };
        self.vm_a.prefault();
        self.stats_a.prefault();
        self.procs.prefault();
        for s in self.extra.iter_mut() {
            s.prefault();
        }
        self.stats_b.prefault();
        self.vm_b.prefault();
    }

    /// Reads everything at a quiet instant: `stats` has the same text
    /// before and after `procs` and the extra files, and the vmstat counters
    /// in `keys` are equal before and after that. Allocates nothing.
    fn take(&mut self, keys: &[&str]) -> Result<()> {
        for tries in 1..=QUIET_TRIES {
            self.vm_a.read()?;
            self.stats_a.read()?;
            self.procs.read()?;
            for s in self.extra.iter_mut() {
                s.read()?;
            }
            self.stats_b.read()?;
            self.vm_b.read()?;
            let same_vm = keys
                .iter()
                .all(|k| kv(self.vm_a.text(), k) == kv(self.vm_b.text(), k));
            if same_vm && self.stats_a.bytes() == self.stats_b.bytes() {
                self.tries = tries;
                return Ok(());
            }
        }
        Err(Error::Child(format!(
            "cowstat stats or vmstat {keys:?} changed in each of {QUIET_TRIES} reads (busy system?)"
        )))
    }

    /// The values read by the last `take` (parsed; allocates).
    fn point(&self) -> Result<Point> {
        Ok(Point {
            stats: parse_stats(self.stats_a.text()).map_err(|source| Error::Parse {
                path: self.stats_a.path().to_path_buf(),
                source,
            })?,
            vm: self.vm_a.text().to_string(),
            procs: self.procs.text().to_string(),
            extra: self.extra.iter().map(|s| s.text().to_string()).collect(),
            tries: self.tries,
        })
    }
}

/// What a [`Probe`] read.
struct Point {
    stats: Stats,
    vm: String,
    procs: String,
    extra: Vec<String>,
    tries: u32,
}

impl Point {
    fn vm(&self, key: &str) -> u64 {
        kv(&self.vm, key).unwrap_or(0)
    }

    fn row(&self, pid: u32) -> Result<Counts> {
        find_row(&self.procs, pid).map_err(|source| Error::Parse {
            path: "procs".into(),
            source,
        })
    }

    fn extra(&self, i: usize, key: &str) -> u64 {
        self.extra.get(i).and_then(|t| kv(t, key)).unwrap_or(0)
    }
}

/// The two ends of a window, read and compared.
struct Window {
    a: Point,
    b: Point,
}

impl Window {
    fn new(p0: &Probe, p1: &Probe) -> Result<Window> {
        let w = Window {
            a: p0.point()?,
            b: p1.point()?,
        };
        println!("# quiet brackets took {} + {} tries", w.a.tries, w.b.tries);
        Ok(w)
    }

    fn stats(&self) -> Stats {
        self.b.stats.delta(&self.a.stats)
    }

    fn vm(&self, key: &str) -> u64 {
        self.b.vm(key).saturating_sub(self.a.vm(key))
    }

    fn row(&self, pid: u32) -> Result<Counts> {
        Ok(self.b.row(pid)?.delta(&self.a.row(pid)?))
    }

    /// `b - a` of `key` in extra file `i`, signed.
    fn extra(&self, i: usize, key: &str) -> i64 {
        self.b.extra(i, key) as i64 - self.a.extra(i, key) as i64
    }
}

// ---- Checks -------------------------------------------------------------

/// A label for [`Checks`], which keeps `&'static str` (a test binary may leak).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[derive(Default)]
struct Report {
    checks: Checks,
}

impl Report {
    fn eq(&mut self, label: impl Into<String>, expected: u64, observed: u64) {
        self.checks.push((leak(label.into()), expected, observed));
    }

    /// `observed` >= `lo`.
    fn at_least(&mut self, label: &str, lo: u64, observed: u64) {
        println!("# {label}: observed {observed}, at least {lo} expected");
        self.eq(
            format!("{label} >= {lo} (1 = yes)"),
            1,
            (observed >= lo) as u64,
        );
    }

    /// `observed` in `lo..=hi`, for counts that may legitimately vary (the
    /// case says why).
    fn within(&mut self, label: &str, lo: u64, hi: u64, observed: u64) {
        println!("# {label}: observed {observed}, allowed {lo}..={hi}");
        self.eq(
            format!("{label} within {lo}..={hi} (1 = yes)"),
            1,
            (lo..=hi).contains(&observed) as u64,
        );
    }

    /// Global deltas: each `exact` counter equals its value, the `free`
    /// ones are checked elsewhere, an attempt counter not named equals its
    /// fault counter (no fault was retried), and every other counter did
    /// not move.
    fn global(&mut self, d: &Stats, exact: &[(Counter, u64)], free: &[Counter]) {
        let moved: Vec<String> = d
            .entries()
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(n, v)| format!("{n} +{v}"))
            .collect();
        println!(
            "# global stats delta: {}",
            if moved.is_empty() {
                "none".to_string()
            } else {
                moved.join(", ")
            }
        );
        for (name, want) in exact {
            match d.get(*name) {
                Some(v) => self.eq(format!("global {name} delta"), *want, v),
                None => self.eq(format!("stats has a '{name}' line (1 = yes)"), 1, 0),
            }
        }
        let named = |n: &str| {
            exact.iter().any(|(e, _)| e.name() == n) || free.iter().any(|f| f.name() == n)
        };
        let mut paired = Vec::new();
        for (attempts, faults) in [
            (Counter::WpAttempts, Counter::WpFaults),
            (Counter::ThpWpAttempts, Counter::ThpWpFaults),
        ] {
            if !named(attempts.name()) {
                self.eq(
                    format!("global {attempts} delta = {faults} delta (no retries)"),
                    d.get(faults).unwrap_or(0),
                    d.get(attempts).unwrap_or(0),
                );
                paired.push(attempts.name());
            }
        }
        let others: u64 = d
            .entries()
            .iter()
            .filter(|(n, _)| !named(n) && !paired.contains(n))
            .map(|(_, v)| v)
            .sum();
        self.eq("global delta of every other counter (sum)", 0, others);
    }

    /// A `procs` row's deltas.
    fn row(&mut self, who: &str, d: &Counts, exact: &[(Counter, u64)]) {
        for (name, want) in exact {
            self.eq(
                format!("{who} row {name} delta"),
                *want,
                d.get(*name).unwrap_or(u64::MAX),
            );
        }
    }

    fn done(self) -> Result<Verdict> {
        Ok(Verdict::Checks(self.checks))
    }
}

fn skip(reason: impl Into<String>) -> Result<Verdict> {
    Ok(Verdict::Skip(reason.into()))
}

fn my_pid() -> u32 {
    std::process::id()
}

// ---- Memory and page tables ---------------------------------------------

/// An mmap'ed range, unmapped on drop.
struct Mapping {
    addr: usize,
    len: usize,
}

impl Mapping {
    fn new(len: u64, prot: i32, flags: i32, fd: i32, what: &str) -> Result<Mapping> {
        // SAFETY: a fresh mapping chosen by the kernel; nothing aliases it.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len as usize, prot, flags, fd, 0) };
        if p == libc::MAP_FAILED {
            return Err(Error::last_os(format!("mmap of {what}")));
        }
        Ok(Mapping {
            addr: p as usize,
            len: len as usize,
        })
    }

    fn anon(len: u64, extra_flags: i32, what: &str) -> Result<Mapping> {
        Self::new(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
            -1,
            what,
        )
    }

    fn addr(&self) -> u64 {
        self.addr as u64
    }

    /// Writes `val` to the first byte of each `stride`-sized unit listed.
    fn write_units(&self, units: &[u64], stride: u64, val: u8) {
        for &u in units {
            let off = (u * stride) as usize;
            if off < self.len {
                // SAFETY: inside the live read/write mapping; volatile so
                // every store is a real access.
                unsafe { std::ptr::write_volatile((self.addr + off) as *mut u8, val) };
            }
        }
    }

    /// Reads the first byte of each of the first `n` units.
    fn read_units(&self, n: u64, stride: u64) {
        for u in 0..n {
            let off = (u * stride) as usize;
            if off < self.len {
                // SAFETY: inside the live mapping.
                unsafe { std::ptr::read_volatile((self.addr + off) as *const u8) };
            }
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

fn madvise(addr: u64, len: u64, advice: i32, what: &str) -> Result<()> {
    // SAFETY: advice on a range of our own mapping.
    if unsafe { libc::madvise(addr as *mut libc::c_void, len as usize, advice) } != 0 {
        return Err(Error::last_os(format!("madvise({what})")));
    }
    Ok(())
}

/// pagemap entries of `pages` pages from `start` of `pid` (None = self).
fn pagemap_of(pid: Option<u32>, start: u64, pages: u64) -> Result<Vec<u64>> {
    let ps = page_size();
    pagemap::read_entries(pid, start, start + pages * ps, ps)
}

fn count(es: &[u64], f: impl Fn(u64) -> bool) -> u64 {
    es.iter().filter(|&&e| f(e)).count() as u64
}

fn present(e: u64) -> bool {
    e & PM_PRESENT != 0
}

fn exclusive(e: u64) -> bool {
    present(e) && e & PM_MMAP_EXCLUSIVE != 0
}

fn swapped(e: u64) -> bool {
    !present(e) && e & PM_SWAP != 0
}

fn pfn(e: u64) -> Option<u64> {
    present(e).then_some(e & PM_PFN_MASK)
}

/// Entries `i` where both are present and map different page frames.
fn pfn_changed(before: &[u64], after: &[u64]) -> u64 {
    before
        .iter()
        .zip(after)
        .filter(|(b, a)| matches!((pfn(**b), pfn(**a)), (Some(x), Some(y)) if x != y))
        .count() as u64
}

/// The pfn field is zero for readers without CAP_SYS_ADMIN: a pfn witness
/// must see real numbers.
fn pfns_visible(es: &[u64]) -> u64 {
    es.iter().any(|&e| pfn(e).is_some_and(|p| p != 0)) as u64
}

/// How many different frames the present entries map. (Not kpageflags'
/// KSM bit: 6.12 sets it for every anonymous page, `mapping &
/// PAGE_MAPPING_KSM` in fs/proc/page.c tests the ANON bit too.)
fn distinct_frames(es: &[u64]) -> u64 {
    let mut f: Vec<u64> = es.iter().filter_map(|e| pfn(*e)).collect();
    f.sort_unstable();
    f.dedup();
    f.len() as u64
}

/// The sum of smaps field `key` (kB) over the VMAs overlapping the range.
fn smaps_kb(pid: Option<u32>, start: u64, end: u64, key: &str) -> Result<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/smaps"),
        None => "/proc/self/smaps".to_string(),
    };
    let text = fs::read_to_string(&path).map_err(|e| Error::io("read", path.clone(), e))?;
    let mut inside = false;
    let mut sum = 0;
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(s), Ok(e)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                inside = s < end && start < e;
                continue;
            }
        }
        if inside {
            sum += kv(line, key).unwrap_or(0);
        }
    }
    Ok(sum)
}

// ---- Files, sysfs and guards ----------------------------------------------

fn write_file(path: impl AsRef<Path>, value: &str) -> Result<()> {
    let p = path.as_ref();
    let mut f = OpenOptions::new()
        .write(true)
        .open(p)
        .map_err(|e| Error::io("open", p, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| Error::io("write", p, e))
}

fn read_trim(path: impl AsRef<Path>) -> Result<String> {
    let p = path.as_ref();
    Ok(fs::read_to_string(p)
        .map_err(|e| Error::io("read", p, e))?
        .trim()
        .to_string())
}

fn open_write(path: impl AsRef<Path>) -> Result<File> {
    let p = path.as_ref();
    OpenOptions::new()
        .write(true)
        .open(p)
        .map_err(|e| Error::io("open", p, e))
}

/// Sets a sysfs/procfs value and puts the old one back on drop.
struct Restore {
    path: PathBuf,
    old: String,
}

impl Restore {
    fn set(path: impl Into<PathBuf>, value: &str) -> Result<Restore> {
        let path = path.into();
        let old = read_trim(&path)?;
        write_file(&path, value)?;
        Ok(Restore { path, old })
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = write_file(&self.path, &self.old) {
            println!("# warning: could not restore {}: {e}", self.path.display());
        }
    }
}

/// A zram block device of our own (hot-added, removed on drop).
struct Zram {
    id: u32,
    dev: PathBuf,
}

const ZRAM_CONTROL: &str = "/sys/class/zram-control";

impl Zram {
    fn add(size: &str) -> Result<std::result::Result<Zram, String>> {
        if !Path::new(ZRAM_CONTROL).exists() {
            return Ok(Err(format!(
                "no zram device to put swap or O_DIRECT on ({ZRAM_CONTROL} missing: CONFIG_ZRAM)"
            )));
        }
        let s = read_trim(format!("{ZRAM_CONTROL}/hot_add"))?;
        let id: u32 = s
            .parse()
            .map_err(|_| Error::Child(format!("zram hot_add returned '{s}'")))?;
        let z = Zram {
            id,
            dev: PathBuf::from(format!("/dev/zram{id}")),
        };
        write_file(format!("/sys/block/zram{id}/disksize"), size)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !z.dev.exists() {
            if Instant::now() > deadline {
                return Err(Error::Child(format!("{} never appeared", z.dev.display())));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Ok(z))
    }

    /// The device opened for O_DIRECT writes.
    fn open_direct(&self) -> Result<File> {
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&self.dev)
            .map_err(|e| Error::io("open (O_DIRECT)", &self.dev, e))
    }
}

impl Drop for Zram {
    fn drop(&mut self) {
        let _ = write_file(format!("/sys/block/zram{}/reset", self.id), "1");
        if let Err(e) = write_file(format!("{ZRAM_CONTROL}/hot_remove"), &self.id.to_string()) {
            println!("# warning: could not remove zram{}: {e}", self.id);
        }
    }
}

/// Swap for the duration of a case: the system's own if it has any, else
/// a zram device of ours (swapoff and removed on drop).
struct Swap {
    on: Option<std::ffi::CString>,
    _zram: Option<Zram>,
}

const SWAP_SIZE: u64 = 64 << 20;

fn ensure_swap() -> Result<std::result::Result<Swap, String>> {
    let Ok(swaps) = fs::read_to_string("/proc/swaps") else {
        return Ok(Err(
            "kernel without swap (no /proc/swaps: CONFIG_SWAP)".into()
        ));
    };
    if swaps.lines().count() > 1 {
        return Ok(Ok(Swap {
            on: None,
            _zram: None,
        }));
    }
    let z = match Zram::add(&SWAP_SIZE.to_string())? {
        Ok(z) => z,
        Err(reason) => return Ok(Err(reason)),
    };
    mkswap(&z.dev, SWAP_SIZE)?;
    let c = std::ffi::CString::new(z.dev.as_os_str().as_bytes())
        .map_err(|_| Error::Child("device path with NUL".into()))?;
    // SAFETY: swapon(2) reads the NUL-terminated path.
    if unsafe { libc::syscall(libc::SYS_swapon, c.as_ptr(), 0) } != 0 {
        return Err(Error::last_os(format!("swapon {}", z.dev.display())));
    }
    println!(
        "# swap: {} ({} MiB zram) for this case",
        z.dev.display(),
        SWAP_SIZE >> 20
    );
    Ok(Ok(Swap {
        on: Some(c),
        _zram: Some(z),
    }))
}

impl Drop for Swap {
    fn drop(&mut self) {
        if let Some(c) = &self.on {
            // SAFETY: swapoff(2) reads the NUL-terminated path.
            if unsafe { libc::syscall(libc::SYS_swapoff, c.as_ptr()) } != 0 {
                println!("# warning: swapoff failed: {}", io::Error::last_os_error());
            }
        }
    }
}

/// Writes a version-1 swap header (what mkswap(8) writes, without a label).
fn mkswap(dev: &Path, bytes: u64) -> Result<()> {
    let ps = page_size() as usize;
    let mut hdr = vec![0u8; ps];
    hdr[1024..1028].copy_from_slice(&1u32.to_le_bytes());
    hdr[1028..1032].copy_from_slice(&((bytes / ps as u64 - 1) as u32).to_le_bytes());
    hdr[ps - 10..].copy_from_slice(b"SWAPSPACE2");
    let f = open_write(dev)?;
    f.write_all_at(&hdr, 0)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("write a swap header to", dev, e))
}

/// A cgroup v2 group of our own, with `controllers` enabled; mounts
/// cgroup2 if nothing has, and undoes all of it on drop.
struct Cgroup {
    root: PathBuf,
    dir: PathBuf,
    enabled: Vec<String>,
    mounted: bool,
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
    })
}

impl Cgroup {
    fn new(name: &str, controllers: &[&str]) -> Result<std::result::Result<Cgroup, String>> {
        let (root, mounted) = match cgroup2_mount() {
            Some(r) => (r, false),
            None => {
                use rustix::mount::{mount, MountFlags};
                let flags = MountFlags::empty();
                if let Err(e) = mount(c"none", c"/sys/fs/cgroup", c"cgroup2", flags, None) {
                    let e = io::Error::from(e);
                    return Ok(Err(format!("cannot mount cgroup2 on /sys/fs/cgroup: {e}")));
                }
                (PathBuf::from("/sys/fs/cgroup"), true)
            }
        };
        let mut cg = Cgroup {
            dir: root.join(format!("cowstat-selftest-{}-{name}", my_pid())),
            root,
            enabled: Vec::new(),
            mounted,
        };
        let available = read_trim(cg.root.join("cgroup.controllers"))?;
        for c in controllers {
            if !available.split_whitespace().any(|a| a == *c) {
                return Ok(Err(format!(
                    "kernel without the cgroup v2 {c} controller (cgroup.controllers: '{available}')"
                )));
            }
        }
        let subtree = read_trim(cg.root.join("cgroup.subtree_control"))?;
        for c in controllers {
            if !subtree.split_whitespace().any(|a| a == *c) {
                write_file(cg.root.join("cgroup.subtree_control"), &format!("+{c}"))?;
                cg.enabled.push(c.to_string());
            }
        }
        fs::create_dir(&cg.dir).map_err(|e| Error::io("create", &cg.dir, e))?;
        Ok(Ok(cg))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // A reaped child leaves the group a moment after wait() returns.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.dir.exists() {
            match fs::remove_dir(&self.dir) {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    println!("# warning: rmdir {}: {e}", self.dir.display());
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        for c in &self.enabled {
            let _ = write_file(self.root.join("cgroup.subtree_control"), &format!("-{c}"));
        }
        if self.mounted {
            let _ = rustix::mount::unmount(&self.root, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

// ---- A child driven step by step -------------------------------------------

/// A step that runs no work: the child answers it through the same loop,
/// so every stack slot of that loop (the step byte the kernel writes, the
/// reply) is written before a measurement window. Without it a slot on a
/// page the child has not written since fork, but the parent has, takes a
/// copy-on-write *reuse* fault inside the window; whether the slots cross
/// into such a page depends on the stack's random offset (ASLR), so it
/// failed in about one run in five.
const WARM_UP: u8 = b'n';

/// How long the parent waits for any message from a child.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// A forked child: it runs `prep` once and reports ready; each step byte
/// the parent sends runs `work(step)` and reports its status byte; `x` (or
/// the parent going away) makes it exit.
struct Child {
    pid: u32,
    rx: File,
    tx: File,
    reaped: bool,
}

impl Child {
    fn spawn<T>(
        prep: impl FnOnce() -> std::result::Result<T, u8>,
        mut work: impl FnMut(&mut T, u8) -> u8,
    ) -> Result<Child> {
        let (rx, mut child_tx) = workload::pipe()?;
        let (mut child_rx, tx) = workload::pipe()?;
        match fork()?.0 {
            Forked::Child => {
                drop(rx);
                drop(tx);
                let mut state = match prep() {
                    Ok(s) => s,
                    Err(code) => {
                        let _ = workload::send(&mut child_tx, &[code]);
                        exit_child(code as i32)
                    }
                };
                workload::prefault_stack();
                if workload::send(&mut child_tx, b"r").is_err() {
                    exit_child(90);
                }
                let mut step = [0u8; 1];
                while workload::recv(&mut child_rx, &mut step).is_ok() && step[0] != b'x' {
                    let code = match step[0] {
                        WARM_UP => WARM_UP,
                        s => work(&mut state, s),
                    };
                    if workload::send(&mut child_tx, &[code]).is_err() {
                        exit_child(91);
                    }
                }
                exit_child(0)
            }
            Forked::Parent(pid) => Ok(Child {
                pid,
                rx,
                tx,
                reaped: false,
            }),
        }
    }

    /// One byte from the child, waiting at most [`CHILD_TIMEOUT`].
    fn recv(&mut self) -> Result<u8> {
        if let Ok(false) = workload::poll_readable(&self.rx, CHILD_TIMEOUT) {
            return Err(Error::Child(format!(
                "pid {} sent nothing for {} s",
                self.pid,
                CHILD_TIMEOUT.as_secs()
            )));
        }
        let mut b = [0u8; 1];
        workload::recv(&mut self.rx, &mut b)?;
        Ok(b[0])
    }

    /// Waits for `prep`, then runs one empty step (see [`WARM_UP`]).
    fn ready(&mut self) -> Result<()> {
        match self.recv()? {
            b'r' => {}
            code => return Err(Error::Child(format!("setup failed (code {code})"))),
        }
        self.go(WARM_UP)?;
        match self.recv()? {
            WARM_UP => Ok(()),
            code => Err(Error::Child(format!("warm-up step answered {code}"))),
        }
    }

    fn go(&mut self, step: u8) -> Result<()> {
        workload::send(&mut self.tx, &[step])
    }

    fn done(&mut self) -> Result<u8> {
        self.recv()
    }

    /// Tells the child to exit and reaps it; returns its exit status.
    fn finish(mut self) -> Result<i32> {
        let _ = workload::send(&mut self.tx, b"x");
        self.reaped = true;
        workload::wait_child(self.pid)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            workload::kill_child(self.pid);
            let _ = workload::wait_child(self.pid);
        }
    }
}

/// A child that exits at once; returns when it is reaped.
fn fork_and_reap() -> Result<()> {
    match fork()?.0 {
        Forked::Child => exit_child(0),
        Forked::Parent(pid) => {
            workload::wait_child(pid)?;
            Ok(())
        }
    }
}

// ---- userfaultfd ------------------------------------------------------------

const UFFD_API: u64 = 0xaa;
/// `_IOWR(0xAA, nr, size)`.
const fn uffdio(nr: u64, size: u64) -> u64 {
    (3 << 30) | (size << 16) | (0xaa << 8) | nr
}
const UFFDIO_API: u64 = uffdio(0x3f, 24);
const UFFDIO_REGISTER: u64 = uffdio(0x00, 32);
const UFFDIO_ZEROPAGE: u64 = uffdio(0x04, 32);
const UFFDIO_WRITEPROTECT: u64 = uffdio(0x06, 24);
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
const UFFDIO_REGISTER_MODE_WP: u64 = 2;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
const UFFD_PAGEFAULT_FLAG_WP: u64 = 2;

/// A userfaultfd, non-blocking: poll(2) on a blocking one always reports
/// POLLERR.
struct Uffd(OwnedFd);

impl Uffd {
    fn open() -> Result<std::result::Result<Uffd, String>> {
        // SAFETY: userfaultfd(2) takes flags only.
        let fd =
            unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOSYS) {
                return Ok(Err("kernel without userfaultfd (CONFIG_USERFAULTFD)".into()));
            }
            return Err(Error::Syscall {
                call: "userfaultfd".into(),
                source: e,
            });
        }
        // SAFETY: a new descriptor that nothing else owns.
        let u = Uffd(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        let mut api = [UFFD_API, 0, 0];
        u.ioctl(UFFDIO_API, &mut api, "UFFDIO_API")?;
        Ok(Ok(u))
    }

    fn fd(&self) -> i32 {
        self.0.as_raw_fd()
    }

    fn ioctl<const N: usize>(&self, req: u64, arg: &mut [u64; N], what: &str) -> Result<()> {
        uffd_ioctl(self.fd(), req, arg).map_err(|source| Error::Syscall {
            call: what.into(),
            source,
        })
    }

    fn register(&self, start: u64, len: u64, mode: u64) -> Result<()> {
        self.ioctl(
            UFFDIO_REGISTER,
            &mut [start, len, mode, 0],
            "UFFDIO_REGISTER",
        )
    }

    fn zeropage(&self, start: u64, len: u64) -> Result<()> {
        self.ioctl(UFFDIO_ZEROPAGE, &mut [start, len, 0, 0], "UFFDIO_ZEROPAGE")
    }

    /// Waits up to `timeout` for a message.
    fn readable(&self, timeout: Duration) -> bool {
        workload::poll_readable(&self.0, timeout).unwrap_or(false)
    }
}

/// ioctl on a userfaultfd with a `[u64; N]` argument struct; no allocation.
fn uffd_ioctl<const N: usize>(fd: i32, req: u64, arg: &mut [u64; N]) -> io::Result<()> {
    // SAFETY: `arg` has the layout of the uapi struct `req` names (all
    // fields are __u64/__s64) and lives across the call.
    if unsafe { libc::ioctl(fd, req as _, arg.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Write-protects (`wp`) or resolves and wakes `[start, start + len)`.
fn uffd_writeprotect(fd: i32, start: u64, len: u64, wp: bool) -> io::Result<()> {
    uffd_ioctl(fd, UFFDIO_WRITEPROTECT, &mut [start, len, wp as u64])
}

/// One `struct uffd_msg`: (event, flags, address), or None if there was
/// none to read (the fd is non-blocking). No allocation.
fn uffd_read_msg(fd: i32) -> io::Result<Option<(u8, u64, u64)>> {
    let mut m = [0u8; 32];
    // SAFETY: reads at most 32 bytes into the local buffer.
    let n = unsafe { libc::read(fd, m.as_mut_ptr() as *mut libc::c_void, m.len()) };
    if n != 32 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EAGAIN) {
            return Ok(None);
        }
        return Err(e);
    }
    let word = |i: usize| u64::from_le_bytes(m[i..i + 8].try_into().unwrap_or([0; 8]));
    Ok(Some((m[0], word(8), word(16))))
}

// ---- 1, 2: private file mappings ----------------------------------------------

/// A memfd of `k` pages filled with `byte` (a file whose pages are in the
/// page cache).
fn memfd_of_pages(name: &std::ffi::CStr, k: u64, byte: u8) -> Result<File> {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).map_err(|e| {
        Error::Syscall {
            call: "memfd_create".into(),
            source: e.into(),
        }
    })?;
    let file = File::from(fd);
    let ps = page_size();
    let content = vec![byte; ps as usize];
    for i in 0..k {
        file.write_all_at(&content, i * ps)
            .map_err(|e| Error::io("write", "the memfd", e))?;
    }
    Ok(file)
}

/// A MAP_PRIVATE mapping of a K-page shmem file (memfd), written without a
/// read (`do_cow_fault` copies the page cache page into a new anonymous
/// page, no `do_wp_page`), or read first (the read maps the page cache page
/// read-only, the write copies it in `wp_page_copy`). Either way `cow_file`
/// counts K and `cow_copies` nothing; only the second enters `do_wp_page`.
fn private_file(k: u64, pattern: Pattern, read_first: bool) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    pin_to_current_cpu()?;
    let ps = page_size();
    let file = memfd_of_pages(c"cowstat-private-file", k, 0x5a)?;
    let fd = file.as_raw_fd();
    // The page cache's own frames, through a shared read-only mapping.
    let shared = Mapping::new(
        k * ps,
        libc::PROT_READ,
        libc::MAP_SHARED,
        fd,
        "the memfd, shared",
    )?;
    shared.read_units(k, ps);
    let cache = pagemap_of(None, shared.addr(), k)?;
    let private = Mapping::new(
        k * ps,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE,
        fd,
        "the memfd, private",
    )?;
    if read_first {
        private.read_units(k, ps);
    }
    let before = pagemap_of(None, private.addr(), k)?;
    let order = page_order(pattern, k, k, SEED);
    let keys = ["pgreuse"];
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    p0.prefault();
    p1.prefault();
    workload::prefault_stack();
    p0.take(&keys)?;
    private.write_units(&order, ps, 0xa5);
    p1.take(&keys)?;
    let w = Window::new(&p0, &p1)?;
    let after = pagemap_of(None, private.addr(), k)?;
    let faults = if read_first { k } else { 0 };
    let mut r = Report::default();
    r.global(
        &w.stats(),
        &[(Counter::CowFile, k), (Counter::WpFaults, faults)],
        &[],
    );
    r.row(
        "this process",
        &w.row(my_pid())?,
        &[
            (Counter::WpFaults, faults),
            (Counter::CowCopies, 0),
            (Counter::WpReuses, 0),
        ],
    );
    r.eq("vmstat pgreuse delta", 0, w.vm("pgreuse"));
    r.eq(
        "pagemap shows page frames (1 = yes)",
        1,
        pfns_visible(&cache),
    );
    if read_first {
        r.eq(
            "pages mapping the page cache's frame before the write (pagemap)",
            k,
            before
                .iter()
                .zip(&cache)
                .filter(|(b, c)| pfn(**b).is_some() && pfn(**b) == pfn(**c) && **b & PM_FILE != 0)
                .count() as u64,
        );
    } else {
        r.eq(
            "pages present before the write (pagemap)",
            0,
            count(&before, present),
        );
    }
    r.eq(
        "pages exclusive after the write (pagemap bit 56)",
        k,
        count(&after, exclusive),
    );
    r.eq(
        "file pages left after the write (pagemap bit 61)",
        0,
        count(&after, |e| e & PM_FILE != 0),
    );
    r.eq(
        "pages not on the page cache's frame (copies)",
        k,
        pfn_changed(&cache, &after),
    );
    let end = private.addr() + k * ps;
    r.eq(
        "smaps Anonymous, kB",
        k * ps / 1024,
        smaps_kb(None, private.addr(), end, "Anonymous")?,
    );
    r.eq(
        "smaps Private_Dirty, kB",
        k * ps / 1024,
        smaps_kb(None, private.addr(), end, "Private_Dirty")?,
    );
    r.done()
}

// ---- 3: hugetlb -----------------------------------------------------------------

fn meminfo() -> Result<String> {
    fs::read_to_string("/proc/meminfo").map_err(|e| Error::io("read", "/proc/meminfo", e))
}

/// A MAP_PRIVATE hugetlb mapping of N huge pages (reserved through
/// nr_hugepages = 2N): the parent's first writes, a child's writes while
/// the parent maps them (`hugetlb_wp` copies: `hugetlb_copies` = N, N more
/// pages leave the free pool), and the parent's writes after the child
/// exited (`hugetlb_wp` reuses: `hugetlb_reuses` = N, no page allocated).
///
/// The first write to a private hugetlb page is counted as a reuse too:
/// `hugetlb_no_page` allocates the page and calls `hugetlb_wp` at once
/// ("do the COW without a second fault"), which finds it exclusive and
/// makes it writable in place.
fn hugetlb(n: u64, pattern: Pattern) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    let nr = "/proc/sys/vm/nr_hugepages";
    if !Path::new(nr).exists() {
        return skip(
            "kernel without hugetlb pages (no /proc/sys/vm/nr_hugepages: CONFIG_HUGETLBFS)",
        );
    }
    pin_to_current_cpu()?;
    let ps = page_size();
    let hp = kv(&meminfo()?, "Hugepagesize").unwrap_or(2048) * 1024;
    let sub = hp / ps;
    let _pool = Restore::set(nr, &(2 * n).to_string())?;
    let total = kv(&meminfo()?, "HugePages_Total").unwrap_or(0);
    if total != 2 * n {
        return Err(Error::Child(format!(
            "nr_hugepages = {} gave only {total} huge pages",
            2 * n
        )));
    }
    let m = Mapping::anon(n * hp, libc::MAP_HUGETLB, "the hugetlb mapping")?;
    let rsvd_mapped = kv(&meminfo()?, "HugePages_Rsvd").unwrap_or(0);
    let order = page_order(pattern, n, n, SEED);
    let meminfo_path = [PathBuf::from("/proc/meminfo")];
    let mut r = Report::default();
    r.eq("HugePages_Rsvd after mmap (reservation)", n, rsvd_mapped);

    // The parent's first writes.
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &meminfo_path));
    p0.prefault();
    p1.prefault();
    workload::prefault_stack();
    p0.take(&[])?;
    m.write_units(&order, hp, 1);
    p1.take(&[])?;
    let w = Window::new(&p0, &p1)?;
    println!("# parent's first writes:");
    r.global(
        &w.stats(),
        &[(Counter::HugetlbReuses, n), (Counter::HugetlbCopies, 0)],
        &[],
    );
    r.eq(
        "HugePages_Rsvd after the first writes",
        0,
        w.b.extra(0, "HugePages_Rsvd"),
    );
    let parent_map = pagemap_of(None, m.addr(), n * sub)?;

    // A child writes every huge page while the parent maps them.
    let [mut c0, mut c1] = [0, 1].map(|_| Probe::new(&cs, &meminfo_path));
    let mut child = Child::spawn(
        || Ok(()),
        |_, _| {
            m.write_units(&order, hp, 2);
            0
        },
    )?;
    c0.prefault();
    c1.prefault();
    workload::prefault_stack();
    child.ready()?;
    c0.take(&[])?;
    child.go(b'w')?;
    child.done()?;
    c1.take(&[])?;
    let w = Window::new(&c0, &c1)?;
    let child_map = pagemap_of(Some(child.pid), m.addr(), n * sub)?;
    child.finish()?;
    println!("# child's writes:");
    r.global(
        &w.stats(),
        &[(Counter::HugetlbCopies, n), (Counter::HugetlbReuses, 0)],
        &[],
    );
    r.eq(
        "HugePages_Free taken by the child's writes (meminfo)",
        n,
        (-w.extra(0, "HugePages_Free")).max(0) as u64,
    );
    r.eq(
        "pagemap shows page frames (1 = yes)",
        1,
        pfns_visible(&parent_map),
    );
    r.eq(
        "child's huge pages on new frames (pagemap)",
        n,
        (0..n)
            .filter(|i| pfn(parent_map[(i * sub) as usize]) != pfn(child_map[(i * sub) as usize]))
            .count() as u64,
    );
    let free_after_exit = kv(&meminfo()?, "HugePages_Free").unwrap_or(0);
    r.eq("HugePages_Free after the child exited", n, free_after_exit);

    // The parent writes again: it is the only mapper left.
    let [mut q0, mut q1] = [0, 1].map(|_| Probe::new(&cs, &meminfo_path));
    q0.prefault();
    q1.prefault();
    workload::prefault_stack();
    q0.take(&[])?;
    m.write_units(&order, hp, 3);
    q1.take(&[])?;
    let w = Window::new(&q0, &q1)?;
    println!("# parent's writes after the child exited:");
    r.global(
        &w.stats(),
        &[(Counter::HugetlbReuses, n), (Counter::HugetlbCopies, 0)],
        &[],
    );
    r.eq(
        "HugePages_Free change (meminfo)",
        0,
        w.extra(0, "HugePages_Free").unsigned_abs(),
    );
    let again = pagemap_of(None, m.addr(), n * sub)?;
    r.eq(
        "parent's pages on new frames",
        0,
        pfn_changed(&parent_map, &again),
    );
    r.done()
}

// ---- 4: THP ---------------------------------------------------------------------

fn thp_heap(n: u64) -> Result<std::result::Result<Heap, String>> {
    if thp_mode().is_none() {
        return Ok(Err("kernel without transparent huge pages".into()));
    }
    let mut heap = Heap::new(n * hpage_pmd_size(), true)?;
    heap.touch_all(true);
    Ok(Ok(heap))
}

/// A THP heap of N huge pages; a child forks and exits; the parent writes
/// one byte per huge page. `do_huge_pmd_wp_page` finds each huge page no
/// longer shared and makes the PMD writable: `thp_reuses` = N, no split,
/// no copy. The kernel does not count these in `pgreuse`.
fn thp_reuse(n: u64, pattern: Pattern) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    pin_to_current_cpu()?;
    let heap = match thp_heap(n)? {
        Ok(h) => h,
        Err(reason) => return skip(reason),
    };
    let ps = page_size();
    let sub = hpage_pmd_size() / ps;
    let huge_kb = smaps::read_range(None, heap.addr(), heap.end())?.anon_huge_kb;
    fork_and_reap()?;
    let before = pagemap_of(None, heap.addr(), n * sub)?;
    // One byte in a different 4 KiB page of each huge page.
    let pages: Vec<u64> = page_order(pattern, n, n, SEED)
        .into_iter()
        .map(|h| h * sub + (h * 31) % sub)
        .collect();
    let keys = ["thp_split_pmd", "pgreuse"];
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    p0.prefault();
    p1.prefault();
    workload::prefault_stack();
    p0.take(&keys)?;
    heap.write_pages(&pages, 0x42);
    p1.take(&keys)?;
    let w = Window::new(&p0, &p1)?;
    let after = pagemap_of(None, heap.addr(), n * sub)?;
    let mut r = Report::default();
    r.eq(
        "AnonHugePages before the fork, kB",
        n * hpage_pmd_size() / 1024,
        huge_kb,
    );
    r.global(
        &w.stats(),
        &[
            (Counter::ThpReuses, n),
            (Counter::ThpWpFaults, n),
            (Counter::ThpSplits, 0),
        ],
        &[],
    );
    r.row(
        "this process",
        &w.row(my_pid())?,
        &[
            (Counter::ThpWpFaults, n),
            (Counter::WpFaults, 0),
            (Counter::CowCopies, 0),
        ],
    );
    r.eq("vmstat thp_split_pmd delta", 0, w.vm("thp_split_pmd"));
    r.eq(
        "vmstat pgreuse delta (PMD reuses are not in it)",
        0,
        w.vm("pgreuse"),
    );
    r.eq(
        "AnonHugePages after the writes, kB",
        n * hpage_pmd_size() / 1024,
        smaps::read_range(None, heap.addr(), heap.end())?.anon_huge_kb,
    );
    r.eq(
        "pagemap shows page frames (1 = yes)",
        1,
        pfns_visible(&before),
    );
    r.eq(
        "pages on new frames (pagemap)",
        0,
        pfn_changed(&before, &after),
    );
    r.done()
}

/// A THP heap of N huge pages shared with a child that writes `per` 4 KiB
/// pages in each: the first write splits the child's PMD
/// (`do_huge_pmd_wp_page` → `__split_huge_pmd`, vmstat `thp_split_pmd`),
/// then each write copies one 4 KiB page. The parent keeps its huge PMDs.
fn thp_split(n: u64, per: u64, pattern: Pattern) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    pin_to_current_cpu()?;
    let heap = match thp_heap(n)? {
        Ok(h) => h,
        Err(reason) => return skip(reason),
    };
    let ps = page_size();
    let sub = hpage_pmd_size() / ps;
    let huge_kb = n * hpage_pmd_size() / 1024;
    let huge_before = smaps::read_range(None, heap.addr(), heap.end())?.anon_huge_kb;
    let pages: Vec<u64> = page_order(pattern, n, n, SEED)
        .into_iter()
        .flat_map(|h| (0..per).map(move |j| h * sub + (h * 31 + j * 97) % sub))
        .collect();
    let parent_map = pagemap_of(None, heap.addr(), n * sub)?;
    let keys = ["thp_split_pmd", "pgreuse"];
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    let mut child = Child::spawn(
        || Ok(()),
        |_, _| {
            heap.write_pages(&pages, 0x43);
            0
        },
    )?;
    p0.prefault();
    p1.prefault();
    workload::prefault_stack();
    child.ready()?;
    p0.take(&keys)?;
    child.go(b'w')?;
    child.done()?;
    p1.take(&keys)?;
    let w = Window::new(&p0, &p1)?;
    let child_map = pagemap_of(Some(child.pid), heap.addr(), n * sub)?;
    let child_huge = smaps::read_range(Some(child.pid), heap.addr(), heap.end())?.anon_huge_kb;
    let child_dirty = smaps_kb(Some(child.pid), heap.addr(), heap.end(), "Private_Dirty")?;
    let parent_huge = smaps::read_range(None, heap.addr(), heap.end())?.anon_huge_kb;
    let cpid = child.pid;
    child.finish()?;
    let copies = n * per;
    let mut r = Report::default();
    r.eq("AnonHugePages before the fork, kB", huge_kb, huge_before);
    r.global(
        &w.stats(),
        &[
            (Counter::ThpSplits, n),
            (Counter::ThpWpFaults, n),
            (Counter::CowCopies, copies),
            (Counter::WpFaults, copies),
            (Counter::ThpReuses, 0),
        ],
        &[],
    );
    r.row(
        "child",
        &w.row(cpid)?,
        &[
            (Counter::ThpWpFaults, n),
            (Counter::CowCopies, copies),
            (Counter::WpFaults, copies),
        ],
    );
    r.eq("vmstat thp_split_pmd delta", n, w.vm("thp_split_pmd"));
    r.eq(
        "pagemap shows page frames (1 = yes)",
        1,
        pfns_visible(&parent_map),
    );
    r.eq(
        "child's pages on new frames (pagemap)",
        copies,
        pfn_changed(&parent_map, &child_map),
    );
    r.eq("child's AnonHugePages after the writes, kB", 0, child_huge);
    r.eq(
        "child's smaps Private_Dirty, kB",
        copies * ps / 1024,
        child_dirty,
    );
    r.eq(
        "parent's AnonHugePages after the child's writes, kB",
        huge_kb,
        parent_huge,
    );
    r.done()
}

/// A THP-enabled heap of N huge-page regions, read first (each read maps
/// the huge zero page) and then written once per region:
/// `do_huge_pmd_wp_page` splits the huge zero PMD (`thp_splits`, vmstat
/// `thp_split_pmd`) and the write then replaces a 4 KiB zero page with a
/// zeroed page (`cow_zero`), not a copy.
fn thp_huge_zero(n: u64, pattern: Pattern) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    if thp_mode().is_none() {
        return skip("kernel without transparent huge pages");
    }
    let use_zero = "/sys/kernel/mm/transparent_hugepage/use_zero_page";
    if read_trim(use_zero).ok().as_deref() != Some("1") {
        return skip(format!(
            "{use_zero} is not 1: reads do not map the huge zero page"
        ));
    }
    pin_to_current_cpu()?;
    let ps = page_size();
    let hp = hpage_pmd_size();
    let sub = hp / ps;
    let heap = Heap::new(n * hp, true)?;
    for h in 0..n {
        // SAFETY: inside the heap; a read maps the huge zero page.
        unsafe { std::ptr::read_volatile((heap.addr() + h * hp) as *const u8) };
    }
    let before = pagemap_of(None, heap.addr(), n * sub)?;
    let pages: Vec<u64> = page_order(pattern, n, n, SEED)
        .into_iter()
        .map(|h| h * sub + (h * 31) % sub)
        .collect();
    let keys = ["thp_split_pmd", "pgreuse"];
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    p0.prefault();
    p1.prefault();
    workload::prefault_stack();
    p0.take(&keys)?;
    heap.write_pages(&pages, 0x44);
    p1.take(&keys)?;
    let w = Window::new(&p0, &p1)?;
    let after = pagemap_of(None, heap.addr(), n * sub)?;
    let mut r = Report::default();
    // All N regions map the same huge page, the huge zero page: pagemap
    // shows its 512 frames in each.
    r.eq(
        "present before the writes (pagemap)",
        n * sub,
        count(&before, present),
    );
    r.eq(
        "distinct frames before the writes (the huge zero page's 512)",
        sub,
        distinct_frames(&before),
    );
    if kernel_major() >= 7 {
        // 7.x replaces the huge zero page with a new zeroed huge page
        // (do_huge_zero_wp_pmd, inlined into do_huge_pmd_wp_page): no split,
        // no 4 KiB fault. cowstat counts it as `thp_zero`, at
        // map_anon_folio_pmd_pf (docs/kernel-differences.md, row 6).
        println!(
            "# kernel {}: huge zero page replaced by a new huge page",
            kernel_release()
        );
        r.global(
            &w.stats(),
            &[
                (Counter::ThpWpAttempts, n),
                (Counter::ThpWpFaults, n),
                (Counter::ThpZero, n),
                (Counter::ThpSplits, 0),
                (Counter::CowZero, 0),
                (Counter::WpFaults, 0),
            ],
            &[],
        );
        r.row(
            "this process",
            &w.row(my_pid())?,
            &[
                (Counter::ThpWpFaults, n),
                (Counter::WpFaults, 0),
                (Counter::CowZero, 0),
            ],
        );
        r.eq("vmstat thp_split_pmd delta", 0, w.vm("thp_split_pmd"));
        r.eq(
            "smaps AnonHugePages after the writes, kB (new huge pages)",
            n * hp / 1024,
            smaps_kb(None, heap.addr(), heap.end(), "AnonHugePages")?,
        );
        return r.done();
    }
    r.global(
        &w.stats(),
        &[
            (Counter::ThpWpFaults, n),
            (Counter::ThpSplits, n),
            (Counter::CowZero, n),
            (Counter::WpFaults, n),
        ],
        &[],
    );
    r.row(
        "this process",
        &w.row(my_pid())?,
        &[
            (Counter::ThpWpFaults, n),
            (Counter::CowZero, n),
            (Counter::WpFaults, n),
            (Counter::CowCopies, 0),
        ],
    );
    r.eq("vmstat thp_split_pmd delta", n, w.vm("thp_split_pmd"));
    r.eq(
        "pages exclusive after the writes (pagemap)",
        n,
        count(&after, exclusive),
    );
    r.eq(
        "smaps Rss after the writes, kB (zero pages are not resident)",
        n * ps / 1024,
        smaps_kb(None, heap.addr(), heap.end(), "Rss")?,
    );
    r.done()
}

// ---- 5: KSM ---------------------------------------------------------------------

const KSM: &str = "/sys/kernel/mm/ksm";

/// K identical pages merged by ksmd (MADV_MERGEABLE), then written: each
/// write copies a KSM page (`do_wp_page` never reuses one): `cow_ksm` = K =
/// vmstat `cow_ksm`, and no fork COW.
fn ksm(k: u64, pattern: Pattern) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    if !Path::new(KSM).join("run").exists() {
        return skip("kernel without KSM (no /sys/kernel/mm/ksm: CONFIG_KSM)");
    }
    pin_to_current_cpu()?;
    let ps = page_size();
    let mut heap = Heap::new(k * ps, false)?;
    heap.as_mut_slice().fill(0x6b);
    madvise(
        heap.addr(),
        heap.size(),
        libc::MADV_MERGEABLE,
        "MADV_MERGEABLE",
    )?;
    let merged = {
        let _scan = Restore::set(format!("{KSM}/pages_to_scan"), "4000")?;
        let _sleep = Restore::set(format!("{KSM}/sleep_millisecs"), "0")?;
        let _run = Restore::set(format!("{KSM}/run"), "1")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m: u64 = read_trim("/proc/self/ksm_merging_pages")?
                .parse()
                .unwrap_or(0);
            if m >= k || Instant::now() > deadline {
                break m;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // ksmd stops here (run back to its old value, 0 on a fresh boot):
        // merged pages stay merged.
    };
    let stopped = read_trim(format!("{KSM}/run"))?;
    if stopped == "1" {
        write_file(format!("{KSM}/run"), "0")?;
    }
    let before = pagemap_of(None, heap.addr(), k)?;
    let ksm_kb_before = smaps_kb(None, heap.addr(), heap.end(), "KSM")?;
    let order = page_order(pattern, k, k, SEED);
    let keys = ["cow_ksm", "pgreuse"];
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    p0.prefault();
    p1.prefault();
    workload::prefault_stack();
    p0.take(&keys)?;
    heap.write_pages(&order, 0x6c);
    p1.take(&keys)?;
    let w = Window::new(&p0, &p1)?;
    let after = pagemap_of(None, heap.addr(), k)?;
    let mut r = Report::default();
    r.eq(
        "ksm_merging_pages before the writes (/proc/self)",
        k,
        merged,
    );
    r.eq(
        "smaps KSM before the writes, kB",
        k * ps / 1024,
        ksm_kb_before,
    );
    // KSM shares one frame among at most max_page_sharing (256) mappings.
    r.within(
        "distinct frames of the K merged pages (pagemap)",
        1,
        k.div_ceil(256) + 1,
        distinct_frames(&before),
    );
    r.global(
        &w.stats(),
        &[(Counter::CowKsm, k), (Counter::WpFaults, k)],
        &[],
    );
    r.row(
        "this process",
        &w.row(my_pid())?,
        &[
            (Counter::WpFaults, k),
            (Counter::CowCopies, 0),
            (Counter::WpReuses, 0),
        ],
    );
    r.eq("vmstat cow_ksm delta", k, w.vm("cow_ksm"));
    r.eq("vmstat pgreuse delta", 0, w.vm("pgreuse"));
    r.eq(
        "smaps KSM after the writes, kB",
        0,
        smaps_kb(None, heap.addr(), heap.end(), "KSM")?,
    );
    r.eq(
        "distinct frames after the writes",
        k,
        distinct_frames(&after),
    );
    r.eq(
        "pages on new frames (pagemap)",
        k,
        pfn_changed(&before, &after),
    );
    r.eq(
        "pages exclusive after the writes",
        k,
        count(&after, exclusive),
    );
    r.done()
}

// ---- 6: userfaultfd write-protect -------------------------------------------------

/// Whose pages are write-protected.
#[derive(Clone, Copy)]
enum UffdPages {
    /// Written by this process since its last fork: exclusive anon pages.
    Exclusive,
    /// Shared with a child at fork; the child has exited.
    AfterChildExit,
    /// Shared with a child that is still alive.
    ChildAlive,
}

impl UffdPages {
    fn name(self) -> &'static str {
        match self {
            UffdPages::Exclusive => "exclusive",
            UffdPages::AfterChildExit => "after_child_exit",
            UffdPages::ChildAlive => "child_alive",
        }
    }
}

/// K private anonymous pages registered with UFFDIO_REGISTER_MODE_WP and
/// write-protected; one thread writes them, a handler thread resolves each
/// fault with UFFDIO_WRITEPROTECT (mode 0: un-protect and wake).
///
/// Each write first faults into `do_wp_page`, which hands it to userspace
/// (`handle_userfault`): a `wp_attempts` entry with no outcome. What the
/// retried fault does depends on the page, because un-protecting
/// (`uffd_wp_range` with MM_CP_TRY_CHANGE_WRITABLE) already makes an
/// exclusive anonymous page writable:
/// - exclusive pages: the retry finds a writable PTE and never enters
///   `do_wp_page`: `wp_attempts` = K, `wp_faults` = 0, vmstat `pgreuse` unchanged;
/// - pages shared at fork whose child exited: the retry reuses them:
///   `wp_attempts` = 2K, `wp_faults` = `wp_reuses` = K = `pgreuse`;
/// - pages shared with a live child: the retry copies them:
///   `wp_attempts` = 2K, `wp_faults` = `cow_copies` = K.
fn uffd_wp(k: u64, pattern: Pattern, pages: UffdPages) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    let uffd = match Uffd::open()? {
        Ok(u) => u,
        Err(reason) => return skip(reason),
    };
    pin_to_current_cpu()?;
    let ps = page_size();
    let mut heap = Heap::new(k * ps, false)?;
    heap.touch_all(true);
    let mut child = None;
    match pages {
        UffdPages::Exclusive => {}
        UffdPages::AfterChildExit => fork_and_reap()?,
        UffdPages::ChildAlive => {
            let mut c = Child::spawn(|| Ok(()), |_, _| 0)?;
            c.ready()?;
            child = Some(c);
        }
    }
    uffd.register(heap.addr(), heap.size(), UFFDIO_REGISTER_MODE_WP)?;
    uffd_writeprotect(uffd.fd(), heap.addr(), heap.size(), true).map_err(|source| {
        Error::Syscall {
            call: "UFFDIO_WRITEPROTECT".into(),
            source,
        }
    })?;
    let before = pagemap_of(None, heap.addr(), k)?;
    let order = page_order(pattern, k, k, SEED);
    // The handler: resolves K write-protect faults, then waits to be told
    // to return, so that nothing of it runs after the window.
    let (mut stop_r, mut stop_w) = workload::pipe()?;
    let fd = uffd.fd();
    let handler = std::thread::spawn(move || -> io::Result<u64> {
        workload::prefault_stack();
        let mut wp_msgs = 0;
        loop {
            let mut pfd = [
                libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: stop_r.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: two valid pollfds.
            if unsafe { libc::poll(pfd.as_mut_ptr(), 2, 60_000) } <= 0 {
                return Err(io::Error::other("no userfaultfd message for 60 s"));
            }
            if pfd[0].revents & libc::POLLIN != 0 {
                let Some((event, flags, addr)) = uffd_read_msg(fd)? else {
                    continue;
                };
                if event == UFFD_EVENT_PAGEFAULT && flags & UFFD_PAGEFAULT_FLAG_WP != 0 {
                    wp_msgs += 1;
                }
                uffd_writeprotect(fd, addr & !(ps - 1), ps, false)?;
            } else if pfd[0].revents != 0 {
                return Err(io::Error::other("poll on the userfaultfd failed"));
            } else {
                // The writer is done (each write waits for its resolution).
                let mut b = [0u8; 1];
                let _ = stop_r.read(&mut b);
                return Ok(wp_msgs);
            }
        }
    });
    let keys = ["pgreuse"];
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    p0.prefault();
    p1.prefault();
    workload::prefault_stack();
    p0.take(&keys)?;
    heap.write_pages(&order, 0x55);
    p1.take(&keys)?;
    let _ = stop_w.write_all(b"s");
    let wp_msgs = handler
        .join()
        .map_err(|_| Error::Child("the uffd handler thread panicked".into()))?
        .map_err(|source| Error::Syscall {
            call: "uffd handler".into(),
            source,
        })?;
    let w = Window::new(&p0, &p1)?;
    let after = pagemap_of(None, heap.addr(), k)?;
    if let Some(c) = child {
        c.finish()?;
    }
    // (do_wp_page entries, copies, reuses): a fault handed to userspace is
    // an attempt with no outcome; wp_faults counts only the outcomes.
    let (attempts, copies, reuses) = match pages {
        UffdPages::Exclusive => (k, 0, 0),
        UffdPages::AfterChildExit => (2 * k, 0, k),
        UffdPages::ChildAlive => (2 * k, k, 0),
    };
    let mut r = Report::default();
    r.eq(
        "pages uffd-wp protected before the writes (pagemap bit 57)",
        k,
        count(&before, |e| e & PM_UFFD_WP != 0),
    );
    r.eq(
        "write-protect faults handed to userspace (uffd messages)",
        k,
        wp_msgs,
    );
    r.global(
        &w.stats(),
        &[
            (Counter::WpAttempts, attempts),
            (Counter::WpFaults, copies + reuses),
            (Counter::CowCopies, copies),
            (Counter::WpReuses, reuses),
        ],
        &[],
    );
    r.row(
        "this process",
        &w.row(my_pid())?,
        &[
            (Counter::WpFaults, copies + reuses),
            (Counter::CowCopies, copies),
            (Counter::WpReuses, reuses),
        ],
    );
    r.eq("vmstat pgreuse delta", reuses, w.vm("pgreuse"));
    r.eq(
        "pages uffd-wp protected after (pagemap bit 57)",
        0,
        count(&after, |e| e & PM_UFFD_WP != 0),
    );
    r.eq(
        "pages exclusive after the writes",
        k,
        count(&after, exclusive),
    );
    r.eq(
        "pagemap shows page frames (1 = yes)",
        1,
        pfns_visible(&before),
    );
    r.eq(
        "pages on new frames (pagemap)",
        copies,
        pfn_changed(&before, &after),
    );
    r.done()
}

// ---- 7: swap-in -----------------------------------------------------------------------

/// `uname -r` of the running kernel.
fn kernel_release() -> String {
    read_trim("/proc/sys/kernel/osrelease").unwrap_or_default()
}

/// The running kernel's major version (0 if unreadable).
fn kernel_major() -> u32 {
    kernel_release()
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

#[derive(Clone, Copy)]
enum SwapWriter {
    /// A child writes while the parent's PTEs still hold the swap entries.
    Child,
    /// The parent writes after its child exited.
    ParentAfterChildExit,
}

impl SwapWriter {
    fn name(self) -> &'static str {
        match self {
            SwapWriter::Child => "child_writes",
            SwapWriter::ParentAfterChildExit => "parent_writes_after_child_exit",
        }
    }
}

/// Pages out K pages (MADV_PAGEOUT before the fork: it skips pages mapped
/// twice), forks, and writes them from one side:
/// - a child writing while the parent still holds the swap entries:
///   `do_swap_page` maps the swap-cache page read-only (swap count 2, not
///   exclusive) and calls `do_wp_page`, which copies: `cow_copies` = K;
/// - the parent writing after the child exited: the swap count is 1, so
///   `do_swap_page` maps the page exclusive and writable itself (zram is
///   synchronous: it even skips the swap cache); no `do_wp_page`, no COW
///   event, no `pgreuse`.
fn swap_in(k: u64, pattern: Pattern, writer: SwapWriter) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    let _swap = match ensure_swap()? {
        Ok(s) => s,
        Err(reason) => return skip(reason),
    };
    pin_to_current_cpu()?;
    let ps = page_size();
    let mut heap = Heap::new(k * ps, false)?;
    heap.touch_all(true);
    let mut out = 0;
    for _ in 0..20 {
        madvise(heap.addr(), heap.size(), libc::MADV_PAGEOUT, "MADV_PAGEOUT")?;
        out = count(&pagemap_of(None, heap.addr(), k)?, swapped);
        if out == k {
            break;
        }
    }
    let order = page_order(pattern, k, k, SEED);
    let keys = ["pgreuse", "pswpin"];
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    let mut r = Report::default();
    r.eq("pages swapped out before the fork (pagemap bit 62)", k, out);
    match writer {
        SwapWriter::Child => {
            let mut child = Child::spawn(
                || Ok(()),
                |_, _| {
                    heap.write_pages(&order, 0x31);
                    0
                },
            )?;
            p0.prefault();
            p1.prefault();
            workload::prefault_stack();
            child.ready()?;
            let child_before = pagemap_of(Some(child.pid), heap.addr(), k)?;
            p0.take(&keys)?;
            child.go(b'w')?;
            child.done()?;
            p1.take(&keys)?;
            let w = Window::new(&p0, &p1)?;
            let child_after = pagemap_of(Some(child.pid), heap.addr(), k)?;
            let parent_after = pagemap_of(None, heap.addr(), k)?;
            let cpid = child.pid;
            child.finish()?;
            r.eq(
                "child's pages swapped before its writes",
                k,
                count(&child_before, swapped),
            );
            r.global(
                &w.stats(),
                &[(Counter::CowCopies, k), (Counter::WpFaults, k)],
                &[],
            );
            r.row(
                "child",
                &w.row(cpid)?,
                &[
                    (Counter::CowCopies, k),
                    (Counter::WpFaults, k),
                    (Counter::WpReuses, 0),
                ],
            );
            r.eq("vmstat pgreuse delta", 0, w.vm("pgreuse"));
            // Each swapped page is read once, by the fault on it or by
            // swap readahead for a neighbour's fault.
            r.eq("vmstat pswpin delta", k, w.vm("pswpin"));
            r.eq(
                "child's pages present and exclusive after (pagemap)",
                k,
                count(&child_after, exclusive),
            );
            r.eq(
                "parent's pages still swapped (pagemap)",
                k,
                count(&parent_after, swapped),
            );
        }
        SwapWriter::ParentAfterChildExit => {
            fork_and_reap()?;
            p0.prefault();
            p1.prefault();
            workload::prefault_stack();
            p0.take(&keys)?;
            heap.write_pages(&order, 0x32);
            p1.take(&keys)?;
            let w = Window::new(&p0, &p1)?;
            let after = pagemap_of(None, heap.addr(), k)?;
            // Swap count back to 1: 6.12's do_swap_page maps the page
            // writable itself (no write-protect fault at all); 7.x maps it
            // read-only and the write is reused by do_wp_page (counted in
            // pgreuse too). docs/kernel-differences.md.
            let reuses = if kernel_major() >= 7 { k } else { 0 };
            println!("# kernel {}: expecting {reuses} reuses", kernel_release());
            r.global(
                &w.stats(),
                &[
                    (Counter::WpFaults, reuses),
                    (Counter::WpReuses, reuses),
                    (Counter::CowCopies, 0),
                ],
                &[],
            );
            r.row(
                "this process",
                &w.row(my_pid())?,
                &[
                    (Counter::WpFaults, reuses),
                    (Counter::WpReuses, reuses),
                    (Counter::CowCopies, 0),
                ],
            );
            r.eq("vmstat pgreuse delta", reuses, w.vm("pgreuse"));
            r.eq("vmstat pswpin delta", k, w.vm("pswpin"));
            r.eq(
                "pages present and exclusive after (pagemap)",
                k,
                count(&after, exclusive),
            );
        }
    }
    r.done()
}

// ---- 8: memcg at its limit ----------------------------------------------------------

/// Pages of memory.max above the group's usage when the child starts.
const MEMCG_HEADROOM: u64 = 64;
/// The no-swap case lets the child retry this many times before it lifts
/// the limit.
const MEMCG_RETRIES: u64 = 3;

/// A child in its own memory cgroup, with memory.max 64 pages above its
/// usage, writes K pages shared with its parent. Each copy is charged to the
/// child's group (the shared originals stay charged to the parent's).
/// - With swap (memory.swap.max = max): reclaim swaps the child's earlier
///   copies out to make room; every charge succeeds after reclaim, so every
///   attempt installs a copy (retries = memory.events `oom` delta = 0).
/// - Without swap (memory.swap.max = 0) and unkillable (oom_score_adj
///   -1000): once the group is full, the charge in `wp_page_copy` fails,
///   the group's OOM killer finds nothing to kill, the fault returns
///   VM_FAULT_OOM and the write faults again: one `wp_attempts` entry and
///   one memory.events `oom` per retry, no copy. The parent then lifts
///   memory.max and the child finishes.
///
/// Either way `cow_copies` = the pages copied (pagemap: on a new frame, or
/// swapped out, in the child) = `wp_faults`, and `wp_attempts` = that + retries.
fn memcg(k: u64, pattern: Pattern, with_swap: bool) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    let _swap = if with_swap {
        match ensure_swap()? {
            Ok(s) => Some(s),
            Err(reason) => return skip(reason),
        }
    } else {
        None
    };
    let cg = match Cgroup::new("memcg", &["memory"])? {
        Ok(c) => c,
        Err(reason) => return skip(reason),
    };
    pin_to_current_cpu()?;
    let ps = page_size();
    let mut heap = Heap::new(k * ps, false)?;
    heap.touch_all(true);
    let parent_map = pagemap_of(None, heap.addr(), k)?;
    let order = page_order(pattern, k, k, SEED);
    let mut procs_file = open_write(cg.file("cgroup.procs"))?;
    let mut max_file = open_write(cg.file("memory.max"))?;
    write_file(
        cg.file("memory.swap.max"),
        if with_swap { "max" } else { "0" },
    )?;
    let events = [cg.file("memory.events")];
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &events));
    let mut poll = WindowFile::new(cg.file("memory.events"), 4096);
    let mut child = Child::spawn(
        || {
            if !with_swap {
                write_file("/proc/self/oom_score_adj", "-1000").map_err(|_| 1u8)?;
            }
            procs_file.write_all(b"0").map_err(|_| 2u8)?;
            Ok(())
        },
        |_, _| {
            heap.write_pages(&order, 0x21);
            0
        },
    )?;
    p0.prefault();
    p1.prefault();
    poll.prefault();
    workload::prefault_stack();
    child.ready()?;
    let current: u64 = read_trim(cg.file("memory.current"))?.parse().unwrap_or(0);
    write_file(
        cg.file("memory.max"),
        &(current + MEMCG_HEADROOM * ps).to_string(),
    )?;
    let lift_at = Instant::now() + Duration::from_secs(15);
    let cpid = child.pid;
    let keys = ["pgreuse"];
    p0.take(&keys)?;
    child.go(b'w')?;
    if !with_swap {
        // Nothing here allocates: the child's retries are counted globally.
        loop {
            poll.read()?;
            let ooms = poll
                .text()
                .lines()
                .find_map(|l| l.strip_prefix("oom "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            if ooms >= MEMCG_RETRIES || Instant::now() > lift_at {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        max_file
            .write_all(b"max")
            .map_err(|e| Error::io("write", cg.file("memory.max"), e))?;
    }
    child.done()?;
    p1.take(&keys)?;
    let w = Window::new(&p0, &p1)?;
    let child_map = pagemap_of(Some(cpid), heap.addr(), k)?;
    child.finish()?;
    let row = w.row(cpid)?;
    // Retries are do_wp_page entries that ended in no outcome (global: the
    // only other processes in the window are quiet).
    let d = w.stats();
    let retries = d
        .get(Counter::WpAttempts)
        .unwrap_or(0)
        .saturating_sub(d.get(Counter::WpFaults).unwrap_or(0));
    println!("# memory.max = memory.current + {MEMCG_HEADROOM} pages; child retries: {retries}");
    let copied = order
        .iter()
        .filter(|&&i| {
            let (p, c) = (parent_map[i as usize], child_map[i as usize]);
            swapped(c) || matches!((pfn(p), pfn(c)), (Some(x), Some(y)) if x != y)
        })
        .count() as u64;
    let oom = w.extra(0, "oom").max(0) as u64;
    let mut r = Report::default();
    r.eq(
        "pages the child copied (pagemap: new frame or swapped)",
        k,
        copied,
    );
    r.global(
        &w.stats(),
        &[
            (Counter::CowCopies, k),
            (Counter::WpFaults, k),
            (Counter::WpAttempts, k + retries),
            (Counter::WpReuses, 0),
        ],
        &[],
    );
    r.row(
        "child",
        &row,
        &[
            (Counter::CowCopies, k),
            (Counter::WpFaults, k),
            (Counter::WpReuses, 0),
        ],
    );
    r.eq(
        "retries (wp_attempts - wp_faults) = memory.events oom delta",
        oom,
        retries,
    );
    r.eq(
        "memory.events oom_kill delta",
        0,
        w.extra(0, "oom_kill").unsigned_abs(),
    );
    r.at_least(
        "memory.events max delta (charges that hit memory.max)",
        1,
        w.extra(0, "max").max(0) as u64,
    );
    if with_swap {
        r.within(
            "child's copies swapped out by the group's reclaim (pagemap)",
            1,
            k,
            count(&child_map, swapped),
        );
    } else {
        // memory.max was lifted once the child's row showed MEMCG_RETRIES
        // attempts without a copy; one of them may have been the attempt in
        // flight, which then succeeded.
        r.at_least("retries", MEMCG_RETRIES - 1, retries);
    }
    r.done()
}

// ---- 9: two threads, same pages ---------------------------------------------------------

/// CPUs online, from sysfs: musl's sysconf(_SC_NPROCESSORS_ONLN) counts
/// the caller's affinity mask, and this process is pinned to one CPU.
fn online_cpus() -> u64 {
    let list = read_trim("/sys/devices/system/cpu/online").unwrap_or_default();
    list.split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => r.parse::<u64>().map(|_| 1).unwrap_or(0),
        })
        .sum()
}

/// A child with two threads on two CPUs writes the same K shared pages at
/// once (same order, started by a barrier). Each page is copied once: the
/// thread that loses a race either sees the new PTE before entering
/// `do_wp_page` (no attempt) or enters it, copies, and finds the PTE
/// changed (`wp_page_copy` installs nothing): `cow_copies` = K exactly,
/// `wp_faults` = K and `wp_attempts` between K and 2K (how many races were
/// lost is timing).
fn two_threads(k: u64, pattern: Pattern) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    if online_cpus() < 2 {
        return skip("needs 2 CPUs");
    }
    let ps = page_size();
    let mut heap = Heap::new(k * ps, false)?;
    heap.touch_all(true);
    let parent_map = pagemap_of(None, heap.addr(), k)?;
    let order = page_order(pattern, k, k, SEED);
    let (addr, ps_) = (heap.addr() as usize, ps as usize);
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    let mut child = Child::spawn(
        || {
            let start = Arc::new(Barrier::new(3));
            let done = Arc::new(AtomicU32::new(0));
            for cpu in 0..2 {
                let (start, done, order) = (start.clone(), done.clone(), order.clone());
                std::thread::spawn(move || {
                    let pinned = workload::pin_to_cpu(cpu).is_ok();
                    workload::prefault_stack();
                    start.wait();
                    if pinned {
                        for &p in &order {
                            // SAFETY: page p < K of the live heap mapping.
                            unsafe {
                                std::ptr::write_volatile((addr + p as usize * ps_) as *mut u8, 9)
                            };
                        }
                    }
                    done.fetch_add(if pinned { 1 } else { 100 }, Ordering::SeqCst);
                    loop {
                        std::thread::park();
                    }
                });
            }
            Ok((start, done))
        },
        |(start, done), _| {
            start.wait();
            while done.load(Ordering::SeqCst) < 2 {
                std::thread::yield_now();
            }
            (done.load(Ordering::SeqCst) != 2) as u8
        },
    )?;
    p0.prefault();
    p1.prefault();
    workload::prefault_stack();
    child.ready()?;
    p0.take(&[])?;
    child.go(b'w')?;
    let status = child.done()?;
    p1.take(&[])?;
    let w = Window::new(&p0, &p1)?;
    let child_map = pagemap_of(Some(child.pid), heap.addr(), k)?;
    let cpid = child.pid;
    child.finish()?;
    let d = w.stats();
    let row = w.row(cpid)?;
    let mut r = Report::default();
    r.eq(
        "both threads pinned to their CPU and wrote (0 = yes)",
        0,
        status as u64,
    );
    r.global(
        &d,
        &[
            (Counter::CowCopies, k),
            (Counter::WpFaults, k),
            (Counter::WpReuses, 0),
        ],
        &[Counter::WpAttempts],
    );
    r.within(
        "global wp_attempts delta",
        k,
        2 * k,
        d.get(Counter::WpAttempts).unwrap_or(0),
    );
    r.row(
        "child",
        &row,
        &[
            (Counter::CowCopies, k),
            (Counter::WpFaults, k),
            (Counter::WpReuses, 0),
        ],
    );
    r.eq(
        "child's pages exclusive (pagemap)",
        k,
        count(&child_map, exclusive),
    );
    r.eq(
        "child's pages on new frames (pagemap)",
        k,
        pfn_changed(&parent_map, &child_map),
    );
    r.done()
}

// ---- 9b: vmf_anon_prepare returns RETRY --------------------------------------

/// K private file mappings of one page each, read (so each maps the page
/// cache's frame and has no `anon_vma` yet), then written once each while a
/// second thread keeps `mmap_lock` write-locked most of the time (mprotect
/// of a populated 16 MiB region, back and forth; the writes are 0.5 ms
/// apart). The first write fault of
/// a VMA runs under its per-VMA lock; `wp_page_copy` needs an `anon_vma`,
/// and `__vmf_anon_prepare` may only take `mmap_lock` with a trylock: when
/// that fails it returns `VM_FAULT_RETRY` and the fault is repeated under
/// `mmap_lock` (6.12 and 7.x alike). Each retry is one more `wp_attempts`
/// and nothing else; `cow_file` and `wp_faults` stay K. R = `wp_attempts -
/// wp_faults` (0 ≤ R ≤ K, one VMA retries at most once) has no other
/// witness; the case asserts R ≥ 1 so that the path is known to be taken.
fn anon_prepare_retry(k: u64, pattern: Pattern) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    if online_cpus() < 2 {
        return skip("needs 2 CPUs");
    }
    let ps = page_size();
    let file = memfd_of_pages(c"cowstat-anon-prepare", k, 0x3c)?;
    let fd = file.as_raw_fd();
    // One VMA per page: private file pages at the even pages of a PROT_NONE
    // reservation, so no two of them merge.
    let area = Mapping::new(
        2 * k * ps,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
        "the reservation",
    )?;
    for i in 0..k {
        let at = area.addr() + 2 * i * ps;
        // SAFETY: replaces one page of our own reservation (MAP_FIXED inside
        // `area`, which unmaps it whole on drop).
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                ps as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                fd,
                (i * ps) as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::last_os("mmap of a private file page"));
        }
    }
    area.read_units(k, 2 * ps);
    let vmas = maps_lines_naming("cowstat-anon-prepare")?;
    let busy = Mapping::anon(16 << 20, 0, "the mprotect region")?;
    busy.write_units(&(0..(16 << 20) / ps).collect::<Vec<_>>(), ps, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Barrier::new(2));
    let locker = {
        let (stop, started) = (stop.clone(), started.clone());
        let (addr, len) = (busy.addr, busy.len);
        std::thread::spawn(move || {
            let pinned = workload::pin_to_cpu(1).is_ok();
            started.wait();
            let mut rounds = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for prot in [libc::PROT_READ, libc::PROT_READ | libc::PROT_WRITE] {
                    // SAFETY: changes the protection of our own mapping,
                    // which no thread touches while this runs.
                    unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) };
                }
                rounds += 1;
            }
            (pinned, rounds)
        })
    };
    pin_to_current_cpu()?;
    let order: Vec<u64> = page_order(pattern, k, k, SEED)
        .into_iter()
        .map(|i| 2 * i)
        .collect();
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    p0.prefault();
    p1.prefault();
    workload::prefault_stack();
    started.wait();
    std::thread::sleep(Duration::from_millis(20));
    p0.take(&[])?;
    for &page in &order {
        // Spaced out, so each first write meets the lock at a random point
        // of the other thread's cycle (held nearly all of the time), not
        // all of them in one gap between two mprotect calls.
        area.write_units(&[page], ps, 0xc3);
        std::thread::sleep(Duration::from_micros(500));
    }
    p1.take(&[])?;
    stop.store(true, Ordering::Relaxed);
    let (pinned, rounds) = locker
        .join()
        .map_err(|_| Error::Child("the mprotect thread panicked".into()))?;
    let w = Window::new(&p0, &p1)?;
    let after = pagemap_of(None, area.addr(), 2 * k)?;
    let d = w.stats();
    let attempts = d.get(Counter::WpAttempts).unwrap_or(0);
    let faults = d.get(Counter::WpFaults).unwrap_or(0);
    println!(
        "# retries (wp_attempts - wp_faults): {}, mprotect rounds: {rounds}",
        attempts.saturating_sub(faults)
    );
    let mut r = Report::default();
    r.eq(
        "the locking thread pinned to CPU 1 (1 = yes)",
        1,
        pinned as u64,
    );
    r.eq("private file VMAs, one per page (/proc/self/maps)", k, vmas);
    r.global(
        &d,
        &[
            (Counter::CowFile, k),
            (Counter::WpFaults, k),
            (Counter::WpReuses, 0),
        ],
        &[Counter::WpAttempts],
    );
    r.within(
        "global wp_attempts delta (K + retries)",
        k + 1,
        2 * k,
        attempts,
    );
    r.row(
        "this process",
        &w.row(my_pid())?,
        &[
            (Counter::WpFaults, k),
            (Counter::CowCopies, 0),
            (Counter::WpReuses, 0),
        ],
    );
    let written: Vec<u64> = after.iter().step_by(2).copied().collect();
    r.eq(
        "written pages exclusive and anonymous (pagemap bits 56, 61)",
        k,
        count(&written, |e| exclusive(e) && e & PM_FILE == 0),
    );
    drop(file);
    r.done()
}

/// Lines of /proc/self/maps whose path contains `name`.
fn maps_lines_naming(name: &str) -> Result<u64> {
    let maps = fs::read_to_string("/proc/self/maps")
        .map_err(|e| Error::io("read", "/proc/self/maps", e))?;
    Ok(maps.lines().filter(|l| l.contains(name)).count() as u64)
}

// ---- 9c: a poisoned page shared since fork ------------------------------------

/// SIGBUS deliveries handled by [`remap_on_sigbus`] in this process.
static SIGBUS_SEEN: AtomicU32 = AtomicU32::new(0);
/// The page size, for the handler (set before it is installed).
static HANDLER_PAGE: AtomicU64 = AtomicU64::new(4096);

/// SIGBUS handler: maps a fresh anonymous page over the poisoned one and
/// returns, so the faulting write is repeated on that page (a first-touch
/// fault, not copy-on-write). Only async-signal-safe calls.
extern "C" fn remap_on_sigbus(_sig: i32, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let ps = HANDLER_PAGE.load(Ordering::Relaxed) as usize;
    // SAFETY: an SA_SIGINFO handler gets a valid siginfo from the kernel.
    let addr = unsafe { (*info).si_addr() } as usize & !(ps - 1);
    // SAFETY: replaces one page of the heap the case owns (MAP_FIXED inside
    // it); mmap is async-signal-safe.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            ps,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(97) };
    }
    SIGBUS_SEEN.fetch_add(1, Ordering::SeqCst);
}

/// Gives this thread an alternate signal stack of fresh, touched pages.
/// The mapping is never unmapped (leaked on purpose), so the kernel can
/// never write a signal frame into memory that was given back.
fn signal_stack() -> Result<()> {
    const SIZE: u64 = 64 << 10;
    let stack = Mapping::anon(SIZE, 0, "the signal stack")?;
    let ps = page_size();
    stack.write_units(&(0..SIZE / ps).collect::<Vec<_>>(), ps, 0);
    let ss = libc::stack_t {
        ss_sp: stack.addr as *mut libc::c_void,
        ss_flags: 0,
        ss_size: stack.len,
    };
    std::mem::forget(stack);
    // SAFETY: `ss` describes a mapping that stays mapped until the process
    // exits (forgotten above).
    if unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } != 0 {
        return Err(Error::last_os("sigaltstack"));
    }
    Ok(())
}

/// Sets the SIGBUS disposition: [`remap_on_sigbus`], or the default.
fn sigbus_remaps(on: bool) -> Result<()> {
    // SAFETY: sigaction is plain data; the handler is an extern "C" fn
    // with the SA_SIGINFO signature.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = if on {
            remap_on_sigbus as *const () as usize
        } else {
            libc::SIG_DFL
        };
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) != 0 {
            return Err(Error::last_os("sigaction(SIGBUS)"));
        }
    }
    Ok(())
}

/// K + P pages shared since fork, P of them then poisoned
/// (`madvise(MADV_HWPOISON)`, as a memory error would): `memory_failure`
/// unmaps a poisoned page from every process and leaves a hwpoison entry,
/// so the child's write to it raises SIGBUS from `do_swap_page` and never
/// reaches `do_wp_page`. cowstat counts nothing for it (no attempt); the K
/// healthy pages are K copies. (The other HWPOISON path, a machine check
/// while `wp_page_copy` copies the source page, needs real hardware: an
/// injected poison unmaps the page before any copy can read it. There the
/// fault ends without installing a page: `wp_attempts` +1, nothing else.)
/// Witnesses: meminfo `HardwareCorrupted` +P × 4 kB, P SIGBUS in the
/// child, pagemap. The P pages stay poisoned until the VM reboots.
fn hwpoison(k: u64, poisoned: u64, pattern: Pattern) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    if kv(&meminfo()?, "HardwareCorrupted").is_none() {
        return skip(
            "kernel without CONFIG_MEMORY_FAILURE (no HardwareCorrupted in /proc/meminfo)",
        );
    }
    pin_to_current_cpu()?;
    let ps = page_size();
    HANDLER_PAGE.store(ps, Ordering::Relaxed);
    let n = k + poisoned;
    let mut heap = Heap::new(n * ps, false)?;
    heap.touch_all(true);
    let bad: Vec<u64> = page_order(Pattern::Random, poisoned, n, SEED + 1);
    let order = page_order(pattern, n, n, SEED);
    let parent_map = pagemap_of(None, heap.addr(), n)?;
    let (addr, ps_) = (heap.addr() as usize, ps as usize);
    sigbus_remaps(true)?;
    let result = (|| {
        let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
        let mut child = Child::spawn(
            || {
                // Counts the child's own signals, and is written before the
                // window: the parent's handler writes this page after the
                // fork, so the child's first write to it would be a reuse.
                SIGBUS_SEEN.store(0, Ordering::SeqCst);
                // The handler's frames go on a stack of fresh pages: on the
                // normal stack they can reach a page the parent wrote after
                // the fork, whose first write here would be a reuse.
                signal_stack().map_err(|_| 96u8)
            },
            |_, _| {
                for &p in &order {
                    // SAFETY: page p < K + P of the heap, mapped in the child.
                    unsafe { std::ptr::write_volatile((addr + p as usize * ps_) as *mut u8, 0x77) };
                }
                SIGBUS_SEEN.load(Ordering::SeqCst) as u8
            },
        )?;
        child.ready()?;
        let corrupted = || Ok::<_, Error>(kv(&meminfo()?, "HardwareCorrupted").unwrap_or(0));
        let hc0 = corrupted()?;
        for &b in &bad {
            // The parent maps the page too: it gets a SIGBUS now, and its
            // handler maps a fresh page there.
            madvise(
                heap.addr() + b * ps,
                ps,
                libc::MADV_HWPOISON,
                "MADV_HWPOISON",
            )?;
        }
        let hc1 = corrupted()?;
        p0.prefault();
        p1.prefault();
        workload::prefault_stack();
        p0.take(&[])?;
        child.go(b'w')?;
        let child_sigbus = child.done()?;
        p1.take(&[])?;
        let w = Window::new(&p0, &p1)?;
        let child_map = pagemap_of(Some(child.pid), heap.addr(), n)?;
        let cpid = child.pid;
        let row = w.row(cpid)?;
        let status = child.finish()?;
        let mut r = Report::default();
        r.eq("child exit status", 0, status as u64);
        r.eq(
            "meminfo HardwareCorrupted delta, kB (P pages)",
            poisoned * ps / 1024,
            hc1.saturating_sub(hc0),
        );
        r.eq(
            "SIGBUS in the child (its writes to the P pages)",
            poisoned,
            child_sigbus as u64,
        );
        r.global(
            &w.stats(),
            &[
                (Counter::CowCopies, k),
                (Counter::WpFaults, k),
                (Counter::WpReuses, 0),
                (Counter::CowZero, 0),
            ],
            &[],
        );
        r.row(
            "child",
            &row,
            &[
                (Counter::CowCopies, k),
                (Counter::WpFaults, k),
                (Counter::WpReuses, 0),
                (Counter::CowZero, 0),
            ],
        );
        r.eq(
            "child's pages on new frames (pagemap: K copies + P fresh pages)",
            n,
            pfn_changed(&parent_map, &child_map),
        );
        r.done()
    })();
    sigbus_remaps(false)?;
    drop(heap);
    result
}

// ---- 10: pages pinned at fork ---------------------------------------------------------

/// K pages of the parent pinned (FOLL_PIN) while it forks, plus 7 pages not
/// pinned. The pin: an O_DIRECT write of the K pages and one more to a zram
/// device; the extra page is registered with userfaultfd (missing mode), so
/// `pin_user_pages_fast` pins the K pages and then blocks in the fault on
/// the last one until we resolve it (this kernel has no io_uring; K + 1
/// pages fit in one bio, so all K are pinned at once).
///
/// `dup_mmap` copies the pinned pages eagerly (`copy_present_page`) and
/// maps the child's copies writable: the child's writes to them take no
/// fault at all, not even a reuse. The 7 unpinned pages are COW-shared as
/// usual (7 copies). Nothing of the eager copy is counted: it is not a
/// copy-on-write fault.
fn pinned_at_fork(k: u64) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    let uffd = match Uffd::open()? {
        Ok(u) => u,
        Err(reason) => return skip(reason),
    };
    let zram = match Zram::add("16M")? {
        Ok(z) => z,
        Err(reason) => return skip(reason),
    };
    println!("# pin: O_DIRECT write held by a userfaultfd-blocked page (kernel without io_uring)");
    pin_to_current_cpu()?;
    let ps = page_size();
    let l = 7;
    let buf = Mapping::anon((k + 1) * ps, 0, "the pinned buffer")?;
    madvise(
        buf.addr(),
        (k + 1) * ps,
        libc::MADV_NOHUGEPAGE,
        "MADV_NOHUGEPAGE",
    )?;
    let mut control = Heap::new(l * ps, false)?;
    control.touch_all(true);
    let all: Vec<u64> = (0..k).collect();
    let ctl_pages: Vec<u64> = (0..l).collect();
    buf.write_units(&all, ps, 1);
    uffd.register(buf.addr() + k * ps, ps, UFFDIO_REGISTER_MODE_MISSING)?;
    let dev = zram.open_direct()?;
    let io_done = Arc::new(AtomicBool::new(false));
    let (addr, len) = (buf.addr() as usize, ((k + 1) * ps) as usize);
    let io = {
        let io_done = io_done.clone();
        let dev = dev
            .try_clone()
            .map_err(|e| Error::io("dup", &zram.dev, e))?;
        std::thread::spawn(move || -> io::Result<usize> {
            // SAFETY: the buffer lives until this thread is joined.
            let n = unsafe { libc::pwrite(dev.as_raw_fd(), addr as *const libc::c_void, len, 0) };
            io_done.store(true, Ordering::SeqCst);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n as usize)
        })
    };
    let mut r = Report::default();
    let mut fault = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while fault.is_none() && Instant::now() < deadline {
        if uffd.readable(Duration::from_secs(1)) {
            fault = uffd_read_msg(uffd.fd()).map_err(|source| Error::Syscall {
                call: "read from the userfaultfd".into(),
                source,
            })?;
        }
    }
    r.eq(
        "O_DIRECT write blocked on the userfaultfd page (1 = yes)",
        1,
        fault.is_some_and(|(e, _, a)| {
            e == UFFD_EVENT_PAGEFAULT && a & !(ps - 1) == buf.addr() + k * ps
        }) as u64,
    );
    let parent_buf = pagemap_of(None, buf.addr(), k)?;
    let parent_ctl = pagemap_of(None, control.addr(), l)?;
    let [mut f0, mut f1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &[]));
    f0.take(&[])?;
    let pinned_during_fork = !io_done.load(Ordering::SeqCst);
    let mut child = Child::spawn(
        || Ok(()),
        |_, _| {
            buf.write_units(&all, ps, 2);
            control.write_pages(&ctl_pages, 2);
            0
        },
    )?;
    let pinned_after_fork = !io_done.load(Ordering::SeqCst);
    p0.prefault();
    p1.prefault();
    f1.prefault();
    workload::prefault_stack();
    child.ready()?;
    let child_buf = pagemap_of(Some(child.pid), buf.addr(), k)?;
    let child_ctl = pagemap_of(Some(child.pid), control.addr(), l)?;
    let parent_buf_after = pagemap_of(None, buf.addr(), k)?;
    p0.take(&["pgreuse"])?;
    child.go(b'w')?;
    child.done()?;
    p1.take(&["pgreuse"])?;
    let w = Window::new(&p0, &p1)?;
    let cpid = child.pid;
    child.finish()?;
    // Let the write finish.
    uffd.zeropage(buf.addr() + k * ps, ps)?;
    let written = io
        .join()
        .map_err(|_| Error::Child("the O_DIRECT thread panicked".into()))?
        .map_err(|e| Error::io("O_DIRECT write to", &zram.dev, e))?;
    f1.take(&[])?;
    let whole = Window::new(&f0, &f1)?;
    r.eq(
        "pin held from before the fork until after it (1 = yes)",
        1,
        (pinned_during_fork && pinned_after_fork) as u64,
    );
    r.eq(
        "bytes the O_DIRECT write wrote",
        (k + 1) * ps,
        written as u64,
    );
    r.eq(
        "pagemap shows page frames (1 = yes)",
        1,
        pfns_visible(&parent_buf),
    );
    r.eq(
        "child's pinned pages on their own frames at fork (pagemap)",
        k,
        pfn_changed(&parent_buf, &child_buf),
    );
    r.eq(
        "child's pinned pages exclusive at fork",
        k,
        count(&child_buf, exclusive),
    );
    r.eq(
        "parent's pinned pages still exclusive after the fork",
        k,
        count(&parent_buf_after, exclusive),
    );
    r.eq(
        "child's unpinned pages shared at fork (same frame)",
        l,
        l - pfn_changed(&parent_ctl, &child_ctl),
    );
    println!("# the child's writes:");
    r.global(
        &w.stats(),
        &[(Counter::WpFaults, l), (Counter::CowCopies, l)],
        &[],
    );
    r.row(
        "child",
        &w.row(cpid)?,
        &[
            (Counter::WpFaults, l),
            (Counter::CowCopies, l),
            (Counter::WpReuses, 0),
        ],
    );
    r.eq("vmstat pgreuse delta", 0, w.vm("pgreuse"));
    println!("# the whole case (fork, writes, unpin):");
    let d = whole.stats();
    println!(
        "# whole-case delta: mm_copies +{} forks +{} cow_file +{} cow_unshare +{}",
        d.get(Counter::MmCopies).unwrap_or(0),
        d[Counter::Forks],
        d.get(Counter::CowFile).unwrap_or(0),
        d[Counter::CowUnshare]
    );
    r.eq("whole case: forks", 1, d[Counter::Forks]);
    r.eq(
        "whole case: mm_copies",
        1,
        d.get(Counter::MmCopies).unwrap_or(u64::MAX),
    );
    r.eq(
        "whole case: cow_file (the eager copy is no file COW)",
        0,
        d.get(Counter::CowFile).unwrap_or(u64::MAX),
    );
    r.eq("whole case: cow_unshare", 0, d[Counter::CowUnshare]);
    r.done()
}

// ---- 11: fork that fails after dup_mmap -----------------------------------------------

/// A child alone in a pids cgroup with pids.max = 1 forks: `copy_process`
/// copies the address space (`dup_mmap` succeeds) and only then
/// `cgroup_can_fork` refuses (EAGAIN): `mm_copies` +1, `forks` +0,
/// pids.events `max` +1.
///
/// The failed child's mm is torn down at once, but `dup_mmap` had already
/// write-protected the forking process's pages and cleared their exclusive
/// bit: its next writes (here: the stack page of the status message) are
/// reuses (`wp_faults`, `wp_reuses`), never copies.
fn fork_fails_after_dup_mmap() -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    let cg = match Cgroup::new("pids", &["pids"])? {
        Ok(c) => c,
        Err(reason) => return skip(reason),
    };
    let mut procs_file = open_write(cg.file("cgroup.procs"))?;
    let events = [cg.file("pids.events")];
    let [mut p0, mut p1] = [0, 1].map(|_| Probe::new(&cs, &events));
    let mut child = Child::spawn(
        || procs_file.write_all(b"0").map_err(|_| 1u8),
        |_, _| {
            // SAFETY: the grandchild, if any, only calls _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                exit_child(0);
            }
            if pid > 0 {
                let _ = workload::wait_child(pid as u32);
                return 1;
            }
            if io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
                0
            } else {
                2
            }
        },
    )?;
    p0.prefault();
    p1.prefault();
    workload::prefault_stack();
    child.ready()?;
    write_file(cg.file("pids.max"), "1")?;
    p0.take(&[])?;
    child.go(b'f')?;
    let status = child.done()?;
    p1.take(&[])?;
    let w = Window::new(&p0, &p1)?;
    let cpid = child.pid;
    child.finish()?;
    let d = w.stats();
    let row = w.row(cpid)?;
    println!(
        "# the forking child's writes after the failed fork: wp_faults +{}, wp_reuses +{}",
        row.wp_faults, row.wp_reuses
    );
    let mut r = Report::default();
    r.eq(
        "fork failed with EAGAIN (0 = yes, 1 = it succeeded)",
        0,
        status as u64,
    );
    r.eq("pids.events max delta", 1, w.extra(0, "max").max(0) as u64);
    r.global(
        &d,
        &[
            (Counter::MmCopies, 1),
            (Counter::Forks, 0),
            (Counter::CowCopies, 0),
        ],
        &[Counter::ForkNs, Counter::WpFaults, Counter::WpReuses],
    );
    r.at_least(
        "global fork_ns delta (the dup_mmap that succeeded)",
        1,
        d[Counter::ForkNs],
    );
    r.eq(
        "global wp_faults delta = wp_reuses delta",
        d[Counter::WpReuses],
        d[Counter::WpFaults],
    );
    r.row("forking child", &row, &[(Counter::CowCopies, 0)]);
    r.done()
}

// ---- 12: GUP unshare ----------------------------------------------------------------

/// A child pins (read-only FOLL_PIN) K pages it shares with its parent, by
/// O_DIRECT writes from them to a zram device: GUP must not pin a page
/// that is not exclusive, so each page is unshared first
/// (FAULT_FLAG_UNSHARE → `do_wp_page` → `wp_page_copy`): `cow_unshare` = K,
/// no `wp_faults` (unshare faults are not write faults), no `cow_copies`.
/// The copies are exclusive but mapped read-only, so the child's writes to
/// them afterwards are reuses: `wp_reuses` = K = vmstat `pgreuse`.
fn gup_unshare(k: u64, pattern: Pattern, one_write: bool) -> Result<Verdict> {
    let cs = Cowstat::locate();
    cs.require()?;
    let zram = match Zram::add("16M")? {
        Ok(z) => z,
        Err(reason) => return skip(reason),
    };
    pin_to_current_cpu()?;
    let ps = page_size();
    let mut heap = Heap::new(k * ps, false)?;
    heap.touch_all(true);
    let parent_map = pagemap_of(None, heap.addr(), k)?;
    let order = page_order(pattern, k, k, SEED);
    let dev = zram.open_direct()?;
    let (addr, fd) = (heap.addr() as usize, dev.as_raw_fd());
    let [mut p0, mut p1, mut q0, mut q1] = [0, 1, 2, 3].map(|_| Probe::new(&cs, &[]));
    let mut child = Child::spawn(
        || Ok(()),
        |_, step| {
            if step == b'w' {
                heap.write_pages(&order, 0x17);
                return 0;
            }
            let ok = if one_write {
                let len = (k * ps) as usize;
                // SAFETY: reads the K-page heap, which outlives the call.
                unsafe { libc::pwrite(fd, addr as *const libc::c_void, len, 0) == len as isize }
            } else {
                order.iter().all(|&p| {
                    let off = (p * ps) as usize;
                    // SAFETY: reads page p of the heap.
                    unsafe {
                        libc::pwrite(
                            fd,
                            (addr + off) as *const libc::c_void,
                            ps as usize,
                            off as i64,
                        ) == ps as isize
                    }
                })
            };
            (!ok) as u8
        },
    )?;
    p0.prefault();
    p1.prefault();
    q0.prefault();
    q1.prefault();
    workload::prefault_stack();
    child.ready()?;
    let keys = ["pgreuse"];
    p0.take(&keys)?;
    child.go(b'd')?;
    let status = child.done()?;
    p1.take(&keys)?;
    // Reading the child's pagemap allocates: a new window starts after it.
    let child_map = pagemap_of(Some(child.pid), heap.addr(), k)?;
    workload::prefault_stack();
    q0.take(&keys)?;
    child.go(b'w')?;
    child.done()?;
    q1.take(&keys)?;
    let cpid = child.pid;
    let unshare = Window::new(&p0, &p1)?;
    let write = Window::new(&q0, &q1)?;
    child.finish()?;
    let mut r = Report::default();
    r.eq("O_DIRECT writes succeeded (0 = yes)", 0, status as u64);
    println!("# the O_DIRECT writes (read-only pins):");
    r.global(
        &unshare.stats(),
        &[
            (Counter::CowUnshare, k),
            (Counter::WpFaults, 0),
            (Counter::CowCopies, 0),
            (Counter::UnshareUntracked, 0),
        ],
        &[],
    );
    r.row(
        "child",
        &unshare.row(cpid)?,
        &[(Counter::WpFaults, 0), (Counter::CowCopies, 0)],
    );
    r.eq("vmstat pgreuse delta", 0, unshare.vm("pgreuse"));
    r.eq(
        "pagemap shows page frames (1 = yes)",
        1,
        pfns_visible(&parent_map),
    );
    r.eq(
        "child's pages on new frames after the pins (pagemap)",
        k,
        pfn_changed(&parent_map, &child_map),
    );
    r.eq(
        "child's pages exclusive after the pins",
        k,
        count(&child_map, exclusive),
    );
    println!("# the child's writes afterwards:");
    r.global(
        &write.stats(),
        &[
            (Counter::WpReuses, k),
            (Counter::WpFaults, k),
            (Counter::CowCopies, 0),
        ],
        &[],
    );
    r.row(
        "child",
        &write.row(cpid)?,
        &[
            (Counter::WpReuses, k),
            (Counter::WpFaults, k),
            (Counter::CowCopies, 0),
        ],
    );
    r.eq("vmstat pgreuse delta", k, write.vm("pgreuse"));
    r.done()
}
