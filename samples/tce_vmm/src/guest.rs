// SPDX-License-Identifier: GPL-2.0
//! The guest: its payload, the layout of its RAM, and the jobs the VMM hands it.
//!
//! The payload (`guest/runner.S`, assembled by `build.rs`) runs one job per start: a list of
//! hypercalls, each timed with the timebase, whose results it stores in guest RAM before
//! it issues [`H_JOB_DONE`]. A job's descriptor, calls and results live in one area of guest
//! RAM per vCPU, so that vCPUs run jobs side by side.

use std::collections::BTreeMap;

use crate::error::{
    Error,
    Result, //
};
use crate::hcall::Hcall;
use crate::memory::{
    GuestAddress,
    GuestRam,
    OutsideRam, //
};

/// The payload, loaded at guest physical address 0; empty when not built for ppc64le.
pub const PAYLOAD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guest.bin"));

/// Where each vCPU starts.
pub const ENTRY: u64 = 0x100;
/// The MSR of the guest: 64-bit, little-endian, real mode (no translation), no interrupts.
pub const MSR_SF_LE: u64 = 0x8000_0000_0000_0001;

// The private hypercalls: above `MAX_HCALL_OPCODE` and outside every range Linux or QEMU
// define, so that KVM-HV answers none of them itself and each exits to the VMM. (0xF800 to
// 0xF80C, right after QEMU's 0xF000 range, are the nested-virtualization hypercalls, which
// KVM-HV answers in the kernel.)

/// The private hypercall that ends a job.
pub const H_JOB_DONE: u64 = 0xE000;
/// A private hypercall a job may contain: the VMM notes the vCPU's progress and answers 0.
pub const H_PROGRESS: u64 = 0xE004;
/// The private hypercall of the payload's interrupt stubs: r4 = vector + 12, r5 = SRR0,
/// r6 = SRR1.
pub const H_GUEST_INTERRUPT: u64 = 0xE008;

/// Guest RAM: 64 MiB.
pub const RAM_SIZE: u64 = 64 << 20;
/// RTAS buffers: one 256-byte buffer per call of a job, in this page.
pub const RTAS_BUFFERS: GuestAddress = GuestAddress(0x1_0000);
/// The job areas, one per vCPU.
const JOB_AREAS: GuestAddress = GuestAddress(0x0100_0000);
/// The size of one job area.
const JOB_AREA_SIZE: u64 = 0x40_0000;
/// The most vCPUs with a job area of their own.
pub const MAX_VCPUS: usize = 8;
/// TCE lists for `H_PUT_TCE_INDIRECT`: one 4 KiB page each.
const LISTS: GuestAddress = GuestAddress(0x0300_0000);
/// The number of list pages.
pub const LIST_PAGES: usize = 1024;

/// Bytes of one call in guest RAM: the hypercall number, r4 to r7 and a reserved word.
const CALL_BYTES: u64 = 48;
/// Bytes of one result in guest RAM: r3, r4, the timebase ticks and a reserved word.
const RESULT_BYTES: u64 = 32;
/// Where the calls start in a job area (the descriptor is at its start).
const CALLS_OFFSET: u64 = 0x1000;

/// The most calls one job may hold.
pub const MAX_CALLS: usize =
    ((JOB_AREA_SIZE - CALLS_OFFSET) / (CALL_BYTES + RESULT_BYTES)) as usize;

const _: () = assert!(JOB_AREAS.0 + MAX_VCPUS as u64 * JOB_AREA_SIZE <= LISTS.0);
const _: () = assert!(LISTS.0 + LIST_PAGES as u64 * 4096 <= RAM_SIZE);

/// The guest address of list page `i`.
pub const fn list_page(i: usize) -> GuestAddress {
    LISTS.add(i as u64 * 4096)
}

/// One call of a job: a hypercall number and r4 to r7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestCall {
    /// The hypercall number (r3).
    pub nr: u64,
    /// r4 to r7.
    pub args: [u64; 4],
}

impl From<Hcall> for GuestCall {
    fn from(c: Hcall) -> Self {
        let (nr, args) = c.encode();
        GuestCall { nr, args }
    }
}

/// What the guest saw for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallResult {
    /// r3 after the call.
    pub r3: i64,
    /// r4 after the call.
    pub r4: u64,
    /// Timebase ticks from just before to just after `sc 1`.
    pub ticks: u64,
}

/// A list of calls for the guest, and the TCE lists (by guest address) they use.
#[derive(Clone, Debug, Default)]
pub struct Job {
    /// The calls, in order.
    pub calls: Vec<GuestCall>,
    /// TCE lists to store in guest RAM before the job runs, big-endian.
    pub lists: BTreeMap<GuestAddress, Vec<u64>>,
}

/// Converts an access outside guest RAM into an error; the layout constants rule it out.
fn inside(r: Result<(), OutsideRam>) -> Result<()> {
    r.map_err(|OutsideRam| Error::OutsideRam { what: "a job" })
}

impl Job {
    /// Adds a call.
    pub fn push(&mut self, call: impl Into<GuestCall>) {
        self.calls.push(call.into());
    }

    /// The job area of vCPU slot `area`.
    fn area(area: usize) -> GuestAddress {
        JOB_AREAS.add(area as u64 * JOB_AREA_SIZE)
    }

    /// Stores the job in job area `area`, with its TCE lists; returns the descriptor's address,
    /// which the payload expects in r31.
    pub fn store(&self, ram: &GuestRam, area: usize, done_nr: u64) -> Result<GuestAddress> {
        let n = self.calls.len();
        if n > MAX_CALLS || area >= MAX_VCPUS {
            return Err(Error::JobTooLarge {
                calls: n,
                max: MAX_CALLS,
            });
        }
        for (&at, list) in &self.lists {
            inside(ram.write_be64(at, list))?;
        }
        let base = Self::area(area);
        let calls = base.add(CALLS_OFFSET);
        let results = calls.add(n as u64 * CALL_BYTES);
        let words: Vec<u64> = self
            .calls
            .iter()
            .flat_map(|c| [c.nr, c.args[0], c.args[1], c.args[2], c.args[3], 0])
            .collect();
        inside(ram.write_le64(calls, &words))?;
        // Results start poisoned, so that a call the guest never made cannot pass a check.
        let poison: Vec<u64> = (0..n).flat_map(|_| [u64::MAX; 4]).collect();
        inside(ram.write_le64(results, &poison))?;
        inside(ram.write_le64(base, &[n as u64, calls.0, results.0, done_nr]))?;
        Ok(base)
    }

    /// Reads the results of the job stored in area `area`.
    pub fn results(&self, ram: &GuestRam, area: usize) -> Result<Vec<CallResult>> {
        let n = self.calls.len();
        let results = Self::area(area).add(CALLS_OFFSET + n as u64 * CALL_BYTES);
        let mut words = vec![0u64; n * 4];
        inside(ram.read_le64(results, &mut words))?;
        Ok(words
            .chunks_exact(4)
            .map(|w| CallResult {
                r3: w[0] as i64,
                r4: w[1],
                ticks: w[2],
            })
            .collect())
    }
}
