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

/// What happened, one counter per kind in every row. Each outcome is
/// counted where the kernel commits to it (docs/proc-interface.md).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// `do_wp_page` was entered for a write (an attempt; a fault that bails
    /// out and is retried counts again).
    WpAttempt = 0,
    /// `do_huge_pmd_wp_page` was entered for a write (an attempt).
    ThpWpAttempt,
    /// A write fault on a write-protected PTE ended in a copy or a reuse;
    /// counted with its outcome, by [`Event::fault`].
    WpFault,
    /// A private page was made writable in place (no copy).
    WpReuse,
    /// A shared mapping's page was made writable (never copies).
    WpShared,
    /// An anonymous page was copied and the copy installed.
    CowCopy,
    /// The zero page was replaced by a new zeroed page.
    CowZero,
    /// A KSM-merged page was copied.
    CowKsm,
    /// A file page (or raw PFN) was copied into a private anonymous page.
    CowFile,
    /// A page was copied to satisfy a GUP unshare request (not a write).
    CowUnshare,
    /// A write fault on a write-protected huge PMD ended in a reuse or a
    /// split; counted with its outcome.
    ThpWpFault,
    /// A huge page was made writable in place.
    ThpReuse,
    /// A huge PMD was split for a write (the write then copies 4 KiB).
    ThpSplit,
    /// A hugetlb page was copied.
    HugetlbCopy,
    /// A hugetlb page was made writable in place.
    HugetlbReuse,
}

pub(crate) const EVENTS: usize = 15;

impl Event {
    /// Every event, in `/proc/cowstat/stats` order: interface version 1's
    /// seven counters first (then `forks` and `fork_ns`), the rest after.
    pub(crate) const ALL: [Event; EVENTS] = [
        Event::WpFault,
        Event::CowCopy,
        Event::CowZero,
        Event::WpReuse,
        Event::WpShared,
        Event::CowUnshare,
        Event::ThpWpFault,
        Event::CowKsm,
        Event::CowFile,
        Event::ThpReuse,
        Event::ThpSplit,
        Event::HugetlbCopy,
        Event::HugetlbReuse,
        Event::WpAttempt,
        Event::ThpWpAttempt,
    ];
    /// How many of [`Event::ALL`] come before `forks` in `stats`.
    pub(crate) const V1: usize = 7;

    /// The fault an outcome usually ends, counted together with it, so a
    /// reader (which reads outcomes first) never sees more outcomes than
    /// faults. (`cow_file` from `do_cow_fault` ends no write-protect fault:
    /// its hook passes no fault to [`ProcessTable::record`].)
    pub(crate) const fn fault(self) -> Option<Event> {
        match self {
            Event::WpReuse
            | Event::WpShared
            | Event::CowCopy
            | Event::CowZero
            | Event::CowKsm
            | Event::CowFile => Some(Event::WpFault),
            Event::ThpReuse | Event::ThpSplit => Some(Event::ThpWpFault),
            _ => None,
        }
    }

    /// The counter's name in `/proc/cowstat/stats`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Event::WpAttempt => "wp_attempts",
            Event::ThpWpAttempt => "thp_wp_attempts",
            Event::WpFault => "wp_faults",
            Event::WpReuse => "wp_reuses",
            Event::WpShared => "wp_shared",
            Event::CowCopy => "cow_copies",
            Event::CowZero => "cow_zero",
            Event::CowKsm => "cow_ksm",
            Event::CowFile => "cow_file",
            Event::CowUnshare => "cow_unshare",
            Event::ThpWpFault => "thp_wp_faults",
            Event::ThpReuse => "thp_reuses",
            Event::ThpSplit => "thp_splits",
            Event::HugetlbCopy => "hugetlb_copies",
            Event::HugetlbReuse => "hugetlb_reuses",
        }
    }
}

/// A copy of one row's counters.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counts([u64; EVENTS]);

impl Counts {
    /// The count of `event`.
    pub(crate) fn get(&self, event: Event) -> u64 {
        self.0[event as usize]
    }

    fn add(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// True if nothing was counted.
    pub(crate) fn is_zero(&self) -> bool {
        self.0.iter().all(|&c| c == 0)
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
        // Outcomes first (highest index), then faults, then attempts: each
        // is counted no later than the one after it in this order, so a
        // reader never sees more outcomes than faults or faults than
        // attempts.
        let mut counts = Counts::default();
        for (i, counter) in self.counters.iter().enumerate().rev() {
            counts.0[i] = counter.get();
        }
        counts
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

    /// Counts `event`, and the `fault` it ends if any, for process `tgid`,
    /// whose command name is now `comm`
    /// (16 bytes as two native-endian words). Lock-free; safe in probe
    /// context.
    #[inline]
    pub(crate) fn record(&self, tgid: i32, comm: &[u64; 2], fault: Option<Event>, event: Event) {
        let slot = self.slot_for(tgid);
        if let Some(fault) = fault {
            slot.counters[fault as usize].inc();
        }
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
