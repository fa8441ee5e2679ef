// SPDX-License-Identifier: GPL-2.0
//! The VMM side of dynamic DMA windows: RTAS calls answered with tce_accel tables, and sparse migration.
//!
//! A VMM that runs POWER guests answers four RTAS calls for each PHB:
//! `ibm,query-pe-dma-window`, `ibm,create-pe-dma-window`, `ibm,remove-pe-dma-window` and
//! `ibm,reset-pe-dma-window`. [`Shim`] does that with the DDW model of `tce_ddw_model`: it decodes
//! the guest's big-endian cells, checks them, and creates or removes one guest-view TCE table
//! per window through a [`Tables`] backend:
//!
//! - [`KernelTables`]: tables of a KVM VM file descriptor, read and written through a shared
//!   mapping: the `tce_accel` kernel module's (`/dev/tce_accel`), or KVM's own
//!   (`KVM_CREATE_SPAPR_TCE_64`) where the module is not loaded;
//! - [`SimTables`]: the same engine tables in this process, on tce-sim's simulated host, for
//!   tests, tools and machines without the module.
//!
//! [`HwTables`] wraps a backend so that the windows of a PHB with VFIO groups also get hardware
//! DMA windows ([`vfio`]: the sPAPR TCE v2 IOMMU) with the groups attached to their tables, so
//! that the guest's hypercalls update the hardware tables in the kernel.
//!
//! Creating a window only creates its table: no entry is touched, so a 2^31-entry window costs
//! what a 16-entry one costs. [`save`] and [`restore`] migrate a table as its populated entries
//! only ([`SavedTable`], with a small versioned binary format), using the list of existing
//! pages (`TCE_ACCEL_TABLE_PAGES`) so that pages the guest never used are never touched.
//!
//! All system calls are in one private module, and all `unsafe` code in it and in [`ioctl`], the
//! ioctl argument adapters that VMMs built on this crate share; every error is an [`Error`].

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod error;
pub mod hw;
pub mod kernel;
pub mod saved;
mod shim;
pub mod sim;
pub mod table;
pub mod uapi;
pub mod vfio;

#[cfg(test)]
mod tests;

pub use error::{
    Error,
    Result, //
};
pub use hw::{
    HwTables,
    HwWindowInfo,
    HwWindows, //
};
pub use kernel::{
    KernelTable,
    KernelTables,
    TableKind, //
};
pub use saved::{
    restore,
    restore_as,
    save,
    save_with_stats,
    SaveStats,
    SavedTable, //
};
pub use shim::{
    Shim,
    MAX_PHBS, //
};
pub use sim::{
    SimTable,
    SimTables, //
};
pub use table::{
    Table,
    TableInfo,
    Tables, //
};
pub use tce_ddw_model::{
    PhbDesc,
    RtasCall,
    RtasStatus,
    WindowInfo, //
};
pub use tce_engine::window::WindowParams;
