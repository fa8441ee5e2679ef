// SPDX-License-Identifier: GPL-2.0

//! tce-init: the `/init` (PID 1) of the tce_accel test initramfs, which loads the module, runs
//! the `tce_accel_user` KTAP suite against `/dev/tce_accel` and powers the machine off.
//!
//! The kernel prints the module's own KUnit suites on the console while `finit_module` runs;
//! this program prints its suite through `/dev/kmsg`, so that both reach the console in the
//! same shape and with the same line prefix. Whatever happens (a failed test, a crashed test
//! runner, a panic here), the suite is closed with a result line and the machine is powered
//! off: PID 1 must never exit or hang.

mod cases;
mod cmdline;
mod kmemleak;
mod ktap;
mod uapi;

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tce_sys::errno::describe;
use tce_sys::init::{self as sys, MountFlags, Pid};

use cases::{
    State, Tx, FIRST_RUNNER, KMEMLEAK, LAST_RUNNER, NAMES, SHIM_WITHOUT_MODULE, SUITE, UNLOAD,
};
use cmdline::Config;
use ktap::{emit, Msg, Outcome, Stats, Status};

/// Whether the suite's header has been printed (read by the panic hook).
static HEADER_PRINTED: AtomicBool = AtomicBool::new(false);

/// Whether to restart rather than power off at the end (read by the panic hook).
static REBOOT: AtomicBool = AtomicBool::new(false);

/// The runner's end of its pipe to PID 1, for the runner's panic hook; unset in PID 1.
static RUNNER_TX: OnceLock<File> = OnceLock::new();

/// Prints a line about tce-init itself, outside the KTAP suite.
fn note(msg: &str) {
    emit(&format!("tce-init: {msg}"));
}

/// Mounts what the tests need and makes sure standard I/O and `/dev/kmsg` are usable.
fn setup() {
    let mut notes = Vec::new();
    for dir in ["/proc", "/sys", "/dev"] {
        if let Err(e) = sys::mkdir(dir) {
            notes.push(format!("mkdir {dir}: {}", describe(&e)));
        }
    }
    let nodev = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    for (fs, dir, flags, data) in [
        ("proc", "/proc", nodev, ""),
        ("sysfs", "/sys", nodev, ""),
        ("devtmpfs", "/dev", MountFlags::NOSUID, "mode=0755"),
    ] {
        if let Err(e) = sys::mount(fs, dir, flags, data) {
            notes.push(format!("mount {fs} on {dir}: {}", describe(&e)));
        }
    }
    // The kernel gives init the console as fds 0-2 if it can open it; make sure it did.
    if (0..3).any(|fd| !sys::fd_is_open(fd)) {
        match sys::open_rw("/dev/console") {
            Ok(console) => {
                for fd in 0..3 {
                    if !sys::fd_is_open(fd) {
                        let _ = sys::set_stdio(fd, console.as_fd());
                    }
                }
            }
            Err(e) => notes.push(format!("open /dev/console: {}", describe(&e))),
        }
    }
    // Lift the rate limit on /dev/kmsg writers (also set by printk.devkmsg=on), or most of
    // the suite's lines would be dropped.
    let _ = std::fs::write("/proc/sys/kernel/printk_devkmsg", "on\n");
    match std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        Ok(f) => ktap::set_kmsg(f),
        Err(e) => notes.push(format!(
            "open /dev/kmsg: {}; printing to the console instead",
            describe(&e)
        )),
    }
    for n in notes {
        note(&n);
    }
}

/// Prints the top-level KTAP header and the suite's header, as KUnit does for a module.
fn print_header() {
    emit("KTAP version 1");
    emit("1..1");
    for line in ktap::header_lines(1, SUITE, NAMES.len()) {
        emit(&line);
    }
    HEADER_PRINTED.store(true, Ordering::SeqCst);
}

/// The suite's results so far.
struct Suite {
    /// Outcomes of the suite's tests.
    stats: Stats,
    /// Outcomes of the tests and parameter cases ("Totals").
    totals: Stats,
    /// The next test expected to report.
    next: usize,
}

impl Suite {
    /// Prints the result of test `idx` and counts it.
    fn report(&mut self, idx: usize, outcome: &Outcome, params: Stats) {
        emit(&ktap::result_line(1, idx + 1, NAMES[idx], outcome));
        self.stats.add(outcome.status);
        if params.total() > 0 {
            self.totals.merge(params);
        } else {
            self.totals.add(outcome.status);
        }
        self.next = idx + 1;
    }

    /// Prints the suite's stats and result line.
    fn finish(&self) {
        if let Some(l) = self.stats.line(0, SUITE) {
            emit(&l);
        }
        if let Some(l) = self.totals.line(0, "Totals") {
            emit(&l);
        }
        let outcome = match self.stats.status() {
            Status::Skip => Outcome::skip("every test skipped"),
            Status::Fail => Outcome::fail(""),
            Status::Pass => Outcome::pass(),
        };
        emit(&ktap::result_line(0, 1, SUITE, &outcome));
    }
}

/// The runner process: runs tests `FIRST_RUNNER..=LAST_RUNNER`, reporting through `tx`.
fn runner(cfg: Config, module_loaded: bool, tx: File) -> ! {
    let tx = Tx(Some(RUNNER_TX.get_or_init(|| tx).as_fd()));
    std::panic::set_hook(Box::new(|info| {
        let tx = Tx(RUNNER_TX.get().map(AsFd::as_fd));
        tx.send(&Msg::Line(ktap::diag_line(
            1,
            "tce-init",
            &format!("test runner panicked: {info}"),
        )));
        sys::exit_child(101);
    }));
    let mut st = State::new(cfg, module_loaded);
    cases::run_runner(&mut st, &tx);
    drop(st);
    sys::exit_child(0);
}

/// Waits up to `limit` for child `pid` to end.
fn reap(pid: Pid, limit: Duration) -> Option<sys::Exit> {
    let start = Instant::now();
    loop {
        match sys::wait(Some(pid), false) {
            Ok(Some(exit)) => return Some(exit),
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            _ => return None,
        }
    }
}

/// Forks the runner and prints what it reports; if it dies or goes silent for longer than the
/// configured timeout, fails the test it was in and skips the rest.
fn supervise(cfg: &Config, module_loaded: bool, suite: &mut Suite) {
    let (rx, tx) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => return abandon(suite, &format!("pipe: {}", describe(&e)), None),
    };
    // SAFETY: PID 1 has one thread; the runner goes on as a process of its own.
    let pid = match unsafe { sys::fork() } {
        Ok(None) => {
            drop(rx);
            // The runner gets a process group of its own, so that PID 1 can kill it together
            // with any child it forked.
            let _ = sys::own_process_group(None);
            runner(cfg.clone(), module_loaded, tx);
        }
        Ok(Some(pid)) => pid,
        Err(e) => return abandon(suite, &format!("fork: {}", describe(&e)), None),
    };
    // As in the child: whichever runs first puts the runner in its own group.
    let _ = sys::own_process_group(Some(pid));
    drop(tx);

    let timeout = Duration::from_secs(cfg.timeout_secs.max(1));
    let mut buf: Vec<u8> = Vec::new();
    let mut current = None;
    let mut last = Instant::now();
    let mut timed_out = false;
    loop {
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            match Msg::decode(&line) {
                Some(Msg::Line(l)) => emit(&l),
                Some(Msg::Begin(idx)) => current = Some(idx),
                Some(Msg::End {
                    idx,
                    outcome,
                    params,
                }) if idx == suite.next && idx <= LAST_RUNNER => {
                    suite.report(idx, &outcome, params);
                    current = None;
                }
                _ => emit(&ktap::diag_line(
                    1,
                    "tce-init",
                    &format!("bad message: {line}"),
                )),
            }
        }
        match sys::poll_in(rx.as_fd(), Duration::from_millis(500)) {
            Ok(true) => {
                let mut chunk = [0u8; 4096];
                match sys::read(rx.as_fd(), &mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        last = Instant::now();
                    }
                }
            }
            Ok(false) if last.elapsed() > timeout => {
                timed_out = true;
                sys::kill_group(pid);
                break;
            }
            Ok(false) => {}
            Err(_) => break,
        }
    }
    let exit = reap(pid, Duration::from_secs(10));
    let why = match (timed_out, exit) {
        (true, _) => format!("no report for {} s: test runner killed", timeout.as_secs()),
        (false, Some(sys::Exit::Code(0))) => "test runner ended without reporting it".into(),
        (false, Some(e)) => format!("test runner {e}"),
        (false, None) => "test runner did not end".into(),
    };
    // Kill anything the runner left behind, so that its descriptors close before the unload.
    sys::kill_group(pid);
    if suite.next <= LAST_RUNNER {
        abandon(suite, &why, current);
    }
}

/// Reports every runner test not reported yet: the one in progress (`current`) fails with
/// `why`, the others are skipped.
fn abandon(suite: &mut Suite, why: &str, current: Option<usize>) {
    emit(&ktap::diag_line(1, "tce-init", why));
    for idx in suite.next.max(FIRST_RUNNER)..=LAST_RUNNER {
        let outcome = if Some(idx) == current {
            Outcome::fail(why)
        } else {
            Outcome::skip(format!("not run: {why}"))
        };
        suite.report(idx, &outcome, Stats::default());
    }
}

/// Reaps whatever children are left (orphans are re-parented to PID 1).
fn reap_orphans() {
    while let Ok(Some(_)) = sys::wait(None, false) {}
}

fn main() {
    if std::process::id() != 1 {
        eprintln!(
            "tce-init: must run as PID 1 (the /init of a test VM); it powers the machine off"
        );
        std::process::exit(2);
    }
    setup();
    std::panic::set_hook(Box::new(|info| {
        if !HEADER_PRINTED.load(Ordering::SeqCst) {
            print_header();
        }
        emit(&ktap::diag_line(
            1,
            "tce-init",
            &format!("panicked: {info}"),
        ));
        emit(&ktap::result_line(
            0,
            1,
            SUITE,
            &Outcome::fail("tce-init panicked"),
        ));
        sys::shut_down(REBOOT.load(Ordering::SeqCst));
        std::process::exit(1);
    }));

    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let (cfg, warnings) = cmdline::parse(&cmdline);
    REBOOT.store(cfg.reboot, Ordering::SeqCst);
    for w in warnings {
        note(&format!("command line: {w}"));
    }
    note(&format!(
        "module {} (name {}, params \"{}\"), KVM_CREATE_VM type {}, timeout {} s, page size {}, \
         benchmark {}, then {}",
        cfg.module,
        cfg.name,
        cfg.params,
        cfg.vm_type,
        cfg.timeout_secs,
        tce_sys::process::page_size(),
        if cfg.bench { "on" } else { "off" },
        if cfg.reboot { "reboot" } else { "power off" }
    ));
    let start = Instant::now();
    // Leaks older than the module must not be blamed on it.
    if let Some(msg) = kmemleak::prepare() {
        note(&msg);
    }

    // The module's KUnit suites print while it loads: before this suite's header.
    let (load, diags) = cases::load_module(&cfg);
    let module_loaded = load.status == Status::Pass;
    print_header();
    for d in diags {
        emit(&d);
    }
    let mut suite = Suite {
        stats: Stats::default(),
        totals: Stats::default(),
        next: 0,
    };
    suite.report(cases::LOAD, &load, Stats::default());

    supervise(&cfg, module_loaded, &mut suite);
    reap_orphans();

    let (unload, diags) = cases::unload(&cfg, module_loaded);
    for d in diags {
        emit(&d);
    }
    suite.report(UNLOAD, &unload, Stats::default());
    let (fallback, diags) = cases::shim_without_module(module_loaded);
    for d in diags {
        emit(&d);
    }
    suite.report(SHIM_WITHOUT_MODULE, &fallback, Stats::default());
    // Leaks of the module show once it is gone: after the unload.
    let (leaks, diags) = kmemleak::check(NAMES[KMEMLEAK]);
    for d in diags {
        emit(&d);
    }
    suite.report(KMEMLEAK, &leaks, Stats::default());
    suite.finish();
    note(&format!(
        "done in {} ms; {}",
        start.elapsed().as_millis(),
        if cfg.reboot {
            "rebooting"
        } else {
            "powering off"
        }
    ));
    sys::shut_down(cfg.reboot);
    // Still here: exiting makes the kernel panic, and panic=-1 reboots, which ends QEMU.
    std::process::exit(1);
}
