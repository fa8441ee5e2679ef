// SPDX-License-Identifier: GPL-2.0
//! KVM: the system, a KVM-HV VM with its RAM, its vCPUs and KVM's own TCE tables.

use std::fs::{
    File,
    OpenOptions, //
};
use std::os::fd::{
    AsFd,
    BorrowedFd,
    OwnedFd, //
};
use std::sync::Arc;

use rustix::io::Errno;
use tce_engine::window::WindowParams;

use crate::error::{
    ioctl,
    Error,
    Result, //
};
use crate::memory::GuestRam;
use tce_sys::{
    kvm,
    process,
    Mmap, //
};
use tce_uapi::kvm::{
    CreateSpaprTce64,
    EnableCap,
    MemoryRegion,
    Regs,
    RunHeader,
    KVM_API_VERSION,
    KVM_CAP_PPC_ENABLE_HCALL,
    KVM_CAP_PPC_PAPR,
    KVM_EXIT_INTR,
    KVM_EXIT_PAPR_HCALL,
    KVM_VM_PPC_HV, //
};

/// `/dev/kvm`.
pub struct Kvm {
    fd: File,
}

impl Kvm {
    /// Opens `/dev/kvm` and checks the API version.
    pub fn open() -> Result<Kvm> {
        let fd = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map_err(|source| Error::OpenKvm { source })?;
        let version = kvm::api_version(fd.as_fd()).map_err(ioctl("KVM_GET_API_VERSION", ""))?;
        if version != KVM_API_VERSION {
            return Err(Error::ApiVersion { version });
        }
        Ok(Kvm { fd })
    }

    /// Creates a KVM-HV VM whose RAM is `ram`, in memory slot 0 at guest physical address 0.
    pub fn create_hv_vm(&self, ram: Arc<GuestRam>) -> Result<Vm> {
        let fd = kvm::create_vm(self.fd.as_fd(), KVM_VM_PPC_HV.into()).map_err(ioctl(
            "KVM_CREATE_VM",
            "type 1, KVM-HV; is kvm_hv loaded and the host running with cap-nested-hv=on?",
        ))?;
        let run_size =
            kvm::vcpu_mmap_size(self.fd.as_fd()).map_err(ioctl("KVM_GET_VCPU_MMAP_SIZE", ""))?;
        let region = MemoryRegion {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: ram.size(),
            userspace_addr: ram.host_addr(),
        };
        #[allow(unsafe_code)]
        // SAFETY: `region` names exactly the mapping of `ram`, which the VM keeps alive: the
        // returned `Vm` and every `Vcpu` hold a reference to it (see `Vm`'s invariant).
        let slot = unsafe { kvm::set_user_memory_region(fd.as_fd(), &region) };
        slot.map_err(ioctl(
            "KVM_SET_USER_MEMORY_REGION",
            "slot 0 at guest address 0",
        ))?;
        // INVARIANT: the slot maps `ram`, which `Vm` holds.
        Ok(Vm { fd, run_size, ram })
    }
}

/// A KVM-HV VM.
///
/// # Invariants
///
/// Memory slot 0 maps `ram`, which stays mapped while this value or any of its vCPUs exists.
/// Other holders of the VM (a duplicate file descriptor, a TCE table) are owned by the VMM,
/// which drops them before its RAM.
pub struct Vm {
    fd: OwnedFd,
    run_size: usize,
    ram: Arc<GuestRam>,
}

impl Vm {
    /// The VM's file descriptor, for ioctls this type does not wrap.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A duplicate of the VM's file descriptor, for the DDW shim's tables.
    pub fn dup_fd(&self) -> Result<OwnedFd> {
        process::dup(self.fd.as_fd()).map_err(ioctl("F_DUPFD_CLOEXEC", "of the VM descriptor"))
    }

    /// Fails with [`Error::MissingCap`] unless the VM has capability `cap`.
    pub fn require_cap(&self, name: &'static str, cap: u32, hint: &'static str) -> Result<()> {
        let n = kvm::check_extension(self.fd.as_fd(), cap)
            .map_err(ioctl("KVM_CHECK_EXTENSION", name))?;
        if n <= 0 {
            return Err(Error::MissingCap { name, cap, hint });
        }
        Ok(())
    }

    /// Lets the kernel answer hypercall `nr` (`KVM_CAP_PPC_ENABLE_HCALL`).
    pub fn enable_hcall(&self, nr: u64, name: &'static str) -> Result<()> {
        let cap = EnableCap {
            cap: KVM_CAP_PPC_ENABLE_HCALL,
            flags: 0,
            args: [nr, 1, 0, 0],
            pad: [0; 64],
        };
        kvm::enable_cap(self.fd.as_fd(), &cap).map_err(ioctl(
            "KVM_ENABLE_CAP",
            format!("KVM_CAP_PPC_ENABLE_HCALL for {name} ({nr:#x})"),
        ))
    }

    /// Creates one of KVM's own TCE tables (`KVM_CREATE_SPAPR_TCE_64`), returning its descriptor.
    pub fn create_spapr_tce_64(&self, p: &WindowParams) -> Result<OwnedFd> {
        let args = CreateSpaprTce64 {
            liobn: p.liobn,
            page_shift: p.page_shift,
            flags: 0,
            offset: p.offset,
            size: p.size,
        };
        kvm::create_spapr_tce_64(self.fd.as_fd(), &args).map_err(ioctl(
            "KVM_CREATE_SPAPR_TCE_64",
            format!(
                "LIOBN {:#x}, page shift {}, offset {:#x}, {:#x} entries",
                p.liobn, p.page_shift, p.offset, p.size
            ),
        ))
    }

    /// Creates vCPU `id` in PAPR mode and maps its `struct kvm_run`.
    pub fn create_vcpu(&self, id: u32) -> Result<Vcpu> {
        let fd = kvm::create_vcpu(self.fd.as_fd(), id)
            .map_err(ioctl("KVM_CREATE_VCPU", format!("vCPU {id}")))?;
        // KVM-HV refuses to run a vCPU that is not in PAPR mode (KVM_RUN fails with EINVAL).
        let papr = EnableCap {
            cap: KVM_CAP_PPC_PAPR,
            flags: 0,
            args: [0; 4],
            pad: [0; 64],
        };
        kvm::enable_cap(fd.as_fd(), &papr).map_err(ioctl(
            "KVM_ENABLE_CAP",
            format!("KVM_CAP_PPC_PAPR on vCPU {id}"),
        ))?;
        let run = Mmap::shared(fd.as_fd(), self.run_size).map_err(|e| Error::Map {
            what: format!("the kvm_run structure of vCPU {id}"),
            len: self.run_size,
            source: e.into(),
        })?;
        if run.len() < std::mem::size_of::<RunHeader>() {
            return Err(Error::Map {
                what: format!("the kvm_run structure of vCPU {id}"),
                len: run.len(),
                source: Errno::RANGE.into(),
            });
        }
        Ok(Vcpu {
            id,
            fd,
            run,
            _ram: self.ram.clone(),
        })
    }
}

/// Why `KVM_RUN` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// A hypercall left to user space: its number (r3) and arguments (r4 to r12).
    Hcall {
        /// The hypercall number.
        nr: u64,
        /// r4 to r12.
        args: [u64; 9],
    },
    /// Any other exit reason.
    Other(u32),
}

/// One vCPU.
pub struct Vcpu {
    id: u32,
    fd: OwnedFd,
    run: Mmap,
    _ram: Arc<GuestRam>,
}

// Byte offsets of the `struct kvm_run` fields the VMM uses.
const RUN_EXIT_REASON: u64 = std::mem::offset_of!(RunHeader, exit_reason) as u64;
const RUN_HCALL_NR: u64 = std::mem::offset_of!(RunHeader, hcall_nr) as u64;
const RUN_HCALL_RET: u64 = std::mem::offset_of!(RunHeader, hcall_ret) as u64;
const RUN_HCALL_ARGS: u64 = std::mem::offset_of!(RunHeader, hcall_args) as u64;

impl Vcpu {
    /// The vCPU's ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Reads the registers.
    pub fn regs(&self) -> Result<Regs> {
        kvm::get_regs(self.fd.as_fd()).map_err(ioctl("KVM_GET_REGS", format!("vCPU {}", self.id)))
    }

    /// Writes the registers.
    pub fn set_regs(&self, regs: &Regs) -> Result<()> {
        kvm::set_regs(self.fd.as_fd(), regs)
            .map_err(ioctl("KVM_SET_REGS", format!("vCPU {}", self.id)))
    }

    /// Runs the vCPU until it exits to user space for a reason other than a signal.
    pub fn run(&mut self) -> Result<Exit> {
        loop {
            match kvm::run(self.fd.as_fd()) {
                Ok(()) => {}
                Err(Errno::INTR) => continue,
                Err(e) => return Err(ioctl("KVM_RUN", format!("vCPU {}", self.id))(e)),
            }
            let reason = self.run.read_u32(RUN_EXIT_REASON).unwrap_or(u32::MAX);
            return Ok(match reason {
                KVM_EXIT_INTR => continue,
                KVM_EXIT_PAPR_HCALL => {
                    let nr = self.run.read_u64(RUN_HCALL_NR).unwrap_or(u64::MAX);
                    let mut args = [0u64; 9];
                    for (i, a) in args.iter_mut().enumerate() {
                        *a = self
                            .run
                            .read_u64(RUN_HCALL_ARGS + 8 * i as u64)
                            .unwrap_or(0);
                    }
                    Exit::Hcall { nr, args }
                }
                other => Exit::Other(other),
            });
        }
    }

    /// Sets the answer to the hypercall the vCPU exited for: r3 = `ret` and, if given,
    /// r4 = `r4`. The next [`Vcpu::run`] hands them to the guest; r5 to r12 keep the values
    /// the guest passed.
    pub fn reply(&mut self, ret: i64, r4: Option<u64>) {
        self.run.write_u64(RUN_HCALL_RET, ret as u64);
        if let Some(r4) = r4 {
            self.run.write_u64(RUN_HCALL_ARGS, r4);
        }
    }
}
