// SPDX-License-Identifier: GPL-2.0
//! The tests' error type: the VMM's own, or what only a test runs into. Mismatches found by a
//! test are results, not errors.

use std::io;

pub use tce_vmm::error::{
    chain,
    ioctl, //
};

/// Everything that stops a test.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The VMM failed.
    #[error(transparent)]
    Vmm(#[from] tce_vmm::error::Error),

    /// A job uses more TCE lists than there are list pages.
    #[error("a job uses {lists} TCE lists; guest RAM has room for {max}")]
    TooManyLists {
        /// The lists asked for.
        lists: usize,
        /// The most that fit.
        max: usize,
    },

    /// The timebase frequency is unknown.
    #[error("cannot find the timebase frequency (a \"timebase\" line) in /proc/cpuinfo")]
    Timebase,

    /// A file the VMM needs cannot be opened.
    #[error("cannot open {path}")]
    OpenFile {
        /// The file.
        path: &'static str,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// The host physical address of a page of guest RAM cannot be found.
    #[error(
        "cannot find the host physical address of user address {addr:#x} in /proc/self/pagemap"
    )]
    Pagemap {
        /// The user address.
        addr: u64,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// Guest RAM is not aligned as preregistration and 64 KiB IOMMU pages need.
    #[error(
        "guest RAM is mapped at {addr:#x}, which is not 64 KiB-aligned; the vfio mode needs a \
         host with 64 KiB pages (CONFIG_PPC_64K_PAGES)"
    )]
    RamNotAligned {
        /// The address of guest RAM in the VMM.
        addr: u64,
    },

    /// The VFIO group the VMM put in its container is not there.
    #[error("VFIO group {group} is not in the VMM's container")]
    GroupGone {
        /// The group number.
        group: u32,
    },

    /// A vCPU thread died.
    #[error("vCPU thread {vcpu} panicked")]
    VcpuPanic {
        /// The vCPU.
        vcpu: u32,
    },

    /// A step of a hostile VMM's sequence that must work failed.
    #[error("{what} failed")]
    Hostile {
        /// The step.
        what: String,
        /// The errno.
        #[source]
        errno: rustix::io::Errno,
    },
}

impl From<tce_shim::Error> for Error {
    fn from(source: tce_shim::Error) -> Self {
        Error::Vmm(source.into())
    }
}

/// The tests' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
