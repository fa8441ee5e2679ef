// SPDX-License-Identifier: GPL-2.0
//! The VMM's single error type: what could not be done, with the system's reason as its source.

use std::io;

/// Everything that stops the VMM.
///
/// A message says what failed (for a system call, which one) and never repeats its source:
/// print the chain, as `main` does, to see the errno as well.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/dev/kvm` cannot be opened.
    #[error(
        "cannot open /dev/kvm; run on a KVM host (the emulated POWER host of \
         scripts/qemu-test.sh ppc64le) as root"
    )]
    OpenKvm {
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// A KVM ioctl failed.
    #[error("{ioctl} failed{context}")]
    Ioctl {
        /// The ioctl's name.
        ioctl: &'static str,
        /// What it was doing, starting with a separator (may be empty).
        context: String,
        /// The errno.
        #[source]
        source: io::Error,
    },

    /// KVM reports another API version.
    #[error(
        "KVM_GET_API_VERSION returned {version}, not {}",
        tce_uapi::kvm::KVM_API_VERSION
    )]
    ApiVersion {
        /// The version KVM reported.
        version: i32,
    },

    /// A capability the VMM needs is missing.
    #[error("KVM does not offer {name} (capability {cap}) for a KVM-HV VM; {hint}")]
    MissingCap {
        /// The capability's name.
        name: &'static str,
        /// Its number.
        cap: u32,
        /// What to check.
        hint: &'static str,
    },

    /// Memory could not be mapped.
    #[error("cannot map {what} ({len} bytes)")]
    Map {
        /// What was being mapped.
        what: String,
        /// Its length.
        len: usize,
        /// The errno.
        #[source]
        source: io::Error,
    },

    /// The DDW shim or its tce_accel tables failed.
    #[error("the DDW shim failed")]
    Shim {
        /// The shim's error.
        #[source]
        source: tce_shim::Error,
    },

    /// An RTAS call the VMM relies on did not succeed.
    #[error("{call} returned RTAS status {status} (want 0){detail}")]
    Rtas {
        /// The call's name.
        call: &'static str,
        /// Its status.
        status: i32,
        /// Why the backend failed, if it said.
        detail: String,
    },

    /// The engine refused to make a table.
    #[error("the engine cannot make a table for LIOBN {liobn:#x}: {reason}")]
    EngineTable {
        /// The window's LIOBN.
        liobn: u64,
        /// Why.
        reason: &'static str,
    },

    /// A window the VMM set up has disappeared.
    #[error("the window of LIOBN {liobn:#x} is gone")]
    WindowGone {
        /// The window's LIOBN.
        liobn: u64,
    },

    /// The binary has no guest payload.
    #[error(
        "this tce-vmm has no guest payload: it was built for another architecture; build \
         it for ppc64le (scripts/build-vm-binary.sh ppc64le tce-vmm) and run it on the \
         emulated POWER host"
    )]
    NoPayload,

    /// A vCPU stopped for a reason the VMM does not handle.
    #[error("vCPU {vcpu} stopped with KVM exit reason {reason}, which this VMM does not handle")]
    UnexpectedExit {
        /// The vCPU.
        vcpu: u32,
        /// `kvm_run.exit_reason`.
        reason: u32,
    },

    /// The guest took an interrupt, which the payload never expects.
    #[error("vCPU {vcpu}: the guest took interrupt {vector:#x} at pc {srr0:#x} (SRR1 {srr1:#x})")]
    GuestInterrupt {
        /// The vCPU.
        vcpu: u32,
        /// The interrupt vector.
        vector: u64,
        /// Where it happened.
        srr0: u64,
        /// The MSR bits saved with it.
        srr1: u64,
    },

    /// A job does not fit its area of guest RAM.
    #[error("a job of {calls} calls does not fit in guest RAM (at most {max} per job)")]
    JobTooLarge {
        /// The calls asked for.
        calls: usize,
        /// The most that fit.
        max: usize,
    },

    /// Something the VMM stores in guest RAM does not fit there.
    #[error("{what} does not fit in guest RAM")]
    OutsideRam {
        /// What was being stored.
        what: &'static str,
    },

    /// A DDW call was asked of a VM made without the DDW shim.
    #[error("this VM has no DDW shim (it was made without /dev/tce_accel)")]
    NoShim,
}

impl Error {
    /// The errno of a failed ioctl or step, if the error is one.
    pub fn errno(&self) -> Option<rustix::io::Errno> {
        match self {
            Error::Ioctl { source, .. } => source
                .raw_os_error()
                .map(rustix::io::Errno::from_raw_os_error),
            _ => None,
        }
    }
}

impl From<tce_shim::Error> for Error {
    fn from(source: tce_shim::Error) -> Self {
        Error::Shim { source }
    }
}

/// The VMM's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds an [`Error::Ioctl`] from an errno.
pub fn ioctl(
    ioctl: &'static str,
    context: impl Into<String>,
) -> impl FnOnce(rustix::io::Errno) -> Error {
    let context = context.into();
    move |e| Error::Ioctl {
        ioctl,
        context: if context.is_empty() {
            context
        } else {
            format!(" ({context})")
        },
        source: e.into(),
    }
}

pub use tce_sys::errno::chain;
