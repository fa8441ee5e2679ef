// SPDX-License-Identifier: GPL-2.0

//! Guest-view TCE tables as file descriptors: creation, the registry of (VM, LIOBN) pairs that
//! the hypercall handlers look tables up in, faults of the VMM's mapping, the table ioctls, and
//! release.
//!
//! # Lifetime
//!
//! A table is created by `TCE_ACCEL_CREATE_TABLE` as an `Arc<Table>`. Its file holds one
//! reference (as `private_data`, from [`Arc::into_raw`]) and [`REGISTRY`] another. Closing the
//! file ([`tce_accel_table_release`]) unpublishes the table, waits until no hypercall can still
//! be using it, and drops both references. The file's operations hold a reference to this
//! module (`.owner`), so the module cannot be unloaded while a table exists. A table holds a
//! reference to its VM, and the VM cannot go away under it.
//!
//! # Locking and RCU
//!
//! [`REGISTRY`] (a mutex) protects the list of tables by (VM, LIOBN) and serialises every change
//! to [`PUBLISHED`]; only create and release take it. Hypercalls take no lock and no reference:
//! they read [`PUBLISHED`], an array of table pointers, inside the SRCU read-side section in
//! which KVM runs every hook handler (`patches/0003`). A writer unpublishes a table or an old
//! array first, then calls `kvmppc_tce_hooks_synchronize()`, and only then frees it. The
//! table's own memory is shared lock-free through the engine's set-once slots and atomic words.

use core::ffi::{
    c_int,
    c_long,
    c_uint,
    c_ulong,
    c_void, //
};

use core::ptr;
use core::sync::atomic::{
    AtomicPtr,
    Ordering, //
};

use kernel::{
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

/// The tables as hypercalls see them: pointers to the registered tables, null where free.
struct Published {
    slots: KVec<AtomicPtr<Table>>,
}

/// The published array, or null before the first table. Replaced (to grow it) and written
/// under [`REGISTRY`]; read by hypercalls without a lock, see the module documentation.
static PUBLISHED: AtomicPtr<Published> = AtomicPtr::new(ptr::null_mut());

/// Slots of the first published array; it doubles when full.
const PUBLISHED_MIN: usize = 16;

/// Proof that the code holding it runs in a TCE hook handler, inside the SRCU read-side section
/// that `kvmppc_tce_hooks_synchronize()` waits for.
pub(crate) struct InHook(());

impl InHook {
    /// Asserts that the caller runs in a hook handler.
    ///
    /// # Safety
    ///
    /// The caller must be a hook handler called by KVM (`patches/0003`), and the value must
    /// not outlive the call.
    pub(crate) unsafe fn new() -> Self {
        Self(())
    }
}

/// Makes `table` visible to hypercalls. The caller holds [`REGISTRY`]'s lock, which serialises
/// every writer of [`PUBLISHED`].
fn publish(table: &Arc<Table>) -> Result {
    let new = Arc::as_ptr(table).cast_mut();
    let cur = PUBLISHED.load(Ordering::Acquire);
    // SAFETY: Arrays are freed only by writers, which the caller's lock excludes.
    let cur = unsafe { cur.as_ref() };
    if let Some(free) =
        cur.and_then(|c| c.slots.iter().find(|s| s.load(Ordering::Relaxed).is_null()))
    {
        free.store(new, Ordering::Release);
        return Ok(());
    }
    // Full: publish a copy twice the size, then free the old array once no hypercall reads it.
    let len = cur.map_or(PUBLISHED_MIN, |c| c.slots.len() * 2);
    let mut slots = KVec::with_capacity(len, GFP_KERNEL)?;
    for s in cur.map_or(&[][..], |c| &c.slots[..]) {
        slots.push(AtomicPtr::new(s.load(Ordering::Relaxed)), GFP_KERNEL)?;
    }
    slots.push(AtomicPtr::new(new), GFP_KERNEL)?;
    while slots.len() < len {
        slots.push(AtomicPtr::new(ptr::null_mut()), GFP_KERNEL)?;
    }
    let grown = KBox::into_raw(KBox::new(Published { slots }, GFP_KERNEL)?);
    let old = PUBLISHED.swap(grown, Ordering::AcqRel);
    if !old.is_null() {
        glue::hooks_synchronize();
        // SAFETY: `old` came from `KBox::into_raw` here, is no longer published, and no
        // hypercall can still read it after the synchronisation.
        drop(unsafe { KBox::from_raw(old) });
    }
    Ok(())
}

/// Hides `table` from new hypercalls. The caller holds [`REGISTRY`]'s lock and must call
/// `glue::hooks_synchronize()` before the table may be freed.
fn unpublish(table: &Arc<Table>) {
    let target = Arc::as_ptr(table).cast_mut();
    // SAFETY: Arrays are freed only by writers, which the caller's lock excludes.
    if let Some(cur) = unsafe { PUBLISHED.load(Ordering::Acquire).as_ref() } {
        for s in cur.slots.iter() {
            // Failure means the slot holds another table.
            let _ =
                s.compare_exchange(target, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

/// The module's hold on [`REGISTRY`]: initialises it, and frees its memory and the published
/// array when the module is unloaded (a static is never dropped, so they would leak otherwise).
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
        // Every table holds a reference to the module, so none is left, and the hooks are gone
        // (the module's fields drop in that order): nothing reads the registry any more.
        let old = core::mem::replace(&mut *REGISTRY.lock(), KVec::new());
        drop(old);
        let published = PUBLISHED.swap(ptr::null_mut(), Ordering::AcqRel);
        if !published.is_null() {
            // SAFETY: The hooks were unregistered before (the module's fields drop in that
            // order), which waited for every hypercall; `published` came from `KBox::into_raw`.
            drop(unsafe { KBox::from_raw(published) });
        }
    }
}

/// A guest-view table of one VM.
pub(crate) struct Table {
    window: Window<KHost>,
    /// The VM's identity, for the hypercalls' lookup.
    vm_id: usize,
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
}

/// The table of (`vm`, `liobn`), if there is one, for as long as the hook handler runs.
pub(crate) fn lookup(_in_hook: &InHook, vm: usize, liobn: u64) -> Option<&Table> {
    // SAFETY: An array, and a table once published, is freed only after it was unpublished
    // and `kvmppc_tce_hooks_synchronize()` returned, which waits for this handler (`InHook`).
    let published = unsafe { PUBLISHED.load(Ordering::Acquire).as_ref() }?;
    published.slots.iter().find_map(|s| {
        // SAFETY: As above; a published pointer came from `Arc::as_ptr` of a live table.
        let t = unsafe { s.load(Ordering::Acquire).as_ref() }?;
        (t.vm_id == vm && t.window.liobn() == liobn).then_some(t)
    })
}

/// Removes `table` from the registry and waits until no hypercall can still be using it; the
/// caller's reference keeps it alive until then.
fn unregister(table: &Arc<Table>) {
    {
        let mut reg = REGISTRY.lock();
        unpublish(table);
        reg.retain(|e| !Arc::ptr_eq(&e.table, table));
    }
    glue::hooks_synchronize();
}

/// Creates a table for `req`: validates every field, charges the locked memory, and registers
/// the (VM, LIOBN) pair. On any error nothing is left allocated, charged or registered.
pub(crate) fn create(req: &CreateTable) -> Result<Arc<Table>> {
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
    let (vm_id, liobn) = (vm.id(), params.liobn);
    let table = Arc::new(
        Table {
            window,
            vm_id,
            attached: Attached::new(),
            vm,
        },
        GFP_KERNEL,
    )?;
    let mut reg = REGISTRY.lock();
    if reg.iter().any(|e| e.vm == vm_id && e.liobn == liobn) {
        pr_debug!(
            "create: liobn {:#x} already has a table in this VM\n",
            liobn
        );
        return Err(EBUSY);
    }
    // Room first, so that the entry can be added once the table is visible to hypercalls.
    reg.reserve(1, GFP_KERNEL)?;
    publish(&table)?;
    let entry = Entry {
        vm: vm_id,
        liobn,
        table: table.clone(),
    };
    if let Err(e) = reg.push(entry, GFP_KERNEL) {
        unpublish(&table);
        drop(reg);
        glue::hooks_synchronize();
        return Err(e.into());
    }
    Ok(table)
}

/// `TCE_ACCEL_CREATE_TABLE`: reads the arguments at `arg`, creates the table and returns its
/// new file descriptor.
pub(crate) fn create_ioctl(arg: usize) -> Result<isize> {
    let mut raw = [0u8; uapi::CREATE_TABLE_SIZE];
    UserSlice::new(UserPtr::from_addr(arg), raw.len())
        .reader()
        .read_slice(&mut raw)?;
    let table = create(&CreateTable::decode(&raw))?;
    match glue::install_table(table.clone()) {
        Ok(fd) => Ok(fd as isize),
        Err(e) => {
            unregister(&table);
            Err(e)
        }
    }
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

/// Called by the C glue when a table file is closed: unregisters the table and drops the
/// file's reference.
///
/// # Safety
///
/// `table` must be the pointer the file was created with by `glue::install_table`, and this
/// must be its last use.
#[no_mangle]
pub(crate) unsafe extern "C" fn tce_accel_table_release(table: *mut c_void) {
    // SAFETY: By the function's safety requirements `table` came from `Arc::into_raw` of an
    // `Arc<Table>` and is not used again.
    let table = unsafe { Arc::from_raw(table.cast::<Table>().cast_const()) };
    unregister(&table);
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
