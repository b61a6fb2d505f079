// SPDX-License-Identifier: GPL-2.0
//! The child of `cow-demo fork`: waits for the parent's word, writes the K
//! pages, and reports what it measured over the pipe.

use std::fs::File;
use std::panic::AssertUnwindSafe;

use crate::error::Result;
use crate::procfs::pagemap::{self, PagemapCounts};
use crate::procfs::smaps::{self, SmapsRange};
use crate::workload::{exit_child, prefault_stack, recv, send, Heap};

use super::measure::minor_faults;

/// What the child reports to the parent over the pipe (fixed binary layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildRecord {
    /// ns for the first (faulting) write of the K pages.
    pub write_ns: u64,
    /// ns for rewriting them.
    pub rewrite_ns: u64,
    /// Own heap smaps after fork, before writing.
    pub smaps_before: Option<SmapsRange>,
    /// Own heap smaps after writing.
    pub smaps_after: Option<SmapsRange>,
    /// Own heap pagemap counts before writing.
    pub pagemap_before: Option<PagemapCounts>,
    /// Own heap pagemap counts after writing.
    pub pagemap_after: Option<PagemapCounts>,
    /// Minor page faults (getrusage) during the writes.
    pub minor_faults: u64,
}

const RECORD_WORDS: usize = 22;
/// Size of an encoded [`ChildRecord`] in bytes.
pub const RECORD_BYTES: usize = RECORD_WORDS * 8;

impl ChildRecord {
    /// Encodes as 22 little-endian u64 words (flags, times, 2 × 6 smaps, 2 × 3 pagemap, faults).
    pub fn encode(&self) -> [u8; RECORD_BYTES] {
        let mut w = [0u64; RECORD_WORDS];
        let s = |o: &Option<SmapsRange>| {
            o.map_or([0; 6], |s| {
                [
                    s.vmas,
                    s.rss_kb,
                    s.shared_dirty_kb,
                    s.private_dirty_kb,
                    s.anonymous_kb,
                    s.anon_huge_kb,
                ]
            })
        };
        let p = |o: &Option<PagemapCounts>| o.map_or([0; 3], |p| [p.pages, p.present, p.exclusive]);
        w[0] = self.smaps_before.is_some() as u64
            | (self.smaps_after.is_some() as u64) << 1
            | (self.pagemap_before.is_some() as u64) << 2
            | (self.pagemap_after.is_some() as u64) << 3;
        w[1] = self.write_ns;
        w[2] = self.rewrite_ns;
        w[3..9].copy_from_slice(&s(&self.smaps_before));
        w[9..15].copy_from_slice(&s(&self.smaps_after));
        w[15..18].copy_from_slice(&p(&self.pagemap_before));
        w[18..21].copy_from_slice(&p(&self.pagemap_after));
        w[21] = self.minor_faults;
        let mut b = [0u8; RECORD_BYTES];
        for (i, x) in w.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Decodes [`ChildRecord::encode`]'s output.
    pub fn decode(b: &[u8; RECORD_BYTES]) -> Self {
        let mut w = [0u64; RECORD_WORDS];
        for (i, x) in w.iter_mut().enumerate() {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i * 8..i * 8 + 8]);
            *x = u64::from_le_bytes(a);
        }
        let s = |on: bool, v: &[u64]| {
            on.then(|| SmapsRange {
                vmas: v[0],
                rss_kb: v[1],
                shared_dirty_kb: v[2],
                private_dirty_kb: v[3],
                anonymous_kb: v[4],
                anon_huge_kb: v[5],
            })
        };
        let p = |on: bool, v: &[u64]| {
            on.then(|| PagemapCounts {
                pages: v[0],
                present: v[1],
                exclusive: v[2],
            })
        };
        ChildRecord {
            write_ns: w[1],
            rewrite_ns: w[2],
            smaps_before: s(w[0] & 1 != 0, &w[3..9]),
            smaps_after: s(w[0] & 2 != 0, &w[9..15]),
            pagemap_before: p(w[0] & 4 != 0, &w[15..18]),
            pagemap_after: p(w[0] & 8 != 0, &w[18..21]),
            minor_faults: w[21],
        }
    }
}
// Handshake bytes.
pub(super) const READY: u8 = b'R';
pub(super) const WRITE: u8 = b'W';
pub(super) const DONE: u8 = b'D';
pub(super) const MEASURE: u8 = b'M';
pub(super) const EXIT: u8 = b'X';
pub(super) const FIRST_WRITE: u8 = 0xa5;
pub(super) const REWRITE: u8 = 0x5a;

/// The child's whole life: never returns.
pub(super) fn child_main(heap: &Heap, order: &[u64], mut rx: File, mut tx: File) -> ! {
    // COW-copy the stack below this small frame now, so that child_loop's frame and
    // everything it calls inside the write window sit on already-private pages.
    prefault_stack();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        child_loop(heap, order, &mut rx, &mut tx)
    }));
    exit_child(match r {
        Ok(Ok(())) => 0,
        _ => 3,
    })
}

#[inline(never)]
fn child_loop(heap: &Heap, order: &[u64], rx: &mut File, tx: &mut File) -> Result<()> {
    let mut rec = ChildRecord {
        smaps_before: smaps::read_range(None, heap.addr(), heap.end()).ok(),
        pagemap_before: pagemap::read_range(None, heap.addr(), heap.end(), heap.page_size()).ok(),
        ..Default::default()
    };
    send(tx, &[READY])?;
    let mut wrote = false;
    loop {
        let mut cmd = [0u8; 1];
        if recv(rx, &mut cmd).is_err() {
            return Ok(());
        }
        match cmd[0] {
            WRITE => {
                let f0 = minor_faults();
                rec.write_ns = heap.write_pages(order, FIRST_WRITE);
                rec.rewrite_ns = heap.write_pages(order, REWRITE);
                rec.minor_faults = minor_faults() - f0;
                wrote = true;
                let mut m = [0u8; 1];
                m[0] = DONE;
                send(tx, &m)?;
            }
            MEASURE => {
                if wrote {
                    rec.smaps_after = smaps::read_range(None, heap.addr(), heap.end()).ok();
                    rec.pagemap_after =
                        pagemap::read_range(None, heap.addr(), heap.end(), heap.page_size()).ok();
                }
                send(tx, &rec.encode())?;
            }
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip() {
        let r = ChildRecord {
            write_ns: 123,
            rewrite_ns: 45,
            smaps_before: Some(SmapsRange {
                vmas: 1,
                rss_kb: 2,
                shared_dirty_kb: 3,
                private_dirty_kb: 4,
                anonymous_kb: 5,
                anon_huge_kb: 6,
            }),
            smaps_after: None,
            pagemap_before: None,
            pagemap_after: Some(PagemapCounts {
                pages: 7,
                present: 8,
                exclusive: 9,
            }),
            minor_faults: 10,
        };
        assert_eq!(ChildRecord::decode(&r.encode()), r);
        assert_eq!(
            ChildRecord::decode(&[0; RECORD_BYTES]),
            ChildRecord::default()
        );
    }
}
