// SPDX-License-Identifier: GPL-2.0
//! The reference: the same calls replayed on tce-sim's simulated machine, and the comparison.
//!
//! The simulated machine runs the engine on a simulated host, with the guest's RAM as one slot
//! and the TCE lists the job stored. The VMM's two rules ([`tce_vmm::hcall`]) are applied to its
//! answers exactly as the VMM applies them to the exits it answers, so every path must give
//! the guest what the reference gives.

use std::collections::{
    BTreeMap,
    BTreeSet, //
};
use std::fmt;

use tce_engine::tce::HcallError;
use tce_engine::window::WindowParams;
use tce_model::host::SimHost;
use tce_model::machine::Machine;

use tce_vmm::guest::{
    CallResult,
    Job,
    RAM_SIZE, //
};
use tce_vmm::hcall::{
    code_name,
    is_big_stuff,
    stuff_in_chunks,
    Answer,
    Hcall,
    Reply, //
};

/// One simulated VM with one window.
pub struct Reference {
    machine: Machine,
    liobn: u64,
}

impl Reference {
    /// A machine with guest RAM of [`RAM_SIZE`] and the window `params`.
    pub fn new(params: WindowParams, host_page_shift: u32) -> Reference {
        let mut machine = Machine::new(SimHost::new(host_page_shift));
        machine
            .ram(0, RAM_SIZE)
            .expect("one RAM slot on an empty machine");
        machine
            .create(params)
            .expect("the window the kernel accepted is valid");
        Reference {
            machine,
            liobn: params.liobn,
        }
    }

    /// Stores a job's TCE lists in the machine's RAM, as the VMM stored them in the guest's.
    pub fn store_lists(&mut self, job: &Job) {
        for (at, list) in &job.lists {
            self.machine
                .write64(at.0, list)
                .expect("list pages are inside guest RAM");
        }
    }

    /// What the guest must get for `call`.
    pub fn expect(&mut self, call: &Hcall) -> Reply {
        let m = &mut self.machine;
        let r = match *call {
            Hcall::Get { liobn, ioba } => m.get(liobn, ioba).map(Some),
            Hcall::Put { liobn, ioba, tce } => m.put(liobn, ioba, tce).map(|()| None),
            Hcall::Stuff {
                liobn,
                ioba,
                value,
                npages,
            } if is_big_stuff(value, npages) => match m.window(liobn) {
                None => Err(HcallError::TooHard),
                Some(w) => stuff_in_chunks(
                    w.page_shift(),
                    ioba,
                    npages,
                    |i, n| w.check_range(i, n).is_some(),
                    |i, n| m.stuff(liobn, i, value, n),
                ),
            }
            .map(|()| None),
            Hcall::Stuff {
                liobn,
                ioba,
                value,
                npages,
            } => m.stuff(liobn, ioba, value, npages).map(|()| None),
            Hcall::Indirect {
                liobn,
                ioba,
                list,
                npages,
            } => m.indirect(liobn, ioba, list, npages).map(|()| None),
        };
        Answer::from_result(r).reply()
    }

    /// The window's non-zero entries, as (window-relative index, value), in order.
    pub fn entries(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if let Some(w) = self.machine.window(self.liobn) {
            w.for_each_entry(|rel, v| out.push((rel, v)));
        }
        out
    }
}

/// A difference between what a path gave and what the reference expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// A call's result.
    Call {
        /// The path's name.
        path: &'static str,
        /// The call's index in its job.
        index: usize,
        /// The call.
        call: Hcall,
        /// What the guest got.
        got: Reply,
        /// What the reference expects.
        expected: Reply,
    },
    /// A table entry after the job.
    Entry {
        /// The path's name.
        path: &'static str,
        /// The window-relative index.
        index: u64,
        /// The value in the path's table (0 if absent).
        got: u64,
        /// The value in the reference's (0 if absent).
        expected: u64,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Call {
                path,
                index,
                call,
                got,
                expected,
            } => write!(
                f,
                "{path} path, call {index}: {call}: got {got}, expected {expected}"
            ),
            Mismatch::Entry {
                path,
                index,
                got,
                expected,
            } => write!(
                f,
                "{path} path, table entry {index:#x}: got {got:#x}, expected {expected:#x}"
            ),
        }
    }
}

/// What the guest got, in the shape of a [`Reply`]: r4 matters only where the reference
/// expects an entry (a successful `H_GET_TCE`).
fn got_reply(r: &CallResult, expected: &Reply) -> Reply {
    Reply {
        r3: r.r3,
        r4: expected.r4.map(|_| r.r4),
    }
}

/// Replays `calls` on `reference` and compares each result the guest got.
pub fn compare_calls(
    path: &'static str,
    calls: &[Hcall],
    got: &[CallResult],
    reference: &mut Reference,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for (index, (call, r)) in calls.iter().zip(got).enumerate() {
        let expected = reference.expect(call);
        let got = got_reply(r, &expected);
        if got != expected {
            out.push(Mismatch::Call {
                path,
                index,
                call: *call,
                got,
                expected,
            });
        }
    }
    out
}

/// Compares a table's non-zero entries with the reference's.
pub fn compare_entries(
    path: &'static str,
    got: &[(u64, u64)],
    expected: &[(u64, u64)],
) -> Vec<Mismatch> {
    let got: BTreeMap<u64, u64> = got.iter().copied().collect();
    let expected: BTreeMap<u64, u64> = expected.iter().copied().collect();
    let indices: BTreeSet<u64> = got.keys().chain(expected.keys()).copied().collect();
    indices
        .into_iter()
        .filter_map(|index| {
            let g = got.get(&index).copied().unwrap_or(0);
            let e = expected.get(&index).copied().unwrap_or(0);
            (g != e).then_some(Mismatch::Entry {
                path,
                index,
                got: g,
                expected: e,
            })
        })
        .collect()
}

/// A one-line count of results by return code, for the logs: "H_SUCCESS 120, H_PARAMETER 7".
pub fn tally(results: &[CallResult]) -> String {
    let mut by_code: BTreeMap<i64, usize> = BTreeMap::new();
    for r in results {
        *by_code.entry(r.r3).or_default() += 1;
    }
    by_code
        .iter()
        .rev()
        .map(|(c, n)| format!("{} {n}", code_name(*c)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod answers {
    //! The VMM's answers to exits (`tce_vmm::paths`) against the reference.
    use crate::reference::{
        compare_entries,
        Reference, //
    };
    use crate::scenario;
    use tce_engine::window::WindowParams;
    use tce_sys::process;
    use tce_vmm::guest::RAM_SIZE;
    use tce_vmm::memory::GuestRam;
    use tce_vmm::paths::{
        PathKind,
        Paths, //
    };
    use tce_vmm::table::MappedTable;
    use tce_vmm::table::Owner;

    /// The VMM's answers on an engine table and on a mapped table (a memfd standing in for a
    /// kernel table whose hypercalls all exit) are the reference's, call by call and entry by
    /// entry, for the correctness and the hostile sequences.
    #[test]
    fn exits_are_answered_as_the_reference_answers() {
        let ram = GuestRam::new(RAM_SIZE as usize).unwrap();
        let shift = process::page_size().trailing_zeros();
        let paths = Paths::new(shift);
        let window = |liobn| WindowParams::new(liobn, 12, 1 << 47, 1 << 20);
        let (kernel, user) = (0x8000_0001, 0x7200_0000);
        let fd = process::memfd("tce-vmm-test", window(kernel).size * 8).unwrap();
        let table = MappedTable::new(Owner::Kvm(fd), window(kernel)).unwrap();
        paths.add_kernel(PathKind::Accel, table).unwrap();
        paths.add_user(window(user)).unwrap();

        let p = window(0);
        let seqs = [
            scenario::correctness(&p, 3000, 5).unwrap(),
            scenario::hostile(&p).unwrap(),
        ];
        for liobn in [kernel, user] {
            let mut reference = Reference::new(window(liobn), shift);
            for seq in &seqs {
                // Every call, also those the kvm path leaves out: this is the engine on both.
                let pj = seq.for_path(PathKind::Accel, liobn);
                for (at, list) in &pj.job.lists {
                    ram.write_be64(*at, list).unwrap();
                }
                reference.store_lists(&pj.job);
                for (i, call) in pj.calls.iter().flatten().enumerate() {
                    let got = paths.answer(&ram, call).reply();
                    let want = reference.expect(call);
                    assert_eq!(got, want, "LIOBN {liobn:#x}, call {i}: {call}");
                }
                let got = paths.get(liobn).unwrap().entries().unwrap();
                assert!(!got.is_empty());
                assert_eq!(compare_entries("test", &got, &reference.entries()), []);
            }
        }
        let exits = paths.exits();
        assert!(exits.of(PathKind::Accel) > 0 && exits.of(PathKind::User) > 0);
        assert!(exits.unknown_liobn > 0 && exits.too_hard > 0);
    }
}
