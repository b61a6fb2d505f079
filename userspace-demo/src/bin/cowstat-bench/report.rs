// SPDX-License-Identifier: GPL-2.0
//! Host side of `make bench`: JSON lines in; results.json, report.md and gnuplot data out.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use cow_demo::error::{Error, Result};
use cow_demo::units::format_ns;

use super::record::{Record, Spread};
use super::tags::{Bench, Metric, Tag};

/// Loads every JSON line of `paths` (lines not starting with `{` are ignored).
pub fn load(paths: &[PathBuf]) -> Result<Vec<Record>> {
    let mut out = vec![];
    for p in paths {
        let text = fs::read_to_string(p).map_err(|e| Error::io("read", p, e))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if !line.starts_with('{') {
                continue;
            }
            let r: Record = serde_json::from_str(line)
                .map_err(|e| Error::Output(format!("{}:{}: {e}", p.display(), i + 1)))?;
            out.push(r);
        }
    }
    Ok(out)
}

fn param(r: &Record, k: &str) -> u64 {
    r.params.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn param_str<'a>(r: &'a Record, k: &str) -> &'a str {
    r.params.get(k).and_then(Value::as_str).unwrap_or("")
}

fn samples<'a>(rs: impl Iterator<Item = &'a Record>) -> Vec<f64> {
    rs.flat_map(|r| r.samples.iter().copied()).collect()
}

/// A loaded/unloaded ratio with its spread over rounds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ratio {
    /// Metric name.
    pub metric: Metric,
    /// Median of all loaded samples.
    pub loaded_median: f64,
    /// Median of all unloaded samples.
    pub unloaded_median: f64,
    /// Per-round ratios (median loaded / median unloaded of the round).
    pub rounds: Vec<f64>,
    /// Spread of `rounds`.
    pub ratio: Spread,
}

/// Per-round loaded/unloaded ratios of `metric` in the `overhead` records tagged `round*`.
pub fn overhead_ratio(recs: &[Record], metric: Metric) -> Option<Ratio> {
    let sel = |r: &&Record| {
        r.bench == Bench::Overhead
            && r.run.place == "guest"
            && r.metric == metric
            && matches!(r.run.tag, Tag::Round(_))
    };
    // Keyed by the tag's text: the rounds keep the order they always had.
    let mut by_round: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for r in recs.iter().filter(sel) {
        let e = by_round.entry(r.run.tag.to_string()).or_default();
        if r.run.module == "loaded" {
            e.0.extend(&r.samples)
        } else {
            e.1.extend(&r.samples)
        }
    }
    let rounds: Vec<f64> = by_round
        .values()
        .filter(|(l, u)| !l.is_empty() && !u.is_empty())
        .map(|(l, u)| Spread::of(l).median / Spread::of(u).median)
        .collect();
    if rounds.is_empty() {
        return None;
    }
    let all = |m: &str| {
        Spread::of(&samples(
            recs.iter().filter(sel).filter(|r| r.run.module == m),
        ))
        .median
    };
    Some(Ratio {
        metric,
        loaded_median: all("loaded"),
        unloaded_median: all("unloaded"),
        ratio: Spread::of(&rounds),
        rounds,
    })
}

/// The overhead of `metric` split by the bare build (entry hooks that
/// return at once): per round N, bare (tag `bareN`) over unloaded (`roundN`)
/// is the hook mechanism's share, loaded over bare the handlers' share.
/// If the run has them, `baseN` rounds (the module built from an earlier
/// commit, `scripts/bench --baseline REF`) give loaded / base: what the
/// change since REF costs, measured in the same boot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MechanismSplit {
    /// Metric name.
    pub metric: Metric,
    /// Medians of all unloaded, bare and loaded samples.
    pub unloaded_median: f64,
    pub bare_median: f64,
    pub loaded_median: f64,
    /// Per-round bare / unloaded.
    pub mechanism: Spread,
    /// Per-round loaded / bare.
    pub handlers: Spread,
    /// Median of the baseline build's samples, and per-round loaded / base.
    pub base_median: Option<f64>,
    pub against_base: Option<Spread>,
}

/// See [`MechanismSplit`]; `None` without bare runs.
pub fn mechanism_split(recs: &[Record], metric: Metric) -> Option<MechanismSplit> {
    let pick = |tag: Tag, module: &str| -> Vec<f64> {
        samples(recs.iter().filter(|r| {
            r.bench == Bench::Overhead
                && r.run.place == "guest"
                && r.metric == metric
                && r.run.tag == tag
                && r.run.module == module
        }))
    };
    let (mut mech, mut hand, mut raw) = (vec![], vec![], vec![]);
    let (mut all_u, mut all_b, mut all_l, mut all_f) = (vec![], vec![], vec![], vec![]);
    for n in 1..1000 {
        let (b, u, l) = (
            pick(Tag::Bare(n), "loaded"),
            pick(Tag::Round(n), "unloaded"),
            pick(Tag::Round(n), "loaded"),
        );
        if b.is_empty() || u.is_empty() || l.is_empty() {
            break;
        }
        let med = |v: &[f64]| Spread::of(v).median;
        mech.push(med(&b) / med(&u));
        hand.push(med(&l) / med(&b));
        let f = pick(Tag::Base(n), "loaded");
        if !f.is_empty() {
            raw.push(med(&l) / med(&f));
            all_f.extend(f);
        }
        all_u.extend(u);
        all_b.extend(b);
        all_l.extend(l);
    }
    if mech.is_empty() {
        return None;
    }
    Some(MechanismSplit {
        metric,
        unloaded_median: Spread::of(&all_u).median,
        bare_median: Spread::of(&all_b).median,
        loaded_median: Spread::of(&all_l).median,
        mechanism: Spread::of(&mech),
        handlers: Spread::of(&hand),
        base_median: (!all_f.is_empty()).then(|| Spread::of(&all_f).median),
        against_base: (!raw.is_empty()).then(|| Spread::of(&raw)),
    })
}

/// Pairwise ratios smaps/procs of one `know` measurement (same repeat index).
fn know_ratio(smaps: &Record, procs: &Record) -> Spread {
    let v: Vec<f64> = smaps
        .samples
        .iter()
        .zip(&procs.samples)
        .map(|(s, p)| s / p)
        .collect();
    Spread::of(&v)
}

fn find(recs: &[Record], f: impl Fn(&Record) -> bool) -> Option<&Record> {
    recs.iter().find(|r| f(r))
}

fn series(path: &Path, rows: &[(f64, Spread)]) -> Result<()> {
    let mut s = String::from("# x median min max\n");
    for (x, sp) in rows {
        let _ = writeln!(s, "{x} {} {} {}", sp.median, sp.min, sp.max);
    }
    fs::write(path, s).map_err(|e| Error::io("write", path, e))
}

fn us(ns: f64) -> String {
    format_ns(ns)
}

/// A median of `metric` for the tables: a time, or a plain ratio for the
/// derived `*_norm` metrics.
fn shown(metric: Metric, v: f64) -> String {
    if metric == Metric::CowFaultNorm {
        format!("{v:.3}")
    } else {
        us(v)
    }
}

fn mib(b: u64) -> String {
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{} GiB", b >> 30)
    } else {
        format!("{} MiB", (b as f64 / (1 << 20) as f64).round())
    }
}

/// Adds, for every overhead run (one record set per tag and module state),
/// a `cow_fault_norm` record: median COW fault (p10) / median first-touch
/// fault (p10) of the same run. The module does not hook first-touch
/// faults (its own ratio is ~1.00), so it measures how fast the host ran
/// that segment; dividing by it cancels host slow phases that hit a whole
/// segment, which the chunk percentile cannot.
fn add_normalised(recs: &mut Vec<Record>) {
    let mut derived = vec![];
    for cow in recs
        .iter()
        .filter(|r| r.bench == Bench::Overhead && r.metric == Metric::CowFaultP10)
    {
        let touch = recs.iter().find(|t| {
            t.bench == Bench::Overhead
                && t.metric == Metric::FirstTouchP10
                && t.run.tag == cow.run.tag
                && t.run.module == cow.run.module
                && t.run.place == cow.run.place
                && t.run.command == cow.run.command
        });
        if let Some(t) = touch {
            let (c, f) = (
                Spread::of(&cow.samples).median,
                Spread::of(&t.samples).median,
            );
            if c.is_finite() && f > 0.0 {
                let mut n = cow.clone();
                n.metric = Metric::CowFaultNorm;
                n.unit = "ratio".into();
                n.samples = vec![c / f];
                n.spread = Spread::of(&n.samples);
                n.repeats = 1;
                derived.push(n);
            }
        }
    }
    recs.extend(derived);
}

/// Writes results.json, report.md and the plot data into `dir`.
pub fn run(inputs: &[PathBuf], dir: &Path, header: &str) -> Result<()> {
    let mut recs = load(inputs)?;
    add_normalised(&mut recs);
    if recs.is_empty() {
        return Err(Error::Output(
            "no benchmark records in the input files".into(),
        ));
    }
    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let mut md = String::new();
    let guest = recs.iter().find(|r| r.run.place == "guest");
    let host = recs.iter().find(|r| r.run.place == "host");
    let _ = writeln!(md, "# cowstat benchmark report\n");
    if !header.is_empty() {
        let _ = writeln!(md, "{header}\n");
    }
    if let Some(g) = guest {
        let _ = writeln!(
            md,
            "- guest kernel {} (QEMU TCG), THP mode `{}`",
            g.run.kernel, g.run.thp_mode
        );
    }
    if let Some(h) = host {
        let _ = writeln!(
            md,
            "- host kernel {} (native, no module), THP mode `{}`",
            h.run.kernel, h.run.thp_mode
        );
    }
    let _ = writeln!(
        md,
        "- {} records; every figure is min / median / max\n",
        recs.len()
    );

    // 1. Probe overhead.
    let mut ratios = vec![];
    let _ = writeln!(md, "## 1. Probe overhead (loaded / unloaded, same boot)\n");
    let _ = writeln!(
        md,
        "| metric | unloaded median | loaded median | ratio min | median | max | rounds |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for (m, label) in [
        (Metric::CowFault, "COW write fault, per page"),
        (Metric::CowFaultP10, "COW write fault, p10 of chunks"),
        (
            Metric::CowFaultNorm,
            "COW fault / first-touch fault, same run",
        ),
        (Metric::Fork, "fork() of the touched heap"),
        (Metric::FirstTouch, "first-touch fault (idle cost)"),
        (Metric::FirstTouchP10, "first-touch fault, p10 of chunks"),
        (Metric::Rewrite, "rewrite, no fault"),
    ] {
        if let Some(r) = overhead_ratio(&recs, m) {
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {:.3} | {:.3} | {:.3} | {} |",
                shown(m, r.unloaded_median),
                shown(m, r.loaded_median),
                r.ratio.min,
                r.ratio.median,
                r.ratio.max,
                r.rounds.len()
            );
            ratios.push(r);
        }
    }
    let cow_over = ratios
        .iter()
        .find(|r| r.metric == Metric::CowFault)
        .map(|r| r.loaded_median - r.unloaded_median);
    if let Some(d) = cow_over {
        let _ = writeln!(
            md,
            "\nPer COW event the module adds {d:.0} ns (median loaded − median unloaded)."
        );
    }
    let splits: Vec<MechanismSplit> = [
        Metric::CowFault,
        Metric::CowFaultP10,
        Metric::CowFaultNorm,
        Metric::FirstTouchP10,
    ]
    .into_iter()
    .filter_map(|m| mechanism_split(&recs, m))
    .collect();
    if !splits.is_empty() {
        let _ = writeln!(
            md,
            "\nWhere it goes: the bare build's entry hooks return at once, so \
             bare / unloaded is the hook mechanism (raw ftrace callbacks) and \
             loaded / bare our handlers; base, if the run has it, is the module \
             built from an earlier commit (`scripts/bench --baseline REF`) in the \
             same boot, so loaded / base is what changed since (per-round ratios, \
             median (min–max)):\n"
        );
        let _ = writeln!(
            md,
            "| metric | unloaded | bare | base | loaded | bare / unloaded | loaded / bare | loaded / base |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let spread = |s: &Spread| format!("{:.3} ({:.3}–{:.3})", s.median, s.min, s.max);
        for x in &splits {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                x.metric,
                shown(x.metric, x.unloaded_median),
                shown(x.metric, x.bare_median),
                x.base_median.map_or("-".into(), |m| shown(x.metric, m)),
                shown(x.metric, x.loaded_median),
                spread(&x.mechanism),
                spread(&x.handlers),
                x.against_base.as_ref().map_or("-".into(), spread),
            );
        }
        let _ = writeln!(md);
    }
    // Full table vs empty table, loaded, in pairs run back to back
    // (tags table_fullN / table_emptyN); without pairs, vs unloaded.
    let ov = |full: bool, i: Option<u32>| {
        samples(recs.iter().filter(|r| {
            r.bench == Bench::Overhead
                && r.metric == Metric::CowFault
                && match r.run.tag {
                    Tag::TableFull(n) if full => i.is_none_or(|i| n == Some(i)),
                    Tag::TableEmpty(n) if !full => i.is_none_or(|i| n == i),
                    _ => false,
                }
        }))
    };
    let full = Spread::of(&ov(true, None));
    let empty = Spread::of(&ov(false, None));
    let pairs: Vec<f64> = (1..100)
        .map(|i| (ov(true, Some(i)), ov(false, Some(i))))
        .take_while(|(f, e)| !f.is_empty() && !e.is_empty())
        .map(|(f, e)| Spread::of(&f).median / Spread::of(&e).median)
        .collect();
    let full_rows = find(&recs, |r| {
        r.bench == Bench::Fill && r.run.tag == "table_full" && r.metric == Metric::ForkWriteExit
    })
    .map(|r| param(r, "rows_after"));
    let unloaded_cow = ratios
        .iter()
        .find(|r| r.metric == Metric::CowFault)
        .map(|r| r.unloaded_median);
    let full_ratio = full.median.is_finite().then(|| {
        json!({"full": full, "empty": empty.median.is_finite().then_some(empty),
               "pairs": pairs, "pair_ratio": (!pairs.is_empty()).then(|| Spread::of(&pairs)),
               "ratio_to_unloaded": unloaded_cow.map(|u| full.median / u),
               "rows": full_rows})
    });
    if full.median.is_finite() {
        let _ = write!(
            md,
            "With the per-process table full ({} rows), a new process's COW fault costs {}",
            full_rows.unwrap_or(0),
            us(full.median)
        );
        if pairs.is_empty() {
            let _ = write!(
                md,
                " (ratio {:.3} to unloaded)",
                full.median / unloaded_cow.unwrap_or(f64::NAN)
            );
        } else {
            let q = Spread::of(&pairs);
            let _ = write!(
                md,
                ", {} with the table empty (loaded; ratio full / empty {:.3}, {:.3}–{:.3} over {} pairs)",
                us(empty.median),
                q.median,
                q.min,
                q.max,
                pairs.len()
            );
        }
        let _ = writeln!(
            md,
            ": its lookup gives up after the probe bound and counts in `<other>`."
        );
    }
    let mut rdat = String::from("# idx label median min max\n");
    // The rewrite ratio (no fault, ~20 ns) is timer noise; it stays in the table only.
    let plotted: Vec<_> = ratios
        .iter()
        .filter(|r| r.metric != Metric::Rewrite)
        .collect();
    for (i, r) in plotted.iter().enumerate() {
        let _ = writeln!(
            rdat,
            "{i} {} {} {} {}",
            r.metric, r.ratio.median, r.ratio.min, r.ratio.max
        );
    }
    let scale_ratios = scale_table(&recs);
    for (i, (n, l, u)) in scale_ratios.iter().enumerate() {
        let q = [l.min / u.max, l.median / u.median, l.max / u.min];
        // Scale bars follow the ratio bars (none when no overhead ran).
        let _ = writeln!(
            rdat,
            "{} scale_{n} {} {} {}",
            plotted.len() + i,
            q[1],
            q[0],
            q[2]
        );
    }
    fs::write(dir.join("ratios.dat"), rdat).map_err(|e| Error::io("write", dir, e))?;

    // 2. Breakdown.
    let _ = writeln!(md, "\n## 2. What a COW fault costs, per 4 KiB page\n");
    let _ = writeln!(
        md,
        "| operation | guest, unloaded | guest, loaded | host (native) |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let mut bdat = String::from("# label guest_unloaded guest_loaded host\n");
    let med = |place: &str, module: Option<&str>, m: &str| {
        Spread::of(&samples(recs.iter().filter(|r| {
            r.bench == Bench::Overhead
                && r.run.place == place
                && r.metric == m
                && !matches!(r.run.tag, Tag::TableFull(_) | Tag::TableEmpty(_))
                && module.is_none_or(|x| r.run.module == x)
        })))
        .median
    };
    let mut breakdown = BTreeMap::new();
    for (m, label) in [
        ("cow_fault", "COW write fault"),
        ("first_touch", "first-touch fault"),
        ("memcpy_4k", "4 KiB memcpy"),
        ("rewrite", "rewrite (no fault)"),
    ] {
        let (a, b, c) = (
            med("guest", Some("unloaded"), m),
            med("guest", Some("loaded"), m),
            med("host", None, m),
        );
        let _ = writeln!(md, "| {label} | {} | {} | {} |", us(a), us(b), us(c));
        let _ = writeln!(bdat, "\"{label}\" {a} {b} {c}");
        breakdown.insert(
            m,
            json!({"guest_unloaded": a, "guest_loaded": b, "host": c}),
        );
    }
    let (cg, mg, ch, mh) = (
        med("guest", Some("unloaded"), "cow_fault"),
        med("guest", Some("unloaded"), "memcpy_4k"),
        med("host", None, "cow_fault"),
        med("host", None, "memcpy_4k"),
    );
    let _ = writeln!(
        md,
        "\nA COW fault costs {:.0}x a userspace 4 KiB memcpy in the guest and {:.0}x on the host.",
        cg / mg,
        ch / mh
    );
    fs::write(dir.join("breakdown.dat"), bdat).map_err(|e| Error::io("write", dir, e))?;

    // 3. Fork latency.
    let _ = writeln!(md, "\n## 3. fork() latency vs heap size\n");
    let _ = writeln!(
        md,
        "| heap | THP | fork(), guest | dup_mmap (cowstat) | gap | fork(), host |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|");
    let mut keys: Vec<(u64, String)> = recs
        .iter()
        .filter(|r| r.bench == Bench::Fork)
        .map(|r| (param(r, "heap_bytes"), param_str(r, "thp").to_string()))
        .collect();
    keys.sort();
    keys.dedup();
    let mut fseries: BTreeMap<String, Vec<(f64, Spread)>> = BTreeMap::new();
    let (mut gap_max, mut gap_rel_max, mut dup_over_user) = (0f64, 0f64, 0usize);
    for (heap, thp) in &keys {
        let get = |place: &str, m: &str| {
            find(&recs, |r| {
                r.bench == Bench::Fork
                    && r.run.place == place
                    && r.metric == m
                    && param(r, "heap_bytes") == *heap
                    && param_str(r, "thp") == thp
            })
        };
        let cell = |r: Option<&Record>| r.map_or("-".into(), |r| us(r.spread.median));
        let used = get("guest", "fork_user").map_or("", |r| param_str(r, "thp_used"));
        let _ = writeln!(
            md,
            "| {} | {thp} ({used}) | {} | {} | {} | {} |",
            mib(*heap),
            cell(get("guest", "fork_user")),
            cell(get("guest", "fork_dup_mmap")),
            cell(get("guest", "fork_gap")),
            cell(get("host", "fork_user"))
        );
        for (place, m) in [
            ("guest", "fork_user"),
            ("guest", "fork_dup_mmap"),
            ("host", "fork_user"),
        ] {
            if let Some(r) = get(place, m) {
                fseries
                    .entry(format!("fork_{place}_{m}_thp_{thp}"))
                    .or_default()
                    .push((*heap as f64 / (1 << 20) as f64, r.spread));
            }
        }
        if let (Some(u), Some(d)) = (get("guest", "fork_user"), get("guest", "fork_dup_mmap")) {
            for (a, b) in u.samples.iter().zip(&d.samples) {
                gap_max = gap_max.max(a - b);
                gap_rel_max = gap_rel_max.max((a - b) / a);
                dup_over_user += usize::from(b > a);
            }
        }
    }
    let _ =
        writeln!(
        md,
        "\nAgreement: in every sample cowstat's `dup_mmap` time was {} the userspace fork() time; \
         fork() − dup_mmap ≤ {} (≤ {:.0} % of fork()).",
        if dup_over_user == 0 { "below" } else { "NOT always below" },
        us(gap_max),
        gap_rel_max * 100.0
    );
    for (name, rows) in &fseries {
        series(&dir.join(format!("{name}.dat")), rows)?;
    }

    // 4. Cost of knowing.
    let _ = writeln!(md, "\n## 4. The cost of knowing: cowstat row vs smaps\n");
    let _ = writeln!(md, "| sweep | heap | VMAs | procs row | smaps (Redis) | smaps_rollup | /proc/PID/stat | smaps / procs | smaps, host | stat, host |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut headline = vec![];
    let mut kseries: BTreeMap<String, Vec<(f64, Spread)>> = BTreeMap::new();
    for sweep in ["heap", "vmas", "rows_1000"] {
        let mut pts: Vec<&Record> = recs
            .iter()
            .filter(|r| {
                r.bench == Bench::Know
                    && r.run.place == "guest"
                    && r.run.tag == sweep
                    && r.metric == Metric::ReadSmaps
            })
            .collect();
        pts.sort_by_key(|r| (param(r, "vmas"), param(r, "heap_bytes")));
        for s in pts {
            let same = |place: &str, m: &str| {
                find(&recs, |r| {
                    r.bench == Bench::Know
                        && r.run.place == place
                        && r.run.tag == sweep
                        && r.metric == m
                        && param(r, "vmas") == param(s, "vmas")
                        && param(r, "heap_bytes") == param(s, "heap_bytes")
                })
            };
            let p = same("guest", "read_procs");
            let ro = same("guest", "read_smaps_rollup");
            let st = same("guest", "read_pid_stat");
            let hs = same("host", "read_smaps");
            let ratio = p.map(|p| know_ratio(s, p));
            let _ = writeln!(
                md,
                "| {sweep} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                mib(param(s, "heap_bytes")),
                param(s, "vmas"),
                p.map_or("-".into(), |p| us(p.spread.median)),
                us(s.spread.median),
                ro.map_or("-".into(), |r| us(r.spread.median)),
                st.map_or("-".into(), |r| us(r.spread.median)),
                ratio.map_or("-".into(), |q| {
                    let f = |x: f64| {
                        if x < 10.0 {
                            format!("{x:.2}")
                        } else {
                            format!("{x:.0}")
                        }
                    };
                    format!("{}x ({}–{})", f(q.median), f(q.min), f(q.max))
                }),
                hs.map_or("-".into(), |r| us(r.spread.median)),
                same("host", "read_pid_stat").map_or("-".into(), |r| us(r.spread.median)),
            );
            let x = if sweep == "vmas" {
                param(s, "vmas") as f64
            } else {
                param(s, "heap_bytes") as f64 / (1 << 20) as f64
            };
            let mut add = |name: &str, r: Option<&Record>| {
                if let Some(r) = r {
                    kseries
                        .entry(format!("know_{sweep}_{name}"))
                        .or_default()
                        .push((x, r.spread));
                }
            };
            add("guest_procs", p);
            add("guest_smaps", Some(s));
            add("guest_rollup", ro);
            add("guest_stat", st);
            add("host_smaps", hs);
            add("host_rollup", same("host", "read_smaps_rollup"));
            if let Some(q) = ratio {
                headline.push(json!({
                    "sweep": sweep, "heap_bytes": param(s, "heap_bytes"), "vmas": param(s, "vmas"),
                    "pages_written": param(s, "pages_written"),
                    "procs_ns": p.map(|p| p.spread.median), "smaps_ns": s.spread.median,
                    "procs_rows": p.map(|p| param(p, "procs_rows")),
                    "ratio": q,
                }));
            }
        }
    }
    for (name, rows) in &kseries {
        series(&dir.join(format!("{name}.dat")), rows)?;
    }
    if let Some(d) = cow_over {
        let _ = writeln!(
            md,
            "\nThe price of a cheap read is paid per event: at {d:.0} ns per COW fault, a child \
             that copies N pages has paid N × {d:.0} ns to the module by the time it reads its row."
        );
    }

    // Many rows: whole-file procs reads after fill, and the full-table COW fault.
    let _ = writeln!(
        md,
        "\n## Many rows: procs read and COW fault as the table fills\n"
    );
    let _ = writeln!(
        md,
        "| after | rows | spilled to `<other>` | procs bytes | procs read | COW fault |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    let mut many = vec![];
    let mut forked = 0;
    for (tag, same_table) in [
        ("rows_1000", Tag::is_rows_1000 as fn(&Tag) -> bool),
        ("table_full", Tag::is_table_full),
    ] {
        let fills: Vec<&Record> = recs
            .iter()
            .filter(|r| {
                r.bench == Bench::Fill && r.metric == Metric::ReadProcsAll && r.run.tag == tag
            })
            .collect();
        let Some(r) = fills.first() else { continue };
        forked += param(r, "procs");
        let reads = Spread::of(&samples(fills.iter().copied()));
        let cow = Spread::of(&samples(recs.iter().filter(|x| {
            x.bench == Bench::Overhead && x.metric == Metric::CowFault && same_table(&x.run.tag)
        })));
        let sp = |s: &Spread| format!("{} ({}–{})", us(s.median), us(s.min), us(s.max));
        let _ = writeln!(
            md,
            "| {forked} children | {} | {} | {} | {} | {} |",
            param(r, "rows_after"),
            param(r, "other_copies_added"),
            param(r, "procs_bytes"),
            sp(&reads),
            if cow.median.is_finite() {
                sp(&cow)
            } else {
                "-".into()
            }
        );
        many.push(
            json!({"tag": tag, "children": forked, "rows": param(r, "rows_after"),
            "spilled": param(r, "other_copies_added"), "procs_bytes": param(r, "procs_bytes"),
            "read_procs_ns": reads, "reads": fills.iter().map(|f| f.samples.len()).sum::<usize>(),
            "cow_fault_ns": cow.median.is_finite().then_some(cow)}),
        );
    }

    // 5. Scale.
    let _ = writeln!(
        md,
        "\n## 5. Scale: concurrent processes taking COW faults\n"
    );
    let _ = writeln!(
        md,
        "| processes | unloaded ns/fault | loaded ns/fault | ratio (medians) |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|");
    let mut sl = vec![];
    let mut su = vec![];
    for (n, l, u) in &scale_ratios {
        let _ = writeln!(
            md,
            "| {n} | {} ({}–{}) | {} ({}–{}) | {:.3} |",
            us(u.median),
            us(u.min),
            us(u.max),
            us(l.median),
            us(l.min),
            us(l.max),
            l.median / u.median
        );
        sl.push((*n as f64, *l));
        su.push((*n as f64, *u));
    }
    series(&dir.join("scale_loaded.dat"), &sl)?;
    series(&dir.join("scale_unloaded.dat"), &su)?;

    let one_process = one_section(&recs, &mut md, dir)?;

    let summary = json!({
        "probe_overhead": ratios,
        "probe_overhead_split": splits,
        "table_full_cow_fault": full_ratio,
        "breakdown_ns_per_page": breakdown,
        "fork_agreement": {"max_gap_ns": gap_max, "max_gap_fraction": gap_rel_max,
                            "samples_dup_above_user": dup_over_user},
        "cost_of_knowing": headline,
        "many_rows": many,
        "scale": scale_ratios.iter().map(|(n, l, u)| json!({"procs": n, "loaded": l, "unloaded": u,
            "ratio": l.median / u.median})).collect::<Vec<_>>(),
        "one_process": one_process,
    });
    let results = json!({ "summary": summary, "records": recs });
    let rj = dir.join("results.json");
    fs::write(&rj, serde_json::to_string_pretty(&results)?)
        .map_err(|e| Error::io("write", &rj, e))?;
    let rm = dir.join("report.md");
    fs::write(&rm, md).map_err(|e| Error::io("write", &rm, e))?;
    Ok(())
}

/// The `one` records (tags `rows`, `heap`, `vmas`): one process's figures
/// through `self` and `pid` vs its smaps. Writes the table into `md`, the
/// plot series `one_SWEEP_METRIC.dat` into `dir`; returns the summary.
fn one_section(recs: &[Record], md: &mut String, dir: &Path) -> Result<Vec<Value>> {
    let mut out = vec![];
    if !recs.iter().any(|r| r.bench == Bench::One) {
        return Ok(out);
    }
    let _ = writeln!(
        md,
        "\n## 6. One process's figures: `self` and `pid` vs smaps\n"
    );
    let _ = writeln!(
        md,
        "| sweep | live rows | heap | VMAs | self | self, kept fd | pid | pid, kept fd | procs (whole) | smaps (Redis) | smaps_rollup | /proc/self/stat | smaps / self | smaps / self, kept fd |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let metrics = [
        "read_self",
        "read_self_kept_fd",
        "read_pid",
        "read_pid_kept_fd",
        "read_procs_find",
        "read_smaps",
        "read_smaps_rollup",
        "read_pid_stat",
    ];
    let mut series_map: BTreeMap<String, Vec<(f64, Spread)>> = BTreeMap::new();
    for sweep in ["rows", "heap", "vmas"] {
        let mut pts: Vec<&Record> = recs
            .iter()
            .filter(|r| {
                r.bench == Bench::One && r.run.tag == sweep && r.metric == Metric::ReadSmaps
            })
            .collect();
        pts.sort_by_key(|r| match sweep {
            "rows" => param(r, "live_rows"),
            "heap" => param(r, "heap_bytes"),
            _ => param(r, "vmas"),
        });
        for s in pts {
            let same = |m: &str| {
                find(recs, |r| {
                    r.bench == Bench::One
                        && r.run.tag == sweep
                        && r.metric == m
                        && r.run.command == s.run.command
                        && param(r, "live_rows") == param(s, "live_rows")
                        && param(r, "heap_bytes") == param(s, "heap_bytes")
                        && param(r, "vmas") == param(s, "vmas")
                })
            };
            let cell = |m: &str| same(m).map_or("-".into(), |r| us(r.spread.median));
            let ratio = |m: &str| same(m).map(|p| know_ratio(s, p));
            let f = |q: Option<Spread>| {
                q.map_or("-".into(), |q| {
                    let g = |x: f64| {
                        if x < 10.0 {
                            format!("{x:.2}")
                        } else {
                            format!("{x:.0}")
                        }
                    };
                    format!("{}x ({}–{})", g(q.median), g(q.min), g(q.max))
                })
            };
            let _ = writeln!(
                md,
                "| {sweep} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                param(s, "live_rows"),
                mib(param(s, "heap_bytes")),
                param(s, "vmas"),
                cell("read_self"),
                cell("read_self_kept_fd"),
                cell("read_pid"),
                cell("read_pid_kept_fd"),
                cell("read_procs_find"),
                us(s.spread.median),
                cell("read_smaps_rollup"),
                cell("read_pid_stat"),
                f(ratio("read_self")),
                f(ratio("read_self_kept_fd")),
            );
            let x = match sweep {
                "rows" => param(s, "live_rows") as f64,
                "heap" => param(s, "heap_bytes") as f64 / (1 << 20) as f64,
                _ => param(s, "vmas") as f64,
            };
            for m in metrics {
                if let Some(r) = same(m) {
                    series_map
                        .entry(format!("one_{sweep}_{}", m.trim_start_matches("read_")))
                        .or_default()
                        .push((x, r.spread));
                }
            }
            out.push(json!({
                "sweep": sweep, "live_rows": param(s, "live_rows"),
                "heap_bytes": param(s, "heap_bytes"), "vmas": param(s, "vmas"),
                "pages_written": param(s, "pages_written"),
                "self_cow_copies": param(s, "self_cow_copies"),
                "private_dirty_kb": param(s, "private_dirty_kb"),
                "self_ns": same("read_self").map(|r| r.spread),
                "self_kept_fd_ns": same("read_self_kept_fd").map(|r| r.spread),
                "pid_ns": same("read_pid").map(|r| r.spread),
                "pid_kept_fd_ns": same("read_pid_kept_fd").map(|r| r.spread),
                "procs_ns": same("read_procs_find").map(|r| r.spread),
                "smaps_ns": s.spread,
                "smaps_over_self": ratio("read_self"),
                "smaps_over_self_kept_fd": ratio("read_self_kept_fd"),
            }));
        }
    }
    for (name, rows) in &series_map {
        series(&dir.join(format!("{name}.dat")), rows)?;
    }
    Ok(out)
}

/// (procs, loaded spread, unloaded spread) of `wall_per_fault`, by process count.
fn scale_table(recs: &[Record]) -> Vec<(u64, Spread, Spread)> {
    let mut ns: Vec<u64> = recs
        .iter()
        .filter(|r| r.bench == Bench::Scale)
        .map(|r| param(r, "procs"))
        .collect();
    ns.sort();
    ns.dedup();
    ns.into_iter()
        .filter_map(|n| {
            let s = |m: &str| {
                Spread::of(&samples(recs.iter().filter(|r| {
                    r.bench == Bench::Scale
                        && r.metric == Metric::WallPerFault
                        && r.run.module == m
                        && param(r, "procs") == n
                })))
            };
            let (l, u) = (s("loaded"), s("unloaded"));
            (l.median.is_finite() && u.median.is_finite()).then_some((n, l, u))
        })
        .collect()
}
