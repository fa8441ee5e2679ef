// SPDX-License-Identifier: GPL-2.0
//! Tests of the kernel backend against the real tce_accel module, where `/dev/tce_accel` exists.
//!
//! Each test that needs the module returns early, printing a note, on a host without
//! `/dev/tce_accel` (such as a development machine); inside the emulated POWER host, where the
//! module is loaded, they all run, and `TCE_REQUIRE_MODULE=1` turns a missing module into a
//! failure. Tests that need only `/dev/kvm` or nothing run everywhere.
//! The tests count this process's file descriptors and locked memory, so they run one at a time.

use std::collections::BTreeSet;
use std::os::fd::{
    AsFd,
    AsRawFd,
    OwnedFd, //
};
use std::sync::{
    Mutex,
    MutexGuard, //
};

use tce_ddw_model::{
    PhbDesc,
    RtasCall,
    RtasStatus, //
};
use tce_shim::kernel::{
    self,
    create_vm,
    create_vm_of_type,
    device_present,
    take_fd, //
};
use tce_shim::{
    saved,
    uapi,
    Error,
    KernelTable,
    KernelTables,
    Shim,
    Table,
    TableKind,
    Tables,
    WindowParams, //
};

const BUID: u64 = 0x0800_0000_2000_0000;
const LIOBN: u32 = 0x8000_0000;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A VM, where the module is loaded; `None` with a note where it is not.
///
/// `TCE_KVM_VM_TYPE` sets the VM's machine type (default 0; on powerpc 1 is KVM-HV, 2 KVM-PR).
fn vm(test: &str) -> Option<OwnedFd> {
    if !device_present() {
        // Inside the test VMs the module must be there: skipping would pass vacuously.
        assert!(
            std::env::var_os("TCE_REQUIRE_MODULE").is_none(),
            "{test}: TCE_REQUIRE_MODULE is set but {} does not exist",
            kernel::DEVICE_PATH
        );
        println!(
            "note: {test}: skipped, {} does not exist on this host",
            kernel::DEVICE_PATH
        );
        return None;
    }
    let machine_type = std::env::var("TCE_KVM_VM_TYPE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    match create_vm_of_type(machine_type) {
        Ok(vm) => Some(vm),
        Err(e) => panic!("{test}: tce_accel is loaded but no VM can be created: {e:?}"),
    }
}

/// This process's open file descriptors and locked memory (kB).
#[derive(Debug, PartialEq, Eq)]
struct Usage {
    fds: usize,
    locked_kb: u64,
}

fn usage() -> Usage {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let locked_kb = tce_sys::process::vmlck_kb().unwrap();
    Usage { fds, locked_kb }
}

#[test]
fn a_file_that_is_not_a_table_is_refused() {
    let _g = serial();
    let null = std::fs::File::open("/dev/null").unwrap();
    let err = KernelTable::from_fd(null.into()).err().unwrap();
    assert!(matches!(err, Error::NotATable { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "the file descriptor is not a tce_accel TCE table"
    );
}

#[test]
fn a_missing_device_is_explained() {
    let _g = serial();
    if device_present() {
        println!("note: a_missing_device_is_explained: skipped, the module is loaded");
        return;
    }
    let Ok(vm) = create_vm() else {
        println!("note: a_missing_device_is_explained: skipped, no KVM here");
        return;
    };
    let vm2 = vm.try_clone().unwrap();
    let err = KernelTables::open_module(vm).err().unwrap();
    assert!(matches!(err, Error::OpenDevice { .. }), "{err}");
    assert!(err.to_string().contains("modprobe tce_accel"), "{err}");
    // Without the module, `open` falls back to KVM's tables, or says that there are none.
    match KernelTables::open(vm2) {
        Ok(tables) => assert!(!tables.through_module()),
        Err(err) => {
            assert!(matches!(err, Error::NoTables { .. }), "{err}");
            assert!(err.to_string().contains("modprobe tce_accel"), "{err}");
        }
    }
}

/// The value of the loaded module's `takeover` parameter: whether KVM's tables are the module's.
fn module_takes_over() -> bool {
    std::fs::read_to_string("/sys/module/tce_accel/parameters/takeover")
        .is_ok_and(|v| v.trim() == "Y")
}

/// A VM's tables created through KVM (`KernelTables::open_kvm`); `None`, with a note, where the
/// VM lacks `KVM_CAP_SPAPR_TCE_64`. `TCE_REQUIRE_KVM_TABLES=1` turns that into a failure.
fn kvm_tables(test: &str) -> Option<KernelTables> {
    let required = std::env::var_os("TCE_REQUIRE_KVM_TABLES").is_some();
    let machine_type = std::env::var("TCE_KVM_VM_TYPE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let opened = create_vm_of_type(machine_type).and_then(KernelTables::open_kvm);
    match opened {
        Ok(tables) => Some(tables),
        Err(e) => {
            assert!(!required, "{test}: TCE_REQUIRE_KVM_TABLES is set: {e}");
            println!("note: {test}: skipped, no KVM TCE tables here: {e}");
            None
        }
    }
}

#[test]
fn kvm_tables_back_the_shim_when_the_module_does_not() {
    let _g = serial();
    let start = usage();
    let test = "kvm_tables_back_the_shim_when_the_module_does_not";
    let Some(tables) = kvm_tables(test) else {
        return;
    };
    assert!(!tables.through_module());
    // With the module loaded and `takeover=1`, KVM hands the tables to the module.
    let want = if module_takes_over() {
        TableKind::Module
    } else {
        TableKind::Kvm
    };
    println!("{test}: KVM's tables are served by {want:?}");
    let mut shim = Shim::with_phbs(tables, &[PhbDesc::simulator_default(BUID, LIOBN)]).unwrap();
    let (h, l) = ((BUID >> 32) as u32, BUID as u32);
    let before = usage();

    // A 2^16-entry DDW of 64 KiB pages: eight 64 KiB pages of KVM's table, or 128 of 4 KiB.
    let query = call(&mut shim, RtasCall::Query, &[0, h, l], 5);
    assert_eq!(query[0], 0, "query: {query:x?}");
    let created = call(&mut shim, RtasCall::Create, &[0, h, l, 16, 32], 4);
    assert_eq!(created[..2], [0, LIOBN + 1], "create: {created:x?}");
    let table = shim.tables().table((LIOBN + 1).into()).unwrap();
    assert_eq!(table.kind(), want);
    let info = table.info().unwrap();
    assert_eq!(info.params.size, 1 << 16);
    assert_eq!(info.mapping_pages * info.entries_per_page(), 1 << 16);
    table.write(7, 0x1_0003).unwrap();
    table.write((1 << 16) - 1, 0x2_0001).unwrap();
    assert_eq!(table.read(7).unwrap(), 0x1_0003);
    assert_eq!(table.read(8).unwrap(), 0);
    assert!(matches!(
        table.read(1 << 16),
        Err(Error::IndexOutsideWindow { .. })
    ));
    let saved_table = saved::save(&table).unwrap();
    assert_eq!(
        saved_table.entries(),
        [(7, 0x1_0003), ((1 << 16) - 1, 0x2_0001)]
    );
    drop(table);

    // KVM's own errno for a LIOBN that is taken, through a second set of tables of the VM.
    let vm2 = shim.tables().vm_fd().try_clone_to_owned().unwrap();
    let mut other = KernelTables::open_kvm(vm2).unwrap();
    let err = other
        .create(WindowParams::new((LIOBN + 1).into(), 12, 0, 16))
        .unwrap_err();
    assert!(matches!(err, Error::LiobnBusy { .. }), "{err}");
    drop(other);

    let removed = call(&mut shim, RtasCall::Remove, &[LIOBN + 1], 1);
    assert_eq!(removed[0], 0);
    assert_eq!(usage(), before);
    assert_eq!(call(&mut shim, RtasCall::Reset, &[0, h, l], 1)[0], 0);
    drop(shim);
    assert_eq!(usage(), start);
}

#[test]
fn a_file_descriptor_can_be_taken_from_a_process() {
    let _g = serial();
    let file = std::fs::File::open("/dev/null").unwrap();
    let pid = std::process::id() as i32;
    match take_fd(pid, file.as_raw_fd()) {
        Ok(fd) => assert_ne!(fd.as_raw_fd(), file.as_raw_fd()),
        // Without the right to use pidfd_getfd (an old kernel or a seccomp sandbox).
        Err(e) => println!("note: pidfd_getfd is not available here: {e}"),
    }
    let err = take_fd(-5, 0).unwrap_err();
    assert_eq!(err.to_string(), "-5 is not a valid process ID");
    let err = take_fd(pid, 999_999).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot take file descriptor 999999"),
        "{err}"
    );
}

#[test]
fn kernel_tables_create_map_list_and_free() {
    let _g = serial();
    let before = usage();
    let Some(vm) = vm("kernel_tables_create_map_list_and_free") else {
        return;
    };
    let mut tables = KernelTables::open(vm).unwrap();
    let p = WindowParams::new(0x1001, 12, 0x10, 1 << 24);
    tables.create(p).unwrap();
    let table = tables.table(0x1001).unwrap();
    let info = table.info().unwrap();
    assert_eq!(info.params, p);
    assert_eq!(info.present_pages, 0);
    assert!(info.locked_pages >= info.mapping_pages);
    assert!(info.host_page_size.is_power_of_two() && info.host_page_size >= 4096);
    let per_page = table.entries_per_page();

    // Reads and zero writes allocate nothing.
    assert_eq!(table.read(12345).unwrap(), 0);
    table.write(1 << 23, 0).unwrap();
    assert_eq!(table.info().unwrap().present_pages, 0);
    let mut pages = [0u64; 8];
    assert_eq!(table.existing_pages(0, &mut pages).unwrap(), 0);

    // Non-zero writes allocate their page only.
    table.write(5, 0x1003).unwrap();
    table.write(3 * per_page + 1, 0x2001).unwrap();
    table.write((1 << 24) - 1, 0x3002).unwrap();
    assert_eq!(table.read(5).unwrap(), 0x1003);
    assert_eq!(table.read((1 << 24) - 1).unwrap(), 0x3002);
    let last = ((1u64 << 24) - 1) / per_page;
    assert_eq!(table.existing_pages(0, &mut pages).unwrap(), 3);
    assert_eq!(pages[..3], [0, 3, last]);
    assert_eq!(table.existing_pages(1, &mut pages).unwrap(), 2);
    assert_eq!(table.existing_pages(last + 1, &mut pages).unwrap(), 0);
    assert_eq!(table.info().unwrap().present_pages, 3);
    assert!(matches!(
        table.read(1 << 24),
        Err(Error::IndexOutsideWindow { .. })
    ));

    // The LIOBN is taken, in the module too.
    assert!(matches!(tables.create(p), Err(Error::LiobnBusy { .. })));
    let err = tables
        .create(WindowParams::new(0x1002, 11, 0, 1))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidWindow { .. }));

    drop(table);
    tables.remove(0x1001).unwrap();
    drop(tables);
    assert_eq!(usage(), before);
}

/// Runs a call on host-order cells and returns the return cells.
fn call(shim: &mut Shim<KernelTables>, call: RtasCall, args: &[u32], nret: usize) -> Vec<u32> {
    let mut rets = vec![0xeeee_eeee; nret];
    shim.call(call, args, &mut rets);
    rets
}

#[test]
fn the_kernel_shim_answers_rtas_and_leaks_nothing_on_bad_input() {
    let _g = serial();
    let start = usage();
    let Some(vm) = vm("the_kernel_shim_answers_rtas_and_leaks_nothing_on_bad_input") else {
        return;
    };
    let tables = KernelTables::open(vm).unwrap();
    let mut shim = Shim::with_phbs(tables, &[PhbDesc::simulator_default(BUID, LIOBN)]).unwrap();
    let (h, l) = ((BUID >> 32) as u32, BUID as u32);
    let param = RtasStatus::ParameterError.cell();
    let hw = RtasStatus::HardwareError.cell();
    let before = usage();
    let cases: [(RtasCall, Vec<u32>, usize, u32); 9] = [
        (RtasCall::Create, vec![0, h, l, 16], 4, param),
        (RtasCall::Query, vec![0, h, l], 4, param),
        (RtasCall::Query, vec![0, h, l + 1], 5, param),
        (RtasCall::Remove, vec![0x1234], 1, param),
        (RtasCall::Create, vec![0, h, l, 13, 40], 4, param),
        (RtasCall::Create, vec![0, h, l, 16, 15], 4, param),
        (RtasCall::Create, vec![0, h, l, 12, 44], 4, param),
        (RtasCall::Remove, vec![LIOBN + 1], 1, param),
        (RtasCall::Reset, vec![0, h, l], 2, param),
    ];
    for (c, args, nret, status) in &cases {
        let rets = call(&mut shim, *c, args, *nret);
        assert_eq!(rets[0], *status, "{c:?} {args:x?} {nret}");
        assert_eq!(usage(), before, "{c:?} {args:x?}");
    }
    let created = call(&mut shim, RtasCall::Create, &[0, h, l, 16, 40], 4);
    assert_eq!(created[..2], [0, LIOBN + 1]);
    let full = usage();
    assert_eq!(
        call(&mut shim, RtasCall::Create, &[0, h, l, 16, 40], 4)[0],
        hw
    );
    assert_eq!(usage(), full);

    // A second shim on the same VM races for the same LIOBNs and loses without a leak.
    let vm2 = shim.tables().vm_fd().try_clone_to_owned().unwrap();
    let mut other = Shim::new(KernelTables::open(vm2).unwrap());
    let err = other
        .add_phb(PhbDesc::simulator_default(BUID + 1, LIOBN + 1))
        .unwrap_err();
    assert!(matches!(err, Error::LiobnBusy { .. }), "{err}");
    drop(other);
    assert_eq!(usage(), full);

    assert_eq!(call(&mut shim, RtasCall::Reset, &[0, h, l], 1)[0], 0);
    assert_eq!(usage(), before);
    drop(shim);
    assert_eq!(usage(), start);
}

#[test]
fn kernel_tables_save_and_restore_sparsely() {
    let _g = serial();
    let before = usage();
    let Some(vm) = vm("kernel_tables_save_and_restore_sparsely") else {
        return;
    };
    let mut tables = KernelTables::open(vm).unwrap();
    // A 2^31-entry window needs 16 GiB of locked memory: root has it, others may not.
    let mut size = 1u64 << 31;
    loop {
        let p = WindowParams::new(0x2001, 12, (1u64 << 59) >> 12, size);
        match tables.create(p) {
            Ok(()) => break,
            Err(Error::NoMemory { .. }) if size > 1 << 20 => size >>= 4,
            Err(e) => panic!("{e}"),
        }
    }
    println!("saving a window of {size:#x} entries");
    let table = tables.table(0x2001).unwrap();

    // Empty: nothing is read, nothing is allocated.
    let (empty, stats) = saved::save_with_stats(&table).unwrap();
    assert_eq!(stats.pages_read, 0);
    assert!(empty.entries().is_empty());
    assert_eq!(table.info().unwrap().present_pages, 0);

    let mut state = 0x5eedu64;
    let mut indices = BTreeSet::new();
    for _ in 0..1000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let index = (state >> 11) % size;
        table.write(index, ((state >> 20) << 12) | 3).unwrap();
        indices.insert(index);
    }
    let present = table.info().unwrap().present_pages;
    let (saved_table, stats) = saved::save_with_stats(&table).unwrap();
    assert_eq!(stats.pages_read, present);
    assert_eq!(table.info().unwrap().present_pages, present);
    assert_eq!(saved_table.entries().len(), indices.len());

    let bytes = saved_table.to_bytes();
    let loaded = saved::SavedTable::from_bytes(&bytes).unwrap();
    let restored = saved::restore_as(&mut tables, &loaded, 0x2002).unwrap();
    assert_eq!(restored.info().unwrap().present_pages, present);
    let again = saved::save(&restored).unwrap();
    assert_eq!(again.entries(), saved_table.entries());

    drop(restored);
    drop(table);
    drop(tables);
    assert_eq!(usage(), before);
}

#[test]
fn a_table_taken_from_a_process_can_be_dumped() {
    let _g = serial();
    let Some(vm) = vm("a_table_taken_from_a_process_can_be_dumped") else {
        return;
    };
    let mut tables = KernelTables::open(vm).unwrap();
    tables
        .create(WindowParams::new(0x3001, 16, 0, 1 << 16))
        .unwrap();
    let table = tables.table(0x3001).unwrap();
    table.write(77, 0x10003).unwrap();
    let pid = std::process::id() as i32;
    let fd = take_fd(pid, table.fd().as_raw_fd()).unwrap();
    let other = KernelTable::from_fd(fd).unwrap();
    assert_eq!(other.params(), table.params());
    assert_eq!(saved::save(&other).unwrap().entries(), [(77, 0x10003)]);
}

#[test]
fn attaching_a_file_that_is_not_a_vfio_group_is_refused_without_a_leak() {
    let _g = serial();
    let before = usage();
    let Some(vm) = vm("attaching_a_file_that_is_not_a_vfio_group_is_refused_without_a_leak") else {
        return;
    };
    let mut tables = KernelTables::open(vm).unwrap();
    tables
        .create(WindowParams::new(0x4001, 16, (1u64 << 59) >> 16, 1 << 16))
        .unwrap();
    let table = tables.table(0x4001).unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    let err = tce_shim::vfio::attach_group(table.fd(), null.as_fd()).unwrap_err();
    // Without the sPAPR TCE IOMMU (x86-64) nothing can be attached at all.
    let want = if cfg!(target_arch = "powerpc64") {
        rustix::io::Errno::INVAL
    } else {
        rustix::io::Errno::NODEV
    };
    assert_eq!(err, want);
    drop((table, null, tables));
    assert_eq!(usage(), before);
}

/// The ioctl numbers, pinned for the architecture this runs on. It lives here rather than among
/// the unit tests so that it runs natively on both architectures: make check runs this file in
/// the x86-64 and the ppc64le test VMs.
#[test]
fn ioctl_numbers_are_pinned_for_this_architecture() {
    let numbers = [
        u64::from(uapi::TCE_ACCEL_CREATE_TABLE),
        u64::from(uapi::TCE_ACCEL_TABLE_INFO),
        u64::from(uapi::TCE_ACCEL_TABLE_PAGES),
        u64::from(uapi::KVM_CREATE_VM),
        u64::from(uapi::KVM_CHECK_EXTENSION),
        u64::from(uapi::KVM_CREATE_SPAPR_TCE_64),
        u64::from(uapi::TCE_ACCEL_ATTACH_GROUP),
        u64::from(uapi::TCE_ACCEL_DETACH_GROUP),
        u64::from(uapi::TCE_ACCEL_HW_ENTRY),
        u64::from(uapi::VFIO_GET_API_VERSION),
        u64::from(uapi::VFIO_CHECK_EXTENSION),
        u64::from(uapi::VFIO_SET_IOMMU),
        u64::from(uapi::VFIO_GROUP_GET_STATUS),
        u64::from(uapi::VFIO_GROUP_SET_CONTAINER),
        u64::from(uapi::VFIO_GROUP_UNSET_CONTAINER),
        u64::from(uapi::VFIO_IOMMU_SPAPR_TCE_GET_INFO),
        u64::from(uapi::VFIO_IOMMU_MAP_DMA),
        u64::from(uapi::VFIO_IOMMU_UNMAP_DMA),
        u64::from(uapi::VFIO_IOMMU_ENABLE),
        u64::from(uapi::VFIO_IOMMU_SPAPR_REGISTER_MEMORY),
        u64::from(uapi::VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY),
        u64::from(uapi::VFIO_IOMMU_SPAPR_TCE_CREATE),
        u64::from(uapi::VFIO_IOMMU_SPAPR_TCE_REMOVE),
    ];
    // The values of <linux/ioctl.h> on each architecture, as the C compiler computes them
    // (gcc and powerpc64le-linux-gnu-gcc on include/uapi/tce_accel.h and <linux/vfio.h>). VFIO's
    // numbers are all _IO: on powerpc that sets the direction field to 1 (0x2000_0000).
    #[cfg(target_arch = "x86_64")]
    let expected = [
        0x4028_B900u64,
        0x8040_B901,
        0xC020_B902,
        0xAE01,
        0xAE03,
        0x4020_AEA8,
        0x4010_B903,
        0x4010_B904,
        0xC028_B905,
        0x3B64,
        0x3B65,
        0x3B66,
        0x3B67,
        0x3B68,
        0x3B69,
        0x3B70,
        0x3B71,
        0x3B72,
        0x3B73,
        0x3B75,
        0x3B76,
        0x3B77,
        0x3B78,
    ];
    #[cfg(target_arch = "powerpc64")]
    let expected = [
        0x8028_B900u64,
        0x4040_B901,
        0xC020_B902,
        0x2000_AE01,
        0x2000_AE03,
        0x8020_AEA8,
        0x8010_B903,
        0x8010_B904,
        0xC028_B905,
        0x2000_3B64,
        0x2000_3B65,
        0x2000_3B66,
        0x2000_3B67,
        0x2000_3B68,
        0x2000_3B69,
        0x2000_3B70,
        0x2000_3B71,
        0x2000_3B72,
        0x2000_3B73,
        0x2000_3B75,
        0x2000_3B76,
        0x2000_3B77,
        0x2000_3B78,
    ];
    #[cfg(any(target_arch = "x86_64", target_arch = "powerpc64"))]
    assert_eq!(
        numbers,
        expected,
        "ioctl numbers for {}",
        std::env::consts::ARCH
    );
    #[cfg(not(any(target_arch = "x86_64", target_arch = "powerpc64")))]
    let _ = numbers;
}
