// SPDX-License-Identifier: GPL-2.0

//! The `kmemleak` test (in PID 1, after `unload`): the kernel's leak detector must report no
//! unreferenced object once the module has been used and unloaded.
//!
//! Only the debug kernel (`scripts/kconfig/debug.config`) has kmemleak, without its automatic
//! scan; elsewhere the test is skipped. Before the module loads, [`prepare`] scans once and
//! writes `clear`, which marks the objects reported by that scan (older than kmemleak's
//! minimum age of 5 s, left unreferenced at boot) as not leaked, so that they do not fail the
//! test. [`check`] scans twice, [`SCAN_GAP`] apart: kmemleak reports an object only if its
//! contents did not change between two scans and it was at least 5 s old at the scan, so the
//! second scan sees everything the module allocated, including at its last load.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::ktap::{self, Outcome};
use tce_sys::errno::describe;
use tce_sys::init::{self as sys, MountFlags};

/// The control and report file of kmemleak.
const FILE: &str = "/sys/kernel/debug/kmemleak";

/// Where debugfs is mounted.
const DEBUGFS: &str = "/sys/kernel/debug";

/// The time between the two scans of [`check`]: kmemleak's minimum object age (5 s) and a
/// margin.
const SCAN_GAP: Duration = Duration::from_millis(5500);

/// The first line of each object kmemleak reports.
const REPORT: &str = "unreferenced object ";

/// The most lines of the first report printed as diagnostics.
const REPORT_LINES: usize = 24;

/// Whether kmemleak's file is there; mounts debugfs first if it is not.
fn available() -> bool {
    if Path::new(FILE).exists() {
        return true;
    }
    let nodev = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let _ = sys::mount("debugfs", DEBUGFS, nodev, "");
    Path::new(FILE).exists()
}

/// Writes one command to kmemleak; `scan` returns when the scan is done.
fn command(cmd: &str) -> Result<(), String> {
    std::fs::write(FILE, cmd).map_err(|e| format!("write {cmd:?} to {FILE}: {}", describe(&e)))
}

/// Before the module loads: scans once and clears what was reported. Returns a line for the
/// log, or `None` without kmemleak.
pub fn prepare() -> Option<String> {
    if !available() {
        return None;
    }
    let start = Instant::now();
    let r = command("scan").and_then(|()| {
        let reported = std::fs::read_to_string(FILE)
            .map(|t| t.matches(REPORT).count())
            .unwrap_or(0);
        command("clear").map(|()| reported)
    });
    Some(match r {
        Ok(n) => format!(
            "kmemleak: scanned in {} ms; {n} objects unreferenced at boot, cleared",
            start.elapsed().as_millis()
        ),
        Err(e) => format!("kmemleak: {e}"),
    })
}

/// The objects of a kmemleak report: each one's lines, from its `unreferenced object` line.
fn reports(text: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    for line in text.lines() {
        if line.starts_with(REPORT) {
            out.push(vec![line]);
        } else if let Some(last) = out.last_mut() {
            last.push(line);
        }
    }
    out
}

/// `kmemleak` (in PID 1, after `unload`): two scans, then no object may be reported. Returns
/// the outcome and diagnostics: the first report's lines and the first line of the others.
pub fn check(name: &str) -> (Outcome, Vec<String>) {
    if !available() {
        return (
            Outcome::skip(format!(
                "no {FILE}: the kernel has no kmemleak (the ppc64le-debug kernel has)"
            )),
            vec![],
        );
    }
    let diag = |msg: &str| ktap::diag_line(1, name, msg);
    let start = Instant::now();
    let scans = command("scan")
        .map(|()| std::thread::sleep(SCAN_GAP))
        .and_then(|()| command("scan"));
    if let Err(e) = scans {
        return (Outcome::fail(e), vec![]);
    }
    let text = match std::fs::read_to_string(FILE) {
        Ok(t) => t,
        Err(e) => {
            return (
                Outcome::fail(format!("read {FILE}: {}", describe(&e))),
                vec![],
            )
        }
    };
    let found = reports(&text);
    let mut diags = vec![diag(&format!(
        "two scans {} ms apart took {} ms in all; {} unreferenced objects",
        SCAN_GAP.as_millis(),
        start.elapsed().as_millis(),
        found.len()
    ))];
    let Some(first) = found.first() else {
        return (Outcome::pass(), diags);
    };
    diags.extend(first.iter().take(REPORT_LINES).map(|l| diag(l)));
    diags.extend(found[1..].iter().take(10).map(|r| diag(r[0])));
    (
        Outcome::fail(format!(
            "kmemleak reports {} unreferenced objects, the first: {}",
            found.len(),
            first[0].trim_end_matches(':')
        )),
        diags,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_split_by_object() {
        let text = "unreferenced object 0xc000000004e1c000 (size 64):\n  comm \"tce-init\", \
                    pid 1, jiffies 4294937296\n  backtrace (crc 0):\n    \
                    kmemleak_alloc+0x4c/0x90\nunreferenced object 0xc000000004e1c080 (size \
                    128):\n  comm \"swapper/0\", pid 1, jiffies 4294937000\n";
        let r = reports(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].len(), 4);
        assert!(r[0][1].contains("tce-init"));
        assert_eq!(
            r[1][0],
            "unreferenced object 0xc000000004e1c080 (size 128):"
        );
        assert!(reports("").is_empty());
    }
}
