// SPDX-License-Identifier: GPL-2.0

//! Rule-by-rule tests of the engine through the simulated machine: accounting, sparse
//! allocation, hardware tables, bookkeeping, invalidation and failure atomicity.

use std::sync::Arc;
use std::thread;

use tce_engine::{
    env::TablePage,
    hcall::{
        check_attach,
        AttachError,
        Target,
        Vm, //
    },
    hwtable::{
        Geometry,
        HwEntry,
        HwTable,
        IommuTable, //
    },
    tce::HcallError,
    window::{
        CreateError,
        FaultError,
        Window,
        WindowParams, //
    },
};
use tce_model::{
    guest::{
        SimDma,
        SimRam, //
    },
    host::SimHost,
    machine::{
        Errno,
        Machine, //
    },
};

const GIB: u64 = 1 << 30;

/// A machine with 1 GiB of RAM at 0, all of it preregistered with 64 KiB pages, a window of
/// 4 KiB IOMMU pages (LIOBN 1) and a 2-level hardware table (id 7) attached to it.
fn machine_with_hw(host: SimHost) -> Machine {
    let mut m = Machine::new(host);
    m.ram(0, GIB).unwrap();
    m.prereg(0, GIB, 16).unwrap();
    m.create(WindowParams::new(1, 12, 0, 0x40000)).unwrap();
    m.hw(7, 12, 0, GIB, 2).unwrap();
    m.attach(1, 7).unwrap();
    m
}

#[test]
fn create_rules() {
    let host = SimHost::new(16);
    let bad = [
        WindowParams::new(1, 12, 0, 0),
        WindowParams::new(1, 11, 0, 1),
        WindowParams::new(1, 35, 0, 1),
        WindowParams::new(1, 12, u64::MAX, 2),
        WindowParams::new(1, 12, (u64::MAX >> 12) - 1, 2),
        WindowParams {
            flags: 1,
            ..WindowParams::new(1, 12, 0, 1)
        },
    ];
    for p in bad {
        assert_eq!(
            Window::new(host.clone(), p).err(),
            Some(CreateError::Invalid),
            "{p:?}"
        );
    }
    assert!(Window::new(
        host.clone(),
        WindowParams::new(1, 12, (u64::MAX >> 12) - 2, 2)
    )
    .is_ok());
    assert!(Window::new(host.clone(), WindowParams::new(1, 34, 0, 1)).is_ok());
    assert_eq!(
        host.locked_pages(),
        0,
        "failed and dropped tables hold no charge"
    );
}

#[test]
fn accounting_is_up_front_and_released() {
    let host = SimHost::new(16);
    let w = Window::new(host.clone(), WindowParams::new(1, 12, 0, 1 << 31)).unwrap();
    // 2^31 entries of 8 bytes in 64 KiB pages, plus the bookkeeping.
    assert_eq!(w.mapping_pages(), 1 << 18);
    assert!(w.charged_pages() > 1 << 18);
    assert_eq!(host.locked_pages(), w.charged_pages());
    assert_eq!(w.present_pages(), 0);
    drop(w);
    assert_eq!(host.locked_pages(), 0);
    assert_eq!(host.live_blocks(), 0);
}

#[test]
fn locked_limit_refuses_and_leaves_nothing() {
    let host = SimHost::with_limit(16, 1 << 20);
    assert_eq!(
        Window::new(host.clone(), WindowParams::new(1, 12, 0, 1 << 20)).err(),
        Some(CreateError::NoMemory)
    );
    assert_eq!(host.locked_pages(), 0);
    let small = Window::new(host.clone(), WindowParams::new(1, 12, 0, 1024)).unwrap();
    assert_eq!(host.locked_pages(), small.charged_pages());
}

#[test]
fn allocation_failure_at_create_releases_the_charge() {
    let host = SimHost::new(16);
    host.fail_after(0);
    assert_eq!(
        Window::new(host.clone(), WindowParams::new(1, 12, 0, 4096)).err(),
        Some(CreateError::NoMemory)
    );
    assert_eq!(host.locked_pages(), 0);
}

#[test]
fn fault_allocates_the_page_the_hcalls_write() {
    let host = SimHost::new(12);
    let mut m = Machine::new(host.clone());
    m.ram(0, GIB).unwrap();
    m.create(WindowParams::new(1, 12, 0, 1024)).unwrap();
    let w = m.window(1).unwrap();
    // 1024 entries are two 4 KiB pages.
    assert_eq!(w.mapping_pages(), 2);
    assert_eq!(w.fault(2).err(), Some(FaultError::OutOfRange));
    assert_eq!(w.fault(u64::MAX).err(), Some(FaultError::OutOfRange));
    w.fault(1).unwrap();
    assert_eq!(m.pages(1), Some(1));
    // Entry 512 is the first of page 1: the hcall writes the faulted page.
    m.put(1, 512 << 12, 0x5003).unwrap();
    let w = m.window(1).unwrap();
    assert_eq!(w.fault(1).unwrap().load(0), 0x5003);
    host.fail_after(0);
    assert_eq!(w.fault(0).err(), Some(FaultError::NoMemory));
    host.never_fail();
}

#[test]
fn the_allocation_count_moves_exactly_when_a_page_is_allocated() {
    let host = SimHost::new(12);
    let mut m = Machine::new(host.clone());
    m.ram(0, GIB).unwrap();
    m.create(WindowParams::new(1, 12, 0, 2048)).unwrap();
    let count = |m: &Machine| m.window(1).unwrap().allocations();
    assert_eq!(count(&m), 0);
    // Clearing and reading allocate nothing.
    m.put(1, 0, 0).unwrap();
    m.stuff(1, 0, 0, 2048).unwrap();
    assert_eq!(m.get(1, 0), Ok(0));
    assert_eq!(count(&m), 0);
    // The first write of page 0 allocates it, the next writes to it do not.
    m.put(1, 0, 0x5003).unwrap();
    assert_eq!(count(&m), 1);
    m.put(1, 1 << 12, 0x6003).unwrap();
    assert_eq!(count(&m), 1);
    // A fault allocates too; a fault of a page that exists does not.
    m.window(1).unwrap().fault(3).unwrap();
    m.window(1).unwrap().fault(0).unwrap();
    assert_eq!(count(&m), 2);
    // A failed allocation does not count.
    host.fail_after(0);
    assert_eq!(m.put(1, 1024 << 12, 0x7003), Err(HcallError::TooHard));
    host.never_fail();
    assert_eq!(count(&m), 2);
}

#[test]
fn an_indirect_list_across_two_pages_writes_each_entry_and_allocates_only_for_non_zero() {
    let mut m = Machine::new(SimHost::new(12));
    m.ram(0, GIB).unwrap();
    // 4 KiB pages hold 512 entries: a list from entry 500 spans pages 0 and 1.
    m.create(WindowParams::new(1, 12, 0, 2048)).unwrap();
    let list = 0x10_0000;
    // Zeroes only: no page is allocated.
    m.write64(list, &[0; 20]).unwrap();
    m.indirect(1, 500 << 12, list, 20).unwrap();
    assert_eq!(m.pages(1), Some(0));
    // Zeroes on page 0, values on page 1: only page 1 is allocated.
    let mut values = [0u64; 20];
    for (i, v) in values.iter_mut().enumerate().skip(12) {
        *v = 0x1000 * i as u64 + 3;
    }
    m.write64(list, &values).unwrap();
    m.indirect(1, 500 << 12, list, 20).unwrap();
    assert_eq!(m.pages(1), Some(1));
    // Values on both pages: each entry reads back.
    for (i, v) in values.iter_mut().enumerate() {
        *v = 0x1000 * (i as u64 + 1) + 1;
    }
    m.write64(list, &values).unwrap();
    m.indirect(1, 500 << 12, list, 20).unwrap();
    assert_eq!(m.pages(1), Some(2));
    for (i, &v) in values.iter().enumerate() {
        assert_eq!(m.get(1, (500 + i as u64) << 12), Ok(v), "entry {}", 500 + i);
    }
    assert_eq!(m.get(1, 499 << 12), Ok(0));
    assert_eq!(m.get(1, 520 << 12), Ok(0));
}

#[test]
fn allocation_failure_in_put_changes_nothing() {
    let host = SimHost::new(16);
    let m = machine_with_hw(host.clone());
    m.put(1, 0, 0x10003).unwrap();
    let levels = m.hw_table(7).unwrap().level_pages();
    // The next put needs a new guest-view page; the allocation fails.
    host.fail_after(0);
    let far = 0x20000u64 << 12;
    assert_eq!(m.put(1, far, 0x20003), Err(HcallError::TooHard));
    host.never_fail();
    assert_eq!(m.get(1, far), Ok(0));
    assert_eq!(m.pages(1), Some(1));
    let hw = m.hw_table(7).unwrap();
    assert_eq!(hw.raw(0x20000), Some(0), "hardware untouched");
    assert_eq!(hw.level_pages(), levels);
    assert_eq!(m.dma().total_mapped(), 1);
}

#[test]
fn allocation_failure_of_a_hardware_level_clears_and_keeps_the_guest_view() {
    let host = SimHost::new(16);
    let m = machine_with_hw(host.clone());
    m.put(1, 0x10 << 12, 0x7003).unwrap();
    // Entry 0x10 lives in the first leaf; the guest-view page exists. A put far away needs
    // a new hardware level only (the guest-view page of entry 0x3ffff is reserved first).
    let far = 0x3ffffu64 << 12;
    m.put(1, far, 0x1000).unwrap(); // A poison value allocates the guest-view page.
    host.fail_after(0);
    assert_eq!(m.put(1, far, 0x8003), Err(HcallError::TooHard));
    host.never_fail();
    assert_eq!(m.get(1, far), Ok(0x1000), "guest view keeps the old value");
    assert_eq!(m.hw_table(7).unwrap().raw(0x3ffff), Some(0));
    assert_eq!(m.dma().total_mapped(), 1, "no mapped count leaked");
}

#[test]
fn write_implies_read_and_user_address_mirror() {
    let m = machine_with_hw(SimHost::new(16));
    m.put(1, 3 << 12, 0x9002).unwrap();
    let hw = m.hw_table(7).unwrap();
    assert_eq!(hw.raw(3), Some(0x9003));
    assert_eq!(hw.user_address(3), Some(0x9000));
    assert_eq!(
        m.get(1, 3 << 12),
        Ok(0x9002),
        "the guest view keeps the guest's bits"
    );
    m.put(1, 4 << 12, 0xa001).unwrap();
    assert_eq!(hw.raw(4), Some(0xa001));
}

#[test]
fn exchange_releases_the_old_entry() {
    let m = machine_with_hw(SimHost::new(16));
    m.put(1, 0, 0x1003).unwrap();
    m.put(1, 0, 0x2003).unwrap();
    assert_eq!(m.dma().total_mapped(), 1);
    m.put(1, 0, 0).unwrap();
    assert_eq!(m.dma().total_mapped(), 0);
    assert_eq!(m.hw_table(7).unwrap().user_address(0), Some(0));
}

/// An entry that another writer of the hardware table mapped (VFIO, with memory of another
/// process) records a user address in none of the VM's regions. Clearing it, stuffing over it
/// or mapping over it must put it back as it was and answer `H_TOO_HARD`, so that its writer
/// can release its count; no count of ours may be taken or dropped.
#[test]
fn a_foreign_entry_is_put_back_and_too_hard() {
    let m = machine_with_hw(SimHost::new(16));
    let hw = m.hw_table(7).unwrap();
    let foreign = HwEntry {
        tce: 0x5000 | 3,
        ua: 4 * GIB,
    };
    m.put(1, 1 << 12, 0x2003).unwrap();
    assert_eq!(hw.exchange(0, foreign), Ok(HwEntry::CLEAR));
    assert_eq!(m.dma().total_mapped(), 1);
    type Call<'a> = Box<dyn Fn() -> Result<(), HcallError> + 'a>;
    let calls: [(&str, Call<'_>); 3] = [
        ("clear", Box::new(|| m.put(1, 0, 0))),
        ("map over it", Box::new(|| m.put(1, 0, 0x1003))),
        ("stuff over it", Box::new(|| m.stuff(1, 0, 0, 16))),
    ];
    for (what, call) in &calls {
        assert_eq!(call(), Err(HcallError::TooHard), "{what}");
        assert_eq!(hw.raw(0), Some(0x5000 | 3), "{what}: the entry is back");
        assert_eq!(hw.user_address(0), Some(4 * GIB), "{what}: and its address");
        assert_eq!(m.get(1, 0), Ok(0), "{what}: the guest view is unchanged");
    }
    // The stuff stopped at entry 0, the first: entry 1 keeps its mapping and its count.
    assert_eq!(m.dma().total_mapped(), 1);
    assert_eq!(m.get(1, 1 << 12), Ok(0x2003));
    // Once the other writer cleared it, the guest's calls work again.
    assert_eq!(hw.exchange(0, HwEntry::CLEAR), Ok(foreign));
    m.stuff(1, 0, 0, 16).unwrap();
    assert_eq!(m.dma().total_mapped(), 0);
}

#[test]
fn unmap_never_allocates() {
    let m = machine_with_hw(SimHost::new(16));
    let hw = m.hw_table(7).unwrap();
    assert_eq!(hw.level_pages(), 1);
    m.put(1, 0x30000 << 12, 0).unwrap();
    m.stuff(1, 0, 0, 0x40000).unwrap();
    assert_eq!(hw.level_pages(), 1);
    m.put(1, 0x30000 << 12, 0x3003).unwrap();
    assert_eq!(hw.level_pages(), 2);
}

#[test]
fn stuff_unmaps_hardware_and_invalidates_once() {
    let m = machine_with_hw(SimHost::new(16));
    for i in [0u64, 1, 0x1000, 0x3ffff] {
        m.put(1, i << 12, (i << 12) | 3).unwrap();
    }
    let hw = m.hw_table(7).unwrap();
    let kills = hw.invalidations();
    m.stuff(1, 0, 0, 0x40000).unwrap();
    assert_eq!(
        hw.invalidations(),
        kills + 1,
        "one invalidation for the whole range"
    );
    for i in [0u64, 1, 0x1000, 0x3ffff] {
        assert_eq!(hw.raw(i), Some(0));
        assert_eq!(m.get(1, i << 12), Ok(0));
    }
    assert_eq!(m.dma().total_mapped(), 0);
}

#[test]
fn indirect_invalidates_once_per_call() {
    let mut m = machine_with_hw(SimHost::new(16));
    let list: Vec<u64> = (0..512u64).map(|i| ((0x100 + i) << 12) | 3).collect();
    m.write64(0x3000_0000, &list).unwrap();
    let kills = m.hw_table(7).unwrap().invalidations();
    m.indirect(1, 0x200 << 12, 0x3000_0000, 512).unwrap();
    let hw = m.hw_table(7).unwrap();
    assert_eq!(hw.invalidations(), kills + 1);
    assert_eq!(hw.raw(0x200 + 511), Some(((0x100 + 511) << 12) | 3));
    assert_eq!(m.dma().total_mapped(), 512);
}

#[test]
fn subpages_map_every_hardware_page() {
    let mut m = Machine::new(SimHost::new(16));
    m.ram(0, GIB).unwrap();
    m.prereg(0, GIB, 16).unwrap();
    m.create(WindowParams::new(1, 16, 0, 0x4000)).unwrap();
    m.hw(7, 12, 0, GIB, 3).unwrap();
    m.attach(1, 7).unwrap();
    m.put(1, 2 << 16, 0x30001).unwrap();
    let hw = m.hw_table(7).unwrap();
    for k in 0..16u64 {
        assert_eq!(hw.raw(32 + k), Some((0x30000 + (k << 12)) | 1));
    }
    assert_eq!(hw.raw(48), Some(0));
    assert_eq!(m.dma().total_mapped(), 16);
    m.put(1, 2 << 16, 0).unwrap();
    assert_eq!(m.dma().total_mapped(), 0);
}

#[test]
fn hardware_needs_preregistered_memory_with_large_enough_pages() {
    let mut m = Machine::new(SimHost::new(16));
    m.ram(0, GIB).unwrap();
    m.prereg(0, 1 << 20, 12).unwrap();
    m.create(WindowParams::new(1, 16, 0, 0x4000)).unwrap();
    m.hw(7, 16, 0, GIB, 1).unwrap();
    m.attach(1, 7).unwrap();
    // Preregistered with 4 KiB pages: too small for the 64 KiB hardware page.
    assert_eq!(m.put(1, 0, 0x10003), Err(HcallError::TooHard));
    // Not preregistered at all.
    assert_eq!(m.put(1, 0, 0x200003), Err(HcallError::TooHard));
    assert_eq!(m.get(1, 0), Ok(0));
    assert_eq!(m.dma().total_mapped(), 0);
    // A clear needs no preregistration.
    assert_eq!(m.put(1, 0, 0), Ok(()));
}

#[test]
fn attach_rules() {
    let host = SimHost::new(16);
    let w = Window::new(host.clone(), WindowParams::new(1, 16, 0, 0x4000)).unwrap();
    let t = |shift, off, bytes| {
        HwTable::new(
            host.clone(),
            Geometry::new(16, shift, off, bytes, 1).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(check_attach(&w, &t(12, 0, GIB)), Ok(()));
    assert_eq!(check_attach(&w, &t(21, 0, GIB)), Err(AttachError::PageSize));
    assert_eq!(
        check_attach(&w, &t(16, 1 << 30, GIB)),
        Err(AttachError::Offset)
    );
    assert_eq!(check_attach(&w, &t(16, 0, 1 << 29)), Err(AttachError::Size));
    let mut m = Machine::new(host);
    m.create(WindowParams::new(1, 12, 0, 16)).unwrap();
    assert_eq!(m.attach(1, 9), Err(Errno::NoEnt));
    m.hw(9, 12, 0, 1 << 16, 1).unwrap();
    assert_eq!(m.attach(2, 9), Err(Errno::NoEnt));
    assert_eq!(m.attach(1, 9), Ok(()));
    assert_eq!(m.attach(1, 9), Ok(()), "attaching twice is idempotent");
}

#[test]
fn geometry_rules() {
    assert!(Geometry::new(16, 12, 0, GIB, 0).is_err());
    assert!(Geometry::new(16, 12, 0, GIB, 6).is_err());
    assert!(Geometry::new(16, 13, 0, GIB, 1).is_err());
    assert!(Geometry::new(16, 12, 0, 3 << 20, 1).is_err());
    assert!(
        Geometry::new(16, 16, 0, 1 << 12, 1).is_err(),
        "window smaller than a page"
    );
    assert!(
        Geometry::new(16, 12, 0x800, GIB, 1).is_err(),
        "misaligned bus offset"
    );
    // (level_shift - 3) * levels + page_shift must stay below 55.
    // 4 levels of 2^10 entries: 10 * 4 + 12 = 52.
    let g = Geometry::new(12, 12, 0, 1 << 50, 4).unwrap();
    assert_eq!(g.level_shift(), 13);
    // With 64 KiB host pages every level has at least 2^13 entries: 13 * 5 + 12 = 77.
    assert!(Geometry::new(16, 12, 0, 1 << 54, 5).is_err());
    assert!(Geometry::new(12, 30, 0, 1 << 60, 5).is_err());
    // Levels are at least one host page.
    let g = Geometry::new(16, 12, 0, 1 << 20, 2).unwrap();
    assert_eq!(g.level_shift(), 16);
    assert_eq!(g.size(), 256);
    for shift in [12, 16, 21, 24, 28, 30] {
        assert!(
            Geometry::new(12, shift, 0, 1 << 40, 1).is_ok(),
            "page shift {shift}"
        );
    }
}

#[test]
fn levels_count_and_top_only_at_creation() {
    let host = SimHost::new(12);
    let t = HwTable::new(host.clone(), Geometry::new(12, 12, 0, 1 << 40, 3).unwrap()).unwrap();
    assert_eq!(t.level_pages(), 1);
    // Only the top level and its mirror bookkeeping are allocated.
    let new = HwEntry {
        tce: 0x1003,
        ua: 0x1000,
    };
    t.exchange(5, new).unwrap();
    assert_eq!(t.level_pages(), 3, "two levels below the top");
    t.exchange(6, new).unwrap();
    assert_eq!(t.level_pages(), 3);
    assert_eq!(t.exchange(1 << 27, HwEntry::CLEAR), Ok(HwEntry::CLEAR));
    assert_eq!(t.level_pages(), 3);
    assert!(t.exchange(1 << 28, new).is_err(), "outside the window");
    drop(t);
    assert_eq!(host.live_blocks(), 0, "every level freed with the table");
}

#[test]
fn intermediate_entries_link_levels_with_read_write() {
    let host = SimHost::new(12);
    let t = HwTable::new(host, Geometry::new(12, 12, 0, 1 << 40, 2).unwrap()).unwrap();
    t.exchange(
        0,
        HwEntry {
            tce: 0x1003,
            ua: 0x1000,
        },
    )
    .unwrap();
    assert_eq!(t.raw(0), Some(0x1003));
}

#[test]
fn concurrent_mapping_installs_each_level_once() {
    let host = SimHost::new(12);
    let t = Arc::new(
        HwTable::new(host.clone(), Geometry::new(12, 12, 0, 1 << 40, 4).unwrap()).unwrap(),
    );
    let threads: Vec<_> = (0..4u64)
        .map(|n| {
            let t = t.clone();
            thread::spawn(move || {
                for i in 0..2000u64 {
                    let idx = (i * 7919 + n) % (1 << 20);
                    t.exchange(
                        idx,
                        HwEntry {
                            tce: (idx << 12) | 3,
                            ua: idx << 12,
                        },
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    // Every installed level is counted once, and the losers' pages were freed: the live
    // blocks are the level pages plus one mirror page per leaf.
    let mut leaves = std::collections::BTreeSet::new();
    for n in 0..4u64 {
        for i in 0..2000u64 {
            let idx = (i * 7919 + n) % (1 << 20);
            assert_eq!(t.raw(idx), Some((idx << 12) | 3));
            leaves.insert(idx >> 9);
        }
    }
    assert_eq!(host.live_blocks(), t.level_pages() + leaves.len() as u64);
}

#[test]
fn failing_table_is_cleared_in_every_table_before_it() {
    let host = SimHost::new(16);
    let mut m = Machine::new(host.clone());
    m.ram(0, GIB).unwrap();
    m.prereg(0, GIB, 16).unwrap();
    m.create(WindowParams::new(1, 12, 0, 0x40000)).unwrap();
    m.hw(1, 12, 0, GIB, 1).unwrap();
    m.hw(2, 12, 0, GIB, 2).unwrap();
    m.attach(1, 1).unwrap();
    m.attach(1, 2).unwrap();
    m.put(1, 0x100 << 12, 0x5003).unwrap();
    // Table 1 is single-level (no allocation); table 2 needs a new level for entry 0x3f000.
    host.fail_after(0);
    assert_eq!(m.put(1, 0x3f000 << 12, 0x6003), Err(HcallError::TooHard));
    host.never_fail();
    assert_eq!(
        m.hw_table(1).unwrap().raw(0x3f000),
        Some(0),
        "the first table was cleared"
    );
    assert_eq!(m.hw_table(2).unwrap().raw(0x3f000), Some(0));
    assert_eq!(m.dma().total_mapped(), 2);
    assert_eq!(m.get(1, 0x3f000 << 12), Ok(0));
}

#[test]
fn long_poisoning_stuff_is_left_to_the_vmm() {
    let mut m = Machine::new(SimHost::new(12));
    m.ram(0, GIB).unwrap();
    m.create(WindowParams::new(1, 12, 0, 1 << 31)).unwrap();
    let max = tce_engine::tce::STUFF_NONZERO_MAX;
    // One entry more than the fast path fills: refused before anything is allocated.
    assert_eq!(m.stuff(1, 0, 0xdead0000, max + 1), Err(HcallError::TooHard));
    assert_eq!(m.stuff(1, 0, 0xdead0000, 1 << 31), Err(HcallError::TooHard));
    assert_eq!(m.pages(1), Some(0));
    // Permissions are still checked first, and a zero value is never refused.
    assert_eq!(m.stuff(1, 0, 0x1003, max + 1), Err(HcallError::Parameter));
    assert_eq!(m.stuff(1, 0, 0, 1 << 31), Ok(()));
    // Up to the bound it is done here, every page of the range allocated.
    assert_eq!(m.stuff(1, 0, 0xdead0000, max), Ok(()));
    assert_eq!(m.get(1, (max - 1) << 12), Ok(0xdead0000));
    assert_eq!(m.get(1, max << 12), Ok(0));
    assert_eq!(m.pages(1), Some(max / 512));
}

#[test]
fn huge_sparse_clear_is_fast() {
    let mut m = Machine::new(SimHost::new(12));
    m.ram(0, GIB).unwrap();
    m.create(WindowParams::new(1, 12, 0, 1 << 31)).unwrap();
    for i in [0u64, 12345, 1 << 30, (1 << 31) - 1] {
        m.put(1, i << 12, 0x1003).unwrap();
    }
    let start = std::time::Instant::now();
    m.stuff(1, 0, 0, 1 << 31).unwrap();
    let took = start.elapsed();
    // Not a benchmark: a bound far above the real cost that a per-page walk would break
    // (2^22 pages at 4 KiB).
    assert!(took.as_millis() < 500, "clear took {took:?}");
    assert_eq!(m.get(1, (1 << 30) << 12), Ok(0));
    assert_eq!(m.pages(1), Some(4));
}

#[test]
fn guest_view_only_path_needs_no_hardware() {
    let mut ram = SimRam::default();
    ram.add_slot(0, GIB).unwrap();
    let dma = SimDma::default();
    let host = SimHost::new(16);
    let w = Window::new(host, WindowParams::new(5, 12, 0x100, 0x100)).unwrap();
    let vm = Vm {
        guest: &ram,
        dma: &dma,
    };
    let none = || std::iter::empty::<&HwTable<SimHost>>();
    let t = || {
        Some(Target {
            window: &w,
            tables: none(),
        })
    };
    assert_eq!(vm.put_tce(t(), 0x100 << 12, 0x3003), Ok(()));
    assert_eq!(
        vm.put_tce(t(), 0xff << 12, 0x3003),
        Err(HcallError::Parameter),
        "below the offset"
    );
    assert_eq!(
        vm.put_tce(t(), 0x200 << 12, 0x3003),
        Err(HcallError::Parameter),
        "past the end"
    );
    assert_eq!(vm.put_tce(t(), 0x100 << 12, 0), Ok(()));
    assert_eq!(
        vm.stuff_tce(t(), 0x100 << 12, 0, u64::MAX),
        Err(HcallError::Parameter)
    );
    assert_eq!(
        vm.stuff_tce(t(), 0x1ff << 12, 0, 2),
        Err(HcallError::Parameter),
        "whole range checked"
    );
    assert_eq!(vm.stuff_tce(t(), 0x1ff << 12, 0, 1), Ok(()));
    assert_eq!(
        vm.put_tce(
            None::<Target<'_, SimHost, std::iter::Empty<&HwTable<SimHost>>>>,
            0,
            0
        ),
        Err(HcallError::TooHard)
    );
}

#[test]
fn present_pages_are_listed_sparsely() {
    let mut m = Machine::new(SimHost::new(12));
    m.ram(0, GIB).unwrap();
    m.create(WindowParams::new(1, 12, 0, 1 << 31)).unwrap();
    // 512 entries per 4 KiB page: entries 0, 1 << 20 and the last one are in pages 0, 2048 and
    // 2^22 - 1.
    for i in [0u64, 1 << 20, (1 << 31) - 1] {
        m.put(1, i << 12, 0x1003).unwrap();
    }
    let w = m.window(1).unwrap();
    let mut out = [0u64; 2];
    assert_eq!(w.present_pages_from(0, &mut out), 2);
    assert_eq!(out, [0, 2048]);
    assert_eq!(w.present_pages_from(2049, &mut out), 1);
    assert_eq!(out[0], (1 << 22) - 1);
    assert_eq!(w.present_pages_from(1 << 22, &mut out), 0);
    assert_eq!(w.present_pages_from(u64::MAX, &mut out), 0);
    assert_eq!(w.present_pages_from(0, &mut []), 0);
}
