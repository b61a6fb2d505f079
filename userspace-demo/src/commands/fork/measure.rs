// SPDX-License-Identifier: GPL-2.0
//! The parent's side of `cow-demo fork`: fork, open the write window, read
//! both processes' cowstat rows around it, and collect what the child saw.

use std::fs::File;

use crate::counter::Counter;
use crate::error::{Error, Result};
use crate::procfs::cowstat::{Counts, ProcsReader};
use crate::procfs::pagemap;
use crate::procfs::smaps;
use crate::report::{Expected, ProcReport};
use crate::workload::{fork, pipe, prefault_stack, recv, send, wait_child, Forked, Heap};

use super::child::{
    child_main, ChildRecord, DONE, EXIT, FIRST_WRITE, MEASURE, READY, RECORD_BYTES, REWRITE, WRITE,
};
use super::model::Mode;
use super::setup::Setup;

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

/// What the parent learnt about both processes.
pub(super) struct Measured {
    pub parent: ProcReport,
    pub child: ProcReport,
    /// Nanoseconds the parent spent in fork().
    pub fork_ns: u64,
    /// Nanoseconds in dup_mmap per cowstat (None without the module).
    pub dup_mmap_ns: Option<u64>,
}

/// Forks, lets the writer(s) write K pages inside the window, and fills in
/// both processes' reports (expectations as given).
pub(super) fn measure(
    s: &Setup,
    (exp_parent, exp_child): (Expected, Expected),
) -> Result<Measured> {
    let (mode, k, ps, heap, order, cs) = (s.mode, s.k, s.ps, &s.heap, &s.order[..], &s.cs);
    let stats_before = if s.loaded { cs.stats().ok() } else { None };
    let mut reader = s.loaded.then(|| ProcsReader::new(cs));
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
            child_main(heap, order, p2c_rx, c2p_tx)
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
        smaps_before_fork: s.smaps_before_fork,
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
        heap,
        order,
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
    if s.loaded {
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
    Ok(Measured {
        parent,
        child,
        fork_ns,
        dup_mmap_ns,
    })
}
