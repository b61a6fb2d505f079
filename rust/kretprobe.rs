// SPDX-License-Identifier: GPL-2.0

//! Timed return probes: a kretprobe that reports each call's duration and
//! return value (used for `dup_mmap`, the address-space copy of `fork()`).
//!
//! The `struct kretprobe` lives in rust/glue.c, laid out by the kernel's C
//! compiler; its handlers run in atomic context and call [`ReturnHook::ret`].

use crate::glue::{self, Kretprobe};
use core::{
    ffi::{c_int, c_long, CStr},
    ptr::NonNull,
};
use kernel::prelude::*;

/// Code to run when one kernel function returns.
///
/// # Safety
///
/// `ret` may interpret `retval` as the return type of the C declaration of
/// [`ReturnHook::FUNCTION`]; implementing this trait promises they match.
pub(crate) unsafe trait ReturnHook: 'static {
    /// The core-kernel function to probe.
    const FUNCTION: &'static CStr;
    /// What its returns count, for `/proc/cowstat/probes`.
    const COUNTS: &'static str;
    /// Calls in flight at once beyond which returns are missed (counted).
    const MAX_ACTIVE: c_int;

    /// Runs at every return, in atomic context: must not sleep or allocate.
    fn ret(elapsed_ns: u64, retval: c_long);
}

/// An attached return probe; dropping it detaches it.
///
/// # Invariants
///
/// `probe` was returned by `cowstat_kretprobe_new` and stays registered
/// until `drop`, which unregisters and frees it.
pub(crate) struct ReturnProbe {
    probe: NonNull<Kretprobe>,
}

// SAFETY: Only dropped, and unregister_kretprobe may run on any thread.
unsafe impl Send for ReturnProbe {}
// SAFETY: `&ReturnProbe` gives no access to anything.
unsafe impl Sync for ReturnProbe {}

impl ReturnProbe {
    /// Attaches `H`. `Ok(None)` if the function does not exist here.
    pub(crate) fn attach<H: ReturnHook>() -> Result<Option<Self>> {
        // SAFETY: `FUNCTION` is a static C string (the kretprobe keeps the
        // pointer); `handler::<H>` matches `cowstat_ret_fn`.
        let raw = unsafe {
            glue::cowstat_kretprobe_new(H::FUNCTION.as_ptr(), handler::<H>, H::MAX_ACTIVE)
        };
        match glue::from_err_ptr(raw) {
            Ok(p) => Ok(NonNull::new(p).map(|probe| Self { probe })),
            Err(e) if e == ENOENT => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for ReturnProbe {
    fn drop(&mut self) {
        // SAFETY: Registered (type invariant); this waits for running
        // handlers, then frees it.
        unsafe { glue::cowstat_kretprobe_free(self.probe.as_ptr()) };
    }
}

extern "C" fn handler<H: ReturnHook>(elapsed_ns: u64, retval: c_long) {
    if cfg!(cowstat_bare_entry_probes) {
        return;
    }
    H::ret(elapsed_ns, retval);
}
