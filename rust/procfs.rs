// SPDX-License-Identifier: GPL-2.0

//! Safe `/proc` directory and seq_file-backed files around the raw C API.
//!
//! A [`ProcDir`] owns a directory and every file created in it: dropping it
//! removes the whole subtree, and `proc_remove` waits for open/read/write
//! calls in progress, so no file callback runs after the drop returns.

use core::{
    ffi::{c_int, c_void},
    fmt,
    marker::PhantomData,
    mem::MaybeUninit,
    ptr::{self, NonNull},
};
use kernel::{bindings, prelude::*, str::CStr, uaccess::UserSlice};

/// Longest write a [`ProcFile`] accepts; longer writes fail with `EINVAL`.
pub(crate) const MAX_WRITE: usize = 64;

/// A file in `/proc/cowstat`: what it is called and what it shows.
pub(crate) trait ProcFile {
    /// File name inside the directory.
    const NAME: &'static CStr;
    /// Permission bits (the owner is root).
    const MODE: u16;
    /// Whether `write` is wired up; read-only files reject writes in the VFS.
    const WRITABLE: bool = false;

    /// Produces the whole file content for one `open()`.
    fn show(out: &mut SeqFile<'_>) -> fmt::Result;

    /// Expected size of the content, so seq_file allocates once instead of
    /// rendering the file again after each buffer doubling. 0: default.
    fn size_hint() -> usize {
        0
    }

    /// Handles one `write()` of at most [`MAX_WRITE`] bytes at offset 0.
    fn write(_data: &[u8]) -> Result {
        Err(EINVAL)
    }
}

/// Bytes gathered before one `seq_write`: formatting pads and fields arrive
/// a few bytes at a time, and one call per line is much cheaper than one
/// per fragment.
const STAGE: usize = 256;

/// Text output for a seq_file; implements [`fmt::Write`].
///
/// # Invariants
///
/// `m` is the seq_file of the `show` call this value was created in.
pub(crate) struct SeqFile<'a> {
    m: *mut bindings::seq_file,
    stage: [u8; STAGE],
    len: usize,
    _borrow: PhantomData<&'a mut bindings::seq_file>,
}

impl SeqFile<'_> {
    fn flush(&mut self) {
        if self.len > 0 {
            // SAFETY: `m` is live for this `show` call (type invariant). On
            // overflow seq_write marks the buffer full and seq_read retries
            // with a larger one, so the return value needs no handling.
            unsafe { bindings::seq_write(self.m, self.stage.as_ptr().cast::<c_void>(), self.len) };
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
            // SAFETY: As in `flush`.
            unsafe { bindings::seq_write(self.m, bytes.as_ptr().cast::<c_void>(), bytes.len()) };
        } else {
            self.stage[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
        Ok(())
    }
}

/// An entry directly under `/proc`, owning everything created inside it.
///
/// # Invariants
///
/// `pde` was returned by `proc_mkdir` and is removed (with its subtree) only
/// in `drop`.
pub(crate) struct ProcDir {
    pde: NonNull<bindings::proc_dir_entry>,
}

// SAFETY: The only operations are creating files (`proc_create`, callable from
// any process context) and dropping (`proc_remove`, likewise).
unsafe impl Send for ProcDir {}
// SAFETY: `create_file` may run concurrently from several threads: procfs
// serialises registration internally.
unsafe impl Sync for ProcDir {}

impl ProcDir {
    /// Creates `/proc/<name>`. Fails with `EEXIST` if the name is taken
    /// (`proc_mkdir` reports allocation failure the same way).
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated static string; a null parent
        // means the /proc root.
        let pde = unsafe { bindings::proc_mkdir(name.as_char_ptr(), ptr::null_mut()) };
        // INVARIANT: a non-null result is a live directory we now own.
        NonNull::new(pde).map(|pde| Self { pde }).ok_or(EEXIST)
    }

    /// Creates file `F` in this directory; it lives until the directory drops.
    pub(crate) fn create_file<F: ProcFile>(&self) -> Result {
        // SAFETY: `NAME` is a static C string, `self.pde` is live (type
        // invariant) and `OPS` is a `'static` table whose callbacks uphold
        // procfs's contracts (see each trampoline).
        let pde = unsafe {
            bindings::proc_create(
                F::NAME.as_char_ptr(),
                F::MODE,
                self.pde.as_ptr(),
                Ops::<F>::table(),
            )
        };
        if pde.is_null() {
            return Err(ENOMEM);
        }
        Ok(())
    }
}

impl Drop for ProcDir {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `pde` is live and ours; this removes
        // it and its files after waiting for callbacks in progress.
        unsafe { bindings::proc_remove(self.pde.as_ptr()) };
    }
}

/// The `proc_ops` table for file `F`.
struct Ops<F>(PhantomData<F>);

impl<F: ProcFile> Ops<F> {
    const OPS: bindings::proc_ops = bindings::proc_ops {
        proc_open: Some(open_trampoline::<F>),
        proc_read: Some(bindings::seq_read),
        proc_lseek: Some(bindings::seq_lseek),
        proc_release: Some(bindings::single_release),
        proc_write: if F::WRITABLE {
            Some(write_trampoline::<F>)
        } else {
            None
        },
        // SAFETY: All-zero is a valid `proc_ops`: no flags, null callbacks.
        ..unsafe { MaybeUninit::zeroed().assume_init() }
    };

    const fn table() -> &'static bindings::proc_ops {
        &Self::OPS
    }
}

/// `proc_open` for `F`.
///
/// # Safety
///
/// Called by procfs with the inode and file being opened.
unsafe extern "C" fn open_trampoline<F: ProcFile>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    let show = Some(show_trampoline::<F> as unsafe extern "C" fn(_, _) -> _);
    match F::size_hint() {
        // SAFETY: procfs passes the file being opened; `single_open` sets up
        // a seq_file that `seq_read`/`single_release` (our other callbacks) use.
        0 => unsafe { bindings::single_open(file, show, ptr::null_mut()) },
        // SAFETY: As above, with a first buffer of `size` bytes.
        size => unsafe { bindings::single_open_size(file, show, ptr::null_mut(), size) },
    }
}

/// The `single_open` show callback for `F`.
///
/// # Safety
///
/// Called by seq_read with the seq_file being filled.
unsafe extern "C" fn show_trampoline<F: ProcFile>(
    m: *mut bindings::seq_file,
    _v: *mut c_void,
) -> c_int {
    // INVARIANT: `m` is the seq_file seq_read passes to this `show` call.
    let mut out = SeqFile {
        m,
        stage: [0; STAGE],
        len: 0,
        _borrow: PhantomData,
    };
    // Formatting into a seq_file cannot fail; an `Err` would be our bug, and
    // seq_read treats -EINVAL as "give the reader an error".
    let result = F::show(&mut out);
    out.flush();
    match result {
        Ok(()) => 0,
        Err(_) => EINVAL.to_errno(),
    }
}

/// `proc_write` for `F`.
///
/// # Safety
///
/// Called by procfs with a user buffer of `count` bytes and a valid `ppos`.
unsafe extern "C" fn write_trampoline<F: ProcFile>(
    _file: *mut bindings::file,
    buf: *const kernel::ffi::c_char,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: procfs passes a valid position pointer for this call.
    let pos = unsafe { *ppos };
    if pos != 0 || count == 0 || count > MAX_WRITE {
        return EINVAL.to_errno() as isize;
    }
    let mut data = [0u8; MAX_WRITE];
    let mut reader = UserSlice::new(buf as usize, count).reader();
    if let Err(e) = reader.read_slice(&mut data[..count]) {
        return e.to_errno() as isize;
    }
    match F::write(&data[..count]) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}
