// SPDX-License-Identifier: GPL-2.0

//! `include/uapi/tce_accel.h`: the structures and ioctls of `/dev/tce_accel` and its tables.

use rustix::ioctl::{
    opcode,
    Opcode, //
};

use crate::kvm::CreateSpaprTce64;

/// The ioctl type of `/dev/tce_accel` (`TCE_ACCEL_IOCTL_TYPE`).
pub const TCE_ACCEL_IOCTL_TYPE: u8 = 0xB9;

/// `struct tce_accel_window`: a window, as `KVM_CREATE_SPAPR_TCE_64` takes it (the header
/// gives it that structure's layout).
pub type RawWindow = CreateSpaprTce64;

/// `struct tce_accel_create_table`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateTableArgs {
    /// `sizeof(struct tce_accel_create_table)`.
    pub argsz: u32,
    /// The VM's file descriptor.
    pub vm_fd: i32,
    /// The window.
    pub window: RawWindow,
}

impl CreateTableArgs {
    /// A well-formed request for `window` on the VM of `vm_fd`.
    pub fn new(vm_fd: i32, window: RawWindow) -> Self {
        Self {
            argsz: CREATE_TABLE_SIZE as u32,
            vm_fd,
            window,
        }
    }
}

/// `struct tce_accel_table_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
pub const CREATE_TABLE_SIZE: usize = core::mem::size_of::<CreateTableArgs>();
/// The size of `struct tce_accel_table_info`.
pub const TABLE_INFO_SIZE: usize = core::mem::size_of::<TableInfoArgs>();
/// The size of `struct tce_accel_table_pages`.
pub const TABLE_PAGES_SIZE: usize = core::mem::size_of::<TablePagesArgs>();

const _: () = assert!(CREATE_TABLE_SIZE == 40 && TABLE_INFO_SIZE == 64 && TABLE_PAGES_SIZE == 32);

/// `TCE_ACCEL_CREATE_TABLE`, on `/dev/tce_accel`: `_IOW(0xB9, 0x00, struct tce_accel_create_table)`.
pub const TCE_ACCEL_CREATE_TABLE: Opcode =
    opcode::write::<CreateTableArgs>(TCE_ACCEL_IOCTL_TYPE, 0x00);

/// `TCE_ACCEL_TABLE_INFO`, on a table: `_IOR(0xB9, 0x01, struct tce_accel_table_info)`.
pub const TCE_ACCEL_TABLE_INFO: Opcode = opcode::read::<TableInfoArgs>(TCE_ACCEL_IOCTL_TYPE, 0x01);

/// `TCE_ACCEL_TABLE_PAGES`, on a table: `_IOWR(0xB9, 0x02, struct tce_accel_table_pages)`.
pub const TCE_ACCEL_TABLE_PAGES: Opcode =
    opcode::read_write::<TablePagesArgs>(TCE_ACCEL_IOCTL_TYPE, 0x02);

/// `struct tce_accel_group`: the argument of `TCE_ACCEL_ATTACH_GROUP` and `_DETACH_GROUP`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
pub const GROUP_SIZE: usize = core::mem::size_of::<GroupArgs>();
/// The size of `struct tce_accel_hw_entry`.
pub const HW_ENTRY_SIZE: usize = core::mem::size_of::<HwEntryArgs>();

const _: () = assert!(GROUP_SIZE == 16 && HW_ENTRY_SIZE == 40);

/// `TCE_ACCEL_ATTACH_GROUP`, on a table: `_IOW(0xB9, 0x03, struct tce_accel_group)`.
pub const TCE_ACCEL_ATTACH_GROUP: Opcode = opcode::write::<GroupArgs>(TCE_ACCEL_IOCTL_TYPE, 0x03);

/// `TCE_ACCEL_DETACH_GROUP`, on a table: `_IOW(0xB9, 0x04, struct tce_accel_group)`.
pub const TCE_ACCEL_DETACH_GROUP: Opcode = opcode::write::<GroupArgs>(TCE_ACCEL_IOCTL_TYPE, 0x04);

/// `TCE_ACCEL_HW_ENTRY`, on a table: `_IOWR(0xB9, 0x05, struct tce_accel_hw_entry)`.
pub const TCE_ACCEL_HW_ENTRY: Opcode =
    opcode::read_write::<HwEntryArgs>(TCE_ACCEL_IOCTL_TYPE, 0x05);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_have_the_header_layout() {
        assert_eq!(core::mem::offset_of!(CreateTableArgs, window), 8);
        assert_eq!(core::mem::offset_of!(TableInfoArgs, window), 8);
        assert_eq!(core::mem::offset_of!(TableInfoArgs, mapping_pages), 40);
        assert_eq!(core::mem::offset_of!(TableInfoArgs, locked_pages), 56);
        assert_eq!(core::mem::offset_of!(TablePagesArgs, pages), 24);
        assert_eq!(core::mem::size_of::<RawWindow>(), 32);
        assert_eq!(core::mem::offset_of!(GroupArgs, group_fd), 8);
        assert_eq!(core::mem::offset_of!(HwEntryArgs, ioba), 8);
        assert_eq!(core::mem::offset_of!(HwEntryArgs, tce), 16);
        assert_eq!(core::mem::offset_of!(HwEntryArgs, ua), 24);
        assert_eq!(core::mem::offset_of!(HwEntryArgs, page_shift), 32);
    }
}
