// SPDX-License-Identifier: GPL-2.0
//! `cow-demo fork`: the core experiment — fork with a touched heap, write K pages, compare COW counters with expectations.

use std::fs::File;
use std::panic::AssertUnwindSafe;

use crate::cli::{ForkArgs, OnOff, Writer};
use crate::commands::{print_out, Outcome};
use crate::counter::Counter;
use crate::error::{Error, Result};
use crate::procfs::cowstat::{Counts, Cowstat, ProcsReader};
use crate::procfs::meminfo;
use crate::procfs::pagemap::{self, PagemapCounts};
use crate::procfs::smaps::{self, SmapsRange};
use crate::report::{render_fork, to_json, Check, Expected, ForkReport, ProcReport, ThpReport};
use crate::units::format_bytes;
use crate::workload::{
    distinct_regions, exit_child, fork, full_regions, hpage_pmd_size, page_order, page_size,
    pin_to_current_cpu, pipe, prefault_stack, recv, send, thp_mode, wait_child, Forked, Heap,
};

/// Who writes, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The child writes K pages; the parent idles.
    Child,
    /// The parent writes K pages while the child idles.
    Parent,
    /// The child writes, then (child still alive) the parent writes the same pages.
    Both,
    /// The child exits without writing, then the parent writes.
    AfterExit,
}

impl Mode {
    /// From the flags.
    pub fn from_args(writer: Writer, write_after_exit: bool) -> Mode {
        match (write_after_exit, writer) {
            (true, _) => Mode::AfterExit,
            (false, Writer::Child) => Mode::Child,
            (false, Writer::Parent) => Mode::Parent,
            (false, Writer::Both) => Mode::Both,
        }
    }

    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Child => "child",
            Mode::Parent => "parent",
            Mode::Both => "both",
            Mode::AfterExit => "parent-after-exit",
        }
    }

    fn child_writes(self) -> bool {
        matches!(self, Mode::Child | Mode::Both)
    }

    fn parent_writes(self) -> bool {
        matches!(self, Mode::Parent | Mode::Both | Mode::AfterExit)
    }
}

/// What the kernel must do for the written pages, as counted by the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// K, pages written.
    pub k: u64,
    /// Written pages that lie in PMD-mapped (huge) regions; 0 without THP.
    pub k_huge: u64,
    /// Distinct huge regions written.
    pub regions: u64,
    /// Written pages in huge regions that the child wrote completely (those the
    /// parent later reuses as a whole PMD in `both` mode).
    pub full_region_pages: u64,
    /// Number of those completely written huge regions.
    pub full_regions: u64,
    /// THP was used for some but not all regions: huge-page expectations unknown.
    pub thp_partial: bool,
}

/// Expected (parent, child) deltas over the write window.
///
/// 4 KiB pages: the first write to a page shared after fork copies it; a write to a
/// page only this process maps (the other one copied it, or exited) reuses it.
/// Huge PMDs (6.12 semantics, the same on newer kernels for these cases): the first
/// write into a shared huge PMD counts one `thp_wp_faults`, splits the PMD and falls
/// back to a 4 KiB COW; a write into a huge PMD no longer shared reuses the whole PMD
/// (no 4 KiB fault after it); subpages of a split huge page that is still mapped by
/// the other process are copied, not reused.
pub fn expected(mode: Mode, s: Shape) -> (Expected, Expected) {
    let zero = Counts::default();
    let copy_all = Counts {
        wp_faults: s.k,
        cow_copies: s.k,
        thp_wp_faults: s.regions,
        ..zero
    };
    let small = s.k - s.k_huge;
    let (mut p, mut c) = match mode {
        Mode::Child => (Expected::exact(zero), Expected::exact(copy_all)),
        Mode::Parent => (Expected::exact(copy_all), Expected::exact(zero)),
        Mode::Both => (
            Expected::exact(Counts {
                wp_faults: s.k - s.full_region_pages,
                cow_copies: s.k_huge - s.full_region_pages,
                wp_reuses: small,
                thp_wp_faults: s.regions,
                cow_zero: 0,
            }),
            Expected::exact(copy_all),
        ),
        Mode::AfterExit => (
            Expected::exact(Counts {
                wp_faults: small,
                wp_reuses: small,
                thp_wp_faults: s.regions,
                ..zero
            }),
            Expected::exact(zero),
        ),
    };
    if s.thp_partial {
        for e in [&mut p, &mut c] {
            if e.wp_faults != Some(0) {
                e.thp_wp_faults = None;
            }
        }
        if matches!(mode, Mode::Both | Mode::AfterExit) {
            p.wp_faults = None;
            p.cow_copies = None;
            p.wp_reuses = None;
            p.thp_wp_faults = None;
        }
    }
    (p, c)
}

/// Minor page faults of the calling process so far (getrusage ru_minflt).
///
/// Every write fault (copy or reuse, 4 KiB or huge PMD) is one minor fault, so the
/// delta over the write window is an independent count that works without the module.
pub fn minor_faults() -> u64 {
    // SAFETY: getrusage writes one struct rusage into the zeroed value we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return 0;
        }
        ru.ru_minflt as u64
    }
}

/// Expected minor faults (parent, child) over the write window: one per write fault
/// (`wp_faults`), plus one per huge PMD reused whole (its fault never reaches the
/// 4 KiB path). `None` where THP was only partly used.
pub fn expected_faults(mode: Mode, s: Shape) -> (Option<u64>, Option<u64>) {
    let (p, c) = expected(mode, s);
    let reused = match mode {
        Mode::Both => s.full_regions,
        Mode::AfterExit => s.regions,
        _ => 0,
    };
    let f = |e: &Expected, extra: u64| e.wp_faults.map(|w| w + extra);
    match mode {
        Mode::Child => (Some(0), f(&c, 0)),
        Mode::Parent => (f(&p, 0), Some(0)),
        Mode::Both | Mode::AfterExit => (f(&p, reused), f(&c, 0)),
    }
}

/// What the child reports to the parent over the pipe (fixed binary layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildRecord {
    /// ns for the first (faulting) write of the K pages.
    pub write_ns: u64,
    /// ns for rewriting them.
    pub rewrite_ns: u64,
    /// Own heap smaps after fork, before writing.
    pub smaps_before: Option<SmapsRange>,
    /// Own heap smaps after writing.
    pub smaps_after: Option<SmapsRange>,
    /// Own heap pagemap counts before writing.
    pub pagemap_before: Option<PagemapCounts>,
    /// Own heap pagemap counts after writing.
    pub pagemap_after: Option<PagemapCounts>,
    /// Minor page faults (getrusage) during the writes.
    pub minor_faults: u64,
}

const RECORD_WORDS: usize = 22;
/// Size of an encoded [`ChildRecord`] in bytes.
pub const RECORD_BYTES: usize = RECORD_WORDS * 8;

impl ChildRecord {
    /// Encodes as 22 little-endian u64 words (flags, times, 2 × 6 smaps, 2 × 3 pagemap, faults).
    pub fn encode(&self) -> [u8; RECORD_BYTES] {
        let mut w = [0u64; RECORD_WORDS];
        let s = |o: &Option<SmapsRange>| {
            o.map_or([0; 6], |s| {
                [
                    s.vmas,
                    s.rss_kb,
                    s.shared_dirty_kb,
                    s.private_dirty_kb,
                    s.anonymous_kb,
                    s.anon_huge_kb,
                ]
            })
        };
        let p = |o: &Option<PagemapCounts>| o.map_or([0; 3], |p| [p.pages, p.present, p.exclusive]);
        w[0] = self.smaps_before.is_some() as u64
            | (self.smaps_after.is_some() as u64) << 1
            | (self.pagemap_before.is_some() as u64) << 2
            | (self.pagemap_after.is_some() as u64) << 3;
        w[1] = self.write_ns;
        w[2] = self.rewrite_ns;
        w[3..9].copy_from_slice(&s(&self.smaps_before));
        w[9..15].copy_from_slice(&s(&self.smaps_after));
        w[15..18].copy_from_slice(&p(&self.pagemap_before));
        w[18..21].copy_from_slice(&p(&self.pagemap_after));
        w[21] = self.minor_faults;
        let mut b = [0u8; RECORD_BYTES];
        for (i, x) in w.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Decodes [`ChildRecord::encode`]'s output.
    pub fn decode(b: &[u8; RECORD_BYTES]) -> Self {
        let mut w = [0u64; RECORD_WORDS];
        for (i, x) in w.iter_mut().enumerate() {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i * 8..i * 8 + 8]);
            *x = u64::from_le_bytes(a);
        }
        let s = |on: bool, v: &[u64]| {
            on.then(|| SmapsRange {
                vmas: v[0],
                rss_kb: v[1],
                shared_dirty_kb: v[2],
                private_dirty_kb: v[3],
                anonymous_kb: v[4],
                anon_huge_kb: v[5],
            })
        };
        let p = |on: bool, v: &[u64]| {
            on.then(|| PagemapCounts {
                pages: v[0],
                present: v[1],
                exclusive: v[2],
            })
        };
        ChildRecord {
            write_ns: w[1],
            rewrite_ns: w[2],
            smaps_before: s(w[0] & 1 != 0, &w[3..9]),
            smaps_after: s(w[0] & 2 != 0, &w[9..15]),
            pagemap_before: p(w[0] & 4 != 0, &w[15..18]),
            pagemap_after: p(w[0] & 8 != 0, &w[18..21]),
            minor_faults: w[21],
        }
    }
}

// Handshake bytes.
const READY: u8 = b'R';
const WRITE: u8 = b'W';
const DONE: u8 = b'D';
const MEASURE: u8 = b'M';
const EXIT: u8 = b'X';
const FIRST_WRITE: u8 = 0xa5;
const REWRITE: u8 = 0x5a;

/// The child's whole life: never returns.
fn child_main(heap: &Heap, order: &[u64], mut rx: File, mut tx: File) -> ! {
    // COW-copy the stack below this small frame now, so that child_loop's frame and
    // everything it calls inside the write window sit on already-private pages.
    prefault_stack();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        child_loop(heap, order, &mut rx, &mut tx)
    }));
    exit_child(match r {
        Ok(Ok(())) => 0,
        _ => 3,
    })
}

#[inline(never)]
fn child_loop(heap: &Heap, order: &[u64], rx: &mut File, tx: &mut File) -> Result<()> {
    let mut rec = ChildRecord {
        smaps_before: smaps::read_range(None, heap.addr(), heap.end()).ok(),
        pagemap_before: pagemap::read_range(None, heap.addr(), heap.end(), heap.page_size()).ok(),
        ..Default::default()
    };
    send(tx, &[READY])?;
    let mut wrote = false;
    loop {
        let mut cmd = [0u8; 1];
        if recv(rx, &mut cmd).is_err() {
            return Ok(());
        }
        match cmd[0] {
            WRITE => {
                let f0 = minor_faults();
                rec.write_ns = heap.write_pages(order, FIRST_WRITE);
                rec.rewrite_ns = heap.write_pages(order, REWRITE);
                rec.minor_faults = minor_faults() - f0;
                wrote = true;
                let mut m = [0u8; 1];
                m[0] = DONE;
                send(tx, &m)?;
            }
            MEASURE => {
                if wrote {
                    rec.smaps_after = smaps::read_range(None, heap.addr(), heap.end()).ok();
                    rec.pagemap_after =
                        pagemap::read_range(None, heap.addr(), heap.end(), heap.page_size()).ok();
                }
                send(tx, &rec.encode())?;
            }
            _ => return Ok(()),
        }
    }
}

/// What the parent measured inside the write window.
struct WindowOut {
    t0: Option<(Counts, Counts)>,
    t1: Option<(Counts, Counts)>,
    pf0: u64,
    pf1: u64,
    parent_times: Option<(u64, u64)>,
    child_status: Option<i32>,
}

/// The measurement window of the parent: read both cowstat rows (t0), let the
/// writer(s) write, read them again (t1). Nothing in here allocates or writes to
/// memory that is still shared with the child, except the heap pages under test.
#[inline(never)]
fn window(
    mode: Mode,
    reader: &mut Option<ProcsReader>,
    heap: &Heap,
    order: &[u64],
    (me, pid): (u32, u32),
    tx: &mut File,
    rx: &mut File,
) -> Result<WindowOut> {
    let t0 = match reader.as_mut() {
        Some(r) => Some(r.rows(me, pid)?),
        None => None,
    };
    let pf0 = minor_faults();
    let mut parent_times = None;
    let mut child_status = None;
    if mode.child_writes() {
        send(tx, &[WRITE])?;
        let mut m = [0u8; 1];
        recv(rx, &mut m)?;
        if m[0] != DONE {
            return Err(Error::Child(format!(
                "unexpected handshake byte {:#x}",
                m[0]
            )));
        }
    }
    if mode == Mode::AfterExit {
        send(tx, &[EXIT])?;
        child_status = Some(wait_child(pid)?);
    }
    if mode.parent_writes() {
        let w = heap.write_pages(order, FIRST_WRITE);
        let r = heap.write_pages(order, REWRITE);
        parent_times = Some((w, r));
    }
    let pf1 = minor_faults();
    let t1 = match reader.as_mut() {
        Some(r) => Some(r.rows(me, pid)?),
        None => None,
    };
    Ok(WindowOut {
        t0,
        t1,
        pf0,
        pf1,
        parent_times,
        child_status,
    })
}

/// Kills and reaps the child if the parent bails out early.
struct ChildGuard {
    pid: u32,
    reaped: bool,
}

impl ChildGuard {
    fn wait(&mut self) -> Result<()> {
        let st = wait_child(self.pid)?;
        self.reaped = true;
        if st != 0 {
            return Err(Error::Child(format!(
                "pid {} exited with status {st} (a measurement in the child failed)",
                self.pid
            )));
        }
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: kill/waitpid on our own child pid; no memory is involved.
            unsafe {
                libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
            }
            let _ = wait_child(self.pid);
        }
    }
}

fn recv_record(rx: &mut File) -> Result<ChildRecord> {
    let mut b = [0u8; RECORD_BYTES];
    recv(rx, &mut b)?;
    Ok(ChildRecord::decode(&b))
}

/// Number of pages to write for the flags, validated against the heap.
pub fn pages_to_write(a: &ForkArgs, heap_pages: u64) -> Result<u64> {
    match (a.pages, a.write) {
        (Some(n), _) => {
            if n == 0 || n > heap_pages {
                return Err(Error::InvalidValue {
                    flag: "--pages",
                    value: n.to_string(),
                    expected: format!(
                        "expected 1 to {heap_pages} (the heap has {heap_pages} pages; \
                         raise --heap for more)"
                    ),
                });
            }
            Ok(n)
        }
        (None, f) => {
            let f = f.unwrap_or(0.25);
            Ok(((heap_pages as f64 * f).round() as u64).clamp(1, heap_pages))
        }
    }
}

fn check(checks: &mut Vec<Check>, name: &str, expected: u64, observed: u64) {
    checks.push(Check {
        name: name.to_string(),
        expected,
        observed,
        ok: expected == observed,
    });
}

/// Runs the experiment and returns the report (no printing).
pub fn experiment(a: &ForkArgs) -> Result<ForkReport> {
    let ps = page_size();
    let heap_bytes = a.heap.div_ceil(ps) * ps;
    if heap_bytes == 0 {
        return Err(Error::InvalidValue {
            flag: "--heap",
            value: a.heap.to_string(),
            expected: "expected a size of at least one page, like 4K or 64M".into(),
        });
    }
    let heap_pages = heap_bytes / ps;
    let k = pages_to_write(a, heap_pages)?;
    let avail = meminfo::mem_available()?;
    if heap_bytes > avail {
        return Err(Error::HeapTooLarge {
            heap: format_bytes(heap_bytes),
            available: format_bytes(avail),
        });
    }
    let mode = Mode::from_args(a.writer, a.write_after_exit);
    let cs = Cowstat::locate();
    let loaded = cs.is_loaded();
    let mut notes = Vec::new();
    if !loaded {
        notes.push(
            "cowstat module not loaded: showing smaps/pagemap figures only \
             (load it with insmod cowstat.ko)"
                .to_string(),
        );
    }

    // Pin before touching memory: see pin_to_current_cpu for the LRU-batch reason.
    let cpu = pin_to_current_cpu()?;
    let thp_req = a.thp == OnOff::On;
    let mut heap = Heap::new(heap_bytes, thp_req)?;
    heap.touch_all(false);
    let order = page_order(a.pattern, k, heap_pages, a.seed);

    let smaps_before_fork = smaps::read_range(None, heap.addr(), heap.end());
    let smaps_before_fork = match smaps_before_fork {
        Ok(s) => Some(s),
        Err(e) => {
            notes.push(format!(
                "smaps unavailable ({e}): smaps cross-checks skipped"
            ));
            None
        }
    };
    let pagemap_note = match pagemap::read_range(None, heap.addr(), heap.end(), ps) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "pagemap unavailable ({e}): exclusive-page cross-check skipped"
        )),
    };
    notes.extend(pagemap_note.clone());

    let pmd = hpage_pmd_size();
    let ppr = (pmd / ps).max(1);
    let huge_regions = if thp_req { heap_pages / ppr } else { 0 };
    let anon_huge = smaps_before_fork.map_or(0, |s| s.anon_huge_kb);
    let used = if !thp_req {
        "off"
    } else if anon_huge == 0 {
        "unavailable"
    } else if anon_huge >= huge_regions * pmd / 1024 {
        "yes"
    } else {
        "partial"
    };
    let mut thp = ThpReport {
        requested: thp_req,
        system_mode: thp_mode(),
        madvise_ok: heap.advice_ok,
        pmd_size: pmd,
        huge_regions,
        anon_huge_kb_before: anon_huge,
        used: used.to_string(),
        regions_touched: 0,
    };
    match used {
        "unavailable" => notes.push(format!(
            "THP requested but the heap has AnonHugePages 0 kB (system THP mode: {}): \
             huge pages were not used, expectations are for {} pages",
            thp.system_mode.as_deref().unwrap_or("not compiled in"),
            format_bytes(ps)
        )),
        "partial" => notes.push(format!(
            "THP only partly used (AnonHugePages {anon_huge} kB of {} kB): \
             huge-page expectations not checked",
            huge_regions * pmd / 1024
        )),
        _ => {}
    }
    let thp_any = matches!(used, "yes" | "partial");
    let mut shape = Shape {
        k,
        thp_partial: used == "partial",
        ..Default::default()
    };
    if thp_any {
        thp.regions_touched = distinct_regions(&order, ppr, huge_regions);
        shape.regions = thp.regions_touched;
    }
    if used == "yes" {
        shape.k_huge = order.iter().filter(|&&p| p < huge_regions * ppr).count() as u64;
        shape.full_regions = full_regions(&order, ppr, huge_regions);
        shape.full_region_pages = shape.full_regions * ppr;
    }
    let (exp_parent, exp_child) = expected(mode, shape);

    let stats_before = if loaded { cs.stats().ok() } else { None };
    let mut reader = loaded.then(|| ProcsReader::new(&cs));
    if k >= 65_536 {
        eprintln!("cow-demo: writing {k} pages after the fork, this takes a few seconds...");
    }

    let (p2c_rx, mut p2c_tx) = pipe()?;
    let (mut c2p_rx, c2p_tx) = pipe()?;
    let me = std::process::id();
    let (side, fork_ns) = fork()?;
    let pid = match side {
        Forked::Child => {
            drop(p2c_tx);
            drop(c2p_rx);
            child_main(&heap, &order, p2c_rx, c2p_tx)
        }
        Forked::Parent(pid) => pid,
    };
    drop(p2c_rx);
    drop(c2p_tx);
    let mut guard = ChildGuard { pid, reaped: false };

    // Everything that allocates or dirties fresh stack/buffer pages happens before
    // the window opens (t0) or after it closes (t1).
    prefault_stack();
    if let Some(r) = reader.as_mut() {
        r.prefault();
    }
    let mut parent = ProcReport {
        pid: me,
        wrote: mode.parent_writes(),
        expected: exp_parent,
        smaps_before_fork,
        smaps_before_write: smaps::read_range(None, heap.addr(), heap.end()).ok(),
        pagemap_before_write: pagemap::read_range(None, heap.addr(), heap.end(), ps).ok(),
        ..Default::default()
    };
    let mut child = ProcReport {
        pid,
        wrote: mode.child_writes(),
        expected: exp_child,
        ..Default::default()
    };
    let mut b = [0u8; 1];
    recv(&mut c2p_rx, &mut b)?;
    if b[0] != READY {
        return Err(Error::Child(format!(
            "unexpected handshake byte {:#x}",
            b[0]
        )));
    }
    let mut rec = None;
    if mode == Mode::AfterExit {
        send(&mut p2c_tx, &[MEASURE])?;
        rec = Some(recv_record(&mut c2p_rx)?);
    }

    // The window runs in its own frame, inside the stack area prefaulted above,
    // so that no write in it lands on a stack page still shared with the child.
    let win = window(
        mode,
        &mut reader,
        &heap,
        &order,
        (me, pid),
        &mut p2c_tx,
        &mut c2p_rx,
    )?;
    if let Some(st) = win.child_status {
        guard.reaped = true;
        if st != 0 {
            return Err(Error::Child(format!("pid {pid} exited with status {st}")));
        }
    }
    let (t0, t1, pf0, pf1, parent_times) = (win.t0, win.t1, win.pf0, win.pf1, win.parent_times);

    if mode.parent_writes() {
        parent.smaps_after_write = smaps::read_range(None, heap.addr(), heap.end()).ok();
        parent.pagemap_after_write = pagemap::read_range(None, heap.addr(), heap.end(), ps).ok();
    }
    if mode != Mode::AfterExit {
        send(&mut p2c_tx, &[MEASURE])?;
        rec = Some(recv_record(&mut c2p_rx)?);
        send(&mut p2c_tx, &[EXIT])?;
        guard.wait()?;
    }
    let rec = rec.unwrap_or_default();
    child.smaps_before_write = rec.smaps_before;
    child.smaps_after_write = rec.smaps_after;
    child.pagemap_before_write = rec.pagemap_before;
    child.pagemap_after_write = rec.pagemap_after;
    if mode.child_writes() {
        child.minor_faults = Some(rec.minor_faults);
        child.write_ns_per_page = Some(rec.write_ns as f64 / k as f64);
        child.rewrite_ns_per_page = Some(rec.rewrite_ns as f64 / k as f64);
    }
    parent.minor_faults = Some(pf1 - pf0);
    if let Some((w, r)) = parent_times {
        parent.write_ns_per_page = Some(w as f64 / k as f64);
        parent.rewrite_ns_per_page = Some(r as f64 / k as f64);
    }
    if let (Some((p0, c0)), Some((p1, c1))) = (t0, t1) {
        parent.observed = Some(p1.delta(&p0));
        child.observed = Some(c1.delta(&c0));
    }
    let mut dup_mmap_ns = None;
    if loaded {
        // Rows persist after exit; a missing row means 0.
        if let Ok(rows) = cs.procs() {
            let find = |p: u32| {
                rows.iter()
                    .find(|r| r.pid == Some(p))
                    .map_or(Counts::default(), |r| r.counts)
            };
            parent.row_after_exit = Some(find(me));
            child.row_after_exit = Some(find(pid));
        }
        if let (Some(b), Ok(a)) = (stats_before, cs.stats()) {
            let (forks, ns) = (Counter::Forks, Counter::ForkNs);
            if a[forks] > b[forks] {
                dup_mmap_ns = Some((a[ns] - b[ns]) / (a[forks] - b[forks]));
            }
        }
    }
    let memcpy_4k_ns = crate::workload::memcpy_page_ns(heap.as_slice(), ps);

    // ---- comparisons
    let mut checks = Vec::new();
    for (who, p) in [("parent", &parent), ("child", &child)] {
        if let Some(obs) = p.observed {
            for name in Counter::FORK_ROWS {
                if let (Some(e), Some(o)) = (p.expected.get(name), obs.get(name)) {
                    check(&mut checks, &format!("{who}.{name}"), e, o);
                }
            }
        }
    }
    let (fp, fc) = expected_faults(mode, shape);
    parent.expected_minor_faults = fp;
    child.expected_minor_faults = fc;
    for (who, p) in [("parent", &parent), ("child", &child)] {
        if let (Some(e), Some(o)) = (p.expected_minor_faults, p.minor_faults) {
            check(&mut checks, &format!("{who}.minor_faults"), e, o);
        }
    }
    let kb = ps / 1024;
    let pmd_kb = pmd / 1024;
    let writers: Vec<(&str, &ProcReport, u64)> = match mode {
        Mode::Child => vec![("child", &child, shape.regions)],
        Mode::Parent => vec![("parent", &parent, shape.regions)],
        Mode::Both => vec![
            ("child", &child, shape.regions),
            (
                "parent",
                &parent,
                shape.regions - shape.full_region_pages / ppr,
            ),
        ],
        Mode::AfterExit => vec![("parent", &parent, 0)],
    };
    for (who, p, split) in writers {
        if let Some(a) = p.pagemap_after_write {
            let want = if mode == Mode::AfterExit {
                heap_pages
            } else {
                k
            };
            check(
                &mut checks,
                &format!("{who}.pagemap_exclusive"),
                want,
                a.exclusive,
            );
        }
        if let (Some(b), Some(a)) = (p.smaps_before_write, p.smaps_after_write) {
            if mode == Mode::AfterExit {
                check(
                    &mut checks,
                    &format!("{who}.smaps_private_dirty_kb"),
                    heap_pages * kb,
                    a.private_dirty_kb,
                );
            } else {
                check(
                    &mut checks,
                    &format!("{who}.smaps_private_dirty_kb_delta"),
                    k * kb,
                    a.private_dirty_kb.saturating_sub(b.private_dirty_kb),
                );
            }
            if used == "yes" {
                check(
                    &mut checks,
                    &format!("{who}.smaps_anon_huge_kb_drop"),
                    split * pmd_kb,
                    b.anon_huge_kb.saturating_sub(a.anon_huge_kb),
                );
            }
        }
    }
    if loaded {
        notes.push(
            "counters are deltas over the write window (between two reads while both \
             processes wait); start-up and measurement faults fall outside it"
                .to_string(),
        );
    }
    let mismatches: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.clone())
        .collect();
    if loaded && !mismatches.is_empty() && table_is_full() {
        notes.push(
            "the per-process table is full (/proc/cowstat/procs has an <other> row): \
             new processes are counted there, not in their own rows; reset with \
             echo 0 > /proc/cowstat/stats"
                .to_string(),
        );
    }
    let verdict = if checks.is_empty() {
        "UNVERIFIED"
    } else if mismatches.is_empty() {
        "OK"
    } else {
        "MISMATCH"
    };
    Ok(ForkReport {
        heap_bytes,
        page_size: ps,
        heap_pages,
        write_pages: k,
        writer: mode.as_str().to_string(),
        pattern: a.pattern.to_string(),
        seed: a.seed,
        cpu,
        thp,
        cowstat_loaded: loaded,
        fork_ns,
        dup_mmap_ns,
        memcpy_4k_ns,
        parent,
        child,
        checks,
        notes,
        verdict: verdict.to_string(),
        mismatches,
    })
}

/// True if cowstat has an `<other>` row: processes beyond the table's
/// capacity have no rows of their own.
fn table_is_full() -> bool {
    Cowstat::locate()
        .procs()
        .map(|rows| rows.iter().any(|r| r.pid.is_none()))
        .unwrap_or(false)
}

/// Runs the command: experiment, then text or JSON.
pub fn run(a: &ForkArgs) -> Result<Outcome> {
    let r = experiment(a)?;
    if a.json {
        print_out(&(to_json(&r)? + "\n"))?;
    } else {
        print_out(&render_fork(&r))?;
    }
    Ok(if r.verdict == "MISMATCH" {
        Outcome::Mismatch
    } else {
        Outcome::Ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(e: &Expected) -> [Option<u64>; 5] {
        [
            e.wp_faults,
            e.cow_copies,
            e.cow_zero,
            e.wp_reuses,
            e.thp_wp_faults,
        ]
    }

    #[test]
    fn expectations_4k() {
        let s = Shape {
            k: 23,
            ..Default::default()
        };
        let (p, ch) = expected(Mode::Child, s);
        assert_eq!(c(&p), [Some(0); 5]);
        assert_eq!(c(&ch), [Some(23), Some(23), Some(0), Some(0), Some(0)]);
        let (p, ch) = expected(Mode::Parent, s);
        assert_eq!(c(&p), [Some(23), Some(23), Some(0), Some(0), Some(0)]);
        assert_eq!(expected_faults(Mode::Parent, s), (Some(23), Some(0)));
        assert_eq!(expected_faults(Mode::AfterExit, s), (Some(23), Some(0)));
        assert_eq!(c(&ch), [Some(0); 5]);
        let (p, ch) = expected(Mode::Both, s);
        assert_eq!(c(&p), [Some(23), Some(0), Some(0), Some(23), Some(0)]);
        assert_eq!(c(&ch), [Some(23), Some(23), Some(0), Some(0), Some(0)]);
        let (p, ch) = expected(Mode::AfterExit, s);
        assert_eq!(c(&p), [Some(23), Some(0), Some(0), Some(23), Some(0)]);
        assert_eq!(c(&ch), [Some(0); 5]);
    }

    #[test]
    fn expectations_thp() {
        // Synthetic: 1024 pages in 8 huge regions, 2 of them written completely.
        let s = Shape {
            k: 1024,
            k_huge: 1024,
            regions: 8,
            full_region_pages: 1024,
            full_regions: 2,
            thp_partial: false,
        };
        let (p, ch) = expected(Mode::Child, s);
        assert_eq!(c(&ch), [Some(1024), Some(1024), Some(0), Some(0), Some(8)]);
        assert_eq!(c(&p), [Some(0); 5]);
        let (p, _) = expected(Mode::Both, s);
        assert_eq!(c(&p), [Some(0), Some(0), Some(0), Some(0), Some(8)]);
        assert_eq!(expected_faults(Mode::Both, s), (Some(2), Some(1024)));
        assert_eq!(expected_faults(Mode::AfterExit, s), (Some(8), Some(0)));
        assert_eq!(expected_faults(Mode::Child, s), (Some(0), Some(1024)));
        let partial_regions = Shape {
            full_region_pages: 0,
            full_regions: 0,
            ..s
        };
        assert_eq!(
            expected_faults(Mode::Both, partial_regions),
            (Some(1024), Some(1024))
        );
        let (p, _) = expected(Mode::Both, partial_regions);
        assert_eq!(c(&p), [Some(1024), Some(1024), Some(0), Some(0), Some(8)]);
        let (p, _) = expected(Mode::AfterExit, s);
        assert_eq!(c(&p), [Some(0), Some(0), Some(0), Some(0), Some(8)]);
        let (p, ch) = expected(
            Mode::Both,
            Shape {
                thp_partial: true,
                ..s
            },
        );
        assert_eq!(c(&p), [None, None, Some(0), None, None]);
        assert_eq!(c(&ch), [Some(1024), Some(1024), Some(0), Some(0), None]);
    }

    #[test]
    fn record_roundtrip() {
        let r = ChildRecord {
            write_ns: 123,
            rewrite_ns: 45,
            smaps_before: Some(SmapsRange {
                vmas: 1,
                rss_kb: 2,
                shared_dirty_kb: 3,
                private_dirty_kb: 4,
                anonymous_kb: 5,
                anon_huge_kb: 6,
            }),
            smaps_after: None,
            pagemap_before: None,
            pagemap_after: Some(PagemapCounts {
                pages: 7,
                present: 8,
                exclusive: 9,
            }),
            minor_faults: 10,
        };
        assert_eq!(ChildRecord::decode(&r.encode()), r);
        assert_eq!(
            ChildRecord::decode(&[0; RECORD_BYTES]),
            ChildRecord::default()
        );
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::from_args(Writer::Both, false), Mode::Both);
        assert_eq!(Mode::from_args(Writer::Child, true), Mode::AfterExit);
        assert_eq!(Mode::AfterExit.as_str(), "parent-after-exit");
    }
}
