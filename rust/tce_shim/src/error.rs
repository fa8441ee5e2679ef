// SPDX-License-Identifier: GPL-2.0
//! The crate's single error type, with messages written for a POWER administrator.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the shim, its tables and its saved-table files.
///
/// Each message is one sentence about what could not be done and, where it helps, what to
/// check. A message never repeats its source: print the chain (`Display` of the error, then of
/// each [`std::error::Error::source`]) to see the operating system's reason as well.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/dev/tce_accel` could not be opened.
    #[error(
        "cannot open {}; load the tce_accel module (modprobe tce_accel) and run with the rights needed for /dev/kvm",
        path.display()
    )]
    OpenDevice {
        /// The device path.
        path: PathBuf,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// `/dev/kvm` could not be opened.
    #[error(
        "cannot open /dev/kvm to create a VM; check that KVM is available and that you may use it"
    )]
    OpenKvm {
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// `KVM_CREATE_VM` failed.
    #[error("KVM refused to create a VM")]
    CreateVm {
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// The window parameters break the rules of `KVM_CREATE_SPAPR_TCE_64`.
    #[error(
        "the window of LIOBN {liobn:#x} is not valid: page shift {page_shift} (must be 12 to 34), \
         first entry {offset:#x}, {size:#x} entries (at least one, ending below 2^64 bytes)"
    )]
    InvalidWindow {
        /// The window's LIOBN.
        liobn: u64,
        /// The IOMMU page shift asked for.
        page_shift: u32,
        /// The first entry asked for.
        offset: u64,
        /// The number of entries asked for.
        size: u64,
    },

    /// The VM already has a table for this LIOBN.
    #[error("the VM already has a TCE table for LIOBN {liobn:#x}")]
    LiobnBusy {
        /// The LIOBN.
        liobn: u64,
    },

    /// The table does not fit in the locked-memory limit, or memory is short.
    #[error(
        "the TCE table for LIOBN {liobn:#x} does not fit in the locked-memory limit \
         (ulimit -l, RLIMIT_MEMLOCK) or the host is short of memory"
    )]
    NoMemory {
        /// The LIOBN.
        liobn: u64,
    },

    /// `TCE_ACCEL_CREATE_TABLE` failed for another reason.
    #[error("the tce_accel module refused to create a TCE table for LIOBN {liobn:#x}")]
    CreateTable {
        /// The LIOBN.
        liobn: u64,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// There is no table for this LIOBN.
    #[error("there is no TCE table for LIOBN {liobn:#x}")]
    UnknownLiobn {
        /// The LIOBN.
        liobn: u64,
    },

    /// A file descriptor is not a `tce_accel` table.
    #[error("the file descriptor is not a tce_accel TCE table")]
    NotATable {
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// `TCE_ACCEL_TABLE_INFO` failed.
    #[error("cannot read the table's parameters (TCE_ACCEL_TABLE_INFO)")]
    TableInfo {
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// `TCE_ACCEL_TABLE_PAGES` failed.
    #[error(
        "cannot list the table's pages (TCE_ACCEL_TABLE_PAGES); the tce_accel module may be older than this tool"
    )]
    TablePages {
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// The page list the table returned is not what the user API promises.
    #[error(
        "the table listed page {page:#x} out of order or past its end; the tce_accel module and this tool disagree"
    )]
    BadPageList {
        /// The offending page number.
        page: u64,
    },

    /// The table reports a geometry this host cannot map.
    #[error(
        "the table's {size:#x} entries do not fit in its {mapping_pages:#x} host pages of {page_size} bytes"
    )]
    BadGeometry {
        /// Entries.
        size: u64,
        /// Host pages the mapping spans.
        mapping_pages: u64,
        /// The host page size.
        page_size: u64,
    },

    /// `mmap` of a table failed.
    #[error("cannot map the TCE table into this process")]
    MapTable {
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// A page of a table could not be allocated when an entry was written.
    #[error("no memory for a page of the TCE table of LIOBN {liobn:#x}")]
    PageMemory {
        /// The LIOBN.
        liobn: u64,
    },

    /// An entry index is past the end of the window.
    #[error("entry {index:#x} is outside the window, which has {size:#x} entries")]
    IndexOutsideWindow {
        /// The entry asked for.
        index: u64,
        /// The window's entries.
        size: u64,
    },

    /// A process ID is not valid.
    #[error("{pid} is not a valid process ID")]
    BadPid {
        /// The value given.
        pid: i32,
    },

    /// `pidfd_open` failed.
    #[error("cannot open process {pid}; check that it is running")]
    OpenProcess {
        /// The process.
        pid: i32,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// `pidfd_getfd` failed.
    #[error(
        "cannot take file descriptor {fd} from process {pid}; this needs the right to trace the \
         process (root or CAP_SYS_PTRACE) and the descriptor must be open there"
    )]
    TakeFd {
        /// The process.
        pid: i32,
        /// The file descriptor number in that process.
        fd: i32,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// A PHB cannot be added to the shim.
    #[error("the PHB with BUID {buid:#x} cannot be set up: {reason}")]
    Phb {
        /// The PHB's BUID.
        buid: u64,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An RTAS buffer has the wrong shape.
    #[error("the RTAS buffer {reason}")]
    RtasBuffer {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// No active window has this LIOBN.
    #[error("no active DMA window has LIOBN {liobn:#x}")]
    NoWindow {
        /// The LIOBN.
        liobn: u64,
    },

    /// The destination window differs from the saved one.
    #[error(
        "the destination's window for LIOBN {liobn:#x} ({have}) differs from the saved window ({saved})"
    )]
    WindowMismatch {
        /// The LIOBN.
        liobn: u64,
        /// The destination's window, described.
        have: String,
        /// The saved window, described.
        saved: String,
    },

    /// The destination window already has entries.
    #[error(
        "the destination's window for LIOBN {liobn:#x} already has pages in use; restore only into a new, empty window"
    )]
    NotEmpty {
        /// The LIOBN.
        liobn: u64,
    },

    /// A saved table is shorter than its contents need.
    #[error(
        "the saved table is truncated: its {what} needs {needed} bytes, but only {have} remain"
    )]
    Truncated {
        /// The part that is cut off.
        what: &'static str,
        /// Bytes that part needs.
        needed: u64,
        /// Bytes left.
        have: u64,
    },

    /// A saved table does not start with the magic number.
    #[error("this is not a saved TCE table: it does not start with the TCE table magic number")]
    BadMagic,

    /// A saved table has a format version this code does not read.
    #[error(
        "the saved table has format version {version}, but this tool reads only version {known}"
    )]
    UnknownVersion {
        /// The file's version.
        version: u32,
        /// The version this code reads.
        known: u32,
    },

    /// A saved table's header sets flags this code does not know.
    #[error("the saved table sets unknown header flags {flags:#x}")]
    UnknownFlags {
        /// The flags.
        flags: u32,
    },

    /// A saved entry's index is past the end of the saved window.
    #[error("saved entry {index:#x} is outside the saved window, which has {size:#x} entries")]
    EntryOutsideWindow {
        /// The entry's index.
        index: u64,
        /// The window's entries.
        size: u64,
    },

    /// A saved entry appears twice.
    #[error("saved entry {index:#x} appears twice")]
    DuplicateEntry {
        /// The entry's index.
        index: u64,
    },

    /// Saved entries are not in ascending order.
    #[error("saved entry {index:#x} comes after entry {previous:#x}; entries must be in ascending order")]
    UnsortedEntry {
        /// The entry out of order.
        index: u64,
        /// The entry before it.
        previous: u64,
    },

    /// A saved entry is zero, which the format never stores.
    #[error("saved entry {index:#x} is zero; a saved table holds populated entries only")]
    ZeroEntry {
        /// The entry's index.
        index: u64,
    },

    /// A saved table has bytes after its last entry.
    #[error("the saved table has {count} bytes after its last entry")]
    TrailingBytes {
        /// The extra bytes.
        count: u64,
    },

    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The reason.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Returns the errno that best describes the error, as a positive number.
    ///
    /// The DDW model carries backend failures as numbers; the shim keeps the error itself.
    pub fn errno(&self) -> i32 {
        const EBADF: i32 = 9;
        const ENOMEM: i32 = 12;
        const EBUSY: i32 = 16;
        const ENOENT: i32 = 2;
        const EINVAL: i32 = 22;
        const EIO: i32 = 5;
        match self {
            Error::LiobnBusy { .. } => EBUSY,
            Error::NoMemory { .. } | Error::PageMemory { .. } => ENOMEM,
            Error::UnknownLiobn { .. } | Error::NoWindow { .. } => ENOENT,
            Error::InvalidWindow { .. } | Error::IndexOutsideWindow { .. } => EINVAL,
            Error::NotATable { .. } => EBADF,
            Error::OpenDevice { source, .. }
            | Error::OpenKvm { source }
            | Error::CreateVm { source }
            | Error::CreateTable { source, .. }
            | Error::TableInfo { source }
            | Error::TablePages { source }
            | Error::MapTable { source }
            | Error::OpenProcess { source, .. }
            | Error::TakeFd { source, .. }
            | Error::ReadFile { source, .. }
            | Error::WriteFile { source, .. } => source.raw_os_error().unwrap_or(EIO),
            _ => EINVAL,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
