// SPDX-License-Identifier: GPL-2.0

//! `tce-sim`: replays a TCE hypercall trace against the real engine on a simulated host.

use std::io::{
    self,
    BufRead,
    BufWriter,
    Write, //
};
use std::process::ExitCode;

use tce_model::{
    host::SimHost,
    machine::Machine,
    trace::{
        parse_number,
        Session, //
    },
};

const USAGE: &str = "\
usage: tce-sim [--host-page-shift N] [--locked-limit BYTES] [FILE]

Replays a TCE hypercall trace (FILE, or standard input) against the tce-accel
engine on a simulated POWER host and prints one line per command.
See Documentation/tce-sim.rst for the commands.

options:
  --host-page-shift N     host page size 1 << N bytes (12 to 24; default 16)
  --locked-limit BYTES    locked-memory limit for tables (default: none)
  -h, --help              print this help";

struct Options {
    page_shift: u32,
    limit: Option<u64>,
    file: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        page_shift: 16,
        limit: None,
        file: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--host-page-shift" => {
                let v = value("--host-page-shift")?;
                let n = parse_number(&v).map_err(|e| format!("--host-page-shift: {e}"))?;
                if !(12..=24).contains(&n) {
                    return Err(format!("--host-page-shift: {n} is not between 12 and 24"));
                }
                o.page_shift = n as u32;
            }
            "--locked-limit" => {
                let v = value("--locked-limit")?;
                o.limit = Some(parse_number(&v).map_err(|e| format!("--locked-limit: {e}"))?);
            }
            s if s.starts_with('-') && s != "-" => return Err(format!("unknown option `{s}`")),
            _ if o.file.is_some() => return Err("more than one trace file given".into()),
            _ => o.file = Some(arg),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tce-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let host = match o.limit {
        Some(l) => SimHost::with_limit(o.page_shift, l),
        None => SimHost::new(o.page_shift),
    };
    let name = o.file.clone().unwrap_or_else(|| "<stdin>".into());
    let input: Box<dyn BufRead> = match o.file.as_deref() {
        None | Some("-") => Box::new(io::stdin().lock()),
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => Box::new(io::BufReader::new(f)),
            Err(e) => {
                eprintln!("tce-sim: cannot open {path}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let mut session = Session::new(Machine::new(host));
    let mut out = BufWriter::new(io::stdout().lock());
    let mut malformed = false;
    for (n, line) in input.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tce-sim: {name}: line {}: cannot read: {e}", n + 1);
                return ExitCode::from(2);
            }
        };
        let printed = match session.line(&line) {
            Ok(None) => continue,
            Ok(Some(s)) => s,
            Err(e) => {
                malformed = true;
                let _ = out.flush();
                eprintln!("tce-sim: {name}: line {}: {e}", n + 1);
                "error EPARSE".into()
            }
        };
        if writeln!(out, "{printed}").is_err() {
            return ExitCode::from(2);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(2);
    }
    if malformed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
