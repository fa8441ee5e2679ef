// SPDX-License-Identifier: GPL-2.0
//! Hardware DMA windows for the windows of PHBs with VFIO groups, attached to their tables.
//!
//! [`HwTables`] wraps a [`Tables`] backend. For a window of a PHB that has VFIO groups
//! ([`HwTables::add_phb`]) it does, after the guest-view table is made:
//!
//! 1. create a hardware window ([`HwWindows::create_window`], `VFIO_IOMMU_SPAPR_TCE_CREATE`)
//!    with the window's IOMMU page shift, the window's size in bytes rounded up to a power of
//!    two, and the configured number of levels (1 by default);
//! 2. check that the hardware window starts at the window's bus address;
//! 3. attach every group of the PHB to the table ([`HwWindows::attach`],
//!    `TCE_ACCEL_ATTACH_GROUP`).
//!
//! A failure at any step undoes the steps before it, in reverse order (detach the groups
//! attached so far, remove the hardware window, remove the table), so that a refused window
//! leaves no table, hardware window or attachment behind; the error names the group, the
//! window and what the errno means. Removing a window detaches every group, removes the
//! hardware window, then the table; dropping the [`HwTables`] does that for every window left.
//!
//! The VFIO operations sit behind [`HwWindows`], so that tests can inject failures; a
//! [`crate::vfio::Container`] (in an `Arc`) is the real one.

use std::collections::BTreeMap;

use tce_ddw_model::PhbDesc;
use tce_engine::window::WindowParams;

use crate::error::{
    Error,
    Result, //
};
use crate::table::{
    describe,
    Table,
    Tables, //
};
use tce_sys::SysResult;

/// The hardware side of one PHB's VFIO groups: their container's windows, and attaching the
/// groups to a table of type `T`.
///
/// Every method returns the kernel's errno; [`HwTables`] turns it into an [`Error`] that says
/// which group and window it was about.
pub trait HwWindows<T> {
    /// Returns the PHB's VFIO group numbers, in the order they are attached.
    fn groups(&self) -> Vec<u32>;

    /// Creates a hardware DMA window and returns its bus address.
    fn create_window(&mut self, page_shift: u32, window_size: u64, levels: u32) -> SysResult<u64>;

    /// Removes the hardware DMA window at bus address `start`.
    fn remove_window(&mut self, start: u64) -> SysResult<()>;

    /// Attaches group `group` to `table`.
    fn attach(&mut self, table: &T, group: u32) -> SysResult<()>;

    /// Detaches group `group` from `table`.
    fn detach(&mut self, table: &T, group: u32) -> SysResult<()>;
}

/// A PHB whose windows get hardware windows.
struct HwPhb<H> {
    /// The first LIOBN of the PHB.
    first: u64,
    /// The last LIOBN of the PHB.
    last: u64,
    /// Its VFIO side.
    hw: H,
}

/// The hardware window of one guest window.
#[derive(Clone, Debug)]
struct HwWindow {
    /// The index of its PHB in [`HwTables::phbs`].
    phb: usize,
    /// Its bus address.
    start: u64,
    /// The groups attached to the table.
    attached: Vec<u32>,
}

/// The hardware window a guest window has, as [`HwTables::hw_window`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HwWindowInfo {
    /// The hardware window's bus address (the guest window's).
    pub start: u64,
    /// The groups attached to the window's table.
    pub groups: Vec<u32>,
}

/// A [`Tables`] backend whose windows on PHBs with VFIO groups get attached hardware windows.
///
/// Windows of other PHBs are the inner backend's alone. A PHB's groups apply to the windows
/// that exist when [`HwTables::add_phb`] gives them (such as the default window made when the
/// shim added the PHB) and to every window created after.
pub struct HwTables<T: Tables, H: HwWindows<T::Table>> {
    tables: T,
    phbs: Vec<HwPhb<H>>,
    windows: BTreeMap<u64, HwWindow>,
    levels: u32,
}

/// The number of levels of a hardware table unless [`HwTables::set_levels`] says otherwise.
pub const DEFAULT_LEVELS: u32 = 1;

impl<T: Tables, H: HwWindows<T::Table>> HwTables<T, H> {
    /// Wraps `tables`; no PHB has VFIO groups yet.
    pub fn new(tables: T) -> Self {
        HwTables {
            tables,
            phbs: Vec::new(),
            windows: BTreeMap::new(),
            levels: DEFAULT_LEVELS,
        }
    }

    /// Sets the number of levels of the hardware tables created from now on (the pseries
    /// platform accepts only 1; powernv 1 to 5).
    pub fn set_levels(&mut self, levels: u32) {
        self.levels = levels;
    }

    /// Gives PHB `desc` the VFIO side `hw`: the PHB's windows that exist (its default window)
    /// get their hardware windows now, the ones created later when they are created, each with
    /// every group of `hw` attached.
    ///
    /// The shim lays out the container's windows itself. VFIO's sPAPR TCE v2 IOMMU creates a
    /// default window of its own (4 KiB pages at bus address 0) on the container's first
    /// mapping or window create; that window, or its pending creation, is removed first, so
    /// that the guest's default window gets a hardware window of the guest's geometry. If an
    /// existing window cannot get its hardware window, the PHB is left without VFIO groups and
    /// the windows given one here lose it again.
    pub fn add_phb(&mut self, desc: &PhbDesc, hw: H) -> Result<()> {
        let first = u64::from(desc.liobn_base);
        let last = first + (desc.num_slots.max(1) as u64 - 1);
        if self.phbs.iter().any(|p| first <= p.last && p.first <= last) {
            return Err(Error::HwPhbOverlap { first, last });
        }
        self.phbs.push(HwPhb { first, last, hw });
        let phb = self.phbs.len() - 1;
        // "No window there" is the usual answer: VFIO has not made its default window yet.
        let _ = self.phbs[phb].hw.remove_window(0);
        let existing: Vec<u64> = self
            .tables
            .liobns()
            .into_iter()
            .filter(|l| (first..=last).contains(l) && !self.windows.contains_key(l))
            .collect();
        for (n, &liobn) in existing.iter().enumerate() {
            let given = self
                .tables
                .table(liobn)
                .map(|t| t.params())
                .and_then(|params| self.attach_hw(phb, &params));
            match given {
                Ok(w) => {
                    self.windows.insert(liobn, w);
                }
                Err(e) => {
                    for done in existing[..n].iter().rev() {
                        if let Some(w) = self.windows.remove(done) {
                            let _ = self.detach_hw(*done, &w);
                        }
                    }
                    self.phbs.pop();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Returns the VFIO side of the PHB that owns `liobn`, if it has one.
    pub fn hw(&self, liobn: u64) -> Option<&H> {
        self.phb_of(liobn).map(|i| &self.phbs[i].hw)
    }

    /// Returns the hardware window of window `liobn`, if it has one.
    pub fn hw_window(&self, liobn: u64) -> Option<HwWindowInfo> {
        self.windows.get(&liobn).map(|w| HwWindowInfo {
            start: w.start,
            groups: w.attached.clone(),
        })
    }

    /// Returns the inner backend.
    pub fn inner(&self) -> &T {
        &self.tables
    }

    fn phb_of(&self, liobn: u64) -> Option<usize> {
        self.phbs
            .iter()
            .position(|p| (p.first..=p.last).contains(&liobn))
    }

    /// Creates the hardware window of the new table of `params` on PHB `phb` and attaches the
    /// groups; on failure undoes what it did and leaves the table to the caller.
    fn attach_hw(&mut self, phb: usize, params: &WindowParams) -> Result<HwWindow> {
        let liobn = params.liobn;
        let window = describe(params);
        let want = u128::from(params.offset) << params.page_shift;
        let bytes = u128::from(params.size) << params.page_shift;
        let window_size = bytes
            .checked_next_power_of_two()
            .and_then(|b| u64::try_from(b).ok())
            .filter(|_| u64::try_from(want).is_ok())
            .ok_or_else(|| Error::HwWindowTooLarge {
                liobn,
                window: window.clone(),
            })?;
        // `want` fits: checked with the size above.
        let want = want as u64;
        let table = self.tables.table(liobn)?;
        let levels = self.levels;
        let hw = &mut self.phbs[phb].hw;
        let start = hw
            .create_window(params.page_shift, window_size, levels)
            .map_err(|e| Error::HwWindowCreate {
                liobn,
                window: window.clone(),
                window_size,
                levels,
                source: e.into(),
            })?;
        if start != want {
            let _ = hw.remove_window(start);
            return Err(Error::HwWindowAddress {
                liobn,
                window,
                want,
                got: start,
            });
        }
        let mut attached = Vec::new();
        for group in hw.groups() {
            if let Err(e) = hw.attach(&table, group) {
                for &done in attached.iter().rev() {
                    let _ = hw.detach(&table, done);
                }
                let _ = hw.remove_window(start);
                return Err(Error::AttachGroup {
                    group,
                    liobn,
                    window,
                    source: e.into(),
                });
            }
            attached.push(group);
        }
        Ok(HwWindow {
            phb,
            start,
            attached,
        })
    }

    /// Detaches the groups of window `liobn` and removes its hardware window; returns the
    /// first error, after trying every step.
    fn detach_hw(&mut self, liobn: u64, w: &HwWindow) -> Result<()> {
        let mut first = None;
        let hw = &mut self.phbs[w.phb].hw;
        match self.tables.table(liobn) {
            Ok(table) => {
                for &group in w.attached.iter().rev() {
                    if let Err(e) = hw.detach(&table, group) {
                        first.get_or_insert(Error::DetachGroup {
                            group,
                            liobn,
                            source: e.into(),
                        });
                    }
                }
            }
            // Without the table there is nothing to detach from: closing it detached them.
            Err(e) => {
                first.get_or_insert(e);
            }
        }
        if let Err(e) = hw.remove_window(w.start) {
            first.get_or_insert(Error::HwWindowRemove {
                liobn,
                start: w.start,
                source: e.into(),
            });
        }
        first.map_or(Ok(()), Err)
    }
}

impl<T: Tables, H: HwWindows<T::Table>> Tables for HwTables<T, H> {
    type Table = T::Table;

    fn create(&mut self, params: WindowParams) -> Result<()> {
        let liobn = params.liobn;
        if self.windows.contains_key(&liobn) {
            return Err(Error::LiobnBusy { liobn });
        }
        self.tables.create(params)?;
        let Some(phb) = self.phb_of(liobn) else {
            return Ok(());
        };
        match self.attach_hw(phb, &params) {
            Ok(w) => {
                self.windows.insert(liobn, w);
                Ok(())
            }
            Err(e) => {
                let _ = self.tables.remove(liobn);
                Err(e)
            }
        }
    }

    fn remove(&mut self, liobn: u64) -> Result<()> {
        let hw = match self.windows.remove(&liobn) {
            Some(w) => self.detach_hw(liobn, &w),
            None => Ok(()),
        };
        let table = self.tables.remove(liobn);
        hw.and(table)
    }

    fn table(&self, liobn: u64) -> Result<T::Table> {
        self.tables.table(liobn)
    }

    fn liobns(&self) -> Vec<u64> {
        self.tables.liobns()
    }
}

impl<T: Tables, H: HwWindows<T::Table>> Drop for HwTables<T, H> {
    fn drop(&mut self) {
        let liobns: Vec<u64> = self.windows.keys().copied().collect();
        for liobn in liobns {
            let _ = self.remove(liobn);
        }
    }
}

/// A VFIO side for tests: records every operation and fails on request.
#[cfg(test)]
pub(crate) mod fake {
    use rustix::io::Errno;

    use super::*;

    /// One operation the fake saw.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Op {
        /// `create_window(page_shift, window_size, levels)`, and the address it returned.
        Create(u32, u64, u32, u64),
        /// `remove_window(start)`.
        Remove(u64),
        /// `attach(liobn, group)`.
        Attach(u64, u32),
        /// `detach(liobn, group)`.
        Detach(u64, u32),
    }

    /// What the fake holds and how it fails.
    #[derive(Default)]
    pub struct State {
        /// Every operation, in order.
        pub ops: Vec<Op>,
        /// Live hardware windows: start address.
        pub windows: Vec<u64>,
        /// Live attachments: (LIOBN, group).
        pub attached: Vec<(u64, u32)>,
        /// The next creates fail with this errno.
        pub fail_create: Option<Errno>,
        /// Creates return this address instead of the window's.
        pub start_override: Option<u64>,
        /// Attaches of this group fail with this errno.
        pub fail_attach: Option<(u32, Errno)>,
    }

    /// The fake, shared with the test that inspects it.
    #[derive(Clone)]
    pub struct FakeHw {
        /// The groups.
        pub groups: Vec<u32>,
        /// The state.
        pub state: std::sync::Arc<std::sync::Mutex<State>>,
        /// The bus address a window gets, as pseries would place it (a window of the default
        /// window's geometry, 4 KiB pages and 1 GiB, goes at 0).
        pub next_start: u64,
    }

    impl FakeHw {
        /// A fake with `groups`, whose windows go at `next_start`.
        pub fn new(groups: &[u32], next_start: u64) -> FakeHw {
            FakeHw {
                groups: groups.to_vec(),
                state: Default::default(),
                next_start,
            }
        }

        /// Locks the state.
        pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T: crate::Table> HwWindows<T> for FakeHw {
        fn groups(&self) -> Vec<u32> {
            self.groups.clone()
        }

        fn create_window(&mut self, page_shift: u32, size: u64, levels: u32) -> SysResult<u64> {
            let mut s = self.lock();
            if let Some(e) = s.fail_create {
                return Err(e);
            }
            // Like pseries: a request of the default window's geometry goes at bus address 0.
            let default = page_shift == 12 && size == 1 << 30;
            let start = s
                .start_override
                .unwrap_or(if default { 0 } else { self.next_start });
            if s.windows.contains(&start) {
                return Err(Errno::BUSY);
            }
            s.ops.push(Op::Create(page_shift, size, levels, start));
            s.windows.push(start);
            Ok(start)
        }

        fn remove_window(&mut self, start: u64) -> SysResult<()> {
            let mut s = self.lock();
            s.ops.push(Op::Remove(start));
            let i = s
                .windows
                .iter()
                .position(|&w| w == start)
                .ok_or(Errno::INVAL)?;
            s.windows.remove(i);
            Ok(())
        }

        fn attach(&mut self, table: &T, group: u32) -> SysResult<()> {
            let mut s = self.lock();
            let liobn = table.params().liobn;
            if let Some((g, e)) = s.fail_attach {
                if g == group {
                    return Err(e);
                }
            }
            // Like the module: a group may back several tables (one per hardware window of
            // it), but each table only once.
            if s.attached.contains(&(liobn, group)) {
                return Err(Errno::BUSY);
            }
            s.ops.push(Op::Attach(liobn, group));
            s.attached.push((liobn, group));
            Ok(())
        }

        fn detach(&mut self, table: &T, group: u32) -> SysResult<()> {
            let mut s = self.lock();
            let liobn = table.params().liobn;
            s.ops.push(Op::Detach(liobn, group));
            let i = s
                .attached
                .iter()
                .position(|&a| a == (liobn, group))
                .ok_or(Errno::NOENT)?;
            s.attached.remove(i);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use rustix::io::Errno;
    use tce_ddw_model::{
        RtasCall,
        RtasStatus, //
    };
    use tce_model::host::SimHost;

    use super::fake::{
        FakeHw,
        Op, //
    };
    use super::*;
    use crate::{
        Shim,
        SimTables,
        Table, //
    };

    const BUID: u64 = 0x0800_0000_2000_0000;
    const LIOBN: u32 = 0x8000_0000;
    const DMA64: u64 = 1 << 59;
    const OK: u32 = 0;
    const HW: u32 = RtasStatus::HardwareError.cell();

    type HwShim = Shim<HwTables<SimTables, FakeHw>>;

    /// A shim whose PHB has VFIO groups `groups` (given after its default window is made).
    fn setup(groups: &[u32]) -> (HwShim, SimTables, SimHost, FakeHw) {
        let host = SimHost::new(16);
        let tables = SimTables::new(host.clone());
        let desc = PhbDesc::simulator_default(BUID, LIOBN);
        let mut shim = Shim::with_phbs(HwTables::new(tables.clone()), &[desc]).unwrap();
        let hw = FakeHw::new(groups, DMA64);
        shim.tables_mut().add_phb(&desc, hw.clone()).unwrap();
        // The default window got its hardware window, at bus address 0, with every group.
        let l = u64::from(LIOBN);
        let mut want = vec![Op::Remove(0), Op::Create(12, 1 << 30, 1, 0)];
        want.extend(groups.iter().map(|&g| Op::Attach(l, g)));
        assert_eq!(hw.lock().ops, want);
        hw.lock().ops.clear();
        (shim, tables, host, hw)
    }

    fn create(shim: &mut HwShim, page_shift: u32, window_shift: u32) -> [u32; 4] {
        let mut rets = [0xeeee_eeee; 4];
        let args = [
            0,
            (BUID >> 32) as u32,
            BUID as u32,
            page_shift,
            window_shift,
        ];
        shim.call(RtasCall::Create, &args, &mut rets);
        rets
    }

    fn remove(shim: &mut HwShim, liobn: u32) -> u32 {
        let mut rets = [0xeeee_eeee; 1];
        shim.call(RtasCall::Remove, &[liobn], &mut rets);
        rets[0]
    }

    /// What the VM holds: locked pages, live blocks, LIOBNs, hardware windows, attachments.
    fn usage(
        host: &SimHost,
        tables: &SimTables,
        hw: &FakeHw,
    ) -> (u64, u64, Vec<u64>, usize, usize) {
        let s = hw.lock();
        (
            host.locked_pages(),
            host.live_blocks(),
            tables.liobns(),
            s.windows.len(),
            s.attached.len(),
        )
    }

    #[test]
    fn a_window_of_a_vfio_phb_gets_an_attached_hardware_window() {
        let (mut shim, tables, host, hw) = setup(&[3, 7]);
        let before = usage(&host, &tables, &hw);
        // The default window existed before the PHB had groups, and got its hardware window.
        assert_eq!(
            shim.tables().hw_window(u64::from(LIOBN)),
            Some(HwWindowInfo {
                start: 0,
                groups: vec![3, 7]
            })
        );
        let l = LIOBN + 1;
        assert_eq!(create(&mut shim, 16, 32), [OK, l, (DMA64 >> 32) as u32, 0]);
        let l64 = u64::from(l);
        assert_eq!(
            hw.lock().ops,
            [
                Op::Create(16, 1 << 32, 1, DMA64),
                Op::Attach(l64, 3),
                Op::Attach(l64, 7)
            ]
        );
        assert_eq!(
            shim.tables().hw_window(l64),
            Some(HwWindowInfo {
                start: DMA64,
                groups: vec![3, 7]
            })
        );
        assert!(shim.tables().hw(l64).is_some());
        assert!(shim.tables().hw(0x1234).is_none());
        hw.lock().ops.clear();
        assert_eq!(remove(&mut shim, l), OK);
        assert_eq!(
            hw.lock().ops,
            [Op::Detach(l64, 7), Op::Detach(l64, 3), Op::Remove(DMA64)]
        );
        assert_eq!(usage(&host, &tables, &hw), before);
        assert!(shim.take_backend_error().is_none());
    }

    #[test]
    fn hardware_windows_are_rounded_to_a_power_of_two_with_the_levels_asked_for() {
        let host = SimHost::new(16);
        let sim = SimTables::new(host.clone());
        let hw = FakeHw::new(&[1], 3 << 16);
        let mut tables = HwTables::new(sim.clone());
        tables
            .add_phb(&PhbDesc::simulator_default(BUID, LIOBN), hw.clone())
            .unwrap();
        hw.lock().ops.clear();
        tables.set_levels(2);
        // 5 entries of 64 KiB at entry 3: a hardware window of 8 entries at bus 3 << 16.
        tables
            .create(WindowParams::new(LIOBN.into(), 16, 3, 5))
            .unwrap();
        assert_eq!(hw.lock().ops[0], Op::Create(16, 8 << 16, 2, 3 << 16));
        // A LIOBN of no VFIO PHB gets no hardware window.
        tables.create(WindowParams::new(7, 12, 0, 16)).unwrap();
        assert_eq!(hw.lock().ops.len(), 2);
        assert_eq!(tables.hw_window(7), None);
        // Dropping the tables undoes everything.
        drop(tables);
        let s = hw.lock();
        assert!(s.windows.is_empty() && s.attached.is_empty(), "{:?}", s.ops);
        // The other PHB's table is its backend's to remove.
        assert_eq!(sim.liobns(), [7]);
    }

    #[test]
    fn a_failed_hardware_window_create_leaves_nothing() {
        let (mut shim, tables, host, hw) = setup(&[3, 7]);
        let before = usage(&host, &tables, &hw);
        hw.lock().fail_create = Some(Errno::NOSPC);
        assert_eq!(create(&mut shim, 16, 32)[0], HW);
        assert_eq!(usage(&host, &tables, &hw), before);
        let err = shim.take_backend_error().unwrap();
        assert!(matches!(err, Error::HwWindowCreate { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "cannot create the hardware DMA window for LIOBN 0x80000001 (0x10000 entries of \
             64 KiB at bus address 0x800000000000000; hardware window of 0x100000000 bytes, 1 \
             level(s)): the PHB has no free DMA window (the host allows two per PE)"
        );
        assert!(hw.lock().ops.is_empty());
        // The slot is free again: the next create works.
        hw.lock().fail_create = None;
        assert_eq!(create(&mut shim, 16, 32)[0], OK);
    }

    #[test]
    fn a_hardware_window_at_another_address_is_removed_again() {
        let (mut shim, tables, host, hw) = setup(&[3]);
        let before = usage(&host, &tables, &hw);
        hw.lock().start_override = Some(1 << 40);
        assert_eq!(create(&mut shim, 16, 32)[0], HW);
        assert_eq!(usage(&host, &tables, &hw), before);
        assert_eq!(
            hw.lock().ops,
            [Op::Create(16, 1 << 32, 1, 1 << 40), Op::Remove(1 << 40)]
        );
        let err = shim.take_backend_error().unwrap();
        assert!(
            matches!(
                err,
                Error::HwWindowAddress {
                    want: DMA64,
                    got: 0x100_0000_0000,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("created at bus address 0x10000000000"),
            "{err}"
        );
    }

    #[test]
    fn an_attach_that_fails_on_the_second_group_detaches_the_first() {
        let (mut shim, tables, host, hw) = setup(&[3, 7, 9]);
        let before = usage(&host, &tables, &hw);
        hw.lock().fail_attach = Some((7, Errno::INVAL));
        assert_eq!(create(&mut shim, 16, 32)[0], HW);
        assert_eq!(usage(&host, &tables, &hw), before);
        let l = u64::from(LIOBN + 1);
        assert_eq!(
            hw.lock().ops,
            [
                Op::Create(16, 1 << 32, 1, DMA64),
                Op::Attach(l, 3),
                Op::Detach(l, 3),
                Op::Remove(DMA64)
            ]
        );
        let err = shim.take_backend_error().unwrap();
        assert_eq!(err.errno(), 22);
        let text = err.to_string();
        assert!(
            text.starts_with(
                "cannot attach VFIO group 7 to the TCE table of LIOBN 0x80000001 (0x10000 \
                 entries of 64 KiB at bus address 0x800000000000000): no hardware window of \
                 VFIO group 7 matches window 0x10000 entries of 64 KiB at bus address \
                 0x800000000000000: hardware page larger than the guest's, other bus address, \
                 or smaller"
            ),
            "{text}"
        );
        // Other errnos get their own reading.
        hw.lock().fail_attach = Some((3, Errno::BUSY));
        assert_eq!(create(&mut shim, 16, 32)[0], HW);
        let err = shim.take_backend_error().unwrap();
        assert!(
            err.to_string().ends_with("attached to a TCE table already"),
            "{err}"
        );
        assert_eq!(usage(&host, &tables, &hw), before);
    }

    #[test]
    fn dropping_the_shim_detaches_and_removes_every_hardware_window() {
        let (mut shim, tables, host, hw) = setup(&[3]);
        assert_eq!(create(&mut shim, 16, 30)[0], OK);
        assert_eq!(hw.lock().windows, [0, DMA64]);
        drop(shim);
        let s = hw.lock();
        assert!(s.windows.is_empty() && s.attached.is_empty(), "{:?}", s.ops);
        assert!(tables.liobns().is_empty());
        assert_eq!(host.locked_pages(), 0);
    }

    #[test]
    fn a_reset_removes_the_hardware_window_too() {
        let (mut shim, tables, host, hw) = setup(&[3]);
        let before = usage(&host, &tables, &hw);
        assert_eq!(create(&mut shim, 16, 30)[0], OK);
        let mut rets = [0xeeee_eeee; 1];
        shim.call(
            RtasCall::Reset,
            &[0, (BUID >> 32) as u32, BUID as u32],
            &mut rets,
        );
        assert_eq!(rets[0], OK);
        // The default window is made again, now that the PHB has groups: with a hardware
        // window at bus address 0.
        let s = hw.lock();
        assert_eq!(s.windows, [0], "{:?}", s.ops);
        assert_eq!(s.attached, [(u64::from(LIOBN), 3)]);
        drop(s);
        assert!(shim.take_backend_error().is_none());
        drop(shim);
        let (locked, blocks, liobns, windows, attached) = usage(&host, &tables, &hw);
        assert_eq!((locked, liobns, windows, attached), (0, vec![], 0, 0));
        assert!(blocks <= before.1);
    }

    #[test]
    fn a_default_window_that_cannot_get_its_hardware_window_leaves_the_phb_without_groups() {
        let host = SimHost::new(16);
        let tables = SimTables::new(host.clone());
        let desc = PhbDesc::simulator_default(BUID, LIOBN);
        let mut shim = Shim::with_phbs(HwTables::new(tables.clone()), &[desc]).unwrap();
        let hw = FakeHw::new(&[3, 7], DMA64);
        hw.lock().fail_attach = Some((7, Errno::INVAL));
        let err = shim.tables_mut().add_phb(&desc, hw.clone()).unwrap_err();
        assert!(matches!(err, Error::AttachGroup { group: 7, .. }), "{err}");
        let l = u64::from(LIOBN);
        assert_eq!(
            hw.lock().ops,
            [
                Op::Remove(0),
                Op::Create(12, 1 << 30, 1, 0),
                Op::Attach(l, 3),
                Op::Detach(l, 3),
                Op::Remove(0)
            ]
        );
        let s = hw.lock();
        assert!(s.windows.is_empty() && s.attached.is_empty());
        drop(s);
        // The default window itself stays, without hardware; the PHB has no groups, so it can
        // be given them again.
        assert_eq!(shim.tables().hw_window(l), None);
        assert!(shim.tables().hw(l).is_none());
        assert_eq!(tables.liobns(), [l]);
        hw.lock().fail_attach = None;
        shim.tables_mut().add_phb(&desc, hw.clone()).unwrap();
        assert!(shim.tables().hw_window(l).is_some());
    }

    #[test]
    fn a_phb_gets_its_groups_once() {
        let (mut shim, ..) = setup(&[3]);
        let desc = PhbDesc::simulator_default(BUID, LIOBN + 1);
        let err = shim
            .tables_mut()
            .add_phb(&desc, FakeHw::new(&[4], DMA64))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the LIOBNs 0x80000001 to 0x80000002 already belong to a PHB with VFIO groups"
        );
        let t = shim.tables().table(u64::from(LIOBN)).unwrap();
        assert_eq!(t.params().page_shift, 12);
    }
}
