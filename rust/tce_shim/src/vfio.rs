// SPDX-License-Identifier: GPL-2.0
//! VFIO groups in a container with the sPAPR TCE v2 IOMMU: preregistered memory and hardware DMA windows.
//!
//! A POWER VMM that passes a PCI device through to a guest puts the device's IOMMU group in a
//! VFIO container, sets the sPAPR TCE v2 IOMMU (`VFIO_SPAPR_TCE_v2_IOMMU`), preregisters the
//! guest's RAM (`VFIO_IOMMU_SPAPR_REGISTER_MEMORY`) and creates one hardware DMA window
//! (`VFIO_IOMMU_SPAPR_TCE_CREATE`) for each DMA window of the guest. [`crate::HwTables`] then
//! attaches the groups to the guest-view tables of `tce_accel` (`TCE_ACCEL_ATTACH_GROUP`), so
//! that the guest's TCE hypercalls update the hardware tables in the kernel.
//!
//! - [`Group`]: `/dev/vfio/N`, opened by group number or by PCI address, checked viable;
//! - [`Container`]: `/dev/vfio/vfio` with its groups and the IOMMU set; it creates and removes
//!   hardware windows, and is the [`HwWindows`] of a PHB;
//! - [`Registration`]: preregistered memory, unregistered when dropped.
//!
//! [`bind_to_vfio_pci`] binds a PCI device to `vfio-pci` through sysfs.

use std::fs::{
    File,
    OpenOptions, //
};
use std::os::fd::{
    AsFd,
    BorrowedFd,
    OwnedFd, //
};
use std::path::{
    Path,
    PathBuf, //
};
use std::sync::Arc;

use rustix::io::Errno;
use tce_sys::{
    accel,
    vfio,
    SysResult, //
};

use crate::error::{
    Error,
    Result, //
};
use crate::hw::HwWindows;
use crate::kernel::KernelTable;
use crate::uapi::{
    HwEntryArgs,
    VfioSpaprTceInfo,
    VFIO_API_VERSION,
    VFIO_GROUP_FLAGS_CONTAINER_SET,
    VFIO_GROUP_FLAGS_VIABLE,
    VFIO_SPAPR_TCE_IOMMU,
    VFIO_SPAPR_TCE_V2_IOMMU, //
};

/// The path of the VFIO container device.
pub const CONTAINER_PATH: &str = "/dev/vfio/vfio";

/// The sysfs directory of PCI devices.
const PCI_DEVICES: &str = "/sys/bus/pci/devices";

/// Converts a rustix errno into an I/O error for an error's source.
fn io(e: Errno) -> std::io::Error {
    e.into()
}

/// Checks that `device` looks like a PCI address (`0000:00:02.0`), so that it cannot name
/// another sysfs path.
fn check_pci_address(device: &str) -> Result<()> {
    let ok = device.len() == 12
        && device.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b':',
            10 => b == b'.',
            _ => b.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err(Error::BadPciAddress {
            device: device.into(),
        })
    }
}

/// Returns the IOMMU group number of PCI device `device` (`0000:00:02.0`), from sysfs.
pub fn iommu_group_of(device: &str) -> Result<u32> {
    check_pci_address(device)?;
    let path = Path::new(PCI_DEVICES).join(device).join("iommu_group");
    let bad = |source| Error::NoIommuGroup {
        device: device.into(),
        path: path.clone(),
        source,
    };
    let target = std::fs::read_link(&path).map_err(bad)?;
    target
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            bad(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the link does not end in a group number",
            ))
        })
}

/// Returns the driver PCI device `device` is bound to, if any.
pub fn pci_driver(device: &str) -> Result<Option<String>> {
    check_pci_address(device)?;
    let path = Path::new(PCI_DEVICES).join(device).join("driver");
    Ok(std::fs::read_link(path).ok().and_then(|t| {
        t.file_name()
            .and_then(|n| n.to_str())
            .map(ToString::to_string)
    }))
}

/// Writes `value` into the sysfs file `path`, for binding `device`.
fn sysfs_write(device: &str, path: PathBuf, value: &str) -> Result<()> {
    std::fs::write(&path, value).map_err(|source| Error::BindVfioPci {
        device: device.into(),
        path,
        source,
    })
}

/// Binds PCI device `device` (`0000:00:02.0`) to `vfio-pci` if it is not bound to it already:
/// sets its `driver_override`, unbinds it from its driver, and asks the PCI core to probe it
/// again. Returns whether anything had to be done. Needs root and the `vfio-pci` driver.
pub fn bind_to_vfio_pci(device: &str) -> Result<bool> {
    let driver = pci_driver(device)?;
    if driver.as_deref() == Some("vfio-pci") {
        return Ok(false);
    }
    let dir = Path::new(PCI_DEVICES).join(device);
    sysfs_write(device, dir.join("driver_override"), "vfio-pci")?;
    if driver.is_some() {
        sysfs_write(device, dir.join("driver").join("unbind"), device)?;
    }
    sysfs_write(device, PathBuf::from("/sys/bus/pci/drivers_probe"), device)?;
    if pci_driver(device)?.as_deref() != Some("vfio-pci") {
        return Err(Error::BindVfioPci {
            device: device.into(),
            path: dir.join("driver"),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "vfio-pci did not take the device (is the vfio-pci driver loaded?)",
            ),
        });
    }
    Ok(true)
}

/// A VFIO group: `/dev/vfio/N`.
///
/// # Invariants
///
/// The group was viable and in no container when it was opened.
#[derive(Debug)]
pub struct Group {
    number: u32,
    fd: OwnedFd,
}

impl Group {
    /// Opens VFIO group `number` and checks that it is viable and in no container.
    pub fn open(number: u32) -> Result<Group> {
        let path = PathBuf::from(format!("/dev/vfio/{number}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| Error::VfioOpen { path, source })?;
        let fd = OwnedFd::from(file);
        let flags = vfio::group_status(fd.as_fd()).map_err(|e| Error::Vfio {
            ioctl: "VFIO_GROUP_GET_STATUS",
            what: format!("VFIO group {number}"),
            source: io(e),
        })?;
        if flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(Error::GroupNotViable { group: number });
        }
        if flags & VFIO_GROUP_FLAGS_CONTAINER_SET != 0 {
            return Err(Error::GroupInUse { group: number });
        }
        // INVARIANT: checked just above.
        Ok(Group { number, fd })
    }

    /// Opens the VFIO group of PCI device `device` (`0000:00:02.0`), which must be bound to
    /// `vfio-pci` (see [`bind_to_vfio_pci`]).
    pub fn open_pci(device: &str) -> Result<Group> {
        Group::open(iommu_group_of(device)?)
    }

    /// Returns the group number.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Returns the group's file descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What the sPAPR TCE IOMMU of a container offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaprInfo {
    /// The 32-bit (default) window's bus address.
    pub dma32_start: u64,
    /// The 32-bit window's size in bytes.
    pub dma32_size: u64,
    /// Whether dynamic DMA windows are supported.
    pub ddw: bool,
    /// A bitmap of the supported IOMMU page sizes (bit n: 2^n bytes).
    pub page_sizes: u64,
    /// How many dynamic windows the platform supports.
    pub max_windows: u32,
    /// The most levels a hardware table may have.
    pub levels: u32,
}

impl From<VfioSpaprTceInfo> for SpaprInfo {
    fn from(i: VfioSpaprTceInfo) -> Self {
        SpaprInfo {
            dma32_start: i.dma32_window_start.into(),
            dma32_size: i.dma32_window_size.into(),
            ddw: i.flags & crate::uapi::VFIO_IOMMU_SPAPR_INFO_DDW != 0,
            page_sizes: i.ddw.pgsizes,
            max_windows: i.ddw.max_dynamic_windows_supported,
            levels: i.ddw.levels,
        }
    }
}

/// A VFIO container with the sPAPR TCE v2 IOMMU and its groups.
///
/// The groups stay in the container until it is dropped (closing a group's descriptor takes
/// it out). Hardware windows are removed by whoever created them ([`crate::HwTables`] does);
/// any left are removed by the kernel when the container closes.
#[derive(Debug)]
pub struct Container {
    // Groups drop first, then the container.
    groups: Vec<Group>,
    fd: OwnedFd,
}

impl Container {
    /// Opens `/dev/vfio/vfio`, puts `groups` in it and sets the sPAPR TCE v2 IOMMU.
    pub fn new(groups: Vec<Group>) -> Result<Container> {
        Self::with_iommu(groups, VFIO_SPAPR_TCE_V2_IOMMU, "sPAPR TCE v2")
    }

    /// As [`Container::new`], with the first sPAPR TCE IOMMU (v1), enabled, and its default
    /// 32-bit window created. The host refuses to attach such a group's tables to a guest's
    /// window; this is for tests of that refusal.
    pub fn new_v1(groups: Vec<Group>) -> Result<Container> {
        let c = Self::with_iommu(groups, VFIO_SPAPR_TCE_IOMMU, "sPAPR TCE v1")?;
        let container = |ioctl| {
            move |e| Error::Vfio {
                ioctl,
                what: "the VFIO v1 container".into(),
                source: io(e),
            }
        };
        vfio::enable(c.fd()).map_err(container("VFIO_IOMMU_ENABLE"))?;
        // The default window exists once something is mapped or unmapped; clearing one
        // unmapped page at bus address 0 creates it.
        vfio::unmap_dma(c.fd(), 0, 4096).map_err(container("VFIO_IOMMU_UNMAP_DMA"))?;
        Ok(c)
    }

    fn with_iommu(groups: Vec<Group>, iommu: u32, name: &'static str) -> Result<Container> {
        let file = File::options()
            .read(true)
            .write(true)
            .open(CONTAINER_PATH)
            .map_err(|source| Error::VfioOpen {
                path: CONTAINER_PATH.into(),
                source,
            })?;
        let fd = OwnedFd::from(file);
        let container = |ioctl| {
            move |e| Error::Vfio {
                ioctl,
                what: "the VFIO container".into(),
                source: io(e),
            }
        };
        let version = vfio::api_version(fd.as_fd()).map_err(container("VFIO_GET_API_VERSION"))?;
        if version != VFIO_API_VERSION {
            return Err(Error::Vfio {
                ioctl: "VFIO_GET_API_VERSION",
                what: "the VFIO container".into(),
                source: std::io::Error::other(format!(
                    "version {version}, this tool knows {VFIO_API_VERSION}"
                )),
            });
        }
        let v2 =
            vfio::check_extension(fd.as_fd(), iommu).map_err(container("VFIO_CHECK_EXTENSION"))?;
        if v2 <= 0 {
            return Err(Error::NoSpaprV2);
        }
        for g in &groups {
            vfio::group_set_container(g.fd(), fd.as_fd()).map_err(|e| Error::Vfio {
                ioctl: "VFIO_GROUP_SET_CONTAINER",
                what: format!("VFIO group {}", g.number),
                source: io(e),
            })?;
        }
        // The IOMMU can be set only once a group is in the container.
        vfio::set_iommu(fd.as_fd(), iommu).map_err(|e| Error::Vfio {
            ioctl: "VFIO_SET_IOMMU",
            what: format!("the VFIO container ({name})"),
            source: io(e),
        })?;
        Ok(Container { groups, fd })
    }

    /// Returns the container's file descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Returns the groups, in the order they were given.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Returns group `number`, if it is in the container.
    pub fn group(&self, number: u32) -> Option<&Group> {
        self.groups.iter().find(|g| g.number == number)
    }

    /// Returns what the sPAPR TCE IOMMU offers (`VFIO_IOMMU_SPAPR_TCE_GET_INFO`).
    pub fn info(&self) -> Result<SpaprInfo> {
        vfio::spapr_info(self.fd.as_fd())
            .map(SpaprInfo::from)
            .map_err(|e| Error::Vfio {
                ioctl: "VFIO_IOMMU_SPAPR_TCE_GET_INFO",
                what: "the VFIO container".into(),
                source: io(e),
            })
    }

    /// Preregisters `size` bytes of this process's memory at `vaddr` for DMA; both must be
    /// aligned to the host page size. The memory is unregistered when the returned value is
    /// dropped (or, with the error seen, by [`Registration::unregister`]).
    ///
    /// Registering pins nothing that the caller must keep mapped: if the memory is unmapped
    /// first, the registration still holds the pages until it is undone.
    pub fn register_memory(self: &Arc<Self>, vaddr: u64, size: u64) -> Result<Registration> {
        vfio::spapr_memory(self.fd.as_fd(), vaddr, size, true).map_err(|e| {
            Error::RegisterMemory {
                vaddr,
                size,
                source: io(e),
            }
        })?;
        Ok(Registration {
            container: Some(self.clone()),
            vaddr,
            size,
        })
    }

    /// Creates a hardware DMA window (`VFIO_IOMMU_SPAPR_TCE_CREATE`) and returns its bus
    /// address; the errno is the kernel's.
    pub fn create_window(&self, page_shift: u32, window_size: u64, levels: u32) -> SysResult<u64> {
        vfio::spapr_create(self.fd.as_fd(), page_shift, window_size, levels)
    }

    /// Removes the hardware DMA window at `start` (`VFIO_IOMMU_SPAPR_TCE_REMOVE`).
    pub fn remove_window(&self, start: u64) -> SysResult<()> {
        vfio::spapr_remove(self.fd.as_fd(), start)
    }

    /// Maps `size` bytes of preregistered memory at `vaddr` for reads and writes at bus
    /// address `iova` (`VFIO_IOMMU_MAP_DMA`), as QEMU does for an `H_TOO_HARD` exit.
    pub fn map_dma(&self, vaddr: u64, iova: u64, size: u64) -> SysResult<()> {
        vfio::map_dma(self.fd.as_fd(), vaddr, iova, size)
    }

    /// Clears `size` bytes of bus addresses at `iova` (`VFIO_IOMMU_UNMAP_DMA`).
    pub fn unmap_dma(&self, iova: u64, size: u64) -> SysResult<()> {
        vfio::unmap_dma(self.fd.as_fd(), iova, size)
    }
}

impl HwWindows<Arc<KernelTable>> for Arc<Container> {
    fn groups(&self) -> Vec<u32> {
        self.groups.iter().map(Group::number).collect()
    }

    fn create_window(&mut self, page_shift: u32, window_size: u64, levels: u32) -> SysResult<u64> {
        Container::create_window(self, page_shift, window_size, levels)
    }

    fn remove_window(&mut self, start: u64) -> SysResult<()> {
        Container::remove_window(self, start)
    }

    fn attach(&mut self, table: &Arc<KernelTable>, group: u32) -> SysResult<()> {
        let g = self.group(group).ok_or(Errno::BADF)?;
        attach_group(table.fd(), g.fd())
    }

    fn detach(&mut self, table: &Arc<KernelTable>, group: u32) -> SysResult<()> {
        let g = self.group(group).ok_or(Errno::BADF)?;
        detach_group(table.fd(), g.fd())
    }
}

/// Preregistered memory of a [`Container`]; dropping it unregisters the memory.
#[derive(Debug)]
pub struct Registration {
    container: Option<Arc<Container>>,
    vaddr: u64,
    size: u64,
}

impl Registration {
    /// Returns the user address of the memory.
    pub fn vaddr(&self) -> u64 {
        self.vaddr
    }

    /// Returns the size of the memory in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Unregisters the memory and says whether that worked: it fails with `EBUSY` while a
    /// hardware TCE still maps a page of it.
    pub fn unregister(mut self) -> Result<()> {
        self.try_unregister()
    }

    /// As [`Registration::unregister`], but on failure the memory stays registered and this
    /// value keeps it (and unregisters it when dropped).
    pub fn try_unregister(&mut self) -> Result<()> {
        let Some(c) = &self.container else {
            return Ok(());
        };
        vfio::spapr_memory(c.fd.as_fd(), self.vaddr, self.size, false).map_err(|e| {
            Error::UnregisterMemory {
                vaddr: self.vaddr,
                size: self.size,
                source: io(e),
            }
        })?;
        self.container = None;
        Ok(())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(c) = self.container.take() {
            // Nothing to do about a failure here; closing the container undoes it at the latest.
            let _ = vfio::spapr_memory(c.fd.as_fd(), self.vaddr, self.size, false);
        }
    }
}

/// `TCE_ACCEL_ATTACH_GROUP`: attaches VFIO group `group` to the `tce_accel` table `table`.
/// The errno is the module's (see `include/uapi/tce_accel.h`).
pub fn attach_group(table: BorrowedFd<'_>, group: BorrowedFd<'_>) -> SysResult<()> {
    accel::group(table, group, true)
}

/// `TCE_ACCEL_DETACH_GROUP`: detaches VFIO group `group` from the `tce_accel` table `table`.
pub fn detach_group(table: BorrowedFd<'_>, group: BorrowedFd<'_>) -> SysResult<()> {
    accel::group(table, group, false)
}

/// A hardware TCE as `TCE_ACCEL_HW_ENTRY` reads it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwEntry {
    /// The entry: host physical address | `TCE_PCI_READ` 0x1 | `TCE_PCI_WRITE` 0x2.
    pub tce: u64,
    /// The user address recorded behind it, 0 if none.
    pub ua: u64,
    /// The hardware IOMMU page shift.
    pub page_shift: u32,
}

impl From<HwEntryArgs> for HwEntry {
    fn from(a: HwEntryArgs) -> Self {
        HwEntry {
            tce: a.tce,
            ua: a.ua,
            page_shift: a.page_shift,
        }
    }
}

/// `TCE_ACCEL_HW_ENTRY`: reads the hardware entry at bus address `ioba` of the attached VFIO
/// group `group` of table `table` (needs `CAP_SYS_ADMIN`).
pub fn hw_entry(table: BorrowedFd<'_>, group: BorrowedFd<'_>, ioba: u64) -> SysResult<HwEntry> {
    accel::hw_entry(table, group, ioba).map(HwEntry::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_are_checked_before_sysfs_is_touched() {
        assert!(check_pci_address("0000:00:02.0").is_ok());
        assert!(check_pci_address("0001:0a:1f.7").is_ok());
        for bad in [
            "",
            "0000:00:02",
            "../../../x/y.z",
            "0000:00:02.0/",
            "0000-00:02.0",
        ] {
            let err = check_pci_address(bad).unwrap_err();
            assert!(matches!(err, Error::BadPciAddress { .. }), "{bad}");
        }
        assert_eq!(
            iommu_group_of("x").unwrap_err().to_string(),
            "\"x\" is not a PCI address of the form 0000:00:02.0"
        );
    }

    #[test]
    fn a_missing_group_is_explained() {
        let err = Group::open(999_999).unwrap_err();
        assert!(matches!(err, Error::VfioOpen { .. }), "{err}");
        assert!(
            err.to_string().starts_with("cannot open /dev/vfio/999999"),
            "{err}"
        );
    }
}
