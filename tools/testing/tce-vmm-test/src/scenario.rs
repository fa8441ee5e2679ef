// SPDX-License-Identifier: GPL-2.0
//! The call sequences of `check` and `bench`: the same calls for each path, only the LIOBN differs.
//!
//! A sequence is built once, naming the path's window by a placeholder LIOBN, and turned into
//! each path's job by [`Sequence::for_path`]. Calls on which the engine and Linux's C path
//! deliberately differ (listed in `tce_engine::hcall`) are marked, and left out of the kvm
//! path's job: the only one that such a sequence can reach is an `H_PUT_TCE_INDIRECT` list
//! holding a poison entry (no permission bits) that points outside guest RAM, which the engine
//! stores like any poison value and Linux refuses with `H_PARAMETER` in its second pass.

use std::collections::BTreeMap;

use tce_engine::tce::INDIRECT_MAX;
use tce_engine::window::WindowParams;

use crate::error::{
    Error,
    Result, //
};
use tce_vmm::guest::{
    list_page,
    GuestCall,
    Job,
    H_PROGRESS,
    LIST_PAGES,
    RAM_SIZE, //
};
use tce_vmm::hcall::{
    Hcall,
    STUFF_NONZERO_MAX, //
};
use tce_vmm::memory::GuestAddress;
use tce_vmm::paths::PathKind;

/// Stands for the path's LIOBN in a sequence; no real window has it.
const PATH_LIOBN: u64 = 0x5a5a_0000_0000_0001;

/// 4 KiB pages of guest RAM, which TCEs point into.
const RAM_PAGES: u64 = RAM_SIZE >> 12;

/// A small deterministic generator (xorshift64*), so that a seed names a sequence.
pub struct Rng(u64);

impl Rng {
    /// A generator; any seed works.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One call of a sequence.
#[derive(Clone, Copy, Debug)]
struct Step {
    call: Hcall,
    /// The engine and Linux's C path answer this call differently, by design.
    c_path_differs: bool,
}

/// Calls for the guest, with the TCE lists they use.
#[derive(Clone, Debug, Default)]
pub struct Sequence {
    steps: Vec<Step>,
    lists: BTreeMap<GuestAddress, Vec<u64>>,
    /// The call after which the job reports progress ([`H_PROGRESS`]), if any.
    progress_after: Option<usize>,
}

/// A path's job and the TCE hypercalls in it (the job may also hold private calls).
pub struct PathJob {
    /// What the guest runs.
    pub job: Job,
    /// The TCE hypercalls of the job, by index in `job.calls` (private calls are `None`).
    pub calls: Vec<Option<Hcall>>,
}

impl PathJob {
    /// The TCE hypercalls and their results, without the private calls.
    pub fn tce_results<'a, T>(&'a self, results: &'a [T]) -> impl Iterator<Item = (Hcall, &'a T)> {
        self.calls
            .iter()
            .zip(results)
            .filter_map(|(c, r)| c.map(|c| (c, r)))
    }
}

/// Gives the placeholder LIOBN its real value.
fn with_liobn(call: Hcall, liobn: u64) -> Hcall {
    let real = |l: u64| if l == PATH_LIOBN { liobn } else { l };
    match call {
        Hcall::Get { liobn: l, ioba } => Hcall::Get {
            liobn: real(l),
            ioba,
        },
        Hcall::Put {
            liobn: l,
            ioba,
            tce,
        } => Hcall::Put {
            liobn: real(l),
            ioba,
            tce,
        },
        Hcall::Stuff {
            liobn: l,
            ioba,
            value,
            npages,
        } => Hcall::Stuff {
            liobn: real(l),
            ioba,
            value,
            npages,
        },
        Hcall::Indirect {
            liobn: l,
            ioba,
            list,
            npages,
        } => Hcall::Indirect {
            liobn: real(l),
            ioba,
            list,
            npages,
        },
    }
}

impl Sequence {
    /// The number of calls, including those the kvm path leaves out.
    pub fn calls(&self) -> usize {
        self.steps.len()
    }

    fn push(&mut self, call: Hcall) {
        self.steps.push(Step {
            call,
            c_path_differs: false,
        });
    }

    fn push_differing(&mut self, call: Hcall) {
        self.steps.push(Step {
            call,
            c_path_differs: true,
        });
    }

    /// Stores a TCE list in the next free list page and returns its address.
    fn list(&mut self, entries: Vec<u64>) -> Result<GuestAddress> {
        let i = self.lists.len();
        if i >= LIST_PAGES {
            return Err(Error::TooManyLists {
                lists: i + 1,
                max: LIST_PAGES,
            });
        }
        let at = list_page(i);
        self.lists.insert(at, entries);
        Ok(at)
    }

    /// The job of one path, whose window is `liobn`.
    pub fn for_path(&self, kind: PathKind, liobn: u64) -> PathJob {
        let mut job = Job {
            calls: Vec::with_capacity(self.steps.len() + 1),
            lists: self.lists.clone(),
        };
        let mut calls = Vec::with_capacity(self.steps.len() + 1);
        for (i, s) in self.steps.iter().enumerate() {
            if !(kind == PathKind::Kvm && s.c_path_differs) {
                let call = with_liobn(s.call, liobn);
                job.push(call);
                calls.push(Some(call));
            }
            if self.progress_after == Some(i) {
                job.calls.push(GuestCall {
                    nr: H_PROGRESS,
                    args: [0; 4],
                });
                calls.push(None);
            }
        }
        PathJob { job, calls }
    }

    /// How many calls the kvm path leaves out.
    pub fn c_path_differences(&self) -> usize {
        self.steps.iter().filter(|s| s.c_path_differs).count()
    }
}

/// Bus addresses of a window, by window-relative entry.
#[derive(Clone, Copy)]
struct Bus {
    shift: u32,
    offset: u64,
    size: u64,
}

impl Bus {
    fn new(p: &WindowParams) -> Bus {
        Bus {
            shift: p.page_shift,
            offset: p.offset,
            size: p.size,
        }
    }

    /// The bus address of window-relative entry `rel`.
    fn ioba(&self, rel: u64) -> u64 {
        (self.offset + rel) << self.shift
    }

    /// The bus address just past the window.
    fn end(&self) -> u64 {
        self.ioba(self.size)
    }
}

/// A TCE that maps a random page of guest RAM with random permissions.
fn valid_tce(rng: &mut Rng) -> u64 {
    (rng.below(RAM_PAGES) << 12) | (1 + rng.below(3))
}

/// A poison value: no permission bits, pointing anywhere.
fn poison(rng: &mut Rng) -> u64 {
    (rng.next() & 0x000f_ffff_ffff_f000) | 0x1000
}

/// A poison value pointing into guest RAM (the C path translates these in its second pass).
fn poison_in_ram(rng: &mut Rng) -> u64 {
    rng.below(RAM_PAGES) << 12
}

/// A window-relative entry: mostly among the first 2048 and the last 64, where later calls
/// read back what earlier ones wrote, sometimes anywhere.
fn entry(rng: &mut Rng, size: u64, room: u64) -> u64 {
    let limit = size - room;
    match rng.below(10) {
        0..=5 => rng.below(2048.min(limit + 1)),
        6 => limit - rng.below(64.min(limit + 1)),
        _ => rng.below(limit + 1),
    }
}

/// The correctness sequence: `n` mixed calls in the window `params`, from `seed`.
pub fn correctness(params: &WindowParams, n: usize, seed: u64) -> Result<Sequence> {
    let bus = Bus::new(params);
    let size = params.size;
    let mut rng = Rng::new(seed);
    let mut seq = Sequence::default();
    let l = PATH_LIOBN;
    for step in 0..n {
        // Once in the middle: a non-zero H_STUFF_TCE over more than STUFF_NONZERO_MAX entries
        // (rule 2), and a clear of the whole window.
        if step == n / 3 && size > STUFF_NONZERO_MAX + 3 {
            seq.push(Hcall::Stuff {
                liobn: l,
                ioba: bus.ioba(1),
                value: poison(&mut rng),
                npages: STUFF_NONZERO_MAX + 2,
            });
        }
        if step == 2 * n / 3 {
            seq.push(Hcall::Stuff {
                liobn: l,
                ioba: bus.ioba(0),
                value: 0,
                npages: size,
            });
        }
        match rng.below(100) {
            0..=24 => {
                let rel = entry(&mut rng, size, 1);
                let tce = match rng.below(20) {
                    0..=13 => valid_tce(&mut rng),
                    14 | 15 => 0,
                    16 | 17 => poison(&mut rng),
                    // Outside guest RAM, and not aligned to the IOMMU page: rule 1.
                    18 => (RAM_SIZE + (rng.below(1 << 20) << 12)) | 3,
                    _ => (rng.below(RAM_PAGES) << 12) | 0x800 | 1,
                };
                seq.push(Hcall::Put {
                    liobn: l,
                    ioba: bus.ioba(rel),
                    tce,
                });
            }
            25..=49 => {
                let rel = entry(&mut rng, size, 1);
                seq.push(Hcall::Get {
                    liobn: l,
                    ioba: bus.ioba(rel),
                });
            }
            50..=69 => {
                let npages = rng.pick(&[0u64, 1, 2, 7, 64, 300, 512, 512]).min(size);
                let rel = entry(&mut rng, size, npages);
                let mut list: Vec<u64> = (0..npages)
                    .map(|_| match rng.below(10) {
                        0..=7 => valid_tce(&mut rng),
                        8 => 0,
                        _ => poison_in_ram(&mut rng),
                    })
                    .collect();
                let mut differs = false;
                if npages > 0 {
                    let at = rng.below(npages) as usize;
                    match rng.below(100) {
                        // An entry outside guest RAM: nothing is written (rule 1).
                        0..=4 => list[at] = (RAM_SIZE << 1) | 2,
                        // Not aligned to the IOMMU page: nothing is written (rule 1).
                        5..=7 => list[at] = 0x1801,
                        // Poison outside guest RAM: where the C path differs.
                        8..=10 => {
                            list[at] = RAM_SIZE << 4;
                            differs = true;
                        }
                        _ => {}
                    }
                }
                let call = Hcall::Indirect {
                    liobn: l,
                    ioba: bus.ioba(rel),
                    list: seq.list(list)?.0,
                    npages,
                };
                if differs {
                    seq.push_differing(call);
                } else {
                    seq.push(call);
                }
            }
            70..=84 => {
                let npages = rng.pick(&[0u64, 1, 1, 8, 100, 600, 8192]).min(size);
                let rel = entry(&mut rng, size, npages);
                let value = match rng.below(20) {
                    0..=10 => 0,
                    11..=18 => poison(&mut rng),
                    // Permission bits: H_PARAMETER.
                    _ => rng.pick(&[1u64, 2, 3]) | (rng.below(RAM_PAGES) << 12),
                };
                seq.push(Hcall::Stuff {
                    liobn: l,
                    ioba: bus.ioba(rel),
                    value,
                    npages,
                });
            }
            _ => {
                // A bus address the window does not have: misaligned, below or past it.
                let ioba = match rng.below(3) {
                    0 => bus.ioba(rng.below(size)) | (1 + rng.below(0xfff)),
                    1 => bus.ioba(0).wrapping_sub((1 + rng.below(16)) << 12),
                    _ => bus.end() + (rng.below(16) << 12),
                };
                let list = list_page(0).0;
                seq.push(match rng.below(4) {
                    0 => Hcall::Put {
                        liobn: l,
                        ioba,
                        tce: valid_tce(&mut rng),
                    },
                    1 => Hcall::Get { liobn: l, ioba },
                    2 => Hcall::Stuff {
                        liobn: l,
                        ioba,
                        value: 0,
                        npages: 1,
                    },
                    _ => Hcall::Indirect {
                        liobn: l,
                        ioba,
                        list,
                        npages: 1,
                    },
                });
            }
        }
    }
    Ok(seq)
}

/// LIOBNs that name no window of the VMM.
pub fn bad_liobns() -> [u64; 5] {
    [
        0,
        0xffff_ffff,
        u64::MAX,
        u64::from(tce_vmm::vmm::LIOBN_BASE) + 2,
        tce_vmm::vmm::USER_LIOBN + 1,
    ]
}

/// The hostile sequence: bad LIOBNs, bus addresses and lists, overflowing counts, and a few
/// edges that are valid, in the window `params`. Every call has one right answer.
pub fn hostile(params: &WindowParams) -> Result<Sequence> {
    let bus = Bus::new(params);
    let size = params.size;
    let l = PATH_LIOBN;
    let mut seq = Sequence::default();
    let base = bus.ioba(0);
    let end = bus.end();
    let last = bus.ioba(size - 1);
    let tce = 0x10_0000 | 3;
    let good: Vec<u64> = (0..INDIRECT_MAX as u64).map(|i| (i << 12) | 1).collect();
    let good_list = seq.list(good)?.0;

    let all = |seq: &mut Sequence, liobn: u64, ioba: u64| {
        seq.push(Hcall::Put { liobn, ioba, tce });
        seq.push(Hcall::Get { liobn, ioba });
        seq.push(Hcall::Stuff {
            liobn,
            ioba,
            value: 0,
            npages: 1,
        });
        seq.push(Hcall::Indirect {
            liobn,
            ioba,
            list: good_list,
            npages: 1,
        });
    };
    for liobn in bad_liobns() {
        all(&mut seq, liobn, base);
    }
    // Bus addresses: misaligned, below the window, at and past its end.
    for ioba in [
        base + 0x800,
        base + 1,
        base + 0xfff,
        base.wrapping_sub(0x1000),
        0,
        end,
        end + 0x1000,
        !0xfff,
    ] {
        all(&mut seq, l, ioba);
    }
    // Ranges that run past the end, or wrap.
    for (ioba, npages) in [
        (last, 2),
        (base, size + 1),
        (bus.ioba(size - 511), 512),
        (base, u64::MAX),
        (base, 1 << 63),
        (bus.ioba(16), 0u64.wrapping_sub(16)),
        (bus.ioba(1), u64::MAX - params.offset),
    ] {
        seq.push(Hcall::Stuff {
            liobn: l,
            ioba,
            value: 0,
            npages,
        });
        if npages <= INDIRECT_MAX as u64 {
            seq.push(Hcall::Indirect {
                liobn: l,
                ioba,
                list: good_list,
                npages,
            });
        }
    }
    // Valid edges: an empty range at the end, the last entry.
    seq.push(Hcall::Stuff {
        liobn: l,
        ioba: end,
        value: 0,
        npages: 0,
    });
    seq.push(Hcall::Indirect {
        liobn: l,
        ioba: end,
        list: good_list,
        npages: 0,
    });
    seq.push(Hcall::Put {
        liobn: l,
        ioba: last,
        tce,
    });
    seq.push(Hcall::Get {
        liobn: l,
        ioba: last,
    });
    // TCEs outside guest RAM or misaligned (rule 1), then valid ones at the edges of RAM.
    for tce in [
        RAM_SIZE | 3,
        (1 << 62) | 1,
        u64::MAX,
        0x1803,
        (RAM_SIZE - 0x1000) | 2,
        0xdead_0000_0000,
    ] {
        seq.push(Hcall::Put {
            liobn: l,
            ioba: base,
            tce,
        });
        seq.push(Hcall::Get {
            liobn: l,
            ioba: base,
        });
    }
    // Lists outside guest RAM, misaligned, or too long.
    for list in [RAM_SIZE, 1 << 40, !0xfff] {
        for npages in [0, 1, 512] {
            seq.push(Hcall::Indirect {
                liobn: l,
                ioba: base,
                list,
                npages,
            });
        }
    }
    for list in [good_list + 8, good_list + 0x800] {
        seq.push(Hcall::Indirect {
            liobn: l,
            ioba: base,
            list,
            npages: 1,
        });
    }
    for npages in [513, u64::MAX, 1 << 63, (1 << 63) | 0x200] {
        seq.push(Hcall::Indirect {
            liobn: l,
            ioba: base,
            list: good_list,
            npages,
        });
    }
    // Lists with one bad entry: outside RAM, misaligned (nothing written), and poison outside
    // RAM (where the C path differs).
    for (bad, differs) in [
        ((RAM_SIZE << 2) | 1, false),
        (0x2802, false),
        (1 << 50, true),
    ] {
        let mut list: Vec<u64> = (0..16u64).map(|i| ((0x200 + i) << 12) | 3).collect();
        list[5] = bad;
        let call = Hcall::Indirect {
            liobn: l,
            ioba: bus.ioba(32),
            list: seq.list(list)?.0,
            npages: 16,
        };
        if differs {
            seq.push_differing(call);
        } else {
            seq.push(call);
        }
        seq.push(Hcall::Get {
            liobn: l,
            ioba: bus.ioba(32),
        });
    }
    // Stuff values with permission bits.
    for (value, npages) in [(0x1001, 4), (2, 1), (3, 0)] {
        seq.push(Hcall::Stuff {
            liobn: l,
            ioba: base,
            value,
            npages,
        });
    }
    // Poison over the whole window and over just more than STUFF_NONZERO_MAX entries (rule 2),
    // read back at both ends, then a clear of the whole window.
    for (value, first, npages) in [
        (0xbad0_0000u64, 0u64, size),
        (0xbee0_0000, 7, (STUFF_NONZERO_MAX + 1).min(size - 7)),
        (0, 0, size),
    ] {
        seq.push(Hcall::Stuff {
            liobn: l,
            ioba: bus.ioba(first),
            value,
            npages,
        });
        for rel in [0, first, first + npages - 1, size - 1] {
            seq.push(Hcall::Get {
                liobn: l,
                ioba: bus.ioba(rel),
            });
        }
    }
    // Leave something in the table for the final comparison.
    seq.push(Hcall::Indirect {
        liobn: l,
        ioba: bus.ioba(100),
        list: good_list,
        npages: INDIRECT_MAX as u64,
    });
    Ok(seq)
}

/// The hammer job of one vCPU: `calls` calls of `H_PUT_TCE`, `H_STUFF_TCE` and `H_GET_TCE`
/// with valid arguments, reporting progress after the first 64.
pub fn hammer(params: &WindowParams, vcpu: u64, calls: usize) -> Sequence {
    let bus = Bus::new(params);
    let mut rng = Rng::new(0x4841_4d4d ^ vcpu);
    let mut seq = Sequence {
        progress_after: Some(63.min(calls.saturating_sub(1))),
        ..Sequence::default()
    };
    let l = PATH_LIOBN;
    let span = 8192.min(params.size - 16);
    for i in 0..calls {
        let rel = (vcpu * 4096 + rng.below(span)) % (params.size - 16);
        let ioba = bus.ioba(rel);
        seq.push(match i % 3 {
            0 => Hcall::Put {
                liobn: l,
                ioba,
                tce: valid_tce(&mut rng),
            },
            1 => Hcall::Stuff {
                liobn: l,
                ioba,
                value: if rng.chance(50) { 0 } else { poison(&mut rng) },
                npages: 1 + rng.below(16),
            },
            _ => Hcall::Get { liobn: l, ioba },
        });
    }
    seq
}

/// A benchmark job: `calls` calls of one kind on the window, with valid arguments.
pub fn bench(params: &WindowParams, kind: BenchCall, calls: usize) -> Result<Sequence> {
    let bus = Bus::new(params);
    let mut seq = Sequence::default();
    let l = PATH_LIOBN;
    let list = match kind {
        BenchCall::Indirect(n) => {
            let entries = (0..n).map(|i| ((i + 1) << 12) | 3).collect();
            Some(seq.list(entries)?.0)
        }
        _ => None,
    };
    for i in 0..calls as u64 {
        let call = match kind {
            BenchCall::Put => Hcall::Put {
                liobn: l,
                ioba: bus.ioba(i % params.size),
                tce: ((i % RAM_PAGES) << 12) | 3,
            },
            BenchCall::Get => Hcall::Get {
                liobn: l,
                ioba: bus.ioba(i % params.size),
            },
            BenchCall::Stuff(n) => Hcall::Stuff {
                liobn: l,
                ioba: bus.ioba((i * n) % (params.size - n)),
                value: 0,
                npages: n,
            },
            BenchCall::Indirect(n) => Hcall::Indirect {
                liobn: l,
                ioba: bus.ioba((i * n) % (params.size - n)),
                list: list.unwrap_or(0),
                npages: n,
            },
        };
        seq.push(call);
    }
    Ok(seq)
}

/// What one benchmark row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchCall {
    /// `H_PUT_TCE` of a valid TCE.
    Put,
    /// `H_GET_TCE`.
    Get,
    /// `H_STUFF_TCE` clearing this many entries.
    Stuff(u64),
    /// `H_PUT_TCE_INDIRECT` of this many valid entries.
    Indirect(u64),
}

impl BenchCall {
    /// The row's label.
    pub fn label(&self) -> String {
        match self {
            BenchCall::Put => "H_PUT_TCE".into(),
            BenchCall::Get => "H_GET_TCE".into(),
            BenchCall::Stuff(n) => format!("H_STUFF_TCE({n})"),
            BenchCall::Indirect(n) => format!("H_PUT_TCE_INDIRECT({n})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> WindowParams {
        WindowParams::new(0x8000_0001, 12, 1 << 47, 1 << 20)
    }

    #[test]
    fn sequences_are_the_same_on_every_path_but_for_the_liobn() {
        let seq = correctness(&window(), 2000, 7).unwrap();
        let a = seq.for_path(PathKind::Accel, 0x8000_0001);
        let u = seq.for_path(PathKind::User, 0x7200_0000);
        let k = seq.for_path(PathKind::Kvm, 0x7100_0000);
        assert_eq!(a.job.calls.len(), u.job.calls.len());
        assert_eq!(
            k.job.calls.len(),
            a.job.calls.len() - seq.c_path_differences()
        );
        assert!(seq.c_path_differences() > 0);
        for (x, y) in a.job.calls.iter().zip(&u.job.calls) {
            assert_eq!(x.nr, y.nr);
            assert_eq!(x.args[1..], y.args[1..]);
            assert!(x.args[0] != y.args[0] || bad_liobns().contains(&x.args[0]));
        }
        assert!(a.job.lists.len() <= LIST_PAGES);
        // The same seed gives the same sequence.
        let again = correctness(&window(), 2000, 7).unwrap();
        let b = again.for_path(PathKind::Accel, 0x8000_0001);
        assert_eq!(a.job.calls, b.job.calls);
    }

    #[test]
    fn the_hammer_reports_progress_once() {
        let seq = hammer(&window(), 2, 500);
        let j = seq.for_path(PathKind::Accel, 1);
        assert_eq!(j.job.calls.len(), 501);
        assert_eq!(j.job.calls.iter().filter(|c| c.nr == H_PROGRESS).count(), 1);
        assert_eq!(j.tce_results(&[0u8; 501]).count(), 500);
    }
}
