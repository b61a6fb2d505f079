// SPDX-License-Identifier: GPL-2.0

//! Benchmark-only module (`make bench`, docs/benchmarks.md): attaches one
//! raw `ftrace_ops` with an empty callback to cowstat's two COW entry points,
//! `do_wp_page` and `wp_page_copy`, and does nothing else. Loaded / unloaded
//! is what a raw ftrace callback costs per COW fault, to compare with the
//! kprobe-on-ftrace mechanism cowstat uses (the "bare" build of cowstat).
//! Not part of the product: no /proc files, no counters.

use core::cell::UnsafeCell;
use kernel::{bindings, error::to_result, prelude::*};

module! {
    type: FtraceBare,
    name: "cowstat_ftrace_bare",
    author: "cowstat developers",
    description: "cowstat benchmark: empty raw ftrace callback on the COW entry points",
    license: "GPL",
}

/// The ftrace core's view of our callback; it links it into its lists, so
/// it must not move while registered: a static.
struct Ops(UnsafeCell<bindings::ftrace_ops>);

// SAFETY: The ops is only touched by `init` and `drop` (serialised by the
// module loader) and, while registered, by the ftrace core under its locks.
unsafe impl Sync for Ops {}

static OPS: Ops = Ops(UnsafeCell::new(
    // SAFETY: All-zero is the C initialiser `{}` of `struct ftrace_ops`.
    unsafe { core::mem::zeroed() },
));

/// Does nothing: the point is the cost of getting here.
///
/// # Safety
///
/// None needed: it reads no argument. `unsafe` only to match
/// `ftrace_func_t`.
unsafe extern "C" fn callback(
    _ip: kernel::ffi::c_ulong,
    _parent_ip: kernel::ffi::c_ulong,
    _op: *mut bindings::ftrace_ops,
    _fregs: *mut bindings::ftrace_regs,
) {
}

/// # Invariants
///
/// While a `FtraceBare` exists, `OPS` is registered with the ftrace core.
struct FtraceBare;

impl kernel::Module for FtraceBare {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let ops = OPS.0.get();
        // SAFETY: Not registered yet, so nobody else reads it.
        unsafe { (*ops).func = Some(callback) };
        for (i, name) in ["do_wp_page", "wp_page_copy"].iter().enumerate() {
            let mut buf = [0u8; 32];
            buf[..name.len()].copy_from_slice(name.as_bytes());
            // SAFETY: `ops` is a valid, unregistered ftrace_ops; `buf` holds
            // `name.len()` bytes. The first call resets the filter.
            to_result(unsafe {
                bindings::ftrace_set_filter(
                    ops,
                    buf.as_mut_ptr(),
                    name.len() as i32,
                    (i == 0) as i32,
                )
            })?;
        }
        // SAFETY: `ops` is static, so it outlives the registration, which
        // `drop` undoes.
        if let Err(e) = to_result(unsafe { bindings::register_ftrace_function(ops) }) {
            // SAFETY: Not registered; frees the filter hash set above.
            unsafe { bindings::ftrace_free_filter(ops) };
            return Err(e);
        }
        pr_info!("empty ftrace callback on do_wp_page and wp_page_copy\n");
        Ok(FtraceBare)
    }
}

impl Drop for FtraceBare {
    fn drop(&mut self) {
        let ops = OPS.0.get();
        // SAFETY: Registered by `init` (type invariant). Unregistering waits
        // until no CPU can be in `callback` any more, so the module text may
        // go away afterwards.
        unsafe {
            bindings::unregister_ftrace_function(ops);
            bindings::ftrace_free_filter(ops);
        }
    }
}
