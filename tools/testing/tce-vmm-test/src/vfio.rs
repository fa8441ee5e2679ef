// SPDX-License-Identifier: GPL-2.0
//! `tce-vmm-test vfio`: a guest's TCE hypercalls on a window with a VFIO group attached, checked in
//! the hardware table.
//!
//! 1. The PCI device is bound to `vfio-pci` if it is not already, its IOMMU group is put in a
//!    VFIO container with the sPAPR TCE v2 IOMMU, and the whole guest RAM is preregistered.
//! 2. The shim's PHB gets the group; the guest creates a DMA window of 64 KiB IOMMU pages with
//!    `ibm,create-pe-dma-window`, for which the shim creates the hardware window
//!    (`VFIO_IOMMU_SPAPR_TCE_CREATE`, at the window's bus address) and attaches the group to
//!    the window's `tce_accel` table (`TCE_ACCEL_ATTACH_GROUP`).
//! 3. A guest page that is not preregistered never reaches the hardware: calls naming it exit
//!    and are failed with `H_HARDWARE`, changing nothing. Then the guest runs a sequence of
//!    `H_PUT_TCE`, `H_PUT_TCE_INDIRECT`, `H_STUFF_TCE` and `H_GET_TCE` with 64 KiB-aligned TCEs in guest RAM (read, write and both; clears; poison
//!    values). Every result and the guest-view table are compared with tce-sim's machine,
//!    and every hardware entry (`TCE_ACCEL_HW_ENTRY`) with what it must be: for a mapped
//!    entry the host physical address of the guest page (`/proc/self/pagemap`) with the
//!    permission bits (WRITE implies READ) and the VMM's address of the page; 0 otherwise.
//! 4. Bad input: attaching the group to windows it does not match (hardware page larger, window
//!    larger, other bus address: `EINVAL`) or a second time (`EBUSY`), attaching a file that
//!    is not a VFIO group (`EINVAL`), reading a hardware entry through a table the group is not
//!    attached to (`ENOENT`). The default window, which existed before the PHB got the group,
//!    has a hardware window at bus address 0 with the group attached.
//! 5. Guest pages larger than hardware pages: a table of 64 KiB pages on the 4 KiB hardware
//!    window at bus address 0 (lent by the default window); each guest entry must be 16
//!    hardware entries, and an `H_STUFF_TCE` clear must clear them all.
//! 6. Optionally, the per-call latency of `H_PUT_TCE` on the window.
//! 7. The guest removes its window while a second vCPU uses it; the shim detaches the group
//!    and removes the hardware window; unregistering the guest RAM must then succeed, which
//!    proves that every page the hardware table mapped was handed back.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Instant;

use rustix::io::Errno;
use tce_engine::window::WindowParams;
use tce_shim::vfio::{
    self,
    Container,
    Group, //
};
use tce_shim::{
    Table,
    Tables, //
};

use crate::bench::{
    timebase_hz,
    Stats, //
};
use crate::error::{
    Error,
    Result, //
};
use crate::reference::{
    compare_calls,
    compare_entries,
    Reference, //
};
use crate::vmm_ext::VmmTestExt;
use tce_sys::process;
use tce_vmm::error::Error as VmmError;
use tce_vmm::guest::{
    list_page,
    Job,
    RAM_SIZE, //
};
use tce_vmm::hcall::{
    code_name,
    Hcall,
    H_HARDWARE,
    H_PARAMETER, //
};
use tce_vmm::paths::PathKind;
use tce_vmm::progress;
use tce_vmm::vmm::{
    Vmm,
    LIOBN_BASE, //
};

/// How `vfio` runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The PCI device whose group is passed through.
    pub device: String,
    /// log2 of the guest window's size in bytes.
    pub window_shift: u32,
    /// The levels of the hardware table.
    pub levels: u32,
    /// `H_PUT_TCE` calls to time; 0 for none.
    pub bench_calls: u64,
}

/// The IOMMU page shift of the guest's window: 64 KiB.
pub const PAGE_SHIFT: u32 = 16;

/// Guest RAM in IOMMU pages.
const RAM_PAGES: u64 = RAM_SIZE >> PAGE_SHIFT;

/// TCE permission bits.
const READ: u64 = 1;
/// TCE permission bits.
const WRITE: u64 = 2;

/// A poison value `H_PUT_TCE` stores: no permission bits.
const POISON_PUT: u64 = 0x0000_dead_0000_0000;
/// A poison value `H_STUFF_TCE` stores.
const POISON_STUFF: u64 = 0x0000_beef_0000_0000;

/// How many failures are printed one by one.
const SHOWN: usize = 20;

/// What went wrong, collected over the run.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
}

impl Findings {
    fn fail(&mut self, msg: String) {
        if self.failures.len() < SHOWN {
            println!("tce-vmm-test: FAILED: {msg}");
        }
        self.failures.push(msg);
    }
}

/// The TCE of guest IOMMU page `page` with permissions `perm`.
fn tce(page: u64, perm: u64) -> u64 {
    ((page % RAM_PAGES) << PAGE_SHIFT) | perm
}

/// The calls of the checked sequence on window `p` (LIOBN in `p`), and the job with its lists.
fn sequence(p: &WindowParams) -> (Vec<Hcall>, Job) {
    let l = p.liobn;
    let ioba = |i: u64| (p.offset + i) << p.page_shift;
    let perms = [READ, WRITE, READ | WRITE];
    let last = p.size - 1;
    let mut calls = Vec::new();
    // Single entries with every permission, a clear, a poison and a remap.
    for i in 0..12u64.min(p.size) {
        calls.push(Hcall::Put {
            liobn: l,
            ioba: ioba(i),
            tce: tce(16 + i, perms[i as usize % 3]),
        });
    }
    if p.size > 12 {
        calls.push(Hcall::Put {
            liobn: l,
            ioba: ioba(2),
            tce: 0,
        });
        calls.push(Hcall::Put {
            liobn: l,
            ioba: ioba(5),
            tce: POISON_PUT,
        });
        calls.push(Hcall::Put {
            liobn: l,
            ioba: ioba(1),
            tce: tce(500, WRITE),
        });
    }
    calls.push(Hcall::Put {
        liobn: l,
        ioba: ioba(last),
        tce: tce(RAM_PAGES - 1, READ | WRITE),
    });
    let mut job = Job::default();
    // H_PUT_TCE_INDIRECT of 32 entries (one a clear) and of 512, then stuffs over them.
    if p.size >= 64 + 32 {
        let list: Vec<u64> = (0..32u64)
            .map(|j| {
                if j == 7 {
                    0
                } else {
                    tce(300 + j, perms[j as usize % 3])
                }
            })
            .collect();
        job.lists.insert(list_page(0), list);
        calls.push(Hcall::Indirect {
            liobn: l,
            ioba: ioba(64),
            list: list_page(0).0,
            npages: 32,
        });
        calls.push(Hcall::Stuff {
            liobn: l,
            ioba: ioba(70),
            value: 0,
            npages: 8,
        });
        calls.push(Hcall::Stuff {
            liobn: l,
            ioba: ioba(90),
            value: POISON_STUFF,
            npages: 4,
        });
    }
    if p.size >= 1024 + 512 {
        let list: Vec<u64> = (0..512u64).map(|j| tce(j, perms[j as usize % 3])).collect();
        job.lists.insert(list_page(1), list);
        calls.push(Hcall::Indirect {
            liobn: l,
            ioba: ioba(1024),
            list: list_page(1).0,
            npages: 512,
        });
        calls.push(Hcall::Stuff {
            liobn: l,
            ioba: ioba(1100),
            value: 0,
            npages: 100,
        });
    }
    for i in [0, 1, 2, 5, 64, 71, 70, 90, 95, 1024, 1535, last] {
        if i < p.size {
            calls.push(Hcall::Get {
                liobn: l,
                ioba: ioba(i),
            });
        }
    }
    for c in &calls {
        job.push(*c);
    }
    (calls, job)
}

/// This process's `/proc/self/pagemap`: user address to host physical address.
struct Pagemap {
    file: File,
    page_shift: u32,
}

impl Pagemap {
    fn open() -> Result<Pagemap> {
        let file = File::open("/proc/self/pagemap").map_err(|source| Error::OpenFile {
            path: "/proc/self/pagemap",
            source,
        })?;
        Ok(Pagemap {
            file,
            page_shift: process::page_size().trailing_zeros(),
        })
    }

    /// The host physical address behind user address `ua`, which must be mapped.
    fn phys(&self, ua: u64) -> Result<u64> {
        let mut entry = [0u8; 8];
        let at = (ua >> self.page_shift) * 8;
        self.file
            .read_exact_at(&mut entry, at)
            .map_err(|source| Error::Pagemap { addr: ua, source })?;
        let e = u64::from_le_bytes(entry);
        // Bit 63: present; bits 0 to 54: the page frame number (0 without CAP_SYS_ADMIN).
        let pfn = e & ((1 << 55) - 1);
        if e >> 63 == 0 || pfn == 0 {
            return Err(Error::Pagemap {
                addr: ua,
                source: std::io::Error::other(
                    "the page is not present or its frame number is hidden (run as root)",
                ),
            });
        }
        Ok((pfn << self.page_shift) | (ua & ((1 << self.page_shift) - 1)))
    }
}

/// What the hardware entry of a guest entry `guest` must be: (tce, ua).
fn expected_hw(vmm: &Vmm, pagemap: &Pagemap, guest: u64) -> Result<(u64, u64)> {
    let perm = guest & (READ | WRITE);
    if perm == 0 {
        return Ok((0, 0));
    }
    let gpa = guest & !((1u64 << PAGE_SHIFT) - 1);
    let ua = vmm.ram.host_addr() + gpa;
    // WRITE implies READ in the hardware table.
    let hw_perm = if perm & WRITE != 0 {
        READ | WRITE
    } else {
        perm
    };
    Ok((pagemap.phys(ua)? | hw_perm, ua))
}

/// Checks that `r` failed with `want`.
fn expect_errno(found: &mut Findings, what: &str, r: std::result::Result<(), Errno>, want: Errno) {
    match r {
        Err(e) if e == want => println!("tce-vmm-test: vfio: {what}: {e:?} as expected"),
        Err(e) => found.fail(format!("{what}: got {e:?}, want {want:?}")),
        Ok(()) => found.fail(format!("{what}: succeeded, want {want:?}")),
    }
}

/// Runs `tce-vmm-test vfio`; returns whether everything checked out.
pub fn run(opts: &Options) -> Result<bool> {
    let started = Instant::now();
    let mut found = Findings::default();

    progress::step(format!("binding {} to vfio-pci", opts.device));
    if vfio::bind_to_vfio_pci(&opts.device)? {
        println!("tce-vmm-test: vfio: bound {} to vfio-pci", opts.device);
    }
    check_v1_refused(&opts.device, &mut found)?;
    let group = Group::open_pci(&opts.device)?;
    let gnum = group.number();
    progress::step(format!("setting up a VFIO container for group {gnum}"));
    let container = Arc::new(Container::new(vec![group])?);
    let info = container.info()?;
    println!(
        "tce-vmm-test: vfio: device {}, group {gnum}; sPAPR TCE v2 IOMMU: DDW {}, page sizes \
         {:#x}, {} dynamic window(s), up to {} level(s)",
        opts.device, info.ddw, info.page_sizes, info.max_windows, info.levels
    );

    // Declared before the VM, so that on an early return the shim removes its hardware windows
    // (when the VM drops) before the memory is unregistered.
    let (registration, last_page);
    let vmm = Vmm::new()?;
    let (ram_ua, ram_size) = (vmm.ram.host_addr(), vmm.ram.size());
    if ram_ua % (1 << PAGE_SHIFT) != 0 {
        return Err(Error::RamNotAligned { addr: ram_ua });
    }
    progress::step("preregistering guest RAM".into());
    // In two pieces, so that the last page can be unregistered for a while (see
    // `check_unregistered`).
    let last_ua = ram_ua + ram_size - (1 << PAGE_SHIFT);
    registration = container.register_memory(ram_ua, ram_size - (1 << PAGE_SHIFT))?;
    let mut last = Some(container.register_memory(last_ua, 1 << PAGE_SHIFT)?);
    vmm.give_vfio(container.clone(), opts.levels)?;
    let mut vcpu = vmm.create_vcpu(0)?;
    let p = vmm.create_guest_window(&mut vcpu, PAGE_SHIFT, opts.window_shift)?;
    let liobn = p.liobn;
    let bus = p.offset << p.page_shift;
    println!(
        "tce-vmm-test: vfio: the guest created LIOBN {liobn:#x}: {:#x} entries of 64 KiB at bus \
         address {bus:#x}",
        p.size
    );
    match vmm.hw_window(liobn) {
        Some(hw) if hw.start == bus && hw.groups == [gnum] => {
            println!("tce-vmm-test: vfio: hardware window at {bus:#x}, group {gnum} attached")
        }
        other => found.fail(format!(
            "the window has hardware window {other:?}, want one at {bus:#x} with group {gnum}"
        )),
    }

    vmm.paths.set_hardware(liobn, true);
    check_unregistered(&vmm, &mut vcpu, &p, &container, &mut last, &mut found)?;
    last_page = last;

    // The sequence, checked against the reference.
    let (calls, job) = sequence(&p);
    let host_shift = process::page_size().trailing_zeros();
    let mut reference = Reference::new(p, host_shift);
    reference.store_lists(&job);
    let before = vmm.paths.exits();
    let results = vmm.run_job(&mut vcpu, 0, &job, &|| {})?;
    let exits = vmm.paths.exits().since(&before).of(PathKind::Accel);
    for m in compare_calls("vfio", &calls, &results, &mut reference) {
        found.fail(m.to_string());
    }
    for (i, r) in results.iter().enumerate() {
        if r.r3 != 0 {
            found.fail(format!("call {i} ({:?}) got {}", calls[i], code_name(r.r3)));
        }
    }
    if exits != 0 {
        found.fail(format!(
            "{exits} of {} hypercalls exited to the VMM, which cannot update the hardware \
             table: the kernel must answer them all",
            calls.len()
        ));
    }
    let path = vmm.paths.get(liobn).ok_or(VmmError::WindowGone { liobn })?;
    let guest_entries = path.entries()?;
    for m in compare_entries("vfio", &guest_entries, &reference.entries()) {
        found.fail(m.to_string());
    }
    drop(path);

    // Bad input, before the full check of the hardware table, which then shows it changed
    // nothing. The mismatched tables are made outside the shim's PHB, so nothing attaches
    // them; they close when `scratch` is dropped.
    let table = vmm.accel_table(liobn)?;
    let default = vmm.accel_table(LIOBN_BASE.into())?;
    match vmm.hw_window(LIOBN_BASE.into()) {
        Some(w) if w.start == 0 && w.groups == [gnum] => println!(
            "tce-vmm-test: vfio: the default window has its hardware window at 0, group {gnum} \
             attached"
        ),
        other => found.fail(format!(
            "the default window should have a hardware window at 0 with group {gnum}: {other:?}"
        )),
    }
    let gfd = container
        .group(gnum)
        .ok_or(Error::GroupGone { group: gnum })?
        .fd();
    let null = File::open("/dev/null").map_err(|source| Error::OpenFile {
        path: "/dev/null",
        source,
    })?;
    let mut scratch = vmm.scratch_tables()?;
    let mismatched = [
        (
            "4 KiB pages where the hardware has 64 KiB",
            WindowParams::new(0x7000_0001, 12, bus >> 12, 1 << 20),
        ),
        (
            "twice the hardware window's size",
            WindowParams::new(0x7000_0002, PAGE_SHIFT, bus >> PAGE_SHIFT, p.size * 2),
        ),
        (
            "another bus address",
            WindowParams::new(0x7000_0003, PAGE_SHIFT, (1u64 << 40) >> PAGE_SHIFT, p.size),
        ),
    ];
    for (what, params) in mismatched {
        scratch.create(params)?;
        let t = scratch.table(params.liobn)?;
        expect_errno(
            &mut found,
            &format!("attaching the group to a window of {what}"),
            vfio::attach_group(t.fd(), gfd),
            Errno::INVAL,
        );
    }
    let unattached = scratch.table(0x7000_0003)?;
    expect_errno(
        &mut found,
        "reading a hardware entry through a table the group is not attached to",
        vfio::hw_entry(unattached.fd(), gfd, 0).map(drop),
        Errno::NOENT,
    );
    expect_errno(
        &mut found,
        "attaching the group to the default window, which the shim attached already",
        vfio::attach_group(default.fd(), gfd),
        Errno::BUSY,
    );
    expect_errno(
        &mut found,
        "attaching the group to its window a second time",
        vfio::attach_group(table.fd(), gfd),
        Errno::BUSY,
    );
    expect_errno(
        &mut found,
        "attaching /dev/null as a VFIO group",
        vfio::attach_group(table.fd(), null.as_fd()),
        Errno::INVAL,
    );
    drop((default, unattached, scratch));

    // Every hardware entry.
    progress::step(format!("reading {:#x} hardware entries", p.size));
    let pagemap = Pagemap::open()?;
    let guest: std::collections::BTreeMap<u64, u64> = reference.entries().into_iter().collect();
    let mut wants = Vec::new();
    for i in 0..p.size {
        let g = guest.get(&i).copied().unwrap_or(0);
        let (want_tce, want_ua) = expected_hw(&vmm, &pagemap, g)?;
        wants.push((bus + (i << PAGE_SHIFT), want_tce, want_ua));
    }
    let (mapped, bad) = check_hw(&table, gfd, PAGE_SHIFT, &wants, &mut found);
    println!(
        "tce-vmm-test: vfio: {} calls ({exits} exits), {} guest entries set, {mapped} hardware \
         entries mapped, {bad} wrong",
        calls.len(),
        guest_entries.len()
    );

    check_subpages(&vmm, &mut vcpu, gfd, &pagemap, &mut found)?;

    if opts.bench_calls > 0 {
        let accel = bench_put(
            &vmm,
            &mut vcpu,
            &p,
            opts.bench_calls,
            "the VFIO-attached accel window",
            &mut found,
        )?;
        compare_kvm(
            &vmm,
            &mut vcpu,
            &p,
            &table,
            gfd,
            opts.bench_calls,
            accel,
            &mut found,
        )?;
    }

    // The guest removes its window, under fire; then every mapped page must have been handed
    // back.
    drop(table);
    remove_under_fire(&vmm, &mut vcpu, &p, &mut found)?;
    vmm.paths.set_hardware(liobn, false);
    if let Some(hw) = vmm.hw_window(liobn) {
        found.fail(format!("after the removal the window still has {hw:?}"));
    }

    // Hostile VMMs, on hardware windows of their own (the guest's DDW is gone).
    orphaned_window(&vmm, &mut vcpu, &container, gfd, &mut found)?;
    shared_entry_stress(&vmm, &mut vcpu, &container, gfd, &pagemap, &mut found)?;
    let unregistered = registration
        .unregister()
        .and_then(|()| last_page.map_or(Ok(()), |r| r.unregister()));
    match unregistered {
        Ok(()) => {
            println!("tce-vmm-test: vfio: guest RAM unregistered: every mapped page was returned")
        }
        Err(e) => found.fail(crate::error::chain(&e)),
    }
    println!(
        "tce-vmm-test vfio: {}: device {}, group {gnum}, {:#x} entries checked in hardware, {} \
         failures; {:.1} s",
        if found.failures.is_empty() {
            "PASS"
        } else {
            "FAIL"
        },
        opts.device,
        p.size,
        found.failures.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(found.failures.is_empty())
}

/// A group in a VFIO sPAPR TCE v1 container is refused, by the module's own attach and by the
/// KVM-VFIO device's, even for a window that matches the container's default window exactly:
/// v1 unpins whatever its tables hold when it clears them, pages the module mapped included. A
/// group that the KVM-VFIO device knew but never gave a table leaves it without a warning
/// (checked by tce-init in the kernel log). The group is closed again at the end, so that the
/// caller can put it in a v2 container.
fn check_v1_refused(device: &str, found: &mut Findings) -> Result<()> {
    progress::step("attaching a group of a VFIO v1 container, which must fail".into());
    let container = Container::new_v1(vec![Group::open_pci(device)?])?;
    let info = container.info()?;
    let gfd = container.groups()[0].fd();
    let vmm = Vmm::without_shim()?;
    // The v1 default window: 4 KiB pages over the 32-bit window.
    let params = WindowParams::new(
        0x7100_0001,
        12,
        info.dma32_start >> 12,
        info.dma32_size >> 12,
    );
    let mut tables = vmm.scratch_tables()?;
    tables.create(params)?;
    let table = tables.table(params.liobn)?;
    expect_errno(
        found,
        "attaching the group of a v1 container with TCE_ACCEL_ATTACH_GROUP",
        vfio::attach_group(table.fd(), gfd),
        Errno::INVAL,
    );
    let kvm_params = WindowParams {
        liobn: 0x7100_0002,
        ..params
    };
    let kvm_table = vmm.create_kvm_table(&kvm_params)?;
    let dev = vmm.create_vfio_device()?;
    dev.add_group(gfd)?;
    let set = dev.set_spapr_tce(gfd, std::os::fd::AsFd::as_fd(&kvm_table));
    expect_errno(
        found,
        "attaching the group of a v1 container through the KVM-VFIO device",
        set.map_err(|e| e.errno().unwrap_or(Errno::IO)),
        Errno::INVAL,
    );
    dev.del_group(gfd)?;
    // Known to the device, never given a table, then removed. (Closing the VM would release it
    // the same way, but later than the v2 container below needs the group.)
    dev.add_group(gfd)?;
    dev.del_group(gfd)?;
    println!(
        "tce-vmm-test: vfio: a v1 container's group (window {:#x} entries of 4 KiB at {:#x}) was \
         refused by both attaches",
        params.size,
        params.offset << 12
    );
    Ok(())
}

/// The host's safety rule, before anything is mapped: a guest page that the VMM has not
/// preregistered never reaches the hardware table. The last page of guest RAM is unregistered;
/// an `H_PUT_TCE` and an `H_PUT_TCE_INDIRECT` naming it must exit (the kernel's `H_TOO_HARD`),
/// be failed with `H_HARDWARE` by the VMM, and leave the hardware and guest-view entries at 0.
/// Then the page is registered again (`last`).
fn check_unregistered(
    vmm: &Vmm,
    vcpu: &mut tce_vmm::kvm::Vcpu,
    p: &WindowParams,
    container: &Arc<Container>,
    last: &mut Option<vfio::Registration>,
    found: &mut Findings,
) -> Result<()> {
    progress::step("a guest page that is not preregistered".into());
    let Some(reg) = last.take() else {
        return Ok(());
    };
    let (ua, size) = (reg.vaddr(), reg.size());
    reg.unregister()?;
    let rel = p.size - 2;
    let ioba = (p.offset + rel) << p.page_shift;
    let bad = tce(RAM_PAGES - 1, READ | WRITE);
    let mut job = Job::default();
    job.lists
        .insert(list_page(2), vec![tce(20, READ), bad, tce(21, WRITE)]);
    job.push(Hcall::Put {
        liobn: p.liobn,
        ioba,
        tce: bad,
    });
    job.push(Hcall::Indirect {
        liobn: p.liobn,
        ioba: ioba - (2 << p.page_shift),
        list: list_page(2).0,
        npages: 3,
    });
    let before = vmm.paths.exits();
    let results = vmm.run_job(vcpu, 0, &job, &|| {})?;
    let exits = vmm.paths.exits().since(&before).of(PathKind::Accel);
    let codes: Vec<String> = results.iter().map(|r| code_name(r.r3)).collect();
    if results.iter().any(|r| r.r3 != H_HARDWARE) || exits != 2 {
        found.fail(format!(
            "TCEs naming a page that is not preregistered: got {codes:?} with {exits} exits, \
             want H_HARDWARE twice after 2 exits"
        ));
    }
    let table = vmm.accel_table(p.liobn)?;
    let gfd = container.groups().first().map(|g| g.fd());
    let mut left = 0;
    for r in [rel - 2, rel - 1, rel] {
        if table.read(r)? != 0 {
            left += 1;
            found.fail(format!(
                "guest-view entry {r:#x} changed although the call failed"
            ));
        }
    }
    if let Some(g) = gfd {
        let zeros: Vec<_> = [rel - 2, rel - 1, rel]
            .map(|r| ((p.offset + r) << p.page_shift, 0, 0))
            .to_vec();
        left += check_hw(&table, g, p.page_shift, &zeros, found).1;
    }
    println!(
        "tce-vmm-test: vfio: H_PUT_TCE and H_PUT_TCE_INDIRECT naming a page that is not \
         preregistered: {codes:?} after {exits} exits, {left} entries changed"
    );
    *last = Some(container.register_memory(ua, size)?);
    Ok(())
}

/// How long the second vCPU keeps mapping and clearing entries while the window is removed.
const FIRE: std::time::Duration = std::time::Duration::from_millis(1500);

/// The window is removed while a second vCPU maps and clears entries of it: the shim detaches
/// the group (waiting for the hypercalls in flight), removes the hardware window (VFIO clears
/// what is mapped, returning the counts through the same user-address array) and closes the
/// table. The second vCPU must see `H_SUCCESS` until the removal and `H_PARAMETER` (no such
/// window; the VMM answers) after it, never anything else and never success again; the final
/// unregistration of guest RAM then proves that no mapped count was lost in the race.
fn remove_under_fire(
    vmm: &Vmm,
    vcpu: &mut tce_vmm::kvm::Vcpu,
    p: &WindowParams,
    found: &mut Findings,
) -> Result<()> {
    progress::step("removing the window while a second vCPU uses it".into());
    let mut other = vmm.create_vcpu(1)?;
    let base = p.size / 2;
    let mut job = Job::default();
    for k in 0..32u64 {
        job.push(Hcall::Put {
            liobn: p.liobn,
            ioba: (p.offset + base + k) << p.page_shift,
            tce: tce(100 + k, READ | WRITE),
        });
    }
    job.push(Hcall::Stuff {
        liobn: p.liobn,
        ioba: (p.offset + base) << p.page_shift,
        value: 0,
        npages: 32,
    });
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let outcome = std::thread::scope(|s| {
        let job = &job;
        let fire = s.spawn(move || -> Result<(u64, u64, u64, u64)> {
            let (mut before, mut after, mut wrong, mut rounds) = (0u64, 0u64, 0u64, 0u64);
            let deadline = Instant::now() + FIRE;
            let mut removed_seen = false;
            loop {
                let results = vmm.run_job(&mut other, 1, job, &|| {})?;
                rounds += 1;
                if rounds == 1 {
                    let _ = tx.send(());
                }
                for r in &results {
                    match r.r3 {
                        0 if !removed_seen => before += 1,
                        H_PARAMETER => {
                            removed_seen = true;
                            after += 1;
                        }
                        _ => wrong += 1,
                    }
                }
                if Instant::now() >= deadline && removed_seen {
                    return Ok((before, after, wrong, rounds));
                }
                if Instant::now() >= deadline + FIRE * 4 {
                    return Ok((before, after, wrong, rounds));
                }
            }
        });
        let started = rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok();
        let removed = if started {
            vmm.remove_guest_window(vcpu, p.liobn)
        } else {
            Ok(())
        };
        let counts = fire.join().unwrap_or(Err(Error::VcpuPanic { vcpu: 1 }));
        (started, removed, counts)
    });
    let (started, removed, counts) = outcome;
    removed?;
    let (before, after, wrong, rounds) = counts?;
    if !started || before == 0 || after == 0 || wrong != 0 {
        found.fail(format!(
            "removing the window under fire: {before} H_SUCCESS before, {after} H_PARAMETER \
             after, {wrong} other or out of order, in {rounds} rounds; want some of the first \
             two and none of the last"
        ));
    }
    println!(
        "tce-vmm-test: vfio: window removed while vCPU 1 used it: {before} calls succeeded before, \
         {after} got H_PARAMETER after, {wrong} wrong ({rounds} rounds)"
    );
    Ok(())
}

/// The LIOBN of the table of [`orphaned_window`].
const ORPHAN_LIOBN: u64 = 0x7000_0020;

/// The LIOBN of the table of [`shared_entry_stress`].
const STRESS_LIOBN: u64 = 0x7000_0021;

/// A hardware window of 4096 entries of 64 KiB and a table of the module attached to it, made
/// by the VMM outside the shim; the window's bus address and the table.
fn own_window(
    vmm: &Vmm,
    container: &Container,
    gfd: std::os::fd::BorrowedFd<'_>,
    liobn: u64,
) -> Result<(u64, WindowParams, tce_shim::KernelTables)> {
    let size = 1u64 << 28;
    let start = container
        .create_window(PAGE_SHIFT, size, 1)
        .map_err(|e| Error::Hostile {
            what: "VFIO_IOMMU_SPAPR_TCE_CREATE".into(),
            errno: e,
        })?;
    let params = WindowParams::new(liobn, PAGE_SHIFT, start >> PAGE_SHIFT, size >> PAGE_SHIFT);
    let mut tables = vmm.scratch_tables()?;
    tables.create(params)?;
    vfio::attach_group(tables.table(liobn)?.fd(), gfd).map_err(|e| Error::Hostile {
        what: format!("TCE_ACCEL_ATTACH_GROUP on LIOBN {liobn:#x}"),
        errno: e,
    })?;
    Ok((start, params, tables))
}

/// The results of the guest's calls, by name.
fn outcomes(vmm: &Vmm, vcpu: &mut tce_vmm::kvm::Vcpu, calls: &[Hcall]) -> Result<Vec<String>> {
    let mut job = Job::default();
    for c in calls {
        job.push(*c);
    }
    let results = vmm.run_job(vcpu, 0, &job, &|| {})?;
    Ok(results.iter().map(|r| code_name(r.r3)).collect())
}

/// A VMM removes a hardware window (`VFIO_IOMMU_SPAPR_TCE_REMOVE`) while a table of the module
/// is still attached to it. VFIO clears the window for the last time; the attachment must then
/// map nothing (the guest's `H_PUT_TCE` gets `H_HARDWARE`), its clears must succeed, and the
/// guest RAM must unregister at the end (checked by the caller): before patches/0005 the guest
/// kept mapping into the orphaned table and the preregistered memory stayed pinned.
fn orphaned_window(
    vmm: &Vmm,
    vcpu: &mut tce_vmm::kvm::Vcpu,
    container: &Container,
    gfd: std::os::fd::BorrowedFd<'_>,
    found: &mut Findings,
) -> Result<()> {
    progress::step("removing a hardware window under an attached table".into());
    let (start, p, tables) = own_window(vmm, container, gfd, ORPHAN_LIOBN)?;
    let ioba = |i: u64| (p.offset + i) << PAGE_SHIFT;
    let put = |i: u64, tce| Hcall::Put {
        liobn: p.liobn,
        ioba: ioba(i),
        tce,
    };
    let mapped = outcomes(
        vmm,
        vcpu,
        &[put(0, tce(200, READ | WRITE)), put(1, tce(201, READ))],
    )?;
    if mapped != ["H_SUCCESS", "H_SUCCESS"] {
        found.fail(format!("mapping two entries of the own window: {mapped:?}"));
    }
    container.remove_window(start).map_err(|e| Error::Hostile {
        what: "VFIO_IOMMU_SPAPR_TCE_REMOVE under an attached table".into(),
        errno: e,
    })?;
    let after = outcomes(
        vmm,
        vcpu,
        &[
            put(2, tce(202, READ | WRITE)),
            put(0, 0),
            Hcall::Stuff {
                liobn: p.liobn,
                ioba: ioba(0),
                value: 0,
                npages: 4,
            },
        ],
    )?;
    let want = ["H_HARDWARE", "H_SUCCESS", "H_SUCCESS"];
    if after != want {
        found.fail(format!(
            "after the VMM removed the hardware window: map, clear, stuff gave {after:?}, want \
             {want:?}"
        ));
    }
    let table = tables.table(p.liobn)?;
    for i in 0..4 {
        match vfio::hw_entry(table.fd(), gfd, ioba(i)) {
            Ok(e) if e.tce == 0 && e.ua == 0 => {}
            other => found.fail(format!(
                "entry {i} of the removed window: {other:?}, want clear with no user address"
            )),
        }
    }
    println!(
        "tce-vmm-test: vfio: hardware window removed under an attached table: the guest's map got \
         {}, its clears {} and {}; nothing left mapped",
        after[0], after[1], after[2]
    );
    Ok(())
}

/// The least rounds of `VFIO_IOMMU_MAP_DMA` and `UNMAP_DMA` in [`shared_entry_stress`].
const STRESS_ROUNDS: u64 = 2000;

/// The least rounds of the guest's 64 calls in [`shared_entry_stress`].
const STRESS_GUEST_ROUNDS: u64 = 100;

/// One entry, two writers: a vCPU maps entry 0 of a window to a guest page and clears it, over
/// and over, while the VMM maps the same entry to a buffer of its own (a preregistered region
/// of its own) and unmaps it through VFIO, as QEMU does for an `H_TOO_HARD` exit. After that
/// the hardware entry and its recorded user address must agree, and the buffer's region must
/// refuse to unregister (`EBUSY`) exactly while VFIO maps it: checked once before the race, as
/// a control, and once after. The guest RAM's own registration unregisters at the end of the
/// run (the caller), which shows that no guest count was left behind either.
fn shared_entry_stress(
    vmm: &Vmm,
    vcpu: &mut tce_vmm::kvm::Vcpu,
    container: &Arc<Container>,
    gfd: std::os::fd::BorrowedFd<'_>,
    pagemap: &Pagemap,
    found: &mut Findings,
) -> Result<()> {
    progress::step("one entry mapped by the guest and by VFIO at once".into());
    let (start, p, tables) = own_window(vmm, container, gfd, STRESS_LIOBN)?;
    let page = 1u64 << PAGE_SHIFT;
    let buf = tce_sys::Mmap::anonymous(page as usize).map_err(|e| Error::Hostile {
        what: "mmap of the VMM's buffer".into(),
        errno: e,
    })?;
    buf.write(0, &[0x5a; 64]);
    let buf_ua = buf.addr();
    let mut region = container.register_memory(buf_ua, page)?;
    let guest_ua = vmm.ram.host_addr() + (300u64 << PAGE_SHIFT);
    let hostile = |what: &'static str| {
        move |e| Error::Hostile {
            what: what.into(),
            errno: e,
        }
    };
    // Busy exactly while mapped; `then` says when the check runs.
    let busy_check =
        |region: &mut vfio::Registration, found: &mut Findings, then: &str| -> Result<bool> {
            container
                .map_dma(buf_ua, start, page)
                .map_err(hostile("VFIO_IOMMU_MAP_DMA"))?;
            let busy = matches!(
                region.try_unregister(),
                Err(tce_shim::Error::UnregisterMemory { ref source, .. })
                    if source.raw_os_error() == Some(Errno::BUSY.raw_os_error())
            );
            if !busy {
                found.fail(format!(
                    "{then}: the buffer's region unregistered while VFIO mapped it, want EBUSY"
                ));
            }
            container
                .unmap_dma(start, page)
                .map_err(hostile("VFIO_IOMMU_UNMAP_DMA"))?;
            Ok(busy)
        };
    if !busy_check(&mut region, found, "before the race")? {
        return Ok(());
    }

    let mut job = Job::default();
    for _ in 0..32 {
        job.push(Hcall::Put {
            liobn: p.liobn,
            ioba: start,
            tce: tce(300, READ | WRITE),
        });
        job.push(Hcall::Put {
            liobn: p.liobn,
            ioba: start,
            tce: 0,
        });
    }
    use std::sync::atomic::{
        AtomicBool,
        AtomicU64,
        Ordering, //
    };
    let (stop, guest_rounds) = (AtomicBool::new(false), AtomicU64::new(0));
    let (vcpu_side, vfio_errors) = std::thread::scope(|s| {
        let (job, stop, vcpu, guest_rounds) = (&job, &stop, &mut *vcpu, &guest_rounds);
        let guest = s.spawn(move || -> Result<(u64, u64)> {
            let mut wrong = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let results = vmm.run_job(vcpu, 0, job, &|| {})?;
                wrong += results.iter().filter(|r| r.r3 != 0).count() as u64;
                guest_rounds.fetch_add(1, Ordering::Relaxed);
            }
            Ok((guest_rounds.load(Ordering::Relaxed), wrong))
        });
        let mut errors = Vec::new();
        let mut pairs = 0;
        // Both sides keep going until each has done its share; a vCPU that died stops it too.
        while (pairs < STRESS_ROUNDS || guest_rounds.load(Ordering::Relaxed) < STRESS_GUEST_ROUNDS)
            && !guest.is_finished()
        {
            pairs += 1;
            if let Err(e) = container.map_dma(buf_ua, start, page) {
                errors.push(format!("VFIO_IOMMU_MAP_DMA: {e:?}"));
            }
            if let Err(e) = container.unmap_dma(start, page) {
                errors.push(format!("VFIO_IOMMU_UNMAP_DMA: {e:?}"));
            }
        }
        stop.store(true, Ordering::Relaxed);
        let joined = guest.join().unwrap_or(Err(Error::VcpuPanic { vcpu: 0 }));
        (joined.map(|(r, w)| (r, w, pairs)), errors)
    });
    let (rounds, wrong, pairs) = vcpu_side?;
    for e in vfio_errors.iter().take(5) {
        found.fail(e.clone());
    }
    if wrong != 0 {
        found.fail(format!(
            "{wrong} of the guest's calls on the shared entry failed"
        ));
    }
    let table = tables.table(p.liobn)?;
    let e = vfio::hw_entry(table.fd(), gfd, start).map_err(hostile("TCE_ACCEL_HW_ENTRY"))?;
    let agree = match e.ua {
        0 => e.tce == 0,
        ua if ua == guest_ua || ua == buf_ua => e.tce & !0xfff == pagemap.phys(ua)?,
        _ => false,
    };
    if !agree {
        found.fail(format!(
            "after the race the entry maps {:#x} with recorded user address {:#x}: they \
             disagree (guest page at {guest_ua:#x}, VFIO's at {buf_ua:#x})",
            e.tce, e.ua
        ));
    }
    // Whoever mapped last, clear the entry through the guest, then check the counts.
    let cleared = outcomes(
        vmm,
        vcpu,
        &[Hcall::Put {
            liobn: p.liobn,
            ioba: start,
            tce: 0,
        }],
    )?;
    if cleared != ["H_SUCCESS"] {
        found.fail(format!("clearing the shared entry: {cleared:?}"));
    }
    busy_check(&mut region, found, "after the race")?;
    if let Err(e) = region.try_unregister() {
        found.fail(format!(
            "unregistering the buffer once nothing maps it: {}",
            crate::error::chain(&e)
        ));
    }
    drop((table, tables));
    container
        .remove_window(start)
        .map_err(hostile("VFIO_IOMMU_SPAPR_TCE_REMOVE"))?;
    println!(
        "tce-vmm-test: vfio: shared entry: {rounds} guest rounds of 64 calls against {pairs} VFIO \
         map/unmap pairs; entry {:#x} with user address {:#x} after it \
         (agree: {agree}); the VMM's region was busy exactly while VFIO mapped it",
        e.tce, e.ua
    );
    Ok(())
}

/// The LIOBN of the table that [`check_subpages`] attaches to the 4 KiB hardware window.
const SUBPAGE_LIOBN: u64 = 0x7000_0010;

/// Hardware entries of 4 KiB per guest entry of 64 KiB.
const SUBPAGES: u64 = 1 << (PAGE_SHIFT - 12);

/// Guest pages larger than hardware pages: a table of 64 KiB pages on the 4 KiB hardware window
/// at bus address 0 (the default window's, lent for the check), where each guest entry is 16
/// hardware entries. The guest maps three entries, every subpage is read back, then it clears
/// them with `H_STUFF_TCE` and every subpage must read 0; the default window gets its hardware
/// window back.
fn check_subpages(
    vmm: &Vmm,
    vcpu: &mut tce_vmm::kvm::Vcpu,
    gfd: std::os::fd::BorrowedFd<'_>,
    pagemap: &Pagemap,
    found: &mut Findings,
) -> Result<()> {
    progress::step("guest pages of 64 KiB on hardware pages of 4 KiB".into());
    let default = vmm.accel_table(LIOBN_BASE.into())?;
    if let Err(e) = vfio::detach_group(default.fd(), gfd) {
        found.fail(format!(
            "detaching the group from the default window: {e:?}"
        ));
        return Ok(());
    }
    let mut scratch = vmm.scratch_tables()?;
    let params = WindowParams::new(SUBPAGE_LIOBN, PAGE_SHIFT, 0, (1 << 30) >> PAGE_SHIFT);
    scratch.create(params)?;
    let table = scratch.table(SUBPAGE_LIOBN)?;
    if let Err(e) = vfio::attach_group(table.fd(), gfd) {
        found.fail(format!(
            "attaching the group to a window of 64 KiB pages on its 4 KiB hardware window: \
             {e:?}"
        ));
    } else {
        let ioba = |i: u64| i << PAGE_SHIFT;
        let mapped = [
            (3u64, tce(40, READ | WRITE)),
            (4, tce(41, READ)),
            (9, tce(42, WRITE)),
        ];
        let mut job = Job::default();
        for (i, t) in mapped {
            job.push(Hcall::Put {
                liobn: SUBPAGE_LIOBN,
                ioba: ioba(i),
                tce: t,
            });
        }
        let results = vmm.run_job(vcpu, 0, &job, &|| {})?;
        let mut wrong = check_hw_range(vmm, pagemap, &table, gfd, &mapped, 0..16, found)?;
        let mut job = Job::default();
        job.push(Hcall::Stuff {
            liobn: SUBPAGE_LIOBN,
            ioba: 0,
            value: 0,
            npages: 16,
        });
        let cleared = vmm.run_job(vcpu, 0, &job, &|| {})?;
        wrong += check_hw_range(vmm, pagemap, &table, gfd, &[], 0..16, found)?;
        for (i, r) in results.iter().chain(&cleared).enumerate() {
            if r.r3 != 0 {
                found.fail(format!("subpage call {i} got {}", code_name(r.r3)));
            }
        }
        println!(
            "tce-vmm-test: vfio: 64 KiB guest pages on 4 KiB hardware pages: {} entries mapped as \
             {} hardware entries, cleared with H_STUFF_TCE, {wrong} wrong",
            mapped.len(),
            mapped.len() as u64 * SUBPAGES
        );
        if let Err(e) = vfio::detach_group(table.fd(), gfd) {
            found.fail(format!("detaching the group from the 64 KiB table: {e:?}"));
        }
    }
    drop((table, scratch));
    if let Err(e) = vfio::attach_group(default.fd(), gfd) {
        found.fail(format!(
            "giving the default window its hardware window back: {e:?}"
        ));
    }
    Ok(())
}

/// Reads back the 4 KiB hardware entries of guest entries `range` of `table`: those of the
/// guest entries in `mapped` (entry, TCE) must map the guest page, subpage by subpage; every
/// other one must read 0. Returns how many were wrong.
fn check_hw_range(
    vmm: &Vmm,
    pagemap: &Pagemap,
    table: &tce_shim::KernelTable,
    gfd: std::os::fd::BorrowedFd<'_>,
    mapped: &[(u64, u64)],
    range: std::ops::Range<u64>,
    found: &mut Findings,
) -> Result<u64> {
    let mut wants = Vec::new();
    for i in range {
        let g = mapped.iter().find(|&&(e, _)| e == i).map_or(0, |&(_, t)| t);
        let (page_tce, page_ua) = expected_hw(vmm, pagemap, g)?;
        for k in 0..SUBPAGES {
            let (want_tce, want_ua) = if page_tce == 0 {
                (0, 0)
            } else {
                let ua = page_ua + (k << 12);
                let perm = page_tce & (READ | WRITE);
                (pagemap.phys(ua)? | perm, ua)
            };
            wants.push(((i << PAGE_SHIFT) + (k << 12), want_tce, want_ua));
        }
    }
    Ok(check_hw(table, gfd, 12, &wants, found).1)
}

/// Reads the hardware entries at the bus addresses of `wants` back through `table`'s attached
/// group `gfd` and compares each with its (bus address, tce, ua), and the page shift with
/// `page_shift`. Returns how many matched a mapped entry and how many did not match.
fn check_hw(
    table: &tce_shim::KernelTable,
    gfd: std::os::fd::BorrowedFd<'_>,
    page_shift: u32,
    wants: &[(u64, u64, u64)],
    found: &mut Findings,
) -> (u64, u64) {
    let (mut mapped, mut wrong) = (0u64, 0u64);
    for &(ioba, want_tce, want_ua) in wants {
        match vfio::hw_entry(table.fd(), gfd, ioba) {
            Ok(e) if e.tce == want_tce && e.ua == want_ua && e.page_shift == page_shift => {
                mapped += u64::from(want_tce != 0);
            }
            Ok(e) => {
                wrong += 1;
                found.fail(format!(
                    "hardware entry at bus address {ioba:#x}: tce {:#x} ua {:#x} page shift {}, \
                     want tce {want_tce:#x} ua {want_ua:#x} page shift {page_shift}",
                    e.tce, e.ua, e.page_shift
                ));
            }
            Err(e) => {
                wrong += 1;
                found.fail(format!("TCE_ACCEL_HW_ENTRY at {ioba:#x} failed: {e:?}"));
            }
        }
    }
    (mapped, wrong)
}

/// The LIOBN of the KVM table that [`compare_kvm`] gives the group's hardware window.
const KVM_VFIO_LIOBN: u64 = 0x7100_0001;

/// The stock C path on the same hardware window, in the same run: the group is detached from
/// the accel window `p` and attached to a KVM table of the same geometry through the KVM-VFIO
/// device, and the guest times the same `H_PUT_TCE`s on it. Then the guest clears both windows
/// with `H_STUFF_TCE` (KVM's C code clears the hardware entries, through the same user-address
/// array, so their counts come back), KVM lets the group go, the accel window gets it back, and
/// every hardware entry must read 0.
#[allow(clippy::too_many_arguments)]
fn compare_kvm(
    vmm: &Vmm,
    vcpu: &mut tce_vmm::kvm::Vcpu,
    p: &WindowParams,
    table: &tce_shim::KernelTable,
    gfd: std::os::fd::BorrowedFd<'_>,
    calls: u64,
    accel: Option<Stats>,
    found: &mut Findings,
) -> Result<()> {
    progress::step("the stock C path on the same hardware window".into());
    if let Err(e) = vfio::detach_group(table.fd(), gfd) {
        found.fail(format!("detaching the group from the accel window: {e:?}"));
        return Ok(());
    }
    let kvm_p = WindowParams::new(KVM_VFIO_LIOBN, p.page_shift, p.offset, p.size);
    let dev = vmm.add_kvm_vfio_window(kvm_p, gfd)?;
    let kvm = bench_put(
        vmm,
        vcpu,
        &kvm_p,
        calls,
        "KVM's table with the group (C path)",
        found,
    )?;
    if let (Some(a), Some(k)) = (accel, kvm) {
        let hz = timebase_hz()?;
        let ns = |t: u64| t as f64 * 1e9 / hz as f64;
        println!(
            "tce-vmm-test: vfio: H_PUT_TCE on a VFIO window, median: accel {:.0} ns, kvm (C path) \
             {:.0} ns, accel/kvm {:.2}",
            ns(a.median),
            ns(k.median),
            a.median as f64 / k.median.max(1) as f64
        );
    }
    let mut job = Job::default();
    for l in [KVM_VFIO_LIOBN, p.liobn] {
        job.push(Hcall::Stuff {
            liobn: l,
            ioba: p.offset << p.page_shift,
            value: 0,
            npages: p.size,
        });
    }
    let before = vmm.paths.exits();
    let results = vmm.run_job(vcpu, 0, &job, &|| {})?;
    for (i, r) in results.iter().enumerate() {
        if r.r3 != 0 {
            found.fail(format!(
                "clearing window {i} with H_STUFF_TCE got {}",
                code_name(r.r3)
            ));
        }
    }
    let exits = vmm.paths.exits().since(&before);
    if exits.of(PathKind::Kvm) + exits.of(PathKind::Accel) != 0 {
        found.fail("clearing the windows exited to the VMM".into());
    }
    if let Err(e) = dev.del_group(gfd) {
        found.fail(crate::error::chain(&e));
    }
    if let Err(e) = vfio::attach_group(table.fd(), gfd) {
        found.fail(format!(
            "giving the accel window its hardware window back: {e:?}"
        ));
        return Ok(());
    }
    let bus = p.offset << p.page_shift;
    let zeros: Vec<_> = (0..p.size)
        .map(|i| (bus + (i << p.page_shift), 0, 0))
        .collect();
    let (_, left) = check_hw(table, gfd, p.page_shift, &zeros, found);
    println!(
        "tce-vmm-test: vfio: both windows cleared with H_STUFF_TCE, the group back on the accel \
         window: {left} of {:#x} hardware entries left mapped",
        p.size
    );
    Ok(())
}

/// Times `calls` `H_PUT_TCE` on window `p` (`what`) from the guest's timebase.
fn bench_put(
    vmm: &Vmm,
    vcpu: &mut tce_vmm::kvm::Vcpu,
    p: &WindowParams,
    calls: u64,
    what: &str,
    found: &mut Findings,
) -> Result<Option<Stats>> {
    let hz = timebase_hz()?;
    let mut job = Job::default();
    for i in 0..calls {
        job.push(Hcall::Put {
            liobn: p.liobn,
            ioba: (p.offset + i % p.size) << p.page_shift,
            tce: tce(i, READ | WRITE),
        });
    }
    let before = vmm.paths.exits();
    let results = vmm.run_job(vcpu, 0, &job, &|| {})?;
    let since = vmm.paths.exits().since(&before);
    let exits = since.of(PathKind::Accel) + since.of(PathKind::Kvm);
    let failed = results.iter().filter(|r| r.r3 != 0).count();
    let ticks: Vec<u64> = results.iter().map(|r| r.ticks).collect();
    let stats = Stats::of(&ticks);
    if let Some(s) = &stats {
        let ns = |t: u64| t as f64 * 1e9 / hz as f64;
        println!(
            "tce-vmm-test: vfio: bench: H_PUT_TCE on {what}: {calls} calls, min {} median {} p99 {} \
             ticks (median {:.0} ns), {exits} exits, {failed} failed",
            s.min,
            s.median,
            s.p99,
            ns(s.median)
        );
    }
    if failed > 0 {
        found.fail(format!(
            "{failed} of {calls} timed H_PUT_TCE calls on {what} failed"
        ));
    }
    if exits > 0 {
        found.fail(format!(
            "{exits} of {calls} timed H_PUT_TCE calls on {what} exited"
        ));
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_valid_on_the_reference() {
        let p = WindowParams::new(0x8000_0001, PAGE_SHIFT, (1u64 << 59) >> PAGE_SHIFT, 1 << 16);
        let (calls, job) = sequence(&p);
        assert_eq!(job.calls.len(), calls.len());
        let mut reference = Reference::new(p, 16);
        reference.store_lists(&job);
        for c in &calls {
            assert_eq!(reference.expect(c).r3, 0, "{c:?}");
        }
        let entries: std::collections::BTreeMap<u64, u64> =
            reference.entries().into_iter().collect();
        assert_eq!(entries.get(&0), Some(&tce(16, READ)));
        assert_eq!(entries.get(&1), Some(&tce(500, WRITE)));
        assert_eq!(entries.get(&2), None);
        assert_eq!(entries.get(&5), Some(&POISON_PUT));
        assert_eq!(entries.get(&71), None);
        assert_eq!(entries.get(&90), Some(&POISON_STUFF));
        assert_eq!(entries.get(&((1 << 16) - 1)).map(|t| t & 3), Some(3));
        // Every mapped TCE is a 64 KiB-aligned address in guest RAM.
        for t in entries.values().filter(|t| *t & 3 != 0) {
            assert!(t & !3 & 0xffff == 0 && (t & !3) < RAM_SIZE, "{t:#x}");
        }
    }
}
