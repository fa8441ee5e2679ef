// SPDX-License-Identifier: GPL-2.0

//! The four TCE hypercalls: `H_PUT_TCE`, `H_PUT_TCE_INDIRECT`, `H_STUFF_TCE` and `H_GET_TCE`.
//!
//! Each hypercall runs in two steps. `prepare_*` checks every argument in the order Linux
//! applies its rules and allocates every guest-view page the call will need; it changes nothing
//! a guest can see and returns a `Prepared*` value that only it can build. `apply` takes that
//! value and updates the attached hardware tables first, then the guest view. So "validate
//! before apply" is enforced by the types, and an allocation failure can only happen before
//! anything changed.
//!
//! Where this module deliberately differs from Linux (`arch/powerpc/kvm/book3s_64_vio.c`):
//!
//! - The guest-view page is allocated before the hardware is touched. Linux allocates it last
//!   and, if that fails, silently drops the guest-view write after the hardware was updated.
//! - `H_PUT_TCE_INDIRECT` reads the guest's list once, into the caller's buffer, and applies
//!   exactly what it validated. Linux reads the list again for the second pass.
//! - An `H_PUT_TCE_INDIRECT` entry without permission bits is never translated, as for
//!   `H_PUT_TCE`. Linux translates it in the second pass and fails with `H_PARAMETER` when a
//!   poison value does not point into guest RAM.
//! - With hardware tables attached, the whole guest IOMMU page must lie in one preregistered
//!   region. Linux checks the first hardware page only and fails half-way through the subpages.
//! - When mapping an entry fails in one attached table, the entry is cleared in that table and
//!   in every table updated before it. Linux clears it in the failing table only, which leaves
//!   the earlier tables mapping what the guest view does not show.
//! - A non-zero `H_STUFF_TCE` over more than [`STUFF_NONZERO_MAX`] entries returns
//!   `H_TOO_HARD` (the VMM does it through its mapping). Linux allocates and writes the whole
//!   range, up to 16 GiB of table, in one hypercall.
//! - A hardware entry's page is looked up in the preregistered memory, translated and counted as
//!   one step ([`DmaMemory::map_page`]). Linux looks the region up and then uses the pointer
//!   for the translation and the count without holding it. Checking and releasing a page are
//!   one step each too ([`DmaMemory::check_page`], [`DmaMemory::unmap_page`]).
//! - A hardware entry whose recorded user address is in none of the VM's preregistered regions
//!   (another writer mapped it, such as VFIO with another process's memory) is put back as it
//!   was and the call answers `H_TOO_HARD` ([`HwError::Foreign`]), as Linux does for a clear;
//!   the VMM, whose region it may be, clears it through VFIO. A map over such an entry does
//!   the same; Linux replaces it and drops the other region's count nowhere, so that region
//!   stays pinned.
//! - An exchange the platform refuses answers `H_HARDWARE`; Linux warns and answers
//!   `H_TOO_HARD`. The VMM could do no better (QEMU's VFIO map would fail the same way, and QEMU
//!   then only logs it and answers `H_SUCCESS`), so the guest hears of the failure instead of
//!   believing the page mapped.
//! - The IOMMU cache is invalidated once per table and hypercall range. Linux invalidates once
//!   per entry, and `H_STUFF_TCE` invalidates from a start address it has already advanced.

use super::env::{
    DmaMemory,
    GuestMemory,
    Host,
    TablePage, //
};
use super::hwtable::{
    HwEntry,
    HwError,
    IommuTable, //
};
use super::tce::{
    tce_gpa,
    Direction,
    HcallError,
    HcallResult,
    INDIRECT_LIST_ALIGN,
    INDIRECT_MAX,
    STUFF_NONZERO_MAX,
    TCE_RW, //
};
use super::window::Window;

/// The window a hypercall's LIOBN names, with the hardware tables attached to it.
///
/// `I` iterates over the attached tables; it is cloned for each pass over them.
pub struct Target<'a, H: Host, I> {
    /// The guest-view table.
    pub window: &'a Window<H>,
    /// The attached hardware tables.
    pub tables: I,
}

impl<H: Host, I: Iterator + Clone> Target<'_, H, I> {
    /// Whether any hardware table is attached: most windows have none, and skip their loops.
    fn has_tables(&self) -> bool {
        self.tables.clone().next().is_some()
    }
}

/// The guest side of a hypercall: its memory and its preregistered DMA memory.
pub struct Vm<'a, G, D> {
    /// Guest RAM.
    pub guest: &'a G,
    /// Preregistered memory.
    pub dma: &'a D,
}

/// A validated `H_PUT_TCE`, ready to apply.
#[must_use]
pub struct PreparedPut<'a, H: Host, I> {
    target: Target<'a, H, I>,
    rel: u64,
    tce: u64,
    ua: Option<u64>,
    /// The entry's page and word, reserved for a non-zero TCE; `None` for a zero one, which
    /// allocates nothing and looks its page up when it is written.
    slot: Option<(&'a H::Page, usize)>,
}

/// A validated `H_PUT_TCE_INDIRECT`, ready to apply.
#[must_use]
pub struct PreparedIndirect<'a, 'b, H: Host, I> {
    target: Target<'a, H, I>,
    rel: u64,
    list: &'b [u64],
}

/// A validated `H_STUFF_TCE`, ready to apply.
#[must_use]
pub struct PreparedStuff<'a, H: Host, I> {
    target: Target<'a, H, I>,
    rel: u64,
    npages: u64,
    value: u64,
}

fn hw_error(e: HwError) -> HcallError {
    match e {
        HwError::NoMemory | HwError::Foreign => HcallError::TooHard,
        HwError::Failed => HcallError::Hardware,
    }
}

impl<G: GuestMemory, D: DmaMemory> Vm<'_, G, D> {
    /// Checks one TCE for `window` with `tables` attached; returns the user address behind it,
    /// or `None` for an entry without permissions (a clear or a poison value, always allowed).
    fn validate_tce<'t, H, T, I>(
        &self,
        window: &Window<H>,
        tables: I,
        tce: u64,
    ) -> HcallResult<Option<u64>>
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T>,
    {
        if Direction::of(tce) == Direction::None {
            return Ok(None);
        }
        let gpa = tce_gpa(tce);
        let page = 1u64 << window.page_shift();
        if gpa & (page - 1) != 0 {
            return Err(HcallError::TooHard);
        }
        let ua = self.guest.gpa_to_ua(gpa).ok_or(HcallError::TooHard)?;
        for t in tables {
            if !self.dma.check_page(ua, page, t.page_shift()) {
                return Err(HcallError::TooHard);
            }
        }
        Ok(Some(ua))
    }

    /// Returns the bookkeeping of a hardware entry that was just replaced; `false` if its
    /// recorded user address is in no region of the VM (see [`HwError::Foreign`]).
    fn release<T: IommuTable>(&self, table: &T, old: HwEntry) -> bool {
        self.dma.unmap_page(old.ua, 1u64 << table.page_shift())
    }

    /// The first hardware entry and the number of hardware entries ("subpages") per guest
    /// entry, for absolute guest entry `entry`.
    fn subpages<H: Host, T: IommuTable>(
        window: &Window<H>,
        table: &T,
        entry: u64,
    ) -> HcallResult<(u64, u64)> {
        let shift = window
            .page_shift()
            .checked_sub(table.page_shift())
            .ok_or(HcallError::Hardware)?;
        let first = entry.checked_shl(shift).filter(|f| f >> shift == entry);
        Ok((first.ok_or(HcallError::Hardware)?, 1u64 << shift))
    }

    /// Maps absolute guest entry `entry` to user address `ua` in one table.
    fn map_entry<H: Host, T: IommuTable>(
        &self,
        window: &Window<H>,
        table: &T,
        entry: u64,
        ua: u64,
        dir: Direction,
    ) -> HcallResult {
        let (first, count) = Self::subpages(window, table, entry)?;
        let shift = table.page_shift();
        for k in 0..count {
            let ua = ua.checked_add(k << shift).ok_or(HcallError::TooHard)?;
            let (region, hpa) = self.dma.map_page(ua, shift).ok_or(HcallError::TooHard)?;
            let new = HwEntry {
                tce: (hpa & !TCE_RW) | dir.hw_perm(),
                ua,
            };
            match table.exchange(first + k, new) {
                Ok(old) if old.is_mapped() && !self.release(table, old) => {
                    // Not ours to release: put it back, with its count, and give up ours.
                    let _ = table.exchange(first + k, old);
                    self.dma.mapped_dec(region);
                    return Err(hw_error(HwError::Foreign));
                }
                Ok(_) => {}
                Err(e) => {
                    self.dma.mapped_dec(region);
                    return Err(hw_error(e));
                }
            }
        }
        Ok(())
    }

    /// Clears absolute guest entries `[entry, entry + n)` in one table.
    fn unmap_range<H: Host, T: IommuTable>(
        &self,
        window: &Window<H>,
        table: &T,
        entry: u64,
        n: u64,
    ) -> HcallResult {
        let (first, count) = Self::subpages(window, table, entry)?;
        let total = n.checked_mul(count).ok_or(HcallError::Hardware)?;
        table
            .clear_range(first, total, &mut |old| self.release(table, old))
            .map_err(hw_error)
    }

    /// Invalidates absolute guest entries `[entry, entry + n)` in every table, once.
    fn invalidate<'t, H, T, I>(window: &Window<H>, tables: I, entry: u64, n: u64)
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T>,
    {
        if n == 0 {
            return;
        }
        for t in tables {
            if let Ok((first, count)) = Self::subpages(window, t, entry) {
                t.invalidate(first, n.saturating_mul(count));
            }
        }
    }

    /// Writes one validated entry to every attached table. On failure the entry is cleared in
    /// the failing table and in every table before it, so that no table maps what the guest
    /// view will not show.
    fn update_tables<'t, H, T, I>(
        &self,
        window: &Window<H>,
        tables: I,
        entry: u64,
        tce: u64,
        ua: Option<u64>,
    ) -> HcallResult
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T> + Clone,
    {
        for (done, t) in tables.clone().enumerate() {
            let r = match ua {
                Some(ua) => self.map_entry(window, t, entry, ua, Direction::of(tce)),
                None => self.unmap_range(window, t, entry, 1),
            };
            if let Err(e) = r {
                for undo in tables.take(done + 1) {
                    // Clearing never allocates; a table that cannot even clear is already
                    // reported by `e`.
                    let _ = self.unmap_range(window, undo, entry, 1);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Checks an `H_PUT_TCE` and reserves the guest-view page it writes.
    pub fn prepare_put<'a, 't, H, T, I>(
        &self,
        target: Option<Target<'a, H, I>>,
        ioba: u64,
        tce: u64,
    ) -> HcallResult<PreparedPut<'a, H, I>>
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T> + Clone,
    {
        let target = target.ok_or(HcallError::TooHard)?;
        let window = target.window;
        let rel = window.check_range(ioba, 1).ok_or(HcallError::Parameter)?;
        let ua = self.validate_tce(window, target.tables.clone(), tce)?;
        let slot = match tce {
            0 => None,
            _ => Some(window.reserve_entry(rel).map_err(|_| HcallError::TooHard)?),
        };
        Ok(PreparedPut {
            target,
            rel,
            tce,
            ua,
            slot,
        })
    }

    /// Applies a prepared `H_PUT_TCE`.
    pub fn apply_put<'t, H, T, I>(&self, p: PreparedPut<'_, H, I>) -> HcallResult
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T> + Clone,
    {
        let window = p.target.window;
        if p.target.has_tables() {
            let entry = window.offset() + p.rel;
            let r = self.update_tables(window, p.target.tables.clone(), entry, p.tce, p.ua);
            Self::invalidate(window, p.target.tables, entry, 1);
            r?;
        }
        match p.slot {
            Some((page, word)) => {
                page.store(word, p.tce);
                Ok(())
            }
            None => window.store(p.rel, p.tce).map_err(|_| HcallError::TooHard),
        }
    }

    /// `H_PUT_TCE`: writes one entry.
    pub fn put_tce<'t, H, T, I>(
        &self,
        target: Option<Target<'_, H, I>>,
        ioba: u64,
        tce: u64,
    ) -> HcallResult
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T> + Clone,
    {
        let p = self.prepare_put(target, ioba, tce)?;
        self.apply_put(p)
    }

    /// Checks an `H_PUT_TCE_INDIRECT`: reads the guest's list of `npages` big-endian entries at
    /// `tce_list` into `buf`, validates every entry, and reserves the guest-view pages. `buf`
    /// needs room for `npages` entries (`INDIRECT_MAX` is always enough); a shorter one is
    /// `H_TOO_HARD`, after the checks that give `H_PARAMETER`.
    pub fn prepare_indirect<'a, 'b, 't, H, T, I>(
        &self,
        target: Option<Target<'a, H, I>>,
        ioba: u64,
        tce_list: u64,
        npages: u64,
        buf: &'b mut [u64],
    ) -> HcallResult<PreparedIndirect<'a, 'b, H, I>>
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T> + Clone,
    {
        let target = target.ok_or(HcallError::TooHard)?;
        let window = target.window;
        if npages > INDIRECT_MAX as u64 {
            return Err(HcallError::Parameter);
        }
        if tce_list & (INDIRECT_LIST_ALIGN - 1) != 0 {
            return Err(HcallError::Parameter);
        }
        let rel = window
            .check_range(ioba, npages)
            .ok_or(HcallError::Parameter)?;
        // npages <= INDIRECT_MAX was checked above.
        let list = buf.get_mut(..npages as usize).ok_or(HcallError::TooHard)?;
        // The list must be in guest RAM even when it is empty; reading it translates it.
        if list.is_empty() {
            self.guest.gpa_to_ua(tce_list).ok_or(HcallError::TooHard)?;
        } else {
            self.guest
                .read_be64(tce_list, list)
                .map_err(|_| HcallError::TooHard)?;
        }
        for &tce in list.iter() {
            self.validate_tce(window, target.tables.clone(), tce)?;
        }
        // Reserve each page that will hold a non-zero entry, once.
        let mut reserved = None;
        for (i, &tce) in list.iter().enumerate() {
            let page = window.page_of(rel + i as u64);
            if tce != 0 && reserved != Some(page) {
                window
                    .reserve(rel + i as u64)
                    .map_err(|_| HcallError::TooHard)?;
                reserved = Some(page);
            }
        }
        Ok(PreparedIndirect { target, rel, list })
    }

    /// Applies a prepared `H_PUT_TCE_INDIRECT`. Entries applied before an error stay applied.
    pub fn apply_indirect<'t, H, T, I>(&self, p: PreparedIndirect<'_, '_, H, I>) -> HcallResult
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T> + Clone,
    {
        let window = p.target.window;
        let first = window.offset() + p.rel;
        if !p.target.has_tables() {
            // Only the guest view to write: one page lookup per page, not per entry.
            return window
                .store_all(p.rel, p.list)
                .map_err(|_| HcallError::TooHard);
        }
        let mut result = Ok(());
        for (i, &tce) in p.list.iter().enumerate() {
            let i = i as u64;
            // Validated before, so the translation succeeds; the hardware update may still
            // fail, or find that preregistered memory went away in between.
            let ua = match Direction::of(tce) {
                Direction::None => None,
                _ => match self.guest.gpa_to_ua(tce_gpa(tce)) {
                    Some(ua) => Some(ua),
                    None => {
                        result = Err(HcallError::TooHard);
                        break;
                    }
                },
            };
            let r = self.update_tables(window, p.target.tables.clone(), first + i, tce, ua);
            if let Err(e) = r {
                result = Err(e);
                break;
            }
            if window.store(p.rel + i, tce).is_err() {
                result = Err(HcallError::TooHard);
                break;
            }
        }
        Self::invalidate(window, p.target.tables, first, p.list.len() as u64);
        result
    }

    /// `H_PUT_TCE_INDIRECT`: writes up to 512 entries from a list in guest memory. `buf` is
    /// scratch space for the list.
    pub fn put_tce_indirect<'t, H, T, I>(
        &self,
        target: Option<Target<'_, H, I>>,
        ioba: u64,
        tce_list: u64,
        npages: u64,
        buf: &mut [u64],
    ) -> HcallResult
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T> + Clone,
    {
        let p = self.prepare_indirect(target, ioba, tce_list, npages, buf)?;
        self.apply_indirect(p)
    }

    /// Checks an `H_STUFF_TCE`. A non-zero (poison) value needs every page of the range, and
    /// those are allocated here; a zero value needs none. A non-zero value over more than
    /// [`STUFF_NONZERO_MAX`] entries is left to the VMM (`H_TOO_HARD`).
    pub fn prepare_stuff<'a, 't, H, T, I>(
        &self,
        target: Option<Target<'a, H, I>>,
        ioba: u64,
        value: u64,
        npages: u64,
    ) -> HcallResult<PreparedStuff<'a, H, I>>
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T> + Clone,
    {
        let target = target.ok_or(HcallError::TooHard)?;
        let window = target.window;
        let rel = window
            .check_range(ioba, npages)
            .ok_or(HcallError::Parameter)?;
        if value & TCE_RW != 0 {
            return Err(HcallError::Parameter);
        }
        if value != 0 && npages > STUFF_NONZERO_MAX {
            return Err(HcallError::TooHard);
        }
        if value != 0 {
            window
                .reserve_range(rel, npages)
                .map_err(|_| HcallError::TooHard)?;
        }
        Ok(PreparedStuff {
            target,
            rel,
            npages,
            value,
        })
    }

    /// Applies a prepared `H_STUFF_TCE`: unmaps the range in every attached table, then writes
    /// the value into the guest view.
    pub fn apply_stuff<'t, H, T, I>(&self, p: PreparedStuff<'_, H, I>) -> HcallResult
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T> + Clone,
    {
        let window = p.target.window;
        let first = window.offset() + p.rel;
        let mut result = Ok(());
        for t in p.target.tables.clone() {
            if let Err(e) = self.unmap_range(window, t, first, p.npages) {
                result = Err(e);
                break;
            }
        }
        Self::invalidate(window, p.target.tables, first, p.npages);
        result?;
        window
            .fill(p.rel, p.npages, p.value)
            .map_err(|_| HcallError::TooHard)
    }

    /// `H_STUFF_TCE`: writes one value without permissions into `npages` entries.
    pub fn stuff_tce<'t, H, T, I>(
        &self,
        target: Option<Target<'_, H, I>>,
        ioba: u64,
        value: u64,
        npages: u64,
    ) -> HcallResult
    where
        H: Host,
        T: IommuTable + 't,
        I: Iterator<Item = &'t T> + Clone,
    {
        let p = self.prepare_stuff(target, ioba, value, npages)?;
        self.apply_stuff(p)
    }
}

/// `H_GET_TCE`: reads one entry. An entry in a page that was never allocated reads as zero.
pub fn get_tce<H: Host>(window: Option<&Window<H>>, ioba: u64) -> HcallResult<u64> {
    let window = window.ok_or(HcallError::TooHard)?;
    let rel = window.check_range(ioba, 1).ok_or(HcallError::Parameter)?;
    Ok(window.load(rel))
}

/// Why a hardware table cannot be attached to a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    /// The hardware IOMMU page is larger than the guest's.
    PageSize,
    /// The hardware window starts at another bus address.
    Offset,
    /// The hardware window is smaller than the guest's.
    Size,
}

/// Checks that `table` can back `window`: its IOMMU page is not larger than the guest's, it
/// starts at the same bus address, and it is at least as large.
pub fn check_attach<H: Host, T: IommuTable>(
    window: &Window<H>,
    table: &T,
) -> Result<(), AttachError> {
    if table.page_shift() > window.page_shift() {
        return Err(AttachError::PageSize);
    }
    let bus = |entries: u64, shift: u32| u128::from(entries) << shift;
    if bus(table.offset(), table.page_shift()) != bus(window.offset(), window.page_shift()) {
        return Err(AttachError::Offset);
    }
    if bus(table.size(), table.page_shift()) < bus(window.size(), window.page_shift()) {
        return Err(AttachError::Size);
    }
    Ok(())
}
