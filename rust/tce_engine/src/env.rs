// SPDX-License-Identifier: GPL-2.0

//! The engine's environment: the small traits through which it reaches host and guest memory.
//!
//! The engine itself allocates nothing and contains no `unsafe`. Everything that needs either lives
//! behind these traits, which the kernel module implements with kernel pages, locks and memory
//! slots, and which user space (the simulator, the tests) implements with ordinary heap memory.
//!
//! # Implementing the traits
//!
//! - [`Host`] hands out zeroed pages, set-once slot arrays and locks, and does the
//!   locked-memory accounting of the process that owns a table.
//! - [`GuestMemory`] translates guest physical addresses to the VMM's user addresses (KVM memory
//!   slots) and reads big-endian TCE lists out of guest RAM.
//! - [`DmaMemory`] is the preregistered ("mm_iommu") memory that hardware tables may map.

/// A host allocation failed. The operation that needed it changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocError;

/// The locked-memory limit of the owning process would be exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitError;

/// A zeroed, naturally aligned block of host memory holding 64-bit words.
///
/// The block is freed when the value is dropped. Words are accessed atomically so that a table
/// can be read and written by several vCPUs and by the VMM's mapping at the same time.
pub trait TablePage: Send + Sync {
    /// Number of 64-bit words in the block.
    fn words(&self) -> usize;
    /// Reads word `i`. Panics if `i >= self.words()`: the engine never asks for that.
    fn load(&self, i: usize) -> u64;
    /// Writes word `i`.
    fn store(&self, i: usize, v: u64);
    /// Writes `values` into the words from `start` on. Panics if they do not fit. A host whose
    /// words take a step to reach (the module's) takes it once here, not once per word.
    fn store_run(&self, start: usize, values: &[u64]) {
        for (k, &v) in values.iter().enumerate() {
            self.store(start + k, v);
        }
    }
    /// Exchanges word `i`, returning the old value.
    fn swap(&self, i: usize, v: u64) -> u64;
    /// The block's host physical address, as a hardware table stores it.
    fn phys(&self) -> u64;
}

/// A fixed-length array of slots, each of which can be filled once.
///
/// This is how sparse structures grow without a lock: a filler that loses the race gets the
/// winner's value back and its own value is dropped (freed).
pub trait SlotArray<T>: Send + Sync {
    /// Number of slots.
    fn len(&self) -> usize;
    /// Whether the array has no slots.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The value in slot `i`, if it has been filled.
    fn get(&self, i: usize) -> Option<&T>;
    /// Fills slot `i` with `v` unless it is filled already; returns the value that is in the slot.
    /// Fails, dropping `v` and leaving the slot as it was, if storing the value needs memory that
    /// cannot be had.
    fn get_or_insert(&self, i: usize, v: T) -> Result<&T, AllocError>;
}

/// A lock that serialises short critical sections (a spinlock in the kernel).
pub trait EntryLock: Send + Sync {
    /// Runs `f` with the lock held.
    fn with<R>(&self, f: impl FnOnce() -> R) -> R;
}

/// Host memory and accounting, as seen by one table.
///
/// Values are cheap handles: a table keeps a clone of the handle it was created with.
pub trait Host: Clone + Send + Sync {
    /// A block of host memory, see [`TablePage`].
    type Page: TablePage;
    /// A set-once array of blocks, see [`SlotArray`]: the second level of a table's pages, which
    /// every lookup goes through. A host may keep each block in place in it rather than behind
    /// a pointer as [`Host::Slots`] does (the module does: a block there is one word).
    type PageSlots: SlotArray<Self::Page>;
    /// A set-once slot array, see [`SlotArray`].
    type Slots<T: Send + Sync>: SlotArray<T>;
    /// A lock, see [`EntryLock`].
    type Lock: EntryLock;

    /// The host page shift (12 for 4 KiB, 16 for 64 KiB pages).
    fn page_shift(&self) -> u32;
    /// Allocates a zeroed block of `1 << shift` bytes, `shift >= self.page_shift()`.
    fn alloc_block(&self, shift: u32) -> Result<Self::Page, AllocError>;
    /// Allocates an array of `len` empty slots for blocks.
    fn alloc_page_slots(&self, len: usize) -> Result<Self::PageSlots, AllocError>;
    /// Allocates an array of `len` empty slots.
    fn alloc_slots<T: Send + Sync>(&self, len: usize) -> Result<Self::Slots<T>, AllocError>;
    /// Allocates a lock.
    fn alloc_lock(&self) -> Result<Self::Lock, AllocError>;
    /// Charges `pages` host pages to the owner's locked-memory limit.
    fn lock_pages(&self, pages: u64) -> Result<(), LimitError>;
    /// Returns `pages` host pages charged by [`Host::lock_pages`].
    fn unlock_pages(&self, pages: u64);
}

/// A guest access went outside guest RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFault;

/// The guest's physical memory as the VMM maps it (KVM memory slots).
pub trait GuestMemory {
    /// Translates a guest physical address to the VMM's user address, or `None` if the address
    /// is not in any memory slot.
    fn gpa_to_ua(&self, gpa: u64) -> Option<u64>;
    /// Reads `out.len()` big-endian 64-bit words starting at `gpa` into `out` in host order.
    /// Fails if any of them is not in guest RAM, so a read of at least one word also checks
    /// that `gpa` is.
    fn read_be64(&self, gpa: u64, out: &mut [u64]) -> Result<(), GuestFault>;
}

/// Memory that user space has preregistered for DMA (`VFIO_IOMMU_SPAPR_REGISTER_MEMORY`).
///
/// Hardware tables may only map preregistered memory: its pages are pinned, and a region cannot
/// be unregistered while a hardware entry maps it (the "mapped" count).
pub trait DmaMemory {
    /// A handle to one registered region.
    type Region: Copy;
    /// The region that contains all of `[ua, ua + size)`, if any.
    fn lookup(&self, ua: u64, size: u64) -> Option<Self::Region>;
    /// The host physical address behind `ua`, if the region is backed by pages of at least
    /// `1 << page_shift` bytes.
    fn ua_to_hpa(&self, region: Self::Region, ua: u64, page_shift: u32) -> Option<u64>;
    /// Counts one more hardware entry mapping the region; `false` if the region is going away.
    fn mapped_inc(&self, region: Self::Region) -> bool;
    /// Counts one hardware entry fewer.
    fn mapped_dec(&self, region: Self::Region);
    /// Whether one region holds all of `[ua, ua + size)` and is backed by pages of at least
    /// `1 << page_shift` bytes: the check of a TCE before anything changes.
    ///
    /// The hypercalls use only this, [`DmaMemory::map_page`] and [`DmaMemory::unmap_page`].
    /// Their defaults are built from the four calls above; an implementation whose lookups
    /// cost (the kernel walks the registered regions) overrides them to look up once each.
    fn check_page(&self, ua: u64, size: u64, page_shift: u32) -> bool {
        self.lookup(ua, size)
            .and_then(|r| self.ua_to_hpa(r, ua, page_shift))
            .is_some()
    }
    /// Counts one hardware entry fewer on the region that holds `[ua, ua + size)`: the
    /// bookkeeping of an entry that was replaced or cleared. `false` if no region holds it,
    /// and then nothing was counted.
    fn unmap_page(&self, ua: u64, size: u64) -> bool {
        match self.lookup(ua, size) {
            Some(region) => {
                self.mapped_dec(region);
                true
            }
            None => false,
        }
    }
    /// Looks up the region of `[ua, ua + (1 << page_shift))`, translates `ua` and counts one more
    /// hardware entry mapping the region, as one step: returns the region and the host physical
    /// address.
    ///
    /// The default runs [`DmaMemory::lookup`], [`DmaMemory::ua_to_hpa`] and
    /// [`DmaMemory::mapped_inc`] in turn, which is right only where regions cannot go away
    /// between them. Where they can (the kernel: another thread unregisters the region and
    /// registers other pages at the same address), an implementation must override this so that
    /// the address it returns belongs to the region it counted.
    fn map_page(&self, ua: u64, page_shift: u32) -> Option<(Self::Region, u64)> {
        let region = self.lookup(ua, 1u64 << page_shift)?;
        let hpa = self.ua_to_hpa(region, ua, page_shift)?;
        self.mapped_inc(region).then_some((region, hpa))
    }
}
