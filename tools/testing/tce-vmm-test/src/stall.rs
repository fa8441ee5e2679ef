// SPDX-License-Identifier: GPL-2.0
//! `tce-vmm-test stall`: one VM's hypercall waits on a userfaultfd page; another VM must not notice.
//!
//! VM A has a window served by `tce_accel`, created the way QEMU creates it
//! (`KVM_CREATE_SPAPR_TCE_64` with the module's `takeover` on). Its guest issues one
//! `H_PUT_TCE_INDIRECT` whose list lies on a page of guest RAM registered with userfaultfd and
//! left missing, so the vCPU sleeps inside the hypercall, in VM A's SRCU read-side section,
//! reading the list. While it sleeps, VM B creates and closes tables the same way, over and
//! over, each close waiting for the grace period of VM B's SRCU. Each create and close must
//! take less than [`LIMIT`]: a host-wide grace period would wait for VM A's hypercall
//! forever. Then the VMM fills the page; the hypercall must finish with `H_SUCCESS` and store
//! the list's entry.
//!
//! Before the call the VMM reads the entry through its mapping of the table, which maps the zero
//! page there (a read of an absent table page allocates nothing); after it, the same mapping
//! must show the entry the hypercall stored: no stale zero page survives.

use std::os::fd::OwnedFd;
use std::time::{
    Duration,
    Instant, //
};

use tce_engine::window::WindowParams;

use crate::error::{
    ioctl,
    Error,
    Result, //
};
use crate::vmm_ext::VmmTestExt;
use tce_sys::{
    process,
    Userfault, //
};
use tce_vmm::error::Error as VmmError;
use tce_vmm::guest::Job;
use tce_vmm::hcall::{
    code_name,
    Hcall, //
};
use tce_vmm::memory::GuestAddress;
use tce_vmm::paths::Backing;
use tce_vmm::vmm::{
    Vmm,
    KVM_LIOBN,
    WINDOW_PAGE_SHIFT, //
};

/// How `stall` runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Tables VM B creates and closes while VM A's hypercall waits.
    pub tables: u64,
}

/// The most a create or a close in VM B may take.
pub const LIMIT: Duration = Duration::from_secs(1);

/// Where VM A's list lies: untouched guest RAM above the payload's areas, aligned to any host
/// page size.
const LIST: GuestAddress = GuestAddress(0x03f0_0000);

/// The module's parameter that sends `KVM_CREATE_SPAPR_TCE_64` tables to it.
pub(crate) const TAKEOVER: &str = "/sys/module/tce_accel/parameters/takeover";

/// A module parameter set for the life of the value, put back when it is dropped.
pub(crate) struct Param {
    path: &'static str,
    old: String,
}

impl Param {
    pub(crate) fn set(path: &'static str, value: &str) -> Result<Param> {
        let old =
            std::fs::read_to_string(path).map_err(|source| Error::OpenFile { path, source })?;
        std::fs::write(path, value).map_err(|source| Error::OpenFile { path, source })?;
        Ok(Param {
            path,
            old: old.trim().to_string(),
        })
    }
}

impl Drop for Param {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path, &self.old);
    }
}

/// The slowest create and close of VM B's tables.
#[derive(Debug, Default)]
struct Worst {
    create: Duration,
    close: Duration,
    done: u64,
}

/// Creates and closes `n` tables in `vmm`'s VM, timing each step, and stops at the first step
/// over [`LIMIT`].
fn churn(vmm: &Vmm, n: u64) -> Result<Worst> {
    let mut w = Worst::default();
    for i in 0..n {
        let params = WindowParams::new(0x7400_0000 + i, WINDOW_PAGE_SHIFT, 0, 1 << 16);
        let t = Instant::now();
        let fd: OwnedFd = vmm.create_kvm_table(&params)?;
        let created = t.elapsed();
        let t = Instant::now();
        drop(fd);
        let closed = t.elapsed();
        w.create = w.create.max(created);
        w.close = w.close.max(closed);
        w.done += 1;
        if created > LIMIT || closed > LIMIT {
            break;
        }
    }
    Ok(w)
}

/// Runs `tce-vmm-test stall`; returns whether VM B never waited and VM A's call finished right.
pub fn run(opts: &Options) -> Result<bool> {
    let _takeover = Param::set(TAKEOVER, "1")?;
    let a = Vmm::without_shim()?;
    let params = WindowParams::new(KVM_LIOBN, WINDOW_PAGE_SHIFT, 0, 1 << 16);
    a.add_kvm_window(params)?;
    let mut vcpu = a.create_vcpu(0)?;
    let path = a
        .paths
        .get(KVM_LIOBN)
        .ok_or(VmmError::WindowGone { liobn: KVM_LIOBN })?;
    let Backing::Kernel { table: mapped, .. } = &path.backing else {
        return Err(VmmError::WindowGone { liobn: KVM_LIOBN }.into());
    };
    // The VMM reads entry 0 before any page exists: zeros, from the zero page.
    let before = mapped.load(0);

    let page = process::page_size() as u64;
    let uffd = Userfault::new().map_err(ioctl("userfaultfd", "open and UFFDIO_API"))?;
    let list_ua = a.ram.host_addr() + LIST.0;
    a.ram
        .discard(LIST, page)
        .map_err(|_| VmmError::OutsideRam {
            what: "the list page",
        })?;
    uffd.register_missing(list_ua, page).map_err(ioctl(
        "UFFDIO_REGISTER",
        format!("guest page {:#x}", LIST.0),
    ))?;

    // The entry the list will hold: guest page 0x10000, read and write.
    let tce = 0x1_0000 | 3;
    let mut job = Job::default();
    job.push(Hcall::Indirect {
        liobn: KVM_LIOBN,
        ioba: 0,
        list: LIST.0,
        npages: 1,
    });
    job.push(Hcall::Get {
        liobn: KVM_LIOBN,
        ioba: 0,
    });
    println!(
        "tce-vmm-test: stall: VM A issues H_PUT_TCE_INDIRECT on LIOBN {KVM_LIOBN:#x} with its list on \
         a missing userfaultfd page; VM B creates and closes {} tables meanwhile",
        opts.tables
    );

    let outcome = std::thread::scope(|s| -> Result<bool> {
        let a = &a;
        let guest = s.spawn(move || a.run_job(&mut vcpu, 0, &job, &|| {}));
        let fault = uffd
            .wait_fault(Duration::from_secs(60))
            .map_err(ioctl("read", "userfaultfd"))?;
        let stuck = fault.is_some_and(|f| f & !(page - 1) == list_ua);
        println!(
            "tce-vmm-test: stall: VM A's hypercall {} (fault at {:x?}, list page at {list_ua:#x})",
            if stuck {
                "waits on the list page"
            } else {
                "did not fault on the list page"
            },
            fault
        );

        // VM B, a VM of its own, while VM A's vCPU sleeps in the hypercall.
        let t = Instant::now();
        let b = Vmm::without_shim()?;
        let worst = churn(&b, opts.tables)?;
        drop(b);
        let still = !guest.is_finished();
        println!(
            "tce-vmm-test: stall: VM B: {} tables created and closed in {:.3} s; slowest create {:.3} \
             ms, slowest close {:.3} ms (limit {} ms); VM A's hypercall still waiting: {still}",
            worst.done,
            t.elapsed().as_secs_f64(),
            worst.create.as_secs_f64() * 1e3,
            worst.close.as_secs_f64() * 1e3,
            LIMIT.as_millis()
        );

        // Now the list arrives and VM A's call must complete.
        let mut data = vec![0u8; page as usize];
        data[..8].copy_from_slice(&(tce as u64).to_be_bytes());
        uffd.copy(list_ua, &data)
            .map_err(ioctl("UFFDIO_COPY", format!("guest page {:#x}", LIST.0)))?;
        let results = guest.join().map_err(|_| Error::VcpuPanic { vcpu: 0 })??;
        let (put, get) = (results[0], results[1]);
        let seen = mapped.load(0);
        let finished = put.r3 == 0 && get.r3 == 0 && get.r4 == tce as u64 && before == 0;
        let fresh = seen == tce as u64;
        println!(
            "tce-vmm-test: stall: entry 0 through the VMM's mapping: {before:#x} before the call, \
             {seen:#x} after it (want {tce:#x}: no stale zero page)"
        );
        println!(
            "tce-vmm-test: stall: VM A's hypercall finished once the page came: {}, then H_GET_TCE: \
             {} {:#x} (want H_SUCCESS {tce:#x})",
            code_name(put.r3),
            code_name(get.r3),
            get.r4
        );
        let fast = worst.done == opts.tables && worst.create <= LIMIT && worst.close <= LIMIT;
        Ok(stuck && still && fast && finished && fresh)
    })?;
    println!(
        "tce-vmm-test stall: {}: one VM's hypercall waiting on userfaultfd did not delay another \
         VM's table create and close",
        if outcome { "PASS" } else { "FAIL" }
    );
    Ok(outcome)
}
