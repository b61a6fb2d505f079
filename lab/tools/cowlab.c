// SPDX-License-Identifier: GPL-2.0
/*
 * cowlab: three small copy-on-write experiments that cow-demo has no mode
 * for, used by the course lab (docs/lab/README.md). Each prints the cowstat
 * counters of its own process over a measurement window that contains only
 * the page writes under test.
 *
 *   cowlab fresh N [--read-first]       zero page: write N fresh pages
 *   cowlab spawn fork|vfork|posix_spawn N   start /bin/true, then write
 *   cowlab madvise none|dontfork|wipeonfork N   fork with a child alive
 *
 * Build: gcc -static -O2 -o cowlab cowlab.c  (lab/cowlab-path does this)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_PAGES (64 * 1024)

extern char **environ;

/* One process's row of /proc/cowstat/procs, plus its minor faults. */
struct counts {
	long wp_faults, cow_copies, cow_zero, wp_reuses, thp_wp_faults;
	long minor_faults;
};

/* Read buffer for /proc files, big enough for a full procs table (4096
 * rows of 79 bytes). Page aligned and a whole number of pages, so that
 * prefault() writes every page it lives on and no other data shares them;
 * then reading into it in the window faults nothing. */
static char buf[1024 * 1024] __attribute__((aligned(PAGE)));

/* The initial stack pointer (argv sits there): every frame of this
 * process lies below it. Set by main(). */
static char *stack_top;

static void die(const char *what)
{
	fprintf(stderr, "cowlab: error: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void usage(void)
{
	fputs("usage: cowlab fresh N [--read-first]\n"
	      "       cowlab spawn fork|vfork|posix_spawn N\n"
	      "       cowlab madvise none|dontfork|wipeonfork N\n"
	      "N: pages of 4 KiB (1-65536). Needs /proc/cowstat (cowstat.ko).\n"
	      "examples:\n"
	      "  cowlab fresh 23 --read-first\n"
	      "  cowlab spawn vfork 23\n"
	      "  cowlab madvise wipeonfork 23\n", stderr);
	exit(2);
}

/* Read a /proc file into buf with plain system calls: no stdio, no
 * malloc, so the window touches no heap or libc state of its own. */
static size_t read_file(const char *path)
{
	int fd = open(path, O_RDONLY);
	size_t n = 0;
	ssize_t r = 0;

	if (fd < 0) {
		if (errno == ENOENT)
			fprintf(stderr, "cowlab: error: %s missing: cowstat module not loaded (insmod $COWSTAT_KO)\n", path);
		else
			fprintf(stderr, "cowlab: error: cannot open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += r;
	if (r < 0)
		die(path);
	if (n == sizeof(buf) - 1) {
		fprintf(stderr, "cowlab: error: %s is larger than %zu bytes\n", path, n);
		exit(2);
	}
	close(fd);
	buf[n] = 0;
	return n;
}

/* Parse the next number at *s (strtol: no stdio, writes no memory). */
static long num(char **s)
{
	return strtol(*s, s, 10);
}

/* Our own row of /proc/cowstat/procs. No row means no events yet (all
 * zero), unless the table overflowed into its "<other>" row (pid "-"):
 * then our events may be counted there, and we stop rather than print 0. */
static struct counts row(void)
{
	struct counts c = { 0 };
	struct rusage ru;
	char *line, *s = NULL;
	int pid = getpid(), other = 0;

	/* Lines: PID COMM wp_faults cow_copies cow_zero wp_reuses thp_wp_faults */
	read_file("/proc/cowstat/procs");
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		s = line;
		if (num(&s) == pid && *s == ' ')
			break;
		other |= s[strspn(s, " ")] == '-';
	}
	if (line && *line && (s = strchr(s + 1, ' '))) { /* skip COMM */
		c.wp_faults = num(&s);
		c.cow_copies = num(&s);
		c.cow_zero = num(&s);
		c.wp_reuses = num(&s);
		c.thp_wp_faults = num(&s);
	} else if (other) {
		fprintf(stderr, "cowlab: error: procs table full, no row for pid %d\n"
			"  reset it: echo 0 > /proc/cowstat/stats\n", pid);
		exit(2);
	}
	getrusage(RUSAGE_SELF, &ru);
	c.minor_faults = ru.ru_minflt;
	return c;
}

static long global_forks(void)
{
	char *p;

	read_file("/proc/cowstat/stats");
	p = strstr(buf, "\nforks ");
	return p ? atol(p + 7) : -1;
}

static void print_window(struct counts a, struct counts b)
{
	printf("this process, during the write loop:\n");
	printf("  wp_faults %ld  cow_copies %ld  cow_zero %ld  wp_reuses %ld\n",
	       b.wp_faults - a.wp_faults, b.cow_copies - a.cow_copies,
	       b.cow_zero - a.cow_zero, b.wp_reuses - a.wp_reuses);
	printf("  minor_faults %ld (getrusage)\n", b.minor_faults - a.minor_faults);
}

/* Make every page the window writes, other than the heap under test,
 * present, writable and private (after a fork they are COW-shared), so the
 * window's counters see only the heap writes. Called by the function that
 * opens the window, right before it, so the window's calls run where
 * `below` is now. Every stack page from the bottom of `below` (64 KiB
 * deeper than any call of the window) up to stack_top, all live frames
 * included, is rewritten with its own value; then every page of buf.
 * Not inlined, so `below` lies below the caller's frame. */
static __attribute__((noinline)) void prefault(void)
{
	volatile char below[64 * 1024];
	volatile char *p;
	size_t i;

	for (p = below; p < (volatile char *)stack_top; p += PAGE)
		*p = *p;
	p = (volatile char *)stack_top - 1;
	*p = *p;
	for (i = 0; i < sizeof(buf); i += PAGE)
		buf[i] = 0;
	row();
	global_forks();
}

static char *heap(long pages)
{
	char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	if (madvise(p, pages * PAGE, MADV_NOHUGEPAGE))
		die("madvise(MADV_NOHUGEPAGE)");
	return p;
}

static void write_pages(char *p, long pages, char value)
{
	long i;

	for (i = 0; i < pages; i++)
		((volatile char *)p)[i * PAGE] = value;
}

static void fresh(long pages, int read_first)
{
	char *p = heap(pages);
	volatile char sink = 0;
	struct counts a, b;
	long i;

	printf("cowlab fresh: %ld new pages, read first: %s, pid %d\n", pages,
	       read_first ? "yes" : "no", getpid());
	if (read_first)
		for (i = 0; i < pages; i++)
			sink += ((volatile char *)p)[i * PAGE];
	prefault();
	a = row();
	write_pages(p, pages, 1);
	b = row();
	print_window(a, b);
}

static void spawn(const char *how, long pages)
{
	char *argv[] = { "true", NULL };
	char *p = heap(pages);
	struct counts a, b;
	long forks0, forks1;
	pid_t pid;
	int st;

	write_pages(p, pages, 1);
	printf("cowlab spawn: %s /bin/true with %ld pages written, pid %d\n", how, pages, getpid());
	forks0 = global_forks();
	if (!strcmp(how, "fork")) {
		pid = fork();
		if (pid == 0) {
			execve("/bin/true", argv, environ);
			_exit(127);
		}
	} else if (!strcmp(how, "vfork")) {
		pid = vfork();
		if (pid == 0) {
			execve("/bin/true", argv, environ);
			_exit(127);
		}
	} else if (!strcmp(how, "posix_spawn")) {
		errno = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
		if (errno)
			die("posix_spawn /bin/true");
	} else {
		usage();
	}
	if (pid < 0)
		die(how);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		die("child /bin/true failed");
	forks1 = global_forks();
	printf("address-space copies (stats forks): %+ld\n", forks1 - forks0);
	prefault();
	a = row();
	write_pages(p, pages, 2);
	b = row();
	print_window(a, b);
}

static void on_segv(int sig)
{
	(void)sig;
	_exit(42);
}

static void advise(const char *how, long pages)
{
	static const char *seen[] = { "the parent's data", "zeros" };
	char *p = heap(pages);
	struct counts a, b;
	int ready[2], go[2], st;
	int advice = -1, alive = 1;
	pid_t pid;
	char c;

	if (!strcmp(how, "dontfork"))
		advice = MADV_DONTFORK;
	else if (!strcmp(how, "wipeonfork"))
		advice = MADV_WIPEONFORK;
	else if (strcmp(how, "none"))
		usage();
	write_pages(p, pages, 0x5a);
	if (advice >= 0 && madvise(p, pages * PAGE, advice))
		die("madvise");
	printf("cowlab madvise: %s on %ld written pages, pid %d\n", how, pages, getpid());
	if (pipe(ready) || pipe(go))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int saw;

		signal(SIGSEGV, on_segv);
		saw = ((volatile char *)p)[0] == 0x5a ? 0 : 1;
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(3);
		_exit(saw);
	}
	close(ready[1]);
	close(go[0]);
	if (read(ready[0], &c, 1) != 1) {
		alive = 0;
		if (waitpid(pid, &st, 0) != pid)
			die("waitpid");
		if (WIFEXITED(st) && WEXITSTATUS(st) == 42)
			printf("child saw: no mapping at the heap address (SIGSEGV)\n");
		else
			die("child ended early");
	}
	/* The child is alive (or gone, for dontfork) while the parent writes. */
	prefault();
	a = row();
	write_pages(p, pages, 0x33);
	b = row();
	if (write(go[1], "g", 1) != 1 && errno != EPIPE)
		die("pipe write");
	if (alive && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) < 2)
		printf("child saw: %s\n", seen[WEXITSTATUS(st)]);
	print_window(a, b);
}

int main(int argc, char **argv)
{
	cpu_set_t cpus;
	long pages;
	char *end;

	stack_top = (char *)argv;
	if (argc < 3)
		usage();
	/* Stay on one CPU: pages batched on another CPU's LRU list look shared
	 * and turn an expected reuse into a copy (see docs/cow-demo.md). */
	CPU_ZERO(&cpus);
	CPU_SET(sched_getcpu(), &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "fresh")) {
		pages = strtol(argv[2], &end, 10);
		if (*end || pages < 1 || pages > MAX_PAGES)
			usage();
		if (argc > 4 || (argc == 4 && strcmp(argv[3], "--read-first")))
			usage();
		fresh(pages, argc == 4);
		return 0;
	}
	if (argc != 4)
		usage();
	pages = strtol(argv[3], &end, 10);
	if (*end || pages < 1 || pages > MAX_PAGES)
		usage();
	if (!strcmp(argv[1], "spawn"))
		spawn(argv[2], pages);
	else if (!strcmp(argv[1], "madvise"))
		advise(argv[2], pages);
	else
		usage();
	return 0;
}
