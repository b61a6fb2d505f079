// SPDX-License-Identifier: GPL-2.0
//! `cow-demo map`: the heap's pages as a grid of cells turning from shared
//! to private as processes write. Classification, layout and the two
//! renderers are pure and tested on the host; `scan` reads /proc.

pub mod agree;
pub mod ansi;
pub mod classify;
pub mod grid;
pub mod report;
pub mod scan;
pub mod svg;
pub mod workers;
