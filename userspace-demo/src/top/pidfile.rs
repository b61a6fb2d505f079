// SPDX-License-Identifier: GPL-2.0
//! One process's row in O(1), through /proc/cowstat/pid: write the pid
//! once, then read the same descriptor again for each sample.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::procfs::cowstat::{parse_procs, Cowstat, ProcRow};

/// An open `pid` file aimed at one process.
pub struct PidFile {
    path: PathBuf,
    file: File,
    text: String,
}

impl PidFile {
    /// Opens `pid` in `cs` and gives it `pid`; an error names `--pid` if no
    /// such process is alive or recently ended.
    pub fn open(cs: &Cowstat, pid: u32) -> Result<PidFile> {
        cs.require()?;
        let path = cs.path("pid");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        if let Err(e) = file.write_all(format!("{pid}\n").as_bytes()) {
            return Err(match e.raw_os_error() {
                Some(libc::ESRCH) => Error::InvalidValue {
                    flag: "--pid",
                    value: pid.to_string(),
                    expected: "no process with this pid is alive or ended recently \
                               (see `cow-demo top` or ps for pids)"
                        .into(),
                },
                _ => Error::io("write", &path, e),
            });
        }
        Ok(PidFile {
            path,
            file,
            text: String::new(),
        })
    }

    /// The process's row now; `None` once it is gone (ended and no longer
    /// among the last 1024 that ended, or a reset).
    pub fn read(&mut self) -> Result<Option<ProcRow>> {
        self.text.clear();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_string(&mut self.text))
            .map_err(|e| Error::io("read", &self.path, e))?;
        let rows = parse_procs(&self.text).map_err(|source| Error::Parse {
            path: self.path.clone(),
            source,
        })?;
        Ok(rows.into_iter().next())
    }
}
