// SPDX-License-Identifier: GPL-2.0
//! `tce-ddw`: dynamic DMA window RTAS calls, TCE table dumps, sparse save and restore, and a benchmark.

mod alloc;
mod bench;
mod cli;
mod rtas;
mod tables;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{
    Cli,
    Command, //
};

/// Counts the heap this process uses, so that the benchmark can measure a window's memory.
#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// Why a command failed.
pub enum Failure {
    /// The command line or an input script is wrong: exit status 2.
    Usage(String),
    /// The operation failed: exit status 1. The error, and an optional hint for the administrator.
    Error(tce_shim::Error, Option<String>),
}

impl From<tce_shim::Error> for Failure {
    fn from(e: tce_shim::Error) -> Self {
        Failure::Error(e, None)
    }
}

/// The result of a command.
pub type Outcome = Result<(), Failure>;

pub use tce_sys::errno::chain;

/// Parses the command line; a usage error is printed as `tce-ddw: <reason>` with exit status 2.
fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        // Help and version go to standard output with status 0, as clap prints them.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            eprint!("tce-ddw: {text}");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let outcome = match cli.command {
        Command::Rtas(args) => rtas::run(args),
        Command::Dump(args) => tables::dump(args),
        Command::Save(args) => tables::save(args),
        Command::Restore(args) => tables::restore(args),
        Command::Bench(args) => bench::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("tce-ddw: {msg}");
            eprintln!("Run `tce-ddw --help` for the commands and their options.");
            ExitCode::from(2)
        }
        Err(Failure::Error(e, hint)) => {
            eprintln!("tce-ddw: {}", chain(&e));
            if let Some(hint) = hint {
                eprintln!("tce-ddw: hint: {hint}");
            }
            ExitCode::from(1)
        }
    }
}
