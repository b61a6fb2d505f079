// SPDX-License-Identifier: GPL-2.0

//! What cowstat counts: one [`Event`] per kind of outcome, and [`Counts`],
//! a copy of one row's counters.

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
    /// A write to the huge zero page installed a new huge page (7.x's
    /// `do_huge_zero_wp_pmd`; 6.12 splits instead: [`Event::ThpSplit`]).
    ThpZero,
}

pub(crate) const EVENTS: usize = 16;

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
        Event::ThpZero,
    ];
    /// How many of [`Event::ALL`] come before `forks` in `stats`.
    pub(crate) const V1: usize = 7;
    /// How many of [`Event::ALL`] come before `mm_copies` in `stats`.
    pub(crate) const BEFORE_MM_COPIES: usize = 15;

    /// The fault an outcome usually ends, counted together with it, so a
    /// reader (which reads outcomes first) never sees more outcomes than
    /// faults. (`cow_file` from `do_cow_fault` ends no write-protect fault:
    /// its hook passes no fault to `ProcessTable::record`.)
    pub(crate) const fn fault(self) -> Option<Event> {
        match self {
            Event::WpReuse
            | Event::WpShared
            | Event::CowCopy
            | Event::CowZero
            | Event::CowKsm
            | Event::CowFile => Some(Event::WpFault),
            Event::ThpReuse | Event::ThpSplit | Event::ThpZero => Some(Event::ThpWpFault),
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
            Event::ThpZero => "thp_zero",
        }
    }
}

/// A copy of one row's counters.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counts(pub(crate) [u64; EVENTS]);

impl Counts {
    /// The count of `event`.
    pub(crate) fn get(&self, event: Event) -> u64 {
        self.0[event as usize]
    }

    /// Adds `other` to these counts.
    pub(crate) fn add(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// True if nothing was counted.
    pub(crate) fn is_zero(&self) -> bool {
        self.0.iter().all(|&c| c == 0)
    }
}
