// SPDX-License-Identifier: GPL-2.0

//! Function-entry hooks: one raw `ftrace_ops` per hooked kernel function.
//!
//! A raw ftrace callback is the cheapest hook the kernel offers a module (no
//! full register save, no kprobe lookup; docs/benchmarks.md, "Overhead").
//! The ops is filtered by the function's address, found in vmlinux only, so
//! a module's same-named function (a livepatch) is never hooked, and it is
//! PERMANENT, so `sysctl kernel.ftrace_enabled=0` cannot stop it silently.
//!
//! Callbacks run in the hooked function's context: any context a page fault
//! or fork runs in, preemption off (ftrace's recursion guard), possibly with
//! page-table spinlocks held. They must not sleep, allocate or fault; they
//! only bump counters and call the notrace accessors of rust/glue.c. A
//! callback that ftrace sees recursing is skipped by ftrace itself.

use crate::{
    callers::function_range,
    glue::{self, FtraceOps, FtraceRegs},
};
use core::{
    ffi::{c_ulong, CStr},
    ptr::NonNull,
    sync::atomic::{AtomicU8, Ordering},
};
use kernel::prelude::*;

/// The arguments of one hooked call, at the function's entry.
pub(crate) struct Call {
    caller: usize,
    fregs: NonNull<FtraceRegs>,
}

impl Call {
    /// The return address in the calling function.
    #[inline]
    pub(crate) fn caller(&self) -> usize {
        self.caller
    }

    /// Integer argument `n` (0-based) as a raw word. What it means is the
    /// hooked function's business: see [`EntryHook`]'s safety contract.
    #[inline]
    pub(crate) fn arg(&self, n: u32) -> usize {
        // SAFETY: `fregs` is the register set ftrace saved for this call,
        // valid while the callback runs (`Call` does not outlive it).
        unsafe { glue::cowstat_fregs_arg(self.fregs.as_ptr(), n) as usize }
    }
}

/// Code to run at the entry of one kernel function.
///
/// # Safety
///
/// `entry` may treat the values of [`Call::arg`] as what the C declaration
/// of [`EntryHook::FUNCTION`] says they are (for example, dereference arg 0
/// as a `struct vm_fault *` that is valid for the call). Implementing this
/// trait promises that the handler's assumptions match that declaration on
/// every kernel the module builds for.
pub(crate) unsafe trait EntryHook: 'static {
    /// The core-kernel function to hook.
    const FUNCTION: &'static CStr;
    /// Whether the module refuses to load without this hook.
    const REQUIRED: bool;
    /// What its calls count, for `/proc/cowstat/probes`.
    const COUNTS: &'static str;

    /// Hit counter and state, shown in `/proc/cowstat/probes`.
    fn status() -> &'static HookStatus;

    /// Runs at every call; must not sleep, allocate or fault.
    fn entry(call: &Call);
}

const IDLE: u8 = 0;
const REGISTERING: u8 = 1;
const ACTIVE: u8 = 2;
const LEAKED: u8 = 3;

/// A hook's state and hit count, readable at any time.
pub(crate) struct HookStatus {
    state: AtomicU8,
    /// Index of its per-CPU hit counter in rust/glue.c (< 16).
    index: u32,
}

impl HookStatus {
    /// Not attached, hit counter `index` (usable in statics).
    pub(crate) const fn new(index: u32) -> Self {
        Self {
            state: AtomicU8::new(IDLE),
            index,
        }
    }

    /// The per-CPU hit counter this status uses.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// `active`, `missing` (never attached: absent on this kernel) or
    /// `leaked` (ftrace refused to detach it; see [`Hook`]'s `Drop`).
    pub(crate) fn state_name(&self) -> &'static str {
        match self.state.load(Ordering::Acquire) {
            ACTIVE => "active",
            LEAKED => "leaked",
            _ => "missing",
        }
    }

    /// Counts one call: a per-CPU increment, no line shared between CPUs.
    #[inline]
    pub(crate) fn count_hit(&self) {
        // SAFETY: No pointers; an out-of-range index is ignored by the glue.
        unsafe { glue::cowstat_hit(self.index) };
    }

    /// Marks a hook attached by other means as active or not.
    pub(crate) fn set_active(&self, active: bool) {
        self.state.store(if active { ACTIVE } else { IDLE }, Ordering::Release);
    }

    /// Calls seen since load (a sum over CPUs).
    pub(crate) fn hits(&self) -> u64 {
        // SAFETY: No pointers.
        unsafe { glue::cowstat_hits_sum(self.index) }
    }
}

/// One hook as listed in `/proc/cowstat/probes`, and how to attach it.
pub(crate) struct HookInfo {
    pub(crate) function: &'static CStr,
    pub(crate) required: bool,
    pub(crate) counts: &'static str,
    pub(crate) status: fn() -> &'static HookStatus,
    pub(crate) attach: fn() -> Result<Option<Hook>>,
}

impl HookInfo {
    /// The entry for `H`.
    pub(crate) const fn of<H: EntryHook>() -> Self {
        Self {
            function: H::FUNCTION,
            required: H::REQUIRED,
            counts: H::COUNTS,
            status: H::status,
            attach: Hook::attach::<H>,
        }
    }
}

/// An attached entry hook; dropping it detaches it.
///
/// # Invariants
///
/// `ops` was returned by `cowstat_ftrace_new` and is registered with ftrace
/// for as long as this value exists; `status` is in state `ACTIVE` then.
pub(crate) struct Hook {
    ops: NonNull<FtraceOps>,
    status: &'static HookStatus,
}

// SAFETY: The only operation is `drop`, and ftrace's (un)registration may be
// called from any thread in process context.
unsafe impl Send for Hook {}
// SAFETY: `&Hook` gives no access to anything.
unsafe impl Sync for Hook {}

impl Hook {
    /// Attaches `H` to its function. `Ok(None)` if the function does not
    /// exist on this kernel; `EBUSY` if `H` is already attached.
    pub(crate) fn attach<H: EntryHook>() -> Result<Option<Self>> {
        let status = H::status();
        // One registration at a time, and never twice.
        status
            .state
            .compare_exchange(IDLE, REGISTERING, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|_| EBUSY)?;
        let result = Self::register::<H>(status);
        let next = match &result {
            Ok(Some(_)) => ACTIVE,
            _ => IDLE,
        };
        status.state.store(next, Ordering::Release);
        result
    }

    fn register<H: EntryHook>(status: &'static HookStatus) -> Result<Option<Self>> {
        let Some((start, _)) = function_range(H::FUNCTION)? else {
            return Ok(None);
        };
        // SAFETY: `trampoline::<H>` has ftrace_func_t's signature; `start`
        // is the function's address, as found by kallsyms.
        let ops = glue::from_err_ptr(unsafe {
            glue::cowstat_ftrace_new(trampoline::<H>, start as c_ulong)
        })?;
        let ops = NonNull::new(ops).ok_or(ENOMEM)?;
        // SAFETY: `ops` is a fresh, unregistered ops with its filter set.
        let ret = unsafe { glue::cowstat_ftrace_register(ops.as_ptr()) };
        if ret != 0 {
            // SAFETY: Registration failed, so the ops is not live.
            unsafe { glue::cowstat_ftrace_free(ops.as_ptr()) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: registered just above; the caller marks it ACTIVE.
        Ok(Some(Self { ops, status }))
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the ops is registered. On success
        // ftrace has waited (RCU tasks) until no CPU is in our callback or
        // its trampoline, so the ops is ours to free.
        let ret = unsafe { glue::cowstat_ftrace_unregister(self.ops.as_ptr()) };
        if ret == 0 {
            self.status.state.store(IDLE, Ordering::Release);
            // SAFETY: Unregistered above.
            unsafe { glue::cowstat_ftrace_free(self.ops.as_ptr()) };
        } else {
            // ftrace is dead (it shut itself down after a bug) and may still
            // reach the ops: never free it. Module text cannot be pinned from
            // here; a dead ftrace no longer calls out, which is what makes
            // the unload survivable.
            self.status.state.store(LEAKED, Ordering::Release);
            pr_err!("ftrace refused to detach a hook ({}); leaking it\n", ret);
        }
    }
}

/// The ftrace callback for `H`.
///
/// # Safety
///
/// Called by ftrace at the entry of `H::FUNCTION` with `fregs` null or the
/// argument registers it saved, valid for the call.
unsafe extern "C" fn trampoline<H: EntryHook>(
    _ip: c_ulong,
    parent_ip: c_ulong,
    _ops: *mut FtraceOps,
    fregs: *mut FtraceRegs,
) {
    // The benchmark's "bare" build (Kbuild's COWSTAT_BARE_PROBES) returns at
    // once: bare vs unloaded is the mechanism's cost, full vs bare ours.
    if cfg!(cowstat_bare_entry_probes) {
        return;
    }
    let Some(fregs) = NonNull::new(fregs) else {
        return;
    };
    H::status().count_hit();
    H::entry(&Call {
        caller: parent_ip as usize,
        fregs,
    });
}
