// SPDX-License-Identifier: GPL-2.0
//! The `dump`, `save` and `restore` commands, and how VMs and tables are found.

use std::fs::File;
use std::io::{
    self,
    BufRead,
    BufReader,
    BufWriter,
    Write, //
};
use std::os::fd::AsRawFd;
use std::path::Path;

use tce_engine::env::Host;
use tce_model::{
    host::SimHost,
    machine::Machine,
    trace::Session, //
};
use tce_shim::kernel::{
    create_vm_of_type,
    take_fd, //
};
use tce_shim::table::describe;
use tce_shim::{
    saved,
    Error,
    KernelTable,
    KernelTables,
    SavedTable,
    SimTable,
    SimTables,
    Table,
    TableInfo,
    WindowParams, //
};

use crate::cli::{
    DumpArgs,
    RestoreArgs,
    SaveArgs,
    TableSource,
    VmArgs, //
};
use crate::{
    Failure,
    Outcome, //
};

/// The tables of the VM a command works on.
pub enum Vm {
    /// A simulated VM in this process.
    Sim(SimTables),
    /// A KVM VM's tables: the module's, or KVM's own where the module is not loaded.
    Kernel(KernelTables),
}

/// Opens the VM that the options name: a live VMM's, a new one, or a simulated one.
pub fn open_vm(args: &VmArgs) -> Result<Vm, Failure> {
    if let (Some(pid), Some(fd)) = (args.vm_pid, args.vm_fd) {
        let vm = take_fd(pid, fd)?;
        return Ok(Vm::Kernel(KernelTables::open(vm)?));
    }
    if args.new_vm {
        let vm = create_vm_of_type(args.vm_type)?;
        return Ok(Vm::Kernel(KernelTables::open(vm)?));
    }
    let host = match args.locked_limit {
        Some(limit) => SimHost::with_limit(args.host_page_shift, limit),
        None => SimHost::new(args.host_page_shift),
    };
    Ok(Vm::Sim(SimTables::new(host)))
}

/// Replays a tce-sim trace and returns the session, which holds the machine it built.
pub fn replay(path: &Path, host_page_shift: u32) -> Result<Session, Failure> {
    let name = path.display().to_string();
    let input: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(path).map_err(|source| Error::ReadFile {
            path: path.into(),
            source,
        })?;
        Box::new(BufReader::new(file))
    };
    let mut session = Session::new(Machine::new(SimHost::new(host_page_shift)));
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|source| Error::ReadFile {
            path: path.into(),
            source,
        })?;
        session
            .line(&line)
            .map_err(|e| Failure::Usage(format!("{name}: line {}: {e}", n + 1)))?;
    }
    Ok(session)
}

/// Runs `f` on the table that `source` names.
fn with_table(source: &TableSource, f: &mut dyn FnMut(&dyn Table) -> Outcome) -> Outcome {
    if let (Some(pid), Some(fd)) = (source.table_pid, source.table_fd) {
        let table = KernelTable::from_fd(take_fd(pid, fd)?)?;
        return f(&table);
    }
    let (Some(trace), Some(liobn)) = (&source.sim_trace, source.liobn) else {
        return Err(Failure::Usage(
            "name a table with --table-pid and --table-fd, or with --sim-trace and --liobn".into(),
        ));
    };
    let session = replay(trace, source.host_page_shift)?;
    let machine = session.machine();
    let window = machine
        .window(liobn)
        .ok_or(Error::UnknownLiobn { liobn })
        .map_err(|e| {
            Failure::Error(
                e,
                Some(format!(
                    "the trace {} creates no table with that LIOBN",
                    trace.display()
                )),
            )
        })?;
    let table = SimTable::new(window, machine.host().page_shift());
    f(&table)
}

/// Formats a size in bytes with a binary unit.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut v = n;
    while v >= 1024 && v % 1024 == 0 && unit + 1 < UNITS.len() {
        v /= 1024;
        unit += 1;
    }
    format!("{v} {}", UNITS[unit])
}

/// Prints the window's parameters.
fn print_window(out: &mut dyn Write, p: &WindowParams) -> io::Result<()> {
    writeln!(out, "LIOBN        {:#x}", p.liobn)?;
    writeln!(
        out,
        "IOMMU pages  {} (page shift {})",
        bytes(1u64 << p.page_shift),
        p.page_shift
    )?;
    writeln!(
        out,
        "bus address  {:#018x} (first entry {:#x})",
        p.offset << p.page_shift,
        p.offset
    )?;
    writeln!(out, "entries      {:#x} ({})", p.size, p.size)
}

/// Prints the table's memory use.
fn print_memory(out: &mut dyn Write, info: &TableInfo) -> io::Result<()> {
    writeln!(
        out,
        "host pages   {} present of {}, {} each; {} charged to locked memory",
        info.present_pages,
        info.mapping_pages,
        bytes(info.host_page_size),
        info.locked_pages
    )
}

/// Prints the populated entries, `index tce` per line.
fn print_entries(out: &mut dyn Write, saved: &SavedTable) -> io::Result<()> {
    writeln!(out, "populated    {}", saved.entries().len())?;
    writeln!(out, "index tce")?;
    for &(index, tce) in saved.entries() {
        writeln!(out, "{index:#x} {tce:#018x}")?;
    }
    Ok(())
}

/// Writes to standard output, failing quietly on a closed pipe.
fn stdout_write(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Outcome {
    let mut out = BufWriter::new(io::stdout().lock());
    let r = f(&mut out).and_then(|()| out.flush());
    match r {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::WriteFile {
            path: "standard output".into(),
            source: e,
        }
        .into()),
        _ => Ok(()),
    }
}

/// Prints a table: window, memory and populated entries.
pub fn print_table(table: &dyn Table) -> Outcome {
    let info = table.info()?;
    let saved = saved::save(table)?;
    stdout_write(|out| {
        print_window(out, &info.params)?;
        print_memory(out, &info)?;
        print_entries(out, &saved)
    })
}

/// `tce-ddw dump`.
pub fn dump(args: DumpArgs) -> Outcome {
    if let Some(path) = &args.saved {
        let saved = SavedTable::read_file(path)?;
        return stdout_write(|out| {
            print_window(out, saved.params())?;
            writeln!(
                out,
                "saved        {} bytes; a dense copy would be {}",
                saved.encoded_len(),
                bytes(saved.dense_bytes())
            )?;
            print_entries(out, &saved)
        });
    }
    with_table(&args.source, &mut |table| print_table(table))
}

/// `tce-ddw save`.
pub fn save(args: SaveArgs) -> Outcome {
    with_table(&args.source, &mut |table| {
        let (saved, stats) = saved::save_with_stats(table)?;
        saved.write_file(&args.output)?;
        stdout_write(|out| {
            writeln!(
                out,
                "saved LIOBN {:#x} to {}: {} entries from {} host pages, {} bytes (a dense copy would be {})",
                saved.params().liobn,
                args.output.display(),
                saved.entries().len(),
                stats.pages_read,
                saved.encoded_len(),
                bytes(saved.dense_bytes())
            )
        })
    })
}

/// Says what a restore did.
fn print_restored(out: &mut dyn Write, saved: &SavedTable, info: &TableInfo) -> io::Result<()> {
    writeln!(
        out,
        "restored {} entries into a new table for LIOBN {:#x} ({}); {} host pages allocated",
        saved.entries().len(),
        info.params.liobn,
        describe(&info.params),
        info.present_pages
    )
}

/// `tce-ddw restore`.
pub fn restore(args: RestoreArgs) -> Outcome {
    let saved = SavedTable::read_file(&args.input)?;
    let liobn = args.liobn.unwrap_or(saved.params().liobn);
    let busy_hint = |e: Error| match e {
        Error::LiobnBusy { .. } => Failure::Error(
            e,
            Some("give the new table another LIOBN with --liobn".into()),
        ),
        e => e.into(),
    };
    match open_vm(&args.vm)? {
        Vm::Sim(mut tables) => {
            let table = saved::restore_as(&mut tables, &saved, liobn).map_err(busy_hint)?;
            let info = table.info()?;
            stdout_write(|out| print_restored(out, &saved, &info))?;
            if args.dump {
                print_table(&table)?;
            }
            Ok(())
        }
        Vm::Kernel(mut tables) => {
            let table = saved::restore_as(&mut tables, &saved, liobn).map_err(busy_hint)?;
            let info = table.info()?;
            stdout_write(|out| {
                print_restored(out, &saved, &info)?;
                writeln!(
                    out,
                    "the table is file descriptor {} of process {}",
                    table.fd().as_raw_fd(),
                    std::process::id()
                )
            })?;
            if args.dump {
                print_table(&table)?;
            }
            if args.hold {
                eprintln!("tce-ddw: holding the table until standard input is closed");
                let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_exact_binary_units() {
        assert_eq!(bytes(56), "56 bytes");
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(bytes(16 << 30), "16 GiB");
        assert_eq!(bytes(1536), "1536 bytes");
    }

    #[test]
    fn a_simulated_vm_is_the_default() {
        let args = VmArgs {
            sim: false,
            host_page_shift: 12,
            locked_limit: None,
            vm_pid: None,
            vm_fd: None,
            new_vm: false,
            vm_type: 0,
        };
        assert!(matches!(open_vm(&args), Ok(Vm::Sim(_))));
    }
}
