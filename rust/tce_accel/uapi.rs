// SPDX-License-Identifier: GPL-2.0

//! The user API (`include/uapi/tce_accel.h`): ioctl numbers and argument layouts.
//!
//! Arguments are copied in and out as bytes and decoded field by field, so that no `unsafe`
//! transmutation is needed and every field is validated where it is read.

use kernel::ioctl::{
    _IOR,
    _IOW,
    _IOWR, //
};

use crate::engine::window::WindowParams;

/// The ioctl type of the module (`TCE_ACCEL_IOCTL_TYPE`).
const IOCTL_TYPE: u32 = 0xB9;

/// `struct tce_accel_create_table`, for its size.
#[repr(C)]
pub(crate) struct CreateTableLayout {
    _argsz: u32,
    _vm_fd: i32,
    _window: [u64; 4],
}

/// `struct tce_accel_table_info`, for its size.
#[repr(C)]
pub(crate) struct TableInfoLayout {
    _argsz: u32,
    _flags: u32,
    _window: [u64; 4],
    _pages: [u64; 3],
}

/// `struct tce_accel_table_pages`, for its size.
#[repr(C)]
pub(crate) struct TablePagesLayout {
    _argsz: u32,
    _flags: u32,
    _start: u64,
    _count: u64,
    _pages: u64,
}

/// `struct tce_accel_group`, for its size.
#[repr(C)]
pub(crate) struct GroupLayout {
    _argsz: u32,
    _flags: u32,
    _group_fd: i32,
    _pad: u32,
}

/// `struct tce_accel_hw_entry`, for its size.
#[repr(C)]
pub(crate) struct HwEntryLayout {
    _argsz: u32,
    _group_fd: i32,
    _ioba: u64,
    _tce: u64,
    _ua: u64,
    _page_shift: u32,
    _pad: u32,
}

/// Bytes of `struct tce_accel_group`.
pub(crate) const GROUP_SIZE: usize = core::mem::size_of::<GroupLayout>();
/// Bytes of `struct tce_accel_hw_entry`.
pub(crate) const HW_ENTRY_SIZE: usize = core::mem::size_of::<HwEntryLayout>();

const _: () = assert!(GROUP_SIZE == 16 && HW_ENTRY_SIZE == 40);

/// Bytes of `struct tce_accel_create_table`.
pub(crate) const CREATE_TABLE_SIZE: usize = core::mem::size_of::<CreateTableLayout>();
/// Bytes of `struct tce_accel_table_info`.
pub(crate) const TABLE_INFO_SIZE: usize = core::mem::size_of::<TableInfoLayout>();

/// Bytes of `struct tce_accel_table_pages`.
pub(crate) const TABLE_PAGES_SIZE: usize = core::mem::size_of::<TablePagesLayout>();

const _: () = assert!(CREATE_TABLE_SIZE == 40 && TABLE_INFO_SIZE == 64 && TABLE_PAGES_SIZE == 32);

/// `TCE_ACCEL_CREATE_TABLE`, on `/dev/tce_accel`.
pub(crate) const CREATE_TABLE: u32 = _IOW::<CreateTableLayout>(IOCTL_TYPE, 0x00);
/// `TCE_ACCEL_TABLE_INFO`, on a table file descriptor.
pub(crate) const TABLE_INFO: u32 = _IOR::<TableInfoLayout>(IOCTL_TYPE, 0x01);
/// `TCE_ACCEL_TABLE_PAGES`, on a table file descriptor.
pub(crate) const TABLE_PAGES: u32 = _IOWR::<TablePagesLayout>(IOCTL_TYPE, 0x02);
/// `TCE_ACCEL_ATTACH_GROUP`, on a table file descriptor.
pub(crate) const ATTACH_GROUP: u32 = _IOW::<GroupLayout>(IOCTL_TYPE, 0x03);
/// `TCE_ACCEL_DETACH_GROUP`, on a table file descriptor.
pub(crate) const DETACH_GROUP: u32 = _IOW::<GroupLayout>(IOCTL_TYPE, 0x04);
/// `TCE_ACCEL_HW_ENTRY`, on a table file descriptor.
pub(crate) const HW_ENTRY: u32 = _IOWR::<HwEntryLayout>(IOCTL_TYPE, 0x05);

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

/// A decoded `struct tce_accel_create_table`.
pub(crate) struct CreateTable {
    /// What user space says the structure's size is.
    pub(crate) argsz: u32,
    /// The VM's file descriptor.
    pub(crate) vm_fd: i32,
    /// The `KVM_CREATE_SPAPR_TCE_64` arguments.
    pub(crate) window: WindowParams,
}

impl CreateTable {
    /// Decodes the structure from its bytes.
    pub(crate) fn decode(b: &[u8; CREATE_TABLE_SIZE]) -> Self {
        Self {
            argsz: u32_at(b, 0),
            vm_fd: u32_at(b, 4) as i32,
            window: WindowParams {
                liobn: u64_at(b, 8),
                page_shift: u32_at(b, 16),
                flags: u32_at(b, 20),
                offset: u64_at(b, 24),
                size: u64_at(b, 32),
            },
        }
    }
}

/// Encodes `struct tce_accel_table_info`.
pub(crate) fn encode_info(
    w: &WindowParams,
    mapping: u64,
    present: u64,
    locked: u64,
) -> [u8; TABLE_INFO_SIZE] {
    let mut b = [0u8; TABLE_INFO_SIZE];
    let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &(TABLE_INFO_SIZE as u32).to_ne_bytes());
    put(4, &0u32.to_ne_bytes());
    put(8, &w.liobn.to_ne_bytes());
    put(16, &w.page_shift.to_ne_bytes());
    put(20, &w.flags.to_ne_bytes());
    put(24, &w.offset.to_ne_bytes());
    put(32, &w.size.to_ne_bytes());
    put(40, &mapping.to_ne_bytes());
    put(48, &present.to_ne_bytes());
    put(56, &locked.to_ne_bytes());
    b
}

/// A decoded `struct tce_accel_table_pages`.
pub(crate) struct TablePages {
    /// What user space says the structure's size is.
    pub(crate) argsz: u32,
    /// Flags; none are defined.
    pub(crate) flags: u32,
    /// The first page number to look at.
    pub(crate) start: u64,
    /// Room in the array at `pages`, in page numbers.
    pub(crate) count: u64,
    /// The user address of the array.
    pub(crate) pages: u64,
}

impl TablePages {
    /// Decodes the structure from its bytes.
    pub(crate) fn decode(b: &[u8; TABLE_PAGES_SIZE]) -> Self {
        Self {
            argsz: u32_at(b, 0),
            flags: u32_at(b, 4),
            start: u64_at(b, 8),
            count: u64_at(b, 16),
            pages: u64_at(b, 24),
        }
    }

    /// Encodes the structure, as it goes back to user space.
    pub(crate) fn encode(&self) -> [u8; TABLE_PAGES_SIZE] {
        let mut b = [0u8; TABLE_PAGES_SIZE];
        b[0..4].copy_from_slice(&self.argsz.to_ne_bytes());
        b[4..8].copy_from_slice(&self.flags.to_ne_bytes());
        b[8..16].copy_from_slice(&self.start.to_ne_bytes());
        b[16..24].copy_from_slice(&self.count.to_ne_bytes());
        b[24..32].copy_from_slice(&self.pages.to_ne_bytes());
        b
    }
}

/// A decoded `struct tce_accel_group`.
pub(crate) struct GroupArgs {
    /// What user space says the structure's size is.
    pub(crate) argsz: u32,
    /// Flags; none are defined.
    pub(crate) flags: u32,
    /// The VFIO group file descriptor.
    pub(crate) group_fd: i32,
    /// Must be zero.
    pub(crate) pad: u32,
}

impl GroupArgs {
    /// Decodes the structure from its bytes.
    pub(crate) fn decode(b: &[u8; GROUP_SIZE]) -> Self {
        Self {
            argsz: u32_at(b, 0),
            flags: u32_at(b, 4),
            group_fd: u32_at(b, 8) as i32,
            pad: u32_at(b, 12),
        }
    }
}

/// A decoded `struct tce_accel_hw_entry`.
pub(crate) struct HwEntryArgs {
    /// What user space says the structure's size is.
    pub(crate) argsz: u32,
    /// The attached VFIO group.
    pub(crate) group_fd: i32,
    /// The bus address of the hardware entry.
    pub(crate) ioba: u64,
    /// Out: the hardware entry.
    pub(crate) tce: u64,
    /// Out: the user address recorded for it.
    pub(crate) ua: u64,
    /// Out: the hardware IOMMU page shift.
    pub(crate) page_shift: u32,
}

impl HwEntryArgs {
    /// Decodes the structure from its bytes.
    pub(crate) fn decode(b: &[u8; HW_ENTRY_SIZE]) -> Self {
        Self {
            argsz: u32_at(b, 0),
            group_fd: u32_at(b, 4) as i32,
            ioba: u64_at(b, 8),
            tce: u64_at(b, 16),
            ua: u64_at(b, 24),
            page_shift: u32_at(b, 32),
        }
    }

    /// Encodes the structure, as it goes back to user space.
    pub(crate) fn encode(&self) -> [u8; HW_ENTRY_SIZE] {
        let mut b = [0u8; HW_ENTRY_SIZE];
        b[0..4].copy_from_slice(&self.argsz.to_ne_bytes());
        b[4..8].copy_from_slice(&self.group_fd.to_ne_bytes());
        b[8..16].copy_from_slice(&self.ioba.to_ne_bytes());
        b[16..24].copy_from_slice(&self.tce.to_ne_bytes());
        b[24..32].copy_from_slice(&self.ua.to_ne_bytes());
        b[32..36].copy_from_slice(&self.page_shift.to_ne_bytes());
        b
    }
}
