// SPDX-License-Identifier: GPL-2.0
//! The /proc/PID/smaps figures (Rss, Shared_Dirty, Private_Dirty, AnonHugePages, in kB) of the VMAs covering an address range.

use serde::Serialize;

use crate::error::{Error, ParseError, Result};

/// Sums of smaps fields (kB) over the VMAs that overlap a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SmapsRange {
    /// Number of VMAs that overlapped the range (1 for an isolated heap).
    pub vmas: u64,
    /// Resident set, kB.
    pub rss_kb: u64,
    /// Resident pages also mapped elsewhere and dirty, kB.
    pub shared_dirty_kb: u64,
    /// Resident pages mapped only here and dirty, kB.
    pub private_dirty_kb: u64,
    /// Anonymous memory, kB.
    pub anonymous_kb: u64,
    /// Anonymous memory mapped by huge PMDs (THP), kB.
    pub anon_huge_kb: u64,
}

fn parse_header(line: &str) -> Option<(u64, u64)> {
    let first = line.split_whitespace().next()?;
    let (a, b) = first.split_once('-')?;
    let start = u64::from_str_radix(a, 16).ok()?;
    let end = u64::from_str_radix(b, 16).ok()?;
    Some((start, end))
}

/// Sums the fields of every VMA in `text` (smaps format) overlapping `[start, end)`.
pub fn parse_range(text: &str, start: u64, end: u64) -> Result<SmapsRange, ParseError> {
    let mut out = SmapsRange::default();
    let mut inside = false;
    let mut headers = 0;
    for (i, line) in text.lines().enumerate() {
        if let Some((s, e)) = parse_header(line) {
            headers += 1;
            inside = s < end && start < e;
            if inside {
                out.vmas += 1;
            }
            continue;
        }
        if !inside {
            continue;
        }
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let field = match key {
            "Rss" => &mut out.rss_kb,
            "Shared_Dirty" => &mut out.shared_dirty_kb,
            "Private_Dirty" => &mut out.private_dirty_kb,
            "Anonymous" => &mut out.anonymous_kb,
            "AnonHugePages" => &mut out.anon_huge_kb,
            _ => continue,
        };
        let v = rest
            .split_whitespace()
            .next()
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| ParseError::new(i + 1, format!("{key} value is not a number")))?;
        *field += v;
    }
    if headers == 0 && !text.trim().is_empty() {
        return Err(ParseError::new(1, "no VMA header line found"));
    }
    Ok(out)
}

/// Reads `/proc/<pid>/smaps` (`pid` None = self) and sums the VMAs overlapping `[start, end)`.
pub fn read_range(pid: Option<u32>, start: u64, end: u64) -> Result<SmapsRange> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/smaps"),
        None => "/proc/self/smaps".to_string(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", path.clone(), e))?;
    parse_range(&text, start, end).map_err(|source| Error::Parse {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
7f0000000000-7f0004000000 rw-p 00000000 00:00 0 
Size:              65536 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:               65536 kB
Pss:               32768 kB
Pss_Dirty:         32768 kB
Shared_Clean:          0 kB
Shared_Dirty:      61440 kB
Private_Clean:         0 kB
Private_Dirty:      4096 kB
Referenced:        65536 kB
Anonymous:         65536 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:     30720 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           1
VmFlags: rd wr mr mw me ac hg
7f0004000000-7f0004200000 ---p 00000000 00:00 0 
Size:               2048 kB
Rss:                   0 kB
Private_Dirty:         0 kB
VmFlags: mr mw me
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Rss:                  16 kB
Private_Dirty:        16 kB
";

    #[test]
    fn picks_the_covering_vma() {
        let r = parse_range(SMAPS, 0x7f00_0000_1000, 0x7f00_0000_2000).unwrap();
        assert_eq!(r.vmas, 1);
        assert_eq!(r.rss_kb, 65536);
        assert_eq!(r.shared_dirty_kb, 61440);
        assert_eq!(r.private_dirty_kb, 4096);
        assert_eq!(r.anonymous_kb, 65536);
        assert_eq!(r.anon_huge_kb, 30720);
    }

    #[test]
    fn sums_overlapping_vmas_and_ignores_others() {
        let r = parse_range(SMAPS, 0x7f00_0000_0000, 0x7f00_0420_0000).unwrap();
        assert_eq!(r.vmas, 2);
        assert_eq!(r.rss_kb, 65536);
        let none = parse_range(SMAPS, 0x1000, 0x2000).unwrap();
        assert_eq!(none, SmapsRange::default());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_range("Rss: 1 kB\n", 0, 1).is_err());
        let bad = SMAPS.replace("Rss:               65536 kB", "Rss: many kB");
        let e = parse_range(&bad, 0x7f00_0000_0000, 0x7f00_0000_1000).unwrap_err();
        assert_eq!(e.line, 5);
    }

    #[test]
    fn reads_own_stack() {
        let x = 0u64;
        let a = std::hint::black_box(&x) as *const u64 as u64;
        let r = read_range(None, a, a + 1).unwrap();
        assert_eq!(r.vmas, 1);
        assert!(r.rss_kb > 0);
    }
}
