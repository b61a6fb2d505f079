// SPDX-License-Identifier: GPL-2.0

//! `/proc/cowstat/`: a directory of seq_file-backed files.
//!
//! The `proc_ops` tables live in rust/glue.c; they call back into
//! [`cowstat_rs_show`] and friends with the file's index in [`FILES`] as its
//! private data. A [`ProcDir`] owns the directory and its files: dropping it
//! removes them, and `proc_remove` waits for open/read/write calls in
//! progress, so no file callback runs after the drop returns.

use crate::{
    files::FILES,
    glue::{self, ProcDirEntry},
};
use core::{
    ffi::{c_int, c_long, c_ulong, CStr},
    fmt,
    ptr::NonNull,
};
use kernel::prelude::*;

/// Who is writing, as checked at `write()` time by the glue.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// Has `CAP_SYS_ADMIN` in the initial user namespace.
    Admin,
    /// Anyone else, including root inside a user namespace.
    Unprivileged,
}

/// One file in `/proc/cowstat`.
pub(crate) struct ProcFile {
    /// File name inside the directory.
    pub(crate) name: &'static CStr,
    /// Permission bits (the owner is root).
    pub(crate) mode: u16,
    /// Produces the whole content for one `open()`, given the open file's
    /// argument (-1 until a `write` sets it).
    pub(crate) show: fn(&mut SeqFile<'_>, i64) -> fmt::Result,
    /// Expected content size, so seq_file allocates once; 0 for the default.
    pub(crate) size_hint: fn() -> usize,
    /// Handles one `write()` of at most 64 bytes at offset 0, if writable;
    /// may set the open file's argument.
    pub(crate) write: Option<fn(&[u8], Writer, &mut i64) -> Result>,
}

/// Bytes gathered before one `seq_write`: one call per line is much cheaper
/// than one per formatted fragment.
const STAGE: usize = 256;

/// Text output for a seq_file; implements [`fmt::Write`].
///
/// # Invariants
///
/// `m` is the seq_file of the `show` call this value was created in.
pub(crate) struct SeqFile<'a> {
    m: NonNull<glue::SeqFile>,
    stage: [u8; STAGE],
    len: usize,
    _show_call: core::marker::PhantomData<&'a mut ()>,
}

impl SeqFile<'_> {
    fn write_raw(&mut self, bytes: &[u8]) {
        // SAFETY: `m` is live for this `show` call (type invariant). On
        // overflow seq_write marks the buffer full and seq_read retries with
        // a larger one, so there is no error to handle.
        unsafe { glue::cowstat_seq_write(self.m.as_ptr(), bytes.as_ptr(), bytes.len()) };
    }

    fn flush(&mut self) {
        if self.len > 0 {
            let stage = self.stage;
            self.write_raw(&stage[..self.len]);
            self.len = 0;
        }
    }
}

impl fmt::Write for SeqFile<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        if self.len + bytes.len() > STAGE {
            self.flush();
        }
        if bytes.len() > STAGE {
            self.write_raw(bytes);
        } else {
            self.stage[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
        Ok(())
    }
}

/// `/proc/<name>` and everything in it.
///
/// # Invariants
///
/// `pde` was returned by `proc_mkdir` and is removed only in `drop`.
pub(crate) struct ProcDir {
    pde: NonNull<ProcDirEntry>,
}

// SAFETY: Creating files and `proc_remove` may run on any thread.
unsafe impl Send for ProcDir {}
// SAFETY: procfs serialises registration internally.
unsafe impl Sync for ProcDir {}

impl ProcDir {
    /// Creates `/proc/<name>` with every file of [`FILES`]. `EEXIST` if the
    /// name is taken (`proc_mkdir` reports allocation failure the same way).
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated static string.
        let pde = NonNull::new(unsafe { glue::cowstat_proc_mkdir(name.as_ptr()) }).ok_or(EEXIST)?;
        // INVARIANT: a live directory we now own; `drop` removes it and the
        // files created below, also on the error path.
        let dir = Self { pde };
        for (id, file) in FILES.iter().enumerate() {
            // SAFETY: `dir.pde` is live; the name is static; the glue's
            // callbacks look `id` up in `FILES`, which has this entry.
            let ret = unsafe {
                glue::cowstat_proc_create(
                    dir.pde.as_ptr(),
                    file.name.as_ptr(),
                    file.mode,
                    id as c_ulong,
                    file.write.is_some(),
                )
            };
            kernel::error::to_result(ret)?;
        }
        Ok(dir)
    }
}

impl Drop for ProcDir {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `pde` is live and ours.
        unsafe { glue::cowstat_proc_remove(self.pde.as_ptr()) };
    }
}

fn file(id: c_ulong) -> Option<&'static ProcFile> {
    FILES.get(usize::try_from(id).ok()?)
}

/// Called by glue.c's `open`.
#[no_mangle]
extern "C" fn cowstat_rs_size_hint(id: c_ulong) -> usize {
    file(id).map_or(0, |f| (f.size_hint)())
}

/// Called by glue.c's seq_file `show`, with the seq_file being filled.
///
/// # Safety
///
/// `m` must be the live seq_file of the current `show` call.
#[no_mangle]
unsafe extern "C" fn cowstat_rs_show(m: *mut glue::SeqFile, id: c_ulong, arg: c_long) -> c_int {
    let (Some(file), Some(m)) = (file(id), NonNull::new(m)) else {
        return EINVAL.to_errno();
    };
    // INVARIANT: `m` is this show call's seq_file (caller's guarantee).
    let mut out = SeqFile {
        m,
        stage: [0; STAGE],
        len: 0,
        _show_call: core::marker::PhantomData,
    };
    let result = (file.show)(&mut out, arg as i64);
    out.flush();
    // Formatting into a seq_file cannot fail; an error would be our bug.
    match result {
        Ok(()) => 0,
        Err(_) => EINVAL.to_errno(),
    }
}

/// Called by glue.c's `write` with the bytes already copied from userspace.
///
/// # Safety
///
/// `data` must be valid for reads of `len` bytes and `arg` for reads and
/// writes, for the call.
#[no_mangle]
unsafe extern "C" fn cowstat_rs_write(
    id: c_ulong,
    data: *const u8,
    len: usize,
    admin: bool,
    arg: *mut c_long,
) -> c_int {
    let Some(write) = file(id).and_then(|f| f.write) else {
        return EINVAL.to_errno();
    };
    // SAFETY: Guaranteed by the caller.
    let data = unsafe { core::slice::from_raw_parts(data, len) };
    let writer = if admin {
        Writer::Admin
    } else {
        Writer::Unprivileged
    };
    // SAFETY: Guaranteed by the caller.
    let mut value = unsafe { *arg } as i64;
    match write(data, writer, &mut value) {
        Ok(()) => {
            // SAFETY: As above.
            unsafe { *arg = value as c_long };
            0
        }
        Err(e) => e.to_errno(),
    }
}
