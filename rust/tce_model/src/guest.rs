// SPDX-License-Identifier: GPL-2.0

//! Simulated guest RAM and preregistered DMA memory.
//!
//! Guest RAM is a set of slots whose contents are stored sparsely, so a slot of many gigabytes
//! costs nothing until it is written. The simulated VMM maps guest RAM at the same address, and
//! the host backs it at the same address too: user address = guest physical address = host
//! physical address.

use std::collections::BTreeMap;
use std::sync::atomic::{
    AtomicU64,
    Ordering, //
};

use tce_engine::env::{
    DmaMemory,
    GuestFault,
    GuestMemory, //
};

const CHUNK: u64 = 4096;

/// Why a memory command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    /// An empty, overflowing or overlapping range, or a bad page size (`EINVAL`).
    Invalid,
    /// The range is not all guest RAM (`EFAULT`).
    Fault,
}

/// Guest RAM.
#[derive(Default)]
pub struct SimRam {
    /// Slots by start address: (start, length).
    slots: BTreeMap<u64, u64>,
    /// Written 4 KiB chunks by chunk number.
    data: BTreeMap<u64, Box<[u8; CHUNK as usize]>>,
}

impl SimRam {
    /// Adds a zero-filled slot of `bytes` at `gpa`.
    pub fn add_slot(&mut self, gpa: u64, bytes: u64) -> Result<(), MemError> {
        let end = gpa.checked_add(bytes).ok_or(MemError::Invalid)?;
        if bytes == 0 || self.slots.iter().any(|(&s, &l)| gpa < s + l && s < end) {
            return Err(MemError::Invalid);
        }
        self.slots.insert(gpa, bytes);
        Ok(())
    }

    /// Whether all of `[gpa, gpa + len)` is RAM, possibly across adjacent slots.
    pub fn contains(&self, gpa: u64, len: u64) -> bool {
        let Some(end) = gpa.checked_add(len) else {
            return false;
        };
        let mut at = gpa;
        loop {
            let Some((&s, &l)) = self.slots.range(..=at).next_back() else {
                return false;
            };
            let slot_end = s + l;
            if at >= slot_end {
                return false;
            }
            if end <= slot_end {
                return true;
            }
            at = slot_end;
        }
    }

    /// Stores `values` big-endian at consecutive 8-byte slots from `gpa`.
    pub fn write64(&mut self, gpa: u64, values: &[u64]) -> Result<(), MemError> {
        let len = (values.len() as u64)
            .checked_mul(8)
            .ok_or(MemError::Fault)?;
        if !self.contains(gpa, len) {
            return Err(MemError::Fault);
        }
        for (i, v) in values.iter().enumerate() {
            for (j, b) in v.to_be_bytes().into_iter().enumerate() {
                let a = gpa + i as u64 * 8 + j as u64;
                let chunk = self
                    .data
                    .entry(a / CHUNK)
                    .or_insert_with(|| Box::new([0; CHUNK as usize]));
                chunk[(a % CHUNK) as usize] = b;
            }
        }
        Ok(())
    }
}

impl GuestMemory for SimRam {
    fn gpa_to_ua(&self, gpa: u64) -> Option<u64> {
        self.contains(gpa, 1).then_some(gpa)
    }

    fn read_be64(&self, gpa: u64, out: &mut [u64]) -> Result<(), GuestFault> {
        let len = (out.len() as u64).checked_mul(8).ok_or(GuestFault)?;
        if !self.contains(gpa, len) {
            return Err(GuestFault);
        }
        // Copy chunk by chunk: the list is one 4 KiB page for H_PUT_TCE_INDIRECT.
        let mut bytes = vec![0u8; out.len() * 8];
        let mut done = 0usize;
        while done < bytes.len() {
            let a = gpa + done as u64;
            let off = (a % CHUNK) as usize;
            let n = (CHUNK as usize - off).min(bytes.len() - done);
            if let Some(c) = self.data.get(&(a / CHUNK)) {
                bytes[done..done + n].copy_from_slice(&c[off..off + n]);
            }
            done += n;
        }
        for (w, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(b);
            *w = u64::from_be_bytes(word);
        }
        Ok(())
    }
}

/// One preregistered region.
#[derive(Debug)]
pub struct Region {
    /// First user address.
    pub ua: u64,
    /// Length in bytes.
    pub size: u64,
    /// log2 of the pages that back it.
    pub page_shift: u32,
    /// Hardware entries that map it.
    pub mapped: AtomicU64,
}

/// Preregistered DMA memory.
#[derive(Default, Debug)]
pub struct SimDma {
    regions: Vec<Region>,
}

impl SimDma {
    /// Registers `[ua, ua + bytes)`, which must be guest RAM, backed by `1 << page_shift` pages.
    pub fn register(
        &mut self,
        ram: &SimRam,
        ua: u64,
        bytes: u64,
        page_shift: u32,
    ) -> Result<(), MemError> {
        if !(12..=40).contains(&page_shift) || bytes == 0 {
            return Err(MemError::Invalid);
        }
        let mask = (1u64 << page_shift) - 1;
        if ua & mask != 0 || bytes & mask != 0 || !ram.contains(ua, bytes) {
            return Err(MemError::Invalid);
        }
        let end = ua + bytes;
        if self
            .regions
            .iter()
            .any(|r| ua < r.ua + r.size && r.ua < end)
        {
            return Err(MemError::Invalid);
        }
        self.regions.push(Region {
            ua,
            size: bytes,
            page_shift,
            mapped: AtomicU64::new(0),
        });
        Ok(())
    }

    /// The registered regions.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Hardware entries mapping any region.
    pub fn total_mapped(&self) -> u64 {
        self.regions
            .iter()
            .map(|r| r.mapped.load(Ordering::SeqCst))
            .sum()
    }
}

impl DmaMemory for SimDma {
    type Region = usize;

    fn lookup(&self, ua: u64, size: u64) -> Option<usize> {
        let end = ua.checked_add(size)?;
        self.regions
            .iter()
            .position(|r| ua >= r.ua && end <= r.ua + r.size)
    }

    fn ua_to_hpa(&self, region: usize, ua: u64, page_shift: u32) -> Option<u64> {
        let r = self.regions.get(region)?;
        (page_shift <= r.page_shift).then_some(ua)
    }

    fn mapped_inc(&self, region: usize) -> bool {
        self.regions
            .get(region)
            .map(|r| r.mapped.fetch_add(1, Ordering::SeqCst))
            .is_some()
    }

    fn mapped_dec(&self, region: usize) {
        if let Some(r) = self.regions.get(region) {
            r.mapped.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
