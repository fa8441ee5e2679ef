// SPDX-License-Identifier: GPL-2.0

//! The deterministic cost of each benchmark row: what the `tce_cost` QEMU plugin
//! (`tools/qemu-plugin/tce_cost.c`) counted in the emulated host for the row's job.
//!
//! The plugin writes one line per job of alike calls:
//! `tce_cost hcall=0x20 liobn=0x80000001 npages=0 calls=N insns=M insns_min=m lines=L pages=P`.
//! A row of the benchmark is the last such job with the row's hypercall, its path's LIOBN (from
//! the benchmark's JSON), its count (`H_STUFF_TCE` and `H_PUT_TCE_INDIRECT`) and its number of
//! calls.

use std::fmt::Write as _;

use serde_json::{
    json,
    Value, //
};

use crate::{
    Report,
    PATHS, //
};

/// One job the plugin measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// The hypercall number.
    pub hcall: u64,
    /// The LIOBN.
    pub liobn: u64,
    /// The count of `H_STUFF_TCE` and `H_PUT_TCE_INDIRECT`, else 0.
    pub npages: u64,
    /// Calls in the job.
    pub calls: u64,
    /// Median instructions the host executed per call.
    pub insns: u64,
    /// Fewest instructions of one call.
    pub insns_min: u64,
    /// Median distinct 128-byte cache lines touched per call.
    pub lines: u64,
    /// Median distinct 64 KiB pages touched per call.
    pub pages: u64,
}

fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Reads the plugin's report; lines that are not `tce_cost` lines are skipped.
pub fn parse(text: &str) -> Vec<Job> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("tce_cost ")?;
            let get = |name: &str| {
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                    .and_then(number)
            };
            Some(Job {
                hcall: get("hcall")?,
                liobn: get("liobn")?,
                npages: get("npages")?,
                calls: get("calls")?,
                insns: get("insns")?,
                insns_min: get("insns_min")?,
                lines: get("lines")?,
                pages: get("pages")?,
            })
        })
        .collect()
}

/// The hypercall number and count of a row name such as `H_STUFF_TCE(8)`.
fn decode(row: &str) -> Option<(u64, u64)> {
    let (name, count) = match row.split_once('(') {
        Some((n, c)) => (n, c.strip_suffix(')')?.parse().ok()?),
        None => (row, 0),
    };
    let nr = match name {
        "H_GET_TCE" => 0x1c,
        "H_PUT_TCE" => 0x20,
        "H_STUFF_TCE" => 0x138,
        "H_PUT_TCE_INDIRECT" => 0x13c,
        _ => return None,
    };
    Some((nr, count))
}

/// The job of `hcall` (a row name) on `path`, if the plugin measured it.
pub fn find<'a>(rep: &Report, jobs: &'a [Job], hcall: &str, path: &str) -> Option<&'a Job> {
    let (nr, npages) = decode(hcall)?;
    let liobn = rep.doc.get("liobns")?.get(path)?.as_u64()?;
    let calls = rep.row(hcall, path)?.calls;
    jobs.iter()
        .rev()
        .find(|j| j.hcall == nr && j.liobn == liobn && j.npages == npages && j.calls == calls)
}

/// The three paths side by side: instructions per call (median), then cache lines and pages,
/// and the accel/kvm ratio of instructions.
pub fn table(rep: &Report, jobs: &[Job]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Per-call cost in the emulated host (tce_cost plugin; deterministic): instructions, \
         cache lines / pages touched, medians"
    );
    let _ = writeln!(
        s,
        "{:<26} {:>22} {:>22} {:>22} {:>10}",
        "hypercall", "accel (tce_accel)", "kvm (stock C path)", "user (exit to VMM)", "accel/kvm"
    );
    for h in rep.hcalls() {
        let cell = |p: &str| {
            find(rep, jobs, h, p).map_or_else(
                || "-".to_string(),
                |j| format!("{} ({}/{})", j.insns, j.lines, j.pages),
            )
        };
        let ratio = match (find(rep, jobs, h, "accel"), find(rep, jobs, h, "kvm")) {
            (Some(a), Some(k)) if k.insns > 0 => format!("{:.2}", a.insns as f64 / k.insns as f64),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "{:<26} {:>22} {:>22} {:>22} {:>10}",
            h,
            cell("accel"),
            cell("kvm"),
            cell("user"),
            ratio
        );
    }
    s
}

/// The cost of every row as JSON, for the report's `cost` field.
pub fn json(rep: &Report, jobs: &[Job]) -> Value {
    let mut rows = Vec::new();
    for h in rep.hcalls() {
        for p in PATHS {
            if let Some(j) = find(rep, jobs, h, p) {
                rows.push(json!({
                    "hcall": h, "path": p, "calls": j.calls, "insns": j.insns,
                    "insns_min": j.insns_min, "lines": j.lines, "pages": j.pages,
                }));
            }
        }
    }
    json!({
        "tool": "tools/qemu-plugin/tce_cost.c",
        "units": "instructions the emulated host executes per call from the guest's sc 1 to its next H_ENTER_NESTED; distinct 128-byte lines and 64 KiB pages its loads and stores touch; medians per row",
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_plugin_report_and_matches_rows() {
        let text = "tce_cost hcall=0x20 liobn=0x80000001 npages=0 calls=2 insns=10 insns_min=9 \
                    lines=3 pages=2\nnoise\n\
                    tce_cost hcall=0x20 liobn=0x80000001 npages=0 calls=4 insns=11 insns_min=9 \
                    lines=3 pages=2\n\
                    tce_cost hcall=0x138 liobn=0x71000000 npages=8 calls=4 insns=20 \
                    insns_min=19 lines=5 pages=3\n";
        let jobs = parse(text);
        assert_eq!(jobs.len(), 3);
        assert_eq!(decode("H_STUFF_TCE(8)"), Some((0x138, 8)));
        assert_eq!(decode("H_PUT_TCE"), Some((0x20, 0)));
        assert_eq!(decode("H_BOGUS"), None);
        let doc = json!({
            "calls": 4, "timebase_hz": 512000000,
            "liobns": {"accel": 0x8000_0001u64, "kvm": 0x7100_0000u64, "user": 0x7200_0000u64},
            "results": [
                {"hcall": "H_PUT_TCE", "path": "accel", "calls": 4, "failed": 0, "exits": 0,
                 "min_ns": 1.0, "median_ns": 2.0, "p99_ns": 3.0, "median_ticks": 1},
                {"hcall": "H_STUFF_TCE(8)", "path": "kvm", "calls": 4, "failed": 0, "exits": 0,
                 "min_ns": 1.0, "median_ns": 2.0, "p99_ns": 3.0, "median_ticks": 1},
            ],
        });
        let rep = crate::parse(doc).unwrap();
        assert_eq!(
            find(&rep, &jobs, "H_PUT_TCE", "accel").map(|j| j.insns),
            Some(11)
        );
        assert_eq!(
            find(&rep, &jobs, "H_STUFF_TCE(8)", "kvm").map(|j| j.insns),
            Some(20)
        );
        assert!(find(&rep, &jobs, "H_PUT_TCE", "kvm").is_none());
        let t = table(&rep, &jobs);
        assert!(t.contains("11 (3/2)"), "{t}");
        assert_eq!(json(&rep, &jobs)["rows"].as_array().map(Vec::len), Some(2));
    }
}
