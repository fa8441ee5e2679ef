// SPDX-License-Identifier: GPL-2.0
//! The two shapes of ioctl argument the KVM and `tce_accel` APIs use, over rustix's encoders.
//!
//! rustix encodes the opcodes for the architecture (on ppc64 the direction bits and the size
//! field differ from x86); this module adds the argument adapters, so that no program writes
//! its own `unsafe impl Ioctl`. A program that needs an ioctl this crate does not wrap (a test
//! of an undefined one, say) calls these directly.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::fd::{
    BorrowedFd,
    FromRawFd,
    OwnedFd,
    RawFd, //
};

use rustix::io::Errno;
pub use rustix::ioctl::{
    opcode,
    IoctlOutput,
    Opcode, //
};

/// A system call's result: the value or the errno.
pub type SysResult<T> = Result<T, Errno>;

/// An ioctl whose argument is a pointer to a `T` that the kernel may read and write.
struct PtrIoctl<'a, T> {
    opcode: Opcode,
    arg: &'a mut T,
}

// SAFETY: `as_ptr` returns a pointer to a live, exclusively borrowed `T`, valid for reads and
// writes of `size_of::<T>()` bytes for the whole call; the output is the ioctl's return value
// and reads nothing through the pointer. `ptr_ioctl`'s callers pair each opcode with the `T`
// that the user API defines for it, so the kernel accesses exactly that object.
unsafe impl<T> rustix::ioctl::Ioctl for PtrIoctl<'_, T> {
    type Output = IoctlOutput;

    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        (self.arg as *mut T).cast()
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// An ioctl whose argument is an integer.
struct IntIoctl {
    opcode: Opcode,
    value: usize,
}

// SAFETY: the argument is passed by value; `int_ioctl`'s callers use it only with opcodes that
// take an integer (or nothing), so the kernel reads or writes no user memory through it, and
// the output is the ioctl's return value.
unsafe impl rustix::ioctl::Ioctl for IntIoctl {
    type Output = IoctlOutput;

    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        std::ptr::without_provenance_mut(self.value)
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// Runs ioctl `opcode` on `fd` with a pointer to `arg`.
///
/// # Safety
///
/// `opcode` must take a pointer to a `T` with the layout the kernel expects, any pointers
/// inside `arg` must be valid for what the kernel does with them during the call, and the
/// kernel must not keep the pointer past the call.
pub unsafe fn ptr_ioctl<T>(
    fd: BorrowedFd<'_>,
    opcode: Opcode,
    arg: &mut T,
) -> SysResult<IoctlOutput> {
    // SAFETY: guaranteed by the caller, see `PtrIoctl`.
    unsafe { rustix::ioctl::ioctl(fd, PtrIoctl { opcode, arg }) }
}

/// Runs ioctl `opcode` on `fd` with the integer argument `value`.
///
/// # Safety
///
/// `opcode` must take an integer argument (or none), not a pointer.
pub unsafe fn int_ioctl(
    fd: BorrowedFd<'_>,
    opcode: Opcode,
    value: usize,
) -> SysResult<IoctlOutput> {
    // SAFETY: guaranteed by the caller, see `IntIoctl`.
    unsafe { rustix::ioctl::ioctl(fd, IntIoctl { opcode, value }) }
}

/// Takes ownership of the file descriptor an ioctl returned.
///
/// # Safety
///
/// `raw` must be the result of an ioctl that creates a file and returns its new descriptor, so
/// that nothing else in the process owns it.
pub unsafe fn owned_fd(raw: IoctlOutput) -> SysResult<OwnedFd> {
    if raw < 0 {
        return Err(Errno::INVAL);
    }
    // SAFETY: by the caller's guarantee the descriptor is new and ours; the returned `OwnedFd`
    // closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as RawFd) })
}
