// SPDX-License-Identifier: GPL-2.0

//! Hardware tables of VFIO groups, attached to tables so that the guest's TCE hypercalls update
//! the IOMMU in the kernel.
//!
//! `TCE_ACCEL_ATTACH_GROUP` takes a VFIO group file (sPAPR TCE v2 IOMMU, DMA owned by user
//! space), finds the group's hardware window that can back the table by the engine's rule
//! ([`check_attach`]: hardware page no larger than the guest's, same bus address, at least as
//! large) and adds it to the table's [`Attached`] list. From then on the engine's hypercalls map
//! and unmap every entry in it first, through [`HwAttach`] (`iommu_tce_xchg_no_kill()` and
//! `iommu_tce_kill()`), with guest pages translated through the VMM's preregistered memory
//! ([`KvmDma`], `mm_iommu`).
//!
//! # Rules beyond Linux's
//!
//! - The group's DMA must be owned by user space (it is in a VFIO container): otherwise its
//!   tables may be the host's own DMA windows. Linux trusts the VMM here.
//! - With `TCE_ACCEL_ATTACH_GROUP`, a table that already maps entries (the guest programmed it
//!   before the attach) is refused with `EBUSY`: its entries would be missing from the
//!   hardware, and replaying them is the walk this project avoids. The shim attaches right
//!   after it creates a window. Through the KVM-VFIO device (QEMU) both are accepted, as KVM
//!   accepts them: QEMU replays its mappings through VFIO itself, and attaches a group again.
//! - One hardware table backs at most one table (`EBUSY`), so that the entries of one hardware
//!   table are only ever exchanged under one lock.
//!
//! # Lifetime and RCU
//!
//! The list of a table is replaced, never changed in place, under [`crate::table::REGISTRY`]'s
//! lock; hypercalls read it inside their VM's `kvm->srcu` read-side section, and the old list is
//! freed only after a grace period of that SRCU. Detaching leaves the hardware entries the guest mapped in
//! place, as KVM does: removing the hardware window (`VFIO_IOMMU_SPAPR_TCE_REMOVE`) clears them
//! and returns their counts through the same user-address array. That last clear also retires
//! the attachment (patches/0005, the table's `it_ext_gen`): it maps nothing afterwards.

use core::ffi::{
    c_long,
    c_void, //
};
use core::ptr;
use core::sync::atomic::{
    AtomicPtr,
    Ordering, //
};

use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    prelude::*,
    sync::Arc,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::engine::env::DmaMemory;
use crate::engine::hcall::{
    check_attach,
    AttachError, //
};
use crate::engine::hwtable::{
    HwEntry,
    HwError,
    IommuTable, //
};
use crate::engine::tce::TCE_RW;
use crate::glue::{
    self,
    GroupRef,
    HwRef,
    IommuGroup,
    TableHandle,
    VmDma,
    VmRef, //
};
use crate::provider::InHcall;
use crate::table::{
    RegistryGuard,
    Table,
    REGISTRY, //
};
use crate::uapi;

/// Hardware entries cleared between two chances for other tasks to run.
const CLEAR_BATCH: u64 = 256;

/// A hardware table attached to a table, with the VM whose preregistered memory it maps.
pub(crate) struct HwAttach {
    hw: HwRef,
    vm: VmRef,
}

impl HwAttach {
    fn dma(&self) -> VmDma<'_> {
        self.vm.dma()
    }
}

fn hw_error(e: Error) -> HwError {
    if e == ENOMEM {
        HwError::NoMemory
    } else {
        HwError::Failed
    }
}

impl IommuTable for HwAttach {
    fn page_shift(&self) -> u32 {
        self.hw.page_shift()
    }

    fn offset(&self) -> u64 {
        self.hw.offset()
    }

    fn size(&self) -> u64 {
        self.hw.size()
    }

    fn exchange(&self, index: u64, new: HwEntry) -> Result<HwEntry, HwError> {
        self.hw.exchange(&self.dma(), index, new).map_err(hw_error)
    }

    fn clear_range(
        &self,
        index: u64,
        n: u64,
        f: &mut dyn FnMut(HwEntry) -> bool,
    ) -> Result<(), HwError> {
        let end = index.checked_add(n).ok_or(HwError::Failed)?;
        for i in index..end {
            let old = self.exchange(i, HwEntry::CLEAR)?;
            if old.is_mapped() && !f(old) {
                self.exchange(i, old)?;
                return Err(HwError::Foreign);
            }
            // An H_STUFF_TCE may clear a whole window: let other tasks run (hypercalls may sleep).
            if (i - index) % CLEAR_BATCH == CLEAR_BATCH - 1 {
                glue::cond_resched();
            }
        }
        Ok(())
    }

    fn invalidate(&self, index: u64, n: u64) {
        self.hw.kill(index, n);
    }
}

/// A region of preregistered memory, named by the range it was looked up with; each use looks
/// it up again (see [`VmDma`]).
#[derive(Clone, Copy)]
pub(crate) struct DmaKey {
    ua: u64,
    size: u64,
}

/// The preregistered memory of the VM making a hypercall. The hypercalls use its three
/// one-step operations (`check_page`, `map_page`, `unmap_page`), each one walk of the
/// registered regions, as in Linux; the finer calls are there for the trait.
pub(crate) struct KvmDma<'a>(pub(crate) VmDma<'a>);

impl DmaMemory for KvmDma<'_> {
    type Region = DmaKey;

    fn lookup(&self, ua: u64, size: u64) -> Option<DmaKey> {
        self.0.lookup(ua, size).then_some(DmaKey { ua, size })
    }

    fn ua_to_hpa(&self, _region: DmaKey, ua: u64, page_shift: u32) -> Option<u64> {
        self.0.hpa(ua, 1u64 << page_shift, page_shift)
    }

    fn mapped_inc(&self, region: DmaKey) -> bool {
        self.0.inc(region.ua, region.size)
    }

    fn mapped_dec(&self, region: DmaKey) {
        self.0.dec(region.ua, region.size);
    }

    fn check_page(&self, ua: u64, size: u64, page_shift: u32) -> bool {
        self.0.hpa(ua, size, page_shift).is_some()
    }

    fn unmap_page(&self, ua: u64, size: u64) -> bool {
        self.0.dec(ua, size)
    }

    fn map_page(&self, ua: u64, page_shift: u32) -> Option<(DmaKey, u64)> {
        let hpa = self.0.map(ua, page_shift)?;
        Some((
            DmaKey {
                ua,
                size: 1u64 << page_shift,
            },
            hpa,
        ))
    }
}

/// The list behind [`Attached`].
struct AttachList {
    tables: KVec<Arc<HwAttach>>,
}

/// The hardware tables attached to one table, replaced as a whole (see the module
/// documentation). Null when there are none, which costs a hypercall one load.
pub(crate) struct Attached(AtomicPtr<AttachList>);

impl Attached {
    /// No tables attached.
    pub(crate) const fn new() -> Self {
        Self(AtomicPtr::new(ptr::null_mut()))
    }

    /// The attached tables, for as long as the hypercall handler runs: the slice borrows the
    /// handler's [`InHcall`] token, so it cannot outlive the VM's SRCU read-side section.
    pub(crate) fn get<'a>(&'a self, _in_hcall: &'a InHcall) -> &'a [Arc<HwAttach>] {
        // SAFETY: A list is freed only after it was replaced and a grace period of the VM's
        // SRCU passed, which waits for this handler (`InHcall`).
        unsafe { self.0.load(Ordering::Acquire).as_ref() }.map_or(&[], |l| &l.tables[..])
    }

    /// The attached tables, for a holder of [`REGISTRY`]'s lock: a [`RegistryGuard`] exists
    /// only while it is held (there is one lock of its type), and the slice borrows it.
    fn locked<'a>(&'a self, _reg: &'a RegistryGuard) -> &'a [Arc<HwAttach>] {
        // SAFETY: Lists are replaced and freed only by writers, which hold the lock that `_reg`
        // proves held, so none of them runs while the slice lives.
        unsafe { self.0.load(Ordering::Acquire).as_ref() }.map_or(&[], |l| &l.tables[..])
    }

    /// How many hardware tables are attached, for a holder of [`REGISTRY`]'s lock.
    pub(crate) fn count(&self, reg: &RegistryGuard) -> usize {
        self.locked(reg).len()
    }

    /// Publishes `tables` (none if empty) and returns the old list, which the caller frees
    /// only after [`Retired::free`]. Writers are excluded by [`REGISTRY`]'s lock, which
    /// `_reg` proves held.
    fn replace(&self, _reg: &RegistryGuard, tables: KVec<Arc<HwAttach>>) -> Result<Retired> {
        let new = if tables.is_empty() {
            ptr::null_mut()
        } else {
            KBox::into_raw(KBox::new(AttachList { tables }, GFP_KERNEL_ACCOUNT)?)
        };
        Ok(Retired(self.0.swap(new, Ordering::AcqRel)))
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let list = *self.0.get_mut();
        if !list.is_null() {
            // SAFETY: The table is being freed, which KVM does only once no hypercall can use it,
            // so none reads the list; it came from `KBox::into_raw`.
            drop(unsafe { KBox::from_raw(list) });
        }
    }
}

/// A list taken out of [`Attached`], to be freed once no hypercall can read it.
#[must_use]
struct Retired(*mut AttachList);

// SAFETY: A retired list is only freed, from whichever thread; its tables are `Send`.
unsafe impl Send for Retired {}

impl Retired {
    /// Frees the list from the module's workqueue after a grace period of `vm`'s SRCU, for a
    /// caller inside that SRCU's read-side section. If the work cannot be queued, the list is
    /// leaked rather than freed under a hypercall.
    fn free_later(self, vm: &VmRef) {
        if self.0.is_null() {
            return;
        }
        // SAFETY: `tce_accel_free_retired` frees a list from `KBox::into_raw` once, and the
        // list is no longer published, so after the grace period nothing reads it.
        if unsafe { vm.defer(tce_accel_free_retired, self.0.cast()) }.is_err() {
            pr_warn!("release: out of memory; a list of attached tables is leaked\n");
        }
    }

    /// Waits for the hypercalls of `vm`, the table's VM, that may read the list, then frees it.
    fn free(self, vm: &VmRef) {
        if self.0.is_null() {
            return;
        }
        vm.synchronize();
        // SAFETY: The list is no longer published and no hypercall reads it after the
        // synchronisation; it came from `KBox::into_raw`.
        drop(unsafe { KBox::from_raw(self.0) });
    }
}

/// Frees a retired list, from the module's workqueue (see [`Retired::free_later`]).
///
/// # Safety
///
/// `list` must come from `KBox::into_raw` of an `AttachList` that nothing reads any more.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_free_retired(list: *mut c_void) {
    // SAFETY: By the function's safety requirements.
    drop(unsafe { KBox::from_raw(list.cast::<AttachList>()) });
}

/// Reads a `struct tce_accel_group` at `arg` and checks its fixed fields.
fn read_group_args(arg: usize) -> Result<uapi::GroupArgs> {
    let mut raw = [0u8; uapi::GROUP_SIZE];
    UserSlice::new(UserPtr::from_addr(arg), raw.len())
        .reader()
        .read_slice(&mut raw)?;
    let args = uapi::GroupArgs::decode(&raw);
    if args.argsz as usize != uapi::GROUP_SIZE || args.flags != 0 || args.pad != 0 {
        pr_debug!(
            "group: argsz {} flags {:#x} pad {:#x} refused\n",
            args.argsz,
            args.flags,
            args.pad
        );
        return Err(EINVAL);
    }
    Ok(args)
}

fn attach_reason(e: AttachError) -> &'static str {
    match e {
        AttachError::PageSize => "its IOMMU page is larger than the table's",
        AttachError::Offset => "it starts at another bus address",
        AttachError::Size => "it is smaller than the table's window",
    }
}

/// `TCE_ACCEL_ATTACH_GROUP`.
pub(crate) fn attach_ioctl(table: &Table, arg: usize) -> Result<isize> {
    let args = read_group_args(arg)?;
    let group = GroupRef::from_fd(args.group_fd, true).inspect_err(|e| {
        pr_debug!(
            "attach: fd {} is not a usable VFIO group ({:?})\n",
            args.group_fd,
            e
        );
    })?;
    attach(table, &group, Via::Ioctl).map(|()| 0)
}

/// Who attaches a group.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The VMM, with `TCE_ACCEL_ATTACH_GROUP`: the table must map nothing yet, and the group
    /// must not be attached already.
    Ioctl,
    /// KVM, for the KVM-VFIO device's `KVM_DEV_VFIO_FILE_SET_SPAPR_TCE`, as QEMU uses it: a
    /// group attached already is accepted again, and so is a table that maps entries (QEMU
    /// replays the mappings through VFIO itself).
    Kvm,
}

/// Attaches `group`'s hardware window that matches `table`'s.
fn attach(table: &Table, group: &GroupRef, via: Via) -> Result {
    if !group.in_v2_container() {
        pr_debug!(
            "attach: liobn {:#x}: the group is not in a VFIO sPAPR TCE v2 container\n",
            table.window().liobn()
        );
        return Err(EINVAL);
    }
    if via == Via::Kvm {
        let reg = REGISTRY.lock();
        if table
            .attached()
            .locked(&reg)
            .iter()
            .any(|a| a.hw.group_id() == group.id())
        {
            return Ok(());
        }
    }
    let window = table.window();
    let mut found = None;
    let mut reason = "the group has no hardware window (VFIO_IOMMU_SPAPR_TCE_CREATE)";
    for i in 0..GroupRef::max_windows() {
        let Some(hw) = group.window(i)? else {
            continue;
        };
        let candidate = HwAttach {
            hw,
            vm: table.vm().clone_ref(),
        };
        let fits = check_attach(window, &candidate);
        pr_debug!(
            "attach: liobn {:#x}: hardware window {}: {:#x} entries of 2^{} at entry {:#x}: {}\n",
            window.liobn(),
            i,
            candidate.size(),
            candidate.page_shift(),
            candidate.offset(),
            fits.map_or_else(attach_reason, |()| "matches")
        );
        match fits {
            Ok(()) => {
                found = Some(candidate);
                break;
            }
            Err(e) => reason = attach_reason(e),
        }
    }
    let Some(found) = found else {
        pr_info!(
            "attach: liobn {:#x}: no hardware window of the VFIO group matches: {}\n",
            window.liobn(),
            reason
        );
        return Err(EINVAL);
    };
    let mut mapped = false;
    if via == Via::Ioctl {
        window.for_each_entry(|_, tce| mapped |= tce & TCE_RW != 0);
    }
    if mapped {
        pr_info!(
            "attach: liobn {:#x} already maps entries; attach before the guest maps any\n",
            window.liobn()
        );
        return Err(EBUSY);
    }
    let found = Arc::new(found, GFP_KERNEL_ACCOUNT)?;
    let retired = {
        let reg = REGISTRY.lock();
        let table_id = found.hw.table_id();
        let busy = reg.iter().any(|e| {
            e.table()
                .attached()
                .locked(&reg)
                .iter()
                .any(|a| a.hw.table_id() == table_id)
        }) || table
            .attached()
            .locked(&reg)
            .iter()
            .any(|a| a.hw.group_id() == group.id());
        if busy {
            pr_debug!("attach: the group or its hardware window is attached already\n");
            return Err(EBUSY);
        }
        let cur = table.attached().locked(&reg);
        let mut tables = KVec::with_capacity(cur.len() + 1, GFP_KERNEL_ACCOUNT)?;
        for a in cur {
            tables.push(a.clone(), GFP_KERNEL_ACCOUNT)?;
        }
        tables.push(found, GFP_KERNEL_ACCOUNT)?;
        table.attached().replace(&reg, tables)?
    };
    retired.free(table.vm());
    Ok(())
}

/// Called by KVM, through the C glue, for `KVM_DEV_VFIO_FILE_SET_SPAPR_TCE` on a table the
/// module serves. Returns 0 or a negative errno.
///
/// # Safety
///
/// `table` must be a table KVM holds for the module (its file is held for the call), and `grp`
/// a `struct iommu_group` the KVM-VFIO device holds a reference to.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_provider_attach_group(
    table: *mut TableHandle,
    grp: *mut IommuGroup,
) -> c_long {
    // SAFETY: By the function's safety requirements the table lives for the call.
    let table = unsafe { &*table.cast::<Table>() };
    // SAFETY: By the function's safety requirements the caller holds a reference to `grp`.
    let r = unsafe { GroupRef::from_raw(grp, true) }
        .inspect_err(|e| {
            pr_info!(
                "attach: liobn {:#x}: the group is not usable ({:?})\n",
                table.window().liobn(),
                e
            )
        })
        .and_then(|group| attach(table, &group, Via::Kvm));
    match r {
        Ok(()) => 0,
        Err(e) => c_long::from(e.to_errno()),
    }
}

/// Called by KVM, through the C glue, when a group leaves the KVM-VFIO device: the hypercalls
/// stop updating its hardware window. KVM calls this inside the VM's SRCU read-side section, so
/// the old list is freed from the module's workqueue after a grace period.
///
/// # Safety
///
/// `table` must be a table KVM holds for the module, inside the VM's SRCU read-side section,
/// and `grp` a `struct iommu_group` the caller holds a reference to.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_provider_release_group(
    table: *mut TableHandle,
    grp: *mut IommuGroup,
) {
    // SAFETY: By the function's safety requirements the table lives for the call.
    let table = unsafe { &*table.cast::<Table>() };
    match detach(table, grp as usize) {
        Ok(Some(retired)) => retired.free_later(table.vm()),
        Ok(None) => {}
        Err(_) => pr_warn!(
            "release: liobn {:#x}: out of memory, the group stays attached until the table is closed\n",
            table.window().liobn()
        ),
    }
}

/// `TCE_ACCEL_DETACH_GROUP`.
pub(crate) fn detach_ioctl(table: &Table, arg: usize) -> Result<isize> {
    let args = read_group_args(arg)?;
    let group = GroupRef::from_fd(args.group_fd, false)?;
    detach(table, group.id())?.ok_or(ENOENT)?.free(table.vm());
    Ok(0)
}

/// Takes the group of identity `group` off `table`'s list: the retired list, which the caller
/// frees after a grace period of the VM's SRCU, or `None` if the group is not attached.
fn detach(table: &Table, group: usize) -> Result<Option<Retired>> {
    let reg = REGISTRY.lock();
    let cur = table.attached().locked(&reg);
    if !cur.iter().any(|a| a.hw.group_id() == group) {
        return Ok(None);
    }
    let mut tables = KVec::with_capacity(cur.len(), GFP_KERNEL_ACCOUNT)?;
    for a in cur.iter().filter(|a| a.hw.group_id() != group) {
        tables.push(a.clone(), GFP_KERNEL_ACCOUNT)?;
    }
    table.attached().replace(&reg, tables).map(Some)
}

/// `TCE_ACCEL_HW_ENTRY`: reads a hardware entry back, for tests and diagnosis.
pub(crate) fn hw_entry_ioctl(table: &Table, arg: usize) -> Result<isize> {
    if !glue::capable_sys_admin() {
        return Err(EPERM);
    }
    let mut raw = [0u8; uapi::HW_ENTRY_SIZE];
    let (mut reader, mut writer) =
        UserSlice::new(UserPtr::from_addr(arg), raw.len()).reader_writer();
    reader.read_slice(&mut raw)?;
    let mut req = uapi::HwEntryArgs::decode(&raw);
    if req.argsz as usize != uapi::HW_ENTRY_SIZE {
        return Err(EINVAL);
    }
    let group = GroupRef::from_fd(req.group_fd, false)?;
    // Held for the read: a concurrent detach cannot free the hardware table under it.
    let hw = {
        let reg = REGISTRY.lock();
        table
            .attached()
            .locked(&reg)
            .iter()
            .find(|a| a.hw.group_id() == group.id())
            .cloned()
            .ok_or(ENOENT)?
    };
    let shift = hw.hw.page_shift();
    if req.ioba & ((1u64 << shift) - 1) != 0 {
        return Err(EINVAL);
    }
    let (tce, ua) = hw.hw.read(req.ioba >> shift)?;
    req.tce = tce;
    req.ua = ua;
    req.page_shift = shift;
    writer.write_slice(&req.encode())?;
    Ok(0)
}
