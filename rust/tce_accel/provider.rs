// SPDX-License-Identifier: GPL-2.0

//! The TCE hypercalls of the tables this module serves, answered inside KVM.
//!
//! The module registers itself with KVM as the provider of sPAPR TCE tables
//! (`struct kvmppc_spapr_tce_provider`, `patches/0003`): KVM keeps each table on its VM's list,
//! finds it for a hypercall by the VM's own lookup, and calls these handlers with the table. A
//! handler runs the engine's hypercall on it with the guest's memory slots as
//! [`GuestMemory`].
//!
//! # Context
//!
//! The handlers run in the vCPU thread, in process context, inside the VM's `kvm->srcu`
//! read-side section, and may sleep: they allocate table pages and read the guest's
//! `H_PUT_TCE_INDIRECT` list from the VMM's mapping of guest RAM. KVM frees a table only after
//! a grace period of that VM's SRCU, so a table and the list of hardware tables attached to it
//! live while a handler uses them ([`InHcall`]). Another VM never waits for this one.

use core::ffi::{
    c_long,
    c_ulong, //
};

use kernel::{
    prelude::*,
    sync::Arc, //
};

use crate::engine::env::{
    DmaMemory,
    GuestFault,
    GuestMemory, //
};
use crate::engine::hcall::{
    self,
    Target,
    Vm, //
};
use crate::engine::tce::{
    HcallError,
    HcallResult,
    INDIRECT_MAX, //
};
use crate::glue::{
    self,
    KvmTceTable,
    KvmVcpu,
    MemSlots,
    TableHandle,
    VcpuRef, //
};
use crate::host::KHost;
use crate::table::{
    Hcall,
    Table, //
};
use crate::vfio::{
    HwAttach,
    KvmDma, //
};

/// The module as KVM's provider of TCE tables (when `takeover` is set); dropping it gives new
/// tables back to KVM. Tables the module serves hold references to it, so it is dropped only
/// when none is left.
pub(crate) struct Provider(());

impl Provider {
    /// Registers the provider: `EBUSY` if another module provides KVM's tables.
    pub(crate) fn start() -> Result<Self> {
        glue::provider_start()?;
        Ok(Self(()))
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        glue::provider_stop();
    }
}

/// Proof that the code holding it runs in a hypercall handler, inside the `kvm->srcu`
/// read-side section of the table's VM, which a table and its attached list outlive.
pub(crate) struct InHcall(());

/// Guest RAM as the VM's memory slots map it into the VMM, held stable for one hypercall.
struct SlotMemory<'a> {
    slots: MemSlots<'a>,
}

impl GuestMemory for SlotMemory<'_> {
    fn gpa_to_ua(&self, gpa: u64) -> Option<u64> {
        self.slots.gpa_to_ua(gpa)
    }

    fn read_be64(&self, gpa: u64, out: &mut [u64]) -> Result<(), GuestFault> {
        let Some(last) = out.len().checked_sub(1) else {
            return Ok(());
        };
        let span = u64::try_from(last)
            .map_err(|_| GuestFault)?
            .checked_mul(8)
            .ok_or(GuestFault)?;
        let ua = self.gpa_to_ua(gpa).ok_or(GuestFault)?;
        let last_gpa = gpa.checked_add(span).ok_or(GuestFault)?;
        // The list must be one run of the VMM's memory: the last word must be where the first
        // one's slot puts it. Within one 4 KiB page it is (a memory slot maps whole pages, in
        // one run), which an H_PUT_TCE_INDIRECT list always is: it is 4 KiB-aligned and at most
        // 4 KiB long. Other reads look the last word up too.
        if gpa >> SLOT_PAGE_SHIFT != last_gpa >> SLOT_PAGE_SHIFT {
            let end = self.gpa_to_ua(last_gpa).ok_or(GuestFault)?;
            if ua.checked_add(span) != Some(end) {
                return Err(GuestFault);
            }
        }
        glue::read_user_be64(ua, out).map_err(|_| GuestFault)
    }
}

/// No preregistered memory, for the KUnit tests: with no hardware table attached the engine
/// never asks.
pub(crate) struct NoDma;

impl DmaMemory for NoDma {
    type Region = ();

    fn lookup(&self, _ua: u64, _size: u64) -> Option<()> {
        None
    }

    fn ua_to_hpa(&self, _region: (), _ua: u64, _page_shift: u32) -> Option<u64> {
        None
    }

    fn mapped_inc(&self, _region: ()) -> bool {
        false
    }

    fn mapped_dec(&self, _region: ()) {}
}

/// log2 of the smallest page a memory slot maps: slots start and end on 4 KiB boundaries.
const SLOT_PAGE_SHIFT: u32 = 12;

/// `H_PUT_TCE_INDIRECT` lists up to this long are read into a buffer on the stack (256 bytes).
const INDIRECT_ON_STACK: usize = 32;

/// Lists up to this long use a smaller one (32 bytes), which costs less to zero.
const INDIRECT_TINY: usize = 4;

/// The hardware tables attached to a window, as the engine iterates over them.
type HwTables<'a> =
    core::iter::Map<core::slice::Iter<'a, Arc<HwAttach>>, fn(&'a Arc<HwAttach>) -> &'a HwAttach>;

fn deref_attach(a: &Arc<HwAttach>) -> &HwAttach {
    a
}

/// Guest memory for the hypercalls that never translate a guest address (`H_STUFF_TCE`, which
/// only clears or poisons, and `H_GET_TCE`): they need not hold the memory slots.
struct NoGuest;

impl GuestMemory for NoGuest {
    fn gpa_to_ua(&self, _gpa: u64) -> Option<u64> {
        None
    }

    fn read_be64(&self, _gpa: u64, _out: &mut [u64]) -> Result<(), GuestFault> {
        Err(GuestFault)
    }
}

/// A table found for a hypercall, with the hardware tables attached to it, valid while the
/// handler runs.
struct Found<'a> {
    table: &'a Table,
    in_hcall: &'a InHcall,
}

impl<'a> Found<'a> {
    /// The window and the hardware tables attached to it now (`H_GET_TCE` needs neither list
    /// nor this call).
    fn target(&self) -> Option<Target<'a, KHost, HwTables<'a>>> {
        Some(Target {
            window: self.table.window(),
            tables: self
                .table
                .attached()
                .get(self.in_hcall)
                .iter()
                .map(deref_attach as fn(&_) -> &_),
        })
    }
}

/// Runs `f` on `table` and turns its result into a status.
///
/// # Safety
///
/// `table` must be the table pointer KVM passed to a handler, which runs inside the VM's
/// `kvm->srcu` read-side section; only the handlers below call this.
///
/// `span` is the range of entries (`ioba`, `npages`) the call may allocate pages for: those the
/// VMM has mapped as the zero page are zapped once they exist.
unsafe fn with_table(
    table: *mut TableHandle,
    kind: Hcall,
    span: Option<(u64, u64)>,
    f: impl FnOnce(&Found<'_>) -> HcallResult,
) -> c_long {
    // SAFETY: By the function's safety requirements the table came from the provider's create
    // (`Arc::into_raw`) and KVM releases it only after a grace period of the SRCU the handler
    // runs in.
    let table = unsafe { &*table.cast::<Table>() };
    table.count(kind);
    let in_hcall = InHcall(());
    let found = Found {
        table,
        in_hcall: &in_hcall,
    };
    let watch = span.and_then(|(ioba, npages)| table.watch(ioba, npages));
    let r = f(&found);
    if let Some(w) = watch {
        w.zap_new(table);
    }
    match r {
        Ok(()) => 0,
        Err(e) => e.code() as c_long,
    }
}

/// Runs `f` with the guest's memory, as KVM holds its slots for the hypercall, and the
/// preregistered memory of the VM's process.
fn with_guest<R>(
    vcpu: &VcpuRef,
    in_hcall: &InHcall,
    f: impl FnOnce(&Vm<'_, SlotMemory<'_>, KvmDma<'_>>) -> R,
) -> R {
    let guest = SlotMemory {
        slots: vcpu.memslots(in_hcall),
    };
    f(&Vm {
        guest: &guest,
        dma: &KvmDma(vcpu.dma()),
    })
}

/// `H_PUT_TCE`, called by KVM.
///
/// # Safety
///
/// `vcpu` must be a live vCPU whose thread is making this hypercall, and `stt` the KVM table
/// of this provider that KVM found for it, inside the VM's `kvm->srcu` read-side section.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_h_put_tce(
    vcpu: *mut KvmVcpu,
    stt: *mut KvmTceTable,
    ioba: c_ulong,
    tce: c_ulong,
) -> c_long {
    // SAFETY: By the function's safety requirements `vcpu` is live for this call.
    let vcpu = unsafe { VcpuRef::new(vcpu) };
    // SAFETY: By the function's safety requirements `stt` is this provider's; its table, as
    // `with_table` needs.
    unsafe {
        with_table(glue::stt_table(stt), Hcall::Put, Some((ioba, 1)), |t| {
            with_guest(&vcpu, t.in_hcall, |vm| vm.put_tce(t.target(), ioba, tce))
        })
    }
}

/// `H_PUT_TCE_INDIRECT`, called by KVM.
///
/// # Safety
///
/// `vcpu` must be a live vCPU whose thread is making this hypercall, and `stt` the KVM table
/// of this provider that KVM found for it, inside the VM's `kvm->srcu` read-side section.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_h_put_tce_indirect(
    vcpu: *mut KvmVcpu,
    stt: *mut KvmTceTable,
    ioba: c_ulong,
    tce_list: c_ulong,
    npages: c_ulong,
) -> c_long {
    // SAFETY: By the function's safety requirements `vcpu` is live for this call.
    let vcpu = unsafe { VcpuRef::new(vcpu) };
    // SAFETY: By the function's safety requirements `stt` is this provider's; its table, as
    // `with_table` needs.
    unsafe {
        with_table(
            glue::stt_table(stt),
            Hcall::PutIndirect,
            Some((ioba, npages)),
            |t| {
                // A short list fits on the stack; a whole one (4 KiB) is too much for it and costs one
                // kmalloc. A list longer than INDIRECT_MAX gets H_PARAMETER before the buffer is used.
                // Only the buffer used is zeroed: a one-entry list does not pay for 32.
                let mut tiny = [0u64; INDIRECT_TINY];
                let mut small;
                let mut large;
                let buf = if npages <= INDIRECT_TINY as u64 {
                    &mut tiny[..]
                } else if npages <= INDIRECT_ON_STACK as u64 {
                    small = [0u64; INDIRECT_ON_STACK];
                    &mut small[..]
                } else if npages <= INDIRECT_MAX as u64 {
                    large = KVec::from_elem(0u64, INDIRECT_MAX, GFP_KERNEL)
                        .map_err(|_| HcallError::TooHard)?;
                    &mut large[..]
                } else {
                    &mut []
                };
                with_guest(&vcpu, t.in_hcall, |vm| {
                    vm.put_tce_indirect(t.target(), ioba, tce_list, npages, buf)
                })
            },
        )
    }
}

/// `H_STUFF_TCE`, called by KVM.
///
/// # Safety
///
/// `vcpu` must be a live vCPU whose thread is making this hypercall, and `stt` the KVM table
/// of this provider that KVM found for it, inside the VM's `kvm->srcu` read-side section.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_h_stuff_tce(
    vcpu: *mut KvmVcpu,
    stt: *mut KvmTceTable,
    ioba: c_ulong,
    value: c_ulong,
    npages: c_ulong,
) -> c_long {
    // SAFETY: By the function's safety requirements `vcpu` is live for this call.
    let vcpu = unsafe { VcpuRef::new(vcpu) };
    // SAFETY: By the function's safety requirements `stt` is this provider's; its table, as
    // `with_table` needs.
    unsafe {
        with_table(
            glue::stt_table(stt),
            Hcall::Stuff,
            (value != 0).then_some((ioba, npages)),
            |t| {
                let vm = Vm {
                    guest: &NoGuest,
                    dma: &KvmDma(vcpu.dma()),
                };
                vm.stuff_tce(t.target(), ioba, value, npages)
            },
        )
    }
}

/// `H_GET_TCE`, called by KVM: on success the entry goes to the guest's r4.
///
/// # Safety
///
/// `vcpu` must be a live vCPU whose thread is making this hypercall, and `stt` the KVM table
/// of this provider that KVM found for it, inside the VM's `kvm->srcu` read-side section.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_h_get_tce(
    vcpu: *mut KvmVcpu,
    stt: *mut KvmTceTable,
    ioba: c_ulong,
) -> c_long {
    // SAFETY: By the function's safety requirements `vcpu` is live for this call.
    let vcpu = unsafe { VcpuRef::new(vcpu) };
    // SAFETY: By the function's safety requirements `stt` is this provider's; its table, as
    // `with_table` needs.
    unsafe {
        with_table(glue::stt_table(stt), Hcall::Get, None, |t| {
            let tce = hcall::get_tce(Some(t.table.window()), ioba)?;
            vcpu.set_gpr(4, tce);
            Ok(())
        })
    }
}
