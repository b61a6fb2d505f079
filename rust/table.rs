// SPDX-License-Identifier: GPL-2.0

//! Bounded, preallocated, lock-free table of per-process COW counters.
//!
//! Probe handlers find their process's slot by open addressing on the tgid
//! and claim a free one with a compare-and-swap: no locks, no allocation.
//! When no slot is free the event goes to the `<other>` row, so the sum of
//! all rows always equals the global count.

use crate::{counter::Counter, task::COMM_LEN};
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Processes tracked individually before events spill into `<other>`.
/// Rows outlive their processes until reset, so the table is sized to stay
/// sparse: 4096 slots x 128 bytes = 512 KiB, allocated with the module.
pub(crate) const SLOTS: usize = 4096;

/// Slots a lookup examines before giving up on a new process: bounds the
/// per-event cost once the table fills (a full scan cost ~5 us per fault
/// under TCG, docs/benchmarks.md). Fibonacci hashing spreads pids evenly,
/// so at 1000 rows (1/4 full) 16 taken slots in a row are vanishingly rare
/// (~0.25^16); as the table fills, more new processes go to `<other>`.
const MAX_PROBES: usize = 16;

/// What happened, one counter per kind in every row.
#[derive(Clone, Copy)]
pub(crate) enum Event {
    /// `do_wp_page` for a write fault.
    WpFault = 0,
    /// ... on a shared mapping (also counted as a `WpFault`).
    WpShared,
    /// `wp_page_copy` with a source page.
    CowCopy,
    /// `wp_page_copy` on the zero page.
    CowZero,
    /// `wp_page_copy` for a GUP unshare fault.
    CowUnshare,
    /// `do_huge_pmd_wp_page` for a write fault.
    ThpWpFault,
}

const EVENTS: usize = 6;

/// A consistent-enough copy of one row's counters.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) wp_faults: u64,
    pub(crate) wp_shared: u64,
    pub(crate) cow_copies: u64,
    pub(crate) cow_zero: u64,
    pub(crate) cow_unshare: u64,
    pub(crate) thp_wp_faults: u64,
}

impl Counts {
    /// Write faults on private mappings that reused the page (no copy).
    ///
    /// Every private write fault either reuses or reaches `wp_page_copy`,
    /// so this is exact unless `wp_page_copy` gave up and the fault was
    /// retried (out of memory, or a lost race with another thread of the
    /// same process); see docs/proc-interface.md.
    pub(crate) fn wp_reuses(&self) -> u64 {
        self.wp_faults
            .saturating_sub(self.wp_shared)
            .saturating_sub(self.cow_copies)
            .saturating_sub(self.cow_zero)
    }

    fn add(&mut self, other: &Counts) {
        self.wp_faults += other.wp_faults;
        self.wp_shared += other.wp_shared;
        self.cow_copies += other.cow_copies;
        self.cow_zero += other.cow_zero;
        self.cow_unshare += other.cow_unshare;
        self.thp_wp_faults += other.thp_wp_faults;
    }

    /// True if nothing was counted.
    pub(crate) fn is_zero(&self) -> bool {
        self.wp_faults == 0
            && self.cow_copies == 0
            && self.cow_zero == 0
            && self.cow_unshare == 0
            && self.thp_wp_faults == 0
    }
}

/// One process's counters. Cache-line aligned so two processes faulting on
/// different CPUs do not bounce a shared line.
#[repr(align(64))]
struct Slot {
    /// 0 = free, otherwise the owner's tgid (never changes until reset).
    tgid: AtomicI32,
    /// Latest command name, as two native-endian words so readers never race.
    comm: [AtomicU64; 2],
    counters: [Counter; EVENTS],
}

impl Slot {
    const fn new() -> Self {
        Self {
            tgid: AtomicI32::new(0),
            comm: [const { AtomicU64::new(0) }; 2],
            counters: [const { Counter::new() }; EVENTS],
        }
    }

    fn counts(&self) -> Counts {
        // Read copies before faults: a fault is counted before its copy, so
        // this order never sees more copies than faults for one event.
        let c = |e: Event| self.counters[e as usize].get();
        let cow_copies = c(Event::CowCopy);
        let cow_zero = c(Event::CowZero);
        Counts {
            cow_copies,
            cow_zero,
            cow_unshare: c(Event::CowUnshare),
            thp_wp_faults: c(Event::ThpWpFault),
            wp_shared: c(Event::WpShared),
            wp_faults: c(Event::WpFault),
        }
    }

    fn reset(&self) {
        self.counters.iter().for_each(Counter::reset);
        self.tgid.store(0, Ordering::Release);
    }
}

/// A row as shown in `/proc/cowstat/procs`.
pub(crate) struct Row {
    /// `None` for the `<other>` row.
    pub(crate) tgid: Option<i32>,
    pub(crate) comm: [u8; COMM_LEN],
    pub(crate) counts: Counts,
}

/// All per-process rows plus the overflow row.
pub(crate) struct ProcessTable {
    slots: [Slot; SLOTS],
    other: Slot,
}

impl ProcessTable {
    /// An empty table (usable in statics: no allocation at run time).
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const { Slot::new() }; SLOTS],
            other: Slot::new(),
        }
    }

    /// Counts `event` for process `tgid`, whose command name is now `comm`
    /// (16 bytes as two native-endian words). Lock-free; safe in probe
    /// context.
    #[inline]
    pub(crate) fn record(&self, tgid: i32, comm: &[u64; 2], event: Event) {
        let slot = self.slot_for(tgid);
        slot.counters[event as usize].inc();
        // Keep the latest name: a forked child faults first under its
        // parent's name and only then execs. Store only on change.
        if !core::ptr::eq(slot, &self.other) {
            for (word, &new) in slot.comm.iter().zip(comm) {
                if word.load(Ordering::Relaxed) != new {
                    word.store(new, Ordering::Relaxed);
                }
            }
        }
    }

    /// Finds or claims the slot of `tgid`, or the `<other>` slot if full.
    fn slot_for(&self, tgid: i32) -> &Slot {
        // Fibonacci hashing spreads sequential pids over the table.
        let start = (tgid as u32).wrapping_mul(0x9E37_79B9) as usize % SLOTS;
        for i in 0..MAX_PROBES {
            let slot = &self.slots[(start + i) % SLOTS];
            let owner = slot.tgid.load(Ordering::Acquire);
            if owner == tgid {
                return slot;
            }
            if owner != 0 {
                continue;
            }
            match slot
                .tgid
                .compare_exchange(0, tgid, Ordering::AcqRel, Ordering::Acquire)
            {
                // Claimed it, or another CPU claimed it first for this tgid.
                Ok(_) => return slot,
                Err(winner) if winner == tgid => return slot,
                Err(_) => continue,
            }
        }
        &self.other
    }

    /// Calls `f` for every non-empty row, the `<other>` row last.
    pub(crate) fn for_each_row(&self, mut f: impl FnMut(&Row)) {
        for slot in self.slots.iter().chain(core::iter::once(&self.other)) {
            let tgid = slot.tgid.load(Ordering::Acquire);
            let is_other = core::ptr::eq(slot, &self.other);
            if tgid == 0 && !is_other {
                continue;
            }
            let counts = slot.counts();
            if is_other && counts.is_zero() {
                continue;
            }
            let mut comm = [0u8; COMM_LEN];
            for (i, word) in slot.comm.iter().enumerate() {
                comm[i * 8..i * 8 + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
            }
            f(&Row {
                tgid: (!is_other).then_some(tgid),
                comm,
                counts,
            });
        }
    }

    /// Sum over all rows: the global counters.
    pub(crate) fn totals(&self) -> Counts {
        let mut sum = Counts::default();
        self.for_each_row(|row| sum.add(&row.counts));
        sum
    }

    /// Empties every row. Events racing with a reset may land in a row that
    /// is being cleared and be lost; reset with the system quiet for exact
    /// counts afterwards.
    pub(crate) fn reset(&self) {
        self.slots
            .iter()
            .chain(core::iter::once(&self.other))
            .for_each(Slot::reset);
    }
}
