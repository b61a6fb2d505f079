// SPDX-License-Identifier: GPL-2.0

//! Safe kprobe and kretprobe registration around the raw C API.
//!
//! A [`Probe`] is a `static` slot that owns the C `struct kretprobe` (a plain
//! kprobe uses only its embedded `kp`). Statics never move, which the kprobe
//! core requires, and stay readable by `/proc` handlers for the module's whole
//! lifetime. [`Probe::register`] returns a [`Registration`] guard; dropping it
//! unregisters, and the kprobe core waits for running handlers, so nothing in
//! this module can run after the guard is gone.

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

    /// Runs in atomic context (preemption off): must not sleep or allocate.
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
    /// Entry only (`register_kprobe`).
    Kprobe,
    /// Entry and return (`register_kretprobe`).
    Kretprobe,
}

impl Kind {
    /// The name shown in `/proc/cowstat/probes`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Kprobe => "kprobe",
            Kind::Kretprobe => "kretprobe",
        }
    }
}

/// Signature of a kprobe pre-handler.
type PreHandler = unsafe extern "C" fn(*mut bindings::kprobe, *mut bindings::pt_regs) -> c_int;
/// Signature of a kretprobe entry or return handler.
type RetHandler =
    unsafe extern "C" fn(*mut bindings::kretprobe_instance, *mut bindings::pt_regs) -> c_int;

/// A static probe slot for one kernel function.
///
/// # Invariants
///
/// `rp` is written only while `active` is false and no [`Registration`] exists
/// (during [`Probe::register`], which is called once at module init). While
/// `active` is true the struct is registered with the kprobe core, which then
/// owns its mutable fields.
pub(crate) struct Probe {
    symbol: &'static CStr,
    kind: Kind,
    pre: Option<PreHandler>,
    ret_entry: Option<RetHandler>,
    ret: Option<RetHandler>,
    data_size: usize,
    maxactive: c_int,
    rp: Opaque<bindings::kretprobe>,
    active: AtomicBool,
    hits: Counter,
}

// SAFETY: The C struct inside is only mutated by `register` before it is
// published to the kprobe core, and afterwards only by the kprobe core; every
// other field is immutable or atomic. Sharing `&Probe` between CPUs is sound.
unsafe impl Sync for Probe {}

impl Probe {
    /// A slot for an entry probe on `symbol` that calls `H::entry`.
    pub(crate) const fn kprobe<H: EntryHandler>(symbol: &'static CStr) -> Self {
        Self::new(
            symbol,
            Kind::Kprobe,
            Some(pre_trampoline::<H>),
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
        pre: Option<PreHandler>,
        ret_entry: Option<RetHandler>,
        ret: Option<RetHandler>,
        data_size: usize,
        maxactive: c_int,
    ) -> Self {
        Self {
            symbol,
            kind,
            pre,
            ret_entry,
            ret,
            data_size,
            maxactive,
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
        let mut rp = bindings::kretprobe::default();
        rp.kp.symbol_name = self.symbol.as_char_ptr();
        rp.kp.pre_handler = self.pre;
        rp.entry_handler = self.ret_entry;
        rp.handler = self.ret;
        rp.data_size = self.data_size;
        rp.maxactive = self.maxactive;
        // SAFETY: No registration exists (checked above; module init is single
        // threaded), so nothing else reads or writes `self.rp` right now.
        unsafe { ptr::write(self.rp.get(), rp) };
        let raw = self.rp.get();
        let ret = match self.kind {
            // SAFETY: `raw` points to an initialised kprobe in static storage,
            // which outlives the registration.
            Kind::Kprobe => unsafe { bindings::register_kprobe(ptr::addr_of_mut!((*raw).kp)) },
            // SAFETY: As above, for the whole kretprobe.
            Kind::Kretprobe => unsafe { bindings::register_kretprobe(raw) },
        };
        to_result(ret)?;
        // INVARIANT: the struct is registered from here until `Registration::drop`.
        self.active.store(true, Ordering::Release);
        Ok(Registration {
            probe: self,
            _not_send: PhantomData,
        })
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
    /// instances in use), since the last registration.
    pub(crate) fn missed(&self) -> u64 {
        if !self.is_active() {
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
/// `probe.rp` is registered with the kprobe core for as long as this exists.
pub(crate) struct Registration {
    probe: &'static Probe,
    _not_send: PhantomData<*mut ()>,
}

// SAFETY: The only action on a `Registration` is dropping it, and
// `unregister_kprobe`/`unregister_kretprobe` may be called from any thread.
unsafe impl Send for Registration {}
// SAFETY: `&Registration` allows nothing at all.
unsafe impl Sync for Registration {}

impl Drop for Registration {
    fn drop(&mut self) {
        self.probe.active.store(false, Ordering::Release);
        let raw = self.probe.rp.get();
        match self.probe.kind {
            // SAFETY: By the type invariant the kprobe is registered. This
            // waits until no CPU runs our handler any more.
            Kind::Kprobe => unsafe { bindings::unregister_kprobe(ptr::addr_of_mut!((*raw).kp)) },
            // SAFETY: As above, for the kretprobe.
            Kind::Kretprobe => unsafe { bindings::unregister_kretprobe(raw) },
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

/// The kprobe pre-handler for `H`, called by the kprobe core.
///
/// # Safety
///
/// `pt_regs` must be valid for reads for the duration of the call.
unsafe extern "C" fn pre_trampoline<H: EntryHandler>(
    _kp: *mut bindings::kprobe,
    pt_regs: *mut bindings::pt_regs,
) -> c_int {
    // The benchmark's "bare" build (`make bench`): the probe fires and
    // returns at once, so loaded-bare vs unloaded is the kprobe mechanism's
    // cost and full vs bare is ours (docs/benchmarks.md).
    if cfg!(cowstat_bare_entry_probes) {
        return 0;
    }
    H::probe().hits.inc();
    // SAFETY: The kprobe core passes the interrupted context's registers,
    // valid for the duration of this call.
    H::entry(&unsafe { regs(pt_regs) });
    0
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
    // SAFETY: As in `pre_trampoline`.
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
    // SAFETY: As in `pre_trampoline`.
    H::ret(data, &unsafe { regs(pt_regs) });
    0
}
