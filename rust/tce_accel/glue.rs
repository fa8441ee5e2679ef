// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers around `tce_glue.c`, the C the Rust kernel crate does not cover yet.
//!
//! All foreign calls of the module go through the one private `extern "C"` block below; the
//! rest of the module sees only the safe types of this file.

use core::ffi::{
    c_int,
    c_uint,
    c_ulong,
    c_void, //
};
use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;

use kernel::{
    error::to_result,
    page::PAGE_SHIFT,
    prelude::*,
    sync::Arc, //
};

use crate::engine::hwtable::HwEntry;
use crate::engine::tce::TCE_RW;
use crate::provider::InHcall;

/// Declares C structures that Rust only passes around: each is a type of its own, so that the
/// compiler checks which handle goes where (a `*mut Kvm` is not a `*mut MmStruct`), and none can
/// be made, moved or sent from Rust.
macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        $(
            $(#[$doc])*
            #[repr(C)]
            pub(crate) struct $name {
                _data: [u8; 0],
                _marker: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
            }
        )*
    };
}

opaque! {
    /// `struct kvm`: a VM.
    Kvm;
    /// `struct kvm_vcpu`.
    KvmVcpu;
    /// `struct kvmppc_spapr_tce_table`: one of KVM's TCE tables, of this module's provider.
    KvmTceTable;
    /// `struct mm_struct`.
    MmStruct;
    /// `struct address_space`: the mapping of a table's file.
    AddressSpace;
    /// `struct seq_file`.
    SeqFile;
    /// `struct iommu_group`.
    IommuGroup;
    /// `struct iommu_table`.
    CIommuTable;
    /// `struct tce_glue_hw`: a group's hardware table with the references `tce_glue.c` holds.
    GlueHw;
    /// `struct tce_accel_table`: a [`crate::table::Table`] as C holds it (an `Arc::into_raw`).
    TableHandle;
    /// `struct page`.
    Page;
}

/// A `struct page *`. Rust never looks inside a page.
pub(crate) type PagePtr = *mut Page;

mod ffi {
    use super::*;

    /// `struct tce_glue_layout` (`tce_glue.h`): byte offsets of fields of KVM's structures.
    #[repr(C)]
    pub(super) struct Layout {
        /// `provider_data` in `struct kvmppc_spapr_tce_table`.
        pub(super) stt_data: usize,
        /// `kvm` in `struct kvm_vcpu`.
        pub(super) vcpu_kvm: usize,
    }

    extern "C" {
        pub(super) fn tce_glue_table_getfd(table: *mut TableHandle) -> c_int;
        pub(super) fn tce_glue_vm_get(fd: c_int, vm: *mut *mut Kvm) -> c_int;
        pub(super) fn tce_glue_vm_ref(vm: *mut Kvm);
        pub(super) fn tce_glue_vm_put(vm: *mut Kvm);
        pub(super) fn tce_glue_mm_get() -> *mut MmStruct;
        pub(super) fn tce_glue_mm_put(mm: *mut MmStruct);
        pub(super) fn tce_glue_account(mm: *mut MmStruct, pages: c_ulong, inc: bool) -> c_int;
        pub(super) fn tce_glue_alloc_pages(order: c_uint) -> PagePtr;
        pub(super) fn tce_glue_free_pages(page: PagePtr, order: c_uint);
        pub(super) fn tce_glue_page_address(page: PagePtr) -> *mut c_void;
        pub(super) fn tce_glue_page_phys(page: PagePtr) -> u64;
        pub(super) fn tce_glue_provider_start() -> c_int;
        pub(super) fn tce_glue_provider_stop();
        pub(super) fn tce_glue_kvm_create_table(
            vm: *mut Kvm,
            liobn: u64,
            page_shift: u32,
            offset: u64,
            size: u64,
        ) -> c_int;
        pub(super) fn tce_glue_vm_mm(vm: *mut Kvm) -> *mut MmStruct;
        pub(super) fn tce_glue_vm_synchronize(vm: *mut Kvm);
        pub(super) fn tce_glue_zap(mapping: *mut AddressSpace, pgoff: u64, n: u64);
        pub(super) fn tce_glue_vm_defer(
            vm: *mut Kvm,
            f: unsafe extern "C" fn(*mut c_void),
            data: *mut c_void,
        ) -> c_int;
        pub(super) fn tce_glue_wq_create() -> c_int;
        pub(super) fn tce_glue_wq_destroy();
        pub(super) fn tce_glue_group_ref(
            grp: *mut IommuGroup,
            need_owner: bool,
            group: *mut *mut IommuGroup,
        ) -> c_int;
        pub(super) fn tce_glue_seq_table(
            seq: *mut SeqFile,
            vm: *mut Kvm,
            liobn: u64,
            page_shift: u32,
            size: u64,
            pages: u64,
            charged: u64,
            groups: usize,
            hcalls: *const u64,
        );
        pub(super) static tce_glue_layout: Layout;
        pub(super) fn tce_glue_debugfs_create() -> c_int;
        pub(super) fn tce_glue_debugfs_remove();
        pub(super) fn tce_glue_vcpu_set_gpr(vcpu: *mut KvmVcpu, reg: c_uint, value: u64);
        pub(super) fn tce_glue_gpa_to_ua(vm: *mut Kvm, gpa: u64, ua: *mut u64) -> bool;
        pub(super) fn tce_glue_virt_to_page(addr: *mut c_void) -> PagePtr;
        pub(super) fn tce_glue_read_user_be64(ua: u64, out: *mut u64, n: usize) -> c_int;
        pub(super) fn tce_glue_capable_sys_admin() -> bool;
        pub(super) fn tce_glue_cond_resched();
        pub(super) fn tce_glue_group_get(
            fd: c_int,
            need_owner: bool,
            group: *mut *mut IommuGroup,
        ) -> c_int;
        pub(super) fn tce_glue_group_put(group: *mut IommuGroup);
        pub(super) fn tce_glue_group_windows() -> c_uint;
        pub(super) fn tce_glue_max_tables_per_vm() -> c_uint;
        pub(super) fn tce_glue_group_v2(group: *mut IommuGroup) -> bool;
        pub(super) fn tce_glue_hw_get(
            group: *mut IommuGroup,
            i: c_uint,
            hw: *mut *mut GlueHw,
            page_shift: *mut u32,
            offset: *mut u64,
            size: *mut u64,
        ) -> c_int;
        pub(super) fn tce_glue_hw_put(hw: *mut GlueHw);
        pub(super) fn tce_glue_hw_group(hw: *mut GlueHw) -> *mut IommuGroup;
        pub(super) fn tce_glue_hw_table(hw: *mut GlueHw) -> *mut CIommuTable;
        pub(super) fn tce_glue_hw_xchg(
            hw: *mut GlueHw,
            vm: *mut Kvm,
            index: u64,
            hpa: *mut u64,
            perm: *mut u64,
            ua: *mut u64,
        ) -> c_int;
        pub(super) fn tce_glue_hw_kill(hw: *mut GlueHw, index: u64, pages: u64);
        pub(super) fn tce_glue_hw_read(
            hw: *mut GlueHw,
            index: u64,
            tce: *mut u64,
            ua: *mut u64,
        ) -> c_int;
        pub(super) fn tce_glue_dma_lookup(vm: *mut Kvm, ua: u64, size: u64) -> bool;
        pub(super) fn tce_glue_dma_hpa(
            vm: *mut Kvm,
            ua: u64,
            size: u64,
            page_shift: u32,
            hpa: *mut u64,
        ) -> bool;
        pub(super) fn tce_glue_dma_map(
            vm: *mut Kvm,
            ua: u64,
            page_shift: u32,
            hpa: *mut u64,
        ) -> bool;
        pub(super) fn tce_glue_dma_inc(vm: *mut Kvm, ua: u64, size: u64) -> bool;
        pub(super) fn tce_glue_dma_dec(vm: *mut Kvm, ua: u64, size: u64) -> bool;
    }
}

/// A reference to a KVM VM, taken from a VM file descriptor.
///
/// # Invariants
///
/// `vm` points to a `struct kvm` on which this value holds one reference.
pub(crate) struct VmRef {
    vm: NonNull<Kvm>,
}

// SAFETY: A `struct kvm` reference may be held and dropped from any thread.
unsafe impl Send for VmRef {}
// SAFETY: `VmRef` offers no access to the VM through `&self`, only its address.
unsafe impl Sync for VmRef {}

impl VmRef {
    /// Takes a reference to the VM of `fd`: `EBADF` if `fd` is not open, `EINVAL` if it is not a
    /// KVM VM file.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        let mut vm = core::ptr::null_mut();
        // SAFETY: `vm` is a valid place for the result; the C side checks `fd` itself.
        let ret = unsafe { ffi::tce_glue_vm_get(fd, &mut vm) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: on success the C side took a reference and stored a non-null VM.
        NonNull::new(vm).map(|vm| Self { vm }).ok_or(EINVAL)
    }

    /// Takes a reference to the VM at `vm`.
    ///
    /// # Safety
    ///
    /// `vm` must point to a `struct kvm` that lives for the call (the caller holds a
    /// reference to it).
    pub(crate) unsafe fn from_raw(vm: *mut Kvm) -> Result<Self> {
        let vm = NonNull::new(vm).ok_or(EINVAL)?;
        // SAFETY: By the function's safety requirements the VM lives.
        unsafe { ffi::tce_glue_vm_ref(vm.as_ptr()) };
        // INVARIANT: one reference was just taken.
        Ok(Self { vm })
    }

    /// Creates a table of this VM that KVM keeps on the VM's list and the module serves, and
    /// returns its file descriptor (a KVM TCE table file). `ENOSYS` where KVM has no TCE
    /// tables: then the caller installs a tce_accel file.
    pub(crate) fn create_kvm_table(
        &self,
        liobn: u64,
        page_shift: u32,
        offset: u64,
        size: u64,
    ) -> Result<i32> {
        // SAFETY: By the type invariant the VM lives; KVM checks the arguments.
        let fd = unsafe {
            ffi::tce_glue_kvm_create_table(self.vm.as_ptr(), liobn, page_shift, offset, size)
        };
        if fd < 0 {
            return Err(Error::from_errno(fd));
        }
        Ok(fd)
    }

    /// Waits until no hypercall of the VM can still use what the caller unpublished before.
    /// Must not be called from a hypercall.
    pub(crate) fn synchronize(&self) {
        // SAFETY: By the type invariant the VM lives; callers are in process context, outside
        // the VM's SRCU read-side section.
        unsafe { ffi::tce_glue_vm_synchronize(self.vm.as_ptr()) };
    }

    /// Calls `f(data)` from the module's workqueue after a grace period of the VM's SRCU, for
    /// a caller that cannot wait for one (it runs inside the section). The work holds the VM.
    ///
    /// # Safety
    ///
    /// `f` must be safe to call once with `data`, from any thread, after the grace period.
    pub(crate) unsafe fn defer(
        &self,
        f: unsafe extern "C" fn(*mut c_void),
        data: *mut c_void,
    ) -> Result {
        // SAFETY: By the type invariant the VM lives (the work takes its own reference); the
        // caller vouches for `f` and `data`.
        let ret = unsafe { ffi::tce_glue_vm_defer(self.vm.as_ptr(), f, data) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(())
    }

    /// The VM's address space, which KVM charges its tables to.
    pub(crate) fn mm(&self) -> Result<MmRef> {
        // SAFETY: By the type invariant the VM lives; the C side grabs its mm.
        let mm = unsafe { ffi::tce_glue_vm_mm(self.vm.as_ptr()) };
        // INVARIANT: the C side grabbed the VM's mm (KVM never has none).
        NonNull::new(mm).map(|mm| MmRef { mm }).ok_or(EINVAL)
    }

    /// The VM's identity: its address, stable while the reference is held.
    pub(crate) fn id(&self) -> usize {
        self.vm.as_ptr() as usize
    }

    /// Another reference to the same VM.
    pub(crate) fn clone_ref(&self) -> Self {
        // SAFETY: By the type invariant `self` holds a reference, so the VM lives.
        unsafe { ffi::tce_glue_vm_ref(self.vm.as_ptr()) };
        // INVARIANT: one more reference was just taken.
        Self { vm: self.vm }
    }

    /// The preregistered DMA memory of the VM's process, valid while `self` lives.
    pub(crate) fn dma(&self) -> VmDma<'_> {
        VmDma {
            vm: self.vm.as_ptr(),
            _vm: core::marker::PhantomData,
        }
    }
}

impl Drop for VmRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this value holds one reference, released here once.
        unsafe { ffi::tce_glue_vm_put(self.vm.as_ptr()) };
    }
}

/// The address space a table's locked memory is charged to.
///
/// # Invariants
///
/// `mm` points to a `struct mm_struct` grabbed (`mmgrab`) by this value.
pub(crate) struct MmRef {
    mm: NonNull<MmStruct>,
}

// SAFETY: A grabbed mm may be used for accounting and dropped from any thread.
unsafe impl Send for MmRef {}
// SAFETY: Accounting through `&self` is serialised by the mm's own locking.
unsafe impl Sync for MmRef {}

impl MmRef {
    /// The caller's address space, or `None` in a kernel thread (nothing is charged then).
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: Always safe to call; the result is grabbed or null.
        let mm = unsafe { ffi::tce_glue_mm_get() };
        // INVARIANT: a non-null result was grabbed by the C side.
        NonNull::new(mm).map(|mm| Self { mm })
    }

    /// Charges `pages` to the locked-memory limit: `ENOMEM` over the limit.
    pub(crate) fn charge(&self, pages: u64) -> Result {
        let pages = c_ulong::try_from(pages).map_err(|_| ENOMEM)?;
        // SAFETY: By the type invariant `mm` is a grabbed mm.
        let ret = unsafe { ffi::tce_glue_account(self.mm.as_ptr(), pages, true) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(())
    }

    /// Returns `pages` charged by [`MmRef::charge`].
    pub(crate) fn uncharge(&self, pages: u64) {
        let pages = c_ulong::try_from(pages).unwrap_or(c_ulong::MAX);
        // SAFETY: By the type invariant `mm` is a grabbed mm; a decrement cannot fail.
        unsafe { ffi::tce_glue_account(self.mm.as_ptr(), pages, false) };
    }
}

impl Drop for MmRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this value grabbed `mm` once; it is dropped once here.
        unsafe { ffi::tce_glue_mm_put(self.mm.as_ptr()) };
    }
}

/// `1 << order` zeroed, physically contiguous pages, held as one word: their page-aligned
/// kernel virtual address with the order in the low bits. So a set-once array of blocks holds
/// each in place, and a lookup goes from the array straight to the memory (`host::KPageSlots`).
///
/// # Invariants
///
/// `word` is `addr | order`: `addr` is the linear-map address of `1 << order` pages allocated by
/// `alloc_pages()` and owned by this value, `order < ORDER_LIMIT`.
pub(crate) struct Block {
    word: usize,
}

/// Orders are kept below this, in the low bits of a page-aligned address.
const ORDER_LIMIT: u32 = 1 << 6;

impl Block {
    /// Allocates `1 << order` zeroed pages, or fails without a warning.
    pub(crate) fn alloc(order: u32) -> Option<Self> {
        if order >= ORDER_LIMIT {
            return None;
        }
        // SAFETY: Always safe to call; the result is null or owned by the caller.
        let page = NonNull::new(unsafe { ffi::tce_glue_alloc_pages(order) })?;
        // SAFETY: `page` was just allocated; pages of the kernel's linear map have an address.
        let addr = unsafe { ffi::tce_glue_page_address(page.as_ptr()) } as usize;
        if addr == 0 || addr & ((1 << PAGE_SHIFT) - 1) != 0 {
            // SAFETY: `page` came from `tce_glue_alloc_pages(order)` and is not used again.
            unsafe { ffi::tce_glue_free_pages(page.as_ptr(), order) };
            return None;
        }
        // INVARIANT: the pages are ours, zeroed and mapped at the page-aligned `addr`, and
        // `order < ORDER_LIMIT <= PAGE_SIZE`.
        Some(Self {
            word: addr | order as usize,
        })
    }

    /// Gives up the block as its word, which [`Block::from_word`] takes back.
    pub(crate) fn into_word(self) -> usize {
        let word = self.word;
        core::mem::forget(self);
        word
    }

    /// Takes back a block given up by [`Block::into_word`].
    ///
    /// # Safety
    ///
    /// `word` must come from `into_word()` and be taken back once.
    pub(crate) unsafe fn from_word(word: usize) -> Self {
        // INVARIANT: By the function's safety requirements the word is a block's, and now ours.
        Self { word }
    }

    /// The words of the block whose word is `word`.
    ///
    /// # Safety
    ///
    /// `word` must be a live block's, which outlives `'a`.
    #[inline]
    pub(crate) unsafe fn words_of<'a>(word: usize) -> &'a [AtomicU64] {
        let order = word & (ORDER_LIMIT as usize - 1);
        let len = 1usize << (order + PAGE_SHIFT - 3);
        let addr = (word & !((1 << PAGE_SHIFT) - 1)) as *const AtomicU64;
        // SAFETY: By the function's safety requirements and the type invariant the block is
        // mapped at `addr`, page-aligned, for `len` words while `'a` lasts, and `AtomicU64` has
        // the size and alignment of `u64`.
        unsafe { core::slice::from_raw_parts(addr, len) }
    }

    /// The first `struct page` of the block whose word is `word`.
    ///
    /// # Safety
    ///
    /// `word` must be a live block's.
    pub(crate) unsafe fn page_of(word: usize) -> PagePtr {
        let addr = word & !((1 << PAGE_SHIFT) - 1);
        // SAFETY: By the function's safety requirements `addr` is in the linear map.
        unsafe { ffi::tce_glue_virt_to_page(addr as *mut c_void) }
    }

    /// The host physical address of the block whose word is `word`.
    ///
    /// # Safety
    ///
    /// `word` must be a live block's.
    pub(crate) unsafe fn phys_of(word: usize) -> u64 {
        // SAFETY: As the function's safety requirements say; `page_of` gives a live page.
        unsafe { ffi::tce_glue_page_phys(Self::page_of(word)) }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let order = (self.word & (ORDER_LIMIT as usize - 1)) as u32;
        // SAFETY: By the type invariant the pages are ours; mappings hold their own references.
        unsafe { ffi::tce_glue_free_pages(Self::page_of(self.word), order) };
    }
}

/// Installs a file descriptor for `table`; the file owns this reference from then on, and hands
/// the pointer back to `tce_accel_table_release()` when it is closed.
pub(crate) fn install_table<T>(table: Arc<T>) -> Result<i32> {
    let raw = Arc::into_raw(table);
    // SAFETY: `raw` is a valid pointer to which we own a reference; on success the file takes
    // that reference over.
    let fd = unsafe { ffi::tce_glue_table_getfd(raw.cast_mut().cast()) };
    if fd < 0 {
        // SAFETY: The file was not created, so the reference is still ours; it came from
        // `Arc::into_raw` above.
        drop(unsafe { Arc::from_raw(raw) });
        return Err(Error::from_errno(fd));
    }
    Ok(fd)
}

/// The `max_tables_per_vm` parameter: how many tables one VM may have at once.
pub(crate) fn max_tables_per_vm() -> usize {
    // SAFETY: Always safe to call.
    unsafe { ffi::tce_glue_max_tables_per_vm() as usize }
}

/// Makes the module the provider of KVM's TCE tables, if the `takeover` parameter says so (a
/// no-op where KVM has no TCE tables): `EBUSY` if another module provides them.
pub(crate) fn provider_start() -> Result {
    // SAFETY: Always safe to call; the provider it registers is this module's, and its tables
    // hold references to the module.
    let ret = unsafe { ffi::tce_glue_provider_start() };
    if ret != 0 {
        return Err(Error::from_errno(ret));
    }
    Ok(())
}

/// Prints one table's line into a debugfs read (`vm` is printed hashed, as `%p` does).
///
/// # Safety
///
/// `seq` must be the `struct seq_file` of a read in progress.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn seq_table(
    seq: *mut SeqFile,
    vm: usize,
    liobn: u64,
    page_shift: u32,
    size: u64,
    pages: u64,
    charged: u64,
    groups: usize,
    hcalls: &[u64; 4],
) {
    // SAFETY: By the function's safety requirements `seq` is valid; `hcalls` holds four
    // counts, and `vm` is only printed.
    unsafe {
        ffi::tce_glue_seq_table(
            seq,
            vm as *mut Kvm,
            liobn,
            page_shift,
            size,
            pages,
            charged,
            groups,
            hcalls.as_ptr(),
        )
    };
}

/// The module's workqueue for work that waits for a VM's SRCU ([`VmRef::defer`]); dropping
/// it runs what is still queued.
pub(crate) struct Workqueue(());

impl Workqueue {
    /// Creates the workqueue.
    pub(crate) fn create() -> Result<Self> {
        // SAFETY: Called once, at module load, before anything can be deferred.
        let ret = unsafe { ffi::tce_glue_wq_create() };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(Self(()))
    }
}

impl Drop for Workqueue {
    fn drop(&mut self) {
        // SAFETY: Created by `create`; nothing defers work any more (no table is left).
        unsafe { ffi::tce_glue_wq_destroy() };
    }
}

/// Zaps every mapping of pages `[pgoff, pgoff + n)` of a table's file, so that they fault again.
///
/// # Safety
///
/// `mapping` must be the `struct address_space` of a live table file.
pub(crate) unsafe fn zap(mapping: *mut AddressSpace, pgoff: u64, n: u64) {
    // SAFETY: By the function's safety requirements the mapping lives.
    unsafe { ffi::tce_glue_zap(mapping, pgoff, n) };
}

/// The debugfs file `tce_accel/tables`; removed when dropped.
pub(crate) struct Debugfs(());

impl Debugfs {
    /// Creates the file (debugfs failures are not errors: the module works without it).
    pub(crate) fn create() -> Self {
        // SAFETY: Called once, at module load; `tce_accel_debugfs_tables` reads the registry,
        // which lives until after this value is dropped.
        let _ = unsafe { ffi::tce_glue_debugfs_create() };
        Self(())
    }
}

impl Drop for Debugfs {
    fn drop(&mut self) {
        // SAFETY: Removing the file waits for its readers; it was created by `create`.
        unsafe { ffi::tce_glue_debugfs_remove() };
    }
}

/// Stops providing KVM's new TCE tables; existing ones stay the module's.
pub(crate) fn provider_stop() {
    // SAFETY: Called once, by `provider::Provider::drop`, after a successful `provider_start()`.
    unsafe { ffi::tce_glue_provider_stop() };
}

/// Reads the pointer field at byte `offset` of the C structure at `base` (an offset of
/// `tce_glue_layout`).
///
/// # Safety
///
/// `base` must point to a live structure with a pointer field at `offset` that nothing writes
/// during the read.
unsafe fn read_ptr_field<S, T>(base: *mut S, offset: usize) -> *mut T {
    // SAFETY: By the function's safety requirements the field is inside the structure (so the
    // add stays in it), aligned as a pointer and not written concurrently.
    unsafe { base.wrapping_byte_add(offset).cast::<*mut T>().read() }
}

/// The table this module keeps in the KVM table `stt`, as the provider's create stored it.
///
/// # Safety
///
/// `stt` must be a live `struct kvmppc_spapr_tce_table` of this module's provider, such as
/// KVM passes to a hypercall handler.
pub(crate) unsafe fn stt_table(stt: *mut KvmTceTable) -> *mut TableHandle {
    // SAFETY: By the function's safety requirements `stt` is live and this provider's, so its
    // `provider_data` (at offset `stt_data` of the constant layout) was set when it was created
    // and is not changed after.
    unsafe { read_ptr_field(stt, ffi::tce_glue_layout.stt_data) }
}

/// The vCPU making a hypercall, and its VM.
///
/// # Invariants
///
/// `vcpu` points to a `struct kvm_vcpu` that lives, and whose thread is the current one, for as
/// long as this value exists; `vm` is its `struct kvm`.
pub(crate) struct VcpuRef {
    vcpu: *mut KvmVcpu,
    vm: *mut Kvm,
}

impl VcpuRef {
    /// Wraps the vCPU KVM passed to a hypercall handler.
    ///
    /// # Safety
    ///
    /// `vcpu` must be a live vCPU, running the current hypercall, and the value must not outlive
    /// that hypercall.
    pub(crate) unsafe fn new(vcpu: *mut KvmVcpu) -> Self {
        // SAFETY: By the function's safety requirements `vcpu` is a live `struct kvm_vcpu`, and
        // `vcpu_kvm` (of the constant layout) is the offset of its `kvm` pointer, which never
        // changes once the vCPU exists.
        let vm = unsafe { read_ptr_field(vcpu, ffi::tce_glue_layout.vcpu_kvm) };
        // INVARIANT: `vcpu` is guaranteed by the caller, `vm` was just read from it.
        Self { vcpu, vm }
    }

    /// Sets general-purpose register `reg` of the guest, the way a hypercall returns values.
    pub(crate) fn set_gpr(&self, reg: u32, value: u64) {
        // SAFETY: By the type invariant `vcpu` is live, and the current thread runs it.
        unsafe { ffi::tce_glue_vcpu_set_gpr(self.vcpu, reg, value) };
    }

    /// The preregistered DMA memory of the VM's process, valid during the hypercall.
    pub(crate) fn dma(&self) -> VmDma<'_> {
        VmDma {
            vm: self.vm,
            _vm: core::marker::PhantomData,
        }
    }

    /// The VM's memory slots, for guest address translations during the hypercall: KVM holds
    /// them stable (it calls the handlers on the read side of `kvm->srcu`, which `in_hcall`
    /// proves), so this takes no lock of its own.
    pub(crate) fn memslots<'a>(&'a self, _in_hcall: &'a InHcall) -> MemSlots<'a> {
        // INVARIANT: `in_hcall` proves the read side is held for as long as `'a`, and the VM
        // lives as long as `self`.
        MemSlots {
            vm: self.vm,
            _held: core::marker::PhantomData,
        }
    }
}

/// A VM's memory slots, held stable by KVM for one hypercall.
///
/// # Invariants
///
/// `vm` is a live VM, and the current thread is on the read side of its `kvm->srcu` for `'a`.
pub(crate) struct MemSlots<'a> {
    vm: *mut Kvm,
    _held: core::marker::PhantomData<(&'a VcpuRef, &'a InHcall)>,
}

impl MemSlots<'_> {
    /// Translates a guest physical address to the VMM's user address, or `None` if no slot
    /// holds it.
    pub(crate) fn gpa_to_ua(&self, gpa: u64) -> Option<u64> {
        let mut ua = 0u64;
        // SAFETY: By the type invariant the VM lives and its slots are held; `ua` is a valid
        // place for the result.
        let found = unsafe { ffi::tce_glue_gpa_to_ua(self.vm, gpa, &mut ua) };
        found.then_some(ua)
    }
}

/// Reads `out.len()` big-endian words at user address `ua` of the current process, in host
/// order: a few word by word, more in one copy (`tce_glue.c` says why).
pub(crate) fn read_user_be64(ua: u64, out: &mut [u64]) -> Result {
    // SAFETY: `out` is valid for writes of `out.len()` words; the glue checks the user range.
    to_result(unsafe { ffi::tce_glue_read_user_be64(ua, out.as_mut_ptr(), out.len()) })
}

/// Lets other tasks run if this one has run long (process context only).
pub(crate) fn cond_resched() {
    // SAFETY: Every caller runs in process context and may sleep.
    unsafe { ffi::tce_glue_cond_resched() };
}

/// Whether the caller may see host physical addresses (`CAP_SYS_ADMIN`).
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: Always safe to call in process context.
    unsafe { ffi::tce_glue_capable_sys_admin() }
}

/// The memory a VM's process preregistered for DMA (`mm_iommu`, through
/// `VFIO_IOMMU_SPAPR_REGISTER_MEMORY`), named by user addresses.
///
/// Every call looks the region up anew inside one RCU read-side section, because a region may
/// be unregistered at any time unless a hardware entry maps it.
///
/// # Invariants
///
/// `vm` is a live `struct kvm` for `'a`; its `mm` is grabbed by KVM for as long.
#[derive(Clone, Copy)]
pub(crate) struct VmDma<'a> {
    vm: *mut Kvm,
    _vm: core::marker::PhantomData<&'a ()>,
}

impl VmDma<'_> {
    /// Whether one region holds all of `[ua, ua + size)`.
    pub(crate) fn lookup(&self, ua: u64, size: u64) -> bool {
        // SAFETY: By the type invariant the VM and its mm live.
        unsafe { ffi::tce_glue_dma_lookup(self.vm, ua, size) }
    }

    /// The host physical address of `ua`, if one region holds `[ua, ua + size)` and is backed
    /// by pages of at least `1 << page_shift` bytes.
    pub(crate) fn hpa(&self, ua: u64, size: u64, page_shift: u32) -> Option<u64> {
        let mut hpa = 0u64;
        // SAFETY: By the type invariant the VM and its mm live; `hpa` is a valid place.
        let ok = unsafe { ffi::tce_glue_dma_hpa(self.vm, ua, size, page_shift, &mut hpa) };
        ok.then_some(hpa)
    }

    /// Translates `ua` and counts one more mapping of its region, as one step.
    pub(crate) fn map(&self, ua: u64, page_shift: u32) -> Option<u64> {
        let mut hpa = 0u64;
        // SAFETY: By the type invariant the VM and its mm live; `hpa` is a valid place.
        let ok = unsafe { ffi::tce_glue_dma_map(self.vm, ua, page_shift, &mut hpa) };
        ok.then_some(hpa)
    }

    /// Counts one more mapping of the region of `[ua, ua + size)`.
    pub(crate) fn inc(&self, ua: u64, size: u64) -> bool {
        // SAFETY: By the type invariant the VM and its mm live.
        unsafe { ffi::tce_glue_dma_inc(self.vm, ua, size) }
    }

    /// Counts one mapping fewer of the region of `[ua, ua + size)`; `false` if no region holds
    /// it.
    pub(crate) fn dec(&self, ua: u64, size: u64) -> bool {
        // SAFETY: By the type invariant the VM and its mm live.
        unsafe { ffi::tce_glue_dma_dec(self.vm, ua, size) }
    }

    /// The VM, for the hardware exchange (which marks pages dirty in its mm).
    fn vm(&self) -> *mut Kvm {
        self.vm
    }
}

/// A reference to the iommu group of a VFIO group file.
///
/// # Invariants
///
/// `group` is a `struct iommu_group` on which this value holds one reference; its DMA was owned
/// by user space when the reference was taken.
pub(crate) struct GroupRef {
    group: NonNull<IommuGroup>,
}

impl GroupRef {
    /// The group of VFIO group file `fd`: `EBADF`, `EINVAL` (not a VFIO group), `ENODEV` (no
    /// sPAPR TCE tables), `EPERM` (its DMA is not owned by user space, checked only if
    /// `need_owner`).
    pub(crate) fn from_fd(fd: i32, need_owner: bool) -> Result<Self> {
        let mut group = core::ptr::null_mut();
        // SAFETY: `group` is a valid place for the result; the C side checks `fd` itself.
        let ret = unsafe { ffi::tce_glue_group_get(fd, need_owner, &mut group) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: on success the C side took a reference and stored a non-null group.
        NonNull::new(group)
            .map(|group| Self { group })
            .ok_or(EINVAL)
    }

    /// Another reference to `grp`, a group of the KVM-VFIO device, with the checks of
    /// [`GroupRef::from_fd`].
    ///
    /// # Safety
    ///
    /// `grp` must be a `struct iommu_group` on which the caller holds a reference.
    pub(crate) unsafe fn from_raw(grp: *mut IommuGroup, need_owner: bool) -> Result<Self> {
        let mut group = core::ptr::null_mut();
        // SAFETY: By the function's safety requirements `grp` lives; `group` is a valid place.
        let ret = unsafe { ffi::tce_glue_group_ref(grp, need_owner, &mut group) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: on success the C side took a reference and stored a non-null group.
        NonNull::new(group)
            .map(|group| Self { group })
            .ok_or(EINVAL)
    }

    /// The group's identity.
    pub(crate) fn id(&self) -> usize {
        self.group.as_ptr() as usize
    }

    /// Takes a reference to hardware window `i` of the group, if it has one there.
    pub(crate) fn window(&self, i: u32) -> Result<Option<HwRef>> {
        let (mut hw, mut page_shift, mut offset, mut size) = (core::ptr::null_mut(), 0, 0, 0);
        // SAFETY: By the type invariant the group lives; the out pointers are valid places.
        let ret = unsafe {
            ffi::tce_glue_hw_get(
                self.group.as_ptr(),
                i,
                &mut hw,
                &mut page_shift,
                &mut offset,
                &mut size,
            )
        };
        if ret == ENOENT.to_errno() {
            return Ok(None);
        }
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        let hw = NonNull::new(hw).ok_or(EINVAL)?;
        // INVARIANT: on success the C side took the references and gave the geometry.
        Ok(Some(HwRef {
            hw,
            page_shift,
            offset,
            size,
        }))
    }

    /// Whether the group is in a VFIO sPAPR TCE v2 container, the only kind whose hardware
    /// tables may be attached: a v1 container would unpin the pages the module maps.
    pub(crate) fn in_v2_container(&self) -> bool {
        // SAFETY: By the type invariant the group lives.
        unsafe { ffi::tce_glue_group_v2(self.group.as_ptr()) }
    }

    /// How many hardware windows a group may have.
    pub(crate) fn max_windows() -> u32 {
        // SAFETY: Always safe to call.
        unsafe { ffi::tce_glue_group_windows() }
    }
}

impl Drop for GroupRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this value holds one reference, released here once.
        unsafe { ffi::tce_glue_group_put(self.group.as_ptr()) };
    }
}

// SAFETY: A group reference may be held and dropped from any thread.
unsafe impl Send for GroupRef {}
// SAFETY: `&GroupRef` only reads the group's windows, which the C side does safely.
unsafe impl Sync for GroupRef {}

/// A hardware table (`struct iommu_table`) of a VFIO group, with references to it and to its
/// group.
///
/// # Invariants
///
/// `hw` is a `struct tce_glue_hw` owned by this value; its table has entries
/// `[offset, offset + size)` of `1 << page_shift` bytes.
pub(crate) struct HwRef {
    hw: NonNull<GlueHw>,
    page_shift: u32,
    offset: u64,
    size: u64,
}

// SAFETY: The C side serialises every access to the table's entries and user addresses with
// the table's `it_ext_lock`, which VFIO takes too (patches/0005), and the references it holds
// keep the table and the group alive until `Drop`.
unsafe impl Send for HwRef {}
// SAFETY: As above.
unsafe impl Sync for HwRef {}

impl HwRef {
    /// log2 of the hardware IOMMU page size.
    pub(crate) fn page_shift(&self) -> u32 {
        self.page_shift
    }

    /// The first entry (bus address >> page shift).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The number of entries.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The identity of the table's group, as [`GroupRef::id`] gives it.
    pub(crate) fn group_id(&self) -> usize {
        // SAFETY: By the type invariant `hw` is live.
        unsafe { ffi::tce_glue_hw_group(self.hw.as_ptr()) as usize }
    }

    /// The identity of the hardware table.
    pub(crate) fn table_id(&self) -> usize {
        // SAFETY: By the type invariant `hw` is live.
        unsafe { ffi::tce_glue_hw_table(self.hw.as_ptr()) as usize }
    }

    /// Exchanges entry `index` for `new` (its permission bits 0: clear it), recording its user
    /// address; returns the old entry. The IOMMU cache is not invalidated, see [`HwRef::kill`].
    pub(crate) fn exchange(&self, dma: &VmDma<'_>, index: u64, new: HwEntry) -> Result<HwEntry> {
        let (mut hpa, mut perm, mut ua) = (new.tce & !TCE_RW, new.tce & TCE_RW, new.ua);
        // SAFETY: By the type invariant `hw` is live, and `dma`'s VM lives; the in/out pointers
        // are valid places.
        let ret = unsafe {
            ffi::tce_glue_hw_xchg(
                self.hw.as_ptr(),
                dma.vm(),
                index,
                &mut hpa,
                &mut perm,
                &mut ua,
            )
        };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(HwEntry {
            tce: if perm == 0 { 0 } else { hpa | perm },
            ua,
        })
    }

    /// Invalidates the IOMMU's cache of entries `[index, index + pages)`.
    pub(crate) fn kill(&self, index: u64, pages: u64) {
        // SAFETY: By the type invariant `hw` is live.
        unsafe { ffi::tce_glue_hw_kill(self.hw.as_ptr(), index, pages) };
    }

    /// Reads entry `index` back from the platform, with its recorded user address.
    pub(crate) fn read(&self, index: u64) -> Result<(u64, u64)> {
        let (mut tce, mut ua) = (0u64, 0u64);
        // SAFETY: By the type invariant `hw` is live; the out pointers are valid places.
        let ret = unsafe { ffi::tce_glue_hw_read(self.hw.as_ptr(), index, &mut tce, &mut ua) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        Ok((tce, ua))
    }
}

impl Drop for HwRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this value owns `hw`, released here once.
        unsafe { ffi::tce_glue_hw_put(self.hw.as_ptr()) };
    }
}
