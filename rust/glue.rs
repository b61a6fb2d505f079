// SPDX-License-Identifier: GPL-2.0

//! The C glue's functions (rust/glue.c), as Rust sees them.
//!
//! Every C struct stays behind an opaque pointer type here: the glue is
//! compiled with the target kernel's headers, so its field offsets are the
//! kernel's own, on 6.12 and 7.x alike, and nothing on this side can read a
//! field at the wrong offset. These declarations must match glue.h's
//! prototypes: scripts/glue-abi compares the two before every `make module`.

use core::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

/// Declares zero-sized opaque types for C structs only ever used by pointer.
macro_rules! opaque {
    ($($(#[$meta:meta])* $name:ident;)*) => {$(
        $(#[$meta])*
        #[repr(C)]
        pub(crate) struct $name {
            _private: [u8; 0],
            _not_send_sync: core::marker::PhantomData<*mut u8>,
        }
    )*};
}

opaque! {
    /// `struct ftrace_ops`.
    FtraceOps;
    /// `struct ftrace_regs`.
    FtraceRegs;
    /// `struct cowstat_kretprobe` (glue.c).
    Kretprobe;
    /// `struct proc_dir_entry`.
    ProcDirEntry;
    /// `struct seq_file`.
    SeqFile;
}

/// `cowstat_entry_fn` (glue.c): what the ops' callback calls, with
/// preemption off and ftrace's recursion lock held.
pub(crate) type EntryFunc =
    unsafe extern "C" fn(ip: c_ulong, parent_ip: c_ulong, fregs: *mut FtraceRegs);

/// `cowstat_ret_fn` (glue.c): a return probe's handler.
pub(crate) type RetFunc = extern "C" fn(elapsed_ns: u64, retval: c_long);

/// `enum cowstat_source` (glue.c): what a write-protected PTE maps.
pub(crate) const SRC_ZERO: c_int = 0;
pub(crate) const SRC_ANON: c_int = 1;
pub(crate) const SRC_KSM: c_int = 2;

extern "C" {
    pub(crate) fn cowstat_symbols_resolve(
        names: *const *const c_char,
        starts: *mut c_ulong,
        sizes: *mut c_ulong,
        n: c_uint,
    ) -> c_int;

    pub(crate) fn cowstat_ftrace_new(
        entry: EntryFunc,
        ips: *const c_ulong,
        n: c_uint,
    ) -> *mut FtraceOps;
    pub(crate) fn cowstat_ftrace_register(ops: *mut FtraceOps) -> c_int;
    pub(crate) fn cowstat_ftrace_unregister(ops: *mut FtraceOps) -> c_int;
    pub(crate) fn cowstat_ftrace_free(ops: *mut FtraceOps);
    pub(crate) fn cowstat_fregs_arg(fregs: *mut FtraceRegs, n: c_uint) -> c_ulong;

    pub(crate) fn cowstat_kretprobe_new(
        symbol: *const c_char,
        ret: RetFunc,
        maxactive: c_int,
    ) -> *mut Kretprobe;
    pub(crate) fn cowstat_kretprobe_free(k: *mut Kretprobe);

    pub(crate) fn cowstat_pte_source(ptep: *const c_void) -> c_int;
    pub(crate) fn cowstat_vma_is_shared(vma: *const c_void) -> bool;
    pub(crate) fn cowstat_vmf_is_unshare(vmf: *const c_void) -> bool;
    pub(crate) fn cowstat_vmf_is_private_write(vmf: *const c_void) -> bool;
    pub(crate) fn cowstat_task_has_new_mm(task: *const c_void) -> bool;
    pub(crate) fn cowstat_current(tgid: *mut c_int, comm: *mut [u64; 2]) -> c_ulong;

    pub(crate) fn cowstat_hit(hook: c_uint);
    pub(crate) fn cowstat_hits_sum(hook: c_uint) -> u64;
    pub(crate) fn cowstat_attempt(bank: c_uint, kind: c_uint);
    pub(crate) fn cowstat_attempts_sum(bank: c_uint, kind: c_uint) -> u64;
    pub(crate) fn cowstat_attempts_zero(bank: c_uint);
    pub(crate) fn cowstat_current_task() -> c_ulong;

    pub(crate) fn cowstat_current_pids(
        ns: *mut c_ulong,
        nr: *mut c_int,
        max: c_int,
        nsref: *mut c_ulong,
    ) -> c_int;
    pub(crate) fn cowstat_put_pid_ns(ns: c_ulong);
    pub(crate) fn cowstat_current_vtgid() -> c_int;
    pub(crate) fn cowstat_reader_ns(level: *mut c_int) -> c_ulong;
    pub(crate) fn cowstat_global_tgid(nr: c_int) -> c_int;
    pub(crate) fn cowstat_released_process(task: *const c_void) -> c_int;
    pub(crate) fn cowstat_synchronize();
    pub(crate) fn cowstat_retire_begin();
    pub(crate) fn cowstat_retire_end();
    pub(crate) fn cowstat_retire_read_begin() -> c_uint;
    pub(crate) fn cowstat_retire_read_retry(seq: c_uint) -> bool;

    pub(crate) fn cowstat_proc_mkdir(name: *const c_char) -> *mut ProcDirEntry;
    pub(crate) fn cowstat_proc_create(
        dir: *mut ProcDirEntry,
        name: *const c_char,
        mode: u16,
        id: c_ulong,
        writable: bool,
    ) -> c_int;
    pub(crate) fn cowstat_proc_remove(dir: *mut ProcDirEntry);
    pub(crate) fn cowstat_seq_write(m: *mut SeqFile, data: *const u8, len: usize);

    pub(crate) fn cowstat_kernel_release() -> *const c_char;
}

/// `ERR_PTR`-style pointer to `Result`: errors are the top 4095 addresses.
pub(crate) fn from_err_ptr<T>(ptr: *mut T) -> kernel::error::Result<*mut T> {
    let value = ptr as isize;
    if (-4095..0).contains(&value) {
        Err(kernel::error::Error::from_errno(value as c_int))
    } else {
        Ok(ptr)
    }
}
