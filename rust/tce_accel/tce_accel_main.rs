// SPDX-License-Identifier: GPL-2.0

//! tce_accel: the TCE hypercall fast path for POWER KVM guests.
//!
//! The module registers `/dev/tce_accel`. Its `TCE_ACCEL_CREATE_TABLE` ioctl creates a
//! guest-view TCE table for a KVM VM (the arguments of `KVM_CREATE_SPAPR_TCE_64`) and returns a
//! file descriptor for it; the VMM maps that file to read and write the table, whose pages are
//! allocated when the mapping faults on them or a hypercall writes into them. The table logic
//! is the portable engine of `rust/tce_engine`, compiled into this module.
//!
//! On powerpc the module is also KVM's provider of TCE tables (`patches/0003`, see `provider`):
//! while the `takeover` parameter is set (the default), the tables VMMs create with
//! `KVM_CREATE_SPAPR_TCE_64` are the module's. KVM keeps them on the VM's list and hands their
//! file operations and a guest's `H_PUT_TCE`, `H_PUT_TCE_INDIRECT`, `H_STUFF_TCE` and
//! `H_GET_TCE` to the module. `TCE_ACCEL_CREATE_TABLE` creates its tables through KVM there too.
//!
//! With `TCE_ACCEL_ATTACH_GROUP` (see `vfio`) a table also drives the hardware IOMMU table of a
//! VFIO group: the hypercalls map and unmap its entries in the kernel too.
//!
//! # Lock order
//!
//! 1. `table::REGISTRY` (mutex): table create and release, group attach and detach. Attach and
//!    detach wait for a grace period of the VM's `kvm->srcu` after dropping it; KVM waits for
//!    one before it releases a table.
//! 2. An attached hardware table's `it_ext_lock` (patches/0005, taken in `tce_glue.c`): one
//!    exchange and its user-address record; taken in hypercalls, which may sleep, and by VFIO
//!    around its own map, unmap and clear loops.
//! 3. An engine hardware table's leaf spinlock (`host::KLock`): one entry and its mirror.
//!
//! Hypercalls take no lock to find their table: KVM finds it on the VM's own list and calls the
//! handler inside the VM's `kvm->srcu` read-side section (see `provider`). Faults and table reads
//! and writes take no lock either: pages are installed with compare-and-swap and words are
//! atomic.

use kernel::{
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*,
};

mod engine;
mod glue;
mod host;
mod provider;
mod table;
mod tests;
mod uapi;
mod vfio;

module! {
    type: TceAccelModule,
    name: "tce_accel",
    authors: ["tce-accel developers"],
    description: "TCE hypercall fast path for POWER KVM guests",
    license: "GPL",
}

#[pin_data]
struct TceAccelModule {
    // Fields drop in order: the device goes first, then the provider, then the registry's
    // memory. Tables hold references to the module, so none is left by then.
    #[pin]
    _misc: MiscDeviceRegistration<TceAccelDevice>,
    _provider: provider::Provider,
    _debugfs: glue::Debugfs,
    _workqueue: glue::Workqueue,
    _registry: table::Registry,
}

impl kernel::InPlaceModule for TceAccelModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: Called once, when the module loads, before any table can be created.
        let registry = unsafe { table::Registry::init() };
        let options = MiscDeviceOptions { name: c"tce_accel" };
        try_pin_init!(Self {
            _registry: registry,
            _workqueue: glue::Workqueue::create()?,
            _provider: provider::Provider::start()?,
            _debugfs: glue::Debugfs::create(),
            _misc <- MiscDeviceRegistration::register(options),
        })
    }
}

/// An open `/dev/tce_accel`. It has no state: tables live in their own files.
struct TceAccelDevice;

#[vtable]
impl MiscDevice for TceAccelDevice {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        Ok(KBox::new(Self, GFP_KERNEL)?)
    }

    fn ioctl(_device: &Self, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::CREATE_TABLE => table::create_ioctl(arg),
            _ => Err(ENOTTY),
        }
    }
}
