// SPDX-License-Identifier: GPL-2.0
//! What happened to each heap page since the fork, from the pagemap entries of
//! parent and child: pure functions, no I/O.
//!
//! The rule: at fork both processes map the same page frame (pfn). A write
//! that copies gives the writer a new pfn and leaves the other process the
//! original; a write that reuses keeps the writer's pfn; a write to the shared
//! zero page gives the writer a fresh page.

use serde::Serialize;

use crate::procfs::pagemap::{PM_MMAP_EXCLUSIVE, PM_PFN_MASK, PM_PRESENT};

/// One decoded /proc/PID/pagemap entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// Bit 63: mapped to a page in RAM.
    pub present: bool,
    /// Bit 56: this is the only mapping of the page.
    pub exclusive: bool,
    /// Bits 0-54: the page frame number (0 unless the reader has CAP_SYS_ADMIN).
    pub pfn: u64,
}

impl Entry {
    /// Decodes a raw 64-bit entry.
    pub fn decode(raw: u64) -> Entry {
        let present = raw & PM_PRESENT != 0;
        Entry {
            present,
            exclusive: present && raw & PM_MMAP_EXCLUSIVE != 0,
            pfn: if present { raw & PM_PFN_MASK } else { 0 },
        }
    }

    /// A present page at `pfn` (for tests and fixtures).
    pub fn at(pfn: u64) -> Entry {
        Entry {
            present: true,
            exclusive: false,
            pfn,
        }
    }
}

/// What a cell of the map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Mapped by neither process (never touched, or released).
    Absent,
    /// Same page frame in parent and child: still shared.
    Shared,
    /// Shared, and mapped by a huge PMD in both processes.
    Huge,
    /// The child wrote and got a copy; the parent keeps the original.
    CopiedByChild,
    /// The parent wrote and got a copy; the child keeps the original.
    CopiedByParent,
    /// A process wrote a page nobody else mapped any more and kept it.
    Reused,
    /// A write to the shared zero page gave the writer a fresh page.
    ZeroFilled,
}

impl State {
    /// Every state, in legend order.
    pub const ALL: [State; 7] = [
        State::Shared,
        State::CopiedByChild,
        State::CopiedByParent,
        State::Reused,
        State::ZeroFilled,
        State::Huge,
        State::Absent,
    ];

    /// The character drawn for the state (also without colours, e.g. in
    /// tmux capture-pane or a pipe).
    pub fn glyph(self) -> char {
        match self {
            State::Shared => '.',
            State::CopiedByChild => 'c',
            State::CopiedByParent => 'p',
            State::Reused => 'r',
            State::ZeroFilled => 'z',
            State::Huge => 'H',
            State::Absent => '-',
        }
    }

    /// Words for the legend.
    pub fn label(self) -> &'static str {
        match self {
            State::Shared => "shared",
            State::CopiedByChild => "copied by child",
            State::CopiedByParent => "copied by parent",
            State::Reused => "reused",
            State::ZeroFilled => "zero-filled",
            State::Huge => "huge page",
            State::Absent => "not present",
        }
    }

    /// Short name: SVG class and JSON key.
    pub fn key(self) -> &'static str {
        match self {
            State::Shared => "shared",
            State::CopiedByChild => "child",
            State::CopiedByParent => "parent",
            State::Reused => "reused",
            State::ZeroFilled => "zero",
            State::Huge => "huge",
            State::Absent => "absent",
        }
    }

    /// How eventful a state is: a cell of several pages shows its most
    /// eventful page, so one copied page in a group is not hidden.
    fn rank(self) -> u8 {
        match self {
            State::Absent => 0,
            State::Shared => 1,
            State::Huge => 2,
            State::ZeroFilled => 3,
            State::CopiedByChild => 4,
            State::CopiedByParent => 5,
            State::Reused => 6,
        }
    }

    /// The state a cell shows for pages in states `a` and `b`.
    pub fn merge(a: State, b: State) -> State {
        if b.rank() > a.rank() {
            b
        } else {
            a
        }
    }
}

/// Everything known about one page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// The parent's entry just before the writes (the fork-time page).
    pub base: Entry,
    /// The parent's entry now.
    pub parent: Entry,
    /// The child's entry now; `None` once the child has exited.
    pub child: Option<Entry>,
    /// The parent has written the page since the fork (known for cow-demo's
    /// own writers, false for another program).
    pub parent_wrote: bool,
    /// The child has written the page since the fork.
    pub child_wrote: bool,
    /// Mapped by a huge PMD in the parent now.
    pub parent_huge: bool,
    /// Mapped by a huge PMD in the child now.
    pub child_huge: bool,
}

/// The copy-on-write events that must have happened to one page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// The child holds a copy of the fork-time page.
    pub child_copied: bool,
    /// The parent holds a copy of the fork-time page.
    pub parent_copied: bool,
    /// The child replaced the zero page by a fresh page.
    pub child_zero: bool,
    /// The parent replaced the zero page by a fresh page.
    pub parent_zero: bool,
    /// The child wrote the page and kept its frame (4 KiB reuse).
    pub child_reused: bool,
    /// The parent wrote the page and kept its frame (4 KiB reuse).
    pub parent_reused: bool,
}

/// A process's entry changed frame away from the fork-time one.
fn moved(now: Entry, base: Entry) -> bool {
    now.present && base.present && now.pfn != base.pfn
}

/// The events behind `p`; `zero_pfn` is the frame of the shared zero page.
pub fn facts(p: &Page, zero_pfn: Option<u64>) -> Facts {
    let from_zero = p.base.present && Some(p.base.pfn) == zero_pfn;
    let child = p.child.unwrap_or_default();
    let child_moved = moved(child, p.base);
    let parent_moved = moved(p.parent, p.base);
    let kept = |now: Entry, wrote: bool, huge: bool| {
        // A huge PMD reused whole is a thp_wp_fault, not a 4 KiB reuse.
        wrote && !huge && !from_zero && now.present && p.base.present && now.pfn == p.base.pfn
    };
    Facts {
        child_copied: child_moved && !from_zero,
        parent_copied: parent_moved && !from_zero,
        child_zero: child_moved && from_zero,
        parent_zero: parent_moved && from_zero,
        child_reused: p.child.is_some() && kept(child, p.child_wrote, p.child_huge),
        parent_reused: kept(p.parent, p.parent_wrote, p.parent_huge),
    }
}

/// What the cell of a single page shows.
pub fn state(p: &Page, zero_pfn: Option<u64>) -> State {
    let f = facts(p, zero_pfn);
    let child = p.child.unwrap_or_default();
    if f.parent_reused || f.child_reused {
        State::Reused
    } else if f.parent_copied {
        State::CopiedByParent
    } else if f.child_copied {
        State::CopiedByChild
    } else if f.parent_zero || f.child_zero {
        State::ZeroFilled
    } else if p.parent.present && child.present && p.parent.pfn == child.pfn {
        if p.parent_huge && p.child_huge {
            State::Huge
        } else {
            State::Shared
        }
    } else {
        // Mapped by neither, or by one side only (released by the other, or
        // faulted in after the fork): not shared, and no COW event made it so.
        State::Absent
    }
}

/// Per-process event counts over all pages (what cowstat must agree with).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Events {
    /// Pages copied (compare with `cow_copies`).
    pub copies: u64,
    /// Zero pages replaced (compare with `cow_zero`).
    pub zero: u64,
    /// Pages reused in place (compare with `wp_reuses`).
    pub reuses: u64,
    /// Huge PMDs mapped at the start and split since (compare with `thp_wp_faults`).
    pub thp_splits: u64,
}

/// Counts of one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// The child's events.
    pub child: Events,
    /// The parent's events.
    pub parent: Events,
}

impl Tally {
    /// Sums the facts of `pages`.
    pub fn of(pages: &[Page], zero_pfn: Option<u64>) -> Tally {
        let mut t = Tally::default();
        for p in pages {
            let f = facts(p, zero_pfn);
            t.child.copies += f.child_copied as u64;
            t.parent.copies += f.parent_copied as u64;
            t.child.zero += f.child_zero as u64;
            t.parent.zero += f.parent_zero as u64;
            t.child.reuses += f.child_reused as u64;
            t.parent.reuses += f.parent_reused as u64;
        }
        t
    }
}

/// Huge regions (of `per_region` pages) mapped huge at the start by a process
/// (`before`) and not any more (`after`): each is one split by a write.
pub fn splits(before: &[bool], after: &[bool], per_region: usize) -> u64 {
    if per_region == 0 {
        return 0;
    }
    before
        .chunks(per_region)
        .zip(after.chunks(per_region))
        .filter(|(b, a)| b.iter().all(|&x| x) && !a.iter().all(|&x| x))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZERO: u64 = 0x1000;

    fn page(base: u64, parent: u64, child: u64) -> Page {
        Page {
            base: Entry::at(base),
            parent: Entry::at(parent),
            child: Some(Entry::at(child)),
            ..Default::default()
        }
    }

    #[test]
    fn decode_bits() {
        let e = Entry::decode(PM_PRESENT | PM_MMAP_EXCLUSIVE | 0x1234);
        assert_eq!(
            e,
            Entry {
                present: true,
                exclusive: true,
                pfn: 0x1234
            }
        );
        // Not present: a swap entry's offset is not a pfn.
        assert_eq!(Entry::decode(PM_MMAP_EXCLUSIVE | 0x55), Entry::default());
    }

    #[test]
    fn shared_and_copies() {
        assert_eq!(state(&page(7, 7, 7), Some(ZERO)), State::Shared);
        let child = page(7, 7, 9);
        assert_eq!(state(&child, Some(ZERO)), State::CopiedByChild);
        let f = facts(&child, Some(ZERO));
        assert!(f.child_copied && !f.parent_copied && !f.child_zero);
        let parent = page(7, 9, 7);
        assert_eq!(state(&parent, Some(ZERO)), State::CopiedByParent);
        assert!(facts(&parent, None).parent_copied);
    }

    #[test]
    fn zero_fill_is_not_a_copy() {
        let p = page(ZERO, ZERO, 42);
        assert_eq!(state(&p, Some(ZERO)), State::ZeroFilled);
        let f = facts(&p, Some(ZERO));
        assert!(f.child_zero && !f.child_copied);
        // Without knowing the zero pfn it looks like a copy.
        assert!(facts(&p, None).child_copied);
        assert_eq!(state(&page(ZERO, ZERO, ZERO), Some(ZERO)), State::Shared);
    }

    #[test]
    fn reuse_needs_a_write_and_the_same_frame() {
        // --writer both: the child copied, then the parent wrote its original.
        let mut p = page(7, 7, 9);
        p.child_wrote = true;
        p.parent_wrote = true;
        let f = facts(&p, Some(ZERO));
        assert!(f.child_copied && f.parent_reused && !f.parent_copied);
        assert_eq!(state(&p, Some(ZERO)), State::Reused);
        // Same frames, no write by the parent: still "copied by child".
        p.parent_wrote = false;
        assert_eq!(state(&p, Some(ZERO)), State::CopiedByChild);
        // A huge PMD reused whole is not a 4 KiB reuse.
        p.parent_wrote = true;
        p.parent_huge = true;
        assert!(!facts(&p, Some(ZERO)).parent_reused);
    }

    #[test]
    fn both_copied_shows_the_parent() {
        // Parent and child each hold a copy (a third process kept the original).
        let p = page(7, 8, 9);
        let f = facts(&p, None);
        assert!(f.child_copied && f.parent_copied);
        assert_eq!(state(&p, None), State::CopiedByParent);
    }

    #[test]
    fn huge_absent_and_exited_child() {
        let mut p = page(7, 7, 7);
        p.parent_huge = true;
        assert_eq!(state(&p, None), State::Shared, "huge in one process only");
        p.child_huge = true;
        assert_eq!(state(&p, None), State::Huge);
        assert_eq!(state(&Page::default(), None), State::Absent);
        let gone = Page {
            child: None,
            ..page(7, 7, 7)
        };
        assert_eq!(state(&gone, None), State::Absent);
        assert_eq!(facts(&gone, None), Facts::default());
    }

    #[test]
    fn merge_shows_the_most_eventful() {
        assert_eq!(
            State::merge(State::Shared, State::CopiedByChild),
            State::CopiedByChild
        );
        assert_eq!(State::merge(State::Reused, State::Shared), State::Reused);
        assert_eq!(State::merge(State::Absent, State::Huge), State::Huge);
        let glyphs: std::collections::HashSet<char> =
            State::ALL.iter().map(|s| s.glyph()).collect();
        assert_eq!(glyphs.len(), State::ALL.len(), "glyphs are distinct");
    }

    #[test]
    fn tally_and_splits() {
        let mut pages = vec![page(1, 1, 1); 10];
        pages[2] = page(2, 2, 20);
        pages[3] = page(3, 30, 3);
        pages[4] = page(ZERO, ZERO, 40);
        let t = Tally::of(&pages, Some(ZERO));
        assert_eq!(t.child.copies, 1);
        assert_eq!(t.parent.copies, 1);
        assert_eq!(t.child.zero, 1);
        assert_eq!(t.parent.zero + t.parent.reuses + t.child.reuses, 0);
        let before = [true; 8];
        let after = [true, true, false, true, true, true, true, true];
        assert_eq!(splits(&before, &after, 4), 1);
        assert_eq!(splits(&before, &before, 4), 0);
        assert_eq!(splits(&[false; 8], &[false; 8], 4), 0);
    }
}
