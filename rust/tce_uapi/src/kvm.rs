// SPDX-License-Identifier: GPL-2.0
//! The KVM structures, ioctl numbers and constants of powerpc that a VMM of this project uses,
//! from `linux/kvm.h` and powerpc's `asm/kvm.h`.
//!
//! The ioctl numbers are computed with rustix's encoders, which know the architecture's layout
//! (powerpc: 13 size bits, direction NONE = 1, READ = 2, WRITE = 4 in the top three bits); a
//! unit test pins them for x86-64 and powerpc64.

use rustix::ioctl::{
    opcode,
    Opcode, //
};
use tce_engine::window::WindowParams;

/// The ioctl type of `/dev/kvm` (`KVMIO`).
pub const KVMIO: u8 = 0xAE;

/// The KVM API version every kernel since 2.6.22 reports.
pub const KVM_API_VERSION: i32 = 12;

/// `KVM_CREATE_VM` machine type for KVM-HV on powerpc (`KVM_VM_PPC_HV`).
pub const KVM_VM_PPC_HV: u32 = 1;

/// `KVM_EXIT_INTR`: `KVM_RUN` was interrupted by a signal.
pub const KVM_EXIT_INTR: u32 = 10;
/// `KVM_EXIT_PAPR_HCALL`: a hypercall the kernel left to user space.
pub const KVM_EXIT_PAPR_HCALL: u32 = 19;

/// `KVM_CAP_PPC_PAPR`: a vCPU runs a PAPR (pseries) guest; KVM-HV runs only those.
pub const KVM_CAP_PPC_PAPR: u32 = 68;
/// `KVM_CAP_PPC_ENABLE_HCALL`: in-kernel handling of a hypercall can be switched on.
pub const KVM_CAP_PPC_ENABLE_HCALL: u32 = 104;
/// `KVM_CAP_SPAPR_TCE_64`: `KVM_CREATE_SPAPR_TCE_64` exists.
pub const KVM_CAP_SPAPR_TCE_64: u32 = 125;

/// `struct kvm_userspace_memory_region`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryRegion {
    /// The slot number.
    pub slot: u32,
    /// `KVM_MEM_*` flags; none here.
    pub flags: u32,
    /// The guest physical address of the slot.
    pub guest_phys_addr: u64,
    /// The slot's size in bytes.
    pub memory_size: u64,
    /// The VMM's address of the slot's memory.
    pub userspace_addr: u64,
}

/// `struct kvm_enable_cap`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EnableCap {
    /// The capability.
    pub cap: u32,
    /// Must be 0.
    pub flags: u32,
    /// The capability's arguments.
    pub args: [u64; 4],
    /// Reserved.
    pub pad: [u8; 64],
}

/// `struct kvm_create_spapr_tce_64`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateSpaprTce64 {
    /// The LIOBN.
    pub liobn: u64,
    /// The IOMMU page shift.
    pub page_shift: u32,
    /// Must be 0.
    pub flags: u32,
    /// The window's first entry (bus address >> page shift).
    pub offset: u64,
    /// The number of entries.
    pub size: u64,
}

impl From<WindowParams> for CreateSpaprTce64 {
    fn from(p: WindowParams) -> Self {
        Self {
            liobn: p.liobn,
            page_shift: p.page_shift,
            flags: p.flags,
            offset: p.offset,
            size: p.size,
        }
    }
}

impl From<CreateSpaprTce64> for WindowParams {
    fn from(w: CreateSpaprTce64) -> Self {
        WindowParams {
            liobn: w.liobn,
            page_shift: w.page_shift,
            flags: w.flags,
            offset: w.offset,
            size: w.size,
        }
    }
}

/// `struct kvm_create_device`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CreateDevice {
    /// The device type (`KVM_DEV_TYPE_*`).
    pub kind: u32,
    /// Out: the device's file descriptor.
    pub fd: u32,
    /// `KVM_CREATE_DEVICE_TEST` or 0.
    pub flags: u32,
}

/// `struct kvm_device_attr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceAttr {
    /// Must be 0.
    pub flags: u32,
    /// The attribute group.
    pub group: u32,
    /// The attribute.
    pub attr: u64,
    /// The user address of the attribute's value.
    pub addr: u64,
}

/// `struct kvm_vfio_spapr_tce`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioSpaprTce {
    /// The VFIO group's file descriptor.
    pub groupfd: i32,
    /// The file descriptor of one of KVM's TCE tables.
    pub tablefd: i32,
}

/// `KVM_DEV_TYPE_VFIO`: the KVM-VFIO pseudo device.
pub const KVM_DEV_TYPE_VFIO: u32 = 4;
/// `KVM_DEV_VFIO_FILE` (formerly `KVM_DEV_VFIO_GROUP`): the attribute group of VFIO files.
pub const KVM_DEV_VFIO_FILE: u32 = 1;
/// `KVM_DEV_VFIO_FILE_ADD`: adds a VFIO group file to the VM.
pub const KVM_DEV_VFIO_FILE_ADD: u64 = 1;
/// `KVM_DEV_VFIO_FILE_DEL`: removes it.
pub const KVM_DEV_VFIO_FILE_DEL: u64 = 2;
/// `KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE`: attaches a group's hardware table to a KVM TCE table.
pub const KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE: u64 = 3;

/// powerpc's `struct kvm_regs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Regs {
    /// The program counter.
    pub pc: u64,
    /// The condition register.
    pub cr: u64,
    /// The count register.
    pub ctr: u64,
    /// The link register.
    pub lr: u64,
    /// The fixed-point exception register.
    pub xer: u64,
    /// The machine state register.
    pub msr: u64,
    /// SRR0.
    pub srr0: u64,
    /// SRR1.
    pub srr1: u64,
    /// The process ID register.
    pub pid: u64,
    /// SPRG0 to SPRG7.
    pub sprg: [u64; 8],
    /// The general-purpose registers.
    pub gpr: [u64; 32],
}

/// The start of `struct kvm_run`, up to the `papr_hcall` member of its exit union.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RunHeader {
    /// In: request an interrupt window (unused on powerpc).
    pub request_interrupt_window: u8,
    /// In: return from `KVM_RUN` at once.
    pub immediate_exit: u8,
    /// Padding.
    pub padding1: [u8; 6],
    /// Out: why `KVM_RUN` returned (`KVM_EXIT_*`).
    pub exit_reason: u32,
    /// Out: unused on powerpc.
    pub ready_for_interrupt_injection: u8,
    /// Out: unused on powerpc.
    pub if_flag: u8,
    /// Out: `KVM_RUN_*` flags.
    pub flags: u16,
    /// Unused on powerpc.
    pub cr8: u64,
    /// Unused on powerpc.
    pub apic_base: u64,
    /// `papr_hcall.nr`: the hypercall number (r3).
    pub hcall_nr: u64,
    /// `papr_hcall.ret`: the VMM's answer, put in r3 by the next `KVM_RUN`.
    pub hcall_ret: u64,
    /// `papr_hcall.args`: r4 to r12; the next `KVM_RUN` puts them back in r4 to r12.
    pub hcall_args: [u64; 9],
}

/// `KVM_GET_API_VERSION`: `_IO(KVMIO, 0x00)`.
pub const KVM_GET_API_VERSION: Opcode = opcode::none(KVMIO, 0x00);
/// `KVM_CREATE_VM`: `_IO(KVMIO, 0x01)`; the argument is the machine type.
pub const KVM_CREATE_VM: Opcode = opcode::none(KVMIO, 0x01);
/// `KVM_CHECK_EXTENSION`: `_IO(KVMIO, 0x03)`; the argument is the capability.
pub const KVM_CHECK_EXTENSION: Opcode = opcode::none(KVMIO, 0x03);
/// `KVM_GET_VCPU_MMAP_SIZE`: `_IO(KVMIO, 0x04)`.
pub const KVM_GET_VCPU_MMAP_SIZE: Opcode = opcode::none(KVMIO, 0x04);
/// `KVM_CREATE_VCPU`: `_IO(KVMIO, 0x41)`; the argument is the vCPU ID.
pub const KVM_CREATE_VCPU: Opcode = opcode::none(KVMIO, 0x41);
/// `KVM_SET_USER_MEMORY_REGION`: `_IOW(KVMIO, 0x46, struct kvm_userspace_memory_region)`.
pub const KVM_SET_USER_MEMORY_REGION: Opcode = opcode::write::<MemoryRegion>(KVMIO, 0x46);
/// `KVM_RUN`: `_IO(KVMIO, 0x80)`.
pub const KVM_RUN: Opcode = opcode::none(KVMIO, 0x80);
/// `KVM_GET_REGS`: `_IOR(KVMIO, 0x81, struct kvm_regs)`.
pub const KVM_GET_REGS: Opcode = opcode::read::<Regs>(KVMIO, 0x81);
/// `KVM_SET_REGS`: `_IOW(KVMIO, 0x82, struct kvm_regs)`.
pub const KVM_SET_REGS: Opcode = opcode::write::<Regs>(KVMIO, 0x82);
/// `KVM_ENABLE_CAP`: `_IOW(KVMIO, 0xa3, struct kvm_enable_cap)`.
pub const KVM_ENABLE_CAP: Opcode = opcode::write::<EnableCap>(KVMIO, 0xa3);
/// `KVM_CREATE_SPAPR_TCE_64`: `_IOW(KVMIO, 0xa8, struct kvm_create_spapr_tce_64)`.
pub const KVM_CREATE_SPAPR_TCE_64: Opcode = opcode::write::<CreateSpaprTce64>(KVMIO, 0xa8);

/// `KVM_CREATE_DEVICE`: `_IOWR(KVMIO, 0xe0, struct kvm_create_device)`.
pub const KVM_CREATE_DEVICE: Opcode = opcode::read_write::<CreateDevice>(KVMIO, 0xe0);
/// `KVM_SET_DEVICE_ATTR`: `_IOW(KVMIO, 0xe1, struct kvm_device_attr)`.
pub const KVM_SET_DEVICE_ATTR: Opcode = opcode::write::<DeviceAttr>(KVMIO, 0xe1);

const _: () = assert!(core::mem::size_of::<CreateDevice>() == 12);
const _: () = assert!(core::mem::size_of::<DeviceAttr>() == 24);
const _: () = assert!(core::mem::size_of::<VfioSpaprTce>() == 8);
const _: () = assert!(core::mem::size_of::<MemoryRegion>() == 32);
const _: () = assert!(core::mem::size_of::<EnableCap>() == 104);
const _: () = assert!(core::mem::size_of::<CreateSpaprTce64>() == 32);
const _: () = assert!(core::mem::size_of::<Regs>() == 392);
const _: () = assert!(core::mem::size_of::<RunHeader>() == 120);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_have_the_header_layout() {
        assert_eq!(core::mem::offset_of!(RunHeader, exit_reason), 8);
        assert_eq!(core::mem::offset_of!(RunHeader, hcall_nr), 32);
        assert_eq!(core::mem::offset_of!(RunHeader, hcall_ret), 40);
        assert_eq!(core::mem::offset_of!(RunHeader, hcall_args), 48);
        assert_eq!(core::mem::offset_of!(Regs, msr), 40);
        assert_eq!(core::mem::offset_of!(Regs, gpr), 136);
        assert_eq!(core::mem::offset_of!(EnableCap, args), 8);
        assert_eq!(core::mem::offset_of!(CreateSpaprTce64, offset), 16);
    }

    #[test]
    fn ioctl_numbers_are_pinned_for_this_architecture() {
        let got = [
            KVM_GET_API_VERSION,
            KVM_CREATE_VM,
            KVM_CHECK_EXTENSION,
            KVM_GET_VCPU_MMAP_SIZE,
            KVM_CREATE_VCPU,
            KVM_SET_USER_MEMORY_REGION,
            KVM_RUN,
            KVM_GET_REGS,
            KVM_SET_REGS,
            KVM_ENABLE_CAP,
            KVM_CREATE_SPAPR_TCE_64,
            KVM_CREATE_DEVICE,
            KVM_SET_DEVICE_ATTR,
        ]
        .map(|o| o as u64);
        // As the kernel headers of each architecture compute them (powerpc's kvm_regs size is
        // used on both, since that is the structure this VMM passes).
        #[cfg(target_arch = "x86_64")]
        let want = [
            0xAE00u64,
            0xAE01,
            0xAE03,
            0xAE04,
            0xAE41,
            0x4020_AE46,
            0xAE80,
            0x8188_AE81,
            0x4188_AE82,
            0x4068_AEA3,
            0x4020_AEA8,
            0xC00C_AEE0,
            0x4018_AEE1,
        ];
        #[cfg(target_arch = "powerpc64")]
        let want = [
            0x2000_AE00u64,
            0x2000_AE01,
            0x2000_AE03,
            0x2000_AE04,
            0x2000_AE41,
            0x8020_AE46,
            0x2000_AE80,
            0x4188_AE81,
            0x8188_AE82,
            0x8068_AEA3,
            0x8020_AEA8,
            0xC00C_AEE0,
            0x8018_AEE1,
        ];
        #[cfg(any(target_arch = "x86_64", target_arch = "powerpc64"))]
        assert_eq!(
            got.map(|v| format!("{v:#x}")),
            want.map(|v| format!("{v:#x}"))
        );
        #[cfg(not(any(target_arch = "x86_64", target_arch = "powerpc64")))]
        let _ = got;
    }
}
