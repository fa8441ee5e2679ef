// SPDX-License-Identifier: GPL-2.0
//! Process-wide calls: pidfds, the locked-memory limit and its use, descriptors, page size.

use std::os::fd::{
    BorrowedFd,
    OwnedFd, //
};

use rustix::process::{
    Pid,
    PidfdFlags,
    PidfdGetfdFlags,
    Resource,
    Rlimit, //
};

use crate::ioctl::SysResult;

/// `pidfd_open(pid, 0)`; `None` for a value that is not a process ID.
pub fn pidfd_open(pid: i32) -> Option<SysResult<OwnedFd>> {
    // `Pid::from_raw` panics on a negative value, so refuse those first.
    if pid <= 0 {
        return None;
    }
    let pid = Pid::from_raw(pid)?;
    Some(rustix::process::pidfd_open(pid, PidfdFlags::empty()))
}

/// `pidfd_getfd(pidfd, fd, 0)`: a duplicate of file descriptor `fd` of the process.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: i32) -> SysResult<OwnedFd> {
    rustix::process::pidfd_getfd(pidfd, fd, PidfdGetfdFlags::empty())
}

/// The host page size in bytes.
pub fn page_size() -> usize {
    rustix::param::page_size()
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

/// The `VmLck:` value (kB) of a `/proc/PID/status` text.
pub fn parse_vmlck(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// This process's locked memory in kB (`VmLck` of `/proc/self/status`).
pub fn vmlck_kb() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    parse_vmlck(&status).ok_or_else(|| std::io::Error::other("no VmLck in /proc/self/status"))
}

/// Duplicates a file descriptor (close-on-exec).
pub fn dup(fd: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0)
}

/// A close-on-exec anonymous file of `len` bytes (`memfd_create`), for a test that needs a
/// file to map where a kernel table would be.
pub fn memfd(name: &str, len: u64) -> SysResult<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)?;
    rustix::fs::ftruncate(&fd, len)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmlck_parsing() {
        let status = "Name:\ttce-init\nVmPin:\t       0 kB\nVmLck:\t    2048 kB\nVmHWM:\t 1 kB\n";
        assert_eq!(parse_vmlck(status), Some(2048));
        assert_eq!(parse_vmlck("VmLck:\t0 kB"), Some(0));
        assert_eq!(parse_vmlck("VmPin: 0 kB\n"), None);
        assert_eq!(parse_vmlck("VmLck: many kB\n"), None);
    }

    #[test]
    fn vmlck_of_this_process() {
        // Every Linux process has a VmLck line.
        assert!(vmlck_kb().is_ok());
    }
}
