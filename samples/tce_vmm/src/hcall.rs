// SPDX-License-Identifier: GPL-2.0
//! The TCE hypercalls as the VMM sees them, and the VMM's rules for answering them.
//!
//! # The rules
//!
//! The kernel answers a TCE hypercall itself when it can and otherwise exits to the VMM with
//! the call (the kernel's internal `H_TOO_HARD`). The VMM answers every exit with the project's
//! engine, and two rules decide what the guest gets, here and in the reference checks alike:
//!
//! 1. **The engine's `H_TOO_HARD` becomes `H_PARAMETER`.** In user space the engine says
//!    `H_TOO_HARD` only when the call names memory that is not guest RAM (a TCE or a TCE list
//!    outside every memory slot, a TCE not aligned to the IOMMU page) or when the host is out
//!    of memory: there is nothing further to fall back to, so the guest is told its argument
//!    is bad, and the VMM logs a line. An unknown LIOBN gets `H_PARAMETER` the same way.
//! 2. **A non-zero `H_STUFF_TCE` over more than [`STUFF_NONZERO_MAX`] entries is done by the
//!    VMM in chunks** of at most that many entries: the whole range is checked first, then
//!    each chunk goes through the engine. `tce_accel` refuses such a call with `H_TOO_HARD`
//!    rather than write millions of entries in one non-preemptible hypercall.
//! 3. **A call that changes a window with a VFIO hardware table and exits gets `H_HARDWARE`.**
//!    The kernel exits when it cannot map the entry in the hardware (guest memory that is not
//!    preregistered, for instance); writing it into the guest view alone would leave the
//!    device without it, so the VMM fails the call and changes nothing (`tce-vmm-test vfio`).

use tce_engine::tce::{
    HcallError,
    HcallResult,
    H_GET_TCE,
    H_PUT_TCE,
    H_PUT_TCE_INDIRECT,
    H_STUFF_TCE,
    H_SUCCESS, //
};

/// `H_PARAMETER`.
pub const H_PARAMETER: i64 = HcallError::Parameter.code();
/// `H_HARDWARE`.
pub const H_HARDWARE: i64 = HcallError::Hardware.code();
/// `H_FUNCTION`: the hypercall is not implemented.
pub const H_FUNCTION: i64 = -2;
/// `H_RTAS` (`KVMPPC_H_RTAS`): an RTAS call; r4 holds the guest address of its buffer.
pub const H_RTAS: u64 = 0xF000;

pub use tce_engine::tce::STUFF_NONZERO_MAX;

/// One TCE hypercall and its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hcall {
    /// `H_GET_TCE(liobn, ioba)`.
    Get {
        /// The window.
        liobn: u64,
        /// The bus address.
        ioba: u64,
    },
    /// `H_PUT_TCE(liobn, ioba, tce)`.
    Put {
        /// The window.
        liobn: u64,
        /// The bus address.
        ioba: u64,
        /// The entry.
        tce: u64,
    },
    /// `H_STUFF_TCE(liobn, ioba, value, npages)`.
    Stuff {
        /// The window.
        liobn: u64,
        /// The first bus address.
        ioba: u64,
        /// The value, without permission bits.
        value: u64,
        /// The number of entries.
        npages: u64,
    },
    /// `H_PUT_TCE_INDIRECT(liobn, ioba, list, npages)`.
    Indirect {
        /// The window.
        liobn: u64,
        /// The first bus address.
        ioba: u64,
        /// The guest address of the big-endian list.
        list: u64,
        /// The number of entries.
        npages: u64,
    },
}

impl Hcall {
    /// Decodes hypercall `nr` with arguments r4, r5, ...; `None` if it is not a TCE hypercall.
    pub fn decode(nr: u64, a: &[u64]) -> Option<Hcall> {
        let arg = |i: usize| a.get(i).copied().unwrap_or(0);
        Some(match nr {
            H_GET_TCE => Hcall::Get {
                liobn: arg(0),
                ioba: arg(1),
            },
            H_PUT_TCE => Hcall::Put {
                liobn: arg(0),
                ioba: arg(1),
                tce: arg(2),
            },
            H_STUFF_TCE => Hcall::Stuff {
                liobn: arg(0),
                ioba: arg(1),
                value: arg(2),
                npages: arg(3),
            },
            H_PUT_TCE_INDIRECT => Hcall::Indirect {
                liobn: arg(0),
                ioba: arg(1),
                list: arg(2),
                npages: arg(3),
            },
            _ => return None,
        })
    }

    /// The hypercall number and r4 to r7.
    pub fn encode(&self) -> (u64, [u64; 4]) {
        match *self {
            Hcall::Get { liobn, ioba } => (H_GET_TCE, [liobn, ioba, 0, 0]),
            Hcall::Put { liobn, ioba, tce } => (H_PUT_TCE, [liobn, ioba, tce, 0]),
            Hcall::Stuff {
                liobn,
                ioba,
                value,
                npages,
            } => (H_STUFF_TCE, [liobn, ioba, value, npages]),
            Hcall::Indirect {
                liobn,
                ioba,
                list,
                npages,
            } => (H_PUT_TCE_INDIRECT, [liobn, ioba, list, npages]),
        }
    }

    /// The window the call names.
    pub fn liobn(&self) -> u64 {
        match *self {
            Hcall::Get { liobn, .. }
            | Hcall::Put { liobn, .. }
            | Hcall::Stuff { liobn, .. }
            | Hcall::Indirect { liobn, .. } => liobn,
        }
    }
}

impl std::fmt::Display for Hcall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Hcall::Get { liobn, ioba } => write!(f, "H_GET_TCE(liobn {liobn:#x}, ioba {ioba:#x})"),
            Hcall::Put { liobn, ioba, tce } => {
                write!(f, "H_PUT_TCE(liobn {liobn:#x}, ioba {ioba:#x}, tce {tce:#x})")
            }
            Hcall::Stuff {
                liobn,
                ioba,
                value,
                npages,
            } => write!(
                f,
                "H_STUFF_TCE(liobn {liobn:#x}, ioba {ioba:#x}, value {value:#x}, npages {npages:#x})"
            ),
            Hcall::Indirect {
                liobn,
                ioba,
                list,
                npages,
            } => write!(
                f,
                "H_PUT_TCE_INDIRECT(liobn {liobn:#x}, ioba {ioba:#x}, list {list:#x}, npages {npages:#x})"
            ),
        }
    }
}

/// The name of a return code, for messages.
pub fn code_name(code: i64) -> String {
    match code {
        H_SUCCESS => "H_SUCCESS".into(),
        -1 => "H_HARDWARE".into(),
        H_FUNCTION => "H_FUNCTION".into(),
        H_PARAMETER => "H_PARAMETER".into(),
        9999 => "H_TOO_HARD".into(),
        c => format!("{c}"),
    }
}

/// What the guest gets: r3 and, for a successful `H_GET_TCE`, r4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The return code.
    pub r3: i64,
    /// The entry read by `H_GET_TCE`.
    pub r4: Option<u64>,
}

impl Reply {
    /// `H_SUCCESS`, with an entry for `H_GET_TCE`.
    pub const fn success(r4: Option<u64>) -> Reply {
        Reply { r3: H_SUCCESS, r4 }
    }

    /// An error code.
    pub const fn code(r3: i64) -> Reply {
        Reply { r3, r4: None }
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.r4 {
            Some(r4) => write!(f, "{} with r4 {r4:#x}", code_name(self.r3)),
            None => f.write_str(&code_name(self.r3)),
        }
    }
}

/// How an engine result reached the guest: rules 1 and 3 of the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The engine's own answer.
    Engine(Reply),
    /// The engine said `H_TOO_HARD`; the guest gets `H_PARAMETER`.
    TooHard,
    /// The LIOBN is not one of the VMM's windows; the guest gets `H_PARAMETER`.
    UnknownLiobn,
    /// The window has a hardware table the VMM cannot update; the guest gets `H_HARDWARE`.
    Hardware,
}

impl Answer {
    /// The answer for an engine result, `r4` being the entry of a successful `H_GET_TCE`.
    pub fn from_result(r: HcallResult<Option<u64>>) -> Answer {
        match r {
            Ok(r4) => Answer::Engine(Reply::success(r4)),
            Err(HcallError::TooHard) => Answer::TooHard,
            Err(e) => Answer::Engine(Reply::code(e.code())),
        }
    }

    /// What the guest gets.
    pub fn reply(&self) -> Reply {
        match *self {
            Answer::Engine(r) => r,
            Answer::TooHard | Answer::UnknownLiobn => Reply::code(H_PARAMETER),
            Answer::Hardware => Reply::code(H_HARDWARE),
        }
    }
}

/// Rule 2: `H_STUFF_TCE` of non-zero `value` over `npages` entries from `ioba`, in chunks of at
/// most [`STUFF_NONZERO_MAX`] entries. `check_range(ioba, npages)` is the window's range check;
/// `stuff(ioba, n)` does one chunk. Chunks done before an error stay done.
pub fn stuff_in_chunks(
    page_shift: u32,
    ioba: u64,
    npages: u64,
    check_range: impl Fn(u64, u64) -> bool,
    mut stuff: impl FnMut(u64, u64) -> HcallResult,
) -> HcallResult {
    if !check_range(ioba, npages) {
        return Err(HcallError::Parameter);
    }
    let mut done = 0u64;
    while done < npages {
        let n = (npages - done).min(STUFF_NONZERO_MAX);
        // The whole range is inside the window, whose bus addresses fit 64 bits.
        stuff(ioba + (done << page_shift), n)?;
        done += n;
    }
    Ok(())
}

/// Whether a `H_STUFF_TCE` falls under rule 2.
pub fn is_big_stuff(value: u64, npages: u64) -> bool {
    value != 0 && npages > STUFF_NONZERO_MAX
}
