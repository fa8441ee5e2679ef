// SPDX-License-Identifier: GPL-2.0
//! `tce-vmm-test churn`: one VM creates and closes tables as fast as it can; another VM's hypercalls
//! must not get slower for it, and the first VM cannot have more tables than the module allows.
//!
//! VM B times `H_PUT_TCE` on a window tce_accel serves, in three phases: quiet; while VM A
//! creates and closes [`Options::tables`] tables (`KVM_CREATE_SPAPR_TCE_64` with `takeover`
//! on, as QEMU creates them); and, as a control for the CPU that VM A's thread takes from VM B
//! under the emulator, while a thread opens and closes /dev/null for as long. VM B's median during
//! the churn must stay within [`MAX_RATIO`] of the larger of the other two: a host-wide lock or
//! grace period on the table paths would show as a far larger gap. Then VM A creates tables
//! until the module refuses with `ENOSPC`, which must happen at exactly `max_tables_per_vm`
//! (set to 100 for the check), and closes them; its locked memory must be back where it was.

use std::sync::atomic::{
    AtomicBool,
    Ordering, //
};
use std::time::{
    Duration,
    Instant, //
};

use rustix::io::Errno;
use tce_engine::window::WindowParams;

use crate::bench::Stats;
use crate::error::{
    Error,
    Result, //
};
use crate::stall::{
    Param,
    TAKEOVER, //
};
use crate::vmm_ext::VmmTestExt;
use tce_vmm::guest::Job;
use tce_vmm::hcall::Hcall;
use tce_vmm::kvm::Vcpu;
use tce_vmm::vmm::{
    Vmm,
    KVM_LIOBN,
    WINDOW_PAGE_SHIFT, //
};

/// How `churn` runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Tables VM A creates and closes while VM B's benchmark runs.
    pub tables: u64,
    /// `H_PUT_TCE` calls in one of VM B's timed jobs.
    pub calls: u64,
}

/// The largest median of VM B during the churn, over the larger of the quiet and control ones.
pub const MAX_RATIO: f64 = 1.5;

/// The module's per-VM table limit.
const MAX_TABLES: &str = "/sys/module/tce_accel/parameters/max_tables_per_vm";

/// `max_tables_per_vm` while the limit is checked.
const LIMIT_FOR_CHECK: u64 = 100;

/// How long the quiet phase times VM B.
const QUIET: Duration = Duration::from_secs(2);

/// A window of VM A: 16 entries of 4 KiB at LIOBN 0x7500_0000 + `i`.
fn window(i: u64) -> WindowParams {
    WindowParams::new(0x7500_0000 + i, WINDOW_PAGE_SHIFT, 0, 16)
}

/// VM B's job: `calls` `H_PUT_TCE` on its window, each entry mapping a guest page.
fn job(calls: u64) -> Job {
    let mut job = Job::default();
    for i in 0..calls {
        job.push(Hcall::Put {
            liobn: KVM_LIOBN,
            ioba: (i % 256) << WINDOW_PAGE_SHIFT,
            tce: ((i % 256) << WINDOW_PAGE_SHIFT) | 3,
        });
    }
    job
}

/// Runs VM B's job until `done` says so (at least once), and returns the ticks of every call.
fn time_until(b: &Vmm, vcpu: &mut Vcpu, job: &Job, done: &dyn Fn() -> bool) -> Result<Vec<u64>> {
    let mut ticks = Vec::new();
    loop {
        let results = b.run_job(vcpu, 0, job, &|| {})?;
        if let Some(r) = results.iter().find(|r| r.r3 != 0) {
            return Err(Error::Hostile {
                what: format!("VM B's H_PUT_TCE (r3 {})", r.r3),
                errno: Errno::IO,
            });
        }
        ticks.extend(results.iter().map(|r| r.ticks));
        if done() {
            return Ok(ticks);
        }
    }
}

/// Runs `work` on a thread of its own while VM B's job runs; returns VM B's ticks, what `work`
/// returned and how long it took.
fn phase<T: Send>(
    b: &Vmm,
    vcpu: &mut Vcpu,
    job: &Job,
    work: impl FnOnce() -> Result<T> + Send,
) -> Result<(Vec<u64>, T, Duration)> {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let done = &done;
        let worker = s.spawn(move || {
            let t = Instant::now();
            let r = work();
            done.store(true, Ordering::Release);
            r.map(|v| (v, t.elapsed()))
        });
        let ticks = time_until(b, vcpu, job, &|| done.load(Ordering::Acquire));
        let (v, took) = worker.join().unwrap_or(Err(Error::VcpuPanic { vcpu: 0 }))?;
        Ok((ticks?, v, took))
    })
}

/// Runs `tce-vmm-test churn`; returns whether VM B did not notice VM A and the limit held.
pub fn run(opts: &Options) -> Result<bool> {
    let _takeover = Param::set(TAKEOVER, "1")?;
    let b = Vmm::without_shim()?;
    b.add_kvm_window(WindowParams::new(KVM_LIOBN, WINDOW_PAGE_SHIFT, 0, 1 << 16))?;
    let mut vcpu = b.create_vcpu(0)?;
    let job = job(opts.calls);
    let a = Vmm::without_shim()?;

    let start = Instant::now();
    let quiet = time_until(&b, &mut vcpu, &job, &|| start.elapsed() >= QUIET)?;
    let (churned, made, took) = phase(&b, &mut vcpu, &job, || {
        for i in 0..opts.tables {
            drop(a.create_kvm_table(&window(i % 4))?);
            if (i + 1) % 10_000 == 0 {
                println!(
                    "tce-vmm-test: churn: VM A: {} tables created and closed",
                    i + 1
                );
            }
        }
        Ok(opts.tables)
    })?;
    let (control, pipes, _) = phase(&b, &mut vcpu, &job, || {
        let mut n = 0u64;
        let t = Instant::now();
        while t.elapsed() < took {
            drop(
                std::fs::File::open("/dev/null").map_err(|source| Error::OpenFile {
                    path: "/dev/null",
                    source,
                })?,
            );
            n += 1;
        }
        Ok(n)
    })?;
    let stats = |t: &[u64]| Stats::of(t).map_or(0, |s| s.median);
    let (q, c, x) = (stats(&quiet), stats(&control), stats(&churned));
    let ratio = x as f64 / q.max(c).max(1) as f64;
    let quiet_enough = ratio <= MAX_RATIO;
    println!(
        "tce-vmm-test: churn: VM B's H_PUT_TCE median: quiet {q} ticks ({} calls); while VM A \
         created and closed {made} tables in {:.1} s, {x} ticks ({} calls); control (a thread \
         opening /dev/null {pipes} times as long), {c} ticks ({} calls); churn / max(quiet, control) \
         {ratio:.2} (limit {MAX_RATIO})",
        quiet.len(),
        took.as_secs_f64(),
        churned.len(),
        control.len()
    );

    // The limit: VM A's tables up to max_tables_per_vm, then ENOSPC. The parameter is set low
    // for the check (it is writable at run time), below the process's file limit.
    let _limit = Param::set(MAX_TABLES, &LIMIT_FOR_CHECK.to_string())?;
    let max = LIMIT_FOR_CHECK;
    let locked_before = tce_sys::process::vmlck_kb().ok();
    let mut tables = Vec::new();
    let refused = loop {
        match a.create_kvm_table(&window(tables.len() as u64)) {
            Ok(fd) => tables.push(fd),
            Err(e) => break e.errno().map(Errno::raw_os_error),
        }
        if tables.len() as u64 > max {
            break None;
        }
    };
    let made_at_most = tables.len() as u64;
    drop(tables);
    let locked_after = tce_sys::process::vmlck_kb().ok();
    let limited = made_at_most == max && refused == Some(Errno::NOSPC.raw_os_error());
    println!(
        "tce-vmm-test: churn: VM A got {made_at_most} tables, then {} (max_tables_per_vm {max}, want \
         ENOSPC there); VmLck {locked_before:?} kB before, {locked_after:?} kB after closing them",
        refused.map_or("no refusal".into(), |e| std::io::Error::from_raw_os_error(
            e
        )
        .to_string())
    );
    let ok = quiet_enough && limited && locked_before == locked_after;
    println!(
        "tce-vmm-test churn: {}: another VM's table churn left VM B's hypercalls alone, and the \
         per-VM limit held",
        if ok { "PASS" } else { "FAIL" }
    );
    Ok(ok)
}
