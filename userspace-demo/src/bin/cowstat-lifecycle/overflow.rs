// SPDX-License-Identifier: GPL-2.0
//! `overflow`: more live processes than cowstat's table has slots
//! (docs/proc-interface.md, "Row lifecycle": 4096 slots, `<other>`).
//!
//! N children are made as posix_spawn makes them (clone with `CLONE_VM`
//! and `CLONE_FILES`: each costs a task and a small stack, not an address
//! space, so thousands fit in a small VM) and stay alive, blocked on a pipe.
//! Each writes one page of a heap that a paused partner process still
//! shares: one write fault and one copy, charged to the child. So every
//! child that found a slot has the row `L:1,1,0,0,0`, and each one that did
//! not put exactly one fault and one copy into `<other>`.
//!
//! Exactness needs a quiet system while the children are created and read
//! (the caller runs nothing else); with `--hold` the children stay alive
//! until stdin closes, so the caller can then load the full table.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use cow_demo::counter::Counter;
use cow_demo::procfs::cowstat::stats_value;
use cow_demo::procfs::cowstat::Counts;
use cow_demo::workload::{page_size, pipe, poll_readable, prefault_stack};

use crate::{
    check, clone_sharing_memory, counts_tok, exit_now, parse_row, raw_fork, read_into, shared_heap,
    tok, try_write, Res,
};

/// Stack of each child: it calls two raw syscalls and exits.
const CHILD_STACK: usize = 8 << 10;
/// procs with 4096 live and 1024 ended rows is ~420 KB.
const PROCS_BUF: usize = 4 << 20;
/// Longest wait for the next child to say it is ready (KASAN under TCG
/// starts ~100 per second).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Write end of the "ready" pipe and read end of the "release" pipe, read by
/// the children (statics: set before any child exists, only read after).
static READY_FD: AtomicI32 = AtomicI32::new(-1);
static RELEASE_FD: AtomicI32 = AtomicI32::new(-1);

/// A child: copy one page, say so, block until the release pipe closes.
/// Raw syscalls only: the child shares our memory and must write nothing
/// but its page and its own stack (glibc wrappers could touch our TLS).
extern "C" fn overflow_child(page: *mut libc::c_void) -> libc::c_int {
    let ready = READY_FD.load(Ordering::Relaxed);
    let release = RELEASE_FD.load(Ordering::Relaxed);
    let mut byte = b'R';
    // SAFETY: `page` points into the parent's heap, which lives until every
    // child is gone (the parent waits for that); the syscalls use a byte on
    // this child's own stack.
    unsafe {
        std::ptr::write_volatile(page as *mut u8, 2);
        libc::syscall(libc::SYS_write, ready, &byte as *const u8, 1usize);
        libc::syscall(libc::SYS_read, release, &mut byte as *mut u8, 1usize);
        libc::syscall(libc::SYS_exit, 0);
    }
    0
}

/// What one read of procs and stats shows about the children.
#[derive(Default)]
struct Census {
    /// Children with a row of their own.
    child_rows: u64,
    /// Children's rows that are not `L:1,1,0,0,0`.
    bad_child_rows: u64,
    /// The first bad row, for the diagnostic.
    first_bad: Option<String>,
    /// Every live row (ours, the partner's, the shell's, the children's).
    live_rows: u64,
    /// The `<other>` row (zero if absent).
    other: Counts,
    /// Sum of every row: live, ended and `<other>`.
    sum: Counts,
}

fn census(procs: &str, children: &HashSet<u32>) -> Census {
    let mut c = Census::default();
    for row in procs.lines().skip(1).filter_map(parse_row) {
        c.sum.add(&row.counts);
        match (row.state, row.pid) {
            ('-', _) => c.other = row.counts,
            ('L', Some(pid)) => {
                c.live_rows += 1;
                if children.contains(&pid) {
                    c.child_rows += 1;
                    let t = tok(&row);
                    if t != "L:1,1,0,0,0" {
                        c.bad_child_rows += 1;
                        c.first_bad.get_or_insert(format!("{pid} {t}"));
                    }
                }
            }
            _ => {}
        }
    }
    c
}

/// Creates `n` children (see the module doc), checks the table, holds them
/// if asked, releases them and checks that their rows were freed.
pub fn overflow(n: u64, hold: bool) -> Res<()> {
    let t0 = Instant::now();
    let r = try_write("/proc/cowstat/stats", b"0");
    if r != "ok" {
        return Err(format!("reset /proc/cowstat/stats: {r} (run as root)"));
    }
    let heap = shared_heap(n)?;
    let ps = page_size() as usize;
    let (mut ready_rx, ready_tx) = pipe().map_err(|e| e.to_string())?;
    let (release_rx, release_tx) = pipe().map_err(|e| e.to_string())?;
    READY_FD.store(ready_tx.as_raw_fd(), Ordering::Relaxed);
    RELEASE_FD.store(release_rx.as_raw_fd(), Ordering::Relaxed);

    // The partner keeps every heap page shared, so each child's write copies.
    let partner = raw_fork()?;
    if partner == 0 {
        drop((release_tx, ready_tx));
        let mut b = [0u8; 1];
        let _ = (&release_rx).read(&mut b);
        exit_now(0)
    }
    // Stacks mapped after the partner's fork and written here: the children
    // then take no fault on them.
    let stacks = vec![1u8; n as usize * CHILD_STACK];
    let mut procs_buf = vec![1u8; PROCS_BUF];
    let mut stats_buf = vec![1u8; 64 << 10];
    // Our own copies of pages shared with the partner happen now, not
    // between the two reads below: deep stack, and the allocator's pages
    // that opening a file uses (a dry run of the same reads).
    prefault_stack();
    read_both(&mut procs_buf, &mut stats_buf)?;
    // SAFETY: children are reaped by the kernel as they exit (no zombies);
    // waitpid returns ECHILD once all are gone.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };

    let mut children = HashSet::with_capacity(n as usize);
    let mut clone_err = None;
    for i in 0..n as usize {
        let top = (stacks.as_ptr() as usize + (i + 1) * CHILD_STACK) & !15;
        let page = (heap.addr() as usize + i * ps) as *mut libc::c_void;
        // SAFETY: the child runs overflow_child on its own stack slice (which
        // outlives it: we wait for every child below) and touches only its
        // page of the heap and that stack, then calls SYS_exit.
        match unsafe { clone_sharing_memory(overflow_child, top, libc::CLONE_FILES, page) } {
            Ok(pid) => children.insert(pid),
            Err(e) => {
                clone_err = Some(e);
                break;
            }
        };
    }
    let created = children.len() as u64;
    // Whatever fails from here on, the children are released and waited
    // for below before their stacks are freed.
    let held = (|| -> Res<()> {
        // A child that died before saying so (the OOM killer) would leave this
        // read waiting forever: the write end stays open in the table we share.
        let mut ready = 0u64;
        let mut b = [0u8; 512];
        while ready < created {
            match poll_readable(&ready_rx, READY_TIMEOUT) {
                Ok(true) => {}
                Ok(false) => {
                    println!(
                        "# {ready} of {created} children ready after {} s without progress",
                        READY_TIMEOUT.as_secs()
                    );
                    break;
                }
                Err(e) => return Err(format!("poll the ready pipe: {e}")),
            }
            let want = (created - ready).min(b.len() as u64) as usize;
            match ready_rx.read(&mut b[..want]) {
                Ok(0) => break,
                Ok(k) => ready += k as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read the ready pipe: {e}")),
            }
        }
        let fill_s = t0.elapsed().as_secs_f64();
        // procs, then stats, with no event in between (the children are blocked,
        // the partner is paused, and every page the reads write is already ours).
        let (procs, stats) = read_both(&mut procs_buf, &mut stats_buf)?;

        if let Some(e) = &clone_err {
            let hint = if e.raw_os_error() == Some(libc::EAGAIN) {
                " (raise /proc/sys/kernel/threads-max or pid_max)"
            } else {
                ""
            };
            println!("# clone failed after {created} children: {e}{hint}");
        }
        let c = census(procs, &children);
        let spilled = created.saturating_sub(c.child_rows);
        println!(
            "# {created} children in {fill_s:.1} s: {} with a row, {spilled} in <other>; \
         live rows {}; <other> {}",
            c.child_rows,
            c.live_rows,
            counts_tok('-', &c.other)
        );
        if let Some(bad) = &c.first_bad {
            println!("# first child row that is not L:1,1,0,0,0: {bad}");
        }
        check("overflow_children_ready", n, ready);
        check("overflow_child_rows_exact", 0, c.bad_child_rows);
        check(
            "overflow_children_spilled",
            "yes",
            if spilled > 0 && c.child_rows > 0 {
                "yes"
            } else {
                "no"
            },
        );
        let want_other = Counts {
            wp_faults: spilled,
            cow_copies: spilled,
            ..Counts::default()
        };
        check(
            "overflow_other_holds_spilled",
            counts_tok('-', &want_other),
            counts_tok('-', &c.other),
        );
        check(
            "overflow_stats_equal_sum_of_rows",
            counts_tok('=', &c.sum),
            counts_tok('=', &stats_counts(stats)),
        );
        let _ = io::stdout().flush();

        if hold {
            println!("# holding {created} children: close stdin to release them");
            let _ = io::stdout().flush();
            let mut sink = [0u8; 64];
            while matches!(io::stdin().read(&mut sink), Ok(k) if k > 0) {}
        }

        Ok(())
    })();

    let t1 = Instant::now();
    drop(release_tx);
    // Every child and the partner see EOF and exit; wait for all of them.
    loop {
        // SAFETY: plain waitpid on any child; no status wanted.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) };
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    // ECHILD can come before the last children are released: an autoreaped
    // child is EXIT_DEAD, which wait skips, before it calls release_task
    // (where cowstat frees its row) and unhashes its pid. Once kill(pid, 0)
    // says ESRCH, release_task has run. Bounded, in case a pid is reused.
    let deadline = Instant::now() + Duration::from_secs(10);
    for &pid in &children {
        // SAFETY: signal 0 only checks that the pid exists.
        while unsafe { libc::kill(pid as libc::pid_t, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    held?;
    let (procs, _) = read_both(&mut procs_buf, &mut stats_buf)?;
    let after = census(procs, &children);
    println!(
        "# released in {:.1} s: live rows {}, rows of our children still live {}",
        t1.elapsed().as_secs_f64(),
        after.live_rows,
        after.child_rows
    );
    check("overflow_released_rows_freed", 0, after.child_rows);
    drop((heap, stacks, release_rx));
    Ok(())
}

/// procs, then stats, back to back.
fn read_both<'p, 's>(procs: &'p mut [u8], stats: &'s mut [u8]) -> Res<(&'p str, &'s str)> {
    let p = read_into("/proc/cowstat/procs", procs)
        .map_err(|e| format!("read /proc/cowstat/procs: {e}"))?;
    let s = read_into("/proc/cowstat/stats", stats)
        .map_err(|e| format!("read /proc/cowstat/stats: {e}"))?;
    Ok((p, s))
}

/// The five procs columns as `stats` gives them (`u64::MAX` if missing).
fn stats_counts(stats: &str) -> Counts {
    Counts::from_columns(Counter::PROCS.map(|c| stats_value(stats, c).unwrap_or(u64::MAX)))
}
