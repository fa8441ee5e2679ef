// SPDX-License-Identifier: GPL-2.0
//! `tce-vmm-test check`: every result on the three paths against the simulator, and a hostile guest.
//!
//! 1. The correctness sequence and the hostile sequence run on each path in turn (vCPU 0);
//!    every r3 (and r4 of a successful `H_GET_TCE`) is compared with the reference, then the
//!    table's non-zero entries, read through its mapping, with the reference's.
//! 2. Several vCPUs hammer `H_PUT_TCE`, `H_STUFF_TCE` and `H_GET_TCE` on the accel window
//!    while the VMM's main thread removes it with `ibm,remove-pe-dma-window`. Before the
//!    removal the calls succeed; after it the VMM answers `H_PARAMETER`: no other answer is
//!    valid. Afterwards the removed window's table must be closed and unmapped, and calls on
//!    it must get `H_PARAMETER`.

use std::sync::mpsc;
use std::time::{
    Duration,
    Instant, //
};

use crate::error::{
    Error,
    Result, //
};
use crate::reference::{
    compare_calls,
    compare_entries,
    tally,
    Mismatch,
    Reference, //
};
use crate::scenario::{
    self,
    Sequence, //
};
use tce_sys::process;
use tce_vmm::error::Error as VmmError;
use tce_vmm::guest::{
    CallResult,
    MAX_VCPUS, //
};
use tce_vmm::hcall::{
    code_name,
    Hcall,
    H_PARAMETER, //
};
use tce_vmm::kvm::Vcpu;
use tce_vmm::paths::PathKind;
use tce_vmm::vmm::{
    Vmm,
    Windows, //
};

/// How `check` runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Calls in the correctness sequence.
    pub calls: usize,
    /// The correctness sequence's seed.
    pub seed: u64,
    /// vCPUs in the hammer run.
    pub hammer_vcpus: usize,
    /// Calls per vCPU in the hammer run.
    pub hammer_calls: usize,
}

/// How many mismatches are printed one by one.
const SHOWN: usize = 20;

/// What went wrong, collected over the whole run.
#[derive(Default)]
struct Findings {
    mismatches: Vec<Mismatch>,
    failures: Vec<String>,
    calls_checked: usize,
}

impl Findings {
    fn mismatches(&mut self, m: Vec<Mismatch>) {
        for x in m.iter().take(SHOWN.saturating_sub(self.mismatches.len())) {
            println!("tce-vmm-test: MISMATCH: {x}");
        }
        self.mismatches.extend(m);
    }

    fn fail(&mut self, msg: String) {
        println!("tce-vmm-test: FAILED: {msg}");
        self.failures.push(msg);
    }
}

/// Runs `tce-vmm-test check`; returns whether everything checked out.
pub fn run(opts: &Options) -> Result<bool> {
    let started = Instant::now();
    let vmm = Vmm::new()?;
    let mut vcpu0 = vmm.create_vcpu(0)?;
    let windows = vmm.set_up_windows(&mut vcpu0)?;
    describe(&windows);
    let mut found = Findings::default();

    let correct = scenario::correctness(&windows.params, opts.calls, opts.seed)?;
    let hostile = scenario::hostile(&windows.params)?;
    println!(
        "tce-vmm-test: sequences: correctness {} calls (seed {}), hostile {} calls; the kvm path \
         leaves out {} + {} calls where Linux's C path differs by design",
        correct.calls(),
        opts.seed,
        hostile.calls(),
        correct.c_path_differences(),
        hostile.c_path_differences()
    );
    let host_shift = process::page_size().trailing_zeros();
    for kind in PathKind::ALL {
        let mut reference = Reference::new(windows.params(kind), host_shift);
        for (what, seq) in [("correctness", &correct), ("hostile", &hostile)] {
            let run = SequenceRun {
                vmm: &vmm,
                windows: &windows,
                kind,
                what,
            };
            run.check(&mut vcpu0, seq, &mut reference, &mut found)?;
        }
    }

    let hammer = hammer(&vmm, &mut vcpu0, &windows, opts, &mut found)?;

    let ok = found.mismatches.is_empty() && found.failures.is_empty();
    let exits = vmm.paths.exits();
    println!(
        "tce-vmm-test check: {}: {} calls checked against the simulator on 3 paths, {} mismatches; \
         hostile run: {} vCPUs x {} calls while the window was removed: {} H_SUCCESS, {} \
         H_PARAMETER, {} invalid; {} failed checks; exits to the VMM: accel {}, kvm {}, user \
         {}, unknown LIOBN {}, H_TOO_HARD answered H_PARAMETER {}; {:.1} s",
        if ok { "PASS" } else { "FAIL" },
        found.calls_checked,
        found.mismatches.len(),
        opts.hammer_vcpus,
        opts.hammer_calls,
        hammer.success,
        hammer.parameter,
        hammer.invalid,
        found.failures.len(),
        exits.of(PathKind::Accel),
        exits.of(PathKind::Kvm),
        exits.of(PathKind::User),
        exits.unknown_liobn,
        exits.too_hard,
        started.elapsed().as_secs_f64()
    );
    Ok(ok)
}

/// Prints the windows.
fn describe(w: &Windows) {
    let p = &w.params;
    println!(
        "tce-vmm-test: windows: accel LIOBN {:#x} (tce_accel, made by ibm,create-pe-dma-window \
         through the DDW shim), kvm LIOBN {:#x} (KVM_CREATE_SPAPR_TCE_64), user LIOBN {:#x} \
         (engine in the VMM); each {} KiB pages, bus address {:#x}, {:#x} entries",
        w.accel,
        w.kvm,
        w.user,
        (1u64 << p.page_shift) >> 10,
        p.offset << p.page_shift,
        p.size
    );
}

/// One sequence on one path.
struct SequenceRun<'a> {
    vmm: &'a Vmm,
    windows: &'a Windows,
    kind: PathKind,
    what: &'static str,
}

impl SequenceRun<'_> {
    /// Runs the sequence and compares every result, then the table, with the reference.
    fn check(
        &self,
        vcpu: &mut Vcpu,
        seq: &Sequence,
        reference: &mut Reference,
        found: &mut Findings,
    ) -> Result<()> {
        let (vmm, windows, kind, what) = (self.vmm, self.windows, self.kind, self.what);
        let pj = seq.for_path(kind, windows.liobn(kind));
        reference.store_lists(&pj.job);
        let before = vmm.paths.exits();
        let results = vmm.run_job(vcpu, 0, &pj.job, &|| {})?;
        let exits = vmm.paths.exits().since(&before);
        let (calls, got): (Vec<Hcall>, Vec<CallResult>) =
            pj.tce_results(&results).map(|(c, r)| (c, *r)).unzip();
        let m = compare_calls(kind.name(), &calls, &got, reference);
        let path = vmm
            .paths
            .get(windows.liobn(kind))
            .ok_or(VmmError::WindowGone {
                liobn: windows.liobn(kind),
            })?;
        let entries = path.entries()?;
        let t = compare_entries(kind.name(), &entries, &reference.entries());
        println!(
            "tce-vmm-test: {what}: {} path: {} calls ({}), {} exits to the VMM ({} for an unknown \
             LIOBN), {} mismatches; table: {} non-zero entries read back through the mapping, {} \
             mismatches",
            kind.name(),
            calls.len(),
            tally(&got),
            exits.of(kind),
            exits.unknown_liobn,
            m.len(),
            entries.len(),
            t.len()
        );
        found.calls_checked += calls.len();
        found.mismatches(m);
        found.mismatches(t);
        Ok(())
    }
}

/// The outcome of the hammer run.
#[derive(Default)]
struct Hammer {
    success: usize,
    parameter: usize,
    invalid: usize,
}

/// Counts this process's descriptors and mappings of TCE tables in the kernel. Where KVM has
/// TCE tables, `tce_accel`'s are KVM table files too, so KVM's own count as well: the caller
/// compares counts before and after.
fn accel_tables_open() -> (usize, usize) {
    const NAMES: [&str; 2] = ["anon_inode:kvm-spapr-tce", "anon_inode:tce-accel-table"];
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .map(|t| NAMES.contains(&&*t.to_string_lossy()))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0);
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map(|m| {
            m.lines()
                .filter(|l| NAMES.iter().any(|n| l.ends_with(n)))
                .count()
        })
        .unwrap_or(0);
    (fds, maps)
}

/// Several vCPUs hammer the accel window while the main thread removes it.
fn hammer(
    vmm: &Vmm,
    vcpu0: &mut Vcpu,
    windows: &Windows,
    opts: &Options,
    found: &mut Findings,
) -> Result<Hammer> {
    let n = opts.hammer_vcpus.clamp(1, MAX_VCPUS);
    let mut vcpus = Vec::new();
    for id in 1..=n as u32 {
        vcpus.push(vmm.create_vcpu(id)?);
    }
    let jobs: Vec<_> = (0..n)
        .map(|v| {
            scenario::hammer(&windows.params, v as u64, opts.hammer_calls)
                .for_path(PathKind::Accel, windows.accel)
        })
        .collect();
    let (fds_before, maps_before) = accel_tables_open();
    let before = vmm.paths.exits();
    let (tx, rx) = mpsc::channel::<usize>();
    let started = Instant::now();
    let (outcomes, removal) = std::thread::scope(|s| {
        let handles: Vec<_> = vcpus
            .into_iter()
            .zip(&jobs)
            .enumerate()
            .map(|(area, (mut vcpu, pj))| {
                let tx = tx.clone();
                s.spawn(move || {
                    let r = vmm.run_job(&mut vcpu, area, &pj.job, &|| {
                        let _ = tx.send(area);
                    });
                    (r.map_err(Error::from), started.elapsed())
                })
            })
            .collect();
        drop(tx);
        // Remove the window once every vCPU is hammering it.
        let mut reported = 0;
        while reported < n && rx.recv_timeout(Duration::from_secs(120)).is_ok() {
            reported += 1;
        }
        let removal = vmm.remove_window(windows.accel).map(|()| started.elapsed());
        let outcomes: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(v, h)| {
                h.join().unwrap_or((
                    Err(Error::VcpuPanic { vcpu: v as u32 + 1 }),
                    started.elapsed(),
                ))
            })
            .collect();
        (outcomes, removal)
    });
    let removed_at = removal?;
    let exits = vmm.paths.exits().since(&before);

    let mut h = Hammer::default();
    let mut last_done = Duration::ZERO;
    for (v, ((r, done), pj)) in outcomes.into_iter().zip(&jobs).enumerate() {
        let results = r?;
        last_done = last_done.max(done);
        let (mut ok, mut param) = (0, 0);
        for (i, (call, res)) in pj.tce_results(&results).enumerate() {
            match res.r3 {
                0 => ok += 1,
                H_PARAMETER => param += 1,
                other => {
                    h.invalid += 1;
                    if h.invalid <= SHOWN {
                        found.fail(format!(
                            "hammer: vCPU {} call {i}: {call}: got {}, valid answers are \
                             H_SUCCESS and H_PARAMETER",
                            v + 1,
                            code_name(other)
                        ));
                    }
                }
            }
        }
        println!(
            "tce-vmm-test: hammer: vCPU {}: {} calls: {ok} H_SUCCESS, {param} H_PARAMETER; done at \
             {:.3} s",
            v + 1,
            ok + param,
            done.as_secs_f64()
        );
        h.success += ok;
        h.parameter += param;
    }
    println!(
        "tce-vmm-test: hammer: window {:#x} removed at {:.3} s, the last vCPU finished at {:.3} s; \
         {} exits to the VMM on the accel path, {} for the unknown LIOBN",
        windows.accel,
        removed_at.as_secs_f64(),
        last_done.as_secs_f64(),
        exits.of(PathKind::Accel),
        exits.unknown_liobn
    );
    if h.success == 0 {
        found.fail("hammer: no call succeeded before the window was removed".into());
    }
    if h.parameter == 0 {
        println!(
            "tce-vmm-test: note: hammer: every vCPU finished before the removal took effect; raise \
             --hammer-calls to overlap them"
        );
    }

    // The removed window: its table is closed and unmapped, and the guest gets H_PARAMETER.
    let (fds, maps) = accel_tables_open();
    if fds + 1 != fds_before || maps + 1 != maps_before {
        found.fail(format!(
            "after the removal this process has {fds} tce_accel table descriptors and {maps} \
             mappings, want {} and {}",
            fds_before.saturating_sub(1),
            maps_before.saturating_sub(1)
        ));
    }
    let after = scenario::hammer(&windows.params, 0, 6).for_path(PathKind::Accel, windows.accel);
    let results = vmm.run_job(vcpu0, 0, &after.job, &|| {})?;
    for (call, r) in after.tce_results(&results) {
        found.calls_checked += 1;
        if r.r3 != H_PARAMETER {
            found.fail(format!(
                "after the removal: {call}: got {}, want H_PARAMETER",
                code_name(r.r3)
            ));
        }
    }
    Ok(h)
}
