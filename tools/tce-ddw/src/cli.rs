// SPDX-License-Identifier: GPL-2.0
//! The command line: subcommands, options and their help texts.

use std::path::PathBuf;

use clap::{
    Args,
    Parser,
    Subcommand,
    ValueEnum, //
};

/// Parses a number as tce-sim does: decimal, or hexadecimal with `0x`.
pub fn number(s: &str) -> Result<u64, String> {
    tce_model::trace::parse_number(s).map_err(|e| e.to_string())
}

/// Parses a 32-bit RTAS cell or LIOBN.
pub fn cell(s: &str) -> Result<u32, String> {
    let n = number(s)?;
    u32::try_from(n).map_err(|_| format!("`{s}` does not fit in a 32-bit RTAS cell"))
}

/// Parses a host page shift for the simulated host.
fn host_page_shift(s: &str) -> Result<u32, String> {
    match number(s)? {
        n @ 12..=24 => Ok(n as u32),
        n => Err(format!("{n} is not between 12 and 24")),
    }
}

/// Parses a process ID or file descriptor number.
fn small(s: &str) -> Result<i32, String> {
    let n = number(s)?;
    i32::try_from(n).map_err(|_| format!("`{s}` is too large"))
}

/// Dynamic DMA windows of POWER guests: run the RTAS calls, inspect, save and restore TCE tables.
///
/// A POWER guest asks its hypervisor for DMA windows with four RTAS calls
/// (ibm,query-pe-dma-window, ibm,create-pe-dma-window, ibm,remove-pe-dma-window and
/// ibm,reset-pe-dma-window). Each window is backed by a TCE table of the tce_accel kernel module
/// (/dev/tce_accel), or, with --sim, by the same tables simulated in this process.
///
/// Numbers are decimal or hexadecimal with 0x. Errors are reported as `tce-ddw: <reason>` with
/// exit status 1; a wrong command line exits with status 2.
#[derive(Parser, Debug)]
#[command(name = "tce-ddw", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run DDW RTAS calls against a simulated VM or a live one, and print the return cells.
    Rtas(RtasArgs),
    /// Print a TCE table's window and its populated entries (`index tce` per line).
    Dump(DumpArgs),
    /// Save a TCE table's populated entries to a file, as a migration would send them.
    Save(SaveArgs),
    /// Restore a saved TCE table into a new table, simulated or in a live VM.
    Restore(RestoreArgs),
    /// Measure window creation (time and memory) and the size of a sparse migration.
    Bench(BenchArgs),
}

/// Which VM tables are created for.
#[derive(Args, Debug, Clone)]
pub struct VmArgs {
    /// Use a simulated VM in this process (the default). Its tables last as long as the command.
    #[arg(long, conflicts_with_all = ["vm_pid", "new_vm"])]
    pub sim: bool,

    /// Host page shift of the simulated host (12 to 24; 16 is 64 KiB pages, as on POWER servers).
    #[arg(long, value_name = "N", default_value = "16", value_parser = host_page_shift)]
    pub host_page_shift: u32,

    /// Locked-memory limit of the simulated VM, in bytes (default: none).
    #[arg(long, value_name = "BYTES", value_parser = number)]
    pub locked_limit: Option<u64>,

    /// The process ID of a running VMM whose VM to use (needs the right to trace it, e.g. root).
    #[arg(long, value_name = "PID", requires = "vm_fd", value_parser = small)]
    pub vm_pid: Option<i32>,

    /// The number of the VMM's KVM VM file descriptor (see `ls -l /proc/PID/fd`: anon_inode:kvm-vm).
    #[arg(long, value_name = "FD", requires = "vm_pid", value_parser = small)]
    pub vm_fd: Option<i32>,

    /// Create a new, empty KVM VM through /dev/kvm and use it.
    #[arg(long, conflicts_with = "vm_pid")]
    pub new_vm: bool,

    /// With --new-vm: the KVM machine type (0, the default, lets KVM choose; on POWER 1 is
    /// KVM-HV and 2 is KVM-PR).
    #[arg(long, value_name = "N", default_value = "0", value_parser = cell)]
    pub vm_type: u32,
}

/// The four DDW calls.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallName {
    /// ibm,query-pe-dma-window: <config> <buid_hi> <buid_lo>
    Query,
    /// ibm,create-pe-dma-window: <config> <buid_hi> <buid_lo> <page_shift> <window_shift>
    Create,
    /// ibm,remove-pe-dma-window: <liobn>
    Remove,
    /// ibm,reset-pe-dma-window: <config> <buid_hi> <buid_lo>
    Reset,
}

/// Arguments of `rtas`.
#[derive(Args, Debug)]
#[command(after_long_help = "\
Every argument is a 32-bit cell, passed to the call as given, so a wrong number of cells gets
the parameter error (-3) that a guest would see. The BUID is buid_hi << 32 | buid_lo and the
config address is ignored. The output is the return cells: the status first, in signed decimal
(0 success, -1 hardware error, -3 parameter error), then, on success, each further cell as
0x%08x, exactly as tce-sim prints them.

The PHB is the simulator's: DDW enabled, 4K, 64K, 2M and 16M pages, two window slots, a default
window of 1 GiB of 4K pages at bus address 0 (created at start, in slot 0), and new windows at
bus address 0 when no window is active, else at 1 << 59.

With --vm-pid/--vm-fd or --new-vm the tables are created in the tce_accel module for that VM,
and they exist only while tce-ddw runs: this tests the module and the VM, it does not change
the windows of the VMM, which has its own. Pick LIOBNs that the VMM does not use.

Examples:
  tce-ddw rtas query 0 0x8000000 0x20000000
  tce-ddw rtas --windows create 0 0x8000000 0x20000000 16 40
  printf 'remove 0x80000000\\ncreate 0 0x8000000 0x20000000 12 43\\n' | tce-ddw rtas --script -")]
pub struct RtasArgs {
    /// The VM.
    #[command(flatten)]
    pub vm: VmArgs,

    /// The PHB's BUID.
    #[arg(long, value_name = "BUID", default_value = "0x800000020000000", value_parser = number)]
    pub buid: u64,

    /// The LIOBN of the PHB's window slot 0; slot 1 is this plus one.
    #[arg(long, value_name = "LIOBN", default_value = "0x80000000", value_parser = cell)]
    pub liobn_base: u32,

    /// The number of return cells to ask for (default: 5 for query, 4 for create, 1 for remove
    /// and reset; query also takes 6).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=8))]
    pub nret: Option<u32>,

    /// Print the active windows after the calls.
    #[arg(long)]
    pub windows: bool,

    /// Read the calls from FILE (`-` for standard input), one per line: the call's name and its
    /// cells, as on the command line; `#` starts a comment line.
    #[arg(long, value_name = "FILE", conflicts_with = "call")]
    pub script: Option<PathBuf>,

    /// The call.
    #[arg(required_unless_present = "script")]
    pub call: Option<CallName>,

    /// The call's argument cells.
    #[arg(value_name = "CELL", value_parser = cell, allow_hyphen_values = false)]
    pub cells: Vec<u32>,
}

/// Where a table to read comes from.
#[derive(Args, Debug)]
pub struct TableSource {
    /// The process ID of a running VMM that holds the table (needs the right to trace it).
    #[arg(long, value_name = "PID", requires = "table_fd", value_parser = small)]
    pub table_pid: Option<i32>,

    /// The number of the table's file descriptor in that process (see `ls -l /proc/PID/fd`:
    /// anon_inode:kvm-spapr-tce on powerpc, anon_inode:tce-accel-table elsewhere).
    #[arg(long, value_name = "FD", requires = "table_pid", value_parser = small)]
    pub table_fd: Option<i32>,

    /// Instead, replay a tce-sim trace (`-` for standard input) and use one of its tables.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "table_pid",
        requires = "liobn"
    )]
    pub sim_trace: Option<PathBuf>,

    /// With --sim-trace: the LIOBN of the table.
    #[arg(long, value_name = "LIOBN", value_parser = number)]
    pub liobn: Option<u64>,

    /// With --sim-trace: the host page shift of the simulated host (12 to 24).
    #[arg(long, value_name = "N", default_value = "16", value_parser = host_page_shift)]
    pub host_page_shift: u32,
}

/// Arguments of `dump`.
#[derive(Args, Debug)]
#[command(after_long_help = "\
The table is taken from a running VMM with pidfd_getfd (--table-pid and --table-fd), from a
simulated machine built by a tce-sim trace (--sim-trace and --liobn), or from a file written by
`tce-ddw save` (--saved). Only the host pages that exist are read: dumping a huge, mostly
empty window neither reads nor allocates the pages the guest never used.

The output is the window (LIOBN, IOMMU page size, bus address, number of entries), the table's
memory, then one line per populated entry: the entry's index in the window and its TCE, both
in hexadecimal. An entry's bus address is (first entry + index) << page shift.")]
pub struct DumpArgs {
    /// The table.
    #[command(flatten)]
    pub source: TableSource,

    /// Instead, dump a saved table file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["table_pid", "sim_trace"])]
    pub saved: Option<PathBuf>,
}

/// Arguments of `save`.
#[derive(Args, Debug)]
#[command(after_long_help = "\
Only populated entries are saved, read from the pages that exist (TCE_ACCEL_TABLE_PAGES), so
saving a 2^31-entry window with a few mappings takes a few kilobytes instead of the 16 GiB a
dense copy needs. The file format is described in Documentation/tce-ddw.rst.")]
pub struct SaveArgs {
    /// The table.
    #[command(flatten)]
    pub source: TableSource,

    /// The file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Arguments of `restore`.
#[derive(Args, Debug)]
#[command(after_long_help = "\
A new table with the saved window is created and only the saved entries are written, so only
their pages are allocated. With --sim (the default) the table is simulated. With --vm-pid and
--vm-fd it is created in the tce_accel module for the VM of a running VMM (taken with
pidfd_getfd), and with --new-vm for a new, empty VM. Restoring into a live VMM is out of scope:
the new table belongs to tce-ddw, not to the VMM, and is freed when tce-ddw exits; --hold keeps
it until standard input is closed, so that it can be inspected with `tce-ddw dump`.")]
pub struct RestoreArgs {
    /// The VM.
    #[command(flatten)]
    pub vm: VmArgs,

    /// The saved table to read.
    #[arg(short, long, value_name = "FILE")]
    pub input: PathBuf,

    /// The LIOBN of the new table (default: the saved one).
    #[arg(long, value_name = "LIOBN", value_parser = number)]
    pub liobn: Option<u64>,

    /// Dump the new table after restoring it.
    #[arg(long)]
    pub dump: bool,

    /// Keep the new table until standard input is closed.
    #[arg(long)]
    pub hold: bool,
}

/// Arguments of `bench`.
#[derive(Args, Debug)]
#[command(after_long_help = "\
Window creation is timed through ibm,create-pe-dma-window on the shim, for windows of 2^4,
2^16, 2^24 and 2^31 entries of 4 KiB pages; each figure is the median of --runs runs. Memory is
what the creation allocated: heap bytes for the simulated backend, allocated table pages and
the locked-memory charge for both. Then a 2^31-entry window with --mapped random entries is
saved and restored, and the saved size is compared with a dense copy (2^31 * 8 bytes = 16 GiB).

The simulated backend always runs. The kernel backend runs when /dev/tce_accel exists, on the
VM of --vm-pid/--vm-fd or, by default, on a new VM created through /dev/kvm.")]
pub struct BenchArgs {
    /// Runs per measurement; the median is reported.
    #[arg(long, value_name = "N", default_value = "15", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub runs: u32,

    /// Mapped entries in the migration benchmark.
    #[arg(long, value_name = "N", default_value = "1000", value_parser = clap::value_parser!(u32).range(1..=1000000))]
    pub mapped: u32,

    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Host page shift of the simulated host (12 to 24).
    #[arg(long, value_name = "N", default_value = "16", value_parser = host_page_shift)]
    pub host_page_shift: u32,

    /// The process ID of a running VMM whose VM the kernel backend uses.
    #[arg(long, value_name = "PID", requires = "vm_fd", value_parser = small)]
    pub vm_pid: Option<i32>,

    /// The number of that VMM's KVM VM file descriptor.
    #[arg(long, value_name = "FD", requires = "vm_pid", value_parser = small)]
    pub vm_fd: Option<i32>,

    /// The KVM machine type of the VM the benchmark creates (0 lets KVM choose; on POWER 1 is
    /// KVM-HV and 2 is KVM-PR).
    #[arg(long, value_name = "N", default_value = "0", value_parser = cell)]
    pub vm_type: u32,

    /// Skip the kernel backend even where /dev/tce_accel exists.
    #[arg(long)]
    pub no_kernel: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn numbers_and_cells_parse_as_in_tce_sim() {
        assert_eq!(number("4096"), Ok(4096));
        assert_eq!(number("0x1000"), Ok(4096));
        assert_eq!(number("0X1f"), Ok(31));
        assert!(number("-1").is_err());
        assert!(number("0x").is_err());
        assert_eq!(cell("0xffffffff"), Ok(u32::MAX));
        assert_eq!(
            cell("0x100000000"),
            Err("`0x100000000` does not fit in a 32-bit RTAS cell".into())
        );
        assert_eq!(host_page_shift("16"), Ok(16));
        assert!(host_page_shift("11").is_err());
        assert!(small("0x80000000").is_err());
    }

    #[test]
    fn live_vm_options_go_together() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(parse(&["tce-ddw", "rtas", "--vm-pid", "1", "--vm-fd", "3", "query"]).is_ok());
        assert!(parse(&["tce-ddw", "rtas", "--vm-pid", "1", "query"]).is_err());
        assert!(parse(&["tce-ddw", "rtas", "--sim", "--new-vm", "query"]).is_err());
        assert!(parse(&["tce-ddw", "save", "--table-pid", "1", "--table-fd", "4"]).is_err());
        assert!(parse(&[
            "tce-ddw",
            "save",
            "--sim-trace",
            "t",
            "--liobn",
            "1",
            "-o",
            "f"
        ])
        .is_ok());
    }
}
