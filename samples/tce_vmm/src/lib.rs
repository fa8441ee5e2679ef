// SPDX-License-Identifier: GPL-2.0
//! `tce_vmm`: a sample VMM whose POWER guest issues the TCE hypercalls on three paths.
//!
//! The VMM ([`vmm::Vmm`]) creates a KVM-HV VM with 64 MiB of RAM and a tiny guest payload
//! (`guest/runner.S`), lets the kernel answer `H_PUT_TCE_INDIRECT` and `H_STUFF_TCE`, and gives
//! the guest three DMA windows with the same parameters: one backed by `tce_accel` through the
//! DDW shim (the guest creates it with `ibm,create-pe-dma-window`), one by KVM's own table,
//! and one only the VMM knows. It answers every TCE hypercall that exits to it with the
//! project's engine ([`hcall`] states the two rules).
//!
//! What a VMM author reads, in order: [`kvm`] (the VM, the vCPUs and their exits), [`vmm`] (the
//! shim on the PHB, RTAS, the vCPU loop), [`paths`] (the three kinds of window and the answer
//! to an exit), [`table`] (a kernel table mapped into the VMM). The `tce-vmm` command
//! (`src/main.rs`) puts them together in one short run. The test programs that check every
//! result against the simulator, time the paths and attack the module
//! (`tools/testing/tce-vmm-test`) build on this library.

#![deny(missing_docs)]
// `unsafe` lives in `tce_sys` (every system call), plus the one call in `kvm` that hands guest
// RAM to KVM, where the lifetime it needs is established.
#![deny(unsafe_code)]

pub mod error;
pub mod guest;
pub mod hcall;
pub mod kvm;
pub mod memory;
pub mod paths;
pub mod progress;
pub mod table;
pub mod vmm;
