// SPDX-License-Identifier: GPL-2.0

//! A relaxed atomic event counter, the one type every cowstat counter uses.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A monotonically increasing event count, safe to bump from probe context.
///
/// Relaxed ordering is enough: readers want a recent value, not a consistent
/// snapshot across counters. Keeping all counters behind this one type means
/// a later move to per-CPU counters changes only this file.
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// A counter starting at zero (usable in statics).
    pub(crate) const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds one.
    #[inline]
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    /// Adds `n` (wraps at 2^64, which is centuries away at any event rate).
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// The current value.
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// Sets the counter back to zero.
    pub(crate) fn reset(&self) {
        self.0.store(0, Relaxed);
    }
}
