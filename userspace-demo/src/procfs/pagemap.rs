// SPDX-License-Identifier: GPL-2.0
//! Counts present and exclusively-mapped pages of a range from /proc/PID/pagemap (8 bytes per page).

use std::fs::File;
use std::os::unix::fs::FileExt;

use serde::Serialize;

use crate::error::{Error, Result};

/// Bit 63: page present in RAM.
pub const PM_PRESENT: u64 = 1 << 63;
/// Bit 62: page swapped.
pub const PM_SWAP: u64 = 1 << 62;
/// Bit 61: file page or shared anon.
pub const PM_FILE: u64 = 1 << 61;
/// Bit 57: the PTE is userfaultfd write-protected.
pub const PM_UFFD_WP: u64 = 1 << 57;
/// Bit 56: page exclusively mapped (mapcount 1) — the COW cross-check.
pub const PM_MMAP_EXCLUSIVE: u64 = 1 << 56;
/// Bits 0-54: the page frame number if present (zero unless CAP_SYS_ADMIN).
pub const PM_PFN_MASK: u64 = (1 << 55) - 1;

/// Page counts of a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PagemapCounts {
    /// Pages in the range.
    pub pages: u64,
    /// Entries with bit 63 (present).
    pub present: u64,
    /// Entries with bits 63 and 56 (present and exclusively mapped).
    pub exclusive: u64,
}

impl PagemapCounts {
    /// Adds the entries of one chunk.
    pub fn add_entries(&mut self, entries: &[u64]) {
        for &e in entries {
            self.pages += 1;
            if e & PM_PRESENT != 0 {
                self.present += 1;
                if e & PM_MMAP_EXCLUSIVE != 0 {
                    self.exclusive += 1;
                }
            }
        }
    }
}

/// Counts the flags of raw little-endian pagemap bytes (a multiple of 8).
pub fn count_bytes(bytes: &[u8]) -> PagemapCounts {
    let mut c = PagemapCounts::default();
    let entries: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .collect();
    c.add_entries(&entries);
    c
}

/// Reads the pagemap entries of `[start, end)` (page-aligned) of `pid` (None = self).
///
/// Unprivileged readers get the flag bits (the PFN field is zeroed), which is all we need.
pub fn read_range(pid: Option<u32>, start: u64, end: u64, page_size: u64) -> Result<PagemapCounts> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/pagemap"),
        None => "/proc/self/pagemap".to_string(),
    };
    let f = File::open(&path).map_err(|e| Error::io("open", path.clone(), e))?;
    let first = start / page_size;
    let last = end.div_ceil(page_size);
    let mut out = PagemapCounts::default();
    const CHUNK: u64 = 8192;
    let mut buf = vec![0u8; (CHUNK * 8) as usize];
    let mut page = first;
    while page < last {
        let n = CHUNK.min(last - page);
        let want = &mut buf[..(n * 8) as usize];
        f.read_exact_at(want, page * 8)
            .map_err(|e| Error::io("read", path.clone(), e))?;
        out = merge(out, count_bytes(want));
        page += n;
    }
    Ok(out)
}

/// The raw pagemap entries of `[start, end)` of `pid` (None = self), one per page.
pub fn read_entries(pid: Option<u32>, start: u64, end: u64, page_size: u64) -> Result<Vec<u64>> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/pagemap"),
        None => "/proc/self/pagemap".to_string(),
    };
    let f = File::open(&path).map_err(|e| Error::io("open", path.clone(), e))?;
    let first = start / page_size;
    let n = end.div_ceil(page_size) - first;
    let mut buf = vec![0u8; (n * 8) as usize];
    f.read_exact_at(&mut buf, first * 8)
        .map_err(|e| Error::io("read", path.clone(), e))?;
    Ok(buf
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .collect())
}

fn merge(a: PagemapCounts, b: PagemapCounts) -> PagemapCounts {
    PagemapCounts {
        pages: a.pages + b.pages,
        present: a.present + b.present,
        exclusive: a.exclusive + b.exclusive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_flag_bits() {
        let entries = [
            PM_PRESENT | PM_MMAP_EXCLUSIVE | 0x1234,
            PM_PRESENT,
            PM_MMAP_EXCLUSIVE, // not present: does not count as exclusive
            0,
            PM_SWAP,
            PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE,
        ];
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        let c = count_bytes(&bytes);
        assert_eq!(
            c,
            PagemapCounts {
                pages: 6,
                present: 3,
                exclusive: 2
            }
        );
    }

    #[test]
    fn own_touched_buffer_is_present_and_exclusive() {
        let ps = 4096u64;
        let mut v = vec![0u8; 64 * 4096];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        let a = std::hint::black_box(v.as_ptr()) as u64;
        let start = a.div_ceil(ps) * ps;
        let end = start + 32 * ps;
        match read_range(None, start, end, ps) {
            Ok(c) => {
                assert_eq!(c.pages, 32);
                assert_eq!(c.present, 32);
                assert_eq!(c.exclusive, 32);
            }
            // Some sandboxes hide pagemap; the command reports that instead of failing.
            Err(Error::Io { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
}
