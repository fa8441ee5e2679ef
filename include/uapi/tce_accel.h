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

#endif /* _UAPI_TCE_ACCEL_H */
