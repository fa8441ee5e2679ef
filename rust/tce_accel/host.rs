// SPDX-License-Identifier: GPL-2.0

//! The engine's host environment in the kernel: pages, set-once slots, spinlocks and the
//! locked-memory charge of the table creator's address space.

use core::ptr;
use core::sync::atomic::{
    AtomicPtr,
    AtomicU64,
    Ordering, //
};

use kernel::{
    alloc::flags::{
        __GFP_NOWARN, //
        GFP_KERNEL_ACCOUNT,
    },
    new_spinlock,
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        Arc,
        SpinLock, //
    },
};

use crate::engine::env::{
    AllocError,
    EntryLock,
    Host,
    LimitError,
    SlotArray,
    TablePage, //
};
use crate::glue::{
    Block,
    MmRef,
    PagePtr,
    VmRef, //
};

/// A block of table memory.
pub(crate) struct KPage(Block);

impl KPage {
    /// The first `struct page`, for the fault handler.
    pub(crate) fn page_ptr(&self) -> PagePtr {
        self.0.page_ptr()
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        &self.0.words()[i]
    }
}

impl TablePage for KPage {
    fn words(&self) -> usize {
        self.0.words().len()
    }

    fn load(&self, i: usize) -> u64 {
        self.word(i).load(Ordering::Relaxed)
    }

    fn store(&self, i: usize, v: u64) {
        self.word(i).store(v, Ordering::Relaxed)
    }

    fn swap(&self, i: usize, v: u64) -> u64 {
        self.word(i).swap(v, Ordering::AcqRel)
    }

    fn phys(&self) -> u64 {
        self.0.phys()
    }
}

/// How slot arrays and their values are allocated: charged to the caller's memory cgroup, and
/// without a warning on failure, which user space can provoke with a huge window.
fn slot_flags() -> kernel::alloc::Flags {
    GFP_KERNEL_ACCOUNT | __GFP_NOWARN
}

/// Set-once slots: one atomic pointer each, to a boxed value.
///
/// # Invariants
///
/// Every non-null pointer in `slots` came from `KBox::into_raw` and is owned by the array; it
/// is never replaced or freed before the array is dropped.
pub(crate) struct KSlots<T> {
    slots: KVec<AtomicPtr<T>>,
}

// SAFETY: The array owns its values; moving it moves their ownership.
unsafe impl<T: Send> Send for KSlots<T> {}
// SAFETY: Values are published with release/acquire and only shared (`&T`) access is given.
unsafe impl<T: Send + Sync> Sync for KSlots<T> {}

impl<T> KSlots<T> {
    fn new(len: usize) -> Result<Self, AllocError> {
        // kmalloc, not vmalloc, and quietly: like KVM's own table, a window too large for one
        // allocation fails at once with ENOMEM, instead of a huge vmalloc that could wake the
        // OOM killer (a root VMM's locked-memory charge is not limited).
        let mut slots = KVec::with_capacity(len, slot_flags()).map_err(|_| AllocError)?;
        for _ in 0..len {
            slots
                .push_within_capacity(AtomicPtr::new(ptr::null_mut()))
                .map_err(|_| AllocError)?;
        }
        // INVARIANT: every slot starts null.
        Ok(Self { slots })
    }
}

impl<T: Send + Sync> SlotArray<T> for KSlots<T> {
    fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&T> {
        let p = self.slots.get(i)?.load(Ordering::Acquire);
        // SAFETY: By the type invariant a non-null pointer is a live value owned by `self`.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    fn get_or_insert(&self, i: usize, v: T) -> Result<&T, AllocError> {
        if let Some(cur) = self.get(i) {
            return Ok(cur);
        }
        let raw = KBox::into_raw(KBox::new(v, slot_flags()).map_err(|_| AllocError)?);
        match self.slots[i].compare_exchange(
            ptr::null_mut(),
            raw,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // INVARIANT: `raw` is now owned by the array and lives as long as it.
            // SAFETY: `raw` is live: it was just installed and is freed only with the array.
            Ok(_) => Ok(unsafe { &*raw }),
            Err(cur) => {
                // SAFETY: We lost the race, so `raw` is still ours; it came from `into_raw`.
                drop(unsafe { KBox::from_raw(raw) });
                // SAFETY: By the type invariant the winner's pointer is live and owned by `self`.
                Ok(unsafe { &*cur })
            }
        }
    }
}

impl<T> Drop for KSlots<T> {
    fn drop(&mut self) {
        for slot in self.slots.iter() {
            let p = slot.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: By the type invariant `p` came from `KBox::into_raw` and is owned by
                // the array, which is being dropped.
                drop(unsafe { KBox::from_raw(p) });
            }
        }
    }
}

/// A spinlock for the hardware tables' leaf updates.
pub(crate) struct KLock(Pin<KBox<SpinLock<()>>>);

impl EntryLock for KLock {
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.0.lock();
        f()
    }
}

/// The host of one table: page allocation and its creator's locked-memory charge.
#[derive(Clone)]
pub(crate) struct KHost {
    mm: Option<Arc<MmRef>>,
}

impl KHost {
    /// A host charging the caller's address space (nothing in a kernel thread).
    pub(crate) fn current() -> Result<Self> {
        let mm = match MmRef::current() {
            Some(mm) => Some(Arc::new(mm, GFP_KERNEL_ACCOUNT)?),
            None => None,
        };
        Ok(Self { mm })
    }

    /// A host charging `vm`'s address space, as KVM charges a VM's tables.
    pub(crate) fn for_vm(vm: &VmRef) -> Result<Self> {
        Ok(Self {
            mm: Some(Arc::new(vm.mm()?, GFP_KERNEL_ACCOUNT)?),
        })
    }
}

impl Host for KHost {
    type Page = KPage;
    type Slots<T: Send + Sync> = KSlots<T>;
    type Lock = KLock;

    fn page_shift(&self) -> u32 {
        PAGE_SHIFT as u32
    }

    fn alloc_block(&self, shift: u32) -> Result<KPage, AllocError> {
        let order = shift.checked_sub(PAGE_SHIFT as u32).ok_or(AllocError)?;
        Block::alloc(order).map(KPage).ok_or(AllocError)
    }

    fn alloc_slots<T: Send + Sync>(&self, len: usize) -> Result<KSlots<T>, AllocError> {
        KSlots::new(len)
    }

    fn alloc_lock(&self) -> Result<KLock, AllocError> {
        KBox::pin_init(new_spinlock!(()), GFP_KERNEL_ACCOUNT)
            .map(KLock)
            .map_err(|_| AllocError)
    }

    fn lock_pages(&self, pages: u64) -> Result<(), LimitError> {
        match &self.mm {
            Some(mm) => mm.charge(pages).map_err(|_| LimitError),
            None => Ok(()),
        }
    }

    fn unlock_pages(&self, pages: u64) {
        if let Some(mm) = &self.mm {
            mm.uncharge(pages);
        }
    }
}
