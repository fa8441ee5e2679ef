// SPDX-License-Identifier: GPL-2.0
//! Big-endian RTAS cell buffers, as a VMM reads and writes them in guest memory.
//!
//! RTAS passes every argument and return value as a 32-bit big-endian cell.
//! The guest's argument buffer is laid out as `token`, `nargs`, `nret`, then
//! `nargs` argument cells, then `nret` return cells.

/// The size of one RTAS cell in bytes.
pub const CELL_BYTES: usize = 4;

/// The size of the RTAS buffer header (`token`, `nargs`, `nret`) in bytes.
pub const HEADER_BYTES: usize = 3 * CELL_BYTES;

/// Why a byte buffer cannot be read as RTAS cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CellError {
    /// The buffer's length is not a whole number of cells.
    Misaligned,
    /// The buffer, or the cell array it is decoded into, is too short.
    TooShort,
}

/// Returns the number of cells in `bytes`, which must be a whole number.
pub const fn cell_count(bytes: &[u8]) -> Result<usize, CellError> {
    if bytes.len() % CELL_BYTES != 0 {
        return Err(CellError::Misaligned);
    }
    Ok(bytes.len() / CELL_BYTES)
}

/// Reads cell `index` of `bytes`, or `None` if the buffer ends before it.
pub fn read_cell(bytes: &[u8], index: usize) -> Option<u32> {
    let start = index.checked_mul(CELL_BYTES)?;
    let cell = bytes.get(start..start.checked_add(CELL_BYTES)?)?;
    let mut raw = [0; CELL_BYTES];
    raw.copy_from_slice(cell);
    Some(u32::from_be_bytes(raw))
}

/// Writes `value` into cell `index` of `bytes`.
pub fn write_cell(bytes: &mut [u8], index: usize, value: u32) -> Result<(), CellError> {
    let start = index.checked_mul(CELL_BYTES).ok_or(CellError::TooShort)?;
    let end = start.checked_add(CELL_BYTES).ok_or(CellError::TooShort)?;
    let cell = bytes.get_mut(start..end).ok_or(CellError::TooShort)?;
    cell.copy_from_slice(&value.to_be_bytes());
    Ok(())
}

/// Decodes every cell of `bytes` into the start of `out` and returns how many
/// there were.
pub fn decode_cells(bytes: &[u8], out: &mut [u32]) -> Result<usize, CellError> {
    let count = cell_count(bytes)?;
    let out = out.get_mut(..count).ok_or(CellError::TooShort)?;
    for (cell, raw) in out.iter_mut().zip(bytes.chunks_exact(CELL_BYTES)) {
        let mut buf = [0; CELL_BYTES];
        buf.copy_from_slice(raw);
        *cell = u32::from_be_bytes(buf);
    }
    Ok(count)
}

/// Encodes `cells` into the start of `out`.
pub fn encode_cells(cells: &[u32], out: &mut [u8]) -> Result<(), CellError> {
    let len = cells
        .len()
        .checked_mul(CELL_BYTES)
        .ok_or(CellError::TooShort)?;
    let out = out.get_mut(..len).ok_or(CellError::TooShort)?;
    for (raw, cell) in out.chunks_exact_mut(CELL_BYTES).zip(cells) {
        raw.copy_from_slice(&cell.to_be_bytes());
    }
    Ok(())
}

/// A guest's RTAS argument buffer split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub struct RtasFrame<'a> {
    /// The token the guest called (the VMM maps it to a call).
    pub token: u32,
    /// The `nargs` argument cells, still big-endian.
    pub args: &'a [u8],
    /// The `nret` return cells, still big-endian, to be written in place.
    pub rets: &'a mut [u8],
}

/// Splits a guest's RTAS buffer (`token`, `nargs`, `nret`, args, rets) into a
/// [`RtasFrame`]; bytes past the return cells are ignored.
///
/// A VMM typically reads the 12-byte header first, then reads
/// `HEADER_BYTES + 4 * (nargs + nret)` bytes and passes them here.
pub fn split_rtas_buffer(buf: &mut [u8]) -> Result<RtasFrame<'_>, CellError> {
    let header = |i| read_cell(buf, i).ok_or(CellError::TooShort);
    let token = header(0)?;
    let nargs = header(1)? as usize;
    let nret = header(2)? as usize;
    let args_len = nargs.checked_mul(CELL_BYTES).ok_or(CellError::TooShort)?;
    let rets_len = nret.checked_mul(CELL_BYTES).ok_or(CellError::TooShort)?;
    let total = args_len
        .checked_add(rets_len)
        .and_then(|n| n.checked_add(HEADER_BYTES))
        .ok_or(CellError::TooShort)?;
    let body = buf
        .get_mut(HEADER_BYTES..total)
        .ok_or(CellError::TooShort)?;
    let (args, rets) = body.split_at_mut(args_len);
    Ok(RtasFrame { token, args, rets })
}
