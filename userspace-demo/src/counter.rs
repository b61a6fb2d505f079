// SPDX-License-Identifier: GPL-2.0
//! Every counter the module reports, as one enum: names, table headings and
//! meanings live here only.
//!
//! Adding a kernel counter to userspace: a variant, its place in
//! [`Counter::ALL`] (the order of `/proc/cowstat/stats`) and its row in
//! [`Counter::info`]. Parsing, deltas, JSON and the `stats` table follow.

use std::fmt;

/// One counter of `/proc/cowstat/stats` (the `procs` columns are a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counter {
    /// Write faults on a present write-protected PTE.
    WpFaults,
    /// Anonymous pages copied.
    CowCopies,
    /// Zero-page breaks.
    CowZero,
    /// Reuses (no copy).
    WpReuses,
    /// Write faults on shared mappings.
    WpShared,
    /// GUP unshare copies.
    CowUnshare,
    /// Huge-PMD write faults.
    ThpWpFaults,
    /// Address-space duplications.
    Forks,
    /// Nanoseconds spent in dup_mmap.
    ForkNs,
    /// KSM pages copied.
    CowKsm,
    /// File pages copied into private anonymous pages.
    CowFile,
    /// Huge pages made writable in place.
    ThpReuses,
    /// Huge PMDs split for a write.
    ThpSplits,
    /// Hugetlb pages copied.
    HugetlbCopies,
    /// Hugetlb pages made writable in place.
    HugetlbReuses,
    /// Entries of `do_wp_page` for a write (retries count again).
    WpAttempts,
    /// Entries of `do_huge_pmd_wp_page` for a write.
    ThpWpAttempts,
    /// Successful `dup_mmap` calls.
    MmCopies,
    /// Unshare faults that found no free tracking slot.
    UnshareUntracked,
    /// Writes to the huge zero page that got a new huge page (7.x).
    ThpZero,
}

/// What a reader needs to know about a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// Its name in `stats` and `procs`, and its JSON key.
    pub name: &'static str,
    /// A short heading for tables of rates (`copies/s`).
    pub column: &'static str,
    /// One line for people.
    pub about: &'static str,
}

impl Counter {
    /// Every counter in `/proc/cowstat/stats` order.
    pub const ALL: [Counter; 20] = [
        Counter::WpFaults,
        Counter::CowCopies,
        Counter::CowZero,
        Counter::WpReuses,
        Counter::WpShared,
        Counter::CowUnshare,
        Counter::ThpWpFaults,
        Counter::Forks,
        Counter::ForkNs,
        Counter::CowKsm,
        Counter::CowFile,
        Counter::ThpReuses,
        Counter::ThpSplits,
        Counter::HugetlbCopies,
        Counter::HugetlbReuses,
        Counter::WpAttempts,
        Counter::ThpWpAttempts,
        Counter::MmCopies,
        Counter::UnshareUntracked,
        Counter::ThpZero,
    ];

    /// How many counters this crate knows.
    pub const COUNT: usize = Counter::ALL.len();

    /// How many of [`Counter::ALL`] interface version 1 has (every module
    /// reports them; later ones may be missing on an old module).
    pub const V1: usize = 9;

    /// The `procs` counter columns, in file order.
    pub const PROCS: [Counter; 5] = [
        Counter::WpFaults,
        Counter::CowCopies,
        Counter::CowZero,
        Counter::WpReuses,
        Counter::ThpWpFaults,
    ];

    /// The per-process counters in the order the fork report shows them
    /// (the outcome people look for first).
    pub const FORK_ROWS: [Counter; 5] = [
        Counter::CowCopies,
        Counter::WpFaults,
        Counter::WpReuses,
        Counter::CowZero,
        Counter::ThpWpFaults,
    ];

    /// Name, heading and meaning.
    pub const fn info(self) -> Info {
        let (name, column, about) = match self {
            Counter::WpFaults => (
                "wp_faults",
                "faults",
                "write faults on a write-protected PTE",
            ),
            Counter::CowCopies => ("cow_copies", "copies", "anonymous pages copied"),
            Counter::CowZero => ("cow_zero", "zero", "zero page replaced by a new page"),
            Counter::WpReuses => (
                "wp_reuses",
                "reuses",
                "private pages made writable in place",
            ),
            Counter::WpShared => ("wp_shared", "shared", "shared pages made writable"),
            Counter::CowUnshare => ("cow_unshare", "unshare", "pages copied for a GUP unshare"),
            Counter::ThpWpFaults => ("thp_wp_faults", "thp", "write faults on a huge PMD"),
            Counter::Forks => ("forks", "forks", "new address spaces (fork)"),
            Counter::ForkNs => ("fork_ns", "fork ns", "nanoseconds in dup_mmap"),
            Counter::CowKsm => ("cow_ksm", "ksm", "KSM pages copied"),
            Counter::CowFile => ("cow_file", "file", "file pages copied to anonymous"),
            Counter::ThpReuses => ("thp_reuses", "thp reuse", "huge pages made writable"),
            Counter::ThpSplits => ("thp_splits", "splits", "huge PMDs split for a write"),
            Counter::HugetlbCopies => ("hugetlb_copies", "hugetlb", "hugetlb pages copied"),
            Counter::HugetlbReuses => ("hugetlb_reuses", "hugetlb re", "hugetlb pages reused"),
            Counter::WpAttempts => ("wp_attempts", "attempts", "do_wp_page entries for a write"),
            Counter::ThpWpAttempts => ("thp_wp_attempts", "thp att", "huge-PMD write entries"),
            Counter::MmCopies => ("mm_copies", "mm copies", "successful dup_mmap calls"),
            Counter::UnshareUntracked => (
                "unshare_untracked",
                "untracked",
                "unshares with no free slot",
            ),
            Counter::ThpZero => (
                "thp_zero",
                "thp zero",
                "huge zero page replaced by a huge page",
            ),
        };
        Info {
            name,
            column,
            about,
        }
    }

    /// Its name in the module's files.
    pub const fn name(self) -> &'static str {
        self.info().name
    }

    /// The counter called `name`, if this crate knows it.
    pub fn from_name(name: &str) -> Option<Counter> {
        Counter::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Its position in [`Counter::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// True for interface version 1's counters (always in `stats`).
    pub const fn is_v1(self) -> bool {
        self.index() < Counter::V1
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order_and_names_are_unique() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i, "{c} out of place in Counter::ALL");
            assert_eq!(Counter::from_name(c.name()), Some(*c));
            assert!(c.info().column.len() <= 10, "{c}: heading too wide");
        }
        assert_eq!(Counter::from_name("nope"), None);
        assert_eq!(Counter::ALL[Counter::V1 - 1], Counter::ForkNs);
        assert!(Counter::PROCS.iter().all(|c| c.is_v1()));
    }
}
