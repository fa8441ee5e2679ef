// SPDX-License-Identifier: GPL-2.0
//! `tce-vmm-test`: the sample VMM's guest drives the TCE hypercalls on three paths, checked
//! against the simulator, timed, and set against other tenants.
//!
//! The VMM is the sample's library (`samples/tce_vmm`, crate `tce_vmm`): a KVM-HV VM with a
//! tiny guest payload and three DMA windows with the same parameters (a `tce_accel` table the
//! guest makes through the DDW shim, one of KVM's own tables, one only the VMM knows). This
//! program adds the tests that run it inside the emulated POWER host, each started by one of
//! tce-init's tests: `check` compares every result with tce-sim's simulated machine
//! ([`reference`], sequences in [`scenario`]); `bench` measures per-call latency from the
//! guest's timebase; `hammer` keeps vCPUs issuing calls, with `/dev/tce_accel` closed, while a
//! test unloads the module; `stall` and `churn` check that one VM cannot delay another;
//! `vfio` passes a PCI device's VFIO group through to the guest's DMA window and checks the
//! hardware table the guest's hypercalls update in the kernel.

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod bench;
mod check;
mod churn;
mod error;
mod hammer;
#[cfg(test)]
mod lib_tests;
mod reference;
mod scenario;
mod stall;
mod vfio;
mod vmm_ext;

use std::process::ExitCode;
use std::time::Duration;

use tce_vmm::progress;

use clap::{
    Parser,
    Subcommand, //
};

/// A sample VMM for the TCE fast path: a POWER guest issues H_PUT_TCE, H_GET_TCE, H_STUFF_TCE
/// and H_PUT_TCE_INDIRECT on three DMA windows: tce_accel (made through the DDW shim), KVM's
/// own table (the C path) and a window only the VMM knows (an exit per call).
///
/// It runs on a POWER KVM host with KVM-HV and the tce_accel module loaded, such as the
/// emulated host of `scripts/qemu-test.sh ppc64le` (nested KVM-HV under QEMU). The last line
/// of each command is a one-line summary; the exit status is 0 only if everything checked out.
#[derive(Parser)]
#[command(name = "tce-vmm-test", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Give up (exit status 1) if the command has not finished after this many seconds.
    #[arg(long, global = true, default_value_t = 900, value_name = "SECONDS")]
    timeout: u64,

    /// Print every step and every exit to the VMM.
    #[arg(long, global = true)]
    trace: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Check every hypercall result on the three paths against the simulator, then run a
    /// hostile guest.
    ///
    /// A seeded sequence of valid and invalid calls and a hostile sequence (bad LIOBNs,
    /// misaligned and out-of-window addresses, TCEs and lists outside guest RAM, npages > 512
    /// and overflowing counts, poison values) run on each path; every r3 (and the entry of
    /// each H_GET_TCE) and the final table are compared with tce-sim's machine running the
    /// same calls. Then several vCPUs hammer the accel window while the VMM removes it with
    /// ibm,remove-pe-dma-window: every answer must be H_SUCCESS before the removal or
    /// H_PARAMETER after it. Mismatches are printed with the call, what the guest got and
    /// what was expected.
    Check {
        /// Calls in the seeded correctness sequence.
        #[arg(long, default_value_t = 3000)]
        calls: usize,
        /// Seed of the correctness sequence.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// vCPUs that hammer the window being removed (1 to 8).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=8))]
        hammer_vcpus: u64,
        /// Calls per hammering vCPU.
        #[arg(long, default_value_t = 20000)]
        hammer_calls: usize,
    },
    /// Measure per-call latency on the three paths from the guest's timebase.
    ///
    /// Rows: H_PUT_TCE, H_GET_TCE, H_STUFF_TCE clearing 8 entries, H_PUT_TCE_INDIRECT of 512
    /// and of 1 entry. Prints min, median and p99 in timebase ticks and ns, the exits to the
    /// VMM per path, the ratios of medians, and one line of JSON prefixed `TCE_VMM_JSON `.
    Bench {
        /// Calls per hypercall and path.
        #[arg(long, default_value_t = 10000, value_parser = clap::value_parser!(u64).range(1..=50000))]
        calls: u64,
    },
    /// Keep vCPUs issuing TCE hypercalls for a while, on a LIOBN no table has and on a window
    /// of KVM's own, with /dev/tce_accel closed: for unloading the module while they run.
    ///
    /// Each vCPU repeats H_PUT_TCE, H_GET_TCE and H_STUFF_TCE on both LIOBNs until the time is
    /// up. KVM exits to the VMM for the unowned LIOBN, which answers H_PARAMETER, and answers
    /// the calls on its own table in the kernel (made with the module's takeover off). Every answer is checked: H_PARAMETER for the unowned LIOBN, H_SUCCESS (and the
    /// entry just stored or cleared for H_GET_TCE) and no exit to the VMM for KVM's table. A
    /// line `tce-vmm: hammer: running: ...` says when every vCPU has started.
    Hammer {
        /// How long the vCPUs keep issuing calls.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
        seconds: u64,
        /// vCPUs issuing calls (1 to 8).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=8))]
        vcpus: u64,
    },
    /// One VM's hypercall waits on a userfaultfd page while another VM creates and closes
    /// tables: the second must never wait for the first.
    ///
    /// VM A's guest issues H_PUT_TCE_INDIRECT with its list on a missing userfaultfd page of
    /// guest RAM, on a window tce_accel serves (KVM_CREATE_SPAPR_TCE_64 with takeover=1), so its
    /// vCPU sleeps inside the hypercall. Meanwhile VM B creates and closes tables the same way;
    /// each step must take under a second. Then the page is filled and VM A's call must finish
    /// with H_SUCCESS.
    Stall {
        /// Tables VM B creates and closes.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100000))]
        tables: u64,
    },
    /// One VM creates and closes tables as fast as it can while another VM's H_PUT_TCE
    /// benchmark runs: the second must not get slower, and the first gets ENOSPC at the
    /// module's max_tables_per_vm.
    ///
    /// VM B's median is compared with its median alone and with a control phase in which a
    /// thread opens and closes /dev/null for as long as the churn took.
    Churn {
        /// Tables VM A creates and closes.
        #[arg(long, default_value_t = 100000, value_parser = clap::value_parser!(u64).range(1..=10000000))]
        tables: u64,
        /// H_PUT_TCE calls in one of VM B's timed jobs.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100000))]
        calls: u64,
    },
    /// Pass a PCI device's VFIO group through to a guest DMA window and check the hardware
    /// table that the guest's TCE hypercalls update in the kernel.
    ///
    /// Binds the device to vfio-pci if needed, puts its group in a VFIO container with the
    /// sPAPR TCE v2 IOMMU, preregisters guest RAM and gives the group to the shim's PHB. The
    /// guest creates a window of 64 KiB IOMMU pages; the shim creates the matching hardware
    /// window and attaches the group to the window's tce_accel table. The guest runs H_PUT_TCE,
    /// H_PUT_TCE_INDIRECT, H_STUFF_TCE and H_GET_TCE; every result and the guest-view table are
    /// checked against the simulator, and every hardware entry (TCE_ACCEL_HW_ENTRY) against the
    /// host physical address of the guest page. Then bad attaches must fail with the right
    /// errno, the guest removes its window, and unregistering guest RAM must succeed.
    Vfio {
        /// The PCI device whose IOMMU group is passed through.
        #[arg(long, default_value = "0000:00:02.0")]
        device: String,
        /// log2 of the guest window's size in bytes (17 to 36: 2 to 2^20 entries of 64 KiB).
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(17..=36))]
        window_shift: u32,
        /// Levels of the hardware table (the pseries platform accepts only 1).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=5))]
        levels: u32,
        /// H_PUT_TCE calls to time on the VFIO-attached window (0: no timing).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=50000))]
        bench_calls: u64,
    },
}

/// Parses the command line; a usage error is printed as `tce-vmm: <reason>` with status 2.
fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            eprint!(
                "tce-vmm-test: {}",
                text.strip_prefix("error: ").unwrap_or(&text)
            );
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if cli.trace {
        progress::enable_trace();
    }
    let limit = cli.timeout;
    // A guest or a kernel that never returns must not hang the test VM: give up loudly.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(limit));
        println!(
            "tce-vmm-test: error: still running after {limit} s (--timeout), at: {}; giving up",
            progress::current()
        );
        std::process::exit(1);
    });
    let outcome = match cli.command {
        Command::Check {
            calls,
            seed,
            hammer_vcpus,
            hammer_calls,
        } => check::run(&check::Options {
            calls,
            seed,
            hammer_vcpus: hammer_vcpus as usize,
            hammer_calls,
        }),
        Command::Bench { calls } => bench::run(calls as usize),
        Command::Hammer { seconds, vcpus } => hammer::run(&hammer::Options {
            vcpus: vcpus as usize,
            duration: Duration::from_secs(seconds),
        }),
        Command::Stall { tables } => stall::run(&stall::Options { tables }),
        Command::Churn { tables, calls } => churn::run(&churn::Options { tables, calls }),
        Command::Vfio {
            device,
            window_shift,
            levels,
            bench_calls,
        } => vfio::run(&vfio::Options {
            device,
            window_shift,
            levels,
            bench_calls,
        }),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            // Standard output, so that the error lands in order with the progress lines.
            println!("tce-vmm-test: error: {}", error::chain(&e));
            ExitCode::FAILURE
        }
    }
}
