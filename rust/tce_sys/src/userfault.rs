// SPDX-License-Identifier: GPL-2.0
//! A userfaultfd, for tests in which a hypercall waits in the kernel on guest RAM.

use std::os::fd::{
    AsFd,
    OwnedFd, //
};

use rustix::io::Errno;

use crate::ioctl::{
    ptr_ioctl,
    Opcode,
    SysResult, //
};

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
    /// [`crate::Mmap::discard`]), so that the next access to them waits for [`Userfault::copy`].
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
