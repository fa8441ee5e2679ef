// SPDX-License-Identifier: GPL-2.0
//! The ioctls of VFIO containers and groups that the sPAPR TCE IOMMU uses.

use std::os::fd::{
    AsRawFd,
    BorrowedFd, //
};

use tce_uapi::vfio::{
    VfioDmaMap,
    VfioDmaUnmap,
    VfioGroupStatus,
    VfioSpaprRegisterMemory,
    VfioSpaprTceCreate,
    VfioSpaprTceInfo,
    VfioSpaprTceRemove,
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

use crate::ioctl::{
    int_ioctl,
    ptr_ioctl,
    SysResult, //
};

/// `VFIO_GET_API_VERSION` on a VFIO container.
pub fn api_version(container: BorrowedFd<'_>) -> SysResult<i32> {
    // SAFETY: VFIO_GET_API_VERSION takes no argument and returns the version.
    unsafe { int_ioctl(container, VFIO_GET_API_VERSION, 0) }
}

/// `VFIO_CHECK_EXTENSION` on a VFIO container: a positive value if `extension` is offered.
pub fn check_extension(container: BorrowedFd<'_>, extension: u32) -> SysResult<i32> {
    // SAFETY: VFIO_CHECK_EXTENSION takes the extension as an integer argument.
    unsafe { int_ioctl(container, VFIO_CHECK_EXTENSION, extension as usize) }
}

/// `VFIO_SET_IOMMU` on a VFIO container that holds at least one group.
pub fn set_iommu(container: BorrowedFd<'_>, iommu: u32) -> SysResult<()> {
    // SAFETY: VFIO_SET_IOMMU takes the IOMMU type as an integer argument.
    unsafe { int_ioctl(container, VFIO_SET_IOMMU, iommu as usize)? };
    Ok(())
}

/// `VFIO_GROUP_GET_STATUS` on a VFIO group: its `VFIO_GROUP_FLAGS_*`.
pub fn group_status(group: BorrowedFd<'_>) -> SysResult<u32> {
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
pub fn group_set_container(group: BorrowedFd<'_>, container: BorrowedFd<'_>) -> SysResult<()> {
    let mut fd: i32 = container.as_raw_fd();
    // SAFETY: VFIO_GROUP_SET_CONTAINER reads an `__s32` file descriptor through its pointer;
    // `container` stays open during the call.
    unsafe { ptr_ioctl(group, VFIO_GROUP_SET_CONTAINER, &mut fd)? };
    Ok(())
}

/// `VFIO_IOMMU_SPAPR_TCE_GET_INFO` on a VFIO container with the sPAPR IOMMU set.
pub fn spapr_info(container: BorrowedFd<'_>) -> SysResult<VfioSpaprTceInfo> {
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
pub fn spapr_memory(
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
pub fn spapr_create(
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
pub fn spapr_remove(container: BorrowedFd<'_>, start_addr: u64) -> SysResult<()> {
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
pub fn enable(container: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: VFIO_IOMMU_ENABLE takes no argument.
    unsafe { int_ioctl(container, VFIO_IOMMU_ENABLE, 0)? };
    Ok(())
}

/// `VFIO_IOMMU_MAP_DMA` on a VFIO container: maps `size` bytes at user address `vaddr` for
/// reads and writes at bus address `iova`.
pub fn map_dma(container: BorrowedFd<'_>, vaddr: u64, iova: u64, size: u64) -> SysResult<()> {
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
pub fn unmap_dma(container: BorrowedFd<'_>, iova: u64, size: u64) -> SysResult<()> {
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
