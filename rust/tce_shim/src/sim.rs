// SPDX-License-Identifier: GPL-2.0
//! The simulated backend: engine tables on tce-sim's simulated host, in this process's memory.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{
    Arc,
    Mutex,
    MutexGuard, //
};

use tce_engine::{
    env::{
        Host,
        TablePage, //
    },
    hcall,
    window::{
        CreateError,
        Window,
        WindowParams, //
    },
};
use tce_model::host::SimHost;

use crate::error::{
    Error,
    Result, //
};
use crate::table::{
    check_index,
    validate,
    Table,
    TableInfo,
    Tables, //
};

/// One engine table on the simulated host.
///
/// `W` is how the table is held: an [`Arc`] for the tables of [`SimTables`], or a plain
/// reference for a table that lives elsewhere, such as in a `tce_model::machine::Machine`.
pub struct SimTable<W = Arc<Window<SimHost>>> {
    window: W,
    page_shift: u32,
}

impl<W: Deref<Target = Window<SimHost>>> SimTable<W> {
    /// Wraps `window`, a table on a host with `1 << host_page_shift`-byte pages.
    pub fn new(window: W, host_page_shift: u32) -> Self {
        SimTable {
            window,
            page_shift: host_page_shift,
        }
    }

    /// Returns the engine table.
    pub fn window(&self) -> &Window<SimHost> {
        &self.window
    }

    /// Tells whether host page `page` exists, without allocating it.
    fn exists(&self, page: u64) -> bool {
        let mut found = [0u64; 1];
        self.window.present_pages_from(page, &mut found) == 1 && found[0] == page
    }
}

impl<W: Deref<Target = Window<SimHost>>> Table for SimTable<W> {
    fn info(&self) -> Result<TableInfo> {
        Ok(TableInfo {
            params: *self.window.params(),
            host_page_size: 1 << self.page_shift,
            mapping_pages: self.window.mapping_pages(),
            present_pages: self.window.present_pages(),
            locked_pages: self.window.charged_pages(),
        })
    }

    fn params(&self) -> WindowParams {
        *self.window.params()
    }

    fn entries_per_page(&self) -> u64 {
        1 << (self.page_shift - 3)
    }

    fn existing_pages(&self, start: u64, out: &mut [u64]) -> Result<usize> {
        Ok(self.window.present_pages_from(start, out))
    }

    fn read_page(&self, page: u64, out: &mut [u64]) -> Result<usize> {
        let per_page = self.entries_per_page();
        let first = page.saturating_mul(per_page);
        let size = self.window.size();
        check_index(first, size)?;
        let count = per_page.min(size - first).min(out.len() as u64) as usize;
        if !self.exists(page) {
            // A page that does not exist reads as zeros; faulting it in would allocate it.
            out[..count].fill(0);
            return Ok(count);
        }
        let liobn = self.window.liobn();
        let p = self
            .window
            .fault(page)
            .map_err(|_| Error::PageMemory { liobn })?;
        for (w, slot) in out[..count].iter_mut().enumerate() {
            *slot = p.load(w);
        }
        Ok(count)
    }

    fn read(&self, index: u64) -> Result<u64> {
        let params = self.window.params();
        check_index(index, params.size)?;
        // Through the engine's H_GET_TCE, which reads an absent page as 0 without allocating.
        // The index is inside a valid window, so the bus address fits 64 bits.
        let ioba = (params.offset + index) << params.page_shift;
        hcall::get_tce(Some(&*self.window), ioba).map_err(|_| Error::IndexOutsideWindow {
            index,
            size: params.size,
        })
    }

    fn write(&self, index: u64, tce: u64) -> Result<()> {
        check_index(index, self.window.size())?;
        let per_page = self.entries_per_page();
        let (page, word) = (index / per_page, (index % per_page) as usize);
        if tce == 0 && !self.exists(page) {
            return Ok(());
        }
        // The same path as the VMM's mapping: a fault allocates the page if needed.
        let liobn = self.window.liobn();
        let p = self
            .window
            .fault(page)
            .map_err(|_| Error::PageMemory { liobn })?;
        p.store(word, tce);
        Ok(())
    }
}

/// The state behind a [`SimTables`] handle.
struct State {
    host: SimHost,
    tables: BTreeMap<u64, Arc<Window<SimHost>>>,
    fail_creates: u32,
}

/// The tables of one simulated VM, on a [`SimHost`].
///
/// Cloning gives another handle to the same VM, as a second VMM thread holding the same VM
/// file descriptor would have: two [`crate::Shim`]s can share one.
#[derive(Clone)]
pub struct SimTables {
    state: Arc<Mutex<State>>,
}

impl SimTables {
    /// Returns a VM with no table on `host`.
    pub fn new(host: SimHost) -> Self {
        SimTables {
            state: Arc::new(Mutex::new(State {
                host,
                tables: BTreeMap::new(),
                fail_creates: 0,
            })),
        }
    }

    /// Locks the state; a panic in another thread leaves it usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the simulated host.
    pub fn host(&self) -> SimHost {
        self.lock().host.clone()
    }

    /// Makes the next `n` creations fail as if another thread had just taken their LIOBN
    /// (`EBUSY`): the way a create that races a remove loses.
    pub fn fail_next_creates(&self, n: u32) {
        self.lock().fail_creates = n;
    }
}

impl Tables for SimTables {
    type Table = SimTable;

    fn create(&mut self, params: WindowParams) -> Result<()> {
        validate(&params)?;
        let mut state = self.lock();
        if state.fail_creates > 0 {
            state.fail_creates -= 1;
            return Err(Error::LiobnBusy {
                liobn: params.liobn,
            });
        }
        // In Linux's order: the charge and the allocation, then the LIOBN's uniqueness.
        let window = Window::new(state.host.clone(), params).map_err(|e| match e {
            CreateError::NoMemory => Error::NoMemory {
                liobn: params.liobn,
            },
            CreateError::Invalid => Error::InvalidWindow {
                liobn: params.liobn,
                page_shift: params.page_shift,
                offset: params.offset,
                size: params.size,
            },
        })?;
        if state.tables.contains_key(&params.liobn) {
            return Err(Error::LiobnBusy {
                liobn: params.liobn,
            });
        }
        state.tables.insert(params.liobn, Arc::new(window));
        Ok(())
    }

    fn remove(&mut self, liobn: u64) -> Result<()> {
        self.lock()
            .tables
            .remove(&liobn)
            .map(drop)
            .ok_or(Error::UnknownLiobn { liobn })
    }

    fn table(&self, liobn: u64) -> Result<SimTable> {
        let state = self.lock();
        let window = state
            .tables
            .get(&liobn)
            .cloned()
            .ok_or(Error::UnknownLiobn { liobn })?;
        Ok(SimTable::new(window, state.host.page_shift()))
    }

    fn liobns(&self) -> Vec<u64> {
        self.lock().tables.keys().copied().collect()
    }
}
