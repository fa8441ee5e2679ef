// SPDX-License-Identifier: GPL-2.0
//! The ioctls of `/dev/tce_accel` and of its table file descriptors (`include/uapi/tce_accel.h`).

use std::os::fd::{
    AsRawFd,
    BorrowedFd,
    OwnedFd, //
};

use rustix::io::Errno;
use tce_uapi::tce_accel::{
    CreateTableArgs,
    GroupArgs,
    HwEntryArgs,
    RawWindow,
    TableInfoArgs,
    TablePagesArgs,
    GROUP_SIZE,
    HW_ENTRY_SIZE,
    TABLE_PAGES_SIZE,
    TCE_ACCEL_ATTACH_GROUP,
    TCE_ACCEL_CREATE_TABLE,
    TCE_ACCEL_DETACH_GROUP,
    TCE_ACCEL_HW_ENTRY,
    TCE_ACCEL_TABLE_INFO,
    TCE_ACCEL_TABLE_PAGES, //
};

use crate::ioctl::{
    owned_fd,
    ptr_ioctl,
    SysResult, //
};

/// `TCE_ACCEL_CREATE_TABLE` on `/dev/tce_accel`: returns the new table's file descriptor.
pub fn create_table(
    dev: BorrowedFd<'_>,
    vm: BorrowedFd<'_>,
    window: RawWindow,
) -> SysResult<OwnedFd> {
    // `vm` stays open during the call.
    create_table_args(dev, &CreateTableArgs::new(vm.as_raw_fd(), window))
}

/// `TCE_ACCEL_CREATE_TABLE` with arguments exactly as given, whatever their values (a test
/// passes hostile ones): the VM is named by a plain descriptor number, which the module looks
/// up and checks.
pub fn create_table_args(dev: BorrowedFd<'_>, args: &CreateTableArgs) -> SysResult<OwnedFd> {
    let mut args = *args;
    // SAFETY: TCE_ACCEL_CREATE_TABLE takes a `struct tce_accel_create_table`, which
    // `CreateTableArgs` is (its layout is checked in `tce_uapi`); the structure holds no
    // pointer, and on success the ioctl returns a new table descriptor.
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
    table_pages_sized(table, TABLE_PAGES_SIZE as u32, start, out)
}

/// [`table_pages`] with the structure's `argsz` field as given, for a test of the module's
/// check of it. The ioctl's number carries the structure's real size, which is all the kernel
/// copies in and out; `argsz` only says what the caller claims.
pub fn table_pages_sized(
    table: BorrowedFd<'_>,
    argsz: u32,
    start: u64,
    out: &mut [u64],
) -> SysResult<usize> {
    let mut args = TablePagesArgs {
        argsz,
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
pub fn group(table: BorrowedFd<'_>, group: BorrowedFd<'_>, attach: bool) -> SysResult<()> {
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
    // checked in `tce_uapi`); `group` stays open during the call.
    unsafe { ptr_ioctl(table, opcode, &mut args)? };
    Ok(())
}

/// `TCE_ACCEL_HW_ENTRY` on a table file descriptor: the hardware entry at bus address `ioba`
/// of the attached VFIO group `group`.
pub fn hw_entry(table: BorrowedFd<'_>, group: BorrowedFd<'_>, ioba: u64) -> SysResult<HwEntryArgs> {
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
