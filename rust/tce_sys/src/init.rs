// SPDX-License-Identifier: GPL-2.0
//! What the PID 1 of a test VM (`tools/testing/tce-init`) does besides its tests: mount file
//! systems, set up standard I/O, load and unload a module, run a test in a child process,
//! give up a capability, and power the machine off.
//!
//! These return `std::io::Result`, since their caller mixes them with `std::fs`.

use std::ffi::CString;
use std::fs::{
    File,
    OpenOptions, //
};
use std::io::{
    self,
    Read, //
};
use std::os::fd::{
    AsFd,
    BorrowedFd, //
};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use rustix::io::Errno;
pub use rustix::mount::MountFlags;
pub use rustix::process::Pid;
use rustix::process::{
    Resource,
    Rlimit,
    Signal,
    WaitOptions, //
};
use rustix::thread::CapabilitySet;

/// A C string of `s`, which must not contain NUL.
fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| Errno::INVAL.into())
}

/// Retries `f` while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            r => return r.map_err(Into::into),
        }
    }
}

/// Opens `path` read-write (`O_RDWR | O_CLOEXEC`).
pub fn open_rw(path: &str) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// Opens `path` read-only (`O_RDONLY | O_CLOEXEC`).
pub fn open_ro(path: &str) -> io::Result<File> {
    File::open(path)
}

/// Creates directory `path` (mode 0755) unless it exists.
pub fn mkdir(path: &str) -> io::Result<()> {
    match std::fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// Mounts file system `fstype` on `target`; a mount that is already there is fine.
pub fn mount(fstype: &str, target: &str, flags: MountFlags, data: &str) -> io::Result<()> {
    let data = cstr(data)?;
    match rustix::mount::mount(fstype, target, fstype, flags, data.as_c_str()) {
        Ok(()) | Err(Errno::BUSY) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `SIGBUS`, the signal of a touched page past the end of a mapped file.
pub const SIGBUS: i32 = Signal::BUS.as_raw();

/// Whether `fd` is close-on-exec.
pub fn is_cloexec(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(rustix::io::fcntl_getfd(fd)?.contains(rustix::io::FdFlags::CLOEXEC))
}

/// Whether file descriptor `fd` of this process is open. For the three standard ones, which a
/// PID 1 may be started without; `/proc` must be mounted.
pub fn fd_is_open(fd: i32) -> bool {
    std::fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_ok()
}

/// Makes standard descriptor `fd` (0, 1 or 2) a copy of `file`.
pub fn set_stdio(fd: i32, file: BorrowedFd<'_>) -> io::Result<()> {
    let r = match fd {
        0 => rustix::stdio::dup2_stdin(file),
        1 => rustix::stdio::dup2_stdout(file),
        2 => rustix::stdio::dup2_stderr(file),
        _ => Err(Errno::BADF),
    };
    r.map_err(Into::into)
}

/// `finit_module(fd, params, flags)`: loads the module in file `fd`.
pub fn finit_module(fd: BorrowedFd<'_>, params: &str, flags: i32) -> io::Result<()> {
    let params = cstr(params)?;
    rustix::system::finit_module(fd, &params, flags).map_err(Into::into)
}

/// `delete_module(name, flags)`; `nonblock` is `O_NONBLOCK`: fail with `EWOULDBLOCK` rather
/// than wait while the module is in use.
pub fn delete_module(name: &str, nonblock: bool) -> io::Result<()> {
    let name = cstr(name)?;
    let flags = if nonblock {
        rustix::fs::OFlags::NONBLOCK.bits() as i32
    } else {
        0
    };
    rustix::system::delete_module(&name, flags).map_err(Into::into)
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
    const NAMES: [(Signal, &str); 7] = [
        (Signal::BUS, "SIGBUS"),
        (Signal::SEGV, "SIGSEGV"),
        (Signal::ABORT, "SIGABRT"),
        (Signal::KILL, "SIGKILL"),
        (Signal::ILL, "SIGILL"),
        (Signal::FPE, "SIGFPE"),
        (Signal::TERM, "SIGTERM"),
    ];
    NAMES
        .iter()
        .find(|(sig, _)| sig.as_raw() == s)
        .map_or("?", |&(_, name)| name)
}

/// `fork()`: `Ok(None)` in the child, the child's process ID in the parent.
///
/// # Safety
///
/// The child has only a copy of the calling thread. If the process has other threads, the
/// child must not take a lock they may hold (allocate, print) before it execs or exits.
/// tce-init forks with one thread.
pub unsafe fn fork() -> io::Result<Option<Pid>> {
    // SAFETY: the caller keeps the child away from locks of other threads.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Pid::from_raw(pid)),
    }
}

/// Ends a forked child at once with `code`, without running the exit handlers it inherited.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit ends the process; nothing of it runs afterwards.
    unsafe { libc::_exit(code) }
}

/// Waits for child `pid` (or any child, for `None`); with `block` false returns `None` while
/// it is still running.
pub fn wait(pid: Option<Pid>, block: bool) -> io::Result<Option<Exit>> {
    let opts = if block {
        WaitOptions::empty()
    } else {
        WaitOptions::NOHANG
    };
    let status = retry(|| rustix::process::waitpid(pid, opts))?;
    Ok(status.map(|(_, s)| match s.terminating_signal() {
        Some(sig) => Exit::Signal(sig),
        None => Exit::Code(s.exit_status().unwrap_or(0)),
    }))
}

/// Runs `f` in a forked child, which exits with the code `f` returns; waits for it.
///
/// # Safety
///
/// As for [`fork`], for `f`.
pub unsafe fn in_child(f: impl FnOnce() -> i32) -> io::Result<Exit> {
    // SAFETY: guaranteed by the caller.
    match unsafe { fork() }? {
        None => exit_child(f()),
        Some(pid) => {
            wait(Some(pid), true)?.ok_or_else(|| io::Error::other("waitpid returned no status"))
        }
    }
}

/// Kills process group `pgid` with `SIGKILL`.
pub fn kill_group(pgid: Pid) {
    let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
}

/// Puts process `pid` (this one for `None`) in a process group of its own.
pub fn own_process_group(pid: Option<Pid>) -> io::Result<()> {
    rustix::process::setpgid(pid, pid).map_err(Into::into)
}

/// Sets both limits of this process's locked memory to `bytes`.
pub fn set_memlock_limit(bytes: u64) -> io::Result<()> {
    let lim = Rlimit {
        current: Some(bytes),
        maximum: Some(bytes),
    };
    rustix::process::setrlimit(Resource::Memlock, lim).map_err(Into::into)
}

/// Whether `CAP_IPC_LOCK`, which lets a process lock memory beyond `RLIMIT_MEMLOCK`, is in
/// this process's effective set.
pub fn has_ipc_lock() -> io::Result<bool> {
    let sets = rustix::thread::capabilities(None)?;
    Ok(sets.effective.contains(CapabilitySet::IPC_LOCK))
}

/// Removes `CAP_IPC_LOCK` from this process for good: from the bounding set and from the
/// effective, permitted and inheritable sets.
pub fn drop_ipc_lock() -> io::Result<()> {
    rustix::thread::remove_capability_from_bounding_set(CapabilitySet::IPC_LOCK)?;
    let mut sets = rustix::thread::capabilities(None)?;
    sets.effective.remove(CapabilitySet::IPC_LOCK);
    sets.permitted.remove(CapabilitySet::IPC_LOCK);
    sets.inheritable.remove(CapabilitySet::IPC_LOCK);
    rustix::thread::set_capabilities(None, sets).map_err(Into::into)
}

/// Flushes the file systems and powers the machine off, or restarts it if `reboot` (QEMU runs
/// with `-no-reboot`, so either way it exits). Only PID 1 may; if the call fails, this returns.
pub fn shut_down(reboot: bool) {
    rustix::fs::sync();
    let cmd = if reboot {
        rustix::system::RebootCommand::Restart
    } else {
        rustix::system::RebootCommand::PowerOff
    };
    let _ = rustix::system::reboot(cmd);
}

/// Whether `fd` has data to read (or is closed) within `timeout`.
pub fn poll_in(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    use rustix::event::{
        poll,
        PollFd,
        PollFlags,
        Timespec, //
    };
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let t = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    match poll(&mut fds, Some(&t)) {
        Ok(n) => Ok(n > 0),
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(File, File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((r.into(), w.into()))
}

/// `read()` into `buf`, retried after interruptions: the number of bytes read, 0 at the end.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| rustix::io::read(fd, &mut *buf))
}

/// Writes all of `buf` to `fd`, retrying after interruptions and short writes.
pub fn write_all(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match retry(|| rustix::io::write(fd, &buf[done..]))? {
            0 => return Err(Errno::IO.into()),
            n => done += n,
        }
    }
    Ok(())
}

/// A reader of the kernel log that sees only records written after it was opened.
pub struct Kmsg(File);

impl Kmsg {
    /// Opens `/dev/kmsg` positioned after the newest record.
    pub fn open_at_end() -> io::Result<Self> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open("/dev/kmsg")?;
        // SEEK_END on /dev/kmsg moves past the newest record.
        rustix::fs::seek(f.as_fd(), rustix::fs::SeekFrom::End(0))?;
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

    #[test]
    fn child_exit_statuses() {
        // SAFETY: the child runs only the closure, which takes no lock, and then _exit.
        assert_eq!(unsafe { in_child(|| 3) }.unwrap(), Exit::Code(3));
        // A page of a mapping past the end of its (empty) file raises SIGBUS when touched,
        // like a table page past `mapping_pages`.
        let fd = crate::process::memfd("empty", 0).unwrap();
        let m = crate::Mmap::shared(fd.as_fd(), crate::process::page_size()).unwrap();
        // SAFETY: as above.
        let killed = unsafe {
            in_child(|| {
                m.read_u64(0);
                0
            })
        }
        .unwrap();
        assert_eq!(killed, Exit::Signal(SIGBUS));
        assert_eq!(killed.to_string(), "killed by signal 7 (SIGBUS)");
    }

    #[test]
    fn capabilities_can_be_read() {
        assert!(has_ipc_lock().is_ok());
    }

    #[test]
    fn pipes_carry_bytes() {
        let (r, w) = pipe().unwrap();
        write_all(w.as_fd(), b"tce").unwrap();
        drop(w);
        assert!(poll_in(r.as_fd(), Duration::from_secs(1)).unwrap());
        let mut buf = [0u8; 8];
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"tce");
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 0);
    }
}
