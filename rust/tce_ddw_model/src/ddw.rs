// SPDX-License-Identifier: GPL-2.0
//! The container of PHBs and the four DDW RTAS calls on host-order cells.

use crate::cells::{self, CellError};
use crate::phb::{DescError, Phb, PhbDesc, WindowInfo, MAX_BLOCK_TCES};
use crate::rtas::{RtasCall, RtasStatus, MAX_CALL_CELLS};
use crate::{BackendError, WindowBackend};

/// Why [`Ddw::add_phb`] refused a PHB; in every case nothing was added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddPhbError {
    /// The description cannot be modelled.
    InvalidDesc(DescError),
    /// A PHB with this BUID already exists.
    DuplicateBuid,
    /// One of the PHB's LIOBNs belongs to another PHB.
    LiobnCollision,
    /// The container already holds its maximum number of PHBs.
    Full,
    /// The backend failed to create the default window.
    Backend(BackendError),
}

/// The DDW state of up to `N` PHBs, without allocation.
///
/// Every RTAS handler takes the argument cells (`args`, whose length is
/// `nargs`) and the return cells (`rets`, whose length is `nret`) in host
/// order, and returns the status it also wrote to `rets[0]`. Argument and
/// return counts are checked first: a wrong count is a parameter error,
/// written to `rets[0]` when `nret >= 1`; with `nret == 0` nothing is written
/// (QEMU would write `rets[0]` regardless, past the end of the guest's
/// buffer). On any error only `rets[0]` is written.
///
/// A BUID is `args[1] << 32 | args[2]`; an unknown BUID, like a PHB whose DDW
/// support is disabled, is a parameter error, as in QEMU.
///
/// The methods take `&mut self`: the caller serialises them under its own
/// lock, which is what makes a remove racing a create on the same PHB
/// impossible. The backend is called only from inside these methods.
#[derive(Clone, Debug)]
pub struct Ddw<const N: usize> {
    phbs: [Option<Phb>; N],
}

impl<const N: usize> Default for Ddw<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a BUID from its two argument cells.
fn buid_of(args: &[u32]) -> u64 {
    (u64::from(args[1]) << 32) | u64::from(args[2])
}

/// Writes `status` to `rets[0]` if there is one and returns it.
fn finish(rets: &mut [u32], result: Result<(), RtasStatus>) -> RtasStatus {
    let status = match result {
        Ok(()) => RtasStatus::Success,
        Err(status) => status,
    };
    if let Some(first) = rets.first_mut() {
        *first = status.cell();
    }
    status
}

/// Fails with a parameter error unless the counts are the call's.
fn check_counts(call: RtasCall, args: &[u32], rets: &[u32]) -> Result<(), RtasStatus> {
    if call.counts_ok(args.len(), rets.len()) {
        Ok(())
    } else {
        Err(RtasStatus::ParameterError)
    }
}

impl<const N: usize> Ddw<N> {
    /// Returns a container with no PHB.
    pub const fn new() -> Self {
        const NONE: Option<Phb> = None;
        Ddw { phbs: [NONE; N] }
    }

    /// Adds a PHB and creates its default window in slot 0 through `backend`.
    ///
    /// Fails, adding nothing, if the description is invalid, the BUID exists,
    /// a LIOBN is another PHB's, the container is full, or the backend fails.
    pub fn add_phb<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        desc: PhbDesc,
    ) -> Result<(), AddPhbError> {
        desc.validate().map_err(AddPhbError::InvalidDesc)?;
        for phb in self.phbs.iter().flatten() {
            if phb.desc.buid == desc.buid {
                return Err(AddPhbError::DuplicateBuid);
            }
            if phb.desc.liobns_overlap(&desc) {
                return Err(AddPhbError::LiobnCollision);
            }
        }
        let free = self
            .phbs
            .iter_mut()
            .find(|p| p.is_none())
            .ok_or(AddPhbError::Full)?;
        let mut phb = Phb::new(desc);
        phb.restore_default(backend).map_err(AddPhbError::Backend)?;
        *free = Some(phb);
        Ok(())
    }

    /// Removes the PHB with this BUID and all its tables; tells whether it existed.
    pub fn remove_phb<B: WindowBackend + ?Sized>(&mut self, backend: &mut B, buid: u64) -> bool {
        let Some(entry) = self
            .phbs
            .iter_mut()
            .find(|p| matches!(p, Some(phb) if phb.desc.buid == buid))
        else {
            return false;
        };
        if let Some(mut phb) = entry.take() {
            phb.remove_all(backend);
        }
        true
    }

    /// Lists the descriptions of the PHBs, in the order they were stored.
    pub fn phbs(&self) -> impl Iterator<Item = &PhbDesc> + '_ {
        self.phbs.iter().flatten().map(|phb| &phb.desc)
    }

    /// Lists every active window of every PHB.
    pub fn windows(&self) -> impl Iterator<Item = WindowInfo> + '_ {
        self.phbs.iter().flatten().flat_map(Phb::windows)
    }

    /// Finds the PHB named by the BUID cells, failing as RTAS does.
    fn phb_ref(&self, args: &[u32]) -> Result<&Phb, RtasStatus> {
        let buid = buid_of(args);
        self.phbs
            .iter()
            .flatten()
            .find(|phb| phb.desc.buid == buid && phb.desc.ddw_enabled)
            .ok_or(RtasStatus::ParameterError)
    }

    /// Finds the PHB named by the BUID cells for a change, failing as RTAS does.
    fn phb_mut(&mut self, args: &[u32]) -> Result<&mut Phb, RtasStatus> {
        let buid = buid_of(args);
        self.phbs
            .iter_mut()
            .flatten()
            .find(|phb| phb.desc.buid == buid && phb.desc.ddw_enabled)
            .ok_or(RtasStatus::ParameterError)
    }

    /// Answers `ibm,query-pe-dma-window` (3 args: config address, BUID hi,
    /// BUID lo; 5 or 6 rets).
    ///
    /// With 5 rets: status, windows available, largest block in TCEs,
    /// page-size mask, migration capabilities (0). With 6 rets (the PAPR 2.8
    /// extension) the largest block takes two cells, hi then lo. The largest
    /// block is always [`MAX_BLOCK_TCES`] (2^31), the most create accepts;
    /// QEMU advertises 2^37 in the 6-cell form, which we deliberately do not.
    pub fn query(&self, args: &[u32], rets: &mut [u32]) -> RtasStatus {
        let result = check_counts(RtasCall::Query, args, rets).and_then(|()| {
            let phb = self.phb_ref(args)?;
            let avail = phb.available() as u32;
            let mask = phb.desc.page_shifts.rtas_mask();
            if rets.len() == 6 {
                rets[1] = avail;
                rets[2] = (MAX_BLOCK_TCES >> 32) as u32;
                rets[3] = MAX_BLOCK_TCES as u32;
                rets[4] = mask;
                rets[5] = 0;
            } else {
                rets[1] = avail;
                rets[2] = MAX_BLOCK_TCES as u32;
                rets[3] = mask;
                rets[4] = 0;
            }
            Ok(())
        });
        finish(rets, result)
    }

    /// Answers `ibm,create-pe-dma-window` (5 args: config address, BUID hi,
    /// BUID lo, page shift, window shift; 4 rets: status, LIOBN, bus address
    /// hi, bus address lo).
    ///
    /// Parameter errors: unsupported page size, window shift below page
    /// shift, window shift of 64 or more, more than 2^31 entries, or a window
    /// that would end past 2^64. Hardware errors: no free slot, the window
    /// would overlap an active one, or the backend failed. On error the PHB
    /// is unchanged and no table is left behind. The window goes in the
    /// first free slot, at the default window's address when no window is
    /// active and at the 64-bit base otherwise; it is created empty, with a
    /// single backend call whatever its size.
    pub fn create<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        args: &[u32],
        rets: &mut [u32],
    ) -> RtasStatus {
        let result = check_counts(RtasCall::Create, args, rets).and_then(|()| {
            let phb = self.phb_mut(args)?;
            let (liobn, bus) = phb.create(backend, args[3], args[4])?;
            rets[1] = liobn;
            rets[2] = (bus >> 32) as u32;
            rets[3] = bus as u32;
            Ok(())
        });
        finish(rets, result)
    }

    /// Answers `ibm,remove-pe-dma-window` (1 arg: LIOBN; 1 ret: status).
    ///
    /// A LIOBN that no PHB owns, that belongs to a PHB with DDW disabled, or
    /// whose window is not active is a parameter error. If the removal leaves
    /// the PHB with no window and the removed window was not the default
    /// one, the default window is re-created (PAPR's rule, which QEMU also
    /// follows); removing the default window itself restores nothing, so the
    /// guest can then create a big window at the default window's address.
    pub fn remove<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        args: &[u32],
        rets: &mut [u32],
    ) -> RtasStatus {
        let result = check_counts(RtasCall::Remove, args, rets).and_then(|()| {
            let liobn = args[0];
            let (phb, slot) = self
                .phbs
                .iter_mut()
                .flatten()
                .find_map(|phb| phb.desc.slot_of(liobn).map(|slot| (phb, slot)))
                .ok_or(RtasStatus::ParameterError)?;
            if !phb.desc.ddw_enabled {
                return Err(RtasStatus::ParameterError);
            }
            phb.remove(backend, slot)
        });
        finish(rets, result)
    }

    /// Answers `ibm,reset-pe-dma-window` (3 args: config address, BUID hi,
    /// BUID lo; 1 ret: status).
    ///
    /// Removes every window of the PHB and re-creates the default window in
    /// slot 0, even if the default window was the only one active (its table
    /// is then replaced by an empty one).
    pub fn reset<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        args: &[u32],
        rets: &mut [u32],
    ) -> RtasStatus {
        let result = check_counts(RtasCall::Reset, args, rets)
            .and_then(|()| self.phb_mut(args)?.reset(backend));
        finish(rets, result)
    }

    /// Answers `call` on host-order cells; see the individual methods.
    pub fn call<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        call: RtasCall,
        args: &[u32],
        rets: &mut [u32],
    ) -> RtasStatus {
        match call {
            RtasCall::Query => self.query(args, rets),
            RtasCall::Create => self.create(backend, args, rets),
            RtasCall::Remove => self.remove(backend, args, rets),
            RtasCall::Reset => self.reset(backend, args, rets),
        }
    }

    /// Answers `call` on big-endian cell buffers as they sit in guest memory:
    /// `args` holds `nargs` cells and `rets` holds `nret` cells.
    ///
    /// Return cells the call does not write keep their bytes. A buffer that
    /// is not a whole number of cells is refused with no cell written. More
    /// cells than any DDW call takes is a wrong count, hence a parameter
    /// error in the first return cell.
    pub fn call_be<B: WindowBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        call: RtasCall,
        args: &[u8],
        rets: &mut [u8],
    ) -> Result<RtasStatus, CellError> {
        let nargs = cells::cell_count(args)?;
        let nret = cells::cell_count(rets)?;
        if nargs > MAX_CALL_CELLS || nret > MAX_CALL_CELLS {
            let status = RtasStatus::ParameterError;
            if nret >= 1 {
                cells::write_cell(rets, 0, status.cell())?;
            }
            return Ok(status);
        }
        let mut arg_cells = [0u32; MAX_CALL_CELLS];
        let mut ret_cells = [0u32; MAX_CALL_CELLS];
        cells::decode_cells(args, &mut arg_cells)?;
        // Decoding the return cells first keeps the ones left unwritten intact.
        cells::decode_cells(rets, &mut ret_cells)?;
        let status = self.call(backend, call, &arg_cells[..nargs], &mut ret_cells[..nret]);
        cells::encode_cells(&ret_cells[..nret], rets)?;
        Ok(status)
    }
}
