// SPDX-License-Identifier: GPL-2.0
//! Unit tests of the shim, the simulated backend and sparse migration.

use std::collections::BTreeMap;

use tce_ddw_model::{
    cells,
    PhbDesc,
    RtasCall,
    RtasStatus, //
};
use tce_engine::window::WindowParams;
use tce_model::host::SimHost;

use crate::saved::{
    self,
    SavedTable,
    HEADER_BYTES,
    MAGIC, //
};
use crate::{
    Error,
    Shim,
    SimTable,
    SimTables,
    Table,
    Tables, //
};

const BUID: u64 = 0x0800_0000_2000_0000;
const BUID2: u64 = 0x0800_0000_2000_0001;
const LIOBN: u32 = 0x8000_0000;
const OK: u32 = 0;
const HW: u32 = RtasStatus::HardwareError.cell();
const PARAM: u32 = RtasStatus::ParameterError.cell();
const DMA64: u64 = 1 << 59;

/// A small deterministic generator, so that every run tests the same tables.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}

fn lo(v: u64) -> u32 {
    v as u32
}

/// A shim with tce-sim's PHB on a fresh simulated host with 64 KiB pages.
fn setup() -> (Shim<SimTables>, SimTables, SimHost) {
    setup_on(SimHost::new(16))
}

fn setup_on(host: SimHost) -> (Shim<SimTables>, SimTables, SimHost) {
    let tables = SimTables::new(host.clone());
    let shim = Shim::with_phbs(tables.clone(), &[PhbDesc::simulator_default(BUID, LIOBN)])
        .expect("the simulator's PHB is valid");
    (shim, tables, host)
}

/// Builds a guest RTAS buffer, runs it through the shim and returns the return cells.
fn rtas(shim: &mut Shim<SimTables>, call: RtasCall, args: &[u32], nret: usize) -> Vec<u32> {
    let mut buf = Vec::new();
    for cell in [0x2000, args.len() as u32, nret as u32].iter().chain(args) {
        buf.extend_from_slice(&cell.to_be_bytes());
    }
    let rets_at = buf.len();
    buf.resize(rets_at + 4 * nret, 0xee);
    let status = shim.call_buffer(call, &mut buf).unwrap();
    let mut rets = vec![0u32; nret];
    cells::decode_cells(&buf[rets_at..], &mut rets).unwrap();
    if nret > 0 {
        assert_eq!(rets[0], status.cell());
    }
    rets
}

fn query(shim: &mut Shim<SimTables>, buid: u64) -> Vec<u32> {
    rtas(shim, RtasCall::Query, &[0, hi(buid), lo(buid)], 5)
}

fn create(shim: &mut Shim<SimTables>, buid: u64, page_shift: u32, window_shift: u32) -> Vec<u32> {
    rtas(
        shim,
        RtasCall::Create,
        &[0, hi(buid), lo(buid), page_shift, window_shift],
        4,
    )
}

fn remove(shim: &mut Shim<SimTables>, liobn: u32) -> u32 {
    rtas(shim, RtasCall::Remove, &[liobn], 1)[0]
}

fn reset(shim: &mut Shim<SimTables>, buid: u64) -> u32 {
    rtas(shim, RtasCall::Reset, &[0, hi(buid), lo(buid)], 1)[0]
}

/// What a VM's tables use: locked memory, allocated blocks and LIOBNs.
#[derive(Debug, PartialEq, Eq)]
struct Usage {
    locked: u64,
    blocks: u64,
    liobns: Vec<u64>,
}

fn usage(host: &SimHost, tables: &SimTables) -> Usage {
    Usage {
        locked: host.locked_pages(),
        blocks: host.live_blocks(),
        liobns: tables.liobns(),
    }
}

/// Checks that the backend holds exactly one table per active window, with its geometry.
fn assert_tables_match(shim: &Shim<SimTables>, tables: &SimTables) {
    let model: BTreeMap<u64, (u32, u64, u64)> = shim
        .windows()
        .map(|w| {
            (
                u64::from(w.liobn),
                (w.page_shift, w.bus_offset >> w.page_shift, w.entries),
            )
        })
        .collect();
    let backend: BTreeMap<u64, (u32, u64, u64)> = tables
        .liobns()
        .into_iter()
        .map(|l| {
            let p = tables.table(l).unwrap().params();
            (l, (p.page_shift, p.offset, p.size))
        })
        .collect();
    assert_eq!(model, backend);
}

#[test]
fn rtas_calls_through_big_endian_buffers() {
    let (mut shim, tables, _) = setup();
    assert_eq!(query(&mut shim, BUID), [OK, 1, 0x8000_0000, 0x107, 0]);
    let six = rtas(&mut shim, RtasCall::Query, &[0, hi(BUID), lo(BUID)], 6);
    assert_eq!(six, [OK, 1, 0, 0x8000_0000, 0x107, 0]);
    assert_eq!(
        create(&mut shim, BUID, 16, 40),
        [OK, LIOBN + 1, hi(DMA64), lo(DMA64)]
    );
    assert_eq!(tables.liobns(), [u64::from(LIOBN), u64::from(LIOBN + 1)]);
    assert_eq!(query(&mut shim, BUID)[1], 0);
    assert_tables_match(&shim, &tables);
    assert_eq!(remove(&mut shim, LIOBN + 1), OK);
    assert_eq!(remove(&mut shim, LIOBN), OK);
    assert!(tables.liobns().is_empty());
    // The guest's usual sequence: a big window at the default window's address.
    assert_eq!(create(&mut shim, BUID, 16, 40), [OK, LIOBN, 0, 0]);
    assert_tables_match(&shim, &tables);
    assert_eq!(reset(&mut shim, BUID), OK);
    assert_tables_match(&shim, &tables);
    let default = tables.table(u64::from(LIOBN)).unwrap().params();
    assert_eq!((default.page_shift, default.size), (12, 0x40000));
}

#[test]
fn host_order_calls_and_misshapen_buffers() {
    let (mut shim, _, _) = setup();
    let mut rets = [0u32; 4];
    let status = shim.call(
        RtasCall::Create,
        &[0, hi(BUID), lo(BUID), 12, 30],
        &mut rets,
    );
    assert_eq!(status, RtasStatus::Success);
    assert_eq!(rets, [OK, LIOBN + 1, hi(DMA64), lo(DMA64)]);
    let bad = shim.call_be(RtasCall::Query, &[0; 5], &mut [0; 20]);
    assert!(matches!(bad, Err(Error::RtasBuffer { .. })));
    let mut short = [0u8; 11];
    let bad = shim.call_buffer(RtasCall::Query, &mut short);
    assert_eq!(
        bad.unwrap_err().to_string(),
        "the RTAS buffer is shorter than its header says"
    );
}

#[test]
fn creating_a_huge_window_touches_no_entry() {
    let (mut shim, tables, host) = setup();
    let blocks = host.live_blocks();
    // 2^31 entries of 4 KiB: the largest window the model accepts.
    assert_eq!(create(&mut shim, BUID, 12, 43)[0], OK);
    let table = tables.table(u64::from(LIOBN + 1)).unwrap();
    let info = table.info().unwrap();
    assert_eq!(info.params.size, 1 << 31);
    assert_eq!(info.present_pages, 0);
    assert_eq!(host.live_blocks(), blocks);
    // The whole table is charged up front: 2^31 * 8 bytes in 64 KiB pages, and bookkeeping.
    assert!(info.locked_pages > (1 << 18));
    let mut first = [0u64; 4];
    assert_eq!(table.existing_pages(0, &mut first).unwrap(), 0);
    assert_eq!(table.read((1 << 31) - 1).unwrap(), 0);
    assert_eq!(host.live_blocks(), blocks);
}

#[test]
fn reading_and_zero_writes_allocate_nothing() {
    let (_shim, mut tables, host) = setup();
    let params = WindowParams::new(7, 12, 0x100, 100_000);
    tables.create(params).unwrap();
    let table = tables.table(7).unwrap();
    let blocks = host.live_blocks();
    assert_eq!(table.read(99_999).unwrap(), 0);
    table.write(50_000, 0).unwrap();
    assert_eq!(host.live_blocks(), blocks);
    let mut words = [1u64; 8192];
    assert_eq!(table.read_page(3, &mut words).unwrap(), 8192);
    assert!(words.iter().all(|&w| w == 0));
    assert_eq!(host.live_blocks(), blocks);
    table.write(50_000, 0x1003).unwrap();
    assert_eq!(host.live_blocks(), blocks + 1);
    assert_eq!(table.read(50_000).unwrap(), 0x1003);
    // The last page holds the window's last entries only.
    assert_eq!(
        table.read_page(12, &mut words).unwrap(),
        100_000 - 12 * 8192
    );
    assert!(matches!(
        table.read(100_000),
        Err(Error::IndexOutsideWindow {
            index: 100_000,
            size: 100_000
        })
    ));
    assert!(matches!(
        table.write(u64::MAX, 1),
        Err(Error::IndexOutsideWindow { .. })
    ));
    assert!(matches!(
        tables.create(params),
        Err(Error::LiobnBusy { liobn: 7 })
    ));
    tables.remove(7).unwrap();
    assert!(matches!(
        tables.remove(7),
        Err(Error::UnknownLiobn { liobn: 7 })
    ));
    // The handle keeps the table alive, as an open kernel table file would.
    assert_eq!(table.read(50_000).unwrap(), 0x1003);
    drop(table);
    assert_eq!(host.live_blocks(), blocks);
}

/// One bad-input case: the call, its arguments and return count, and the status it must get.
struct Case {
    name: &'static str,
    call: RtasCall,
    args: Vec<u32>,
    nret: usize,
    status: u32,
}

#[test]
fn bad_input_gets_the_spec_status_and_leaks_nothing() {
    let b = [0, hi(BUID), lo(BUID)];
    let c = |ps: u32, ws: u32| vec![0, hi(BUID), lo(BUID), ps, ws];
    let cases = [
        Case {
            name: "create with 4 arguments",
            call: RtasCall::Create,
            args: c(16, 40)[..4].to_vec(),
            nret: 4,
            status: PARAM,
        },
        Case {
            name: "query with 2 arguments",
            call: RtasCall::Query,
            args: b[..2].to_vec(),
            nret: 5,
            status: PARAM,
        },
        Case {
            name: "remove with 2 arguments",
            call: RtasCall::Remove,
            args: vec![LIOBN, 0],
            nret: 1,
            status: PARAM,
        },
        Case {
            name: "query with 4 returns",
            call: RtasCall::Query,
            args: b.to_vec(),
            nret: 4,
            status: PARAM,
        },
        Case {
            name: "create with 3 returns",
            call: RtasCall::Create,
            args: c(16, 40),
            nret: 3,
            status: PARAM,
        },
        Case {
            name: "reset with 2 returns",
            call: RtasCall::Reset,
            args: b.to_vec(),
            nret: 2,
            status: PARAM,
        },
        Case {
            name: "query of an unknown BUID",
            call: RtasCall::Query,
            args: vec![0, hi(BUID2), lo(BUID2)],
            nret: 5,
            status: PARAM,
        },
        Case {
            name: "create on an unknown BUID",
            call: RtasCall::Create,
            args: vec![0, hi(BUID2), lo(BUID2), 16, 40],
            nret: 4,
            status: PARAM,
        },
        Case {
            name: "reset of an unknown BUID",
            call: RtasCall::Reset,
            args: vec![0, 0, 0],
            nret: 1,
            status: PARAM,
        },
        Case {
            name: "remove of an unknown LIOBN",
            call: RtasCall::Remove,
            args: vec![0x1234],
            nret: 1,
            status: PARAM,
        },
        Case {
            name: "remove of an inactive slot",
            call: RtasCall::Remove,
            args: vec![LIOBN + 1],
            nret: 1,
            status: PARAM,
        },
        Case {
            name: "unsupported 8 KiB pages",
            call: RtasCall::Create,
            args: c(13, 40),
            nret: 4,
            status: PARAM,
        },
        Case {
            name: "unsupported 16 GiB pages",
            call: RtasCall::Create,
            args: c(34, 50),
            nret: 4,
            status: PARAM,
        },
        Case {
            name: "window shift below page shift",
            call: RtasCall::Create,
            args: c(16, 15),
            nret: 4,
            status: PARAM,
        },
        Case {
            name: "window of 2^32 entries, past the largest block",
            call: RtasCall::Create,
            args: c(12, 44),
            nret: 4,
            status: PARAM,
        },
        Case {
            name: "window shift of 64",
            call: RtasCall::Create,
            args: c(24, 64),
            nret: 4,
            status: PARAM,
        },
    ];
    for case in &cases {
        let (mut shim, tables, host) = setup();
        let before = usage(&host, &tables);
        let rets = rtas(&mut shim, case.call, &case.args, case.nret);
        assert_eq!(rets[0], case.status, "{}", case.name);
        assert!(
            rets[1..].iter().all(|&r| r == 0xeeee_eeee),
            "{}: only the status is written",
            case.name
        );
        assert_eq!(usage(&host, &tables), before, "{}", case.name);
        assert_tables_match(&shim, &tables);
        assert!(shim.take_backend_error().is_none(), "{}", case.name);
    }
}

#[test]
fn more_windows_than_slots_is_a_hardware_error() {
    let (mut shim, tables, host) = setup();
    assert_eq!(create(&mut shim, BUID, 16, 40)[0], OK);
    let before = usage(&host, &tables);
    assert_eq!(create(&mut shim, BUID, 16, 40)[0], HW);
    assert_eq!(create(&mut shim, BUID, 12, 20)[0], HW);
    assert_eq!(usage(&host, &tables), before);
    assert_eq!(query(&mut shim, BUID)[1], 0);
    assert_tables_match(&shim, &tables);
}

#[test]
fn a_create_that_loses_a_race_with_a_remove_leaks_nothing() {
    let (mut shim, tables, host) = setup();
    assert_eq!(create(&mut shim, BUID, 16, 40)[0], OK);
    assert_eq!(remove(&mut shim, LIOBN + 1), OK);
    // The backend fails the create that follows the remove, as a racing create would.
    let before = usage(&host, &tables);
    tables.fail_next_creates(1);
    assert_eq!(create(&mut shim, BUID, 16, 40)[0], HW);
    assert!(matches!(
        shim.take_backend_error(),
        Some(Error::LiobnBusy { liobn }) if liobn == u64::from(LIOBN + 1)
    ));
    assert_eq!(usage(&host, &tables), before);
    assert_tables_match(&shim, &tables);
    // The slot is still free: the same call now succeeds.
    assert_eq!(create(&mut shim, BUID, 16, 40)[0], OK);

    // Removing the last non-default window restores the default one; if that create fails,
    // the remove stands, no table is left and the guest sees a hardware error.
    assert_eq!(remove(&mut shim, LIOBN), OK);
    tables.fail_next_creates(1);
    assert_eq!(remove(&mut shim, LIOBN + 1), HW);
    assert!(tables.liobns().is_empty());
    assert_eq!(host.locked_pages(), 0);
    assert_tables_match(&shim, &tables);
    assert_eq!(reset(&mut shim, BUID), OK);
    assert_tables_match(&shim, &tables);

    // A reset whose default window fails leaves nothing either.
    tables.fail_next_creates(1);
    assert_eq!(reset(&mut shim, BUID), HW);
    assert!(tables.liobns().is_empty());
    assert_eq!(host.locked_pages(), 0);
    assert_eq!(reset(&mut shim, BUID), OK);
    drop(shim);
    assert_eq!(host.locked_pages(), 0);
    assert_eq!(host.live_blocks(), 0);
    assert!(tables.liobns().is_empty());
}

#[test]
fn two_shims_sharing_a_vm_race_for_a_liobn() {
    let host = SimHost::new(16);
    let tables = SimTables::new(host.clone());
    let mut a =
        Shim::with_phbs(tables.clone(), &[PhbDesc::simulator_default(BUID, LIOBN)]).unwrap();
    // A second shim on the same VM whose default window takes the LIOBN of a's slot 1.
    let mut b = Shim::with_phbs(
        tables.clone(),
        &[PhbDesc::simulator_default(BUID2, LIOBN + 1)],
    )
    .unwrap();
    let before = usage(&host, &tables);
    assert_eq!(create(&mut a, BUID, 16, 40)[0], HW);
    assert!(matches!(
        a.take_backend_error(),
        Some(Error::LiobnBusy { .. })
    ));
    assert_eq!(usage(&host, &tables), before);
    assert_eq!(query(&mut a, BUID)[1], 1);
    // b gives its window back; a's create now wins.
    assert_eq!(remove(&mut b, LIOBN + 1), OK);
    assert_eq!(create(&mut a, BUID, 16, 40)[0], OK);
    // b's attempt to restore its default window loses in turn.
    assert_eq!(reset(&mut b, BUID2), HW);
    assert_eq!(tables.liobns(), [u64::from(LIOBN), u64::from(LIOBN + 1)]);
    // A PHB whose default window is taken cannot be added, and adds nothing.
    let before = usage(&host, &tables);
    let mut c = Shim::new(tables.clone());
    let err = c
        .add_phb(PhbDesc::simulator_default(0x42, LIOBN))
        .unwrap_err();
    assert!(matches!(err, Error::LiobnBusy { .. }), "{err}");
    assert_eq!(usage(&host, &tables), before);
    assert_eq!(c.phbs().count(), 0);
    // Dropping the shims frees their tables.
    drop(a);
    drop(b);
    drop(c);
    assert!(tables.liobns().is_empty());
    assert_eq!(host.locked_pages(), 0);
    assert_eq!(host.live_blocks(), 0);
}

#[test]
fn memory_failures_are_hardware_errors_that_leak_nothing() {
    // The default window fits the locked-memory limit, a 2^24-entry window does not.
    let (mut shim, tables, host) = setup_on(SimHost::with_limit(16, 8 << 20));
    let before = usage(&host, &tables);
    assert_eq!(create(&mut shim, BUID, 12, 36)[0], HW);
    let err = shim.take_backend_error().unwrap();
    assert!(matches!(err, Error::NoMemory { .. }));
    assert!(err.to_string().contains("locked-memory limit"), "{err}");
    assert_eq!(usage(&host, &tables), before);
    // An allocation failure inside the table's creation.
    host.fail_after(0);
    assert_eq!(create(&mut shim, BUID, 12, 20)[0], HW);
    host.never_fail();
    assert_eq!(usage(&host, &tables), before);
    assert_tables_match(&shim, &tables);
    assert_eq!(create(&mut shim, BUID, 12, 20)[0], OK);
}

#[test]
fn invalid_phb_descriptions_are_refused() {
    let (mut shim, tables, host) = setup();
    let before = usage(&host, &tables);
    let dup = shim
        .add_phb(PhbDesc::simulator_default(BUID, 0x10))
        .unwrap_err();
    assert_eq!(
        dup.to_string(),
        "the PHB with BUID 0x800000020000000 cannot be set up: another PHB has the same BUID"
    );
    let overlap = shim
        .add_phb(PhbDesc::simulator_default(BUID2, LIOBN + 1))
        .unwrap_err();
    assert!(overlap.to_string().contains("overlap"), "{overlap}");
    let bad = PhbDesc {
        num_slots: 3,
        ..PhbDesc::simulator_default(BUID2, 0x10)
    };
    assert!(shim.add_phb(bad).is_err());
    assert_eq!(usage(&host, &tables), before);
}

/// Creates a window of `params` in `tables`, fills `n` random entries and returns them.
fn fill_random(
    tables: &mut SimTables,
    params: WindowParams,
    n: usize,
    seed: u64,
) -> BTreeMap<u64, u64> {
    tables.create(params).unwrap();
    let table = tables.table(params.liobn).unwrap();
    let mut rng = Lcg(seed);
    let mut expect = BTreeMap::new();
    for _ in 0..n {
        let index = rng.below(params.size);
        // Mostly mappings, sometimes a clear of an entry that may already be set.
        let tce = if rng.below(8) == 0 {
            0
        } else {
            (rng.next() << 12) | 3
        };
        table.write(index, tce).unwrap();
        if tce == 0 {
            expect.remove(&index);
        } else {
            expect.insert(index, tce);
        }
    }
    expect
}

#[test]
fn random_sparse_tables_survive_save_and_restore() {
    for (seed, host_shift, page_shift, offset, size, n) in [
        (1, 16, 12, 0, 1u64 << 31, 1000),
        (2, 12, 16, 0x80_0000_0000, 1 << 24, 500),
        (3, 16, 24, 7, 1 << 20, 2000),
        (4, 12, 12, 0, 100_003, 3000),
        (5, 16, 34, 1, 1000, 10),
    ] {
        let src_host = SimHost::new(host_shift);
        let mut src = SimTables::new(src_host.clone());
        let params = WindowParams::new(0x8000_0001, page_shift, offset, size);
        let expect = fill_random(&mut src, params, n, seed);
        let table = src.table(params.liobn).unwrap();
        let present = table.info().unwrap().present_pages;
        let (saved, stats) = saved::save_with_stats(&table).unwrap();
        assert_eq!(
            stats.pages_read, present,
            "seed {seed}: only existing pages are read"
        );
        assert_eq!(table.info().unwrap().present_pages, present);
        let got: BTreeMap<u64, u64> = saved.entries().iter().copied().collect();
        assert_eq!(got, expect, "seed {seed}");
        assert_eq!(saved.params(), &params);

        // Through the file format, onto a host with another page size.
        let bytes = saved.to_bytes();
        assert_eq!(bytes.len() as u64, saved.encoded_len());
        let loaded = SavedTable::from_bytes(&bytes).unwrap();
        assert_eq!(loaded, saved);
        let dst_host = SimHost::new(28 - host_shift);
        let mut dst = SimTables::new(dst_host.clone());
        let restored = saved::restore(&mut dst, &loaded).unwrap();
        assert_eq!(restored.params(), params);
        for (&index, &tce) in &expect {
            assert_eq!(restored.read(index).unwrap(), tce);
        }
        assert_eq!(saved::save(&restored).unwrap(), saved, "seed {seed}");
        // Only the pages of saved entries were allocated.
        let per_page = restored.entries_per_page();
        let pages: std::collections::BTreeSet<u64> = expect.keys().map(|i| i / per_page).collect();
        assert_eq!(restored.info().unwrap().present_pages, pages.len() as u64);
    }
}

#[test]
fn an_empty_huge_window_saves_and_restores_without_a_page() {
    let host = SimHost::new(16);
    let mut src = SimTables::new(host.clone());
    let params = WindowParams::new(0x8000_0001, 12, DMA64 >> 12, 1 << 31);
    src.create(params).unwrap();
    let blocks = host.live_blocks();
    let table = src.table(params.liobn).unwrap();
    let (saved, stats) = saved::save_with_stats(&table).unwrap();
    assert_eq!(stats.pages_read, 0);
    assert_eq!(stats.list_calls, 1);
    assert_eq!(host.live_blocks(), blocks);
    assert!(saved.entries().is_empty());
    assert_eq!(saved.encoded_len(), HEADER_BYTES as u64);
    assert_eq!(saved.dense_bytes(), 16 << 30);

    let bytes = saved.to_bytes();
    let dst_host = SimHost::new(16);
    let mut dst = SimTables::new(dst_host.clone());
    let restored = saved::restore(&mut dst, &SavedTable::from_bytes(&bytes).unwrap()).unwrap();
    assert_eq!(restored.info().unwrap().present_pages, 0);
    assert_eq!(dst_host.live_blocks(), 0);
    assert_eq!(restored.params(), params);
}

#[test]
fn a_dense_small_table_survives_save_and_restore() {
    let host = SimHost::new(12);
    let mut src = SimTables::new(host);
    let params = WindowParams::new(5, 16, 0, 3000);
    src.create(params).unwrap();
    let table = src.table(5).unwrap();
    for i in 0..3000 {
        table.write(i, (i << 16) | 1).unwrap();
    }
    let (saved, stats) = saved::save_with_stats(&table).unwrap();
    // 512 entries per 4 KiB page: 6 pages, the last one partly beyond the window.
    assert_eq!(stats.pages_read, 6);
    assert_eq!(saved.entries().len(), 3000);
    let mut dst = SimTables::new(SimHost::new(16));
    let bytes = saved.to_bytes();
    assert_eq!(bytes.len(), HEADER_BYTES + 3000 * 16);
    let restored =
        saved::restore_as(&mut dst, &SavedTable::from_bytes(&bytes).unwrap(), 9).unwrap();
    assert_eq!(restored.params().liobn, 9);
    for i in 0..3000 {
        assert_eq!(restored.read(i).unwrap(), (i << 16) | 1);
    }
}

#[test]
fn a_failed_restore_leaves_no_table() {
    let (_shim, mut tables, host) = setup();
    let saved = SavedTable::new(
        WindowParams::new(3, 12, 0, 1 << 20),
        vec![(0, 0x1003), (1 << 19, 0x2003)],
    )
    .unwrap();
    let before = usage(&host, &tables);
    // The table is created, then its second page cannot be allocated.
    host.fail_after(3);
    let err = saved::restore(&mut tables, &saved).err().unwrap();
    host.never_fail();
    assert!(matches!(err, Error::PageMemory { liobn: 3 }), "{err}");
    assert_eq!(usage(&host, &tables), before);
    // A LIOBN that is taken.
    let err = saved::restore_as(&mut tables, &saved, u64::from(LIOBN))
        .err()
        .unwrap();
    assert!(matches!(err, Error::LiobnBusy { .. }));
    assert_eq!(usage(&host, &tables), before);
}

#[test]
fn a_shim_migrates_a_window_to_another_shim() {
    let (mut src, _, _) = setup();
    assert_eq!(remove(&mut src, LIOBN), OK);
    assert_eq!(create(&mut src, BUID, 16, 47)[0], OK);
    let table = src.table(LIOBN).unwrap();
    let mut rng = Lcg(99);
    for _ in 0..1000 {
        table
            .write(rng.below(1 << 31), (rng.next() << 16) | 2)
            .unwrap();
    }
    let saved = src.save(LIOBN).unwrap();
    assert!(saved.entries().len() > 990);

    // The destination re-creates the window by replaying the guest's calls, then restores.
    let (mut dst, dst_tables, _) = setup();
    let err = dst.restore(&saved).unwrap_err();
    assert!(matches!(err, Error::WindowMismatch { .. }), "{err}");
    assert_eq!(remove(&mut dst, LIOBN), OK);
    let err = dst.restore(&saved).unwrap_err();
    assert_eq!(err.to_string(), "no active DMA window has LIOBN 0x80000000");
    assert_eq!(create(&mut dst, BUID, 16, 47)[0], OK);
    dst.restore(&saved).unwrap();
    assert_eq!(dst.save(LIOBN).unwrap(), saved);
    assert!(matches!(dst.restore(&saved), Err(Error::NotEmpty { .. })));
    assert_tables_match(&dst, &dst_tables);
}

/// Returns a valid encoding with three entries.
fn sample_bytes() -> Vec<u8> {
    let params = WindowParams::new(0x8000_0001, 16, DMA64 >> 16, 1 << 24);
    SavedTable::new(params, vec![(0, 0x1003), (5, 0x2001), (0xff_ffff, 0x3002)])
        .unwrap()
        .to_bytes()
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn load_err(bytes: &[u8]) -> Error {
    SavedTable::from_bytes(bytes).unwrap_err()
}

#[test]
fn the_format_is_pinned() {
    let bytes = sample_bytes();
    assert_eq!(bytes.len(), 56 + 3 * 16);
    assert_eq!(&bytes[..8], b"TCETABLE");
    assert_eq!(bytes[8..16], [1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(bytes[16..24], [1, 0, 0, 0x80, 0, 0, 0, 0]);
    assert_eq!(bytes[24..28], [16, 0, 0, 0]);
    assert_eq!(bytes[48..56], [3, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(bytes[56 + 16..56 + 24], [5, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(bytes[56 + 24..56 + 32], [1, 0x20, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn every_truncation_is_reported() {
    let bytes = sample_bytes();
    for len in 0..bytes.len() {
        let err = load_err(&bytes[..len]);
        assert!(matches!(err, Error::Truncated { .. }), "{len}: {err}");
    }
    assert_eq!(
        load_err(&bytes[..3]).to_string(),
        "the saved table is truncated: its magic number needs 8 bytes, but only 3 remain"
    );
    assert_eq!(
        load_err(&bytes[..40]).to_string(),
        "the saved table is truncated: its header needs 56 bytes, but only 40 remain"
    );
    assert_eq!(
        load_err(&bytes[..100]).to_string(),
        "the saved table is truncated: its entry list needs 48 bytes, but only 44 remain"
    );
    // A count that no file can hold is refused before anything is allocated.
    let mut huge = bytes.clone();
    put_u64(&mut huge, 48, u64::MAX);
    assert!(matches!(load_err(&huge), Error::Truncated { .. }));
}

#[test]
fn corrupt_saved_tables_are_refused_with_a_reason() {
    let good = sample_bytes();
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        load_err(&b)
    };
    assert!(matches!(edit(&|b| b[0] = b'X'), Error::BadMagic));
    assert!(matches!(load_err(b"ELF"), Error::BadMagic));
    let e = edit(&|b| put_u32(b, 8, 2));
    assert_eq!(
        e.to_string(),
        "the saved table has format version 2, but this tool reads only version 1"
    );
    assert!(matches!(
        edit(&|b| put_u32(b, 12, 4)),
        Error::UnknownFlags { flags: 4 }
    ));
    assert!(matches!(
        edit(&|b| put_u32(b, 24, 11)),
        Error::InvalidWindow { page_shift: 11, .. }
    ));
    assert!(matches!(
        edit(&|b| put_u32(b, 28, 1)),
        Error::InvalidWindow { .. }
    ));
    assert!(matches!(
        edit(&|b| put_u64(b, 40, 0)),
        Error::InvalidWindow { .. }
    ));
    assert!(matches!(
        edit(&|b| put_u64(b, 32, u64::MAX)),
        Error::InvalidWindow { .. }
    ));
    let e = edit(&|b| put_u64(b, 56 + 32, 1 << 24));
    assert_eq!(
        e.to_string(),
        "saved entry 0x1000000 is outside the saved window, which has 0x1000000 entries"
    );
    let e = edit(&|b| put_u64(b, 56 + 16, 0));
    assert_eq!(e.to_string(), "saved entry 0x0 appears twice");
    let e = edit(&|b| {
        put_u64(b, 56, 6);
    });
    assert_eq!(
        e.to_string(),
        "saved entry 0x5 comes after entry 0x6; entries must be in ascending order"
    );
    let e = edit(&|b| put_u64(b, 56 + 24, 0));
    assert!(matches!(e, Error::ZeroEntry { index: 5 }));
    let e = edit(&|b| b.push(0));
    assert_eq!(
        e.to_string(),
        "the saved table has 1 bytes after its last entry"
    );
    let mut empty = good[..HEADER_BYTES].to_vec();
    put_u64(&mut empty, 48, 0);
    assert!(SavedTable::from_bytes(&empty).unwrap().entries().is_empty());
    assert_eq!(&empty[..8], &MAGIC);
}

#[test]
fn saved_files_round_trip_and_report_io_errors() {
    let dir = std::env::temp_dir().join(format!("tce-shim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.tce");
    let saved = SavedTable::from_bytes(&sample_bytes()).unwrap();
    saved.write_file(&path).unwrap();
    assert_eq!(SavedTable::read_file(&path).unwrap(), saved);
    let missing = dir.join("missing.tce");
    let err = SavedTable::read_file(&missing).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot read {}", missing.display())
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("No such file"), "{source}");
    assert_eq!(err.errno(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_borrowed_engine_window_can_be_saved() {
    // A table that lives in a tce-sim machine, filled through the engine's hypercalls.
    let mut machine = tce_model::machine::Machine::new(SimHost::new(16));
    machine.ram(0, 1 << 30).unwrap();
    let params = WindowParams::new(0x42, 12, 0, 1 << 20);
    machine.create(params).unwrap();
    machine.put(0x42, 0x5000, 0x7003).unwrap();
    machine.put(0x42, 0xff_f000, 0x9001).unwrap();
    let table = SimTable::new(machine.window(0x42).unwrap(), 16);
    let saved = saved::save(&table).unwrap();
    assert_eq!(saved.entries(), [(5, 0x7003), (0xfff, 0x9001)]);
}

#[test]
fn messages_do_not_repeat_their_source() {
    let err = Error::OpenDevice {
        path: "/dev/tce_accel".into(),
        source: std::io::Error::from_raw_os_error(2),
    };
    let text = err.to_string();
    assert!(text.starts_with("cannot open /dev/tce_accel; load the tce_accel module"));
    assert!(!text.contains("No such file"));
    assert_eq!(err.errno(), 2);
    let err = Error::InvalidWindow {
        liobn: 1,
        page_shift: 40,
        offset: 0,
        size: 1,
    };
    assert!(err.to_string().contains("page shift 40 (must be 12 to 34)"));
    assert!(std::error::Error::source(&err).is_none());
}
