// SPDX-License-Identifier: GPL-2.0
//! The user API the shim speaks: `tce_accel`'s, KVM's table ioctls and VFIO's sPAPR TCE API,
//! as `rust/tce_uapi` defines them (once, for every program of the project).

pub use tce_uapi::kvm::{
    KVMIO,
    KVM_CAP_SPAPR_TCE_64,
    KVM_CHECK_EXTENSION,
    KVM_CREATE_SPAPR_TCE_64,
    KVM_CREATE_VM, //
};
pub use tce_uapi::tce_accel::*;
pub use tce_uapi::vfio::*;
