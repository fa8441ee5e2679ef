// SPDX-License-Identifier: GPL-2.0
//! Memory mappings that the kernel, a guest or another mapping may write at any time: guest
//! RAM, a vCPU's `struct kvm_run`, a TCE table.

use std::ffi::c_void;
use std::os::fd::{
    AsFd,
    BorrowedFd, //
};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use rustix::io::Errno;
use rustix::mm::{
    MapFlags,
    ProtFlags, //
};

use crate::ioctl::SysResult;

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

    /// Drops the pages of `len` bytes at offset `off` (`MADV_DONTNEED`): they read as zeros
    /// again, or wait on a userfaultfd that registers them. Sound because this mapping is only
    /// ever read and written by copies through its raw pointer, never through references.
    pub fn discard(&self, off: u64, len: u64) -> SysResult<()> {
        if !self.contains(off, len as usize) {
            return Err(Errno::INVAL);
        }
        // SAFETY: the range lies inside this mapping, see above.
        unsafe {
            rustix::mm::madvise(
                self.ptr.as_ptr().add(off as usize).cast(),
                len as usize,
                rustix::mm::Advice::LinuxDontNeed,
            )
        }
    }

    /// The mapping's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping has no bytes (mmap refuses a length of 0, so never).
    pub fn is_empty(&self) -> bool {
        self.len == 0
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
