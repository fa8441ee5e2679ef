// SPDX-License-Identifier: GPL-2.0
//! `tce-vmm-test hammer`: vCPUs issue TCE hypercalls for a while, for a test that unloads the module.
//!
//! Each vCPU runs the same round of calls again and again until the time is up: `H_PUT_TCE`,
//! `H_GET_TCE` and `H_STUFF_TCE` on a LIOBN that no table anywhere has, and the same on a window
//! of KVM's own table (`KVM_CREATE_SPAPR_TCE_64`, made while the module's `takeover` is off, as
//! tce-init loads it). KVM has no table for the first LIOBN and exits to the VMM, which answers
//! `H_PARAMETER`; KVM answers the calls on its own table in the kernel.
//!
//! The VM is made without the DDW shim ([`Vmm::without_shim`]): the VMM never opens
//! `/dev/tce_accel`, so `tce_accel` can be unloaded and loaded again while the guest runs,
//! which is what tce-init's `unload_during_hypercalls` test does. Every result is checked:
//! `H_PARAMETER` on the unowned LIOBN whether or not the module is loaded; on KVM's window
//! `H_SUCCESS`, each `H_GET_TCE` returning the entry the vCPU has just stored or cleared (each
//! vCPU has entries of its own), and no exit to the VMM.

use std::sync::mpsc;
use std::time::{
    Duration,
    Instant, //
};

use tce_engine::window::WindowParams;

use crate::error::{
    Error,
    Result, //
};
use tce_vmm::guest::{
    CallResult,
    GuestCall,
    Job,
    H_PROGRESS,
    MAX_VCPUS,
    RAM_SIZE, //
};
use tce_vmm::hcall::{
    code_name,
    Hcall,
    H_PARAMETER, //
};
use tce_vmm::paths::PathKind;
use tce_vmm::vmm::{
    Vmm,
    KVM_LIOBN,
    WINDOW_PAGE_SHIFT, //
};

/// How `hammer` runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// vCPUs issuing calls.
    pub vcpus: usize,
    /// How long they keep issuing them.
    pub duration: Duration,
}

/// The LIOBN no table has: neither KVM, nor `tce_accel`, nor the VMM.
pub const UNOWNED_LIOBN: u64 = 0x7300_0000;

/// Entries of KVM's window: 2^16 (256 MiB of bus space at bus address 0).
const KVM_WINDOW_ENTRIES: u64 = 1 << 16;

/// Entries of KVM's window that each vCPU uses, from `vcpu * SPAN`.
const SPAN: u64 = 4096;

/// Rounds of eight calls in one job; a job takes tens of milliseconds on the emulated host.
const ROUNDS_PER_JOB: u64 = 200;

/// How many wrong answers are printed one by one.
const SHOWN: usize = 20;

/// The guest's 4 KiB pages; TCEs point into guest RAM.
const RAM_PAGES: u64 = RAM_SIZE >> 12;

const _: () = assert!(MAX_VCPUS as u64 * SPAN <= KVM_WINDOW_ENTRIES);

/// What a call must return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// `H_PARAMETER`: a call on the unowned LIOBN.
    Parameter,
    /// `H_SUCCESS`.
    Success,
    /// `H_SUCCESS` with this entry in r4.
    Entry(u64),
}

/// One vCPU's job: the calls and what each must return; `None` for the progress call.
struct HammerJob {
    job: Job,
    want: Vec<Option<(Hcall, Want)>>,
}

impl HammerJob {
    /// Adds a call and what it must return.
    fn push(&mut self, call: Hcall, want: Want) {
        self.job.push(call);
        self.want.push(Some((call, want)));
    }
}

/// The job of vCPU `vcpu`; with `report`, the guest tells the VMM after its first round that
/// it is running.
fn job(vcpu: u64, report: bool) -> HammerJob {
    let mut j = HammerJob {
        job: Job::default(),
        want: Vec::new(),
    };
    for k in 0..ROUNDS_PER_JOB {
        let rel = vcpu * SPAN + (k * 37) % (SPAN - 8);
        let ioba = rel << WINDOW_PAGE_SHIFT;
        let tce = (((vcpu * ROUNDS_PER_JOB + k) % RAM_PAGES) << 12) | (1 + k % 3);
        let npages = 1 + k % 8;
        // Store an entry, read it, clear it with H_STUFF_TCE, read it again; on the unowned
        // LIOBN every call gets H_PARAMETER.
        let p = Want::Parameter;
        for (liobn, wants) in [
            (UNOWNED_LIOBN, [p, p, p, p]),
            (
                KVM_LIOBN,
                [
                    Want::Success,
                    Want::Entry(tce),
                    Want::Success,
                    Want::Entry(0),
                ],
            ),
        ] {
            let value = 0;
            let calls = [
                Hcall::Put { liobn, ioba, tce },
                Hcall::Get { liobn, ioba },
                Hcall::Stuff {
                    liobn,
                    ioba,
                    value,
                    npages,
                },
                Hcall::Get { liobn, ioba },
            ];
            for (call, want) in calls.into_iter().zip(wants) {
                j.push(call, want);
            }
        }
        if report && k == 0 {
            j.job.calls.push(GuestCall {
                nr: H_PROGRESS,
                args: [0; 4],
            });
            j.want.push(None);
        }
    }
    j
}

/// What one vCPU saw.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    /// Calls on the unowned LIOBN.
    unowned: u64,
    /// Of those, answered `H_PARAMETER`.
    parameter: u64,
    /// Calls on KVM's window.
    kvm: u64,
    /// Of those, answered `H_SUCCESS` (and for `H_GET_TCE` with the right entry).
    kvm_right: u64,
    /// Of those, `H_GET_TCE` calls that read the entry back.
    entries_read: u64,
    /// Wrong answers.
    wrong: u64,
    /// Jobs run.
    jobs: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.unowned += o.unowned;
        self.parameter += o.parameter;
        self.kvm += o.kvm;
        self.kvm_right += o.kvm_right;
        self.entries_read += o.entries_read;
        self.wrong += o.wrong;
        self.jobs += o.jobs;
    }

    /// Checks the results of one job, printing the first wrong answers (`shown` so far).
    fn check(&mut self, vcpu: u32, j: &HammerJob, results: &[CallResult], shown: &mut usize) {
        for (i, (want, got)) in j.want.iter().zip(results).enumerate() {
            let Some((call, want)) = *want else { continue };
            let on_kvm = call.liobn() == KVM_LIOBN;
            let ok = match want {
                Want::Parameter => got.r3 == H_PARAMETER,
                Want::Success => got.r3 == 0,
                Want::Entry(e) => got.r3 == 0 && got.r4 == e,
            };
            if on_kvm {
                self.kvm += 1;
                self.kvm_right += u64::from(ok);
                self.entries_read += u64::from(ok && matches!(want, Want::Entry(_)));
            } else {
                self.unowned += 1;
                self.parameter += u64::from(ok);
            }
            if ok {
                continue;
            }
            self.wrong += 1;
            if *shown < SHOWN {
                *shown += 1;
                let r4 = match want {
                    Want::Entry(_) => format!(" with r4 {:#x}", got.r4),
                    _ => String::new(),
                };
                println!(
                    "tce-vmm-test: FAILED: hammer: vCPU {vcpu} call {i} of job {}: {call}: got {}{r4}, \
                     want {}",
                    self.jobs,
                    code_name(got.r3),
                    match want {
                        Want::Parameter => "H_PARAMETER".to_string(),
                        Want::Success => "H_SUCCESS".to_string(),
                        Want::Entry(e) => format!("H_SUCCESS with r4 {e:#x}"),
                    }
                );
            }
        }
        self.jobs += 1;
    }
}

/// Runs `tce-vmm-test hammer`; returns whether every answer was right.
pub fn run(opts: &Options) -> Result<bool> {
    let started = Instant::now();
    let vmm = Vmm::without_shim()?;
    let params = WindowParams::new(KVM_LIOBN, WINDOW_PAGE_SHIFT, 0, KVM_WINDOW_ENTRIES);
    vmm.add_kvm_window(params)?;
    let n = opts.vcpus.clamp(1, MAX_VCPUS);
    let mut vcpus = Vec::new();
    for id in 0..n as u32 {
        vcpus.push(vmm.create_vcpu(id)?);
    }
    println!(
        "tce-vmm-test: hammer: {n} vCPUs for {:.1} s: H_PUT_TCE, H_GET_TCE, H_STUFF_TCE on LIOBN \
         {UNOWNED_LIOBN:#x} (no table anywhere: the VMM answers H_PARAMETER) \
         and on LIOBN {KVM_LIOBN:#x} (KVM_CREATE_SPAPR_TCE_64, {KVM_WINDOW_ENTRIES:#x} entries)",
        opts.duration.as_secs_f64()
    );
    let before = vmm.paths.exits();
    let (tx, rx) = mpsc::channel::<()>();
    let outcomes: Vec<Result<Counts>> = std::thread::scope(|s| {
        let handles: Vec<_> = vcpus
            .into_iter()
            .enumerate()
            .map(|(area, mut vcpu)| {
                let tx = tx.clone();
                let vmm = &vmm;
                s.spawn(move || -> Result<Counts> {
                    let first = job(area as u64, true);
                    let rest = job(area as u64, false);
                    let mut counts = Counts::default();
                    let mut shown = 0;
                    let deadline = Instant::now() + opts.duration;
                    loop {
                        let j = if counts.jobs == 0 { &first } else { &rest };
                        let results = vmm.run_job(&mut vcpu, area, &j.job, &|| {
                            let _ = tx.send(());
                        })?;
                        counts.check(vcpu.id(), j, &results, &mut shown);
                        if Instant::now() >= deadline {
                            return Ok(counts);
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut running = 0;
        while running < n && rx.recv_timeout(Duration::from_secs(60)).is_ok() {
            running += 1;
        }
        if running == n {
            // The line tce-init waits for before it unloads the module; flushed by println.
            println!(
                "tce-vmm-test: hammer: running: all {n} vCPUs are issuing hypercalls after {:.3} s",
                started.elapsed().as_secs_f64()
            );
        }
        handles
            .into_iter()
            .enumerate()
            .map(|(v, h)| h.join().unwrap_or(Err(Error::VcpuPanic { vcpu: v as u32 })))
            .collect()
    });
    let exits = vmm.paths.exits().since(&before);

    let mut total = Counts::default();
    for (v, outcome) in outcomes.into_iter().enumerate() {
        let c = outcome?;
        println!(
            "tce-vmm-test: hammer: vCPU {v}: {} jobs: unowned LIOBN {} calls, {} H_PARAMETER; kvm \
             LIOBN {} calls, {} right; {} wrong",
            c.jobs, c.unowned, c.parameter, c.kvm, c.kvm_right, c.wrong
        );
        total.add(&c);
    }
    let kvm_exits = exits.of(PathKind::Kvm);
    let ok = total.wrong == 0 && kvm_exits == 0 && exits.unknown_liobn == total.unowned;
    if kvm_exits != 0 {
        println!(
            "tce-vmm-test: FAILED: hammer: {kvm_exits} calls on KVM's window exited to the VMM"
        );
    }
    if exits.unknown_liobn != total.unowned {
        println!(
            "tce-vmm-test: FAILED: hammer: {} exits to the VMM for the unowned LIOBN, want one per \
             call ({})",
            exits.unknown_liobn, total.unowned
        );
    }
    println!(
        "tce-vmm-test hammer: {}: {n} vCPUs, {:.1} s, {} jobs: unowned LIOBN {UNOWNED_LIOBN:#x}: {} \
         calls, {} H_PARAMETER, {} exits to the VMM; kvm LIOBN {KVM_LIOBN:#x}: {} calls, {} \
         H_SUCCESS with the right entry ({} entries read back), {} exits to the VMM; {} wrong \
         answers",
        if ok { "PASS" } else { "FAIL" },
        started.elapsed().as_secs_f64(),
        total.jobs,
        total.unowned,
        total.parameter,
        exits.unknown_liobn,
        total.kvm,
        total.kvm_right,
        total.entries_read,
        kvm_exits,
        total.wrong
    );
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each vCPU's calls on KVM's window stay in its own entries, inside the window, and every
    /// `H_GET_TCE` expects what the calls before it on that vCPU left there.
    #[test]
    fn jobs_are_self_consistent() {
        for vcpu in 0..MAX_VCPUS as u64 {
            let j = job(vcpu, true);
            assert_eq!(j.job.calls.len(), j.want.len());
            assert_eq!(j.want.iter().filter(|w| w.is_none()).count(), 1);
            let mut table = std::collections::BTreeMap::new();
            for (call, want) in j.want.iter().flatten() {
                if call.liobn() == UNOWNED_LIOBN {
                    assert_eq!(*want, Want::Parameter);
                    continue;
                }
                match *call {
                    Hcall::Put { ioba, tce, .. } => {
                        let rel = ioba >> WINDOW_PAGE_SHIFT;
                        assert!((vcpu * SPAN..(vcpu + 1) * SPAN).contains(&rel));
                        assert!(tce >> 12 < RAM_PAGES && tce & 3 != 0);
                        table.insert(rel, tce);
                    }
                    Hcall::Stuff {
                        ioba,
                        value,
                        npages,
                        ..
                    } => {
                        let rel = ioba >> WINDOW_PAGE_SHIFT;
                        assert!(rel + npages <= (vcpu + 1) * SPAN);
                        for r in rel..rel + npages {
                            table.insert(r, value);
                        }
                    }
                    Hcall::Get { ioba, .. } => {
                        let rel = ioba >> WINDOW_PAGE_SHIFT;
                        let e = table.get(&rel).copied().unwrap_or(0);
                        assert_eq!(*want, Want::Entry(e));
                    }
                    Hcall::Indirect { .. } => unreachable!(),
                }
            }
        }
    }
}
