// SPDX-License-Identifier: GPL-2.0
//! How the project's programs print a failure: a failed system call as `ENAME (message)`,
//! an error and its sources as one line.

use rustix::io::Errno;

/// The symbolic name of errno value `raw`, for the errors the programs expect or are likely
/// to see; `E?` for others.
pub fn errno_name(raw: i32) -> &'static str {
    let e = Errno::from_raw_os_error(raw);
    const NAMES: &[(Errno, &str)] = &[
        (Errno::PERM, "EPERM"),
        (Errno::NOENT, "ENOENT"),
        (Errno::INTR, "EINTR"),
        (Errno::IO, "EIO"),
        (Errno::NXIO, "ENXIO"),
        (Errno::TOOBIG, "E2BIG"),
        (Errno::NOEXEC, "ENOEXEC"),
        (Errno::BADF, "EBADF"),
        (Errno::AGAIN, "EAGAIN"),
        (Errno::NOMEM, "ENOMEM"),
        (Errno::ACCESS, "EACCES"),
        (Errno::FAULT, "EFAULT"),
        (Errno::BUSY, "EBUSY"),
        (Errno::EXIST, "EEXIST"),
        (Errno::NODEV, "ENODEV"),
        (Errno::INVAL, "EINVAL"),
        (Errno::NFILE, "ENFILE"),
        (Errno::MFILE, "EMFILE"),
        (Errno::NOTTY, "ENOTTY"),
        (Errno::NOSPC, "ENOSPC"),
        (Errno::RANGE, "ERANGE"),
        (Errno::NOSYS, "ENOSYS"),
        (Errno::OVERFLOW, "EOVERFLOW"),
        (Errno::OPNOTSUPP, "EOPNOTSUPP"),
        (Errno::KEYREJECTED, "EKEYREJECTED"),
        (Errno::SRCH, "ESRCH"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == e)
        .map_or("E?", |&(_, name)| name)
}

/// `e` as `ENAME (message)`, the message being the C library's.
pub fn describe_errno(e: Errno) -> String {
    let msg = std::io::Error::from(e).to_string();
    // The standard library appends " (os error N)" to strerror's text.
    let msg = msg.split(" (os error").next().unwrap_or(&msg);
    format!("{} ({msg})", errno_name(e.raw_os_error()))
}

/// `err` as `ENAME (message)` if it carries an errno, else as it displays itself.
pub fn describe(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(e) => describe_errno(Errno::from_raw_os_error(e)),
        None => err.to_string(),
    }
}

/// Formats an error and its sources as one line: "what failed: why".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions() {
        assert_eq!(errno_name(Errno::INVAL.raw_os_error()), "EINVAL");
        assert_eq!(errno_name(Errno::WOULDBLOCK.raw_os_error()), "EAGAIN");
        assert_eq!(errno_name(4095), "E?");
        assert_eq!(
            describe(&std::io::Error::from_raw_os_error(
                Errno::NOENT.raw_os_error()
            )),
            "ENOENT (No such file or directory)"
        );
        assert_eq!(describe(&std::io::Error::other("no errno")), "no errno");
    }

    #[test]
    fn chains_name_every_source() {
        let outer = Wrapped(std::io::Error::from(Errno::NOENT));
        assert_eq!(
            chain(&outer),
            format!("cannot open /x: {}", std::io::Error::from(Errno::NOENT))
        );
    }

    /// An error whose source is `.0`.
    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot open /x")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
