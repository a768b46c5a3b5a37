/*
 * tend-nsinit: run a command in a new PID namespace under a real init.
 *
 *   tend-nsinit [-s SIGNO -p PPID] [-c CGROUP_PROCS_PATH] [-u] -- FILE ARGV0 [ARGS...]
 *
 * Three processes:
 *   OUTER  the pid tend spawned. Arms the parent-death signal and cgroup like
 *          tend-shim, creates the namespace, forwards tend's signals to C1 and
 *          finally ends with the leader's own status.
 *   C1     pid 1 of the namespace. Forwards signals to every member, reaps
 *          orphans, reports the leader's end on fd 3, and stays until the
 *          namespace is empty. When C1 dies the kernel kills the namespace.
 *   C2     the leader: execs FILE (pid 2 inside the namespace).
 *
 * The command cannot be pid 1 itself (as with `unshare --pid --fork`): the
 * kernel drops signals to a namespace's init that it has no handler for, so
 * a plain program there would ignore tend's SIGTERM and never stop gracefully.
 *
 * Exit status of OUTER: the leader's exit code, or death by the leader's
 * signal (re-raised; 128+N if that did not kill). 125 for a setup failure,
 * 126/127 when FILE could not be executed (127: ENOENT).
 *
 * OUTER exits only once the namespace is empty. fd 3, when open at start,
 * receives one line as soon as the leader has ended, while other members may
 * still run: "exit N\n" or "signal N\n". OUTER and C1 keep fd 3; the command
 * never sees it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define NOTIFY_FD 3

static const int forwarded[] = {SIGTERM, SIGINT,  SIGHUP,   SIGQUIT,
                                SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

static sigset_t waited; /* forwarded + SIGCHLD: blocked in OUTER and C1 */
static int have_notify_fd;

/* One write per message, so lines from concurrent processes don't interleave. */
static void say(const char *fmt, ...) {
	char buf[1536];
	int n = snprintf(buf, sizeof buf, "tend-nsinit: ");
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof buf) n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0) return;
	if ((size_t)n >= sizeof buf - 1) n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	ssize_t w;
	do w = write(2, buf, (size_t)n); while (w < 0 && errno == EINTR);
}

__attribute__((noreturn)) static void setup_failed(const char *step, int err, const char *hint) {
	if (hint)
		say("%s (errno %d): %s; %s", step, err, strerror(err), hint);
	else
		say("%s (errno %d): %s", step, err, strerror(err));
	_exit(125);
}

__attribute__((noreturn)) static void usage(const char *why, const char *arg) {
	if (arg)
		say("%s: %s\nusage: tend-nsinit [-s SIGNO -p PPID] [-c CGROUP_PROCS_PATH] [-u] -- FILE ARGV0 [ARGS...]", why, arg);
	else
		say("%s\nusage: tend-nsinit [-s SIGNO -p PPID] [-c CGROUP_PROCS_PATH] [-u] -- FILE ARGV0 [ARGS...]", why);
	_exit(125);
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

static int write_file(const char *path, const char *text) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	size_t len = strlen(text);
	ssize_t w;
	do w = write(fd, text, len); while (w < 0 && errno == EINTR);
	int saved = errno;
	close(fd);
	if (w < 0) {
		errno = saved;
		return -1;
	}
	if ((size_t)w != len) {
		errno = EIO;
		return -1;
	}
	return 0;
}

static void write_all(int fd, const char *buf, size_t len) {
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) return;
		buf += w;
		len -= (size_t)w;
	}
}

static int format_status(char *buf, size_t size, int status) {
	if (WIFSIGNALED(status)) return snprintf(buf, size, "signal %d\n", WTERMSIG(status));
	return snprintf(buf, size, "exit %d\n", WEXITSTATUS(status));
}

/* ---------------------------------------------------------------- C2 ---- */

__attribute__((noreturn)) static void leader_main(int status_w, char *file, char **argv) {
	/* The command must start like any freshly spawned program: default
	 * dispositions and an empty mask. Dispositions are reset before the
	 * mask is cleared, so a signal forwarded while we were still here is
	 * delivered with its default action, not lost or ignored. */
	for (int s = 1; s < NSIG; s++) {
		if (s == SIGKILL || s == SIGSTOP) continue;
		signal(s, SIG_DFL); /* fails harmlessly for libc-reserved numbers */
	}
	close(status_w);
	/* fd 3 is tend's channel to C1 alone: a member holding it would keep
	 * tend's reader open after the namespace is gone, and could write a
	 * forged status line into it. */
	if (have_notify_fd) close(NOTIFY_FD);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(file, argv, environ);
	int err = errno;
	say("cannot execute %s (errno %d): %s", file, err, strerror(err));
	_exit(err == ENOENT ? 127 : 126);
}

/* ---------------------------------------------------------------- C1 ---- */

__attribute__((noreturn)) static void init_main(int status_w, char *file, char **argv) {
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		setup_failed("prctl(PR_SET_PDEATHSIG) in namespace init", errno, NULL);
	/* OUTER lives outside this namespace, so getppid() reads 0 whether it is
	 * alive or not. OUTER holds the only read end of the status pipe: if it
	 * died before the prctl above, the pipe has no reader (POLLERR) and no
	 * death signal will ever come, so stop here. */
	struct pollfd pfd = {.fd = status_w, .events = POLLOUT, .revents = 0};
	if (poll(&pfd, 1, 0) < 0 || (pfd.revents & POLLERR)) _exit(125);

	pid_t leader = fork();
	if (leader < 0) setup_failed("fork of the command in the namespace", errno, NULL);
	if (leader == 0) leader_main(status_w, file, argv);

	int leader_status = 0, leader_done = 0;
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&waited, &si);
		if (sig < 0) continue; /* EINTR after a stop/continue */
		if (sig != SIGCHLD) {
			/* -1 is every member but ourselves: a graceful stop reaches
			 * the whole tree, orphans included, not just the leader. */
			kill(-1, sig);
			continue;
		}
		for (;;) {
			int st;
			pid_t p = waitpid(-1, &st, WNOHANG);
			if (p > 0) {
				if (p == leader) {
					leader_status = st;
					leader_done = 1;
					if (have_notify_fd) {
						char line[32];
						int n = format_status(line, sizeof line, st);
						write_all(NOTIFY_FD, line, (size_t)n);
					}
				}
				continue;
			}
			if (p < 0 && errno == EINTR) continue;
			if (p < 0 && errno == ECHILD) {
				if (!leader_done) _exit(125);
				char rec[32];
				int n = format_status(rec, sizeof rec, leader_status);
				write_all(status_w, rec, (size_t)n);
				_exit(0);
			}
			break; /* 0: members still running */
		}
	}
}

/* ------------------------------------------------------------- OUTER ---- */

__attribute__((noreturn)) static void die_like(int sig) {
	/* The leader already dumped core if it was going to; a second core from
	 * this wrapper would only mislead. */
	struct rlimit none = {0, 0};
	setrlimit(RLIMIT_CORE, &none);
	if (sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU && sig > 0 && sig < NSIG) {
		signal(sig, SIG_DFL);
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, sig);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		raise(sig);
	}
	_exit(128 + sig);
}

static void arm_pdeathsig(long sig, long ppid) {
	if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0UL, 0UL, 0UL) != 0)
		setup_failed("prctl(PR_SET_PDEATHSIG)", errno, NULL);
	/* The parent may have died between its fork and the prctl: then no
	 * signal will ever come, and we were reparented. */
	if ((long)getppid() != ppid) {
		say("parent PID exited before start");
		_exit(125);
	}
}

int main(int argc, char **argv) {
	long sig = 0, ppid = 0;
	const char *cgroup = NULL;
	int userns = 0;
	int i = 1;

	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) break;
		if (strcmp(a, "-u") == 0) {
			if (userns) usage("option given twice", a);
			userns = 1;
			continue;
		}
		if (strcmp(a, "-s") == 0 || strcmp(a, "-p") == 0 || strcmp(a, "-c") == 0) {
			const char *v = i + 1 < argc ? argv[i + 1] : NULL;
			if (!v) usage("option needs a value", a);
			i++;
			if (a[1] == 's') {
				if (sig) usage("option given twice", a);
				if (parse_dec(v, NSIG - 1, &sig)) usage("bad signal number", v);
			} else if (a[1] == 'p') {
				if (ppid) usage("option given twice", a);
				if (parse_dec(v, 2147483647L, &ppid)) usage("bad parent pid", v);
			} else {
				if (cgroup) usage("option given twice", a);
				if (!*v) usage("empty cgroup path", NULL);
				cgroup = v;
			}
			continue;
		}
		usage("unexpected argument", a);
	}
	if (i >= argc) usage("missing --", NULL);
	if (sig && !ppid) usage("-s needs -p", NULL);
	if (ppid && !sig) usage("-p needs -s", NULL);
	if (argc - (i + 1) < 2) usage("missing FILE or ARGV0 after --", NULL);
	char *file = argv[i + 1];
	char **cmd_argv = argv + i + 2;
	if (file[0] != '/') usage("FILE must be an absolute path", file);

	/* Decided before any fd is created: a pipe or open below could land on
	 * fd 3 and be mistaken for tend's notification pipe. */
	have_notify_fd = fcntl(NOTIFY_FD, F_GETFD) != -1;

	/* Blocked from the start: a stop request that arrives during setup stays
	 * pending and is forwarded once the namespace exists, instead of killing
	 * OUTER by default action and leaving tend with a bare SIGTERM status. */
	sigemptyset(&waited);
	for (size_t k = 0; k < sizeof forwarded / sizeof forwarded[0]; k++) sigaddset(&waited, forwarded[k]);
	sigaddset(&waited, SIGCHLD);
	sigprocmask(SIG_BLOCK, &waited, NULL);
	/* An inherited SIG_IGN would auto-reap children and hide their status. */
	signal(SIGCHLD, SIG_DFL);
	/* A closed stderr or notification pipe must not kill OUTER or C1 (C1's
	 * death would take the whole namespace with it). */
	signal(SIGPIPE, SIG_IGN);

	if (sig) arm_pdeathsig(sig, ppid);

	if (cgroup) {
		/* Joined before the namespace and any fork: every member inherits
		 * the cgroup, there is no moment outside it. */
		if (write_file(cgroup, "0") != 0) {
			char step[1200];
			snprintf(step, sizeof step, "cannot join cgroup %s", cgroup);
			setup_failed(step, errno, NULL);
		}
	}

	if (userns) {
		/* Read before unshare: afterwards they are the overflow ids until
		 * the maps are written. */
		uid_t uid = getuid();
		gid_t gid = getgid();
		if (unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0)
			setup_failed("unshare(CLONE_NEWUSER|CLONE_NEWPID)", errno,
			             "unprivileged user namespaces are unavailable here; use strategy pgroup");
		char map[64];
		if (write_file("/proc/self/setgroups", "deny") != 0 && errno != ENOENT)
			setup_failed("write /proc/self/setgroups", errno, NULL);
		snprintf(map, sizeof map, "%lu %lu 1\n", (unsigned long)uid, (unsigned long)uid);
		if (write_file("/proc/self/uid_map", map) != 0) setup_failed("write /proc/self/uid_map", errno, NULL);
		snprintf(map, sizeof map, "%lu %lu 1\n", (unsigned long)gid, (unsigned long)gid);
		if (write_file("/proc/self/gid_map", map) != 0) setup_failed("write /proc/self/gid_map", errno, NULL);
		/* A credential change can clear the parent-death signal; arm it
		 * again so the new user namespace cannot silently disarm it. */
		if (sig) arm_pdeathsig(sig, ppid);
	} else if (unshare(CLONE_NEWPID) != 0) {
		int err = errno;
		setup_failed("unshare(CLONE_NEWPID)", err,
		             err == EPERM ? "PID namespaces need root or unprivileged user namespaces (-u); "
		                            "use strategy pgroup"
		                          : NULL);
	}

	int st[2];
	if (pipe2(st, O_CLOEXEC) != 0) setup_failed("pipe2", errno, NULL);

	pid_t init = fork();
	if (init < 0) setup_failed("fork of the namespace init", errno, NULL);
	if (init == 0) {
		close(st[0]);
		init_main(st[1], file, cmd_argv);
	}
	close(st[1]);

	int init_status = 0;
	for (;;) {
		siginfo_t si;
		int s = sigwaitinfo(&waited, &si);
		if (s < 0) continue; /* EINTR after a stop/continue */
		if (s != SIGCHLD) {
			/* Only while C1 is unreaped, so its pid cannot have been reused. */
			kill(init, s);
			continue;
		}
		pid_t p;
		do p = waitpid(init, &init_status, WNOHANG); while (p < 0 && errno == EINTR);
		if (p == init) break;
		if (p < 0) setup_failed("waitpid of the namespace init", errno, NULL);
	}

	/* C1 and every member are gone, so the write end is closed: read to EOF. */
	char rec[64];
	size_t len = 0;
	for (;;) {
		ssize_t r = read(st[0], rec + len, sizeof rec - 1 - len);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) break;
		len += (size_t)r;
		if (len >= sizeof rec - 1) break;
	}
	rec[len] = '\0';

	long n = 0;
	char *nl = strchr(rec, '\n');
	if (nl) *nl = '\0';
	if (nl && strncmp(rec, "exit ", 5) == 0 && (strcmp(rec + 5, "0") == 0 || parse_dec(rec + 5, 255, &n) == 0))
		exit((int)n);
	if (nl && strncmp(rec, "signal ", 7) == 0 && parse_dec(rec + 7, NSIG - 1, &n) == 0) die_like((int)n);

	/* No record: C1 itself died (e.g. SIGKILL, which took the namespace
	 * with it) or failed during its setup. Report that instead. */
	if (WIFSIGNALED(init_status)) die_like(WTERMSIG(init_status));
	if (WEXITSTATUS(init_status) != 0) exit(WEXITSTATUS(init_status));
	say("namespace init ended without reporting the command's status");
	exit(125);
}
