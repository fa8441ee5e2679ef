// SPDX-License-Identifier: GPL-2.0
//! A model of the PAPR Dynamic DMA Window (DDW) RTAS calls as a VMM answers them, for one or more PHBs.
//!
//! The crate answers `ibm,query-pe-dma-window`, `ibm,create-pe-dma-window`,
//! `ibm,remove-pe-dma-window` and `ibm,reset-pe-dma-window`. It keeps, for
//! each PHB, which window slots are active and where their windows sit on the
//! bus, but it never builds a table itself: every table is created and
//! removed through a [`WindowBackend`] that the caller implements (the
//! simulator creates engine tables, a kernel shim creates kernel tables).
//!
//! The model is plain data mutated through `&mut self`. The caller must hold
//! its own lock around every call into [`Ddw`], so that, for example, a
//! remove and a create on the same PHB can never interleave; the model does
//! no locking of its own.
//!
//! The library uses `core` only: no allocation, no `unsafe`, no dependencies.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod cells;
mod ddw;
pub mod phb;
pub mod rtas;

#[cfg(test)]
mod tests;

pub use cells::{CellError, RtasFrame};
pub use ddw::{AddPhbError, Ddw};
pub use phb::{DescError, PageShifts, PhbDesc, WindowGeometry, WindowInfo};
pub use rtas::{RtasCall, RtasStatus};

/// An error reported by a [`WindowBackend`]; the model never interprets it.
///
/// The value is whatever the backend finds useful for its logs, typically a
/// negative errno. The model only passes it back to the caller of
/// [`Ddw::add_phb`] and otherwise turns any backend failure into a hardware
/// error for the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendError(pub i32);

/// Creates and removes the tables that back DMA windows.
///
/// The model calls [`create_table`](Self::create_table) only for a LIOBN that
/// has no table (a window is always removed before its slot is reused), and
/// [`remove_table`](Self::remove_table) only for a LIOBN whose table it
/// created and has not removed yet.
pub trait WindowBackend {
    /// Creates an empty table for `liobn` with pages of `1 << page_shift`
    /// bytes, whose first entry is `offset` (the window's bus address shifted
    /// right by `page_shift`) and which holds `size` entries.
    ///
    /// The table is empty by construction, so an implementation must not walk
    /// ("replay") its entries: creating a window costs the same whatever its
    /// size. On failure the backend must leave no table behind for `liobn`.
    fn create_table(
        &mut self,
        liobn: u32,
        page_shift: u32,
        offset: u64,
        size: u64,
    ) -> Result<(), BackendError>;

    /// Removes the table for `liobn`; this cannot fail.
    fn remove_table(&mut self, liobn: u32);
}
