// SPDX-License-Identifier: GPL-2.0
//! What the tests do to the sample VMM beyond what a VMM needs: VFIO groups on its PHB, extra
//! `tce_accel` tables for bad input, KVM tables without a window, and KVM's own VFIO device
//! (the stock C path's way of attaching a group, `virt/kvm/vfio.c`).

use std::os::fd::{
    AsFd,
    AsRawFd,
    BorrowedFd,
    OwnedFd, //
};
use std::sync::Arc;

use tce_ddw_model::PhbDesc;
use tce_engine::window::WindowParams;
use tce_shim::vfio::Container;
use tce_shim::{
    HwWindowInfo,
    KernelTable,
    KernelTables, //
};
use tce_sys::kvm;
use tce_uapi::kvm::{
    VfioSpaprTce,
    KVM_DEV_TYPE_VFIO,
    KVM_DEV_VFIO_FILE,
    KVM_DEV_VFIO_FILE_ADD,
    KVM_DEV_VFIO_FILE_DEL,
    KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE, //
};
use tce_vmm::error::{
    ioctl,
    Error as VmmError,
    Result, //
};
use tce_vmm::paths::PathKind;
use tce_vmm::table::{
    MappedTable,
    Owner, //
};
use tce_vmm::vmm::{
    Vmm,
    BUID,
    LIOBN_BASE, //
};

/// The tests' operations on a [`Vmm`].
pub trait VmmTestExt {
    /// Gives the PHB the VFIO groups of `container`: every DMA window the guest creates from
    /// now on gets a hardware window of the container, with a table of `levels` levels, and
    /// the groups attached to its table.
    fn give_vfio(&self, container: Arc<Container>, levels: u32) -> Result<()>;

    /// The hardware window of the accel window `liobn`, if it has one.
    fn hw_window(&self, liobn: u64) -> Option<HwWindowInfo>;

    /// Creates the VM's KVM-VFIO device, for tests of how KVM attaches groups to tables.
    fn create_vfio_device(&self) -> Result<KvmVfio>;

    /// A set of `tce_accel` tables of the VM outside the shim and its PHB, for tests of bad
    /// input; its tables close when it is dropped.
    fn scratch_tables(&self) -> Result<KernelTables>;

    /// The `tce_accel` table of the active window `liobn`.
    fn accel_table(&self, liobn: u64) -> Result<Arc<KernelTable>>;

    /// Creates a table with `KVM_CREATE_SPAPR_TCE_64` and hands its descriptor over, without a
    /// window: for tests that only create and close tables.
    fn create_kvm_table(&self, params: &WindowParams) -> Result<OwnedFd>;

    /// Adds a window backed by one of KVM's own tables with VFIO group `group`'s matching
    /// hardware table attached the stock way (`KVM_DEV_VFIO_FILE_ADD`, then
    /// `KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE`), so that KVM's C code updates the hardware table;
    /// returns the KVM-VFIO device, whose `del_group` detaches it again.
    fn add_kvm_vfio_window(&self, params: WindowParams, group: BorrowedFd<'_>) -> Result<KvmVfio>;
}

impl VmmTestExt for Vmm {
    fn give_vfio(&self, container: Arc<Container>, levels: u32) -> Result<()> {
        let mut shim = self.shim().ok_or(VmmError::NoShim)?;
        let desc = PhbDesc::simulator_default(BUID, LIOBN_BASE);
        let tables = shim.tables_mut();
        tables.set_levels(levels);
        tables.add_phb(&desc, container)?;
        Ok(())
    }

    fn hw_window(&self, liobn: u64) -> Option<HwWindowInfo> {
        self.shim()?.tables().hw_window(liobn)
    }

    fn create_vfio_device(&self) -> Result<KvmVfio> {
        let fd = kvm::create_device(self.vm().fd(), KVM_DEV_TYPE_VFIO)
            .map_err(ioctl("KVM_CREATE_DEVICE", "KVM_DEV_TYPE_VFIO"))?;
        Ok(KvmVfio { fd })
    }

    fn scratch_tables(&self) -> Result<KernelTables> {
        Ok(KernelTables::open(self.vm().dup_fd()?)?)
    }

    fn accel_table(&self, liobn: u64) -> Result<Arc<KernelTable>> {
        let shim = self.shim().ok_or(VmmError::NoShim)?;
        let liobn = u32::try_from(liobn).map_err(|_| VmmError::WindowGone { liobn })?;
        Ok(shim.table(liobn)?)
    }

    fn create_kvm_table(&self, params: &WindowParams) -> Result<OwnedFd> {
        self.vm().create_spapr_tce_64(params)
    }

    fn add_kvm_vfio_window(&self, params: WindowParams, group: BorrowedFd<'_>) -> Result<KvmVfio> {
        let fd = self.vm().create_spapr_tce_64(&params)?;
        let dev = self.create_vfio_device()?;
        dev.add_group(group)?;
        if let Err(e) = dev.set_spapr_tce(group, fd.as_fd()) {
            let _ = dev.del_group(group);
            return Err(e);
        }
        let table = MappedTable::new(Owner::Kvm(fd), params)?;
        self.paths.add_kernel(PathKind::Kvm, table)?;
        Ok(dev)
    }
}

/// The KVM-VFIO device of a VM: VFIO groups known to KVM, and their hardware tables attached to
/// KVM's own TCE tables (the stock C path's way, `virt/kvm/vfio.c`).
pub struct KvmVfio {
    fd: OwnedFd,
}

impl KvmVfio {
    /// Sets attribute `attr` (named `name`) of the device's `KVM_DEV_VFIO_FILE` group to
    /// `value`.
    fn set<T>(&self, attr: u64, name: &'static str, value: &T) -> Result<()> {
        kvm::set_device_attr(self.fd.as_fd(), KVM_DEV_VFIO_FILE, attr, value)
            .map_err(ioctl("KVM_SET_DEVICE_ATTR", name))
    }

    /// Adds VFIO group file `group` (`KVM_DEV_VFIO_FILE_ADD`).
    pub fn add_group(&self, group: BorrowedFd<'_>) -> Result<()> {
        let fd: i32 = group.as_raw_fd();
        self.set(KVM_DEV_VFIO_FILE_ADD, "KVM_DEV_VFIO_FILE_ADD", &fd)
    }

    /// Removes VFIO group file `group` (`KVM_DEV_VFIO_FILE_DEL`); KVM detaches its hardware
    /// tables from KVM's TCE tables.
    pub fn del_group(&self, group: BorrowedFd<'_>) -> Result<()> {
        let fd: i32 = group.as_raw_fd();
        self.set(KVM_DEV_VFIO_FILE_DEL, "KVM_DEV_VFIO_FILE_DEL", &fd)
    }

    /// Attaches the hardware table of `group` that matches KVM TCE table `table`
    /// (`KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE`).
    pub fn set_spapr_tce(&self, group: BorrowedFd<'_>, table: BorrowedFd<'_>) -> Result<()> {
        let arg = VfioSpaprTce {
            groupfd: group.as_raw_fd(),
            tablefd: table.as_raw_fd(),
        };
        self.set(
            KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE,
            "KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE",
            &arg,
        )
    }
}
