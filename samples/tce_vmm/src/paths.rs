// SPDX-License-Identifier: GPL-2.0
//! The VMM's DMA windows by LIOBN, and its answers to the TCE hypercalls that exit to it.
//!
//! A window is one of three paths:
//!
//! - **accel**: a `tce_accel` table made by the DDW shim. KVM hands its hypercalls to the
//!   module (`patches/0003`), and only the calls it cannot do (rule 1 and rule 2 of
//!   [`crate::hcall`]) exit here;
//! - **kvm**: one of KVM's own tables (`KVM_CREATE_SPAPR_TCE_64` while the module's `takeover`
//!   is off, as tce-init loads it), answered by Linux's C code;
//!   calls exit here when Linux says `H_TOO_HARD`;
//! - **user**: an engine table in this process that the kernel knows nothing about: every call
//!   exits here.
//!
//! All three are answered with the engine. For a kernel table, the engine checks the call on a
//! *validator*, an engine table with the window's parameters that is never read (the checks
//! depend on the parameters and guest RAM only; its pages are allocated as the checks reserve
//! them, at most the window's size), and the VMM then writes the entries through the table's
//! mapping, exactly the values the engine validated.

use std::collections::BTreeMap;
use std::sync::atomic::{
    AtomicU64,
    Ordering, //
};
use std::sync::{
    Arc,
    RwLock, //
};

use tce_engine::hcall::{
    self as engine,
    Target,
    Vm, //
};
use tce_engine::hwtable::HwTable;
use tce_engine::tce::{
    HcallError,
    HcallResult,
    INDIRECT_MAX, //
};
use tce_engine::window::{
    CreateError,
    Window,
    WindowParams, //
};
use tce_model::guest::SimDma;
use tce_model::host::SimHost;

use crate::error::{
    Error,
    Result, //
};
use crate::hcall::{
    is_big_stuff,
    stuff_in_chunks,
    Answer,
    Hcall, //
};
use crate::memory::GuestRam;
use crate::table::MappedTable;

/// The three ways a TCE hypercall can be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathKind {
    /// A `tce_accel` table: the fast path.
    Accel,
    /// A table of KVM's own: Linux's C path.
    Kvm,
    /// An engine table in the VMM: an exit to user space per call.
    User,
}

impl PathKind {
    /// All paths, in display order.
    pub const ALL: [PathKind; 3] = [PathKind::Accel, PathKind::Kvm, PathKind::User];

    /// The path's short name.
    pub const fn name(self) -> &'static str {
        match self {
            PathKind::Accel => "accel",
            PathKind::Kvm => "kvm",
            PathKind::User => "user",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Where a window's entries live.
pub enum Backing {
    /// In the kernel: the table's mapping, and the engine table that checks calls for it.
    Kernel {
        /// The kernel table.
        table: MappedTable,
        /// The engine table the calls are checked on; its entries are never read.
        validator: Window<SimHost>,
    },
    /// In the VMM: the engine table itself.
    User {
        /// The engine table.
        window: Window<SimHost>,
    },
}

/// One DMA window of the VM.
pub struct Path {
    /// Which path it is.
    pub kind: PathKind,
    /// Its table.
    pub backing: Backing,
}

impl Path {
    /// The engine table the calls are checked (and for the user path, applied) on.
    fn engine_window(&self) -> &Window<SimHost> {
        match &self.backing {
            Backing::Kernel { validator, .. } => validator,
            Backing::User { window } => window,
        }
    }

    /// The window's parameters.
    pub fn params(&self) -> &WindowParams {
        self.engine_window().params()
    }

    /// The non-zero entries, as (window-relative index, value), in order.
    pub fn entries(&self) -> Result<Vec<(u64, u64)>> {
        match &self.backing {
            Backing::Kernel { table, .. } => table.entries(),
            Backing::User { window } => {
                let mut out = Vec::new();
                window.for_each_entry(|rel, v| out.push((rel, v)));
                Ok(out)
            }
        }
    }
}

/// No hardware table is attached to any window of this VMM.
type NoTables<'a> = std::iter::Empty<&'a HwTable<SimHost>>;

/// The target of a call on `window`.
fn target(window: &Window<SimHost>) -> Option<Target<'_, SimHost, NoTables<'_>>> {
    Some(Target {
        window,
        tables: std::iter::empty(),
    })
}

/// How many exits each path saw, and how they were answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitCounts {
    /// TCE hypercall exits per path, indexed like [`PathKind::ALL`].
    pub per_path: [u64; 3],
    /// TCE hypercall exits for a LIOBN the VMM does not know.
    pub unknown_liobn: u64,
    /// Calls on which the engine said `H_TOO_HARD` (answered `H_PARAMETER`).
    pub too_hard: u64,
}

impl ExitCounts {
    /// The exits of one path.
    pub fn of(&self, kind: PathKind) -> u64 {
        self.per_path[kind.index()]
    }

    /// The counts since `before`.
    pub fn since(&self, before: &ExitCounts) -> ExitCounts {
        ExitCounts {
            per_path: std::array::from_fn(|i| self.per_path[i] - before.per_path[i]),
            unknown_liobn: self.unknown_liobn - before.unknown_liobn,
            too_hard: self.too_hard - before.too_hard,
        }
    }
}

/// How many `H_TOO_HARD` answers are logged one by one; the rest are only counted.
const TOO_HARD_LOG_LINES: u64 = 8;

/// The VM's windows by LIOBN, shared by the vCPU threads.
pub struct Paths {
    map: RwLock<BTreeMap<u64, Arc<Path>>>,
    host: SimHost,
    dma: SimDma,
    exits: [AtomicU64; 3],
    unknown_liobn: AtomicU64,
    too_hard: AtomicU64,
    /// Windows with a VFIO hardware table: rule 3 of `hcall`.
    hardware: RwLock<std::collections::BTreeSet<u64>>,
}

impl Paths {
    /// No window yet; engine tables use host pages of `1 << host_page_shift` bytes.
    pub fn new(host_page_shift: u32) -> Paths {
        Paths {
            map: RwLock::new(BTreeMap::new()),
            host: SimHost::new(host_page_shift),
            dma: SimDma::default(),
            exits: Default::default(),
            unknown_liobn: AtomicU64::new(0),
            too_hard: AtomicU64::new(0),
            hardware: RwLock::new(std::collections::BTreeSet::new()),
        }
    }

    /// Says whether window `liobn` has a VFIO hardware table: then every exit of a call that
    /// would change it is answered `H_HARDWARE` (rule 3 of `hcall`).
    pub fn set_hardware(&self, liobn: u64, on: bool) {
        let mut hw = self.hardware.write().unwrap_or_else(|e| e.into_inner());
        if on {
            hw.insert(liobn);
        } else {
            hw.remove(&liobn);
        }
    }

    fn engine_table(&self, params: WindowParams) -> Result<Window<SimHost>> {
        Window::new(self.host.clone(), params).map_err(|e| Error::EngineTable {
            liobn: params.liobn,
            reason: match e {
                CreateError::Invalid => "the window parameters are invalid",
                CreateError::NoMemory => "out of memory",
            },
        })
    }

    fn insert(&self, path: Path) {
        let liobn = path.params().liobn;
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(liobn, Arc::new(path));
    }

    /// Adds a window whose table is in the kernel.
    pub fn add_kernel(&self, kind: PathKind, table: MappedTable) -> Result<()> {
        let validator = self.engine_table(*table.params())?;
        self.insert(Path {
            kind,
            backing: Backing::Kernel { table, validator },
        });
        Ok(())
    }

    /// Adds a window that only the VMM knows.
    pub fn add_user(&self, params: WindowParams) -> Result<()> {
        let window = self.engine_table(params)?;
        self.insert(Path {
            kind: PathKind::User,
            backing: Backing::User { window },
        });
        Ok(())
    }

    /// Forgets a window; calls already answering on it finish first, holding their reference.
    pub fn remove(&self, liobn: u64) -> Option<Arc<Path>> {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&liobn)
    }

    /// The window `liobn`.
    pub fn get(&self, liobn: u64) -> Option<Arc<Path>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&liobn)
            .cloned()
    }

    /// The LIOBNs of the windows of one path.
    pub fn liobns(&self, kind: PathKind) -> Vec<u64> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, p)| p.kind == kind)
            .map(|(&l, _)| l)
            .collect()
    }

    /// The exit counts so far.
    pub fn exits(&self) -> ExitCounts {
        ExitCounts {
            per_path: std::array::from_fn(|i| self.exits[i].load(Ordering::Relaxed)),
            unknown_liobn: self.unknown_liobn.load(Ordering::Relaxed),
            too_hard: self.too_hard.load(Ordering::Relaxed),
        }
    }

    /// Answers a TCE hypercall that exited to the VMM, counting the exit.
    pub fn answer(&self, ram: &GuestRam, call: &Hcall) -> Answer {
        let Some(path) = self.get(call.liobn()) else {
            self.unknown_liobn.fetch_add(1, Ordering::Relaxed);
            return Answer::UnknownLiobn;
        };
        self.exits[path.kind.index()].fetch_add(1, Ordering::Relaxed);
        let changes = !matches!(call, Hcall::Get { .. });
        if changes
            && self
                .hardware
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&call.liobn())
        {
            println!(
                "tce-vmm: note: {} path: {call}: the kernel could not update the window's \
                 hardware table; the guest gets H_HARDWARE",
                path.kind.name()
            );
            return Answer::Hardware;
        }
        let vm = Vm {
            guest: ram,
            dma: &self.dma,
        };
        let answer = Answer::from_result(match &path.backing {
            Backing::User { window } => user_call(&vm, window, call),
            Backing::Kernel { table, validator } => kernel_call(&vm, validator, table, call),
        });
        if answer == Answer::TooHard {
            let n = self.too_hard.fetch_add(1, Ordering::Relaxed);
            if n < TOO_HARD_LOG_LINES {
                println!(
                    "tce-vmm: note: {} path: {call}: the engine says H_TOO_HARD (the call \
                     names memory outside guest RAM); the guest gets H_PARAMETER{}",
                    path.kind.name(),
                    if n + 1 == TOO_HARD_LOG_LINES {
                        " (further ones are only counted)"
                    } else {
                        ""
                    }
                );
            }
        }
        answer
    }
}

/// A call on an engine table of the VMM.
fn user_call(
    vm: &Vm<'_, GuestRam, SimDma>,
    w: &Window<SimHost>,
    call: &Hcall,
) -> HcallResult<Option<u64>> {
    match *call {
        Hcall::Get { ioba, .. } => engine::get_tce(Some(w), ioba).map(Some),
        Hcall::Put { ioba, tce, .. } => vm.put_tce(target(w), ioba, tce).map(|()| None),
        Hcall::Stuff {
            ioba,
            value,
            npages,
            ..
        } if is_big_stuff(value, npages) => stuff_in_chunks(
            w.page_shift(),
            ioba,
            npages,
            |i, n| w.check_range(i, n).is_some(),
            |i, n| vm.stuff_tce(target(w), i, value, n),
        )
        .map(|()| None),
        Hcall::Stuff {
            ioba,
            value,
            npages,
            ..
        } => vm.stuff_tce(target(w), ioba, value, npages).map(|()| None),
        Hcall::Indirect {
            ioba, list, npages, ..
        } => {
            let mut buf = [0u64; INDIRECT_MAX];
            vm.put_tce_indirect(target(w), ioba, list, npages, &mut buf)
                .map(|()| None)
        }
    }
}

/// The window-relative index of `ioba`, which the engine has just accepted for `n` entries.
fn rel_of(w: &Window<SimHost>, ioba: u64, n: u64) -> HcallResult<u64> {
    w.check_range(ioba, n).ok_or(HcallError::Parameter)
}

/// A call on a kernel table that the kernel left to the VMM: checked by the engine on the
/// validator, then applied through the table's mapping.
fn kernel_call(
    vm: &Vm<'_, GuestRam, SimDma>,
    v: &Window<SimHost>,
    table: &MappedTable,
    call: &Hcall,
) -> HcallResult<Option<u64>> {
    // Writing through the mapping fails only if the table's page list cannot be read.
    let fill = |rel: u64, n: u64, value: u64| {
        table.fill(rel, n, value).map_err(|e| {
            println!(
                "tce-vmm: error: cannot write the table of LIOBN {:#x}: {}",
                table.params().liobn,
                crate::error::chain(&e)
            );
            HcallError::Hardware
        })
    };
    match *call {
        Hcall::Get { ioba, .. } => Ok(Some(table.load(rel_of(v, ioba, 1)?))),
        Hcall::Put { ioba, tce, .. } => {
            let _checked = vm.prepare_put(target(v), ioba, tce)?;
            table.store(rel_of(v, ioba, 1)?, tce);
            Ok(None)
        }
        Hcall::Stuff {
            ioba,
            value,
            npages,
            ..
        } => {
            let one = |i: u64, n: u64| {
                let _checked = vm.prepare_stuff(target(v), i, value, n)?;
                fill(rel_of(v, i, n)?, n, value)
            };
            if is_big_stuff(value, npages) {
                stuff_in_chunks(
                    v.page_shift(),
                    ioba,
                    npages,
                    |i, n| v.check_range(i, n).is_some(),
                    one,
                )?;
            } else {
                one(ioba, npages)?;
            }
            Ok(None)
        }
        Hcall::Indirect {
            ioba, list, npages, ..
        } => {
            let mut buf = [0u64; INDIRECT_MAX];
            let checked = vm.prepare_indirect(target(v), ioba, list, npages, &mut buf)?;
            drop(checked);
            let rel = rel_of(v, ioba, npages)?;
            // The engine read exactly `npages` (at most INDIRECT_MAX) entries into `buf`.
            for (i, &tce) in buf[..npages as usize].iter().enumerate() {
                table.store(rel + i as u64, tce);
            }
            Ok(None)
        }
    }
}
