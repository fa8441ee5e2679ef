// SPDX-License-Identifier: GPL-2.0

//! A simulated POWER host for the TCE engine: the library behind the `tce-sim` command.
//!
//! It implements the engine's environment traits with heap memory ([`host`], [`guest`]),
//! assembles a machine of tables, hardware tables, guest RAM and PHBs ([`machine`]), and
//! interprets the trace language of `tce-sim` ([`trace`]).

pub mod guest;
pub mod host;
pub mod machine;
pub mod model;
pub mod trace;
