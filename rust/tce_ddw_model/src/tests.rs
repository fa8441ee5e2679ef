// SPDX-License-Identifier: GPL-2.0
//! Unit tests of the DDW model against a recording mock backend.

use std::collections::BTreeMap;
use std::vec::Vec;

use crate::cells::{self, CellError};
use crate::phb::{DescError, PageShifts, PhbDesc, WindowGeometry, DMA64_BASE, MAX_BLOCK_TCES};
use crate::rtas::{ddw_extensions, RtasCall, RtasStatus};
use crate::{AddPhbError, BackendError, Ddw, WindowBackend, WindowInfo};

const BUID: u64 = 0x0800_0000_2000_0000;
const BUID2: u64 = 0x0800_0000_2000_0001;
const LIOBN: u32 = 0x8000_0000;
const LIOBN2: u32 = 0x8000_0100;
const OK: u32 = 0;
const HW: u32 = RtasStatus::HardwareError.cell();
const PARAM: u32 = RtasStatus::ParameterError.cell();
/// The query mask for 4K, 64K, 16M and 2M pages.
const SIM_MASK: u32 = 0x1 | 0x2 | 0x4 | 0x100;
/// A value that no handler writes, to see which cells were left alone.
const UNTOUCHED: u32 = 0xdead_beef;

/// One call the model made to the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Create {
        liobn: u32,
        page_shift: u32,
        offset: u64,
        size: u64,
    },
    FailedCreate {
        liobn: u32,
    },
    Remove {
        liobn: u32,
    },
}

/// A backend that records calls, can be told to fail, and checks the
/// model's promises: no create over a live table, no remove of a dead one.
#[derive(Default)]
struct Mock {
    events: Vec<Event>,
    live: BTreeMap<u32, (u32, u64, u64)>,
    fail_next: usize,
}

impl WindowBackend for Mock {
    fn create_table(
        &mut self,
        liobn: u32,
        page_shift: u32,
        offset: u64,
        size: u64,
    ) -> Result<(), BackendError> {
        assert!(
            !self.live.contains_key(&liobn),
            "create over live LIOBN {liobn:#x}"
        );
        if self.fail_next > 0 {
            self.fail_next -= 1;
            self.events.push(Event::FailedCreate { liobn });
            return Err(BackendError(-12));
        }
        self.live.insert(liobn, (page_shift, offset, size));
        self.events.push(Event::Create {
            liobn,
            page_shift,
            offset,
            size,
        });
        Ok(())
    }

    fn remove_table(&mut self, liobn: u32) {
        assert!(
            self.live.remove(&liobn).is_some(),
            "remove of dead LIOBN {liobn:#x}"
        );
        self.events.push(Event::Remove { liobn });
    }
}

impl Mock {
    /// Returns and forgets the events seen so far.
    fn take(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.events)
    }
}

/// Checks that the backend's live tables are exactly the model's windows.
fn assert_no_leak<const N: usize>(ddw: &Ddw<N>, be: &Mock) {
    let model: BTreeMap<u32, (u32, u64, u64)> = ddw
        .windows()
        .map(|w| {
            (
                w.liobn,
                (w.page_shift, w.bus_offset >> w.page_shift, w.entries),
            )
        })
        .collect();
    assert_eq!(model, be.live);
}

fn setup() -> (Ddw<4>, Mock) {
    let mut ddw = Ddw::new();
    let mut be = Mock::default();
    ddw.add_phb(&mut be, PhbDesc::simulator_default(BUID, LIOBN))
        .unwrap();
    be.take();
    (ddw, be)
}

fn hi(buid: u64) -> u32 {
    (buid >> 32) as u32
}

fn lo(buid: u64) -> u32 {
    buid as u32
}

fn query(ddw: &Ddw<4>, buid: u64) -> [u32; 5] {
    let mut rets = [UNTOUCHED; 5];
    let status = ddw.query(&[0, hi(buid), lo(buid)], &mut rets);
    assert_eq!(status.cell(), rets[0]);
    rets
}

fn create(ddw: &mut Ddw<4>, be: &mut Mock, buid: u64, ps: u32, ws: u32) -> [u32; 4] {
    let mut rets = [UNTOUCHED; 4];
    let status = ddw.create(be, &[0x100, hi(buid), lo(buid), ps, ws], &mut rets);
    assert_eq!(status.cell(), rets[0]);
    if status != RtasStatus::Success {
        assert_eq!(rets[1..], [UNTOUCHED; 3]);
    }
    assert_no_leak(ddw, be);
    rets
}

fn remove(ddw: &mut Ddw<4>, be: &mut Mock, liobn: u32) -> u32 {
    let mut rets = [UNTOUCHED];
    ddw.remove(be, &[liobn], &mut rets);
    assert_no_leak(ddw, be);
    rets[0]
}

fn reset(ddw: &mut Ddw<4>, be: &mut Mock, buid: u64) -> u32 {
    let mut rets = [UNTOUCHED];
    ddw.reset(be, &[0, hi(buid), lo(buid)], &mut rets);
    assert_no_leak(ddw, be);
    rets[0]
}

fn windows(ddw: &Ddw<4>) -> Vec<WindowInfo> {
    ddw.windows().collect()
}

fn default_window(buid: u64, liobn: u32) -> WindowInfo {
    WindowInfo {
        buid,
        slot: 0,
        liobn,
        page_shift: 12,
        bus_offset: 0,
        entries: 0x40000,
        is_default: true,
    }
}

#[test]
fn status_codes_and_names() {
    assert_eq!(RtasStatus::Success.code(), 0);
    assert_eq!(RtasStatus::HardwareError.code(), -1);
    assert_eq!(RtasStatus::ParameterError.code(), -3);
    assert_eq!(RtasStatus::ParameterError.cell(), 0xffff_fffd);
    for call in RtasCall::ALL {
        assert_eq!(RtasCall::from_name(call.name()), Some(call));
    }
    assert_eq!(RtasCall::from_name("ibm,nope"), None);
    assert_eq!(ddw_extensions(0x2004), [2, 0x2004, 1]);
}

#[test]
fn add_phb_creates_the_default_window() {
    let mut ddw: Ddw<4> = Ddw::new();
    let mut be = Mock::default();
    ddw.add_phb(&mut be, PhbDesc::simulator_default(BUID, LIOBN))
        .unwrap();
    assert_eq!(
        be.take(),
        [Event::Create {
            liobn: LIOBN,
            page_shift: 12,
            offset: 0,
            size: 0x40000
        }]
    );
    assert_eq!(windows(&ddw), [default_window(BUID, LIOBN)]);
    assert_eq!(ddw.phbs().count(), 1);
    assert_no_leak(&ddw, &be);
}

#[test]
fn add_phb_refusals_add_nothing() {
    let (mut ddw, mut be) = setup();
    let sim = PhbDesc::simulator_default;
    let dup = ddw.add_phb(&mut be, sim(BUID, LIOBN2));
    assert_eq!(dup, Err(AddPhbError::DuplicateBuid));
    let clash = ddw.add_phb(&mut be, sim(BUID2, LIOBN + 1));
    assert_eq!(clash, Err(AddPhbError::LiobnCollision));
    let clash = ddw.add_phb(&mut be, sim(BUID2, LIOBN - 1));
    assert_eq!(clash, Err(AddPhbError::LiobnCollision));
    be.fail_next = 1;
    let failed = ddw.add_phb(&mut be, sim(BUID2, LIOBN2));
    assert_eq!(failed, Err(AddPhbError::Backend(BackendError(-12))));
    assert_eq!(ddw.phbs().count(), 1);
    assert_no_leak(&ddw, &be);

    let mut small: Ddw<1> = Ddw::new();
    small.add_phb(&mut be, sim(BUID2, LIOBN2)).unwrap();
    let full = small.add_phb(&mut be, sim(BUID2 + 1, LIOBN2 + 8));
    assert_eq!(full, Err(AddPhbError::Full));
}

#[test]
fn add_phb_rejects_invalid_descriptions() {
    let mut ddw: Ddw<4> = Ddw::new();
    let mut be = Mock::default();
    let sim = PhbDesc::simulator_default(BUID, LIOBN);
    let cases = [
        (
            PhbDesc {
                num_slots: 0,
                ..sim
            },
            DescError::BadSlotCount,
        ),
        (
            PhbDesc {
                num_slots: 3,
                ..sim
            },
            DescError::BadSlotCount,
        ),
        (
            PhbDesc {
                liobn_base: u32::MAX,
                ..sim
            },
            DescError::LiobnOverflow,
        ),
        (
            PhbDesc {
                page_shifts: PageShifts::SIMULATOR.with(13),
                ..sim
            },
            DescError::UnnamedPageSize,
        ),
        (
            PhbDesc {
                default_window: WindowGeometry {
                    entries: MAX_BLOCK_TCES * 2,
                    ..WindowGeometry::SIMULATOR_DEFAULT
                },
                ..sim
            },
            DescError::BadDefaultWindow,
        ),
        (
            PhbDesc {
                default_window: WindowGeometry {
                    entries: 0,
                    ..WindowGeometry::SIMULATOR_DEFAULT
                },
                ..sim
            },
            DescError::BadDefaultWindow,
        ),
        (
            PhbDesc {
                dma64_base: DMA64_BASE + 0x1000,
                ..sim
            },
            DescError::Misaligned,
        ),
    ];
    for (desc, err) in cases {
        assert_eq!(
            ddw.add_phb(&mut be, desc),
            Err(AddPhbError::InvalidDesc(err))
        );
    }
    assert!(be.take().is_empty());
    // One slot at the top of the LIOBN space is fine.
    let top = PhbDesc {
        liobn_base: u32::MAX,
        num_slots: 1,
        ..sim
    };
    assert_eq!(top.validate(), Ok(()));
}

#[test]
fn page_shift_sets() {
    assert_eq!(PageShifts::SIMULATOR.rtas_mask(), SIM_MASK);
    assert_eq!(PageShifts::SIMULATOR.max_shift(), Some(24));
    assert_eq!(PageShifts::EMPTY.max_shift(), None);
    let all = [12, 16, 21, 24, 25, 26, 27, 28, 34]
        .into_iter()
        .fold(PageShifts::EMPTY, PageShifts::with);
    assert_eq!(all.rtas_mask(), 0x1ff);
    assert!(all.rtas_representable());
    assert!(!PageShifts::EMPTY.with(63).rtas_representable());
    assert!(!all.contains(64));
    assert!(!all.contains(u32::MAX));
}

#[test]
fn query_before_and_after_create() {
    let (mut ddw, mut be) = setup();
    assert_eq!(query(&ddw, BUID), [OK, 1, 0x8000_0000, SIM_MASK, 0]);
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40)[0], OK);
    assert_eq!(query(&ddw, BUID), [OK, 0, 0x8000_0000, SIM_MASK, 0]);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN + 1), OK);
    // The default window came back.
    assert_eq!(query(&ddw, BUID), [OK, 1, 0x8000_0000, SIM_MASK, 0]);
}

#[test]
fn query_with_six_rets_splits_the_largest_block() {
    let (ddw, _be) = setup();
    let mut rets = [UNTOUCHED; 6];
    let status = ddw.query(&[0, hi(BUID), lo(BUID)], &mut rets);
    assert_eq!(status, RtasStatus::Success);
    assert_eq!(rets, [OK, 1, 0, 0x8000_0000, SIM_MASK, 0]);
}

#[test]
fn unknown_buid_is_a_parameter_error() {
    let (mut ddw, mut be) = setup();
    assert_eq!(
        query(&ddw, BUID2),
        [PARAM, UNTOUCHED, UNTOUCHED, UNTOUCHED, UNTOUCHED]
    );
    assert_eq!(create(&mut ddw, &mut be, BUID2, 12, 30)[0], PARAM);
    assert_eq!(reset(&mut ddw, &mut be, BUID2), PARAM);
    // Swapped BUID cells name another PHB.
    let mut rets = [UNTOUCHED; 5];
    ddw.query(&[0, lo(BUID), hi(BUID)], &mut rets);
    assert_eq!(rets[0], PARAM);
    assert!(be.take().is_empty());
}

#[test]
fn create_goes_to_the_64bit_base_when_a_window_is_active() {
    let (mut ddw, mut be) = setup();
    let rets = create(&mut ddw, &mut be, BUID, 21, 40);
    assert_eq!(rets, [OK, LIOBN + 1, (DMA64_BASE >> 32) as u32, 0]);
    assert_eq!(
        be.take(),
        [Event::Create {
            liobn: LIOBN + 1,
            page_shift: 21,
            offset: DMA64_BASE >> 21,
            size: 1 << 19
        }]
    );
    let big = windows(&ddw)[1];
    assert_eq!(
        (big.slot, big.bus_offset, big.is_default),
        (1, DMA64_BASE, false)
    );
}

#[test]
fn create_goes_to_the_default_address_when_nothing_is_active() {
    let (mut ddw, mut be) = setup();
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    assert!(windows(&ddw).is_empty());
    assert_eq!(query(&ddw, BUID)[1], 2);
    let rets = create(&mut ddw, &mut be, BUID, 24, 44);
    assert_eq!(rets, [OK, LIOBN, 0, 0]);
    let w = windows(&ddw)[0];
    assert_eq!(
        (w.slot, w.bus_offset, w.entries, w.is_default),
        (0, 0, 1 << 20, false)
    );
}

#[test]
fn unsupported_page_size_is_a_parameter_error() {
    let (mut ddw, mut be) = setup();
    for ps in [0, 11, 13, 25, 28, 34, 63, 64, 65, u32::MAX] {
        assert_eq!(create(&mut ddw, &mut be, BUID, ps, 40)[0], PARAM, "{ps}");
    }
    assert!(be.take().is_empty());
}

#[test]
fn window_smaller_than_a_page_is_a_parameter_error() {
    let (mut ddw, mut be) = setup();
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 15)[0], PARAM);
    assert_eq!(create(&mut ddw, &mut be, BUID, 24, 0)[0], PARAM);
    // A one-page window is fine.
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 16)[0], OK);
}

#[test]
fn no_free_slot_is_a_hardware_error() {
    let (mut ddw, mut be) = setup();
    assert_eq!(create(&mut ddw, &mut be, BUID, 12, 32)[0], OK);
    be.take();
    assert_eq!(create(&mut ddw, &mut be, BUID, 12, 32)[0], HW);
    assert!(be.take().is_empty());
}

#[test]
fn too_big_windows_are_parameter_errors() {
    let (mut ddw, mut be) = setup();
    // These are 2^32 entries, then window shifts of 64 and more.
    for (ps, ws) in [(12, 44), (16, 48), (24, 56), (12, 63), (12, 64), (24, 200)] {
        assert_eq!(
            create(&mut ddw, &mut be, BUID, ps, ws)[0],
            PARAM,
            "{ps} {ws}"
        );
    }
    assert!(be.take().is_empty());
}

#[test]
fn window_past_2_to_the_64_is_a_parameter_error() {
    let mut ddw: Ddw<4> = Ddw::new();
    let mut be = Mock::default();
    let desc = PhbDesc {
        dma64_base: 0xffff_ffff_0000_0000,
        ..PhbDesc::simulator_default(BUID, LIOBN)
    };
    ddw.add_phb(&mut be, desc).unwrap();
    // Ending exactly at 2^64 counts as overflowing, like ending past it.
    assert_eq!(create(&mut ddw, &mut be, BUID, 12, 33)[0], PARAM);
    assert_eq!(create(&mut ddw, &mut be, BUID, 12, 32)[0], PARAM);
    let rets = create(&mut ddw, &mut be, BUID, 12, 31);
    assert_eq!(rets, [OK, LIOBN + 1, 0xffff_ffff, 0]);
}

#[test]
fn a_2_to_the_31_entry_window_is_one_backend_call() {
    let (mut ddw, mut be) = setup();
    let rets = create(&mut ddw, &mut be, BUID, 12, 43);
    assert_eq!(rets[0], OK);
    assert_eq!(
        be.take(),
        [Event::Create {
            liobn: LIOBN + 1,
            page_shift: 12,
            offset: DMA64_BASE >> 12,
            size: 1 << 31
        }]
    );
    assert_eq!(windows(&ddw)[1].entries, MAX_BLOCK_TCES);
}

#[test]
fn backend_failure_leaves_the_phb_unchanged() {
    let (mut ddw, mut be) = setup();
    let before = windows(&ddw);
    be.fail_next = 1;
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40)[0], HW);
    assert_eq!(be.take(), [Event::FailedCreate { liobn: LIOBN + 1 }]);
    assert_eq!(windows(&ddw), before);
    assert_eq!(query(&ddw, BUID)[1], 1);
    // The slot is still free: the same request now succeeds.
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40)[0], OK);
}

#[test]
fn removing_unknown_or_removed_windows_is_a_parameter_error() {
    let (mut ddw, mut be) = setup();
    assert_eq!(remove(&mut ddw, &mut be, 0), PARAM);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN + 2), PARAM);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN - 1), PARAM);
    // Slot 1 exists but is not active.
    assert_eq!(remove(&mut ddw, &mut be, LIOBN + 1), PARAM);
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40)[0], OK);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN + 1), OK);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN + 1), PARAM);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), PARAM);
}

#[test]
fn removing_the_default_window_restores_nothing() {
    let (mut ddw, mut be) = setup();
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    assert_eq!(be.take(), [Event::Remove { liobn: LIOBN }]);
    assert!(windows(&ddw).is_empty());
}

#[test]
fn removing_a_window_that_is_not_the_last_restores_nothing() {
    let (mut ddw, mut be) = setup();
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40)[0], OK);
    be.take();
    assert_eq!(remove(&mut ddw, &mut be, LIOBN + 1), OK);
    assert_eq!(be.take(), [Event::Remove { liobn: LIOBN + 1 }]);
    assert_eq!(windows(&ddw), [default_window(BUID, LIOBN)]);
}

#[test]
fn removing_the_last_non_default_window_restores_the_default() {
    let (mut ddw, mut be) = setup();
    // The guest's usual sequence: drop the default, create a big window at
    // its address, then give the big window back.
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40), [OK, LIOBN, 0, 0]);
    be.take();
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    let restored = Event::Create {
        liobn: LIOBN,
        page_shift: 12,
        offset: 0,
        size: 0x40000,
    };
    assert_eq!(be.take(), [Event::Remove { liobn: LIOBN }, restored]);
    assert_eq!(windows(&ddw), [default_window(BUID, LIOBN)]);

    // With both windows, removing the default first and the 64-bit one last.
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40)[0], OK);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    be.take();
    assert_eq!(remove(&mut ddw, &mut be, LIOBN + 1), OK);
    assert_eq!(be.take(), [Event::Remove { liobn: LIOBN + 1 }, restored]);
    assert_eq!(windows(&ddw), [default_window(BUID, LIOBN)]);
}

#[test]
fn failed_restore_removes_and_reports_a_hardware_error() {
    let (mut ddw, mut be) = setup();
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40)[0], OK);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    be.fail_next = 1;
    assert_eq!(remove(&mut ddw, &mut be, LIOBN + 1), HW);
    assert!(windows(&ddw).is_empty());
    assert_eq!(reset(&mut ddw, &mut be, BUID), OK);
    assert_eq!(windows(&ddw), [default_window(BUID, LIOBN)]);
}

#[test]
fn a_window_over_an_active_one_is_a_hardware_error() {
    let (mut ddw, mut be) = setup();
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40)[0], OK);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    be.take();
    // One window is active, so the next one would go at the 64-bit base,
    // where the active window already is.
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40)[0], HW);
    assert!(be.take().is_empty());
}

#[test]
fn reset_removes_everything_and_restores_the_default() {
    let (mut ddw, mut be) = setup();
    assert_eq!(create(&mut ddw, &mut be, BUID, 16, 40)[0], OK);
    be.take();
    assert_eq!(reset(&mut ddw, &mut be, BUID), OK);
    let events = be.take();
    assert_eq!(events.len(), 3);
    assert!(events.contains(&Event::Remove { liobn: LIOBN }));
    assert!(events.contains(&Event::Remove { liobn: LIOBN + 1 }));
    assert!(matches!(events[2], Event::Create { liobn: LIOBN, .. }));
    assert_eq!(windows(&ddw), [default_window(BUID, LIOBN)]);

    // Reset also works with nothing active.
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    assert_eq!(reset(&mut ddw, &mut be, BUID), OK);
    assert_eq!(windows(&ddw), [default_window(BUID, LIOBN)]);

    // A failing backend leaves no window and reports a hardware error.
    be.fail_next = 1;
    assert_eq!(reset(&mut ddw, &mut be, BUID), HW);
    assert!(windows(&ddw).is_empty());
}

#[test]
fn wrong_counts_are_parameter_errors() {
    let (mut ddw, mut be) = setup();
    let b = [0, hi(BUID), lo(BUID)];
    let create_args = [0, hi(BUID), lo(BUID), 16, 40];
    let cases: [(RtasCall, &[u32], usize); 10] = [
        (RtasCall::Query, &b, 4),
        (RtasCall::Query, &b, 7),
        (RtasCall::Query, &b[..2], 5),
        (RtasCall::Create, &create_args, 5),
        (RtasCall::Create, &create_args, 3),
        (RtasCall::Create, &create_args[..4], 4),
        (RtasCall::Remove, &[LIOBN, 0], 1),
        (RtasCall::Remove, &[LIOBN], 2),
        (RtasCall::Reset, &b, 2),
        (RtasCall::Reset, &create_args, 1),
    ];
    for (call, args, nret) in cases {
        let mut rets = [UNTOUCHED; 8];
        let status = ddw.call(&mut be, call, args, &mut rets[..nret]);
        assert_eq!(status, RtasStatus::ParameterError, "{call:?} {nret}");
        assert_eq!(rets[0], PARAM);
        assert!(rets[1..].iter().all(|&c| c == UNTOUCHED));
        // With no return cell there is nowhere to write.
        let status = ddw.call(&mut be, call, args, &mut []);
        assert_eq!(status, RtasStatus::ParameterError);
    }
    // Even correct arguments fail without a return cell.
    for (call, args) in [
        (RtasCall::Query, &b[..]),
        (RtasCall::Create, &create_args[..]),
        (RtasCall::Remove, &[LIOBN][..]),
        (RtasCall::Reset, &b[..]),
    ] {
        assert_eq!(
            ddw.call(&mut be, call, args, &mut []),
            RtasStatus::ParameterError
        );
    }
    assert!(be.take().is_empty());
    assert_eq!(windows(&ddw), [default_window(BUID, LIOBN)]);
}

#[test]
fn disabled_ddw_refuses_every_call_but_keeps_the_default() {
    let mut ddw: Ddw<4> = Ddw::new();
    let mut be = Mock::default();
    let desc = PhbDesc {
        ddw_enabled: false,
        ..PhbDesc::simulator_default(BUID, LIOBN)
    };
    ddw.add_phb(&mut be, desc).unwrap();
    assert_eq!(query(&ddw, BUID)[0], PARAM);
    assert_eq!(create(&mut ddw, &mut be, BUID, 12, 30)[0], PARAM);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), PARAM);
    assert_eq!(reset(&mut ddw, &mut be, BUID), PARAM);
    assert_eq!(windows(&ddw), [default_window(BUID, LIOBN)]);
}

#[test]
fn phbs_are_independent() {
    let (mut ddw, mut be) = setup();
    ddw.add_phb(&mut be, PhbDesc::simulator_default(BUID2, LIOBN2))
        .unwrap();
    assert_eq!(create(&mut ddw, &mut be, BUID2, 16, 40)[1], LIOBN2 + 1);
    assert_eq!(remove(&mut ddw, &mut be, LIOBN), OK);
    assert_eq!(query(&ddw, BUID)[1], 2);
    assert_eq!(query(&ddw, BUID2)[1], 0);
    assert_eq!(reset(&mut ddw, &mut be, BUID2), OK);
    assert_eq!(windows(&ddw), [default_window(BUID2, LIOBN2)]);
    assert!(ddw.remove_phb(&mut be, BUID2));
    assert!(!ddw.remove_phb(&mut be, BUID2));
    assert!(be.live.is_empty());
    assert_eq!(ddw.phbs().count(), 1);
}

#[test]
fn big_endian_cell_helpers() {
    let mut buf = [0u8; 8];
    cells::write_cell(&mut buf, 1, 0x0102_0304).unwrap();
    assert_eq!(buf, [0, 0, 0, 0, 1, 2, 3, 4]);
    assert_eq!(cells::read_cell(&buf, 1), Some(0x0102_0304));
    assert_eq!(cells::read_cell(&buf, 2), None);
    assert_eq!(cells::read_cell(&buf, usize::MAX), None);
    assert_eq!(cells::write_cell(&mut buf, 2, 0), Err(CellError::TooShort));
    let mut out = [0u32; 2];
    assert_eq!(cells::decode_cells(&buf, &mut out), Ok(2));
    assert_eq!(out, [0, 0x0102_0304]);
    assert_eq!(
        cells::decode_cells(&buf[..7], &mut out),
        Err(CellError::Misaligned)
    );
    assert_eq!(
        cells::decode_cells(&buf, &mut out[..1]),
        Err(CellError::TooShort)
    );
    let mut bytes = [0u8; 8];
    cells::encode_cells(&[0xa0b0_c0d0, 1], &mut bytes).unwrap();
    assert_eq!(bytes, [0xa0, 0xb0, 0xc0, 0xd0, 0, 0, 0, 1]);
    assert_eq!(
        cells::encode_cells(&[1, 2, 3], &mut bytes),
        Err(CellError::TooShort)
    );
}

/// Builds a guest RTAS buffer: token, nargs, nret, args, then nret cells of 0xff.
fn rtas_buffer(token: u32, args: &[u32], nret: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    for cell in [token, args.len() as u32, nret as u32].iter().chain(args) {
        buf.extend_from_slice(&cell.to_be_bytes());
    }
    buf.resize(buf.len() + 4 * nret, 0xff);
    buf
}

#[test]
fn big_endian_calls_round_trip() {
    let (mut ddw, mut be) = setup();
    let mut buf = rtas_buffer(0x2002, &[0x100, hi(BUID), lo(BUID), 16, 40], 4);
    let frame = cells::split_rtas_buffer(&mut buf).unwrap();
    assert_eq!(frame.token, 0x2002);
    assert_eq!(frame.args.len(), 20);
    let status = ddw
        .call_be(&mut be, RtasCall::Create, frame.args, frame.rets)
        .unwrap();
    assert_eq!(status, RtasStatus::Success);
    let rets = &buf[32..];
    assert_eq!(rets[..8], [0, 0, 0, 0, 0x80, 0, 0, 1]);
    assert_eq!(rets[8..], [0x08, 0, 0, 0, 0, 0, 0, 0]);

    // Query with 6 rets, through the buffer helpers.
    let mut buf = rtas_buffer(0x2001, &[0, hi(BUID), lo(BUID)], 6);
    let frame = cells::split_rtas_buffer(&mut buf).unwrap();
    ddw.call_be(&mut be, RtasCall::Query, frame.args, frame.rets)
        .unwrap();
    let mut rets = [0u32; 6];
    cells::decode_cells(&buf[24..], &mut rets).unwrap();
    assert_eq!(rets, [OK, 0, 0, 0x8000_0000, SIM_MASK, 0]);

    // A parameter error writes only the first return cell.
    let mut buf = rtas_buffer(0x2003, &[LIOBN + 7], 1);
    let frame = cells::split_rtas_buffer(&mut buf).unwrap();
    ddw.call_be(&mut be, RtasCall::Remove, frame.args, frame.rets)
        .unwrap();
    assert_eq!(buf[16..], [0xff, 0xff, 0xff, 0xfd]);
    let mut buf = rtas_buffer(0x2002, &[0, hi(BUID), lo(BUID), 99, 99], 3);
    let frame = cells::split_rtas_buffer(&mut buf).unwrap();
    ddw.call_be(&mut be, RtasCall::Create, frame.args, frame.rets)
        .unwrap();
    assert_eq!(buf[32..36], PARAM.to_be_bytes());
    assert!(buf[36..].iter().all(|&b| b == 0xff));
    assert_no_leak(&ddw, &be);
}

#[test]
fn big_endian_buffers_with_bad_shapes() {
    let (mut ddw, mut be) = setup();
    let args = rtas_buffer(0, &[0, hi(BUID), lo(BUID)], 0);
    let mut rets = [0xffu8; 20];
    let bad = ddw.call_be(&mut be, RtasCall::Query, &args[12..14], &mut rets);
    assert_eq!(bad, Err(CellError::Misaligned));
    let bad = ddw.call_be(&mut be, RtasCall::Query, &args[12..], &mut rets[..19]);
    assert_eq!(bad, Err(CellError::Misaligned));
    assert_eq!(rets, [0xff; 20]);
    // Too many cells is a wrong count like any other.
    let many = [0u8; 4 * 9];
    let status = ddw.call_be(&mut be, RtasCall::Query, &many, &mut rets);
    assert_eq!(status, Ok(RtasStatus::ParameterError));
    assert_eq!(rets[..4], PARAM.to_be_bytes());
    assert!(rets[4..].iter().all(|&b| b == 0xff));
    let mut huge = [0xffu8; 4 * 9];
    let status = ddw.call_be(&mut be, RtasCall::Query, &args[12..], &mut huge);
    assert_eq!(status, Ok(RtasStatus::ParameterError));
    assert_eq!(huge[..4], PARAM.to_be_bytes());
    // Headers that promise more cells than the buffer holds.
    let mut short = rtas_buffer(1, &[1, 2], 1);
    short.pop();
    assert_eq!(
        cells::split_rtas_buffer(&mut short),
        Err(CellError::TooShort)
    );
    assert_eq!(
        cells::split_rtas_buffer(&mut [0u8; 11]),
        Err(CellError::TooShort)
    );
    let mut lying = rtas_buffer(1, &[], 0);
    lying[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        cells::split_rtas_buffer(&mut lying),
        Err(CellError::TooShort)
    );
}

/// A small deterministic generator, so the sequence test needs no crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % u64::from(below)) as u32
    }
}

#[test]
fn random_sequences_never_leak_or_double_create() {
    let mut rng = Lcg(0x5eed);
    let (mut ddw, mut be) = setup();
    ddw.add_phb(&mut be, PhbDesc::simulator_default(BUID2, LIOBN2))
        .unwrap();
    let buids = [BUID, BUID2];
    let liobns = [LIOBN, LIOBN + 1, LIOBN2, LIOBN2 + 1, LIOBN + 5];
    let shifts = [12, 16, 21, 24, 25];
    let mut created = 0;
    for _ in 0..5000 {
        let buid = buids[rng.next(2) as usize];
        be.fail_next = usize::from(rng.next(8) == 0);
        // The Mock asserts on every call; the helpers check for leaks.
        match rng.next(4) {
            0 => {
                let ps = shifts[rng.next(5) as usize];
                let ws = ps + rng.next(34);
                if create(&mut ddw, &mut be, buid, ps, ws)[0] == OK {
                    created += 1;
                }
            }
            1 => {
                remove(&mut ddw, &mut be, liobns[rng.next(5) as usize]);
            }
            2 => {
                reset(&mut ddw, &mut be, buid);
            }
            _ => {
                let q = query(&ddw, buid);
                let active = ddw.windows().filter(|w| w.buid == buid).count();
                assert_eq!(q[1] as usize, 2 - active);
            }
        }
        be.fail_next = 0;
        // Windows of one PHB never overlap on the bus.
        let ws = windows(&ddw);
        for a in &ws {
            for b in &ws {
                if a.buid == b.buid && a.slot < b.slot {
                    let a_end = a.bus_offset + (a.entries << a.page_shift);
                    let b_end = b.bus_offset + (b.entries << b.page_shift);
                    assert!(a_end <= b.bus_offset || b_end <= a.bus_offset);
                }
            }
        }
    }
    // The sequence must have exercised successful creates, not only errors.
    assert!(created > 100, "only {created} windows created");
    assert!(ddw.remove_phb(&mut be, BUID));
    assert!(ddw.remove_phb(&mut be, BUID2));
    assert!(be.live.is_empty());
}
