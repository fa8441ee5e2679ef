// SPDX-License-Identifier: GPL-2.0

//! Guest-view TCE tables: what the guest's hypercalls update and the VMM maps.
//!
//! A table is created with `KVM_CREATE_SPAPR_TCE_64` arguments. Its locked-memory charge covers
//! the whole table and is taken up front, but its pages are allocated only when the VMM's mapping
//! faults on one or a hypercall writes a non-zero entry into one. Entries are host-endian.

use super::env::{
    AllocError,
    Host,
    TablePage, //
};
use super::sparse::SparsePages;

/// The smallest IOMMU page shift a table may use (4 KiB).
pub const MIN_PAGE_SHIFT: u32 = 12;
/// The largest IOMMU page shift a table may use (16 GiB).
pub const MAX_PAGE_SHIFT: u32 = 34;

/// The arguments of `KVM_CREATE_SPAPR_TCE_64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowParams {
    /// The logical I/O bus number that names the window.
    pub liobn: u64,
    /// log2 of the IOMMU page size.
    pub page_shift: u32,
    /// Flags; none are defined.
    pub flags: u32,
    /// The window's first entry: its bus address in IOMMU pages.
    pub offset: u64,
    /// The window's size in IOMMU pages (entries).
    pub size: u64,
}

/// Why a table could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateError {
    /// The arguments break the `KVM_CREATE_SPAPR_TCE_64` rules (`EINVAL`).
    Invalid,
    /// The locked-memory limit, or an allocation, failed (`ENOMEM`).
    NoMemory,
}

impl CreateError {
    /// The errno name, for logs and the simulator.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Invalid => "EINVAL",
            Self::NoMemory => "ENOMEM",
        }
    }
}

/// Why a fault on the table's mapping could not be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// The page is past the end of the table (`VM_FAULT_SIGBUS`).
    OutOfRange,
    /// The page could not be allocated (`VM_FAULT_OOM`).
    NoMemory,
}

impl WindowParams {
    /// The arguments for a window of `size` entries of `1 << page_shift` bytes, whose first
    /// entry is `offset`, named `liobn`; no flags (none are defined).
    pub const fn new(liobn: u64, page_shift: u32, offset: u64, size: u64) -> Self {
        Self {
            liobn,
            page_shift,
            flags: 0,
            offset,
            size,
        }
    }

    /// Checks the `KVM_CREATE_SPAPR_TCE_64` rules.
    ///
    /// Unlike Linux, which ignores `flags`, unknown flags are rejected so that they can be given
    /// a meaning later; and `offset + size` is computed with overflow checking, where Linux's
    /// unchecked sum could wrap and let a window through that ends past 2^64.
    pub fn validate(&self) -> Result<(), CreateError> {
        if self.size == 0
            || self.flags != 0
            || !(MIN_PAGE_SHIFT..=MAX_PAGE_SHIFT).contains(&self.page_shift)
        {
            return Err(CreateError::Invalid);
        }
        let end = self
            .offset
            .checked_add(self.size)
            .ok_or(CreateError::Invalid)?;
        if end > u64::MAX >> self.page_shift {
            return Err(CreateError::Invalid);
        }
        Ok(())
    }
}

/// A guest-view TCE table.
///
/// # Invariants
///
/// - `params` passed [`WindowParams::validate`].
/// - `pages.len()` host pages hold exactly `params.size` entries, rounded up to whole pages.
/// - `charged` host pages are charged to the owner's locked-memory limit while the table lives.
pub struct Window<H: Host> {
    params: WindowParams,
    entries_per_page_shift: u32,
    pages: SparsePages<H>,
    host: H,
    charged: u64,
}

impl<H: Host> Window<H> {
    /// Creates an empty table and charges it to the locked-memory limit.
    pub fn new(host: H, params: WindowParams) -> Result<Self, CreateError> {
        params.validate()?;
        let page_shift = host.page_shift();
        let entries_per_page_shift = page_shift - 3;
        let data_pages = params.size.div_ceil(1 << entries_per_page_shift);
        let charged = Self::charge_for(page_shift, data_pages);
        host.lock_pages(charged)
            .map_err(|_| CreateError::NoMemory)?;
        let pages = match SparsePages::new(host.clone(), data_pages) {
            Ok(p) => p,
            Err(AllocError) => {
                host.unlock_pages(charged);
                return Err(CreateError::NoMemory);
            }
        };
        // INVARIANT: params are valid, pages covers size entries and `charged` was charged.
        Ok(Self {
            params,
            entries_per_page_shift,
            pages,
            host,
            charged,
        })
    }

    /// The locked-memory charge, in host pages, of a table of `data_pages` pages.
    ///
    /// Like Linux: the data pages plus the pages of the table's bookkeeping (one pointer per data
    /// page and the header), because every page may end up allocated.
    pub fn charge_for(page_shift: u32, data_pages: u64) -> u64 {
        let header = core::mem::size_of::<Self>() as u64;
        let book = data_pages.saturating_mul(8).saturating_add(header);
        data_pages.saturating_add(book.div_ceil(1 << page_shift))
    }

    /// The creation arguments.
    pub fn params(&self) -> &WindowParams {
        &self.params
    }

    /// The window's LIOBN.
    pub fn liobn(&self) -> u64 {
        self.params.liobn
    }

    /// log2 of the window's IOMMU page size.
    pub fn page_shift(&self) -> u32 {
        self.params.page_shift
    }

    /// The first entry index (bus address >> page shift).
    pub fn offset(&self) -> u64 {
        self.params.offset
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.params.size
    }

    /// Host pages charged to the locked-memory limit.
    pub fn charged_pages(&self) -> u64 {
        self.charged
    }

    /// Host pages the table's mapping spans (the fault limit).
    pub fn mapping_pages(&self) -> u64 {
        self.pages.len()
    }

    /// Host pages currently allocated.
    pub fn present_pages(&self) -> u64 {
        self.pages.present()
    }

    /// Stores the numbers of the allocated host pages at or after `start`, ascending, into `out`
    /// until it is full; returns how many were stored. This is how a table is saved without
    /// touching the pages it never used.
    pub fn present_pages_from(&self, start: u64, out: &mut [u64]) -> usize {
        self.pages.present_from(start, out)
    }

    /// How many host pages have been allocated so far, by hypercalls and faults: a count that
    /// only grows (a page two threads raced for may count twice). Read before and after
    /// calls of the current thread, it tells whether they may have allocated a page, for one
    /// load each instead of a lookup per page.
    pub fn allocations(&self) -> u64 {
        self.pages.allocated()
    }

    /// Whether host page `pgoff` of the table is allocated (false past the end).
    pub fn page_present(&self, pgoff: u64) -> bool {
        self.pages.get(pgoff).is_some()
    }

    /// The host pages that the `npages` entries from bus address `ioba` live on, first and
    /// last, if the range is a valid and non-empty one of this window.
    pub fn pages_of_range(&self, ioba: u64, npages: u64) -> Option<(u64, u64)> {
        if npages == 0 {
            return None;
        }
        let rel = self.check_range(ioba, npages)?;
        Some(self.page_span(rel, npages))
    }

    /// Serves a fault of the VMM's mapping on page `pgoff`: returns the page, allocated if it was
    /// absent. These are the very pages that hypercalls write.
    pub fn fault(&self, pgoff: u64) -> Result<&H::Page, FaultError> {
        if pgoff >= self.pages.len() {
            return Err(FaultError::OutOfRange);
        }
        self.pages
            .get_or_alloc(pgoff)
            .map_err(|_| FaultError::NoMemory)
    }

    /// Page number and word of window-relative entry `rel`.
    fn locate(&self, rel: u64) -> (u64, usize) {
        let mask = (1u64 << self.entries_per_page_shift) - 1;
        // The word index is below the entries per page, which fits a usize.
        (rel >> self.entries_per_page_shift, (rel & mask) as usize)
    }

    /// The page number of window-relative entry `rel`.
    pub(crate) fn page_of(&self, rel: u64) -> u64 {
        rel >> self.entries_per_page_shift
    }

    /// Page numbers of the first and last page that window-relative entries `[rel, rel + n)`
    /// touch. `n > 0` and the range is inside the window.
    pub(crate) fn page_span(&self, rel: u64, n: u64) -> (u64, u64) {
        (
            rel >> self.entries_per_page_shift,
            (rel + (n - 1)) >> self.entries_per_page_shift,
        )
    }

    /// Reads window-relative entry `rel` (zero if its page is absent).
    pub(crate) fn load(&self, rel: u64) -> u64 {
        let (page, word) = self.locate(rel);
        self.pages.load(page, word)
    }

    /// The page (allocated if it was absent) and the word of window-relative entry `rel`, so that
    /// a caller that reserves the page can write the entry later without looking it up again.
    pub(crate) fn reserve_entry(&self, rel: u64) -> Result<(&H::Page, usize), AllocError> {
        let (page, word) = self.locate(rel);
        Ok((self.pages.get_or_alloc(page)?, word))
    }

    /// Makes sure the page of window-relative entry `rel` exists.
    pub(crate) fn reserve(&self, rel: u64) -> Result<(), AllocError> {
        self.pages.get_or_alloc(self.locate(rel).0).map(|_| ())
    }

    /// Writes window-relative entry `rel`. A zero into an absent page allocates nothing; a
    /// non-zero value needs the page reserved first, see [`Window::reserve`].
    pub(crate) fn store(&self, rel: u64, tce: u64) -> Result<(), AllocError> {
        let (page, word) = self.locate(rel);
        match self.pages.get(page) {
            Some(p) => p.store(word, tce),
            None if tce == 0 => {}
            None => self.pages.get_or_alloc(page)?.store(word, tce),
        }
        Ok(())
    }

    /// Writes `values` into window-relative entries from `rel` on, as [`Window::store`] would
    /// one by one (stopping at the first page that cannot be had), with one page lookup per
    /// page instead of one per entry. The range is inside the window.
    pub(crate) fn store_all(&self, rel: u64, values: &[u64]) -> Result<(), AllocError> {
        let per_page = 1usize << self.entries_per_page_shift;
        let mut done = 0;
        while done < values.len() {
            let (page, word) = self.locate(rel + done as u64);
            let n = (per_page - word).min(values.len() - done);
            let run = &values[done..done + n];
            let page = match self.pages.get(page) {
                Some(p) => p,
                // Zeroes need no page; the others' page was reserved (or is allocated now).
                None if run.iter().all(|&v| v == 0) => {
                    done += n;
                    continue;
                }
                None => self.pages.get_or_alloc(page)?,
            };
            page.store_run(word, run);
            done += n;
        }
        Ok(())
    }

    /// Writes `value` into window-relative entries `[rel, rel + n)`. Absent pages cost nothing
    /// when `value` is zero; otherwise they must have been reserved.
    pub(crate) fn fill(&self, rel: u64, n: u64, value: u64) -> Result<(), AllocError> {
        if n == 0 {
            return Ok(());
        }
        let last = rel + (n - 1);
        let (first_page, last_page) = self.page_span(rel, n);
        if value != 0 {
            for page in first_page..=last_page {
                self.pages.get_or_alloc(page)?;
            }
        }
        let per_page = 1u64 << self.entries_per_page_shift;
        self.pages
            .for_each_present(first_page, last_page, |page, p| {
                let base = page * per_page;
                let lo = rel.max(base);
                let hi = last.min(base + per_page - 1);
                for e in lo..=hi {
                    p.store((e - base) as usize, value);
                }
            });
        Ok(())
    }

    /// Allocates every page of window-relative entries `[rel, rel + n)`.
    pub(crate) fn reserve_range(&self, rel: u64, n: u64) -> Result<(), AllocError> {
        if n == 0 {
            return Ok(());
        }
        let (first, last) = self.page_span(rel, n);
        for page in first..=last {
            self.pages.get_or_alloc(page)?;
        }
        Ok(())
    }

    /// Calls `f(rel, tce)` for every non-zero entry, in order, skipping absent pages.
    pub fn for_each_entry(&self, mut f: impl FnMut(u64, u64)) {
        let per_page = 1u64 << self.entries_per_page_shift;
        if self.pages.len() == 0 {
            return;
        }
        self.pages
            .for_each_present(0, self.pages.len() - 1, |page, p| {
                for w in 0..p.words().min(per_page as usize) {
                    let rel = page * per_page + w as u64;
                    if rel >= self.params.size {
                        break;
                    }
                    let v = p.load(w);
                    if v != 0 {
                        f(rel, v);
                    }
                }
            });
    }

    /// Checks that the `npages` entries starting at bus address `ioba` are inside the window and
    /// that `ioba` is aligned to the IOMMU page; returns the first one's window-relative index.
    ///
    /// Every entry of the range is checked, with overflow protection, as Linux 7.3's
    /// `iommu_tce_check_ioba()` also does. Zero entries are a valid, empty range.
    pub fn check_range(&self, ioba: u64, npages: u64) -> Option<u64> {
        let shift = self.params.page_shift;
        if ioba & ((1u64 << shift) - 1) != 0 {
            return None;
        }
        let rel = (ioba >> shift).checked_sub(self.params.offset)?;
        let end = rel.checked_add(npages)?;
        if end > self.params.size {
            return None;
        }
        Some(rel)
    }
}

impl<H: Host> Drop for Window<H> {
    fn drop(&mut self) {
        self.host.unlock_pages(self.charged);
    }
}
