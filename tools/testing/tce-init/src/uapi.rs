// SPDX-License-Identifier: GPL-2.0

//! The structures of `include/uapi/tce_accel.h`, with the same layout.

use core::mem::{offset_of, size_of};

/// `TCE_ACCEL_IOCTL_TYPE`.
pub const IOCTL_TYPE: u32 = 0xB9;

/// `struct tce_accel_window`: the arguments of `KVM_CREATE_SPAPR_TCE_64`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// The logical I/O bus number.
    pub liobn: u64,
    /// The IOMMU page shift: 12 to 34.
    pub page_shift: u32,
    /// Must be 0.
    pub flags: u32,
    /// The first entry: bus address >> page_shift.
    pub offset: u64,
    /// The number of entries.
    pub size: u64,
}

/// `struct tce_accel_create_table`: the argument of `TCE_ACCEL_CREATE_TABLE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateTable {
    /// `sizeof(struct tce_accel_create_table)`.
    pub argsz: u32,
    /// A KVM VM file descriptor.
    pub vm_fd: i32,
    /// The table's window.
    pub window: Window,
}

/// `struct tce_accel_table_info`: the result of `TCE_ACCEL_TABLE_INFO`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableInfo {
    /// Set by the kernel: `sizeof(struct tce_accel_table_info)`.
    pub argsz: u32,
    /// Set by the kernel: 0.
    pub flags: u32,
    /// The table's window.
    pub window: Window,
    /// Host pages an mmap of the table may span.
    pub mapping_pages: u64,
    /// Host pages allocated so far.
    pub present_pages: u64,
    /// Host pages charged to the creator's locked-memory limit.
    pub locked_pages: u64,
}

/// `struct tce_accel_table_pages`: the argument of `TCE_ACCEL_TABLE_PAGES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TablePages {
    /// `sizeof(struct tce_accel_table_pages)`.
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// The first page number to look at.
    pub start: u64,
    /// In: room in `pages`; out: page numbers stored.
    pub count: u64,
    /// The user address of a `u64` array.
    pub pages: u64,
}

/// `sizeof(struct tce_accel_create_table)`.
pub const CREATE_TABLE_SIZE: usize = size_of::<CreateTable>();
/// `sizeof(struct tce_accel_table_info)`.
pub const TABLE_INFO_SIZE: usize = size_of::<TableInfo>();
/// `sizeof(struct tce_accel_table_pages)`.
pub const TABLE_PAGES_SIZE: usize = size_of::<TablePages>();
const _: () = assert!(TABLE_PAGES_SIZE == 32);

// The sizes of the C structures: 4 + 4 + 32 and 4 + 4 + 32 + 3 * 8 bytes.
const _: () = assert!(size_of::<Window>() == 32);
const _: () = assert!(CREATE_TABLE_SIZE == 40);
const _: () = assert!(TABLE_INFO_SIZE == 64);

// The offsets of the C structures' fields.
const _: () = assert!(offset_of!(Window, page_shift) == 8 && offset_of!(Window, size) == 24);
const _: () = assert!(offset_of!(CreateTable, window) == 8);
const _: () = assert!(offset_of!(TableInfo, window) == 8);
const _: () = assert!(offset_of!(TableInfo, mapping_pages) == 40);
const _: () = assert!(offset_of!(TableInfo, locked_pages) == 56);

impl CreateTable {
    /// A well-formed request for `window` on the VM of `vm_fd`.
    pub fn new(vm_fd: i32, window: Window) -> Self {
        Self {
            argsz: CREATE_TABLE_SIZE as u32,
            vm_fd,
            window,
        }
    }
}
