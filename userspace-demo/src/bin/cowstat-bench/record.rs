// SPDX-License-Identifier: GPL-2.0
//! One benchmark measurement as a JSON line: what ran, where, with which parameters, and its samples.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::tags::{Bench, Metric, Tag};

/// Min, median and max of a sample set (NaN when empty).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Smallest sample.
    pub min: f64,
    /// Median (mean of the two middle samples for an even count).
    pub median: f64,
    /// Largest sample.
    pub max: f64,
}

impl Spread {
    /// The spread of `v` (order does not matter).
    pub fn of(v: &[f64]) -> Spread {
        let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if s.is_empty() {
            return Spread {
                min: f64::NAN,
                median: f64::NAN,
                max: f64::NAN,
            };
        }
        s.sort_by(|a, b| a.total_cmp(b));
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Spread {
            min: s[0],
            median,
            max: s[n - 1],
        }
    }
}

/// One measurement: `samples` of `metric` (in `unit`) under `params`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Benchmark family.
    pub bench: Bench,
    /// What the samples are.
    pub metric: Metric,
    /// Unit of every sample, e.g. `ns/page`, `ns`.
    pub unit: String,
    /// Where, on what and how it ran.
    #[serde(flatten)]
    pub run: Context,
    /// Benchmark parameters (sizes, counts, modes).
    pub params: Map<String, Value>,
    /// Number of samples.
    pub repeats: usize,
    /// The samples.
    pub samples: Vec<f64>,
    /// Their spread.
    pub spread: Spread,
}

/// Facts shared by every record of one invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    /// `guest` (the test VM) or `host` (native).
    #[serde(rename = "where")]
    pub place: String,
    /// `uname -r`.
    pub kernel: String,
    /// System THP mode (`always`, `madvise`, `never`, or `none`).
    pub thp_mode: String,
    /// `loaded` if /proc/cowstat exists, else `unloaded`.
    pub module: String,
    /// `--tag` (the guest driver's place in its plan, e.g. the round).
    pub tag: Tag,
    /// The exact command line.
    pub command: String,
}

impl Context {
    /// Probes the running system; `place` is `guest` or `host`.
    pub fn detect(place: &str, tag: Tag) -> Context {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let loaded = cow_demo::procfs::cowstat::Cowstat::locate().is_loaded();
        let args: Vec<String> = std::env::args().collect();
        let mut command = args.join(" ");
        if let Some(rest) = command.split_once(' ') {
            command = format!("cowstat-bench {}", rest.1);
        }
        Context {
            place: place.into(),
            kernel,
            thp_mode: cow_demo::workload::thp_mode().unwrap_or_else(|| "none".into()),
            module: if loaded { "loaded" } else { "unloaded" }.into(),
            tag,
            command,
        }
    }

    /// Builds a record of `samples`.
    pub fn record(
        &self,
        bench: Bench,
        metric: Metric,
        params: &Map<String, Value>,
        samples: Vec<f64>,
    ) -> Record {
        Record {
            bench,
            metric,
            unit: metric.unit().into(),
            run: self.clone(),
            params: params.clone(),
            repeats: samples.len(),
            spread: Spread::of(&samples),
            samples,
        }
    }

    /// Prints a record as one JSON line on stdout.
    pub fn emit(
        &self,
        bench: Bench,
        metric: Metric,
        params: &Map<String, Value>,
        samples: Vec<f64>,
    ) {
        let r = self.record(bench, metric, params, samples);
        // Serialising plain numbers and strings cannot fail; NaN becomes null.
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
    }
}

/// Builds a params object from `(name, value)` pairs.
pub fn params<const N: usize>(kv: [(&str, Value); N]) -> Map<String, Value> {
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_odd_even_empty() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert!(Spread::of(&[]).median.is_nan());
        assert_eq!(Spread::of(&[f64::NAN, 5.0]).median, 5.0);
    }
}
