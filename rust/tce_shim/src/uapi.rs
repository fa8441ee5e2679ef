// SPDX-License-Identifier: GPL-2.0
//! The structures and ioctl numbers of `include/uapi/tce_accel.h`, `KVM_CREATE_VM` and VFIO's sPAPR TCE API.
//!
//! The numbers are computed with rustix's `_IO`/`_IOW`/`_IOR`/`_IOWR` encoders, which know how
//! each architecture lays out an ioctl number (powerpc puts the direction bits elsewhere than
//! x86, and its `_IO` sets a direction bit too). The VFIO structures are those of
//! `include/uapi/linux/vfio.h`; every VFIO ioctl is a plain `_IO(';', 100 + n)` number whose
//! argument is a pointer or an integer, as the header documents for each.

use rustix::ioctl::{
    opcode,
    Opcode, //
};
use tce_engine::window::WindowParams;

/// The ioctl type of `/dev/tce_accel` (`TCE_ACCEL_IOCTL_TYPE`).
pub const TCE_ACCEL_IOCTL_TYPE: u8 = 0xB9;

/// The ioctl type of `/dev/kvm` (`KVMIO`).
pub const KVMIO: u8 = 0xAE;

/// `struct tce_accel_window`: the arguments of `KVM_CREATE_SPAPR_TCE_64`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawWindow {
    /// The LIOBN.
    pub liobn: u64,
    /// The IOMMU page shift.
    pub page_shift: u32,
    /// Must be 0.
    pub flags: u32,
    /// The first entry: bus address >> page shift.
    pub offset: u64,
    /// The number of entries.
    pub size: u64,
}

impl From<WindowParams> for RawWindow {
    fn from(p: WindowParams) -> Self {
        RawWindow {
            liobn: p.liobn,
            page_shift: p.page_shift,
            flags: p.flags,
            offset: p.offset,
            size: p.size,
        }
    }
}

impl From<RawWindow> for WindowParams {
    fn from(w: RawWindow) -> Self {
        WindowParams {
            liobn: w.liobn,
            page_shift: w.page_shift,
            flags: w.flags,
            offset: w.offset,
            size: w.size,
        }
    }
}

/// `struct tce_accel_create_table`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CreateTableArgs {
    /// `sizeof(struct tce_accel_create_table)`.
    pub argsz: u32,
    /// The VM's file descriptor.
    pub vm_fd: i32,
    /// The window.
    pub window: RawWindow,
}

/// `struct tce_accel_table_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TableInfoArgs {
    /// Set by the kernel: `sizeof(struct tce_accel_table_info)`.
    pub argsz: u32,
    /// Set by the kernel: 0.
    pub flags: u32,
    /// The window.
    pub window: RawWindow,
    /// Host pages an mmap of the table may span.
    pub mapping_pages: u64,
    /// Host pages allocated so far.
    pub present_pages: u64,
    /// Host pages charged to the creator's locked-memory limit.
    pub locked_pages: u64,
}

/// `struct tce_accel_table_pages`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TablePagesArgs {
    /// `sizeof(struct tce_accel_table_pages)`.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// In: the first page number to look at.
    pub start: u64,
    /// In: room in `pages`; out: page numbers stored.
    pub count: u64,
    /// In: the user address of a `u64` array.
    pub pages: u64,
}

/// The size of `struct tce_accel_create_table`.
pub const CREATE_TABLE_SIZE: usize = std::mem::size_of::<CreateTableArgs>();
/// The size of `struct tce_accel_table_info`.
pub const TABLE_INFO_SIZE: usize = std::mem::size_of::<TableInfoArgs>();
/// The size of `struct tce_accel_table_pages`.
pub const TABLE_PAGES_SIZE: usize = std::mem::size_of::<TablePagesArgs>();

const _: () = assert!(CREATE_TABLE_SIZE == 40 && TABLE_INFO_SIZE == 64 && TABLE_PAGES_SIZE == 32);

/// `TCE_ACCEL_CREATE_TABLE`, on `/dev/tce_accel`: `_IOW(0xB9, 0x00, struct tce_accel_create_table)`.
pub const TCE_ACCEL_CREATE_TABLE: Opcode =
    opcode::write::<CreateTableArgs>(TCE_ACCEL_IOCTL_TYPE, 0x00);

/// `TCE_ACCEL_TABLE_INFO`, on a table: `_IOR(0xB9, 0x01, struct tce_accel_table_info)`.
pub const TCE_ACCEL_TABLE_INFO: Opcode = opcode::read::<TableInfoArgs>(TCE_ACCEL_IOCTL_TYPE, 0x01);

/// `TCE_ACCEL_TABLE_PAGES`, on a table: `_IOWR(0xB9, 0x02, struct tce_accel_table_pages)`.
pub const TCE_ACCEL_TABLE_PAGES: Opcode =
    opcode::read_write::<TablePagesArgs>(TCE_ACCEL_IOCTL_TYPE, 0x02);

/// `KVM_CREATE_VM`, on `/dev/kvm`: `_IO(KVMIO, 0x01)`; the argument is the machine type.
pub const KVM_CREATE_VM: Opcode = opcode::none(KVMIO, 0x01);

/// `KVM_CHECK_EXTENSION`, on `/dev/kvm` or a VM: `_IO(KVMIO, 0x03)`; the argument is the
/// capability.
pub const KVM_CHECK_EXTENSION: Opcode = opcode::none(KVMIO, 0x03);

/// `KVM_CAP_SPAPR_TCE_64`: the VM can create TCE tables with `KVM_CREATE_SPAPR_TCE_64`.
pub const KVM_CAP_SPAPR_TCE_64: u32 = 125;

/// `KVM_CREATE_SPAPR_TCE_64`, on a VM: `_IOW(KVMIO, 0xa8, struct kvm_create_spapr_tce_64)`,
/// whose layout [`RawWindow`] has; returns the new table's file descriptor.
pub const KVM_CREATE_SPAPR_TCE_64: Opcode = opcode::write::<RawWindow>(KVMIO, 0xa8);

/// `struct tce_accel_group`: the argument of `TCE_ACCEL_ATTACH_GROUP` and `_DETACH_GROUP`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GroupArgs {
    /// `sizeof(struct tce_accel_group)`.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// A VFIO group file descriptor (`/dev/vfio/N`).
    pub group_fd: i32,
    /// Must be 0.
    pub pad: u32,
}

/// `struct tce_accel_hw_entry`: the argument of `TCE_ACCEL_HW_ENTRY`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct HwEntryArgs {
    /// `sizeof(struct tce_accel_hw_entry)`.
    pub argsz: u32,
    /// An attached VFIO group.
    pub group_fd: i32,
    /// In: the bus address, aligned to the hardware IOMMU page.
    pub ioba: u64,
    /// Out: host physical address | `TCE_PCI_READ` 0x1 | `TCE_PCI_WRITE` 0x2.
    pub tce: u64,
    /// Out: the user address behind the entry, 0 if none.
    pub ua: u64,
    /// Out: the hardware IOMMU page shift.
    pub page_shift: u32,
    /// 0.
    pub pad: u32,
}

/// The size of `struct tce_accel_group`.
pub const GROUP_SIZE: usize = std::mem::size_of::<GroupArgs>();
/// The size of `struct tce_accel_hw_entry`.
pub const HW_ENTRY_SIZE: usize = std::mem::size_of::<HwEntryArgs>();

const _: () = assert!(GROUP_SIZE == 16 && HW_ENTRY_SIZE == 40);

/// `TCE_ACCEL_ATTACH_GROUP`, on a table: `_IOW(0xB9, 0x03, struct tce_accel_group)`.
pub const TCE_ACCEL_ATTACH_GROUP: Opcode = opcode::write::<GroupArgs>(TCE_ACCEL_IOCTL_TYPE, 0x03);

/// `TCE_ACCEL_DETACH_GROUP`, on a table: `_IOW(0xB9, 0x04, struct tce_accel_group)`.
pub const TCE_ACCEL_DETACH_GROUP: Opcode = opcode::write::<GroupArgs>(TCE_ACCEL_IOCTL_TYPE, 0x04);

/// `TCE_ACCEL_HW_ENTRY`, on a table: `_IOWR(0xB9, 0x05, struct tce_accel_hw_entry)`.
pub const TCE_ACCEL_HW_ENTRY: Opcode =
    opcode::read_write::<HwEntryArgs>(TCE_ACCEL_IOCTL_TYPE, 0x05);

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
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioGroupStatus {
    /// `sizeof(struct vfio_group_status)`.
    pub argsz: u32,
    /// Out: `VFIO_GROUP_FLAGS_*`.
    pub flags: u32,
}

/// `struct vfio_iommu_spapr_tce_ddw_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
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
#[derive(Clone, Copy, Debug, Default)]
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
#[derive(Clone, Copy, Debug, Default)]
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
#[derive(Clone, Copy, Debug, Default)]
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
#[derive(Clone, Copy, Debug, Default)]
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
#[derive(Clone, Copy, Debug, Default)]
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
#[derive(Clone, Copy, Debug, Default)]
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
    std::mem::size_of::<VfioDmaMap>() == 32
        && std::mem::size_of::<VfioDmaUnmap>() == 24
        && std::mem::size_of::<VfioGroupStatus>() == 8
        && std::mem::size_of::<VfioSpaprTceInfo>() == 32
        && std::mem::size_of::<VfioSpaprRegisterMemory>() == 24
        && std::mem::size_of::<VfioSpaprTceCreate>() == 40
        && std::mem::size_of::<VfioSpaprTceRemove>() == 16
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
        assert_eq!(std::mem::offset_of!(CreateTableArgs, window), 8);
        assert_eq!(std::mem::offset_of!(TableInfoArgs, mapping_pages), 40);
        assert_eq!(std::mem::offset_of!(TableInfoArgs, locked_pages), 56);
        assert_eq!(std::mem::offset_of!(TablePagesArgs, pages), 24);
        assert_eq!(std::mem::size_of::<RawWindow>(), 32);
        assert_eq!(std::mem::offset_of!(GroupArgs, group_fd), 8);
        assert_eq!(std::mem::offset_of!(HwEntryArgs, ioba), 8);
        assert_eq!(std::mem::offset_of!(HwEntryArgs, tce), 16);
        assert_eq!(std::mem::offset_of!(HwEntryArgs, ua), 24);
        assert_eq!(std::mem::offset_of!(HwEntryArgs, page_shift), 32);
        assert_eq!(std::mem::offset_of!(VfioSpaprTceInfo, ddw), 16);
        assert_eq!(std::mem::offset_of!(VfioSpaprTceCreate, window_size), 16);
        assert_eq!(std::mem::offset_of!(VfioSpaprTceCreate, levels), 24);
        assert_eq!(std::mem::offset_of!(VfioSpaprTceCreate, start_addr), 32);
        assert_eq!(std::mem::offset_of!(VfioSpaprTceRemove, start_addr), 8);
        assert_eq!(std::mem::offset_of!(VfioSpaprRegisterMemory, size), 16);
    }
}
