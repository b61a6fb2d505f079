// SPDX-License-Identifier: GPL-2.0

//! Who is running: the current thread group's id and command name.

use kernel::bindings;

/// Length of `task_struct::comm`, including the NUL.
pub(crate) const COMM_LEN: usize = 16;

/// The thread-group id (the "pid" users see) of the current task.
#[inline]
pub(crate) fn current_tgid() -> i32 {
    // SAFETY: `get_current` returns the running task, which stays valid while
    // it runs this code; `tgid` never changes after the task is created.
    unsafe { (*bindings::get_current()).tgid }
}

/// The current task's command name, NUL padded.
pub(crate) fn current_comm() -> [u8; COMM_LEN] {
    // SAFETY: As in `current_tgid`. `comm` may be rewritten concurrently by
    // prctl(PR_SET_NAME), which at worst gives a mix of old and new bytes,
    // the same guarantee the kernel's own `get_task_comm` readers accept.
    // (`kernel::ffi::c_char` is `u8`, so the bytes need no conversion.)
    unsafe { ptr_read_comm(bindings::get_current()) }
}

/// Reads `comm` with a volatile copy (it can change under us).
///
/// # Safety
///
/// `task` must point to a live `task_struct`.
unsafe fn ptr_read_comm(task: *mut bindings::task_struct) -> [kernel::ffi::c_char; COMM_LEN] {
    // SAFETY: Guaranteed by the caller; the field is a plain byte array.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*task).comm)) }
}

/// Checks that this module reads `task_struct` where the kernel writes it.
///
/// Bindgen (clang) and GCC can disagree on a struct's layout, e.g. when an
/// empty struct is cache-line aligned; then `tgid` reads as garbage. Compare
/// the raw field with the kernel's own C accessor and refuse to run if they
/// differ. Call from process context (module init).
pub(crate) fn check_layout() -> Result<(), i32> {
    // SAFETY: `get_current` returns the running task. `__task_pid_nr_ns`
    // takes RCU itself; `init_pid_ns` is the static root namespace, so the
    // result is the global tgid, the same number `task_struct::tgid` holds.
    let from_c = unsafe {
        bindings::__task_pid_nr_ns(
            bindings::get_current(),
            bindings::pid_type_PIDTYPE_TGID,
            core::ptr::addr_of_mut!(bindings::init_pid_ns),
        )
    };
    let from_rust = current_tgid();
    if from_c == from_rust {
        Ok(())
    } else {
        Err(from_rust)
    }
}
