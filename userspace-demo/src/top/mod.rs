// SPDX-License-Identifier: GPL-2.0
//! Live per-process copy-on-write rates for `cow-demo top` and `watch --pid`:
//! sampling, rates and ordering are kept apart from rendering, which is pure.

pub mod cli;
pub mod pidfile;
pub mod rates;
pub mod render;
pub mod sample;
pub mod term;
