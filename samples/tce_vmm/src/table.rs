// SPDX-License-Identifier: GPL-2.0
//! A guest-view TCE table that lives in the kernel, reached by the VMM through a shared mapping.
//!
//! Both kinds of kernel table can be mapped: a `tce_accel` table (`/dev/tce_accel`, made by
//! the DDW shim) and one of KVM's own (`KVM_CREATE_SPAPR_TCE_64`). The mapping is how the VMM
//! writes the entries of the hypercalls that the kernel leaves to it, and how it reads a table
//! back for the checks. Entries are host-endian u64 values, accessed atomically, since the
//! kernel writes them too.

use std::os::fd::{
    AsFd,
    BorrowedFd,
    OwnedFd, //
};
use std::sync::Arc;

use tce_engine::window::WindowParams;
use tce_shim::{
    KernelTable,
    Table, //
};

use crate::error::{
    Error,
    Result, //
};
use tce_sys::{
    process,
    Mmap, //
};

/// What keeps a kernel table alive.
pub enum Owner {
    /// A `tce_accel` table, shared with the DDW shim. The table also lists its existing pages,
    /// so that reading it back touches no page the guest never used.
    Accel(Arc<KernelTable>),
    /// A table of KVM's (`KVM_CREATE_SPAPR_TCE_64`).
    Kvm(OwnedFd),
}

impl Owner {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Owner::Accel(t) => t.fd(),
            Owner::Kvm(fd) => fd.as_fd(),
        }
    }
}

/// A kernel table and the VMM's mapping of it.
///
/// Dropping it unmaps the table and drops the VMM's reference; the kernel frees the table
/// (and forgets its LIOBN) once no descriptor or mapping of it remains.
pub struct MappedTable {
    // Declared first so that it is unmapped before the owner's descriptor is closed.
    map: Mmap,
    owner: Owner,
    params: WindowParams,
    per_page: u64,
}

impl MappedTable {
    /// Maps the table of `owner`, whose window is `params`.
    pub fn new(owner: Owner, params: WindowParams) -> Result<MappedTable> {
        let page = process::page_size() as u64;
        let per_page = page / 8;
        let len = params
            .size
            .div_ceil(per_page)
            .checked_mul(page)
            .and_then(|n| usize::try_from(n).ok());
        let what = || format!("the TCE table of LIOBN {:#x}", params.liobn);
        let len = len.ok_or_else(|| Error::Map {
            what: what(),
            len: usize::MAX,
            source: rustix::io::Errno::FBIG.into(),
        })?;
        let map = Mmap::shared(owner.fd(), len).map_err(|e| Error::Map {
            what: what(),
            len,
            source: e.into(),
        })?;
        Ok(MappedTable {
            map,
            owner,
            params,
            per_page,
        })
    }

    /// The window.
    pub fn params(&self) -> &WindowParams {
        &self.params
    }

    /// Reads window-relative entry `rel`, which the caller checked is inside the window.
    pub fn load(&self, rel: u64) -> u64 {
        self.map
            .word(rel)
            .map(|w| w.load(std::sync::atomic::Ordering::Acquire))
            .unwrap_or(0)
    }

    /// Writes window-relative entry `rel`, which the caller checked is inside the window.
    pub fn store(&self, rel: u64, tce: u64) {
        if let Some(w) = self.map.word(rel) {
            w.store(tce, std::sync::atomic::Ordering::Release);
        }
    }

    /// Writes `value` into entries `[rel, rel + n)`, which the caller checked are inside the
    /// window. A zero value skips the pages a `tce_accel` table does not have.
    pub fn fill(&self, rel: u64, n: u64, value: u64) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let last = rel + (n - 1);
        if value != 0 {
            for e in rel..=last {
                self.store(e, value);
            }
            return Ok(());
        }
        for page in self.pages(rel / self.per_page, last / self.per_page)? {
            let lo = rel.max(page * self.per_page);
            let hi = last.min((page + 1) * self.per_page - 1);
            for e in lo..=hi {
                self.store(e, 0);
            }
        }
        Ok(())
    }

    /// The host pages in `[first, last]` that may hold a non-zero entry: the existing ones of a
    /// `tce_accel` table, all of them for a KVM table (whose pages cannot be listed).
    fn pages(&self, first: u64, last: u64) -> Result<Vec<u64>> {
        let Owner::Accel(table) = &self.owner else {
            return Ok((first..=last).collect());
        };
        let mut out = Vec::new();
        let mut buf = [0u64; 256];
        let mut start = first;
        loop {
            let n = table.existing_pages(start, &mut buf)?;
            for &p in buf[..n].iter().take_while(|&&p| p <= last) {
                out.push(p);
            }
            match buf[..n].last() {
                Some(&p) if n == buf.len() && p < last => start = p + 1,
                _ => return Ok(out),
            }
        }
    }

    /// The non-zero entries, as (window-relative index, value), in order.
    pub fn entries(&self) -> Result<Vec<(u64, u64)>> {
        let size = self.params.size;
        let mut out = Vec::new();
        for page in self.pages(0, (size - 1) / self.per_page)? {
            let end = ((page + 1) * self.per_page).min(size);
            for e in page * self.per_page..end {
                let v = self.load(e);
                if v != 0 {
                    out.push((e, v));
                }
            }
        }
        Ok(out)
    }
}
