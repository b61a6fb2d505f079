// SPDX-License-Identifier: GPL-2.0
//! MemAvailable from /proc/meminfo, used to refuse heaps that cannot fit.

use crate::error::{Error, ParseError, Result};

/// Path of the file.
pub const PATH: &str = "/proc/meminfo";

/// Parses `MemAvailable:   24021508 kB` out of meminfo text; returns bytes.
pub fn parse_mem_available(text: &str) -> Result<u64, ParseError> {
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("MemAvailable:") {
            let mut it = rest.split_whitespace();
            let v: u64 = it
                .next()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| ParseError::new(i + 1, "MemAvailable value is not a number"))?;
            return match it.next() {
                Some("kB") => Ok(v * 1024),
                None => Ok(v),
                Some(u) => Err(ParseError::new(i + 1, format!("unknown unit '{u}'"))),
            };
        }
    }
    Err(ParseError::new(1, "no MemAvailable line"))
}

/// Reads MemAvailable (bytes) from /proc/meminfo.
pub fn mem_available() -> Result<u64> {
    let s = std::fs::read_to_string(PATH).map_err(|e| Error::io("read", PATH, e))?;
    parse_mem_available(&s).map_err(|source| Error::Parse {
        path: PATH.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mem_available() {
        let t = "MemTotal:       24684032 kB\nMemFree:        21189240 kB\n\
                 MemAvailable:   24021508 kB\nBuffers:          123456 kB\n";
        assert_eq!(parse_mem_available(t), Ok(24_021_508 * 1024));
        assert!(parse_mem_available("MemTotal: 1 kB\n").is_err());
        assert!(parse_mem_available("MemAvailable: x kB\n").is_err());
    }

    #[test]
    fn host_has_mem_available() {
        assert!(mem_available().unwrap() > 0);
    }
}
