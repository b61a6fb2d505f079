// SPDX-License-Identifier: GPL-2.0

//! Who is running: the current task's identity, thread group and name.

use crate::glue;

/// Length of `task_struct::comm`, including the NUL.
pub(crate) const COMM_LEN: usize = 16;

/// What the hooks record about the running task.
pub(crate) struct Current {
    /// The `task_struct` address: unique among live tasks, so it names the
    /// thread for as long as it runs (never dereferenced here).
    pub(crate) task: usize,
    /// Thread-group id (the "pid" users see), in the initial namespace.
    pub(crate) tgid: i32,
    /// `comm` (NUL padded) as two native-endian words.
    pub(crate) comm: [u64; 2],
}

impl Current {
    /// The running task, read by the glue with the kernel's own layout.
    #[inline]
    pub(crate) fn get() -> Self {
        let (mut tgid, mut comm) = (0, [0; 2]);
        // SAFETY: The out-pointers are valid locals; the glue reads only
        // `current`, which is valid while it runs.
        let task = unsafe { glue::cowstat_current(&mut tgid, &mut comm) } as usize;
        Self { task, tgid, comm }
    }
}

/// The running task's `task_struct` address: an identity to compare,
/// never dereferenced.
pub(crate) fn current_task() -> usize {
    // SAFETY: No pointers; the glue reads only `current`.
    unsafe { glue::cowstat_current_task() as usize }
}

/// The running process's pid as its own pid namespace numbers it.
pub(crate) fn own_pid() -> i32 {
    // SAFETY: No pointers; the glue reads only `current`.
    unsafe { glue::cowstat_current_vtgid() }
}
