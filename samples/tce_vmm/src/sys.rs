// SPDX-License-Identifier: GPL-2.0
//! Every system call of the VMM: the KVM ioctls, memory mappings and resource limits.
//!
//! This is the only module with `unsafe` code. Each function returns the raw result; the
//! callers turn failures into [`crate::error::Error`], naming the ioctl.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::fd::{
    AsFd,
    BorrowedFd,
    OwnedFd, //
};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use rustix::io::Errno;
use rustix::mm::{
    MapFlags,
    ProtFlags, //
};
use rustix::process::{
    Resource,
    Rlimit, //
};
use tce_shim::ioctl::{
    self,
    ptr_ioctl,
    IoctlOutput,
    Opcode,
    SysResult, //
};

use crate::uapi::{
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

/// Runs an ioctl with an integer argument.
fn int_ioctl(fd: BorrowedFd<'_>, opcode: Opcode, value: usize) -> SysResult<IoctlOutput> {
    // SAFETY: every opcode passed here (by this module's functions) takes an integer or no
    // argument.
    unsafe { ioctl::int_ioctl(fd, opcode, value) }
}

/// Takes ownership of a file descriptor that an ioctl created.
fn owned_fd(raw: IoctlOutput) -> SysResult<OwnedFd> {
    // SAFETY: this module passes only the results of ioctls that create a file (KVM_CREATE_VM,
    // KVM_CREATE_VCPU, KVM_CREATE_SPAPR_TCE_64).
    unsafe { ioctl::owned_fd(raw) }
}

/// `KVM_GET_API_VERSION` on `/dev/kvm`.
pub fn get_api_version(kvm: BorrowedFd<'_>) -> SysResult<i32> {
    int_ioctl(kvm, KVM_GET_API_VERSION, 0)
}

/// `KVM_CHECK_EXTENSION` on `/dev/kvm` or a VM: 0 if `cap` is missing, else its value.
pub fn check_extension(fd: BorrowedFd<'_>, cap: u32) -> SysResult<i32> {
    int_ioctl(fd, KVM_CHECK_EXTENSION, cap as usize)
}

/// `KVM_CREATE_VM` with a machine type.
pub fn create_vm(kvm: BorrowedFd<'_>, machine_type: u32) -> SysResult<OwnedFd> {
    owned_fd(int_ioctl(kvm, KVM_CREATE_VM, machine_type as usize)?)
}

/// `KVM_GET_VCPU_MMAP_SIZE`: the size of a vCPU's `struct kvm_run` mapping.
pub fn vcpu_mmap_size(kvm: BorrowedFd<'_>) -> SysResult<usize> {
    let n = int_ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)?;
    usize::try_from(n).map_err(|_| Errno::INVAL)
}

/// `KVM_CREATE_VCPU` with a vCPU ID.
pub fn create_vcpu(vm: BorrowedFd<'_>, id: u32) -> SysResult<OwnedFd> {
    owned_fd(int_ioctl(vm, KVM_CREATE_VCPU, id as usize)?)
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

/// `KVM_CREATE_SPAPR_TCE_64`: returns the table's file descriptor.
pub fn create_spapr_tce_64(vm: BorrowedFd<'_>, args: &CreateSpaprTce64) -> SysResult<OwnedFd> {
    let mut args = *args;
    // SAFETY: the ioctl takes a `struct kvm_create_spapr_tce_64`, which `CreateSpaprTce64` is.
    let raw = unsafe { ptr_ioctl(vm, KVM_CREATE_SPAPR_TCE_64, &mut args)? };
    owned_fd(raw)
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
    owned_fd(raw)
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
    int_ioctl(vcpu, KVM_RUN, 0).map(drop)
}

/// Raises this process's locked-memory limit as far as it may go: TCE tables are charged to it.
pub fn raise_memlock_limit() -> SysResult<()> {
    let now = rustix::process::getrlimit(Resource::Memlock);
    let target = Rlimit {
        current: now.maximum,
        maximum: now.maximum,
    };
    rustix::process::setrlimit(Resource::Memlock, target)
}

/// Duplicates a file descriptor (close-on-exec).
/// This process's locked memory in kB (`VmLck` of `/proc/self/status`), if it can be read.
pub fn vmlck_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub fn dup(fd: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0)
}

/// The host page size in bytes.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// A memory mapping: guest RAM, a vCPU's `struct kvm_run` or a TCE table.
///
/// The memory may change under the VMM at any time (the guest, the kernel or another
/// mapping writes it), so it is only ever accessed with volatile or atomic operations, never
/// through a Rust reference to plain data. It is unmapped when the value is dropped.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping stays valid until `drop` and is accessed only with volatile or atomic
// operations, so it can be sent to and shared with other threads.
unsafe impl Send for Mmap {}
// SAFETY: as above; `&Mmap` gives no reference to non-atomic data.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of private, zeroed, anonymous memory.
    pub fn anonymous(len: usize) -> SysResult<Mmap> {
        // SAFETY: a new mapping at an address the kernel picks overlaps no Rust object.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )?
        };
        Self::from_raw(ptr, len)
    }

    /// Maps `len` bytes of `fd` from offset 0, shared and read-write.
    pub fn shared(fd: BorrowedFd<'_>, len: usize) -> SysResult<Mmap> {
        // SAFETY: as above; the file (a vCPU or a TCE table) supports shared mappings.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd.as_fd(),
                0,
            )?
        };
        Self::from_raw(ptr, len)
    }

    fn from_raw(ptr: *mut c_void, len: usize) -> SysResult<Mmap> {
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno::NOMEM)?;
        Ok(Mmap { ptr, len })
    }

    /// The mapping's length in bytes.
    /// Drops the pages of `len` bytes at offset `off` (`MADV_DONTNEED`): they read as zeros
    /// again, or wait on a userfaultfd that registers them. Sound because this mapping is only
    /// ever read and written by copies through its raw pointer, never through references.
    pub fn discard(&self, off: u64, len: u64) -> SysResult<()> {
        if !self.contains(off, len as usize) {
            return Err(Errno::INVAL);
        }
        // SAFETY: The range lies inside this private anonymous mapping, see above.
        unsafe {
            rustix::mm::madvise(
                self.ptr.as_ptr().add(off as usize).cast(),
                len as usize,
                rustix::mm::Advice::LinuxDontNeed,
            )
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The mapping's address in this process.
    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Whether `[off, off + n)` lies inside the mapping.
    fn contains(&self, off: u64, n: usize) -> bool {
        off.checked_add(n as u64)
            .is_some_and(|end| end <= self.len as u64)
    }

    /// Copies bytes from offset `off` into `out`; `false` (and nothing copied) past the end.
    pub fn read(&self, off: u64, out: &mut [u8]) -> bool {
        if !self.contains(off, out.len()) {
            return false;
        }
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: `off + i` is inside the mapping (checked above), which lives as long as
            // `self`; a volatile byte read is valid on memory others may write.
            *b = unsafe { self.ptr.as_ptr().add(off as usize + i).read_volatile() };
        }
        true
    }

    /// Copies `data` to offset `off`; `false` (and nothing copied) past the end.
    pub fn write(&self, off: u64, data: &[u8]) -> bool {
        if !self.contains(off, data.len()) {
            return false;
        }
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: as in `read`; the mapping is writable.
            unsafe { self.ptr.as_ptr().add(off as usize + i).write_volatile(b) };
        }
        true
    }

    /// Reads the naturally aligned u64 at offset `off` in host order; `None` if it is outside
    /// the mapping or not aligned.
    pub fn read_u64(&self, off: u64) -> Option<u64> {
        if off % 8 != 0 || !self.contains(off, 8) {
            return None;
        }
        // SAFETY: inside the mapping and 8-byte aligned (the mapping is page-aligned).
        Some(unsafe {
            self.ptr
                .as_ptr()
                .add(off as usize)
                .cast::<u64>()
                .read_volatile()
        })
    }

    /// Writes the naturally aligned u64 at offset `off` in host order; `false` if it is outside
    /// the mapping or not aligned.
    pub fn write_u64(&self, off: u64, value: u64) -> bool {
        if off % 8 != 0 || !self.contains(off, 8) {
            return false;
        }
        // SAFETY: as in `read_u64`; the mapping is writable.
        unsafe {
            self.ptr
                .as_ptr()
                .add(off as usize)
                .cast::<u64>()
                .write_volatile(value)
        };
        true
    }

    /// Reads the naturally aligned u32 at offset `off`; `None` if outside or not aligned.
    pub fn read_u32(&self, off: u64) -> Option<u32> {
        if off % 4 != 0 || !self.contains(off, 4) {
            return None;
        }
        // SAFETY: inside the mapping and 4-byte aligned.
        Some(unsafe {
            self.ptr
                .as_ptr()
                .add(off as usize)
                .cast::<u32>()
                .read_volatile()
        })
    }

    /// The 64-bit word `index` (at byte offset `8 * index`) for atomic access; `None` past the
    /// end. Used for TCE tables, which the kernel and the guest's hypercalls update too.
    pub fn word(&self, index: u64) -> Option<&AtomicU64> {
        let off = index.checked_mul(8)?;
        if !self.contains(off, 8) {
            return None;
        }
        // SAFETY: the word is inside the mapping, 8-byte aligned (the mapping is page-aligned)
        // and lives as long as `self`; every bit pattern is a valid u64, and all accesses to
        // table words go through atomics.
        Some(unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(off as usize).cast::<u64>()) })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are what mmap returned and was given; no reference into the
        // mapping outlives `self` (they all borrow it).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A sealed-size anonymous file of `len` bytes, standing in for a kernel table in tests.
#[cfg(test)]
pub fn memfd(len: u64) -> SysResult<OwnedFd> {
    let fd = rustix::fs::memfd_create("tce-vmm-test", rustix::fs::MemfdFlags::CLOEXEC)?;
    rustix::fs::ftruncate(&fd, len)?;
    Ok(fd)
}

/// `struct uffdio_api`.
#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

/// `struct uffdio_register`: a range, the mode, and the ioctls the kernel offers for it.
#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

/// `struct uffdio_copy`.
#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

/// `UFFD_API`.
const UFFD_API: u64 = 0xaa;
/// `UFFDIO_REGISTER_MODE_MISSING`.
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
/// `UFFDIO_API`: `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
const UFFDIO_API: Opcode = rustix::ioctl::opcode::read_write::<UffdioApi>(0xaa, 0x3f);
/// `UFFDIO_REGISTER`: `_IOWR(0xAA, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: Opcode = rustix::ioctl::opcode::read_write::<UffdioRegister>(0xaa, 0x00);
/// `UFFDIO_COPY`: `_IOWR(0xAA, 0x03, struct uffdio_copy)`.
const UFFDIO_COPY: Opcode = rustix::ioctl::opcode::read_write::<UffdioCopy>(0xaa, 0x03);

/// A userfaultfd whose registered ranges fault into the kernel and wait there until
/// [`Userfault::copy`] fills them: for the test in which a hypercall waits on guest RAM.
pub struct Userfault {
    fd: OwnedFd,
}

impl Userfault {
    /// Opens a userfaultfd (kernel faults too, non-blocking reads) and agrees on the API.
    pub fn new() -> SysResult<Userfault> {
        use rustix::mm::UserfaultfdFlags;
        // SAFETY: The flags are valid; the descriptor is owned by the result.
        let fd = unsafe {
            rustix::mm::userfaultfd(UserfaultfdFlags::CLOEXEC | UserfaultfdFlags::NONBLOCK)?
        };
        let mut api = UffdioApi {
            api: UFFD_API,
            features: 0,
            ioctls: 0,
        };
        // SAFETY: `api` is a `struct uffdio_api`, which the kernel reads and writes.
        unsafe { ptr_ioctl(fd.as_fd(), UFFDIO_API, &mut api)? };
        Ok(Userfault { fd })
    }

    /// Registers `[addr, addr + len)`, pages of this process that are not present (see
    /// [`Mmap::discard`]), so that the next access to them waits for [`Userfault::copy`].
    pub fn register_missing(&self, addr: u64, len: u64) -> SysResult<()> {
        let mut reg = UffdioRegister {
            start: addr,
            len,
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        // SAFETY: `reg` is a `struct uffdio_register`, which the kernel reads and writes.
        unsafe { ptr_ioctl(self.fd.as_fd(), UFFDIO_REGISTER, &mut reg)? };
        Ok(())
    }

    /// Waits up to `timeout` for a fault and returns its address (`uffd_msg.pagefault.address`),
    /// or `None` if none came.
    pub fn wait_fault(&self, timeout: std::time::Duration) -> SysResult<Option<u64>> {
        use rustix::event::{
            poll,
            PollFd,
            PollFlags,
            Timespec, //
        };
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let t = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        if poll(&mut fds, Some(&t))? == 0 {
            return Ok(None);
        }
        // struct uffd_msg: u8 event, then reserved bytes, then for a page fault the u64 flags at
        // offset 8 and the u64 address at offset 16; 32 bytes in all.
        let mut msg = [0u8; 32];
        let n = rustix::io::read(&self.fd, &mut msg)?;
        if n != msg.len() || msg[0] != 0x12 {
            return Err(Errno::IO);
        }
        let mut addr = [0u8; 8];
        addr.copy_from_slice(&msg[16..24]);
        Ok(Some(u64::from_ne_bytes(addr)))
    }

    /// Fills the registered page at `dst` with `data` (one host page), waking whoever waits.
    pub fn copy(&self, dst: u64, data: &[u8]) -> SysResult<()> {
        let mut c = UffdioCopy {
            dst,
            src: data.as_ptr() as u64,
            len: data.len() as u64,
            mode: 0,
            copy: 0,
        };
        // SAFETY: `c` is a `struct uffdio_copy`; `src` points to `len` readable bytes.
        unsafe { ptr_ioctl(self.fd.as_fd(), UFFDIO_COPY, &mut c)? };
        Ok(())
    }
}
