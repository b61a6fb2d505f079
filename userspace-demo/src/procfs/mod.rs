// SPDX-License-Identifier: GPL-2.0
//! Parsers for the /proc files cow-demo reads: cowstat, smaps, pagemap and meminfo.

pub mod cowstat;
pub mod meminfo;
pub mod pagemap;
pub mod smaps;
