// SPDX-License-Identifier: GPL-2.0

//! Where a hooked call came from: the address ranges of kernel functions.
//!
//! cowstat hooks small non-static functions that the kernel calls when it
//! commits to an outcome (`ptep_clear_flush` when it swaps in a copied page,
//! `ptep_set_access_flags` when it makes a page writable in place), and
//! counts a call only if it came from the copy-on-write code. ftrace hands
//! every callback the caller's return address; a [`Callers`] set holds the
//! ranges of the functions that make up one part of the fault path. A
//! function the compiler inlined has no range of its own: its code is inside
//! its caller's range, which is in the set too, so the check holds whether
//! or not `wp_page_copy` survives as a function (6.12 with GCC and
//! `-fno-inline-functions-called-once`: it does; Debian's 7.x: it does not).

use crate::glue;
use core::{
    ffi::CStr,
    sync::atomic::{AtomicUsize, Ordering::Relaxed},
};
use kernel::prelude::*;

/// The start and size of one core-kernel function, if it exists.
pub(crate) fn function_range(name: &CStr) -> Result<Option<(usize, usize)>> {
    let (mut start, mut size) = (0, 0);
    // SAFETY: `name` is NUL-terminated; the out-pointers are valid locals.
    let ret = unsafe { glue::cowstat_symbol_range(name.as_ptr(), &mut start, &mut size) };
    match ret {
        0 => Ok(Some((start as usize, size as usize))),
        // Inlined, renamed, or only present in a module: not hooked.
        r if r == ENOENT.to_errno() || r == EEXIST.to_errno() => Ok(None),
        r => Err(Error::from_errno(r)),
    }
}

/// The functions that make up one part of the fault path, by name.
pub(crate) struct Callers<const N: usize> {
    names: [&'static CStr; N],
    /// `[start, end)` per name; `0..0` if the function does not exist.
    ranges: [(AtomicUsize, AtomicUsize); N],
}

impl<const N: usize> Callers<N> {
    /// A set of functions to look up with [`Callers::resolve`].
    pub(crate) const fn new(names: [&'static CStr; N]) -> Self {
        Self {
            names,
            ranges: [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; N],
        }
    }

    /// Looks every function up. Returns how many exist. Call at load,
    /// before any hook that reads this set is registered (registration
    /// orders these stores before the first callback).
    pub(crate) fn resolve(&self) -> Result<usize> {
        let mut found = 0;
        for (name, (start, end)) in self.names.iter().zip(&self.ranges) {
            if let Some((s, size)) = function_range(name)? {
                start.store(s, Relaxed);
                end.store(s + size, Relaxed);
                found += 1;
            }
        }
        Ok(found)
    }

    /// Whether `ip` lies inside one of the functions.
    #[inline]
    pub(crate) fn contains(&self, ip: usize) -> bool {
        self.ranges
            .iter()
            .any(|(start, end)| (start.load(Relaxed)..end.load(Relaxed)).contains(&ip))
    }

    /// Each function's name and whether it exists as a function here.
    pub(crate) fn each(&self) -> impl Iterator<Item = (&'static CStr, bool)> + '_ {
        self.names
            .iter()
            .zip(&self.ranges)
            .map(|(name, (_, end))| (*name, end.load(Relaxed) != 0))
    }
}
