// SPDX-License-Identifier: GPL-2.0

//! A reference model of the guest-visible TCE semantics, and a harness that runs command
//! sequences on it and on the real engine side by side and reports the first disagreement.
//!
//! The model is written from the behaviour spec and the documented rules of
//! `tce_engine::hcall`, not from the engine's code: guest RAM is a list of slots and a map of
//! big-endian words, each table is a map from window-relative entry index to value, and the
//! host pages of a table are a set of page numbers. It has no hardware tables, no locked-memory
//! limit and no allocation failures, so it describes a machine without `attach`.
//!
//! The module has three layers:
//!
//! - [`Model`] answers each [`Op`] (one `tce-sim` command) with an [`Outcome`].
//! - [`Pair`] and [`run_both`] apply each op to a [`Machine`] and to the model and compare
//!   every outcome, and the complete table state at the end; a difference is a [`Mismatch`]
//!   that prints a `tce-sim` trace reproducing it.
//! - [`Plan`] describes a test case symbolically ("the last entry of window 2", "an address
//!   in RAM slot 1 aligned to the window's IOMMU page"), so that random generators, the
//!   property test and the fuzz target, mostly produce meaningful hypercalls rather than ones
//!   that fail their first check. [`Plan::ops`] resolves it into concrete ops.

use std::collections::{
    BTreeMap,
    BTreeSet,
    HashMap, //
};
use std::fmt;

use tce_engine::{
    env::TablePage,
    tce::return_code,
    window::{
        FaultError,
        WindowParams, //
    },
};

use crate::host::SimHost;
use crate::machine::Machine;

/// `H_SUCCESS`, as the model knows it.
pub const H_SUCCESS: i64 = 0;
/// `H_HARDWARE`, as the model knows it.
pub const H_HARDWARE: i64 = -1;
/// `H_PARAMETER`, as the model knows it.
pub const H_PARAMETER: i64 = -4;
/// `H_TOO_HARD`, as the model knows it.
pub const H_TOO_HARD: i64 = 9999;

/// The most entries one `H_PUT_TCE_INDIRECT` may carry.
const INDIRECT_MAX: u64 = 512;
/// The alignment of an `H_PUT_TCE_INDIRECT` list.
const LIST_ALIGN: u64 = 4096;
/// The READ and WRITE permission bits of a TCE.
const PERM_BITS: u64 = 3;
/// The longest `H_STUFF_TCE` with a non-zero value done in the kernel; longer ones are the VMM's.
const STUFF_NONZERO_MAX: u64 = 1 << 16;

/// The largest window that `create` must always manage to create: 2^31 entries, the largest
/// dynamic DMA window. A larger one may fail with `ENOMEM`, because the host, like the kernel,
/// limits single allocations; the model has no memory limits and accepts that answer.
pub const GUARANTEED_WINDOW_ENTRIES: u64 = 1 << 31;

/// One command, as `tce-sim` would read it from a trace (plus `fault`, the VMM's mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `ram <gpa> <bytes>`.
    Ram {
        /// First guest physical address.
        gpa: u64,
        /// Length in bytes.
        bytes: u64,
    },
    /// `write64 <gpa> <v> ...`. The values are stored big-endian.
    Write64 {
        /// First guest physical address.
        gpa: u64,
        /// The values, at least one.
        values: Vec<u64>,
    },
    /// `create <liobn> <page_shift> <offset> <size>`, with `flags` (the trace language always
    /// passes 0).
    Create {
        /// The LIOBN.
        liobn: u64,
        /// log2 of the IOMMU page size.
        page_shift: u32,
        /// The creation flags.
        flags: u32,
        /// The first entry, in IOMMU pages.
        offset: u64,
        /// The number of entries.
        size: u64,
    },
    /// `remove <liobn>`.
    Remove {
        /// The LIOBN.
        liobn: u64,
    },
    /// `put <liobn> <ioba> <tce>`: `H_PUT_TCE`.
    Put {
        /// The LIOBN.
        liobn: u64,
        /// The bus address.
        ioba: u64,
        /// The TCE.
        tce: u64,
    },
    /// `indirect <liobn> <ioba> <tce_list> <npages>`: `H_PUT_TCE_INDIRECT`.
    Indirect {
        /// The LIOBN.
        liobn: u64,
        /// The bus address of the first entry.
        ioba: u64,
        /// The guest physical address of the list.
        list: u64,
        /// The number of entries.
        npages: u64,
    },
    /// `stuff <liobn> <ioba> <value> <npages>`: `H_STUFF_TCE`.
    Stuff {
        /// The LIOBN.
        liobn: u64,
        /// The bus address of the first entry.
        ioba: u64,
        /// The value to write.
        value: u64,
        /// The number of entries.
        npages: u64,
    },
    /// `get <liobn> <ioba>`: `H_GET_TCE`.
    Get {
        /// The LIOBN.
        liobn: u64,
        /// The bus address.
        ioba: u64,
    },
    /// `pages <liobn>`.
    Pages {
        /// The LIOBN.
        liobn: u64,
    },
    /// A fault of the VMM's mapping of the table on host page `pgoff`; the outcome lists the
    /// page's non-zero words. There is no `tce-sim` command for it.
    Fault {
        /// The LIOBN.
        liobn: u64,
        /// The page number within the mapping.
        pgoff: u64,
    },
}

impl Op {
    /// The command's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ram { .. } => "ram",
            Self::Write64 { .. } => "write64",
            Self::Create { .. } => "create",
            Self::Remove { .. } => "remove",
            Self::Put { .. } => "put",
            Self::Indirect { .. } => "indirect",
            Self::Stuff { .. } => "stuff",
            Self::Get { .. } => "get",
            Self::Pages { .. } => "pages",
            Self::Fault { .. } => "fault",
        }
    }

    /// Whether the op is one of the four TCE hypercalls.
    pub fn is_hcall(&self) -> bool {
        matches!(
            self,
            Self::Put { .. } | Self::Indirect { .. } | Self::Stuff { .. } | Self::Get { .. }
        )
    }
}

impl fmt::Display for Op {
    /// Formats the op as a `tce-sim` trace line; ops the trace language cannot express become
    /// comments.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ram { gpa, bytes } => write!(f, "ram {gpa:#x} {bytes:#x}"),
            Self::Write64 { gpa, values } => {
                write!(f, "write64 {gpa:#x}")?;
                for v in values {
                    write!(f, " {v:#x}")?;
                }
                Ok(())
            }
            Self::Create {
                liobn,
                page_shift,
                flags,
                offset,
                size,
            } => {
                if *flags != 0 {
                    write!(f, "# flags {flags:#x}, not expressible: ")?;
                }
                write!(f, "create {liobn:#x} {page_shift} {offset:#x} {size:#x}")
            }
            Self::Remove { liobn } => write!(f, "remove {liobn:#x}"),
            Self::Put { liobn, ioba, tce } => write!(f, "put {liobn:#x} {ioba:#x} {tce:#x}"),
            Self::Indirect {
                liobn,
                ioba,
                list,
                npages,
            } => write!(f, "indirect {liobn:#x} {ioba:#x} {list:#x} {npages:#x}"),
            Self::Stuff {
                liobn,
                ioba,
                value,
                npages,
            } => write!(f, "stuff {liobn:#x} {ioba:#x} {value:#x} {npages:#x}"),
            Self::Get { liobn, ioba } => write!(f, "get {liobn:#x} {ioba:#x}"),
            Self::Pages { liobn } => write!(f, "pages {liobn:#x}"),
            Self::Fault { liobn, pgoff } => {
                write!(
                    f,
                    "# VMM mapping fault, no command: fault {liobn:#x} {pgoff:#x}"
                )
            }
        }
    }
}

/// What one op returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A command that prints `ok` or `error <errno>`.
    Status(Result<(), &'static str>),
    /// A hypercall return code.
    Hcall(i64),
    /// `H_GET_TCE`: the entry, or the return code.
    Get(Result<u64, i64>),
    /// `pages`: the page count, or `None` for an unknown LIOBN.
    Pages(Option<u64>),
    /// A mapping fault: the page's non-zero words as (word index, value), or why it failed
    /// (`ENOENT`, `SIGBUS`, `OOM`).
    Fault(Result<Vec<(u64, u64)>, &'static str>),
}

/// The PAPR name of a hypercall return code.
pub fn hcall_name(code: i64) -> String {
    match code {
        H_SUCCESS => "H_SUCCESS".into(),
        H_HARDWARE => "H_HARDWARE".into(),
        H_PARAMETER => "H_PARAMETER".into(),
        H_TOO_HARD => "H_TOO_HARD".into(),
        c => format!("<return code {c}>"),
    }
}

impl fmt::Display for Outcome {
    /// Formats the outcome as `tce-sim` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(Ok(())) => f.write_str("ok"),
            Self::Status(Err(e)) => write!(f, "error {e}"),
            Self::Hcall(c) => f.write_str(&hcall_name(*c)),
            Self::Get(Ok(v)) => write!(f, "H_SUCCESS 0x{v:016x}"),
            Self::Get(Err(c)) => f.write_str(&hcall_name(*c)),
            Self::Pages(Some(n)) => write!(f, "{n}"),
            Self::Pages(None) => f.write_str("error ENOENT"),
            Self::Fault(Ok(words)) => {
                write!(f, "page with {} non-zero words", words.len())?;
                for (i, v) in words.iter().take(8) {
                    write!(f, " [{i}]={v:#x}")?;
                }
                if words.len() > 8 {
                    f.write_str(" ...")?;
                }
                Ok(())
            }
            Self::Fault(Err(e)) => write!(f, "fault error {e}"),
        }
    }
}

/// One table of the model.
#[derive(Debug, Clone)]
struct ModelWindow {
    page_shift: u32,
    offset: u64,
    size: u64,
    /// Non-zero entries by window-relative index.
    entries: BTreeMap<u64, u64>,
    /// Host pages that exist, by page number from the window's first entry.
    pages: BTreeSet<u64>,
}

/// The reference model: guest RAM and guest-view tables, without hardware tables.
#[derive(Debug, Clone)]
pub struct Model {
    host_page_shift: u32,
    /// RAM slots as (start, length).
    slots: Vec<(u64, u64)>,
    /// Written guest memory: big-endian 64-bit words by 8-byte aligned address.
    memory: HashMap<u64, u64>,
    windows: BTreeMap<u64, ModelWindow>,
}

impl Model {
    /// An empty machine with host pages of `1 << host_page_shift` bytes.
    pub fn new(host_page_shift: u32) -> Self {
        Self {
            host_page_shift,
            slots: Vec::new(),
            memory: HashMap::new(),
            windows: BTreeMap::new(),
        }
    }

    /// log2 of the number of entries in one host page.
    fn entries_per_page_shift(&self) -> u32 {
        self.host_page_shift.saturating_sub(3)
    }

    /// Whether the byte at `gpa` is guest RAM.
    fn in_ram(&self, gpa: u64) -> bool {
        self.slots
            .iter()
            .any(|&(s, l)| gpa >= s && u128::from(gpa) < u128::from(s) + u128::from(l))
    }

    /// Whether every byte of `[gpa, gpa + len)` is guest RAM, in one slot or several.
    fn covered(&self, gpa: u64, len: u64) -> bool {
        let end = u128::from(gpa) + u128::from(len);
        let mut at = u128::from(gpa);
        while at < end {
            let next = self.slots.iter().find_map(|&(s, l)| {
                let (s, e) = (u128::from(s), u128::from(s) + u128::from(l));
                (at >= s && at < e).then_some(e)
            });
            match next {
                Some(e) => at = e,
                None => return false,
            }
        }
        true
    }

    /// Stores one byte of guest memory.
    fn store_byte(&mut self, addr: u64, byte: u8) {
        let shift = (7 - (addr & 7)) * 8;
        let word = self.memory.entry(addr & !7).or_insert(0);
        *word = (*word & !(0xff << shift)) | (u64::from(byte) << shift);
    }

    /// Reads the big-endian word at the 8-byte aligned `addr`.
    fn load_word(&self, addr: u64) -> u64 {
        self.memory.get(&addr).copied().unwrap_or(0)
    }

    /// `ram`.
    pub fn ram(&mut self, gpa: u64, bytes: u64) -> Result<(), &'static str> {
        if bytes == 0 || gpa.checked_add(bytes).is_none() {
            return Err("EINVAL");
        }
        let (s1, e1) = (u128::from(gpa), u128::from(gpa) + u128::from(bytes));
        let overlaps = self.slots.iter().any(|&(s, l)| {
            let (s2, e2) = (u128::from(s), u128::from(s) + u128::from(l));
            s1 < e2 && s2 < e1
        });
        if overlaps {
            return Err("EINVAL");
        }
        self.slots.push((gpa, bytes));
        Ok(())
    }

    /// `write64`.
    pub fn write64(&mut self, gpa: u64, values: &[u64]) -> Result<(), &'static str> {
        let len = (values.len() as u64).checked_mul(8).ok_or("EFAULT")?;
        if !self.in_ram(gpa) || !self.covered(gpa, len) {
            return Err("EFAULT");
        }
        for (i, v) in values.iter().enumerate() {
            // covered() proved that the whole range is below 2^64.
            let addr = gpa + i as u64 * 8;
            if addr % 8 == 0 {
                self.memory.insert(addr, *v);
                continue;
            }
            for (j, b) in v.to_be_bytes().into_iter().enumerate() {
                self.store_byte(addr + j as u64, b);
            }
        }
        Ok(())
    }

    /// `create`, with the `KVM_CREATE_SPAPR_TCE_64` rules of this project.
    pub fn create(
        &mut self,
        liobn: u64,
        page_shift: u32,
        flags: u32,
        offset: u64,
        size: u64,
    ) -> Result<(), &'static str> {
        if size == 0 || flags != 0 || !(12..=34).contains(&page_shift) {
            return Err("EINVAL");
        }
        if u128::from(offset) + u128::from(size) > u128::from(u64::MAX >> page_shift) {
            return Err("EINVAL");
        }
        if self.windows.contains_key(&liobn) {
            return Err("EBUSY");
        }
        self.windows.insert(
            liobn,
            ModelWindow {
                page_shift,
                offset,
                size,
                entries: BTreeMap::new(),
                pages: BTreeSet::new(),
            },
        );
        Ok(())
    }

    /// `remove`.
    pub fn remove(&mut self, liobn: u64) -> Result<(), &'static str> {
        self.windows.remove(&liobn).map(|_| ()).ok_or("ENOENT")
    }

    /// The range check: `ioba` aligned to the IOMMU page and `[idx, idx + npages)` inside the
    /// window; returns the window-relative index of the first entry.
    fn range(w: &ModelWindow, ioba: u64, npages: u64) -> Result<u64, i64> {
        let page = 1u64 << w.page_shift;
        if ioba % page != 0 {
            return Err(H_PARAMETER);
        }
        let idx = ioba >> w.page_shift;
        if idx < w.offset {
            return Err(H_PARAMETER);
        }
        let rel = idx - w.offset;
        if u128::from(rel) + u128::from(npages) > u128::from(w.size) {
            return Err(H_PARAMETER);
        }
        Ok(rel)
    }

    /// TCE validation: an entry without permissions is always fine; else its address must be
    /// aligned to the IOMMU page and in guest RAM.
    fn check_tce(&self, w: &ModelWindow, tce: u64) -> Result<(), i64> {
        if tce & PERM_BITS == 0 {
            return Ok(());
        }
        let gpa = tce & !PERM_BITS;
        if gpa % (1u64 << w.page_shift) != 0 || !self.in_ram(gpa) {
            return Err(H_TOO_HARD);
        }
        Ok(())
    }

    /// Writes window-relative entry `rel` of `w`, allocating its page if the value is not zero.
    fn store(w: &mut ModelWindow, epp_shift: u32, rel: u64, tce: u64) {
        if tce == 0 {
            w.entries.remove(&rel);
        } else {
            w.pages.insert(rel >> epp_shift);
            w.entries.insert(rel, tce);
        }
    }

    /// `H_PUT_TCE`.
    pub fn put(&mut self, liobn: u64, ioba: u64, tce: u64) -> i64 {
        let epp = self.entries_per_page_shift();
        let Some(w) = self.windows.get(&liobn) else {
            return H_TOO_HARD;
        };
        let r = Self::range(w, ioba, 1).and_then(|rel| self.check_tce(w, tce).map(|()| rel));
        match r {
            Ok(rel) => {
                if let Some(w) = self.windows.get_mut(&liobn) {
                    Self::store(w, epp, rel, tce);
                }
                H_SUCCESS
            }
            Err(e) => e,
        }
    }

    /// `H_PUT_TCE_INDIRECT`.
    pub fn indirect(&mut self, liobn: u64, ioba: u64, list: u64, npages: u64) -> i64 {
        let epp = self.entries_per_page_shift();
        let Some(w) = self.windows.get(&liobn) else {
            return H_TOO_HARD;
        };
        if npages > INDIRECT_MAX || list % LIST_ALIGN != 0 {
            return H_PARAMETER;
        }
        let rel = match Self::range(w, ioba, npages) {
            Ok(rel) => rel,
            Err(e) => return e,
        };
        if !self.in_ram(list) {
            return H_TOO_HARD;
        }
        let mut tces = Vec::new();
        for i in 0..npages {
            let Some(addr) = list
                .checked_add(i * 8)
                .filter(|a| a.checked_add(8).is_some())
            else {
                return H_TOO_HARD;
            };
            if !self.covered(addr, 8) {
                return H_TOO_HARD;
            }
            tces.push(self.load_word(addr));
        }
        for &tce in &tces {
            if let Err(e) = self.check_tce(w, tce) {
                return e;
            }
        }
        if let Some(w) = self.windows.get_mut(&liobn) {
            for (i, tce) in tces.into_iter().enumerate() {
                Self::store(w, epp, rel + i as u64, tce);
            }
        }
        H_SUCCESS
    }

    /// `H_STUFF_TCE`.
    pub fn stuff(&mut self, liobn: u64, ioba: u64, value: u64, npages: u64) -> i64 {
        let epp = self.entries_per_page_shift();
        let Some(w) = self.windows.get_mut(&liobn) else {
            return H_TOO_HARD;
        };
        let rel = match Self::range(w, ioba, npages) {
            Ok(rel) => rel,
            Err(e) => return e,
        };
        if value & PERM_BITS != 0 {
            return H_PARAMETER;
        }
        // A long poisoning stuff is the VMM's to do, where it can be preempted.
        if value != 0 && npages > STUFF_NONZERO_MAX {
            return H_TOO_HARD;
        }
        if npages == 0 {
            return H_SUCCESS;
        }
        // The range check proved that rel + npages <= size.
        let last = rel + (npages - 1);
        if value == 0 {
            let gone: Vec<u64> = w.entries.range(rel..=last).map(|(&k, _)| k).collect();
            for k in gone {
                w.entries.remove(&k);
            }
        } else {
            for page in (rel >> epp)..=(last >> epp) {
                w.pages.insert(page);
            }
            for e in rel..=last {
                w.entries.insert(e, value);
            }
        }
        H_SUCCESS
    }

    /// `H_GET_TCE`.
    pub fn get(&self, liobn: u64, ioba: u64) -> Result<u64, i64> {
        let w = self.windows.get(&liobn).ok_or(H_TOO_HARD)?;
        let rel = Self::range(w, ioba, 1)?;
        Ok(w.entries.get(&rel).copied().unwrap_or(0))
    }

    /// `pages`: the host pages that exist.
    pub fn pages(&self, liobn: u64) -> Option<u64> {
        self.windows.get(&liobn).map(|w| w.pages.len() as u64)
    }

    /// A fault of the VMM's mapping on page `pgoff`: the page comes into existence, and its
    /// non-zero words are returned.
    pub fn fault(&mut self, liobn: u64, pgoff: u64) -> Result<Vec<(u64, u64)>, &'static str> {
        let epp = self.entries_per_page_shift();
        let w = self.windows.get_mut(&liobn).ok_or("ENOENT")?;
        let per_page = 1u64 << epp;
        let mapping_pages = w.size.div_ceil(per_page);
        if pgoff >= mapping_pages {
            return Err("SIGBUS");
        }
        w.pages.insert(pgoff);
        let first = pgoff << epp;
        Ok(w.entries
            .range(first..first + per_page)
            .map(|(&k, &v)| (k - first, v))
            .collect())
    }

    /// The non-zero entries of a table as (window-relative index, value), in order.
    pub fn entries(&self, liobn: u64) -> Option<Vec<(u64, u64)>> {
        self.windows
            .get(&liobn)
            .map(|w| w.entries.iter().map(|(&k, &v)| (k, v)).collect())
    }

    /// Overwrites window-relative entry `rel` of a table without any check, as no hypercall
    /// would. This exists to prove that the comparison notices a wrong model.
    pub fn poke(&mut self, liobn: u64, rel: u64, value: u64) {
        let epp = self.entries_per_page_shift();
        if let Some(w) = self.windows.get_mut(&liobn) {
            Self::store(w, epp, rel, value);
        }
    }

    /// Runs one op on the model.
    pub fn apply(&mut self, op: &Op) -> Outcome {
        match *op {
            Op::Ram { gpa, bytes } => Outcome::Status(self.ram(gpa, bytes)),
            Op::Write64 { gpa, ref values } => Outcome::Status(self.write64(gpa, values)),
            Op::Create {
                liobn,
                page_shift,
                flags,
                offset,
                size,
            } => Outcome::Status(self.create(liobn, page_shift, flags, offset, size)),
            Op::Remove { liobn } => Outcome::Status(self.remove(liobn)),
            Op::Put { liobn, ioba, tce } => Outcome::Hcall(self.put(liobn, ioba, tce)),
            Op::Indirect {
                liobn,
                ioba,
                list,
                npages,
            } => Outcome::Hcall(self.indirect(liobn, ioba, list, npages)),
            Op::Stuff {
                liobn,
                ioba,
                value,
                npages,
            } => Outcome::Hcall(self.stuff(liobn, ioba, value, npages)),
            Op::Get { liobn, ioba } => Outcome::Get(self.get(liobn, ioba)),
            Op::Pages { liobn } => Outcome::Pages(self.pages(liobn)),
            Op::Fault { liobn, pgoff } => Outcome::Fault(self.fault(liobn, pgoff)),
        }
    }
}

/// Runs one op on the real engine.
pub fn engine_apply(m: &mut Machine, op: &Op) -> Outcome {
    let status = |r: Result<(), crate::machine::Errno>| Outcome::Status(r.map_err(|e| e.name()));
    match *op {
        Op::Ram { gpa, bytes } => status(m.ram(gpa, bytes)),
        Op::Write64 { gpa, ref values } => status(m.write64(gpa, values)),
        Op::Create {
            liobn,
            page_shift,
            flags,
            offset,
            size,
        } => status(m.create(WindowParams {
            liobn,
            page_shift,
            flags,
            offset,
            size,
        })),
        Op::Remove { liobn } => status(m.remove(liobn)),
        Op::Put { liobn, ioba, tce } => Outcome::Hcall(return_code(&m.put(liobn, ioba, tce))),
        Op::Indirect {
            liobn,
            ioba,
            list,
            npages,
        } => Outcome::Hcall(return_code(&m.indirect(liobn, ioba, list, npages))),
        Op::Stuff {
            liobn,
            ioba,
            value,
            npages,
        } => Outcome::Hcall(return_code(&m.stuff(liobn, ioba, value, npages))),
        Op::Get { liobn, ioba } => Outcome::Get(m.get(liobn, ioba).map_err(|e| e.code())),
        Op::Pages { liobn } => Outcome::Pages(m.pages(liobn)),
        Op::Fault { liobn, pgoff } => Outcome::Fault(match m.window(liobn) {
            None => Err("ENOENT"),
            Some(w) => match w.fault(pgoff) {
                Ok(page) => Ok((0..page.words())
                    .filter_map(|i| {
                        let v = page.load(i);
                        (v != 0).then_some((i as u64, v))
                    })
                    .collect()),
                Err(FaultError::OutOfRange) => Err("SIGBUS"),
                Err(FaultError::NoMemory) => Err("OOM"),
            },
        }),
    }
}

/// A disagreement between the engine and the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The host page shift of the run.
    pub host_page_shift: u32,
    /// The ops run, the last one being the one whose outcomes differ (or, for a difference in
    /// the final state, all of them).
    pub ops: Vec<Op>,
    /// What differs: the op's outcomes, or a table's final state.
    pub what: String,
    /// What the engine did.
    pub engine: String,
    /// What the model expected.
    pub model: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "engine and model disagree after {} ops (host page shift {}): {}",
            self.ops.len(),
            self.host_page_shift,
            self.what
        )?;
        writeln!(f, "  engine: {}", self.engine)?;
        writeln!(f, "  model:  {}", self.model)?;
        writeln!(
            f,
            "reproduce with `tce-sim --host-page-shift {} FILE`, FILE holding:",
            self.host_page_shift
        )?;
        for op in &self.ops {
            writeln!(f, "{op}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Mismatch {}

/// Compares the outcomes of op `ops.last()`; `Err` describes the difference.
pub fn compare(
    host_page_shift: u32,
    ops: &[Op],
    engine: &Outcome,
    model: &Outcome,
) -> Result<(), Mismatch> {
    if engine == model {
        return Ok(());
    }
    Err(Mismatch {
        host_page_shift,
        ops: ops.to_vec(),
        what: match ops.last() {
            Some(op) => format!("outcome of `{op}`"),
            None => "outcome of an empty sequence".into(),
        },
        engine: engine.to_string(),
        model: model.to_string(),
    })
}

/// The engine and the model, run side by side.
pub struct Pair {
    host_page_shift: u32,
    machine: Machine,
    model: Model,
    ops: Vec<Op>,
    liobns: BTreeSet<u64>,
    hcalls: usize,
}

impl Pair {
    /// A fresh machine and model with host pages of `1 << host_page_shift` bytes.
    pub fn new(host_page_shift: u32) -> Self {
        Self {
            host_page_shift,
            machine: Machine::new(SimHost::new(host_page_shift)),
            model: Model::new(host_page_shift),
            ops: Vec::new(),
            liobns: BTreeSet::new(),
            hcalls: 0,
        }
    }

    /// The model, to tamper with in tests of the comparison.
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// The number of hypercalls run so far.
    pub fn hcalls(&self) -> usize {
        self.hcalls
    }

    /// Runs `op` on both and compares the outcomes; returns the outcome they agree on. A
    /// `create` of more than [`GUARANTEED_WINDOW_ENTRIES`] entries that the engine refuses with
    /// `ENOMEM` counts as refused by the model too, where the model accepts it or finds the
    /// LIOBN taken.
    pub fn step(&mut self, op: &Op) -> Result<Outcome, Mismatch> {
        self.ops.push(op.clone());
        if op.is_hcall() {
            self.hcalls += 1;
        }
        if let Op::Create { liobn, .. } = *op {
            self.liobns.insert(liobn);
        }
        let engine = engine_apply(&mut self.machine, op);
        let model = self.model.apply(op);
        if let Op::Create { liobn, size, .. } = *op {
            // A resource limit, not a rule: the model follows the engine. Like Linux, the
            // engine allocates before it looks for a duplicate LIOBN.
            if engine == Outcome::Status(Err("ENOMEM")) && size > GUARANTEED_WINDOW_ENTRIES {
                if model == Outcome::Status(Ok(())) {
                    let _ = self.model.remove(liobn);
                    return Ok(engine);
                }
                if model == Outcome::Status(Err("EBUSY")) {
                    return Ok(engine);
                }
            }
        }
        compare(self.host_page_shift, &self.ops, &engine, &model)?;
        Ok(engine)
    }

    /// Compares the complete state of every table ever created: whether it exists, its
    /// non-zero entries and its page count.
    pub fn check_state(&self) -> Result<(), Mismatch> {
        for &liobn in &self.liobns {
            let engine = self.machine.window(liobn).map(|w| {
                let mut v = Vec::new();
                w.for_each_entry(|rel, tce| v.push((rel, tce)));
                (v, w.present_pages())
            });
            let model = self
                .model
                .entries(liobn)
                .map(|v| (v, self.model.pages(liobn).unwrap_or(0)));
            if engine != model {
                let show = |s: &Option<(Vec<(u64, u64)>, u64)>| match s {
                    None => "no table".to_string(),
                    Some((v, pages)) => {
                        let mut out = format!("{} non-zero entries, {pages} pages:", v.len());
                        for (rel, tce) in v.iter().take(16) {
                            out.push_str(&format!(" [{rel:#x}]={tce:#x}"));
                        }
                        out
                    }
                };
                return Err(Mismatch {
                    host_page_shift: self.host_page_shift,
                    ops: self.ops.clone(),
                    what: format!("final state of table {liobn:#x}"),
                    engine: show(&engine),
                    model: show(&model),
                });
            }
        }
        Ok(())
    }
}

/// Runs `ops` on a fresh machine and a fresh model and compares every outcome and, at the end,
/// every table. Returns the number of hypercalls run.
pub fn run_both(ops: &[Op], host_page_shift: u32) -> Result<usize, Mismatch> {
    run_both_with(ops, host_page_shift, |_, _| {})
}

/// Like [`run_both`], and calls `seen(op, outcome)` with every op and the outcome that the
/// engine and the model agree on.
pub fn run_both_with(
    ops: &[Op],
    host_page_shift: u32,
    mut seen: impl FnMut(&Op, &Outcome),
) -> Result<usize, Mismatch> {
    let mut pair = Pair::new(host_page_shift);
    for op in ops {
        let outcome = pair.step(op)?;
        seen(op, &outcome);
    }
    pair.check_state()?;
    Ok(pair.hcalls())
}

/// Shrinks a failing op sequence by dropping every op whose removal keeps it failing.
pub fn minimize(ops: &[Op], host_page_shift: u32) -> Vec<Op> {
    let mut ops = ops.to_vec();
    if let Err(m) = run_both(&ops, host_page_shift) {
        // Nothing after the first failing op matters.
        ops.truncate(m.ops.len());
    }
    let mut i = ops.len();
    while i > 0 {
        i -= 1;
        let mut fewer = ops.clone();
        fewer.remove(i);
        if run_both(&fewer, host_page_shift).is_err() {
            ops = fewer;
        }
    }
    ops
}

// The symbolic layer: test cases described relative to the windows and RAM they use.

/// The largest window a [`Plan`] creates. The simulated host's bookkeeping and every walk over
/// it grow with the window size, so bigger valid windows are cut down to this size to keep a
/// run fast.
pub const PLAN_MAX_WINDOW_ENTRIES: u64 = 1 << 40;

/// The most entries a [`Plan`]'s successful `H_STUFF_TCE` with a non-zero value fills: such a
/// call allocates every page of its range, so longer ones are cut down to this length.
pub const PLAN_MAX_STUFF_ENTRIES: u64 = 4096;

/// The LIOBN that a [`Plan`] never creates.
pub const PLAN_UNKNOWN_LIOBN: u64 = 0x0bad_1000_0000_0b0e;

/// The window number that names [`PLAN_UNKNOWN_LIOBN`] in a [`Step`].
pub const PLAN_UNKNOWN_WINDOW: u8 = u8::MAX;

/// A window's first entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// This entry index.
    Index(u64),
    /// `(u64::MAX >> page_shift) - size + d - 1`: `d == 1` puts the window's end exactly at the
    /// limit, larger `d` past it.
    NearLimit(u8),
}

/// A window's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// This many entries.
    Entries(u64),
    /// `(u64::MAX >> page_shift) - offset + d - 1`: `d == 1` makes the window end exactly at
    /// the limit, larger `d` past it.
    ToLimit(u8),
}

/// A window a [`Plan`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// The LIOBN; several windows may share one (all but one creation then fail with `EBUSY`).
    pub liobn: u64,
    /// log2 of the IOMMU page size, valid or not.
    pub page_shift: u32,
    /// The creation flags.
    pub flags: u32,
    /// The first entry.
    pub offset: Offset,
    /// The size.
    pub size: Size,
}

/// The concrete parameters of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geo {
    liobn: u64,
    page_shift: u32,
    flags: u32,
    offset: u64,
    size: u64,
}

impl Geo {
    /// Whether `create` accepts these parameters.
    fn valid(&self) -> bool {
        self.size != 0
            && self.flags == 0
            && (12..=34).contains(&self.page_shift)
            && u128::from(self.offset) + u128::from(self.size)
                <= u128::from(u64::MAX >> self.page_shift)
    }

    /// Whether `[ioba, ioba + npages)` passes this window's range check.
    fn accepts(&self, ioba: u64, npages: u64) -> bool {
        let shift = self.page_shift.min(63);
        let idx = ioba >> shift;
        ioba & ((1u64 << shift) - 1) == 0
            && idx >= self.offset
            && u128::from(idx - self.offset) + u128::from(npages) <= u128::from(self.size)
    }
}

impl WindowSpec {
    /// Resolves the spec into concrete parameters.
    fn geo(&self) -> Geo {
        let shift = self.page_shift.min(63);
        let limit = u64::MAX >> shift;
        let near = |other: u64, d: u8| {
            limit
                .wrapping_sub(other)
                .wrapping_add(u64::from(d))
                .wrapping_sub(1)
        };
        let (offset, size) = match (self.offset, self.size) {
            (Offset::Index(o), Size::Entries(s)) => (o, s),
            (Offset::NearLimit(d), Size::Entries(s)) => (near(s, d), s),
            (Offset::Index(o), Size::ToLimit(d)) => (o, near(o, d)),
            (Offset::NearLimit(d1), Size::ToLimit(d2)) => {
                let o = near(1, d1);
                (o, near(o, d2))
            }
        };
        let mut g = Geo {
            liobn: self.liobn,
            page_shift: self.page_shift,
            flags: self.flags,
            offset,
            size,
        };
        if g.valid() && g.size > PLAN_MAX_WINDOW_ENTRIES {
            g.size = PLAN_MAX_WINDOW_ENTRIES;
        }
        g
    }
}

/// A guest physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gpa {
    /// The `index`-th unit-aligned address in RAM slot `slot` (modulo the number of slots and
    /// of such addresses).
    InSlot {
        /// The slot.
        slot: u8,
        /// The unit-aligned address.
        index: u64,
    },
    /// `back` units below the last unit boundary at or before the end of RAM slot `slot`:
    /// `back == 0` is just past the slot when its end is aligned.
    SlotEnd {
        /// The slot.
        slot: u8,
        /// Units back from the end.
        back: u8,
    },
    /// This address.
    Raw(u64),
}

/// A TCE value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tce {
    /// Zero: clears the entry.
    Zero,
    /// An address aligned to the window's IOMMU page, with permissions `1 + perm % 3`.
    Mapped {
        /// The address.
        gpa: Gpa,
        /// The permissions selector.
        perm: u8,
    },
    /// Like `Mapped`, but moved off the IOMMU page boundary by a non-zero multiple of 4 bytes
    /// derived from `by`.
    Misaligned {
        /// The address before the move.
        gpa: Gpa,
        /// The permissions selector.
        perm: u8,
        /// The move selector.
        by: u64,
    },
    /// This value without its permission bits: a poison value.
    Poison(u64),
    /// This value.
    Raw(u64),
}

/// An I/O bus address relative to a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ioba {
    /// Entry `k % size` of the window.
    Entry(u64),
    /// The last entry.
    Last,
    /// `k` entries past the last one.
    Past(u64),
    /// The entry before the first one.
    BeforeFirst,
    /// Entry `k % size`, plus a non-zero offset below the IOMMU page derived from `by`.
    Misaligned {
        /// The entry.
        k: u64,
        /// The offset selector.
        by: u64,
    },
    /// This bus address.
    Raw(u64),
}

/// A number of entries relative to a window and a first entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Npages {
    /// This many.
    Count(u64),
    /// Up to the end of the window, plus `d` (wrapping).
    Rest(u8),
}

/// The page of a table's mapping that the VMM touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapPage {
    /// Page `k % pages`.
    Index(u64),
    /// `k` pages past the last one.
    Past(u64),
}

/// The contents of an `H_PUT_TCE_INDIRECT` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// The first entries.
    pub head: Vec<Tce>,
    /// The value of the remaining entries; when it grants access, entry `head.len() + j`
    /// points `j` IOMMU pages further, like the pages of one buffer.
    pub run: Tce,
    /// The total number of entries written, at most 512.
    pub len: u16,
}

/// One step of a [`Plan`]. `win` selects window `win % windows`, or, when it is
/// [`PLAN_UNKNOWN_WINDOW`] or the plan has no windows, [`PLAN_UNKNOWN_LIOBN`], which is never
/// created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Creates window `win` (again).
    Create {
        /// The window.
        win: u8,
    },
    /// Removes window `win`.
    Remove {
        /// The window.
        win: u8,
    },
    /// `H_PUT_TCE`.
    Put {
        /// The window.
        win: u8,
        /// The bus address.
        ioba: Ioba,
        /// The TCE.
        tce: Tce,
    },
    /// `H_PUT_TCE_INDIRECT`, after writing `list` (if any) at `at`, a 4 KiB aligned address.
    Indirect {
        /// The window.
        win: u8,
        /// The bus address.
        ioba: Ioba,
        /// Where the list is.
        at: Gpa,
        /// The list to write first.
        list: Option<List>,
        /// The number of entries.
        npages: Npages,
    },
    /// `H_STUFF_TCE`.
    Stuff {
        /// The window.
        win: u8,
        /// The bus address.
        ioba: Ioba,
        /// The value.
        value: Tce,
        /// The number of entries.
        npages: Npages,
    },
    /// `H_GET_TCE`.
    Get {
        /// The window.
        win: u8,
        /// The bus address.
        ioba: Ioba,
    },
    /// `pages`.
    Pages {
        /// The window.
        win: u8,
    },
    /// A fault of the VMM's mapping.
    Fault {
        /// The window.
        win: u8,
        /// The page.
        page: MapPage,
    },
    /// `write64` of raw values at an 8-byte aligned address plus `skew % 8`.
    Write64 {
        /// The address.
        at: Gpa,
        /// The misalignment.
        skew: u8,
        /// The values; none writes nothing.
        values: Vec<u64>,
    },
}

/// A test case: a host, guest RAM, windows (all created first) and steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// log2 of the host page size.
    pub host_page_shift: u32,
    /// RAM slots as (gpa, bytes), added first; some may be refused.
    pub ram: Vec<(u64, u64)>,
    /// The windows, created after the RAM.
    pub windows: Vec<WindowSpec>,
    /// The steps.
    pub steps: Vec<Step>,
}

/// A window the steps of a plan can name: the unknown LIOBN gets a small default shape.
const UNKNOWN_GEO: Geo = Geo {
    liobn: PLAN_UNKNOWN_LIOBN,
    page_shift: 12,
    flags: 0,
    offset: 0,
    size: 512,
};

/// The plan being resolved.
struct Resolver<'a> {
    plan: &'a Plan,
    geos: Vec<Geo>,
}

impl Resolver<'_> {
    fn geo(&self, win: u8) -> Geo {
        if win == PLAN_UNKNOWN_WINDOW || self.geos.is_empty() {
            return UNKNOWN_GEO;
        }
        self.geos[usize::from(win) % self.geos.len()]
    }

    fn gpa(&self, g: Gpa, unit_shift: u32) -> u64 {
        let unit = 1u64 << unit_shift.min(63);
        let slot = |s: u8| {
            let n = self.plan.ram.len();
            (n > 0).then(|| self.plan.ram[usize::from(s) % n])
        };
        match g {
            Gpa::InSlot { slot: s, index } => {
                let (start, len) = slot(s).unwrap_or((0, 0));
                let base = start.wrapping_add(unit - 1) & !(unit - 1);
                let count = (len >> unit_shift.min(63)).max(1);
                base.wrapping_add((index % count).wrapping_mul(unit))
            }
            Gpa::SlotEnd { slot: s, back } => {
                let (start, len) = slot(s).unwrap_or((0, 0));
                (start.wrapping_add(len) & !(unit - 1))
                    .wrapping_sub(u64::from(back).wrapping_mul(unit))
            }
            Gpa::Raw(v) => v,
        }
    }

    fn tce(&self, t: Tce, page_shift: u32) -> u64 {
        let perm = |p: u8| 1 + u64::from(p) % 3;
        match t {
            Tce::Zero => 0,
            Tce::Mapped { gpa, perm: p } => self.gpa(gpa, page_shift) | perm(p),
            Tce::Misaligned { gpa, perm: p, by } => {
                let quarter = (1u64 << page_shift.clamp(3, 63)) / 4;
                let skew = 4 * (1 + by % (quarter - 1));
                self.gpa(gpa, page_shift).wrapping_add(skew) | perm(p)
            }
            Tce::Poison(v) => v & !PERM_BITS,
            Tce::Raw(v) => v,
        }
    }

    /// The bus address and the window-relative index it names.
    fn ioba(&self, g: &Geo, i: Ioba) -> (u64, u64) {
        let shift = g.page_shift.min(63);
        let at = |rel: u64| (g.offset.wrapping_add(rel) << shift, rel);
        let modulo = |k: u64| if g.size == 0 { 0 } else { k % g.size };
        match i {
            Ioba::Entry(k) => at(modulo(k)),
            Ioba::Last => at(g.size.wrapping_sub(1)),
            Ioba::Past(k) => at(g.size.wrapping_add(k)),
            Ioba::BeforeFirst => at(u64::MAX),
            Ioba::Misaligned { k, by } => {
                let (ioba, rel) = at(modulo(k));
                let page = 1u64 << shift;
                (ioba.wrapping_add(1 + by % (page - 1).max(1)), rel)
            }
            Ioba::Raw(v) => (v, (v >> shift).wrapping_sub(g.offset)),
        }
    }

    fn npages(g: &Geo, n: Npages, rel: u64) -> u64 {
        match n {
            Npages::Count(k) => k,
            Npages::Rest(d) => g.size.wrapping_sub(rel).wrapping_add(u64::from(d)),
        }
    }

    fn list(&self, l: &List, page_shift: u32) -> Vec<u64> {
        let len = usize::from(l.len).min(INDIRECT_MAX as usize);
        let run = self.tce(l.run, page_shift);
        (0..len)
            .map(|i| match l.head.get(i) {
                Some(&t) => self.tce(t, page_shift),
                None if run & PERM_BITS != 0 => {
                    let j = (i - l.head.len()) as u64;
                    run.wrapping_add(j << page_shift.min(63))
                }
                None => run,
            })
            .collect()
    }

    fn step(&self, s: &Step, out: &mut Vec<Op>) {
        match *s {
            Step::Create { win } => {
                let g = self.geo(win);
                out.push(Op::Create {
                    liobn: g.liobn,
                    page_shift: g.page_shift,
                    flags: g.flags,
                    offset: g.offset,
                    size: g.size,
                });
            }
            Step::Remove { win } => out.push(Op::Remove {
                liobn: self.geo(win).liobn,
            }),
            Step::Put { win, ioba, tce } => {
                let g = self.geo(win);
                out.push(Op::Put {
                    liobn: g.liobn,
                    ioba: self.ioba(&g, ioba).0,
                    tce: self.tce(tce, g.page_shift),
                });
            }
            Step::Indirect {
                win,
                ioba,
                at,
                ref list,
                npages,
            } => {
                let g = self.geo(win);
                let (ioba, rel) = self.ioba(&g, ioba);
                let list_gpa = self.gpa(at, 12);
                if let Some(l) = list {
                    let values = self.list(l, g.page_shift);
                    if !values.is_empty() {
                        out.push(Op::Write64 {
                            gpa: list_gpa,
                            values,
                        });
                    }
                }
                out.push(Op::Indirect {
                    liobn: g.liobn,
                    ioba,
                    list: list_gpa,
                    npages: Self::npages(&g, npages, rel),
                });
            }
            Step::Stuff {
                win,
                ioba,
                value,
                npages,
            } => {
                let g = self.geo(win);
                let (ioba, rel) = self.ioba(&g, ioba);
                let value = self.tce(value, g.page_shift);
                let mut npages = Self::npages(&g, npages, rel);
                // Keep a poisoning stuff from allocating gigabytes in whichever window of
                // this LIOBN is alive.
                if value != 0
                    && npages > PLAN_MAX_STUFF_ENTRIES
                    && self
                        .geos
                        .iter()
                        .any(|o| o.liobn == g.liobn && o.accepts(ioba, npages))
                {
                    npages = PLAN_MAX_STUFF_ENTRIES;
                }
                out.push(Op::Stuff {
                    liobn: g.liobn,
                    ioba,
                    value,
                    npages,
                });
            }
            Step::Get { win, ioba } => {
                let g = self.geo(win);
                out.push(Op::Get {
                    liobn: g.liobn,
                    ioba: self.ioba(&g, ioba).0,
                });
            }
            Step::Pages { win } => out.push(Op::Pages {
                liobn: self.geo(win).liobn,
            }),
            Step::Fault { win, page } => {
                let g = self.geo(win);
                let epp_shift = self.plan.host_page_shift.saturating_sub(3).min(63);
                let pages = g.size.div_ceil(1 << epp_shift);
                let pgoff = match page {
                    MapPage::Index(k) => k % pages.max(1),
                    MapPage::Past(k) => pages.wrapping_add(k),
                };
                out.push(Op::Fault {
                    liobn: g.liobn,
                    pgoff,
                });
            }
            Step::Write64 {
                at,
                skew,
                ref values,
            } => {
                if !values.is_empty() {
                    out.push(Op::Write64 {
                        gpa: self.gpa(at, 3).wrapping_add(u64::from(skew % 8)),
                        values: values.clone(),
                    });
                }
            }
        }
    }
}

impl Plan {
    /// Resolves the plan into concrete ops: the RAM slots, the windows' creation, then the
    /// steps.
    pub fn ops(&self) -> Vec<Op> {
        let r = Resolver {
            plan: self,
            geos: self.windows.iter().map(WindowSpec::geo).collect(),
        };
        let mut out = Vec::with_capacity(self.ram.len() + self.windows.len() + self.steps.len());
        for &(gpa, bytes) in &self.ram {
            out.push(Op::Ram { gpa, bytes });
        }
        // Steps can name 255 windows at most; only those are created first.
        for win in 0..PLAN_UNKNOWN_WINDOW {
            if usize::from(win) >= self.windows.len() {
                break;
            }
            r.step(&Step::Create { win }, &mut out);
        }
        for s in &self.steps {
            r.step(s, &mut out);
        }
        out
    }

    /// Runs the plan on the engine and the model; returns the number of hypercalls run.
    pub fn run(&self) -> Result<usize, Mismatch> {
        run_both(&self.ops(), self.host_page_shift)
    }

    /// Like [`Plan::run`], with [`run_both_with`]'s `seen`.
    pub fn run_with(&self, seen: impl FnMut(&Op, &Outcome)) -> Result<usize, Mismatch> {
        run_both_with(&self.ops(), self.host_page_shift, seen)
    }
}
