// SPDX-License-Identifier: GPL-2.0

//! Hardware TCE tables with the powernv (IODA2) multi-level geometry.
//!
//! A table has 1 to 5 levels of equal size. Only the top level exists when the table is
//! created; a lower level is allocated when an entry below it is first mapped, and installed with
//! a set-once slot so that a losing racer frees its page. An unmap never allocates: an absent
//! level means every entry below it is already clear. Levels are freed only when the table is.
//!
//! Entries are big-endian. An intermediate entry holds the next level's physical address with
//! READ|WRITE set to mark it present. Each leaf has a mirror page that holds, big-endian, the
//! user address behind every mapped entry (Linux's `it_userspace`).

use core::sync::atomic::{
    AtomicU64,
    Ordering, //
};

use super::env::{
    AllocError,
    EntryLock,
    Host,
    SlotArray,
    TablePage, //
};
use super::tce::TCE_RW;

/// The most levels a table may have.
pub const MAX_LEVELS: u32 = 5;

/// The IOMMU page shifts the hardware supports: 4K, 64K, 2M, 16M, 256M and 1G.
pub const HW_PAGE_SHIFTS: [u32; 6] = [12, 16, 21, 24, 28, 30];

/// A table's geometry did not pass the powernv rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeometryError;

/// The shape of a hardware table.
///
/// # Invariants
///
/// `1 <= levels <= MAX_LEVELS`, `(level_shift - 3) * levels + page_shift < 55`,
/// `level_shift >= host page shift`, `size` is a power of two, and
/// `offset + size` does not overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    page_shift: u32,
    offset: u64,
    size: u64,
    levels: u32,
    level_shift: u32,
}

impl Geometry {
    /// Checks a window of `window_bytes` at `bus_offset`, with IOMMU pages of `1 << page_shift`
    /// bytes in `levels` levels, against the powernv rules for a host with `1 << host_page_shift`
    /// byte pages.
    pub fn new(
        host_page_shift: u32,
        page_shift: u32,
        bus_offset: u64,
        window_bytes: u64,
        levels: u32,
    ) -> Result<Self, GeometryError> {
        if !(1..=MAX_LEVELS).contains(&levels)
            || !HW_PAGE_SHIFTS.contains(&page_shift)
            || !window_bytes.is_power_of_two()
        {
            return Err(GeometryError);
        }
        let window_shift = window_bytes.trailing_zeros();
        if window_shift < page_shift || bus_offset & ((1u64 << page_shift) - 1) != 0 {
            return Err(GeometryError);
        }
        bus_offset.checked_add(window_bytes).ok_or(GeometryError)?;
        let entries_shift = window_shift - page_shift;
        let level_entries_shift = entries_shift.div_ceil(levels);
        let level_shift = (level_entries_shift + 3).max(host_page_shift);
        if (level_shift - 3) * levels + page_shift >= 55 {
            return Err(GeometryError);
        }
        // INVARIANT: each rule of the type's invariant was checked above.
        Ok(Self {
            page_shift,
            offset: bus_offset >> page_shift,
            size: 1 << entries_shift,
            levels,
            level_shift,
        })
    }

    /// log2 of the IOMMU page size.
    pub fn page_shift(&self) -> u32 {
        self.page_shift
    }

    /// The first entry index (bus offset >> page shift).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The number of entries in the window.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The number of levels.
    pub fn levels(&self) -> u32 {
        self.levels
    }

    /// log2 of the size in bytes of every level.
    pub fn level_shift(&self) -> u32 {
        self.level_shift
    }

    fn level_bits(&self) -> u32 {
        self.level_shift - 3
    }
}

/// One hardware entry and the user address behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HwEntry {
    /// The host physical address with the permission bits, as the hardware reads it.
    pub tce: u64,
    /// The user address mirrored for bookkeeping; meaningful only if `tce` has permissions.
    pub ua: u64,
}

impl HwEntry {
    /// The clear entry.
    pub const CLEAR: Self = Self { tce: 0, ua: 0 };

    /// Whether the entry gives the device any access.
    pub fn is_mapped(&self) -> bool {
        self.tce & TCE_RW != 0
    }
}

/// Why a hardware table could not be updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HwError {
    /// A level could not be allocated.
    NoMemory,
    /// The index is outside the table, or the hardware refused the update.
    Failed,
    /// An entry to clear records a user address in none of the VM's preregistered regions
    /// (another writer of the table, such as VFIO with another process's memory, mapped it).
    /// The entry was put back as it was, with its count, for that writer to clear.
    Foreign,
}

/// What the hypercalls need from a hardware table attached to a window.
///
/// [`HwTable`] is the engine's own implementation; the kernel module may wrap a platform's
/// `struct iommu_table` instead.
pub trait IommuTable {
    /// log2 of the IOMMU page size.
    fn page_shift(&self) -> u32;
    /// The first entry index (bus offset >> page shift).
    fn offset(&self) -> u64;
    /// The number of entries.
    fn size(&self) -> u64;
    /// Exchanges absolute entry `index` with `new` and returns the old entry. Must not allocate
    /// when `new` is clear. Exchanges of one table are atomic with respect to each other.
    fn exchange(&self, index: u64, new: HwEntry) -> Result<HwEntry, HwError>;
    /// Clears the absolute entries `[index, index + n)` and calls `f` with each old entry that
    /// was mapped. If `f` returns `false` (its count cannot be returned), that entry is put
    /// back as it was and the clear stops there with [`HwError::Foreign`]. Never allocates.
    fn clear_range(
        &self,
        index: u64,
        n: u64,
        f: &mut dyn FnMut(HwEntry) -> bool,
    ) -> Result<(), HwError> {
        for i in index..index.saturating_add(n) {
            let old = self.exchange(i, HwEntry::CLEAR)?;
            if old.is_mapped() && !f(old) {
                self.exchange(i, old)?;
                return Err(HwError::Foreign);
            }
        }
        Ok(())
    }
    /// Invalidates the IOMMU's cache of `[index, index + n)` ("TCE kill").
    fn invalidate(&self, index: u64, n: u64);
}

/// One level of a table: its hardware page and, below it, either lower levels or the mirror.
struct Level<H: Host> {
    hw: H::Page,
    below: Below<H>,
}

enum Below<H: Host> {
    /// An intermediate level: one slot per entry.
    Levels(H::Slots<Level<H>>),
    /// A leaf: the user-address mirror of its entries.
    Mirror(H::Page),
}

/// A hardware table with the powernv multi-level geometry, kept in host memory.
pub struct HwTable<H: Host> {
    geo: Geometry,
    host: H,
    lock: H::Lock,
    top: Level<H>,
    level_pages: AtomicU64,
    invalidations: AtomicU64,
}

impl<H: Host> HwTable<H> {
    /// Creates a table with only its top level.
    pub fn new(host: H, geo: Geometry) -> Result<Self, AllocError> {
        let lock = host.alloc_lock()?;
        let top = Self::alloc_level(&host, &geo, geo.levels == 1)?;
        Ok(Self {
            geo,
            host,
            lock,
            top,
            level_pages: AtomicU64::new(1),
            invalidations: AtomicU64::new(0),
        })
    }

    fn alloc_level(host: &H, geo: &Geometry, leaf: bool) -> Result<Level<H>, AllocError> {
        let hw = host.alloc_block(geo.level_shift)?;
        let below = if leaf {
            Below::Mirror(host.alloc_block(geo.level_shift)?)
        } else {
            Below::Levels(host.alloc_slots(1 << geo.level_bits())?)
        };
        Ok(Level { hw, below })
    }

    /// The table's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// Number of level pages allocated, the top level included.
    pub fn level_pages(&self) -> u64 {
        self.level_pages.load(Ordering::Relaxed)
    }

    /// Number of cache invalidations issued.
    pub fn invalidations(&self) -> u64 {
        self.invalidations.load(Ordering::Relaxed)
    }

    /// Index of the entry for `rel` at `depth` (0 = top) within its level.
    fn slot(&self, rel: u64, depth: u32) -> usize {
        let bits = self.geo.level_bits();
        let shift = bits * (self.geo.levels - 1 - depth);
        // Masked to level_bits, which is below 64 and describes a slot array's length.
        ((rel >> shift) & ((1u64 << bits) - 1)) as usize
    }

    /// The leaf that holds window-relative entry `rel`, allocating missing levels if `alloc`.
    fn leaf(&self, rel: u64, alloc: bool) -> Result<Option<&Level<H>>, AllocError> {
        let mut level = &self.top;
        for depth in 0..self.geo.levels - 1 {
            let Below::Levels(slots) = &level.below else {
                break;
            };
            let n = self.slot(rel, depth);
            let child = match slots.get(n) {
                Some(c) => c,
                None if !alloc => return Ok(None),
                None => {
                    let leaf = depth + 2 == self.geo.levels;
                    let fresh = Self::alloc_level(&self.host, &self.geo, leaf)?;
                    let fresh_phys = fresh.hw.phys();
                    // A losing racer's level is dropped (freed) here.
                    let c = slots.get_or_insert(n, fresh)?;
                    if c.hw.phys() == fresh_phys {
                        self.level_pages.fetch_add(1, Ordering::Relaxed);
                    }
                    c
                }
            };
            if alloc && level.hw.load(n) == 0 {
                // Every mapper links the level before it maps below it; all store the same
                // value, so no mapper returns before the hardware can walk to its entry.
                level.hw.store(n, (child.hw.phys() | TCE_RW).to_be());
            }
            level = child;
        }
        Ok(Some(level))
    }

    fn relative(&self, index: u64) -> Option<u64> {
        let rel = index.checked_sub(self.geo.offset)?;
        (rel < self.geo.size).then_some(rel)
    }

    /// The raw hardware entry at window-relative `rel` (zero if its level is absent).
    pub fn raw(&self, rel: u64) -> Option<u64> {
        if rel >= self.geo.size {
            return None;
        }
        let leaf = self.leaf(rel, false).ok().flatten();
        Some(leaf.map_or(0, |l| {
            u64::from_be(l.hw.load(self.slot(rel, self.geo.levels - 1)))
        }))
    }

    /// The mirrored user address at window-relative `rel` (zero if absent).
    pub fn user_address(&self, rel: u64) -> Option<u64> {
        if rel >= self.geo.size {
            return None;
        }
        let leaf = self.leaf(rel, false).ok().flatten();
        Some(leaf.map_or(0, |l| match &l.below {
            Below::Mirror(m) => u64::from_be(m.load(self.slot(rel, self.geo.levels - 1))),
            Below::Levels(_) => 0,
        }))
    }

    fn swap_in_leaf(&self, leaf: &Level<H>, rel: u64, new: HwEntry) -> HwEntry {
        let word = self.slot(rel, self.geo.levels - 1);
        let Below::Mirror(mirror) = &leaf.below else {
            return HwEntry::CLEAR;
        };
        self.lock.with(|| HwEntry {
            tce: u64::from_be(leaf.hw.swap(word, new.tce.to_be())),
            ua: u64::from_be(mirror.swap(word, new.ua.to_be())),
        })
    }

    /// Clears every mapped entry of window-relative `[first, last]` below `level`, which covers
    /// entries from `base` at `depth`.
    fn clear_below(
        &self,
        level: &Level<H>,
        depth: u32,
        base: u64,
        first: u64,
        last: u64,
        f: &mut dyn FnMut(HwEntry) -> bool,
    ) -> bool {
        let bits = self.geo.level_bits();
        let span_shift = bits * (self.geo.levels - 1 - depth);
        let lo = ((first - base) >> span_shift) as usize;
        let hi = ((last - base) >> span_shift) as usize;
        match &level.below {
            Below::Mirror(_) => {
                for w in lo..=hi {
                    let rel = base + w as u64;
                    if level.hw.load(w) != 0 {
                        let old = self.swap_in_leaf(level, rel, HwEntry::CLEAR);
                        if old.is_mapped() && !f(old) {
                            // Put it back: the leaf exists, so this allocates nothing.
                            self.swap_in_leaf(level, rel, old);
                            return false;
                        }
                    }
                }
                true
            }
            Below::Levels(slots) => {
                for n in lo..=hi {
                    if let Some(child) = slots.get(n) {
                        let child_base = base + ((n as u64) << span_shift);
                        let child_last = child_base + ((1u64 << span_shift) - 1);
                        let done = self.clear_below(
                            child,
                            depth + 1,
                            child_base,
                            first.max(child_base),
                            last.min(child_last),
                            f,
                        );
                        if !done {
                            return false;
                        }
                    }
                }
                true
            }
        }
    }
}

impl<H: Host> IommuTable for HwTable<H> {
    fn page_shift(&self) -> u32 {
        self.geo.page_shift
    }

    fn offset(&self) -> u64 {
        self.geo.offset
    }

    fn size(&self) -> u64 {
        self.geo.size
    }

    fn exchange(&self, index: u64, new: HwEntry) -> Result<HwEntry, HwError> {
        let rel = self.relative(index).ok_or(HwError::Failed)?;
        let alloc = new.is_mapped();
        let leaf = self.leaf(rel, alloc).map_err(|_| HwError::NoMemory)?;
        let Some(leaf) = leaf else {
            return Ok(HwEntry::CLEAR);
        };
        let new = HwEntry {
            tce: if alloc { new.tce } else { 0 },
            ua: if alloc { new.ua } else { 0 },
        };
        Ok(self.swap_in_leaf(leaf, rel, new))
    }

    fn clear_range(
        &self,
        index: u64,
        n: u64,
        f: &mut dyn FnMut(HwEntry) -> bool,
    ) -> Result<(), HwError> {
        if n == 0 {
            return Ok(());
        }
        let first = self.relative(index).ok_or(HwError::Failed)?;
        let last = first.checked_add(n - 1).ok_or(HwError::Failed)?;
        if last >= self.geo.size {
            return Err(HwError::Failed);
        }
        if self.clear_below(&self.top, 0, 0, first, last, f) {
            Ok(())
        } else {
            Err(HwError::Foreign)
        }
    }

    fn invalidate(&self, _index: u64, _n: u64) {
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }
}
