// SPDX-License-Identifier: GPL-2.0
//! Sparse migration: a table saved as its populated entries only, and its binary format.
//!
//! # Format, version 1
//!
//! All fields are little-endian, whatever the host:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, the bytes `TCETABLE` |
//! | 8 | 4 | format version, 1 |
//! | 12 | 4 | header flags, 0 |
//! | 16 | 8 | LIOBN |
//! | 24 | 4 | IOMMU page shift |
//! | 28 | 4 | window flags (as in `KVM_CREATE_SPAPR_TCE_64`), 0 |
//! | 32 | 8 | first entry: the window's bus address >> page shift |
//! | 40 | 8 | number of entries in the window |
//! | 48 | 8 | `count`, the number of saved entries |
//! | 56 | 16 × `count` | `count` pairs (entry index, TCE), index ascending |
//!
//! Only non-zero entries are saved, each once, in ascending order of index, and every index is
//! inside the window. Nothing may follow the last pair. Loading checks all of this.

use std::path::Path;

use tce_engine::window::WindowParams;

use crate::error::{
    Error,
    Result, //
};
use crate::table::{
    validate,
    Table,
    Tables, //
};

/// The first eight bytes of a saved table.
pub const MAGIC: [u8; 8] = *b"TCETABLE";

/// The format version this code writes and reads.
pub const VERSION: u32 = 1;

/// The size of the header, up to the first entry.
pub const HEADER_BYTES: usize = 56;

/// The size of one saved entry (index, TCE).
pub const ENTRY_BYTES: usize = 16;

/// Pages asked for per `TCE_ACCEL_TABLE_PAGES` call while saving.
const PAGES_PER_CALL: usize = 512;

/// A table saved as its window parameters and its non-zero entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedTable {
    params: WindowParams,
    entries: Vec<(u64, u64)>,
}

/// What saving a table cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveStats {
    /// Host pages that the table listed as existing, and that were read.
    pub pages_read: u64,
    /// `TCE_ACCEL_TABLE_PAGES` calls (or their simulated equivalent).
    pub list_calls: u64,
}

/// Checks that `entries` are non-zero, inside a window of `size` entries and ascending.
fn check_entries(entries: &[(u64, u64)], size: u64) -> Result<()> {
    let mut previous: Option<u64> = None;
    for &(index, tce) in entries {
        if index >= size {
            return Err(Error::EntryOutsideWindow { index, size });
        }
        match previous {
            Some(p) if p == index => return Err(Error::DuplicateEntry { index }),
            Some(p) if p > index => return Err(Error::UnsortedEntry { index, previous: p }),
            _ => {}
        }
        if tce == 0 {
            return Err(Error::ZeroEntry { index });
        }
        previous = Some(index);
    }
    Ok(())
}

/// Reads a little-endian u32 at `at`; the caller checked the length.
fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// Reads a little-endian u64 at `at`; the caller checked the length.
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl SavedTable {
    /// Builds a saved table, checking the parameters and the entries as loading does.
    pub fn new(params: WindowParams, entries: Vec<(u64, u64)>) -> Result<SavedTable> {
        validate(&params)?;
        check_entries(&entries, params.size)?;
        Ok(SavedTable { params, entries })
    }

    /// Returns the window's parameters.
    pub fn params(&self) -> &WindowParams {
        &self.params
    }

    /// Returns the saved (index, TCE) pairs, index ascending, every TCE non-zero.
    pub fn entries(&self) -> &[(u64, u64)] {
        &self.entries
    }

    /// Returns the size of [`SavedTable::to_bytes`]'s result.
    pub fn encoded_len(&self) -> u64 {
        HEADER_BYTES as u64 + ENTRY_BYTES as u64 * self.entries.len() as u64
    }

    /// Returns the bytes a dense copy of the table (every entry, as QEMU migrates it) takes.
    pub fn dense_bytes(&self) -> u64 {
        // A valid window ends below 2^64 bytes with pages of at least 4 KiB, so this fits.
        self.params.size.saturating_mul(8)
    }

    /// Encodes the table in the format described in the module documentation.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + ENTRY_BYTES * self.entries.len());
        let p = &self.params;
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&p.liobn.to_le_bytes());
        out.extend_from_slice(&p.page_shift.to_le_bytes());
        out.extend_from_slice(&p.flags.to_le_bytes());
        out.extend_from_slice(&p.offset.to_le_bytes());
        out.extend_from_slice(&p.size.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for &(index, tce) in &self.entries {
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&tce.to_le_bytes());
        }
        out
    }

    /// Decodes and checks a saved table.
    pub fn from_bytes(bytes: &[u8]) -> Result<SavedTable> {
        let have = bytes.len() as u64;
        let magic_len = MAGIC.len().min(bytes.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(Error::BadMagic);
        }
        if bytes.len() < MAGIC.len() {
            return Err(Error::Truncated {
                what: "magic number",
                needed: MAGIC.len() as u64,
                have,
            });
        }
        if bytes.len() < 12 {
            return Err(Error::Truncated {
                what: "format version",
                needed: 4,
                have: have - 8,
            });
        }
        let version = u32_at(bytes, 8);
        if version != VERSION {
            return Err(Error::UnknownVersion {
                version,
                known: VERSION,
            });
        }
        if bytes.len() < HEADER_BYTES {
            return Err(Error::Truncated {
                what: "header",
                needed: HEADER_BYTES as u64,
                have,
            });
        }
        let flags = u32_at(bytes, 12);
        if flags != 0 {
            return Err(Error::UnknownFlags { flags });
        }
        let params = WindowParams {
            liobn: u64_at(bytes, 16),
            page_shift: u32_at(bytes, 24),
            flags: u32_at(bytes, 28),
            offset: u64_at(bytes, 32),
            size: u64_at(bytes, 40),
        };
        validate(&params)?;
        let count = u64_at(bytes, 48);
        let body = &bytes[HEADER_BYTES..];
        let needed = count.saturating_mul(ENTRY_BYTES as u64);
        let rest = body.len() as u64;
        if rest < needed {
            return Err(Error::Truncated {
                what: "entry list",
                needed,
                have: rest,
            });
        }
        if rest > needed {
            return Err(Error::TrailingBytes {
                count: rest - needed,
            });
        }
        let entries: Vec<(u64, u64)> = body
            .chunks_exact(ENTRY_BYTES)
            .map(|e| (u64_at(e, 0), u64_at(e, 8)))
            .collect();
        check_entries(&entries, params.size)?;
        Ok(SavedTable { params, entries })
    }

    /// Reads and decodes a saved table from a file.
    pub fn read_file(path: &Path) -> Result<SavedTable> {
        let bytes = std::fs::read(path).map_err(|source| Error::ReadFile {
            path: path.into(),
            source,
        })?;
        SavedTable::from_bytes(&bytes)
    }

    /// Encodes the table into a file, replacing it.
    pub fn write_file(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()).map_err(|source| Error::WriteFile {
            path: path.into(),
            source,
        })
    }
}

/// Saves a table: its parameters and its non-zero entries, read from the pages that exist only.
///
/// A page the table never allocated is neither read nor faulted in, so saving an untouched
/// 2^31-entry window reads nothing.
pub fn save<T: Table + ?Sized>(table: &T) -> Result<SavedTable> {
    save_with_stats(table).map(|(saved, _)| saved)
}

/// Like [`save`], and also reports how many pages were read.
pub fn save_with_stats<T: Table + ?Sized>(table: &T) -> Result<(SavedTable, SaveStats)> {
    let params = table.params();
    let per_page = table.entries_per_page();
    let mut stats = SaveStats::default();
    let mut pages = vec![0u64; PAGES_PER_CALL];
    let mut words = vec![0u64; per_page as usize];
    let mut entries = Vec::new();
    let mut start = 0;
    loop {
        let n = table.existing_pages(start, &mut pages)?;
        stats.list_calls += 1;
        for &page in &pages[..n] {
            let count = table.read_page(page, &mut words)?;
            stats.pages_read += 1;
            let first = page * per_page;
            entries.extend(
                words[..count]
                    .iter()
                    .enumerate()
                    .filter(|(_, &tce)| tce != 0)
                    .map(|(i, &tce)| (first + i as u64, tce)),
            );
        }
        if n < pages.len() {
            break;
        }
        start = pages[n - 1] + 1;
    }
    Ok((SavedTable::new(params, entries)?, stats))
}

/// Writes the saved entries into `table`, which must have the saved parameters (the LIOBN
/// aside) and should be empty; only the saved entries are written.
pub fn write_entries<T: Table + ?Sized>(table: &T, saved: &SavedTable) -> Result<()> {
    for &(index, tce) in saved.entries() {
        table.write(index, tce)?;
    }
    Ok(())
}

/// Restores a saved table into a new table of `tables`, under the saved LIOBN.
///
/// Only the saved entries are written, so only their pages are allocated. On failure the new
/// table is removed again.
pub fn restore<S: Tables + ?Sized>(tables: &mut S, saved: &SavedTable) -> Result<S::Table> {
    restore_as(tables, saved, saved.params.liobn)
}

/// Like [`restore`], under another LIOBN.
pub fn restore_as<S: Tables + ?Sized>(
    tables: &mut S,
    saved: &SavedTable,
    liobn: u64,
) -> Result<S::Table> {
    let params = WindowParams {
        liobn,
        ..saved.params
    };
    tables.create(params)?;
    let result = tables
        .table(liobn)
        .and_then(|table| write_entries(&table, saved).map(|()| table));
    if result.is_err() {
        let _ = tables.remove(liobn);
    }
    result
}
