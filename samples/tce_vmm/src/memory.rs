// SPDX-License-Identifier: GPL-2.0
//! Guest RAM: one anonymous mapping, KVM memory slot 0 at guest physical address 0.

use tce_engine::env::{
    GuestFault,
    GuestMemory, //
};

use crate::error::{
    Error,
    Result, //
};
use tce_sys::Mmap;

/// A guest physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestAddress(pub u64);

impl GuestAddress {
    /// The address `bytes` further on.
    pub const fn add(self, bytes: u64) -> GuestAddress {
        GuestAddress(self.0 + bytes)
    }
}

/// The guest's RAM as the VMM maps it.
///
/// The guest's vCPUs read and write it while the VMM does; every access is a volatile copy,
/// and the VMM only relies on what it wrote while no vCPU was running the job that uses it.
pub struct GuestRam {
    map: Mmap,
}

/// An access went past the end of guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutsideRam;

impl GuestRam {
    /// Maps `bytes` of zeroed guest RAM.
    pub fn new(bytes: usize) -> Result<GuestRam> {
        let map = Mmap::anonymous(bytes).map_err(|e| Error::Map {
            what: "guest RAM".into(),
            len: bytes,
            source: e.into(),
        })?;
        Ok(GuestRam { map })
    }

    /// The size of guest RAM in bytes.
    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    /// Drops the host pages behind `len` bytes at `at`: they read as zeros again.
    pub fn discard(&self, at: GuestAddress, len: u64) -> Result<(), OutsideRam> {
        self.map.discard(at.0, len).map_err(|_| OutsideRam)
    }

    /// The VMM's address of guest physical address 0, for the memory slot.
    pub fn host_addr(&self) -> u64 {
        self.map.addr()
    }

    /// Copies `data` into guest RAM at `at`.
    pub fn write(&self, at: GuestAddress, data: &[u8]) -> Result<(), OutsideRam> {
        self.map.write(at.0, data).then_some(()).ok_or(OutsideRam)
    }

    /// Copies guest RAM at `at` into `out`.
    pub fn read(&self, at: GuestAddress, out: &mut [u8]) -> Result<(), OutsideRam> {
        self.map.read(at.0, out).then_some(()).ok_or(OutsideRam)
    }

    /// Stores little-endian u64 values at `at`, as the guest (which runs little-endian) reads them.
    pub fn write_le64(&self, at: GuestAddress, values: &[u64]) -> Result<(), OutsideRam> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write(at, &bytes)
    }

    /// Loads little-endian u64 values from `at`.
    pub fn read_le64(&self, at: GuestAddress, out: &mut [u64]) -> Result<(), OutsideRam> {
        let mut bytes = vec![0u8; out.len() * 8];
        self.read(at, &mut bytes)?;
        for (v, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            *v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
        Ok(())
    }

    /// Stores big-endian u64 values at `at`: the layout of an `H_PUT_TCE_INDIRECT` list.
    pub fn write_be64(&self, at: GuestAddress, values: &[u64]) -> Result<(), OutsideRam> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        self.write(at, &bytes)
    }
}

impl GuestMemory for GuestRam {
    fn gpa_to_ua(&self, gpa: u64) -> Option<u64> {
        (gpa < self.size()).then(|| self.host_addr() + gpa)
    }

    fn read_be64(&self, gpa: u64, out: &mut [u64]) -> Result<(), GuestFault> {
        let len = out.len().checked_mul(8).ok_or(GuestFault)?;
        let mut bytes = vec![0u8; len];
        self.read(GuestAddress(gpa), &mut bytes)
            .map_err(|OutsideRam| GuestFault)?;
        for (v, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            *v = u64::from_be_bytes(b.try_into().expect("8 bytes"));
        }
        Ok(())
    }
}
