// SPDX-License-Identifier: GPL-2.0
//! The processes `cow-demo map` draws: a parent worker with a touched heap
//! and its forked child, both writing pages on command. `cow-demo map`
//! itself only watches them, so its own allocations and screen output never
//! touch their memory or their cowstat rows.
//!
//! Inside the workers nothing allocates or writes outside the heap after
//! the fork except on stack pages made private before READY, so over the
//! write window their counters count heap pages only (as in `fork`).

use std::fs::File;
use std::panic::AssertUnwindSafe;

use crate::error::{Error, Result};
use crate::workload::{
    exit_child, fork, pipe, prefault_stack, recv, send, wait_child, Forked, Heap,
};

/// How the heap is touched before the fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Write every page: private pages, copied on the first write after fork.
    Write,
    /// Read every page: all map the shared zero page, so writes zero-fill.
    Read,
}

const READY: u8 = b'R';
const WRITE: u8 = b'W';
const DONE: u8 = b'D';
const EXIT: u8 = b'X';
const CMD_BYTES: usize = 17;

/// Which worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The process that made the heap and forked.
    Parent,
    /// Its child.
    Child,
}

/// The observer's handle on the two workers.
pub struct Workers {
    /// Parent worker's pid.
    pub parent: u32,
    /// Child worker's pid.
    pub child: u32,
    /// Heap start address (in both workers).
    pub addr: u64,
    /// Heap size in bytes.
    pub size: u64,
    to_parent: File,
    from_parent: File,
    to_child: File,
    from_child: File,
    reaped: bool,
}

/// One end-to-end channel: (worker's rx, observer's tx, observer's rx, worker's tx).
fn channel() -> Result<(File, File, File, File)> {
    let (w_rx, o_tx) = pipe()?;
    let (o_rx, w_tx) = pipe()?;
    Ok((w_rx, o_tx, o_rx, w_tx))
}

impl Workers {
    /// Forks the parent worker, which maps a `size`-byte heap (`thp`: with
    /// MADV_HUGEPAGE), touches it, forks the child; both wait for commands.
    /// `order` is the list of pages WRITE commands index into.
    pub fn spawn(size: u64, thp: bool, touch: Touch, order: &[u64]) -> Result<Workers> {
        let (p_rx, to_parent, from_parent, p_tx) = channel()?;
        let (c_rx, to_child, from_child, c_tx) = channel()?;
        let (side, _) = fork()?;
        let Forked::Parent(parent) = side else {
            drop((to_parent, from_parent, to_child, from_child));
            parent_worker(size, thp, touch, order, (p_rx, p_tx), (c_rx, c_tx))
        };
        drop((p_rx, p_tx, c_rx, c_tx));
        // From here on, dropping `w` (an error) kills both workers.
        let mut w = Workers {
            parent,
            child: 0,
            addr: 0,
            size,
            to_parent,
            from_parent,
            to_child,
            from_child,
            reaped: false,
        };
        let mut info = [0u8; 16];
        recv(&mut w.from_parent, &mut info)?;
        w.addr = u64::from_le_bytes(info[..8].try_into().unwrap());
        w.child = u64::from_le_bytes(info[8..].try_into().unwrap()) as u32;
        for rx in [&mut w.from_parent, &mut w.from_child] {
            let mut b = [0u8; 1];
            recv(rx, &mut b)?;
            if b[0] != READY {
                return Err(Error::Child(format!(
                    "unexpected handshake byte {:#x}",
                    b[0]
                )));
            }
        }
        Ok(w)
    }

    /// Has `who` write `order[from..to]` and waits until it has.
    pub fn write(&mut self, who: Who, from: usize, to: usize) -> Result<()> {
        let mut cmd = [0u8; CMD_BYTES];
        cmd[0] = WRITE;
        cmd[1..9].copy_from_slice(&(from as u64).to_le_bytes());
        cmd[9..].copy_from_slice(&(to as u64).to_le_bytes());
        let (tx, rx) = match who {
            Who::Parent => (&mut self.to_parent, &mut self.from_parent),
            Who::Child => (&mut self.to_child, &mut self.from_child),
        };
        send(tx, &cmd)?;
        let mut b = [0u8; 1];
        recv(rx, &mut b)?;
        if b[0] != DONE {
            return Err(Error::Child(format!(
                "unexpected handshake byte {:#x}",
                b[0]
            )));
        }
        Ok(())
    }

    /// Ends both workers (the child first, reaped by the parent worker).
    pub fn finish(mut self) -> Result<()> {
        let mut cmd = [0u8; CMD_BYTES];
        cmd[0] = EXIT;
        send(&mut self.to_child, &cmd)?;
        send(&mut self.to_parent, &cmd)?;
        self.reaped = true;
        match wait_child(self.parent)? {
            0 => Ok(()),
            st => Err(Error::Child(format!(
                "worker pid {} exited with status {st}",
                self.parent
            ))),
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: signals to our own worker processes; no memory involved.
            unsafe {
                if self.child != 0 {
                    libc::kill(self.child as libc::pid_t, libc::SIGKILL);
                }
                libc::kill(self.parent as libc::pid_t, libc::SIGKILL);
            }
            let _ = wait_child(self.parent);
        }
    }
}

/// The parent worker's life: never returns.
fn parent_worker(
    size: u64,
    thp: bool,
    touch: Touch,
    order: &[u64],
    (p_rx, mut p_tx): (File, File),
    (c_rx, c_tx): (File, File),
) -> ! {
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        let mut heap = Heap::new(size, thp)?;
        match touch {
            Touch::Write => {
                heap.touch_all(true);
            }
            Touch::Read => {
                let s = heap.as_slice();
                for i in (0..s.len()).step_by(heap.page_size() as usize) {
                    // SAFETY: i < len; volatile so the read really maps the page.
                    unsafe { std::ptr::read_volatile(s.as_ptr().add(i)) };
                }
                // One written page gives the heap an anon_vma. Without one,
                // fork does not copy the page tables: the child would fault
                // fresh pages in, not break the zero page by copy-on-write.
                heap.write_page(heap.pages() - 1, 1);
            }
        }
        let (side, _) = fork()?;
        let child = match side {
            Forked::Child => {
                drop((p_rx, p_tx));
                worker(&heap, order, c_rx, c_tx, None)
            }
            Forked::Parent(c) => c,
        };
        drop((c_rx, c_tx));
        let mut info = [0u8; 16];
        info[..8].copy_from_slice(&heap.addr().to_le_bytes());
        info[8..].copy_from_slice(&(child as u64).to_le_bytes());
        send(&mut p_tx, &info)?;
        worker(&heap, order, p_rx, p_tx, Some(child))
    }));
    exit_child(match r {
        Ok(Ok(())) => 0,
        _ => 3,
    })
}

/// Both workers' command loop: never returns.
fn worker(heap: &Heap, order: &[u64], rx: File, tx: File, child: Option<u32>) -> ! {
    // Make the stack below this frame private now, before READY, so the
    // window's only copy-on-write faults are heap pages.
    prefault_stack();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| serve(heap, order, rx, tx, child)));
    exit_child(match r {
        Ok(Ok(())) => 0,
        _ => 3,
    })
}

#[inline(never)]
fn serve(heap: &Heap, order: &[u64], mut rx: File, mut tx: File, child: Option<u32>) -> Result<()> {
    send(&mut tx, &[READY])?;
    loop {
        let mut cmd = [0u8; CMD_BYTES];
        if recv(&mut rx, &mut cmd).is_err() {
            return Ok(());
        }
        match cmd[0] {
            WRITE => {
                let from = u64::from_le_bytes(cmd[1..9].try_into().unwrap()) as usize;
                let to = u64::from_le_bytes(cmd[9..].try_into().unwrap()) as usize;
                heap.write_pages(&order[from.min(order.len())..to.min(order.len())], 0xa5);
                send(&mut tx, &[DONE])?;
            }
            _ => {
                if let Some(c) = child {
                    wait_child(c)?;
                }
                return Ok(());
            }
        }
    }
}
