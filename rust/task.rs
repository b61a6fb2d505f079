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

/// What the probes record about the running task.
pub(crate) struct Current {
    /// Thread-group id, as in [`current_tgid`].
    pub(crate) tgid: i32,
    /// `comm` (NUL padded) as two native-endian words: two loads instead of
    /// sixteen, which matters at two events per COW fault.
    pub(crate) comm: [u64; 2],
}

// `Current::get` reads `comm` as two aligned words: it must be 16 bytes
// (this does not compile otherwise) at an 8-aligned offset.
const _: fn(&bindings::task_struct) -> &[kernel::ffi::c_char; COMM_LEN] = |t| &t.comm;
const _: () = assert!(core::mem::offset_of!(bindings::task_struct, comm) % 8 == 0);

impl Current {
    /// The running task's tgid and command name, from one `get_current()`.
    #[inline]
    pub(crate) fn get() -> Self {
        // SAFETY: As in `current_tgid`. `comm` is 16 bytes at an 8-aligned
        // offset (checked above) of an aligned `task_struct`, so it reads as
        // two aligned words. prctl(PR_SET_NAME) may rewrite it concurrently,
        // hence volatile; at worst we get a mix of old and new bytes, the
        // same guarantee the kernel's own `get_task_comm` readers accept.
        unsafe {
            let task = bindings::get_current();
            let comm = core::ptr::addr_of!((*task).comm).cast::<u64>();
            Self {
                tgid: (*task).tgid,
                comm: [
                    core::ptr::read_volatile(comm),
                    core::ptr::read_volatile(comm.add(1)),
                ],
            }
        }
    }
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
