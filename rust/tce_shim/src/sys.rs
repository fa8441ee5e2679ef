// SPDX-License-Identifier: GPL-2.0
//! Every system call of the crate: the tce_accel, KVM and VFIO ioctls, table mappings and pidfds.
//!
//! With [`crate::ioctl`] (the argument adapters), this is the only module with `unsafe` code.
//! Each function returns the raw result; the callers turn failures into [`crate::Error`].

#![allow(unsafe_code)]

use std::os::fd::{
    AsFd,
    AsRawFd,
    BorrowedFd,
    OwnedFd, //
};
use std::ptr::NonNull;
use std::sync::atomic::{
    AtomicU64,
    Ordering, //
};

use rustix::io::Errno;
use rustix::mm::{
    MapFlags,
    ProtFlags, //
};
use rustix::process::{
    Pid,
    PidfdFlags,
    PidfdGetfdFlags, //
};

use crate::ioctl::{
    int_ioctl,
    owned_fd,
    ptr_ioctl,
    SysResult, //
};
use crate::uapi::{
    CreateTableArgs,
    GroupArgs,
    HwEntryArgs,
    RawWindow,
    TableInfoArgs,
    TablePagesArgs,
    VfioDmaMap,
    VfioDmaUnmap,
    VfioGroupStatus,
    VfioSpaprRegisterMemory,
    VfioSpaprTceCreate,
    VfioSpaprTceInfo,
    VfioSpaprTceRemove,
    GROUP_SIZE,
    HW_ENTRY_SIZE,
    KVM_CHECK_EXTENSION,
    KVM_CREATE_SPAPR_TCE_64,
    KVM_CREATE_VM,
    TABLE_PAGES_SIZE,
    TCE_ACCEL_ATTACH_GROUP,
    TCE_ACCEL_CREATE_TABLE,
    TCE_ACCEL_DETACH_GROUP,
    TCE_ACCEL_HW_ENTRY,
    TCE_ACCEL_TABLE_INFO,
    TCE_ACCEL_TABLE_PAGES,
    VFIO_CHECK_EXTENSION,
    VFIO_GET_API_VERSION,
    VFIO_GROUP_GET_STATUS,
    VFIO_GROUP_SET_CONTAINER,
    VFIO_IOMMU_ENABLE,
    VFIO_IOMMU_MAP_DMA,
    VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
    VFIO_IOMMU_SPAPR_TCE_CREATE,
    VFIO_IOMMU_SPAPR_TCE_GET_INFO,
    VFIO_IOMMU_SPAPR_TCE_REMOVE,
    VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY,
    VFIO_IOMMU_UNMAP_DMA,
    VFIO_SET_IOMMU, //
};

/// `TCE_ACCEL_CREATE_TABLE` on `/dev/tce_accel`: returns the new table's file descriptor.
pub fn create_table(
    dev: BorrowedFd<'_>,
    vm: BorrowedFd<'_>,
    window: RawWindow,
) -> SysResult<OwnedFd> {
    let mut args = CreateTableArgs::new(vm.as_raw_fd(), window);
    // SAFETY: TCE_ACCEL_CREATE_TABLE takes a `struct tce_accel_create_table`, which
    // `CreateTableArgs` is (its layout is checked in `uapi`); `vm` stays open during the call,
    // and on success it returns a new table descriptor.
    unsafe { owned_fd(ptr_ioctl(dev, TCE_ACCEL_CREATE_TABLE, &mut args)?) }
}

/// `TCE_ACCEL_TABLE_INFO` on a table file descriptor.
pub fn table_info(table: BorrowedFd<'_>) -> SysResult<TableInfoArgs> {
    let mut info = TableInfoArgs::default();
    // SAFETY: TCE_ACCEL_TABLE_INFO fills a `struct tce_accel_table_info`, which `TableInfoArgs`
    // is; every bit pattern is a valid `TableInfoArgs`.
    unsafe { ptr_ioctl(table, TCE_ACCEL_TABLE_INFO, &mut info)? };
    Ok(info)
}

/// `TCE_ACCEL_TABLE_PAGES` on a table file descriptor: stores the numbers of the existing
/// pages at or after `start` into `out` and returns how many were stored.
pub fn table_pages(table: BorrowedFd<'_>, start: u64, out: &mut [u64]) -> SysResult<usize> {
    let mut args = TablePagesArgs {
        argsz: TABLE_PAGES_SIZE as u32,
        flags: 0,
        start,
        count: out.len() as u64,
        pages: out.as_mut_ptr() as u64,
    };
    // SAFETY: TCE_ACCEL_TABLE_PAGES takes a `struct tce_accel_table_pages`, which
    // `TablePagesArgs` is, and writes at most `count` u64 values at `pages`: `out` is an
    // exclusively borrowed array of exactly `count` u64 values that lives across the call.
    unsafe { ptr_ioctl(table, TCE_ACCEL_TABLE_PAGES, &mut args)? };
    // The kernel never stores more than it was given room for; a larger count is refused.
    usize::try_from(args.count)
        .ok()
        .filter(|&n| n <= out.len())
        .ok_or(Errno::RANGE)
}

/// `TCE_ACCEL_ATTACH_GROUP` (`attach`) or `TCE_ACCEL_DETACH_GROUP` on a table file descriptor.
pub fn accel_group(table: BorrowedFd<'_>, group: BorrowedFd<'_>, attach: bool) -> SysResult<()> {
    let mut args = GroupArgs {
        argsz: GROUP_SIZE as u32,
        flags: 0,
        group_fd: group.as_raw_fd(),
        pad: 0,
    };
    let opcode = if attach {
        TCE_ACCEL_ATTACH_GROUP
    } else {
        TCE_ACCEL_DETACH_GROUP
    };
    // SAFETY: both ioctls take a `struct tce_accel_group`, which `GroupArgs` is (its layout is
    // checked in `uapi`); `group` stays open during the call.
    unsafe { ptr_ioctl(table, opcode, &mut args)? };
    Ok(())
}

/// `TCE_ACCEL_HW_ENTRY` on a table file descriptor: the hardware entry at bus address `ioba`
/// of the attached VFIO group `group`.
pub fn accel_hw_entry(
    table: BorrowedFd<'_>,
    group: BorrowedFd<'_>,
    ioba: u64,
) -> SysResult<HwEntryArgs> {
    let mut args = HwEntryArgs {
        argsz: HW_ENTRY_SIZE as u32,
        group_fd: group.as_raw_fd(),
        ioba,
        ..HwEntryArgs::default()
    };
    // SAFETY: TCE_ACCEL_HW_ENTRY reads and writes a `struct tce_accel_hw_entry`, which
    // `HwEntryArgs` is; every bit pattern is a valid `HwEntryArgs`.
    unsafe { ptr_ioctl(table, TCE_ACCEL_HW_ENTRY, &mut args)? };
    Ok(args)
}

/// `VFIO_GET_API_VERSION` on a VFIO container.
pub fn vfio_api_version(container: BorrowedFd<'_>) -> SysResult<i32> {
    // SAFETY: VFIO_GET_API_VERSION takes no argument and returns the version.
    unsafe { int_ioctl(container, VFIO_GET_API_VERSION, 0) }
}

/// `VFIO_CHECK_EXTENSION` on a VFIO container: a positive value if `extension` is offered.
pub fn vfio_check_extension(container: BorrowedFd<'_>, extension: u32) -> SysResult<i32> {
    // SAFETY: VFIO_CHECK_EXTENSION takes the extension as an integer argument.
    unsafe { int_ioctl(container, VFIO_CHECK_EXTENSION, extension as usize) }
}

/// `VFIO_SET_IOMMU` on a VFIO container that holds at least one group.
pub fn vfio_set_iommu(container: BorrowedFd<'_>, iommu: u32) -> SysResult<()> {
    // SAFETY: VFIO_SET_IOMMU takes the IOMMU type as an integer argument.
    unsafe { int_ioctl(container, VFIO_SET_IOMMU, iommu as usize)? };
    Ok(())
}

/// `VFIO_GROUP_GET_STATUS` on a VFIO group: its `VFIO_GROUP_FLAGS_*`.
pub fn vfio_group_status(group: BorrowedFd<'_>) -> SysResult<u32> {
    let mut status = VfioGroupStatus {
        argsz: std::mem::size_of::<VfioGroupStatus>() as u32,
        flags: 0,
    };
    // SAFETY: VFIO_GROUP_GET_STATUS reads and writes a `struct vfio_group_status`, which
    // `VfioGroupStatus` is.
    unsafe { ptr_ioctl(group, VFIO_GROUP_GET_STATUS, &mut status)? };
    Ok(status.flags)
}

/// `VFIO_GROUP_SET_CONTAINER` on a VFIO group: puts it in `container`.
pub fn vfio_group_set_container(group: BorrowedFd<'_>, container: BorrowedFd<'_>) -> SysResult<()> {
    let mut fd: i32 = container.as_raw_fd();
    // SAFETY: VFIO_GROUP_SET_CONTAINER reads an `__s32` file descriptor through its pointer;
    // `container` stays open during the call.
    unsafe { ptr_ioctl(group, VFIO_GROUP_SET_CONTAINER, &mut fd)? };
    Ok(())
}

/// `VFIO_IOMMU_SPAPR_TCE_GET_INFO` on a VFIO container with the sPAPR IOMMU set.
pub fn vfio_spapr_info(container: BorrowedFd<'_>) -> SysResult<VfioSpaprTceInfo> {
    let mut info = VfioSpaprTceInfo {
        argsz: std::mem::size_of::<VfioSpaprTceInfo>() as u32,
        ..VfioSpaprTceInfo::default()
    };
    // SAFETY: VFIO_IOMMU_SPAPR_TCE_GET_INFO fills a `struct vfio_iommu_spapr_tce_info`, which
    // `VfioSpaprTceInfo` is, up to `argsz` bytes; every bit pattern is valid.
    unsafe { ptr_ioctl(container, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &mut info)? };
    Ok(info)
}

/// `VFIO_IOMMU_SPAPR_REGISTER_MEMORY` (`register`) or `_UNREGISTER_MEMORY` on a VFIO
/// container: pins (or unpins) `size` bytes of this process's memory at `vaddr` for DMA.
pub fn vfio_spapr_memory(
    container: BorrowedFd<'_>,
    vaddr: u64,
    size: u64,
    register: bool,
) -> SysResult<()> {
    let mut args = VfioSpaprRegisterMemory {
        argsz: std::mem::size_of::<VfioSpaprRegisterMemory>() as u32,
        flags: 0,
        vaddr,
        size,
    };
    let opcode = if register {
        VFIO_IOMMU_SPAPR_REGISTER_MEMORY
    } else {
        VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY
    };
    // SAFETY: both ioctls read a `struct vfio_iommu_spapr_register_memory`, which
    // `VfioSpaprRegisterMemory` is. The kernel never accesses the memory at `vaddr` through
    // this call; it pins the pages there (or lets them go), which changes no Rust object.
    unsafe { ptr_ioctl(container, opcode, &mut args)? };
    Ok(())
}

/// `VFIO_IOMMU_SPAPR_TCE_CREATE` on a VFIO container: creates a hardware DMA window and
/// returns its bus address.
pub fn vfio_spapr_create(
    container: BorrowedFd<'_>,
    page_shift: u32,
    window_size: u64,
    levels: u32,
) -> SysResult<u64> {
    let mut args = VfioSpaprTceCreate {
        argsz: std::mem::size_of::<VfioSpaprTceCreate>() as u32,
        page_shift,
        window_size,
        levels,
        ..VfioSpaprTceCreate::default()
    };
    // SAFETY: VFIO_IOMMU_SPAPR_TCE_CREATE reads and writes a
    // `struct vfio_iommu_spapr_tce_create`, which `VfioSpaprTceCreate` is.
    unsafe { ptr_ioctl(container, VFIO_IOMMU_SPAPR_TCE_CREATE, &mut args)? };
    Ok(args.start_addr)
}

/// `VFIO_IOMMU_SPAPR_TCE_REMOVE` on a VFIO container: removes the window at `start_addr`.
pub fn vfio_spapr_remove(container: BorrowedFd<'_>, start_addr: u64) -> SysResult<()> {
    let mut args = VfioSpaprTceRemove {
        argsz: std::mem::size_of::<VfioSpaprTceRemove>() as u32,
        flags: 0,
        start_addr,
    };
    // SAFETY: VFIO_IOMMU_SPAPR_TCE_REMOVE reads a `struct vfio_iommu_spapr_tce_remove`, which
    // `VfioSpaprTceRemove` is.
    unsafe { ptr_ioctl(container, VFIO_IOMMU_SPAPR_TCE_REMOVE, &mut args)? };
    Ok(())
}

/// `VFIO_IOMMU_ENABLE` on a v1 VFIO container.
pub fn vfio_enable(container: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: VFIO_IOMMU_ENABLE takes no argument.
    unsafe { int_ioctl(container, VFIO_IOMMU_ENABLE, 0)? };
    Ok(())
}

/// `VFIO_IOMMU_MAP_DMA` on a VFIO container: maps `size` bytes at user address `vaddr` for
/// reads and writes at bus address `iova`.
pub fn vfio_map_dma(container: BorrowedFd<'_>, vaddr: u64, iova: u64, size: u64) -> SysResult<()> {
    let mut args = VfioDmaMap {
        argsz: std::mem::size_of::<VfioDmaMap>() as u32,
        flags: 1 | 2,
        vaddr,
        iova,
        size,
    };
    // SAFETY: VFIO_IOMMU_MAP_DMA reads a `struct vfio_iommu_type1_dma_map`, which `VfioDmaMap`
    // is; the memory it names is the caller's to offer (VFIO checks its preregistration).
    unsafe { ptr_ioctl(container, VFIO_IOMMU_MAP_DMA, &mut args)? };
    Ok(())
}

/// `VFIO_IOMMU_UNMAP_DMA` on a VFIO container: clears `size` bytes of bus addresses at `iova`.
pub fn vfio_unmap_dma(container: BorrowedFd<'_>, iova: u64, size: u64) -> SysResult<()> {
    let mut args = VfioDmaUnmap {
        argsz: std::mem::size_of::<VfioDmaUnmap>() as u32,
        flags: 0,
        iova,
        size,
    };
    // SAFETY: VFIO_IOMMU_UNMAP_DMA reads (and may write back) a
    // `struct vfio_iommu_type1_dma_unmap`, which `VfioDmaUnmap` is.
    unsafe { ptr_ioctl(container, VFIO_IOMMU_UNMAP_DMA, &mut args)? };
    Ok(())
}

/// `KVM_CREATE_VM` on `/dev/kvm`, with a machine type (0 is the architecture's default).
pub fn kvm_create_vm(kvm: BorrowedFd<'_>, machine_type: u32) -> SysResult<OwnedFd> {
    // SAFETY: KVM_CREATE_VM takes the machine type as an integer argument and returns a new VM
    // file descriptor; no user memory is involved.
    unsafe { owned_fd(int_ioctl(kvm, KVM_CREATE_VM, machine_type as usize)?) }
}

/// `KVM_CHECK_EXTENSION` on `/dev/kvm` or a VM: 0 if capability `cap` is missing, else a
/// positive value whose meaning depends on the capability.
pub fn kvm_check_extension(fd: BorrowedFd<'_>, cap: u32) -> SysResult<i32> {
    // SAFETY: KVM_CHECK_EXTENSION takes the capability as an integer argument and returns an
    // integer; no user memory is involved.
    let n = unsafe { int_ioctl(fd, KVM_CHECK_EXTENSION, cap as usize)? };
    Ok(n)
}

/// `KVM_CREATE_SPAPR_TCE_64` on a VM: one of KVM's own TCE tables (or the tce_accel module's,
/// where the module is loaded with `takeover=1`); returns the table's file descriptor.
pub fn kvm_create_spapr_tce_64(vm: BorrowedFd<'_>, window: RawWindow) -> SysResult<OwnedFd> {
    let mut args = window;
    // SAFETY: KVM_CREATE_SPAPR_TCE_64 reads a `struct kvm_create_spapr_tce_64`, whose layout
    // `RawWindow` has (checked in `uapi`), and on success returns a new table descriptor.
    unsafe { owned_fd(ptr_ioctl(vm, KVM_CREATE_SPAPR_TCE_64, &mut args)?) }
}

/// `pidfd_open(pid, 0)`; `None` for a value that is not a process ID.
pub fn pidfd_open(pid: i32) -> Option<SysResult<OwnedFd>> {
    // `Pid::from_raw` panics on a negative value, so refuse those first.
    if pid <= 0 {
        return None;
    }
    let pid = Pid::from_raw(pid)?;
    Some(rustix::process::pidfd_open(pid, PidfdFlags::empty()))
}

/// `pidfd_getfd(pidfd, fd, 0)`: a duplicate of file descriptor `fd` of the process.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: i32) -> SysResult<OwnedFd> {
    rustix::process::pidfd_getfd(pidfd, fd, PidfdGetfdFlags::empty())
}

/// The host page size in bytes.
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// A shared, read-write mapping of a table, accessed one 64-bit entry at a time.
///
/// The guest's hypercalls and other mappings of the table may change entries at any time, so
/// every access is atomic. The mapping is removed when the value is dropped.
pub struct Mapping {
    base: NonNull<AtomicU64>,
    len: usize,
    entries: u64,
}

// SAFETY: the mapping is plain shared memory that stays mapped until `drop`; it is only ever
// accessed through atomic operations, so sharing and sending it between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: as above: `&Mapping` only allows atomic loads and stores.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `table` shared and read-write; `entries` 64-bit entries are accessible
    /// and must fit in `len`.
    pub fn new(table: BorrowedFd<'_>, len: usize, entries: u64) -> SysResult<Mapping> {
        let needed = entries.checked_mul(8).ok_or(Errno::INVAL)?;
        if len == 0 || needed > len as u64 {
            return Err(Errno::INVAL);
        }
        // SAFETY: a new mapping at an address the kernel picks cannot overlap any existing Rust
        // object; the table's file supports shared read-write mappings of any length.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                table.as_fd(),
                0,
            )?
        };
        let base = NonNull::new(ptr.cast::<AtomicU64>()).ok_or(Errno::NOMEM)?;
        Ok(Mapping { base, len, entries })
    }

    /// Returns a reference to entry `i`, or `None` past the accessible entries.
    fn entry(&self, i: u64) -> Option<&AtomicU64> {
        if i >= self.entries {
            return None;
        }
        // SAFETY: `i < entries` and `entries * 8 <= len`, so the entry lies inside the mapping,
        // which is page-aligned and hence 8-byte aligned; the mapping lives as long as `self`.
        // Its pages are memory the kernel hands out zeroed, where every bit pattern is a valid
        // `u64`, and they are only accessed atomically.
        Some(unsafe { &*self.base.as_ptr().add(i as usize) })
    }

    /// Reads entry `i`; `None` past the accessible entries.
    pub fn load(&self, i: u64) -> Option<u64> {
        self.entry(i).map(|e| e.load(Ordering::Acquire))
    }

    /// Writes entry `i`; `false` past the accessible entries.
    pub fn store(&self, i: u64, value: u64) -> bool {
        self.entry(i)
            .map(|e| e.store(value, Ordering::Release))
            .is_some()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly what mmap returned and was given, and no reference
        // into the mapping outlives `self` (they all borrow it).
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}
