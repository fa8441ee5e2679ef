// SPDX-License-Identifier: GPL-2.0
//! The VMM: a KVM-HV VM with the guest payload, a PHB whose DMA windows the DDW shim backs with
//! `tce_accel` tables, the three paths, and the vCPU loop that answers the guest's exits.

use std::collections::BTreeSet;
use std::sync::{
    Arc,
    Mutex,
    MutexGuard, //
};

use tce_ddw_model::{
    cells::HEADER_BYTES,
    PhbDesc,
    RtasCall,
    RtasStatus, //
};
use tce_engine::tce::{
    H_PUT_TCE_INDIRECT,
    H_STUFF_TCE, //
};
use tce_engine::window::WindowParams;
use tce_shim::vfio::Container;
use tce_shim::{
    HwTables,
    KernelTables,
    Shim,
    Table, //
};

use crate::error::{
    chain,
    Error,
    Result, //
};
use crate::guest::{
    CallResult,
    Job,
    ENTRY,
    H_GUEST_INTERRUPT,
    H_JOB_DONE,
    H_PROGRESS,
    MSR_SF_LE,
    PAYLOAD,
    RAM_SIZE,
    RTAS_BUFFERS, //
};
use crate::hcall::{
    Hcall,
    H_FUNCTION,
    H_PARAMETER,
    H_RTAS, //
};
use crate::kvm::{
    Exit,
    Kvm,
    Vcpu,
    Vm, //
};
use crate::memory::{
    GuestAddress,
    GuestRam, //
};
use crate::paths::{
    PathKind,
    Paths, //
};
use crate::progress;
use crate::table::{
    MappedTable,
    Owner, //
};
use tce_sys::process;
use tce_uapi::kvm::{
    KVM_CAP_PPC_ENABLE_HCALL,
    KVM_CAP_SPAPR_TCE_64, //
};

/// The BUID of the VM's PHB.
pub const BUID: u64 = 0x0800_0000_2000_0000;
/// The LIOBN of the PHB's first window slot (its default window); the second slot is the next.
pub const LIOBN_BASE: u32 = 0x8000_0000;
/// The LIOBN of the window backed by KVM's own table.
pub const KVM_LIOBN: u64 = 0x7100_0000;
/// The LIOBN of the window only the VMM knows.
pub const USER_LIOBN: u64 = 0x7200_0000;
/// The IOMMU page shift of the three windows.
pub const WINDOW_PAGE_SHIFT: u32 = 12;
/// log2 of the three windows' size in bytes: 2^20 entries of 4 KiB.
pub const WINDOW_SHIFT: u32 = 32;

/// The RTAS tokens the VMM gives the DDW calls.
const RTAS_TOKENS: [(u32, RtasCall); 4] = [
    (0x2001, RtasCall::Query),
    (0x2002, RtasCall::Create),
    (0x2003, RtasCall::Remove),
    (0x2004, RtasCall::Reset),
];
/// The most cells an RTAS buffer of the guest may have after its header.
const RTAS_MAX_CELLS: u32 = 16;
/// The space for one RTAS buffer in [`RTAS_BUFFERS`].
const RTAS_BUFFER_BYTES: u64 = 256;

/// The LIOBNs of the three paths, and their common window.
#[derive(Clone, Copy, Debug)]
pub struct Windows {
    /// The `tce_accel` window the guest created with `ibm,create-pe-dma-window`.
    pub accel: u64,
    /// The window of KVM's own table.
    pub kvm: u64,
    /// The window only the VMM knows.
    pub user: u64,
    /// The window's parameters (with the accel LIOBN).
    pub params: WindowParams,
}

impl Windows {
    /// The LIOBN of `kind`.
    pub fn liobn(&self, kind: PathKind) -> u64 {
        match kind {
            PathKind::Accel => self.accel,
            PathKind::Kvm => self.kvm,
            PathKind::User => self.user,
        }
    }

    /// The parameters of the window of `kind`.
    pub fn params(&self, kind: PathKind) -> WindowParams {
        WindowParams {
            liobn: self.liobn(kind),
            ..self.params
        }
    }
}

/// The DDW shim of the VMM: `tce_accel` tables, with hardware windows on a PHB with VFIO
/// groups (see [`Vmm::give_vfio`]).
pub type VmmShim = Shim<HwTables<KernelTables, Arc<Container>>>;

/// The VMM.
pub struct Vmm {
    // Fields drop in order: everything that holds the VM or a table goes before the VM, and
    // the VM before its RAM (`Vm` holds a reference to the RAM too).
    /// The VM's windows.
    pub paths: Paths,
    /// The DDW shim; `None` in a VM made by [`Vmm::without_shim`].
    shim: Option<Mutex<VmmShim>>,
    vm: Vm,
    _kvm: Kvm,
    /// Guest RAM.
    pub ram: Arc<GuestRam>,
}

impl Vmm {
    /// Creates the VM: guest RAM with the payload, the in-kernel TCE hypercalls enabled, and a
    /// PHB whose default window is a `tce_accel` table.
    pub fn new() -> Result<Vmm> {
        Self::create(true)
    }

    /// Creates the VM as [`Vmm::new`] does, but without the DDW shim: it never opens
    /// `/dev/tce_accel`, so it holds no reference to the module, which can then be unloaded
    /// and loaded again while the guest runs. The guest's `H_RTAS` calls get `H_PARAMETER`.
    pub fn without_shim() -> Result<Vmm> {
        Self::create(false)
    }

    fn create(with_shim: bool) -> Result<Vmm> {
        if PAYLOAD.is_empty() {
            return Err(Error::NoPayload);
        }
        // Tables are charged to the locked-memory limit; as root the charge is not limited,
        // otherwise take what the hard limit allows.
        let _ = process::raise_memlock_limit();
        progress::step("creating the KVM-HV VM".into());
        let kvm = Kvm::open()?;
        let ram = Arc::new(GuestRam::new(RAM_SIZE as usize)?);
        ram.write(GuestAddress(0), PAYLOAD)
            .map_err(|_| Error::OutsideRam {
                what: "the guest payload",
            })?;
        let vm = kvm.create_hv_vm(ram.clone())?;
        vm.require_cap(
            "KVM_CAP_SPAPR_TCE_64",
            KVM_CAP_SPAPR_TCE_64,
            "the kernel needs CONFIG_SPAPR_TCE_IOMMU",
        )?;
        vm.require_cap(
            "KVM_CAP_PPC_ENABLE_HCALL",
            KVM_CAP_PPC_ENABLE_HCALL,
            "the kernel is too old",
        )?;
        vm.enable_hcall(H_PUT_TCE_INDIRECT, "H_PUT_TCE_INDIRECT")?;
        vm.enable_hcall(H_STUFF_TCE, "H_STUFF_TCE")?;
        let shim = if with_shim {
            progress::step("opening /dev/tce_accel and adding the PHB".into());
            let tables = KernelTables::open(vm.dup_fd()?)?;
            let phbs = [PhbDesc::simulator_default(BUID, LIOBN_BASE)];
            Some(Mutex::new(Shim::with_phbs(HwTables::new(tables), &phbs)?))
        } else {
            None
        };
        let page_shift = process::page_size().trailing_zeros();
        let vmm = Vmm {
            paths: Paths::new(page_shift),
            shim,
            vm,
            _kvm: kvm,
            ram,
        };
        if let Some(shim) = vmm.shim() {
            vmm.sync_accel_paths(&shim)?;
        }
        Ok(vmm)
    }

    /// The VM.
    pub fn vm(&self) -> &Vm {
        &self.vm
    }

    /// The DDW shim, locked; `None` in a VM without one.
    pub fn shim(&self) -> Option<MutexGuard<'_, VmmShim>> {
        self.shim
            .as_ref()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Creates vCPU `id`.
    pub fn create_vcpu(&self, id: u32) -> Result<Vcpu> {
        self.vm.create_vcpu(id)
    }

    /// Makes the paths follow the shim's windows: a window the shim created is added as an
    /// accel path, one it removed is forgotten (its table closes once no call holds it).
    fn sync_accel_paths(&self, shim: &VmmShim) -> Result<()> {
        let active: BTreeSet<u64> = shim.windows().map(|w| u64::from(w.liobn)).collect();
        for liobn in self.paths.liobns(PathKind::Accel) {
            if !active.contains(&liobn) {
                self.paths.remove(liobn);
            }
        }
        for w in shim.windows() {
            if self.paths.get(w.liobn.into()).is_none() {
                progress::trace(|| format!("adding accel window {:#x}", w.liobn));
                let table = shim.table(w.liobn)?;
                let params = table.params();
                let mapped = MappedTable::new(Owner::Accel(table), params)?;
                self.paths.add_kernel(PathKind::Accel, mapped)?;
            }
        }
        Ok(())
    }

    /// Answers the guest's `H_RTAS` with its buffer at `buf`: the DDW calls go to the shim.
    fn rtas(&self, buf: u64) -> i64 {
        let mut head = [0u8; HEADER_BYTES];
        if self.ram.read(GuestAddress(buf), &mut head).is_err() {
            return H_PARAMETER;
        }
        let cell = |i: usize| u32::from_be_bytes(head[4 * i..4 * i + 4].try_into().expect("4"));
        let (token, nargs, nret) = (cell(0), cell(1), cell(2));
        let Some(&(_, call)) = RTAS_TOKENS.iter().find(|(t, _)| *t == token) else {
            return H_PARAMETER;
        };
        if nargs.saturating_add(nret) > RTAS_MAX_CELLS {
            return H_PARAMETER;
        }
        let mut frame = vec![0u8; HEADER_BYTES + 4 * (nargs + nret) as usize];
        if self.ram.read(GuestAddress(buf), &mut frame).is_err() {
            return H_PARAMETER;
        }
        progress::trace(|| format!("RTAS {}: {nargs} args, {nret} rets", call.name()));
        let Some(mut shim) = self.shim() else {
            return H_PARAMETER;
        };
        let status = match shim.call_buffer(call, &mut frame) {
            Ok(s) => s,
            Err(e) => {
                println!("tce-vmm: note: {}: {}", call.name(), chain(&e));
                return H_PARAMETER;
            }
        };
        if let Some(e) = shim.take_backend_error() {
            println!("tce-vmm: note: {}: {}", call.name(), chain(&e));
        }
        progress::trace(|| format!("RTAS {}: status {}", call.name(), status.code()));
        if let Err(e) = self.sync_accel_paths(&shim) {
            println!("tce-vmm: error: after {}: {}", call.name(), chain(&e));
        }
        drop(shim);
        progress::trace(|| format!("RTAS {}: windows in sync", call.name()));
        if status != RtasStatus::Success {
            println!(
                "tce-vmm: note: {} returned status {}",
                call.name(),
                status.code()
            );
        }
        match self.ram.write(GuestAddress(buf), &frame) {
            Ok(()) => 0,
            Err(_) => H_PARAMETER,
        }
    }

    /// Removes window `liobn` from the VMM's own thread with `ibm,remove-pe-dma-window`, as
    /// the guest would: the shim removes the table, and the paths forget it.
    pub fn remove_window(&self, liobn: u64) -> Result<()> {
        let mut shim = self.shim().ok_or(Error::NoShim)?;
        let mut rets = [0u32; 1];
        let status = shim.call(RtasCall::Remove, &[liobn as u32], &mut rets);
        let detail = shim
            .take_backend_error()
            .map(|e| format!(": {}", chain(&e)))
            .unwrap_or_default();
        self.sync_accel_paths(&shim)?;
        if status != RtasStatus::Success {
            return Err(Error::Rtas {
                call: RtasCall::Remove.name(),
                status: status.code(),
                detail,
            });
        }
        Ok(())
    }

    /// Has the guest make `requests` (RTAS calls through `H_RTAS`) on `vcpu` and returns the
    /// return cells of each; any status but success is an error.
    fn guest_rtas(&self, vcpu: &mut Vcpu, requests: &[RtasRequest]) -> Result<Vec<Vec<u32>>> {
        let mut job = Job::default();
        for (i, r) in requests.iter().enumerate() {
            let at = RTAS_BUFFERS.add(i as u64 * RTAS_BUFFER_BYTES);
            self.ram
                .write(at, &r.buffer)
                .map_err(|_| Error::OutsideRam {
                    what: "an RTAS buffer",
                })?;
            job.calls.push(crate::guest::GuestCall {
                nr: H_RTAS,
                args: [at.0, 0, 0, 0],
            });
        }
        let results = self.run_job(vcpu, 0, &job, &|| {})?;
        let mut rets = Vec::new();
        for (i, (r, res)) in requests.iter().zip(&results).enumerate() {
            let at = RTAS_BUFFERS.add(i as u64 * RTAS_BUFFER_BYTES);
            let cells = r.rets(&self.ram, at);
            let status = cells.first().map_or(-1, |&c| c as i32);
            if res.r3 != 0 || status != 0 {
                return Err(Error::Rtas {
                    call: r.call.name(),
                    status,
                    detail: format!(" (H_RTAS returned {})", res.r3),
                });
            }
            rets.push(cells);
        }
        Ok(rets)
    }

    /// Has the guest ask for a DMA window of `2^window_shift` bytes of `2^page_shift`-byte
    /// IOMMU pages with `ibm,query-pe-dma-window` and `ibm,create-pe-dma-window`; the shim
    /// backs it with a `tce_accel` table. Returns the window's parameters.
    pub fn create_guest_window(
        &self,
        vcpu: &mut Vcpu,
        page_shift: u32,
        window_shift: u32,
    ) -> Result<WindowParams> {
        let buid = [(BUID >> 32) as u32, BUID as u32];
        let query = RtasRequest::new(RtasCall::Query, &[0, buid[0], buid[1]], 5);
        let create = RtasRequest::new(
            RtasCall::Create,
            &[0, buid[0], buid[1], page_shift, window_shift],
            4,
        );
        let rets = self.guest_rtas(vcpu, &[query, create])?;
        let accel = u64::from(rets[1][1]);
        self.paths
            .get(accel)
            .map(|p| *p.params())
            .ok_or(Error::Rtas {
                call: RtasCall::Create.name(),
                status: 0,
                detail: format!(" but the VMM has no window for LIOBN {accel:#x}"),
            })
    }

    /// Has the guest remove window `liobn` with `ibm,remove-pe-dma-window`.
    pub fn remove_guest_window(&self, vcpu: &mut Vcpu, liobn: u64) -> Result<()> {
        let remove = RtasRequest::new(RtasCall::Remove, &[liobn as u32], 1);
        self.guest_rtas(vcpu, &[remove]).map(drop)
    }

    /// Sets up the three paths: the guest asks for a 2^20-entry DMA window with
    /// `ibm,query-pe-dma-window` and `ibm,create-pe-dma-window` (the shim backs it with a
    /// `tce_accel` table), then the VMM makes a KVM table and an engine table with the same
    /// parameters.
    pub fn set_up_windows(&self, vcpu: &mut Vcpu) -> Result<Windows> {
        let params = self.create_guest_window(vcpu, WINDOW_PAGE_SHIFT, WINDOW_SHIFT)?;
        let windows = Windows {
            accel: params.liobn,
            kvm: KVM_LIOBN,
            user: USER_LIOBN,
            params,
        };
        self.add_kvm_window(windows.params(PathKind::Kvm))?;
        self.paths.add_user(windows.params(PathKind::User))?;
        Ok(windows)
    }

    /// Adds a window backed by one of KVM's own tables (`KVM_CREATE_SPAPR_TCE_64`), mapped
    /// by the VMM; KVM answers its hypercalls in the kernel.
    pub fn add_kvm_window(&self, params: WindowParams) -> Result<()> {
        let fd = self.vm.create_spapr_tce_64(&params)?;
        let table = MappedTable::new(Owner::Kvm(fd), params)?;
        self.paths.add_kernel(PathKind::Kvm, table)
    }

    /// Runs `job` on `vcpu` (in job area `area`) from the payload's entry until the guest says
    /// it is done, answering every hypercall it exits with; returns what the guest saw.
    /// `on_progress` is called for each [`H_PROGRESS`] of the job.
    pub fn run_job(
        &self,
        vcpu: &mut Vcpu,
        area: usize,
        job: &Job,
        on_progress: &dyn Fn(),
    ) -> Result<Vec<CallResult>> {
        progress::step(format!(
            "vCPU {}: running a job of {} calls",
            vcpu.id(),
            job.calls.len()
        ));
        let desc = job.store(&self.ram, area, H_JOB_DONE)?;
        let mut regs = vcpu.regs()?;
        regs.pc = ENTRY;
        regs.msr = MSR_SF_LE;
        regs.gpr[31] = desc.0;
        vcpu.set_regs(&regs)?;
        loop {
            let exit = vcpu.run()?;
            progress::trace(|| format!("vCPU {}: exit {exit:x?}", vcpu.id()));
            let (nr, args) = match exit {
                Exit::Hcall { nr, args } => (nr, args),
                Exit::Other(reason) => {
                    return Err(Error::UnexpectedExit {
                        vcpu: vcpu.id(),
                        reason,
                    })
                }
            };
            match nr {
                H_JOB_DONE => break,
                H_GUEST_INTERRUPT => {
                    return Err(Error::GuestInterrupt {
                        vcpu: vcpu.id(),
                        vector: args[0].wrapping_sub(12),
                        srr0: args[1],
                        srr1: args[2],
                    })
                }
                H_PROGRESS => {
                    on_progress();
                    vcpu.reply(0, None);
                }
                H_RTAS => {
                    let r = self.rtas(args[0]);
                    vcpu.reply(r, None);
                }
                nr => match Hcall::decode(nr, &args) {
                    Some(call) => {
                        let reply = self.paths.answer(&self.ram, &call).reply();
                        vcpu.reply(reply.r3, reply.r4);
                    }
                    None => vcpu.reply(H_FUNCTION, None),
                },
            }
        }
        job.results(&self.ram, area)
    }
}

/// An RTAS call the VMM has the guest make: its buffer, big-endian.
struct RtasRequest {
    call: RtasCall,
    nargs: usize,
    buffer: Vec<u8>,
}

impl RtasRequest {
    fn new(call: RtasCall, args: &[u32], nret: usize) -> RtasRequest {
        let token = RTAS_TOKENS
            .iter()
            .find(|(_, c)| *c == call)
            .map_or(0, |(t, _)| *t);
        let cells = [token, args.len() as u32, nret as u32]
            .into_iter()
            .chain(args.iter().copied())
            .chain(std::iter::repeat_n(0, nret));
        RtasRequest {
            call,
            nargs: args.len(),
            buffer: cells.flat_map(u32::to_be_bytes).collect(),
        }
    }

    /// The return cells the guest got, from the buffer at `at`.
    fn rets(&self, ram: &GuestRam, at: GuestAddress) -> Vec<u32> {
        let mut bytes = vec![0u8; self.buffer.len()];
        if ram.read(at, &mut bytes).is_err() {
            return Vec::new();
        }
        bytes[HEADER_BYTES + 4 * self.nargs..]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")))
            .collect()
    }
}
