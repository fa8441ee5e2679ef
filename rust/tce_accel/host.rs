// SPDX-License-Identifier: GPL-2.0

//! The engine's host environment in the kernel: pages, set-once slots, spinlocks and the
//! locked-memory charge of the table creator's address space.

use core::ptr;
use core::sync::atomic::{
    AtomicPtr,
    AtomicU64,
    AtomicUsize,
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

/// A block of table memory: a [`Block`]'s word, so that [`KPageSlots`] keeps it in place and a
/// lookup goes from the slot straight to the memory.
///
/// # Invariants
///
/// The word is a live block's (`Block::into_word`). An owned `KPage` owns the block; a
/// borrowed one is a slot of a [`KPageSlots`], which owns it and never changes it while it
/// lends it.
#[repr(transparent)]
pub(crate) struct KPage(AtomicUsize);

impl KPage {
    fn new(block: Block) -> Self {
        // INVARIANT: the word is the block's, now owned by this value.
        Self(AtomicUsize::new(block.into_word()))
    }

    /// The block's word. A slot is set once before it is lent (its `Acquire` load in
    /// [`KPageSlots::get`] saw it), so a relaxed load reads what was stored.
    #[inline]
    fn word(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// The first `struct page`, for the fault handler.
    pub(crate) fn page_ptr(&self) -> PagePtr {
        // SAFETY: By the type invariant the word is a live block's.
        unsafe { Block::page_of(self.word()) }
    }

    #[inline]
    fn words_slice(&self) -> &[AtomicU64] {
        // SAFETY: By the type invariant the word is a live block's, which lives as long as
        // `self` (owned) or the slot array lending `self`.
        unsafe { Block::words_of(self.word()) }
    }
}

impl Drop for KPage {
    fn drop(&mut self) {
        // SAFETY: Only an owned `KPage` is dropped (a slot array lends references and frees its
        // words itself), and by the type invariant it owns the block.
        drop(unsafe { Block::from_word(*self.0.get_mut()) });
    }
}

impl TablePage for KPage {
    #[inline]
    fn words(&self) -> usize {
        self.words_slice().len()
    }

    #[inline]
    fn load(&self, i: usize) -> u64 {
        self.words_slice()[i].load(Ordering::Relaxed)
    }

    #[inline]
    fn store(&self, i: usize, v: u64) {
        self.words_slice()[i].store(v, Ordering::Relaxed)
    }

    fn store_run(&self, start: usize, values: &[u64]) {
        let words = &self.words_slice()[start..start + values.len()];
        for (w, &v) in words.iter().zip(values) {
            w.store(v, Ordering::Relaxed);
        }
    }

    #[inline]
    fn swap(&self, i: usize, v: u64) -> u64 {
        self.words_slice()[i].swap(v, Ordering::AcqRel)
    }

    fn phys(&self) -> u64 {
        // SAFETY: By the type invariant the word is a live block's.
        unsafe { Block::phys_of(self.word()) }
    }
}

/// A set-once array of blocks, each kept in place as its word (zero while the slot is empty).
///
/// # Invariants
///
/// A non-zero slot holds the word of a block owned by the array, and never changes until the
/// array is dropped.
pub(crate) struct KPageSlots {
    slots: KVec<AtomicUsize>,
}

impl KPageSlots {
    fn new(len: usize) -> Result<Self, AllocError> {
        let mut slots = KVec::with_capacity(len, slot_flags()).map_err(|_| AllocError)?;
        for _ in 0..len {
            slots
                .push_within_capacity(AtomicUsize::new(0))
                .map_err(|_| AllocError)?;
        }
        // INVARIANT: every slot is empty.
        Ok(Self { slots })
    }

    /// Slot `i` as the page it holds. `KPage` is a transparent `AtomicUsize`.
    ///
    /// # Safety
    ///
    /// The slot must be non-zero.
    #[inline]
    unsafe fn lend(slot: &AtomicUsize) -> &KPage {
        // SAFETY: `KPage` is `repr(transparent)` over `AtomicUsize`; by the function's safety
        // requirements and the type invariant the slot holds a block the array owns, unchanged
        // while it is borrowed, which is the `KPage` invariant for a borrowed page.
        unsafe { &*core::ptr::from_ref(slot).cast::<KPage>() }
    }
}

impl SlotArray<KPage> for KPageSlots {
    fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&KPage> {
        let slot = self.slots.get(i)?;
        // Acquire: pairs with the release of the filling compare-exchange, so the block's
        // zeroed contents are seen.
        // SAFETY: The slot is non-zero.
        (slot.load(Ordering::Acquire) != 0).then(|| unsafe { Self::lend(slot) })
    }

    fn get_or_insert(&self, i: usize, v: KPage) -> Result<&KPage, AllocError> {
        let slot = self.slots.get(i).ok_or(AllocError)?;
        let word = core::mem::ManuallyDrop::new(v).word();
        if let Err(cur) = slot.compare_exchange(0, word, Ordering::AcqRel, Ordering::Acquire) {
            debug_assert_ne!(cur, 0);
            // SAFETY: `word` is the block `v` owned, which lost the race and is freed here.
            drop(unsafe { Block::from_word(word) });
        }
        // SAFETY: The slot is non-zero now, set by this call or by the winner of the race.
        Ok(unsafe { Self::lend(slot) })
    }
}

impl Drop for KPageSlots {
    fn drop(&mut self) {
        for slot in self.slots.iter_mut() {
            let word = *slot.get_mut();
            if word != 0 {
                // SAFETY: By the type invariant a non-zero slot holds a block the array owns,
                // freed once, here; no borrow outlives the array.
                drop(unsafe { Block::from_word(word) });
            }
        }
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
    type PageSlots = KPageSlots;
    type Slots<T: Send + Sync> = KSlots<T>;
    type Lock = KLock;

    fn page_shift(&self) -> u32 {
        PAGE_SHIFT as u32
    }

    fn alloc_block(&self, shift: u32) -> Result<KPage, AllocError> {
        let order = shift.checked_sub(PAGE_SHIFT as u32).ok_or(AllocError)?;
        Block::alloc(order).map(KPage::new).ok_or(AllocError)
    }

    fn alloc_page_slots(&self, len: usize) -> Result<KPageSlots, AllocError> {
        KPageSlots::new(len)
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
