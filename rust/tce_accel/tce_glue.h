/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between tce_glue.c and the Rust side of tce_accel, in both directions.
 * glue.rs declares the tce_glue_* functions in its extern "C" block; table.rs defines the
 * tce_accel_table_* callbacks with #[no_mangle].
 */
#ifndef _TCE_ACCEL_GLUE_H
#define _TCE_ACCEL_GLUE_H

#include <linux/types.h>

struct address_space;
struct iommu_group;
struct iommu_table;
struct kvm;
struct kvm_vcpu;
struct kvmppc_spapr_tce_table;
struct mm_struct;
struct page;
struct seq_file;

/*
 * The handles that cross between C and Rust, each a type of its own so that the
 * compiler checks what goes where. Two are opaque on one side: a struct
 * tce_glue_hw (a group's hardware table, tce_glue.c) is opaque to Rust, and a
 * struct tce_accel_table (a table, table.rs) is opaque to C.
 */
struct tce_glue_hw;
struct tce_accel_table;

/*
 * Where the hypercall handlers find the two fields they read in KVM's
 * structures, so that a hypercall does not call into C for each: byte offsets,
 * filled in by tce_glue.c at build time, read by glue.rs.
 */
struct tce_glue_layout {
	size_t stt_data;	/* struct kvmppc_spapr_tce_table: provider_data */
	size_t vcpu_kvm;	/* struct kvm_vcpu: kvm */
};

extern const struct tce_glue_layout tce_glue_layout;

/* Called from Rust. */
int tce_glue_table_getfd(struct tce_accel_table *table);
void tce_glue_zap(struct address_space *mapping, u64 pgoff, u64 n);
int tce_glue_vm_get(int fd, struct kvm **vm);
void tce_glue_vm_ref(struct kvm *vm);
void tce_glue_vm_put(struct kvm *vm);
struct mm_struct *tce_glue_mm_get(void);
void tce_glue_mm_put(struct mm_struct *mm);
int tce_glue_account(struct mm_struct *mm, unsigned long pages, bool inc);
struct page *tce_glue_alloc_pages(unsigned int order);
void tce_glue_free_pages(struct page *page, unsigned int order);
void *tce_glue_page_address(struct page *page);
struct page *tce_glue_virt_to_page(void *addr);
u64 tce_glue_page_phys(struct page *page);
int tce_glue_provider_start(void);
unsigned int tce_glue_max_tables_per_vm(void);
void tce_glue_provider_stop(void);
int tce_glue_kvm_create_table(struct kvm *vm, u64 liobn, u32 page_shift,
			      u64 offset, u64 size);
struct mm_struct *tce_glue_vm_mm(struct kvm *vm);
void tce_glue_vm_synchronize(struct kvm *vm);
int tce_glue_vm_defer(struct kvm *vm, void (*fn)(void *data), void *data);
int tce_glue_wq_create(void);
void tce_glue_wq_destroy(void);
int tce_glue_group_ref(struct iommu_group *grp, bool need_owner,
		       struct iommu_group **group);
void tce_glue_seq_table(struct seq_file *seq, struct kvm *vm, u64 liobn,
			u32 page_shift, u64 size, u64 pages, u64 charged,
			size_t groups, const u64 *hcalls);
int tce_glue_debugfs_create(void);
void tce_glue_debugfs_remove(void);
void tce_glue_vcpu_set_gpr(struct kvm_vcpu *vcpu, unsigned int reg, u64 value);
bool tce_glue_gpa_to_ua(struct kvm *vm, u64 gpa, u64 *ua);
int tce_glue_read_user_be64(u64 ua, u64 *out, size_t n);
bool tce_glue_capable_sys_admin(void);
void tce_glue_cond_resched(void);
int tce_glue_group_get(int fd, bool need_owner, struct iommu_group **group);
void tce_glue_group_put(struct iommu_group *group);
unsigned int tce_glue_group_windows(void);
bool tce_glue_group_v2(struct iommu_group *group);
int tce_glue_hw_get(struct iommu_group *group, unsigned int i,
		    struct tce_glue_hw **hw_out, u32 *page_shift, u64 *offset,
		    u64 *size);
void tce_glue_hw_put(struct tce_glue_hw *hw);
struct iommu_group *tce_glue_hw_group(struct tce_glue_hw *hw);
struct iommu_table *tce_glue_hw_table(struct tce_glue_hw *hw);
int tce_glue_hw_xchg(struct tce_glue_hw *hw, struct kvm *vm, u64 index, u64 *hpa, u64 *perm,
		     u64 *ua);
void tce_glue_hw_kill(struct tce_glue_hw *hw, u64 index, u64 pages);
int tce_glue_hw_read(struct tce_glue_hw *hw, u64 index, u64 *tce, u64 *ua);
bool tce_glue_dma_lookup(struct kvm *vm, u64 ua, u64 size);
bool tce_glue_dma_hpa(struct kvm *vm, u64 ua, u64 size, u32 page_shift, u64 *hpa);
bool tce_glue_dma_map(struct kvm *vm, u64 ua, u32 page_shift, u64 *hpa);
bool tce_glue_dma_inc(struct kvm *vm, u64 ua, u64 size);
bool tce_glue_dma_dec(struct kvm *vm, u64 ua, u64 size);

/* Implemented in Rust (table.rs), called from C. */
void tce_accel_table_release(struct tce_accel_table *table);
struct page *tce_accel_table_fault(struct tce_accel_table *table, u64 pgoff, bool write, int *why);
bool tce_accel_table_present(struct tce_accel_table *table, u64 pgoff);
void tce_accel_table_mapped(struct tce_accel_table *table, struct address_space *mapping);
long tce_accel_table_ioctl(struct tce_accel_table *table, unsigned int cmd, unsigned long arg);
void tce_accel_debugfs_tables(struct seq_file *seq);
long tce_accel_provider_attach_group(struct tce_accel_table *table, struct iommu_group *grp);
void tce_accel_provider_release_group(struct tce_accel_table *table, struct iommu_group *grp);
void tce_accel_free_retired(void *list);
int tce_accel_provider_create(struct kvm *vm, u64 liobn, u32 page_shift,
			      u64 offset, u64 size,
			      struct tce_accel_table **table);

/*
 * Implemented in Rust (provider.rs): the TCE hypercall handlers of a table this
 * module serves, called by KVM through tce_glue_provider inside the VM's
 * kvm->srcu read-side section. They are the provider's operations themselves:
 * the table is @stt's provider_data, which they read (tce_glue_layout).
 */
long tce_accel_h_put_tce(struct kvm_vcpu *vcpu, struct kvmppc_spapr_tce_table *stt,
			 unsigned long ioba, unsigned long tce);
long tce_accel_h_put_tce_indirect(struct kvm_vcpu *vcpu,
				  struct kvmppc_spapr_tce_table *stt,
				  unsigned long ioba, unsigned long tce_list,
				  unsigned long npages);
long tce_accel_h_stuff_tce(struct kvm_vcpu *vcpu, struct kvmppc_spapr_tce_table *stt,
			   unsigned long ioba, unsigned long tce_value,
			   unsigned long npages);
long tce_accel_h_get_tce(struct kvm_vcpu *vcpu, struct kvmppc_spapr_tce_table *stt,
			 unsigned long ioba);

/*
 * The reasons tce_accel_table_fault() gives for not returning a page, and
 * TCE_FAULT_NEW with a page it has just allocated.
 */
#define TCE_FAULT_SIGBUS	1
#define TCE_FAULT_OOM		2
#define TCE_FAULT_ABSENT	3	/* a read of a page that does not exist */
#define TCE_FAULT_NEW		4

#endif /* _TCE_ACCEL_GLUE_H */
