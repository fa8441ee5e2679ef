// SPDX-License-Identifier: GPL-2.0

//! A sparse array of host pages, allocated on first use, in two levels.
//!
//! The first level is allocated with the table and has one slot per chunk of
//! [`CHUNK_PAGES`] pages; a chunk's slot array is allocated when one of its pages is. So a
//! 2^31-entry window costs a few kilobytes until the guest uses it, and walking a range that has
//! no pages costs one check per absent chunk, not one per page or per entry.

use core::sync::atomic::{
    AtomicU64,
    Ordering, //
};

use super::env::{
    AllocError,
    Host,
    SlotArray,
    TablePage, //
};

/// log2 of the number of pages per chunk.
const CHUNK_SHIFT: u32 = 9;
/// Number of pages per chunk.
pub(crate) const CHUNK_PAGES: u64 = 1 << CHUNK_SHIFT;

/// A sparse array of `len` host pages.
pub(crate) struct SparsePages<H: Host> {
    host: H,
    len: u64,
    chunks: H::Slots<H::PageSlots>,
    /// Pages allocated so far (a page two threads raced for may count twice).
    allocated: AtomicU64,
}

impl<H: Host> SparsePages<H> {
    /// Creates an array of `len` absent pages.
    pub(crate) fn new(host: H, len: u64) -> Result<Self, AllocError> {
        let nchunks = usize::try_from(len.div_ceil(CHUNK_PAGES)).map_err(|_| AllocError)?;
        let chunks = host.alloc_slots(nchunks)?;
        Ok(Self {
            host,
            len,
            chunks,
            allocated: AtomicU64::new(0),
        })
    }

    /// Number of pages the array can hold.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Splits a page number into chunk and slot indices. `page < self.len`.
    #[inline]
    fn split(page: u64) -> (usize, usize) {
        // Both fit: the chunk index is below the slot array's length, which is a usize, and the
        // slot index is below CHUNK_PAGES.
        let chunk = (page >> CHUNK_SHIFT) as usize;
        let slot = (page & (CHUNK_PAGES - 1)) as usize;
        (chunk, slot)
    }

    /// Page `page` if it has been allocated.
    #[inline]
    pub(crate) fn get(&self, page: u64) -> Option<&H::Page> {
        if page >= self.len {
            return None;
        }
        let (chunk, slot) = Self::split(page);
        self.chunks.get(chunk)?.get(slot)
    }

    /// Page `page`, allocated (zeroed) if it was absent. `page < self.len()`.
    ///
    /// A page that exists costs what [`SparsePages::get`] costs: the allocation is a call of
    /// its own, out of the hypercalls' way.
    #[inline]
    pub(crate) fn get_or_alloc(&self, page: u64) -> Result<&H::Page, AllocError> {
        match self.get(page) {
            Some(p) => Ok(p),
            None => self.alloc(page),
        }
    }

    /// The allocating half of [`SparsePages::get_or_alloc`].
    #[cold]
    #[inline(never)]
    fn alloc(&self, page: u64) -> Result<&H::Page, AllocError> {
        if page >= self.len {
            return Err(AllocError);
        }
        let (chunk, slot) = Self::split(page);
        let slots = match self.chunks.get(chunk) {
            Some(s) => s,
            None => {
                let fresh = self.host.alloc_page_slots(CHUNK_PAGES as usize)?;
                self.chunks.get_or_insert(chunk, fresh)?
            }
        };
        if let Some(p) = slots.get(slot) {
            return Ok(p);
        }
        let fresh = self.host.alloc_block(self.host.page_shift())?;
        let page = slots.get_or_insert(slot, fresh)?;
        self.allocated.fetch_add(1, Ordering::Relaxed);
        Ok(page)
    }

    /// How many pages have been allocated so far: a count that only grows. A thread that reads
    /// it before and after its own calls sees it move if they allocated a page.
    pub(crate) fn allocated(&self) -> u64 {
        self.allocated.load(Ordering::Relaxed)
    }

    /// Calls `f(page_number, page)` for every allocated page in `[first, last]`, skipping absent
    /// chunks whole.
    pub(crate) fn for_each_present(&self, first: u64, last: u64, mut f: impl FnMut(u64, &H::Page)) {
        if first > last || first >= self.len {
            return;
        }
        let last = last.min(self.len - 1);
        let mut chunk = first >> CHUNK_SHIFT;
        while chunk <= last >> CHUNK_SHIFT {
            // The chunk index is below the slot array's length, see split().
            if let Some(slots) = self.chunks.get(chunk as usize) {
                let base = chunk << CHUNK_SHIFT;
                let lo = first.max(base);
                let hi = last.min(base + CHUNK_PAGES - 1);
                for page in lo..=hi {
                    if let Some(p) = slots.get((page - base) as usize) {
                        f(page, p);
                    }
                }
            }
            chunk += 1;
        }
    }

    /// Stores the numbers of the allocated pages at or after `start`, in ascending order, into
    /// `out` until it is full; returns how many were stored. Absent chunks cost one check each.
    pub(crate) fn present_from(&self, start: u64, out: &mut [u64]) -> usize {
        let mut n = 0;
        let mut chunk = start >> CHUNK_SHIFT;
        while n < out.len() && chunk < self.len.div_ceil(CHUNK_PAGES) {
            // The chunk index is below the slot array's length, see split().
            if let Some(slots) = self.chunks.get(chunk as usize) {
                let base = chunk << CHUNK_SHIFT;
                let lo = start.max(base);
                let hi = (base + CHUNK_PAGES).min(self.len);
                for page in lo..hi {
                    if n == out.len() {
                        break;
                    }
                    if slots.get((page - base) as usize).is_some() {
                        out[n] = page;
                        n += 1;
                    }
                }
            }
            chunk += 1;
        }
        n
    }

    /// Number of allocated pages.
    pub(crate) fn present(&self) -> u64 {
        let mut n = 0;
        if self.len > 0 {
            self.for_each_present(0, self.len - 1, |_, _| n += 1);
        }
        n
    }

    /// Reads word `word` of page `page`; an absent page reads as zero.
    #[inline]
    pub(crate) fn load(&self, page: u64, word: usize) -> u64 {
        self.get(page).map_or(0, |p| p.load(word))
    }
}
