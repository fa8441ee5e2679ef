// SPDX-License-Identifier: GPL-2.0

//! The user API that tce-accel's programs speak, defined once: the module's own
//! (`include/uapi/tce_accel.h`, [`tce_accel`]), KVM's structures and ioctls of powerpc
//! ([`kvm`]) and VFIO's sPAPR TCE API ([`vfio`]).
//!
//! The ioctl numbers are computed with rustix's `_IO`/`_IOW`/`_IOR`/`_IOWR` encoders, which know
//! how each architecture lays an ioctl number out (powerpc puts the direction bits elsewhere
//! than x86, and its `_IO` sets a direction bit too). Every structure's size is asserted at
//! compile time and its field offsets by unit tests, so a build for x86-64 or for ppc64le that
//! disagrees with the headers fails; `kvm`'s test pins the ioctl numbers of both.

#![forbid(unsafe_code)]

pub mod kvm;
pub mod tce_accel;
pub mod vfio;
