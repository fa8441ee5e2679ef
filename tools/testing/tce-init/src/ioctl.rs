// SPDX-License-Identifier: GPL-2.0

//! Linux ioctl request numbers, encoded the way the running architecture encodes them.

use crate::uapi;

/// One architecture's layout of an ioctl request number (`include/uapi/asm-generic/ioctl.h`
/// and `arch/powerpc/include/uapi/asm/ioctl.h`).
#[derive(Clone, Copy, Debug)]
pub struct Encoding {
    /// Width of the argument-size field.
    size_bits: u32,
    /// Direction value of `_IO`.
    none: u32,
    /// Direction value of `_IOW` (user space writes, the kernel reads).
    write: u32,
    /// Direction value of `_IOR` (the kernel writes, user space reads).
    read: u32,
}

/// The generic encoding (x86, arm64, riscv): 14 size bits, NONE = 0, WRITE = 1, READ = 2.
// Each architecture's build uses one of the two encodings; the tests use both.
#[cfg_attr(target_arch = "powerpc64", allow(dead_code))]
pub const GENERIC: Encoding = Encoding {
    size_bits: 14,
    none: 0,
    write: 1,
    read: 2,
};

/// The powerpc encoding: 13 size bits, 3 direction bits with NONE = 1, READ = 2, WRITE = 4.
#[cfg_attr(not(target_arch = "powerpc64"), allow(dead_code))]
pub const POWERPC: Encoding = Encoding {
    size_bits: 13,
    none: 1,
    write: 4,
    read: 2,
};

/// The encoding of the architecture this program is built for.
#[cfg(target_arch = "powerpc64")]
pub const NATIVE: Encoding = POWERPC;
/// The encoding of the architecture this program is built for.
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
pub const NATIVE: Encoding = GENERIC;

/// Where the number field starts.
const NR_SHIFT: u32 = 0;
/// Where the type field starts.
const TYPE_SHIFT: u32 = 8;
/// Where the size field starts.
const SIZE_SHIFT: u32 = 16;

impl Encoding {
    /// `_IOC(dir, ty, nr, size)`; fails to compile (or panics) if `size` does not fit.
    pub const fn ioc(self, dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
        assert!(size < (1 << self.size_bits), "ioctl argument too large");
        assert!(ty < 256 && nr < 256, "ioctl type or number too large");
        (dir << (SIZE_SHIFT + self.size_bits))
            | ((size as u32) << SIZE_SHIFT)
            | (ty << TYPE_SHIFT)
            | (nr << NR_SHIFT)
    }

    /// `_IO(ty, nr)`.
    pub const fn io(self, ty: u32, nr: u32) -> u32 {
        self.ioc(self.none, ty, nr, 0)
    }

    /// `_IOR(ty, nr, T)` for an argument of `size` bytes.
    pub const fn ior(self, ty: u32, nr: u32, size: usize) -> u32 {
        self.ioc(self.read, ty, nr, size)
    }

    /// `_IOW(ty, nr, T)` for an argument of `size` bytes.
    pub const fn iow(self, ty: u32, nr: u32, size: usize) -> u32 {
        self.ioc(self.write, ty, nr, size)
    }

    /// `_IOWR(ty, nr, size)`.
    pub const fn iowr(self, ty: u32, nr: u32, size: usize) -> u32 {
        self.ioc(self.read | self.write, ty, nr, size)
    }
}

/// `KVMIO`, the ioctl type of `/dev/kvm`.
const KVMIO: u32 = tce_uapi::kvm::KVMIO as u32;

/// The request numbers the tests use, in one encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requests {
    /// `TCE_ACCEL_CREATE_TABLE`: `_IOW(0xB9, 0x00, struct tce_accel_create_table)`.
    pub create_table: u32,
    /// `TCE_ACCEL_TABLE_INFO`: `_IOR(0xB9, 0x01, struct tce_accel_table_info)`.
    pub table_info: u32,
    /// `TCE_ACCEL_TABLE_PAGES`: `_IOWR(0xB9, 0x02, struct tce_accel_table_pages)`.
    pub table_pages: u32,
    /// `KVM_CREATE_VM`: `_IO(0xAE, 0x01)`.
    pub kvm_create_vm: u32,
    /// `KVM_CREATE_SPAPR_TCE_64`: `_IOW(0xAE, 0xa8, struct kvm_create_spapr_tce_64)`, whose
    /// layout is `struct tce_accel_window`'s.
    pub kvm_create_spapr_tce_64: u32,
    /// A request of the module's type that the module does not define: `_IO(0xB9, 0x7f)`.
    pub unknown: u32,
}

impl Requests {
    /// The request numbers in encoding `enc`.
    pub const fn new(enc: Encoding) -> Self {
        Self {
            create_table: enc.iow(uapi::IOCTL_TYPE, 0x00, uapi::CREATE_TABLE_SIZE),
            table_info: enc.ior(uapi::IOCTL_TYPE, 0x01, uapi::TABLE_INFO_SIZE),
            table_pages: enc.iowr(uapi::IOCTL_TYPE, 0x02, uapi::TABLE_PAGES_SIZE),
            kvm_create_vm: enc.io(KVMIO, 0x01),
            kvm_create_spapr_tce_64: enc.iow(KVMIO, 0xa8, size_of::<uapi::Window>()),
            unknown: enc.io(uapi::IOCTL_TYPE, 0x7f),
        }
    }
}

/// The request numbers of the running architecture.
pub const REQ: Requests = Requests::new(NATIVE);

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers as `<linux/ioctl.h>` computes them on x86 (and every generic architecture),
    /// with `struct tce_accel_create_table` of 40 and `struct tce_accel_table_info` of 64 bytes.
    #[test]
    fn generic_numbers() {
        let r = Requests::new(GENERIC);
        assert_eq!(r.create_table, 0x4028_B900);
        assert_eq!(r.table_info, 0x8040_B901);
        assert_eq!(r.table_pages, 0xC020_B902);
        assert_eq!(r.kvm_create_vm, 0x0000_AE01);
        assert_eq!(r.unknown, 0x0000_B97F);
    }

    /// The numbers as `<linux/ioctl.h>` computes them on powerpc.
    #[test]
    fn powerpc_numbers() {
        let r = Requests::new(POWERPC);
        assert_eq!(r.create_table, 0x8028_B900);
        assert_eq!(r.table_info, 0x4040_B901);
        assert_eq!(r.table_pages, 0xC020_B902);
        assert_eq!(r.kvm_create_vm, 0x2000_AE01);
        assert_eq!(r.kvm_create_spapr_tce_64, 0x8020_AEA8);
        assert_eq!(r.unknown, 0x2000_B97F);
    }

    /// Well-known kernel numbers, to pin the encoders themselves.
    #[test]
    fn known_kernel_numbers() {
        // KVM_GET_API_VERSION = _IO(KVMIO, 0x00).
        assert_eq!(GENERIC.io(KVMIO, 0x00), 0xAE00);
        assert_eq!(POWERPC.io(KVMIO, 0x00), 0x2000_AE00);
        // KVM_CREATE_SPAPR_TCE_64 = _IOW(KVMIO, 0xa8, struct kvm_create_spapr_tce_64 /* 32 */).
        assert_eq!(POWERPC.iow(KVMIO, 0xa8, 32), 0x8020_AEA8);
        // FS_IOC_GETFLAGS = _IOR('f', 1, long) on 64-bit.
        assert_eq!(GENERIC.ior(b'f' as u32, 1, 8), 0x8008_6601);
        assert_eq!(POWERPC.ior(b'f' as u32, 1, 8), 0x4008_6601);
    }

    /// The running architecture uses its own encoding.
    #[test]
    fn native_is_the_architectures() {
        let want = if cfg!(target_arch = "powerpc64") {
            Requests::new(POWERPC)
        } else {
            Requests::new(GENERIC)
        };
        assert_eq!(REQ, want);
    }
}
