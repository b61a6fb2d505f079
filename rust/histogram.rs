// SPDX-License-Identifier: GPL-2.0

//! A lock-free log2 histogram, printed like bcc's `biolatency`.

use crate::counter::Counter;
use core::fmt::{self, Write};

/// Number of power-of-two buckets: bucket 63 holds values >= 2^63.
const BUCKETS: usize = 64;

/// Width of the `|****|` bar, as in bcc.
const BAR_WIDTH: u64 = 40;
const BAR: &str = "****************************************";

/// Counts values in buckets `[0, 1]`, `[2, 3]`, `[4, 7]`, ... `[2^k, 2^(k+1) - 1]`.
pub(crate) struct Log2Histogram {
    buckets: [Counter; BUCKETS],
}

impl Log2Histogram {
    /// An empty histogram (usable in statics).
    pub(crate) const fn new() -> Self {
        Self {
            buckets: [const { Counter::new() }; BUCKETS],
        }
    }

    /// The bucket holding `value`: 0 and 1 go to bucket 0, then log2.
    fn bucket(value: u64) -> usize {
        if value < 2 {
            0
        } else {
            (63 - value.leading_zeros()) as usize
        }
    }

    /// Records one value. Safe in probe context (one relaxed atomic add).
    pub(crate) fn record(&self, value: u64) {
        self.buckets[Self::bucket(value)].inc();
    }

    /// Empties every bucket.
    pub(crate) fn reset(&self) {
        self.buckets.iter().for_each(Counter::reset);
    }

    /// Writes the histogram with `unit` as the value label, up to the
    /// highest non-empty bucket; an empty histogram prints only the header.
    /// Column widths follow bcc's `print_log2_hist`: narrow while every
    /// value fits in 32 bits, so typical output stays under 80 columns.
    pub(crate) fn write_to(&self, out: &mut impl Write, unit: &str) -> fmt::Result {
        let counts: [u64; BUCKETS] = core::array::from_fn(|i| self.buckets[i].get());
        let last = counts.iter().rposition(|&c| c != 0);
        let (pad, width) = match last {
            Some(i) if i >= 32 => (15, 20),
            _ => (5, 10),
        };
        let label_width = width * 2 - 1;
        writeln!(
            out,
            "{:pad$}{unit:<label_width$} : count    distribution",
            ""
        )?;
        let Some(last) = last else {
            return Ok(());
        };
        let max = counts[..=last].iter().copied().max().unwrap_or(1).max(1);
        for (i, &count) in counts[..=last].iter().enumerate() {
            let low: u64 = if i == 0 { 0 } else { 1 << i };
            let high: u64 = if i == 63 { u64::MAX } else { (2u64 << i) - 1 };
            let stars = (count * BAR_WIDTH).div_ceil(max).min(BAR_WIDTH) as usize;
            writeln!(
                out,
                "{low:>width$} -> {high:<width$} : {count:<8} |{:<40}|",
                &BAR[..stars]
            )?;
        }
        Ok(())
    }
}
