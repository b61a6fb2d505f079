// SPDX-License-Identifier: GPL-2.0
/*
 * cowstat's C glue: the kernel facilities that the Rust kernel crate does
 * not bind, on the project's 6.12 kernel and on distribution 7.x kernels
 * alike (ftrace ops, kprobe-based symbol lookup, kretprobes, procfs and the
 * page-table inspection the counters need).
 *
 * It is compiled against the target kernel's own headers, so every C struct
 * the module reads or writes is laid out by the C compiler that built that
 * kernel. The Rust side never touches a C struct field: it passes opaque
 * pointers and integers through the functions below (declared again in
 * rust/glue.rs; keep the two in step). This is what lets one module source
 * load into an unpatched distribution kernel.
 *
 * Functions called from ftrace callbacks are notrace and never sleep.
 */
#include <linux/capability.h>
#include <linux/err.h>
#include <linux/ftrace.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/proc_fs.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/utsname.h>

/* ---- Symbols ------------------------------------------------------------ */

/*
 * Finds the core-kernel function @name: its start and size in bytes.
 * -ENOENT if no such function exists (for example, the compiler inlined it),
 * -EEXIST if the only match is in a module (a livepatch or a same-named
 * static), which cowstat never hooks.
 *
 * kallsyms_lookup_name() is not exported; a disabled kprobe resolves the
 * name through it without arming anything.
 */
int cowstat_symbol_range(const char *name, unsigned long *start,
			 unsigned long *size)
{
	struct kprobe kp = { .symbol_name = name, .flags = KPROBE_FLAG_DISABLED };
	char buf[KSYM_SYMBOL_LEN];
	unsigned long addr, off, len;
	char *plus;
	int ret;

	ret = register_kprobe(&kp);
	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	addr = (unsigned long)kp.addr;
	unregister_kprobe(&kp);

	/* "name+0xOFF/0xLEN" for vmlinux, with " [module]" appended otherwise. */
	sprint_symbol(buf, addr);
	if (strchr(buf, '['))
		return -EEXIST;
	plus = strrchr(buf, '+');
	if (!plus || sscanf(plus, "+%lx/%lx", &off, &len) != 2 || off > addr)
		return -ENOENT;
	*start = addr - off;
	*size = len;
	return 0;
}

/* ---- ftrace ------------------------------------------------------------- */

/*
 * A new ftrace_ops that calls @func at the entry of the function starting at
 * @ip, and only that one (filtered by address, so a module's same-named
 * function is never hooked). PERMANENT: `sysctl kernel.ftrace_enabled=0`
 * fails with EBUSY while cowstat is loaded instead of silently stopping it.
 */
struct ftrace_ops *cowstat_ftrace_new(ftrace_func_t func, unsigned long ip)
{
	struct ftrace_ops *ops = kzalloc(sizeof(*ops), GFP_KERNEL);
	int ret;

	if (!ops)
		return ERR_PTR(-ENOMEM);
	ops->func = func;
	ops->flags = FTRACE_OPS_FL_PERMANENT;
	ret = ftrace_set_filter_ip(ops, ip, 0, 1);
	if (ret) {
		ftrace_free_filter(ops);
		kfree(ops);
		return ERR_PTR(ret);
	}
	return ops;
}

int cowstat_ftrace_register(struct ftrace_ops *ops)
{
	return register_ftrace_function(ops);
}

/* Returns non-zero if ftrace refused; the ops may then still be live. */
int cowstat_ftrace_unregister(struct ftrace_ops *ops)
{
	return unregister_ftrace_function(ops);
}

/* Only for an ops that is not registered (never was, or unregistered). */
void cowstat_ftrace_free(struct ftrace_ops *ops)
{
	ftrace_free_filter(ops);
	kfree(ops);
}

/* Integer argument @n (0-based) of the hooked function, at its entry. */
notrace unsigned long cowstat_fregs_arg(struct ftrace_regs *fregs,
					unsigned int n)
{
	return ftrace_regs_get_argument(fregs, n);
}

/* ---- Timed return probes (kretprobe) ------------------------------------ */

typedef void (*cowstat_ret_fn)(u64 elapsed_ns, long retval);

struct cowstat_kretprobe {
	struct kretprobe rp;
	cowstat_ret_fn ret;
};

static int cowstat_kret_entry(struct kretprobe_instance *ri,
			      struct pt_regs *regs)
{
	*(u64 *)ri->data = ktime_get_mono_fast_ns();
	return 0;
}

static int cowstat_kret_return(struct kretprobe_instance *ri,
			       struct pt_regs *regs)
{
	struct cowstat_kretprobe *k =
		container_of(get_kretprobe(ri), struct cowstat_kretprobe, rp);

	k->ret(ktime_get_mono_fast_ns() - *(u64 *)ri->data,
	       (long)regs_return_value(regs));
	return 0;
}

/*
 * Registers a probe on @symbol that calls @ret with the call's duration and
 * return value each time it returns; up to @maxactive calls in flight.
 */
struct cowstat_kretprobe *cowstat_kretprobe_new(const char *symbol,
						cowstat_ret_fn ret,
						int maxactive)
{
	struct cowstat_kretprobe *k = kzalloc(sizeof(*k), GFP_KERNEL);
	int err;

	if (!k)
		return ERR_PTR(-ENOMEM);
	k->ret = ret;
	k->rp.kp.symbol_name = symbol;
	k->rp.entry_handler = cowstat_kret_entry;
	k->rp.handler = cowstat_kret_return;
	k->rp.data_size = sizeof(u64);
	k->rp.maxactive = maxactive;
	err = register_kretprobe(&k->rp);
	if (err) {
		kfree(k);
		return ERR_PTR(err == -EINVAL ? -ENOENT : err);
	}
	return k;
}

/* Unregisters (waiting for running handlers) and frees. */
void cowstat_kretprobe_free(struct cowstat_kretprobe *k)
{
	unregister_kretprobe(&k->rp);
	kfree(k);
}

/* ---- Fault-path inspection ---------------------------------------------- */

/* What a write-protected PTE maps, as wp_page_copy() sees it. */
enum cowstat_source {
	COWSTAT_SRC_ZERO = 0,	/* the shared zero page: a zero-fill */
	COWSTAT_SRC_ANON = 1,	/* an anonymous page: a fork COW copy */
	COWSTAT_SRC_KSM = 2,	/* a KSM-merged page */
	COWSTAT_SRC_OTHER = 3,	/* a file page, or a raw PFN without a page */
};

/*
 * Classifies the page @ptep maps, the way the kernel does in wp_page_copy():
 * is_zero_pfn(pte_pfn(orig_pte)) decides zero-fill versus copy. The caller
 * holds the page-table lock, so the PTE and its page are stable.
 */
notrace int cowstat_pte_source(const void *ptep)
{
	pte_t pte = ptep_get((pte_t *)ptep);
	unsigned long pfn = pte_pfn(pte);
	struct folio *folio;

	if (is_zero_pfn(pfn))
		return COWSTAT_SRC_ZERO;
	if (pte_special(pte) || !pfn_valid(pfn))
		return COWSTAT_SRC_OTHER;
	folio = page_folio(pfn_to_page(pfn));
	if (folio_test_ksm(folio))
		return COWSTAT_SRC_KSM;
	return folio_test_anon(folio) ? COWSTAT_SRC_ANON : COWSTAT_SRC_OTHER;
}

/* The VMA is a shared mapping (writes never copy). */
notrace bool cowstat_vma_is_shared(const void *vma)
{
	return ((const struct vm_area_struct *)vma)->vm_flags &
	       (VM_SHARED | VM_MAYSHARE);
}

/* The fault is a GUP unshare request, not a write. */
notrace bool cowstat_vmf_is_unshare(const void *vmf)
{
	return ((const struct vm_fault *)vmf)->flags & FAULT_FLAG_UNSHARE;
}

/* @task, about to run for the first time, got its own address space. */
notrace bool cowstat_task_has_new_mm(const void *task)
{
	const struct task_struct *p = task;

	return p->mm && p->mm != current->mm;
}

/*
 * The running task's thread-group id and command name (16 bytes, NUL
 * padded, read as two words: prctl(PR_SET_NAME) may rewrite it meanwhile,
 * and a torn name is what get_task_comm() readers accept too). Returns the
 * task pointer, an identity that is unique while the task lives.
 */
notrace unsigned long cowstat_current(int *tgid, u64 comm[2])
{
	struct task_struct *t = current;

	BUILD_BUG_ON(sizeof(t->comm) != 2 * sizeof(u64));
	*tgid = t->tgid;
	comm[0] = READ_ONCE(((u64 *)t->comm)[0]);
	comm[1] = READ_ONCE(((u64 *)t->comm)[1]);
	return (unsigned long)t;
}

/* `uname -r`, for load errors. */
const char *cowstat_kernel_release(void)
{
	return init_utsname()->release;
}

/* ---- procfs ------------------------------------------------------------- */

/* Implemented in Rust (rust/procfs.rs); @id says which file. */
size_t cowstat_rs_size_hint(unsigned long id);
int cowstat_rs_show(struct seq_file *m, unsigned long id);
int cowstat_rs_write(unsigned long id, const u8 *data, size_t len, bool admin);

#define COWSTAT_MAX_WRITE 64

static int cowstat_show(struct seq_file *m, void *v)
{
	return cowstat_rs_show(m, (unsigned long)m->private);
}

static int cowstat_open(struct inode *inode, struct file *file)
{
	unsigned long id = (unsigned long)pde_data(inode);
	size_t hint = cowstat_rs_size_hint(id);

	if (hint)
		return single_open_size(file, cowstat_show, (void *)id, hint);
	return single_open(file, cowstat_show, (void *)id);
}

/*
 * Whether the writer may reset is decided here, at write time, from the
 * writer's own credentials in the initial user namespace: file mode alone
 * would let a descriptor opened by root be written by anyone it is passed to.
 */
static ssize_t cowstat_write(struct file *file, const char __user *buf,
			     size_t count, loff_t *ppos)
{
	unsigned long id = (unsigned long)pde_data(file_inode(file));
	u8 data[COWSTAT_MAX_WRITE];
	int ret;

	if (*ppos != 0 || count == 0 || count > sizeof(data))
		return -EINVAL;
	if (copy_from_user(data, buf, count))
		return -EFAULT;
	ret = cowstat_rs_write(id, data, count, capable(CAP_SYS_ADMIN));
	return ret < 0 ? ret : count;
}

static const struct proc_ops cowstat_ro_ops = {
	.proc_open = cowstat_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
};

static const struct proc_ops cowstat_rw_ops = {
	.proc_open = cowstat_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
	.proc_write = cowstat_write,
};

struct proc_dir_entry *cowstat_proc_mkdir(const char *name)
{
	return proc_mkdir(name, NULL);
}

int cowstat_proc_create(struct proc_dir_entry *dir, const char *name,
			umode_t mode, unsigned long id, bool writable)
{
	return proc_create_data(name, mode, dir,
				writable ? &cowstat_rw_ops : &cowstat_ro_ops,
				(void *)id) ? 0 : -ENOMEM;
}

/* Removes @dir and its files, waiting for callbacks in progress. */
void cowstat_proc_remove(struct proc_dir_entry *dir)
{
	proc_remove(dir);
}

void cowstat_seq_write(struct seq_file *m, const u8 *data, size_t len)
{
	seq_write(m, data, len);
}
