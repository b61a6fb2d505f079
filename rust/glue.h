/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C glue's interface (rust/glue.c). rust/glue.rs declares the same
 * functions for Rust; keep the two in step (scripts/glue-abi checks).
 */
#ifndef COWSTAT_GLUE_H
#define COWSTAT_GLUE_H

#include <linux/ftrace.h>
#include <linux/seq_file.h>
#include <linux/types.h>

struct cowstat_kretprobe;
struct proc_dir_entry;

typedef void (*cowstat_ret_fn)(u64 elapsed_ns, long retval);
typedef void (*cowstat_entry_fn)(unsigned long ip, unsigned long parent_ip,
				 struct ftrace_regs *fregs);

int cowstat_symbols_resolve(const char *const *names, unsigned long *starts, unsigned long *sizes, unsigned int n);
struct ftrace_ops *cowstat_ftrace_new(cowstat_entry_fn entry, const unsigned long *ips, unsigned int n);
int cowstat_ftrace_register(struct ftrace_ops *ops);
int cowstat_ftrace_unregister(struct ftrace_ops *ops);
void cowstat_ftrace_free(struct ftrace_ops *ops);
unsigned long cowstat_fregs_arg(struct ftrace_regs *fregs, unsigned int n);
struct cowstat_kretprobe *cowstat_kretprobe_new(const char *symbol, cowstat_ret_fn ret, int maxactive);
void cowstat_kretprobe_free(struct cowstat_kretprobe *k);
void cowstat_hit(unsigned int hook);
u64 cowstat_hits_sum(unsigned int hook);
void cowstat_attempt(unsigned int bank, unsigned int kind);
u64 cowstat_attempts_sum(unsigned int bank, unsigned int kind);
void cowstat_attempts_zero(unsigned int bank);
unsigned long cowstat_current_task(void);
int cowstat_current_pids(unsigned long *ns, int *nr, int max, unsigned long *ref);
void cowstat_put_pid_ns(unsigned long ns);
int cowstat_current_vtgid(void);
unsigned long cowstat_reader_ns(int *level);
int cowstat_global_tgid(int nr);
int cowstat_released_process(const void *task);
void cowstat_retire_begin(void);
void cowstat_retire_end(void);
unsigned int cowstat_retire_read_begin(void);
bool cowstat_retire_read_retry(unsigned int seq);
void cowstat_synchronize(void);
int cowstat_pte_source(const void *ptep);
bool cowstat_vma_is_shared(const void *vma);
bool cowstat_vmf_is_unshare(const void *vmf);
bool cowstat_vmf_is_private_write(const void *vmf);
bool cowstat_task_has_new_mm(const void *task);
unsigned long cowstat_current(int *tgid, u64 comm[2]);
struct proc_dir_entry *cowstat_proc_mkdir(const char *name);
int cowstat_proc_create(struct proc_dir_entry *dir, const char *name, umode_t mode, unsigned long id, bool writable);
void cowstat_proc_remove(struct proc_dir_entry *dir);
void cowstat_seq_write(struct seq_file *m, const u8 *data, size_t len);

const char *cowstat_kernel_release(void);

/* Implemented in Rust (rust/procfs.rs). */
size_t cowstat_rs_size_hint(unsigned long id);
int cowstat_rs_show(struct seq_file *m, unsigned long id, long arg);
int cowstat_rs_write(unsigned long id, const u8 *data, size_t len, bool admin,
		     long *arg);

#endif /* COWSTAT_GLUE_H */
