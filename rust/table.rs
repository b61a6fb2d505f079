// SPDX-License-Identifier: GPL-2.0

//! Per-process COW counters: one row per live process, freed when it ends.
//!
//! Lifecycle (docs/proc-interface.md, "Row lifecycle"):
//! - A process's first counted event claims a free slot (open addressing on
//!   the tgid, compare-and-swap; no locks, no allocation in the hooks) and
//!   records who it is in every pid namespace ([`crate::pidns`]).
//! - Only the process itself records into its row (every event is charged
//!   to `current`), so a row can never receive another process's events.
//! - When the process is reaped (`release_task` of its group leader), its
//!   final row is copied to the exited ring ([`crate::exited`]), its counts
//!   move into the retired totals, and the slot is freed. A new process
//!   with the same pid, later, claims a fresh row.
//! - When no slot is free the event goes to the `<other>` row, so the sum
//!   of all rows plus the retired totals is always the global count.
//! - Write-fault attempts are the exception: every write fault enters
//!   `do_wp_page`, rows do not show attempts, so they are counted per CPU
//!   ([`ProcessTable::attempt`]), in the same two banks.
//!
//! Reset: counters live in two banks. An event reads the current bank once
//! and counts into it; a reset zeroes the idle bank, switches to it and
//! waits (RCU) until no hook can still be counting into the old one. An
//! event in flight at a reset is therefore counted entirely before it
//! (invisible after) or entirely after it: its fault and its outcome are
//! never split, and no row is handed to another process by a reset.

use crate::{
    counter::Counter,
    event::{Counts, Event, EVENTS},
    exited::ExitedRing,
    glue,
    pidns::{AtomicPids, NsRef, Pids, Reader},
    task::{Current, COMM_LEN},
};
use core::sync::atomic::{
    fence, AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

/// The counters kept per CPU instead of per row, in the order of their
/// per-CPU arrays in rust/glue.c (`COWSTAT_ATTEMPT_KINDS`).
const ATTEMPTS: [Event; 2] = [Event::WpAttempt, Event::ThpWpAttempt];

/// Live processes tracked individually before events spill into `<other>`.
/// Rows are freed when their process ends, so this bounds the processes
/// that are alive *and* have faulted at once: 4096 slots x 384 bytes =
/// 1.5 MiB, allocated with the module.
pub(crate) const SLOTS: usize = 4096;

/// Slots a lookup examines before giving up on a new process: bounds the
/// per-event cost once the table fills. At 1000 live rows (1/4 full) 16
/// taken slots in a row are vanishingly rare (~0.25^16).
const MAX_PROBES: usize = 16;

/// `tgid` of a slot that held a process which has ended.
const FREED: i32 = -1;

/// One process's counters in two banks (see the module doc on reset).
/// Cache-line aligned so processes faulting on different CPUs do not bounce
/// a shared line.
#[repr(align(64))]
struct Slot {
    /// 0 = never used, [`FREED`] = free again, otherwise the owner's tgid.
    tgid: AtomicI32,
    /// Odd while `release` empties the slot: a reader that sees it change
    /// while copying the row drops the copy.
    seq: AtomicU32,
    /// The owner's pids and namespace reference are filled in.
    ready: AtomicBool,
    pids: AtomicPids,
    nsref: AtomicUsize,
    /// Latest command name, as two native-endian words.
    comm: [AtomicU64; 2],
    banks: [[Counter; EVENTS]; 2],
}

impl Slot {
    const fn new() -> Self {
        Self {
            tgid: AtomicI32::new(0),
            seq: AtomicU32::new(0),
            ready: AtomicBool::new(false),
            pids: AtomicPids::new(),
            nsref: AtomicUsize::new(0),
            comm: [const { AtomicU64::new(0) }; 2],
            banks: [const { [const { Counter::new() }; EVENTS] }; 2],
        }
    }

    fn counts(&self, bank: usize) -> Counts {
        // Outcomes first (highest index), then faults, then attempts: each
        // is counted no later than the one after it in this order, so a
        // reader never sees more outcomes than faults.
        let mut counts = Counts::default();
        for (i, counter) in self.banks[bank].iter().enumerate().rev() {
            counts.0[i] = counter.get();
        }
        counts
    }

    fn comm(&self) -> [u8; COMM_LEN] {
        let mut comm = [0u8; COMM_LEN];
        for (i, word) in self.comm.iter().enumerate() {
            comm[i * 8..i * 8 + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        comm
    }
}

/// A row as shown in `/proc/cowstat/procs`.
pub(crate) struct Row {
    /// The pid as the reader sees it; `None` for the `<other>` row.
    pub(crate) pid: Option<i32>,
    pub(crate) comm: [u8; COMM_LEN],
    pub(crate) counts: Counts,
    /// The process has ended (a row from the exited ring).
    pub(crate) exited: bool,
}

/// Every per-process row, the overflow row, and the counts of processes
/// that have ended.
pub(crate) struct ProcessTable {
    slots: [Slot; SLOTS],
    other: Slot,
    /// Counts of ended processes, per bank (added when a row is freed).
    retired: [[Counter; EVENTS]; 2],
    /// The bank events count into: 0 or 1.
    bank: AtomicUsize,
    /// The last exits' final rows.
    pub(crate) exited: ExitedRing,
}

impl ProcessTable {
    /// An empty table (usable in statics: no allocation at run time).
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const { Slot::new() }; SLOTS],
            other: Slot::new(),
            retired: [const { [const { Counter::new() }; EVENTS] }; 2],
            bank: AtomicUsize::new(0),
            exited: ExitedRing::new(),
        }
    }

    fn bank(&self) -> usize {
        self.bank.load(Ordering::Relaxed) & 1
    }

    /// Counts `event`, and the `fault` it ends if any, for the running
    /// process. Lock-free; safe in hook context.
    #[inline]
    pub(crate) fn record(&self, me: &Current, fault: Option<Event>, event: Event) {
        // Read once: both increments go to the same bank (see reset).
        let bank = self.bank();
        let slot = self.slot_for(me.tgid);
        if let Some(fault) = fault {
            slot.banks[bank][fault as usize].inc();
        }
        slot.banks[bank][event as usize].inc();
        // Keep the latest name: a forked child faults first under its
        // parent's name and only then execs. Store only on change.
        if !core::ptr::eq(slot, &self.other) {
            for (word, &new) in slot.comm.iter().zip(&me.comm) {
                if word.load(Ordering::Relaxed) != new {
                    word.store(new, Ordering::Relaxed);
                }
            }
        }
    }

    /// Counts a write-fault attempt ([`Event::WpAttempt`] or
    /// [`Event::ThpWpAttempt`]; anything else is ignored): a per-CPU
    /// increment in the current bank, no row looked up. Safe in hook context.
    #[inline]
    pub(crate) fn attempt(&self, event: Event) {
        let Some(kind) = ATTEMPTS.iter().position(|&a| a == event) else {
            return;
        };
        // SAFETY: No pointers; the glue ignores out-of-range indexes.
        unsafe { glue::cowstat_attempt(self.bank() as u32, kind as u32) };
    }

    /// Where a process's slot search starts. Multiplicative hashing with the
    /// golden ratio, keeping the *high* bits of the product (the low bits of
    /// a product by an odd constant are only a permutation of the low bits
    /// of the pid, so sequential pids would still cluster).
    fn home(tgid: i32) -> usize {
        const BITS: u32 = SLOTS.trailing_zeros();
        const _: () = assert!(SLOTS.is_power_of_two());
        ((tgid as u32).wrapping_mul(0x9E37_79B9) >> (32 - BITS)) as usize
    }

    /// The live slot of `tgid`, if it has one.
    fn find(&self, tgid: i32) -> Option<&Slot> {
        let start = Self::home(tgid);
        for i in 0..MAX_PROBES {
            let slot = &self.slots[(start + i) % SLOTS];
            match slot.tgid.load(Ordering::Acquire) {
                owner if owner == tgid => return Some(slot),
                0 => return None,
                _ => {}
            }
        }
        None
    }

    /// Finds or claims the slot of `tgid` (the running process), or the
    /// `<other>` slot if none is free.
    fn slot_for(&self, tgid: i32) -> &Slot {
        let start = Self::home(tgid);
        let mut free = None;
        for i in 0..MAX_PROBES {
            let index = (start + i) % SLOTS;
            match self.slots[index].tgid.load(Ordering::Acquire) {
                owner if owner == tgid => return &self.slots[index],
                0 => {
                    free.get_or_insert((index, 0));
                    break;
                }
                FREED => {
                    free.get_or_insert((index, FREED));
                }
                _ => {}
            }
        }
        let Some((index, seen)) = free else {
            return &self.other;
        };
        let slot = &self.slots[index];
        match slot
            .tgid
            .compare_exchange(seen, tgid, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {}
            // Another thread of this process claimed it first.
            Err(winner) if winner == tgid => return slot,
            // Lost to another process: look again (rare).
            Err(_) => return self.find(tgid).unwrap_or(&self.other),
        }
        // Two threads of this process may have claimed different slots (a
        // slot nearer home was freed between their scans): the nearer one
        // wins, the other gives its slot back before counting anything.
        for i in 0..MAX_PROBES {
            let other_index = (start + i) % SLOTS;
            if other_index == index {
                break;
            }
            if self.slots[other_index].tgid.load(Ordering::Acquire) == tgid {
                // As a freed slot, not an empty one: a process that claimed
                // a slot further on meanwhile must stay findable.
                slot.tgid.store(FREED, Ordering::Release);
                return &self.slots[other_index];
            }
        }
        let (pids, nsref) = Pids::current();
        slot.pids.store(&pids);
        slot.nsref.store(nsref.0, Ordering::Relaxed);
        slot.ready.store(true, Ordering::Release);
        slot
    }

    /// The process `tgid` has ended: keep its final row in the exited ring,
    /// add its counts to the retired totals and free its slot. Called from
    /// `release_task` of the group leader; nothing can count for it after.
    pub(crate) fn release(&self, tgid: i32) {
        let Some(slot) = self.find(tgid) else {
            return;
        };
        if !slot.ready.load(Ordering::Acquire) {
            return;
        }
        let bank = self.bank();
        let counts = slot.counts(bank);
        let nsref = NsRef(slot.nsref.swap(0, Ordering::Relaxed));
        self.exited
            .push(tgid, &slot.pids.load(), nsref, &slot.comm(), &counts);
        slot.seq.fetch_add(1, Ordering::AcqRel);
        slot.ready.store(false, Ordering::Release);
        // SAFETY: Plain C seqlock; paired with `cowstat_retire_end` below.
        unsafe { glue::cowstat_retire_begin() };
        for (retired, n) in self.retired[bank].iter().zip(counts.0) {
            retired.add(n);
        }
        for counter in slot.banks.iter().flatten() {
            counter.reset();
        }
        // SAFETY: Ends the section begun above.
        unsafe { glue::cowstat_retire_end() };
        slot.tgid.store(FREED, Ordering::Release);
        slot.seq.fetch_add(1, Ordering::Release);
    }

    /// Calls `f` for every live row the reader can see, the exited rows
    /// after them and the `<other>` row last (initial namespace only).
    pub(crate) fn for_each_row(&self, reader: &Reader, mut f: impl FnMut(&Row)) {
        let bank = self.bank();
        for slot in &self.slots {
            if let Some(row) = self.live_row(slot, bank, reader) {
                f(&row);
            }
        }
        self.exited.for_each(reader, &mut f);
        let counts = self.other.counts(bank);
        if reader.is_initial() && !counts.is_zero() {
            f(&Row {
                pid: None,
                comm: *b"<other>\0\0\0\0\0\0\0\0\0",
                counts,
                exited: false,
            });
        }
    }

    fn live_row(&self, slot: &Slot, bank: usize, reader: &Reader) -> Option<Row> {
        let seq = slot.seq.load(Ordering::Acquire);
        if seq % 2 == 1
            || slot.tgid.load(Ordering::Acquire) <= 0
            || !slot.ready.load(Ordering::Acquire)
        {
            return None;
        }
        let pid = slot.pids.load().seen_by(reader)?;
        let row = Row {
            pid: Some(pid),
            comm: slot.comm(),
            counts: slot.counts(bank),
            exited: false,
        };
        // Released (and maybe reused) while we copied: the copy may mix
        // zeroed and counted fields, or two owners. The final row is in the
        // exited ring; the new owner's row shows on the next read.
        fence(Ordering::Acquire);
        (slot.seq.load(Ordering::Relaxed) == seq).then_some(row)
    }

    /// The row of the process the reader calls `nr`: its live row, else its
    /// final row if it ended recently. O(1) for a live process (one hash
    /// lookup); an exited one is searched in the ring (at most its length
    /// in comparisons, nothing formatted).
    pub(crate) fn row_of(&self, reader: &Reader, nr: i32) -> Option<Row> {
        if let Some(tgid) = reader.global_tgid(nr) {
            return match self.find(tgid) {
                Some(slot) => self.live_row(slot, self.bank(), reader),
                // Alive, but nothing counted yet.
                None => Some(Row {
                    pid: Some(nr),
                    comm: [0; COMM_LEN],
                    counts: Counts::default(),
                    exited: false,
                }),
            };
        }
        self.exited.find(reader, nr)
    }

    /// Sum over all rows and ended processes: the global counters.
    pub(crate) fn totals(&self) -> Counts {
        let bank = self.bank();
        loop {
            // SAFETY: Plain C seqlock read section.
            let seq = unsafe { glue::cowstat_retire_read_begin() };
            let mut sum = self.other.counts(bank);
            for slot in &self.slots {
                sum.add(&slot.counts(bank));
            }
            for (i, retired) in self.retired[bank].iter().enumerate() {
                sum.0[i] += retired.get();
            }
            // SAFETY: As above.
            if !unsafe { glue::cowstat_retire_read_retry(seq) } {
                for (kind, event) in ATTEMPTS.into_iter().enumerate() {
                    // SAFETY: No pointers.
                    sum.0[event as usize] =
                        unsafe { glue::cowstat_attempts_sum(bank as u32, kind as u32) };
                }
                return sum;
            }
        }
    }

    /// Zeroes every count (see the module doc). Sleeps; process context.
    pub(crate) fn reset(&self) {
        let idle = 1 - self.bank();
        // Nothing has counted into the idle bank since the last reset's
        // grace period ended: zeroing it races with no hook.
        for slot in self.slots.iter().chain(core::iter::once(&self.other)) {
            slot.banks[idle].iter().for_each(Counter::reset);
        }
        self.retired[idle].iter().for_each(Counter::reset);
        // SAFETY: No pointers; no hook counts into the idle bank (above).
        unsafe { glue::cowstat_attempts_zero(idle as u32) };
        self.bank.store(idle, Ordering::Relaxed);
        // SAFETY: No preconditions; waits for hooks still in the old bank.
        unsafe { glue::cowstat_synchronize() };
        self.exited.clear();
    }

    /// Drops every namespace reference the table holds. Only when no hook
    /// can run any more (module unload, after every hook is detached).
    pub(crate) fn release_all(&self) {
        for slot in &self.slots {
            NsRef(slot.nsref.swap(0, Ordering::Relaxed)).release();
        }
        self.exited.clear();
    }
}
