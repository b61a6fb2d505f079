// SPDX-License-Identifier: GPL-2.0
//! Memory helpers for the benchmarks: a region split into many VMAs, page-touch timing, pipes of u64s.

use std::fs::File;
use std::ptr;
use std::time::Instant;

use cow_demo::error::{Error, Result};
use cow_demo::record::{recv_record, send_record};
use cow_demo::workload::{page_size, pin_to_current_cpu};

/// A private anonymous region of `vmas` separate VMAs of equal page count,
/// separated by one unmapped page each so the kernel cannot merge them.
pub struct SplitRegion {
    base: *mut u8,
    chunk_pages: usize,
    vmas: usize,
    ps: usize,
}

impl SplitRegion {
    /// Maps `vmas` VMAs of `chunk_pages` pages each, MADV_NOHUGEPAGE.
    pub fn new(vmas: usize, chunk_pages: usize) -> Result<SplitRegion> {
        let ps = page_size() as usize;
        if vmas == 0 || chunk_pages == 0 {
            return Err(Error::InvalidValue {
                flag: "--vmas",
                value: vmas.to_string(),
                expected: "expected at least one VMA of at least one page".into(),
            });
        }
        let stride = (chunk_pages + 1) * ps;
        let len = stride * vmas;
        let base = cow_demo::workload::mmap_anonymous(len, &format!("{vmas} VMAs"))?;
        let r = SplitRegion {
            base: base as *mut u8,
            chunk_pages,
            vmas,
            ps,
        };
        // SAFETY: advice on our own fresh mapping; contents unaffected.
        unsafe { libc::madvise(base, len, libc::MADV_NOHUGEPAGE) };
        for i in 0..vmas {
            // SAFETY: the hole page lies inside the mapping created above and
            // holds nothing yet; unmapping it splits the VMA.
            let hole = unsafe { r.base.add(i * stride + chunk_pages * ps) };
            if unsafe { libc::munmap(hole as *mut libc::c_void, ps) } != 0 {
                return Err(Error::last_os("munmap of a VMA separator page"));
            }
        }
        Ok(r)
    }

    /// Total mapped pages.
    pub fn pages(&self) -> usize {
        self.vmas * self.chunk_pages
    }

    /// Address of page `i` (0 ≤ i < pages), skipping the holes.
    fn page_ptr(&self, i: usize) -> *mut u8 {
        let (v, p) = (i / self.chunk_pages, i % self.chunk_pages);
        // SAFETY: v < vmas and p < chunk_pages, so the offset is inside a mapped chunk.
        unsafe {
            self.base
                .add(v * (self.chunk_pages + 1) * self.ps + p * self.ps)
        }
    }

    /// Writes one byte to page `i`.
    pub fn write(&self, i: usize, val: u8) {
        if i < self.pages() {
            // SAFETY: page_ptr is inside a live read/write chunk; volatile keeps the store.
            unsafe { ptr::write_volatile(self.page_ptr(i), val) }
        }
    }
}

impl Drop for SplitRegion {
    fn drop(&mut self) {
        // Chunk by chunk, never the holes: the kernel may have placed an
        // unrelated mapping (e.g. malloc's) in a freed separator page, and
        // unmapping it crashed the next free().
        let stride = (self.chunk_pages + 1) * self.ps;
        for i in 0..self.vmas {
            // SAFETY: chunk i lies inside our reservation and is still ours.
            unsafe {
                libc::munmap(
                    self.base.add(i * stride) as *mut libc::c_void,
                    self.chunk_pages * self.ps,
                )
            };
        }
    }
}

/// Nanoseconds per page of the first write to `pages` fresh anonymous pages (4 KiB
/// pages: MADV_NOHUGEPAGE), i.e. the first-touch fault cost.
pub fn first_touch_ns(pages: u64) -> Result<PageTimes> {
    let heap = cow_demo::workload::Heap::new(pages * page_size(), false)?;
    Ok(PageTimes::measure(heap.pages(), |i| heap.write_page(i, 1)))
}

/// Pages per timed chunk of [`PageTimes`].
pub const CHUNK_PAGES: u64 = 256;

/// Per-page cost of one pass over `pages` pages, timed in chunks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageTimes {
    /// Whole pass: elapsed / pages.
    pub mean_ns: f64,
    /// 10th percentile over chunks of [`CHUNK_PAGES`] pages, per page: a
    /// host hiccup (TCG shares the host core) inflates a few chunks, not
    /// this, so loaded/unloaded ratios of it resolve smaller differences.
    /// Equals `mean_ns` for passes shorter than one chunk.
    pub p10_ns: f64,
}

impl PageTimes {
    /// Calls `touch(i)` for every page `i` in `0..pages`, timing each chunk.
    /// Allocates only before the first chunk.
    pub fn measure(pages: u64, mut touch: impl FnMut(u64)) -> Self {
        let mut chunk_ns = vec![0f64; pages.div_ceil(CHUNK_PAGES) as usize];
        let start = Instant::now();
        for (c, slot) in chunk_ns.iter_mut().enumerate() {
            let first = c as u64 * CHUNK_PAGES;
            let last = (first + CHUNK_PAGES).min(pages);
            let t = Instant::now();
            for i in first..last {
                touch(i);
            }
            *slot = t.elapsed().as_nanos() as f64 / (last - first) as f64;
        }
        let mean_ns = start.elapsed().as_nanos() as f64 / pages.max(1) as f64;
        let full_chunks = (pages / CHUNK_PAGES) as usize;
        if full_chunks < 2 {
            return PageTimes {
                mean_ns,
                p10_ns: mean_ns,
            };
        }
        let full = &mut chunk_ns[..full_chunks];
        full.sort_by(f64::total_cmp);
        PageTimes {
            mean_ns,
            p10_ns: full[full_chunks / 10],
        }
    }
}

/// The heap of `know` and `one`: `heap_bytes` in `vmas` separate VMAs,
/// every page written, on this CPU; with K, the `write_pct` % of its pages
/// the child writes, every `step`-th one.
pub fn written_region(
    heap_bytes: u64,
    vmas: usize,
    write_pct: f64,
) -> Result<(SplitRegion, usize, usize)> {
    check_fits(
        (heap_bytes as f64 * (1.0 + write_pct / 100.0)) as u64,
        "--heap",
    )?;
    pin_to_current_cpu()?;
    let total = (heap_bytes / page_size()) as usize;
    let chunk = (total / vmas.max(1)).max(1);
    let region = SplitRegion::new(vmas, chunk)?;
    for i in 0..region.pages() {
        region.write(i, 1);
    }
    let k = ((region.pages() as f64 * write_pct / 100.0).round() as usize).clamp(1, region.pages());
    let step = region.pages() / k;
    Ok((region, k, step))
}

/// Sends one u64 over a pipe.
pub fn send_u64(f: &mut File, v: u64) -> Result<()> {
    send_record(f, &[v])
}

/// Receives one u64 from a pipe.
pub fn recv_u64(f: &mut File) -> Result<u64> {
    let [v] = recv_record::<1, [u64; 1]>(f)?;
    Ok(v)
}

/// Refuses `bytes` of new memory if it exceeds MemAvailable.
pub fn check_fits(bytes: u64, flag: &'static str) -> Result<()> {
    let avail = cow_demo::procfs::meminfo::mem_available()?;
    if bytes > avail {
        return Err(Error::InvalidValue {
            flag,
            value: cow_demo::units::format_bytes(bytes),
            expected: format!(
                "needs more than MemAvailable ({}); choose a smaller size",
                cow_demo::units::format_bytes(avail)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_region_has_separate_vmas() {
        let r = SplitRegion::new(5, 3).unwrap();
        for i in 0..r.pages() {
            r.write(i, 1);
        }
        let a = r.base as u64;
        let s = cow_demo::procfs::smaps::read_range(None, a, a + (4 * 5 * page_size())).unwrap();
        assert_eq!(s.vmas, 5);
        assert_eq!(s.rss_kb, 15 * page_size() / 1024);
    }

    #[test]
    fn first_touch_is_positive() {
        let t = first_touch_ns(16).unwrap();
        assert!(t.mean_ns > 0.0);
        assert_eq!(
            t.p10_ns, t.mean_ns,
            "shorter than two chunks: p10 is the mean"
        );
    }

    #[test]
    fn chunk_p10_ignores_slow_chunks() {
        // 20 chunks; every chunk but two is fast, two are slowed down.
        let t = PageTimes::measure(20 * CHUNK_PAGES, |i| {
            if i / CHUNK_PAGES >= 18 && i % CHUNK_PAGES == 0 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        assert!(t.p10_ns < 1000.0, "p10 {} ns/page", t.p10_ns);
        assert!(t.mean_ns > 7000.0, "mean {} ns/page", t.mean_ns);
    }
}
