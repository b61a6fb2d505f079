// SPDX-License-Identifier: GPL-2.0
//! Exactness cases `cow-demo fork` does not cover: the zero page, two
//! children faulting concurrently on two CPUs, and reuses against the
//! kernel's own `pgreuse` counter.
//!
//! Every measurement window follows the same discipline as cow-demo's: all
//! buffers and the stack are written beforehand (after any fork, our own
//! pages are write-protected too, and a first write inside the window would
//! be counted), and /proc files are read into those buffers without
//! allocating. Texts are parsed only after the window closes.

use std::path::PathBuf;

use cow_demo::counter::Counter;
use cow_demo::error::{Error, Result};
use cow_demo::procfs::cowstat::{find_row, parse_procs, parse_stats, Counts, Cowstat};
use cow_demo::procfs::smaps;
use cow_demo::procfs::window::WindowFile;
use cow_demo::workload::{self, exit_child, fork, page_size, pin_to_current_cpu, Forked, Heap};

use crate::{Checks, TestCase};

/// Room for any file read here (a full `procs` table is the largest).
const BUF: usize = 1 << 20;

fn parse_err(path: &str, e: impl std::fmt::Display) -> Error {
    Error::Child(format!("cannot parse {path}: {e}"))
}

fn row(s: &WindowFile, pid: u32) -> Result<Counts> {
    find_row(s.text(), pid).map_err(|e| parse_err("procs", e))
}

fn my_pid() -> u32 {
    std::process::id()
}

/// Reading K fresh pages maps the shared zero page; writing them then gives
/// K zero-page breaks and no copies. Must run before this process ever forks,
/// so that none of its own pages is write-protected.
pub fn before_any_fork() -> Vec<TestCase> {
    vec![(
        "zero_page_read_then_write_k1021".into(),
        Box::new(|| zero_page(1021)),
    )]
}

fn zero_page(k: u64) -> Result<Checks> {
    let cs = Cowstat::locate();
    cs.require()?;
    pin_to_current_cpu()?;
    let ps = page_size();
    let heap = Heap::new(2 * k * ps, false)?;
    for i in 0..k {
        // SAFETY: page i is inside the heap mapping; a volatile read maps the
        // zero page without writing anything.
        unsafe { std::ptr::read_volatile((heap.addr() + i * ps) as *const u8) };
    }
    let rss_before = smaps::read_range(None, heap.addr(), heap.end())?.rss_kb;
    let mut snap = WindowFile::new(cs.path("procs"), BUF);
    snap.prefault();
    workload::prefault_stack();
    let pages: Vec<u64> = (0..k).collect();
    snap.read()?;
    let before = row(&snap, my_pid())?;
    heap.write_pages(&pages, 1);
    snap.read()?;
    let after = row(&snap, my_pid())?;
    let d = after.delta(&before);
    let rss_after = smaps::read_range(None, heap.addr(), heap.end())?.rss_kb;
    Ok(vec![
        ("cow_zero", k, d.cow_zero),
        ("cow_copies", 0, d.cow_copies),
        ("wp_faults", k, d.wp_faults),
        ("wp_reuses", 0, d.wp_reuses),
        // Zero-page PTEs are not resident memory; each break adds one page.
        ("smaps Rss before write, kB", 0, rss_before),
        ("smaps Rss after write, kB", k * ps / 1024, rss_after),
    ])
}

/// The cases that fork.
pub fn after_forks() -> Vec<TestCase> {
    vec![
        (
            "two_children_concurrent_k1009_k2003".into(),
            Box::new(|| two_children(1009, 2003)),
        ),
        (
            "reuse_after_child_exit_k2003_matches_vmstat_pgreuse".into(),
            Box::new(|| reuse_vs_pgreuse(2003)),
        ),
        (
            "global_stats_equal_sum_of_rows".into(),
            Box::new(global_is_sum),
        ),
    ]
}

/// A child that pins itself to `cpu`, reports ready, waits for the go,
/// writes `pages`, reports done and exits.
fn writer_child(
    heap: &Heap,
    pages: &[u64],
    cpu: usize,
    ready: &mut std::fs::File,
    go: &mut std::fs::File,
) -> ! {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it.
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    if !ok {
        exit_child(3);
    }
    workload::prefault_stack();
    let mut byte = [0u8; 1];
    if workload::send(ready, b"r").is_err() {
        exit_child(4);
    }
    if workload::recv(go, &mut byte).is_err() {
        exit_child(5);
    }
    heap.write_pages(pages, 2);
    if workload::send(ready, b"d").is_err() {
        exit_child(6);
    }
    exit_child(0)
}

fn two_children(ka: u64, kb: u64) -> Result<Checks> {
    let cs = Cowstat::locate();
    cs.require()?;
    let ps = page_size();
    let mut heap = Heap::new((ka + kb) * ps * 2, false)?;
    heap.touch_all(true);
    let pages_a: Vec<u64> = (0..ka).map(|i| 2 * i).collect();
    let pages_b: Vec<u64> = (0..kb).map(|i| 2 * i + 1).collect();
    let [mut procs0, mut procs1] = [0, 1].map(|_| WindowFile::new(cs.path("procs"), BUF));
    let [mut stats0, mut stats1] = [0, 1].map(|_| WindowFile::new(cs.path("stats"), BUF));
    let mut pids = Vec::new();
    let mut pipes = Vec::new();
    for (cpu, pages) in [(0usize, &pages_a), (1usize, &pages_b)] {
        let (ready_r, mut ready_w) = workload::pipe()?;
        let (mut go_r, go_w) = workload::pipe()?;
        match fork()?.0 {
            Forked::Child => {
                // Keep only our own ends, so a parent that dies or gives up
                // closes the last writer of "go" and we see EOF, not a hang.
                drop((ready_r, go_w, pipes));
                writer_child(&heap, pages, cpu, &mut ready_w, &mut go_r)
            }
            Forked::Parent(pid) => pids.push(pid),
        }
        drop((ready_w, go_r));
        pipes.push((ready_r, go_w));
    }
    // Our own pages are now shared with the children: write the buffers and
    // stack first so the window below holds the children's writes only.
    for s in [&mut procs0, &mut procs1, &mut stats0, &mut stats1] {
        s.prefault();
    }
    workload::prefault_stack();
    let mut byte = [0u8; 1];
    let mut handshake = || -> Result<()> {
        for (ready, _) in pipes.iter_mut() {
            workload::recv(ready, &mut byte)?;
        }
        stats0.read()?;
        procs0.read()?;
        for (_, go) in pipes.iter_mut() {
            workload::send(go, b"g")?;
        }
        for (ready, _) in pipes.iter_mut() {
            workload::recv(ready, &mut byte)?;
        }
        procs1.read()?;
        stats1.read()?;
        Ok(())
    };
    let outcome = handshake();
    // Closing our ends unblocks a child still waiting for "go".
    drop(pipes);
    let mut statuses = Vec::new();
    for pid in &pids {
        statuses.push(workload::wait_child(*pid)?);
    }
    if let Err(e) = outcome {
        return Err(Error::Child(format!(
            "{e} (writer exit statuses {statuses:?})"
        )));
    }
    let a = row(&procs1, pids[0])?.delta(&row(&procs0, pids[0])?);
    let b = row(&procs1, pids[1])?.delta(&row(&procs0, pids[1])?);
    let sum_rows = |s: &WindowFile| -> Result<u64> {
        Ok(parse_procs(s.text())
            .map_err(|e| parse_err("procs", e))?
            .iter()
            .map(|r| r.counts.cow_copies)
            .sum())
    };
    let rows_delta = sum_rows(&procs1)? - sum_rows(&procs0)?;
    let global = |s: &WindowFile| -> Result<u64> {
        Ok(parse_stats(s.text()).map_err(|e| parse_err("stats", e))?[Counter::CowCopies])
    };
    let global_delta = global(&stats1)? - global(&stats0)?;
    Ok(vec![
        ("child A (CPU 0) cow_copies", ka, a.cow_copies),
        ("child A wp_faults", ka, a.wp_faults),
        ("child B (CPU 1) cow_copies", kb, b.cow_copies),
        ("child B wp_faults", kb, b.wp_faults),
        (
            "global cow_copies delta = sum of row deltas",
            rows_delta,
            global_delta,
        ),
        ("global cow_copies delta = A + B", ka + kb, global_delta),
    ])
}

fn vmstat_value(text: &str, name: &str) -> Result<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .ok_or_else(|| parse_err("/proc/vmstat", format!("no '{name}' line")))
}

/// Tries this many times before calling the system too busy to compare.
const QUIET_TRIES: u32 = 100;

/// Reads `vm_a`, `stats`, `vm_b` until `pgreuse` is equal in both vmstat
/// reads, so `stats` was taken at an instant whose `pgreuse` is known
/// exactly. Returns the number of tries.
fn quiet_bracket(
    vm_a: &mut WindowFile,
    stats: &mut WindowFile,
    vm_b: &mut WindowFile,
) -> Result<u32> {
    for tries in 1..=QUIET_TRIES {
        vm_a.read()?;
        stats.read()?;
        vm_b.read()?;
        if vmstat_value(vm_a.text(), "pgreuse")? == vmstat_value(vm_b.text(), "pgreuse")? {
            return Ok(tries);
        }
    }
    Err(parse_err(
        "/proc/vmstat",
        format!("pgreuse changed in each of {QUIET_TRIES} reads around stats (busy system?)"),
    ))
}

fn reuse_vs_pgreuse(k: u64) -> Result<Checks> {
    let cs = Cowstat::locate();
    cs.require()?;
    pin_to_current_cpu()?;
    let ps = page_size();
    let mut heap = Heap::new(k * ps, false)?;
    heap.touch_all(true);
    let pages: Vec<u64> = (0..k).collect();
    let [mut procs0, mut procs1] = [0, 1].map(|_| WindowFile::new(cs.path("procs"), BUF));
    let [mut stats0, mut stats1] = [0, 1].map(|_| WindowFile::new(cs.path("stats"), BUF));
    let [mut vm0, mut vm0b, mut vm1, mut vm1b] =
        [0, 1, 2, 3].map(|_| WindowFile::new(PathBuf::from("/proc/vmstat"), BUF));
    match fork()?.0 {
        Forked::Child => exit_child(0),
        Forked::Parent(pid) => {
            workload::wait_child(pid)?;
        }
    }
    for s in [
        &mut procs0,
        &mut procs1,
        &mut stats0,
        &mut stats1,
        &mut vm0,
        &mut vm0b,
        &mut vm1,
        &mut vm1b,
    ] {
        s.prefault();
    }
    workload::prefault_stack();
    // cowstat's window and pgreuse's must be the same instant-to-instant,
    // but two files cannot be read at once: each stats read is bracketed by
    // two vmstat reads and retried until no reuse happened in the bracket
    // (anyone's, including a first write of ours), see `quiet_bracket`.
    let tries0 = quiet_bracket(&mut vm0, &mut stats0, &mut vm0b)?;
    procs0.read()?;
    heap.write_pages(&pages, 3);
    procs1.read()?;
    let tries1 = quiet_bracket(&mut vm1, &mut stats1, &mut vm1b)?;
    println!("# quiet vmstat brackets took {tries0} + {tries1} tries");
    let d = row(&procs1, my_pid())?.delta(&row(&procs0, my_pid())?);
    let pgreuse = vmstat_value(vm1.text(), "pgreuse")? - vmstat_value(vm0.text(), "pgreuse")?;
    let global = |s: &WindowFile| -> Result<u64> {
        let g = parse_stats(s.text()).map_err(|e| parse_err("stats", e))?;
        // The kernel counts shared-mapping write faults as reuses too.
        Ok(g[Counter::WpReuses] + g[Counter::WpShared])
    };
    let cowstat_reuses = global(&stats1)? - global(&stats0)?;
    Ok(vec![
        ("wp_reuses (this process)", k, d.wp_reuses),
        ("cow_copies (this process)", 0, d.cow_copies),
        ("wp_faults (this process)", k, d.wp_faults),
        (
            "vmstat pgreuse delta = cowstat wp_reuses + wp_shared delta",
            pgreuse,
            cowstat_reuses,
        ),
    ])
}

/// `stats` is the sum of every row: live ones, `<other>`, and every process
/// that ended since the last reset. `procs` lists the last 1024 that ended,
/// so the sum of its rows equals `stats` while fewer have ended since a
/// reset: reset, end one process, then compare.
fn global_is_sum() -> Result<Checks> {
    let cs = Cowstat::locate();
    std::fs::write(cs.path("stats"), "0").map_err(|e| Error::io("write", cs.path("stats"), e))?;
    std::process::Command::new("true")
        .status()
        .map_err(|e| Error::io("run", "true", e))?;
    let mut procs = WindowFile::new(cs.path("procs"), BUF);
    let mut stats = WindowFile::new(cs.path("stats"), BUF);
    procs.prefault();
    stats.prefault();
    procs.read()?;
    stats.read()?;
    let rows = parse_procs(procs.text()).map_err(|e| parse_err("procs", e))?;
    let g = parse_stats(stats.text()).map_err(|e| parse_err("stats", e))?;
    let sum = |f: fn(&Counts) -> u64| rows.iter().map(|r| f(&r.counts)).sum::<u64>();
    Ok(vec![
        ("wp_faults", sum(|c| c.wp_faults), g[Counter::WpFaults]),
        ("cow_copies", sum(|c| c.cow_copies), g[Counter::CowCopies]),
        ("cow_zero", sum(|c| c.cow_zero), g[Counter::CowZero]),
        (
            "thp_wp_faults",
            sum(|c| c.thp_wp_faults),
            g[Counter::ThpWpFaults],
        ),
        ("rows present (1 = yes)", 1, (!rows.is_empty()) as u64),
    ])
}
