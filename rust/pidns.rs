// SPDX-License-Identifier: GPL-2.0

//! A process's pid in every pid namespace it is in, and who may see it.
//!
//! A row records, at its first event, the process's tgid at each namespace
//! level from the initial one down to its own (the `numbers[]` of its
//! `struct pid`), and holds a reference on its own namespace. That keeps
//! every recorded namespace alive, so comparing namespace addresses is
//! sound for as long as the row (or its exited copy) exists. A reader sees
//! a row if the reader's namespace is one of them, under the number it has
//! there; `/proc/cowstat` never lists a process outside the reader's
//! namespace.

use crate::glue;
use core::{
    ffi::c_ulong,
    sync::atomic::{AtomicI32, AtomicUsize, Ordering::Relaxed},
};

/// Namespace levels a row records (the kernel allows 32). A process nested
/// deeper is visible only to readers in the first `LEVELS` levels.
pub(crate) const LEVELS: usize = 8;

/// A copy of a process's identity.
#[derive(Clone, Copy)]
pub(crate) struct Pids {
    /// The process's own level; -1 for none.
    level: i32,
    ns: [usize; LEVELS],
    nr: [i32; LEVELS],
}

impl Pids {
    /// No process: seen by no reader.
    pub(crate) const fn none() -> Self {
        Self {
            level: -1,
            ns: [0; LEVELS],
            nr: [0; LEVELS],
        }
    }

    /// The running process's pids, and a reference on its namespace that
    /// the caller must hand to [`NsRef`] (or drop with [`NsRef::release`]).
    pub(crate) fn current() -> (Self, NsRef) {
        let mut pids = Pids::none();
        let mut ns = [0 as c_ulong; LEVELS];
        let mut nsref = 0;
        // SAFETY: The arrays hold `LEVELS` entries; `nsref` is a local.
        let level = unsafe {
            glue::cowstat_current_pids(
                ns.as_mut_ptr(),
                pids.nr.as_mut_ptr(),
                LEVELS as i32,
                &mut nsref,
            )
        };
        pids.level = level;
        for (dst, src) in pids.ns.iter_mut().zip(ns) {
            *dst = src as usize;
        }
        (pids, NsRef(nsref as usize))
    }

    /// The tgid as `reader` sees it, if it can see this process.
    pub(crate) fn seen_by(&self, reader: &Reader) -> Option<i32> {
        let level = usize::try_from(reader.level).ok()?;
        if level > usize::try_from(self.level).ok()? || level >= LEVELS {
            return None;
        }
        (self.ns[level] == reader.ns).then_some(self.nr[level])
    }
}

/// A counted reference on a pid namespace (0: none), dropped explicitly:
/// rows live in statics and move between tables, so no `Drop`.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NsRef(pub(crate) usize);

impl NsRef {
    /// Drops the reference. Safe in atomic context (namespaces are freed
    /// through RCU).
    pub(crate) fn release(self) {
        if self.0 != 0 {
            // SAFETY: A reference taken by `cowstat_current_pids` and
            // released once: every owner takes it out before releasing.
            unsafe { glue::cowstat_put_pid_ns(self.0 as c_ulong) };
        }
    }
}

/// [`Pids`] in atomics, for rows that readers copy while writers fill them.
pub(crate) struct AtomicPids {
    level: AtomicI32,
    ns: [AtomicUsize; LEVELS],
    nr: [AtomicI32; LEVELS],
}

impl AtomicPids {
    /// Empty (usable in statics).
    pub(crate) const fn new() -> Self {
        Self {
            level: AtomicI32::new(-1),
            ns: [const { AtomicUsize::new(0) }; LEVELS],
            nr: [const { AtomicI32::new(0) }; LEVELS],
        }
    }

    pub(crate) fn store(&self, pids: &Pids) {
        for (a, v) in self.ns.iter().zip(pids.ns) {
            a.store(v, Relaxed);
        }
        for (a, v) in self.nr.iter().zip(pids.nr) {
            a.store(v, Relaxed);
        }
        self.level.store(pids.level, Relaxed);
    }

    pub(crate) fn load(&self) -> Pids {
        let mut pids = Pids {
            level: self.level.load(Relaxed),
            ..Pids::none()
        };
        for (v, a) in pids.ns.iter_mut().zip(&self.ns) {
            *v = a.load(Relaxed);
        }
        for (v, a) in pids.nr.iter_mut().zip(&self.nr) {
            *v = a.load(Relaxed);
        }
        pids
    }
}

/// The pid namespace of the process reading `/proc/cowstat`.
pub(crate) struct Reader {
    ns: usize,
    level: i32,
}

impl Reader {
    /// The current task's active pid namespace.
    pub(crate) fn current() -> Self {
        let mut level = 0;
        // SAFETY: `level` is a local; the glue reads only `current`.
        let ns = unsafe { glue::cowstat_reader_ns(&mut level) } as usize;
        Self { ns, level }
    }

    /// Whether the reader is in the initial pid namespace (sees everything,
    /// including the `<other>` row that mixes processes).
    pub(crate) fn is_initial(&self) -> bool {
        self.level == 0
    }

    /// The global tgid of the process the reader calls `nr`, if it is alive.
    pub(crate) fn global_tgid(&self, nr: i32) -> Option<i32> {
        // SAFETY: No pointers; the glue looks `nr` up under RCU.
        let tgid = unsafe { glue::cowstat_global_tgid(nr) };
        (tgid > 0).then_some(tgid)
    }
}
