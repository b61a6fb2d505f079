// SPDX-License-Identifier: GPL-2.0

//! Function-entry hooks: one raw `ftrace_ops` for every hooked function.
//!
//! A raw ftrace callback is the cheapest hook the kernel offers a module (no
//! full register save, no kprobe lookup; docs/benchmarks.md, "Overhead").
//! The ops is filtered by the functions' addresses, found in vmlinux only,
//! so a module's same-named function (a livepatch) is never hooked; its one
//! callback dispatches on the hooked function's address. One ops means one
//! RCU-tasks grace period per unload, not one per hook. It is PERMANENT, so
//! `sysctl kernel.ftrace_enabled=0` cannot stop it silently.
//!
//! Callbacks run in the hooked function's context: any context a page fault
//! or fork runs in, possibly with page-table spinlocks held. The ops does
//! not ask ftrace for its recursion guard (`FTRACE_OPS_FL_RECURSION`), so
//! ftrace calls glue.c's callback directly; that callback takes the guard
//! itself (`ftrace_test_recursion_trylock`), which drops a re-entry in the
//! same context and keeps preemption off while a handler runs. Handlers
//! must not sleep, allocate or fault; they only bump counters and call the
//! notrace accessors of rust/glue.c.

use crate::{
    callers::Symbols,
    glue::{self, FtraceOps, FtraceRegs},
};
use core::{
    ffi::{c_uint, c_ulong, CStr},
    ptr::NonNull,
    sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering},
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

    /// `active`, `missing` (not attached: absent on this kernel) or
    /// `leaked` (ftrace refused to detach it; see [`Hooks`]' `Drop`).
    pub(crate) fn state_name(&self) -> &'static str {
        match self.state.load(Ordering::Acquire) {
            ACTIVE => "active",
            LEAKED => "leaked",
            _ => "missing",
        }
    }

    /// Marks a hook as attached or not.
    pub(crate) fn set_active(&self, active: bool) {
        self.state
            .store(if active { ACTIVE } else { IDLE }, Ordering::Release);
    }

    /// Counts one call: a per-CPU increment, no line shared between CPUs.
    #[inline]
    pub(crate) fn count_hit(&self) {
        // SAFETY: No pointers; an out-of-range index is ignored by the glue.
        unsafe { glue::cowstat_hit(self.index) };
    }

    /// Calls seen since load (a sum over CPUs).
    pub(crate) fn hits(&self) -> u64 {
        // SAFETY: No pointers.
        unsafe { glue::cowstat_hits_sum(self.index) }
    }
}

/// One hook as listed in `/proc/cowstat/probes`, and its handler.
pub(crate) struct HookInfo {
    pub(crate) function: &'static CStr,
    pub(crate) required: bool,
    pub(crate) counts: &'static str,
    pub(crate) status: fn() -> &'static HookStatus,
    entry: fn(&Call),
}

impl HookInfo {
    /// The entry for `H`: the only way to pair a handler with a function,
    /// so the pairing always goes through `H`'s `unsafe impl`.
    pub(crate) const fn of<H: EntryHook>() -> Self {
        Self {
            function: H::FUNCTION,
            required: H::REQUIRED,
            counts: H::COUNTS,
            status: H::status,
            entry: H::entry,
        }
    }
}

/// The table of hooks the callback dispatches on.
pub(crate) trait HookTable: 'static {
    /// At most [`MAX_HOOKS`] hooks; hook `i` uses per-CPU counter `i`.
    const HOOKS: &'static [HookInfo];
    /// Where the attached functions start (0: not attached), by index.
    fn addresses() -> &'static [AtomicUsize; MAX_HOOKS];
    /// Set while a [`Hooks`] of this table exists.
    fn claimed() -> &'static AtomicBool;
}

/// Hooks one table can hold (the glue's per-CPU counters hold 16).
pub(crate) const MAX_HOOKS: usize = 15;

/// The functions' ftrace call sites lie in their first bytes: `call
/// __fentry__` at offset 0, or 4 after an `endbr64`. Function starts are at
/// least 16 bytes apart, so this window never spans two functions.
const ENTRY_WINDOW: usize = 16;

/// Every hook of table `T`, attached through one ftrace_ops; dropping it
/// detaches them all.
///
/// # Invariants
///
/// `ops` was returned by `cowstat_ftrace_new` and is registered with ftrace
/// for as long as this value exists.
pub(crate) struct Hooks<T: HookTable> {
    ops: NonNull<FtraceOps>,
    _table: core::marker::PhantomData<T>,
}

// SAFETY: The only operation is `drop`, and ftrace's (un)registration may be
// called from any thread in process context.
unsafe impl<T: HookTable> Send for Hooks<T> {}
// SAFETY: `&Hooks` gives no access to anything.
unsafe impl<T: HookTable> Sync for Hooks<T> {}

impl<T: HookTable> Hooks<T> {
    /// Attaches the functions of `T` that exist: hook `i`'s function is
    /// `symbols` entry `first + i`. `ENOENT` (after one dmesg line naming it
    /// and the kernel) if a required one does not exist; `EBUSY` if `T` is
    /// already attached.
    pub(crate) fn attach(release: &str, symbols: &Symbols, first: usize) -> Result<Self> {
        if T::HOOKS.len() > MAX_HOOKS {
            return Err(EINVAL);
        }
        // One registration of a table at a time, and never twice.
        T::claimed()
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|_| EBUSY)?;
        Self::register(release, symbols, first)
            .inspect_err(|_| T::claimed().store(false, Ordering::Release))
    }

    fn register(release: &str, symbols: &Symbols, first: usize) -> Result<Self> {
        let mut starts = [0usize; MAX_HOOKS];
        for (i, (hook, start)) in T::HOOKS.iter().zip(starts.iter_mut()).enumerate() {
            let name = hook.function.to_str().unwrap_or("?");
            match symbols.range(first + i) {
                Some((address, _)) => *start = address,
                None if hook.required => {
                    pr_err!(
                        "{} is not a function on kernel {} (inlined or renamed): not loading\n",
                        name,
                        release
                    );
                    return Err(ENOENT);
                }
                None => pr_info!("{} is not on this kernel; its counters stay 0\n", name),
            }
        }
        let mut ips = [0 as c_ulong; MAX_HOOKS];
        let mut n = 0;
        for &start in starts.iter().filter(|&&s| s != 0) {
            ips[n] = start as c_ulong;
            n += 1;
        }
        // SAFETY: `trampoline::<T>` has cowstat_entry_fn's signature; `ips`
        // holds `n` function addresses found by kallsyms.
        let ops = glue::from_err_ptr(unsafe {
            glue::cowstat_ftrace_new(trampoline::<T>, ips.as_ptr(), n as c_uint)
        })?;
        let ops = NonNull::new(ops).ok_or(ENOMEM)?;
        // Publish the addresses before the first callback can run: ftrace
        // registration orders these stores before it patches any call site.
        for (start, address) in starts.iter().zip(T::addresses()) {
            address.store(*start, Ordering::Release);
        }
        // SAFETY: `ops` is a fresh, unregistered ops with its filter set.
        let ret = unsafe { glue::cowstat_ftrace_register(ops.as_ptr()) };
        if ret != 0 {
            // SAFETY: Registration failed, so the ops is not live.
            unsafe { glue::cowstat_ftrace_free(ops.as_ptr()) };
            T::addresses()
                .iter()
                .for_each(|a| a.store(0, Ordering::Release));
            pr_err!("ftrace refused the hooks ({}): not loading\n", ret);
            return Err(Error::from_errno(ret));
        }
        for (hook, start) in T::HOOKS.iter().zip(starts) {
            (hook.status)().set_active(start != 0);
        }
        // INVARIANT: registered just above.
        Ok(Self {
            ops,
            _table: core::marker::PhantomData,
        })
    }
}

impl<T: HookTable> Drop for Hooks<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the ops is registered. On success
        // ftrace has waited (RCU tasks) until no CPU is in our callback or
        // its trampoline, so the ops is ours to free.
        let ret = unsafe { glue::cowstat_ftrace_unregister(self.ops.as_ptr()) };
        if ret == 0 {
            for (hook, address) in T::HOOKS.iter().zip(T::addresses()) {
                (hook.status)().set_active(false);
                address.store(0, Ordering::Release);
            }
            // SAFETY: Unregistered above.
            unsafe { glue::cowstat_ftrace_free(self.ops.as_ptr()) };
            T::claimed().store(false, Ordering::Release);
        } else {
            // ftrace is dead (it shut itself down after a bug; glue.c has
            // WARNed): never free the ops it may still hold. Module exit
            // cannot fail, so the text cannot be pinned from here; a dead
            // ftrace has stopped calling out, which makes the unload
            // survivable.
            for hook in T::HOOKS {
                (hook.status)().state.store(LEAKED, Ordering::Release);
            }
        }
    }
}

/// The ftrace callback for table `T`: finds the hooked function by `ip`.
///
/// # Safety
///
/// Called by glue.c's ops callback at the entry of a function of `T` (`ip`
/// is its call site), with preemption off, and `fregs` null or the argument
/// registers ftrace saved, valid for the call.
unsafe extern "C" fn trampoline<T: HookTable>(
    ip: c_ulong,
    parent_ip: c_ulong,
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
    let ip = ip as usize;
    let addresses = T::addresses();
    for (index, hook) in T::HOOKS.iter().enumerate() {
        let Some(address) = addresses.get(index) else {
            return;
        };
        let start = address.load(Ordering::Relaxed);
        if start != 0 && ip.wrapping_sub(start) < ENTRY_WINDOW {
            // Hook `index` owns hit counter `index` (checked at attach), so
            // no call through `status` on this path.
            // SAFETY: No pointers; an out-of-range index is ignored.
            unsafe { glue::cowstat_hit(index as u32) };
            (hook.entry)(&Call {
                caller: parent_ip as usize,
                fregs,
            });
            return;
        }
    }
}
