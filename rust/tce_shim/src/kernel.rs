// SPDX-License-Identifier: GPL-2.0
//! The kernel backend: a KVM VM's TCE tables, read through `mmap`.
//!
//! Where the tce_accel module is loaded, tables are created through `/dev/tce_accel` and are
//! sparse: the module lists the pages that exist, and reading never allocates. Without the
//! module the backend falls back to KVM's own tables (`KVM_CREATE_SPAPR_TCE_64`), which KVM's C
//! code serves: they have no page list, so every page counts as present, and KVM allocates a
//! page on any access of the mapping, a read included. [`TableKind`] tells the two apart.

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

use std::sync::atomic::Ordering;

use rustix::io::Errno;
use tce_engine::window::WindowParams;
use tce_sys::{
    accel,
    kvm,
    process,
    Mmap, //
};

use crate::error::{
    Error,
    Result, //
};
use crate::table::{
    check_index,
    validate,
    Table,
    TableInfo,
    Tables, //
};
use crate::uapi::KVM_CAP_SPAPR_TCE_64;

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

/// Who serves a table, which decides what the backend can learn about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// The tce_accel module: `TCE_ACCEL_TABLE_INFO` and `TCE_ACCEL_TABLE_PAGES` answer, reads
    /// of absent pages allocate nothing. This includes tables created through KVM while the
    /// module serves KVM's tables (`takeover=1`).
    Module,
    /// KVM's C code (`arch/powerpc/kvm/book3s_64_vio.c`): no page list, every page counts as
    /// present, and any access of the mapping allocates the page it touches.
    Kvm,
}

/// A VM's TCE table: its file descriptor and, once needed, a shared mapping.
///
/// The mapping is created on the first entry access and removed when the value is dropped;
/// dropping the value also closes the file descriptor, which frees the table once no other
/// descriptor or mapping of it remains.
pub struct KernelTable {
    fd: OwnedFd,
    kind: TableKind,
    params: WindowParams,
    page_size: u64,
    mapping_pages: u64,
    mapping: OnceLock<Mmap>,
}

impl KernelTable {
    /// Takes a table file descriptor, such as one created by `TCE_ACCEL_CREATE_TABLE` or taken
    /// from a VMM with [`take_fd`], and checks that it is a table.
    pub fn from_fd(fd: OwnedFd) -> Result<KernelTable> {
        let info = accel::table_info(fd.as_fd()).map_err(|e| match e {
            Errno::NOTTY | Errno::INVAL | Errno::BADF => Error::NotATable { source: io(e) },
            e => Error::TableInfo { source: io(e) },
        })?;
        Self::new(
            fd,
            TableKind::Module,
            info.window.into(),
            info.mapping_pages,
        )
    }

    /// Takes a table file descriptor that `KVM_CREATE_SPAPR_TCE_64` returned for window
    /// `params`. The module's tables answer `TCE_ACCEL_TABLE_INFO` and are taken as
    /// [`TableKind::Module`] (their window must be `params`); KVM's own do not, and are taken
    /// as [`TableKind::Kvm`], with the geometry of KVM's mapping: one u64 per entry, whole
    /// host pages.
    pub fn from_kvm_fd(fd: OwnedFd, params: WindowParams) -> Result<KernelTable> {
        match accel::table_info(fd.as_fd()) {
            Ok(info) => {
                let window = WindowParams::from(info.window);
                if window != params {
                    return Err(Error::BadGeometry {
                        size: window.size,
                        mapping_pages: info.mapping_pages,
                        page_size: process::page_size() as u64,
                    });
                }
                Self::new(fd, TableKind::Module, window, info.mapping_pages)
            }
            Err(Errno::NOTTY) => {
                let pages = params.size.div_ceil(process::page_size() as u64 / 8);
                Self::new(fd, TableKind::Kvm, params, pages)
            }
            Err(e) => Err(Error::TableInfo { source: io(e) }),
        }
    }

    /// Checks that a mapping of `mapping_pages` host pages holds the window and fits a usize.
    fn new(
        fd: OwnedFd,
        kind: TableKind,
        params: WindowParams,
        mapping_pages: u64,
    ) -> Result<KernelTable> {
        let page_size = process::page_size() as u64;
        let fits = mapping_pages
            .checked_mul(page_size / 8)
            .is_some_and(|n| n >= params.size);
        if !fits || usize::try_from(mapping_pages.saturating_mul(page_size)).is_err() {
            return Err(Error::BadGeometry {
                size: params.size,
                mapping_pages,
                page_size,
            });
        }
        Ok(KernelTable {
            fd,
            kind,
            params,
            page_size,
            mapping_pages,
            mapping: OnceLock::new(),
        })
    }

    /// Who serves the table.
    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// Returns the table's file descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Returns the mapping, creating it on first use.
    ///
    /// Every entry of the window lies inside it; the callers check indexes against the window
    /// before they read or write.
    fn mapping(&self) -> Result<&Mmap> {
        if let Some(m) = self.mapping.get() {
            return Ok(m);
        }
        // `from_fd` checked that the length fits a usize.
        let len = (self.mapping_pages * self.page_size) as usize;
        if self
            .params
            .size
            .checked_mul(8)
            .is_none_or(|n| n > len as u64)
        {
            return Err(Error::MapTable {
                source: io(Errno::INVAL),
            });
        }
        let m =
            Mmap::shared(self.fd.as_fd(), len).map_err(|e| Error::MapTable { source: io(e) })?;
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
        if self.kind == TableKind::Kvm {
            // KVM reports nothing; what it allocates and charges follows from the window. It
            // also charges its header and page-pointer array, whose size is KVM's own.
            return Ok(TableInfo {
                params: self.params,
                host_page_size: self.page_size,
                mapping_pages: self.mapping_pages,
                present_pages: self.mapping_pages,
                locked_pages: self.mapping_pages,
            });
        }
        let info =
            accel::table_info(self.fd.as_fd()).map_err(|e| Error::TableInfo { source: io(e) })?;
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
        if self.kind == TableKind::Kvm {
            // No page list: every page may hold entries, and reading it allocates it anyway.
            let mut n = 0;
            for (slot, page) in out.iter_mut().zip(start..self.mapping_pages) {
                *slot = page;
                n += 1;
            }
            return Ok(n);
        }
        let n = accel::table_pages(self.fd.as_fd(), start, out)
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
            *slot = mapping
                .word(first + i as u64)
                .map_or(0, |w| w.load(Ordering::Acquire));
        }
        Ok(count)
    }

    fn read(&self, index: u64) -> Result<u64> {
        check_index(index, self.params.size)?;
        if !self.exists(index / self.entries_per_page())? {
            return Ok(0);
        }
        Ok(self
            .mapping()?
            .word(index)
            .map_or(0, |w| w.load(Ordering::Acquire)))
    }

    fn write(&self, index: u64, tce: u64) -> Result<()> {
        check_index(index, self.params.size)?;
        if tce == 0 && !self.exists(index / self.entries_per_page())? {
            return Ok(());
        }
        if let Some(w) = self.mapping()?.word(index) {
            w.store(tce, Ordering::Release);
        }
        Ok(())
    }
}

/// The TCE tables of one KVM VM.
pub struct KernelTables {
    /// `/dev/tce_accel`, or `None` when the tables are created with `KVM_CREATE_SPAPR_TCE_64`.
    dev: Option<File>,
    vm: OwnedFd,
    tables: BTreeMap<u64, Arc<KernelTable>>,
}

impl KernelTables {
    /// The tables of the VM of `vm` (a KVM VM file descriptor): the module's where
    /// `/dev/tce_accel` exists ([`KernelTables::open_module`]), else KVM's own
    /// ([`KernelTables::open_kvm`]).
    pub fn open(vm: OwnedFd) -> Result<KernelTables> {
        if device_present() {
            Self::open_module(vm)
        } else {
            Self::open_kvm(vm)
        }
    }

    /// The tables of the VM of `vm`, created through `/dev/tce_accel`; fails with
    /// [`Error::OpenDevice`] where the module is not loaded.
    pub fn open_module(vm: OwnedFd) -> Result<KernelTables> {
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(DEVICE_PATH)
            .map_err(|source| Error::OpenDevice {
                path: DEVICE_PATH.into(),
                source,
            })?;
        Ok(KernelTables {
            dev: Some(dev),
            vm,
            tables: BTreeMap::new(),
        })
    }

    /// The tables of the VM of `vm`, created with KVM's `KVM_CREATE_SPAPR_TCE_64`: KVM's C
    /// code serves them, or the module where it is loaded with `takeover=1`. Fails with
    /// [`Error::NoTables`] where the VM lacks `KVM_CAP_SPAPR_TCE_64` (any host but POWER).
    pub fn open_kvm(vm: OwnedFd) -> Result<KernelTables> {
        match kvm::check_extension(vm.as_fd(), KVM_CAP_SPAPR_TCE_64) {
            Ok(n) if n > 0 => Ok(KernelTables {
                dev: None,
                vm,
                tables: BTreeMap::new(),
            }),
            Ok(_) => Err(Error::NoTables { source: None }),
            Err(e) => Err(Error::NoTables {
                source: Some(io(e)),
            }),
        }
    }

    /// Tells whether new tables are created through `/dev/tce_accel` (`true`) or with
    /// `KVM_CREATE_SPAPR_TCE_64`.
    pub fn through_module(&self) -> bool {
        self.dev.is_some()
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
        let created = match &self.dev {
            Some(dev) => accel::create_table(dev.as_fd(), self.vm.as_fd(), params.into()),
            None => kvm::create_spapr_tce_64(self.vm.as_fd(), &params.into()),
        };
        let fd = created.map_err(|e| match e {
            Errno::BUSY => Error::LiobnBusy { liobn },
            Errno::NOMEM => Error::NoMemory { liobn },
            e => Error::CreateTable {
                liobn,
                source: io(e),
            },
        })?;
        // On failure the new descriptor is dropped here, which frees the table.
        let table = match self.dev {
            Some(_) => KernelTable::from_fd(fd)?,
            None => KernelTable::from_kvm_fd(fd, params)?,
        };
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
    let pidfd = process::pidfd_open(pid)
        .ok_or(Error::BadPid { pid })?
        .map_err(|e| Error::OpenProcess { pid, source: io(e) })?;
    process::pidfd_getfd(pidfd.as_fd(), fd).map_err(|e| Error::TakeFd {
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
    kvm::create_vm(kvm.as_fd(), machine_type.into()).map_err(|e| Error::CreateVm { source: io(e) })
}
