// SPDX-License-Identifier: GPL-2.0

//! Guest-view TCE tables: creation, the registry of the module's tables, faults of the VMM's
//! mapping, the table ioctls, and release.
//!
//! # Lifetime
//!
//! A table is an `Arc<Table>`, created in one of two ways:
//!
//! - Where KVM has TCE tables (powerpc), KVM creates it: for `KVM_CREATE_SPAPR_TCE_64` while the
//!   module is KVM's provider, or for `TCE_ACCEL_CREATE_TABLE` through
//!   `kvmppc_spapr_tce_create()`. KVM calls [`tce_accel_provider_create`], keeps the table on the
//!   VM's list and gives user space a KVM TCE table file, whose operations it hands to the module.
//!   KVM's table holds the reference from [`Arc::into_raw`], and a reference to this module.
//! - Elsewhere `TCE_ACCEL_CREATE_TABLE` installs a file of the module's own
//!   (`glue::install_table`), which holds that reference and the module (`.owner`).
//!
//! [`REGISTRY`] holds a second reference. Closing the file ([`tce_accel_table_release`]) drops
//! both: KVM calls it only after a grace period of the VM's `kvm->srcu`, so no hypercall still
//! uses the table. A table holds a reference to its VM.
//!
//! # Locking
//!
//! [`REGISTRY`] (a mutex) holds the module's tables by (VM, LIOBN) and serialises changes to
//! the hardware tables attached to them (`vfio`). Hypercalls never take it: KVM hands them their
//! table. The table's own memory is shared lock-free through the engine's set-once slots and
//! atomic words.

use core::ptr;
use core::sync::atomic::{
    fence,
    AtomicPtr,
    AtomicU64,
    Ordering, //
};

use core::ffi::{
    c_int,
    c_long,
    c_uint,
    c_ulong, //
};

use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    prelude::*,
    sync::Arc,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::engine::window::{
    CreateError,
    FaultError,
    Window,
    WindowParams, //
};
use crate::glue::{
    self,
    AddressSpace,
    Kvm,
    PagePtr,
    SeqFile,
    TableHandle,
    VmRef, //
};
use crate::host::KHost;
use crate::uapi::{
    self,
    CreateTable, //
};
use crate::vfio::{
    self,
    Attached, //
};

/// One registered table.
pub(crate) struct Entry {
    vm: usize,
    liobn: u64,
    table: Arc<Table>,
}

impl Entry {
    /// The table.
    pub(crate) fn table(&self) -> &Arc<Table> {
        &self.table
    }
}

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser before any table can be created.
    pub(crate) unsafe(uninit) static REGISTRY: Mutex<KVec<Entry>> = KVec::new();
}

/// Proof that [`REGISTRY`]'s lock is held: the macro gives the lock a type of its own, so a
/// guard of this type comes only from `REGISTRY.lock()` and lives no longer than the lock is
/// held. Functions that rely on the lock take one instead of trusting their callers.
pub(crate) type RegistryGuard = kernel::sync::lock::GlobalGuard<REGISTRY>;

/// The module's hold on [`REGISTRY`]: initialises it, and frees its memory when the module is
/// unloaded (a static is never dropped, so it would leak otherwise).
pub(crate) struct Registry(());

impl Registry {
    /// Initialises the registry.
    ///
    /// # Safety
    ///
    /// Must be called once, when the module loads, before any table can be created.
    pub(crate) unsafe fn init() -> Self {
        // SAFETY: By the function's safety requirements this is the one initialisation.
        unsafe { REGISTRY.init() };
        Self(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Every table holds a reference to the module, so none is left: nothing reads the
        // registry any more.
        let old = core::mem::replace(&mut *REGISTRY.lock(), KVec::new());
        drop(old);
    }
}

/// The hypercalls a table counts, in the order of [`Table::count`] and the debugfs listing.
#[derive(Clone, Copy)]
pub(crate) enum Hcall {
    Put = 0,
    PutIndirect = 1,
    Stuff = 2,
    Get = 3,
}

/// A guest-view table of one VM.
pub(crate) struct Table {
    window: Window<KHost>,
    /// Hypercalls answered on the table, by [`Hcall`], whatever their result.
    hcalls: [AtomicU64; 4],
    /// The `struct address_space` of the table's file once it is mapped (the file has an
    /// inode of its own), whose mappings are zapped when a page replaces the zero page.
    mapping: AtomicPtr<AddressSpace>,
    /// The hardware tables of VFIO groups attached to the table (dropped before the VM).
    attached: Attached,
    /// Keeps the VM alive as long as its table.
    vm: VmRef,
}

impl Table {
    /// The table's window.
    pub(crate) fn window(&self) -> &Window<KHost> {
        &self.window
    }

    /// The table's VM.
    pub(crate) fn vm(&self) -> &VmRef {
        &self.vm
    }

    /// The hardware tables attached to the table.
    pub(crate) fn attached(&self) -> &Attached {
        &self.attached
    }

    /// Counts one hypercall of kind `h` on the table.
    pub(crate) fn count(&self, h: Hcall) {
        self.hcalls[h as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Before a hypercall on `npages` entries from `ioba`, so that [`Watch::zap_new`] can zap
    /// the VMM's mappings (of the zero page, maybe) of the pages the call allocates. `None`
    /// when there is nothing to watch: the table is not mapped. Costs two loads: the pages are
    /// looked at only if the table's allocation count moved during the call.
    pub(crate) fn watch(&self, ioba: u64, npages: u64) -> Option<Watch> {
        let mapping = self.mapping.load(Ordering::Acquire);
        (!mapping.is_null()).then(|| Watch {
            mapping,
            ioba,
            npages,
            allocations: self.window.allocations(),
        })
    }
}

/// Pages checked one by one by [`Watch::zap_new`]; wider ranges are zapped whole.
const WATCHED: u64 = 8;

/// A hypercall's range and the table's allocation count before it (see [`Table::watch`]).
pub(crate) struct Watch {
    mapping: *mut AddressSpace,
    ioba: u64,
    npages: u64,
    allocations: u64,
}

impl Watch {
    /// After the call: if the table allocated pages meanwhile (this call's, and maybe other
    /// threads'), zaps the VMM's mappings of the range's pages that now exist, so that no zero
    /// page is left mapped where the table now has a page. Pairs with the read fault, which
    /// inserts the zero page and then looks for the page. A range too wide to check page by
    /// page is zapped whole. Zapping a page that already existed only costs the VMM a fault.
    #[inline]
    pub(crate) fn zap_new(self, table: &Table) {
        if table.window.allocations() != self.allocations {
            self.zap(table);
        }
    }

    /// The zapping half of [`Watch::zap_new`], after an allocation.
    #[cold]
    #[inline(never)]
    fn zap(self, table: &Table) {
        let Some((first, last)) = table.window.pages_of_range(self.ioba, self.npages) else {
            return;
        };
        fence(Ordering::SeqCst);
        if last - first >= WATCHED {
            // SAFETY: `mapping` is the table's file's, which outlives the table.
            unsafe { glue::zap(self.mapping, first, last - first + 1) };
            return;
        }
        for page in first..=last {
            if table.window.page_present(page) {
                // SAFETY: As above.
                unsafe { glue::zap(self.mapping, page, 1) };
            }
        }
    }
}

/// Writes one line per table to the debugfs file `tce_accel/tables` (see `tce_glue.c`): its VM,
/// window, pages and hypercall counts.
///
/// # Safety
///
/// `seq` must be the `struct seq_file` of a read of that file.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_debugfs_tables(seq: *mut SeqFile) {
    let reg = REGISTRY.lock();
    for e in reg.iter() {
        let t = &e.table;
        let p = t.window.params();
        let n = |h: Hcall| t.hcalls[h as usize].load(Ordering::Relaxed);
        let counts = [
            n(Hcall::Put),
            n(Hcall::PutIndirect),
            n(Hcall::Stuff),
            n(Hcall::Get),
        ];
        // SAFETY: By the function's safety requirements `seq` is being read; the VM lives as
        // long as its table, which the registry's lock keeps.
        unsafe {
            glue::seq_table(
                seq,
                t.vm.id(),
                p.liobn,
                p.page_shift,
                p.size,
                t.window.present_pages(),
                t.window.charged_pages(),
                t.attached.count(&reg),
                &counts,
            )
        };
    }
}

/// Removes `table` from the registry. No hypercall uses it any more: KVM waited for them, or
/// there are none (a table of the module's own file).
fn unregister(table: &Arc<Table>) {
    REGISTRY.lock().retain(|e| !Arc::ptr_eq(&e.table, table));
}

/// Creates and registers the table of `params` for `vm`, charging `vm`'s address space. On any
/// error nothing is left allocated, charged or registered.
fn new_table(vm: VmRef, params: WindowParams) -> Result<Arc<Table>> {
    let window = Window::new(KHost::for_vm(&vm)?, params).map_err(|e| {
        pr_debug!("create: liobn {:#x}: {}\n", params.liobn, e.name());
        match e {
            CreateError::Invalid => EINVAL,
            CreateError::NoMemory => ENOMEM,
        }
    })?;
    let (vm_id, liobn) = (vm.id(), params.liobn);
    let table = Arc::new(
        Table {
            window,
            hcalls: [const { AtomicU64::new(0) }; 4],
            mapping: AtomicPtr::new(ptr::null_mut()),
            attached: Attached::new(),
            vm,
        },
        GFP_KERNEL_ACCOUNT,
    )?;
    let mut reg = REGISTRY.lock();
    let mut of_vm = 0;
    for e in reg.iter().filter(|e| e.vm == vm_id) {
        if e.liobn == liobn {
            pr_debug!(
                "create: liobn {:#x} already has a table in this VM\n",
                liobn
            );
            return Err(EBUSY);
        }
        of_vm += 1;
    }
    let max = glue::max_tables_per_vm();
    if of_vm >= max {
        pr_debug!(
            "create: liobn {:#x}: the VM has {} tables, the most max_tables_per_vm allows\n",
            liobn,
            of_vm
        );
        return Err(ENOSPC);
    }
    let entry = Entry {
        vm: vm_id,
        liobn,
        table: table.clone(),
    };
    reg.push(entry, GFP_KERNEL)?;
    Ok(table)
}

/// Creates a table for `req` and returns its new file descriptor: validates every field, then
/// has KVM create the table where it has TCE tables (KVM checks the arguments and the LIOBN
/// again, and calls [`tce_accel_provider_create`]), or installs a file of the module's own.
pub(crate) fn create(req: &CreateTable) -> Result<i32> {
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
    match vm.create_kvm_table(params.liobn, params.page_shift, params.offset, params.size) {
        Err(e) if e == ENOSYS => {}
        r => return r,
    }
    let table = new_table(vm, params)?;
    glue::install_table(table.clone()).inspect_err(|_| unregister(&table))
}

/// Called by KVM, through the C glue, to set up a table it creates for the module: stores the
/// table's reference in `*out`. Returns 0 or a negative errno.
///
/// # Safety
///
/// `vm` must be a live `struct kvm` and `out` a valid place to write.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_provider_create(
    vm: *mut Kvm,
    liobn: u64,
    page_shift: u32,
    offset: u64,
    size: u64,
    out: *mut *mut TableHandle,
) -> c_int {
    // SAFETY: By the function's safety requirements `vm` lives for the call.
    let vm = match unsafe { VmRef::from_raw(vm) } {
        Ok(vm) => vm,
        Err(e) => return e.to_errno(),
    };
    let params = WindowParams {
        liobn,
        page_shift,
        flags: 0,
        offset,
        size,
    };
    if params.validate().is_err() {
        pr_debug!(
            "create: KVM table liobn {:#x} page_shift {} offset {:#x} size {:#x} refused\n",
            liobn,
            page_shift,
            offset,
            size
        );
        return EINVAL.to_errno();
    }
    match new_table(vm, params) {
        Ok(table) => {
            // SAFETY: By the function's safety requirements `out` is valid for a write; KVM
            // keeps the reference until it calls `tce_accel_table_release()`.
            unsafe { *out = Arc::into_raw(table).cast_mut().cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `TCE_ACCEL_CREATE_TABLE`: reads the arguments at `arg`, creates the table and returns its
/// new file descriptor.
pub(crate) fn create_ioctl(arg: usize) -> Result<isize> {
    let mut raw = [0u8; uapi::CREATE_TABLE_SIZE];
    UserSlice::new(UserPtr::from_addr(arg), raw.len())
        .reader()
        .read_slice(&mut raw)?;
    create(&CreateTable::decode(&raw)).map(|fd| fd as isize)
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

/// Called by the C glue when a table file is closed (for a KVM table, once no hypercall can use
/// it any more): unregisters the table and drops the file's reference.
///
/// # Safety
///
/// `table` must be the pointer the file was created with, by `glue::install_table` or
/// [`tce_accel_provider_create`], and this must be its last use.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_table_release(table: *mut TableHandle) {
    // SAFETY: By the function's safety requirements `table` came from `Arc::into_raw` of an
    // `Arc<Table>` and is not used again.
    let table = unsafe { Arc::from_raw(table.cast::<Table>().cast_const()) };
    unregister(&table);
}

/// `TCE_FAULT_*` of `tce_glue.h`.
const FAULT_SIGBUS: c_int = 1;
const FAULT_OOM: c_int = 2;
const FAULT_ABSENT: c_int = 3;
const FAULT_NEW: c_int = 4;

/// Called by the C glue on a fault of a table mapping: returns the page behind `pgoff`, or null
/// with `*why` set to [`FAULT_SIGBUS`] (past the end), [`FAULT_OOM`] or, for a read
/// (`!write`) of a page that does not exist, [`FAULT_ABSENT`]: a read allocates nothing. A
/// write allocates the page if needed, and then sets `*why` to [`FAULT_NEW`].
///
/// # Safety
///
/// `table` must be a live table file's pointer and `why` a valid place to write.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_table_fault(
    table: *mut TableHandle,
    pgoff: u64,
    write: bool,
    why: *mut c_int,
) -> PagePtr {
    // SAFETY: By the function's safety requirements the table lives while its file is mapped.
    let table = unsafe { &*table.cast::<Table>() };
    let existed = table.window.page_present(pgoff);
    let reason = if !write && !existed && pgoff < table.window.mapping_pages() {
        FAULT_ABSENT
    } else {
        match table.window.fault(pgoff) {
            Ok(page) if existed => return page.page_ptr(),
            Ok(page) => {
                // SAFETY: By the function's safety requirements `why` is valid for a write.
                unsafe { *why = FAULT_NEW };
                return page.page_ptr();
            }
            Err(FaultError::OutOfRange) => FAULT_SIGBUS,
            Err(FaultError::NoMemory) => FAULT_OOM,
        }
    };
    // SAFETY: By the function's safety requirements `why` is valid for a write.
    unsafe { *why = reason };
    core::ptr::null_mut()
}

/// Called by the C glue after it mapped the zero page for a read: whether page `pgoff` exists
/// by now.
///
/// # Safety
///
/// `table` must be a live table file's pointer.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_table_present(
    table: *mut TableHandle,
    pgoff: u64,
) -> bool {
    // SAFETY: By the function's safety requirements the table lives while its file is mapped.
    let table = unsafe { &*table.cast::<Table>() };
    table.window.page_present(pgoff)
}

/// Called by the C glue when the table's file is mapped: records its `struct address_space`.
///
/// # Safety
///
/// `table` must be a live table file's pointer and `mapping` that file's mapping.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_table_mapped(
    table: *mut TableHandle,
    mapping: *mut AddressSpace,
) {
    // SAFETY: By the function's safety requirements the table lives while its file is mapped.
    let table = unsafe { &*table.cast::<Table>() };
    table.mapping.store(mapping, Ordering::Release);
}

/// Called by the C glue for an ioctl on a table file.
///
/// # Safety
///
/// `table` must be a live table file's pointer.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_table_ioctl(
    table: *mut TableHandle,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: By the function's safety requirements the table lives during the ioctl.
    let table = unsafe { &*table.cast::<Table>() };
    let r = match cmd {
        uapi::TABLE_INFO => info_ioctl(table, arg),
        uapi::TABLE_PAGES => pages_ioctl(table, arg),
        uapi::ATTACH_GROUP => vfio::attach_ioctl(table, arg as usize),
        uapi::DETACH_GROUP => vfio::detach_ioctl(table, arg as usize),
        uapi::HW_ENTRY => vfio::hw_entry_ioctl(table, arg as usize),
        _ => Err(ENOTTY),
    };
    match r {
        Ok(v) => v as c_long,
        Err(e) => c_long::from(e.to_errno()),
    }
}
