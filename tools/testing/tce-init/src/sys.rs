// SPDX-License-Identifier: GPL-2.0

//! Thin wrappers around the system calls tce-init needs, each returning `io::Result`.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

pub use tce_sys::errno::{describe, errno_name};

/// Turns a `-1` return of a system call into the current `errno`.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Makes a C string of `s`, which must not contain NUL.
fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens `path` read-write (`O_RDWR | O_CLOEXEC`).
pub fn open_rw(path: &str) -> io::Result<OwnedFd> {
    Ok(OpenOptions::new().read(true).write(true).open(path)?.into())
}

/// Opens `path` read-only (`O_RDONLY | O_CLOEXEC`).
pub fn open_ro(path: &str) -> io::Result<OwnedFd> {
    Ok(File::open(path)?.into())
}

/// Creates directory `path` (mode 0755) unless it exists.
pub fn mkdir(path: &str) -> io::Result<()> {
    match std::fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// Mounts file system `fstype` on `target`; a mount that is already there is fine.
pub fn mount(fstype: &str, target: &str, flags: libc::c_ulong, data: &str) -> io::Result<()> {
    let (src, tgt, fs, data) = (cstr(fstype)?, cstr(target)?, cstr(fstype)?, cstr(data)?);
    // SAFETY: All four pointers are NUL-terminated strings that outlive the call.
    let ret = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fs.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    match check(ret.into()) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
        r => r.map(drop),
    }
}

/// Whether file descriptor `fd` is open.
pub fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed `fd` gives EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Makes `new` a copy of `old` (`dup2`).
pub fn dup2(old: i32, new: i32) -> io::Result<()> {
    // SAFETY: dup2 only manipulates the descriptor table.
    check(unsafe { libc::dup2(old, new) }.into()).map(drop)
}

/// `finit_module(fd, params, flags)`.
pub fn finit_module(fd: BorrowedFd<'_>, params: &str, flags: i32) -> io::Result<()> {
    let params = cstr(params)?;
    // SAFETY: `params` is a NUL-terminated string that outlives the call; the kernel checks
    // the descriptor.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            fd.as_raw_fd(),
            params.as_ptr(),
            flags,
        )
    };
    check(ret).map(drop)
}

/// `delete_module(name, flags)`.
pub fn delete_module(name: &str, flags: i32) -> io::Result<()> {
    let name = cstr(name)?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), flags) };
    check(ret).map(drop)
}

/// Takes ownership of file descriptor `fd`, just returned by the kernel.
fn owned(fd: i32) -> OwnedFd {
    // SAFETY: The kernel has just installed `fd` for us and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Exit::Code(c) => write!(f, "exited with status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s} ({})", signal_name(s)),
        }
    }
}

/// The name of signal `s`, for the signals a test is likely to die of.
pub fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGBUS => "SIGBUS",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTERM => "SIGTERM",
        _ => "?",
    }
}

/// `fork()`: `Ok(0)` in the child, the child's pid in the parent.
pub fn fork() -> io::Result<i32> {
    // SAFETY: tce-init is single-threaded, so the child may go on running ordinary code.
    let pid = unsafe { libc::fork() };
    check(pid.into()).map(|p| p as i32)
}

/// Ends a forked child at once with `code`, without running the parent's exit handlers.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}

/// Waits for child `pid`; with `block` false returns `None` while it is still running.
pub fn wait(pid: i32, block: bool) -> io::Result<Option<Exit>> {
    let mut status = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: `status` is a valid place for the status.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if ret == 0 {
            return Ok(None);
        }
        break;
    }
    if libc::WIFSIGNALED(status) {
        Ok(Some(Exit::Signal(libc::WTERMSIG(status))))
    } else {
        Ok(Some(Exit::Code(libc::WEXITSTATUS(status))))
    }
}

/// Runs `f` in a forked child, which exits with the code `f` returns; waits for it.
pub fn in_child(f: impl FnOnce() -> i32) -> io::Result<Exit> {
    let pid = fork()?;
    if pid == 0 {
        exit_child(f());
    }
    wait(pid, true)?.ok_or_else(|| io::Error::other("waitpid returned no status"))
}

/// Sends signal `sig` to process `pid`.
pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill has no memory-safety requirements.
    unsafe { libc::kill(pid, sig) };
}

/// Sets both limits of resource `res` to `value`.
pub fn setrlimit(res: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: `lim` is a valid `struct rlimit`.
    check(unsafe { libc::setrlimit(res, &lim) }.into()).map(drop)
}

/// `CAP_IPC_LOCK`, which lets a process lock memory beyond `RLIMIT_MEMLOCK`.
pub const CAP_IPC_LOCK: u32 = 14;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets in two 32-bit words.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Reads this process's capability sets.
fn capget() -> io::Result<[CapData; 2]> {
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: `hdr` and the two-element `data` are what version 3 of capget reads and writes.
    check(unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) })?;
    Ok(data)
}

/// Whether capability `cap` is in this process's effective set.
pub fn has_cap(cap: u32) -> io::Result<bool> {
    let data = capget()?;
    Ok(data[(cap / 32) as usize].effective & (1 << (cap % 32)) != 0)
}

/// Removes capability `cap` from this process for good: from the bounding set and from the
/// effective, permitted and inheritable sets.
pub fn drop_cap(cap: u32) -> io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes the capability number; the other arguments are unused.
    check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }.into())?;
    let mut data = capget()?;
    let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
    data[word].effective &= !bit;
    data[word].permitted &= !bit;
    data[word].inheritable &= !bit;
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: `hdr` and the two-element `data` are what version 3 of capset reads.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) }).map(drop)
}

/// Flushes the file systems and powers the machine off, or restarts it if `reboot` (QEMU runs
/// with `-no-reboot`, so either way it exits). A kernel that cannot power off halts instead and
/// does not return; if the call fails, this returns.
pub fn shut_down(reboot: bool) {
    let cmd = if reboot {
        libc::LINUX_REBOOT_CMD_RESTART
    } else {
        libc::LINUX_REBOOT_CMD_POWER_OFF
    };
    // SAFETY: sync and reboot have no memory-safety requirements; only PID 1 calls this.
    unsafe {
        libc::sync();
        libc::reboot(cmd);
    }
}

/// `poll()` on one descriptor for readable data; returns whether it is readable (or closed)
/// within `timeout_ms`.
pub fn poll_in(fd: i32, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid `struct pollfd`.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    match check(n.into()) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

/// A pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }.into())?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// `read()` into `buf`: the number of bytes read, 0 at end of file.
pub fn read(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match check(n as libc::c_long) {
            Ok(n) => return Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A reader of the kernel log that sees only records written after it was opened.
pub struct Kmsg(File);

impl Kmsg {
    /// Opens `/dev/kmsg` positioned after the newest record.
    pub fn open_at_end() -> io::Result<Self> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        // SAFETY: `f` is an open file descriptor; SEEK_END on /dev/kmsg moves past the newest
        // record and touches no memory.
        check(unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END) })?;
        Ok(Self(f))
    }

    /// The messages of the records written since the last call (or since opening).
    pub fn new_messages(&mut self) -> Vec<String> {
        self.new_records().into_iter().map(|(_, msg)| msg).collect()
    }

    /// The messages of the kernel's own records written since the last call (or since
    /// opening), leaving out those that user space wrote to `/dev/kmsg`, such as the suite's
    /// lines.
    pub fn new_kernel_messages(&mut self) -> Vec<String> {
        self.new_records()
            .into_iter()
            .filter(|&(prio, _)| prio >> 3 == 0)
            .map(|(_, msg)| msg)
            .collect()
    }

    /// The records written since the last call, as (priority with facility, message).
    fn new_records(&mut self) -> Vec<(u32, String)> {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        // Each read returns one record, "prio,seq,time,flags;message\n"; EAGAIN when none
        // is left. The facility is prio >> 3: 0 for the kernel, 1 (user) for writers.
        while let Ok(n) = self.0.read(&mut buf) {
            if n == 0 {
                break;
            }
            let rec = String::from_utf8_lossy(&buf[..n]);
            if let Some((prefix, msg)) = rec.split_once(';') {
                let prio = prefix
                    .split(',')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                out.push((prio, msg.lines().next().unwrap_or_default().to_string()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn child_exit_statuses() {
        assert_eq!(in_child(|| 3).unwrap(), Exit::Code(3));
        // A page of a mapping past the end of its (empty) file raises SIGBUS when touched,
        // like a table page past `mapping_pages`.
        let fd = tce_sys::process::memfd("empty", 0).unwrap();
        let m = tce_sys::Mmap::shared(fd.as_fd(), tce_sys::process::page_size()).unwrap();
        let killed = in_child(|| {
            m.read_u64(0);
            0
        })
        .unwrap();
        assert_eq!(killed, Exit::Signal(libc::SIGBUS));
        assert_eq!(killed.to_string(), "killed by signal 7 (SIGBUS)");
    }

    #[test]
    fn capabilities_can_be_read() {
        assert!(has_cap(CAP_IPC_LOCK).is_ok());
    }
}
