// SPDX-License-Identifier: GPL-2.0
//! KTAP output for the in-VM test tools (cowstat-selftest, cowstat-fuzz):
//! `ok N - name` / `not ok N - name`, diagnostics as `# ...`.

/// Numbers results and counts failures.
pub struct Ktap {
    n: u32,
    failed: u32,
}

impl Ktap {
    /// Prints the header and the plan.
    pub fn start(planned: u32) -> Self {
        println!("TAP version 13");
        println!("1..{planned}");
        Ktap { n: 0, failed: 0 }
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

    /// Prints the totals; returns true if nothing failed.
    pub fn finish(self) -> bool {
        println!(
            "# totals: {} passed, {} failed",
            self.n - self.failed,
            self.failed
        );
        self.failed == 0
    }
}
