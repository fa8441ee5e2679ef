// SPDX-License-Identifier: GPL-2.0
//! `tce-vmm-test bench`: per-call latency of each TCE hypercall on the three paths, from the guest's timebase.
//!
//! For each hypercall the guest makes N calls on each path in turn, reading the timebase just
//! before and after `sc 1`. The table gives min, median and p99 in timebase ticks and in ns
//! (the timebase frequency comes from `/proc/cpuinfo`), and the number of exits to the VMM per
//! path: N for the user path, 0 for the kvm path, and 0 for the accel path once the kernel hands
//! its hypercalls to `tce_accel`. The same figures are printed as one line of JSON after
//! [`JSON_MARKER`]; it holds no white space, so that it can be split and joined again
//! anywhere (tce-init prints it in parts, since a kernel log record holds at most 1 KiB).
//! Every call must succeed.

use std::time::Instant;

use serde_json::json;

use crate::error::{
    Error,
    Result, //
};
use crate::scenario::{
    self,
    BenchCall, //
};
use tce_vmm::paths::PathKind;
use tce_vmm::vmm::Vmm;

/// The prefix of the JSON line, for the host to find it in the console log.
pub const JSON_MARKER: &str = "TCE_VMM_JSON ";

/// Entries each measured `H_STUFF_TCE` clears.
pub const STUFF_NPAGES: u64 = 8;

/// The rows of the benchmark, in order.
const CALLS: [BenchCall; 5] = [
    BenchCall::Put,
    BenchCall::Get,
    BenchCall::Stuff(STUFF_NPAGES),
    BenchCall::Indirect(512),
    BenchCall::Indirect(1),
];

/// Latency statistics of one row, in timebase ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// The fastest call.
    pub min: u64,
    /// The median (the upper one of an even count).
    pub median: u64,
    /// The 99th percentile: the smallest value at least 99% of the calls do not exceed.
    pub p99: u64,
    /// The slowest call.
    pub max: u64,
}

impl Stats {
    /// The statistics of `ticks`; `None` if it is empty.
    pub fn of(ticks: &[u64]) -> Option<Stats> {
        let mut v = ticks.to_vec();
        v.sort_unstable();
        let n = v.len();
        let p99 = (n * 99).div_ceil(100).max(1) - 1;
        Some(Stats {
            min: *v.first()?,
            median: v[n / 2],
            p99: v[p99],
            max: v[n - 1],
        })
    }
}

/// One measured hypercall on one path.
struct Row {
    call: BenchCall,
    path: PathKind,
    stats: Stats,
    exits: u64,
    failed: usize,
}

/// Reads the timebase frequency from `/proc/cpuinfo` ("timebase : 512000000").
pub fn timebase_hz() -> Result<u64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").map_err(|_| Error::Timebase)?;
    info.lines()
        .filter(|l| l.starts_with("timebase"))
        .filter_map(|l| l.split_once(':'))
        .find_map(|(_, v)| v.trim().parse().ok())
        .filter(|&hz: &u64| hz > 0)
        .ok_or(Error::Timebase)
}

/// Runs `tce-vmm-test bench` with `calls` calls per row; returns whether every call succeeded.
pub fn run(calls: usize) -> Result<bool> {
    let started = Instant::now();
    let hz = timebase_hz()?;
    let vmm = Vmm::new()?;
    let mut vcpu = vmm.create_vcpu(0)?;
    let windows = vmm.set_up_windows(&mut vcpu)?;
    let p = windows.params;
    println!(
        "tce-vmm-test bench: {calls} calls per hypercall and path; timebase {hz} Hz; windows of \
         {:#x} entries of {} KiB at bus address {:#x}: accel LIOBN {:#x}, kvm {:#x}, user \
         {:#x}; H_STUFF_TCE clears {STUFF_NPAGES} entries per call",
        p.size,
        (1u64 << p.page_shift) >> 10,
        p.offset << p.page_shift,
        windows.accel,
        windows.kvm,
        windows.user
    );
    let mut rows = Vec::new();
    for call in CALLS {
        let seq = scenario::bench(&p, call, calls)?;
        for path in PathKind::ALL {
            let pj = seq.for_path(path, windows.liobn(path));
            let before = vmm.paths.exits();
            let results = vmm.run_job(&mut vcpu, 0, &pj.job, &|| {})?;
            let exits = vmm.paths.exits().since(&before).of(path);
            let failed = results.iter().filter(|r| r.r3 != 0).count();
            let ticks: Vec<u64> = results.iter().map(|r| r.ticks).collect();
            let Some(stats) = Stats::of(&ticks) else {
                continue;
            };
            println!(
                "tce-vmm-test: bench: {} on the {} path: median {} ticks, {exits} exits{}",
                call.label(),
                path.name(),
                stats.median,
                if failed > 0 {
                    format!(", {failed} calls FAILED")
                } else {
                    String::new()
                }
            );
            rows.push(Row {
                call,
                path,
                stats,
                exits,
                failed,
            });
        }
    }
    print_table(&rows, hz);
    let ratios = Ratios::of(&rows);
    ratios.print();
    print_json(&rows, &ratios, calls, hz, &windows);
    let failed: usize = rows.iter().map(|r| r.failed).sum();
    println!(
        "tce-vmm-test bench: {}: {} rows, {failed} failed calls; {:.1} s",
        if failed == 0 { "PASS" } else { "FAIL" },
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(failed == 0)
}

/// Timebase ticks in ns, to 0.1 ns.
fn ns(ticks: u64, hz: u64) -> f64 {
    (ticks as f64 * 1e10 / hz as f64).round() / 10.0
}

fn print_table(rows: &[Row], hz: u64) {
    println!(
        "{:<24} {:<6} {:>10} {:>10} {:>10} {:>12} {:>12} {:>12} {:>8}",
        "hypercall", "path", "min", "median", "p99", "min ns", "median ns", "p99 ns", "exits"
    );
    for r in rows {
        let s = r.stats;
        println!(
            "{:<24} {:<6} {:>10} {:>10} {:>10} {:>12.0} {:>12.0} {:>12.0} {:>8}",
            r.call.label(),
            r.path.name(),
            s.min,
            s.median,
            s.p99,
            ns(s.min, hz),
            ns(s.median, hz),
            ns(s.p99, hz),
            r.exits
        );
    }
    println!(
        "(min, median and p99 in timebase ticks, then in ns; exits: calls that went to the VMM)"
    );
}

/// The ratios of medians the targets are about.
struct Ratios {
    /// Per hypercall: accel median / kvm median.
    accel_over_kvm: Vec<(String, f64)>,
    /// `H_PUT_TCE`: user median / accel median.
    put_user_over_accel: Option<f64>,
    /// accel: `H_PUT_TCE_INDIRECT(512)` median / `H_PUT_TCE` median.
    indirect512_over_put: Option<f64>,
}

impl Ratios {
    fn of(rows: &[Row]) -> Ratios {
        let median = |call: BenchCall, path: PathKind| {
            rows.iter()
                .find(|r| r.call == call && r.path == path)
                .map(|r| r.stats.median as f64)
                .filter(|&m| m > 0.0)
        };
        let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
        Ratios {
            accel_over_kvm: CALLS
                .iter()
                .filter_map(|&c| {
                    ratio(median(c, PathKind::Accel), median(c, PathKind::Kvm))
                        .map(|x| (c.label(), x))
                })
                .collect(),
            put_user_over_accel: ratio(
                median(BenchCall::Put, PathKind::User),
                median(BenchCall::Put, PathKind::Accel),
            ),
            indirect512_over_put: ratio(
                median(BenchCall::Indirect(512), PathKind::Accel),
                median(BenchCall::Put, PathKind::Accel),
            ),
        }
    }

    fn print(&self) {
        let show = |x: Option<f64>| x.map_or("n/a".into(), |x| format!("{x:.2}"));
        let per_call: Vec<String> = self
            .accel_over_kvm
            .iter()
            .map(|(c, x)| format!("{c} {x:.2}"))
            .collect();
        println!("ratios of medians: accel/kvm: {}", per_call.join(", "));
        println!(
            "ratios of medians: H_PUT_TCE user/accel {} (target >= 5); accel \
             H_PUT_TCE_INDIRECT(512)/H_PUT_TCE {} (target < 4); H_PUT_TCE accel/kvm {} (target \
             <= 1.0)",
            show(self.put_user_over_accel),
            show(self.indirect512_over_put),
            show(
                self.accel_over_kvm
                    .iter()
                    .find(|(c, _)| c == "H_PUT_TCE")
                    .map(|(_, x)| *x)
            )
        );
    }
}

fn print_json(rows: &[Row], ratios: &Ratios, calls: usize, hz: u64, w: &tce_vmm::vmm::Windows) {
    let results: Vec<_> = rows
        .iter()
        .map(|r| {
            let s = r.stats;
            json!({
                "hcall": r.call.label(),
                "path": r.path.name(),
                "calls": calls,
                "failed": r.failed,
                "exits": r.exits,
                "min_ticks": s.min,
                "median_ticks": s.median,
                "p99_ticks": s.p99,
                "max_ticks": s.max,
                "min_ns": ns(s.min, hz),
                "median_ns": ns(s.median, hz),
                "p99_ns": ns(s.p99, hz),
                "max_ns": ns(s.max, hz),
            })
        })
        .collect();
    let accel_over_kvm: serde_json::Map<String, serde_json::Value> = ratios
        .accel_over_kvm
        .iter()
        .map(|(c, x)| (c.clone(), json!(x)))
        .collect();
    let doc = json!({
        "tool": "tce-vmm-bench",
        "calls": calls,
        "timebase_hz": hz,
        "stuff_npages": STUFF_NPAGES,
        "window": {
            "page_shift": w.params.page_shift,
            "offset": w.params.offset,
            "size": w.params.size,
        },
        "liobns": { "accel": w.accel, "kvm": w.kvm, "user": w.user },
        "results": results,
        "ratios": {
            "accel_over_kvm": accel_over_kvm,
            "put_user_over_accel": ratios.put_user_over_accel,
            "indirect512_over_put_accel": ratios.indirect512_over_put,
        },
    });
    println!("{JSON_MARKER}{doc}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        let ticks: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(
            Stats::of(&ticks),
            Some(Stats {
                min: 1,
                median: 51,
                p99: 99,
                max: 100
            })
        );
        assert_eq!(
            Stats::of(&[7]),
            Some(Stats {
                min: 7,
                median: 7,
                p99: 7,
                max: 7
            })
        );
        assert_eq!(Stats::of(&[]), None);
    }
}
