// SPDX-License-Identifier: GPL-2.0

//! The test cases of the `tce_accel_user` suite, run against `/dev/tce_accel`.
//!
//! Test 1 (`load_module`) and the last two (`unload`, `kmemleak`) run in PID 1. The others run
//! in order in one forked runner process, so that a fault in a mapping or a panic kills only the
//! runner; the runner reports through [`Tx`] and PID 1 prints. Later tests use what earlier ones
//! made (the device, the VM, the table) and are skipped when it is missing.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::time::Instant;

use crate::cmdline::Config;
use crate::ktap::{self, Msg, Outcome, Stats, Status};
use crate::uapi::{CreateTable, TableInfo, Window, TABLE_INFO_SIZE};
use tce_sys::errno::{describe, errno_name};
use tce_sys::init::{self as sys, Exit};
use tce_sys::{accel, kvm, process, Errno, Mmap};

/// The errno values the tests expect.
const EBADF: i32 = Errno::BADF.raw_os_error();
const EBUSY: i32 = Errno::BUSY.raw_os_error();
const EINVAL: i32 = Errno::INVAL.raw_os_error();
const ENOMEM: i32 = Errno::NOMEM.raw_os_error();
const ENOTTY: i32 = Errno::NOTTY.raw_os_error();
const EAGAIN: i32 = Errno::AGAIN.raw_os_error();

/// The suite's name.
pub const SUITE: &str = "tce_accel_user";

/// The suite's tests, in order.
pub const NAMES: [&str; 26] = [
    "load_module",
    "open_device",
    "create_vm",
    "create_table",
    "table_info",
    "locked_memory",
    "mmap_fault_read",
    "mmap_write_read_back",
    "fault_past_end_sigbus",
    "bad_arguments",
    "shim_kernel_backend",
    "ddw_bench",
    "guest_e2e",
    "guest_bench",
    "vfio_attach",
    "many_tables",
    "unload_refused_while_open",
    "close_releases",
    "unload_during_hypercalls",
    "one_vm_stalls_no_other",
    "kvm_tables_follow_takeover",
    "table_churn_spares_other_vms",
    "sample_vmm",
    "unload",
    "shim_without_module",
    "kmemleak",
];

/// Index of `load_module`, run by PID 1 before the runner starts.
pub const LOAD: usize = 0;
/// Index of the runner's first test.
pub const FIRST_RUNNER: usize = 1;
/// Index of the runner's last test.
pub const LAST_RUNNER: usize = 22;
/// Index of `unload`, run by PID 1 after the runner has exited.
pub const UNLOAD: usize = 23;
/// Index of `shim_without_module`, run by PID 1 after `unload`.
pub const SHIM_WITHOUT_MODULE: usize = 24;
/// Index of `kmemleak`, run by PID 1 after `shim_without_module`.
pub const KMEMLEAK: usize = 25;

/// The device node of the module.
pub const DEVICE: &str = "/dev/tce_accel";

/// The window of the main table: LIOBN 1, 4 KiB IOMMU pages, 2^18 entries (1 GiB of bus space).
pub const MAIN_WINDOW: Window = Window {
    liobn: 0x1,
    page_shift: 12,
    flags: 0,
    offset: 0,
    size: 0x40000,
};

/// The sending end of the pipe from the runner (and its children) to PID 1; `None` sends
/// nothing.
#[derive(Clone, Copy, Debug)]
pub struct Tx(pub Option<BorrowedFd<'static>>);

impl Tx {
    /// Sends one message; a single write of a line shorter than `PIPE_BUF`, hence atomic.
    pub fn send(&self, m: &Msg) {
        let mut line = m.encode();
        if line.len() > 1000 {
            let mut end = 1000;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
        }
        line.push('\n');
        if let Some(fd) = self.0 {
            // Nowhere to report a failure: PID 1 notices the silence.
            let _ = sys::write_all(fd, line.as_bytes());
        }
    }
}

/// Why a test stopped early.
#[derive(Debug)]
pub enum Stop {
    /// It failed for this reason.
    Fail(String),
    /// It could not run for this reason.
    Skip(String),
}

/// Turns an `io::Result` into a test failure that names what was attempted.
trait OrFail<T> {
    /// Fails with `what: ERRNO (message)` on error.
    fn or_fail(self, what: impl FnOnce() -> String) -> Result<T, Stop>;
}

/// `TCE_ACCEL_CREATE_TABLE` with `req` as given.
fn io_create(dev: BorrowedFd<'_>, req: &CreateTable) -> io::Result<OwnedFd> {
    io(accel::create_table_args(dev, req))
}

/// A `tce_sys` result with its errno as an `io::Error`, the error type of these tests.
fn io<T>(r: tce_sys::SysResult<T>) -> io::Result<T> {
    r.map_err(io::Error::from)
}

/// Reads the 8-byte word at byte `off` of a table mapping; the tests read only inside it.
/// Touching it may fault the page in, or raise SIGBUS, which is what some tests look for.
fn peek(m: &Mmap, off: usize) -> u64 {
    m.read_u64(off as u64)
        .unwrap_or_else(|| panic!("word at {off:#x} outside the mapping"))
}

/// Writes the 8-byte word at byte `off` of a table mapping.
fn poke(m: &Mmap, off: usize, value: u64) {
    assert!(
        m.write_u64(off as u64, value),
        "word at {off:#x} outside the mapping"
    );
}

/// An ioctl of the module's type that the module does not define: `_IO(0xB9, 0x7f)`.
const UNKNOWN: tce_sys::ioctl::Opcode =
    tce_sys::ioctl::opcode::none(tce_uapi::tce_accel::TCE_ACCEL_IOCTL_TYPE, 0x7f);

/// Runs [`UNKNOWN`] on the device.
fn unknown_ioctl(dev: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: the request takes no argument (an undefined one is refused before any is read),
    // so the integer 0 is passed and no memory is involved.
    io(unsafe { tce_sys::ioctl::int_ioctl(dev, UNKNOWN, 0) })
}

impl<T> OrFail<T> for io::Result<T> {
    fn or_fail(self, what: impl FnOnce() -> String) -> Result<T, Stop> {
        self.map_err(|e| Stop::Fail(format!("{}: {}", what(), describe(&e))))
    }
}

/// A running test: where its diagnostics go and which checks failed.
pub struct Ctx<'a> {
    /// Where messages go.
    tx: &'a Tx,
    /// The test's name.
    name: &'static str,
    /// The failed checks, in order.
    failures: Vec<String>,
    /// The outcomes of the test's parameter cases, if it has any.
    params: Option<Stats>,
}

impl Ctx<'_> {
    /// Prints a diagnostic line about the test.
    pub fn diag(&self, msg: &str) {
        self.tx.send(&Msg::Line(ktap::diag_line(1, self.name, msg)));
    }

    /// Records a failed check and prints it.
    pub fn fail(&mut self, msg: String) {
        self.diag(&format!("FAILED: {msg}"));
        self.failures.push(msg);
    }

    /// Checks that `got == want`.
    pub fn check_eq<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: &str,
        got: T,
        want: T,
    ) -> bool {
        if got == want {
            return true;
        }
        self.fail(format!("{what} is {got:?}, want {want:?}"));
        false
    }

    /// Checks `cond`, failing with `msg()` if it does not hold.
    pub fn check(&mut self, cond: bool, msg: impl FnOnce() -> String) -> bool {
        if !cond {
            self.fail(msg());
        }
        cond
    }
}

/// What the runner's tests share: the configuration and what earlier tests made.
pub struct State {
    /// The configuration from the command line.
    pub cfg: Config,
    /// Whether `load_module` succeeded.
    pub module_loaded: bool,
    /// The host page size.
    page_size: u64,
    /// `/dev/tce_accel`.
    dev: Option<OwnedFd>,
    /// `/dev/kvm`.
    kvm: Option<OwnedFd>,
    /// The VM of the main table.
    vm: Option<OwnedFd>,
    /// The main table.
    table: Option<OwnedFd>,
    /// `TCE_ACCEL_TABLE_INFO` of the main table, right after it was made.
    info: Option<TableInfo>,
    /// VmLck (kB) before and after the main table was made.
    vmlck: Option<(u64, u64)>,
}

/// The reason for skipping a test that needs what test `name` makes.
fn needs(name: &str) -> Stop {
    Stop::Skip(format!("needs {name}"))
}

impl State {
    /// The state before the runner's first test.
    pub fn new(cfg: Config, module_loaded: bool) -> Self {
        Self {
            cfg,
            module_loaded,
            page_size: process::page_size() as u64,
            dev: None,
            kvm: None,
            vm: None,
            table: None,
            info: None,
            vmlck: None,
        }
    }

    /// `/dev/tce_accel`, from `open_device`.
    fn dev(&self) -> Result<BorrowedFd<'_>, Stop> {
        self.dev
            .as_ref()
            .map(|f| f.as_fd())
            .ok_or_else(|| needs("open_device"))
    }

    /// `/dev/kvm`, from `create_vm`.
    fn kvm(&self) -> Result<BorrowedFd<'_>, Stop> {
        self.kvm
            .as_ref()
            .map(|f| f.as_fd())
            .ok_or_else(|| needs("/dev/kvm"))
    }

    /// The VM, from `create_vm`.
    fn vm(&self) -> Result<BorrowedFd<'_>, Stop> {
        self.vm
            .as_ref()
            .map(|f| f.as_fd())
            .ok_or_else(|| needs("create_vm"))
    }

    /// The main table, from `create_table`.
    fn table(&self) -> Result<BorrowedFd<'_>, Stop> {
        self.table
            .as_ref()
            .map(|f| f.as_fd())
            .ok_or_else(|| needs("create_table"))
    }

    /// The main table's first info, from `table_info`.
    fn info(&self) -> Result<TableInfo, Stop> {
        self.info.ok_or_else(|| needs("table_info"))
    }

    /// Bytes of one host page.
    fn ps(&self) -> usize {
        self.page_size as usize
    }

    /// The main table's info now.
    fn info_now(&self) -> Result<TableInfo, Stop> {
        io(accel::table_info(self.table()?)).or_fail(|| "TCE_ACCEL_TABLE_INFO".into())
    }
}

/// Runs the runner's tests in order, reporting each through `tx`.
pub fn run_runner(st: &mut State, tx: &Tx) {
    for (idx, &name) in NAMES
        .iter()
        .enumerate()
        .take(LAST_RUNNER + 1)
        .skip(FIRST_RUNNER)
    {
        tx.send(&Msg::Begin(idx));
        let mut cx = Ctx {
            tx,
            name,
            failures: Vec::new(),
            params: None,
        };
        let r = match idx {
            _ if !st.cfg.runs(name) => Err(Stop::Skip("not in tce.only".into())),
            1 => open_device(st, &mut cx),
            2 => create_vm(st, &mut cx),
            3 => create_table(st, &mut cx),
            4 => table_info(st, &mut cx),
            5 => locked_memory(st, &mut cx),
            6 => mmap_fault_read(st, &mut cx),
            7 => mmap_write_read_back(st, &mut cx),
            8 => fault_past_end_sigbus(st, &mut cx),
            9 => bad_arguments(st, &mut cx),
            10 => shim_kernel_backend(st, &mut cx),
            11 => ddw_bench(st, &mut cx),
            12 => guest_e2e(st, &mut cx),
            13 => guest_bench(st, &mut cx),
            14 => vfio_attach(st, &mut cx),
            15 => many_tables(st, &mut cx),
            16 => unload_refused_while_open(st, &mut cx),
            17 => close_releases(st, &mut cx),
            18 => unload_during_hypercalls(st, &mut cx),
            19 => one_vm_stalls_no_other(st, &mut cx),
            20 => kvm_tables_follow_takeover(st, &mut cx),
            21 => table_churn_spares_other_vms(st, &mut cx),
            22 => sample_vmm(st, &mut cx),
            _ => Err(Stop::Fail("no such test".into())),
        };
        let outcome = conclude(r, &cx);
        tx.send(&Msg::End {
            idx,
            outcome,
            params: cx.params.unwrap_or_default(),
        });
    }
}

/// The outcome of a test from its result and its failed checks.
fn conclude(r: Result<(), Stop>, cx: &Ctx<'_>) -> Outcome {
    match r {
        Err(Stop::Skip(why)) => Outcome::skip(why),
        Err(Stop::Fail(why)) => Outcome::fail(why),
        Ok(()) => match (cx.failures.first(), cx.params) {
            (Some(first), _) if cx.failures.len() == 1 => Outcome::fail(first.clone()),
            (Some(first), _) => Outcome::fail(format!(
                "{first} (and {} more failed checks)",
                cx.failures.len() - 1
            )),
            (None, Some(p)) if p.status() == Status::Fail => {
                Outcome::fail(format!("{} of {} cases failed", p.fail, p.total()))
            }
            (None, Some(p)) if p.status() == Status::Skip => Outcome::skip("every case skipped"),
            (None, _) => Outcome::pass(),
        },
    }
}

/// `load_module` (in PID 1): `finit_module(fd, params, 0)` of the configured file. Returns the
/// outcome and diagnostics to print once the suite's header is out (the module's own KUnit
/// suites print during the load, and must not land inside this suite).
pub fn load_module(cfg: &Config) -> (Outcome, Vec<String>) {
    let name = NAMES[LOAD];
    let file = match sys::open_ro(&cfg.module) {
        Ok(f) => f,
        Err(e) => {
            return (
                Outcome::fail(format!("open {}: {}", cfg.module, describe(&e))),
                vec![],
            )
        }
    };
    let start = Instant::now();
    match sys::finit_module(file.as_fd(), &cfg.params, 0) {
        Ok(()) => (
            Outcome::pass(),
            vec![ktap::diag_line(
                1,
                name,
                &format!(
                    "finit_module({}, \"{}\") took {} ms",
                    cfg.module,
                    cfg.params,
                    start.elapsed().as_millis()
                ),
            )],
        ),
        Err(e) => (
            Outcome::fail(format!(
                "finit_module({}, \"{}\"): {}",
                cfg.module,
                cfg.params,
                describe(&e)
            )),
            vec![],
        ),
    }
}

/// `unload` (in PID 1, after every descriptor is closed): `delete_module(name, O_NONBLOCK)`
/// succeeds and the device node and `/sys/module/NAME` are gone.
pub fn unload(cfg: &Config, module_loaded: bool) -> (Outcome, Vec<String>) {
    if !module_loaded {
        return (Outcome::skip("needs load_module"), vec![]);
    }
    if let Err(e) = sys::delete_module(&cfg.name, true) {
        return (
            Outcome::fail(format!(
                "delete_module(\"{}\", O_NONBLOCK): {}",
                cfg.name,
                describe(&e)
            )),
            vec![],
        );
    }
    let mut failures = Vec::new();
    if std::fs::symlink_metadata(DEVICE).is_ok() {
        failures.push(format!("{DEVICE} still exists after the unload"));
    }
    let sysfs = format!("/sys/module/{}", cfg.name);
    if std::fs::symlink_metadata(&sysfs).is_ok() {
        failures.push(format!("{sysfs} still exists after the unload"));
    }
    let diags = failures
        .iter()
        .map(|f| ktap::diag_line(1, NAMES[UNLOAD], &format!("FAILED: {f}")))
        .collect();
    match failures.first() {
        None => (Outcome::pass(), diags),
        Some(f) => (Outcome::fail(f.clone()), diags),
    }
}

/// `open_device`: `/dev/tce_accel` is a character device and opens `O_RDWR | O_CLOEXEC`.
fn open_device(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    if !st.module_loaded {
        cx.diag("the module is not loaded; opening the device anyway");
    }
    let meta = std::fs::metadata(DEVICE).or_fail(|| format!("stat {DEVICE}"))?;
    cx.check(meta.file_type().is_char_device(), || {
        format!("{DEVICE} is not a character device")
    });
    let fd = sys::open_rw(DEVICE).or_fail(|| format!("open {DEVICE} O_RDWR|O_CLOEXEC"))?;
    st.dev = Some(fd.into());
    Ok(())
}

/// A line about the CPU's virtualisation support, for a missing `/dev/kvm`.
fn cpu_virt_summary() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    format!(
        "cpu: vendor {}, model {}, svm {}, vmx {}, npt {}",
        field("vendor_id")
            .or_else(|| field("cpu"))
            .unwrap_or_else(|| "?".into()),
        field("model name")
            .or_else(|| field("platform"))
            .unwrap_or_else(|| "?".into()),
        has("svm"),
        has("vmx"),
        has("npt")
    )
}

/// `create_vm`: `/dev/kvm` opens and `KVM_CREATE_VM` (type from the command line, default 0)
/// returns a VM descriptor.
fn create_vm(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    let kvm = match sys::open_rw("/dev/kvm") {
        Ok(f) => f,
        Err(e) => {
            cx.diag(&cpu_virt_summary());
            return Err(Stop::Fail(format!(
                "open /dev/kvm: {} (KVM is not usable in this guest)",
                describe(&e)
            )));
        }
    };
    let vm = io(kvm::create_vm(kvm.as_fd(), st.cfg.vm_type))
        .or_fail(|| format!("KVM_CREATE_VM type {}", st.cfg.vm_type))?;
    st.kvm = Some(kvm.into());
    st.vm = Some(vm);
    Ok(())
}

/// `create_table`: `TCE_ACCEL_CREATE_TABLE` of the main window returns a new table descriptor,
/// which is close-on-exec.
fn create_table(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    let (dev, vm) = (st.dev()?, st.vm()?);
    let before = process::vmlck_kb().or_fail(|| "read VmLck".into())?;
    let req = CreateTable::new(vm.as_raw_fd(), MAIN_WINDOW);
    let fd = io_create(dev, &req).or_fail(|| format!("TCE_ACCEL_CREATE_TABLE {req:?}"))?;
    let after = process::vmlck_kb().or_fail(|| "read VmLck".into())?;
    let cloexec = sys::is_cloexec(fd.as_fd());
    cx.check(matches!(cloexec, Ok(true)), || {
        format!(
            "table fd {} is not close-on-exec (F_GETFD: {cloexec:?})",
            fd.as_raw_fd()
        )
    });
    cx.diag(&format!(
        "table fd {}, VmLck {before} kB -> {after} kB",
        fd.as_raw_fd()
    ));
    st.table = Some(fd);
    st.vmlck = Some((before, after));
    Ok(())
}

/// `table_info`: the info of the new table: its size, flags 0, the window echoed back, the
/// mapping size of the entries, nothing present yet, some pages locked.
fn table_info(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    let info = st.info_now()?;
    cx.diag(&format!(
        "argsz {} flags {} mapping_pages {} present_pages {} locked_pages {} (page size {})",
        info.argsz,
        info.flags,
        info.mapping_pages,
        info.present_pages,
        info.locked_pages,
        st.page_size
    ));
    cx.check_eq("argsz", info.argsz as usize, TABLE_INFO_SIZE);
    cx.check_eq("flags", info.flags, 0);
    cx.check_eq("window", info.window, MAIN_WINDOW);
    let want_mapping = (MAIN_WINDOW.size * 8).div_ceil(st.page_size);
    cx.check_eq("mapping_pages", info.mapping_pages, want_mapping);
    cx.check_eq("present_pages", info.present_pages, 0);
    cx.check(info.locked_pages > 0, || {
        "locked_pages is 0, want > 0".into()
    });
    st.info = Some(info);
    Ok(())
}

/// `locked_memory`: VmLck grew by exactly `locked_pages` pages when the table was made.
fn locked_memory(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    let info = st.info()?;
    let (before, after) = st.vmlck.ok_or_else(|| needs("create_table"))?;
    let want = info.locked_pages * st.page_size / 1024;
    let grew = after as i128 - before as i128;
    cx.check(grew == want as i128, || {
        format!(
            "VmLck grew by {grew} kB ({before} -> {after}), want {want} kB ({} locked pages)",
            info.locked_pages
        )
    });
    Ok(())
}

/// Byte offset of the main table's last entry.
const LAST_ENTRY: usize = (MAIN_WINDOW.size as usize - 1) * 8;

/// `mmap_fault_read`: a shared mapping of `mapping_pages` pages reads zeroes without making a
/// page present, and the first write to a page makes it present.
fn mmap_fault_read(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    let info = st.info()?;
    let len = info.mapping_pages as usize * st.ps();
    let m = io(Mmap::shared(st.table()?, len)).or_fail(|| format!("mmap of {len:#x} bytes"))?;
    // Reads of absent pages see the zero page and allocate nothing (QEMU's migration reads
    // every entry of every table).
    cx.check_eq("entry 0", peek(&m, 0), 0);
    cx.check_eq(
        "page of the last entry",
        LAST_ENTRY / st.ps(),
        info.mapping_pages as usize - 1,
    );
    cx.check_eq("last entry", peek(&m, LAST_ENTRY), 0);
    cx.check_eq(
        "present_pages after reading entry 0 and the last entry",
        st.info_now()?.present_pages,
        0,
    );
    // A write through the same mapping, onto the zero page, allocates the table's page.
    poke(&m, 0, 0x1003);
    cx.check_eq("entry 0 after writing it", peek(&m, 0), 0x1003);
    poke(&m, 0, 0);
    cx.check_eq(
        "present_pages after writing entry 0",
        st.info_now()?.present_pages,
        1,
    );
    poke(&m, LAST_ENTRY, 0);
    cx.check_eq(
        "present_pages after writing the last entry",
        st.info_now()?.present_pages,
        2,
    );
    // TCE_ACCEL_TABLE_PAGES lists exactly the two pages, with a working cursor.
    let last = info.mapping_pages - 1;
    let fd = st.table()?;
    let list = |argsz, start, room| {
        let mut pages = vec![0u64; room];
        io(accel::table_pages_sized(fd, argsz, start, &mut pages)).map(|n| {
            pages.truncate(n);
            pages
        })
    };
    let size = crate::uapi::TABLE_PAGES_SIZE as u32;
    match (
        list(size, 0, 8),
        list(size, 0, 1),
        list(size, 1, 8),
        list(size, last + 1, 8),
    ) {
        (Ok(all), Ok(first), Ok(rest), Ok(none)) => {
            cx.check_eq("pages listed from 0", all, vec![0, last]);
            cx.check_eq("pages listed from 0, room for one", first, vec![0]);
            cx.check_eq("pages listed from 1", rest, vec![last]);
            cx.check_eq("pages listed past the end", none, Vec::<u64>::new());
        }
        r => {
            cx.check(false, || format!("TCE_ACCEL_TABLE_PAGES failed: {r:?}"));
        }
    }
    match list(size - 8, 0, 8) {
        Err(e) if e.raw_os_error() == Some(EINVAL) => {}
        r => {
            cx.check(false, || {
                format!("TCE_ACCEL_TABLE_PAGES with argsz 24: {r:?}, want EINVAL")
            });
        }
    }
    Ok(())
}

/// `mmap_write_read_back`: a word written through one mapping reads back through a second
/// mapping at another address, both ways, without making more pages present.
fn mmap_write_read_back(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    const FIRST: u64 = 0x0123_4567_89ab_c003;
    const SECOND: u64 = 0xfedc_ba98_7654_3001;
    let info = st.info()?;
    let len = info.mapping_pages as usize * st.ps();
    let present = st.info_now()?.present_pages;
    let m1 = io(Mmap::shared(st.table()?, len)).or_fail(|| "first mmap".into())?;
    let m2 = io(Mmap::shared(st.table()?, len)).or_fail(|| "second mmap".into())?;
    cx.check(m1.addr() != m2.addr(), || {
        "both mappings at the same address".into()
    });
    poke(&m1, 0, FIRST);
    cx.check_eq("entry 0 through the second mapping", peek(&m2, 0), FIRST);
    poke(&m2, LAST_ENTRY, SECOND);
    cx.check_eq(
        "last entry through the first mapping",
        peek(&m1, LAST_ENTRY),
        SECOND,
    );
    poke(&m1, 0, 0);
    poke(&m1, LAST_ENTRY, 0);
    cx.check_eq("entry 0 after clearing it", peek(&m2, 0), 0);
    cx.check_eq("present_pages", st.info_now()?.present_pages, present);
    Ok(())
}

/// Runs `f` in a forked child and returns how the child ended and the message it left (the
/// error `f` returned).
fn in_child_with_message(f: impl FnOnce() -> Result<(), String>) -> Result<(Exit, String), Stop> {
    let (r, w) = sys::pipe().or_fail(|| "pipe".into())?;
    // The message is short, so the child's write cannot fill the pipe before the parent reads.
    // SAFETY: the runner has one thread here (those of earlier tests were joined).
    let exit = unsafe {
        sys::in_child(|| match f() {
            Ok(()) => 0,
            Err(msg) => {
                let _ = sys::write_all(w.as_fd(), msg.as_bytes());
                1
            }
        })
    }
    .or_fail(|| "fork".into())?;
    drop(w);
    let mut msg = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = sys::read(r.as_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        msg.extend_from_slice(&buf[..n]);
    }
    Ok((exit, String::from_utf8_lossy(&msg).into_owned()))
}

/// `fault_past_end_sigbus`: a mapping one page longer than `mapping_pages` is allowed, but a
/// child touching the extra page dies of SIGBUS while the parent's mapping keeps working.
fn fault_past_end_sigbus(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    let info = st.info()?;
    let end = info.mapping_pages as usize * st.ps();
    let present = st.info_now()?.present_pages;
    let m = io(Mmap::shared(st.table()?, end + st.ps()))
        .or_fail(|| "mmap of mapping_pages + 1 pages".into())?;
    // SAFETY: the runner has one thread here (those of earlier tests were joined).
    let exit = unsafe {
        sys::in_child(|| {
            let v = peek(&m, end);
            // Still alive: the page past the end was readable.
            i32::from(v != 0) + 10
        })
    }
    .or_fail(|| "fork".into())?;
    cx.diag(&format!("child touching the page past the end: {exit}"));
    cx.check(exit == Exit::Signal(sys::SIGBUS), || {
        format!("child touching the page past the end {exit}, want killed by SIGBUS")
    });
    cx.check_eq("entry 0 in the parent", peek(&m, 0), 0);
    cx.check_eq("present_pages", st.info_now()?.present_pages, present);
    Ok(())
}

/// What a failed create must leave unchanged: VmLck, and the main table's present and locked
/// pages.
fn snapshot(st: &State) -> Result<(u64, Option<(u64, u64)>), String> {
    let vmlck = process::vmlck_kb().map_err(|e| format!("read VmLck: {}", describe(&e)))?;
    let table = match &st.table {
        Some(t) => {
            let i = io(accel::table_info(t.as_fd()))
                .map_err(|e| format!("TCE_ACCEL_TABLE_INFO: {}", describe(&e)))?;
            Some((i.present_pages, i.locked_pages))
        }
        None => None,
    };
    Ok((vmlck, table))
}

/// Checks that `r`, the result of a request, is the error `want` and that nothing changed.
fn expect_errno<T>(
    st: &State,
    r: io::Result<T>,
    want: i32,
    before: (u64, Option<(u64, u64)>),
) -> Outcome {
    match r {
        Ok(_) => Outcome::fail(format!("succeeded, want {}", errno_name(want))),
        Err(e) if e.raw_os_error() == Some(want) => match snapshot(st) {
            Err(msg) => Outcome::fail(msg),
            Ok(after) if after != before => Outcome::fail(format!(
                "left something behind: VmLck {} kB -> {} kB, main table (present, locked) \
                 {:?} -> {:?}",
                before.0, after.0, before.1, after.1
            )),
            Ok(_) => Outcome::pass(),
        },
        Err(e) => Outcome::fail(format!("got {}, want {}", describe(&e), errno_name(want))),
    }
}

/// The parameter cases of `bad_arguments`.
const BAD_CASES: [&str; 18] = [
    "argsz_0",
    "argsz_39",
    "argsz_41",
    "flags_1",
    "page_shift_11",
    "page_shift_35",
    "size_0",
    "offset_size_overflow",
    "end_past_limit",
    "vm_fd_minus_1",
    "vm_fd_dev_null",
    "vm_fd_dev_kvm",
    "duplicate_liobn",
    "same_liobn_second_vm",
    "unknown_ioctl",
    "table_info_on_device",
    "memlock_enomem",
    "huge_window_enomem",
];

/// A valid request on the main VM for LIOBN 2, which no table uses: each case spoils one field.
fn good_request(st: &State) -> Result<CreateTable, Stop> {
    Ok(CreateTable::new(
        st.vm()?.as_raw_fd(),
        Window {
            liobn: 0x2,
            ..MAIN_WINDOW
        },
    ))
}

/// Runs one case of `bad_arguments`.
fn bad_case(st: &State, case: &str) -> Result<Outcome, Stop> {
    let dev = st.dev()?;
    let before = snapshot(st).map_err(Stop::Fail)?;
    // Each refused request must also say why in the kernel log (pr_debug, "tce_accel: create:").
    let create = |req: CreateTable, want: i32| {
        let mut kmsg = match sys::Kmsg::open_at_end() {
            Ok(k) => k,
            Err(e) => return Outcome::fail(format!("open /dev/kmsg: {}", describe(&e))),
        };
        let outcome = expect_errno(st, io_create(dev, &req), want, before);
        if outcome.status != Status::Pass {
            return outcome;
        }
        let logged = kmsg.new_messages();
        match logged.iter().find(|m| m.starts_with("tce_accel: create:")) {
            Some(_) => outcome,
            None => Outcome::fail(format!(
                "refused without a pr_debug line (new kernel log: {logged:?})"
            )),
        }
    };
    let spoilt = |f: &dyn Fn(&mut CreateTable)| -> Result<CreateTable, Stop> {
        let mut req = good_request(st)?;
        f(&mut req);
        Ok(req)
    };
    Ok(match case {
        "argsz_0" => create(spoilt(&|r| r.argsz = 0)?, EINVAL),
        "argsz_39" => create(spoilt(&|r| r.argsz = 39)?, EINVAL),
        "argsz_41" => create(spoilt(&|r| r.argsz = 41)?, EINVAL),
        "flags_1" => create(spoilt(&|r| r.window.flags = 1)?, EINVAL),
        "page_shift_11" => create(spoilt(&|r| r.window.page_shift = 11)?, EINVAL),
        "page_shift_35" => create(spoilt(&|r| r.window.page_shift = 35)?, EINVAL),
        "size_0" => create(spoilt(&|r| r.window.size = 0)?, EINVAL),
        "offset_size_overflow" => create(
            spoilt(&|r| {
                // The sum wraps around to 0x100, which a naive bound check would accept.
                r.window.offset = u64::MAX - 0xff;
                r.window.size = 0x200;
            })?,
            EINVAL,
        ),
        "end_past_limit" => create(
            spoilt(&|r| {
                // offset + size = (u64::MAX >> 12) + 1, one past what 4 KiB pages can address.
                r.window.offset = u64::MAX >> 12;
                r.window.size = 1;
            })?,
            EINVAL,
        ),
        "vm_fd_minus_1" => {
            let mut req = CreateTable::new(-1, MAIN_WINDOW);
            req.window.liobn = 0x2;
            create(req, EBADF)
        }
        "vm_fd_dev_null" => {
            let null = sys::open_rw("/dev/null").or_fail(|| "open /dev/null".into())?;
            let req = spoilt(&|r| r.vm_fd = null.as_raw_fd()).or_else(|_| {
                Ok::<_, Stop>(CreateTable::new(
                    null.as_raw_fd(),
                    Window {
                        liobn: 2,
                        ..MAIN_WINDOW
                    },
                ))
            })?;
            create(req, EINVAL)
        }
        "vm_fd_dev_kvm" => {
            let kvm = st.kvm()?.as_raw_fd();
            let req = spoilt(&|r| r.vm_fd = kvm).or_else(|_| {
                Ok::<_, Stop>(CreateTable::new(
                    kvm,
                    Window {
                        liobn: 2,
                        ..MAIN_WINDOW
                    },
                ))
            })?;
            create(req, EINVAL)
        }
        "duplicate_liobn" => {
            st.table()?;
            create(CreateTable::new(st.vm()?.as_raw_fd(), MAIN_WINDOW), EBUSY)
        }
        "same_liobn_second_vm" => same_liobn_second_vm(st)?,
        "unknown_ioctl" => expect_errno(st, unknown_ioctl(dev), ENOTTY, before),
        "table_info_on_device" => expect_errno(st, io(accel::table_info(dev)), ENOTTY, before),
        "memlock_enomem" => memlock_enomem(st)?,
        "huge_window_enomem" => create(
            spoilt(&|r| {
                // 2^50 entries: valid for KVM_CREATE_SPAPR_TCE_64, and root's locked-memory
                // charge is not limited, but the table's first level cannot be allocated: the
                // module must refuse it quietly (no allocation warning) and leave nothing.
                r.window.size = 1 << 50;
            })?,
            ENOMEM,
        ),
        _ => Outcome::fail("no such case"),
    })
}

/// The main window on a second VM: succeeds (LIOBNs are per VM), and closing the table gives
/// its locked memory back.
fn same_liobn_second_vm(st: &State) -> Result<Outcome, Stop> {
    let (dev, kvm) = (st.dev()?, st.kvm()?);
    st.table()?;
    let vm2 = io(kvm::create_vm(kvm, st.cfg.vm_type)).or_fail(|| "second KVM_CREATE_VM".into())?;
    let before = process::vmlck_kb().or_fail(|| "read VmLck".into())?;
    let t = match io_create(dev, &CreateTable::new(vm2.as_raw_fd(), MAIN_WINDOW)) {
        Ok(t) => t,
        Err(e) => return Ok(Outcome::fail(format!("got {}, want a table", describe(&e)))),
    };
    let info = io(accel::table_info(t.as_fd())).or_fail(|| "TCE_ACCEL_TABLE_INFO".into())?;
    drop(t);
    let after = process::vmlck_kb().or_fail(|| "read VmLck".into())?;
    if info.window != MAIN_WINDOW {
        return Ok(Outcome::fail(format!(
            "window {:?}, want {MAIN_WINDOW:?}",
            info.window
        )));
    }
    if after != before {
        return Ok(Outcome::fail(format!(
            "VmLck {before} kB -> {after} kB after closing the table"
        )));
    }
    Ok(Outcome::pass())
}

/// Over `RLIMIT_MEMLOCK` without `CAP_IPC_LOCK`, a table is refused with ENOMEM and nothing is
/// charged. Runs in a child with its own VM, which gives up the capability for good.
fn memlock_enomem(st: &State) -> Result<Outcome, Stop> {
    let (dev, kvm) = (st.dev()?, st.kvm()?);
    let vm_type = st.cfg.vm_type;
    let (exit, msg) = in_child_with_message(|| {
        let err = |what: &str, e: io::Error| format!("{what}: {}", describe(&e));
        let vm = io(kvm::create_vm(kvm, vm_type)).map_err(|e| err("KVM_CREATE_VM", e))?;
        let before = process::vmlck_kb().map_err(|e| err("read VmLck", e))?;
        sys::set_memlock_limit(0).map_err(|e| err("setrlimit(RLIMIT_MEMLOCK, 0)", e))?;
        sys::drop_ipc_lock().map_err(|e| err("drop CAP_IPC_LOCK", e))?;
        if sys::has_ipc_lock().map_err(|e| err("capget", e))? {
            return Err("CAP_IPC_LOCK is still effective".into());
        }
        match io_create(dev, &CreateTable::new(vm.as_raw_fd(), MAIN_WINDOW)) {
            Ok(_) => Err("succeeded with RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK, want ENOMEM".into()),
            Err(e) if e.raw_os_error() == Some(ENOMEM) => {
                let after = process::vmlck_kb().map_err(|e| err("read VmLck", e))?;
                if after == before {
                    Ok(())
                } else {
                    Err(format!("VmLck {before} kB -> {after} kB after the refusal"))
                }
            }
            Err(e) => Err(format!("got {}, want ENOMEM", describe(&e))),
        }
    })?;
    Ok(match exit {
        Exit::Code(0) => Outcome::pass(),
        Exit::Code(1) => Outcome::fail(msg),
        other => Outcome::fail(format!("child {other}")),
    })
}

/// `bad_arguments`: every malformed request fails with its errno and changes nothing; run as
/// parameter cases, printed the way KUnit prints a parameterised test.
fn bad_arguments(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    st.dev()?;
    for line in ktap::header_lines(2, cx.name, BAD_CASES.len()) {
        cx.tx.send(&Msg::Line(line));
    }
    let mut stats = Stats::default();
    for (i, case) in BAD_CASES.iter().enumerate() {
        let outcome = match bad_case(st, case) {
            Ok(o) => o,
            Err(Stop::Skip(why)) => Outcome::skip(why),
            Err(Stop::Fail(why)) => Outcome::fail(why),
        };
        stats.add(outcome.status);
        cx.tx
            .send(&Msg::Line(ktap::result_line(2, i + 1, case, &outcome)));
    }
    if let Some(line) = stats.line(1, cx.name) {
        cx.tx.send(&Msg::Line(line));
    }
    cx.params = Some(stats);
    Ok(())
}

/// The tce_shim library's kernel-backend tests, put in the initramfs by scripts/qemu-test.sh.
const SHIM_TESTS: &str = "/tce-shim-tests";

/// `shim_kernel_backend`: the tce_shim library's kernel-backend tests
/// (rust/tce_shim/tests/kernel.rs) run against the real module: RTAS window setup through
/// `/dev/tce_accel`, sparse save and restore, and no fd or locked memory left behind.
fn shim_kernel_backend(_st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    let mut env = vec![("TCE_REQUIRE_MODULE", "1")];
    if cfg!(target_arch = "powerpc64") {
        env.push(("TCE_REQUIRE_KVM_TABLES", "1"));
    }
    let (ok, lines) = run_shim_tests(&[], &env)?;
    for line in &lines {
        cx.diag(line);
    }
    if ok {
        Ok(())
    } else {
        Err(Stop::Fail(format!("{SHIM_TESTS} failed")))
    }
}

/// Runs the shim's kernel-backend tests (one at a time, `filters` as test name filters) with
/// extra environment `env`; returns whether they passed and what to log: each `test` line, and
/// on failure the end of the error output.
fn run_shim_tests(filters: &[&str], env: &[(&str, &str)]) -> Result<(bool, Vec<String>), Stop> {
    if !std::path::Path::new(SHIM_TESTS).exists() {
        return Err(Stop::Fail(format!("{SHIM_TESTS} is not in the initramfs")));
    }
    let out = std::process::Command::new(SHIM_TESTS)
        .arg("--test-threads=1")
        .args(filters)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| Stop::Fail(format!("cannot run {SHIM_TESTS}: {}", describe(&e))))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with("test ") || l.starts_with("note: "))
        .map(str::to_owned)
        .collect();
    if out.status.success() && stdout.lines().any(|l| l.starts_with("test result: ok.")) {
        return Ok((true, lines));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
    lines.extend(tail.into_iter().rev().map(str::to_owned));
    lines.push(format!("{SHIM_TESTS}: {}", out.status));
    Ok((false, lines))
}

/// `shim_without_module`, run by PID 1 after `unload`: with the module gone, the shim falls back
/// to KVM's own tables (`KVM_CREATE_SPAPR_TCE_64`): RTAS window setup, entries written and read
/// back through the mapping, a dense save, KVM's errno for a taken LIOBN, nothing left behind;
/// and the strict module-only open explains what to load. Only powerpc has KVM's tables.
pub fn shim_without_module(module_loaded: bool) -> (Outcome, Vec<String>) {
    if !cfg!(target_arch = "powerpc64") {
        return (Outcome::skip("KVM has TCE tables only on powerpc"), vec![]);
    }
    if module_loaded && std::path::Path::new(DEVICE).exists() {
        return (Outcome::skip("needs unload"), vec![]);
    }
    let filters = [
        "kvm_tables_back_the_shim_when_the_module_does_not",
        "a_missing_device_is_explained",
    ];
    let name = NAMES[SHIM_WITHOUT_MODULE];
    match run_shim_tests(&filters, &[("TCE_REQUIRE_KVM_TABLES", "1")]) {
        Err(Stop::Fail(f)) | Err(Stop::Skip(f)) => (Outcome::fail(f), vec![]),
        Ok((ok, lines)) => {
            let diags = lines.iter().map(|l| ktap::diag_line(1, name, l)).collect();
            let ran = lines.iter().filter(|l| l.ends_with("... ok")).count();
            if ok && ran == filters.len() {
                (Outcome::pass(), diags)
            } else {
                (
                    Outcome::fail(format!("{SHIM_TESTS}: {ran} of {} passed", filters.len())),
                    diags,
                )
            }
        }
    }
}

/// The DDW tool, put in the initramfs by scripts/qemu-test.sh.
const DDW_TOOL: &str = "/tce-ddw";

/// `ddw_bench`: `tce-ddw bench` measures window creation (2^4 to 2^31 entries) and sparse
/// migration on the real module as well as on the simulated host; its tables go into the log
/// as diagnostics. Passes if it ran on the kernel backend and succeeded.
fn ddw_bench(_st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    if !std::path::Path::new(DDW_TOOL).exists() {
        return Err(Stop::Fail(format!("{DDW_TOOL} is not in the initramfs")));
    }
    let out = std::process::Command::new(DDW_TOOL)
        .args(["bench", "--runs", "5"])
        .output()
        .map_err(|e| Stop::Fail(format!("cannot run {DDW_TOOL}: {}", describe(&e))))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        cx.diag(line);
    }
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        cx.diag(line);
    }
    let kernel_rows = stdout.lines().filter(|l| l.starts_with("kernel ")).count();
    if !out.status.success() {
        return Err(Stop::Fail(format!("tce-ddw bench failed ({})", out.status)));
    }
    if kernel_rows < 2 || stdout.contains("kernel backend: skipped") {
        return Err(Stop::Fail(
            "tce-ddw bench did not measure the kernel backend".into(),
        ));
    }
    Ok(())
}

/// The tests of the sample VMM (tools/testing/tce-vmm-test), put in the initramfs by
/// scripts/qemu-test.sh (TCE_VMM_TEST).
const VMM: &str = "/tce-vmm-test";

/// The sample VMM itself (samples/tce_vmm), put in the initramfs by scripts/qemu-test.sh
/// (TCE_VMM).
const SAMPLE_VMM: &str = "/tce-vmm";

/// The longest piece of a VMM output line printed as one diagnostic; longer lines (the
/// benchmark's JSON) are split into numbered parts, `[i/n] ...`, which the host joins again.
const VMM_LINE_PART: usize = 800;

/// Why the guest tests cannot run here: the VMM runs a KVM-HV guest, which only the ppc64le
/// test VM (nested KVM-HV) offers, and its programs must be in the initramfs.
fn vmm_unavailable() -> Option<String> {
    if !cfg!(target_arch = "powerpc64") {
        return Some("the sample VMM needs the emulated POWER host (KVM-HV, ppc64le)".into());
    }
    for (program, var) in [(VMM, "TCE_VMM_TEST"), (SAMPLE_VMM, "TCE_VMM")] {
        if !std::path::Path::new(program).exists() {
            return Some(format!(
                "{program} is not in the initramfs ({var} is not set)"
            ));
        }
    }
    None
}

/// Prints one line of the VMM's output as diagnostics, in parts if it is long.
fn vmm_diag(cx: &Ctx<'_>, line: &str) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= VMM_LINE_PART {
        cx.diag(line);
        return;
    }
    let parts: Vec<String> = chars
        .chunks(VMM_LINE_PART)
        .map(|c| c.iter().collect())
        .collect();
    for (i, part) in parts.iter().enumerate() {
        cx.diag(&format!("[{}/{}] {part}", i + 1, parts.len()));
    }
}

/// Runs the VMM's tests with `args`; see [`run_program`].
fn run_vmm(cx: &Ctx<'_>, args: &[&str]) -> Result<(bool, Vec<String>), Stop> {
    run_program(cx, VMM, args)
}

/// Runs `program` with `args`, printing each line of its output as a diagnostic as it comes
/// (which also tells PID 1 that the runner is alive); returns whether it exited with status 0
/// and its standard output.
fn run_program(cx: &Ctx<'_>, program: &str, args: &[&str]) -> Result<(bool, Vec<String>), Stop> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Stop::Fail(format!("cannot run {program}: {}", describe(&e))))?;
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
        }
        text
    });
    let mut lines = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            vmm_diag(cx, &line);
            lines.push(line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| Stop::Fail(format!("waiting for {program}: {}", describe(&e))))?;
    for line in errors.join().unwrap_or_default().lines() {
        vmm_diag(cx, line);
    }
    if !status.success() {
        cx.diag(&format!(
            "{program} {} exited with {status}",
            args.join(" ")
        ));
    }
    Ok((status.success(), lines))
}

/// The last line of `lines` that starts with `prefix`.
fn last_with<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with(prefix))
        .map(String::as_str)
}

/// `guest_e2e`: `tce-vmm-test check`: a KVM-HV guest issues every TCE hypercall on a tce_accel
/// window (made through the DDW shim), a KVM table and a window only the VMM knows; every
/// result and the final tables are compared with the simulator, then a hostile guest passes
/// bad arguments and hammers the tce_accel window from several vCPUs while it is removed.
fn guest_e2e(_st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    if let Some(why) = vmm_unavailable() {
        return Err(Stop::Skip(why));
    }
    let (ok, lines) = run_vmm(cx, &["check"])?;
    vmm_verdict(ok, &lines, "check")
}

/// `one_vm_stalls_no_other`: `tce-vmm-test stall`: VM A's vCPU sleeps in an `H_PUT_TCE_INDIRECT`
/// whose list is on a missing userfaultfd page, on a table the module serves (created through
/// KVM with `takeover` on); meanwhile VM B creates and closes 200 tables, each step under a
/// second. Then the page is filled and VM A's call must finish with `H_SUCCESS`.
fn one_vm_stalls_no_other(_st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    if let Some(why) = vmm_unavailable() {
        return Err(Stop::Skip(why));
    }
    let (ok, lines) = run_vmm(cx, &["stall"])?;
    vmm_verdict(ok, &lines, "stall")
}

/// `table_churn_spares_other_vms`: `tce-vmm-test churn`: VM A creates and closes 100,000 tables
/// (`tce.churn`)
/// (through KVM, `takeover` on) while VM B times `H_PUT_TCE`; VM B's median must stay within
/// 1.5 times the larger of its quiet median and its median beside a table-free control thread.
/// Then VM A gets `ENOSPC` at exactly `max_tables_per_vm` tables, and its locked memory is back
/// after closing them. The kernel must log no warning meanwhile.
fn table_churn_spares_other_vms(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    if let Some(why) = vmm_unavailable() {
        return Err(Stop::Skip(why));
    }
    let mut kmsg = sys::Kmsg::open_at_end().or_fail(|| "open /dev/kmsg".into())?;
    let tables = st.cfg.churn_tables.to_string();
    let (ok, lines) = run_vmm(cx, &["churn", "--tables", &tables])?;
    fail_on_kernel_problems(&mut kmsg, cx);
    vmm_verdict(ok, &lines, "churn")
}

/// `sample_vmm`: the sample VMM's own run (`tce-vmm`, no arguments), as a VMM author first
/// runs it: its guest makes a DMA window through the DDW shim and issues six TCE hypercalls on
/// that window, on one of KVM's tables and on a window only the VMM knows, then removes its
/// window. Passes if it exited successfully and its last line is `tce-vmm: PASS`.
fn sample_vmm(_st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    if let Some(why) = vmm_unavailable() {
        return Err(Stop::Skip(why));
    }
    let (ok, lines) = run_program(cx, SAMPLE_VMM, &[])?;
    match lines.last() {
        Some(last) if ok && last == "tce-vmm: PASS" => Ok(()),
        Some(last) => Err(Stop::Fail(last.clone())),
        None => Err(Stop::Fail(format!("{SAMPLE_VMM} printed nothing"))),
    }
}

/// The module's parameter that sends `KVM_CREATE_SPAPR_TCE_64` tables to it.
const TAKEOVER: &str = "/sys/module/tce_accel/parameters/takeover";

/// `kvm_tables_follow_takeover` (powerpc): what QEMU sees. With `takeover` on,
/// `KVM_CREATE_SPAPR_TCE_64` makes tables the module serves (its `TCE_ACCEL_TABLE_INFO` works on
/// KVM's file) and bad arguments get KVM's errnos; with it off, KVM's own (`ENOTTY`). A LIOBN is
/// busy across both kinds, and the parameter is back as it was at the end.
fn kvm_tables_follow_takeover(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    if !cfg!(target_arch = "powerpc64") {
        return Err(Stop::Skip("KVM has TCE tables only on powerpc".into()));
    }
    let vm = st.vm()?;
    let old = std::fs::read_to_string(TAKEOVER).or_fail(|| format!("read {TAKEOVER}"))?;
    let set = |v: &str| std::fs::write(TAKEOVER, v).or_fail(|| format!("write {v} to {TAKEOVER}"));
    let r = (|| -> Result<(), Stop> {
        set("1")?;
        let good = Window {
            liobn: 0x7500_0000,
            page_shift: 12,
            flags: 0,
            offset: 0,
            size: 1 << 20,
        };
        let bad = [
            (
                "page_shift 11",
                Window {
                    page_shift: 11,
                    ..good
                },
                EINVAL,
            ),
            (
                "page_shift 35",
                Window {
                    page_shift: 35,
                    ..good
                },
                EINVAL,
            ),
            ("size 0", Window { size: 0, ..good }, EINVAL),
            (
                "offset + size past 2^64 >> page_shift",
                Window {
                    offset: u64::MAX >> 12,
                    size: 2,
                    ..good
                },
                EINVAL,
            ),
        ];
        for (what, w, errno) in bad {
            let got = io(kvm::create_spapr_tce_64(vm, &w));
            cx.check(
                matches!(&got, Err(e) if e.raw_os_error() == Some(errno)),
                || format!("KVM_CREATE_SPAPR_TCE_64 with {what}: {got:?}, want errno {errno}"),
            );
        }
        let mine = io(kvm::create_spapr_tce_64(vm, &good))
            .or_fail(|| "KVM_CREATE_SPAPR_TCE_64 with takeover=1".into())?;
        match io(accel::table_info(mine.as_fd())) {
            Ok(info) => {
                cx.check_eq(
                    "the module's window of a KVM-created table",
                    info.window,
                    good,
                );
            }
            Err(e) => {
                cx.check(false, || {
                    format!("TCE_ACCEL_TABLE_INFO on a table made with takeover=1: {e}")
                });
            }
        }
        let dup = io(kvm::create_spapr_tce_64(vm, &good));
        cx.check(
            matches!(&dup, Err(e) if e.raw_os_error() == Some(EBUSY)),
            || {
                format!(
                    "a second KVM table for LIOBN {:#x}: {dup:?}, want EBUSY",
                    good.liobn
                )
            },
        );
        set("0")?;
        let dup = io(kvm::create_spapr_tce_64(vm, &good));
        cx.check(
            matches!(&dup, Err(e) if e.raw_os_error() == Some(EBUSY)),
            || {
                format!(
                    "with takeover=0, LIOBN {:#x} again: {dup:?}, want EBUSY",
                    good.liobn
                )
            },
        );
        let kvms = Window {
            liobn: 0x7500_0001,
            ..good
        };
        let theirs = io(kvm::create_spapr_tce_64(vm, &kvms))
            .or_fail(|| "KVM_CREATE_SPAPR_TCE_64 with takeover=0".into())?;
        let info = io(accel::table_info(theirs.as_fd()));
        cx.check(
            matches!(&info, Err(e) if e.raw_os_error() == Some(ENOTTY)),
            || format!("TCE_ACCEL_TABLE_INFO on KVM's own table: {info:?}, want ENOTTY"),
        );
        cx.diag("takeover=1: the module's table, KVM's errnos; takeover=0: KVM's own table");
        Ok(())
    })();
    set(old.trim())?;
    r
}

/// The verdict of `tce-vmm-test MODE`: passed if it exited successfully and its summary line
/// (`tce-vmm-test MODE: PASS...`) says so; otherwise the summary, or the VMM's error line, is
/// the failure.
fn vmm_verdict(ok: bool, lines: &[String], mode: &str) -> Result<(), Stop> {
    let prefix = format!("tce-vmm-test {mode}: ");
    match last_with(lines, &prefix) {
        Some(s) if ok && s.starts_with(&format!("{prefix}PASS")) => Ok(()),
        Some(s) => Err(Stop::Fail(s.to_string())),
        None => Err(Stop::Fail(
            last_with(lines, "tce-vmm-test: error: ").map_or_else(
                || format!("tce-vmm-test {mode} printed no summary"),
                str::to_string,
            ),
        )),
    }
}

/// `guest_bench`: `tce-vmm-test bench`: per-call latency of the four TCE hypercalls on the three
/// paths, from the guest's timebase; the table, the ratios and the JSON line (after
/// `TCE_VMM_JSON `) land in the log. Passes if every call succeeded.
fn guest_bench(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    if let Some(why) = vmm_unavailable() {
        return Err(Stop::Skip(why));
    }
    if !st.cfg.bench {
        return Err(Stop::Skip("tce.bench=0 on the kernel command line".into()));
    }
    // Where the module's code is, for naming the addresses of a profile of the calls
    // (scripts/cost-profile.sh).
    let text = format!("/sys/module/{}/sections/.text", st.cfg.name);
    if let Ok(addr) = std::fs::read_to_string(&text) {
        cx.diag(&format!("module text at {}", addr.trim()));
    }
    let (ok, lines) = run_vmm(cx, &["bench"])?;
    vmm_verdict(ok, &lines, "bench")?;
    if last_with(&lines, "TCE_VMM_JSON ").is_none() {
        return Err(Stop::Fail("tce-vmm-test bench printed no JSON line".into()));
    }
    Ok(())
}

/// The PCI device `vfio_attach` passes through: QEMU's `-device virtio-rng-pci`, which
/// scripts/qemu-test.sh adds to the ppc64le command line.
const VFIO_DEVICE: &str = "0000:00:02.0";

/// Why `vfio_attach` cannot run here: besides the VMM, it needs VFIO with the sPAPR TCE IOMMU
/// (the ppc64le kernels have it) and the PCI device to pass through.
fn vfio_unavailable() -> Option<String> {
    if let Some(why) = vmm_unavailable() {
        return Some(why);
    }
    if !std::path::Path::new("/dev/vfio/vfio").exists() {
        return Some("/dev/vfio/vfio does not exist: the kernel has no VFIO".into());
    }
    let dev = format!("/sys/bus/pci/devices/{VFIO_DEVICE}");
    if !std::path::Path::new(&dev).exists() {
        return Some(format!(
            "no PCI device {VFIO_DEVICE} to pass through (QEMU needs -device virtio-rng-pci)"
        ));
    }
    None
}

/// `vfio_attach`: `tce-vmm-test vfio`: a group of a VFIO v1 container is refused by both attaches
/// (the module's and the KVM-VFIO device's), and the KVM-VFIO device releases a group it
/// never gave a table without a kernel warning; then the guest's DMA window gets the VFIO
/// group of an emulated PCI device attached through `TCE_ACCEL_ATTACH_GROUP`; the guest's TCE hypercalls must update
/// the hardware table (every entry read back with `TCE_ACCEL_HW_ENTRY` and compared with the
/// host physical address of the guest page), bad attaches must fail with their errno, and
/// after the guest removes the window the guest RAM must unregister (no page left mapped).
fn vfio_attach(_st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    if let Some(why) = vfio_unavailable() {
        return Err(Stop::Skip(why));
    }
    let mut kmsg = sys::Kmsg::open_at_end().or_fail(|| "open /dev/kmsg".into())?;
    let (ok, lines) = run_vmm(cx, &["vfio", "--device", VFIO_DEVICE])?;
    // A group that the KVM-VFIO device knew but never gave a table used to warn on release.
    fail_on_kernel_problems(&mut kmsg, cx);
    vmm_verdict(ok, &lines, "vfio")
}

/// `unload_refused_while_open`: with a table open, `delete_module(O_NONBLOCK)` fails.
fn unload_refused_while_open(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    st.table()?;
    match sys::delete_module(&st.cfg.name, true) {
        Ok(()) => Err(Stop::Fail(
            "delete_module succeeded with a table open: the module is gone under its files".into(),
        )),
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(0);
            // EWOULDBLOCK is EAGAIN on Linux.
            if errno == EBUSY || errno == EAGAIN {
                cx.diag(&format!("delete_module refused with {}", describe(&e)));
                Ok(())
            } else {
                Err(Stop::Fail(format!(
                    "delete_module: {}, want EBUSY or EAGAIN/EWOULDBLOCK",
                    describe(&e)
                )))
            }
        }
    }
}

/// How many tables `many_tables` keeps open at once: many tables of one VM on KVM's list and
/// in the module's registry at the same time.
const MANY_TABLES: u64 = 40;

/// The window of table `i` of `many_tables`: LIOBN 0x1000 + i, 16 entries of 4 KiB.
fn many_window(i: u64) -> Window {
    Window {
        liobn: 0x1000 + i,
        page_shift: 12,
        flags: 0,
        offset: 0,
        size: 16,
    }
}

/// `many_tables`: [`MANY_TABLES`] tables of one VM exist at once, each with its own window; a
/// second table for one of their LIOBNs is busy; every other one closed and created again
/// takes a freed place; once all are closed, VmLck is back where it was.
fn many_tables(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    let (dev, vm) = (st.dev()?, st.vm()?);
    let before = process::vmlck_kb().or_fail(|| "read VmLck".into())?;
    let create = |i: u64| {
        let req = CreateTable::new(vm.as_raw_fd(), many_window(i));
        io_create(dev, &req)
            .or_fail(|| format!("TCE_ACCEL_CREATE_TABLE for LIOBN {:#x}", 0x1000 + i))
    };
    let mut tables = Vec::new();
    for i in 0..MANY_TABLES {
        tables.push(Some(create(i)?));
    }
    let dup = io_create(dev, &CreateTable::new(vm.as_raw_fd(), many_window(7)));
    cx.check(
        matches!(&dup, Err(e) if e.raw_os_error() == Some(EBUSY)),
        || format!("a second table for LIOBN 0x1007: {dup:?}, want EBUSY"),
    );
    for t in tables.iter_mut().step_by(2) {
        *t = None;
    }
    for i in (0..MANY_TABLES).step_by(2) {
        tables[i as usize] = Some(create(i)?);
    }
    for (i, t) in (0u64..).zip(tables.iter().flatten()) {
        let info =
            io(accel::table_info(t.as_fd())).or_fail(|| format!("TCE_ACCEL_TABLE_INFO {i}"))?;
        cx.check_eq(&format!("window of table {i}"), info.window, many_window(i));
    }
    drop(tables);
    let after = process::vmlck_kb().or_fail(|| "read VmLck".into())?;
    cx.check_eq("VmLck (kB) after closing every table", after, before);
    cx.diag(&format!(
        "{MANY_TABLES} tables open at once, every other one closed and created again, all \
         closed: VmLck {before} kB -> {after} kB"
    ));
    Ok(())
}

/// `close_releases`: once the last table is closed, VmLck is what it was before the first
/// table was made.
fn close_releases(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    st.table()?;
    let (before, _) = st.vmlck.ok_or_else(|| needs("create_table"))?;
    st.table = None;
    let now = process::vmlck_kb().or_fail(|| "read VmLck".into())?;
    cx.check_eq("VmLck (kB) after closing the table", now, before);
    Ok(())
}

/// KUnit's suite filter for the suites run when a module loads; writable at run time.
const KUNIT_FILTER: &str = "/sys/module/kunit/parameters/filter_glob";

/// A suite filter that matches no suite.
const NO_SUITE: &str = "tce_init_reload_runs_no_suite";

/// How long `tce-vmm-test hammer` runs, in seconds.
const HAMMER_SECONDS: &str = "5";

/// The least number of unload and load cycles while the VMM runs.
const MIN_CYCLES: usize = 10;

/// The most cycles: the test keeps cycling while the VMM runs, up to this many.
const MAX_CYCLES: usize = 100;

/// The line of `tce-vmm-test hammer` that says every vCPU is issuing hypercalls.
const HAMMER_RUNNING: &str = "tce-vmm-test: hammer: running: ";

/// Fails the test for every kernel warning, bug or leak report logged since `kmsg` was
/// opened (or last read), printing up to 20 of them.
fn fail_on_kernel_problems(kmsg: &mut sys::Kmsg, cx: &mut Ctx<'_>) {
    let problems: Vec<String> = kmsg
        .new_kernel_messages()
        .into_iter()
        .filter(|m| kernel_problem(m))
        .collect();
    for p in problems.iter().take(20) {
        cx.diag(&format!("kernel: {p}"));
    }
    if let Some(first) = problems.first() {
        cx.fail(format!(
            "the kernel logged {} problem lines, the first: {first}",
            problems.len()
        ));
    }
}

/// Kernel log messages that fail a test that reads the log itself.
fn kernel_problem(msg: &str) -> bool {
    [
        "WARNING:",
        "BUG:",
        "Oops",
        "Kernel panic",
        "Call Trace",
        "kmemleak:",
    ]
    .iter()
    .any(|p| msg.contains(p))
}

/// `unload_during_hypercalls`: while `tce-vmm-test hammer` keeps two vCPUs issuing TCE hypercalls
/// (on a LIOBN no table has, which exits to the VMM, and on a table KVM itself serves, made
/// with `takeover` off), the module is unloaded and loaded again, at least [`MIN_CYCLES`] times.
/// Every hypercall must get its right answer, the module must be loaded at the end, and the
/// kernel must log no warning. The module's own KUnit suites, which ran at the first load, are
/// filtered out for the reloads, so that they print nothing inside this suite.
fn unload_during_hypercalls(st: &mut State, cx: &mut Ctx<'_>) -> Result<(), Stop> {
    if let Some(why) = vmm_unavailable() {
        return Err(Stop::Skip(why));
    }
    if !st.module_loaded {
        return Err(needs("load_module"));
    }
    // Nothing of this process may hold the module: close the table and the device.
    st.table = None;
    st.dev = None;
    let module = sys::open_ro(&st.cfg.module).or_fail(|| format!("open {}", st.cfg.module))?;
    let old_filter = std::fs::read_to_string(KUNIT_FILTER).map_err(|e| {
        Stop::Skip(format!(
            "cannot read {KUNIT_FILTER} ({}): the module's KUnit suites would run at every reload",
            describe(&e)
        ))
    })?;
    std::fs::write(KUNIT_FILTER, NO_SUITE).or_fail(|| format!("write {KUNIT_FILTER}"))?;
    let r = reload_while_hammered(st, cx, module.as_fd());
    // An unset filter reads "(null)" and means every suite.
    let old = match old_filter.trim() {
        "(null)" => "*.*",
        f => f,
    };
    if let Err(e) = std::fs::write(KUNIT_FILTER, old) {
        cx.fail(format!("restore {KUNIT_FILTER} to {old}: {}", describe(&e)));
    }
    r
}

/// The milliseconds of `d`.
fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The body of `unload_during_hypercalls`: starts the VMM, cycles the module, checks.
fn reload_while_hammered(st: &State, cx: &mut Ctx<'_>, module: BorrowedFd<'_>) -> Result<(), Stop> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    let name = st.cfg.name.as_str();
    let mut kmsg = sys::Kmsg::open_at_end().or_fail(|| "open /dev/kmsg".into())?;
    let mut child = Command::new(VMM)
        .args(["hammer", "--seconds", HAMMER_SECONDS])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Stop::Fail(format!("cannot run {VMM}: {}", describe(&e))))?;
    // The VMM's lines come through a channel, so that the cycles run while it prints.
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        if let Some(out) = stdout {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        }
    });
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
        }
        text
    });
    let mut lines = Vec::new();
    let running = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                vmm_diag(cx, &line);
                let running = line.starts_with(HAMMER_RUNNING);
                lines.push(line);
                if running {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };

    let mut unloads = Vec::new();
    let mut loads = Vec::new();
    let mut during = 0;
    let mut error = None;
    if running {
        let mut vmm_running = true;
        while unloads.len() < MAX_CYCLES {
            vmm_running = vmm_running && matches!(child.try_wait(), Ok(None));
            if !vmm_running && unloads.len() >= MIN_CYCLES {
                break;
            }
            let cycle = unloads.len() + 1;
            let t = Instant::now();
            if let Err(e) = sys::delete_module(name, true) {
                error = Some(format!(
                    "cycle {cycle}: delete_module(\"{name}\", O_NONBLOCK): {}",
                    describe(&e)
                ));
                break;
            }
            unloads.push(t.elapsed());
            let t = Instant::now();
            if let Err(e) = sys::finit_module(module, &st.cfg.params, 0) {
                error = Some(format!(
                    "cycle {cycle}: finit_module({}, \"{}\"): {}",
                    st.cfg.module,
                    st.cfg.params,
                    describe(&e)
                ));
                break;
            }
            loads.push(t.elapsed());
            during += usize::from(vmm_running);
        }
    } else {
        cx.fail(format!(
            "{VMM} hammer did not say that its vCPUs were running (no \"{}\" line)",
            HAMMER_RUNNING.trim_end()
        ));
        let _ = child.kill();
    }
    for line in rx {
        vmm_diag(cx, &line);
        lines.push(line);
    }
    let _ = reader.join();
    let status = child
        .wait()
        .map_err(|e| Stop::Fail(format!("waiting for {VMM}: {}", describe(&e))))?;
    for line in errors.join().unwrap_or_default().lines() {
        vmm_diag(cx, line);
    }

    let stats = |v: &[Duration]| {
        let min = v.iter().min().copied().unwrap_or_default();
        let max = v.iter().max().copied().unwrap_or_default();
        format!("{:.1} to {:.1} ms", ms(min), ms(max))
    };
    cx.diag(&format!(
        "{} unload and load cycles, {during} of them begun while the VMM ran: delete_module {}, \
         finit_module {}",
        loads.len(),
        stats(&unloads),
        stats(&loads)
    ));
    if let Some(e) = error {
        cx.fail(e);
    }
    if running && during < MIN_CYCLES {
        cx.fail(format!(
            "only {during} cycles while the VMM ran, want at least {MIN_CYCLES}"
        ));
    }
    if let Err(Stop::Fail(why)) = vmm_verdict(status.success(), &lines, "hammer") {
        cx.fail(format!("{why} ({status})"));
    }
    let initstate = format!("/sys/module/{name}/initstate");
    let state = std::fs::read_to_string(&initstate).unwrap_or_default();
    cx.check(state.trim() == "live", || {
        format!(
            "the module is not loaded at the end ({initstate}: {:?})",
            state.trim()
        )
    });
    cx.check(std::fs::symlink_metadata(DEVICE).is_ok(), || {
        format!("{DEVICE} is missing after the last load")
    });
    fail_on_kernel_problems(&mut kmsg, cx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The undefined request is what `<linux/ioctl.h>` makes of `_IO(0xB9, 0x7f)` here: on
    /// powerpc `_IO` sets a direction bit.
    #[test]
    fn unknown_request_number() {
        let want = if cfg!(target_arch = "powerpc64") {
            0x2000_B97F
        } else {
            0x0000_B97F
        };
        assert_eq!(UNKNOWN as u64, want);
    }

    #[test]
    fn indices_match_names() {
        assert_eq!(NAMES[LOAD], "load_module");
        assert_eq!(NAMES[FIRST_RUNNER], "open_device");
        assert_eq!(NAMES[LAST_RUNNER], "sample_vmm");
        assert_eq!(NAMES[UNLOAD], "unload");
        assert_eq!(NAMES[SHIM_WITHOUT_MODULE], "shim_without_module");
        assert_eq!(NAMES[KMEMLEAK], "kmemleak");
        assert_eq!(UNLOAD, LAST_RUNNER + 1);
        assert_eq!(KMEMLEAK, NAMES.len() - 1);
    }

    #[test]
    fn last_entry_of_the_main_window() {
        assert_eq!(LAST_ENTRY, 0x1f_fff8);
        // 512 pages of 4 KiB or 32 pages of 64 KiB; the last entry is in the last one.
        assert_eq!(LAST_ENTRY / 4096, 511);
        assert_eq!(LAST_ENTRY / 65536, 31);
    }

    #[test]
    fn conclusions() {
        let tx = Tx(None);
        let mut cx = Ctx {
            tx: &tx,
            name: "t",
            failures: vec![],
            params: None,
        };
        assert_eq!(conclude(Ok(()), &cx), Outcome::pass());
        assert_eq!(
            conclude(Err(Stop::Skip("needs x".into())), &cx),
            Outcome::skip("needs x")
        );
        cx.params = Some(Stats {
            pass: 1,
            fail: 2,
            skip: 0,
        });
        assert_eq!(conclude(Ok(()), &cx), Outcome::fail("2 of 3 cases failed"));
        cx.failures = vec!["a".into(), "b".into()];
        assert_eq!(
            conclude(Ok(()), &cx),
            Outcome::fail("a (and 1 more failed checks)")
        );
    }
}
