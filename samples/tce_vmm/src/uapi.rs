// SPDX-License-Identifier: GPL-2.0
//! KVM's structures, ioctl numbers and constants of powerpc, as `rust/tce_uapi` defines them
//! for every program of the project.

pub use tce_uapi::kvm::*;
