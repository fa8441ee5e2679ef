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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_stay_inside_ram() {
        let ram = GuestRam::new(1 << 16).unwrap();
        ram.write_be64(GuestAddress(0x1000), &[0x0102_0304_0506_0708, 3])
            .unwrap();
        let mut list = [0u64; 2];
        ram.read_be64(0x1000, &mut list).unwrap();
        assert_eq!(list, [0x0102_0304_0506_0708, 3]);
        let mut le = [0u64; 1];
        ram.read_le64(GuestAddress(0x1000), &mut le).unwrap();
        assert_eq!(le[0], 0x0807_0605_0403_0201);
        assert_eq!(ram.gpa_to_ua(0xffff), Some(ram.host_addr() + 0xffff));
        assert_eq!(ram.gpa_to_ua(0x10000), None);
        assert_eq!(ram.read_be64(0xfff8, &mut list), Err(GuestFault));
        assert_eq!(ram.write(GuestAddress(u64::MAX), &[1]), Err(OutsideRam));
    }
}
