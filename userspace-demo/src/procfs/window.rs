// SPDX-License-Identifier: GPL-2.0
//! Reading /proc inside a measurement window without disturbing it.
//!
//! A window brackets the writes whose faults cowstat must count. Any fault
//! the reader takes in it (a heap allocation, a first write to a buffer page
//! that fork left write-protected) would be counted too. So the buffer is
//! allocated up front and [`WindowFile::prefault`] writes every page of it
//! after the last fork, before the window opens.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::procfs::cowstat::read_file_into;

/// How far apart the prefault stores are: less than any page size.
const STORE_STEP: usize = 512;

/// One file, read into a buffer prepared before the window.
pub struct WindowFile {
    path: PathBuf,
    buf: Vec<u8>,
    len: usize,
}

impl WindowFile {
    /// A reader of `path` with room for `cap` bytes (a larger file is an error).
    pub fn new(path: impl Into<PathBuf>, cap: usize) -> Self {
        WindowFile {
            path: path.into(),
            buf: vec![1u8; cap],
            len: 0,
        }
    }

    /// Writes every page of the buffer and `len` (the struct itself may sit
    /// on a page not written since the fork). Call after the last fork,
    /// before the window opens.
    pub fn prefault(&mut self) {
        // SAFETY: `len` is a valid, aligned field of `self`; volatile so the
        // store really happens.
        unsafe { std::ptr::write_volatile(&mut self.len, 0) };
        for i in (0..self.buf.len()).step_by(STORE_STEP) {
            // SAFETY: i < len.
            unsafe { std::ptr::write_volatile(self.buf.as_mut_ptr().add(i), 0) };
        }
    }

    /// Reads the whole file, allocating nothing; returns its text.
    pub fn read(&mut self) -> Result<&str> {
        self.len = read_file_into(&self.path, &mut self.buf)?.len();
        Ok(self.text())
    }

    /// What the last [`WindowFile::read`] got.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The same as text ("" if it was not UTF-8, which `read` rejects).
    pub fn text(&self) -> &str {
        std::str::from_utf8(self.bytes()).unwrap_or("")
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_again_into_the_same_buffer() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "one two\n").unwrap();
        let mut w = WindowFile::new(&p, 4096);
        w.prefault();
        assert_eq!(w.text(), "");
        assert_eq!(w.read().unwrap(), "one two\n");
        let addr = w.bytes().as_ptr();
        std::fs::write(&p, "3\n").unwrap();
        assert_eq!(w.read().unwrap(), "3\n");
        assert_eq!(w.bytes().as_ptr(), addr);
        assert_eq!(w.path(), p);
        let mut small = WindowFile::new(&p, 1);
        assert!(small.read().is_err());
    }
}
