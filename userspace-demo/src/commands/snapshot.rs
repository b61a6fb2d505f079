// SPDX-License-Identifier: GPL-2.0
//! `cow-demo snapshot`: the Redis BGSAVE scenario — a forked child saves a consistent snapshot while the parent keeps writing.

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::SnapshotArgs;
use crate::commands::{print_out, Outcome};
use crate::error::{Error, Result};
use crate::procfs::cowstat::{Cowstat, ProcsReader};
use crate::procfs::{meminfo, smaps};
use crate::record::{recv_record, send_record};
use crate::report::{render_snapshot, to_json, CopySample, SnapshotReport};
use crate::units::format_bytes;
use crate::workload::{
    exit_child, fork, page_size, pin_to_current_cpu, pipe, poll_readable, recv, send, wait_child,
    Forked, Heap, Rng,
};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 continued from `h` over `data` (start with [`fnv1a64_init`]).
pub fn fnv1a64(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a 64 offset basis.
pub fn fnv1a64_init() -> u64 {
    FNV_OFFSET
}

/// A keyed data set living in one private anonymous heap.
///
/// Small values are `value_size`-byte slots `[version u64][key u64][payload]`, packed
/// from offset 0; big values start on the next page boundary, one per `big_size`
/// rounded up to pages, each `[version u64][payload]`.
pub struct DataSet {
    heap: Heap,
    keys: u64,
    value_size: usize,
    big_keys: u64,
    big_size: usize,
    big_off: usize,
    big_stride: usize,
}

fn fill(buf: &mut [u8], key: u64, version: u64) {
    let k = (key as u8).wrapping_mul(31) ^ (version as u8);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = k ^ (i as u8);
    }
}

impl DataSet {
    /// Bytes of heap needed.
    pub fn heap_bytes(keys: u64, value_size: u64, big_keys: u64, big_size: u64) -> u64 {
        let ps = page_size();
        (keys * value_size).div_ceil(ps) * ps + big_keys * big_size.div_ceil(ps) * ps
    }

    /// Maps and fills the data set (every value at version 1).
    pub fn build(keys: u64, value_size: u64, big_keys: u64, big_size: u64) -> Result<DataSet> {
        let ps = page_size();
        let total = Self::heap_bytes(keys, value_size, big_keys, big_size);
        let heap = Heap::new(total, false)?;
        let mut d = DataSet {
            heap,
            keys,
            value_size: value_size as usize,
            big_keys,
            big_size: big_size as usize,
            big_off: ((keys * value_size).div_ceil(ps) * ps) as usize,
            big_stride: (big_size.div_ceil(ps) * ps) as usize,
        };
        for k in 0..keys {
            d.write_small(k, 1);
        }
        for b in 0..big_keys {
            d.write_big(b, 1);
        }
        Ok(d)
    }

    fn slot(&self, k: u64) -> Range<usize> {
        let s = k as usize * self.value_size;
        s..s + self.value_size
    }

    fn big(&self, b: u64) -> Range<usize> {
        let s = self.big_off + b as usize * self.big_stride;
        s..s + self.big_size
    }

    fn write_small(&mut self, k: u64, version: u64) {
        let r = self.slot(k);
        let v = &mut self.heap.as_mut_slice()[r];
        v[..8].copy_from_slice(&version.to_le_bytes());
        v[8..16].copy_from_slice(&k.to_le_bytes());
        fill(&mut v[16..], k, version);
    }

    fn write_big(&mut self, b: u64, version: u64) {
        let r = self.big(b);
        let v = &mut self.heap.as_mut_slice()[r];
        v[..8].copy_from_slice(&version.to_le_bytes());
        fill(&mut v[8..], b, version);
    }

    fn version(&self, r: Range<usize>) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.heap.as_slice()[r.start..r.start + 8]);
        u64::from_le_bytes(a)
    }

    /// Rewrites small key `k` with the next version.
    pub fn update_key(&mut self, k: u64) {
        let v = self.version(self.slot(k)) + 1;
        self.write_small(k, v);
    }

    /// Rewrites big value `b` completely with the next version.
    pub fn update_big(&mut self, b: u64) {
        let v = self.version(self.big(b)) + 1;
        self.write_big(b, v);
    }

    /// The byte ranges that make up the data set, in save order.
    pub fn segments(&self) -> Vec<Range<usize>> {
        let mut v = Vec::with_capacity(1 + self.big_keys as usize);
        v.push(0..self.keys as usize * self.value_size);
        v.extend((0..self.big_keys).map(|b| self.big(b)));
        v
    }

    /// FNV-1a 64 over all segments.
    pub fn checksum(&self) -> u64 {
        let h = self.heap.as_slice();
        self.segments()
            .into_iter()
            .fold(fnv1a64_init(), |acc, r| fnv1a64(acc, &h[r]))
    }

    /// Data bytes (without padding).
    pub fn data_bytes(&self) -> u64 {
        self.segments().iter().map(|r| r.len() as u64).sum()
    }

    /// The heap.
    pub fn heap(&self) -> &Heap {
        &self.heap
    }
}

/// Writes the data set to `out` in 256 KiB chunks paced at `rate` bytes/s, computing
/// the checksum of exactly what was written. Returns (checksum, bytes).
pub fn save(d: &DataSet, out: &mut File, rate: f64) -> std::io::Result<(u64, u64)> {
    const CHUNK: usize = 256 * 1024;
    let h = d.heap.as_slice();
    let start = Instant::now();
    let mut sum = fnv1a64_init();
    let mut done = 0u64;
    for r in d.segments() {
        for c in h[r].chunks(CHUNK) {
            out.write_all(c)?;
            sum = fnv1a64(sum, c);
            done += c.len() as u64;
            let due = Duration::from_secs_f64(done as f64 / rate);
            let el = start.elapsed();
            if due > el {
                std::thread::sleep(due - el);
            }
        }
    }
    out.flush()?;
    Ok((sum, done))
}

fn child_main(d: &DataSet, out: &mut File, rate: f64, mut rx: File, mut tx: File) -> ! {
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let t = Instant::now();
        let (sum, bytes, status) = match save(d, out, rate) {
            Ok((s, b)) => (s, b, 0u64),
            Err(e) => (0, 0, e.raw_os_error().unwrap_or(5) as u64),
        };
        let ns = t.elapsed().as_nanos() as u64;
        let _ = send_record(&mut tx, &[sum, bytes, ns, status]);
        // Stay alive (so the parent can read its smaps while pages are still shared).
        let mut b = [0u8; 1];
        let _ = recv(&mut rx, &mut b);
    }));
    exit_child(if r.is_ok() { 0 } else { 3 })
}

/// True if `fd` has data (or EOF) within `ms` milliseconds.
fn readable(fd: &File, ms: u64) -> bool {
    poll_readable(fd, Duration::from_millis(ms)).unwrap_or(false)
}

fn hex(x: u64) -> String {
    format!("{x:016x}")
}

fn validate(a: &SnapshotArgs) -> Result<()> {
    if a.value_size < 16 || a.value_size > 1 << 20 {
        return Err(Error::InvalidValue {
            flag: "--value-size",
            value: a.value_size.to_string(),
            expected: "expected 16 to 1M bytes (a value holds a version and its key)".into(),
        });
    }
    if a.big_keys > 0 && a.big_size < 16 {
        return Err(Error::InvalidValue {
            flag: "--big-size",
            value: a.big_size.to_string(),
            expected: "expected at least 16 bytes, like 4M".into(),
        });
    }
    if a.keys == 0 && a.big_keys == 0 {
        return Err(Error::InvalidValue {
            flag: "--keys",
            value: "0".into(),
            expected: "expected at least one key (or --big-keys >= 1)".into(),
        });
    }
    if a.rate > 0 && a.keys == 0 {
        return Err(Error::InvalidValue {
            flag: "--rate",
            value: a.rate.to_string(),
            expected: "expected 0 when --keys is 0 (there is nothing to update)".into(),
        });
    }
    if a.big_key_update && a.big_keys == 0 {
        return Err(Error::InvalidValue {
            flag: "--big-key-update",
            value: "set".into(),
            expected: "needs --big-keys >= 1".into(),
        });
    }
    if let Some(r) = a.save_rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(Error::InvalidValue {
                flag: "--save-rate",
                value: r.to_string(),
                expected: "expected MB/s > 0, like 50".into(),
            });
        }
    }
    Ok(())
}

/// Runs the scenario and returns the report (no printing).
pub fn scenario(a: &SnapshotArgs) -> Result<SnapshotReport> {
    validate(a)?;
    let ps = page_size();
    let heap_bytes = DataSet::heap_bytes(a.keys, a.value_size, a.big_keys, a.big_size);
    let avail = meminfo::mem_available()?;
    if heap_bytes > avail {
        return Err(Error::HeapTooLarge {
            heap: format!(
                "{} (--keys/--value-size/--big-keys/--big-size)",
                format_bytes(heap_bytes)
            ),
            available: format_bytes(avail),
        });
    }
    // Same reason as in `fork`: keep LRU batches on one CPU.
    pin_to_current_cpu()?;
    let mut d = DataSet::build(a.keys, a.value_size, a.big_keys, a.big_size)?;
    let sum0 = d.checksum();
    let cs = Cowstat::locate();
    let loaded = cs.is_loaded();
    let mut r = SnapshotReport {
        keys: a.keys,
        value_size: a.value_size,
        big_keys: a.big_keys,
        big_size: a.big_size,
        heap_bytes: d.heap().size(),
        heap_pages: d.heap().pages(),
        no_fork: a.no_fork,
        checksum_at_fork: hex(sum0),
        out: a.out.display().to_string(),
        ..Default::default()
    };
    if !loaded {
        r.notes.push(
            "cowstat module not loaded: pages copied are the heap's smaps \
             Private_Dirty (load it with insmod cowstat.ko)"
                .into(),
        );
    }

    if a.no_fork {
        let t = Instant::now();
        let copy: Vec<u8> = d.heap().as_slice().to_vec();
        let ns = t.elapsed().as_nanos() as u64;
        let (_, tf) = fork_and_exit()?;
        r.fork_ns = tf;
        r.memcpy_ns = Some(ns);
        std::hint::black_box(&copy);
        r.checksum_snapshot = r.checksum_at_fork.clone();
        r.checksum_final = r.checksum_at_fork.clone();
        r.snapshot_exact = true;
        r.notes.push(format!(
            "fork() of the same heap takes {} ({:.1}x faster than the copy)",
            crate::units::format_ns(tf as f64),
            ns as f64 / tf.max(1) as f64
        ));
        r.verdict = "OK".into();
        return Ok(r);
    }

    let rate = a.save_rate.map_or(d.data_bytes() as f64 / 1.5, |m| m * 1e6);
    let mut out = File::create(&a.out).map_err(|e| Error::io("create (--out)", &a.out, e))?;
    let mut reader = loaded.then(|| ProcsReader::new(&cs));
    let me = std::process::id();
    let p0 = match reader.as_mut() {
        Some(rd) => Some(rd.rows(me, me)?.0),
        None => None,
    };
    let (p2c_rx, mut p2c_tx) = pipe()?;
    let (mut c2p_rx, c2p_tx) = pipe()?;
    let (side, fork_ns) = fork()?;
    let child = match side {
        Forked::Child => {
            drop(p2c_tx);
            drop(c2p_rx);
            child_main(&d, &mut out, rate, p2c_rx, c2p_tx)
        }
        Forked::Parent(pid) => pid,
    };
    drop(p2c_rx);
    drop(c2p_tx);
    drop(out);
    r.fork_ns = fork_ns;

    let expected_save = Duration::from_secs_f64(d.data_bytes() as f64 / rate);
    let mut rng = Rng::new(a.seed);
    let start = Instant::now();
    let mut updates = 0u64;
    let mut next_sample = Duration::ZERO;
    let mut big_done = false;
    // Parent pages copied since the fork: the cowstat row, or (without the module)
    // the heap's Private_Dirty, which after the fork holds only the parent's copies.
    let copies_now = |reader: &mut Option<ProcsReader>, d: &DataSet| -> Result<Option<u64>> {
        match (reader.as_mut(), p0) {
            (Some(rd), Some(p0)) => Ok(Some(rd.rows(me, me)?.0.delta(&p0).cow_copies)),
            _ => Ok(smaps::read_range(None, d.heap().addr(), d.heap().end())
                .ok()
                .map(|s| s.private_dirty_kb * 1024 / ps)),
        }
    };
    loop {
        let el = start.elapsed();
        let due = (a.rate as f64 * el.as_secs_f64()) as u64;
        while updates < due {
            let k = rng.below(a.keys);
            d.update_key(k);
            updates += 1;
        }
        if a.big_key_update && !big_done && el >= expected_save / 2 {
            let before = copies_now(&mut reader, &d)?;
            d.update_big(0);
            let after = copies_now(&mut reader, &d)?;
            if let (Some(b), Some(a)) = (before, after) {
                r.big_key_copies = Some(a.saturating_sub(b));
            }
            big_done = true;
        }
        if el >= next_sample {
            if let Some(c) = copies_now(&mut reader, &d)? {
                r.samples.push(CopySample {
                    t_ms: el.as_secs_f64() * 1e3,
                    cow_copies: c,
                    updates,
                });
            }
            next_sample += Duration::from_millis(100);
        }
        if readable(&c2p_rx, 1) {
            break;
        }
    }
    let [sum_child, bytes, save_ns, status] = recv_record::<4, [u64; 4]>(&mut c2p_rx)?;
    let el = start.elapsed();
    let final_copies = copies_now(&mut reader, &d)?;
    if let Some(c) = final_copies {
        r.samples.push(CopySample {
            t_ms: el.as_secs_f64() * 1e3,
            cow_copies: c,
            updates,
        });
    }
    let smaps1 = smaps::read_range(None, d.heap().addr(), d.heap().end()).ok();
    send(&mut p2c_tx, b"X")?;
    let st = wait_child(child)?;
    if status != 0 {
        return Err(Error::io(
            "write (--out)",
            Path::new(&a.out),
            std::io::Error::from_raw_os_error(status as i32),
        ));
    }
    if st != 0 {
        return Err(Error::Child(format!("pid {child} exited with status {st}")));
    }
    if loaded {
        if let Ok(c) = cs.row(child) {
            r.child_cow_copies = Some(c.cow_copies);
        }
    }
    let sum1 = d.checksum();
    r.checksum_snapshot = hex(sum_child);
    r.checksum_final = hex(sum1);
    r.snapshot_exact = sum_child == sum0;
    r.updates = updates;
    r.big_key_updated = big_done;
    r.save_ns = save_ns;
    r.saved_bytes = bytes;
    r.cow_copies = final_copies;
    // After the fork only what the parent copied is private to it.
    r.parent_private_dirty_kb = smaps1.map(|s| s.private_dirty_kb);
    r.overhead_percent =
        final_copies.map(|c| c as f64 * ps as f64 * 100.0 / r.heap_bytes.max(1) as f64);
    let moved_ok = updates == 0 && !big_done || sum1 != sum0;
    r.verdict = if r.snapshot_exact && moved_ok {
        "OK (snapshot exact: child checksum == checksum at fork)".into()
    } else if !r.snapshot_exact {
        "MISMATCH (snapshot checksum differs from the checksum at fork)".into()
    } else {
        "MISMATCH (parent updated keys but its checksum did not change)".into()
    };
    Ok(r)
}

/// Forks a child that exits at once; returns the fork time (for the --no-fork comparison).
fn fork_and_exit() -> Result<((), u64)> {
    let (side, ns) = fork()?;
    match side {
        Forked::Child => exit_child(0),
        Forked::Parent(pid) => {
            wait_child(pid)?;
            Ok(((), ns))
        }
    }
}

/// Runs the command.
pub fn run(a: &SnapshotArgs) -> Result<Outcome> {
    let r = scenario(a)?;
    if a.json {
        print_out(&(to_json(&r)? + "\n"))?;
    } else {
        print_out(&render_snapshot(&r))?;
    }
    Ok(if r.verdict.starts_with("OK") {
        Outcome::Ok
    } else {
        Outcome::Mismatch
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_vectors() {
        assert_eq!(fnv1a64(fnv1a64_init(), b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(fnv1a64_init(), b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(fnv1a64_init(), b"foobar"), 0x8594_4171_f739_67e8);
        // Streaming equals one shot.
        let h = fnv1a64(fnv1a64(fnv1a64_init(), b"foo"), b"bar");
        assert_eq!(h, fnv1a64(fnv1a64_init(), b"foobar"));
    }

    #[test]
    fn dataset_updates_change_checksum_and_save_matches() {
        let mut d = DataSet::build(1000, 64, 1, 10_000).unwrap();
        assert_eq!(d.data_bytes(), 64_000 + 10_000);
        let s0 = d.checksum();
        assert_eq!(d.version(d.slot(5)), 1);
        d.update_key(5);
        assert_eq!(d.version(d.slot(5)), 2);
        let s1 = d.checksum();
        assert_ne!(s0, s1);
        d.update_big(0);
        assert_ne!(s1, d.checksum());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dump");
        let mut f = File::create(&p).unwrap();
        let (sum, bytes) = save(&d, &mut f, 1e12).unwrap();
        assert_eq!(sum, d.checksum());
        assert_eq!(bytes, d.data_bytes());
        let written = std::fs::read(&p).unwrap();
        assert_eq!(fnv1a64(fnv1a64_init(), &written), sum);
    }
}
