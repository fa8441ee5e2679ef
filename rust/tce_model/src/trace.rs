// SPDX-License-Identifier: GPL-2.0

//! The `tce-sim` trace language: one command per line, one line of output per command.
//!
//! See `Documentation/tce-sim.rst` for the language. [`Session::line`] parses one line, runs it
//! on a [`Machine`] and returns what to print; a malformed line returns a [`ParseError`] that
//! names the problem, and the caller prints `error EPARSE`.

use std::fmt;

use tce_ddw_model::{
    RtasCall,
    RtasStatus, //
};
use tce_engine::{
    tce::HcallResult,
    window::WindowParams, //
};

use crate::machine::{
    Errno,
    Machine, //
};

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parses a decimal or `0x` hexadecimal number of up to 64 bits.
pub fn parse_number(s: &str) -> Result<u64, ParseError> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16)
        }
        Some(_) => return Err(ParseError(format!("`{s}` is not a hexadecimal number"))),
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse(),
        None => return Err(ParseError(format!("`{s}` is not a number"))),
    };
    r.map_err(|_| ParseError(format!("`{s}` does not fit in 64 bits")))
}

/// The words of one command after its name.
struct Args<'a> {
    cmd: &'a str,
    words: Vec<&'a str>,
}

impl<'a> Args<'a> {
    /// Checks the argument count: exactly `n`.
    fn exactly(&self, n: usize, usage: &str) -> Result<(), ParseError> {
        if self.words.len() != n {
            return Err(ParseError(format!(
                "`{}` takes {n} argument{}, got {}: usage: {usage}",
                self.cmd,
                if n == 1 { "" } else { "s" },
                self.words.len()
            )));
        }
        Ok(())
    }

    fn num(&self, i: usize) -> Result<u64, ParseError> {
        parse_number(self.words[i])
    }

    fn u32(&self, i: usize) -> Result<u32, ParseError> {
        u32::try_from(self.num(i)?)
            .map_err(|_| ParseError(format!("`{}` does not fit in 32 bits", self.words[i])))
    }

    fn nums(&self, from: usize) -> Result<Vec<u64>, ParseError> {
        self.words[from..].iter().map(|w| parse_number(w)).collect()
    }
}

fn status(r: Result<(), Errno>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("error {}", e.name()),
    }
}

fn hcall(r: HcallResult) -> String {
    match r {
        Ok(()) => "H_SUCCESS".into(),
        Err(e) => e.name().into(),
    }
}

fn rtas_cells(status: RtasStatus, rets: &[u32]) -> String {
    let mut out = status.code().to_string();
    if status == RtasStatus::Success {
        for c in &rets[1..] {
            out.push_str(&format!(" 0x{c:08x}"));
        }
    }
    out
}

/// A machine and the commands run on it.
pub struct Session {
    machine: Machine,
}

impl Session {
    /// A session on `machine`.
    pub fn new(machine: Machine) -> Self {
        Self { machine }
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Runs one line. `Ok(None)` for a blank or comment line, `Ok(Some(output))` for a command.
    pub fn line(&mut self, line: &str) -> Result<Option<String>, ParseError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        let mut it = line.split_whitespace();
        let cmd = it.next().unwrap_or_default();
        let a = Args {
            cmd,
            words: it.collect(),
        };
        let m = &mut self.machine;
        let out = match cmd {
            "ram" => {
                a.exactly(2, "ram <gpa> <bytes>")?;
                status(m.ram(a.num(0)?, a.num(1)?))
            }
            "write64" => {
                if a.words.len() < 2 {
                    return Err(ParseError("`write64` takes an address and at least one value: usage: write64 <gpa> <v> [<v> ...]".into()));
                }
                status(m.write64(a.num(0)?, &a.nums(1)?))
            }
            "prereg" => {
                a.exactly(3, "prereg <gpa> <bytes> <page_shift>")?;
                status(m.prereg(a.num(0)?, a.num(1)?, a.u32(2)?))
            }
            "create" => {
                a.exactly(4, "create <liobn> <page_shift> <offset> <size>")?;
                status(m.create(WindowParams::new(
                    a.num(0)?,
                    a.u32(1)?,
                    a.num(2)?,
                    a.num(3)?,
                )))
            }
            "remove" => {
                a.exactly(1, "remove <liobn>")?;
                status(m.remove(a.num(0)?))
            }
            "put" => {
                a.exactly(3, "put <liobn> <ioba> <tce>")?;
                hcall(m.put(a.num(0)?, a.num(1)?, a.num(2)?))
            }
            "indirect" => {
                a.exactly(4, "indirect <liobn> <ioba> <tce_list_gpa> <npages>")?;
                hcall(m.indirect(a.num(0)?, a.num(1)?, a.num(2)?, a.num(3)?))
            }
            "stuff" => {
                a.exactly(4, "stuff <liobn> <ioba> <value> <npages>")?;
                hcall(m.stuff(a.num(0)?, a.num(1)?, a.num(2)?, a.num(3)?))
            }
            "get" => {
                a.exactly(2, "get <liobn> <ioba>")?;
                match m.get(a.num(0)?, a.num(1)?) {
                    Ok(v) => format!("H_SUCCESS 0x{v:016x}"),
                    Err(e) => e.name().into(),
                }
            }
            "pages" => {
                a.exactly(1, "pages <liobn>")?;
                match m.pages(a.num(0)?) {
                    Some(n) => n.to_string(),
                    None => "error ENOENT".into(),
                }
            }
            "hw" => {
                a.exactly(
                    5,
                    "hw <id> <page_shift> <bus_offset> <window_bytes> <levels>",
                )?;
                status(m.hw(a.num(0)?, a.u32(1)?, a.num(2)?, a.num(3)?, a.u32(4)?))
            }
            "attach" => {
                a.exactly(2, "attach <liobn> <id>")?;
                status(m.attach(a.num(0)?, a.num(1)?))
            }
            "hwget" => {
                a.exactly(2, "hwget <id> <index>")?;
                match m.hw_table(a.num(0)?) {
                    None => "error ENOENT".into(),
                    Some(t) => match t.raw(a.num(1)?) {
                        Some(v) => format!("0x{v:016x}"),
                        None => "error EINVAL".into(),
                    },
                }
            }
            "hwlevels" => {
                a.exactly(1, "hwlevels <id>")?;
                match m.hw_table(a.num(0)?) {
                    None => "error ENOENT".into(),
                    Some(t) => t.level_pages().to_string(),
                }
            }
            "phb" => {
                a.exactly(2, "phb <buid> <liobn_base>")?;
                status(m.phb(a.num(0)?, a.num(1)?))
            }
            "rtas" => return self.rtas(&a).map(Some),
            _ => return Err(ParseError(format!("unknown command `{cmd}`"))),
        };
        Ok(Some(out))
    }

    fn rtas(&mut self, a: &Args<'_>) -> Result<String, ParseError> {
        let Some((&sub, _)) = a.words.split_first() else {
            return Err(ParseError(
                "`rtas` needs a call: query, create, remove or reset".into(),
            ));
        };
        let sub_args = Args {
            cmd: a.cmd,
            words: a.words[1..].to_vec(),
        };
        let (call, nargs, nret, usage) = match sub {
            "query" => (
                RtasCall::Query,
                3,
                5,
                "rtas query <config> <buid_hi> <buid_lo>",
            ),
            "create" => (
                RtasCall::Create,
                5,
                4,
                "rtas create <config> <buid_hi> <buid_lo> <page_shift> <window_shift>",
            ),
            "remove" => (RtasCall::Remove, 1, 1, "rtas remove <liobn>"),
            "reset" => (
                RtasCall::Reset,
                3,
                1,
                "rtas reset <config> <buid_hi> <buid_lo>",
            ),
            _ => {
                return Err(ParseError(format!(
                    "unknown RTAS call `{sub}`: expected query, create, remove or reset"
                )))
            }
        };
        if sub_args.words.len() != nargs {
            return Err(ParseError(format!(
                "`rtas {sub}` takes {nargs} argument{}, got {}: usage: {usage}",
                if nargs == 1 { "" } else { "s" },
                sub_args.words.len()
            )));
        }
        let args = (0..nargs)
            .map(|i| sub_args.u32(i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rets = vec![0u32; nret];
        let st = self.machine.rtas(call, &args, &mut rets);
        Ok(rtas_cells(st, &rets))
    }
}
