// SPDX-License-Identifier: GPL-2.0

//! Fuzz target: decodes the input into a test plan and runs it on the real engine and the
//! reference model of `tce_model::model`, which must agree on every command.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tce_model::model::{
    Gpa,
    Ioba,
    List,
    MapPage,
    Npages,
    Offset,
    Plan,
    Size,
    Step,
    Tce,
    WindowSpec, //
};

/// The most RAM slots, windows, steps, list heads and write64 values an input may have: more
/// make each run slower without reaching anything new.
const MAX_SLOTS: usize = 6;
const MAX_WINDOWS: usize = 4;
const MAX_STEPS: usize = 256;
const MAX_HEAD: usize = 8;
const MAX_VALUES: usize = 8;

/// Sizes of the RAM slot at address 0.
const BASE_RAM: [u64; 4] = [1 << 20, 1 << 28, 1 << 30, (1 << 35) + 0x3000];

#[derive(Arbitrary, Debug)]
enum FRam {
    /// A slot just past the previous one.
    Adjacent { bytes: u16 },
    /// A slot at one of a few interesting places.
    Known(u8),
    /// Any slot.
    Raw { gpa: u64, bytes: u64 },
}

#[derive(Arbitrary, Debug)]
enum FOffset {
    Zero,
    Small(u16),
    NearLimit(u8),
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum FSize {
    Small(u16),
    Pow(u8),
    ToLimit(u8),
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
struct FWindow {
    liobn: Option<u64>,
    page_shift: u8,
    flags: u8,
    offset: FOffset,
    size: FSize,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FGpa {
    InSlot { slot: u8, index: u64 },
    SlotEnd { slot: u8, back: u8 },
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FTce {
    Zero,
    Mapped { gpa: FGpa, perm: u8 },
    Misaligned { gpa: FGpa, perm: u8, by: u64 },
    Poison(u64),
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FIoba {
    Entry(u64),
    Last,
    Past(u8),
    BeforeFirst,
    Misaligned { k: u64, by: u64 },
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FNpages {
    Count(u64),
    Small(u16),
    Rest(u8),
}

#[derive(Arbitrary, Debug)]
struct FList {
    head: Vec<FTce>,
    run: FTce,
    len: u16,
}

#[derive(Arbitrary, Debug)]
enum FStep {
    Create {
        win: u8,
    },
    Remove {
        win: u8,
    },
    Put {
        win: u8,
        ioba: FIoba,
        tce: FTce,
    },
    Indirect {
        win: u8,
        ioba: FIoba,
        at: FGpa,
        list: Option<FList>,
        npages: FNpages,
    },
    Stuff {
        win: u8,
        ioba: FIoba,
        value: FTce,
        npages: FNpages,
    },
    Get {
        win: u8,
        ioba: FIoba,
    },
    Pages {
        win: u8,
    },
    Fault {
        win: u8,
        page: u64,
        past: bool,
    },
    Write64 {
        at: FGpa,
        skew: u8,
        values: Vec<u64>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    host_64k: bool,
    base: u8,
    ram: Vec<FRam>,
    windows: Vec<FWindow>,
    steps: Vec<FStep>,
}

impl From<FGpa> for Gpa {
    fn from(g: FGpa) -> Self {
        match g {
            FGpa::InSlot { slot, index } => Gpa::InSlot { slot, index },
            FGpa::SlotEnd { slot, back } => Gpa::SlotEnd { slot, back },
            FGpa::Raw(v) => Gpa::Raw(v),
        }
    }
}

impl From<FTce> for Tce {
    fn from(t: FTce) -> Self {
        match t {
            FTce::Zero => Tce::Zero,
            FTce::Mapped { gpa, perm } => Tce::Mapped {
                gpa: gpa.into(),
                perm,
            },
            FTce::Misaligned { gpa, perm, by } => Tce::Misaligned {
                gpa: gpa.into(),
                perm,
                by,
            },
            FTce::Poison(v) => Tce::Poison(v),
            FTce::Raw(v) => Tce::Raw(v),
        }
    }
}

impl From<FIoba> for Ioba {
    fn from(i: FIoba) -> Self {
        match i {
            FIoba::Entry(k) => Ioba::Entry(k),
            FIoba::Last => Ioba::Last,
            FIoba::Past(k) => Ioba::Past(k.into()),
            FIoba::BeforeFirst => Ioba::BeforeFirst,
            FIoba::Misaligned { k, by } => Ioba::Misaligned { k, by },
            FIoba::Raw(v) => Ioba::Raw(v),
        }
    }
}

impl From<FNpages> for Npages {
    fn from(n: FNpages) -> Self {
        match n {
            FNpages::Count(k) => Npages::Count(k),
            FNpages::Small(k) => Npages::Count(k.into()),
            FNpages::Rest(d) => Npages::Rest(d % 4),
        }
    }
}

impl FList {
    fn into_list(self) -> List {
        List {
            head: self
                .head
                .into_iter()
                .take(MAX_HEAD)
                .map(Tce::from)
                .collect(),
            run: self.run.into(),
            len: self.len % 513,
        }
    }
}

impl FStep {
    fn into_step(self) -> Step {
        match self {
            FStep::Create { win } => Step::Create { win },
            FStep::Remove { win } => Step::Remove { win },
            FStep::Put { win, ioba, tce } => Step::Put {
                win,
                ioba: ioba.into(),
                tce: tce.into(),
            },
            FStep::Indirect {
                win,
                ioba,
                at,
                list,
                npages,
            } => Step::Indirect {
                win,
                ioba: ioba.into(),
                at: at.into(),
                list: list.map(FList::into_list),
                npages: npages.into(),
            },
            FStep::Stuff {
                win,
                ioba,
                value,
                npages,
            } => Step::Stuff {
                win,
                ioba: ioba.into(),
                value: value.into(),
                npages: npages.into(),
            },
            FStep::Get { win, ioba } => Step::Get {
                win,
                ioba: ioba.into(),
            },
            FStep::Pages { win } => Step::Pages { win },
            FStep::Fault { win, page, past } => Step::Fault {
                win,
                page: if past {
                    MapPage::Past(page % 4)
                } else {
                    MapPage::Index(page)
                },
            },
            FStep::Write64 { at, skew, values } => Step::Write64 {
                at: at.into(),
                skew,
                values: values.into_iter().take(MAX_VALUES).collect(),
            },
        }
    }
}

impl FWindow {
    fn into_spec(self, index: usize) -> WindowSpec {
        WindowSpec {
            liobn: self.liobn.unwrap_or(index as u64 + 1),
            // 11 to 35: one below and one above the valid shifts.
            page_shift: 11 + u32::from(self.page_shift) % 25,
            flags: if self.flags == u8::MAX { 1 } else { 0 },
            offset: match self.offset {
                FOffset::Zero => Offset::Index(0),
                FOffset::Small(k) => Offset::Index(k.into()),
                FOffset::NearLimit(d) => Offset::NearLimit(d % 4),
                FOffset::Raw(v) => Offset::Index(v),
            },
            size: match self.size {
                FSize::Small(k) => Size::Entries(k.into()),
                FSize::Pow(k) => Size::Entries(1 << (k % 41)),
                FSize::ToLimit(d) => Size::ToLimit(d % 4),
                FSize::Raw(v) => Size::Entries(v),
            },
        }
    }
}

impl Input {
    fn into_plan(self) -> Plan {
        let mut ram: Vec<(u64, u64)> = vec![(0, BASE_RAM[usize::from(self.base) % BASE_RAM.len()])];
        for r in self.ram.into_iter().take(MAX_SLOTS - 1) {
            let slot = match r {
                FRam::Adjacent { bytes } => {
                    let &(gpa, len) = ram.last().unwrap_or(&(0, 0));
                    (gpa.wrapping_add(len), u64::from(bytes))
                }
                FRam::Known(k) => match k % 5 {
                    0 => (1 << 32, 1 << 30),
                    1 => (1 << 36, 1 << 34),
                    2 => (u64::MAX - 0x1fff, 0x1000),
                    3 => (u64::MAX - 0xfff, 0x1000),
                    _ => ((1 << 40) + 0x800, 0x1801),
                },
                FRam::Raw { gpa, bytes } => (gpa, bytes),
            };
            ram.push(slot);
        }
        Plan {
            host_page_shift: if self.host_64k { 16 } else { 12 },
            ram,
            windows: self
                .windows
                .into_iter()
                .take(MAX_WINDOWS)
                .enumerate()
                .map(|(i, w)| w.into_spec(i))
                .collect(),
            steps: self
                .steps
                .into_iter()
                .take(MAX_STEPS)
                .map(FStep::into_step)
                .collect(),
        }
    }
}

fuzz_target!(|input: Input| {
    let plan = input.into_plan();
    if let Err(m) = plan.run() {
        panic!("{m}");
    }
});
