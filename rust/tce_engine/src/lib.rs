// SPDX-License-Identifier: GPL-2.0

//! The TCE engine: guest-view tables, hardware tables and the four TCE hypercalls.
//!
//! This crate is written once and compiled twice: as part of the `tce_accel` kernel module,
//! and as an ordinary crate for the simulator and the tests. It uses `core` only, allocates
//! through the traits of [`env`], and contains no `unsafe`.
//!
//! The modules refer to each other through `super::`, never `crate::`, so that the kernel
//! module can compile these same files as a submodule of its own crate.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod env;
pub mod hcall;
pub mod hwtable;
mod sparse;
pub mod tce;
pub mod window;
