// SPDX-License-Identifier: GPL-2.0

//! TCE values, their permission bits, and the PAPR hypercall numbers and return codes.

/// The device may read the page (DMA to the device).
pub const TCE_READ: u64 = 0x1;
/// The device may write the page (DMA from the device).
pub const TCE_WRITE: u64 = 0x2;
/// Both permission bits.
pub const TCE_RW: u64 = TCE_READ | TCE_WRITE;

/// `H_GET_TCE`.
pub const H_GET_TCE: u64 = 0x1C;
/// `H_PUT_TCE`.
pub const H_PUT_TCE: u64 = 0x20;
/// `H_STUFF_TCE`.
pub const H_STUFF_TCE: u64 = 0x138;
/// `H_PUT_TCE_INDIRECT`.
pub const H_PUT_TCE_INDIRECT: u64 = 0x13C;

/// `H_SUCCESS`, the one return code that is not an error.
pub const H_SUCCESS: i64 = 0;

/// The most entries one `H_PUT_TCE_INDIRECT` may carry: the list is one 4 KiB page.
pub const INDIRECT_MAX: usize = 512;

/// Alignment of an `H_PUT_TCE_INDIRECT` list in guest memory.
pub const INDIRECT_LIST_ALIGN: u64 = 4096;

/// The most entries one `H_STUFF_TCE` with a non-zero (poison) value fills in the fast path.
///
/// Such a call allocates and writes every page of its range; over a 2^31-entry window that is
/// 16 GiB in one hypercall, which a guest could otherwise make the host do without a break.
/// Longer ones get `H_TOO_HARD` and are done by the VMM through its mapping of the table,
/// where they can be preempted. 2^16 entries are 512 KiB of table.
pub const STUFF_NONZERO_MAX: u64 = 1 << 16;

/// A TCE hypercall that failed, with the PAPR return code the guest (or the VMM) sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum HcallError {
    /// `H_HARDWARE`: the hardware table reported an error.
    Hardware = -1,
    /// `H_PARAMETER`: the guest passed a bad argument.
    Parameter = -4,
    /// `H_TOO_HARD`: not an answer for the guest. The hypercall must exit to the VMM, which
    /// handles it on its own (`KVM_EXIT_PAPR_HCALL`).
    TooHard = 9999,
}

impl HcallError {
    /// The return code as it goes into r3.
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// The PAPR name of the code.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hardware => "H_HARDWARE",
            Self::Parameter => "H_PARAMETER",
            Self::TooHard => "H_TOO_HARD",
        }
    }
}

/// The result of a TCE hypercall.
pub type HcallResult<T = ()> = Result<T, HcallError>;

/// The r3 value for a hypercall result.
pub fn return_code<T>(r: &HcallResult<T>) -> i64 {
    match r {
        Ok(_) => H_SUCCESS,
        Err(e) => e.code(),
    }
}

/// The DMA direction a TCE grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// No access: the entry is clear or poisoned.
    None,
    /// The device reads the page.
    ToDevice,
    /// The device writes the page.
    FromDevice,
    /// Both.
    Bidirectional,
}

impl Direction {
    /// The direction of a TCE value.
    pub const fn of(tce: u64) -> Self {
        match tce & TCE_RW {
            0 => Self::None,
            TCE_READ => Self::ToDevice,
            TCE_WRITE => Self::FromDevice,
            _ => Self::Bidirectional,
        }
    }

    /// The permission bits a hardware entry gets for this direction: WRITE implies READ.
    pub const fn hw_perm(self) -> u64 {
        match self {
            Self::None => 0,
            Self::ToDevice => TCE_READ,
            Self::FromDevice | Self::Bidirectional => TCE_RW,
        }
    }
}

/// The guest physical address a TCE points at (the value without its permission bits).
pub const fn tce_gpa(tce: u64) -> u64 {
    tce & !TCE_RW
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_from_bits() {
        assert_eq!(Direction::of(0x1000), Direction::None);
        assert_eq!(Direction::of(0x1001), Direction::ToDevice);
        assert_eq!(Direction::of(0x1002), Direction::FromDevice);
        assert_eq!(Direction::of(0x1003), Direction::Bidirectional);
    }

    #[test]
    fn write_implies_read_in_hardware() {
        assert_eq!(Direction::FromDevice.hw_perm(), TCE_RW);
        assert_eq!(Direction::ToDevice.hw_perm(), TCE_READ);
        assert_eq!(Direction::None.hw_perm(), 0);
    }

    #[test]
    fn codes_match_papr() {
        assert_eq!(HcallError::Hardware.code(), -1);
        assert_eq!(HcallError::Parameter.code(), -4);
        assert_eq!(HcallError::TooHard.code(), 9999);
        assert_eq!(return_code::<()>(&Ok(())), 0);
    }
}
