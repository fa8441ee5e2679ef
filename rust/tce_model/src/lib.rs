// SPDX-License-Identifier: GPL-2.0

//! A simulated POWER host for the TCE engine and the reference model of its rules: the library
//! behind the `tce-sim` command (`tools/tce-sim`), the shim's simulated backend, the sample VMM's
//! checks and the differential tests.
//!
//! It implements the engine's environment traits with heap memory ([`host`], [`guest`]),
//! assembles a machine of tables, hardware tables, guest RAM and PHBs ([`machine`]), and
//! interprets the trace language of `tce-sim` ([`trace`]).

pub mod guest;
pub mod host;
pub mod machine;
pub mod model;
pub mod trace;
