// SPDX-License-Identifier: GPL-2.0

//! KUnit suites of the module: the engine on kernel memory, and table lifetime and faults.
//!
//! They run when the module is loaded (with `CONFIG_KUNIT=y`) and print KTAP on the console.

use core::sync::atomic::{
    AtomicI64,
    Ordering, //
};

use kernel::prelude::*;

use crate::engine::env::{
    AllocError,
    GuestFault,
    GuestMemory,
    Host,
    LimitError, //
};
use crate::engine::hcall::{
    get_tce,
    Target,
    Vm, //
};
use crate::engine::hwtable::HwTable;
use crate::engine::tce::HcallError;
use crate::engine::window::{
    Window,
    WindowParams, //
};
use crate::host::KHost;
use crate::provider::NoDma;

/// Guest RAM of the fake guest: `[0, RAM)`, mapped by the fake VMM at `UA_BASE`.
const RAM: u64 = 1 << 24;
const UA_BASE: u64 = 0x7f00_0000_0000;
/// Where the fake guest keeps its `H_PUT_TCE_INDIRECT` list.
const LIST_GPA: u64 = 0x2000;

/// A guest whose RAM holds one TCE list.
struct FakeGuest {
    list: [u64; 4],
}

impl GuestMemory for FakeGuest {
    fn gpa_to_ua(&self, gpa: u64) -> Option<u64> {
        (gpa < RAM).then(|| UA_BASE + gpa)
    }

    fn read_be64(&self, gpa: u64, out: &mut [u64]) -> Result<(), GuestFault> {
        let first = gpa.checked_sub(LIST_GPA).ok_or(GuestFault)? / 8;
        for (i, w) in out.iter_mut().enumerate() {
            let at = usize::try_from(first).map_err(|_| GuestFault)? + i;
            *w = u64::from_be(*self.list.get(at).ok_or(GuestFault)?);
        }
        Ok(())
    }
}

/// Allocations a [`FailingHost`] may still make; negative for no limit.
static BUDGET: AtomicI64 = AtomicI64::new(-1);

/// The kernel host, with allocation failures injected through [`BUDGET`].
#[derive(Clone)]
struct FailingHost(KHost);

impl FailingHost {
    fn take(&self) -> Result<(), AllocError> {
        BUDGET
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| match b {
                b if b < 0 => Some(b),
                0 => None,
                b => Some(b - 1),
            })
            .map(|_| ())
            .map_err(|_| AllocError)
    }
}

impl Host for FailingHost {
    type Page = <KHost as Host>::Page;
    type PageSlots = <KHost as Host>::PageSlots;
    type Slots<T: Send + Sync> = <KHost as Host>::Slots<T>;
    type Lock = <KHost as Host>::Lock;

    fn page_shift(&self) -> u32 {
        self.0.page_shift()
    }

    fn alloc_block(&self, shift: u32) -> Result<Self::Page, AllocError> {
        self.take()?;
        self.0.alloc_block(shift)
    }

    fn alloc_page_slots(&self, len: usize) -> Result<Self::PageSlots, AllocError> {
        self.take()?;
        self.0.alloc_page_slots(len)
    }

    fn alloc_slots<T: Send + Sync>(&self, len: usize) -> Result<Self::Slots<T>, AllocError> {
        self.take()?;
        self.0.alloc_slots(len)
    }

    fn alloc_lock(&self) -> Result<Self::Lock, AllocError> {
        self.take()?;
        self.0.alloc_lock()
    }

    fn lock_pages(&self, pages: u64) -> Result<(), LimitError> {
        self.0.lock_pages(pages)
    }

    fn unlock_pages(&self, pages: u64) {
        self.0.unlock_pages(pages)
    }
}

fn params(size: u64) -> WindowParams {
    WindowParams::new(1, 12, 0, size)
}

fn guest() -> FakeGuest {
    FakeGuest {
        list: [
            0x3003u64.to_be(),
            0u64.to_be(),
            0x4001u64.to_be(),
            0x5002u64.to_be(),
        ],
    }
}

type NoTables<'a> = core::iter::Empty<&'a HwTable<KHost>>;

fn target<H: Host>(w: &Window<H>) -> Option<Target<'_, H, NoTables<'_>>> {
    Some(Target {
        window: w,
        tables: core::iter::empty(),
    })
}

#[kunit_tests(tce_accel_engine)]
mod engine_tests {
    use super::*;

    #[test]
    fn put_then_get() -> Result {
        let w = Window::new(KHost::current()?, params(0x1000)).map_err(|_| ENOMEM)?;
        let g = guest();
        let vm = Vm {
            guest: &g,
            dma: &NoDma,
        };
        assert_eq!(vm.put_tce(target(&w), 0x1000, 0x5003), Ok(()));
        assert_eq!(get_tce(Some(&w), 0x1000), Ok(0x5003));
        assert_eq!(get_tce(Some(&w), 0x2000), Ok(0));
        assert_eq!(w.present_pages(), 1);
        Ok(())
    }

    #[test]
    fn bad_ioba_and_unknown_liobn() -> Result {
        let w = Window::new(KHost::current()?, params(0x10)).map_err(|_| ENOMEM)?;
        let g = guest();
        let vm = Vm {
            guest: &g,
            dma: &NoDma,
        };
        assert_eq!(
            vm.put_tce(target(&w), 0x10 << 12, 0x5003),
            Err(HcallError::Parameter)
        );
        assert_eq!(
            vm.put_tce(target(&w), 0x800, 0x5003),
            Err(HcallError::Parameter)
        );
        assert_eq!(
            vm.put_tce(None::<Target<'_, KHost, NoTables<'_>>>, 0, 0),
            Err(HcallError::TooHard)
        );
        assert_eq!(get_tce::<KHost>(None, 0), Err(HcallError::TooHard));
        assert_eq!(
            vm.stuff_tce(target(&w), 0xf << 12, 0, 2),
            Err(HcallError::Parameter)
        );
        assert_eq!(w.present_pages(), 0);
        Ok(())
    }

    #[test]
    fn tce_outside_ram_goes_to_the_vmm() -> Result {
        let w = Window::new(KHost::current()?, params(0x10)).map_err(|_| ENOMEM)?;
        let g = guest();
        let vm = Vm {
            guest: &g,
            dma: &NoDma,
        };
        assert_eq!(vm.put_tce(target(&w), 0, RAM | 3), Err(HcallError::TooHard));
        assert_eq!(vm.put_tce(target(&w), 0, 0x1803), Err(HcallError::TooHard));
        assert_eq!(w.present_pages(), 0);
        Ok(())
    }

    #[test]
    fn indirect_reads_a_big_endian_list() -> Result {
        let w = Window::new(KHost::current()?, params(0x10)).map_err(|_| ENOMEM)?;
        let g = guest();
        let vm = Vm {
            guest: &g,
            dma: &NoDma,
        };
        let mut buf = KBox::new([0u64; 512], GFP_KERNEL)?;
        assert_eq!(
            vm.put_tce_indirect(target(&w), 0, LIST_GPA, 4, &mut buf[..]),
            Ok(())
        );
        assert_eq!(get_tce(Some(&w), 0), Ok(0x3003));
        assert_eq!(get_tce(Some(&w), 0x3000), Ok(0x5002));
        assert_eq!(
            vm.put_tce_indirect(target(&w), 0, LIST_GPA, 5, &mut buf[..]),
            Err(HcallError::TooHard)
        );
        assert_eq!(
            vm.put_tce_indirect(target(&w), 0, LIST_GPA + 8, 1, &mut buf[..]),
            Err(HcallError::Parameter)
        );
        assert_eq!(
            vm.put_tce_indirect(target(&w), 0, LIST_GPA, 513, &mut buf[..]),
            Err(HcallError::Parameter)
        );
        Ok(())
    }

    #[test]
    fn stuff_over_a_huge_window_allocates_nothing() -> Result {
        let w = Window::new(KHost::current()?, params(1 << 31)).map_err(|_| ENOMEM)?;
        let g = guest();
        let vm = Vm {
            guest: &g,
            dma: &NoDma,
        };
        assert_eq!(vm.put_tce(target(&w), 1 << 40, 0x3003), Ok(()));
        assert_eq!(vm.stuff_tce(target(&w), 0, 0, 1 << 31), Ok(()));
        assert_eq!(get_tce(Some(&w), 1 << 40), Ok(0));
        assert_eq!(w.present_pages(), 1);
        assert_eq!(
            vm.stuff_tce(target(&w), 0, 1, 1),
            Err(HcallError::Parameter)
        );
        Ok(())
    }

    #[test]
    fn allocation_failure_changes_nothing() -> Result {
        let w = Window::new(FailingHost(KHost::current()?), params(0x1000)).map_err(|_| ENOMEM)?;
        let g = guest();
        let vm = Vm {
            guest: &g,
            dma: &NoDma,
        };
        BUDGET.store(0, Ordering::SeqCst);
        let r = vm.put_tce(target(&w), 0x1000, 0x5003);
        BUDGET.store(-1, Ordering::SeqCst);
        assert_eq!(r, Err(HcallError::TooHard));
        assert_eq!(get_tce(Some(&w), 0x1000), Ok(0));
        assert_eq!(w.present_pages(), 0);
        BUDGET.store(0, Ordering::SeqCst);
        let r = w.fault(0).err();
        BUDGET.store(-1, Ordering::SeqCst);
        assert!(r.is_some());
        Ok(())
    }

    #[test]
    fn hardware_levels_on_kernel_pages() -> Result {
        use crate::engine::hwtable::{
            Geometry,
            HwEntry,
            IommuTable, //
        };
        let host = KHost::current()?;
        let geo = Geometry::new(host.page_shift(), 12, 0, 1 << 40, 3).map_err(|_| EINVAL)?;
        let t = HwTable::new(host, geo).map_err(|_| ENOMEM)?;
        assert_eq!(t.level_pages(), 1);
        let old = t
            .exchange(
                5,
                HwEntry {
                    tce: 0x1002,
                    ua: 0x1000,
                },
            )
            .map_err(|_| ENOMEM)?;
        assert_eq!(old, HwEntry::CLEAR);
        assert_eq!(t.level_pages(), 3);
        assert_eq!(t.raw(5), Some(0x1002));
        assert_eq!(t.exchange(1 << 27, HwEntry::CLEAR), Ok(HwEntry::CLEAR));
        assert_eq!(t.level_pages(), 3);
        Ok(())
    }
}

#[kunit_tests(tce_accel_table)]
mod table_tests {
    use super::*;
    use crate::engine::env::TablePage;
    use crate::engine::window::FaultError;
    use crate::table;
    use crate::uapi::CreateTable;

    #[test]
    fn fault_gives_the_page_hypercalls_write() -> Result {
        let w = Window::new(KHost::current()?, params(0x10000)).map_err(|_| ENOMEM)?;
        let g = guest();
        let vm = Vm {
            guest: &g,
            dma: &NoDma,
        };
        let page = w.fault(0).map_err(|_| ENOMEM)?;
        assert_eq!(w.present_pages(), 1);
        assert_eq!(vm.put_tce(target(&w), 0x3000, 0x7003), Ok(()));
        assert_eq!(page.load(3), 0x7003);
        page.store(4, 0x8001);
        assert_eq!(get_tce(Some(&w), 0x4000), Ok(0x8001));
        Ok(())
    }

    #[test]
    fn fault_past_the_end() -> Result {
        let w = Window::new(KHost::current()?, params(0x10000)).map_err(|_| ENOMEM)?;
        let last = w.mapping_pages() - 1;
        assert!(w.fault(last).is_ok());
        assert!(matches!(w.fault(last + 1), Err(FaultError::OutOfRange)));
        assert!(matches!(w.fault(u64::MAX), Err(FaultError::OutOfRange)));
        Ok(())
    }

    #[test]
    fn create_rejects_bad_arguments() {
        let good = params(0x1000);
        let bad = [
            CreateTable {
                argsz: 39,
                vm_fd: 0,
                window: good,
            },
            CreateTable {
                argsz: 41,
                vm_fd: 0,
                window: good,
            },
            CreateTable {
                argsz: 40,
                vm_fd: 0,
                window: WindowParams { flags: 1, ..good },
            },
            CreateTable {
                argsz: 40,
                vm_fd: 0,
                window: WindowParams {
                    page_shift: 35,
                    ..good
                },
            },
            CreateTable {
                argsz: 40,
                vm_fd: 0,
                window: WindowParams { size: 0, ..good },
            },
            CreateTable {
                argsz: 40,
                vm_fd: 0,
                window: WindowParams {
                    offset: u64::MAX,
                    ..good
                },
            },
        ];
        for req in &bad {
            assert!(matches!(table::create(req), Err(e) if e == EINVAL));
        }
        let no_fd = CreateTable {
            argsz: 40,
            vm_fd: -1,
            window: good,
        };
        assert!(matches!(table::create(&no_fd), Err(e) if e == EBADF));
    }
}
