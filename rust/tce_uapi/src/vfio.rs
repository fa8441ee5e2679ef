// SPDX-License-Identifier: GPL-2.0

//! VFIO's sPAPR TCE API (`include/uapi/linux/vfio.h`): every VFIO ioctl is a plain
//! `_IO(';', 100 + n)` number whose argument is a pointer or an integer, as the header documents
//! for each.

use rustix::ioctl::{
    opcode,
    Opcode, //
};

/// The ioctl type of VFIO (`VFIO_TYPE`, `';'`).
pub const VFIO_TYPE: u8 = b';';

/// The first VFIO ioctl number (`VFIO_BASE`).
const VFIO_BASE: u8 = 100;

/// `VFIO_API_VERSION`, which `VFIO_GET_API_VERSION` returns.
pub const VFIO_API_VERSION: i32 = 0;

/// `VFIO_SPAPR_TCE_v2_IOMMU`: the sPAPR TCE IOMMU with dynamic windows and preregistration.
pub const VFIO_SPAPR_TCE_V2_IOMMU: u32 = 7;

/// `VFIO_SPAPR_TCE_IOMMU`: the first sPAPR TCE IOMMU, which pins each page it maps; its groups'
/// tables may not be attached to a guest's window.
pub const VFIO_SPAPR_TCE_IOMMU: u32 = 2;

/// `VFIO_GROUP_FLAGS_VIABLE`: every device of the group is bound to a VFIO driver (or none).
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1 << 0;

/// `VFIO_GROUP_FLAGS_CONTAINER_SET`: the group is in a container.
pub const VFIO_GROUP_FLAGS_CONTAINER_SET: u32 = 1 << 1;

/// `VFIO_IOMMU_SPAPR_INFO_DDW`: the IOMMU supports dynamic DMA windows.
pub const VFIO_IOMMU_SPAPR_INFO_DDW: u32 = 1 << 0;

/// `struct vfio_group_status`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfioGroupStatus {
    /// `sizeof(struct vfio_group_status)`.
    pub argsz: u32,
    /// Out: `VFIO_GROUP_FLAGS_*`.
    pub flags: u32,
}

/// `struct vfio_iommu_spapr_tce_ddw_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfioSpaprTceDdwInfo {
    /// A bitmap of the supported IOMMU page sizes (bit n: 2^n bytes).
    pub pgsizes: u64,
    /// How many dynamic windows the platform supports.
    pub max_dynamic_windows_supported: u32,
    /// The most levels a window's table may have.
    pub levels: u32,
}

/// `struct vfio_iommu_spapr_tce_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfioSpaprTceInfo {
    /// `sizeof(struct vfio_iommu_spapr_tce_info)`.
    pub argsz: u32,
    /// Out: `VFIO_IOMMU_SPAPR_INFO_DDW`.
    pub flags: u32,
    /// Out: the 32-bit window's start (bytes).
    pub dma32_window_start: u32,
    /// Out: the 32-bit window's size (bytes).
    pub dma32_window_size: u32,
    /// Out: what dynamic windows the platform supports.
    pub ddw: VfioSpaprTceDdwInfo,
}

/// `struct vfio_iommu_spapr_register_memory`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfioSpaprRegisterMemory {
    /// `sizeof(struct vfio_iommu_spapr_register_memory)`.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// The process virtual address of the memory.
    pub vaddr: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// `struct vfio_iommu_spapr_tce_create`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfioSpaprTceCreate {
    /// `sizeof(struct vfio_iommu_spapr_tce_create)`.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// In: the IOMMU page shift.
    pub page_shift: u32,
    /// Reserved, 0.
    pub resv1: u32,
    /// In: the window's size in bytes (a power of two).
    pub window_size: u64,
    /// In: the levels of the hardware table.
    pub levels: u32,
    /// Reserved, 0.
    pub resv2: u32,
    /// Out: the window's bus address.
    pub start_addr: u64,
}

/// `struct vfio_iommu_spapr_tce_remove`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfioSpaprTceRemove {
    /// `sizeof(struct vfio_iommu_spapr_tce_remove)`.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// In: the window's bus address.
    pub start_addr: u64,
}

/// `struct vfio_iommu_type1_dma_map`, the argument of `VFIO_IOMMU_MAP_DMA`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfioDmaMap {
    /// `sizeof(struct vfio_iommu_type1_dma_map)`.
    pub argsz: u32,
    /// `VFIO_DMA_MAP_FLAG_READ` (1) and `VFIO_DMA_MAP_FLAG_WRITE` (2).
    pub flags: u32,
    /// The user address of the memory.
    pub vaddr: u64,
    /// The first bus address.
    pub iova: u64,
    /// How many bytes to map.
    pub size: u64,
}

/// `struct vfio_iommu_type1_dma_unmap`, the argument of `VFIO_IOMMU_UNMAP_DMA`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfioDmaUnmap {
    /// `sizeof(struct vfio_iommu_type1_dma_unmap)`.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// The first bus address to clear.
    pub iova: u64,
    /// How many bytes to clear.
    pub size: u64,
}

const _: () = assert!(
    core::mem::size_of::<VfioDmaMap>() == 32
        && core::mem::size_of::<VfioDmaUnmap>() == 24
        && core::mem::size_of::<VfioGroupStatus>() == 8
        && core::mem::size_of::<VfioSpaprTceInfo>() == 32
        && core::mem::size_of::<VfioSpaprRegisterMemory>() == 24
        && core::mem::size_of::<VfioSpaprTceCreate>() == 40
        && core::mem::size_of::<VfioSpaprTceRemove>() == 16
);

/// `VFIO_GET_API_VERSION`, on the container: `_IO(';', 100)`.
pub const VFIO_GET_API_VERSION: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE);
/// `VFIO_CHECK_EXTENSION`, on the container: `_IO(';', 101)`; the argument is the extension.
pub const VFIO_CHECK_EXTENSION: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 1);
/// `VFIO_SET_IOMMU`, on the container: `_IO(';', 102)`; the argument is the IOMMU type.
pub const VFIO_SET_IOMMU: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 2);
/// `VFIO_GROUP_GET_STATUS`, on a group: `_IO(';', 103)`, `struct vfio_group_status *`.
pub const VFIO_GROUP_GET_STATUS: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 3);
/// `VFIO_GROUP_SET_CONTAINER`, on a group: `_IO(';', 104)`, `__s32 *` (the container fd).
pub const VFIO_GROUP_SET_CONTAINER: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 4);
/// `VFIO_GROUP_UNSET_CONTAINER`, on a group: `_IO(';', 105)`.
pub const VFIO_GROUP_UNSET_CONTAINER: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 5);
/// `VFIO_IOMMU_SPAPR_TCE_GET_INFO`, on the container: `_IO(';', 112)`.
pub const VFIO_IOMMU_SPAPR_TCE_GET_INFO: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 12);
/// `VFIO_IOMMU_MAP_DMA`, on the container: `_IO(';', 113)`.
pub const VFIO_IOMMU_MAP_DMA: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 13);
/// `VFIO_IOMMU_UNMAP_DMA`, on the container: `_IO(';', 114)`.
pub const VFIO_IOMMU_UNMAP_DMA: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 14);
/// `VFIO_IOMMU_ENABLE`, on a v1 container: `_IO(';', 115)`.
pub const VFIO_IOMMU_ENABLE: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 15);
/// `VFIO_IOMMU_SPAPR_REGISTER_MEMORY`, on the container: `_IO(';', 117)`.
pub const VFIO_IOMMU_SPAPR_REGISTER_MEMORY: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 17);
/// `VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY`, on the container: `_IO(';', 118)`.
pub const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 18);
/// `VFIO_IOMMU_SPAPR_TCE_CREATE`, on the container: `_IO(';', 119)`.
pub const VFIO_IOMMU_SPAPR_TCE_CREATE: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 19);
/// `VFIO_IOMMU_SPAPR_TCE_REMOVE`, on the container: `_IO(';', 120)`.
pub const VFIO_IOMMU_SPAPR_TCE_REMOVE: Opcode = opcode::none(VFIO_TYPE, VFIO_BASE + 20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_have_the_header_layout() {
        assert_eq!(core::mem::offset_of!(VfioSpaprTceInfo, ddw), 16);
        assert_eq!(core::mem::offset_of!(VfioSpaprTceCreate, window_size), 16);
        assert_eq!(core::mem::offset_of!(VfioSpaprTceCreate, levels), 24);
        assert_eq!(core::mem::offset_of!(VfioSpaprTceCreate, start_addr), 32);
        assert_eq!(core::mem::offset_of!(VfioSpaprTceRemove, start_addr), 8);
        assert_eq!(core::mem::offset_of!(VfioSpaprRegisterMemory, size), 16);
    }
}
