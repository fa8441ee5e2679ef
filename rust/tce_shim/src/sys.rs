// SPDX-License-Identifier: GPL-2.0
//! Every system call of the crate: the tce_accel and KVM ioctls, table mappings and pidfds.
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
    RawWindow,
    TableInfoArgs,
    TablePagesArgs,
    CREATE_TABLE_SIZE,
    KVM_CREATE_VM,
    TABLE_PAGES_SIZE,
    TCE_ACCEL_CREATE_TABLE,
    TCE_ACCEL_TABLE_INFO,
    TCE_ACCEL_TABLE_PAGES, //
};

/// `TCE_ACCEL_CREATE_TABLE` on `/dev/tce_accel`: returns the new table's file descriptor.
pub fn create_table(
    dev: BorrowedFd<'_>,
    vm: BorrowedFd<'_>,
    window: RawWindow,
) -> SysResult<OwnedFd> {
    let mut args = CreateTableArgs {
        argsz: CREATE_TABLE_SIZE as u32,
        vm_fd: vm.as_raw_fd(),
        window,
    };
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

/// `KVM_CREATE_VM` on `/dev/kvm`, with a machine type (0 is the architecture's default).
pub fn kvm_create_vm(kvm: BorrowedFd<'_>, machine_type: u32) -> SysResult<OwnedFd> {
    // SAFETY: KVM_CREATE_VM takes the machine type as an integer argument and returns a new VM
    // file descriptor; no user memory is involved.
    unsafe { owned_fd(int_ioctl(kvm, KVM_CREATE_VM, machine_type as usize)?) }
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
