// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of tce_accel: the pieces the Rust kernel crate does not abstract yet.
 *
 * Table files are anonymous-inode files with an inode of their own, whose mappings are filled
 * by a page-fault handler; the Rust side owns the table behind file->private_data (or, for a
 * KVM table file, stt->provider_data) and is called back for release, faults and ioctls.
 * Also: recognising a KVM VM file, locked-memory accounting against a grabbed mm, blocks of
 * one or more pages, the takeover parameter, debugfs, a workqueue for work that waits for a
 * VM's SRCU, and on powerpc KVM's TCE table provider (patches/0003) with the vCPU and
 * memory-slot accessors its hypercall handlers need. Every function is called from
 * rust/tce_accel/glue.rs.
 */

#include <linux/anon_inodes.h>
#include <linux/compat.h>
#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/workqueue.h>

#ifdef CONFIG_SPAPR_TCE_IOMMU
#include <asm/kvm_ppc.h>
#endif

#if IS_ENABLED(CONFIG_SPAPR_TCE_IOMMU) && IS_ENABLED(CONFIG_VFIO)
#define TCE_GLUE_VFIO 1
#include <linux/iommu.h>
#include <linux/rcupdate.h>
#include <linux/vfio.h>
#include <asm/iommu.h>
#include <asm/mmu_context.h>
#endif

#include "tce_glue.h"

/*
 * Mappings of a table. A table page that does not exist reads as the zero page,
 * mapped read-only, so that reading a sparse table (as QEMU's migration does)
 * allocates nothing; the first write to it, through a mapping or by a
 * hypercall, allocates the page, and every mapping of that page's offset is
 * zapped so that no zero page is left behind it. The mapping is VM_MIXEDMAP
 * (the zero page goes in by pfn, table pages as pages), VM_IO (no GUP) and
 * has a pfn_mkwrite, so its PTEs start write-protected and a write to the
 * zero page comes here.
 *
 * A read fault and a hypercall that allocates the same page race benignly:
 * the fault inserts the zero page and then looks for the page again, the
 * hypercall installs the page and then zaps; whichever comes second sees the
 * other's work and zaps.
 */
static void tce_glue_zap_pages(struct address_space *mapping, u64 pgoff, u64 n)
{
	unmap_mapping_range(mapping, (loff_t)pgoff << PAGE_SHIFT,
			    (loff_t)n << PAGE_SHIFT, 1);
}

static vm_fault_t tce_glue_fault(struct vm_fault *vmf)
{
	struct tce_accel_table *table = vmf->vma->vm_private_data;
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	struct page *page;
	vm_fault_t ret;
	int why = 0;

	page = tce_accel_table_fault(table, vmf->pgoff, write, &why);
	if (!page && why == TCE_FAULT_ABSENT) {
		ret = vmf_insert_mixed(vmf->vma, vmf->address,
				       page_to_pfn(ZERO_PAGE(vmf->address)));
		/* Pairs with the hypercall's install before its zap. */
		smp_mb();
		if (tce_accel_table_present(table, vmf->pgoff))
			tce_glue_zap_pages(vmf->vma->vm_file->f_mapping, vmf->pgoff, 1);
		return ret;
	}
	if (!page)
		return why == TCE_FAULT_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
	/* A page this write allocated may sit behind zero pages in other mappings. */
	if (why == TCE_FAULT_NEW)
		tce_glue_zap_pages(vmf->vma->vm_file->f_mapping, vmf->pgoff, 1);

	/* The mapping holds its own reference; the table keeps the page until it is freed. */
	get_page(page);
	vmf->page = page;
	return 0;
}

/* A write to the zero page: allocate the table page, zap, and let the write fault again. */
static vm_fault_t tce_glue_pfn_mkwrite(struct vm_fault *vmf)
{
	int why = 0;

	if (!tce_accel_table_fault(vmf->vma->vm_private_data, vmf->pgoff, true, &why))
		return why == TCE_FAULT_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
	tce_glue_zap_pages(vmf->vma->vm_file->f_mapping, vmf->pgoff, 1);
	return VM_FAULT_NOPAGE;
}

/* Zaps every mapping of pages [@pgoff, @pgoff + @n) of a table's file. */
void tce_glue_zap(struct address_space *mapping, u64 pgoff, u64 n)
{
	tce_glue_zap_pages(mapping, pgoff, n);
}

static const struct vm_operations_struct tce_glue_vm_ops = {
	.fault = tce_glue_fault,
	.pfn_mkwrite = tce_glue_pfn_mkwrite,
};

/* Maps @table, the table of a tce_accel file or of a KVM TCE file it serves. */
static int tce_glue_mmap_table(struct tce_accel_table *table, struct vm_area_struct *vma)
{
	/* A private mapping would copy pages on write and never see the guest's updates. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	/*
	 * VM_IO: a writable shared mapping may hold the zero page only where GUP
	 * cannot pin it (it would keep the zero page after pfn_mkwrite replaced
	 * it); the VMM reads and writes its table with plain loads and stores.
	 */
	vm_flags_set(vma, VM_MIXEDMAP | VM_IO);
	vma->vm_ops = &tce_glue_vm_ops;
	vma->vm_private_data = table;
	/* The file has an inode of its own, so this is the table's own mapping. */
	tce_accel_table_mapped(table, vma->vm_file->f_mapping);
	return 0;
}

static int tce_glue_mmap(struct file *file, struct vm_area_struct *vma)
{
	return tce_glue_mmap_table(file->private_data, vma);
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

/*
 * Installs a new table file for @table; on success the file owns @table. The
 * file has an inode of its own, so that zapping its mappings touches no other.
 */
int tce_glue_table_getfd(struct tce_accel_table *table)
{
	struct file *file;
	int fd;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;
	file = anon_inode_create_getfile("tce-accel-table", &tce_glue_table_fops,
					 table, O_RDWR, NULL);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		return PTR_ERR(file);
	}
	fd_install(fd, file);
	return fd;
}

/* Takes a reference to the VM of file descriptor @fd, or fails with -EBADF or -EINVAL. */
int tce_glue_vm_get(int fd, struct kvm **vm)
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

/* Takes one more reference to @vm, on which the caller holds one. */
void tce_glue_vm_ref(struct kvm *vm)
{
	kvm_get_kvm(vm);
}

void tce_glue_vm_put(struct kvm *vm)
{
	kvm_put_kvm(vm);
}

/* Grabs @vm's mm for accounting: KVM charges a VM's tables there too. */
struct mm_struct *tce_glue_vm_mm(struct kvm *vm)
{
	struct mm_struct *mm = ((struct kvm *)vm)->mm;

	mmgrab(mm);
	return mm;
}

/* Waits until no hypercall of @vm can still use what was unpublished before. */
void tce_glue_vm_synchronize(struct kvm *vm)
{
	synchronize_srcu(&((struct kvm *)vm)->srcu);
}

/*
 * Work that must wait for a grace period of a VM's kvm->srcu but is started where
 * that cannot be waited for (inside the section): it runs on the module's
 * workqueue, which the module drains before it goes away, and holds the VM.
 */
static struct workqueue_struct *tce_glue_wq;

struct tce_glue_deferred {
	struct work_struct work;
	struct kvm *kvm;
	void (*fn)(void *data);
	void *data;
};

static void tce_glue_deferred_run(struct work_struct *work)
{
	struct tce_glue_deferred *d = container_of(work, struct tce_glue_deferred, work);

	synchronize_srcu(&d->kvm->srcu);
	d->fn(d->data);
	kvm_put_kvm(d->kvm);
	kfree(d);
}

/*
 * Calls @fn(@data) after a grace period of @vm's kvm->srcu, from a workqueue.
 * -ENOMEM if the work cannot be allocated, and then @fn is not called.
 */
int tce_glue_vm_defer(struct kvm *vm, void (*fn)(void *data), void *data)
{
	struct tce_glue_deferred *d = kmalloc(sizeof(*d), GFP_KERNEL_ACCOUNT);

	if (!d)
		return -ENOMEM;
	INIT_WORK(&d->work, tce_glue_deferred_run);
	d->kvm = vm;
	kvm_get_kvm(d->kvm);
	d->fn = fn;
	d->data = data;
	queue_work(tce_glue_wq, &d->work);
	return 0;
}

int tce_glue_wq_create(void)
{
	tce_glue_wq = alloc_workqueue("tce_accel", WQ_UNBOUND, 0);
	return tce_glue_wq ? 0 : -ENOMEM;
}

/* Runs the work still queued, then frees the workqueue. */
void tce_glue_wq_destroy(void)
{
	destroy_workqueue(tce_glue_wq);
}

/* Grabs the caller's mm for accounting, or returns NULL for a kernel thread. */
struct mm_struct *tce_glue_mm_get(void)
{
	struct mm_struct *mm = current->mm;

	if (mm)
		mmgrab(mm);
	return mm;
}

void tce_glue_mm_put(struct mm_struct *mm)
{
	mmdrop(mm);
}

int tce_glue_account(struct mm_struct *mm, unsigned long pages, bool inc)
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

struct page *tce_glue_virt_to_page(void *addr)
{
	return virt_to_page(addr);
}

u64 tce_glue_page_phys(struct page *page)
{
	return page_to_phys(page);
}

/*
 * The provider of KVM's TCE tables (patches/0003). KVM has TCE tables only on
 * Book3S-64 with CONFIG_SPAPR_TCE_IOMMU; elsewhere tables are tce_accel files
 * only, and no hypercall reaches the module.
 */
#ifdef CONFIG_SPAPR_TCE_IOMMU
static int tce_glue_provider_create(struct kvmppc_spapr_tce_table *stt)
{
	struct tce_accel_table *table;
	int ret;

	ret = tce_accel_provider_create(stt->kvm, stt->liobn, stt->page_shift,
					stt->offset, stt->size, &table);
	if (!ret)
		stt->provider_data = table;
	return ret;
}

static void tce_glue_provider_release(struct kvmppc_spapr_tce_table *stt)
{
	tce_accel_table_release(stt->provider_data);
}

static int tce_glue_provider_mmap(struct kvmppc_spapr_tce_table *stt,
				  struct vm_area_struct *vma)
{
	return tce_glue_mmap_table(stt->provider_data, vma);
}

static long tce_glue_provider_ioctl(struct kvmppc_spapr_tce_table *stt,
				    unsigned int cmd, unsigned long arg)
{
	return tce_accel_table_ioctl(stt->provider_data, cmd, arg);
}

/* KVM_DEV_VFIO_FILE_SET_SPAPR_TCE of the KVM-VFIO device: outside kvm->srcu. */
static long tce_glue_attach_group(struct kvmppc_spapr_tce_table *stt,
				  struct iommu_group *grp)
{
	return tce_accel_provider_attach_group(stt->provider_data, grp);
}

/* The group left the KVM-VFIO device: inside kvm->srcu, maybe with kvm->lock. */
static void tce_glue_release_group(struct kvmppc_spapr_tce_table *stt,
				   struct iommu_group *grp)
{
	tce_accel_provider_release_group(stt->provider_data, grp);
}

static const struct kvmppc_spapr_tce_provider tce_glue_provider = {
	.owner			= THIS_MODULE,
	.create			= tce_glue_provider_create,
	.release		= tce_glue_provider_release,
	.mmap			= tce_glue_provider_mmap,
	.ioctl			= tce_glue_provider_ioctl,
	/* Straight to Rust: a C wrapper cost each call 12 instructions. */
	.put_tce		= tce_accel_h_put_tce,
	.put_tce_indirect	= tce_accel_h_put_tce_indirect,
	.stuff_tce		= tce_accel_h_stuff_tce,
	.get_tce		= tce_accel_h_get_tce,
	.attach_group		= tce_glue_attach_group,
	.release_group		= tce_glue_release_group,
};

static int tce_glue_provider_register(void)
{
	return kvmppc_spapr_tce_provider_register(&tce_glue_provider);
}

static void tce_glue_provider_unregister(void)
{
	kvmppc_spapr_tce_provider_unregister(&tce_glue_provider);
}

/* Creates a table of @vm served by this module; returns its fd or -errno. */
int tce_glue_kvm_create_table(struct kvm *vm, u64 liobn, u32 page_shift,
			      u64 offset, u64 size)
{
	struct kvm_create_spapr_tce_64 args = {
		.liobn = liobn,
		.page_shift = page_shift,
		.offset = offset,
		.size = size,
	};

	return kvmppc_spapr_tce_create(vm, &args, &tce_glue_provider);
}

void tce_glue_vcpu_set_gpr(struct kvm_vcpu *vcpu, unsigned int reg, u64 value)
{
	kvmppc_set_gpr(vcpu, reg, value);
}

const struct tce_glue_layout tce_glue_layout = {
	.stt_data = offsetof(struct kvmppc_spapr_tce_table, provider_data),
	.vcpu_kvm = offsetof(struct kvm_vcpu, kvm),
};
#else
static int tce_glue_provider_register(void)
{
	return 0;
}

static void tce_glue_provider_unregister(void)
{
}

int tce_glue_kvm_create_table(struct kvm *vm, u64 liobn, u32 page_shift,
			      u64 offset, u64 size)
{
	return -ENOSYS;		/* The caller installs a tce_accel file instead. */
}

void tce_glue_vcpu_set_gpr(struct kvm_vcpu *vcpu, unsigned int reg, u64 value)
{
	WARN_ON_ONCE(1);	/* No provider, so no hypercall handler calls this. */
}

/* No KVM TCE tables: no hypercall handler runs, and no offset is read. */
const struct tce_glue_layout tce_glue_layout = {
	.vcpu_kvm = offsetof(struct kvm_vcpu, kvm),
};
#endif

/*
 * takeover: whether KVM_CREATE_SPAPR_TCE(_64) creates the module's tables.
 * Writable at run time; existing tables stay where they are. Where KVM has no
 * TCE tables it changes nothing. The provider is
 * registered only while the module is live (between tce_glue_provider_start()
 * and tce_glue_provider_stop()), so a value given at load time takes effect
 * when the module's init has run.
 */
static bool tce_glue_takeover = true;
static bool tce_glue_live;
static DEFINE_MUTEX(tce_glue_takeover_lock);

static int tce_glue_takeover_apply(bool on)
{
	if (!tce_glue_live || on == tce_glue_takeover)
		return 0;
	if (on)
		return tce_glue_provider_register();
	tce_glue_provider_unregister();
	return 0;
}

static int tce_glue_takeover_set(const char *val, const struct kernel_param *kp)
{
	bool on;
	int ret;

	ret = kstrtobool(val, &on);
	if (ret)
		return ret;
	guard(mutex)(&tce_glue_takeover_lock);
	if (tce_glue_live) {
		ret = tce_glue_takeover_apply(on);
		if (ret)
			return ret;
	}
	tce_glue_takeover = on;
	pr_debug("takeover=%d\n", on);
	return 0;
}

static int tce_glue_takeover_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%c\n", READ_ONCE(tce_glue_takeover) ? 'Y' : 'N');
}

static const struct kernel_param_ops tce_glue_takeover_ops = {
	.set = tce_glue_takeover_set,
	.get = tce_glue_takeover_get,
};
module_param_cb(takeover, &tce_glue_takeover_ops, NULL, 0644);
MODULE_PARM_DESC(takeover,
		 "Serve the TCE tables that VMMs create with KVM_CREATE_SPAPR_TCE_64 from now on (default Y); N leaves new ones to KVM");

/*
 * max_tables_per_vm: how many tables of the module one VM may have at once. A table costs the
 * host its structures (charged to the creator's memory cgroup) and a place in the module's
 * registry, which every create and attach scans; QEMU makes one per VIO device and up to two
 * per PHB, so the default leaves plenty of room.
 */
static unsigned int tce_glue_max_tables = 1024;
module_param_named(max_tables_per_vm, tce_glue_max_tables, uint, 0644);
MODULE_PARM_DESC(max_tables_per_vm,
		 "The most tables of the module one VM may have at once (default 1024); more fail with ENOSPC");

unsigned int tce_glue_max_tables_per_vm(void)
{
	return READ_ONCE(tce_glue_max_tables);
}

int tce_glue_provider_start(void)
{
	guard(mutex)(&tce_glue_takeover_lock);
	if (tce_glue_takeover) {
		int ret = tce_glue_provider_register();

		if (ret)
			return ret;
	}
	tce_glue_live = true;
	return 0;
}

void tce_glue_provider_stop(void)
{
	guard(mutex)(&tce_glue_takeover_lock);
	if (tce_glue_live && tce_glue_takeover)
		tce_glue_provider_unregister();
	tce_glue_live = false;
}

/* Holds the memory slots of @vm stable for tce_glue_gpa_to_ua(). */
/*
 * Translates guest physical address @gpa of @vm through its memory slots into
 * the VMM's user address, as KVM's own TCE code does; false if no slot holds
 * it. The caller is a hypercall handler: KVM holds the VM's srcu, and so its
 * slots, around it.
 */
bool tce_glue_gpa_to_ua(struct kvm *vm, u64 gpa, u64 *ua)
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

/*
 * Reads @n big-endian words at user address @ua of the current process into
 * @out, in host order. Up to TCE_GLUE_WORDWISE words are read one by one with
 * get_user(), as KVM's C path reads an H_PUT_TCE_INDIRECT list: for a short
 * list that is a few instructions, where copy_from_user() costs about 150 (the
 * tce_cost plugin counted them). A longer list is one copy.
 */
#define TCE_GLUE_WORDWISE 8

int tce_glue_read_user_be64(u64 ua, u64 *out, size_t n)
{
	__be64 __user *p = u64_to_user_ptr(ua);
	size_t i;

	if (n <= TCE_GLUE_WORDWISE) {
		for (i = 0; i < n; i++) {
			__be64 w;

			if (get_user(w, p + i))
				return -EFAULT;
			out[i] = be64_to_cpu(w);
		}
		return 0;
	}
	if (n > SIZE_MAX / sizeof(*out) || copy_from_user(out, p, n * sizeof(*out)))
		return -EFAULT;
	for (i = 0; i < n; i++)
		out[i] = be64_to_cpu((__force __be64)out[i]);
	return 0;
}

/*
 * debugfs: tce_accel/tables lists the module's tables, one line each, with
 * the hypercalls each answered. The VM is printed hashed (%p), which is the
 * same for all tables of one VM in one boot.
 */
static struct dentry *tce_glue_debugfs_dir;

void tce_glue_seq_table(struct seq_file *seq, struct kvm *vm, u64 liobn,
			u32 page_shift, u64 size, u64 pages, u64 charged,
			size_t groups, const u64 *hcalls)
{
	seq_printf(seq, "vm %p liobn 0x%llx page_shift %u size %llu pages %llu charged %llu put %llu indirect %llu stuff %llu get %llu groups %zu\n",
		   vm, liobn, page_shift, size, pages, charged, hcalls[0], hcalls[1],
		   hcalls[2], hcalls[3], groups);
}

static int tce_glue_tables_show(struct seq_file *m, void *v)
{
	tce_accel_debugfs_tables(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(tce_glue_tables);

int tce_glue_debugfs_create(void)
{
	tce_glue_debugfs_dir = debugfs_create_dir("tce_accel", NULL);
	debugfs_create_file("tables", 0400, tce_glue_debugfs_dir, NULL,
			    &tce_glue_tables_fops);
	return 0;
}

void tce_glue_debugfs_remove(void)
{
	debugfs_remove(tce_glue_debugfs_dir);
}

bool tce_glue_capable_sys_admin(void)
{
	return capable(CAP_SYS_ADMIN);
}

void tce_glue_cond_resched(void)
{
	cond_resched();
}

/*
 * Hardware tables of VFIO groups (sPAPR TCE v2), attached to tce_accel tables.
 *
 * A struct tce_glue_hw holds a reference to one struct iommu_table of a group and to the
 * group. Exchanges of its entries are serialised by the table's it_ext_lock (patches/0005),
 * which VFIO takes too around its own map, unmap and clear loops, and which also covers the
 * table's user-address array (it_userspace, through it_ops->useraddrptr): the address recorded
 * for an entry is always the one the hardware entry maps, whichever side exchanged it last,
 * so the pinned-memory counts ("mapped") stay right.
 *
 * @gen is the table's it_ext_gen when it was attached. VFIO bumps it when it clears the table
 * for the last time (window removal, or the last group leaving the container); from then on the
 * attachment maps nothing, since nobody would clear it, and clears find nothing to clear.
 */
#ifdef TCE_GLUE_VFIO
struct tce_glue_hw {
	struct iommu_group *grp;
	struct iommu_table *tbl;
	unsigned long gen;
};

/*
 * Takes a reference to the iommu group of VFIO group file @fd. -EBADF: not open; -EINVAL: not
 * a VFIO group; -ENODEV: no sPAPR TCE table group; -EPERM: its DMA is not owned by user space
 * (the group is in no container), so its tables may be the host's own; checked only if
 * @need_owner (attaching needs it, finding an attached group again does not).
 */
int tce_glue_group_get(int fd, bool need_owner, struct iommu_group **group)
{
	struct iommu_group *(*file_group)(struct file *file);
	struct iommu_group *grp;
	int ret;
	CLASS(fd, f)(fd);

	if (fd_empty(f))
		return -EBADF;
	file_group = symbol_get(vfio_file_iommu_group);
	if (!file_group)
		return -EINVAL;
	grp = file_group(fd_file(f));
	symbol_put(vfio_file_iommu_group);
	if (!grp)
		return -EINVAL;
	ret = tce_glue_group_ref(grp, need_owner, group);
	iommu_group_put(grp);
	return ret;
}

/*
 * Takes another reference to @grp, which the caller holds (a group of the KVM-VFIO device),
 * with the checks of tce_glue_group_get().
 */
int tce_glue_group_ref(struct iommu_group *grp, bool need_owner,
		       struct iommu_group **group)
{
	if (!iommu_group_get_iommudata(grp))
		return -ENODEV;
	if (need_owner && !iommu_group_dma_owner_claimed(grp))
		return -EPERM;
	*group = iommu_group_ref_get(grp);
	return 0;
}

void tce_glue_group_put(struct iommu_group *group)
{
	iommu_group_put(group);
}

unsigned int tce_glue_group_windows(void)
{
	return IOMMU_TABLE_GROUP_MAX_TABLES;
}

/*
 * Takes a reference to hardware window @i of @group and returns its geometry (entries of
 * 1 << *page_shift bytes, the first one *offset). -ENOENT: no usable window there.
 */
/*
 * Whether the group is in a VFIO sPAPR TCE v2 container (patches/0004): only such a container
 * pins guest memory through preregistration, which the module's updates account for.
 */
bool tce_glue_group_v2(struct iommu_group *group)
{
	struct iommu_table_group *tg = iommu_group_get_iommudata(group);

	return tg && READ_ONCE(tg->v2_owned);
}

int tce_glue_hw_get(struct iommu_group *group, unsigned int i,
		    struct tce_glue_hw **hw_out, u32 *page_shift, u64 *offset,
		    u64 *size)
{
	struct iommu_table_group *tg = iommu_group_get_iommudata(group);
	struct iommu_table *tbl;
	struct tce_glue_hw *hw;

	if (!tg || i >= IOMMU_TABLE_GROUP_MAX_TABLES)
		return -ENOENT;
	hw = kzalloc(sizeof(*hw), GFP_KERNEL_ACCOUNT);
	if (!hw)
		return -ENOMEM;
	/*
	 * VFIO changes tables[] under its container lock, which is not ours to take; tables are
	 * freed after an RCU grace period (patches/0005), so a reference can be taken under RCU.
	 * Under the table's it_ext_lock, VFIO retires a table and unsets it in one step: if the
	 * table is still the group's window here, the generation read with it is current.
	 */
	rcu_read_lock();
	tbl = READ_ONCE(tg->tables[i]);
	if (tbl && !iommu_tce_table_get(tbl))
		tbl = NULL;
	rcu_read_unlock();
	if (!tbl) {
		kfree(hw);
		return -ENOENT;
	}
	mutex_lock(&tbl->it_ext_lock);
	hw->gen = tbl->it_ext_gen;
	if (READ_ONCE(tg->tables[i]) != tbl || !READ_ONCE(tg->v2_owned) || !tbl->it_ops ||
	    !tbl->it_ops->xchg_no_kill) {
		mutex_unlock(&tbl->it_ext_lock);
		iommu_tce_table_put(tbl);
		kfree(hw);
		return -ENOENT;
	}
	mutex_unlock(&tbl->it_ext_lock);
	iommu_group_ref_get(group);
	hw->grp = group;
	hw->tbl = tbl;
	*page_shift = tbl->it_page_shift;
	*offset = tbl->it_offset;
	*size = tbl->it_size;
	*hw_out = hw;
	return 0;
}

void tce_glue_hw_put(struct tce_glue_hw *hw)
{

	iommu_tce_table_put(hw->tbl);
	iommu_group_put(hw->grp);
	kfree(hw);
}

struct iommu_group *tce_glue_hw_group(struct tce_glue_hw *hw)
{
	return hw->grp;
}

struct iommu_table *tce_glue_hw_table(struct tce_glue_hw *hw)
{
	return hw->tbl;
}

static bool tce_glue_hw_index_ok(struct iommu_table *tbl, u64 index)
{
	return index >= tbl->it_offset && index - tbl->it_offset < tbl->it_size;
}

/*
 * Exchanges entry @index of @hw. In: *@hpa and *@perm (TCE_PCI_READ/WRITE; 0 clears) and *@ua,
 * the user address to record. Out: the old entry's, *@perm 0 if it was clear. @vm's mm is the
 * one whose preregistered memory the entries map.
 */
int tce_glue_hw_xchg(struct tce_glue_hw *hw, struct kvm *vm, u64 index,
		     u64 *hpa, u64 *perm, u64 *ua)
{
	struct iommu_table *tbl = hw->tbl;
	enum dma_data_direction dir = iommu_tce_direction(*perm);
	unsigned long h = dir == DMA_NONE ? 0 : *hpa;
	u64 old_ua = 0;
	__be64 *pua;
	long ret;

	if (!tce_glue_hw_index_ok(tbl, index))
		return -EINVAL;
	mutex_lock(&tbl->it_ext_lock);
	if (tbl->it_ext_gen != hw->gen) {
		/*
		 * VFIO cleared the table for good: nothing of ours is mapped any more, and
		 * nothing may be, as nobody would clear it.
		 */
		ret = dir == DMA_NONE ? 0 : -ENXIO;
		*perm = 0;
		*hpa = 0;
		*ua = 0;
		goto out;
	}
	if (dir != DMA_NONE) {
		pua = IOMMU_TABLE_USERSPACE_ENTRY(tbl, index);
		if (!pua) {
			ret = -ENOMEM;
			goto out;
		}
	} else {
		pua = IOMMU_TABLE_USERSPACE_ENTRY_RO(tbl, index);
		/*
		 * Every mapping of a v2 window records its user address (VFIO's and ours), so
		 * an entry without one is clear: skip the exchange, which on pseries is a
		 * hypercall. This keeps an H_STUFF_TCE over a large, mostly empty window cheap.
		 */
		if (!pua || !*pua) {
			*perm = 0;
			*hpa = 0;
			*ua = 0;
			ret = 0;
			goto out;
		}
	}
	ret = iommu_tce_xchg_no_kill(((struct kvm *)vm)->mm, tbl, index, &h, &dir);
	if (ret)
		goto out;
	if (pua) {
		old_ua = be64_to_cpu(*pua);
		*pua = cpu_to_be64(*perm ? *ua : 0);
	}
	*perm = iommu_direction_to_tce_perm(dir);
	*hpa = dir == DMA_NONE ? 0 : h;
	*ua = dir == DMA_NONE ? 0 : old_ua;
out:
	mutex_unlock(&tbl->it_ext_lock);
	return ret;
}

/* Invalidates the IOMMU's cache of entries [@index, @index + @pages) of @hw. */
void tce_glue_hw_kill(struct tce_glue_hw *hw, u64 index, u64 pages)
{

	iommu_tce_kill(hw->tbl, index, pages);
}

/* Reads entry @index of @hw back from the platform (diagnosis), and its recorded user address. */
int tce_glue_hw_read(struct tce_glue_hw *hw, u64 index, u64 *tce, u64 *ua)
{
	struct iommu_table *tbl = hw->tbl;
	__be64 *pua;

	if (!tce_glue_hw_index_ok(tbl, index))
		return -EINVAL;
	if (!tbl->it_ops->get)
		return -EOPNOTSUPP;
	mutex_lock(&tbl->it_ext_lock);
	/*
	 * A retired table is no longer the platform's window (on pseries, reading it asks the
	 * hypervisor about a window that is gone): it maps nothing of ours. Its recorded user
	 * addresses show whether VFIO's last clear returned every count.
	 */
	if (tbl->it_ext_gen != hw->gen)
		*tce = 0;
	else
		*tce = tbl->it_ops->get(tbl, index);
	pua = IOMMU_TABLE_USERSPACE_ENTRY_RO(tbl, index);
	*ua = pua ? be64_to_cpu(*pua) : 0;
	mutex_unlock(&tbl->it_ext_lock);
	return 0;
}

/*
 * Preregistered memory of @vm's mm. Regions are freed after an RCU grace period once
 * unregistered, so each helper looks its region up and uses it inside one RCU read-side
 * section; a region that maps an entry cannot be unregistered (its "mapped" count).
 */
bool tce_glue_dma_lookup(struct kvm *vm, u64 ua, u64 size)
{
	bool found;

	rcu_read_lock();
	found = mm_iommu_lookup(((struct kvm *)vm)->mm, ua, size);
	rcu_read_unlock();
	return found;
}

bool tce_glue_dma_hpa(struct kvm *vm, u64 ua, u64 size, u32 page_shift, u64 *hpa)
{
	struct mm_iommu_table_group_mem_t *mem;
	unsigned long h = 0;
	bool ok;

	rcu_read_lock();
	mem = mm_iommu_lookup(((struct kvm *)vm)->mm, ua, size);
	ok = mem && !mm_iommu_ua_to_hpa(mem, ua, page_shift, &h);
	rcu_read_unlock();
	*hpa = h;
	return ok;
}

/* Looks up, translates and counts a mapping of [@ua, @ua + (1 << @page_shift)) as one step. */
bool tce_glue_dma_map(struct kvm *vm, u64 ua, u32 page_shift, u64 *hpa)
{
	struct mm_iommu_table_group_mem_t *mem;
	unsigned long h = 0;
	bool ok;

	rcu_read_lock();
	mem = mm_iommu_lookup(((struct kvm *)vm)->mm, ua, 1ULL << page_shift);
	ok = mem && !mm_iommu_ua_to_hpa(mem, ua, page_shift, &h) &&
	     !mm_iommu_mapped_inc(mem);
	rcu_read_unlock();
	*hpa = h;
	return ok;
}

bool tce_glue_dma_inc(struct kvm *vm, u64 ua, u64 size)
{
	struct mm_iommu_table_group_mem_t *mem;
	bool ok;

	rcu_read_lock();
	mem = mm_iommu_lookup(((struct kvm *)vm)->mm, ua, size);
	ok = mem && !mm_iommu_mapped_inc(mem);
	rcu_read_unlock();
	return ok;
}

/* Counts one mapping fewer of the region of [@ua, @ua + @size); false if no region holds it. */
bool tce_glue_dma_dec(struct kvm *vm, u64 ua, u64 size)
{
	struct mm_iommu_table_group_mem_t *mem;

	rcu_read_lock();
	mem = mm_iommu_lookup(((struct kvm *)vm)->mm, ua, size);
	if (mem)
		mm_iommu_mapped_dec(mem);
	rcu_read_unlock();
	return mem;
}
#else
int tce_glue_group_get(int fd, bool need_owner, struct iommu_group **group)
{
	return -ENODEV;	/* No sPAPR TCE IOMMU with VFIO: nothing can be attached. */
}

int tce_glue_group_ref(struct iommu_group *grp, bool need_owner,
		       struct iommu_group **group)
{
	return -ENODEV;
}

void tce_glue_group_put(struct iommu_group *group)
{
}

unsigned int tce_glue_group_windows(void)
{
	return 0;
}

bool tce_glue_group_v2(struct iommu_group *group)
{
	return false;
}

int tce_glue_hw_get(struct iommu_group *group, unsigned int i,
		    struct tce_glue_hw **hw_out, u32 *page_shift, u64 *offset,
		    u64 *size)
{
	return -ENOENT;
}

void tce_glue_hw_put(struct tce_glue_hw *hw)
{
}

struct iommu_group *tce_glue_hw_group(struct tce_glue_hw *hw)
{
	return NULL;
}

struct iommu_table *tce_glue_hw_table(struct tce_glue_hw *hw)
{
	return NULL;
}

int tce_glue_hw_xchg(struct tce_glue_hw *hw, struct kvm *vm, u64 index,
		     u64 *hpa, u64 *perm, u64 *ua)
{
	return -EOPNOTSUPP;
}

void tce_glue_hw_kill(struct tce_glue_hw *hw, u64 index, u64 pages)
{
}

int tce_glue_hw_read(struct tce_glue_hw *hw, u64 index, u64 *tce, u64 *ua)
{
	return -EOPNOTSUPP;
}

bool tce_glue_dma_lookup(struct kvm *vm, u64 ua, u64 size)
{
	return false;
}

bool tce_glue_dma_hpa(struct kvm *vm, u64 ua, u64 size, u32 page_shift, u64 *hpa)
{
	return false;
}

bool tce_glue_dma_map(struct kvm *vm, u64 ua, u32 page_shift, u64 *hpa)
{
	return false;
}

bool tce_glue_dma_inc(struct kvm *vm, u64 ua, u64 size)
{
	return false;
}

bool tce_glue_dma_dec(struct kvm *vm, u64 ua, u64 size)
{
	return false;
}
#endif
