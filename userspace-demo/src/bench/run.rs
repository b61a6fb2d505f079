// SPDX-License-Identifier: GPL-2.0
//! The benchmarks: probe overhead and COW cost breakdown, fork latency, the cost of knowing, scale, table fill.

use std::fs;
use std::io::Write;
use std::time::Instant;

use serde_json::json;

use cow_demo::counter::Counter;
use cow_demo::error::{Error, Result};
use cow_demo::procfs::cowstat::{find_row, read_file_into, Cowstat, Stats};
use cow_demo::procfs::smaps;
use cow_demo::workload::{
    exit_child, fork, memcpy_page_ns, page_size, pin_to_current_cpu, pipe, prefault_stack, recv,
    send, wait_child, Forked, Heap,
};

use super::mem::{check_fits, first_touch_ns, recv_u64, send_u64, PageTimes, SplitRegion};
use super::record::{params, Context};

fn ns(t: Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}

fn stats_if(cs: &Cowstat) -> Result<Option<Stats>> {
    if cs.is_loaded() {
        cs.stats().map(Some)
    } else {
        Ok(None)
    }
}

/// Per-page COW fault, rewrite, memcpy and first-touch costs, and fork() of the heap.
pub fn overhead(
    ctx: &Context,
    heap_bytes: u64,
    pages: Option<u64>,
    touch: u64,
    repeats: usize,
) -> Result<()> {
    check_fits(heap_bytes * 2, "--heap")?;
    let cpu = pin_to_current_cpu()?;
    let mut heap = Heap::new(heap_bytes, false)?;
    heap.touch_all(true);
    prefault_stack();
    let k = pages.unwrap_or(heap.pages()).clamp(1, heap.pages());
    let cs = Cowstat::locate();
    let (mut fork_ns, mut cow, mut cow_p10, mut rewrite, mut copies) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..repeats {
        let (mut rx, mut tx) = pipe()?;
        match fork()? {
            (Forked::Child, _) => {
                drop(rx);
                let c = PageTimes::measure(k, |i| heap.write_page(i, 2));
                let r = PageTimes::measure(k, |i| heap.write_page(i, 3));
                let ok = [c.mean_ns, c.p10_ns, r.mean_ns]
                    .iter()
                    .all(|v| send_u64(&mut tx, v.to_bits()).is_ok());
                exit_child(if ok { 0 } else { 1 });
            }
            (Forked::Parent(pid), f) => {
                drop(tx);
                let mut next = || recv_u64(&mut rx).map(f64::from_bits);
                let (c, c10, r) = (next()?, next()?, next()?);
                wait_child(pid)?;
                fork_ns.push(f as f64);
                cow.push(c);
                cow_p10.push(c10);
                rewrite.push(r);
                if cs.is_loaded() {
                    copies.push(cs.row(pid)?.cow_copies as f64);
                }
            }
        }
    }
    let (mut touch_ns, mut touch_p10) = (vec![], vec![]);
    let mut memcpy_ns = vec![];
    let touch_pages = touch.div_ceil(page_size()).max(1);
    for _ in 0..repeats {
        let t = first_touch_ns(touch_pages)?;
        touch_ns.push(t.mean_ns);
        touch_p10.push(t.p10_ns);
        memcpy_ns.push(memcpy_page_ns(heap.as_slice(), page_size()));
    }
    let p = params([
        ("heap_bytes", json!(heap.size())),
        ("pages_written", json!(k)),
        ("touch_pages", json!(touch_pages)),
        ("cpu", json!(cpu)),
    ]);
    ctx.emit("overhead", "fork", "ns", &p, fork_ns);
    ctx.emit("overhead", "cow_fault", "ns/page", &p, cow);
    ctx.emit("overhead", "cow_fault_p10", "ns/page", &p, cow_p10);
    ctx.emit("overhead", "rewrite", "ns/page", &p, rewrite);
    ctx.emit("overhead", "first_touch", "ns/page", &p, touch_ns);
    ctx.emit("overhead", "first_touch_p10", "ns/page", &p, touch_p10);
    ctx.emit("overhead", "memcpy_4k", "ns/page", &p, memcpy_ns);
    if !copies.is_empty() {
        ctx.emit("overhead", "child_cow_copies", "pages", &p, copies);
    }
    Ok(())
}

/// fork() latency of a touched heap, from userspace and from cowstat's `fork_ns`.
pub fn fork_latency(ctx: &Context, heap_bytes: u64, thp: bool, repeats: usize) -> Result<()> {
    check_fits(heap_bytes, "--heap")?;
    pin_to_current_cpu()?;
    let mut heap = Heap::new(heap_bytes, thp)?;
    heap.touch_all(true);
    let huge_kb = smaps::read_range(None, heap.addr(), heap.end())?.anon_huge_kb;
    let cs = Cowstat::locate();
    let (mut user, mut dup, mut gap) = (vec![], vec![], vec![]);
    let mut foreign = 0;
    for _ in 0..repeats {
        let before = stats_if(&cs)?;
        match fork()? {
            (Forked::Child, _) => exit_child(0),
            (Forked::Parent(pid), f) => {
                wait_child(pid)?;
                user.push(f as f64);
                if let (Some(b), Some(a)) = (before, stats_if(&cs)?) {
                    let d = a.delta(&b);
                    if d[Counter::Forks] == 1 {
                        dup.push(d[Counter::ForkNs] as f64);
                        gap.push(f as f64 - d[Counter::ForkNs] as f64);
                    } else {
                        // Another process forked in the window: the sample
                        // cannot be attributed, so it is dropped (and counted).
                        foreign += 1;
                    }
                }
            }
        }
    }
    let used = if huge_kb * 1024 == heap.size() {
        "yes"
    } else if huge_kb == 0 {
        "no"
    } else {
        "partial"
    };
    let p = params([
        ("heap_bytes", json!(heap.size())),
        ("thp", json!(if thp { "on" } else { "off" })),
        ("thp_used", json!(used)),
        ("anon_huge_kb", json!(huge_kb)),
        ("dropped_foreign_forks", json!(foreign)),
    ]);
    ctx.emit("fork", "fork_user", "ns", &p, user);
    if cs.is_loaded() {
        ctx.emit("fork", "fork_dup_mmap", "ns", &p, dup);
        ctx.emit("fork", "fork_gap", "ns", &p, gap);
    }
    Ok(())
}

/// Sums every `Private_Dirty:` line of an smaps text (kB), as Redis does.
pub fn sum_private_dirty(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("Private_Dirty:"))
        .filter_map(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Cost of learning a child's COW volume: its cowstat row vs summing its smaps.
pub fn know(
    ctx: &Context,
    heap_bytes: u64,
    vmas: usize,
    write_pct: f64,
    repeats: usize,
) -> Result<()> {
    check_fits(
        (heap_bytes as f64 * (1.0 + write_pct / 100.0)) as u64,
        "--heap",
    )?;
    pin_to_current_cpu()?;
    let total = (heap_bytes / page_size()) as usize;
    let chunk = (total / vmas.max(1)).max(1);
    let region = SplitRegion::new(vmas, chunk)?;
    for i in 0..region.pages() {
        region.write(i, 1);
    }
    let k = ((region.pages() as f64 * write_pct / 100.0).round() as usize).clamp(1, region.pages());
    let step = region.pages() / k;
    let cs = Cowstat::locate();
    let mut buf = vec![1u8; 1 << 20];
    let (mut ready_rx, mut ready_tx) = pipe()?;
    let (mut go_rx, go_tx) = pipe()?;
    prefault_stack();
    let pid = match fork()? {
        (Forked::Child, _) => {
            drop((ready_rx, go_tx));
            for j in 0..k {
                region.write(j * step, 2);
            }
            let mut b = [0u8; 1];
            let ok = send_u64(&mut ready_tx, k as u64).is_ok();
            // Blocks until the parent closes its end: EOF is the exit signal.
            let _ = recv(&mut go_rx, &mut b);
            exit_child(if ok { 0 } else { 1 });
        }
        (Forked::Parent(pid), _) => pid,
    };
    drop((ready_tx, go_rx));
    recv_u64(&mut ready_rx)?;
    let smaps_path = format!("/proc/{pid}/smaps");
    let rollup_path = format!("/proc/{pid}/smaps_rollup");
    let stat_path = format!("/proc/{pid}/stat");
    let (mut t_procs, mut t_smaps, mut t_rollup, mut t_stat) = (vec![], vec![], vec![], vec![]);
    let (mut row_copies, mut dirty_kb, mut rollup_kb, mut smaps_len, mut rows) = (0, 0, 0, 0, 0);
    let read = |p: &str| fs::read_to_string(p).map_err(|e| Error::io("read", p, e));
    for _ in 0..repeats {
        if cs.is_loaded() {
            let t = Instant::now();
            let text = read_file_into(&cs.path("procs"), &mut buf)?;
            let row = find_row(text, pid).map_err(|source| Error::Parse {
                path: cs.path("procs"),
                source,
            })?;
            t_procs.push(ns(t) as f64);
            row_copies = row.cow_copies;
            rows = text.lines().count().saturating_sub(1);
        }
        let t = Instant::now();
        let text = read(&smaps_path)?;
        dirty_kb = sum_private_dirty(&text);
        t_smaps.push(ns(t) as f64);
        smaps_len = text.len();
        drop(text);
        let t = Instant::now();
        rollup_kb = sum_private_dirty(&read(&rollup_path)?);
        t_rollup.push(ns(t) as f64);
        // The floor of any /proc read: a small file with no page-table walk.
        let t = Instant::now();
        std::hint::black_box(read_file_into(std::path::Path::new(&stat_path), &mut buf)?.len());
        t_stat.push(ns(t) as f64);
    }
    drop(go_tx);
    wait_child(pid)?;
    let p = params([
        ("heap_bytes", json!(region.pages() as u64 * page_size())),
        ("vmas", json!(vmas)),
        ("pages_written", json!(k)),
        ("cow_copies_row", json!(row_copies)),
        ("private_dirty_kb", json!(dirty_kb)),
        ("rollup_private_dirty_kb", json!(rollup_kb)),
        ("smaps_bytes", json!(smaps_len)),
        ("procs_rows", json!(rows)),
    ]);
    if cs.is_loaded() {
        ctx.emit("know", "read_procs", "ns", &p, t_procs);
    }
    ctx.emit("know", "read_smaps", "ns", &p, t_smaps);
    ctx.emit("know", "read_smaps_rollup", "ns", &p, t_rollup);
    ctx.emit("know", "read_pid_stat", "ns", &p, t_stat);
    Ok(())
}

/// N processes taking COW faults at the same time.
pub fn scale(ctx: &Context, procs: usize, total_pages: u64, repeats: usize) -> Result<()> {
    let procs = procs.max(1);
    let k = (total_pages / procs as u64).max(1);
    let heap_bytes = k * procs as u64 * page_size();
    check_fits(heap_bytes * 2, "--total-pages")?;
    // Not pinned: the children must spread over every CPU.
    let mut heap = Heap::new(heap_bytes, false)?;
    heap.touch_all(true);
    prefault_stack();
    let cs = Cowstat::locate();
    let (mut wall, mut inner, mut copies, mut other) = (vec![], vec![], vec![], vec![]);
    for _ in 0..repeats {
        let before = stats_if(&cs)?;
        let other_before = other_row(&cs)?;
        let (mut go_rx, mut go_tx) = pipe()?;
        let (mut done_rx, mut done_tx) = pipe()?;
        let (mut quit_rx, quit_tx) = pipe()?;
        let mut pids = Vec::with_capacity(procs);
        for i in 0..procs as u64 {
            match fork()? {
                (Forked::Child, _) => {
                    drop((quit_tx, go_tx));
                    let mut b = [0u8; 1];
                    if recv(&mut go_rx, &mut b).is_err() {
                        exit_child(1);
                    }
                    let t = Instant::now();
                    for p in i * k..(i + 1) * k {
                        heap.write_page(p, 2);
                    }
                    let ok = send_u64(&mut done_tx, ns(t)).is_ok();
                    let _ = recv(&mut quit_rx, &mut b);
                    exit_child(if ok { 0 } else { 1 });
                }
                (Forked::Parent(pid), _) => pids.push(pid),
            }
        }
        drop((go_rx, done_tx, quit_rx));
        let go = vec![1u8; procs];
        let t = Instant::now();
        send(&mut go_tx, &go)?;
        let mut sum = 0;
        for _ in 0..procs {
            sum += recv_u64(&mut done_rx)?;
        }
        let w = ns(t);
        drop(quit_tx);
        for pid in pids {
            wait_child(pid)?;
        }
        wall.push(w as f64 / (procs as u64 * k) as f64);
        inner.push(sum as f64 / (procs as u64 * k) as f64);
        if let (Some(b), Some(a)) = (before, stats_if(&cs)?) {
            copies.push(a.delta(&b)[Counter::CowCopies] as f64);
            other.push(other_row(&cs)?.saturating_sub(other_before) as f64);
        }
    }
    let p = params([
        ("procs", json!(procs)),
        ("pages_per_proc", json!(k)),
        ("heap_bytes", json!(heap_bytes)),
    ]);
    ctx.emit("scale", "wall_per_fault", "ns/page", &p, wall);
    ctx.emit("scale", "child_per_fault", "ns/page", &p, inner);
    if cs.is_loaded() {
        ctx.emit("scale", "global_cow_copies", "pages", &p, copies);
        ctx.emit("scale", "other_row_copies", "pages", &p, other);
    }
    Ok(())
}

fn other_row(cs: &Cowstat) -> Result<u64> {
    if !cs.is_loaded() {
        return Ok(0);
    }
    Ok(cs
        .procs()?
        .iter()
        .find(|r| r.pid.is_none())
        .map(|r| r.counts.cow_copies)
        .unwrap_or(0))
}

/// Forks `procs` short-lived children that each copy one page, so that each
/// leaves a row in /proc/cowstat/procs (rows persist until reset), then
/// times `reads` reads of the whole procs file at that row count.
pub fn fill(ctx: &Context, procs: usize, reads: usize) -> Result<()> {
    let cs = Cowstat::locate();
    cs.require()?;
    let mut heap = Heap::new(page_size(), false)?;
    heap.touch_all(true);
    let other_before = other_row(&cs)?;
    let t = Instant::now();
    for _ in 0..procs {
        match fork()? {
            (Forked::Child, _) => {
                heap.write_page(0, 2);
                exit_child(0);
            }
            (Forked::Parent(pid), _) => {
                wait_child(pid)?;
            }
        }
    }
    let per = ns(t) as f64 / procs.max(1) as f64;
    let rows = cs.procs()?;
    let named = rows.iter().filter(|r| r.pid.is_some()).count();
    // Children whose lookup found no free slot within the probe bound.
    let spilled = other_row(&cs)?.saturating_sub(other_before);
    let mut buf = vec![0u8; 4 << 20];
    let (mut t_read, mut bytes) = (vec![], 0);
    for _ in 0..reads {
        let t = Instant::now();
        bytes = read_file_into(&cs.path("procs"), &mut buf)?.len();
        t_read.push(ns(t) as f64);
    }
    let p = params([
        ("procs", json!(procs)),
        ("rows_after", json!(named)),
        ("other_copies_added", json!(spilled)),
        ("procs_bytes", json!(bytes)),
    ]);
    ctx.emit("fill", "fork_write_exit", "ns", &p, vec![per]);
    if !t_read.is_empty() {
        ctx.emit("fill", "read_procs_all", "ns", &p, t_read);
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_private_dirty() {
        let t = "7f-80 rw-p 0 0 0\nPrivate_Dirty:  8 kB\nRss: 4 kB\n\
                 80-90 r--p 0 0 0\nPrivate_Dirty:     12 kB\n";
        assert_eq!(sum_private_dirty(t), 20);
        assert_eq!(sum_private_dirty(""), 0);
    }
}
