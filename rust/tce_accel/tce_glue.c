// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of tce_accel: the pieces the Rust kernel crate does not abstract yet.
 *
 * Table files are anonymous-inode files whose mapping is filled by a page-fault handler; the
 * Rust side owns the table behind file->private_data and is called back for release, faults
 * and ioctls. Also: recognising a KVM VM file, locked-memory accounting against a grabbed mm,
 * blocks of one or more pages, and on powerpc the TCE hypercall hooks (patches/0003) with the
 * vCPU and memory-slot accessors their handlers need. Every function is called from
 * rust/tce_accel/glue.rs.
 */

#include <linux/anon_inodes.h>
#include <linux/compat.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>

#ifdef CONFIG_SPAPR_TCE_IOMMU
#include <asm/kvm_ppc.h>
#endif

#include "tce_glue.h"

static vm_fault_t tce_glue_fault(struct vm_fault *vmf)
{
	int why = 0;
	struct page *page;

	page = tce_accel_table_fault(vmf->vma->vm_file->private_data, vmf->pgoff, &why);
	if (!page)
		return why == TCE_FAULT_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;

	/* The mapping holds its own reference; the table keeps the page until it is freed. */
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct tce_glue_vm_ops = {
	.fault = tce_glue_fault,
};

static int tce_glue_mmap(struct file *file, struct vm_area_struct *vma)
{
	/* A private mapping would copy pages on write and never see the guest's updates. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	vma->vm_ops = &tce_glue_vm_ops;
	return 0;
}

static int tce_glue_release(struct inode *inode, struct file *file)
{
	tce_accel_table_release(file->private_data);
	return 0;
}

static long tce_glue_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return tce_accel_table_ioctl(file->private_data, cmd, arg);
}

static const struct file_operations tce_glue_table_fops = {
	.owner		= THIS_MODULE,
	.release	= tce_glue_release,
	.mmap		= tce_glue_mmap,
	.unlocked_ioctl	= tce_glue_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

/* Installs a new table file for @table; on success the file owns @table. */
int tce_glue_table_getfd(void *table)
{
	return anon_inode_getfd("tce-accel-table", &tce_glue_table_fops, table,
				O_RDWR | O_CLOEXEC);
}

/* Takes a reference to the VM of file descriptor @fd, or fails with -EBADF or -EINVAL. */
int tce_glue_vm_get(int fd, void **vm)
{
	CLASS(fd, f)(fd);
	struct kvm *kvm;

	if (fd_empty(f))
		return -EBADF;
	if (!file_is_kvm(fd_file(f)))
		return -EINVAL;
	kvm = fd_file(f)->private_data;
	kvm_get_kvm(kvm);
	*vm = kvm;
	return 0;
}

void tce_glue_vm_put(void *vm)
{
	kvm_put_kvm(vm);
}

/* Grabs the caller's mm for accounting, or returns NULL for a kernel thread. */
void *tce_glue_mm_get(void)
{
	struct mm_struct *mm = current->mm;

	if (mm)
		mmgrab(mm);
	return mm;
}

void tce_glue_mm_put(void *mm)
{
	mmdrop(mm);
}

int tce_glue_account(void *mm, unsigned long pages, bool inc)
{
	return account_locked_vm(mm, pages, inc);
}

struct page *tce_glue_alloc_pages(unsigned int order)
{
	return alloc_pages(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN, order);
}

void tce_glue_free_pages(struct page *page, unsigned int order)
{
	__free_pages(page, order);
}

void *tce_glue_page_address(struct page *page)
{
	return page_address(page);
}

u64 tce_glue_page_phys(struct page *page)
{
	return page_to_phys(page);
}

/*
 * The TCE hypercall hooks. KVM has TCE hypercalls only on Book3S-64 with
 * CONFIG_SPAPR_TCE_IOMMU; elsewhere there is nothing to hook, and the handlers
 * are never called.
 */
#ifdef CONFIG_SPAPR_TCE_IOMMU
static const struct kvmppc_tce_hooks tce_glue_hooks = {
	.put_tce		= tce_accel_h_put_tce,
	.put_tce_indirect	= tce_accel_h_put_tce_indirect,
	.stuff_tce		= tce_accel_h_stuff_tce,
	.get_tce		= tce_accel_h_get_tce,
};

int tce_glue_hooks_register(void)
{
	return kvmppc_tce_hooks_register(&tce_glue_hooks);
}

void tce_glue_hooks_unregister(void)
{
	kvmppc_tce_hooks_unregister(&tce_glue_hooks);
}

void tce_glue_hooks_synchronize(void)
{
	kvmppc_tce_hooks_synchronize();
}

void tce_glue_vcpu_set_gpr(struct kvm_vcpu *vcpu, unsigned int reg, u64 value)
{
	kvmppc_set_gpr(vcpu, reg, value);
}
#else
int tce_glue_hooks_register(void)
{
	return 0;
}

void tce_glue_hooks_unregister(void)
{
}

void tce_glue_hooks_synchronize(void)
{
}

void tce_glue_vcpu_set_gpr(struct kvm_vcpu *vcpu, unsigned int reg, u64 value)
{
	WARN_ON_ONCE(1);	/* No hooks, so no hypercall handler calls this. */
}
#endif

void *tce_glue_vcpu_vm(struct kvm_vcpu *vcpu)
{
	return vcpu->kvm;
}

/* Holds the memory slots of @vm stable for tce_glue_gpa_to_ua(). */
int tce_glue_memslots_lock(void *vm)
{
	return srcu_read_lock(&((struct kvm *)vm)->srcu);
}

void tce_glue_memslots_unlock(void *vm, int idx)
{
	srcu_read_unlock(&((struct kvm *)vm)->srcu, idx);
}

/*
 * Translates guest physical address @gpa of @vm through its memory slots into
 * the VMM's user address, as KVM's own TCE code does; false if no slot holds
 * it. The caller holds the slots (tce_glue_memslots_lock()).
 */
bool tce_glue_gpa_to_ua(void *vm, u64 gpa, u64 *ua)
{
	struct kvm *kvm = vm;
	struct kvm_memory_slot *slot;
	gfn_t gfn = gpa >> PAGE_SHIFT;

	slot = __gfn_to_memslot(kvm_memslots(kvm), gfn);
	if (!slot || (slot->flags & KVM_MEMSLOT_INVALID))
		return false;
	*ua = __gfn_to_hva_memslot(slot, gfn) | (gpa & ~PAGE_MASK);
	return true;
}
