// SPDX-License-Identifier: GPL-2.0
//! Parsing of sizes, percentages and page patterns, and human-readable formatting of bytes and times.

use std::fmt;

/// Accepted forms, repeated in every parse error so the user sees the fix.
pub const SIZE_FORM: &str = "expected a size like 64M, 1G or 4096K";
/// Accepted forms of `--write`.
pub const PERCENT_FORM: &str = "expected a percentage like 25% (0 < P <= 100)";
/// Accepted forms of `--pattern`.
pub const PATTERN_FORM: &str = "expected seq, random or stride:N (N >= 1)";

/// Why a value did not parse; the message is the accepted form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError(pub &'static str);

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for UnitError {}

/// Parses `64M`, `1G`, `4096K`, `2MiB`, `512KB` or plain bytes (`4096`); binary units.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    if num.is_empty() {
        return Err(UnitError(SIZE_FORM));
    }
    let n: u64 = num.parse().map_err(|_| UnitError(SIZE_FORM))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(UnitError(SIZE_FORM)),
    };
    n.checked_mul(1u64 << shift).ok_or(UnitError(SIZE_FORM))
}

/// Parses a percentage `25%` (also `12.5%`) into a fraction in (0, 1].
pub fn parse_percent(s: &str) -> Result<f64, UnitError> {
    let t = s.trim();
    let num = t.strip_suffix('%').ok_or(UnitError(PERCENT_FORM))?;
    let v: f64 = num.trim().parse().map_err(|_| UnitError(PERCENT_FORM))?;
    if !(v > 0.0 && v <= 100.0) {
        return Err(UnitError(PERCENT_FORM));
    }
    Ok(v / 100.0)
}

/// The order in which the writer visits its K pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Pages 0, 1, 2, ...
    Seq,
    /// Pages 0, N, 2N, ... then 1, N+1, ... (wrapping to the next offset).
    Stride(u64),
    /// K distinct pages chosen by a seeded generator.
    Random,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Seq => f.write_str("seq"),
            Pattern::Stride(n) => write!(f, "stride:{n}"),
            Pattern::Random => f.write_str("random"),
        }
    }
}

/// Parses `seq`, `random` or `stride:N`.
pub fn parse_pattern(s: &str) -> Result<Pattern, UnitError> {
    match s.trim() {
        "seq" => Ok(Pattern::Seq),
        "random" => Ok(Pattern::Random),
        other => {
            let n = other
                .strip_prefix("stride:")
                .ok_or(UnitError(PATTERN_FORM))?
                .parse::<u64>()
                .map_err(|_| UnitError(PATTERN_FORM))?;
            if n == 0 {
                return Err(UnitError(PATTERN_FORM));
            }
            Ok(Pattern::Stride(n))
        }
    }
}

/// Formats bytes with binary units: `512 B`, `4 KiB`, `1.5 MiB`, `64 MiB`.
pub fn format_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Formats a duration in nanoseconds with 3 significant digits: `85 ns`, `2.51 us`, `12.6 ms`, `1.20 s`.
pub fn format_ns(ns: f64) -> String {
    if !ns.is_finite() || ns < 0.0 {
        return "-".to_string();
    }
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "us")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let s = if v >= 100.0 || unit == "ns" {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{s} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096K"), Ok(4 << 20));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("512KB"), Ok(512 << 10));
        assert_eq!(parse_size(" 8M "), Ok(8 << 20));
    }

    #[test]
    fn bad_sizes_name_the_form() {
        for bad in [
            "12Q",
            "",
            "M",
            "-1M",
            "1.5G",
            "99999999999999999999",
            "16777216T",
        ] {
            assert_eq!(parse_size(bad), Err(UnitError(SIZE_FORM)), "{bad}");
        }
        assert!(SIZE_FORM.contains("64M, 1G or 4096K"));
    }

    #[test]
    fn percents() {
        assert_eq!(parse_percent("25%"), Ok(0.25));
        assert_eq!(parse_percent("100%"), Ok(1.0));
        assert_eq!(parse_percent("12.5%"), Ok(0.125));
        for bad in ["25", "0%", "101%", "-5%", "x%", "%"] {
            assert_eq!(parse_percent(bad), Err(UnitError(PERCENT_FORM)), "{bad}");
        }
    }

    #[test]
    fn patterns() {
        assert_eq!(parse_pattern("seq"), Ok(Pattern::Seq));
        assert_eq!(parse_pattern("random"), Ok(Pattern::Random));
        assert_eq!(parse_pattern("stride:16"), Ok(Pattern::Stride(16)));
        assert_eq!(Pattern::Stride(16).to_string(), "stride:16");
        for bad in ["stride:0", "stride:", "stride:x", "rand", "stride"] {
            assert_eq!(parse_pattern(bad), Err(UnitError(PATTERN_FORM)), "{bad}");
        }
    }

    #[test]
    fn bytes() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(4096), "4 KiB");
        assert_eq!(format_bytes(64 << 20), "64 MiB");
        assert_eq!(format_bytes(3 << 29), "1.5 GiB");
        assert_eq!(format_bytes(1_000_000), "976.6 KiB");
    }

    #[test]
    fn times() {
        assert_eq!(format_ns(85.4), "85 ns");
        assert_eq!(format_ns(2512.0), "2.51 us");
        assert_eq!(format_ns(12_600_000.0), "12.6 ms");
        assert_eq!(format_ns(123_000_000.0), "123 ms");
        assert_eq!(format_ns(1.2e9), "1.20 s");
        assert_eq!(format_ns(f64::NAN), "-");
    }
}
