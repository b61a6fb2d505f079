// SPDX-License-Identifier: GPL-2.0
//! cowstat-fuzz: bad input against every /proc/cowstat file, with a fixed
//! seed and a bounded number of iterations, printed as KTAP.
//!
//! Writes random bytes, over-long buffers, partial writes and writes at
//! offsets to `stats`; writes to the read-only files; reads every file with
//! tiny buffers, odd offsets and lseek. Writes random bytes and random
//! numbers to `pid` on one descriptor and reads it back after each. Expected:
//! `EINVAL` for every bad
//! write to `stats` (`ESPIPE` for pwrite), `EIO` for writes to the read-only
//! files (root can open them), `EINVAL` or `ESRCH` for a bad pid (and the
//! previous pid's row stays selected), reads that
//! reassemble the same text, and no reset (the `forks` counter, which only
//! this test could move, and it never forks, stays put).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use cow_demo::ktap::Ktap;
use cow_demo::workload::Rng;

const DIR: &str = "/proc/cowstat";
const FILES: [&str; 6] = ["stats", "procs", "probes", "fork_latency", "self", "pid"];

fn forks() -> u64 {
    std::fs::read_to_string(format!("{DIR}/stats"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("forks ")?.trim().parse().ok())
        })
        .unwrap_or(u64::MAX)
}

/// Where a test write lands in `stats`.
#[derive(Clone, Copy)]
enum At {
    /// A plain write() on a fresh open (offset 0).
    Start,
    /// pwrite() at this offset.
    Pwrite(u64),
    /// lseek() to this offset, then write().
    AfterSeek(u64),
}

/// Writes `data` to `stats` in one call; returns the errno, 0 if the whole
/// buffer was accepted (-2 if only part of it was: cowstat never does that).
fn write_errno(data: &[u8], at: At) -> i32 {
    let mut f = match OpenOptions::new().write(true).open(format!("{DIR}/stats")) {
        Ok(f) => f,
        Err(e) => return e.raw_os_error().unwrap_or(-1),
    };
    let r = match at {
        At::Start => f.write(data),
        At::Pwrite(off) => f.write_at(data, off),
        At::AfterSeek(off) => f.seek(SeekFrom::Start(off)).and_then(|_| f.write(data)),
    };
    match r {
        Ok(n) if n == data.len() => 0,
        Ok(_) => -2,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn random_bad_input(rng: &mut Rng) -> Vec<u8> {
    loop {
        let len = 1 + rng.below(80) as usize;
        let v: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        if v != b"0" && v != b"0\n" {
            return v;
        }
    }
}

/// Reads a whole file with reads of `chunk` bytes.
fn read_chunked(path: &str, chunk: usize) -> std::io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The pid shown by a `pid` read (its one row), if any.
fn shown_pid(text: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(text).ok()?;
    let mut rows = text.lines().skip(1);
    let row = rows.next()?;
    if rows.next().is_some() {
        return Some(u32::MAX); // more than one row: always wrong
    }
    row.split_whitespace().next()?.parse().ok()
}

/// `iterations` writes to `pid` on one descriptor, each followed by a read
/// of it: random bytes, random numbers (mostly without a process), our own
/// pid and pid 1. A write is accepted only for a pid with a row, and then
/// that row is shown; a refused one (`EINVAL`, `ESRCH`) keeps the previous
/// pid's row.
fn pid_writes(t: &mut Ktap, rng: &mut Rng, iterations: u32) {
    let path = format!("{DIR}/pid");
    let mut fh = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(fh) => fh,
        Err(e) => {
            t.result(
                false,
                "pid_writes_select_or_refuse",
                &[format!("{path}: {e}")],
            );
            return;
        }
    };
    let me = std::process::id();
    let (mut selected, mut wrong, mut accepted) = (None::<u32>, Vec::new(), 0u32);
    let mut buf = vec![0u8; 4096];
    for i in 0..iterations {
        let input: Vec<u8> = match i % 4 {
            0 => random_bad_input(rng),
            1 => format!("{}\n", rng.below(1 << 22)).into_bytes(),
            2 => format!("{me}").into_bytes(),
            _ => format!("{}", 1 + rng.below(64)).into_bytes(),
        };
        let errno = match fh.write(&input) {
            Ok(n) if n == input.len() => 0,
            Ok(_) => -2,
            Err(e) => e.raw_os_error().unwrap_or(-1),
        };
        let number = std::str::from_utf8(&input)
            .ok()
            .and_then(|s| s.strip_suffix('\n').unwrap_or(s).parse::<u32>().ok());
        match errno {
            0 => {
                accepted += 1;
                selected = number;
            }
            libc::EINVAL | libc::ESRCH => {}
            _ => {
                if wrong.len() < 3 {
                    wrong.push(format!("{input:?} -> errno {errno}"));
                }
            }
        }
        let shown = fh.read_at(&mut buf, 0).map(|n| shown_pid(&buf[..n]));
        let ok = match (&shown, selected) {
            (Ok(s), Some(p)) => *s == Some(p),
            (Ok(s), None) => s.is_none(),
            (Err(_), _) => false,
        };
        if !ok && wrong.len() < 3 {
            wrong.push(format!(
                "after {input:?}: selected {selected:?}, shown {shown:?}"
            ));
        }
    }
    t.result(
        wrong.is_empty() && accepted > 0,
        "pid_writes_select_or_refuse",
        &[format!(
            "{iterations} writes, {accepted} accepted; unexpected: {wrong:?}"
        )],
    );
}

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut t = Ktap::start(10);
    let mut rng = Rng::new(0xC0_57A7);
    let before = forks();

    let mut wrong = Vec::new();
    for _ in 0..iterations {
        let input = random_bad_input(&mut rng);
        let e = write_errno(&input, At::Start);
        if e != libc::EINVAL && wrong.len() < 3 {
            wrong.push(format!("{input:?} -> errno {e}"));
        }
    }
    t.result(
        wrong.is_empty(),
        "random_writes_einval",
        &[format!(
            "{iterations} random inputs (seed fixed); unexpected: {wrong:?}"
        )],
    );

    let huge = vec![b'0'; 1 << 20];
    let e = write_errno(&huge, At::Start);
    t.result(
        e == libc::EINVAL,
        "huge_write_einval",
        &[format!("1 MiB write -> errno {e}")],
    );

    // seq_file files cannot be pwrite()n at all (the VFS says ESPIPE);
    // a write after lseek reaches cowstat, which refuses a non-zero offset.
    let mut offs = Vec::new();
    for off in [1u64, 2, 4096, u32::MAX as u64] {
        offs.push((
            "pwrite",
            off,
            write_errno(b"0", At::Pwrite(off)),
            libc::ESPIPE,
        ));
        offs.push((
            "lseek+write",
            off,
            write_errno(b"0", At::AfterSeek(off)),
            libc::EINVAL,
        ));
    }
    t.result(
        offs.iter().all(|&(_, _, e, want)| e == want),
        "writes_at_offsets_rejected",
        &[format!("(how, offset, errno, expected): {offs:?}")],
    );

    // A "0" split over two writes is two commands: "0" (valid) would reset,
    // so split a bad one instead: "1" then "\n" must both fail.
    let split = [write_errno(b"1", At::Start), write_errno(b"\n", At::Start)];
    t.result(
        split == [libc::EINVAL; 2],
        "partial_writes_einval",
        &[format!("errnos {split:?}")],
    );

    pid_writes(&mut t, &mut rng, iterations);

    t.result(
        forks() == before,
        "bad_input_changes_nothing",
        &[format!("forks before {before}, after {}", forks())],
    );

    // Root may open them for writing (CAP_DAC_OVERRIDE), but the files
    // have no write handler, so every write fails with EIO.
    let mut ro = Vec::new();
    for f in FILES.iter().filter(|f| !matches!(**f, "stats" | "pid")) {
        let e = match OpenOptions::new().write(true).open(format!("{DIR}/{f}")) {
            Ok(mut fh) => fh
                .write(b"0")
                .err()
                .and_then(|e| e.raw_os_error())
                .unwrap_or(0),
            Err(e) => e.raw_os_error().unwrap_or(-1),
        };
        ro.push((f, e));
    }
    t.result(
        ro.iter().all(|&(_, e)| e == libc::EIO),
        "read_only_files_refuse_writes",
        &[format!("(file, errno): {ro:?}")],
    );

    let mut diffs = Vec::new();
    for f in FILES {
        let path = format!("{DIR}/{f}");
        let whole = read_chunked(&path, 1 << 16);
        for chunk in [1usize, 3, 7, 64] {
            let part = read_chunked(&path, chunk);
            // procs and probes change between reads (hit counts), so compare
            // only the stable ones byte for byte; the rest must just parse.
            let stable = f == "fork_latency" || f == "stats";
            let same = match (&whole, &part) {
                (Ok(a), Ok(b)) => !stable || a == b,
                _ => false,
            };
            if !same {
                diffs.push(format!("{f} chunk {chunk}"));
            }
        }
    }
    t.result(
        diffs.is_empty(),
        "tiny_reads_reassemble",
        &[format!("mismatches: {diffs:?}")],
    );

    let mut seek_bad = Vec::new();
    for f in FILES {
        let path = format!("{DIR}/{f}");
        let Ok(whole) = read_chunked(&path, 1 << 16) else {
            seek_bad.push(format!("{f}: unreadable"));
            continue;
        };
        for off in [
            0usize,
            1,
            5,
            17,
            whole.len() / 2,
            whole.len(),
            whole.len() + 100,
        ] {
            let mut fh = match File::open(&path) {
                Ok(fh) => fh,
                Err(e) => {
                    seek_bad.push(format!("{f}: {e}"));
                    continue;
                }
            };
            let mut rest = Vec::new();
            let ok =
                fh.seek(SeekFrom::Start(off as u64)).is_ok() && fh.read_to_end(&mut rest).is_ok();
            let stable = f == "fork_latency" || f == "stats";
            let expect = whole.get(off.min(whole.len())..).unwrap_or(&[]);
            if !ok || (stable && rest != expect) {
                seek_bad.push(format!("{f} at {off}"));
            }
        }
    }
    t.result(
        seek_bad.is_empty(),
        "lseek_then_read",
        &[format!("problems: {seek_bad:?}")],
    );

    let mut pread_bad = Vec::new();
    for f in FILES {
        if let Ok(fh) = File::open(format!("{DIR}/{f}")) {
            let mut b = [0u8; 5];
            if fh.read_at(&mut b, 3).is_err() {
                pread_bad.push(f);
            }
        }
    }
    t.result(
        pread_bad.is_empty(),
        "pread_at_odd_offset",
        &[format!("failed: {pread_bad:?}")],
    );

    std::process::exit(if t.finish() { 0 } else { 1 });
}
