// SPDX-License-Identifier: GPL-2.0
//! cowstat-selftest: the module's exactness promises, checked in the test VM
//! against known workloads, printed as KTAP with expected vs observed values.
//!
//! Run as root inside the VM with cowstat loaded (tests/guest/exactness.sh).
//! Exit status 0 if every case passed, 1 otherwise.

mod fork_cases;
mod own_cases;
mod path_cases;

use cow_demo::error::Result;
use cow_demo::ktap::Ktap;

/// `(label, expected, observed)` comparisons of one case.
pub type Checks = Vec<(&'static str, u64, u64)>;
/// A named case; running it yields its comparisons.
pub type TestCase = (String, Box<dyn FnOnce() -> Result<Checks>>);

/// What a case that may not apply to this system found.
pub enum Verdict {
    /// It ran: its comparisons.
    Checks(Checks),
    /// It could not run here, and why (KTAP `# SKIP`; not a pass).
    Skip(String),
}

/// A named case that may skip.
pub type MaybeCase = (String, Box<dyn FnOnce() -> Result<Verdict>>);

const USAGE: &str = "usage: cowstat-selftest [FILTER]

Runs the cowstat exactness cases whose names contain FILTER (default: all)
and prints KTAP. Needs /proc/cowstat, root and 2 CPUs.

examples:
  scripts/vm-run -- cowstat-selftest
  scripts/vm-run -- cowstat-selftest thp_on
  scripts/vm-run --mem 2G -- cowstat-selftest path_   (every copy-on-write path)";

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    if filter == "-h" || filter == "--help" {
        println!("{USAGE}");
        return;
    }
    // The zero-page case needs a process that has never forked: keep it first.
    let cases: Vec<MaybeCase> = own_cases::before_any_fork()
        .into_iter()
        .chain(fork_cases::tests())
        .chain(own_cases::after_forks())
        .map(|(name, run)| -> MaybeCase { (name, Box::new(move || run().map(Verdict::Checks))) })
        .chain(path_cases::tests())
        .filter(|(name, _)| name.contains(&filter))
        .collect();
    let mut t = Ktap::start(cases.len() as u32);
    for (name, run) in cases {
        match run() {
            Ok(Verdict::Checks(checks)) => t.expect_all(&name, &checks),
            Ok(Verdict::Skip(reason)) => t.skip(&name, &reason),
            Err(e) => t.error(&name, &e),
        }
    }
    std::process::exit(if t.finish() { 0 } else { 1 });
}
