// SPDX-License-Identifier: GPL-2.0
//! The description of a PHB and the state of its DMA window slots.

use crate::{BackendError, RtasStatus, WindowBackend};

/// The most window slots a PHB can have (QEMU's `SPAPR_PCI_DMA_MAX_WINDOWS`).
pub const MAX_WINDOWS: usize = 2;

/// The largest window, in TCEs, that query advertises and create accepts.
///
/// This is 2^31, the largest power of two that fits a 32-bit cell. It is
/// also the real limit in QEMU, which keeps a table's entry count in 32 bits.
pub const MAX_BLOCK_TCES: u64 = 1 << 31;

/// The bus address where a window goes when another window is already active.
pub const DMA64_BASE: u64 = 1 << 59;

/// The page sizes RTAS can name, as (page shift, bit in query's page mask).
///
/// In order: 4K, 64K, 16M, 32M, 64M, 128M, 256M and 16G, then 2M, which
/// PAPR added later and so has the highest bit.
const RTAS_PAGE_SIZES: [(u32, u32); 9] = [
    (12, 0x1),
    (16, 0x2),
    (24, 0x4),
    (25, 0x8),
    (26, 0x10),
    (27, 0x20),
    (28, 0x40),
    (34, 0x80),
    (21, 0x100),
];

/// A set of IOMMU page sizes, one bit per page shift (bit `n` is `1 << n` bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PageShifts(u64);

impl PageShifts {
    /// The empty set.
    pub const EMPTY: PageShifts = PageShifts(0);

    /// The sizes the simulator's PHBs support: 4K, 64K, 2M and 16M.
    pub const SIMULATOR: PageShifts = PageShifts::EMPTY.with(12).with(16).with(21).with(24);

    /// Builds a set from its raw bits (bit `n` set means `1 << n`-byte pages).
    pub const fn from_bits(bits: u64) -> PageShifts {
        PageShifts(bits)
    }

    /// Returns the raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Returns the set with `shift` added; panics if `shift >= 64`.
    pub const fn with(self, shift: u32) -> PageShifts {
        assert!(shift < 64, "page shift out of range");
        PageShifts(self.0 | 1 << shift)
    }

    /// Tells whether pages of `1 << shift` bytes are in the set.
    pub const fn contains(self, shift: u32) -> bool {
        shift < 64 && self.0 & (1 << shift) != 0
    }

    /// Returns the largest page shift in the set, if any.
    pub const fn max_shift(self) -> Option<u32> {
        match self.0 {
            0 => None,
            bits => Some(63 - bits.leading_zeros()),
        }
    }

    /// Returns the page-size mask that query reports for this set.
    pub const fn rtas_mask(self) -> u32 {
        let mut mask = 0;
        let mut i = 0;
        while i < RTAS_PAGE_SIZES.len() {
            let (shift, bit) = RTAS_PAGE_SIZES[i];
            if self.contains(shift) {
                mask |= bit;
            }
            i += 1;
        }
        mask
    }

    /// Tells whether every size in the set has a bit in query's mask.
    pub const fn rtas_representable(self) -> bool {
        let mut rest = self.0;
        let mut i = 0;
        while i < RTAS_PAGE_SIZES.len() {
            rest &= !(1 << RTAS_PAGE_SIZES[i].0);
            i += 1;
        }
        rest == 0
    }
}

/// Where a window sits on the bus and how big it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowGeometry {
    /// The IOMMU page shift: each entry maps `1 << page_shift` bytes.
    pub page_shift: u32,
    /// The bus address of the window's first byte.
    pub bus_offset: u64,
    /// The number of entries (TCEs).
    pub entries: u64,
}

impl WindowGeometry {
    /// The default window of the simulator: 1 GiB of 4K pages at bus address 0.
    pub const SIMULATOR_DEFAULT: WindowGeometry = WindowGeometry {
        page_shift: 12,
        bus_offset: 0,
        entries: 0x40000,
    };

    /// Returns the window's size in bytes, or `None` if it does not fit 64 bits.
    pub const fn size_bytes(&self) -> Option<u64> {
        if self.page_shift >= 64 {
            return None;
        }
        self.entries.checked_mul(1 << self.page_shift)
    }

    /// Returns the bus address just past the window, or `None` if that
    /// address does not fit 64 bits (a window ending exactly at 2^64 is
    /// rejected too, as "bus address + size overflows 64 bits").
    pub const fn bus_end(&self) -> Option<u64> {
        match self.size_bytes() {
            Some(size) => self.bus_offset.checked_add(size),
            None => None,
        }
    }

    /// Returns the number of the window's first entry, as the backend wants it.
    pub const fn first_entry(&self) -> u64 {
        self.bus_offset >> self.page_shift
    }
}

/// How a PHB is set up: what the VMM tells the model when it adds the PHB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PhbDesc {
    /// The PHB's BUID, as the guest passes it in two cells (hi, lo).
    pub buid: u64,
    /// The LIOBN of slot 0; slot `i` has LIOBN `liobn_base + i`.
    pub liobn_base: u32,
    /// Whether the DDW calls are enabled; if not, they all fail with a
    /// parameter error for this PHB (as in QEMU) but the default window exists.
    pub ddw_enabled: bool,
    /// The page sizes a created window may use.
    pub page_shifts: PageShifts,
    /// The default window, created in slot 0 when the PHB is added, on reset,
    /// and when the last non-default window is removed.
    pub default_window: WindowGeometry,
    /// Where a created window goes when another window is already active.
    pub dma64_base: u64,
    /// The number of window slots, 1 to [`MAX_WINDOWS`].
    pub num_slots: usize,
}

impl PhbDesc {
    /// Returns the PHB exactly as the simulator's `phb <buid> <liobn_base>`
    /// sets it up: DDW enabled, 4K/64K/2M/16M pages, two slots, the 1 GiB
    /// default window of 4K pages at bus address 0, and the 64-bit base at 2^59.
    pub const fn simulator_default(buid: u64, liobn_base: u32) -> PhbDesc {
        PhbDesc {
            buid,
            liobn_base,
            ddw_enabled: true,
            page_shifts: PageShifts::SIMULATOR,
            default_window: WindowGeometry::SIMULATOR_DEFAULT,
            dma64_base: DMA64_BASE,
            num_slots: MAX_WINDOWS,
        }
    }

    /// Returns the LIOBN of `slot`; this is meaningful only for a slot below
    /// `num_slots` of a valid description.
    pub const fn liobn(&self, slot: usize) -> u32 {
        self.liobn_base.wrapping_add(slot as u32)
    }

    /// Returns the slot whose LIOBN is `liobn`, if this PHB owns it.
    pub const fn slot_of(&self, liobn: u32) -> Option<usize> {
        match liobn.checked_sub(self.liobn_base) {
            Some(slot) if (slot as usize) < self.num_slots => Some(slot as usize),
            _ => None,
        }
    }

    /// Tells whether this PHB and `other` share a LIOBN.
    pub const fn liobns_overlap(&self, other: &PhbDesc) -> bool {
        let (a, b) = (self.liobn_base as u64, other.liobn_base as u64);
        let a_end = a.saturating_add(self.num_slots as u64);
        let b_end = b.saturating_add(other.num_slots as u64);
        a < b_end && b < a_end
    }

    /// Checks that the description can be modelled.
    pub const fn validate(&self) -> Result<(), DescError> {
        if self.num_slots == 0 || self.num_slots > MAX_WINDOWS {
            return Err(DescError::BadSlotCount);
        }
        if self
            .liobn_base
            .checked_add(self.num_slots as u32 - 1)
            .is_none()
        {
            return Err(DescError::LiobnOverflow);
        }
        if !self.page_shifts.rtas_representable() {
            return Err(DescError::UnnamedPageSize);
        }
        // Created windows go at the default window's address or at the
        // 64-bit base, so both must be aligned to every page size.
        let align = match self.page_shifts.max_shift() {
            Some(shift) if shift > self.default_window.page_shift => shift,
            _ => self.default_window.page_shift,
        };
        let def = &self.default_window;
        if def.entries == 0 || def.entries > MAX_BLOCK_TCES || def.bus_end().is_none() {
            return Err(DescError::BadDefaultWindow);
        }
        // `bus_end` succeeded, so `align` is below 64.
        let mask = (1u64 << align) - 1;
        if def.bus_offset & mask != 0 || self.dma64_base & mask != 0 {
            return Err(DescError::Misaligned);
        }
        Ok(())
    }
}

/// Why a [`PhbDesc`] cannot be modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DescError {
    /// `num_slots` is 0 or more than [`MAX_WINDOWS`].
    BadSlotCount,
    /// The last slot's LIOBN does not fit 32 bits.
    LiobnOverflow,
    /// A supported page size has no bit in query's page-size mask.
    UnnamedPageSize,
    /// The default window is empty, larger than [`MAX_BLOCK_TCES`] entries,
    /// or does not fit below 2^64.
    BadDefaultWindow,
    /// The default window's address or the 64-bit base is not aligned to
    /// the largest page size.
    Misaligned,
}

/// An active window, as tools print it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowInfo {
    /// The BUID of the PHB the window belongs to.
    pub buid: u64,
    /// The slot the window occupies.
    pub slot: usize,
    /// The window's LIOBN.
    pub liobn: u32,
    /// The IOMMU page shift.
    pub page_shift: u32,
    /// The bus address of the window's first byte.
    pub bus_offset: u64,
    /// The number of entries (TCEs).
    pub entries: u64,
    /// Whether this is the default window (created by the platform, not by
    /// `ibm,create-pe-dma-window`).
    pub is_default: bool,
}

/// An active slot: the window's geometry and whether it is the default one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    geometry: WindowGeometry,
    is_default: bool,
}

/// The state of one PHB: its description and its window slots.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Phb {
    pub(crate) desc: PhbDesc,
    slots: [Option<Window>; MAX_WINDOWS],
}

impl Phb {
    /// Returns a PHB with no active window; the description must be valid.
    pub(crate) const fn new(desc: PhbDesc) -> Phb {
        Phb {
            desc,
            slots: [None; MAX_WINDOWS],
        }
    }

    /// Returns the number of active windows.
    pub(crate) fn active_count(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Returns the number of windows the guest may still create.
    pub(crate) fn available(&self) -> usize {
        self.desc.num_slots - self.active_count()
    }

    /// Tells whether `slot` holds an active window.
    pub(crate) fn is_active(&self, slot: usize) -> bool {
        matches!(self.slots.get(slot), Some(Some(_)))
    }

    /// Creates the table for `geometry` in `slot` and marks the slot active,
    /// or, if the backend fails, leaves the slot free.
    fn enable<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        slot: usize,
        geometry: WindowGeometry,
        is_default: bool,
    ) -> Result<(), BackendError> {
        debug_assert!(!self.is_active(slot), "slot enabled twice");
        backend.create_table(
            self.desc.liobn(slot),
            geometry.page_shift,
            geometry.first_entry(),
            geometry.entries,
        )?;
        self.slots[slot] = Some(Window {
            geometry,
            is_default,
        });
        Ok(())
    }

    /// Removes the window in `slot`, if any, and tells whether it was the
    /// default window.
    fn disable<B: WindowBackend + ?Sized>(&mut self, backend: &mut B, slot: usize) -> bool {
        match self.slots[slot].take() {
            Some(window) => {
                backend.remove_table(self.desc.liobn(slot));
                window.is_default
            }
            None => false,
        }
    }

    /// Creates the default window in slot 0; no window may be active.
    pub(crate) fn restore_default<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
    ) -> Result<(), BackendError> {
        self.enable(backend, 0, self.desc.default_window, true)
    }

    /// Removes every active window.
    pub(crate) fn remove_all<B: WindowBackend + ?Sized>(&mut self, backend: &mut B) {
        for slot in 0..self.desc.num_slots {
            self.disable(backend, slot);
        }
    }

    /// Creates a window of `1 << window_shift` bytes of `1 << page_shift`-byte
    /// pages and returns its LIOBN and bus address.
    ///
    /// Parameter checks come before resource checks, as in QEMU. On any
    /// failure the PHB is left exactly as it was.
    pub(crate) fn create<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        page_shift: u32,
        window_shift: u32,
    ) -> Result<(u32, u64), RtasStatus> {
        // These are QEMU's two parameter checks.
        if !self.desc.page_shifts.contains(page_shift) || window_shift < page_shift {
            return Err(RtasStatus::ParameterError);
        }
        // These checks are ours, and we deliberately differ from QEMU here:
        // QEMU passes the entry count on as 32 bits, so a window of 2^32 or
        // more entries is truncated (to an empty table, which it then
        // reports as a hardware error), and a window shift of 64 or more is
        // an undefined shift in C. The guest asked for a window that can
        // never exist, so we report a parameter error instead.
        if window_shift >= 64 {
            return Err(RtasStatus::ParameterError);
        }
        let entries = 1u64 << (window_shift - page_shift);
        if entries > MAX_BLOCK_TCES {
            return Err(RtasStatus::ParameterError);
        }
        // The window goes at the default window's address when nothing is
        // active, else at the 64-bit base.
        let bus_offset = if self.active_count() == 0 {
            self.desc.default_window.bus_offset
        } else {
            self.desc.dma64_base
        };
        let geometry = WindowGeometry {
            page_shift,
            bus_offset,
            entries,
        };
        let Some(end) = geometry.bus_end() else {
            return Err(RtasStatus::ParameterError);
        };
        // New windows take the first free slot.
        let Some(slot) = (0..self.desc.num_slots).find(|&s| !self.is_active(s)) else {
            return Err(RtasStatus::HardwareError);
        };
        // This check is ours: QEMU would place a second window over an
        // active one (after the guest removed the default window but kept
        // a 64-bit one). We refuse, as there is no room at that address.
        if self.overlaps_active(bus_offset, end) {
            return Err(RtasStatus::HardwareError);
        }
        // The table is empty by construction: the backend creates it
        // without walking its entries, whatever the window's size.
        self.enable(backend, slot, geometry, false)
            .map_err(|_| RtasStatus::HardwareError)?;
        Ok((self.desc.liobn(slot), bus_offset))
    }

    /// Tells whether the bus range `[start, end)` meets an active window.
    fn overlaps_active(&self, start: u64, end: u64) -> bool {
        self.slots.iter().flatten().any(|w| {
            // Active windows were checked to end below 2^64.
            let w_end = w.geometry.bus_end().unwrap_or(u64::MAX);
            start < w_end && w.geometry.bus_offset < end
        })
    }

    /// Removes the window in `slot`, then restores the default window if no
    /// window is left and the removed one was not the default.
    ///
    /// If the backend then fails to create the default window, the removal
    /// stands (it cannot be undone) and the call reports a hardware error;
    /// the PHB is left with no window until a reset succeeds.
    pub(crate) fn remove<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        slot: usize,
    ) -> Result<(), RtasStatus> {
        if !self.is_active(slot) {
            return Err(RtasStatus::ParameterError);
        }
        let was_default = self.disable(backend, slot);
        if self.active_count() == 0 && !was_default {
            self.restore_default(backend)
                .map_err(|_| RtasStatus::HardwareError)?;
        }
        Ok(())
    }

    /// Removes every window and re-creates the default window.
    ///
    /// If the backend fails to create the default window, the PHB is left
    /// with no window and the call reports a hardware error.
    pub(crate) fn reset<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
    ) -> Result<(), RtasStatus> {
        self.remove_all(backend);
        self.restore_default(backend)
            .map_err(|_| RtasStatus::HardwareError)
    }

    /// Lists the active windows in slot order.
    pub(crate) fn windows(&self) -> impl Iterator<Item = WindowInfo> + '_ {
        self.slots.iter().enumerate().filter_map(move |(slot, w)| {
            w.map(|w| WindowInfo {
                buid: self.desc.buid,
                slot,
                liobn: self.desc.liobn(slot),
                page_shift: w.geometry.page_shift,
                bus_offset: w.geometry.bus_offset,
                entries: w.geometry.entries,
                is_default: w.is_default,
            })
        })
    }
}
