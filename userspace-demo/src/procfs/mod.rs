// SPDX-License-Identifier: GPL-2.0
//! Parsers for the /proc files cow-demo reads: cowstat, smaps, pagemap and meminfo, and the
//! reader used inside measurement windows.

pub mod cowstat;
pub mod meminfo;
pub mod pagemap;
pub mod smaps;
pub mod window;
