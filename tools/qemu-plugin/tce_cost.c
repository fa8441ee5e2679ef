// SPDX-License-Identifier: GPL-2.0
/*
 * tce_cost: a QEMU TCG plugin that measures what the emulated POWER host (L1) spends on each
 * TCE hypercall of its nested guest (L2), in units that do not depend on the emulator's
 * timing: the instructions L1 executes, and the distinct cache lines (128 bytes) and pages
 * (64 KiB) its loads and stores touch.
 *
 * How a hypercall's own work is separated from the rest of the run. Under nested KVM-HV, L1
 * runs L2 with the hypercall H_ENTER_NESTED (sc 1 with r3 = 0xF804), which returns when L2
 * exits. L2's instructions are executed by this same vCPU while it is "inside" that call. When
 * L2 executes sc 1 with r3 one of the four TCE hypercalls, the plugin records the call (r3, the
 * LIOBN in r4, the count in r7 for H_STUFF_TCE and H_PUT_TCE_INDIRECT) and, from the next
 * instruction on, counts everything this vCPU executes until L1 calls H_ENTER_NESTED again:
 * KVM's exit and entry paths, the hypercall's handler (tce_accel's, KVM's C code, or for the
 * user path the exit to the VMM, the VMM's answer and the return), and any interrupt L1 takes
 * meanwhile. The exit and entry paths are the same for every path, interrupts are rare and
 * land in the tail, so the median over many identical calls is the hypercall's cost plus a
 * constant, and it is the same in two runs. L0's own work (QEMU emulating H_ENTER_NESTED and
 * the nested exit) executes no guest instructions and is not counted.
 *
 * The guest payload of samples/tce_vmm runs its calls in jobs and ends each job with the
 * hypercall H_JOB_DONE (0xE000). The plugin reports per job, and only jobs whose measured calls
 * all had the same hypercall, LIOBN and count: a benchmark row is one such job. Which LIOBN is
 * which path, and how many calls a row made, the benchmark's own JSON says (tce-latency matches
 * the two).
 *
 * Arguments: out=FILE (where the report is written at exit; default stderr); profile=FILE
 * (optional: where each reported job's instructions go, by the address of the translated
 * block that executed them, for scripts/cost-profile.sh to name by function).
 * Output, one line per such job, in the order the jobs ended:
 *   tce_cost hcall=0x20 liobn=0x80000001 npages=0 calls=N insns=MEDIAN insns_min=MIN
 *            lines=MEDIAN pages=MEDIAN
 * and in the profile, per such job, its line as above and then one line per block address:
 *   pc=0xADDR insns=TOTAL   (TOTAL over all the job's calls: divide by calls=N)
 */
#include <glib.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define H_GET_TCE		0x1c
#define H_PUT_TCE		0x20
#define H_STUFF_TCE		0x138
#define H_PUT_TCE_INDIRECT	0x13c
#define H_ENTER_NESTED		0xf804
#define H_JOB_DONE		0xe000

#define SC_1			0x44000022u
#define LINE_SHIFT		7
#define PAGE_SHIFT		16
#define MAX_VCPUS		64

enum state {
	OUTSIDE,	/* L1 runs, not answering a TCE hypercall of L2 */
	IN_L2,		/* L1 called H_ENTER_NESTED: the instructions are L2's */
	MEASURING,	/* L1 answers a TCE hypercall of L2 */
};

struct sample {
	uint64_t insns, lines, pages;
};

struct vcpu {
	enum state state;
	uint64_t insns;
	uint64_t start;
	uint64_t r3, r4, r7;
	GHashTable *lines, *pages;
	/* The current job: its key ("" before its first call, NULL once its calls differ). */
	char *key;
	GArray *samples;
	/* With profile=: instructions of the current job by block address. */
	GHashTable *by_pc;
};

/* What a translated block's callback knows of it. */
struct block {
	uint64_t vaddr;
	uint64_t n;
};

static struct vcpu vcpus[MAX_VCPUS];
static struct qemu_plugin_register *reg_r3, *reg_r4, *reg_r7;
static GMutex lock;
static GPtrArray *report;	/* one line per job of alike calls, in order */
static char *out_path;
static char *profile_path;
static GString *profile;	/* the profile's text, written at exit */

static struct vcpu *vcpu_of(unsigned int index)
{
	return index < MAX_VCPUS ? &vcpus[index] : NULL;
}

static uint64_t read_reg(struct qemu_plugin_register *reg)
{
	GByteArray *buf = g_byte_array_new();
	uint64_t v = 0;
	int n = reg ? qemu_plugin_read_register(reg, buf) : -1;

	if (n > 0 && n <= 8) {
		/* The registers read in the vCPU's byte order: little-endian here. */
		for (int i = n - 1; i >= 0; i--)
			v = (v << 8) | buf->data[i];
	}
	g_byte_array_free(buf, TRUE);
	return v;
}

static bool is_tce_hcall(uint64_t r3)
{
	return r3 == H_GET_TCE || r3 == H_PUT_TCE || r3 == H_STUFF_TCE ||
	       r3 == H_PUT_TCE_INDIRECT;
}

static int by_insns(gconstpointer a, gconstpointer b)
{
	const struct sample *x = a, *y = b;

	return x->insns < y->insns ? -1 : x->insns > y->insns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The median of the field at @off of the samples in @a. */
static uint64_t median_of(GArray *a, size_t off)
{
	uint64_t *v = g_new(uint64_t, a->len);
	uint64_t m;

	for (guint i = 0; i < a->len; i++)
		memcpy(&v[i], (char *)&g_array_index(a, struct sample, i) + off, sizeof(v[i]));
	qsort(v, a->len, sizeof(v[0]), cmp_u64);
	m = v[a->len / 2];
	g_free(v);
	return m;
}

/* One measured call ends: add it to the job. */
static void finish(struct vcpu *v)
{
	struct sample s = {
		.insns = v->insns - v->start,
		.lines = g_hash_table_size(v->lines),
		.pages = g_hash_table_size(v->pages),
	};
	uint64_t npages = v->r3 == H_STUFF_TCE || v->r3 == H_PUT_TCE_INDIRECT ? v->r7 : 0;
	char *key = g_strdup_printf("hcall=%#" PRIx64 " liobn=%#" PRIx64 " npages=%" PRIu64,
				    v->r3, v->r4, npages);

	if (v->key && !*v->key) {
		g_free(v->key);
		v->key = key;
	} else {
		if (v->key && strcmp(v->key, key)) {
			g_free(v->key);
			v->key = NULL;
		}
		g_free(key);
	}
	g_array_append_val(v->samples, s);
}

/* The job ends: report it if all its calls were alike. */
static void end_job(struct vcpu *v)
{
	GArray *a = v->samples;

	if (v->key && *v->key && a->len) {
		char *line;

		g_array_sort(a, by_insns);
		line = g_strdup_printf("tce_cost %s calls=%u insns=%" PRIu64 " insns_min=%" PRIu64
				       " lines=%" PRIu64 " pages=%" PRIu64,
				       v->key, a->len, g_array_index(a, struct sample, a->len / 2).insns,
				       g_array_index(a, struct sample, 0).insns,
				       median_of(a, offsetof(struct sample, lines)),
				       median_of(a, offsetof(struct sample, pages)));
		g_mutex_lock(&lock);
		g_ptr_array_add(report, line);
		if (profile) {
			GHashTableIter it;
			gpointer pc, n;

			g_string_append_printf(profile, "%s\n", line);
			g_hash_table_iter_init(&it, v->by_pc);
			while (g_hash_table_iter_next(&it, &pc, &n))
				g_string_append_printf(profile, "pc=%#" PRIx64 " insns=%" PRIu64 "\n",
						       *(uint64_t *)pc, *(uint64_t *)n);
		}
		g_mutex_unlock(&lock);
	}
	if (v->by_pc)
		g_hash_table_remove_all(v->by_pc);
	g_free(v->key);
	v->key = g_strdup("");
	g_array_set_size(a, 0);
}

/* Every sc 1: L1 entering L2, or L2 making a hypercall. */
static void on_sc(unsigned int index, void *udata)
{
	struct vcpu *v = vcpu_of(index);
	uint64_t r3;

	if (!v)
		return;
	r3 = read_reg(reg_r3);
	if (r3 == H_ENTER_NESTED) {
		if (v->state == MEASURING)
			finish(v);
		v->state = IN_L2;
		return;
	}
	if (v->state != IN_L2)
		return;
	if (!is_tce_hcall(r3)) {
		/* Another hypercall of L2 (the payload's job control): not measured. */
		if (r3 == H_JOB_DONE)
			end_job(v);
		v->state = OUTSIDE;
		return;
	}
	v->r3 = r3;
	v->r4 = read_reg(reg_r4);
	v->r7 = read_reg(reg_r7);
	v->start = v->insns;
	g_hash_table_remove_all(v->lines);
	g_hash_table_remove_all(v->pages);
	v->state = MEASURING;
}

static void on_tb(unsigned int index, void *udata)
{
	struct vcpu *v = vcpu_of(index);

	if (v)
		v->insns += (uintptr_t)udata;
}

/* With profile=: as on_tb, and a measured call's block adds to the job's count at its address. */
static void on_tb_profiled(unsigned int index, void *udata)
{
	struct vcpu *v = vcpu_of(index);
	const struct block *b = udata;
	uint64_t *n;

	if (!v)
		return;
	v->insns += b->n;
	if (v->state != MEASURING)
		return;
	n = g_hash_table_lookup(v->by_pc, &b->vaddr);
	if (!n) {
		uint64_t *key = g_new(uint64_t, 1);

		*key = b->vaddr;
		n = g_new0(uint64_t, 1);
		g_hash_table_insert(v->by_pc, key, n);
	}
	*n += b->n;
}

/*
 * The block descriptions of profile=, one per distinct (address, length): a block translated
 * again shares its description, so retranslation does not grow memory.
 */
static GHashTable *blocks;

static struct block *block_of(uint64_t vaddr, uint64_t n)
{
	struct block key = { vaddr, n }, *b;

	g_mutex_lock(&lock);
	b = g_hash_table_lookup(blocks, &key);
	if (!b) {
		b = g_new(struct block, 1);
		*b = key;
		g_hash_table_add(blocks, b);
	}
	g_mutex_unlock(&lock);
	return b;
}

static guint block_hash(gconstpointer p)
{
	const struct block *b = p;

	return g_int64_hash(&b->vaddr) ^ (guint)b->n;
}

static gboolean block_equal(gconstpointer a, gconstpointer b)
{
	const struct block *x = a, *y = b;

	return x->vaddr == y->vaddr && x->n == y->n;
}

static void on_mem(unsigned int index, qemu_plugin_meminfo_t info, uint64_t vaddr,
		   void *udata)
{
	struct vcpu *v = vcpu_of(index);

	if (!v || v->state != MEASURING)
		return;
	g_hash_table_add(v->lines, GUINT_TO_POINTER(vaddr >> LINE_SHIFT));
	g_hash_table_add(v->pages, GUINT_TO_POINTER(vaddr >> PAGE_SHIFT));
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);

	if (profile)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_profiled, QEMU_PLUGIN_CB_NO_REGS,
						     block_of(qemu_plugin_tb_vaddr(tb), n));
	else
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb, QEMU_PLUGIN_CB_NO_REGS,
						     (void *)(uintptr_t)n);
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint8_t b[4];

		qemu_plugin_register_vcpu_mem_cb(insn, on_mem, QEMU_PLUGIN_CB_NO_REGS,
						 QEMU_PLUGIN_MEM_RW, NULL);
		if (qemu_plugin_insn_size(insn) != 4 || qemu_plugin_insn_data(insn, b, 4) != 4)
			continue;
		if (((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
		     (uint32_t)b[3] << 24) == SC_1 ||
		    ((uint32_t)b[3] | (uint32_t)b[2] << 8 | (uint32_t)b[1] << 16 |
		     (uint32_t)b[0] << 24) == SC_1)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_sc, QEMU_PLUGIN_CB_R_REGS,
							       NULL);
	}
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int index)
{
	struct vcpu *v = vcpu_of(index);
	GArray *regs = qemu_plugin_get_registers();

	for (guint i = 0; i < regs->len; i++) {
		qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);

		if (!strcmp(d->name, "r3"))
			reg_r3 = d->handle;
		else if (!strcmp(d->name, "r4"))
			reg_r4 = d->handle;
		else if (!strcmp(d->name, "r7"))
			reg_r7 = d->handle;
	}
	g_array_free(regs, TRUE);
	if (v) {
		v->lines = g_hash_table_new(g_direct_hash, g_direct_equal);
		v->pages = g_hash_table_new(g_direct_hash, g_direct_equal);
		v->samples = g_array_new(FALSE, FALSE, sizeof(struct sample));
		v->key = g_strdup("");
		if (profile)
			v->by_pc = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
							 g_free);
	}
}

static void on_plugin_exit(qemu_plugin_id_t id, void *udata)
{
	FILE *f = out_path ? fopen(out_path, "w") : stderr;

	if (!f)
		f = stderr;
	g_mutex_lock(&lock);
	for (guint i = 0; i < report->len; i++)
		fprintf(f, "%s\n", (char *)g_ptr_array_index(report, i));
	g_mutex_unlock(&lock);
	if (f != stderr)
		fclose(f);
	if (profile) {
		FILE *p = fopen(profile_path, "w");

		if (p) {
			fputs(profile->str, p);
			fclose(p);
		} else {
			fprintf(stderr, "tce_cost: cannot write %s\n", profile_path);
		}
	}
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
					   int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4)) {
			out_path = g_strdup(argv[i] + 4);
		} else if (!strncmp(argv[i], "profile=", 8)) {
			profile_path = g_strdup(argv[i] + 8);
		} else {
			fprintf(stderr, "tce_cost: unknown argument %s\n", argv[i]);
			return -1;
		}
	}
	report = g_ptr_array_new();
	if (profile_path) {
		profile = g_string_new(NULL);
		blocks = g_hash_table_new(block_hash, block_equal);
	}
	qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
	return 0;
}
