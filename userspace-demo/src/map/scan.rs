// SPDX-License-Identifier: GPL-2.0
//! Reading the map's sources: pagemap entries and huge mappings of a range of
//! another process, the zero page's frame, a process's cowstat row through
//! /proc/cowstat/pid, its children and its largest anonymous VMA.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;

use super::classify::Entry;
use crate::error::{Error, Result};
use crate::procfs::cowstat::{find_row, Counts, Cowstat};
use crate::procfs::pagemap;

/// The decoded pagemap entries of `[start, end)` of `pid`.
pub fn entries(pid: u32, start: u64, end: u64, page_size: u64) -> Result<Vec<Entry>> {
    Ok(pagemap::read_entries(Some(pid), start, end, page_size)?
        .into_iter()
        .map(Entry::decode)
        .collect())
}

/// `struct pm_scan_arg` of <linux/fs.h> (Linux 6.7+).
#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 = 0xc060_6610;
/// Mapped by a huge PMD (THP) or hugetlb.
const PAGE_IS_HUGE: u64 = 1 << 6;

/// Which pages of `[start, end)` of `pid` a huge PMD maps, from the
/// PAGEMAP_SCAN ioctl of /proc/PID/pagemap (plain pagemap entries do not say).
pub fn huge_pages(pid: u32, start: u64, end: u64, page_size: u64) -> Result<Vec<bool>> {
    let path = format!("/proc/{pid}/pagemap");
    let f = File::open(&path).map_err(|e| Error::io("open", path.clone(), e))?;
    let n = ((end - start) / page_size) as usize;
    let mut huge = vec![false; n];
    let mut regions = vec![PageRegion::default(); 256];
    let mut from = start;
    while from < end {
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            start: from,
            end,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            category_anyof_mask: PAGE_IS_HUGE,
            return_mask: PAGE_IS_HUGE,
            ..Default::default()
        };
        // SAFETY: the argument is a correctly sized pm_scan_arg; `vec` points
        // at `regions`, which has room for `vec_len` page_region entries.
        // Without PM_SCAN_WP_MATCHING the ioctl only reads the page tables.
        let got = unsafe { libc::ioctl(f.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
        if got < 0 {
            return Err(Error::Syscall {
                call: format!("ioctl PAGEMAP_SCAN on {path} (Linux 6.7 or later)"),
                source: std::io::Error::last_os_error(),
            });
        }
        for r in &regions[..got as usize] {
            let a = ((r.start.max(start) - start) / page_size) as usize;
            let b = (((r.end.min(end)) - start) / page_size) as usize;
            huge[a..b].iter_mut().for_each(|h| *h = true);
        }
        if arg.walk_end <= from {
            break;
        }
        from = arg.walk_end;
    }
    Ok(huge)
}

/// The frame of the shared zero page: map a fresh page, read it (which maps
/// the zero page), look it up in our own pagemap. `None` without
/// CAP_SYS_ADMIN (the pfn reads as 0).
pub fn zero_pfn(page_size: u64) -> Option<u64> {
    let len = page_size as usize;
    let p = crate::workload::mmap_anonymous(len, "the zero-page probe").ok()?;
    // SAFETY: p is a fresh private mapping of `len` bytes: advising it and
    // reading its first byte are in bounds; it is unmapped before returning.
    let e = unsafe {
        libc::madvise(p, len, libc::MADV_NOHUGEPAGE);
        std::ptr::read_volatile(p as *const u8);
        let e = pagemap::read_entries(None, p as u64, p as u64 + page_size, page_size);
        libc::munmap(p, len);
        e
    };
    let e = Entry::decode(*e.ok()?.first()?);
    (e.present && e.pfn != 0).then_some(e.pfn)
}

/// A process's cowstat row: through `pid` (one hash lookup), or from `procs`
/// on a module without that file. All zero if the process has no row yet.
pub fn row(cs: &Cowstat, pid: u32) -> Result<Counts> {
    let p = cs.path("pid");
    let Ok(mut f) = OpenOptions::new().read(true).write(true).open(&p) else {
        return cs.row(pid);
    };
    if let Err(e) = f.write_all(format!("{pid}\n").as_bytes()) {
        // ESRCH: no row, i.e. nothing counted yet.
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(Counts::default());
        }
        return Err(Error::io("write", p, e));
    }
    let mut s = String::new();
    f.rewind().map_err(|e| Error::io("seek", p.clone(), e))?;
    f.read_to_string(&mut s)
        .map_err(|e| Error::io("read", p.clone(), e))?;
    find_row(&s, pid).map_err(|source| Error::Parse { path: p, source })
}

/// Children of `pid`: processes whose parent it is, from /proc/*/stat
/// (/proc/PID/task/*/children needs CONFIG_PROC_CHILDREN, often off).
pub fn children(pid: u32) -> Vec<u32> {
    let mut v: Vec<u32> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| d.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parent_of_stat(&s))
                == Some(pid)
        })
        .collect();
    v.sort_unstable();
    v
}

/// The parent pid in a /proc/PID/stat line (field 4, after the command
/// name in parentheses, which may itself contain spaces and parentheses).
pub fn parent_of_stat(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The private writable anonymous VMA with the most resident memory in a
/// /proc/PID/smaps text (the heap, not a large reservation): (start, end).
pub fn largest_anon_vma_by_rss(smaps: &str) -> Option<(u64, u64)> {
    let mut best: Option<((u64, u64), u64)> = None;
    let mut cur: Option<(u64, u64)> = None;
    for l in smaps.lines() {
        if let Some(r) = largest_anon_vma(l) {
            cur = Some(r);
        } else if l.contains('-') && l.split_whitespace().nth(1).is_some_and(|p| p.len() == 4) {
            cur = None; // a VMA that is not private anonymous memory
        } else if let (Some(r), Some(kb)) = (cur, l.strip_prefix("Rss:")) {
            let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            if best.is_none_or(|(_, b)| kb > b) {
                best = Some((r, kb));
            }
        }
    }
    best.filter(|(_, kb)| *kb > 0).map(|(r, _)| r)
}

/// The largest private writable anonymous VMA in a /proc/PID/maps text:
/// (start, end). Anonymous: no path, or `[heap]`, or an `[anon:name]`.
pub fn largest_anon_vma(maps: &str) -> Option<(u64, u64)> {
    maps.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let range = it.next()?;
            let perms = it.next()?;
            let path = it.nth(3).unwrap_or("");
            let anon = path.is_empty() || path == "[heap]" || path.starts_with("[anon:");
            if !anon || !perms.starts_with("rw") || !perms.ends_with('p') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        })
        .max_by_key(|(a, b)| b - a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_anon_vma_of_a_maps_file() {
        let maps = "\
55d0c0000000-55d0c0200000 r-xp 00000000 fe:01 123   /usr/bin/redis-server
55d0c1000000-55d0c1100000 rw-p 00000000 00:00 0     [heap]
7f0000000000-7f0002c00000 rw-p 00000000 00:00 0 
7f0003000000-7f0003400000 rw-p 00000000 00:00 0     [anon:cow-demo heap]
7f0004000000-7f0008000000 rw-s 00000000 00:01 9     /dev/zero (deleted)
7f0009000000-7f0019000000 r--p 00000000 00:00 0 
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0     [stack]
";
        assert_eq!(
            largest_anon_vma(maps),
            Some((0x7f00_0000_0000, 0x7f00_02c0_0000))
        );
        assert_eq!(largest_anon_vma(""), None);
        let named = "7f0003000000-7f0003400000 rw-p 00000000 00:00 0 [anon:cow-demo heap]\n";
        assert_eq!(
            largest_anon_vma(named),
            Some((0x7f00_0300_0000, 0x7f00_0340_0000))
        );
    }

    #[test]
    fn huge_scan_of_own_small_pages() {
        // Our own touched, non-huge buffer: no page is PMD-mapped. The ioctl
        // may be missing (kernel < 6.7) or hidden in a sandbox.
        let ps = 4096u64;
        let v = vec![1u8; 64 * 4096];
        let a = (v.as_ptr() as u64).div_ceil(ps) * ps;
        if let Ok(h) = huge_pages(std::process::id(), a, a + 16 * ps, ps) {
            assert_eq!(h.len(), 16);
        }
        std::hint::black_box(&v);
    }

    #[test]
    fn heap_by_resident_memory() {
        let smaps = "\
7f0000000000-7f0040000000 rw-p 00000000 00:00 0 
Size:            1048576 kB
Rss:                2048 kB
7f0040000000-7f0042000000 rw-p 00000000 00:00 0 
Size:              32768 kB
Rss:               24000 kB
7f0050000000-7f0060000000 r--p 00000000 fe:01 5   /usr/lib/big.so
Size:             262144 kB
Rss:              100000 kB
";
        assert_eq!(
            largest_anon_vma_by_rss(smaps),
            Some((0x7f00_4000_0000, 0x7f00_4200_0000))
        );
        assert_eq!(largest_anon_vma_by_rss(""), None);
    }

    #[test]
    fn stat_parent() {
        assert_eq!(parent_of_stat("42 (a b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parent_of_stat("42 (x) R 1 1"), Some(1));
        assert_eq!(parent_of_stat("garbage"), None);
    }

    #[test]
    fn own_children_and_zero_probe() {
        assert!(children(std::process::id()).is_empty());
        let mut c = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert_eq!(children(std::process::id()), [c.id()]);
        c.kill().unwrap();
        c.wait().unwrap();
        // Only root sees frame numbers; then the zero page has one.
        if let Some(z) = zero_pfn(4096) {
            assert!(z > 0);
        }
    }
}
