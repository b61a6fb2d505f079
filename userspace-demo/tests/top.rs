// SPDX-License-Identifier: GPL-2.0
//! Integration tests of `cow-demo top` and `watch --pid` on the host, with
//! COWSTAT_PROC pointing at fixtures (some rewritten between samples).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn fixture_dir() -> String {
    format!("{}/tests/fixtures/cowstat", env!("CARGO_MANIFEST_DIR"))
}

fn cmd_with(dir: &str) -> Command {
    let mut c = Command::cargo_bin("cow-demo").unwrap();
    c.env("COWSTAT_PROC", dir);
    c
}

fn stdout_of(c: &mut Command) -> String {
    String::from_utf8(c.assert().success().get_output().stdout.clone()).unwrap()
}

#[test]
fn help_has_examples_and_columns() {
    let s = stdout_of(
        Command::cargo_bin("cow-demo")
            .unwrap()
            .args(["top", "--help"]),
    );
    assert!(s.contains("EXAMPLES:") && s.contains("cow-demo top --comm redis"));
    assert!(s.contains("S: + first seen in the interval, X ended in it."));
    assert!(s.lines().all(|l| l.chars().count() <= 80));
    let s = stdout_of(
        Command::cargo_bin("cow-demo")
            .unwrap()
            .args(["watch", "--help"]),
    );
    assert!(s.contains("cow-demo watch --pid 412"));
}

#[test]
fn json_lines_from_fixture() {
    let s = stdout_of(cmd_with(&fixture_dir()).args(["top", "0.05", "2", "--json"]));
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["interval_s"].as_f64().unwrap() > 0.0);
        assert_eq!(v["global"]["delta"]["cow_copies"], 0);
        let procs = v["procs"].as_array().unwrap();
        assert_eq!(procs.len(), 3);
        // Sorted by copies/s (all 0), then total copies.
        assert_eq!(procs[0]["pid"], 412);
        assert_eq!(procs[0]["state"], "live");
        assert_eq!(procs[0]["total"]["cow_copies"], 4099);
        assert_eq!(procs[0]["per_s"]["cow_copies"], 0.0);
    }
}

#[test]
fn plain_blocks_filtered_and_sorted() {
    let s = stdout_of(cmd_with(&fixture_dir()).args(["top", "0.05", "1", "--comm", "cow"]));
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 5, "{s}");
    assert!(lines[0].contains(" all/s: copies 0  faults 0"), "{s}");
    assert!(lines[1].starts_with("    PID COMM             COPY/s"));
    assert!(lines[2].starts_with("    412 cow-demo"));
    assert!(lines[3].starts_with("    413 cow-demo"));
    assert!(lines.iter().all(|l| l.len() <= 80));
    let s = stdout_of(cmd_with(&fixture_dir()).args([
        "top", "0.05", "1", "--sort", "pid", "--pid", "413", "--width", "100",
    ]));
    let rows: Vec<&str> = s.lines().skip(2).filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 1, "{s}");
    assert!(s.lines().nth(1).unwrap().contains("ZEROS    THP"), "{s}");
    assert!(rows[0].starts_with("    413 cow-demo"));
}

#[test]
fn bad_flags_name_the_flag() {
    let d = fixture_dir();
    for (args, want) in [
        (vec!["top", "--width", "20"], "'--width'"),
        (vec!["top", "0"], "'INTERVAL'"),
        (vec!["top", "1", "0"], "'COUNT'"),
        (vec!["top", "--pid", "0"], "--pid"),
        (vec!["top", "--pid", "4000000000"], "--pid"),
        (
            vec!["top", "--sort", "copy"],
            "tip: a similar value exists: 'copies'",
        ),
        (vec!["watch", "--pid", "x"], "--pid"),
    ] {
        cmd_with(&d)
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with("cow-demo: error:"))
            .stderr(predicate::str::contains(want));
    }
}

#[test]
fn unloaded_module_says_how_to_load_it() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        vec!["top", "0.05", "1"],
        vec!["watch", "--pid", "1", "0.05", "1"],
    ] {
        cmd_with(d.path().to_str().unwrap())
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("insmod cowstat.ko"));
    }
}

const HEAD: &str =
    "    pid comm             wp_faults cow_copies cow_zero wp_reuses thp_wp_faults S\n";

/// Writes `procs` and a `stats` whose copies and faults are `global` (by
/// rename, so a sample never sees half a file).
fn write_state(dir: &Path, rows: &str, global: u64) {
    let stats = format!(
        "wp_faults {global}\ncow_copies {global}\ncow_zero 0\nwp_reuses 0\nwp_shared 0\n\
         cow_unshare 0\nthp_wp_faults 0\nforks 1\nfork_ns 5000000\n"
    );
    for (name, text) in [("stats", stats), ("procs", format!("{HEAD}{rows}"))] {
        let tmp = dir.join(format!("{name}.new"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

fn proc_of(frame: &Value, pid: u64) -> &Value {
    frame["procs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("no pid {pid} in {frame}"))
}

/// Three refreshes 1 s apart; the files change right after each frame is
/// printed, so each frame compares two known states: a child that copies
/// 1021 pages, a parent that ends, a child that vanishes, one born and ended
/// inside an interval, and one ended before top started (never shown).
#[test]
fn rates_new_and_ended_processes_between_rewritten_samples() {
    let d = tempfile::tempdir().unwrap();
    let state_a = "    412 cow-demo   120  100  0  20  0 L
    500 sh          10   10  0   0  0 L
    600 old          7    7  0   0  0 X
";
    let state_b = "    412 cow-demo   120  100  0  20  0 L
    413 cow-demo  1021 1021  0   0  0 L
    500 sh          10   10  0   0  0 L
    600 old          7    7  0   0  0 X
";
    let state_c = "    412 cow-demo   123  103  0  20  0 X
    500 sh          10   10  0   0  0 L
    414 brief       23   23  0   0  0 X
    600 old          7    7  0   0  0 X
";
    write_state(d.path(), state_a, 1000);
    let mut child = StdCommand::cargo_bin("cow-demo")
        .unwrap()
        .env("COWSTAT_PROC", d.path())
        .args(["top", "1", "3", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || -> Value { serde_json::from_str(&out.next().unwrap().unwrap()).unwrap() };

    let f1 = next();
    write_state(d.path(), state_b, 2021);
    assert_eq!(f1["procs"].as_array().unwrap().len(), 2, "{f1}");
    assert_eq!(proc_of(&f1, 412)["delta"]["cow_copies"], 0);

    let f2 = next();
    write_state(d.path(), state_c, 2047);
    let secs = f2["interval_s"].as_f64().unwrap();
    assert!((0.9..3.0).contains(&secs), "{secs}");
    assert_eq!(f2["global"]["delta"]["cow_copies"], 1021);
    let child413 = &f2["procs"][0];
    assert_eq!(child413["pid"], 413, "sorted by copies/s: {f2}");
    assert_eq!(child413["state"], "new");
    assert_eq!(child413["delta"]["cow_copies"], 1021);
    let rate = child413["per_s"]["cow_copies"].as_f64().unwrap();
    assert!((rate * secs - 1021.0).abs() < 1e-6, "{rate} * {secs}");
    assert_eq!(proc_of(&f2, 412)["state"], "live");

    let f3 = next();
    assert_eq!(f3["global"]["delta"]["cow_copies"], 26);
    let parent = proc_of(&f3, 412);
    assert_eq!(parent["state"], "exited");
    assert_eq!(parent["delta"]["cow_copies"], 3);
    assert_eq!(parent["total"]["cow_copies"], 103);
    let gone = proc_of(&f3, 413);
    assert_eq!(gone["state"], "vanished");
    assert_eq!(gone["total"]["cow_copies"], 1021);
    let brief = proc_of(&f3, 414);
    assert_eq!(
        (&brief["state"], &brief["delta"]["cow_copies"]),
        (&"exited".into(), &23.into())
    );
    assert!(f3["procs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["pid"] != 600));
    assert!(child.wait().unwrap().success());
}
