// SPDX-License-Identifier: GPL-2.0
//! The structures and ioctl numbers of `include/uapi/tce_accel.h` and of `KVM_CREATE_VM`.
//!
//! The numbers are computed with rustix's `_IOW`/`_IOR`/`_IOWR` encoders, which know how each
//! architecture lays out an ioctl number (powerpc puts the direction bits elsewhere than x86).

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
    }
}
