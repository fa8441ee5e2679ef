// SPDX-License-Identifier: GPL-2.0

//! Guest-view TCE tables as file descriptors: creation, the per-VM LIOBN registry, faults of
//! the VMM's mapping, `TCE_ACCEL_TABLE_INFO`, and release.
//!
//! # Lifetime
//!
//! A table is created by `TCE_ACCEL_CREATE_TABLE` and owned by its file from then on: the file
//! holds the `KBox<Table>` pointer as `private_data` and gives it back to
//! [`tce_accel_table_release`] when it is closed. The file's operations hold a reference to this
//! module (`.owner`), so the module cannot be unloaded while a table exists. A table holds a
//! reference to its VM, and the VM cannot go away under it.
//!
//! # Locking
//!
//! [`REGISTRY`] (a mutex) protects the list of (VM, LIOBN) pairs that have a table; it is taken
//! only to create and to release a table, never on a fault or a hypercall. The table's own
//! memory is shared lock-free through the engine's set-once slots and atomic words.

use core::ffi::{
    c_int,
    c_long,
    c_uint,
    c_ulong,
    c_void, //
};

use kernel::{
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::engine::window::{
    CreateError,
    FaultError,
    Window, //
};
use crate::glue::{
    self,
    PagePtr,
    VmRef, //
};
use crate::host::KHost;
use crate::uapi::{
    self,
    CreateTable, //
};

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser before any table can be created.
    pub(crate) unsafe(uninit) static REGISTRY: Mutex<KVec<(usize, u64)>> = KVec::new();
}

/// A guest-view table of one VM.
pub(crate) struct Table {
    window: Window<KHost>,
    vm: VmRef,
}

impl Drop for Table {
    fn drop(&mut self) {
        let key = (self.vm.id(), self.window.liobn());
        REGISTRY.lock().retain(|e| *e != key);
    }
}

/// Creates a table for `req`: validates every field, charges the locked memory, and registers
/// the (VM, LIOBN) pair. On any error nothing is left allocated, charged or registered.
pub(crate) fn create(req: &CreateTable) -> Result<KBox<Table>> {
    if req.argsz as usize != uapi::CREATE_TABLE_SIZE {
        pr_debug!(
            "create: argsz {} is not {}\n",
            req.argsz,
            uapi::CREATE_TABLE_SIZE
        );
        return Err(EINVAL);
    }
    let params = req.window;
    if params.validate().is_err() {
        pr_debug!(
            "create: invalid window: liobn {:#x} page_shift {} flags {:#x} offset {:#x} size {:#x}\n",
            params.liobn,
            params.page_shift,
            params.flags,
            params.offset,
            params.size
        );
        return Err(EINVAL);
    }
    let vm = VmRef::from_fd(req.vm_fd).inspect_err(|e| {
        pr_debug!("create: fd {} is not a KVM VM ({:?})\n", req.vm_fd, e);
    })?;
    let window = Window::new(KHost::current()?, params).map_err(|e| {
        pr_debug!("create: liobn {:#x}: {}\n", params.liobn, e.name());
        match e {
            CreateError::Invalid => EINVAL,
            CreateError::NoMemory => ENOMEM,
        }
    })?;
    let key = (vm.id(), params.liobn);
    {
        let mut reg = REGISTRY.lock();
        if reg.contains(&key) {
            pr_debug!(
                "create: liobn {:#x} already has a table in this VM\n",
                params.liobn
            );
            return Err(EBUSY);
        }
        reg.push(key, GFP_KERNEL)?;
    }
    // From here on, dropping the table also unregisters it.
    Ok(KBox::new(Table { window, vm }, GFP_KERNEL)?)
}

/// `TCE_ACCEL_CREATE_TABLE`: reads the arguments at `arg`, creates the table and returns its
/// new file descriptor.
pub(crate) fn create_ioctl(arg: usize) -> Result<isize> {
    let mut raw = [0u8; uapi::CREATE_TABLE_SIZE];
    UserSlice::new(UserPtr::from_addr(arg), raw.len())
        .reader()
        .read_slice(&mut raw)?;
    let table = create(&CreateTable::decode(&raw))?;
    Ok(glue::install_table(table)? as isize)
}

fn info_ioctl(table: &Table, arg: c_ulong) -> Result<isize> {
    let w = &table.window;
    let info = uapi::encode_info(
        w.params(),
        w.mapping_pages(),
        w.present_pages(),
        w.charged_pages(),
    );
    UserSlice::new(UserPtr::from_addr(arg as usize), info.len())
        .writer()
        .write_slice(&info)?;
    Ok(0)
}

/// Page numbers copied out per round of `TCE_ACCEL_TABLE_PAGES`.
const PAGES_CHUNK: usize = 256;

/// `TCE_ACCEL_TABLE_PAGES`: lists the table's existing pages from `start`, so that a table can be
/// saved without faulting in the pages it never used. Costs one check per absent chunk of pages
/// and one copy per existing page, whatever `count` says.
fn pages_ioctl(table: &Table, arg: c_ulong) -> Result<isize> {
    let mut raw = [0u8; uapi::TABLE_PAGES_SIZE];
    let (mut reader, mut writer) =
        UserSlice::new(UserPtr::from_addr(arg as usize), raw.len()).reader_writer();
    reader.read_slice(&mut raw)?;
    let mut req = uapi::TablePages::decode(&raw);
    if req.argsz as usize != uapi::TABLE_PAGES_SIZE || req.flags != 0 {
        pr_debug!(
            "pages: argsz {} flags {:#x} refused\n",
            req.argsz,
            req.flags
        );
        return Err(EINVAL);
    }
    let room = req.count.checked_mul(8).ok_or(EINVAL)?;
    let room = usize::try_from(room).map_err(|_| EINVAL)?;
    let mut out = UserSlice::new(UserPtr::from_addr(req.pages as usize), room).writer();
    let mut numbers = KVec::from_elem(0u64, PAGES_CHUNK, GFP_KERNEL)?;
    let mut bytes = KVec::from_elem(0u8, PAGES_CHUNK * 8, GFP_KERNEL)?;
    let (mut stored, mut start) = (0u64, req.start);
    while stored < req.count {
        let want = usize::try_from(req.count - stored).map_or(PAGES_CHUNK, |n| n.min(PAGES_CHUNK));
        let n = table.window.present_pages_from(start, &mut numbers[..want]);
        for (i, page) in numbers[..n].iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&page.to_ne_bytes());
        }
        out.write_slice(&bytes[..n * 8])?;
        stored += n as u64;
        match numbers[..n].last() {
            Some(&last) if n == want => start = last.checked_add(1).ok_or(EINVAL)?,
            _ => break,
        }
    }
    req.count = stored;
    writer.write_slice(&req.encode())?;
    Ok(0)
}

/// Called by the C glue when a table file is closed: frees the table.
///
/// # Safety
///
/// `table` must be the pointer the file was created with by `glue::install_table`, and this
/// must be its last use.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_table_release(table: *mut c_void) {
    // SAFETY: By the function's safety requirements `table` came from `KBox::into_raw` of a
    // `KBox<Table>` and is not used again.
    drop(unsafe { KBox::from_raw(table.cast::<Table>()) });
}

/// Called by the C glue on a fault of a table mapping: returns the page behind `pgoff`,
/// allocating it if needed, or null with `*why` set to 1 (past the end) or 2 (out of memory).
///
/// # Safety
///
/// `table` must be a live table file's pointer and `why` a valid place to write.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_table_fault(
    table: *mut c_void,
    pgoff: u64,
    why: *mut c_int,
) -> PagePtr {
    // SAFETY: By the function's safety requirements the table lives while its file is mapped.
    let table = unsafe { &*table.cast::<Table>() };
    let reason = match table.window.fault(pgoff) {
        Ok(page) => return page.page_ptr(),
        Err(FaultError::OutOfRange) => 1,
        Err(FaultError::NoMemory) => 2,
    };
    // SAFETY: By the function's safety requirements `why` is valid for a write.
    unsafe { *why = reason };
    core::ptr::null_mut()
}

/// Called by the C glue for an ioctl on a table file.
///
/// # Safety
///
/// `table` must be a live table file's pointer.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_table_ioctl(
    table: *mut c_void,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: By the function's safety requirements the table lives during the ioctl.
    let table = unsafe { &*table.cast::<Table>() };
    let r = match cmd {
        uapi::TABLE_INFO => info_ioctl(table, arg),
        uapi::TABLE_PAGES => pages_ioctl(table, arg),
        _ => Err(ENOTTY),
    };
    match r {
        Ok(v) => v as c_long,
        Err(e) => c_long::from(e.to_errno()),
    }
}
