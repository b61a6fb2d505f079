// SPDX-License-Identifier: GPL-2.0
//! One process's figures: `/proc/cowstat/self` and `pid` (one hash lookup)
//! against summing the process's own smaps, as rows, heap and VMAs grow;
//! and `hold`, which keeps N processes with rows alive for those runs.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::time::Instant;

use serde_json::json;

use cow_demo::error::{Error, Result};
use cow_demo::procfs::cowstat::{find_row, parse_proc_line, read_file_into, Cowstat};
use cow_demo::workload::{
    detach_from_caller, exit_child, fork, page_size, pause_forever, pipe, prefault_stack, recv,
    send, wait_child, Forked, Heap,
};

use super::mem::{recv_u64, send_u64, written_region, SplitRegion};
use super::record::{params, Context};
use super::run::sum_private_dirty;
use super::tags::{Bench, Metric};

fn ns(t: Instant) -> f64 {
    t.elapsed().as_nanos() as f64
}

fn io(what: &'static str, e: std::io::Error) -> Error {
    Error::io(what, std::path::Path::new("/proc/cowstat"), e)
}

/// Forks a keeper process that forks `procs` children; each copies one
/// page (so it has a row in /proc/cowstat/procs) and then blocks until the
/// keeper dies. Prints the keeper's pid once every child has its row:
/// `kill PID` ends them all.
pub fn hold(procs: usize) -> Result<()> {
    let mut heap = Heap::new(page_size(), false)?;
    heap.touch_all(true);
    let (mut ready_rx, mut ready_tx) = pipe()?;
    let keeper = match fork()? {
        (Forked::Parent(pid), _) => pid,
        (Forked::Child, _) => {
            drop(ready_rx);
            // Nothing of ours may keep the caller's $(...) pipe open.
            detach_from_caller();
            let Ok((mut quit_rx, quit_tx)) = pipe() else {
                exit_child(1)
            };
            for _ in 0..procs {
                match fork() {
                    Ok((Forked::Child, _)) => {
                        drop(quit_tx);
                        heap.write_page(0, 2);
                        let ok = send(&mut ready_tx, b"R").is_ok();
                        let mut b = [0u8; 1];
                        // EOF when the keeper dies.
                        let _ = recv(&mut quit_rx, &mut b);
                        exit_child(if ok { 0 } else { 1 })
                    }
                    Ok(_) => {}
                    Err(_) => exit_child(1),
                }
            }
            drop(ready_tx);
            // The signal that ends the keeper.
            pause_forever()
        }
    };
    drop(ready_tx);
    let mut b = vec![0u8; procs];
    recv(&mut ready_rx, &mut b)?;
    println!("{keeper}");
    Ok(())
}

/// Live rows (`L`) in a procs text.
fn live_rows(text: &str) -> u64 {
    text.lines()
        .skip(1)
        .filter(|l| l.trim_end().ends_with(" L"))
        .count() as u64
}

/// The counts on the second line of a `self` or `pid` text.
fn row_copies(text: &str) -> u64 {
    text.lines()
        .nth(1)
        .and_then(|l| parse_proc_line(l, 2).ok())
        .map_or(0, |r| r.2.cow_copies)
}

/// A child with a heap of `heap_bytes` in `vmas` VMAs writes `write_pct` %
/// of its pages (copies), then times reads of its own figures: `self` and
/// `pid` (opened each time, and re-read on a kept descriptor), a whole
/// `procs` read and search (the old way), its smaps summed as Redis does,
/// smaps_rollup, and /proc/self/stat (the floor of any /proc read).
pub fn one(
    ctx: &Context,
    heap_bytes: u64,
    vmas: usize,
    write_pct: f64,
    repeats: usize,
) -> Result<()> {
    let cs = Cowstat::locate();
    cs.require()?;
    let (region, k, step) = written_region(heap_bytes, vmas, write_pct)?;
    let (mut done_rx, mut done_tx) = pipe()?;
    prefault_stack();
    let pid = match fork()? {
        (Forked::Child, _) => {
            drop(done_rx);
            for j in 0..k {
                region.write(j * step, 2);
            }
            let ok = measure(ctx, &region, vmas, k, repeats).is_ok();
            let _ = send_u64(&mut done_tx, ok as u64);
            exit_child(if ok { 0 } else { 1 });
        }
        (Forked::Parent(pid), _) => pid,
    };
    drop(done_tx);
    let ok = recv_u64(&mut done_rx).unwrap_or(0);
    wait_child(pid)?;
    if ok != 1 {
        return Err(Error::Child(format!(
            "one: the measuring child {pid} failed"
        )));
    }
    Ok(())
}

fn measure(
    ctx: &Context,
    region: &SplitRegion,
    vmas: usize,
    k: usize,
    repeats: usize,
) -> Result<()> {
    let me = std::process::id();
    let mut buf = vec![1u8; 4 << 20];
    let mut small = vec![1u8; 4096];
    let mut pidtext = [0u8; 16];
    let pidlen = {
        let mut w = &mut pidtext[..];
        let _ = write!(w, "{me}");
        16 - w.len()
    };
    let self_path = cs_path("self");
    let pid_path = cs_path("pid");
    let procs_path = cs_path("procs");
    let kept_self = File::open(&self_path).map_err(|e| io("open self", e))?;
    let mut kept_pid = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pid_path)
        .map_err(|e| io("open pid", e))?;
    kept_pid
        .write_all(&pidtext[..pidlen])
        .map_err(|e| io("write pid", e))?;
    let mut m: [Vec<f64>; 8] = Default::default();
    let (mut self_copies, mut pid_copies, mut procs_copies, mut dirty_kb, mut smaps_len, mut rows) =
        (0, 0, 0, 0, 0, 0);
    let read = |p: &str| fs::read_to_string(p).map_err(|e| Error::io("read", p, e));
    for _ in 0..repeats {
        // Each cheap read is timed after an untimed one of the same kind:
        // the smaps walk before it would otherwise leave it with a cold
        // (TCG) TLB and cache, and charge that to whichever read came first.
        let _ = read_file_into(&self_path, &mut small)?;
        // self, opened each time.
        let t = Instant::now();
        let text = read_file_into(&self_path, &mut small)?;
        self_copies = row_copies(text);
        m[0].push(ns(t));
        // self on a kept descriptor: one pread at offset 0.
        let t = Instant::now();
        let n = kept_self
            .read_at(&mut small, 0)
            .map_err(|e| io("pread self", e))?;
        std::hint::black_box(row_copies(std::str::from_utf8(&small[..n]).unwrap_or("")));
        m[1].push(ns(t));
        // pid: open, write the pid, read, close.
        let t = Instant::now();
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&pid_path)
            .map_err(|e| io("open pid", e))?;
        f.write_all(&pidtext[..pidlen])
            .map_err(|e| io("write pid", e))?;
        let mut n = 0;
        loop {
            let r = f.read(&mut small[n..]).map_err(|e| io("read pid", e))?;
            if r == 0 {
                break;
            }
            n += r;
        }
        drop(f);
        pid_copies = row_copies(std::str::from_utf8(&small[..n]).unwrap_or(""));
        m[2].push(ns(t));
        // pid on a kept descriptor (pid written once): one pread.
        let t = Instant::now();
        let n = kept_pid
            .read_at(&mut small, 0)
            .map_err(|e| io("pread pid", e))?;
        std::hint::black_box(row_copies(std::str::from_utf8(&small[..n]).unwrap_or("")));
        m[3].push(ns(t));
        // The whole procs table, then our row in it (O(rows)).
        let t = Instant::now();
        let text = read_file_into(&procs_path, &mut buf)?;
        procs_copies = find_row(text, me)
            .map_err(|source| Error::Parse {
                path: procs_path.clone(),
                source,
            })?
            .cow_copies;
        m[4].push(ns(t));
        rows = live_rows(text);
        // smaps, summed as Redis does.
        let t = Instant::now();
        let text = read("/proc/self/smaps")?;
        dirty_kb = sum_private_dirty(&text);
        m[5].push(ns(t));
        smaps_len = text.len();
        drop(text);
        let t = Instant::now();
        std::hint::black_box(sum_private_dirty(&read("/proc/self/smaps_rollup")?));
        m[6].push(ns(t));
        let stat = std::path::Path::new("/proc/self/stat");
        let _ = read_file_into(stat, &mut small)?;
        let t = Instant::now();
        std::hint::black_box(read_file_into(stat, &mut small)?.len());
        m[7].push(ns(t));
    }
    let p = params([
        ("heap_bytes", json!(region.pages() as u64 * page_size())),
        ("vmas", json!(vmas)),
        ("pages_written", json!(k)),
        ("live_rows", json!(rows)),
        ("self_cow_copies", json!(self_copies)),
        ("pid_cow_copies", json!(pid_copies)),
        ("procs_cow_copies", json!(procs_copies)),
        ("private_dirty_kb", json!(dirty_kb)),
        ("smaps_bytes", json!(smaps_len)),
    ]);
    let [s, sfd, pd, pfd, procs, smaps, rollup, stat] = m;
    ctx.emit(Bench::One, Metric::ReadSelf, &p, s);
    ctx.emit(Bench::One, Metric::ReadSelfKeptFd, &p, sfd);
    ctx.emit(Bench::One, Metric::ReadPid, &p, pd);
    ctx.emit(Bench::One, Metric::ReadPidKeptFd, &p, pfd);
    ctx.emit(Bench::One, Metric::ReadProcsFind, &p, procs);
    ctx.emit(Bench::One, Metric::ReadSmaps, &p, smaps);
    ctx.emit(Bench::One, Metric::ReadSmapsRollup, &p, rollup);
    ctx.emit(Bench::One, Metric::ReadPidStat, &p, stat);
    let _ = std::io::stdout().flush();
    Ok(())
}

fn cs_path(name: &str) -> std::path::PathBuf {
    Cowstat::locate().path(name)
}
