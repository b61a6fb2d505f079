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
    ffi::{c_char, c_uint, c_ulong, CStr},
    sync::atomic::{AtomicUsize, Ordering::Relaxed},
};
use kernel::prelude::*;

/// Kernel function names looked up together: one RCU grace period for the
/// whole batch (the lookup registers and unregisters a disabled kprobe per
/// name), so loading the module stays fast.
pub(crate) struct Symbols {
    names: [*const c_char; MAX_SYMBOLS],
    starts: [c_ulong; MAX_SYMBOLS],
    sizes: [c_ulong; MAX_SYMBOLS],
    len: usize,
}

/// Names one [`Symbols`] batch holds.
pub(crate) const MAX_SYMBOLS: usize = 32;

impl Symbols {
    /// An empty batch.
    pub(crate) fn new() -> Self {
        Self {
            names: [core::ptr::null(); MAX_SYMBOLS],
            starts: [0; MAX_SYMBOLS],
            sizes: [0; MAX_SYMBOLS],
            len: 0,
        }
    }

    /// Adds a name; returns its index. `EINVAL` if the batch is full.
    pub(crate) fn push(&mut self, name: &'static CStr) -> Result<usize> {
        let slot = self.names.get_mut(self.len).ok_or(EINVAL)?;
        *slot = name.as_ptr();
        self.len += 1;
        Ok(self.len - 1)
    }

    /// Looks every name up in vmlinux (process context; sleeps).
    pub(crate) fn resolve(&mut self) -> Result {
        // SAFETY: The first `len` names are static C strings; the output
        // arrays hold `MAX_SYMBOLS >= len` entries.
        let ret = unsafe {
            glue::cowstat_symbols_resolve(
                self.names.as_ptr(),
                self.starts.as_mut_ptr(),
                self.sizes.as_mut_ptr(),
                self.len as c_uint,
            )
        };
        kernel::error::to_result(ret)
    }

    /// Start and size of name `index`, if it is a core-kernel function.
    pub(crate) fn range(&self, index: usize) -> Option<(usize, usize)> {
        match (self.starts.get(index)?, self.sizes.get(index)?) {
            (0, _) => None,
            (&start, &size) => Some((start as usize, size as usize)),
        }
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

    /// Adds the names to `symbols`; returns the index of the first.
    pub(crate) fn request(&self, symbols: &mut Symbols) -> Result<usize> {
        let first = symbols.len;
        for name in &self.names {
            symbols.push(name)?;
        }
        Ok(first)
    }

    /// Takes the ranges from resolved `symbols`, names from index `first`.
    /// Returns how many exist. Call at load, before any hook that reads
    /// this set is registered (registration orders these stores before the
    /// first callback).
    pub(crate) fn store(&self, symbols: &Symbols, first: usize) -> usize {
        let mut found = 0;
        for (i, (start, end)) in self.ranges.iter().enumerate() {
            if let Some((s, size)) = symbols.range(first + i) {
                start.store(s, Relaxed);
                end.store(s + size, Relaxed);
                found += 1;
            }
        }
        found
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
