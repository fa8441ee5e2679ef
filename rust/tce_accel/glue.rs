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
    page::PAGE_SHIFT,
    prelude::*,
    sync::Arc,
    transmute::AsBytes,
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};

/// A `struct page *`. Rust never looks inside a page, so it stays opaque (and FFI-safe).
pub(crate) type PagePtr = *mut c_void;

mod ffi {
    use super::*;

    extern "C" {
        pub(super) fn tce_glue_table_getfd(table: *mut c_void) -> c_int;
        pub(super) fn tce_glue_vm_get(fd: c_int, vm: *mut *mut c_void) -> c_int;
        pub(super) fn tce_glue_vm_put(vm: *mut c_void);
        pub(super) fn tce_glue_mm_get() -> *mut c_void;
        pub(super) fn tce_glue_mm_put(mm: *mut c_void);
        pub(super) fn tce_glue_account(mm: *mut c_void, pages: c_ulong, inc: bool) -> c_int;
        pub(super) fn tce_glue_alloc_pages(order: c_uint) -> PagePtr;
        pub(super) fn tce_glue_free_pages(page: PagePtr, order: c_uint);
        pub(super) fn tce_glue_page_address(page: PagePtr) -> *mut c_void;
        pub(super) fn tce_glue_page_phys(page: PagePtr) -> u64;
        pub(super) fn tce_glue_hooks_register() -> c_int;
        pub(super) fn tce_glue_hooks_unregister();
        pub(super) fn tce_glue_hooks_synchronize();
        pub(super) fn tce_glue_vcpu_vm(vcpu: *mut c_void) -> *mut c_void;
        pub(super) fn tce_glue_vcpu_set_gpr(vcpu: *mut c_void, reg: c_uint, value: u64);
        pub(super) fn tce_glue_memslots_lock(vm: *mut c_void) -> c_int;
        pub(super) fn tce_glue_memslots_unlock(vm: *mut c_void, idx: c_int);
        pub(super) fn tce_glue_gpa_to_ua(vm: *mut c_void, gpa: u64, ua: *mut u64) -> bool;
    }
}

/// A reference to a KVM VM, taken from a VM file descriptor.
///
/// # Invariants
///
/// `vm` points to a `struct kvm` on which this value holds one reference.
pub(crate) struct VmRef {
    vm: NonNull<c_void>,
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

    /// The VM's identity: its address, stable while the reference is held.
    pub(crate) fn id(&self) -> usize {
        self.vm.as_ptr() as usize
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
    mm: NonNull<c_void>,
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

/// `1 << order` zeroed, physically contiguous pages.
///
/// # Invariants
///
/// `page` is the first of `1 << order` pages allocated by `alloc_pages()` and owned by this
/// value; `words` is their kernel virtual address, valid for `8 << (order + PAGE_SHIFT - 3)`
/// bytes and aligned to a page.
pub(crate) struct Block {
    page: NonNull<c_void>,
    words: NonNull<AtomicU64>,
    order: u32,
}

// SAFETY: The pages are owned by this value and accessed only through atomics.
unsafe impl Send for Block {}
// SAFETY: Shared access goes through `AtomicU64` only.
unsafe impl Sync for Block {}

impl Block {
    /// Allocates `1 << order` zeroed pages, or fails without a warning.
    pub(crate) fn alloc(order: u32) -> Option<Self> {
        // SAFETY: Always safe to call; the result is null or owned by the caller.
        let page = NonNull::new(unsafe { ffi::tce_glue_alloc_pages(order) })?;
        // SAFETY: `page` was just allocated; pages of the kernel's linear map have an address.
        let addr = unsafe { ffi::tce_glue_page_address(page.as_ptr()) };
        let Some(words) = NonNull::new(addr.cast::<AtomicU64>()) else {
            // SAFETY: `page` came from `tce_glue_alloc_pages(order)` and is not used again.
            unsafe { ffi::tce_glue_free_pages(page.as_ptr(), order) };
            return None;
        };
        // INVARIANT: the pages are ours, zeroed, and mapped at `words`.
        Some(Self { page, words, order })
    }

    /// The block's words.
    pub(crate) fn words(&self) -> &[AtomicU64] {
        let len = 1usize << (self.order as usize + PAGE_SHIFT - 3);
        // SAFETY: By the type invariant `words` is valid and aligned for `len` words for as long
        // as `self` lives, and `AtomicU64` has the size and alignment of `u64`.
        unsafe { core::slice::from_raw_parts(self.words.as_ptr(), len) }
    }

    /// The block's host physical address.
    pub(crate) fn phys(&self) -> u64 {
        // SAFETY: By the type invariant `page` is a live page.
        unsafe { ffi::tce_glue_page_phys(self.page.as_ptr()) }
    }

    /// The block's first `struct page`, for the fault handler (which takes its own reference).
    pub(crate) fn page_ptr(&self) -> PagePtr {
        self.page.as_ptr()
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the pages are ours; mappings hold their own references.
        unsafe { ffi::tce_glue_free_pages(self.page.as_ptr(), self.order) };
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

/// Registers the module's TCE hypercall handlers with KVM (a no-op where KVM has no TCE
/// hypercalls): `EBUSY` if another module's handlers are registered.
pub(crate) fn hooks_register() -> Result {
    // SAFETY: Always safe to call; the handlers it registers are this module's functions,
    // which stay until `hooks_unregister()` has returned.
    let ret = unsafe { ffi::tce_glue_hooks_register() };
    if ret != 0 {
        return Err(Error::from_errno(ret));
    }
    Ok(())
}

/// Unregisters the handlers and waits until no hypercall runs in them.
pub(crate) fn hooks_unregister() {
    // SAFETY: Called once, by `hooks::Hooks::drop`, after a successful `hooks_register()`.
    unsafe { ffi::tce_glue_hooks_unregister() };
}

/// Waits until no hypercall runs in the handlers (a no-op where there are none).
pub(crate) fn hooks_synchronize() {
    // SAFETY: Always safe to call from process context, which every caller is in.
    unsafe { ffi::tce_glue_hooks_synchronize() };
}

/// The vCPU making a hypercall, and its VM.
///
/// # Invariants
///
/// `vcpu` points to a `struct kvm_vcpu` that lives, and whose thread is the current one, for as
/// long as this value exists; `vm` is its `struct kvm`.
pub(crate) struct VcpuRef {
    vcpu: *mut c_void,
    vm: *mut c_void,
}

impl VcpuRef {
    /// Wraps the vCPU KVM passed to a hypercall handler.
    ///
    /// # Safety
    ///
    /// `vcpu` must be a live vCPU, running the current hypercall, and the value must not outlive
    /// that hypercall.
    pub(crate) unsafe fn new(vcpu: *mut c_void) -> Self {
        // SAFETY: By the function's safety requirements `vcpu` is live.
        let vm = unsafe { ffi::tce_glue_vcpu_vm(vcpu) };
        // INVARIANT: `vcpu` is guaranteed by the caller, `vm` was just read from it.
        Self { vcpu, vm }
    }

    /// The identity of the vCPU's VM, as [`VmRef::id`] gives it.
    pub(crate) fn vm_id(&self) -> usize {
        self.vm as usize
    }

    /// Sets general-purpose register `reg` of the guest, the way a hypercall returns values.
    pub(crate) fn set_gpr(&self, reg: u32, value: u64) {
        // SAFETY: By the type invariant `vcpu` is live, and the current thread runs it.
        unsafe { ffi::tce_glue_vcpu_set_gpr(self.vcpu, reg, value) };
    }

    /// Holds the VM's memory slots stable for guest address translations, until the returned
    /// value is dropped.
    pub(crate) fn memslots(&self) -> MemSlots<'_> {
        // SAFETY: By the type invariant `vm` is the live VM of a live vCPU.
        let idx = unsafe { ffi::tce_glue_memslots_lock(self.vm) };
        // INVARIANT: the read side was just entered, and the VM lives as long as `self`.
        MemSlots {
            vm: self.vm,
            idx,
            _vcpu: core::marker::PhantomData,
        }
    }
}

/// A VM's memory slots, held stable (on the read side of `kvm->srcu`).
///
/// # Invariants
///
/// `vm` is a live VM, and `idx` came from entering the read side of its `srcu`, which this
/// value leaves when dropped.
#[must_use]
pub(crate) struct MemSlots<'a> {
    vm: *mut c_void,
    idx: c_int,
    _vcpu: core::marker::PhantomData<&'a VcpuRef>,
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

impl Drop for MemSlots<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `idx` is the read side entered for this VM, left once.
        unsafe { ffi::tce_glue_memslots_unlock(self.vm, self.idx) };
    }
}

/// Reads `out.len()` big-endian words at user address `ua` of the current process, in one
/// copy.
pub(crate) fn read_user_be64(ua: u64, out: &mut [u64]) -> Result {
    let ua = usize::try_from(ua).map_err(|_| EFAULT)?;
    let len = out.len().checked_mul(8).ok_or(EFAULT)?;
    UserSlice::new(UserPtr::from_addr(ua), len)
        .reader()
        .read_slice(AsBytes::as_bytes_mut(out))?;
    for word in out.iter_mut() {
        *word = u64::from_be(*word);
    }
    Ok(())
}
