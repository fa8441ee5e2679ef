// SPDX-License-Identifier: GPL-2.0
//! The KVM ioctls of `/dev/kvm`, a VM and a vCPU that a POWER VMM needs (powerpc's `struct
//! kvm_regs`, the sPAPR TCE table, the VFIO device).

use std::os::fd::{
    BorrowedFd,
    OwnedFd, //
};

use rustix::io::Errno;
use tce_uapi::kvm::{
    CreateDevice,
    CreateSpaprTce64,
    DeviceAttr,
    EnableCap,
    MemoryRegion,
    Regs,
    KVM_CHECK_EXTENSION,
    KVM_CREATE_DEVICE,
    KVM_CREATE_SPAPR_TCE_64,
    KVM_CREATE_VCPU,
    KVM_CREATE_VM,
    KVM_ENABLE_CAP,
    KVM_GET_API_VERSION,
    KVM_GET_REGS,
    KVM_GET_VCPU_MMAP_SIZE,
    KVM_RUN,
    KVM_SET_DEVICE_ATTR,
    KVM_SET_REGS,
    KVM_SET_USER_MEMORY_REGION, //
};

use crate::ioctl::{
    self,
    ptr_ioctl,
    IoctlOutput,
    Opcode,
    SysResult, //
};

/// Runs one of this module's ioctls that take an integer argument.
fn iint(fd: BorrowedFd<'_>, opcode: Opcode, value: usize) -> SysResult<IoctlOutput> {
    // SAFETY: every opcode this module passes here takes an integer or no argument.
    unsafe { ioctl::int_ioctl(fd, opcode, value) }
}

/// Takes ownership of the file descriptor one of this module's ioctls created.
fn ofd(raw: IoctlOutput) -> SysResult<OwnedFd> {
    // SAFETY: this module passes only the results of ioctls that create a file (KVM_CREATE_VM,
    // KVM_CREATE_VCPU, KVM_CREATE_SPAPR_TCE_64, KVM_CREATE_DEVICE).
    unsafe { ioctl::owned_fd(raw) }
}

/// `KVM_GET_API_VERSION` on `/dev/kvm`.
pub fn api_version(kvm: BorrowedFd<'_>) -> SysResult<i32> {
    iint(kvm, KVM_GET_API_VERSION, 0)
}

/// `KVM_CHECK_EXTENSION` on `/dev/kvm` or a VM: 0 if `cap` is missing, else its value.
pub fn check_extension(fd: BorrowedFd<'_>, cap: u32) -> SysResult<i32> {
    iint(fd, KVM_CHECK_EXTENSION, cap as usize)
}

/// `KVM_CREATE_VM` with a machine type (an `unsigned long`; 0 is the architecture's default).
pub fn create_vm(kvm: BorrowedFd<'_>, machine_type: u64) -> SysResult<OwnedFd> {
    let machine_type = usize::try_from(machine_type).map_err(|_| Errno::INVAL)?;
    ofd(iint(kvm, KVM_CREATE_VM, machine_type)?)
}

/// `KVM_GET_VCPU_MMAP_SIZE`: the size of a vCPU's `struct kvm_run` mapping.
pub fn vcpu_mmap_size(kvm: BorrowedFd<'_>) -> SysResult<usize> {
    let n = iint(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)?;
    usize::try_from(n).map_err(|_| Errno::INVAL)
}

/// `KVM_CREATE_VCPU` with a vCPU ID.
pub fn create_vcpu(vm: BorrowedFd<'_>, id: u32) -> SysResult<OwnedFd> {
    ofd(iint(vm, KVM_CREATE_VCPU, id as usize)?)
}

/// `KVM_SET_USER_MEMORY_REGION`.
///
/// # Safety
///
/// `region.userspace_addr` must be the start of a mapping of at least `region.memory_size`
/// bytes that stays mapped while the VM exists (the guest reads and writes it).
pub unsafe fn set_user_memory_region(vm: BorrowedFd<'_>, region: &MemoryRegion) -> SysResult<()> {
    let mut region = *region;
    // SAFETY: the ioctl takes a `struct kvm_userspace_memory_region`, which `MemoryRegion` is;
    // the caller guarantees the memory it names.
    unsafe { ptr_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mut region)? };
    Ok(())
}

/// `KVM_ENABLE_CAP` on a VM or a vCPU.
pub fn enable_cap(fd: BorrowedFd<'_>, cap: &EnableCap) -> SysResult<()> {
    let mut cap = *cap;
    // SAFETY: the ioctl takes a `struct kvm_enable_cap`, which `EnableCap` is.
    unsafe { ptr_ioctl(fd, KVM_ENABLE_CAP, &mut cap)? };
    Ok(())
}

/// `KVM_CREATE_SPAPR_TCE_64` on a VM: one of KVM's own TCE tables (or the tce_accel module's,
/// where the module is loaded with `takeover=1`); returns the table's file descriptor.
pub fn create_spapr_tce_64(vm: BorrowedFd<'_>, args: &CreateSpaprTce64) -> SysResult<OwnedFd> {
    let mut args = *args;
    // SAFETY: the ioctl takes a `struct kvm_create_spapr_tce_64`, which `CreateSpaprTce64` is.
    let raw = unsafe { ptr_ioctl(vm, KVM_CREATE_SPAPR_TCE_64, &mut args)? };
    ofd(raw)
}

/// `KVM_CREATE_DEVICE` of type `kind`: returns the device's file descriptor.
pub fn create_device(vm: BorrowedFd<'_>, kind: u32) -> SysResult<OwnedFd> {
    let mut args = CreateDevice {
        kind,
        fd: 0,
        flags: 0,
    };
    // SAFETY: the ioctl takes a `struct kvm_create_device`, which `CreateDevice` is.
    unsafe { ptr_ioctl(vm, KVM_CREATE_DEVICE, &mut args)? };
    let raw = i32::try_from(args.fd).map_err(|_| Errno::BADF)?;
    ofd(raw)
}

/// `KVM_SET_DEVICE_ATTR` on a device: attribute `attr` of `group`, whose value is `value`.
pub fn set_device_attr<T>(
    device: BorrowedFd<'_>,
    group: u32,
    attr: u64,
    value: &T,
) -> SysResult<()> {
    let mut args = DeviceAttr {
        flags: 0,
        group,
        attr,
        addr: std::ptr::from_ref(value) as u64,
    };
    // SAFETY: the ioctl takes a `struct kvm_device_attr`, which `DeviceAttr` is; the kernel
    // reads the attribute's value from `addr`, which points to `value` for the whole call.
    unsafe { ptr_ioctl(device, KVM_SET_DEVICE_ATTR, &mut args)? };
    Ok(())
}

/// `KVM_GET_REGS` on a vCPU.
pub fn get_regs(vcpu: BorrowedFd<'_>) -> SysResult<Regs> {
    let mut regs = Regs::default();
    // SAFETY: the ioctl fills a `struct kvm_regs` (powerpc), which `Regs` is; every bit
    // pattern is a valid `Regs`.
    unsafe { ptr_ioctl(vcpu, KVM_GET_REGS, &mut regs)? };
    Ok(regs)
}

/// `KVM_SET_REGS` on a vCPU.
pub fn set_regs(vcpu: BorrowedFd<'_>, regs: &Regs) -> SysResult<()> {
    let mut regs = *regs;
    // SAFETY: the ioctl reads a `struct kvm_regs` (powerpc), which `Regs` is.
    unsafe { ptr_ioctl(vcpu, KVM_SET_REGS, &mut regs)? };
    Ok(())
}

/// `KVM_RUN` on a vCPU; the exit is described in its `struct kvm_run` mapping.
pub fn run(vcpu: BorrowedFd<'_>) -> SysResult<()> {
    iint(vcpu, KVM_RUN, 0).map(drop)
}
