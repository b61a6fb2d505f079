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
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/pid_namespace.h>
#include <linux/proc_fs.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/seqlock.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/utsname.h>

#include "glue.h"

/* ---- Symbols ------------------------------------------------------------ */

/*
 * Finds the core-kernel functions @names[0..n): their starts and sizes in
 * bytes, 0/0 for a name that is not a function here (the compiler inlined
 * it, or it is only in a module: a livepatch or a same-named static, which
 * cowstat never hooks). Returns 0 or a negative errno (no memory).
 *
 * kallsyms_lookup_name() is not exported; a disabled kprobe resolves a name
 * through it without arming anything. All of them are unregistered at
 * once, so a load waits for one RCU grace period, not one per name.
 */
int cowstat_symbols_resolve(const char *const *names, unsigned long *starts,
			    unsigned long *sizes, unsigned int n)
{
	struct kprobe *kps = kcalloc(n, sizeof(*kps), GFP_KERNEL);
	struct kprobe **live = kcalloc(n, sizeof(*live), GFP_KERNEL);
	char buf[KSYM_SYMBOL_LEN];
	unsigned long addr, off, len;
	unsigned int i, nlive = 0;
	char *plus;

	if (!kps || !live) {
		kfree(kps);
		kfree(live);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		starts[i] = sizes[i] = 0;
		kps[i].symbol_name = names[i];
		kps[i].flags = KPROBE_FLAG_DISABLED;
		if (register_kprobe(&kps[i]))
			continue;
		live[nlive++] = &kps[i];
		addr = (unsigned long)kps[i].addr;
		/* "name+0xOFF/0xLEN", with " [module]" appended for a module. */
		sprint_symbol(buf, addr);
		plus = strrchr(buf, '+');
		if (strchr(buf, '[') || !plus ||
		    sscanf(plus, "+%lx/%lx", &off, &len) != 2 || off > addr)
			continue;
		starts[i] = addr - off;
		sizes[i] = len;
	}
	if (nlive)
		unregister_kprobes(live, nlive);
	kfree(live);
	kfree(kps);
	return 0;
}

/* ---- ftrace ------------------------------------------------------------- */

struct cowstat_ftrace {
	struct ftrace_ops ops;
	cowstat_entry_fn entry;
};

/*
 * The ops' callback. The ops does not set FTRACE_OPS_FL_RECURSION, so
 * ftrace's trampoline calls this directly, in whatever state the hooked
 * function was entered: preemptible for some (wake_up_new_task,
 * release_task, do_huge_pmd_wp_page, __split_huge_pmd). So take ftrace's
 * recursion lock here, as fprobe and livepatch do: a re-entry in the same
 * context is dropped, and preemption stays off until the unlock. That makes
 * each handler an RCU read-side section, which a reset waits for
 * (rust/table.rs), and keeps a handler on one CPU.
 */
static void notrace cowstat_ftrace_call(unsigned long ip,
					unsigned long parent_ip,
					struct ftrace_ops *op,
					struct ftrace_regs *fregs)
{
	struct cowstat_ftrace *f = container_of(op, struct cowstat_ftrace, ops);
	int bit = ftrace_test_recursion_trylock(ip, parent_ip);

	if (bit < 0)
		return;
	f->entry(ip, parent_ip, fregs);
	ftrace_test_recursion_unlock(bit);
}

/*
 * A new ftrace_ops that calls @entry at the entry of the functions starting
 * at @ips[0..n), and only those (filtered by address, so a module's
 * same-named function is never hooked). One ops for every hook: unloading
 * then waits for one RCU-tasks grace period, not one per hook. PERMANENT:
 * `sysctl kernel.ftrace_enabled=0` fails with EBUSY while cowstat is
 * loaded instead of silently stopping it.
 */
struct ftrace_ops *cowstat_ftrace_new(cowstat_entry_fn entry,
				      const unsigned long *ips, unsigned int n)
{
	struct cowstat_ftrace *f = kzalloc(sizeof(*f), GFP_KERNEL);
	unsigned int i;
	int ret = 0;

	if (!f)
		return ERR_PTR(-ENOMEM);
	f->entry = entry;
	f->ops.func = cowstat_ftrace_call;
	f->ops.flags = FTRACE_OPS_FL_PERMANENT;
	for (i = 0; i < n && !ret; i++)
		ret = ftrace_set_filter_ip(&f->ops, ips[i], 0, i == 0);
	if (ret) {
		ftrace_free_filter(&f->ops);
		kfree(f);
		return ERR_PTR(ret);
	}
	return &f->ops;
}

int cowstat_ftrace_register(struct ftrace_ops *ops)
{
	return register_ftrace_function(ops);
}

/* Returns non-zero if ftrace refused; the ops may then still be live. */
int cowstat_ftrace_unregister(struct ftrace_ops *ops)
{
	int ret = unregister_ftrace_function(ops);

	WARN(ret, "cowstat: ftrace refused to detach its hooks (%d); leaking them\n", ret);
	return ret;
}

/* Only for an ops that is not registered (never was, or unregistered). */
void cowstat_ftrace_free(struct ftrace_ops *ops)
{
	ftrace_free_filter(ops);
	kfree(container_of(ops, struct cowstat_ftrace, ops));
}

/* Integer argument @n (0-based) of the hooked function, at its entry. */
notrace unsigned long cowstat_fregs_arg(struct ftrace_regs *fregs,
					unsigned int n)
{
	return ftrace_regs_get_argument(fregs, n);
}

/* ---- Timed return probes (kretprobe) ------------------------------------ */

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

/* ---- Per-CPU hit counters ----------------------------------------------- */

/*
 * One counter per hook and CPU: a hook's hit count costs no cache line
 * shared between CPUs. Rust names the hooks by index (rust/ftrace.rs).
 */
#define COWSTAT_MAX_HOOKS 16
static DEFINE_PER_CPU(u64, cowstat_hits[COWSTAT_MAX_HOOKS]);

notrace void cowstat_hit(unsigned int hook)
{
	/* Every handler runs with preemption off (cowstat_ftrace_call): the
	 * debug kernel's lockdep checks it here; elsewhere this is nothing. */
	lockdep_assert_preemption_disabled();
	if (hook < COWSTAT_MAX_HOOKS)
		this_cpu_inc(cowstat_hits[hook]);
}

u64 cowstat_hits_sum(unsigned int hook)
{
	u64 sum = 0;
	int cpu;

	if (hook >= COWSTAT_MAX_HOOKS)
		return 0;
	for_each_possible_cpu(cpu)
		sum += per_cpu(cowstat_hits[hook], cpu);
	return sum;
}

/* ---- Per-CPU write-fault attempts ---------------------------------------- */

/*
 * Entries of do_wp_page and do_huge_pmd_wp_page (rust/event.rs order), per
 * CPU and per reset bank (rust/table.rs): every write fault enters them, so
 * their count touches no shared line and looks no process up. Only the
 * global stats show attempts.
 */
#define COWSTAT_ATTEMPT_KINDS 2
static DEFINE_PER_CPU(u64, cowstat_attempts[2][COWSTAT_ATTEMPT_KINDS]);

notrace void cowstat_attempt(unsigned int bank, unsigned int kind)
{
	if (bank < 2 && kind < COWSTAT_ATTEMPT_KINDS)
		this_cpu_inc(cowstat_attempts[bank][kind]);
}

u64 cowstat_attempts_sum(unsigned int bank, unsigned int kind)
{
	u64 sum = 0;
	int cpu;

	if (bank >= 2 || kind >= COWSTAT_ATTEMPT_KINDS)
		return 0;
	for_each_possible_cpu(cpu)
		sum += per_cpu(cowstat_attempts[bank][kind], cpu);
	return sum;
}

/* Only for a bank no hook counts into (after the reset's grace period). */
void cowstat_attempts_zero(unsigned int bank)
{
	int cpu, kind;

	if (bank >= 2)
		return;
	for_each_possible_cpu(cpu)
		for (kind = 0; kind < COWSTAT_ATTEMPT_KINDS; kind++)
			per_cpu(cowstat_attempts[bank][kind], cpu) = 0;
}

/* ---- Process identity and pid namespaces -------------------------------- */

/*
 * The pid numbers of the current process, one per pid namespace level from
 * the initial namespace (level 0) down to its own: @ns[i] is that level's
 * namespace (an identity to compare, never dereferenced by Rust), @nr[i] the
 * tgid there. Fills at most @max levels; returns the process's level.
 * Takes a reference on the process's own namespace, which keeps @ns[0..]
 * from being freed and reused while cowstat holds the row: drop it with
 * cowstat_put_pid_ns().
 */
notrace int cowstat_current_pids(unsigned long *ns, int *nr, int max,
				 unsigned long *ref)
{
	struct pid *pid = task_tgid(current);
	int level = pid->level, i;

	for (i = 0; i <= level && i < max; i++) {
		ns[i] = (unsigned long)pid->numbers[i].ns;
		nr[i] = pid->numbers[i].nr;
	}
	*ref = (unsigned long)get_pid_ns(pid->numbers[level].ns);
	return level;
}

void cowstat_put_pid_ns(unsigned long ns)
{
	put_pid_ns((struct pid_namespace *)ns);
}

/* The current process's tgid in its own pid namespace. */
int cowstat_current_vtgid(void)
{
	return task_tgid_vnr(current);
}

/* The reader's pid namespace and its level. */
unsigned long cowstat_reader_ns(int *level)
{
	struct pid_namespace *ns = task_active_pid_ns(current);

	*level = ns->level;
	return (unsigned long)ns;
}

/* The global tgid of process @nr in the reader's namespace, or 0. */
int cowstat_global_tgid(int nr)
{
	struct task_struct *t;
	int tgid = 0;

	rcu_read_lock();
	t = pid_task(find_vpid(nr), PIDTYPE_PID);
	if (t)
		tgid = t->tgid;
	rcu_read_unlock();
	return tgid;
}

/*
 * @task is being reaped: if it is its thread group's leader, the whole
 * process is gone (the leader is released last), and its tgid is returned;
 * otherwise 0. A leader replaced by an exec'ing thread (de_thread) is not
 * its group's leader any more, so it does not end the process.
 */
notrace int cowstat_released_process(const void *task)
{
	const struct task_struct *p = task;

	return p->group_leader == p ? p->tgid : 0;
}

/*
 * Moving an exited process's counts from its row into the retired totals is
 * a write section of this seqlock, so a reader that sums rows and retired
 * totals never sees the counts twice or not at all.
 */
static DEFINE_SEQLOCK(cowstat_retire_lock);

notrace void cowstat_retire_begin(void)
{
	write_seqlock(&cowstat_retire_lock);
}

notrace void cowstat_retire_end(void)
{
	write_sequnlock(&cowstat_retire_lock);
}

unsigned int cowstat_retire_read_begin(void)
{
	return read_seqbegin(&cowstat_retire_lock);
}

bool cowstat_retire_read_retry(unsigned int seq)
{
	return read_seqretry(&cowstat_retire_lock, seq);
}

/* Waits until every CPU has left the hooks it was in (they run with
 * preemption off). */
void cowstat_synchronize(void)
{
	synchronize_rcu();
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

/*
 * A write fault on a private mapping: set_pte_range's own test for "this
 * is a copy-on-write page" (mm/memory.c, 6.12 and 7.x).
 */
notrace bool cowstat_vmf_is_private_write(const void *vmf)
{
	const struct vm_fault *f = vmf;

	return (f->flags & FAULT_FLAG_WRITE) && !(f->vma->vm_flags & VM_SHARED);
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

/* The running task, as an identity to compare (never dereferenced). */
notrace unsigned long cowstat_current_task(void)
{
	return (unsigned long)current;
}

/* `uname -r`, for load errors. */
const char *cowstat_kernel_release(void)
{
	return init_utsname()->release;
}

/* ---- procfs ------------------------------------------------------------- */

/*
 * The file callbacks are in Rust (glue.h). @id says which file; @arg is the
 * open file's own argument (the pid a query file was given), set by write.
 */
#define COWSTAT_MAX_WRITE 64

/* Per open file: which file, and its argument. */
struct cowstat_open {
	unsigned long id;
	long arg;
};

static int cowstat_show(struct seq_file *m, void *v)
{
	struct cowstat_open *o = m->private;

	return cowstat_rs_show(m, o->id, READ_ONCE(o->arg));
}

static int cowstat_open(struct inode *inode, struct file *file)
{
	struct cowstat_open *o = kzalloc(sizeof(*o), GFP_KERNEL);
	size_t hint;
	int ret;

	if (!o)
		return -ENOMEM;
	o->id = (unsigned long)pde_data(inode);
	o->arg = -1;
	hint = cowstat_rs_size_hint(o->id);
	ret = hint ? single_open_size(file, cowstat_show, o, hint) :
		     single_open(file, cowstat_show, o);
	if (ret)
		kfree(o);
	return ret;
}

static int cowstat_release(struct inode *inode, struct file *file)
{
	struct cowstat_open *o = ((struct seq_file *)file->private_data)->private;

	kfree(o);
	return single_release(inode, file);
}

/*
 * Whether the writer may reset is decided here, at write time, from the
 * writer's own credentials in the initial user namespace: file mode alone
 * would let a descriptor opened by root be written by anyone it is passed to.
 */
static ssize_t cowstat_write(struct file *file, const char __user *buf,
			     size_t count, loff_t *ppos)
{
	struct cowstat_open *o = ((struct seq_file *)file->private_data)->private;
	u8 data[COWSTAT_MAX_WRITE];
	long arg = READ_ONCE(o->arg);
	int ret;

	if (*ppos != 0 || count == 0 || count > sizeof(data))
		return -EINVAL;
	if (copy_from_user(data, buf, count))
		return -EFAULT;
	ret = cowstat_rs_write(o->id, data, count, capable(CAP_SYS_ADMIN), &arg);
	if (ret < 0)
		return ret;
	WRITE_ONCE(o->arg, arg);
	return count;
}

static const struct proc_ops cowstat_ro_ops = {
	.proc_open = cowstat_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = cowstat_release,
};

static const struct proc_ops cowstat_rw_ops = {
	.proc_open = cowstat_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = cowstat_release,
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
