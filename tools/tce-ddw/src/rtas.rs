// SPDX-License-Identifier: GPL-2.0
//! The `rtas` command: DDW RTAS calls through the shim, printed as tce-sim prints them.

use std::fs;
use std::io::{
    self,
    Read,
    Write, //
};
use std::path::Path;

use tce_ddw_model::{
    cells,
    PhbDesc,
    RtasCall,
    RtasStatus, //
};
use tce_shim::{
    Error,
    Shim,
    Tables, //
};

use crate::cli::{
    cell,
    CallName,
    RtasArgs, //
};
use crate::tables::{
    bytes,
    open_vm,
    Vm, //
};
use crate::{
    chain,
    Failure,
    Outcome, //
};

/// One call to make: which, its argument cells and how many return cells.
struct Request {
    call: RtasCall,
    cells: Vec<u32>,
    nret: Option<usize>,
}

/// Maps a command-line call name to the RTAS call.
fn rtas_call(name: CallName) -> RtasCall {
    match name {
        CallName::Query => RtasCall::Query,
        CallName::Create => RtasCall::Create,
        CallName::Remove => RtasCall::Remove,
        CallName::Reset => RtasCall::Reset,
    }
}

/// The argument cells of each call, for notes.
fn usage(call: RtasCall) -> &'static str {
    match call {
        RtasCall::Query | RtasCall::Reset => "config address, BUID hi, BUID lo",
        RtasCall::Create => "config address, BUID hi, BUID lo, page shift, window shift",
        RtasCall::Remove => "LIOBN",
    }
}

/// The number of return cells a call asks for by default.
fn default_nret(call: RtasCall) -> usize {
    match call {
        RtasCall::Query => 5,
        RtasCall::Create => 4,
        RtasCall::Remove | RtasCall::Reset => 1,
    }
}

/// Parses one script line: `<call>[:<nret>] <cell>...`.
fn parse_line(line: &str) -> Result<Option<Request>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let head = words.next().unwrap_or_default();
    let (name, nret) = match head.split_once(':') {
        Some((name, n)) => {
            let n = cell(n)?;
            if n > 8 {
                return Err(format!("{n} return cells is more than any call takes"));
            }
            (name, Some(n as usize))
        }
        None => (head, None),
    };
    let call = match name {
        "query" => RtasCall::Query,
        "create" => RtasCall::Create,
        "remove" => RtasCall::Remove,
        "reset" => RtasCall::Reset,
        _ => {
            return Err(format!(
                "`{name}` is not a DDW call: use query, create, remove or reset"
            ))
        }
    };
    let cells = words.map(cell).collect::<Result<Vec<u32>, String>>()?;
    Ok(Some(Request { call, cells, nret }))
}

/// Reads the calls of a script file (`-` for standard input).
fn read_script(path: &Path) -> Result<Vec<Request>, Failure> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        io::stdin()
            .read_to_string(&mut s)
            .map(|_| s)
            .map_err(|source| Error::ReadFile {
                path: path.into(),
                source,
            })?
    } else {
        fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.into(),
            source,
        })?
    };
    let mut requests = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(r)) => requests.push(r),
            Ok(None) => {}
            Err(e) => {
                return Err(Failure::Usage(format!(
                    "{}: line {}: {e}",
                    path.display(),
                    n + 1
                )))
            }
        }
    }
    Ok(requests)
}

/// Formats the return cells as tce-sim does: the status, then the cells on success.
pub fn format_rets(status: RtasStatus, rets: &[u32]) -> String {
    let mut out = status.code().to_string();
    if status == RtasStatus::Success {
        for c in rets.iter().skip(1) {
            out.push_str(&format!(" 0x{c:08x}"));
        }
    }
    out
}

/// Explains on standard error why a call's counts make it fail.
fn count_notes(call: RtasCall, nargs: usize, nret: usize) {
    if nargs != call.nargs() {
        eprintln!(
            "tce-ddw: note: {} takes {} argument cells ({}), {} given: the call fails with a parameter error",
            call.name(),
            call.nargs(),
            usage(call),
            nargs
        );
    }
    if !call.accepts_nret(nret) {
        let takes = match call {
            RtasCall::Query => "5 or 6",
            RtasCall::Create => "4",
            RtasCall::Remove | RtasCall::Reset => "1",
        };
        eprintln!(
            "tce-ddw: note: {} returns {takes} cells, {nret} asked for: the call fails with a parameter error",
            call.name()
        );
    }
}

/// Runs the calls on one backend.
fn run_on<T: Tables>(tables: T, args: &RtasArgs, requests: &[Request]) -> Outcome {
    let desc = PhbDesc::simulator_default(args.buid, args.liobn_base);
    let mut shim = Shim::with_phbs(tables, &[desc]).map_err(|e| match e {
        Error::LiobnBusy { .. } => Failure::Error(
            e,
            Some("the VM already uses that LIOBN; choose unused LIOBNs with --liobn-base".into()),
        ),
        e => e.into(),
    })?;
    let mut out = io::stdout().lock();
    for r in requests {
        let nret = r.nret.unwrap_or_else(|| default_nret(r.call));
        count_notes(r.call, r.cells.len(), nret);
        // Through big-endian buffers, as the cells sit in guest memory.
        let args_be: Vec<u8> = r.cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        let mut rets_be = vec![0u8; 4 * nret];
        let status = shim.call_be(r.call, &args_be, &mut rets_be)?;
        let mut rets = vec![0u32; nret];
        cells::decode_cells(&rets_be, &mut rets).map_err(|_| Error::RtasBuffer {
            reason: "cannot be decoded",
        })?;
        if let Some(e) = shim.take_backend_error() {
            eprintln!("tce-ddw: note: {}", chain(&e));
        }
        let _ = writeln!(out, "{}", format_rets(status, &rets));
    }
    if args.windows {
        for w in shim.windows() {
            let _ = writeln!(
                out,
                "window {:#x}: slot {}, {} pages, bus address {:#018x}, {:#x} entries{}",
                w.liobn,
                w.slot,
                bytes(1 << w.page_shift),
                w.bus_offset,
                w.entries,
                if w.is_default { " (default)" } else { "" }
            );
        }
    }
    Ok(())
}

/// `tce-ddw rtas`.
pub fn run(args: RtasArgs) -> Outcome {
    let requests = match (&args.script, args.call) {
        (Some(path), _) => read_script(path)?,
        (None, Some(name)) => vec![Request {
            call: rtas_call(name),
            cells: args.cells.clone(),
            nret: args.nret.map(|n| n as usize),
        }],
        (None, None) => return Err(Failure::Usage("name a call or give --script".into())),
    };
    match open_vm(&args.vm)? {
        Vm::Sim(tables) => run_on(tables, &args, &requests),
        Vm::Kernel(tables) => run_on(tables, &args, &requests),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lines_parse() {
        assert!(parse_line("  # comment").unwrap().is_none());
        assert!(parse_line("").unwrap().is_none());
        let r = parse_line("create 0 0x8000000 0x20000000 12 43")
            .unwrap()
            .unwrap();
        assert_eq!(r.call, RtasCall::Create);
        assert_eq!(r.cells, [0, 0x800_0000, 0x2000_0000, 12, 43]);
        assert_eq!(r.nret, None);
        let r = parse_line("query:6 0 1 2").unwrap().unwrap();
        assert_eq!((r.call, r.nret), (RtasCall::Query, Some(6)));
        assert!(parse_line("query:9 0 1 2").is_err());
        assert!(parse_line("remove -1").is_err());
        assert!(parse_line("nope 1").is_err());
    }

    #[test]
    fn return_cells_print_as_in_tce_sim() {
        assert_eq!(
            format_rets(RtasStatus::Success, &[0, 0x8000_0001, 0x800_0000, 0]),
            "0 0x80000001 0x08000000 0x00000000"
        );
        assert_eq!(
            format_rets(RtasStatus::ParameterError, &[u32::MAX - 2, 7]),
            "-3"
        );
        assert_eq!(format_rets(RtasStatus::HardwareError, &[]), "-1");
    }
}
