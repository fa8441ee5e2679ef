// SPDX-License-Identifier: GPL-2.0
//! `tce-vmm`: one short run of the sample VMM, to read next to the library.
//!
//! The guest creates a DMA window with `ibm,create-pe-dma-window`, which the DDW shim backs
//! with a `tce_accel` table; the VMM adds a window of KVM's own and one only it knows. The
//! guest then issues the same six TCE hypercalls on each window, and the VMM prints what the
//! guest got, what it finds in each table and how many calls exited to it. Last, the guest
//! removes its window. Exit status 0 only if every answer was the one PAPR prescribes.
//!
//! It runs on a POWER KVM host with KVM-HV and the tce_accel module loaded, such as the
//! emulated host of `scripts/qemu-test.sh ppc64le`, where tce-init's test `sample_vmm` runs it.

use std::process::ExitCode;

use tce_engine::tce::{
    H_GET_TCE,
    H_PUT_TCE,
    H_PUT_TCE_INDIRECT,
    H_STUFF_TCE,
    H_SUCCESS,
    TCE_RW, //
};
use tce_vmm::error::{
    chain,
    Result, //
};
use tce_vmm::guest::{
    list_page,
    GuestCall,
    Job,
    RAM_SIZE, //
};
use tce_vmm::hcall::{
    Hcall,
    Reply, //
};
use tce_vmm::paths::PathKind;
use tce_vmm::vmm::Vmm;

/// Entries the guest puts with one `H_PUT_TCE_INDIRECT`, and then clears with `H_STUFF_TCE`.
const RUN: u64 = 8;

/// A read-write TCE for guest page `n` (4 KiB pages, the windows' IOMMU page size).
fn tce(n: u64) -> u64 {
    (n << 12) | TCE_RW
}

/// Runs the guest's calls on the three windows; returns whether every answer was right.
fn run() -> Result<bool> {
    let vmm = Vmm::new()?;
    let mut vcpu = vmm.create_vcpu(0)?;
    let windows = vmm.set_up_windows(&mut vcpu)?;
    let p = windows.params;
    let page = 1u64 << p.page_shift;
    println!(
        "tce-vmm: windows of {:#x} entries of {} KiB at bus address {:#x}: accel LIOBN {:#x} \
         (made by the guest through the DDW shim), kvm {:#x}, user {:#x}",
        p.size,
        page >> 10,
        p.offset * page,
        windows.accel,
        windows.kvm,
        windows.user
    );
    // The TCEs point at guest pages well inside RAM; the list is one page of big-endian words.
    let list: Vec<u64> = (0..RUN).map(|i| tce(0x100 + i)).collect();
    assert!(tce(0x100 + RUN) < RAM_SIZE);
    let mut all_right = true;
    for kind in PathKind::ALL {
        let liobn = windows.liobn(kind);
        let ioba = |entry: u64| (p.offset + entry) * page;
        let mut job = Job::default();
        job.lists.insert(list_page(0), list.clone());
        // (hypercall, r5, r6, r7, what the guest must get); r4 is the LIOBN.
        let calls = [
            (H_PUT_TCE, ioba(0), tce(1), 0, Reply::success(None)),
            (H_GET_TCE, ioba(0), 0, 0, Reply::success(Some(tce(1)))),
            (
                H_PUT_TCE_INDIRECT,
                ioba(16),
                list_page(0).0,
                RUN,
                Reply::success(None),
            ),
            (
                H_GET_TCE,
                ioba(16 + RUN - 1),
                0,
                0,
                Reply::success(list.last().copied()),
            ),
            (H_STUFF_TCE, ioba(16), 0, RUN, Reply::success(None)),
            (H_GET_TCE, ioba(16), 0, 0, Reply::success(Some(0))),
        ];
        for &(nr, a, b, c, _) in &calls {
            job.push(GuestCall {
                nr,
                args: [liobn, a, b, c],
            });
        }
        let exits_before = vmm.paths.exits();
        let results = vmm.run_job(&mut vcpu, 0, &job, &|| {})?;
        let exits = vmm.paths.exits().since(&exits_before).of(kind);
        for (&(nr, a, b, c, want), got) in calls.iter().zip(&results) {
            let r4 = (got.r3 == H_SUCCESS && nr == H_GET_TCE).then_some(got.r4);
            let got = Reply { r3: got.r3, r4 };
            if got != want {
                let call = Hcall::decode(nr, &[liobn, a, b, c]).expect("a TCE hypercall");
                println!(
                    "tce-vmm: {} path: {call}: got {got}, want {want}",
                    kind.name()
                );
                all_right = false;
            }
        }
        // What the VMM finds in the window's table: only entry 0 is left.
        let entries = vmm.paths.get(liobn).map(|w| w.entries()).transpose()?;
        let left = entries.unwrap_or_default();
        if left != [(0, tce(1))] {
            println!(
                "tce-vmm: {} path: the table holds {left:x?}, want [(0, {:#x})]",
                kind.name(),
                tce(1)
            );
            all_right = false;
        }
        println!(
            "tce-vmm: {} path: {} calls answered as PAPR says; {exits} exits to the VMM; the \
             table holds {} entries",
            kind.name(),
            results.len(),
            left.len()
        );
    }
    vmm.remove_guest_window(&mut vcpu, windows.accel)?;
    let gone = vmm.paths.get(windows.accel).is_none();
    println!(
        "tce-vmm: the guest removed its window: {}",
        if gone { "done" } else { "still there" }
    );
    Ok(all_right && gone)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => {
            println!("tce-vmm: PASS");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("tce-vmm: FAIL");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("tce-vmm: error: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}
