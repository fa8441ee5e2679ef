// SPDX-License-Identifier: GPL-2.0
//! The kernel backend: tables created in `/dev/tce_accel` for a KVM VM, read through `mmap`.

use std::collections::BTreeMap;
use std::fs::{
    File,
    OpenOptions, //
};
use std::os::fd::{
    AsFd,
    BorrowedFd,
    OwnedFd, //
};
use std::path::Path;
use std::sync::{
    Arc,
    OnceLock, //
};

use rustix::io::Errno;
use tce_engine::window::WindowParams;

use crate::error::{
    Error,
    Result, //
};
use crate::sys::{
    self,
    Mapping, //
};
use crate::table::{
    check_index,
    validate,
    Table,
    TableInfo,
    Tables, //
};

/// The path of the tce_accel device.
pub const DEVICE_PATH: &str = "/dev/tce_accel";

/// The path of the KVM device.
pub const KVM_PATH: &str = "/dev/kvm";

/// Tells whether `/dev/tce_accel` exists on this host.
pub fn device_present() -> bool {
    Path::new(DEVICE_PATH).exists()
}

/// Converts a rustix errno into an I/O error for an error's source.
fn io(e: Errno) -> std::io::Error {
    e.into()
}

/// A table of the tce_accel module: its file descriptor and, once needed, a shared mapping.
///
/// The mapping is created on the first entry access and removed when the value is dropped;
/// dropping the value also closes the file descriptor, which frees the table once no other
/// descriptor or mapping of it remains.
pub struct KernelTable {
    fd: OwnedFd,
    params: WindowParams,
    page_size: u64,
    mapping_pages: u64,
    mapping: OnceLock<Mapping>,
}

impl KernelTable {
    /// Takes a table file descriptor, such as one created by `TCE_ACCEL_CREATE_TABLE` or taken
    /// from a VMM with [`take_fd`], and checks that it is a table.
    pub fn from_fd(fd: OwnedFd) -> Result<KernelTable> {
        let info = sys::table_info(fd.as_fd()).map_err(|e| match e {
            Errno::NOTTY | Errno::INVAL | Errno::BADF => Error::NotATable { source: io(e) },
            e => Error::TableInfo { source: io(e) },
        })?;
        let params = WindowParams::from(info.window);
        let page_size = sys::page_size();
        let fits = info
            .mapping_pages
            .checked_mul(page_size / 8)
            .is_some_and(|n| n >= params.size);
        if !fits || usize::try_from(info.mapping_pages.saturating_mul(page_size)).is_err() {
            return Err(Error::BadGeometry {
                size: params.size,
                mapping_pages: info.mapping_pages,
                page_size,
            });
        }
        Ok(KernelTable {
            fd,
            params,
            page_size,
            mapping_pages: info.mapping_pages,
            mapping: OnceLock::new(),
        })
    }

    /// Returns the table's file descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Returns the mapping, creating it on first use.
    fn mapping(&self) -> Result<&Mapping> {
        if let Some(m) = self.mapping.get() {
            return Ok(m);
        }
        // `from_fd` checked that the length fits a usize.
        let len = (self.mapping_pages * self.page_size) as usize;
        let m = Mapping::new(self.fd.as_fd(), len, self.params.size)
            .map_err(|e| Error::MapTable { source: io(e) })?;
        // A racing thread may have mapped it first: then this mapping is dropped (unmapped).
        Ok(self.mapping.get_or_init(|| m))
    }

    /// Tells whether host page `page` exists, without faulting it in.
    fn exists(&self, page: u64) -> Result<bool> {
        let mut found = [0u64; 1];
        let n = self.existing_pages(page, &mut found)?;
        Ok(n == 1 && found[0] == page)
    }
}

impl Table for KernelTable {
    fn info(&self) -> Result<TableInfo> {
        let info =
            sys::table_info(self.fd.as_fd()).map_err(|e| Error::TableInfo { source: io(e) })?;
        Ok(TableInfo {
            params: info.window.into(),
            host_page_size: self.page_size,
            mapping_pages: info.mapping_pages,
            present_pages: info.present_pages,
            locked_pages: info.locked_pages,
        })
    }

    fn params(&self) -> WindowParams {
        self.params
    }

    fn entries_per_page(&self) -> u64 {
        self.page_size / 8
    }

    fn existing_pages(&self, start: u64, out: &mut [u64]) -> Result<usize> {
        let n = sys::table_pages(self.fd.as_fd(), start, out)
            .map_err(|e| Error::TablePages { source: io(e) })?;
        // Guard against a module that breaks the promise of ascending pages in the table.
        let mut next = start;
        for &page in &out[..n] {
            if page < next || page >= self.mapping_pages {
                return Err(Error::BadPageList { page });
            }
            next = page + 1;
        }
        Ok(n)
    }

    fn read_page(&self, page: u64, out: &mut [u64]) -> Result<usize> {
        let per_page = self.entries_per_page();
        let first = page.saturating_mul(per_page);
        let size = self.params.size;
        check_index(first, size)?;
        let count = per_page.min(size - first).min(out.len() as u64) as usize;
        let mapping = self.mapping()?;
        for (i, slot) in out[..count].iter_mut().enumerate() {
            // Every index is below `size`, which the mapping covers.
            *slot = mapping.load(first + i as u64).unwrap_or(0);
        }
        Ok(count)
    }

    fn read(&self, index: u64) -> Result<u64> {
        check_index(index, self.params.size)?;
        if !self.exists(index / self.entries_per_page())? {
            return Ok(0);
        }
        Ok(self.mapping()?.load(index).unwrap_or(0))
    }

    fn write(&self, index: u64, tce: u64) -> Result<()> {
        check_index(index, self.params.size)?;
        if tce == 0 && !self.exists(index / self.entries_per_page())? {
            return Ok(());
        }
        self.mapping()?.store(index, tce);
        Ok(())
    }
}

/// The tce_accel tables of one KVM VM.
pub struct KernelTables {
    dev: File,
    vm: OwnedFd,
    tables: BTreeMap<u64, Arc<KernelTable>>,
}

impl KernelTables {
    /// Opens `/dev/tce_accel` for the VM of `vm` (a KVM VM file descriptor).
    pub fn open(vm: OwnedFd) -> Result<KernelTables> {
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(DEVICE_PATH)
            .map_err(|source| Error::OpenDevice {
                path: DEVICE_PATH.into(),
                source,
            })?;
        Ok(KernelTables {
            dev,
            vm,
            tables: BTreeMap::new(),
        })
    }

    /// Returns the VM's file descriptor.
    pub fn vm_fd(&self) -> BorrowedFd<'_> {
        self.vm.as_fd()
    }
}

impl Tables for KernelTables {
    type Table = Arc<KernelTable>;

    fn create(&mut self, params: WindowParams) -> Result<()> {
        validate(&params)?;
        let liobn = params.liobn;
        if self.tables.contains_key(&liobn) {
            return Err(Error::LiobnBusy { liobn });
        }
        let fd = sys::create_table(self.dev.as_fd(), self.vm.as_fd(), params.into()).map_err(
            |e| match e {
                Errno::BUSY => Error::LiobnBusy { liobn },
                Errno::NOMEM => Error::NoMemory { liobn },
                e => Error::CreateTable {
                    liobn,
                    source: io(e),
                },
            },
        )?;
        // On failure the new descriptor is dropped here, which frees the table.
        let table = KernelTable::from_fd(fd)?;
        self.tables.insert(liobn, Arc::new(table));
        Ok(())
    }

    fn remove(&mut self, liobn: u64) -> Result<()> {
        self.tables
            .remove(&liobn)
            .map(drop)
            .ok_or(Error::UnknownLiobn { liobn })
    }

    fn table(&self, liobn: u64) -> Result<Arc<KernelTable>> {
        self.tables
            .get(&liobn)
            .cloned()
            .ok_or(Error::UnknownLiobn { liobn })
    }

    fn liobns(&self) -> Vec<u64> {
        self.tables.keys().copied().collect()
    }
}

/// Duplicates file descriptor `fd` of the running process `pid` into this process, as
/// `pidfd_open` and `pidfd_getfd` do; this needs the right to trace that process.
pub fn take_fd(pid: i32, fd: i32) -> Result<OwnedFd> {
    let pidfd = sys::pidfd_open(pid)
        .ok_or(Error::BadPid { pid })?
        .map_err(|e| Error::OpenProcess { pid, source: io(e) })?;
    sys::pidfd_getfd(pidfd.as_fd(), fd).map_err(|e| Error::TakeFd {
        pid,
        fd,
        source: io(e),
    })
}

/// Creates a new, empty KVM VM through `/dev/kvm` (`KVM_CREATE_VM`, default machine type).
pub fn create_vm() -> Result<OwnedFd> {
    create_vm_of_type(0)
}

/// Creates a new, empty KVM VM of a machine type (on powerpc, 1 is KVM-HV and 2 is KVM-PR).
pub fn create_vm_of_type(machine_type: u32) -> Result<OwnedFd> {
    let kvm = OpenOptions::new()
        .read(true)
        .write(true)
        .open(KVM_PATH)
        .map_err(|source| Error::OpenKvm { source })?;
    sys::kvm_create_vm(kvm.as_fd(), machine_type).map_err(|e| Error::CreateVm { source: io(e) })
}
