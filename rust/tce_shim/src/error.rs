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

    /// Neither the module nor KVM can create TCE tables for this VM.
    #[error(
        "this host cannot create TCE tables: {} does not exist and the VM has no \
         KVM_CAP_SPAPR_TCE_64; load the tce_accel module (modprobe tce_accel) on a POWER KVM host",
        crate::kernel::DEVICE_PATH
    )]
    NoTables {
        /// Why KVM's capability could not be used: `KVM_CHECK_EXTENSION`'s error, or `None`
        /// when KVM answered that the VM lacks it.
        #[source]
        source: Option<io::Error>,
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

    /// A VFIO device file could not be opened.
    #[error(
        "cannot open {}; load vfio-pci and the sPAPR TCE IOMMU driver (modprobe vfio-pci \
         vfio_iommu_spapr_tce) and run as root",
        path.display()
    )]
    VfioOpen {
        /// The device path.
        path: PathBuf,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// A PCI device has no IOMMU group, or its group cannot be read from sysfs.
    #[error(
        "PCI device {device} has no IOMMU group ({} cannot be read); check the address \
         (lspci -D) and that the host's IOMMU is on",
        path.display()
    )]
    NoIommuGroup {
        /// The PCI address.
        device: String,
        /// The sysfs link read.
        path: PathBuf,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// A PCI address is not of the form `DDDD:BB:SS.F`.
    #[error("{device:?} is not a PCI address of the form 0000:00:02.0")]
    BadPciAddress {
        /// The text given.
        device: String,
    },

    /// A PCI device could not be bound to vfio-pci through sysfs.
    #[error("cannot bind PCI device {device} to vfio-pci: writing {} failed", path.display())]
    BindVfioPci {
        /// The PCI address.
        device: String,
        /// The sysfs file written.
        path: PathBuf,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// A VFIO group is not viable.
    #[error(
        "VFIO group {group} is not viable: every device in /sys/kernel/iommu_groups/{group}/devices \
         must be bound to vfio-pci (or to no driver) before a VM can use the group"
    )]
    GroupNotViable {
        /// The group number.
        group: u32,
    },

    /// A VFIO group is already in a container.
    #[error("VFIO group {group} is already in a VFIO container (another VMM may be using it)")]
    GroupInUse {
        /// The group number.
        group: u32,
    },

    /// The kernel's VFIO does not offer the sPAPR TCE v2 IOMMU.
    #[error(
        "VFIO on this host has no sPAPR TCE v2 IOMMU (VFIO_SPAPR_TCE_v2_IOMMU); it needs a POWER \
         host with CONFIG_VFIO_IOMMU_SPAPR_TCE"
    )]
    NoSpaprV2,

    /// A VFIO ioctl on a container or group failed.
    #[error("{ioctl} failed on {what}")]
    Vfio {
        /// The ioctl's name.
        ioctl: &'static str,
        /// The object, described ("VFIO group 3", "the VFIO container").
        what: String,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// Guest memory could not be preregistered.
    #[error(
        "cannot preregister {size:#x} bytes of guest memory at {vaddr:#x} for DMA \
         (VFIO_IOMMU_SPAPR_REGISTER_MEMORY): {}",
        register_reason(source)
    )]
    RegisterMemory {
        /// The user address.
        vaddr: u64,
        /// The size in bytes.
        size: u64,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// Preregistered guest memory could not be unregistered.
    #[error(
        "cannot unregister the guest memory at {vaddr:#x} ({size:#x} bytes) \
         (VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY): {}",
        unregister_reason(source)
    )]
    UnregisterMemory {
        /// The user address.
        vaddr: u64,
        /// The size in bytes.
        size: u64,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// A window cannot have a hardware window: its size does not round up to a power of two.
    #[error("the window of LIOBN {liobn:#x} ({window}) is too large for a hardware DMA window")]
    HwWindowTooLarge {
        /// The LIOBN.
        liobn: u64,
        /// The window, described.
        window: String,
    },

    /// `VFIO_IOMMU_SPAPR_TCE_CREATE` failed.
    #[error(
        "cannot create the hardware DMA window for LIOBN {liobn:#x} ({window}; hardware window \
         of {window_size:#x} bytes, {levels} level(s)): {}",
        create_reason(source)
    )]
    HwWindowCreate {
        /// The LIOBN.
        liobn: u64,
        /// The guest's window, described.
        window: String,
        /// The hardware window's size in bytes.
        window_size: u64,
        /// The levels asked for.
        levels: u32,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// The hardware window landed at another bus address than the guest's window.
    #[error(
        "the hardware DMA window for LIOBN {liobn:#x} was created at bus address {got:#x}, \
         but the guest's window ({window}) starts at {want:#x}; the host's PHB places its \
         windows differently from the guest's PHB description (check its default window and \
         64-bit DMA base)"
    )]
    HwWindowAddress {
        /// The LIOBN.
        liobn: u64,
        /// The guest's window, described.
        window: String,
        /// The guest's bus address.
        want: u64,
        /// The hardware window's bus address.
        got: u64,
    },

    /// `VFIO_IOMMU_SPAPR_TCE_REMOVE` failed.
    #[error(
        "cannot remove the hardware DMA window at bus address {start:#x} of LIOBN {liobn:#x} \
         (VFIO_IOMMU_SPAPR_TCE_REMOVE)"
    )]
    HwWindowRemove {
        /// The LIOBN.
        liobn: u64,
        /// The hardware window's bus address.
        start: u64,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// `TCE_ACCEL_ATTACH_GROUP` failed.
    #[error(
        "cannot attach VFIO group {group} to the TCE table of LIOBN {liobn:#x} ({window}): {}",
        attach_reason(source, *group, window)
    )]
    AttachGroup {
        /// The group number.
        group: u32,
        /// The LIOBN.
        liobn: u64,
        /// The window, described.
        window: String,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// `TCE_ACCEL_DETACH_GROUP` failed.
    #[error(
        "cannot detach VFIO group {group} from the TCE table of LIOBN {liobn:#x} \
         (TCE_ACCEL_DETACH_GROUP)"
    )]
    DetachGroup {
        /// The group number.
        group: u32,
        /// The LIOBN.
        liobn: u64,
        /// The reason.
        #[source]
        source: io::Error,
    },

    /// A PHB's LIOBNs already have VFIO groups.
    #[error("the LIOBNs {first:#x} to {last:#x} already belong to a PHB with VFIO groups")]
    HwPhbOverlap {
        /// The PHB's first LIOBN.
        first: u64,
        /// Its last LIOBN.
        last: u64,
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
        const ENODEV: i32 = 19;
        match self {
            Error::LiobnBusy { .. } => EBUSY,
            Error::NoMemory { .. } | Error::PageMemory { .. } => ENOMEM,
            Error::UnknownLiobn { .. } | Error::NoWindow { .. } => ENOENT,
            Error::InvalidWindow { .. } | Error::IndexOutsideWindow { .. } => EINVAL,
            Error::NotATable { .. } => EBADF,
            Error::GroupInUse { .. } | Error::HwPhbOverlap { .. } => EBUSY,
            Error::NoSpaprV2 | Error::NoTables { .. } => ENODEV,
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
            | Error::WriteFile { source, .. }
            | Error::VfioOpen { source, .. }
            | Error::NoIommuGroup { source, .. }
            | Error::BindVfioPci { source, .. }
            | Error::Vfio { source, .. }
            | Error::RegisterMemory { source, .. }
            | Error::UnregisterMemory { source, .. }
            | Error::HwWindowCreate { source, .. }
            | Error::HwWindowRemove { source, .. }
            | Error::AttachGroup { source, .. }
            | Error::DetachGroup { source, .. } => source.raw_os_error().unwrap_or(EIO),
            _ => EINVAL,
        }
    }
}

/// What an errno of `TCE_ACCEL_ATTACH_GROUP` means, in the words of its user API.
fn attach_reason(e: &io::Error, group: u32, window: &str) -> String {
    match e.raw_os_error() {
        Some(9) => "the group's file descriptor is not open".into(),
        Some(22) => format!(
            "no hardware window of VFIO group {group} matches window {window}: hardware page \
             larger than the guest's, other bus address, or smaller (or the descriptor is not a \
             VFIO group; the kernel log says which)"
        ),
        Some(19) => "the group has no sPAPR TCE table group (not a POWER PHB's group)".into(),
        Some(1) => "the group's DMA is not owned by user space: put it in a VFIO container \
                    and set the sPAPR TCE v2 IOMMU first"
            .into(),
        Some(16) => "the group, or its hardware table, is attached to a TCE table already".into(),
        Some(12) => "the host is short of memory".into(),
        Some(25) => "the tce_accel module is older than this tool (no VFIO support)".into(),
        _ => "the tce_accel module refused".into(),
    }
}

/// What an errno of `VFIO_IOMMU_SPAPR_TCE_CREATE` means.
fn create_reason(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(28) => "the PHB has no free DMA window (the host allows two per PE)",
        Some(22) => {
            "the host's PHB does not support this page size, window size or number of levels"
        }
        Some(1) => "no VFIO group is in the container",
        Some(12) => "the host is short of memory for the hardware table",
        Some(16) => "a window already exists at that place",
        _ => "the host refused",
    }
}

/// What an errno of `VFIO_IOMMU_SPAPR_REGISTER_MEMORY` means.
fn register_reason(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(22) => "the address and size must be aligned to the host page size",
        Some(12) => "it does not fit in the locked-memory limit (ulimit -l, RLIMIT_MEMLOCK)",
        Some(16) => "it overlaps memory registered before with other bounds",
        Some(14) => "the memory is not mapped in this process",
        _ => "the host refused",
    }
}

/// What an errno of `VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY` means.
fn unregister_reason(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(16) => "hardware TCEs still map it (a window was not cleared or removed)",
        Some(2) => "it was not registered with these bounds",
        _ => "the host refused",
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
