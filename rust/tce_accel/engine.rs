// SPDX-License-Identifier: GPL-2.0

//! The portable TCE engine, compiled into the module from the very files user space uses.
//!
//! The engine lives in `rust/tce_engine/src/`; its modules refer to each other through
//! `super::`, so they work here as submodules of this one.
//!
//! Its API is `pub` because user space uses it as a crate; inside the module it is private,
//! and the module calls only part of it (its own hardware tables, `HwTable`, serve the KUnit
//! tests; attached VFIO groups bring the platform's, see `vfio.rs`). Hence `unreachable_pub`
//! and `dead_code` are allowed for these files, and only here.

#[allow(unreachable_pub, dead_code)]
#[path = "../tce_engine/src/env.rs"]
pub(crate) mod env;
#[allow(unreachable_pub, dead_code)]
#[path = "../tce_engine/src/hcall.rs"]
pub(crate) mod hcall;
#[allow(unreachable_pub, dead_code)]
#[path = "../tce_engine/src/hwtable.rs"]
pub(crate) mod hwtable;
#[allow(unreachable_pub, dead_code)]
#[path = "../tce_engine/src/sparse.rs"]
mod sparse;
#[allow(unreachable_pub, dead_code)]
#[path = "../tce_engine/src/tce.rs"]
pub(crate) mod tce;
#[allow(unreachable_pub, dead_code)]
#[path = "../tce_engine/src/window.rs"]
pub(crate) mod window;
