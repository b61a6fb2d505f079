// SPDX-License-Identifier: GPL-2.0
//! The COW workload: a 2 MiB-aligned private anonymous heap, page-order generators, CPU pinning, fork and pipes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::ptr;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::units::{format_bytes, Pattern};

/// The base page size (sysconf(_SC_PAGESIZE)).
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// The PMD (transparent huge page) size, from sysfs; 2 MiB if THP is not compiled in.
pub fn hpage_pmd_size() -> u64 {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(2 << 20)
}

/// The system-wide THP mode, e.g. `always [madvise] never` → `madvise`.
pub fn thp_mode() -> Option<String> {
    let s = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let start = s.find('[')?;
    let end = s[start..].find(']')? + start;
    Some(s[start + 1..end].to_string())
}

/// Pins the calling process to the CPU it is running on and returns that CPU.
///
/// Must run before the heap is touched and before fork (children inherit the mask).
/// Why: freshly faulted pages sit in per-CPU LRU folio batches, each holding an extra
/// page reference until the batch is drained. The COW fault handler only drains the
/// batch of its own CPU, so a page still batched on *another* CPU looks shared
/// (refcount too high) and a write that should reuse the page copies it instead.
/// With every step on one CPU, the handler's local drain covers all batches.
pub fn pin_to_current_cpu() -> Result<u32> {
    let cpu = rustix::thread::sched_getcpu();
    pin_to_cpu(cpu).map_err(|e| Error::Syscall {
        call: format!("sched_setaffinity to CPU {cpu}"),
        source: e,
    })?;
    Ok(cpu as u32)
}

/// Pins the calling thread to `cpu` (no allocation: callable in a child
/// inside a measurement).
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    Ok(rustix::thread::sched_setaffinity(None, &set)?)
}

/// Rate-limited progress lines on stderr for steps that take more than about a second.
pub struct Progress {
    label: String,
    total: u64,
    start: Instant,
    last: Instant,
    printed: bool,
    quiet: bool,
}

impl Progress {
    /// Starts timing a step of `total` units; `quiet` suppresses all output.
    pub fn new(label: impl Into<String>, total: u64, quiet: bool) -> Self {
        let now = Instant::now();
        Progress {
            label: label.into(),
            total,
            start: now,
            last: now,
            printed: false,
            quiet,
        }
    }

    /// Reports `done` units; prints at most once a second, and only after the first second.
    pub fn tick(&mut self, done: u64) {
        if self.quiet {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last) >= Duration::from_secs(1) {
            self.last = now;
            self.printed = true;
            let pct = (done * 100).checked_div(self.total).unwrap_or(100);
            eprintln!("cow-demo: {}: {pct}% ({done}/{})", self.label, self.total);
        }
    }

    /// Ends the step; prints the elapsed time if a progress line was printed.
    pub fn finish(self) -> Duration {
        let d = self.start.elapsed();
        if self.printed {
            eprintln!(
                "cow-demo: {}: done in {}",
                self.label,
                crate::units::format_ns(d.as_nanos() as f64)
            );
        }
        d
    }
}

/// Maps `len` bytes of fresh private anonymous read/write memory at a
/// kernel-chosen address (not touched, `MAP_NORESERVE`); `what` names it in
/// the error.
pub fn mmap_anonymous(len: usize, what: &str) -> Result<*mut libc::c_void> {
    // SAFETY: a fresh private anonymous mapping at a kernel-chosen address; no
    // existing memory is affected.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(Error::last_os(format!("mmap of {what}")));
    }
    Ok(base)
}

/// A private anonymous mapping aligned to the PMD size, isolated from neighbouring
/// VMAs by PROT_NONE guard areas so that its smaps entry covers the heap alone.
pub struct Heap {
    reservation: *mut libc::c_void,
    reservation_len: usize,
    start: *mut u8,
    size: usize,
    page_size: u64,
    /// madvise(MADV_HUGEPAGE / MADV_NOHUGEPAGE) succeeded.
    pub advice_ok: bool,
}

impl Heap {
    /// Maps `size` bytes (rounded up to pages), 2 MiB aligned, with MADV_HUGEPAGE if `thp`
    /// else MADV_NOHUGEPAGE. The memory is not touched yet.
    pub fn new(size: u64, thp: bool) -> Result<Heap> {
        let ps = page_size();
        let align = hpage_pmd_size().max(ps);
        let size = size.div_ceil(ps) * ps;
        if size == 0 {
            return Err(Error::InvalidValue {
                flag: "--heap",
                value: "0".into(),
                expected: "expected a size of at least one page (4K)".into(),
            });
        }
        let len = size as usize + 2 * align as usize;
        let base = mmap_anonymous(len, &format!("the {} heap", format_bytes(size)))?;
        let b = base as u64;
        // At least one page of guard before the heap, and >= align - ps after it.
        let start = (b + ps).div_ceil(align) * align;
        let mut heap = Heap {
            reservation: base,
            reservation_len: len,
            start: start as *mut u8,
            size: size as usize,
            page_size: ps,
            advice_ok: false,
        };
        let front = (start - b) as usize;
        let tail_off = front + size as usize;
        // SAFETY: both ranges lie inside the mapping created above and nothing lives
        // there yet; PROT_NONE makes them guard areas with different VMA flags.
        let rc = unsafe {
            libc::mprotect(base, front, libc::PROT_NONE)
                | libc::mprotect(
                    (base as *mut u8).add(tail_off) as *mut libc::c_void,
                    len - tail_off,
                    libc::PROT_NONE,
                )
        };
        if rc != 0 {
            return Err(Error::last_os("mprotect of the heap guard areas"));
        }
        heap.advice_ok = heap.advise_thp(thp).is_ok();
        // Name the VMA in smaps ("[anon:cow-demo heap]") where the kernel supports it;
        // failure is harmless.
        let _ = rustix::process::set_virtual_memory_region_name(
            heap.as_slice(),
            Some(c"cow-demo heap"),
        );
        Ok(heap)
    }

    /// First byte of the heap.
    pub fn addr(&self) -> u64 {
        self.start as u64
    }

    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.addr() + self.size as u64
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size as u64
    }

    /// Number of base pages.
    pub fn pages(&self) -> u64 {
        self.size as u64 / self.page_size
    }

    /// Base page size.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// The heap as a byte slice (for checksums and copies).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the range is a live read/write mapping owned by self for its lifetime.
        unsafe { std::slice::from_raw_parts(self.start, self.size) }
    }

    /// The heap as a mutable byte slice.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self guarantees no other slice is live.
        unsafe { std::slice::from_raw_parts_mut(self.start, self.size) }
    }

    /// Writes one byte to every page (faulting them all in), with progress.
    pub fn touch_all(&mut self, quiet: bool) -> Duration {
        let pages = self.pages();
        let mut p = Progress::new(
            format!("touching {} heap", format_bytes(self.size())),
            pages,
            quiet,
        );
        for i in 0..pages {
            self.write_page(i, (i as u8) | 1);
            if i % 4096 == 0 {
                p.tick(i);
            }
        }
        p.finish()
    }

    /// Keeps khugepaged off the heap from now on (MADV_NOHUGEPAGE), leaving the
    /// huge pages already mapped as they are: a later write fault into a
    /// shared huge PMD still splits it. Without this, khugepaged may collapse
    /// a 2 MiB region whose pages were all rewritten back into a huge page
    /// while an experiment runs. Errs with the kernel's reason if it refused
    /// the advice.
    pub fn keep_khugepaged_away(&self) -> std::io::Result<()> {
        self.advise_thp(false)
    }

    /// MADV_HUGEPAGE (`huge`) or MADV_NOHUGEPAGE over the whole heap.
    fn advise_thp(&self, huge: bool) -> std::io::Result<()> {
        let advice = if huge {
            libc::MADV_HUGEPAGE
        } else {
            libc::MADV_NOHUGEPAGE
        };
        // SAFETY: THP advice on a range of our own mapping; it changes no
        // contents and no existing page-table entry.
        let rc = unsafe { libc::madvise(self.start as *mut libc::c_void, self.size, advice) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Writes `val` to the first byte of page `i` (ignored if out of range).
    #[inline(always)]
    pub fn write_page(&self, i: u64, val: u8) {
        if i < self.pages() {
            // SAFETY: i < pages, so the byte is inside the live read/write heap mapping;
            // volatile keeps the compiler from merging or dropping the store.
            unsafe { ptr::write_volatile(self.start.add((i * self.page_size) as usize), val) }
        }
    }

    /// Writes `val` to the first byte of each listed page; returns elapsed nanoseconds.
    pub fn write_pages(&self, pages: &[u64], val: u8) -> u64 {
        let t = Instant::now();
        for &p in pages {
            self.write_page(p, val);
        }
        t.elapsed().as_nanos() as u64
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the reservation mapped in Heap::new; no references
        // into it outlive self (slices borrow self).
        unsafe {
            libc::munmap(self.reservation, self.reservation_len);
        }
    }
}

/// A small deterministic PRNG (splitmix64), so `--seed` reproduces runs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// The K distinct page indices (< `total`) the writer visits, in visiting order.
///
/// `seq`: 0..K. `stride:N`: 0, N, 2N, ... then 1, N+1, ... until K pages.
/// `random`: a seeded partial Fisher-Yates shuffle (O(K) memory).
pub fn page_order(pattern: Pattern, k: u64, total: u64, seed: u64) -> Vec<u64> {
    let k = k.min(total);
    match pattern {
        Pattern::Seq => (0..k).collect(),
        Pattern::Stride(n) => {
            let n = n.max(1);
            let mut v = Vec::with_capacity(k as usize);
            'outer: for off in 0..n.min(total) {
                let mut p = off;
                while p < total {
                    if v.len() as u64 == k {
                        break 'outer;
                    }
                    v.push(p);
                    p += n;
                }
            }
            v
        }
        Pattern::Random => {
            let mut rng = Rng::new(seed);
            let mut moved: HashMap<u64, u64> = HashMap::new();
            let mut v = Vec::with_capacity(k as usize);
            for i in 0..k {
                let j = i + rng.below(total - i);
                let at_j = *moved.get(&j).unwrap_or(&j);
                let at_i = *moved.get(&i).unwrap_or(&i);
                moved.insert(j, at_i);
                v.push(at_j);
            }
            v
        }
    }
}

/// Number of distinct PMD-sized regions (within the first `huge_regions`) that `pages` touch.
pub fn distinct_regions(pages: &[u64], pages_per_region: u64, huge_regions: u64) -> u64 {
    let mut r: Vec<u64> = pages
        .iter()
        .map(|p| p / pages_per_region)
        .filter(|r| *r < huge_regions)
        .collect();
    r.sort_unstable();
    r.dedup();
    r.len() as u64
}

/// Regions (within the first `huge_regions`) all of whose pages are in `pages`.
pub fn full_regions(pages: &[u64], pages_per_region: u64, huge_regions: u64) -> u64 {
    let mut per: HashMap<u64, u64> = HashMap::new();
    for p in pages {
        let r = p / pages_per_region;
        if r < huge_regions {
            *per.entry(r).or_default() += 1;
        }
    }
    per.values().filter(|&&n| n == pages_per_region).count() as u64
}

/// Touches `bytes` of stack below the caller, so that later calls at a similar depth
/// do not COW-fault stack pages inside a measurement window.
#[inline(never)]
pub fn prefault_stack() {
    let mut buf = [0u8; 64 * 1024];
    for i in (0..buf.len()).step_by(1024) {
        // SAFETY: i < buf.len(); volatile so the stores are not optimised away.
        unsafe { ptr::write_volatile(buf.as_mut_ptr().add(i), 1) };
    }
    std::hint::black_box(&buf);
}

/// A unidirectional pipe: (read end, write end), close-on-exec.
pub fn pipe() -> Result<(File, File)> {
    let (r, w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::Syscall {
            call: "pipe2".into(),
            source: e.into(),
        })?;
    Ok((File::from(r), File::from(w)))
}

/// True if `fd` has data (or EOF) within `timeout`; an error if poll
/// failed. One poll, no allocation.
pub fn poll_readable(fd: &impl AsFd, timeout: Duration) -> std::io::Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let t = Timespec::try_from(timeout).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    Ok(poll(&mut fds, Some(&t))? > 0)
}

/// For a child that outlives the command that started it: stdin, stdout
/// and stderr go to /dev/null (so a shell's `$(...)` can finish) and it
/// leaves the caller's session.
pub fn detach_from_caller() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
    let _ = rustix::process::setsid();
}

/// Sleeps until a signal ends the process.
pub fn pause_forever() -> ! {
    loop {
        rustix::event::pause();
    }
}

/// Kills our child `pid` with SIGKILL (one that is already gone is fine).
pub fn kill_child(pid: u32) {
    use rustix::process::{kill_process, Pid, Signal};
    if let Some(p) = Pid::from_raw(pid as i32) {
        let _ = kill_process(p, Signal::KILL);
    }
}

/// Sends a fixed-size message (no allocation).
pub fn send(f: &mut File, msg: &[u8]) -> Result<()> {
    f.write_all(msg).map_err(|source| Error::Syscall {
        call: "write to the handshake pipe".into(),
        source,
    })
}

/// Receives exactly `buf.len()` bytes (no allocation); EOF means the peer died.
pub fn recv(f: &mut File, buf: &mut [u8]) -> Result<()> {
    f.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Child("exited before completing the handshake".into())
        } else {
            Error::Syscall {
                call: "read from the handshake pipe".into(),
                source: e,
            }
        }
    })
}

/// Which side of a fork we are on.
pub enum Forked {
    /// In the child.
    Child,
    /// In the parent, with the child's pid.
    Parent(u32),
}

/// fork(2), timed; returns the side and the nanoseconds the parent spent in fork().
///
/// The caller must be single-threaded (cow-demo never starts threads) and, in the
/// child, must only touch memory, use pipes and end with [`exit_child`].
pub fn fork() -> Result<(Forked, u64)> {
    // Anything buffered would otherwise be printed twice.
    let _ = std::io::stdout().flush();
    let t = Instant::now();
    // SAFETY: the process is single-threaded at this point (cow-demo creates no
    // threads), so the child's copy of every lock and allocator state is consistent.
    // The child only touches heap memory, reads /proc, writes to a pipe and leaves
    // with _exit, never returning into code that could run destructors or flush
    // stdio buffers inherited from the parent.
    let pid = unsafe { libc::fork() };
    let ns = t.elapsed().as_nanos() as u64;
    match pid {
        -1 => Err(Error::last_os("fork")),
        0 => Ok((Forked::Child, 0)),
        p => Ok((Forked::Parent(p as u32), ns)),
    }
}

/// Ends the child immediately with `code` (no atexit handlers, no stdio flush).
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}

/// Waits for `pid`; returns its exit status (128+signal if killed).
pub fn wait_child(pid: u32) -> Result<i32> {
    use rustix::process::{waitpid, Pid, WaitOptions};
    let err = |source: std::io::Error| Error::Syscall {
        call: format!("waitpid({pid})"),
        source,
    };
    let p = Pid::from_raw(pid as i32).ok_or_else(|| err(std::io::Error::other("pid 0")))?;
    let status = loop {
        match waitpid(Some(p), WaitOptions::empty()) {
            Ok(Some((_, st))) => break st,
            Ok(None) => return Err(err(std::io::Error::other("no status"))),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(err(e.into())),
        }
    };
    Ok(if let Some(code) = status.exit_status() {
        code
    } else if let Some(sig) = status.terminating_signal() {
        128 + sig
    } else {
        255
    })
}

/// Average nanoseconds of a userspace 4 KiB memcpy, copying up to 16384 distinct
/// pages of `src` into a 1 MiB ring of distinct destination pages.
pub fn memcpy_page_ns(src: &[u8], page_size: u64) -> f64 {
    let ps = page_size as usize;
    let n = (src.len() / ps).min(16384);
    if n == 0 {
        return f64::NAN;
    }
    let ring = 256;
    let mut dst = vec![1u8; ring * ps];
    let t = Instant::now();
    for i in 0..n {
        let s = &src[i * ps..(i + 1) * ps];
        let d = &mut dst[(i % ring) * ps..(i % ring + 1) * ps];
        d.copy_from_slice(std::hint::black_box(s));
    }
    std::hint::black_box(&dst);
    t.elapsed().as_nanos() as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distinct_in_range(v: &[u64], total: u64) -> bool {
        let mut s = v.to_vec();
        s.sort_unstable();
        s.dedup();
        s.len() == v.len() && v.iter().all(|&p| p < total)
    }

    #[test]
    fn seq_order() {
        assert_eq!(page_order(Pattern::Seq, 4, 10, 0), vec![0, 1, 2, 3]);
        assert_eq!(page_order(Pattern::Seq, 40, 10, 0).len(), 10);
    }

    #[test]
    fn stride_order_wraps_to_next_offset() {
        assert_eq!(
            page_order(Pattern::Stride(4), 6, 10, 0),
            vec![0, 4, 8, 1, 5, 9]
        );
        assert_eq!(page_order(Pattern::Stride(100), 3, 10, 0), vec![0, 1, 2]);
        for (n, k, total) in [
            (2, 23, 1024),
            (512, 1000, 16384),
            (7, 100, 100),
            (3, 10, 10),
        ] {
            let v = page_order(Pattern::Stride(n), k, total, 0);
            assert_eq!(v.len() as u64, k);
            assert!(distinct_in_range(&v, total));
        }
    }

    #[test]
    fn random_order_is_distinct_and_seeded() {
        for (k, total) in [(23, 1024), (1024, 1024), (1, 1), (500, 100_000)] {
            let a = page_order(Pattern::Random, k, total, 42);
            assert_eq!(a.len() as u64, k);
            assert!(distinct_in_range(&a, total));
            assert_eq!(a, page_order(Pattern::Random, k, total, 42));
        }
        assert_ne!(
            page_order(Pattern::Random, 23, 1024, 1),
            page_order(Pattern::Random, 23, 1024, 2)
        );
        // Not simply sorted.
        let a = page_order(Pattern::Random, 100, 1000, 7);
        assert!(a.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn regions() {
        let pages: Vec<u64> = (0..600).collect();
        assert_eq!(distinct_regions(&pages, 512, 4), 2);
        assert_eq!(full_regions(&pages, 512, 4), 1);
        assert_eq!(distinct_regions(&pages, 512, 1), 1);
        assert_eq!(distinct_regions(&[1, 2, 513, 5000], 512, 4), 2);
    }

    #[test]
    fn heap_is_aligned_and_writable() {
        let mut h = Heap::new(3 * 4096 + 1, false).unwrap();
        assert_eq!(h.addr() % hpage_pmd_size(), 0);
        assert_eq!(h.pages(), 4);
        h.touch_all(true);
        h.write_page(3, 9);
        h.write_page(99, 9); // out of range: ignored
        assert_eq!(h.as_slice()[3 * 4096], 9);
        assert_eq!(h.as_mut_slice()[0], 1);
        let r = crate::procfs::smaps::read_range(None, h.addr(), h.end()).unwrap();
        assert_eq!(r.vmas, 1, "guard areas keep the heap in its own VMA");
        assert_eq!(r.rss_kb, 16);
        assert!(memcpy_page_ns(h.as_slice(), 4096) > 0.0);
    }

    #[test]
    fn rng_below_in_range() {
        let mut r = Rng::new(1);
        assert!((0..1000).all(|_| r.below(7) < 7));
    }
}
