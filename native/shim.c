/*
 * tend-shim: exec trampoline run between tend's fork and the user's command.
 *
 *   tend-shim [-s SIGNO -p PPID] [-c CGROUP_PROCS_PATH] -- FILE ARGV0 [ARGS...]
 *
 * It arms the containment in the very process that becomes the command, then
 * execve()s FILE with the same pid, so there is no instant at which the
 * command (or anything it forks) runs outside the containment. Joining a
 * cgroup or setting a parent-death signal after spawn, from outside, leaves a
 * window in which a fast child can fork and escape.
 *
 * Exit codes (only when the command never started):
 *   125  bad usage, parent already gone, cannot join the cgroup
 *   126  execve failed for another reason than ENOENT
 *   127  execve failed with ENOENT
 *
 * It runs on every start, so the default build uses no libc at all: a static
 * glibc binary costs several times more per exec (dynamic loader work, TLS and
 * IRELATIVE setup) than the handful of syscalls below. Build with
 * -DTEND_SHIM_LIBC for the portable variant on any other architecture.
 */

#if !defined(TEND_SHIM_LIBC) && !defined(__x86_64__) && !defined(__aarch64__)
#define TEND_SHIM_LIBC 1
#endif

#ifdef TEND_SHIM_LIBC

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#define sys_write(fd, buf, len) write((fd), (buf), (len))
#define sys_getppid() ((long)getppid())
#define sys_exit(code) _exit(code)

static long sys_prctl_pdeathsig(long sig) {
	return prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0UL, 0UL, 0UL) == 0 ? 0 : -errno;
}

static long sys_open_wronly(const char *path) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

static long sys_close(long fd) { return close((int)fd) == 0 ? 0 : -errno; }

static long sys_write_checked(long fd, const char *buf, long len) {
	ssize_t n = write((int)fd, buf, (size_t)len);
	return n >= 0 ? (long)n : -errno;
}

static long sys_execve(const char *file, char *const *argv, char *const *envp) {
	execve(file, argv, envp);
	return -errno;
}

#define SHIM_ENOENT ENOENT
#define SHIM_EINTR EINTR

#else /* libc-free */

#define SHIM_ENOENT 2
#define SHIM_EINTR 4
#define SHIM_AT_FDCWD (-100)
#define SHIM_O_WRONLY 01
#define SHIM_O_CLOEXEC 02000000
#define SHIM_PR_SET_PDEATHSIG 1

#if defined(__x86_64__)

#define NR_write 1
#define NR_close 3
#define NR_execve 59
#define NR_getppid 110
#define NR_prctl 157
#define NR_exit_group 231
#define NR_openat 257

static long raw_syscall(long n, long a, long b, long c, long d) {
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
	                 : "rcx", "r11", "memory");
	return ret;
}

/* The kernel enters with argc at (%rsp); the ABI wants a 16-byte aligned
 * stack at the call, and a zero frame pointer marks the outermost frame. */
__asm__(".text\n"
        ".global _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call shim_main\n"
        "  hlt\n");

#elif defined(__aarch64__)

#define NR_openat 56
#define NR_close 57
#define NR_write 64
#define NR_exit_group 94
#define NR_prctl 167
#define NR_getppid 173
#define NR_execve 221

static long raw_syscall(long n, long a, long b, long c, long d) {
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	__asm__ volatile("svc #0"
	                 : "+r"(x0)
	                 : "r"(x8), "r"(x1), "r"(x2), "r"(x3)
	                 : "memory", "cc");
	return x0;
}

__asm__(".text\n"
        ".global _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, sp\n"
        "  and sp, x0, #-16\n"
        "  bl shim_main\n"
        "  brk #0\n");

#endif

static long sys_write(long fd, const char *buf, long len) {
	return raw_syscall(NR_write, fd, (long)buf, len, 0);
}
#define sys_write_checked sys_write
static long sys_getppid(void) { return raw_syscall(NR_getppid, 0, 0, 0, 0); }
static long sys_prctl_pdeathsig(long sig) {
	return raw_syscall(NR_prctl, SHIM_PR_SET_PDEATHSIG, sig, 0, 0);
}
static long sys_open_wronly(const char *path) {
	return raw_syscall(NR_openat, SHIM_AT_FDCWD, (long)path, SHIM_O_WRONLY | SHIM_O_CLOEXEC, 0);
}
static long sys_close(long fd) { return raw_syscall(NR_close, fd, 0, 0, 0); }
static long sys_execve(const char *file, char *const *argv, char *const *envp) {
	return raw_syscall(NR_execve, (long)file, (long)argv, (long)envp, 0);
}
__attribute__((noreturn)) static void sys_exit(int code) {
	for (;;) raw_syscall(NR_exit_group, code, 0, 0, 0);
}

#endif

/* ---- tiny string helpers (no libc, no allocation) ---- */

static int str_eq(const char *a, const char *b) {
	while (*a && *a == *b) { a++; b++; }
	return *a == *b;
}

/* Strict decimal: digits only, no sign, no blanks, 1..max. */
static int parse_dec(const char *s, long max, long *out) {
	long v = 0;
	if (!s || !*s) return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9') return -1;
		if (v > (max - (*s - '0')) / 10) return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < 1) return -1;
	*out = v;
	return 0;
}

struct msg {
	char buf[1024];
	unsigned len;
};

static void msg_str(struct msg *m, const char *s) {
	while (s && *s && m->len < sizeof m->buf - 1) m->buf[m->len++] = *s++;
}

static void msg_dec(struct msg *m, long v) {
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
	if (v < 0) msg_str(m, "-");
	do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u && n < (int)sizeof tmp);
	while (n > 0 && m->len < sizeof m->buf - 1) m->buf[m->len++] = tmp[--n];
}

/* One write per message, so lines from concurrent children don't interleave. */
static void msg_emit(struct msg *m) {
	m->buf[m->len++] = '\n';
	(void)sys_write(2, m->buf, (long)m->len);
}

__attribute__((noreturn)) static void fail(const char *a, const char *b, const char *c, long err,
                                           int code) {
	struct msg m;
	m.len = 0;
	msg_str(&m, "tend-shim: ");
	msg_str(&m, a);
	msg_str(&m, b);
	msg_str(&m, c);
	if (err) {
		msg_str(&m, " (errno ");
		msg_dec(&m, err);
		msg_str(&m, ")");
	}
	msg_emit(&m);
	sys_exit(code);
}

__attribute__((noreturn)) static void usage(const char *why, const char *arg) {
	struct msg m;
	m.len = 0;
	msg_str(&m, "tend-shim: ");
	msg_str(&m, why);
	if (arg) {
		msg_str(&m, ": ");
		msg_str(&m, arg);
	}
	msg_str(&m, "\nusage: tend-shim [-s SIGNO -p PPID] [-c CGROUP_PROCS_PATH] -- FILE ARGV0 [ARGS...]");
	msg_emit(&m);
	sys_exit(125);
}

/* Highest signal number the kernel accepts (SIGRTMAX on Linux). */
#define SHIM_SIGMAX 64
#define SHIM_PIDMAX 2147483647L

static int run(int argc, char **argv, char **envp) {
	long sig = 0, ppid = 0;
	const char *cgroup = 0;
	int i = 1;

	for (; i < argc; i++) {
		const char *a = argv[i];
		if (str_eq(a, "--")) break;
		if (str_eq(a, "-s") || str_eq(a, "-p") || str_eq(a, "-c")) {
			const char *v = i + 1 < argc ? argv[i + 1] : 0;
			if (!v) usage("option needs a value", a);
			i++;
			if (a[1] == 's') {
				if (sig) usage("option given twice", a);
				if (parse_dec(v, SHIM_SIGMAX, &sig)) usage("bad signal number", v);
			} else if (a[1] == 'p') {
				if (ppid) usage("option given twice", a);
				if (parse_dec(v, SHIM_PIDMAX, &ppid)) usage("bad parent pid", v);
			} else {
				if (cgroup) usage("option given twice", a);
				if (!*v) usage("empty cgroup path", 0);
				cgroup = v;
			}
			continue;
		}
		usage("unexpected argument", a);
	}
	if (i >= argc) usage("missing --", 0);
	if (sig && !ppid) usage("-s needs -p", 0);
	if (ppid && !sig) usage("-p needs -s", 0);
	if (argc - (i + 1) < 2) usage("missing FILE or ARGV0 after --", 0);

	const char *file = argv[i + 1];
	if (file[0] != '/') usage("FILE must be an absolute path", file);

	if (sig) {
		long r = sys_prctl_pdeathsig(sig);
		if (r < 0) fail("cannot set parent-death signal", "", "", -r, 125);
		/* The parent may have died between fork and the prctl: then no
		 * signal will ever come, and we were reparented. Checking after
		 * arming closes that window. */
		if (sys_getppid() != ppid) fail("parent PID exited before start", "", "", 0, 125);
	}

	if (cgroup) {
		long fd = sys_open_wronly(cgroup);
		long r = fd;
		if (fd >= 0) {
			/* "0" means the writer itself; joining before execve is what
			 * makes every later fork of the command a member. */
			do r = sys_write_checked(fd, "0", 1); while (r == -SHIM_EINTR);
			if (r >= 0 && r != 1) r = -5; /* short write: report as EIO */
			(void)sys_close(fd);
		}
		if (r < 0) fail("cannot join cgroup ", cgroup, "", -r, 125);
	}

	/* envp is passed through as received: tend promises the command gets
	 * exactly the environment the caller gave, nothing added or removed. */
	long r = sys_execve(file, argv + i + 2, envp);
	fail("cannot execute ", file, "", -r, -r == SHIM_ENOENT ? 127 : 126);
}

#ifdef TEND_SHIM_LIBC

int main(int argc, char **argv, char **envp) { return run(argc, argv, envp); }

#else

__attribute__((noreturn, used)) void shim_main(long *sp) {
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	sys_exit(run(argc, argv, envp));
}

#endif
