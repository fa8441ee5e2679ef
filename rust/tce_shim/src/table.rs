// SPDX-License-Identifier: GPL-2.0
//! The table abstraction that both backends implement: one table, and a VM's set of tables.

use std::sync::Arc;

use tce_engine::window::WindowParams;

use crate::error::{
    Error,
    Result, //
};

/// What a table is and what it uses, as `TCE_ACCEL_TABLE_INFO` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// The window: LIOBN, IOMMU page shift, first entry and number of entries.
    pub params: WindowParams,
    /// The host page size in bytes; a host page holds `host_page_size / 8` entries.
    pub host_page_size: u64,
    /// Host pages a mapping of the table may span.
    pub mapping_pages: u64,
    /// Host pages allocated so far.
    pub present_pages: u64,
    /// Host pages charged to the locked-memory limit.
    pub locked_pages: u64,
}

impl TableInfo {
    /// Returns the number of entries in one host page.
    pub fn entries_per_page(&self) -> u64 {
        self.host_page_size / 8
    }
}

/// One guest-view TCE table.
///
/// Entry indices count from the window's first entry (index 0 is bus address
/// `offset << page_shift`). Reading never allocates a page; writing zero into a page that does
/// not exist allocates nothing; writing any other value allocates the page, as the VMM's
/// mapping or a hypercall would. KVM's own tables (`crate::TableKind::Kvm`) are the exception:
/// KVM allocates the page of any access, a read included, and lists no pages, so they are
/// read whole.
pub trait Table {
    /// Returns the table's parameters and memory use.
    fn info(&self) -> Result<TableInfo>;

    /// Returns the window's parameters; cheaper than [`Table::info`].
    fn params(&self) -> WindowParams;

    /// Returns the number of entries in one host page.
    fn entries_per_page(&self) -> u64;

    /// Stores the numbers of the existing host pages at or after `start`, ascending, into `out`
    /// until it is full, and returns how many were stored (`TCE_ACCEL_TABLE_PAGES`).
    fn existing_pages(&self, start: u64, out: &mut [u64]) -> Result<usize>;

    /// Reads the entries of host page `page`, which [`Table::existing_pages`] listed, into the
    /// start of `out` and returns how many there are (fewer than a page's worth at the end of
    /// the window, and never more than `out.len()`).
    fn read_page(&self, page: u64, out: &mut [u64]) -> Result<usize>;

    /// Reads entry `index`; an entry of a page that does not exist reads as 0.
    fn read(&self, index: u64) -> Result<u64>;

    /// Writes entry `index`.
    fn write(&self, index: u64, tce: u64) -> Result<()>;
}

impl<T: Table + ?Sized> Table for Arc<T> {
    fn info(&self) -> Result<TableInfo> {
        (**self).info()
    }

    fn params(&self) -> WindowParams {
        (**self).params()
    }

    fn entries_per_page(&self) -> u64 {
        (**self).entries_per_page()
    }

    fn existing_pages(&self, start: u64, out: &mut [u64]) -> Result<usize> {
        (**self).existing_pages(start, out)
    }

    fn read_page(&self, page: u64, out: &mut [u64]) -> Result<usize> {
        (**self).read_page(page, out)
    }

    fn read(&self, index: u64) -> Result<u64> {
        (**self).read(index)
    }

    fn write(&self, index: u64, tce: u64) -> Result<()> {
        (**self).write(index, tce)
    }
}

/// The guest-view tables of one VM, by LIOBN.
///
/// A table stays alive while a handle returned by [`Tables::table`] exists, even after
/// [`Tables::remove`], exactly as a kernel table lives while its file or a mapping is open.
pub trait Tables {
    /// A handle to one table.
    type Table: Table;

    /// Creates an empty table; it allocates no page, whatever its size.
    fn create(&mut self, params: WindowParams) -> Result<()>;

    /// Removes the table of `liobn`.
    fn remove(&mut self, liobn: u64) -> Result<()>;

    /// Returns a handle to the table of `liobn`.
    fn table(&self, liobn: u64) -> Result<Self::Table>;

    /// Lists the LIOBNs that have a table, ascending.
    fn liobns(&self) -> Vec<u64>;
}

/// Checks window parameters as `KVM_CREATE_SPAPR_TCE_64` does, with the crate's error.
pub(crate) fn validate(params: &WindowParams) -> Result<()> {
    params.validate().map_err(|_| Error::InvalidWindow {
        liobn: params.liobn,
        page_shift: params.page_shift,
        offset: params.offset,
        size: params.size,
    })
}

/// Checks that `index` is an entry of a window of `size` entries.
pub(crate) fn check_index(index: u64, size: u64) -> Result<()> {
    if index < size {
        Ok(())
    } else {
        Err(Error::IndexOutsideWindow { index, size })
    }
}

/// Formats a power-of-two page size with a binary unit.
fn page_size(shift: u32) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let unit = (shift / 10).min(4);
    format!(
        "{} {}",
        1u64 << (shift - unit * 10).min(63),
        UNITS[unit as usize]
    )
}

/// Describes a window in a few words, for messages.
pub fn describe(params: &WindowParams) -> String {
    format!(
        "{:#x} entries of {} at bus address {:#x}",
        params.size,
        page_size(params.page_shift),
        u128::from(params.offset) << params.page_shift.min(64),
    )
}
