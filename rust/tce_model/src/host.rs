// SPDX-License-Identifier: GPL-2.0

//! The simulated host: heap pages, set-once slots, locks and a locked-memory limit.
//!
//! Allocation failures can be injected to prove that every error path leaves the tables as
//! they were. Like the kernel's page allocator, the simulated host refuses a single
//! allocation larger than [`MAX_ORDER`] orders of pages, and a slot array whose pointers would
//! not fit in that much memory.

use std::sync::{
    atomic::{
        AtomicI64,
        AtomicU64,
        Ordering, //
    },
    Arc, Mutex, OnceLock,
};

use tce_engine::env::{
    AllocError,
    EntryLock,
    Host,
    LimitError,
    SlotArray,
    TablePage, //
};

/// The largest single allocation is `1 << (page_shift + MAX_ORDER)` bytes.
pub const MAX_ORDER: u32 = 10;

/// A heap block of 64-bit words; its "physical address" is its heap address.
pub struct SimPage(Box<[AtomicU64]>);

impl TablePage for SimPage {
    #[inline]
    fn words(&self) -> usize {
        self.0.len()
    }

    #[inline]
    fn load(&self, i: usize) -> u64 {
        self.0[i].load(Ordering::Relaxed)
    }

    #[inline]
    fn store(&self, i: usize, v: u64) {
        self.0[i].store(v, Ordering::Relaxed)
    }

    #[inline]
    fn swap(&self, i: usize, v: u64) -> u64 {
        self.0[i].swap(v, Ordering::AcqRel)
    }

    #[inline]
    fn phys(&self) -> u64 {
        self.0.as_ptr() as u64
    }
}

/// Set-once slots; a value is boxed so that an empty slot costs little.
pub struct SimSlots<T>(Box<[OnceLock<Box<T>>]>);

impl<T: Send + Sync> SlotArray<T> for SimSlots<T> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, i: usize) -> Option<&T> {
        self.0[i].get().map(|b| &**b)
    }

    fn get_or_insert(&self, i: usize, v: T) -> Result<&T, AllocError> {
        let mut v = Some(v);
        // The closure runs at most once; the loser's value is dropped with `v`.
        Ok(self.0[i].get_or_init(|| Box::new(v.take().expect("value taken once"))))
    }
}

/// A mutex standing in for a kernel spinlock.
pub struct SimLock(Mutex<()>);

impl EntryLock for SimLock {
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }
}

#[derive(Debug)]
struct State {
    page_shift: u32,
    /// Locked-memory limit in host pages, `u64::MAX` for none.
    limit: u64,
    locked: AtomicU64,
    /// Allocations that may still succeed; negative for no limit.
    budget: AtomicI64,
    blocks: AtomicU64,
}

/// The simulated host. Cloning gives another handle to the same host.
#[derive(Clone, Debug)]
pub struct SimHost(Arc<State>);

impl SimHost {
    /// A host with `1 << page_shift` byte pages and no locked-memory limit.
    pub fn new(page_shift: u32) -> Self {
        Self::limited(page_shift, u64::MAX)
    }

    /// A host whose locked-memory limit is `limit_bytes`.
    pub fn with_limit(page_shift: u32, limit_bytes: u64) -> Self {
        Self::limited(page_shift, limit_bytes >> page_shift)
    }

    fn limited(page_shift: u32, limit_pages: u64) -> Self {
        Self(Arc::new(State {
            page_shift,
            limit: limit_pages,
            locked: AtomicU64::new(0),
            budget: AtomicI64::new(-1),
            blocks: AtomicU64::new(0),
        }))
    }

    /// Lets the next `n` allocations succeed and fails every one after them.
    pub fn fail_after(&self, n: u64) {
        self.0
            .budget
            .store(n.min(i64::MAX as u64) as i64, Ordering::SeqCst);
    }

    /// Removes any allocation-failure injection.
    pub fn never_fail(&self) {
        self.0.budget.store(-1, Ordering::SeqCst);
    }

    /// Host pages charged to the locked-memory limit.
    pub fn locked_pages(&self) -> u64 {
        self.0.locked.load(Ordering::SeqCst)
    }

    /// Blocks currently allocated (table pages and levels).
    pub fn live_blocks(&self) -> u64 {
        self.0.blocks.load(Ordering::SeqCst)
    }

    fn take_budget(&self) -> Result<(), AllocError> {
        let r = self
            .0
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| match b {
                b if b < 0 => Some(b),
                0 => None,
                b => Some(b - 1),
            });
        r.map(|_| ()).map_err(|_| AllocError)
    }
}

/// A block that counts itself out of the host when freed.
pub struct CountedPage {
    page: SimPage,
    host: Arc<State>,
}

impl Drop for CountedPage {
    fn drop(&mut self) {
        self.host.blocks.fetch_sub(1, Ordering::SeqCst);
    }
}

impl TablePage for CountedPage {
    #[inline]
    fn words(&self) -> usize {
        self.page.words()
    }

    #[inline]
    fn load(&self, i: usize) -> u64 {
        self.page.load(i)
    }

    #[inline]
    fn store(&self, i: usize, v: u64) {
        self.page.store(i, v)
    }

    #[inline]
    fn swap(&self, i: usize, v: u64) -> u64 {
        self.page.swap(i, v)
    }

    #[inline]
    fn phys(&self) -> u64 {
        self.page.phys()
    }
}

impl Host for SimHost {
    type Page = CountedPage;
    type PageSlots = SimSlots<CountedPage>;
    type Slots<T: Send + Sync> = SimSlots<T>;
    type Lock = SimLock;

    fn page_shift(&self) -> u32 {
        self.0.page_shift
    }

    fn alloc_block(&self, shift: u32) -> Result<Self::Page, AllocError> {
        if shift < self.0.page_shift || shift > self.0.page_shift + MAX_ORDER {
            return Err(AllocError);
        }
        self.take_budget()?;
        let words = 1usize << (shift - 3);
        let page = SimPage((0..words).map(|_| AtomicU64::new(0)).collect());
        self.0.blocks.fetch_add(1, Ordering::SeqCst);
        Ok(CountedPage {
            page,
            host: self.0.clone(),
        })
    }

    fn alloc_page_slots(&self, len: usize) -> Result<Self::PageSlots, AllocError> {
        self.alloc_slots(len)
    }

    fn alloc_slots<T: Send + Sync>(&self, len: usize) -> Result<Self::Slots<T>, AllocError> {
        // One pointer per slot, as the kernel's implementation stores them.
        if len > 1usize << (self.0.page_shift + MAX_ORDER - 3) {
            return Err(AllocError);
        }
        self.take_budget()?;
        Ok(SimSlots((0..len).map(|_| OnceLock::new()).collect()))
    }

    fn alloc_lock(&self) -> Result<Self::Lock, AllocError> {
        self.take_budget()?;
        Ok(SimLock(Mutex::new(())))
    }

    fn lock_pages(&self, pages: u64) -> Result<(), LimitError> {
        let limit = self.0.limit;
        self.0
            .locked
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| {
                l.checked_add(pages).filter(|&n| n <= limit)
            })
            .map(|_| ())
            .map_err(|_| LimitError)
    }

    fn unlock_pages(&self, pages: u64) {
        self.0.locked.fetch_sub(pages, Ordering::SeqCst);
    }
}
