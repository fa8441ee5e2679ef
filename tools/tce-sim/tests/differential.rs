// SPDX-License-Identifier: GPL-2.0

//! Differential test: random command sequences run on the real engine and on the reference
//! model in `tce_model::model` must give the same answer to every command.
//!
//! `TCE_DIFF_CASES` sets the number of random sequences (default [`DEFAULT_CASES`], about
//! 120,000 hypercalls) and `TCE_DIFF_SEED` (hexadecimal) the seed of a run to replay; every run
//! prints its seed, and with `--nocapture` the number of hypercalls and how each kind of
//! command ended. A failure is shrunk and printed as a `tce-sim` trace that reproduces it.

use std::cell::{
    Cell,
    RefCell, //
};
use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{
    BuildHasher,
    Hasher, //
};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{
    Config,
    RngAlgorithm,
    TestCaseError,
    TestError,
    TestRng,
    TestRunner, //
};
use tce_model::model::{
    compare,
    minimize,
    run_both,
    Gpa,
    Ioba,
    List,
    MapPage,
    Npages,
    Offset,
    Op,
    Outcome,
    Pair,
    Plan,
    Size,
    Step,
    Tce,
    WindowSpec,
    H_PARAMETER,
    H_SUCCESS,
    H_TOO_HARD,
    PLAN_UNKNOWN_WINDOW, //
};

/// Random sequences run by default: enough for well over 100,000 hypercalls.
const DEFAULT_CASES: u32 = 800;

/// Hypercalls a default run must execute at least.
const MIN_DEFAULT_HCALLS: usize = 100_000;

fn any_u64_edge() -> BoxedStrategy<u64> {
    prop_oneof![
        3 => any::<u64>(),
        1 => prop::sample::select(vec![
            0,
            1,
            3,
            0xfff,
            0x1000,
            1 << 31,
            1 << 32,
            1 << 63,
            u64::MAX - 0xfff,
            u64::MAX - 3,
            u64::MAX,
        ]),
    ]
    .boxed()
}

/// RAM: a slot at 0 and a few more, some adjacent, odd-sized, at the top of the address space,
/// overlapping or empty.
fn ram() -> impl Strategy<Value = Vec<(u64, u64)>> {
    let base = prop_oneof![
        1 => Just(1u64 << 20),
        3 => Just(1 << 28),
        3 => Just(1 << 30),
        1 => Just((1 << 35) + 0x3000),
    ];
    let extra = prop_oneof![
        3 => Just(vec![(1u64 << 32, 1u64 << 30)]),
        2 => Just(vec![(1u64 << 36, 1u64 << 34)]),
        2 => (0u64..1 << 20, 1u64..0x20000)
            .prop_map(|(page, len)| vec![((1 << 40) + (page << 12), len)]),
        2 => (0u64..1 << 16, 1u64..0x3000).prop_map(|(page, len)| {
            let a = (1 << 44) + (page << 16) + 0x800;
            vec![(a, len), (a + len, 0x3000)]
        }),
        1 => (0u64..4).prop_map(|k| vec![(u64::MAX - 0x1fff - (k << 12), 0x1000)]),
        1 => Just(vec![(u64::MAX - 0xfff, 0x1000)]),
        1 => Just(vec![(0x1000, 0x1000)]),
        1 => Just(vec![(1 << 50, 0)]),
    ];
    (base, prop::collection::vec(extra, 0..4)).prop_map(|(base, extra)| {
        let mut slots = vec![(0, base)];
        slots.extend(extra.into_iter().flatten());
        slots
    })
}

/// IOMMU page shifts that `create` accepts, the common ones most.
fn page_shift() -> BoxedStrategy<u32> {
    prop_oneof![
        12 => Just(12u32),
        8 => Just(16),
        2 => Just(21),
        2 => Just(24),
        2 => Just(34),
        2 => 13u32..=33,
    ]
    .boxed()
}

/// A window that `create` mostly accepts.
fn usual_window() -> BoxedStrategy<(u32, u32, Offset, Size)> {
    let offset = prop_oneof![
        12 => Just(Offset::Index(0)),
        6 => (0u64..1024).prop_map(Offset::Index),
        2 => (20u32..30).prop_map(|k| Offset::Index(1 << k)),
        2 => (0u8..=1).prop_map(Offset::NearLimit),
    ];
    let size = prop_oneof![
        4 => Just(Size::Entries(1)),
        12 => (2u64..=2000).prop_map(Size::Entries),
        6 => prop::sample::select(vec![511u64, 512, 513, 1023, 1024, 8191, 8192, 8193, 16385])
            .prop_map(Size::Entries),
        2 => (1u64 << 20..=1 << 24).prop_map(Size::Entries),
        2 => Just(Size::Entries(1 << 31)),
        1 => (0u8..=1).prop_map(Size::ToLimit),
    ];
    (page_shift(), Just(0u32), offset, size).boxed()
}

/// A window at the edges of the rules, accepted or not.
fn edge_window() -> BoxedStrategy<(u32, u32, Offset, Size)> {
    let shift = prop_oneof![
        2 => page_shift(),
        1 => prop::sample::select(vec![11u32, 12, 34, 35]),
    ];
    let flags = prop_oneof![
        3 => Just(0u32),
        1 => prop::sample::select(vec![1u32, 0x8000_0000]),
    ];
    let offset = prop_oneof![
        2 => Just(Offset::Index(0)),
        2 => (0u8..=3).prop_map(Offset::NearLimit),
        1 => (20u32..64).prop_map(|k| Offset::Index(1 << k)),
        1 => any_u64_edge().prop_map(Offset::Index),
    ];
    // A valid window of 2^40 entries makes every walk over its bookkeeping slow in a debug
    // build: keep it rare.
    let size = prop_oneof![
        2 => Just(Size::Entries(0)),
        2 => Just(Size::Entries(1)),
        4 => (0u8..=3).prop_map(Size::ToLimit),
        2 => Just(Size::Entries(1 << 31)),
        1 => Just(Size::Entries(1 << 40)),
        2 => any_u64_edge().prop_map(Size::Entries),
    ];
    (shift, flags, offset, size).boxed()
}

fn window_spec() -> impl Strategy<Value = (Option<u64>, u32, u32, Offset, Size)> {
    let liobn = prop_oneof![
        8 => Just(None),
        1 => prop::sample::select(vec![0u64, 1, 2, 0x8000_0001, u64::MAX]).prop_map(Some),
    ];
    let shape = prop_oneof![12 => usual_window(), 1 => edge_window()];
    (liobn, shape)
        .prop_map(|(liobn, (shift, flags, offset, size))| (liobn, shift, flags, offset, size))
}

fn windows() -> impl Strategy<Value = Vec<WindowSpec>> {
    prop::collection::vec(window_spec(), 1..=4).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (liobn, page_shift, flags, offset, size))| WindowSpec {
                liobn: liobn.unwrap_or(i as u64 + 1),
                page_shift,
                flags,
                offset,
                size,
            })
            .collect()
    })
}

fn win() -> BoxedStrategy<u8> {
    prop_oneof![
        30 => 0u8..4,
        1 => Just(PLAN_UNKNOWN_WINDOW),
    ]
    .boxed()
}

fn gpa() -> BoxedStrategy<Gpa> {
    let slot = prop_oneof![4 => Just(0u8), 1 => 0u8..8];
    prop_oneof![
        10 => (slot.clone(), prop_oneof![3 => 0u64..64, 1 => any::<u64>()])
            .prop_map(|(slot, index)| Gpa::InSlot { slot, index }),
        2 => (slot, 0u8..3).prop_map(|(slot, back)| Gpa::SlotEnd { slot, back }),
        1 => any_u64_edge().prop_map(Gpa::Raw),
    ]
    .boxed()
}

/// A TCE that a window accepts, mostly.
fn good_tce() -> BoxedStrategy<Tce> {
    let gpa = prop_oneof![3 => 0u64..64, 1 => 0u64..1 << 16]
        .prop_map(|index| Gpa::InSlot { slot: 0, index });
    prop_oneof![
        1 => Just(Tce::Zero),
        8 => (gpa, any::<u8>()).prop_map(|(gpa, perm)| Tce::Mapped { gpa, perm }),
        1 => any_u64_edge().prop_map(Tce::Poison),
    ]
    .boxed()
}

fn tce() -> BoxedStrategy<Tce> {
    prop_oneof![
        2 => Just(Tce::Zero),
        12 => (gpa(), any::<u8>()).prop_map(|(gpa, perm)| Tce::Mapped { gpa, perm }),
        1 => (gpa(), any::<u8>(), any::<u64>())
            .prop_map(|(gpa, perm, by)| Tce::Misaligned { gpa, perm, by }),
        2 => any_u64_edge().prop_map(Tce::Poison),
        1 => any_u64_edge().prop_map(Tce::Raw),
    ]
    .boxed()
}

fn ioba() -> BoxedStrategy<Ioba> {
    prop_oneof![
        10 => prop_oneof![3 => 0u64..64, 1 => any::<u64>()].prop_map(Ioba::Entry),
        2 => Just(Ioba::Last),
        1 => (0u64..3).prop_map(Ioba::Past),
        1 => Just(Ioba::BeforeFirst),
        1 => (0u64..64, any::<u64>()).prop_map(|(k, by)| Ioba::Misaligned { k, by }),
        1 => any_u64_edge().prop_map(Ioba::Raw),
    ]
    .boxed()
}

fn npages() -> BoxedStrategy<Npages> {
    prop_oneof![
        1 => Just(Npages::Count(0)),
        3 => Just(Npages::Count(1)),
        4 => (2u64..=16).prop_map(Npages::Count),
        2 => Just(Npages::Count(512)),
        1 => Just(Npages::Count(513)),
        1 => (17u64..512).prop_map(Npages::Count),
        1 => prop::sample::select(vec![1u64 << 31, 1 << 40, u64::MAX]).prop_map(Npages::Count),
        1 => any::<u64>().prop_map(Npages::Count),
        2 => (0u8..=2).prop_map(Npages::Rest),
    ]
    .boxed()
}

fn list() -> BoxedStrategy<List> {
    let len = prop_oneof![
        3 => 0u16..=8,
        2 => Just(512u16),
        2 => 1u16..=512,
    ];
    let head = prop_oneof![9 => good_tce(), 1 => tce()];
    let run = prop_oneof![9 => good_tce(), 1 => tce()];
    (prop::collection::vec(head, 0..4), run, len)
        .prop_map(|(head, run, len)| List { head, run, len })
        .boxed()
}

fn list_at() -> BoxedStrategy<Gpa> {
    let slot = prop_oneof![4 => Just(0u8), 1 => 0u8..8];
    prop_oneof![
        10 => (slot.clone(), 0u64..64).prop_map(|(slot, index)| Gpa::InSlot { slot, index }),
        2 => (slot, 0u8..3).prop_map(|(slot, back)| Gpa::SlotEnd { slot, back }),
        1 => any_u64_edge().prop_map(Gpa::Raw),
    ]
    .boxed()
}

fn step() -> BoxedStrategy<Step> {
    let indirect = (
        win(),
        ioba(),
        list_at(),
        prop::option::weighted(0.8, list()),
        npages(),
        any::<bool>(),
    )
        .prop_map(|(win, ioba, at, list, npages, exact)| {
            // Often the call covers exactly the list just written.
            let npages = match &list {
                Some(l) if exact => Npages::Count(u64::from(l.len)),
                _ => npages,
            };
            Step::Indirect {
                win,
                ioba,
                at,
                list,
                npages,
            }
        })
        .boxed();
    let stuff_value = prop_oneof![
        3 => Just(Tce::Zero),
        3 => any_u64_edge().prop_map(Tce::Poison),
        1 => (gpa(), any::<u8>()).prop_map(|(gpa, perm)| Tce::Mapped { gpa, perm }),
        1 => any_u64_edge().prop_map(Tce::Raw),
    ]
    .boxed();
    let map_page = prop_oneof![
        3 => (0u64..8).prop_map(MapPage::Index),
        1 => any::<u64>().prop_map(MapPage::Index),
        1 => (0u64..2).prop_map(MapPage::Past),
    ]
    .boxed();
    let skew = prop_oneof![4 => Just(0u8), 1 => 1u8..8].boxed();
    prop_oneof![
        30 => (win(), ioba(), prop_oneof![3 => good_tce(), 1 => tce()])
            .prop_map(|(win, ioba, tce)| Step::Put { win, ioba, tce })
            .boxed(),
        15 => indirect,
        8 => (win(), ioba(), stuff_value, npages())
            .prop_map(|(win, ioba, value, npages)| Step::Stuff { win, ioba, value, npages })
            .boxed(),
        25 => (win(), ioba()).prop_map(|(win, ioba)| Step::Get { win, ioba }).boxed(),
        3 => win().prop_map(|win| Step::Pages { win }).boxed(),
        2 => (win(), map_page).prop_map(|(win, page)| Step::Fault { win, page }).boxed(),
        6 => win().prop_map(|win| Step::Create { win }).boxed(),
        1 => win().prop_map(|win| Step::Remove { win }).boxed(),
        2 => (gpa(), skew, prop::collection::vec(any_u64_edge(), 1..4))
            .prop_map(|(at, skew, values)| Step::Write64 { at, skew, values })
            .boxed(),
    ]
    .boxed()
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        prop_oneof![Just(12u32), Just(16)],
        ram(),
        windows(),
        prop::collection::vec(step(), 100..=260),
    )
        .prop_map(|(host_page_shift, ram, windows, steps)| Plan {
            host_page_shift,
            ram,
            windows,
            steps,
        })
}

/// A random seed, different for every run.
fn random_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[test]
fn engine_matches_model() {
    let env_cases = std::env::var("TCE_DIFF_CASES").ok();
    let cases = env_cases
        .as_deref()
        .map(|s| s.parse::<u32>().expect("TCE_DIFF_CASES must be a number"))
        .unwrap_or(DEFAULT_CASES);
    let seed = std::env::var("TCE_DIFF_SEED")
        .ok()
        .map(|s| {
            let s = s.trim_start_matches("0x");
            u64::from_str_radix(s, 16).expect("TCE_DIFF_SEED must be a hexadecimal number")
        })
        .unwrap_or_else(random_seed);
    eprintln!("differential: {cases} cases, TCE_DIFF_SEED={seed:#x}");

    // XorShift rather than proptest's default ChaCha: in a debug build ChaCha costs more
    // than everything else together.
    let mut seed_bytes = [0u8; 16];
    for (i, chunk) in seed_bytes.chunks_mut(8).enumerate() {
        let word =
            seed.rotate_left(i as u32 * 16) ^ 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::XorShift, &seed_bytes),
    );

    let start = Instant::now();
    let hcalls = Cell::new(0usize);
    let runs = Cell::new(0usize);
    let stats = RefCell::new(BTreeMap::<(&'static str, String), usize>::new());
    let result = runner.run(&plan(), |plan| {
        runs.set(runs.get() + 1);
        let seen = |op: &Op, outcome: &Outcome| {
            let class = match outcome {
                Outcome::Get(Ok(_)) => "H_SUCCESS".to_string(),
                Outcome::Fault(Ok(_)) => "ok".to_string(),
                Outcome::Pages(Some(_)) => "n".to_string(),
                o => o.to_string(),
            };
            *stats.borrow_mut().entry((op.name(), class)).or_default() += 1;
        };
        match plan.run_with(seen) {
            Ok(n) => {
                hcalls.set(hcalls.get() + n);
                Ok(())
            }
            Err(m) => Err(TestCaseError::fail(m.to_string())),
        }
    });
    let elapsed = start.elapsed();
    let mut line = String::new();
    let mut last = "";
    for ((name, class), n) in stats.borrow().iter() {
        if *name != last {
            if !line.is_empty() {
                eprintln!("{line}");
            }
            line = format!("differential: {name:>8}:");
            last = name;
        }
        line.push_str(&format!(" {class} {n},"));
    }
    eprintln!("{line}");
    eprintln!(
        "differential: {} hypercalls in {} sequences, {:.1} s",
        hcalls.get(),
        runs.get(),
        elapsed.as_secs_f64()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(_, plan)) => {
            let ops = minimize(&plan.ops(), plan.host_page_shift);
            let report = match run_both(&ops, plan.host_page_shift) {
                Err(m) => m.to_string(),
                Ok(_) => "(the minimized sequence passes: the failure depends on more)".into(),
            };
            panic!(
                "TCE_DIFF_SEED={seed:#x}: the engine and the model disagree \
                 (shrunk to {} steps, then to {} ops).\n{report}",
                plan.steps.len(),
                ops.len()
            );
        }
        Err(e) => panic!("TCE_DIFF_SEED={seed:#x}: {e}"),
    }
    if env_cases.is_none() {
        assert!(
            hcalls.get() >= MIN_DEFAULT_HCALLS,
            "the default run executed {} hypercalls, fewer than {MIN_DEFAULT_HCALLS}",
            hcalls.get()
        );
    }
}

/// The ops of a small, known sequence on one window of 4 KiB pages at bus address 0.
fn known_ops() -> Vec<Op> {
    vec![
        Op::Ram {
            gpa: 0,
            bytes: 1 << 28,
        },
        Op::Create {
            liobn: 1,
            page_shift: 12,
            flags: 0,
            offset: 0,
            size: 0x40000,
        },
        Op::Put {
            liobn: 1,
            ioba: 0,
            tce: 0x1003,
        },
        Op::Get { liobn: 1, ioba: 0 },
        Op::Put {
            liobn: 1,
            ioba: 1,
            tce: 0x1003,
        },
        Op::Put {
            liobn: 2,
            ioba: 0,
            tce: 0x1003,
        },
        Op::Pages { liobn: 1 },
    ]
}

#[test]
fn known_sequence_matches() {
    assert_eq!(run_both(&known_ops(), 16), Ok(4));
    let mut pair = Pair::new(16);
    let mut model = tce_model::model::Model::new(16);
    let expected = [
        Outcome::Status(Ok(())),
        Outcome::Status(Ok(())),
        Outcome::Hcall(H_SUCCESS),
        Outcome::Get(Ok(0x1003)),
        Outcome::Hcall(H_PARAMETER),
        Outcome::Hcall(H_TOO_HARD),
        Outcome::Pages(Some(1)),
    ];
    for (op, want) in known_ops().iter().zip(expected) {
        pair.step(op).unwrap();
        assert_eq!(model.apply(op), want, "{op}");
    }
}

#[test]
fn comparison_detects_a_wrong_answer() {
    let ops = known_ops();
    // The engine answers H_SUCCESS 0x1003 to the `get`; claim the model said otherwise.
    let engine = Outcome::Get(Ok(0x1003));
    let wrong = Outcome::Get(Ok(0x1001));
    let m = compare(16, &ops[..4], &engine, &wrong).unwrap_err();
    assert!(m.to_string().contains("get 0x1 0x0"), "{m}");
    assert!(
        m.to_string().contains("H_SUCCESS 0x0000000000001001"),
        "{m}"
    );
    assert!(compare(16, &ops[..4], &engine, &engine).is_ok());
    for wrong in [
        Outcome::Get(Err(H_TOO_HARD)),
        Outcome::Hcall(H_SUCCESS),
        Outcome::Status(Ok(())),
    ] {
        assert!(compare(16, &ops[..4], &engine, &wrong).is_err());
    }
}

#[test]
fn tampered_model_is_detected() {
    // A model whose table differs from the engine's by one entry must fail at the next `get`
    // of that entry.
    let mut pair = Pair::new(12);
    let ops = known_ops();
    for op in &ops[..3] {
        pair.step(op).unwrap();
    }
    pair.model_mut().poke(1, 5, 0x5001);
    let m = pair
        .step(&Op::Get {
            liobn: 1,
            ioba: 5 << 12,
        })
        .unwrap_err();
    assert_eq!(m.engine, "H_SUCCESS 0x0000000000000000");
    assert_eq!(m.model, "H_SUCCESS 0x0000000000005001");

    // And the final-state comparison notices a difference no op looked at.
    let mut pair = Pair::new(12);
    for op in &ops[..3] {
        pair.step(op).unwrap();
    }
    pair.model_mut().poke(1, 0x3ffff, 0x7000);
    let m = pair.check_state().unwrap_err();
    assert!(m.what.contains("final state"), "{m}");
}

#[test]
fn a_failing_proptest_case_is_reported() {
    // The property machinery itself must turn a mismatch into a failure: run random plans
    // through a TestRunner with a model that is wrong in every case.
    let config = Config {
        cases: 4,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let r = runner.run(&plan(), |plan| {
        let mut pair = Pair::new(plan.host_page_shift);
        for op in plan.ops() {
            pair.step(&op)
                .map_err(|m| TestCaseError::fail(m.to_string()))?;
        }
        let liobn = 0x5555_0000;
        pair.step(&Op::Create {
            liobn,
            page_shift: 12,
            flags: 0,
            offset: 0,
            size: 1,
        })
        .map_err(|m| TestCaseError::fail(m.to_string()))?;
        // Claim the new window has an entry that nothing wrote.
        pair.model_mut().poke(liobn, 0, 0xdead_0001);
        pair.check_state()
            .map_err(|m| TestCaseError::fail(m.to_string()))
    });
    match r {
        Err(TestError::Fail(reason, _)) => {
            assert!(
                reason.message().contains("final state of table 0x55550000"),
                "{reason}"
            )
        }
        r => panic!("the tampered model was not caught: {r:?}"),
    }
}

#[test]
fn plan_resolution_targets_windows() {
    // A plan's steps resolve against the windows they name.
    let plan = Plan {
        host_page_shift: 12,
        ram: vec![(0, 1 << 28)],
        windows: vec![WindowSpec {
            liobn: 7,
            page_shift: 16,
            flags: 0,
            offset: Offset::Index(0x10),
            size: Size::Entries(100),
        }],
        steps: vec![
            Step::Put {
                win: 0,
                ioba: Ioba::Last,
                tce: Tce::Mapped {
                    gpa: Gpa::InSlot { slot: 0, index: 3 },
                    perm: 2,
                },
            },
            Step::Get {
                win: PLAN_UNKNOWN_WINDOW,
                ioba: Ioba::Entry(0),
            },
        ],
    };
    let ops = plan.ops();
    assert_eq!(
        ops[2],
        Op::Put {
            liobn: 7,
            ioba: (0x10 + 99) << 16,
            tce: 0x30003,
        }
    );
    assert!(
        matches!(ops[3], Op::Get { liobn, .. } if liobn == tce_model::model::PLAN_UNKNOWN_LIOBN)
    );
    assert_eq!(plan.run(), Ok(2));
}
