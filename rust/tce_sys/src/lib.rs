// SPDX-License-Identifier: GPL-2.0
//! The one system-call layer of tce-accel's user-space programs: the shim, the sample VMM, its
//! tests and tce-init.
//!
//! [`tce_uapi`] defines what the kernel's interfaces look like; this crate calls them. Each
//! function is a typed, safe wrapper of one system call or ioctl, built on rustix, that returns
//! the kernel's answer as a [`SysResult`]; turning an errno into a program's own error, with
//! the context a user needs, is the caller's business ([`errno`] prints one the same way for
//! every program). This crate and rustix hold the `unsafe` code of all of them, each block
//! with the reason it is sound.
//!
//! | module | what it wraps |
//! |---|---|
//! | [`accel`] | `/dev/tce_accel` and its tables |
//! | [`kvm`] | `/dev/kvm`, VMs and vCPUs (powerpc) |
//! | [`vfio`] | VFIO containers and groups, sPAPR TCE IOMMU |
//! | [`Mmap`] | mappings of guest RAM, `kvm_run` and tables, read and written volatile or atomic |
//! | [`process`] | pidfds, the locked-memory limit, descriptors, the page size |
//! | [`Userfault`] | a userfaultfd, for tests of hypercalls that wait on guest RAM |
//! | [`init`] | what the PID 1 of a test VM does: mounts, module load, children, power-off |
//! | [`ioctl`] | the two argument shapes the ioctls above use, over rustix's encoders |

#![allow(unsafe_code)]

pub mod accel;
pub mod errno;
pub mod init;
pub mod ioctl;
pub mod kvm;
mod mmap;
pub mod process;
mod userfault;
pub mod vfio;

pub use ioctl::SysResult;
pub use mmap::Mmap;
pub use rustix::io::Errno;
pub use userfault::Userfault;
