// SPDX-License-Identifier: GPL-2.0

//! KTAP output in the shape KUnit prints a module's suite, and the line protocol between the
//! test runner process and PID 1, which alone writes to `/dev/kmsg`.
//!
//! When a module with KUnit suites is loaded, `lib/kunit` prints (each line one printk):
//!
//! ```text
//! KTAP version 1
//! 1..1
//!     KTAP version 1
//!     # Subtest: suite
//!     1..2
//!     ok 1 case_a
//!         KTAP version 1
//!         # Subtest: case_b
//!         1..2
//!         ok 1 param_1
//!         ok 2 param_2
//!     # case_b: pass:2 fail:0 skip:0 total:2
//!     ok 2 case_b
//! # suite: pass:2 fail:0 skip:0 total:2
//! # Totals: pass:3 fail:0 skip:0 total:3
//! ok 1 suite
//! ```
//!
//! The stats lines appear only when their total is above 1, and a skipped case is
//! `ok N name # SKIP reason`.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::OnceLock;

/// One level of KTAP indentation (`KUNIT_SUBTEST_INDENT`).
pub const INDENT: &str = "    ";

/// The longest line written to `/dev/kmsg` (the kernel refuses records over 1024 bytes).
const MAX_LINE: usize = 960;

/// What became of one test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It passed.
    Pass,
    /// It failed.
    Fail,
    /// It did not run.
    Skip,
}

/// A test's status with the reason for a failure or a skip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Passed, failed or skipped.
    pub status: Status,
    /// Why it failed or was skipped; empty for a pass.
    pub reason: String,
}

impl Outcome {
    /// A pass.
    pub fn pass() -> Self {
        Self {
            status: Status::Pass,
            reason: String::new(),
        }
    }

    /// A failure for `reason`.
    pub fn fail(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            reason: reason.into(),
        }
    }

    /// A skip for `reason`.
    pub fn skip(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Skip,
            reason: reason.into(),
        }
    }
}

/// Makes `s` fit on one KTAP line: no line breaks, no `#` (which would start a directive).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            '#' => '%',
            c => c,
        })
        .collect()
}

/// The result line of test number `num` called `name`, at `depth` levels of indentation.
pub fn result_line(depth: usize, num: usize, name: &str, outcome: &Outcome) -> String {
    let indent = INDENT.repeat(depth);
    let reason = one_line(&outcome.reason);
    match outcome.status {
        Status::Pass => format!("{indent}ok {num} {name}"),
        Status::Skip => format!("{indent}ok {num} {name} # SKIP {reason}"),
        Status::Fail if reason.is_empty() => format!("{indent}not ok {num} {name}"),
        Status::Fail => format!("{indent}not ok {num} {name} # {reason}"),
    }
}

/// The header of a (sub)test `name` with `plan` subtests, at `depth` levels of indentation.
pub fn header_lines(depth: usize, name: &str, plan: usize) -> [String; 3] {
    let indent = INDENT.repeat(depth);
    [
        format!("{indent}KTAP version 1"),
        format!("{indent}# Subtest: {name}"),
        format!("{indent}1..{plan}"),
    ]
}

/// A diagnostic line about test `name` at `depth` levels of indentation.
pub fn diag_line(depth: usize, name: &str, msg: &str) -> String {
    format!("{}# {name}: {}", INDENT.repeat(depth), one_line(msg))
}

/// Pass, fail and skip counts, as KUnit keeps them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tests that passed.
    pub pass: usize,
    /// Tests that failed.
    pub fail: usize,
    /// Tests that were skipped.
    pub skip: usize,
}

impl Stats {
    /// Counts one outcome.
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Skip => self.skip += 1,
        }
    }

    /// Adds other counts to these.
    pub fn merge(&mut self, other: Stats) {
        self.pass += other.pass;
        self.fail += other.fail;
        self.skip += other.skip;
    }

    /// All tests counted.
    pub fn total(&self) -> usize {
        self.pass + self.fail + self.skip
    }

    /// The status of a test made of these: failed if any failed, else passed if any passed,
    /// else skipped (`kunit_suite_has_succeeded`).
    pub fn status(&self) -> Status {
        if self.fail > 0 {
            Status::Fail
        } else if self.pass > 0 {
            Status::Pass
        } else {
            Status::Skip
        }
    }

    /// The stats line KUnit prints for `label` when more than one test was counted.
    pub fn line(&self, depth: usize, label: &str) -> Option<String> {
        (self.total() > 1).then(|| {
            format!(
                "{}# {label}: pass:{} fail:{} skip:{} total:{}",
                INDENT.repeat(depth),
                self.pass,
                self.fail,
                self.skip,
                self.total()
            )
        })
    }
}

/// A message from the test runner to PID 1, one line each on a pipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Print this KTAP line as it is.
    Line(String),
    /// Test `idx` (0-based) has started.
    Begin(usize),
    /// Test `idx` has ended with `outcome`; `params` counts its parameter cases, if any.
    End {
        /// The test's index.
        idx: usize,
        /// How it ended.
        outcome: Outcome,
        /// Its parameter cases' outcomes (all zero for a plain test).
        params: Stats,
    },
}

impl Msg {
    /// The message as one line, without the newline.
    pub fn encode(&self) -> String {
        match self {
            Msg::Line(l) => format!("L {}", one_line_raw(l)),
            Msg::Begin(idx) => format!("B {idx}"),
            Msg::End {
                idx,
                outcome,
                params,
            } => {
                let s = match outcome.status {
                    Status::Pass => 'P',
                    Status::Fail => 'F',
                    Status::Skip => 'S',
                };
                format!(
                    "E {idx} {s} {} {} {} {}",
                    params.pass,
                    params.fail,
                    params.skip,
                    one_line_raw(&outcome.reason)
                )
            }
        }
    }

    /// Reads a message written by [`Msg::encode`].
    pub fn decode(line: &str) -> Option<Msg> {
        let (kind, rest) = line.split_at_checked(1)?;
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        match kind {
            "L" => Some(Msg::Line(rest.to_string())),
            "B" => rest.trim().parse().ok().map(Msg::Begin),
            "E" => {
                let mut f = rest.splitn(6, ' ');
                let idx = f.next()?.parse().ok()?;
                let status = match f.next()? {
                    "P" => Status::Pass,
                    "F" => Status::Fail,
                    "S" => Status::Skip,
                    _ => return None,
                };
                let pass = f.next()?.parse().ok()?;
                let fail = f.next()?.parse().ok()?;
                let skip = f.next()?.parse().ok()?;
                let reason = f.next().unwrap_or("").to_string();
                Some(Msg::End {
                    idx,
                    outcome: Outcome { status, reason },
                    params: Stats { pass, fail, skip },
                })
            }
            _ => None,
        }
    }
}

/// Replaces line breaks only (a raw KTAP line keeps its `#`).
fn one_line_raw(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// `/dev/kmsg`, once opened; until then [`emit`] writes to standard output.
static KMSG: OnceLock<File> = OnceLock::new();

/// Sends every later [`emit`] to `kmsg` (an open `/dev/kmsg`).
pub fn set_kmsg(kmsg: File) {
    let _ = KMSG.set(kmsg);
}

/// Cuts `line` to at most `max` bytes, at a character boundary.
fn truncate(line: &str, max: usize) -> &str {
    if line.len() <= max {
        return line;
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// Prints one line as a kernel log record of level KERN_INFO (like KUnit's `pr_info`), so that
/// it reaches the console with the kernel's own line prefix; one write is one record.
pub fn emit(line: &str) {
    let line = truncate(line, MAX_LINE);
    // Errors are dropped: there is nowhere left to report them.
    match KMSG.get() {
        Some(kmsg) => {
            let _ = tce_sys::init::write_all(kmsg.as_fd(), format!("<6>{line}").as_bytes());
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(format!("{line}\n").as_bytes());
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_like_kunit() {
        assert_eq!(
            result_line(1, 1, "open_device", &Outcome::pass()),
            "    ok 1 open_device"
        );
        assert_eq!(
            result_line(1, 2, "create_table", &Outcome::fail("ENOENT # x\ny")),
            "    not ok 2 create_table # ENOENT % x y"
        );
        assert_eq!(
            result_line(2, 3, "vm_fd_dev_kvm", &Outcome::skip("no /dev/kvm")),
            "        ok 3 vm_fd_dev_kvm # SKIP no /dev/kvm"
        );
        assert_eq!(
            result_line(0, 1, "tce_accel_user", &Outcome::fail("")),
            "not ok 1 tce_accel_user"
        );
    }

    #[test]
    fn headers_and_diagnostics() {
        assert_eq!(
            header_lines(1, "tce_accel_user", 13),
            [
                "    KTAP version 1".to_string(),
                "    # Subtest: tce_accel_user".to_string(),
                "    1..13".to_string()
            ]
        );
        assert_eq!(
            diag_line(1, "table_info", "argsz 64\nflags 0"),
            "    # table_info: argsz 64 flags 0"
        );
    }

    #[test]
    fn stats_like_kunit() {
        let mut s = Stats::default();
        assert_eq!(s.status(), Status::Skip);
        s.add(Status::Skip);
        assert_eq!(s.line(0, "suite"), None);
        s.add(Status::Pass);
        assert_eq!(s.status(), Status::Pass);
        s.add(Status::Fail);
        assert_eq!(s.status(), Status::Fail);
        assert_eq!(
            s.line(1, "bad_arguments").as_deref(),
            Some("    # bad_arguments: pass:1 fail:1 skip:1 total:3")
        );
    }

    #[test]
    fn messages_round_trip() {
        let msgs = [
            Msg::Line("        ok 1 argsz_0".into()),
            Msg::Line(String::new()),
            Msg::Begin(7),
            Msg::End {
                idx: 9,
                outcome: Outcome::fail("got EINVAL, want EBUSY: a b"),
                params: Stats {
                    pass: 15,
                    fail: 1,
                    skip: 1,
                },
            },
            Msg::End {
                idx: 0,
                outcome: Outcome::pass(),
                params: Stats::default(),
            },
        ];
        for m in msgs {
            assert_eq!(Msg::decode(&m.encode()), Some(m.clone()), "{m:?}");
        }
        assert_eq!(Msg::decode("X 1"), None);
        assert_eq!(Msg::decode("E 1 Q 0 0 0"), None);
        assert_eq!(Msg::decode(""), None);
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }
}
