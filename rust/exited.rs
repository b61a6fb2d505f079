// SPDX-License-Identifier: GPL-2.0

//! The final rows of the last [`EXITED`] processes that ended, so a parent
//! can read its child's totals after `waitpid()`.
//!
//! A ring of fixed entries, each guarded by a sequence number: a writer
//! makes it odd, fills the entry and makes it even; a reader copies the
//! entry and keeps the copy only if the number was even and unchanged.
//! Memory: 1024 entries x 256 bytes = 256 KiB, allocated with the module.

use crate::{
    event::{Counts, EVENTS},
    pidns::{AtomicPids, NsRef, Pids, Reader},
    table::Row,
    task::COMM_LEN,
};
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Exits whose final rows stay readable.
pub(crate) const EXITED: usize = 1024;

#[repr(align(64))]
struct Entry {
    /// Even: stable (0: never written); odd: being written.
    seq: AtomicU32,
    tgid: AtomicI32,
    pids: AtomicPids,
    /// Keeps the namespaces in `pids` alive (see crate::pidns).
    nsref: AtomicUsize,
    comm: [AtomicU64; 2],
    counts: [AtomicU64; EVENTS],
}

impl Entry {
    const fn new() -> Self {
        Self {
            seq: AtomicU32::new(0),
            tgid: AtomicI32::new(0),
            pids: AtomicPids::new(),
            nsref: AtomicUsize::new(0),
            comm: [const { AtomicU64::new(0) }; 2],
            counts: [const { AtomicU64::new(0) }; EVENTS],
        }
    }

    /// A consistent copy, or `None` if empty or being rewritten.
    fn read(&self) -> Option<(Pids, [u8; COMM_LEN], Counts)> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq == 0 || seq % 2 == 1 {
            return None;
        }
        let pids = self.pids.load();
        let mut comm = [0u8; COMM_LEN];
        for (i, word) in self.comm.iter().enumerate() {
            comm[i * 8..i * 8 + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        let mut counts = Counts::default();
        for (v, c) in counts.0.iter_mut().zip(&self.counts) {
            *v = c.load(Ordering::Relaxed);
        }
        core::sync::atomic::fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == seq).then_some((pids, comm, counts))
    }
}

/// The ring of exited rows.
pub(crate) struct ExitedRing {
    entries: [Entry; EXITED],
    /// Exits recorded since load; the next entry is `next % EXITED`.
    next: AtomicUsize,
}

impl ExitedRing {
    /// Empty (usable in statics).
    pub(crate) const fn new() -> Self {
        Self {
            entries: [const { Entry::new() }; EXITED],
            next: AtomicUsize::new(0),
        }
    }

    /// Records a final row, overwriting the oldest. Takes over `nsref`.
    pub(crate) fn push(
        &self,
        tgid: i32,
        pids: &Pids,
        nsref: NsRef,
        comm: &[u8; COMM_LEN],
        counts: &Counts,
    ) {
        // More than EXITED concurrent writers would be needed to meet
        // another writer here; then the one that finds the entry odd takes
        // the next one.
        let entry = loop {
            let entry = &self.entries[self.next.fetch_add(1, Ordering::Relaxed) % EXITED];
            let seq = entry.seq.load(Ordering::Relaxed);
            if seq % 2 == 0
                && entry
                    .seq
                    .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                break entry;
            }
        };
        core::sync::atomic::fence(Ordering::Release);
        NsRef(entry.nsref.swap(nsref.0, Ordering::Relaxed)).release();
        entry.tgid.store(tgid, Ordering::Relaxed);
        entry.pids.store(pids);
        for (word, chunk) in entry.comm.iter().zip(comm.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            word.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
        }
        for (c, v) in entry.counts.iter().zip(counts.0) {
            c.store(v, Ordering::Relaxed);
        }
        entry.seq.fetch_add(1, Ordering::Release);
    }

    /// Calls `f` for every exited row the reader can see, oldest first.
    pub(crate) fn for_each(&self, reader: &Reader, f: &mut impl FnMut(&Row)) {
        let next = self.next.load(Ordering::Relaxed);
        for i in 0..EXITED {
            let entry = &self.entries[(next + i) % EXITED];
            if let Some(row) = Self::row(entry, reader) {
                f(&row);
            }
        }
    }

    /// The most recent exited row of the process the reader calls `nr`.
    pub(crate) fn find(&self, reader: &Reader, nr: i32) -> Option<Row> {
        let next = self.next.load(Ordering::Relaxed);
        (1..=EXITED)
            .map(|i| &self.entries[(next + EXITED - i) % EXITED])
            .filter_map(|entry| Self::row(entry, reader))
            .find(|row| row.pid == Some(nr))
    }

    fn row(entry: &Entry, reader: &Reader) -> Option<Row> {
        let (pids, comm, counts) = entry.read()?;
        Some(Row {
            pid: Some(pids.seen_by(reader)?),
            comm,
            counts,
            exited: true,
        })
    }

    /// Empties the ring and drops its namespace references. Process
    /// context; concurrent `push`es are fine (they own their entries).
    pub(crate) fn clear(&self) {
        for entry in &self.entries {
            let seq = entry.seq.load(Ordering::Relaxed);
            if seq == 0
                || seq % 2 == 1
                || entry
                    .seq
                    .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            NsRef(entry.nsref.swap(0, Ordering::Relaxed)).release();
            // Even again, and empty: readers skip seq 0 only, so mark the
            // entry empty through its pids (level -1: seen by nobody).
            entry.pids.store(&Pids::none());
            entry.seq.fetch_add(1, Ordering::Release);
        }
    }
}
