/*
 * tend-reaper: kills every registered process tree once the manager is gone.
 *
 *   tend-reaper [--log FILE] [--manager PID:STARTTIME]
 *   tend-reaper --version        prints "tend-reaper 1" (the protocol version)
 *
 * The manager starts it detached, in its own session, with a pipe on stdin.
 * The manager keeps the write end; nobody else does. End of input therefore
 * means the manager is gone (SIGKILL, OOM, crash) or let go on purpose, and
 * the reaper then kills what the manager can no longer stop.
 *
 * Protocol: text lines on stdin, at most 4096 bytes before the newline, fields
 * separated by single spaces.
 *   R <handle> <strategy> <cgroup-dir|->   register a tree, before it is spawned
 *   P <handle> <pid> <starttime> <pgid>    its leader, once spawned (starttime:
 *                                          field 22 of /proc/<pid>/stat)
 *   U <handle>                             forget it (stopped normally)
 *   Q                                      the manager shuts down: clean up now
 * handle is [0-9A-Za-z_-]{1,64}; strategy is cgroup, pidns or pgroup; a cgroup
 * dir is an absolute path. A second R or P for a handle replaces the first.
 * A line that does not parse is ignored and logged as "protocol-error"; so is
 * an incomplete last line (the manager died while writing it, so it cannot
 * have spawned what that line announced).
 *
 * On end of input, a read error, Q, or (with --manager) the manager's exit,
 * each registered tree is killed, every step proven to hit only the tree:
 *   1. its cgroup: cgroup.kill (else freeze, kill each member, thaw), wait
 *      for "populated 0", remove it. Membership is the proof.
 *   2. its leader, when pid and start time both still match (P).
 *   3. every live process whose environment holds exactly TEND_ID=<handle>
 *      and that did not start before the leader (descendants inherit the
 *      marker, even across setsid; none predates its ancestor).
 *   4. its process group, only while a live member proven by 2 or 3 is in it,
 *      so a group number reused by strangers is never signalled.
 * Steps 2-4 repeat until a pass finds no new process (at most 20 passes), to
 * catch children forked while the scan ran. The reaper then waits (2 s at
 * most, in all) until what it killed by pid is dead, logs "reaper-exit" and
 * exits 0: once it has exited, the trees are gone.
 *
 * --log FILE appends one JSON object per line, each a single write():
 *   {"time","event","handle","pid","reason","source":"reaper","manager"}
 * event: kill, cgroup-kill, cgroup-removed, protocol-error, error (something
 * could not be done: refused cgroup dir, EPERM, a cgroup that stayed
 * populated) and reaper-exit (last; handle null). Without --log nothing is
 * logged: stdout and stderr may be pipes nobody reads, and a blocked write
 * must never keep the reaper from killing.
 *
 * --manager PID:STARTTIME names the manager in the log and is watched (pidfd,
 * else a check each second): if its write end of the pipe leaked into another
 * process, end of input would never come, but the manager's exit still does.
 * A manager that is not alive with that start time when the reaper starts
 * counts as gone: the lines already in the pipe are read, then it cleans up.
 *
 * Exit status: 0 after cleaning up, 125 for bad usage or a log that cannot be
 * opened. SIGTERM keeps its default action: whoever stops the reaper on
 * purpose gets that, and the manager starts a new one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define PROTOCOL_VERSION 1
#define MAX_LINE 4096
#define MAX_HANDLE 64
#define MARKER "TEND_ID="
#define MARKER_LEN 8
#define MAX_PASSES 20
/* How long cgroups get to empty before the marker passes run anyway, and in all. */
#define CGROUP_FIRST_WAIT_NS 50000000LL
#define CGROUP_WAIT_NS 2000000000LL
/* Without a pidfd, how often the manager's identity is checked. */
#define MANAGER_POLL_MS 1000

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

static const char USAGE[] = "usage: tend-reaper [--log FILE] [--manager PID:STARTTIME] | --version";

/* ----------------------------------------------------------- messages ---- */

/* One write per message, so lines from concurrent processes don't interleave. */
static void say(const char *fmt, ...) {
	char buf[1536];
	int n = snprintf(buf, sizeof buf, "tend-reaper: ");
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

__attribute__((noreturn)) static void usage(const char *why, const char *arg) {
	if (arg)
		say("%s: %s\n%s", why, arg, USAGE);
	else
		say("%s\n%s", why, USAGE);
	_exit(125);
}

/* Strict decimal: digits only, no sign, no blanks, at most max. */
static int parse_u64(const char *s, unsigned long long max, unsigned long long *out) {
	unsigned long long v = 0;
	if (!s || !*s) return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9') return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10) return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* pid_max is at most 2^22 on Linux; anything above is no pid. */
#define PID_LIMIT 4194304ULL

static int parse_pid(const char *s, pid_t *out) {
	unsigned long long v;
	if (parse_u64(s, PID_LIMIT, &v) || v < 1) return -1;
	*out = (pid_t)v;
	return 0;
}

/* --------------------------------------------------------------- log ---- */

static int log_fd = -1;
static const char *manager_id; /* "PID:STARTTIME" as given, already validated */

struct buf {
	char *p;
	size_t len, cap;
};

static void put_bytes(struct buf *b, const char *s, size_t n) {
	if (n > b->cap - b->len) n = b->cap - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void put(struct buf *b, const char *s) { put_bytes(b, s, strlen(s)); }

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80) return 1;
	if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
	else return 0;
	if (len > n) return 0;
	unsigned cp = c & (0x3f >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
	return len;
}

/* A JSON string: quotes, escapes, and U+FFFD for bytes that are not UTF-8
 * (a cgroup path or a garbage line may hold anything). */
static void put_json(struct buf *b, const char *s, size_t n) {
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	put(b, "\"");
	for (size_t i = 0; i < n;) {
		unsigned c = u[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put_bytes(b, e, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			put_bytes(b, e, 6);
			i++;
		} else {
			size_t len = utf8_len(u + i, n - i);
			if (len == 0) {
				put(b, "\\ufffd");
				i++;
			} else {
				put_bytes(b, s + i, len);
				i += len;
			}
		}
	}
	put(b, "\"");
}

/*
 * One event, one line, one write(): with O_APPEND, lines from several
 * processes sharing the log never interleave. pid < 0 is logged as null.
 */
static void log_event(const char *event, const char *handle, long pid, const char *fmt, ...) {
	if (log_fd < 0) return;
	/* Room for a 2 KiB reason escaped six bytes per byte, plus the rest. */
	static char line[16384];
	char reason[2048];
	va_list ap;
	va_start(ap, fmt);
	int rn = vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	if (rn < 0) rn = 0;
	if ((size_t)rn >= sizeof reason) rn = (int)sizeof reason - 1;

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char head[96];
	snprintf(head, sizeof head, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"event\":", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);

	struct buf b = {line, 0, sizeof line - 1};
	put(&b, head);
	put_json(&b, event, strlen(event));
	put(&b, ",\"handle\":");
	if (handle)
		put_json(&b, handle, strlen(handle));
	else
		put(&b, "null");
	char num[32];
	if (pid >= 0) snprintf(num, sizeof num, ",\"pid\":%ld", pid);
	put(&b, pid >= 0 ? num : ",\"pid\":null");
	put(&b, ",\"reason\":");
	put_json(&b, reason, (size_t)rn);
	put(&b, ",\"source\":\"reaper\",\"manager\":");
	if (manager_id)
		put_json(&b, manager_id, strlen(manager_id));
	else
		put(&b, "null");
	put(&b, "}");
	line[b.len++] = '\n'; /* cap leaves room for it */
	ssize_t w;
	do w = write(log_fd, line, b.len); while (w < 0 && errno == EINTR);
}

/* ------------------------------------------------------------- trees ---- */

struct tree {
	char handle[MAX_HANDLE + 1];
	uint32_t hash;
	unsigned char has_leader;
	unsigned char group_logged;
	unsigned char cg_state;
	pid_t pid, pgid;
	unsigned long long start;
	char *cgroup; /* NULL for "-" */
};

enum { CG_NONE, CG_KILLED, CG_KILLING_EACH, CG_DONE };

static struct tree *trees;
static size_t ntrees, cap_trees;

static uint32_t hash_of(const char *s, size_t n) {
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* A few thousand trees at most: a linear scan comparing hashes first costs
 * microseconds and needs no index to keep in step with removals. */
static struct tree *find_tree(const char *h, size_t n) {
	uint32_t hash = hash_of(h, n);
	for (size_t i = 0; i < ntrees; i++)
		if (trees[i].hash == hash && strlen(trees[i].handle) == n && memcmp(trees[i].handle, h, n) == 0)
			return &trees[i];
	return NULL;
}

static int valid_handle(const char *s) {
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-'))
			return 0;
	}
	return n >= 1 && n <= MAX_HANDLE;
}

/* Absolute, no empty, "." or ".." component, no control bytes, and short
 * enough to append "/cgroup.events" and a sub-cgroup name. */
static int valid_cgroup_dir(const char *s) {
	size_t n = strlen(s);
	if (n < 2 || s[0] != '/' || n > 3000) return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
	for (const char *c = s; *c;) {
		c++; /* past '/' */
		const char *e = strchr(c, '/');
		size_t len = e ? (size_t)(e - c) : strlen(c);
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) return 0;
		c += len;
	}
	return 1;
}

/* ---------------------------------------------------------- protocol ---- */

/* Prefix of every cleanup reason; exit_cause adds how the manager went. */
static const char *cause = "manager gone";
static const char *exit_cause = "manager gone";

static void protocol_error(const char *handle, const char *why, const char *line, size_t len) {
	if (len > 200) len = 200;
	if (len == 0)
		log_event("protocol-error", handle, -1, "%s", why);
	else
		log_event("protocol-error", handle, -1, "%s: %.*s", why, (int)len, line);
}

/* Returns 1 for Q, 0 otherwise. line is NUL-terminated, without the newline. */
static int handle_line(char *line, size_t len) {
	char copy[MAX_LINE + 1];
	memcpy(copy, line, len + 1);
	if (memchr(line, '\0', len)) {
		protocol_error(NULL, "NUL byte in line", copy, len);
		return 0;
	}
	char *f[6];
	int n = 0;
	for (char *p = line;;) {
		if (n == 6) {
			n = 7;
			break;
		}
		f[n++] = p;
		char *sp = strchr(p, ' ');
		if (!sp) break;
		*sp = '\0';
		p = sp + 1;
	}
	for (int i = 0; i < n && i < 6; i++) {
		if (f[i][0] == '\0') {
			protocol_error(NULL, len == 0 ? "empty line" : "empty field", copy, len);
			return 0;
		}
	}
	const char *handle = n >= 2 && valid_handle(f[1]) ? f[1] : NULL;
	const char *cmd = f[0];
	if (strcmp(cmd, "Q") == 0) {
		if (n != 1) {
			protocol_error(NULL, "Q takes no fields", copy, len);
			return 0;
		}
		cause = exit_cause = "manager shutdown";
		return 1;
	}
	int want = strcmp(cmd, "R") == 0 ? 4 : strcmp(cmd, "P") == 0 ? 5 : strcmp(cmd, "U") == 0 ? 2 : 0;
	if (want == 0) {
		protocol_error(handle, "unknown command", copy, len);
		return 0;
	}
	if (n != want) {
		protocol_error(handle, cmd[0] == 'R' ? "R needs 3 fields" : cmd[0] == 'P' ? "P needs 4 fields" : "U needs 1 field", copy,
		               len);
		return 0;
	}
	if (!handle) {
		protocol_error(NULL, "bad handle", copy, len);
		return 0;
	}
	size_t hlen = strlen(handle);
	struct tree *t = find_tree(handle, hlen);

	if (cmd[0] == 'R') {
		if (strcmp(f[2], "cgroup") != 0 && strcmp(f[2], "pidns") != 0 && strcmp(f[2], "pgroup") != 0) {
			protocol_error(handle, "bad strategy", copy, len);
			return 0;
		}
		char *dir = NULL;
		if (strcmp(f[3], "-") != 0) {
			if (!valid_cgroup_dir(f[3])) {
				protocol_error(handle, "bad cgroup dir", copy, len);
				return 0;
			}
			dir = strdup(f[3]);
			if (!dir) {
				protocol_error(handle, "out of memory", copy, len);
				return 0;
			}
		}
		if (!t) {
			if (ntrees == cap_trees) {
				size_t cap = cap_trees ? cap_trees * 2 : 64;
				struct tree *grown = realloc(trees, cap * sizeof *trees);
				if (!grown) {
					free(dir);
					protocol_error(handle, "out of memory", copy, len);
					return 0;
				}
				trees = grown;
				cap_trees = cap;
			}
			t = &trees[ntrees++];
			memset(t, 0, sizeof *t);
			memcpy(t->handle, handle, hlen + 1);
			t->hash = hash_of(handle, hlen);
		}
		free(t->cgroup);
		t->cgroup = dir;
		t->has_leader = 0;
		t->pid = t->pgid = 0;
		t->start = 0;
		return 0;
	}
	if (!t) {
		protocol_error(handle, "unknown handle", copy, len);
		return 0;
	}
	if (cmd[0] == 'U') {
		free(t->cgroup);
		*t = trees[--ntrees]; /* order does not matter */
		return 0;
	}
	pid_t pid;
	unsigned long long start, pgid;
	if (parse_pid(f[2], &pid)) {
		protocol_error(handle, "bad pid", copy, len);
		return 0;
	}
	if (parse_u64(f[3], ~0ULL, &start)) {
		protocol_error(handle, "bad start time", copy, len);
		return 0;
	}
	/* 0: the leader has no group of its own to kill. */
	if (parse_u64(f[4], PID_LIMIT, &pgid)) {
		protocol_error(handle, "bad pgid", copy, len);
		return 0;
	}
	t->has_leader = 1;
	t->pid = pid;
	t->start = start;
	t->pgid = (pid_t)pgid;
	return 0;
}

static char line_buf[MAX_LINE + 1];
static size_t line_len;
static int line_too_long;

/* Splits input into lines, whatever chunks it arrives in. Returns 1 once Q was read. */
static int feed(const char *data, size_t n) {
	for (size_t i = 0; i < n; i++) {
		char c = data[i];
		if (c != '\n') {
			if (line_len < MAX_LINE)
				line_buf[line_len++] = c;
			else
				line_too_long = 1;
			continue;
		}
		int quit = 0;
		if (line_too_long)
			protocol_error(NULL, "line longer than 4096 bytes", line_buf, line_len);
		else {
			line_buf[line_len] = '\0';
			quit = handle_line(line_buf, line_len);
		}
		line_len = 0;
		line_too_long = 0;
		if (quit) return 1;
	}
	return 0;
}

/* ------------------------------------------------------------- /proc ---- */

struct pstat {
	char state;
	pid_t pgid;
	unsigned long long start;
};

static int proc_fd = -1;

static ssize_t read_at(int dirfd, const char *path, char *buf, size_t size) {
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	size_t len = 0;
	while (len < size) {
		ssize_t r = read(fd, buf + len, size - len);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) break;
		len += (size_t)r;
	}
	int saved = errno;
	close(fd);
	errno = saved;
	return (ssize_t)len;
}

/* Fields after the LAST ')': comm may hold spaces and parentheses. */
static int read_stat(pid_t pid, struct pstat *st) {
	char path[32], buf[1024];
	snprintf(path, sizeof path, "%d/stat", (int)pid);
	ssize_t n = read_at(proc_fd, path, buf, sizeof buf - 1);
	if (n <= 0) return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ') return -1;
	p += 2;
	st->state = *p;
	/* p is at field 3 (state); pgid is field 5, starttime field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p) return -1;
		p++;
		if (field + 1 == 5) st->pgid = (pid_t)strtol(p, NULL, 10);
	}
	st->start = strtoull(p, NULL, 10);
	return 0;
}

static int alive(const struct pstat *st) { return st->state != 'Z' && st->state != 'X' && st->state != 'x'; }

/* The registered tree whose marker, TEND_ID=<handle> as a whole entry, is in
 * this process's environment; NULL if none. The environ is streamed: it may
 * be large, and only entries no longer than the marker plus a handle matter. */
static struct tree *marked_tree(pid_t pid) {
	char path[32];
	snprintf(path, sizeof path, "%d/environ", (int)pid);
	int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return NULL;
	static char chunk[16384];
	char entry[MARKER_LEN + MAX_HANDLE + 1];
	size_t elen = 0; /* bytes of the current entry seen; only the first sizeof entry kept */
	struct tree *found = NULL;
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) break;
		for (ssize_t i = 0; i < r && !found; i++) {
			if (chunk[i] != '\0') {
				if (elen < sizeof entry) entry[elen] = chunk[i];
				elen++;
				continue;
			}
			if (elen > MARKER_LEN && elen <= sizeof entry && memcmp(entry, MARKER, MARKER_LEN) == 0)
				found = find_tree(entry + MARKER_LEN, elen - MARKER_LEN);
			elen = 0;
		}
		if (found) break;
	}
	/* A last entry without its NUL (the process rewrote its environ). */
	if (!found && elen > MARKER_LEN && elen <= sizeof entry && memcmp(entry, MARKER, MARKER_LEN) == 0)
		found = find_tree(entry + MARKER_LEN, elen - MARKER_LEN);
	close(fd);
	return found;
}

/* ------------------------------------------------------------ killing ---- */

/* Processes already SIGKILLed, by pid and start time: a dying process can
 * still look alive to the next pass, and must not count as new there. */
struct killed {
	pid_t pid;
	struct tree *tree; /* for the log; trees no longer change once cleanup began */
	unsigned long long start;
};
static struct killed *kset;
static size_t kset_cap, kset_len;

static size_t kslot(pid_t pid, size_t cap) { return ((uint32_t)pid * 2654435761u) & (cap - 1); }

static int killed_before(pid_t pid, unsigned long long start) {
	if (!kset_cap) return 0;
	for (size_t i = kslot(pid, kset_cap);; i = (i + 1) & (kset_cap - 1)) {
		if (kset[i].pid == 0) return 0;
		if (kset[i].pid == pid && kset[i].start == start) return 1;
	}
}

static void remember_killed(struct tree *t, pid_t pid, unsigned long long start) {
	if ((kset_len + 1) * 2 > kset_cap) {
		size_t cap = kset_cap ? kset_cap * 2 : 256;
		struct killed *grown = calloc(cap, sizeof *grown);
		if (!grown) return; /* then a dying process may be counted twice: more passes, no harm */
		for (size_t i = 0; i < kset_cap; i++) {
			if (kset[i].pid == 0) continue;
			size_t j = kslot(kset[i].pid, cap);
			while (grown[j].pid) j = (j + 1) & (cap - 1);
			grown[j] = kset[i];
		}
		free(kset);
		kset = grown;
		kset_cap = cap;
	}
	size_t j = kslot(pid, kset_cap);
	while (kset[j].pid) j = (j + 1) & (kset_cap - 1);
	kset[j].pid = pid;
	kset[j].tree = t;
	kset[j].start = start;
	kset_len++;
}

static pid_t self;
static unsigned long stats_killed, stats_groups, stats_cg_killed, stats_cg_removed, stats_errors;

/* SIGKILLs one process whose identity the caller has just verified.
 * Returns 1 if it had not been killed before. */
static int kill_member(struct tree *t, pid_t pid, unsigned long long start, const char *why) {
	if (pid <= 1 || pid == self) return 0;
	if (killed_before(pid, start)) return 0;
	remember_killed(t, pid, start);
	if (kill(pid, SIGKILL) == 0) {
		stats_killed++;
		log_event("kill", t->handle, pid, "%s: %s", cause, why);
		return 1;
	}
	if (errno != ESRCH) {
		stats_errors++;
		log_event("error", t->handle, pid, "%s: cannot kill (%s, errno %d)", cause, why, errno);
	}
	return 0;
}

/* Called only while a live process proven to be the tree's is in the group:
 * the group cannot have died and its number been reused in between. */
static void kill_group(struct tree *t) {
	/* kill(-1) would be every process; 0 our own group. */
	if (t->pgid <= 1 || t->pgid == getpgrp()) return;
	if (kill(-t->pgid, SIGKILL) == 0) {
		if (!t->group_logged) {
			t->group_logged = 1;
			stats_groups++;
			log_event("kill", t->handle, t->pgid, "%s: process group", cause);
		}
	} else if (errno != ESRCH && !t->group_logged) {
		t->group_logged = 1;
		stats_errors++;
		log_event("error", t->handle, t->pgid, "%s: cannot kill process group (errno %d)", cause, errno);
	}
}

/* One pass of steps 2-4 over every tree at once (one /proc scan, not one per
 * tree). Returns how many processes it killed that no earlier pass had. */
static int scan_pass(void) {
	int fresh = 0;
	for (size_t i = 0; i < ntrees; i++) {
		struct tree *t = &trees[i];
		struct pstat st;
		if (!t->has_leader || read_stat(t->pid, &st) != 0 || !alive(&st) || st.start != t->start) continue;
		if (st.pgid == t->pgid) kill_group(t);
		fresh += kill_member(t, t->pid, st.start, "leader");
	}
	DIR *d = opendir("/proc");
	if (!d) return fresh;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
		pid_t pid;
		if (parse_pid(e->d_name, &pid) || pid == self || pid == 1) continue;
		struct tree *t = marked_tree(pid);
		if (!t) continue;
		struct pstat st;
		if (read_stat(pid, &st) != 0 || !alive(&st)) continue;
		/* A descendant cannot predate the leader: an older process with the
		 * marker is not the tree's, whatever its environment says. */
		if (t->has_leader && st.start < t->start) continue;
		if (t->has_leader && st.pgid == t->pgid) kill_group(t);
		fresh += kill_member(t, pid, st.start, "marker");
	}
	closedir(d);
	return fresh;
}

/* ------------------------------------------------------------ cgroups ---- */

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
	return 0;
}

struct pids {
	pid_t *v;
	size_t len, cap;
};

static void pids_add(struct pids *p, pid_t pid) {
	if (p->len == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		pid_t *grown = realloc(p->v, cap * sizeof *grown);
		if (!grown) return;
		p->v = grown;
		p->cap = cap;
	}
	p->v[p->len++] = pid;
}

/* Members of the cgroup at path and of every sub-cgroup. path has room for
 * PATH_MAX bytes; it is restored on return. */
static void cg_members(char *path, struct pids *out, int depth) {
	size_t len = strlen(path);
	if (len + 16 >= PATH_MAX || depth > 64) return;
	memcpy(path + len, "/cgroup.procs", 14);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	path[len] = '\0';
	if (fd >= 0) {
		char buf[4096];
		long v = -1;
		for (;;) {
			ssize_t r = read(fd, buf, sizeof buf);
			if (r < 0 && errno == EINTR) continue;
			if (r <= 0) break;
			for (ssize_t i = 0; i < r; i++) {
				if (buf[i] >= '0' && buf[i] <= '9') {
					v = (v < 0 ? 0 : v * 10) + (buf[i] - '0');
					if (v > (long)PID_LIMIT) v = (long)PID_LIMIT + 1;
				} else {
					if (v > 0 && v <= (long)PID_LIMIT) pids_add(out, (pid_t)v);
					v = -1;
				}
			}
		}
		if (v > 0 && v <= (long)PID_LIMIT) pids_add(out, (pid_t)v);
		close(fd);
	}
	DIR *d = opendir(path);
	if (!d) return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
		size_t nlen = strlen(e->d_name);
		if (len + 1 + nlen + 16 >= PATH_MAX) continue;
		path[len] = '/';
		memcpy(path + len + 1, e->d_name, nlen + 1);
		cg_members(path, out, depth + 1);
		path[len] = '\0';
	}
	closedir(d);
}

/* Removes the sub-cgroups depth-first, then the cgroup itself.
 * Returns 0 when path is gone; counts removed sub-cgroups in *subs. */
static int cg_remove(char *path, int depth, unsigned *subs) {
	size_t len = strlen(path);
	DIR *d = depth <= 64 ? opendir(path) : NULL;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
			size_t nlen = strlen(e->d_name);
			if (len + 1 + nlen + 16 >= PATH_MAX) continue;
			path[len] = '/';
			memcpy(path + len + 1, e->d_name, nlen + 1);
			if (cg_remove(path, depth + 1, subs) == 0) (*subs)++;
			path[len] = '\0';
		}
		closedir(d);
	}
	if (rmdir(path) == 0 || errno == ENOENT) return 0;
	return -1;
}

/* 1 populated, 0 empty or gone, -1 unreadable. */
static int cg_populated(const char *dir) {
	char path[PATH_MAX], buf[256];
	snprintf(path, sizeof path, "%s/cgroup.events", dir);
	ssize_t n = read_at(AT_FDCWD, path, buf, sizeof buf - 1);
	if (n < 0) return errno == ENOENT ? 0 : -1;
	buf[n] = '\0';
	for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, "populated ", 10) == 0) return p[10] == '1';
	return -1;
}

static int kill_each(char *path) {
	struct pids m = {0};
	cg_members(path, &m, 0);
	int n = 0;
	for (size_t i = 0; i < m.len; i++) {
		if (m.v[i] <= 1 || m.v[i] == self) continue;
		if (kill(m.v[i], SIGKILL) == 0) n++;
	}
	free(m.v);
	return n;
}

/* Step 1's kill for one tree; sets t->cg_state. */
static void cg_kill(struct tree *t) {
	t->cg_state = CG_NONE;
	if (!t->cgroup) return;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s", t->cgroup);

	/* Only a cgroup v2 directory below a hierarchy's root: cgroup.procs of
	 * the root (and of its sub-cgroups) lists every process on the host. */
	struct statfs sfs;
	if (statfs(path, &sfs) != 0) {
		if (errno != ENOENT) {
			stats_errors++;
			log_event("error", t->handle, -1, "%s: cannot inspect cgroup %s (errno %d)", cause, path, errno);
		}
		return; /* ENOENT: never created, or already removed */
	}
	struct stat here, up;
	char parent[PATH_MAX + 8];
	snprintf(parent, sizeof parent, "%s/..", path);
	if ((unsigned long)sfs.f_type != CGROUP2_SUPER_MAGIC || stat(path, &here) != 0 || stat(parent, &up) != 0 ||
	    here.st_dev != up.st_dev || here.st_ino == up.st_ino) {
		stats_errors++;
		log_event("error", t->handle, -1, "%s: refusing %s: not a cgroup v2 directory below the root", cause, path);
		return;
	}
	/* A wrong registration must not make the reaper kill itself halfway. */
	struct pids m = {0};
	cg_members(path, &m, 0);
	for (size_t i = 0; i < m.len; i++) {
		if (m.v[i] != self) continue;
		free(m.v);
		stats_errors++;
		log_event("error", t->handle, -1, "%s: refusing %s: the reaper itself is in it", cause, path);
		return;
	}
	free(m.v);

	char file[PATH_MAX + 32];
	snprintf(file, sizeof file, "%s/cgroup.kill", path);
	if (write_file(file, "1") == 0) {
		t->cg_state = CG_KILLED;
		stats_cg_killed++;
		log_event("cgroup-kill", t->handle, -1, "%s: cgroup.kill %s", cause, path);
		return;
	}
	if (errno != ENOENT) {
		stats_errors++;
		log_event("error", t->handle, -1, "%s: cannot write %s (errno %d)", cause, file, errno);
	}
	/* Before Linux 5.14: frozen members cannot fork while they are killed
	 * one by one; SIGKILL still ends a frozen process. Without a freezer
	 * (before 5.2) the wait below keeps killing until the cgroup is empty. */
	snprintf(file, sizeof file, "%s/cgroup.freeze", path);
	int frozen = write_file(file, "1") == 0;
	int n = kill_each(path);
	if (frozen) write_file(file, "0");
	t->cg_state = CG_KILLING_EACH;
	stats_cg_killed++;
	log_event("cgroup-kill", t->handle, -1, "%s: %s and killed %d members of %s", cause, frozen ? "froze" : "could not freeze",
	          n, path);
}

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Waits until every killed cgroup is empty or the deadline passes, then
 * removes the empty ones. With final set, reports those that stayed. */
static void cg_settle(long long deadline, int final) {
	long long backoff = 1000000LL; /* 1 ms, doubling to 20 ms */
	for (;;) {
		int pending = 0;
		for (size_t i = 0; i < ntrees; i++) {
			struct tree *t = &trees[i];
			if (t->cg_state != CG_KILLED && t->cg_state != CG_KILLING_EACH) continue;
			if (cg_populated(t->cgroup) != 0) {
				pending++;
				if (t->cg_state == CG_KILLING_EACH) {
					char path[PATH_MAX];
					snprintf(path, sizeof path, "%s", t->cgroup);
					kill_each(path);
				}
				continue;
			}
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s", t->cgroup);
			unsigned subs = 0;
			t->cg_state = CG_DONE;
			if (cg_remove(path, 0, &subs) == 0) {
				stats_cg_removed++;
				if (subs)
					log_event("cgroup-removed", t->handle, -1, "%s: removed %s and %u sub-cgroups", cause, t->cgroup, subs);
				else
					log_event("cgroup-removed", t->handle, -1, "%s: removed %s", cause, t->cgroup);
			} else {
				stats_errors++;
				log_event("error", t->handle, -1, "%s: cannot remove %s (errno %d)", cause, t->cgroup, errno);
			}
		}
		long long left = deadline - now_ns();
		if (pending == 0 || left <= 0) break;
		struct timespec ts = {0, backoff < left ? backoff : left};
		nanosleep(&ts, NULL);
		backoff = backoff * 2 > 20000000LL ? 20000000LL : backoff * 2;
	}
	if (!final) return;
	for (size_t i = 0; i < ntrees; i++) {
		struct tree *t = &trees[i];
		if (t->cg_state != CG_KILLED && t->cg_state != CG_KILLING_EACH) continue;
		t->cg_state = CG_DONE;
		stats_errors++;
		log_event("error", t->handle, -1, "%s: %s still populated after %lld ms", cause, t->cgroup,
		          CGROUP_WAIT_NS / 1000000LL);
	}
}

/* SIGKILL is delivered asynchronously: wait until every process killed by
 * pid is dead (a zombie counts: it has no code left to run), so that once the
 * reaper has exited, what it killed is gone. Reports those that stay. */
static void wait_killed(long long deadline) {
	long long backoff = 1000000LL;
	for (;;) {
		size_t alive_now = 0;
		for (size_t i = 0; i < kset_cap; i++) {
			struct pstat st;
			if (kset[i].pid == 0) continue;
			if (read_stat(kset[i].pid, &st) != 0 || !alive(&st) || st.start != kset[i].start) {
				kset[i].start = ~0ULL; /* gone: never matches a real start time again */
				continue;
			}
			alive_now++;
		}
		long long left = deadline - now_ns();
		if (alive_now == 0 || left <= 0) break;
		struct timespec ts = {0, backoff < left ? backoff : left};
		nanosleep(&ts, NULL);
		backoff = backoff * 2 > 20000000LL ? 20000000LL : backoff * 2;
	}
	for (size_t i = 0; i < kset_cap; i++) {
		if (kset[i].pid == 0 || kset[i].start == ~0ULL) continue;
		stats_errors++;
		log_event("error", kset[i].tree->handle, kset[i].pid, "%s: still alive after SIGKILL (gave up after %lld ms)", cause,
		          CGROUP_WAIT_NS / 1000000LL);
	}
}

static void cleanup(void) {
	long long t0 = now_ns();
	int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	proc_fd = fd;
	for (size_t i = 0; i < ntrees; i++) cg_kill(&trees[i]);
	/* A cgroup normally empties within a millisecond or two; one that does
	 * not (a member stuck in the kernel) must not hold up the other trees. */
	cg_settle(t0 + CGROUP_FIRST_WAIT_NS, 0);
	if (fd >= 0) {
		for (int pass = 0; pass < MAX_PASSES; pass++)
			if (scan_pass() == 0) break;
	} else {
		stats_errors++;
		log_event("error", NULL, -1, "%s: cannot open /proc (errno %d): only cgroups were killed", cause, errno);
	}
	if (fd >= 0) wait_killed(t0 + CGROUP_WAIT_NS);
	cg_settle(t0 + CGROUP_WAIT_NS, 1);
	log_event("reaper-exit", NULL, -1,
	          "%s: cleaned %zu trees (%lu processes and %lu process groups killed, %lu cgroups killed, %lu removed, "
	          "%lu errors)",
	          exit_cause, ntrees, stats_killed, stats_groups, stats_cg_killed, stats_cg_removed, stats_errors);
}

/* ------------------------------------------------------------ manager ---- */

static pid_t manager_pid;
static unsigned long long manager_start;

/* 1: the manager is alive and is who it was; 0: it is gone; -1: unknown. */
static int manager_alive(void) {
	char path[48], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)manager_pid);
	ssize_t n = read_at(AT_FDCWD, path, buf, sizeof buf - 1);
	if (n < 0) return errno == ENOENT || errno == ESRCH ? 0 : -1;
	if (n == 0) return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ') return -1;
	p += 2;
	if (*p == 'Z' || *p == 'X' || *p == 'x') return 0;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p) return -1;
		p++;
	}
	return strtoull(p, NULL, 10) == manager_start ? 1 : 0;
}

/* ---------------------------------------------------------------- main ---- */

static void close_inherited_fds(void) {
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
	/* Before Linux 5.9: whatever /proc lists, else a bounded sweep. */
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		int own = dirfd(d);
		int fds[1024], n = 0;
		struct dirent *e;
		while ((e = readdir(d)) != NULL && n < 1024) {
			int fd = atoi(e->d_name);
			if (fd > 2 && fd != own) fds[n++] = fd;
		}
		closedir(d);
		for (int i = 0; i < n; i++) close(fds[i]);
		if (n < 1024) return;
	}
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536) max = 65536;
	for (int fd = 3; fd < max; fd++) close(fd);
}

int main(int argc, char **argv) {
	const char *log_path = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--version") == 0) {
			if (argc != 2) usage("--version takes no other arguments", NULL);
			printf("tend-reaper %d\n", PROTOCOL_VERSION);
			return fflush(stdout) == 0 ? 0 : 125;
		}
		if (strcmp(a, "--log") == 0 || strcmp(a, "--manager") == 0) {
			const char *v = i + 1 < argc ? argv[i + 1] : NULL;
			if (!v) usage("option needs a value", a);
			i++;
			if (a[2] == 'l') {
				if (log_path) usage("option given twice", a);
				if (!*v) usage("empty log path", NULL);
				log_path = v;
				continue;
			}
			if (manager_id) usage("option given twice", a);
			const char *colon = strchr(v, ':');
			char pidpart[24];
			if (!colon || (size_t)(colon - v) >= sizeof pidpart) usage("bad --manager (want PID:STARTTIME)", v);
			memcpy(pidpart, v, (size_t)(colon - v));
			pidpart[colon - v] = '\0';
			if (parse_pid(pidpart, &manager_pid) || parse_u64(colon + 1, ~0ULL, &manager_start))
				usage("bad --manager (want PID:STARTTIME)", v);
			manager_id = v;
			continue;
		}
		usage("unexpected argument", a);
	}

	/* With 0-2 closed, the log would land on one of them and a usage
	 * message would go into it; and a missing stdin reads as end of input. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) < 0) _exit(125);
	/* An inherited fd could be another process's pipe end: held here, it
	 * would keep that pipe from ever reaching end-of-file. */
	close_inherited_fds();

	if (log_path) {
		log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (log_fd < 0) {
			int err = errno;
			say("cannot open log %s (errno %d): %s", log_path, err, strerror(err));
			_exit(125);
		}
	}

	/* The manager's terminal and process group must not reach us: a Ctrl-C
	 * that kills the manager is exactly when the reaper has work to do. */
	if (getsid(0) != getpid()) setsid(); /* fails only for a group leader; then the ignores still hold */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN); /* a log on a closed pipe or a vanished FUSE mount: EPIPE, not death */
	signal(SIGTERM, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Never keep a directory busy (an unmount, a removed checkout). */
	if (chdir("/") != 0) {
		/* harmless: every path used from here on is absolute */
	}
	self = getpid();

	int pidfd = -1, watch_by_polling = 0, manager_gone = 0;
	if (manager_id) {
		pidfd = (int)syscall(SYS_pidfd_open, manager_pid, 0);
		int err = pidfd < 0 ? errno : 0;
		/* Checked after pidfd_open: the pidfd then refers to the very process
		 * whose start time matched, not to a later one with the same pid. */
		int state = manager_alive();
		if (state == 0 || (pidfd < 0 && err == ESRCH)) {
			manager_gone = 1;
		} else if (pidfd < 0) {
			watch_by_polling = state == 1; /* no pidfd before Linux 5.3 */
		}
	}

	const char *how = "end of input";
	static char chunk[65536];
	int quit = 0;
	while (!quit && !manager_gone) {
		struct pollfd pfd[2] = {{0, POLLIN, 0}, {pidfd, POLLIN, 0}};
		int r = poll(pfd, pidfd >= 0 ? 2 : 1, watch_by_polling ? MANAGER_POLL_MS : -1);
		if (r < 0) {
			if (errno == EINTR) continue;
			pfd[0].revents = POLLIN; /* let read() decide */
		}
		if (pfd[0].revents) {
			ssize_t n = read(0, chunk, sizeof chunk);
			if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
			if (n < 0) {
				static char why[48];
				snprintf(why, sizeof why, "read error, errno %d", errno);
				how = why;
				break;
			}
			if (n == 0) break;
			quit = feed(chunk, (size_t)n);
			continue;
		}
		if ((pidfd >= 0 && pfd[1].revents) || (watch_by_polling && manager_alive() == 0)) manager_gone = 1;
	}
	if (manager_gone && !quit) {
		/* What the manager wrote before it died is still in the pipe: a tree
		 * registered there may be running. Read it without waiting for an
		 * end of input that a leaked write end would never deliver. */
		how = "manager process gone";
		for (;;) {
			struct pollfd in = {0, POLLIN, 0};
			if (poll(&in, 1, 0) <= 0 || !in.revents) break;
			ssize_t n = read(0, chunk, sizeof chunk);
			if (n < 0 && errno == EINTR) continue;
			if (n <= 0) break;
			if (feed(chunk, (size_t)n)) break;
		}
	}
	if (!quit && (line_len > 0 || line_too_long)) protocol_error(NULL, "incomplete line at end of input", line_buf, line_len);

	static char full[96];
	if (!quit) {
		snprintf(full, sizeof full, "manager gone (%s)", how);
		exit_cause = full;
	}
	cleanup();
	return 0;
}
