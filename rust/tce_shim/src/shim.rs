// SPDX-License-Identifier: GPL-2.0
//! The shim: the DDW model of `tce_ddw_model` with a table backend, answering a VM's RTAS calls.

use tce_ddw_model::{
    cells,
    AddPhbError,
    BackendError,
    CellError,
    Ddw,
    DescError,
    PhbDesc,
    RtasCall,
    RtasStatus,
    WindowBackend,
    WindowInfo, //
};
use tce_engine::window::WindowParams;

use crate::error::{
    Error,
    Result, //
};
use crate::saved::{
    self,
    SavedTable, //
};
use crate::table::{
    describe,
    Table,
    Tables, //
};

/// The most PHBs one shim serves.
pub const MAX_PHBS: usize = 16;

/// The DDW model's view of a [`Tables`] backend; it keeps the last error for the caller.
struct Backend<'a, T: Tables> {
    tables: &'a mut T,
    error: &'a mut Option<Error>,
}

impl<T: Tables> WindowBackend for Backend<'_, T> {
    fn create_table(
        &mut self,
        liobn: u32,
        page_shift: u32,
        offset: u64,
        size: u64,
    ) -> Result<(), BackendError> {
        let params = WindowParams::new(liobn.into(), page_shift, offset, size);
        // Creating the table is all: the window is empty, so no entry is touched.
        self.tables.create(params).map_err(|e| {
            let errno = e.errno();
            *self.error = Some(e);
            BackendError(-errno)
        })
    }

    fn remove_table(&mut self, liobn: u32) {
        // The model removes only tables it created, so the table exists.
        if let Err(e) = self.tables.remove(liobn.into()) {
            *self.error = Some(e);
        }
    }
}

/// Describes an [`AddPhbError`] other than a backend failure.
fn phb_reason(e: AddPhbError) -> &'static str {
    match e {
        AddPhbError::InvalidDesc(DescError::BadSlotCount) => "it must have 1 or 2 window slots",
        AddPhbError::InvalidDesc(DescError::LiobnOverflow) => "its LIOBNs do not fit 32 bits",
        AddPhbError::InvalidDesc(DescError::UnnamedPageSize) => {
            "it supports a page size that RTAS cannot name"
        }
        AddPhbError::InvalidDesc(DescError::BadDefaultWindow) => {
            "its default window is empty, too large or ends past 2^64"
        }
        AddPhbError::InvalidDesc(DescError::Misaligned) => {
            "its default window or 64-bit base is not aligned to its largest page size"
        }
        AddPhbError::DuplicateBuid => "another PHB has the same BUID",
        AddPhbError::LiobnCollision => "its LIOBNs overlap another PHB's",
        AddPhbError::Full => "the shim already serves its maximum number of PHBs",
        AddPhbError::Backend(_) => "its default window's table cannot be created",
    }
}

/// Describes a [`CellError`].
fn cell_reason(e: CellError) -> &'static str {
    match e {
        CellError::Misaligned => "is not a whole number of 32-bit cells",
        CellError::TooShort => "is shorter than its header says",
    }
}

/// Answers a VM's DDW RTAS calls and keeps a table for every active window.
///
/// The shim owns the DDW state of its PHBs and the backend's tables for their windows (LIOBN to
/// table). Its methods take `&mut self`: a VMM calls them under one lock per VM, so a remove
/// and a create can never interleave inside one shim. Dropping the shim removes its windows'
/// tables.
pub struct Shim<T: Tables> {
    ddw: Ddw<MAX_PHBS>,
    tables: T,
    last_error: Option<Error>,
}

impl<T: Tables> Shim<T> {
    /// Returns a shim with no PHB over `tables`.
    pub fn new(tables: T) -> Shim<T> {
        Shim {
            ddw: Ddw::new(),
            tables,
            last_error: None,
        }
    }

    /// Returns a shim serving `phbs`, each with its default window created.
    pub fn with_phbs(tables: T, phbs: &[PhbDesc]) -> Result<Shim<T>> {
        let mut shim = Shim::new(tables);
        for desc in phbs {
            shim.add_phb(*desc)?;
        }
        Ok(shim)
    }

    /// Adds a PHB and creates the table of its default window.
    pub fn add_phb(&mut self, desc: PhbDesc) -> Result<()> {
        let mut backend = Backend {
            tables: &mut self.tables,
            error: &mut self.last_error,
        };
        match self.ddw.add_phb(&mut backend, desc) {
            Ok(()) => Ok(()),
            Err(AddPhbError::Backend(_)) => Err(self.last_error.take().unwrap_or(Error::Phb {
                buid: desc.buid,
                reason: phb_reason(AddPhbError::Backend(BackendError(0))),
            })),
            Err(e) => Err(Error::Phb {
                buid: desc.buid,
                reason: phb_reason(e),
            }),
        }
    }

    /// Removes a PHB and the tables of its windows; tells whether it existed.
    pub fn remove_phb(&mut self, buid: u64) -> bool {
        let mut backend = Backend {
            tables: &mut self.tables,
            error: &mut self.last_error,
        };
        self.ddw.remove_phb(&mut backend, buid)
    }

    /// Answers `call` on host-order cells (`args.len()` is nargs, `rets.len()` is nret) and
    /// returns the status, which is also in `rets[0]` when there is one.
    pub fn call(&mut self, call: RtasCall, args: &[u32], rets: &mut [u32]) -> RtasStatus {
        let mut backend = Backend {
            tables: &mut self.tables,
            error: &mut self.last_error,
        };
        self.ddw.call(&mut backend, call, args, rets)
    }

    /// Answers `call` on big-endian cells as they sit in guest memory: `args` holds nargs cells
    /// and `rets` nret cells.
    pub fn call_be(&mut self, call: RtasCall, args: &[u8], rets: &mut [u8]) -> Result<RtasStatus> {
        let mut backend = Backend {
            tables: &mut self.tables,
            error: &mut self.last_error,
        };
        self.ddw
            .call_be(&mut backend, call, args, rets)
            .map_err(|e| Error::RtasBuffer {
                reason: cell_reason(e),
            })
    }

    /// Answers `call` on a whole guest RTAS buffer: token, nargs, nret, the argument cells and
    /// the return cells, all big-endian; the return cells are written in place. The VMM has
    /// already mapped the token to `call`.
    pub fn call_buffer(&mut self, call: RtasCall, buf: &mut [u8]) -> Result<RtasStatus> {
        let frame = cells::split_rtas_buffer(buf).map_err(|e| Error::RtasBuffer {
            reason: cell_reason(e),
        })?;
        self.call_be(call, frame.args, frame.rets)
    }

    /// Returns, and forgets, why the backend last failed: the reason behind a hardware error.
    pub fn take_backend_error(&mut self) -> Option<Error> {
        self.last_error.take()
    }

    /// Lists the active windows of every PHB.
    pub fn windows(&self) -> impl Iterator<Item = WindowInfo> + '_ {
        self.ddw.windows()
    }

    /// Lists the PHBs.
    pub fn phbs(&self) -> impl Iterator<Item = &PhbDesc> + '_ {
        self.ddw.phbs()
    }

    /// Returns the backend.
    pub fn tables(&self) -> &T {
        &self.tables
    }

    /// Returns the backend, to change how it backs windows created from now on (such as
    /// giving a PHB its VFIO groups with [`crate::HwTables::add_phb`]).
    pub fn tables_mut(&mut self) -> &mut T {
        &mut self.tables
    }

    /// Returns the table of the active window `liobn`.
    pub fn table(&self, liobn: u32) -> Result<T::Table> {
        if !self.windows().any(|w| w.liobn == liobn) {
            return Err(Error::NoWindow {
                liobn: liobn.into(),
            });
        }
        self.tables.table(liobn.into())
    }

    /// Saves the active window `liobn` sparsely, for migration.
    pub fn save(&self, liobn: u32) -> Result<SavedTable> {
        saved::save(&self.table(liobn)?)
    }

    /// Restores saved entries into the active window of the saved LIOBN, on the destination of a
    /// migration, after the window itself was re-created (by replaying the guest's
    /// `ibm,create-pe-dma-window`, or as a default window).
    ///
    /// The window must have the saved parameters and no entry yet; only the saved entries are
    /// written.
    pub fn restore(&mut self, saved: &SavedTable) -> Result<()> {
        let params = saved.params();
        let liobn = u32::try_from(params.liobn).map_err(|_| Error::NoWindow {
            liobn: params.liobn,
        })?;
        let table = self.table(liobn)?;
        let have = table.params();
        if have != *params {
            return Err(Error::WindowMismatch {
                liobn: params.liobn,
                have: describe(&have),
                saved: describe(params),
            });
        }
        let mut first = [0u64; 1];
        if table.existing_pages(0, &mut first)? != 0 {
            return Err(Error::NotEmpty {
                liobn: params.liobn,
            });
        }
        saved::write_entries(&table, saved)
    }
}

impl<T: Tables> Drop for Shim<T> {
    fn drop(&mut self) {
        let buids: Vec<u64> = self.ddw.phbs().map(|p| p.buid).collect();
        for buid in buids {
            self.remove_phb(buid);
        }
    }
}
