// SPDX-License-Identifier: GPL-2.0

//! The simulated POWER host and VMM: tables by LIOBN, hardware tables by id, guest memory
//! and the PHBs' dynamic DMA windows, all driven through the real engine and DDW model.

use std::collections::BTreeMap;
use std::sync::Arc;

use tce_ddw_model::{
    BackendError,
    Ddw,
    PhbDesc,
    RtasCall,
    RtasStatus,
    WindowBackend, //
};
use tce_engine::{
    env::Host,
    hcall::{
        self,
        AttachError,
        Target,
        Vm, //
    },
    hwtable::{
        Geometry,
        HwTable, //
    },
    tce::{
        HcallResult,
        INDIRECT_MAX, //
    },
    window::{
        CreateError,
        Window,
        WindowParams, //
    },
};

use crate::guest::{
    MemError,
    SimDma,
    SimRam, //
};
use crate::host::SimHost;

/// The most PHBs a simulated machine has.
pub const MAX_PHBS: usize = 16;

/// An errno-style failure of a table or memory command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// Bad arguments.
    Inval,
    /// The name is taken.
    Busy,
    /// Out of memory or over the locked-memory limit.
    NoMem,
    /// No such table.
    NoEnt,
    /// Outside guest RAM.
    Fault,
}

impl Errno {
    /// The errno name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inval => "EINVAL",
            Self::Busy => "EBUSY",
            Self::NoMem => "ENOMEM",
            Self::NoEnt => "ENOENT",
            Self::Fault => "EFAULT",
        }
    }
}

impl From<CreateError> for Errno {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Invalid => Self::Inval,
            CreateError::NoMemory => Self::NoMem,
        }
    }
}

impl From<MemError> for Errno {
    fn from(e: MemError) -> Self {
        match e {
            MemError::Invalid => Self::Inval,
            MemError::Fault => Self::Fault,
        }
    }
}

/// A guest-view table and the hardware tables attached to it.
pub struct Entry {
    /// The table.
    pub window: Window<SimHost>,
    /// Attached hardware tables, in attach order.
    pub attached: Vec<Arc<HwTable<SimHost>>>,
}

/// Guest-view tables by LIOBN; also the backend of the PHBs' windows.
pub struct Tables {
    host: SimHost,
    tables: BTreeMap<u64, Entry>,
}

impl Tables {
    /// Creates a table, checking in Linux's order: the arguments, the locked-memory charge and
    /// allocation, then the LIOBN's uniqueness.
    fn create(&mut self, params: WindowParams) -> Result<(), Errno> {
        let window = Window::new(self.host.clone(), params)?;
        if self.tables.contains_key(&params.liobn) {
            return Err(Errno::Busy);
        }
        self.tables.insert(
            params.liobn,
            Entry {
                window,
                attached: Vec::new(),
            },
        );
        Ok(())
    }
}

impl WindowBackend for Tables {
    fn create_table(
        &mut self,
        liobn: u32,
        page_shift: u32,
        offset: u64,
        size: u64,
    ) -> Result<(), BackendError> {
        let params = WindowParams::new(liobn.into(), page_shift, offset, size);
        self.create(params).map_err(|e| {
            BackendError(match e {
                Errno::Busy => -16,
                Errno::NoMem => -12,
                _ => -22,
            })
        })
    }

    fn remove_table(&mut self, liobn: u32) {
        self.tables.remove(&u64::from(liobn));
    }
}

/// The simulated machine.
pub struct Machine {
    host: SimHost,
    ram: SimRam,
    dma: SimDma,
    tables: Tables,
    hw: BTreeMap<u64, Arc<HwTable<SimHost>>>,
    ddw: Ddw<MAX_PHBS>,
    list: Box<[u64; INDIRECT_MAX]>,
}

impl Machine {
    /// A machine on `host`, with no RAM, tables or PHBs.
    pub fn new(host: SimHost) -> Self {
        Self {
            tables: Tables {
                host: host.clone(),
                tables: BTreeMap::new(),
            },
            host,
            ram: SimRam::default(),
            dma: SimDma::default(),
            hw: BTreeMap::new(),
            ddw: Ddw::new(),
            list: Box::new([0; INDIRECT_MAX]),
        }
    }

    /// The host.
    pub fn host(&self) -> &SimHost {
        &self.host
    }

    /// Preregistered memory.
    pub fn dma(&self) -> &SimDma {
        &self.dma
    }

    /// `ram`: adds a RAM slot.
    pub fn ram(&mut self, gpa: u64, bytes: u64) -> Result<(), Errno> {
        Ok(self.ram.add_slot(gpa, bytes)?)
    }

    /// `write64`: stores big-endian values in guest RAM.
    pub fn write64(&mut self, gpa: u64, values: &[u64]) -> Result<(), Errno> {
        Ok(self.ram.write64(gpa, values)?)
    }

    /// `prereg`: registers guest RAM for DMA.
    pub fn prereg(&mut self, gpa: u64, bytes: u64, page_shift: u32) -> Result<(), Errno> {
        Ok(self.dma.register(&self.ram, gpa, bytes, page_shift)?)
    }

    /// Whether `liobn` names a window slot of a PHB, active or not.
    fn phb_owns(&self, liobn: u64) -> bool {
        self.ddw
            .phbs()
            .any(|p| (0..p.num_slots).any(|slot| u64::from(p.liobn(slot)) == liobn))
    }

    /// `create`: a guest-view table with `KVM_CREATE_SPAPR_TCE_64` arguments. A LIOBN of a
    /// PHB's window slot is busy: the PHB's RTAS calls own it.
    pub fn create(&mut self, params: WindowParams) -> Result<(), Errno> {
        params.validate()?;
        if self.phb_owns(params.liobn) {
            return Err(Errno::Busy);
        }
        self.tables.create(params)
    }

    /// `remove`: removes a table and detaches its hardware tables. A PHB's window is busy:
    /// only its RTAS calls remove it, so that the PHB's state stays true.
    pub fn remove(&mut self, liobn: u64) -> Result<(), Errno> {
        if !self.tables.tables.contains_key(&liobn) {
            return Err(Errno::NoEnt);
        }
        if self.phb_owns(liobn) {
            return Err(Errno::Busy);
        }
        self.tables.tables.remove(&liobn);
        Ok(())
    }

    /// The table for `liobn`.
    pub fn window(&self, liobn: u64) -> Option<&Window<SimHost>> {
        self.tables.tables.get(&liobn).map(|e| &e.window)
    }

    fn target(
        &self,
        liobn: u64,
    ) -> Option<Target<'_, SimHost, impl Iterator<Item = &HwTable<SimHost>> + Clone>> {
        self.tables.tables.get(&liobn).map(|e| Target {
            window: &e.window,
            tables: e.attached.iter().map(|t| &**t),
        })
    }

    fn vm(&self) -> Vm<'_, SimRam, SimDma> {
        Vm {
            guest: &self.ram,
            dma: &self.dma,
        }
    }

    /// `H_PUT_TCE`.
    pub fn put(&self, liobn: u64, ioba: u64, tce: u64) -> HcallResult {
        self.vm().put_tce(self.target(liobn), ioba, tce)
    }

    /// `H_PUT_TCE_INDIRECT`.
    pub fn indirect(&mut self, liobn: u64, ioba: u64, tce_list: u64, npages: u64) -> HcallResult {
        let mut list = std::mem::replace(&mut self.list, Box::new([0; INDIRECT_MAX]));
        let r =
            self.vm()
                .put_tce_indirect(self.target(liobn), ioba, tce_list, npages, &mut list[..]);
        self.list = list;
        r
    }

    /// `H_STUFF_TCE`.
    pub fn stuff(&self, liobn: u64, ioba: u64, value: u64, npages: u64) -> HcallResult {
        self.vm().stuff_tce(self.target(liobn), ioba, value, npages)
    }

    /// `H_GET_TCE`.
    pub fn get(&self, liobn: u64, ioba: u64) -> HcallResult<u64> {
        hcall::get_tce(self.window(liobn), ioba)
    }

    /// `pages`: host pages backing a table.
    pub fn pages(&self, liobn: u64) -> Option<u64> {
        self.window(liobn).map(|w| w.present_pages())
    }

    /// `hw`: a hardware table with the powernv geometry.
    pub fn hw(
        &mut self,
        id: u64,
        page_shift: u32,
        bus_offset: u64,
        window_bytes: u64,
        levels: u32,
    ) -> Result<(), Errno> {
        let geo = Geometry::new(
            self.host.page_shift(),
            page_shift,
            bus_offset,
            window_bytes,
            levels,
        )
        .map_err(|_| Errno::Inval)?;
        if self.hw.contains_key(&id) {
            return Err(Errno::Busy);
        }
        let t = HwTable::new(self.host.clone(), geo).map_err(|_| Errno::NoMem)?;
        self.hw.insert(id, Arc::new(t));
        Ok(())
    }

    /// `attach`: attaches hardware table `id` to the table of `liobn`.
    pub fn attach(&mut self, liobn: u64, id: u64) -> Result<(), Errno> {
        let table = self.hw.get(&id).ok_or(Errno::NoEnt)?.clone();
        let entry = self.tables.tables.get_mut(&liobn).ok_or(Errno::NoEnt)?;
        hcall::check_attach(&entry.window, &*table).map_err(|_: AttachError| Errno::Inval)?;
        if !entry.attached.iter().any(|t| Arc::ptr_eq(t, &table)) {
            entry.attached.push(table);
        }
        Ok(())
    }

    /// A hardware table by id.
    pub fn hw_table(&self, id: u64) -> Option<&HwTable<SimHost>> {
        self.hw.get(&id).map(|t| &**t)
    }

    /// `phb`: a PHB with dynamic DMA windows and its default window.
    pub fn phb(&mut self, buid: u64, liobn_base: u64) -> Result<(), Errno> {
        let base = u32::try_from(liobn_base).map_err(|_| Errno::Inval)?;
        base.checked_add(1).ok_or(Errno::Inval)?;
        for l in [liobn_base, liobn_base + 1] {
            if self.tables.tables.contains_key(&l) {
                return Err(Errno::Busy);
            }
        }
        let desc = PhbDesc::simulator_default(buid, base);
        self.ddw
            .add_phb(&mut self.tables, desc)
            .map_err(|e| match e {
                tce_ddw_model::AddPhbError::Backend(BackendError(-12)) => Errno::NoMem,
                tce_ddw_model::AddPhbError::InvalidDesc(_) => Errno::Inval,
                _ => Errno::Busy,
            })
    }

    /// An RTAS call with `rets.len()` return cells; returns the status.
    pub fn rtas(&mut self, call: RtasCall, args: &[u32], rets: &mut [u32]) -> RtasStatus {
        self.ddw.call(&mut self.tables, call, args, rets)
    }
}
