// SPDX-License-Identifier: GPL-2.0

//! Safe function-entry hooks (raw ftrace callbacks) and kretprobes around
//! the raw C APIs.
//!
//! A [`Probe`] is a `static` slot that owns the C `struct ftrace_ops` (entry
//! hooks) or `struct kretprobe` (entry+return). Statics never move, which
//! both cores require, and stay readable by `/proc` handlers for the module's
//! whole lifetime. [`Probe::register`] returns a [`Registration`] guard;
//! dropping it unregisters, and the core waits until no CPU can run our
//! handler any more, so nothing in this module can run after the guard is
//! gone.
//!
//! Entry hooks use a raw `ftrace_ops` rather than a kprobe: on the COW path
//! it costs less than half as much (no full register save, no kprobe lookup;
//! docs/benchmarks.md, "Overhead").

use crate::counter::Counter;
use core::{
    ffi::c_int,
    marker::PhantomData,
    ptr,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{bindings, error::to_result, prelude::*, str::CStr, types::Opaque};

/// The CPU registers at a probe hit (x86-64).
pub(crate) struct Regs<'a>(&'a bindings::pt_regs);

impl Regs<'_> {
    /// First integer argument at function entry (System V ABI: `rdi`).
    pub(crate) fn arg0(&self) -> usize {
        self.0.di
    }

    /// Return value of an `int` function at return (low half of `rax`).
    pub(crate) fn return_int(&self) -> i32 {
        self.0.ax as u32 as i32
    }
}

/// Code to run when a probed function is entered.
pub(crate) trait EntryHandler {
    /// The static slot this handler is attached through (for its hit count).
    fn probe() -> &'static Probe;

    /// Runs inside the hooked function's caller context, possibly with
    /// preemption on and locks held: must not sleep, allocate or fault.
    fn entry(regs: &Regs<'_>);
}

/// Code to run around a probed function: on entry, and when it returns.
pub(crate) trait ReturnHandler {
    /// Per-call state carried from entry to return (at most 8 bytes is plenty).
    type Data: Copy;

    /// The static slot this handler is attached through (for its hit count).
    fn probe() -> &'static Probe;

    /// Runs at function entry, in atomic context. `None` skips the return hook.
    fn entry(regs: &Regs<'_>) -> Option<Self::Data>;

    /// Runs when the function returns, in atomic context.
    fn ret(data: Self::Data, regs: &Regs<'_>);
}

/// How a probe is attached.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Entry only, a raw ftrace callback (`register_ftrace_function`).
    Ftrace,
    /// Entry and return (`register_kretprobe`).
    Kretprobe,
}

impl Kind {
    /// The name shown in `/proc/cowstat/probes`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Ftrace => "ftrace",
            Kind::Kretprobe => "kretprobe",
        }
    }
}

/// Signature of an ftrace callback (`ftrace_func_t`).
type FtraceFunc = unsafe extern "C" fn(
    kernel::ffi::c_ulong,
    kernel::ffi::c_ulong,
    *mut bindings::ftrace_ops,
    *mut bindings::ftrace_regs,
);
/// Signature of a kretprobe entry or return handler.
type RetHandler =
    unsafe extern "C" fn(*mut bindings::kretprobe_instance, *mut bindings::pt_regs) -> c_int;

/// A static probe slot for one kernel function.
///
/// # Invariants
///
/// `ops` and `rp` are written only while `active` is false and no
/// [`Registration`] exists (during [`Probe::register`], which is called once
/// at module init). While `active` is true the one of them that `kind` names
/// is registered with its core (ftrace or kprobes), which then owns its
/// mutable fields; the other is never used.
pub(crate) struct Probe {
    symbol: &'static CStr,
    kind: Kind,
    func: Option<FtraceFunc>,
    ret_entry: Option<RetHandler>,
    ret: Option<RetHandler>,
    data_size: usize,
    maxactive: c_int,
    ops: Opaque<bindings::ftrace_ops>,
    rp: Opaque<bindings::kretprobe>,
    active: AtomicBool,
    hits: Counter,
}

// SAFETY: The C structs inside are only mutated by `register` before they
// are published to their core, and afterwards only by that core; every other
// field is immutable or atomic. Sharing `&Probe` between CPUs is sound.
unsafe impl Sync for Probe {}

impl Probe {
    /// A slot for an entry hook on `symbol` that calls `H::entry`.
    pub(crate) const fn ftrace<H: EntryHandler>(symbol: &'static CStr) -> Self {
        Self::new(
            symbol,
            Kind::Ftrace,
            Some(ftrace_trampoline::<H>),
            None,
            None,
            0,
            0,
        )
    }

    /// A slot for an entry+return probe on `symbol`, with up to `maxactive`
    /// calls in flight at once (more are counted as missed).
    pub(crate) const fn kretprobe<H: ReturnHandler>(
        symbol: &'static CStr,
        maxactive: c_int,
    ) -> Self {
        Self::new(
            symbol,
            Kind::Kretprobe,
            None,
            Some(ret_entry_trampoline::<H>),
            Some(ret_trampoline::<H>),
            core::mem::size_of::<H::Data>(),
            maxactive,
        )
    }

    const fn new(
        symbol: &'static CStr,
        kind: Kind,
        func: Option<FtraceFunc>,
        ret_entry: Option<RetHandler>,
        ret: Option<RetHandler>,
        data_size: usize,
        maxactive: c_int,
    ) -> Self {
        Self {
            symbol,
            kind,
            func,
            ret_entry,
            ret,
            data_size,
            maxactive,
            ops: Opaque::uninit(),
            rp: Opaque::uninit(),
            active: AtomicBool::new(false),
            hits: Counter::new(),
        }
    }

    /// Attaches the probe. `ENOENT` means the symbol does not exist on this
    /// kernel (for example, it was inlined).
    pub(crate) fn register(&'static self) -> Result<Registration> {
        if self.active.load(Ordering::Acquire) {
            return Err(EBUSY);
        }
        match self.kind {
            Kind::Ftrace => self.register_ftrace()?,
            Kind::Kretprobe => self.register_kretprobe()?,
        }
        // INVARIANT: the struct is registered from here until `Registration::drop`.
        self.active.store(true, Ordering::Release);
        Ok(Registration {
            probe: self,
            _not_send: PhantomData,
        })
    }

    fn register_ftrace(&'static self) -> Result {
        let ops = bindings::ftrace_ops {
            func: self.func,
            ..Default::default()
        };
        // SAFETY: No registration exists (checked by `register`; module init
        // is single threaded), so nothing else reads or writes `self.ops`.
        unsafe { ptr::write(self.ops.get(), ops) };
        let raw = self.ops.get();
        let name = self.symbol.as_bytes();
        let mut buf = [0u8; 64];
        buf.get_mut(..name.len())
            .ok_or(EINVAL)?
            .copy_from_slice(name);
        // SAFETY: `raw` is an initialised, unregistered ftrace_ops in static
        // storage; `buf` holds `name.len()` bytes; 1 = start a new filter.
        let ret =
            unsafe { bindings::ftrace_set_filter(raw, buf.as_mut_ptr(), name.len() as c_int, 1) };
        // ftrace says EINVAL when no traceable function has this name.
        let ret = to_result(ret).map_err(|e| if e == EINVAL { ENOENT } else { e });
        // SAFETY: As above; `raw` outlives the registration (static).
        let ret = ret.and_then(|()| to_result(unsafe { bindings::register_ftrace_function(raw) }));
        if ret.is_err() {
            // SAFETY: Not registered; frees whatever filter was set (a no-op
            // for an empty one), so a failed init leaks nothing.
            unsafe { bindings::ftrace_free_filter(raw) };
        }
        ret
    }

    fn register_kretprobe(&'static self) -> Result {
        let mut rp = bindings::kretprobe::default();
        rp.kp.symbol_name = self.symbol.as_char_ptr();
        rp.entry_handler = self.ret_entry;
        rp.handler = self.ret;
        rp.data_size = self.data_size;
        rp.maxactive = self.maxactive;
        // SAFETY: No registration exists (checked by `register`; module init
        // is single threaded), so nothing else reads or writes `self.rp`.
        unsafe { ptr::write(self.rp.get(), rp) };
        // SAFETY: `self.rp` is an initialised kretprobe in static storage,
        // which outlives the registration.
        to_result(unsafe { bindings::register_kretprobe(self.rp.get()) })
    }

    /// The probed function's name.
    pub(crate) fn symbol(&self) -> &'static CStr {
        self.symbol
    }

    /// How the probe is attached.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the probe is currently attached.
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Number of times the handler ran since load.
    pub(crate) fn hits(&self) -> u64 {
        self.hits.get()
    }

    /// Hits the kprobe core could not deliver (recursion, or all kretprobe
    /// instances in use), since the last registration. Ftrace callbacks are
    /// called directly and never miss.
    pub(crate) fn missed(&self) -> u64 {
        if !self.is_active() || self.kind == Kind::Ftrace {
            return 0;
        }
        let raw = self.rp.get();
        // SAFETY: The struct is initialised (active). The kprobe core updates
        // these counters concurrently, so read them volatile, not through `&`.
        let (kp_missed, rp_missed) = unsafe {
            (
                ptr::read_volatile(ptr::addr_of!((*raw).kp.nmissed)),
                ptr::read_volatile(ptr::addr_of!((*raw).nmissed)),
            )
        };
        kp_missed as u64 + rp_missed.max(0) as u64
    }
}

/// An attached probe; dropping it detaches the probe.
///
/// # Invariants
///
/// `probe.ops` (ftrace) or `probe.rp` (kretprobe) is registered with its core
/// for as long as this exists.
pub(crate) struct Registration {
    probe: &'static Probe,
    _not_send: PhantomData<*mut ()>,
}

// SAFETY: The only action on a `Registration` is dropping it, and
// `unregister_ftrace_function`/`unregister_kretprobe` may be called from any
// thread.
unsafe impl Send for Registration {}
// SAFETY: `&Registration` allows nothing at all.
unsafe impl Sync for Registration {}

impl Drop for Registration {
    fn drop(&mut self) {
        self.probe.active.store(false, Ordering::Release);
        match self.probe.kind {
            Kind::Ftrace => {
                let raw = self.probe.ops.get();
                // SAFETY: By the type invariant the ops is registered. For an
                // ops in module memory ftrace waits (RCU tasks) until no CPU
                // can be in our callback or its trampoline; then the filter
                // hash is ours to free.
                unsafe {
                    bindings::unregister_ftrace_function(raw);
                    bindings::ftrace_free_filter(raw);
                }
            }
            // SAFETY: By the type invariant the kretprobe is registered.
            // This waits until no CPU runs our handlers any more.
            Kind::Kretprobe => unsafe { bindings::unregister_kretprobe(self.probe.rp.get()) },
        }
    }
}

/// Wraps the register pointer the kprobe core hands to a callback.
///
/// # Safety
///
/// `regs` must be valid for reads for the lifetime of the returned value.
unsafe fn regs<'a>(regs: *mut bindings::pt_regs) -> Regs<'a> {
    // SAFETY: Guaranteed by the caller.
    Regs(unsafe { &*regs })
}

/// The ftrace callback for `H`, called at the entry of the hooked function.
///
/// # Safety
///
/// `fregs` must be null or the argument registers ftrace saved at the
/// function's entry, valid for the duration of the call.
unsafe extern "C" fn ftrace_trampoline<H: EntryHandler>(
    _ip: kernel::ffi::c_ulong,
    _parent_ip: kernel::ffi::c_ulong,
    _ops: *mut bindings::ftrace_ops,
    fregs: *mut bindings::ftrace_regs,
) {
    // The benchmark's "bare" build (`make bench`, Kbuild's
    // COWSTAT_BARE_PROBES): the hook fires and returns at once, so bare vs
    // unloaded is the mechanism's cost and full vs bare is ours
    // (docs/benchmarks.md).
    if cfg!(cowstat_bare_entry_probes) || fregs.is_null() {
        return;
    }
    H::probe().hits.inc();
    // SAFETY: On x86-64 with DYNAMIC_FTRACE_WITH_ARGS (6.12), `struct
    // ftrace_regs` is `struct __arch_ftrace_regs { struct pt_regs regs; }`
    // with the argument registers filled in (what `ftrace_regs_get_argument`
    // reads), valid for this call (caller's guarantee).
    let regs = unsafe { &(*fregs.cast::<bindings::__arch_ftrace_regs>()).regs };
    H::entry(&Regs(regs));
}

/// The kretprobe entry handler for `H`, called by the kprobe core.
///
/// # Safety
///
/// `pt_regs` must be valid for reads, and `ri` must be a live instance with
/// `size_of::<H::Data>()` bytes of per-call data, for the duration of the call.
unsafe extern "C" fn ret_entry_trampoline<H: ReturnHandler>(
    ri: *mut bindings::kretprobe_instance,
    pt_regs: *mut bindings::pt_regs,
) -> c_int {
    H::probe().hits.inc();
    // SAFETY: The kprobe core passes the interrupted context's registers,
    // valid for the duration of this call.
    match H::entry(&unsafe { regs(pt_regs) }) {
        Some(data) => {
            // SAFETY: `ri` is a live instance with `data_size ==
            // size_of::<H::Data>()` bytes of per-call storage; it may be
            // unaligned for `H::Data`, hence `write_unaligned`.
            unsafe { ptr::write_unaligned((*ri).data.as_mut_ptr().cast::<H::Data>(), data) };
            0
        }
        // Non-zero tells the kprobe core not to arm the return hook.
        None => 1,
    }
}

/// The kretprobe return handler for `H`, called by the kprobe core.
///
/// # Safety
///
/// As for [`ret_entry_trampoline`], and the instance's data must have been
/// written by it (the core calls this only if the entry handler returned 0).
unsafe extern "C" fn ret_trampoline<H: ReturnHandler>(
    ri: *mut bindings::kretprobe_instance,
    pt_regs: *mut bindings::pt_regs,
) -> c_int {
    // SAFETY: The return hook runs only for instances whose entry handler
    // returned 0, which wrote a `H::Data` there.
    let data = unsafe { ptr::read_unaligned((*ri).data.as_mut_ptr().cast::<H::Data>()) };
    // SAFETY: As in `ret_entry_trampoline`.
    H::ret(data, &unsafe { regs(pt_regs) });
    0
}
