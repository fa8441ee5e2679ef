/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * tce_accel: the user API of /dev/tce_accel and of its table file descriptors.
 *
 * See Documentation/tce-accel-api.rst.
 */
#ifndef _UAPI_TCE_ACCEL_H
#define _UAPI_TCE_ACCEL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define TCE_ACCEL_IOCTL_TYPE	0xB9

/* The arguments of KVM_CREATE_SPAPR_TCE_64, with the same layout. */
struct tce_accel_window {
	__u64 liobn;
	__u32 page_shift;	/* IOMMU page shift: 12 to 34 */
	__u32 flags;		/* must be 0 */
	__u64 offset;		/* first entry: bus address >> page_shift */
	__u64 size;		/* number of entries */
};

/*
 * TCE_ACCEL_CREATE_TABLE, on /dev/tce_accel: creates a guest-view TCE table for the VM of
 * vm_fd and returns a new file descriptor for it (O_RDWR | O_CLOEXEC).
 */
struct tce_accel_create_table {
	__u32 argsz;		/* sizeof(struct tce_accel_create_table) */
	__s32 vm_fd;		/* a KVM VM file descriptor */
	struct tce_accel_window window;
};

#define TCE_ACCEL_CREATE_TABLE \
	_IOW(TCE_ACCEL_IOCTL_TYPE, 0x00, struct tce_accel_create_table)

/* TCE_ACCEL_TABLE_INFO, on a table file descriptor: what the table is and what it uses. */
struct tce_accel_table_info {
	__u32 argsz;		/* set by the kernel: sizeof(struct tce_accel_table_info) */
	__u32 flags;		/* set by the kernel: 0 */
	struct tce_accel_window window;
	__u64 mapping_pages;	/* host pages an mmap of the table may span */
	__u64 present_pages;	/* host pages allocated so far */
	__u64 locked_pages;	/* host pages charged to the creator's locked-memory limit */
};

#define TCE_ACCEL_TABLE_INFO \
	_IOR(TCE_ACCEL_IOCTL_TYPE, 0x01, struct tce_accel_table_info)

/*
 * TCE_ACCEL_TABLE_PAGES, on a table file descriptor: which host pages of the table exist, so
 * that a table can be saved without faulting in the pages that were never used. Stores, in
 * ascending order, the numbers of the existing pages at or after @start, at most @count of
 * them, into the __u64 array at @pages; sets @count to how many were stored. Call again with
 * @start after the last one returned until fewer than asked come back.
 */
struct tce_accel_table_pages {
	__u32 argsz;		/* sizeof(struct tce_accel_table_pages) */
	__u32 flags;		/* must be 0 */
	__u64 start;		/* in: first page number to look at */
	__u64 count;		/* in: room in @pages; out: page numbers stored */
	__u64 pages;		/* in: user address of a __u64 array */
};

#define TCE_ACCEL_TABLE_PAGES \
	_IOWR(TCE_ACCEL_IOCTL_TYPE, 0x02, struct tce_accel_table_pages)

/*
 * TCE_ACCEL_ATTACH_GROUP, on a table file descriptor: attaches the hardware DMA window of a
 * VFIO group (sPAPR TCE v2 IOMMU) to the table, so that the guest's TCE hypercalls on the
 * table's LIOBN update that hardware table in the kernel too. The group must be in a VFIO
 * container whose IOMMU is set (the group's DMA is owned by user space), and one of its
 * windows (made with VFIO_IOMMU_SPAPR_TCE_CREATE) must match the table: hardware IOMMU page
 * no larger than the table's, the same bus address, at least as many bytes. Guest memory the
 * TCEs point to must be preregistered (VFIO_IOMMU_SPAPR_REGISTER_MEMORY) by the process that
 * owns the VM, or the hypercall exits to the VMM (H_TOO_HARD).
 *
 * Errors: EBADF (group_fd not open), EINVAL (not a VFIO group file, bad argsz or flags, or no
 * window of the group matches the table; the kernel log says why), ENODEV (the group has no
 * sPAPR TCE table group), EPERM (the group's DMA is not owned by user space), EBUSY (the
 * group, or its hardware table, is attached to a table already), ENOMEM.
 *
 * TCE_ACCEL_DETACH_GROUP: the reverse (ENOENT if not attached). The hardware entries the
 * guest mapped stay mapped, as with KVM's own tables: removing the hardware window
 * (VFIO_IOMMU_SPAPR_TCE_REMOVE) clears them. Closing the table detaches every group.
 */
struct tce_accel_group {
	__u32 argsz;		/* sizeof(struct tce_accel_group) */
	__u32 flags;		/* must be 0 */
	__s32 group_fd;		/* a VFIO group file descriptor (/dev/vfio/N) */
	__u32 pad;		/* must be 0 */
};

#define TCE_ACCEL_ATTACH_GROUP \
	_IOW(TCE_ACCEL_IOCTL_TYPE, 0x03, struct tce_accel_group)
#define TCE_ACCEL_DETACH_GROUP \
	_IOW(TCE_ACCEL_IOCTL_TYPE, 0x04, struct tce_accel_group)

/*
 * TCE_ACCEL_HW_ENTRY, on a table file descriptor, for tests and diagnosis (CAP_SYS_ADMIN: it
 * shows host physical addresses): reads back what the hardware table of an attached group
 * holds for the hardware entry at bus address @ioba, through the platform (on pseries, an
 * H_GET_TCE to the hypervisor), and the user address recorded for it.
 */
struct tce_accel_hw_entry {
	__u32 argsz;		/* sizeof(struct tce_accel_hw_entry) */
	__s32 group_fd;		/* an attached VFIO group */
	__u64 ioba;		/* in: bus address, aligned to the hardware IOMMU page */
	__u64 tce;		/* out: host physical address | TCE_PCI_READ 0x1 | TCE_PCI_WRITE 0x2 */
	__u64 ua;		/* out: the user address behind it, 0 if none */
	__u32 page_shift;	/* out: the hardware IOMMU page shift */
	__u32 pad;		/* 0 */
};

#define TCE_ACCEL_HW_ENTRY \
	_IOWR(TCE_ACCEL_IOCTL_TYPE, 0x05, struct tce_accel_hw_entry)

#endif /* _UAPI_TCE_ACCEL_H */
