// SPDX-License-Identifier: GPL-2.0
//! KTAP output for the in-VM test tools (cowstat-selftest, cowstat-fuzz):
//! `ok N - name` / `not ok N - name` / `ok N - name # SKIP reason`,
//! diagnostics as `# ...`. A skip is not a pass: the totals count it apart,
//! and so does scripts/run-tests.

/// Numbers results and counts failures.
pub struct Ktap {
    n: u32,
    failed: u32,
    skipped: u32,
}

impl Ktap {
    /// Prints the header and the plan.
    pub fn start(planned: u32) -> Self {
        println!("TAP version 13");
        println!("1..{planned}");
        Ktap {
            n: 0,
            failed: 0,
            skipped: 0,
        }
    }

    /// One result, with diagnostics printed before it.
    pub fn result(&mut self, ok: bool, name: &str, diagnostics: &[String]) {
        self.n += 1;
        for d in diagnostics {
            println!("# {d}");
        }
        if ok {
            println!("ok {} - {name}", self.n);
        } else {
            self.failed += 1;
            println!("not ok {} - {name}", self.n);
        }
    }

    /// Passes iff every `(label, expected, observed)` matches; prints them all.
    pub fn expect_all(&mut self, name: &str, checks: &[(&'static str, u64, u64)]) {
        let ok = checks.iter().all(|(_, e, o)| e == o);
        let lines: Vec<String> = checks
            .iter()
            .map(|(l, e, o)| {
                let mark = if e == o { "" } else { "   <-- differs" };
                format!("{l}: expected {e}, observed {o}{mark}")
            })
            .collect();
        self.result(ok, name, &lines);
    }

    /// A test that could not run (its setup failed): reported as a failure.
    pub fn error(&mut self, name: &str, err: &dyn std::fmt::Display) {
        self.result(false, name, &[format!("error: {err}")]);
    }

    /// A test that did not run because the system lacks what it needs
    /// (`reason`): KTAP `ok N - name # SKIP reason`, counted as skipped.
    pub fn skip(&mut self, name: &str, reason: &str) {
        self.n += 1;
        self.skipped += 1;
        println!("ok {} - {name} # SKIP {reason}", self.n);
    }

    /// Prints the totals; returns true if nothing failed (skips do not fail).
    pub fn finish(self) -> bool {
        let skipped = if self.skipped > 0 {
            format!(", {} skipped", self.skipped)
        } else {
            String::new()
        };
        println!(
            "# totals: {} passed, {} failed{skipped}",
            self.n - self.failed - self.skipped,
            self.failed
        );
        self.failed == 0
    }
}
