// SPDX-License-Identifier: GPL-2.0
//! Integration tests of the cow-demo binary: one behaviour per test (host, without the module).

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn fixture_dir() -> String {
    format!("{}/tests/fixtures/cowstat", env!("CARGO_MANIFEST_DIR"))
}

/// cow-demo with COWSTAT_PROC pointing at `dir`.
fn cmd_with(dir: &str) -> Command {
    let mut c = Command::cargo_bin("cow-demo").unwrap();
    c.env("COWSTAT_PROC", dir);
    c
}

/// cow-demo with COWSTAT_PROC pointing at an empty directory: "module not loaded",
/// even on a machine where /proc/cowstat exists.
fn cmd_unloaded() -> (Command, tempfile::TempDir) {
    let d = tempfile::tempdir().unwrap();
    let c = cmd_with(d.path().to_str().unwrap());
    (c, d)
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).expect("stdout is one JSON object")
}

#[test]
fn help_ends_with_examples() {
    let out = Command::cargo_bin("cow-demo")
        .unwrap()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let s = String::from_utf8(out).unwrap();
    assert!(s.contains("EXAMPLES:"));
    assert!(
        s.trim_end().ends_with("set."),
        "EXAMPLES section comes last"
    );
    for sub in ["fork", "stats", "watch", "snapshot"] {
        Command::cargo_bin("cow-demo")
            .unwrap()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("EXAMPLES:"));
    }
}

#[test]
fn version() {
    Command::cargo_bin("cow-demo")
        .unwrap()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("cow-demo 0.1.0"));
}

#[test]
fn no_subcommand_is_a_usage_error() {
    Command::cargo_bin("cow-demo")
        .unwrap()
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("cow-demo: error:"));
}

#[test]
fn bad_heap_names_flag_and_form() {
    Command::cargo_bin("cow-demo")
        .unwrap()
        .args(["fork", "--heap", "12Q"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "cow-demo: error: invalid value '12Q' for '--heap",
        ))
        .stderr(predicate::str::contains(
            "expected a size like 64M, 1G or 4096K",
        ));
}

#[test]
fn bad_percent_and_pattern_name_flag_and_form() {
    Command::cargo_bin("cow-demo")
        .unwrap()
        .args(["fork", "--write", "25"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'--write"))
        .stderr(predicate::str::contains("expected a percentage like 25%"));
    Command::cargo_bin("cow-demo")
        .unwrap()
        .args(["fork", "--pattern", "stride:0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'--pattern"))
        .stderr(predicate::str::contains("stride:N"));
    Command::cargo_bin("cow-demo")
        .unwrap()
        .args(["fork", "--thp", "maybe"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'--thp"));
}

#[test]
fn conflicting_flags_fail_loudly() {
    Command::cargo_bin("cow-demo")
        .unwrap()
        .args(["fork", "--write", "10%", "--pages", "3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--write"))
        .stderr(predicate::str::contains("--pages"));
    Command::cargo_bin("cow-demo")
        .unwrap()
        .args(["fork", "--write-after-exit", "--writer", "both"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--write-after-exit"));
}

#[test]
fn too_many_pages_is_refused() {
    let (mut c, _d) = cmd_unloaded();
    c.args(["fork", "--heap", "4M", "--pages", "5000"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid value '5000' for '--pages': expected 1 to 1024",
        ));
}

#[test]
fn heap_bigger_than_mem_available_is_refused() {
    let (mut c, _d) = cmd_unloaded();
    c.args(["fork", "--heap", "64T"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is larger than MemAvailable"))
        .stderr(predicate::str::contains("choose a smaller --heap"));
}

#[test]
fn stats_json_from_fixture() {
    let out = cmd_with(&fixture_dir())
        .args(["stats", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let stats = &v["stats"];
    for k in [
        "wp_faults",
        "cow_copies",
        "cow_zero",
        "wp_reuses",
        "wp_shared",
        "cow_unshare",
        "thp_wp_faults",
        "forks",
        "fork_ns",
    ] {
        assert!(stats[k].is_u64(), "stats.{k}");
    }
    assert_eq!(stats["cow_copies"], 4107);
    let procs = v["procs"].as_array().unwrap();
    assert_eq!(procs.len(), 3);
    assert_eq!(procs[0]["pid"], 412);
    assert_eq!(procs[0]["comm"], "cow-demo");
    assert_eq!(procs[0]["cow_copies"], 4099);
    assert_eq!(procs[2]["pid"], Value::Null);
    assert_eq!(procs[2]["comm"], "<other>");
    // Global values are the sums over all rows.
    let sum: u64 = procs
        .iter()
        .map(|r| r["cow_copies"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 4107);
    assert_eq!(v["probes"][0]["function"], "do_wp_page");
    assert_eq!(v["probes"][3]["kind"], "kretprobe");
    assert_eq!(v["fork_latency"][2]["low_us"], 4);
    assert_eq!(v["fork_latency"][2]["count"], 1);
}

#[test]
fn stats_text_from_fixture() {
    cmd_with(&fixture_dir())
        .arg("stats")
        .assert()
        .success()
        .stdout(predicate::str::contains("cow_copies"))
        .stdout(predicate::str::contains(
            "    412 cow-demo              4099       4099        0         0             0",
        ))
        .stdout(predicate::str::contains("usecs"));
}

#[test]
fn stats_without_module_says_how_to_load_it() {
    let (mut c, _d) = cmd_unloaded();
    c.arg("stats")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "cow-demo: error: cowstat module not loaded",
        ))
        .stderr(predicate::str::contains("insmod cowstat.ko"));
}

#[test]
fn fork_on_host_without_module_uses_cross_checks() {
    let (mut c, _d) = cmd_unloaded();
    let out = c
        .args(["fork", "--heap", "4M", "--pages", "23"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "cowstat module not loaded: showing smaps/pagemap figures only",
        ))
        .stdout(predicate::str::contains(
            "verdict: OK (observed == expected",
        ))
        .stdout(predicate::str::contains("smaps/pagemap cross-checks only"))
        .get_output()
        .stdout
        .clone();
    let s = String::from_utf8(out).unwrap();
    assert!(s.starts_with("heap 4 MiB, page 4 KiB, K 23 pages, writer child"));
    for l in s.lines() {
        assert!(l.chars().count() < 80, "too wide: {l:?}");
    }
}

#[test]
fn fork_json_on_host() {
    let (mut c, _d) = cmd_unloaded();
    let out = c
        .args(["fork", "--heap", "4M", "--pages", "23", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["write_pages"], 23);
    assert_eq!(v["heap_pages"], 1024);
    assert_eq!(v["writer"], "child");
    assert_eq!(v["cowstat_loaded"], false);
    assert_eq!(v["verdict"], "OK");
    assert_eq!(v["child"]["expected"]["cow_copies"], 23);
    assert_eq!(v["child"]["observed"], Value::Null);
    // smaps always works on the host: the child's Private_Dirty grew by 23 pages.
    let before = v["child"]["smaps_before_write"]["private_dirty_kb"]
        .as_u64()
        .unwrap();
    let after = v["child"]["smaps_after_write"]["private_dirty_kb"]
        .as_u64()
        .unwrap();
    assert_eq!(after - before, 23 * 4);
    // pagemap bit 56 where readable (it may be hidden in some sandboxes).
    let pm = &v["child"]["pagemap_after_write"];
    if !pm.is_null() {
        assert_eq!(pm["exclusive"], 23);
    }
    // getrusage: exactly one minor fault per written page in the child's window, none
    // in the parent's (the window is free of stack and allocator faults).
    assert_eq!(v["child"]["minor_faults"], 23);
    assert_eq!(v["parent"]["minor_faults"], 0);
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "child.minor_faults" && c["ok"] == true));
    assert!(v["child"]["write_ns_per_page"].as_f64().unwrap() > 0.0);
    assert!(v["memcpy_4k_ns"].as_f64().unwrap() > 0.0);
}

#[test]
fn fork_all_writer_modes_on_host() {
    for args in [
        &["--writer", "parent"][..],
        &["--writer", "both", "--pattern", "random", "--seed", "7"],
        &["--write-after-exit"],
        &["--pattern", "stride:64", "--write", "10%"],
        &["--thp", "on", "--pattern", "stride:512"],
    ] {
        let (mut c, _d) = cmd_unloaded();
        let out = c
            .args(["fork", "--heap", "8M", "--json"])
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v = json(&out);
        assert_eq!(v["verdict"], "OK", "{args:?}: {v}");
    }
}

#[test]
fn fork_with_frozen_counters_is_a_mismatch() {
    // A fixture directory looks like a loaded module whose counters never move:
    // the child's expected 23 copies are not observed, so the verdict fails (exit 1).
    cmd_with(&fixture_dir())
        .args(["fork", "--heap", "4M", "--pages", "23"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "MISMATCH child.cow_copies: expected 23, observed 0",
        ))
        .stdout(predicate::str::contains("verdict: MISMATCH (child."));
}

#[test]
fn watch_json_lines_from_fixture() {
    let out = cmd_with(&fixture_dir())
        .args(["watch", "0.05", "2", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let s = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["delta"]["cow_copies"], 0);
        assert!(v["time"].is_string());
        assert!(v["elapsed_s"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn watch_text_from_fixture() {
    cmd_with(&fixture_dir())
        .args(["watch", "0.05", "1"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "deltas every 0.05 s... Hit Ctrl-C to end.",
        ))
        .stdout(predicate::str::contains("COW_COPIES"));
}

#[test]
fn watch_rejects_zero_interval() {
    cmd_with(&fixture_dir())
        .args(["watch", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'INTERVAL'"));
}

#[test]
fn snapshot_is_exact_while_parent_writes() {
    let (mut c, d) = cmd_unloaded();
    let dump = d.path().join("dump.bin");
    let out = c
        .args([
            "snapshot",
            "--keys",
            "2000",
            "--big-keys",
            "1",
            "--big-size",
            "256K",
            "--rate",
            "5000",
            "--save-rate",
            "1",
            "--big-key-update",
            "--json",
            "--out",
        ])
        .arg(&dump)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["snapshot_exact"], true);
    assert_eq!(v["checksum_snapshot"], v["checksum_at_fork"]);
    assert_ne!(v["checksum_final"], v["checksum_at_fork"]);
    assert!(v["updates"].as_u64().unwrap() > 0);
    // The big value is 64 pages; rewriting it copies each of them once.
    assert_eq!(v["big_key_copies"], 64);
    assert!(v["verdict"].as_str().unwrap().starts_with("OK"));
    let bytes = std::fs::read(&dump).unwrap();
    assert_eq!(bytes.len() as u64, v["saved_bytes"].as_u64().unwrap());
    assert_eq!(bytes.len(), 2000 * 64 + 256 * 1024);
}

#[test]
fn snapshot_no_fork_baseline() {
    let (mut c, _d) = cmd_unloaded();
    c.args(["snapshot", "--keys", "1000", "--big-keys", "0", "--no-fork"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "no-fork baseline: memcpy of the data set",
        ))
        .stdout(predicate::str::contains("fork() of the same heap takes"));
}

#[test]
fn snapshot_bad_out_names_flag() {
    let (mut c, _d) = cmd_unloaded();
    c.args(["snapshot", "--keys", "10", "--out", "/nonexistent/dir/dump"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("(--out) /nonexistent/dir/dump"));
}
