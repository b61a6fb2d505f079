// SPDX-License-Identifier: GPL-2.0
//! cowstat-lifecycle: process-lifecycle workloads for tests/guest/procs.sh
//! (docs/proc-interface.md: "Row lifecycle", "Reset semantics", `self`,
//! `pid`, pid namespaces).
//!
//! Each subcommand runs one scenario and prints `check NAME EXPECTED
//! OBSERVED` lines (one token each; a row is `S:wp_faults,cow_copies,
//! cow_zero,wp_reuses,thp_wp_faults` with `S` its state) plus `# ...`
//! diagnostics; the shell turns the checks into KTAP results.
//!
//! Exactness without guessing start-up noise: a child first makes every
//! page it will touch private (stack, buffers), reads its own row through
//! `/proc/cowstat/self` (R0), and from then on writes only its K heap pages
//! and allocates nothing, so every later view of its row must be R0 plus K
//! faults and K copies, while alive and after it ended.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

mod overflow;

use clap::{Parser, Subcommand};
use cow_demo::counter::Counter;
use cow_demo::procfs::cowstat::{parse_proc_line, read_all_into, stats_value, Counts};
use cow_demo::procfs::{pagemap, smaps};
use cow_demo::record::{recv_record, send_record};
use cow_demo::workload::{
    detach_from_caller, page_size, pause_forever, pipe, prefault_stack, recv, send, Heap,
};

const EXAMPLES: &str = "\
EXAMPLES:
    cowstat-lifecycle churn 100000 --spawn  # 100,000 processes, each with a row
    cowstat-lifecycle churn 1000            # the same with fork (5-10x slower)
    cowstat-lifecycle final --pages 1021    # a child's final row after waitpid
    cowstat-lifecycle self --pages 769      # self vs smaps/pagemap, pid, procs
    cowstat-lifecycle reuse --k1 2003 --k2 521   # needs a lowered pid_max
    unshare -p -f --mount-proc cowstat-lifecycle pidns --outside 1234
    cowstat-lifecycle hold 37               # leave a writer alive, print its pid
    cowstat-lifecycle overflow --procs 4500 # more live processes than slots
    cowstat-lifecycle pidrow 1234           # one row through /proc/cowstat/pid
    cowstat-lifecycle try-write fd:3 0      # write, print ok or the errno name
    cowstat-lifecycle storm --secs 10       # resets while writers fault

Exit status: 0 ran (the checks say what was seen), 2 usage or runtime error.";

/// Process-lifecycle workloads for the cowstat tests.
#[derive(Debug, Parser)]
#[command(
    name = "cowstat-lifecycle",
    version,
    about = "Process-lifecycle workloads for cowstat's procs/self/pid tests",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create N processes that each take one write fault (so each gets a row) and exit
    Churn {
        /// Processes to create.
        n: u64,
        /// Create the processes as posix_spawn does (CLONE_VM|CLONE_VFORK)
        /// instead of fork: each still takes a write fault of its own.
        #[arg(long)]
        spawn: bool,
    },
    /// A child writes K pages and exits; its final row via procs and pid after waitpid
    Final {
        #[arg(long, default_value_t = 1021)]
        pages: u64,
    },
    /// A child writes K pages; its `self` row vs smaps, pagemap, `pid` and `procs`
    #[command(name = "self")]
    SelfRow {
        #[arg(long, default_value_t = 769)]
        pages: u64,
    },
    /// Pid reuse: A writes K1 and ends; pids come round; B gets A's pid and writes K2
    Reuse {
        #[arg(long, default_value_t = 2003)]
        k1: u64,
        #[arg(long, default_value_t = 521)]
        k2: u64,
        /// Give up after this many process creations waiting for A's pid.
        #[arg(long, default_value_t = 200_000)]
        max_spins: u64,
    },
    /// Run as init of a new pid namespace: what procs, self and pid show there
    Pidns {
        /// A pid of the parent namespace that has a row (must give ESRCH here).
        #[arg(long)]
        outside: u32,
        #[arg(long, default_value_t = 23)]
        pages: u64,
    },
    /// Fork a child that writes K pages and stays alive; print its pid
    Hold { pages: u64 },
    /// Reset, then N live children copy one page each: more than the table's
    /// 4096 slots, so the last ones must go to <other>
    Overflow {
        #[arg(long, default_value_t = 4500)]
        procs: u64,
        /// Keep the children alive until stdin closes (after the checks).
        #[arg(long)]
        hold: bool,
    },
    /// Write a pid to /proc/cowstat/pid, read the same descriptor; print the row or the errno
    Pidrow { pid: String },
    /// Write DATA (no newline) to a path or to `fd:N`; print `ok` or the errno name
    TryWrite { target: String, data: String },
    /// Writers fault while another process resets in a loop; every procs and
    /// stats read is checked for cow_copies > wp_faults
    Storm {
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 4)]
        writers: u64,
        /// Pages each writer's short-lived child copies.
        #[arg(long, default_value_t = 64)]
        pages: u64,
        /// Long-lived writers instead: each loops over its own pages
        /// (MADV_DONTNEED, read, write: a zero-page write fault per page),
        /// so no process ends during the storm.
        #[arg(long)]
        zero_page: bool,
        /// No resetter (isolates rows ending from resets).
        #[arg(long)]
        no_reset: bool,
    },
}

type Res<T> = std::result::Result<T, String>;

fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Churn { n, spawn } => churn(n, spawn),
        Command::Final { pages } => final_row(pages),
        Command::SelfRow { pages } => self_row(pages),
        Command::Reuse { k1, k2, max_spins } => reuse(k1, k2, max_spins),
        Command::Pidns { outside, pages } => pidns(outside, pages),
        Command::Hold { pages } => hold(pages),
        Command::Overflow { procs, hold } => overflow::overflow(procs, hold),
        Command::Pidrow { pid } => {
            let mut buf = vec![0u8; 4096];
            match pid_row(&pid, &mut buf) {
                Ok(row) => println!("{}", tok(&row)),
                Err(e) => println!("{}", errno_name(&e)),
            }
            Ok(())
        }
        Command::TryWrite { target, data } => {
            println!("{}", try_write(&target, data.as_bytes()));
            Ok(())
        }
        Command::Storm {
            secs,
            writers,
            pages,
            zero_page,
            no_reset,
        } => storm(secs, writers.max(1), pages.max(1), zero_page, !no_reset),
    };
    if let Err(e) = r {
        eprintln!("cowstat-lifecycle: error: {e}");
        std::process::exit(2);
    }
}

// ---------------------------------------------------------------- rows

/// One row as read from procs, self or pid: state (`L`, `X`, `-`), pid, counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Row {
    state: char,
    pid: Option<u32>,
    counts: Counts,
}

impl Row {
    /// This row plus `k` faults that each copied a page.
    fn plus_copies(&self, state: char, k: u64) -> Row {
        let mut r = *self;
        r.state = state;
        r.counts.wp_faults += k;
        r.counts.cow_copies += k;
        r
    }
}

fn tok(r: &Row) -> String {
    counts_tok(r.state, &r.counts)
}

/// `S:wp_faults,cow_copies,cow_zero,wp_reuses,thp_wp_faults`.
fn counts_tok(state: char, c: &Counts) -> String {
    format!(
        "{state}:{},{},{},{},{}",
        c.wp_faults, c.cow_copies, c.cow_zero, c.wp_reuses, c.thp_wp_faults
    )
}

fn parse_row(line: &str) -> Option<Row> {
    let (pid, _comm, counts) = parse_proc_line(line, 0).ok()?;
    let state = match line.trim_end().rsplit(char::is_whitespace).next() {
        Some("L") => 'L',
        Some("X") => 'X',
        Some("-") => '-',
        _ => '?',
    };
    Some(Row { state, pid, counts })
}

fn check(name: &str, expected: impl std::fmt::Display, observed: impl std::fmt::Display) {
    println!("check {name} {expected} {observed}");
}

/// Reads a whole file into `buf` with no allocation on success.
fn read_into<'b>(path: &str, buf: &'b mut [u8]) -> io::Result<&'b str> {
    let mut f = File::open(Path::new(path))?;
    read_fd(&mut f, buf)
}

fn read_fd<'b>(f: &mut File, buf: &'b mut [u8]) -> io::Result<&'b str> {
    let n = read_all_into(f, buf)?;
    std::str::from_utf8(&buf[..n]).map_err(|_| io::Error::other("not UTF-8"))
}

/// The one row of a `self` or `pid` read (after the header).
fn single_row(text: &str) -> io::Result<Row> {
    text.lines()
        .nth(1)
        .and_then(parse_row)
        .ok_or_else(|| io::Error::other("no row after the header"))
}

/// The caller's own row through `/proc/cowstat/self` (no allocation).
fn self_row_now(buf: &mut [u8]) -> io::Result<Row> {
    single_row(read_into("/proc/cowstat/self", buf)?)
}

/// One process's row through `/proc/cowstat/pid`: write the pid, read the
/// same descriptor (no allocation on success).
fn pid_row(pid: &str, buf: &mut [u8]) -> io::Result<Row> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(Path::new("/proc/cowstat/pid"))?;
    f.write_all(pid.as_bytes())?;
    single_row(read_fd(&mut f, buf)?)
}

fn pid_row_num(pid: u32, buf: &mut [u8]) -> io::Result<Row> {
    let mut digits = [0u8; 16];
    let mut w = &mut digits[..];
    write!(w, "{pid}")?;
    let len = 16 - w.len();
    pid_row(std::str::from_utf8(&digits[..len]).unwrap_or("0"), buf)
}

fn pid_tok(pid: u32, buf: &mut [u8]) -> String {
    match pid_row_num(pid, buf) {
        Ok(r) => tok(&r),
        Err(e) => errno_name(&e),
    }
}

/// Every row of `pid` in `procs`, in file order, as tokens joined by `+`.
fn procs_rows(pid: u32, buf: &mut [u8]) -> Res<String> {
    let text = read_into("/proc/cowstat/procs", buf).map_err(|e| format!("read procs: {e}"))?;
    let rows: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(parse_row)
        .filter(|r| r.pid == Some(pid))
        .map(|r| tok(&r))
        .collect();
    Ok(if rows.is_empty() {
        "none".into()
    } else {
        rows.join("+")
    })
}

fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::ESRCH) => "ESRCH".into(),
        Some(libc::EINVAL) => "EINVAL".into(),
        Some(libc::EIO) => "EIO".into(),
        Some(libc::ENOENT) => "ENOENT".into(),
        Some(libc::EBADF) => "EBADF".into(),
        Some(n) => format!("errno{n}"),
        None => format!("error({})", e.to_string().replace(' ', "_")),
    }
}

fn try_write(target: &str, data: &[u8]) -> String {
    let r = if let Some(fd) = target.strip_prefix("fd:") {
        let Ok(fd) = fd.parse::<i32>() else {
            return "EBADF".into();
        };
        // SAFETY: a plain write(2) from a valid buffer to a caller-named fd.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    } else {
        OpenOptions::new()
            .write(true)
            .open(target)
            .and_then(|mut f| f.write(data).map(|_| ()))
    };
    match r {
        Ok(()) => "ok".into(),
        Err(e) => errno_name(&e),
    }
}

// ---------------------------------------------------------------- processes

fn raw_fork() -> Res<u32> {
    // SAFETY: single-threaded; children only touch memory, pipes and /proc
    // files, and leave with _exit.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", io::Error::last_os_error())),
        p => Ok(p as u32),
    }
}

fn reap(pid: u32) -> Res<i32> {
    use rustix::process::{waitpid, Pid, WaitOptions};
    let p = Pid::from_raw(pid as i32).ok_or("waitpid(0)")?;
    loop {
        match waitpid(Some(p), WaitOptions::empty()) {
            Ok(Some((_, st))) => return Ok(st.exit_status().unwrap_or(128)),
            Ok(None) => return Err(format!("waitpid({pid}): no status")),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("waitpid({pid}): {}", io::Error::from(e))),
        }
    }
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit touches no user memory.
    unsafe { libc::_exit(code) }
}

/// A heap of `pages` pages, written before any fork so its pages are shared
/// (copy-on-write) with every child.
fn shared_heap(pages: u64) -> Res<Heap> {
    let mut h = Heap::new(pages.max(1) * page_size(), false).map_err(|e| e.to_string())?;
    h.touch_all(true);
    Ok(h)
}

/// Makes `buf`'s pages private to the caller (first write after a fork).
fn dirty(buf: &mut [u8]) {
    for i in (0..buf.len()).step_by(1024) {
        // SAFETY: i < len.
        unsafe { std::ptr::write_volatile(buf.as_mut_ptr().add(i), 0) };
    }
}

/// Child side of a writer: make everything private, report R0 (its own
/// row) on `tx`, then for each byte received on `rx`: `W` write the K
/// pages and answer `D`, anything else (or EOF) exit. With `autowrite`
/// the pages are written right after R0, then the child exits.
#[inline(never)]
fn writer_child(
    heap: &Heap,
    k: u64,
    buf: &mut [u8],
    rx: &mut File,
    tx: &mut File,
    autowrite: bool,
) -> ! {
    prefault_stack();
    dirty(buf);
    let code = (|| -> io::Result<()> {
        let r0 = self_row_now(buf)?;
        send_record(tx, &r0.counts).map_err(io::Error::other)?;
        if autowrite {
            for p in 0..k {
                heap.write_page(p, 2);
            }
            return Ok(());
        }
        loop {
            let mut cmd = [0u8; 1];
            if rx.read(&mut cmd)? == 0 || cmd[0] != b'W' {
                return Ok(());
            }
            for p in 0..k {
                heap.write_page(p, 2);
            }
            tx.write_all(b"D")?;
        }
    })();
    exit_now(if code.is_ok() { 0 } else { 3 })
}

struct Writer {
    pid: u32,
    r0: Row,
    tx: File,
    rx: File,
}

impl Writer {
    /// Forks a writer child of `heap` (see [`writer_child`]).
    fn start(heap: &Heap, k: u64, buf: &mut [u8], autowrite: bool) -> Res<Writer> {
        let (mut c_rx, p_tx) = pipe().map_err(|e| e.to_string())?;
        let (mut p_rx, mut c_tx) = pipe().map_err(|e| e.to_string())?;
        let pid = raw_fork()?;
        if pid == 0 {
            drop((p_tx, p_rx));
            writer_child(heap, k, buf, &mut c_rx, &mut c_tx, autowrite);
        }
        drop((c_rx, c_tx));
        let counts =
            recv_record::<5, Counts>(&mut p_rx).map_err(|e| format!("writer {pid}: {e}"))?;
        Ok(Writer {
            pid,
            r0: Row {
                state: 'L',
                pid: None,
                counts,
            },
            tx: p_tx,
            rx: p_rx,
        })
    }

    fn write(&mut self) -> Res<()> {
        send(&mut self.tx, b"W").map_err(|e| e.to_string())?;
        let mut b = [0u8; 1];
        recv(&mut self.rx, &mut b).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn finish(self) -> Res<i32> {
        let pid = self.pid;
        drop(self.tx);
        drop(self.rx);
        reap(pid)
    }
}

// ---------------------------------------------------------------- scenarios

/// Child of a `--spawn` churn: writes one page of the parent's memory (a
/// write-protected page: a write fault charged to this child) and exits.
extern "C" fn churn_child(page: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `page` points into the parent's live heap (we share its mm).
    unsafe {
        std::ptr::write_volatile(page as *mut u8, 2);
        libc::_exit(0)
    }
}

fn churn(n: u64, spawn: bool) -> Res<()> {
    let t = Instant::now();
    // A worker process does the churn, so this one's memory stays out of it.
    let w = raw_fork()?;
    if w == 0 {
        let r = if spawn { spawn_churn(n) } else { fork_churn(n) };
        if let Err(e) = &r {
            eprintln!("cowstat-lifecycle: churn: {e}");
        }
        exit_now(r.map_or(3, |_| 0))
    }
    let st = reap(w)?;
    let s = t.elapsed().as_secs_f64();
    let how = if spawn {
        "posix_spawn-style clone(CLONE_VM|CLONE_VFORK), one write fault, exit"
    } else {
        "fork, one COW copy, exit, waitpid"
    };
    println!(
        "# churn: {n} processes ({how}) in {s:.1} s, {:.0} per second",
        n as f64 / s
    );
    check("churn_workers_ok", 0, st);
    Ok(())
}

/// `n` children made by fork that each copy one page and exit.
fn fork_churn(n: u64) -> Res<()> {
    let heap = shared_heap(1)?;
    for _ in 0..n {
        let c = raw_fork()?;
        if c == 0 {
            heap.write_page(0, 2);
            exit_now(0)
        }
        reap(c)?;
    }
    Ok(())
}

/// `n` children made as posix_spawn makes them (they share our memory) that
/// each write one page of ours and exit, autoreaped. The pages are made
/// write-protected by forking a partner that exits at once, so each write
/// is a write fault of the child's own (a reuse: no page to allocate or
/// copy) and the child gets a row. Under TCG this is ~5x faster than fork.
fn spawn_churn(n: u64) -> Res<()> {
    // One CPU: the children's write faults then need no TLB shootdown on
    // the other CPU, and the heap's pages sit in this CPU's LRU batches,
    // which the fault drains, so it can reuse them.
    cow_demo::workload::pin_to_current_cpu().map_err(|e| e.to_string())?;
    let heap = shared_heap(4096)?;
    let mut stack = vec![1u8; 16 << 10];
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: children are reaped by the kernel as they exit (no zombies).
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let pages = heap.pages();
    for i in 0..n {
        let p = i % pages;
        if p == 0 {
            let partner = raw_fork()?;
            if partner == 0 {
                exit_now(0)
            }
            // With SIGCHLD ignored, waitpid returns ECHILD once it is gone.
            let partner = rustix::process::Pid::from_raw(partner as i32);
            while matches!(
                rustix::process::waitpid(partner, rustix::process::WaitOptions::empty()),
                Err(rustix::io::Errno::INTR)
            ) {}
        }
        let page = (heap.addr() + p * heap.page_size()) as *mut libc::c_void;
        // SAFETY: the child runs churn_child on its own stack and exits;
        // CLONE_VFORK suspends us until it has released our memory.
        unsafe { clone_sharing_memory(churn_child, top, libc::CLONE_VFORK, page) }
            .map_err(|e| format!("clone: {e}"))?;
    }
    Ok(())
}

/// A child process that shares our memory (`CLONE_VM`, not a thread: its
/// own thread group, so its own cowstat row) and runs `f(arg)` on the
/// stack that ends at `stack_top`; `extra` adds clone flags. Returns its pid.
///
/// # Safety
///
/// `stack_top` is the 16-byte-aligned end of memory that nobody else uses
/// and that stays mapped until the child has exited; `f` must only touch
/// memory that stays valid until then, and must end with `_exit` or
/// `SYS_exit` (never return into our frames).
unsafe fn clone_sharing_memory(
    f: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    stack_top: usize,
    extra: libc::c_int,
    arg: *mut libc::c_void,
) -> io::Result<u32> {
    // SAFETY: the caller's contract above.
    let pid = unsafe {
        libc::clone(
            f,
            stack_top as *mut libc::c_void,
            libc::CLONE_VM | extra | libc::SIGCHLD,
            arg,
        )
    };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid as u32)
    }
}

fn final_row(k: u64) -> Res<()> {
    let heap = shared_heap(k)?;
    let mut buf = vec![1u8; 1 << 20];
    let w = Writer::start(&heap, k, &mut buf, true)?;
    let (pid, r0) = (w.pid, w.r0);
    let st = w.finish()?;
    println!(
        "# child {pid} R0 {} wrote {k} pages, exit status {st}",
        tok(&r0)
    );
    let want = tok(&r0.plus_copies('X', k));
    check("final_procs", &want, procs_rows(pid, &mut buf)?);
    check("final_pidfile", &want, pid_tok(pid, &mut buf));
    Ok(())
}

fn self_row(k: u64) -> Res<()> {
    let heap = shared_heap(k * 2)?;
    let mut buf = vec![1u8; 1 << 20];
    let mut pbuf = vec![1u8; 64 << 10];
    let (mut p_rx, mut c_tx) = pipe().map_err(|e| e.to_string())?;
    let pid = raw_fork()?;
    if pid == 0 {
        drop(p_rx);
        prefault_stack();
        dirty(&mut buf);
        dirty(&mut pbuf);
        let code = (|| -> Res<()> {
            let ps = page_size();
            let (a, e) = (heap.addr(), heap.end());
            let sm0 = smaps::read_range(None, a, e).map_err(|e| e.to_string())?;
            let pm0 = pagemap::read_range(None, a, e, ps).map_err(|e| e.to_string())?;
            let me = std::process::id();
            let r0 = self_row_now(&mut pbuf).map_err(|e| e.to_string())?;
            // The window: K heap pages, then three views of the row with no
            // event in between.
            for p in 0..k {
                heap.write_page(p * 2, 2);
            }
            let r1 = self_row_now(&mut pbuf).map_err(|e| e.to_string())?;
            let via_pid = pid_tok(me, &mut pbuf);
            let via_procs = procs_rows(me, &mut buf)?;
            let sm1 = smaps::read_range(None, a, e).map_err(|e| e.to_string())?;
            let pm1 = pagemap::read_range(None, a, e, ps).map_err(|e| e.to_string())?;
            let kb = ps / 1024;
            let mut out = String::new();
            out += &format!("# child {me}: self R0 {} R1 {}\n", tok(&r0), tok(&r1));
            out += &format!(
                "# heap smaps Private_Dirty {} -> {} kB, pagemap exclusive {} -> {}\n",
                sm0.private_dirty_kb, sm1.private_dirty_kb, pm0.exclusive, pm1.exclusive
            );
            let d = r1.counts.delta(&r0.counts);
            out += &format!(
                "check self_copies_faults_delta {k},{k} {},{}\n",
                d.cow_copies, d.wp_faults
            );
            out += &format!(
                "check self_vs_smaps_pagemap {k},{k},{k} {},{},{}\n",
                d.cow_copies,
                (sm1.private_dirty_kb - sm0.private_dirty_kb) / kb,
                pm1.exclusive - pm0.exclusive
            );
            out += &format!(
                "check self_state_pid L,{me} {},{}\n",
                r1.state,
                r1.pid.unwrap_or(0)
            );
            out += &format!("check self_equals_pid_file {} {}\n", tok(&r1), via_pid);
            out += &format!("check self_equals_procs {} {}\n", tok(&r1), via_procs);
            c_tx.write_all(out.as_bytes()).map_err(|e| e.to_string())
        })();
        if let Err(e) = &code {
            let _ = writeln!(c_tx, "# child error: {e}");
        }
        exit_now(code.is_ok() as i32 ^ 1)
    }
    drop(c_tx);
    let mut out = String::new();
    p_rx.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let st = reap(pid)?;
    print!("{out}");
    check("self_child_status", 0, st);
    Ok(())
}

/// Whether the next pid the kernel hands out after `last` is `target`: every
/// pid strictly between them (cyclically, pids from 300 to pid_max) is taken.
fn next_pid_is(last: u32, target: u32, pid_max: u32) -> bool {
    let mut p = last;
    loop {
        p = if p + 1 >= pid_max { 300 } else { p + 1 };
        if p == target {
            return true;
        }
        let free = rustix::process::Pid::from_raw(p as i32).is_some_and(|pid| {
            rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
        });
        if free || p == last {
            return false;
        }
    }
}

extern "C" fn spin_child(_: *mut libc::c_void) -> libc::c_int {
    // SAFETY: _exit touches no user memory.
    unsafe { libc::_exit(0) }
}

/// Creates a process that takes no counted event (it shares our memory,
/// CLONE_VM|CLONE_VFORK, and exits at once): it only consumes a pid.
fn spin_pid(stack: &mut [u8]) -> Res<u32> {
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: the child runs spin_child on its own (already private) stack
    // and exits; CLONE_VFORK suspends us until it has.
    let pid = unsafe {
        libc::clone(
            spin_child,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::null_mut(),
        )
    };
    if pid < 0 {
        return Err(format!("clone: {}", io::Error::last_os_error()));
    }
    reap(pid as u32)?;
    Ok(pid as u32)
}

fn reuse(k1: u64, k2: u64, max_spins: u64) -> Res<()> {
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .map_err(|e| e.to_string())?
        .trim()
        .parse()
        .map_err(|_| "pid_max unreadable".to_string())?;
    let heap = shared_heap(k1.max(k2))?;
    let mut buf = vec![1u8; 1 << 20];
    let mut stack = vec![1u8; 64 << 10];

    // A: writes K1 pages, ends, is reaped.
    let a = Writer::start(&heap, k1, &mut buf, true)?;
    let (a_pid, a_r0) = (a.pid, a.r0);
    a.finish()?;
    let a_final = a_r0.plus_copies('X', k1);
    println!(
        "# A: pid {a_pid}, R0 {}, wrote {k1} pages and ended; pid_max {pid_max}",
        tok(&a_r0)
    );
    check("reuse_a_final_row", tok(&a_final), pid_tok(a_pid, &mut buf));

    // Spend pids until the next one is A's again, then fork B.
    let t = Instant::now();
    let mut spins = 0u64;
    let b = loop {
        let last = spin_pid(&mut stack)?;
        spins += 1;
        if next_pid_is(last, a_pid, pid_max) {
            let w = Writer::start(&heap, k2, &mut buf, false)?;
            if w.pid == a_pid {
                break Some(w);
            }
            println!("# candidate got pid {} instead of {a_pid}; again", w.pid);
            w.finish()?;
        }
        if spins >= max_spins {
            break None;
        }
    };
    println!(
        "# {spins} pids spent in {:.1} s before B got A's pid",
        t.elapsed().as_secs_f64()
    );
    let Some(mut b) = b else {
        check("reuse_b_got_a_pid", a_pid, "never");
        return Ok(());
    };
    check("reuse_b_got_a_pid", a_pid, b.pid);
    let b_r0 = b.r0;
    println!("# B: pid {}, R0 {}", b.pid, tok(&b_r0));
    // Before B writes: its row is its own start-up only, not A's K1 as well.
    let c = b_r0.counts.cow_copies;
    check(
        "reuse_b_not_inherited",
        format!("<{k1}"),
        if c < k1 {
            format!("<{k1}")
        } else {
            c.to_string()
        },
    );
    check("reuse_b_before_write", tok(&b_r0), pid_tok(a_pid, &mut buf));
    b.write()?;
    let b_live = b_r0.plus_copies('L', k2);
    check(
        "reuse_b_live_pid_file",
        tok(&b_live),
        pid_tok(a_pid, &mut buf),
    );
    // procs lists live rows before exited ones: B's row, then A's final row.
    check(
        "reuse_procs_live_and_old",
        format!("{}+{}", tok(&b_live), tok(&a_final)),
        procs_rows(a_pid, &mut buf)?,
    );
    b.finish()?;
    let b_final = b_r0.plus_copies('X', k2);
    check(
        "reuse_b_final_pid_file",
        tok(&b_final),
        pid_tok(a_pid, &mut buf),
    );
    // Exited rows are listed oldest first.
    check(
        "reuse_procs_both_final",
        format!("{}+{}", tok(&a_final), tok(&b_final)),
        procs_rows(a_pid, &mut buf)?,
    );
    Ok(())
}

fn pidns(outside: u32, k: u64) -> Res<()> {
    let me = std::process::id();
    let heap = shared_heap(k)?;
    let mut buf = vec![1u8; 1 << 20];
    prefault_stack();
    let mut w = Writer::start(&heap, k, &mut buf, false)?;
    w.write()?;
    let child_live = w.r0.plus_copies('L', k);
    let text = read_into("/proc/cowstat/procs", &mut buf)
        .map_err(|e| format!("read procs: {e}"))?
        .to_string();
    for l in text.lines() {
        println!("# ns procs: {l}");
    }
    let rows: Vec<Row> = text.lines().skip(1).filter_map(parse_row).collect();
    let mut listed: Vec<String> = rows
        .iter()
        .map(|r| format!("{}{}", r.state, r.pid.map_or("-".into(), |p| p.to_string())))
        .collect();
    listed.sort();
    check("pidns_init_is_pid_1", 1, me);
    check(
        "pidns_procs_lists_only_ns",
        format!("L1,L{}", w.pid),
        listed.join(","),
    );
    check(
        "pidns_child_row_ns_pid",
        format!("{}@{}", tok(&child_live), w.pid),
        rows.iter()
            .find(|r| r.pid == Some(w.pid))
            .map_or("none".into(), |r| format!("{}@{}", tok(r), w.pid)),
    );
    // Our pages are shared with the child again since the fork: make the
    // stack and buffers private first, so the two reads see the same row.
    let mut buf2 = vec![1u8; 64 << 10];
    prefault_stack();
    dirty(&mut buf2);
    let own = self_row_now(&mut buf2).map_err(|e| e.to_string())?;
    let via_pid = pid_row_num(1, &mut buf2);
    check("pidns_self_pid", 1, own.pid.unwrap_or(0));
    check(
        "pidns_pid_file_1_is_self",
        tok(&own),
        via_pid.map_or_else(|e| errno_name(&e), |r| tok(&r)),
    );
    check(
        "pidns_outside_pid_esrch",
        "ESRCH",
        pid_tok(outside, &mut buf),
    );
    w.finish()?;
    Ok(())
}

fn hold(k: u64) -> Res<()> {
    let heap = shared_heap(k)?;
    let mut buf = vec![1u8; 64 << 10];
    let (mut p_rx, mut c_tx) = pipe().map_err(|e| e.to_string())?;
    let pid = raw_fork()?;
    if pid == 0 {
        drop(p_rx);
        prefault_stack();
        dirty(&mut buf);
        for p in 0..k {
            heap.write_page(p, 2);
        }
        // Let the shell's $(...) finish: no stdio of ours stays open.
        detach_from_caller();
        let _ = c_tx.write_all(b"R");
        drop(c_tx);
        // SIGTERM/SIGKILL end us.
        pause_forever();
    }
    drop(c_tx);
    let mut b = [0u8; 1];
    recv(&mut p_rx, &mut b).map_err(|e| e.to_string())?;
    println!("{pid}");
    Ok(())
}

fn storm(secs: u64, writers: u64, pages: u64, zero_page: bool, resets: bool) -> Res<()> {
    let heap = shared_heap(pages)?;
    let until = Duration::from_secs(secs);
    let (mut r_rx, mut r_tx) = pipe().map_err(|e| e.to_string())?;
    let mut kids = vec![];
    for _ in 0..writers {
        let w = raw_fork()?;
        if w == 0 {
            let t = Instant::now();
            if zero_page {
                let len = (pages * heap.page_size()) as usize;
                let base = heap.addr() as *mut u8;
                while t.elapsed() < until {
                    // SAFETY: our own heap mapping; after MADV_DONTNEED a
                    // read maps the zero page and the write replaces it.
                    unsafe {
                        libc::madvise(base.cast(), len, libc::MADV_DONTNEED);
                        for p in 0..pages as usize {
                            let a = base.add(p * heap.page_size() as usize);
                            std::ptr::read_volatile(a);
                            std::ptr::write_volatile(a, 2);
                        }
                    }
                }
                exit_now(0)
            }
            while t.elapsed() < until {
                match raw_fork() {
                    Ok(0) => {
                        for p in 0..pages {
                            heap.write_page(p, 2);
                        }
                        exit_now(0)
                    }
                    Ok(c) => {
                        let _ = reap(c);
                    }
                    Err(_) => exit_now(4),
                }
            }
            exit_now(0)
        }
        kids.push(w);
    }
    let resetter = raw_fork()?;
    if resetter == 0 {
        let t = Instant::now();
        let (mut ok, mut failed) = (0u64, 0u64);
        while t.elapsed() < until {
            if !resets {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            match try_write("/proc/cowstat/stats", b"0").as_str() {
                "ok" => ok += 1,
                _ => failed += 1,
            }
        }
        let _ = send_record(&mut r_tx, &[ok, failed]);
        exit_now(0)
    }
    drop(r_tx);
    let mut buf = vec![1u8; 1 << 20];
    let mut sbuf = vec![1u8; 4096];
    let t = Instant::now();
    let (mut reads, mut rows, mut bad_rows, mut bad_stats) = (0u64, 0u64, 0u64, 0u64);
    let mut shown = 0;
    let mut procs = File::open("/proc/cowstat/procs").map_err(|e| e.to_string())?;
    let mut stats = File::open("/proc/cowstat/stats").map_err(|e| e.to_string())?;
    while t.elapsed() < until {
        procs.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        let text = read_fd(&mut procs, &mut buf).map_err(|e| e.to_string())?;
        reads += 1;
        for line in text.lines().skip(1) {
            let Some(r) = parse_row(line) else { continue };
            rows += 1;
            let c = &r.counts;
            if c.cow_copies > c.wp_faults || c.cow_copies + c.cow_zero + c.wp_reuses > c.wp_faults {
                bad_rows += 1;
                if shown < 5 {
                    shown += 1;
                    println!("# bad row: {line}");
                }
            }
        }
        stats.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        let s = read_fd(&mut stats, &mut sbuf).map_err(|e| e.to_string())?;
        let get = |c| stats_value(s, c).unwrap_or(0);
        let (copies, faults) = (get(Counter::CowCopies), get(Counter::WpFaults));
        if copies > faults {
            bad_stats += 1;
            if shown < 5 {
                shown += 1;
                println!("# bad stats: wp_faults {faults} cow_copies {copies}");
            }
        }
    }
    let do_resets = resets;
    let [resets, refused] = recv_record::<2, [u64; 2]>(&mut r_rx).map_err(|e| e.to_string())?;
    reap(resetter)?;
    for k in kids {
        reap(k)?;
    }
    let how = if zero_page {
        format!("{writers} long-lived writers (zero-page faults on {pages} pages, again and again)")
    } else {
        format!("{writers} writers (short-lived children copying {pages} pages each)")
    };
    println!(
        "# storm: {secs} s, {how}, {resets} resets ({refused} refused), {reads} procs+stats reads, {rows} rows checked"
    );
    check("storm_rows_copies_le_faults", 0, bad_rows);
    check("storm_stats_copies_le_faults", 0, bad_stats);
    check(
        "storm_ran",
        "resets,reads",
        format!(
            "{},{}",
            if resets >= 10 || !do_resets {
                "resets"
            } else {
                "few_resets"
            },
            if reads >= 10 { "reads" } else { "few_reads" }
        ),
    );
    Ok(())
}
