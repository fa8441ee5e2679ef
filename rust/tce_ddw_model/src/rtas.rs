// SPDX-License-Identifier: GPL-2.0
//! RTAS status codes, the four DDW calls and the argument counts each accepts.

/// The status an RTAS call returns in its first return cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum RtasStatus {
    /// The call succeeded.
    Success = 0,
    /// The platform could not do it (for example, no free window or the
    /// backend failed to create a table).
    HardwareError = -1,
    /// The arguments are wrong (counts, unknown BUID or LIOBN, bad sizes).
    ParameterError = -3,
}

impl RtasStatus {
    /// Returns the status as the signed value RTAS defines.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// Returns the status as the raw 32-bit cell written to `rets[0]`.
    pub const fn cell(self) -> u32 {
        self.code() as u32
    }
}

/// One of the four DDW RTAS calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtasCall {
    /// `ibm,query-pe-dma-window`.
    Query,
    /// `ibm,create-pe-dma-window`.
    Create,
    /// `ibm,remove-pe-dma-window`.
    Remove,
    /// `ibm,reset-pe-dma-window`, advertised through `ibm,ddw-extensions`.
    Reset,
}

impl RtasCall {
    /// All four calls, in the order above.
    pub const ALL: [RtasCall; 4] = [
        RtasCall::Query,
        RtasCall::Create,
        RtasCall::Remove,
        RtasCall::Reset,
    ];

    /// Returns the call's name as it appears in the device tree.
    pub const fn name(self) -> &'static str {
        match self {
            RtasCall::Query => "ibm,query-pe-dma-window",
            RtasCall::Create => "ibm,create-pe-dma-window",
            RtasCall::Remove => "ibm,remove-pe-dma-window",
            RtasCall::Reset => "ibm,reset-pe-dma-window",
        }
    }

    /// Returns the call with this device-tree name, if any.
    pub fn from_name(name: &str) -> Option<RtasCall> {
        RtasCall::ALL.into_iter().find(|call| call.name() == name)
    }

    /// Returns the number of argument cells the call takes.
    pub const fn nargs(self) -> usize {
        match self {
            RtasCall::Query | RtasCall::Reset => 3,
            RtasCall::Create => 5,
            RtasCall::Remove => 1,
        }
    }

    /// Tells whether the call accepts `nret` return cells.
    ///
    /// QEMU accepts exactly these counts and nothing else: query takes 5, or
    /// 6 with the PAPR 2.8 64-bit extension; create takes 4; remove and
    /// reset take 1.
    pub const fn accepts_nret(self, nret: usize) -> bool {
        match self {
            RtasCall::Query => nret == 5 || nret == 6,
            RtasCall::Create => nret == 4,
            RtasCall::Remove | RtasCall::Reset => nret == 1,
        }
    }

    /// Tells whether `nargs` and `nret` are the counts this call takes.
    pub const fn counts_ok(self, nargs: usize, nret: usize) -> bool {
        nargs == self.nargs() && self.accepts_nret(nret)
    }
}

/// The largest number of cells any DDW call takes as arguments or returns.
pub const MAX_CALL_CELLS: usize = 6;

/// Extension 2 of `ibm,ddw-extensions`: query may return 6 cells, with the
/// largest block as a 64-bit value.
pub const DDW_EXT_QUERY_OUT_SIZES: u32 = 1;

/// Returns the cells of the `ibm,ddw-extensions` property for a PHB.
///
/// The first cell counts the extensions that follow: the token the VMM gave
/// `ibm,reset-pe-dma-window`, then [`DDW_EXT_QUERY_OUT_SIZES`] to say that
/// query accepts 6 return cells. The VMM stores these cells big-endian.
pub const fn ddw_extensions(reset_token: u32) -> [u32; 3] {
    [2, reset_token, DDW_EXT_QUERY_OUT_SIZES]
}
