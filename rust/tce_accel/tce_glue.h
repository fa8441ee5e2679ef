/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between tce_glue.c and the Rust side of tce_accel, in both directions.
 * glue.rs declares the tce_glue_* functions in its extern "C" block; table.rs defines the
 * tce_accel_table_* callbacks with #[no_mangle].
 */
#ifndef _TCE_ACCEL_GLUE_H
#define _TCE_ACCEL_GLUE_H

#include <linux/types.h>

struct page;

/* Called from Rust. */
int tce_glue_table_getfd(void *table);
int tce_glue_vm_get(int fd, void **vm);
void tce_glue_vm_put(void *vm);
void *tce_glue_mm_get(void);
void tce_glue_mm_put(void *mm);
int tce_glue_account(void *mm, unsigned long pages, bool inc);
struct page *tce_glue_alloc_pages(unsigned int order);
void tce_glue_free_pages(struct page *page, unsigned int order);
void *tce_glue_page_address(struct page *page);
u64 tce_glue_page_phys(struct page *page);

/* Implemented in Rust (table.rs), called from C. */
void tce_accel_table_release(void *table);
struct page *tce_accel_table_fault(void *table, u64 pgoff, int *why);
long tce_accel_table_ioctl(void *table, unsigned int cmd, unsigned long arg);

/* The reasons tce_accel_table_fault() gives for not returning a page. */
#define TCE_FAULT_SIGBUS	1
#define TCE_FAULT_OOM		2

#endif /* _TCE_ACCEL_GLUE_H */
