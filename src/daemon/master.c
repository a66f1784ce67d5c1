/*
 * master.c - the supervisor: creates every shared resource before forking, forks
 * the writer and the HTTP workers, respawns them when they die, and turns signals
 * into an orderly drain (SIGTERM/SIGINT) or a reload (SIGHUP).
 *
 * The master owns the listening sockets, the shared-memory region and the eventfds;
 * children inherit them. It never touches RocksDB or serves a request.
 */
#include "temporis/daemon/master.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "temporis/base/clock.h"
#include "temporis/base/fdcount.h"
#include "temporis/base/log.h"
#include "temporis/base/privileges.h"
#include "temporis/base/proctitle.h"
#include "temporis/daemon/admin.h"
#include "temporis/daemon/fds.h"
#include "temporis/daemon/worker.h"
#include "temporis/daemon/writer.h"

#define LISTEN_BACKLOG 4096
#define WRITER_START_TIMEOUT_MS 60000
#define WORKER_STOP_TIMEOUT_MS 30000
#define WRITER_STOP_TIMEOUT_MS 60000
#define STABLE_CHILD_MS 10000          /* a child that lived this long resets its back-off */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000
#define SUPERVISE_TICK_MS 100
#define FDS_PUBLISH_MS 1000
#define WRITER_STALL_MS SHM_WRITER_STALL_MS
#define CHILD_POLL_MS 10               /* while waiting for one child to start or stop */
#define ERR_TEXT_MAX 1024

enum role { ROLE_WRITER, ROLE_WORKER };

struct child {
	pid_t pid;                     /* 0 when not running */
	enum role role;
	unsigned index;
	uint64_t started_ms;           /* mono_ms() */
	unsigned fast_failures;        /* consecutive deaths before STABLE_CHILD_MS */
	uint64_t respawn_at_ms;        /* 0: no respawn scheduled */
	bool wanted;                   /* false once retired (shutdown or fewer workers) */
};

struct master {
	struct cfg *cfg;
	const char *cfg_path;
	struct shm shm;
	struct server_fds fds;
	int master_pipe_w;
	int sigfd;
	struct child writer;
	struct child workers[CFG_WORKERS_MAX];
	bool stopping;
	bool writer_stalled;           /* logged; cleared when its beat comes back */
	uint64_t fds_at_ms;            /* when it last published its open descriptors */
};

/* A descriptor we own and no longer need; a failure is worth a line, not a stop. */
static void close_fd(int fd)
{
	if (fd >= 0 && close(fd) < 0)
		log_warn("close(%d): %s", fd, strerror(errno));
}

/* A child that already exited (ESRCH; reaped later) is not an error. */
static void signal_child(pid_t pid, int sig)
{
	if (kill(pid, sig) < 0 && errno != ESRCH)
		log_warn("kill(%d, %s): %s", (int)pid, strsignal(sig), strerror(errno));
}

static int listen_tcp(const char *listen_addr)
{
	char host[CFG_ADDR_MAX], port[CFG_PORT_TEXT_MAX];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int fd = -1, one = 1, rc;

	if (cfg_split_listen(listen_addr, host, sizeof(host), port, sizeof(port)) < 0) {
		log_error("bad listen address %s", listen_addr);
		return -1;
	}
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		log_error("cannot resolve %s: %s", listen_addr, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK, res->ai_protocol);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
		goto fail;
	if (listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	log_error("cannot listen on %s: %s", listen_addr, strerror(errno));
	close_fd(fd);
	freeaddrinfo(res);
	return -1;
}

static int create_fds(struct master *m)
{
	int pipefd[2];
	char err[ERR_TEXT_MAX];

	m->fds.admin_fd = admin_listen(m->cfg->admin_socket, err, sizeof(err));
	if (m->fds.admin_fd < 0) {
		log_error("%s", err);
		return -1;
	}
	m->fds.writer_wake = eventfd(0, EFD_NONBLOCK);
	if (m->fds.writer_wake < 0)
		goto fail_errno;
	for (unsigned i = 0; i < m->shm.hdr->nlanes; i++) {
		m->fds.worker_wake[i] = eventfd(0, EFD_NONBLOCK);
		if (m->fds.worker_wake[i] < 0)
			goto fail_errno;
	}
	/* Children watch the read end: EOF means the master is gone, even after the
	 * death signal was reset. The write end stays in the master only. */
	if (pipe(pipefd) < 0)
		goto fail_errno;
	if (fcntl(pipefd[1], F_SETFD, FD_CLOEXEC) < 0)
		goto fail_errno;
	m->fds.master_pipe = pipefd[0];
	m->master_pipe_w = pipefd[1];
	return 0;
fail_errno:
	log_error("cannot create wake-up descriptors: %s", strerror(errno));
	return -1;
}

static int setup_signals(struct master *m)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m->sigfd < 0)
		return -1;
	/* A client closing mid-response must not kill anyone. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -1;
	return 0;
}

/* In the child, right after fork: die with the master, restore signals. */
static void child_setup(struct master *m, pid_t master_pid)
{
	sigset_t set;

	close_fd(m->sigfd);
	close_fd(m->master_pipe_w);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		log_warn("PR_SET_PDEATHSIG: %s", strerror(errno));
	if (getppid() != master_pid)
		_exit(0);  /* the master died before the death signal was armed */
	/* Ctrl-C reaches the whole process group, but only the master orders the
	 * drain (workers first, then the writer, with SIGTERM); it also reloads. */
	if (signal(SIGINT, SIG_IGN) == SIG_ERR || signal(SIGHUP, SIG_IGN) == SIG_ERR)
		log_warn("ignoring SIGINT and SIGHUP: %s", strerror(errno));
	sigemptyset(&set);
	if (sigprocmask(SIG_SETMASK, &set, NULL) < 0)
		log_warn("unblocking signals: %s", strerror(errno));
}

static int spawn(struct master *m, struct child *c)
{
	pid_t master_pid = getpid();
	pid_t pid = fork();

	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		child_setup(m, master_pid);
		if (c->role == ROLE_WRITER) {
			close_fd(m->fds.listen_fd);
			writer_main(m->cfg, &m->shm, &m->fds);
		}
		close_fd(m->fds.admin_fd);
		worker_main(m->cfg, &m->shm, &m->fds, c->index);
	}
	c->pid = pid;
	c->started_ms = mono_ms();
	c->respawn_at_ms = 0;
	if (c->role == ROLE_WRITER)
		log_info("started writer (pid %d)", (int)pid);
	else
		log_info("started worker %u (pid %d)", c->index + 1, (int)pid);
	return 0;
}

static struct child *child_by_pid(struct master *m, pid_t pid)
{
	if (m->writer.pid == pid)
		return &m->writer;
	for (unsigned i = 0; i < m->shm.hdr->nlanes; i++)
		if (m->workers[i].pid == pid)
			return &m->workers[i];
	return NULL;
}

static void schedule_respawn(struct master *m, struct child *c, int status)
{
	uint64_t now = mono_ms();
	uint64_t delay = 0;

	if (now - c->started_ms >= STABLE_CHILD_MS)
		c->fast_failures = 0;
	if (c->fast_failures > 0) {
		delay = BACKOFF_FIRST_MS;
		for (unsigned i = 1; i < c->fast_failures && delay < BACKOFF_MAX_MS; i++)
			delay *= 2;
		if (delay > BACKOFF_MAX_MS)
			delay = BACKOFF_MAX_MS;
	}
	c->fast_failures++;
	c->respawn_at_ms = now + delay;
	if (c->role == ROLE_WRITER)
		atomic_fetch_add_explicit(&m->shm.hdr->stats.writer_restarts, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&m->shm.hdr->stats.worker_restarts, 1, memory_order_relaxed);
	if (WIFSIGNALED(status))
		log_warn("%s %u died from signal %d; restarting in %lld ms",
			 c->role == ROLE_WRITER ? "writer" : "worker", c->index + 1,
			 WTERMSIG(status), (long long)delay);
	else
		log_warn("%s %u exited with status %d; restarting in %lld ms",
			 c->role == ROLE_WRITER ? "writer" : "worker", c->index + 1,
			 WEXITSTATUS(status), (long long)delay);
}

static void reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = child_by_pid(m, pid);

		if (c == NULL)
			continue;
		c->pid = 0;
		/* Its descriptors are closed: a dead process counts none. */
		if (c->role == ROLE_WORKER)
			atomic_store_explicit(&m->shm.hdr->worker_stats[c->index].open_fds, 0,
					      memory_order_relaxed);
		else
			atomic_store_explicit(&m->shm.hdr->stats.writer_open_fds, 0,
					      memory_order_relaxed);
		if (c->role == ROLE_WORKER)
			atomic_fetch_sub_explicit(&m->shm.hdr->workers_running, 1,
						  memory_order_relaxed);
		/* Retired workers are not replaced; the writer is replaced until the
		 * workers are gone, since their waiting requests need its commits. */
		if (!c->wanted)
			continue;
		schedule_respawn(m, c, status);
	}
}

static void respawn_if_due(struct master *m, struct child *c, uint64_t now)
{
	if (!c->wanted || c->pid != 0 || c->respawn_at_ms == 0 || now < c->respawn_at_ms)
		return;
	/* A failed fork (logged by spawn) keeps respawn_at_ms: retried next tick. */
	if (spawn(m, c) == 0 && c->role == ROLE_WORKER)
		atomic_fetch_add_explicit(&m->shm.hdr->workers_running, 1, memory_order_relaxed);
}

static void run_respawns(struct master *m)
{
	uint64_t now = mono_ms();

	respawn_if_due(m, &m->writer, now);
	for (unsigned i = 0; i < m->shm.hdr->nlanes; i++)
		respawn_if_due(m, &m->workers[i], now);
}

static int start_worker(struct master *m, unsigned i)
{
	struct child *c = &m->workers[i];

	c->role = ROLE_WORKER;
	c->index = i;
	c->wanted = true;
	c->fast_failures = 0;
	if (spawn(m, c) < 0)
		return -1;
	atomic_fetch_add_explicit(&m->shm.hdr->workers_running, 1, memory_order_relaxed);
	return 0;
}

static int wait_writer_ready(struct master *m)
{
	uint64_t deadline = mono_ms() + WRITER_START_TIMEOUT_MS;
	int status;

	while (!atomic_load_explicit(&m->shm.hdr->writer_ready, memory_order_acquire)) {
		pid_t pid = waitpid(m->writer.pid, &status, WNOHANG);

		if (pid == m->writer.pid) {
			log_error("the writer failed to start; see its message above");
			m->writer.pid = 0;
			return -1;
		}
		if (mono_ms() > deadline) {
			log_error("the writer did not become ready in %d ms", WRITER_START_TIMEOUT_MS);
			return -1;
		}
		poll(NULL, 0, CHILD_POLL_MS);
	}
	return 0;
}

static void signal_workers(struct master *m, int sig)
{
	for (unsigned i = 0; i < m->shm.hdr->nlanes; i++)
		if (m->workers[i].pid > 0)
			signal_child(m->workers[i].pid, sig);
}

static bool workers_alive(struct master *m)
{
	for (unsigned i = 0; i < m->shm.hdr->nlanes; i++)
		if (m->workers[i].pid > 0)
			return true;
	return false;
}

static void apply_workers(struct master *m, int wanted)
{
	unsigned n = (unsigned)wanted;

	if (n > m->shm.hdr->nlanes) {
		log_warn("workers = %d needs a restart: the ring has %u lanes; running %u",
			 wanted, m->shm.hdr->nlanes, m->shm.hdr->nlanes);
		n = m->shm.hdr->nlanes;
	}
	for (unsigned i = 0; i < m->shm.hdr->nlanes; i++) {
		struct child *c = &m->workers[i];

		if (i < n && !c->wanted) {
			/* A failed fork (logged by spawn) is retried like a death. */
			if (start_worker(m, i) < 0)
				c->respawn_at_ms = mono_ms() + BACKOFF_FIRST_MS;
		} else if (i >= n && c->wanted) {
			/* Retire gracefully: it stops accepting and finishes in-flight requests. */
			c->wanted = false;
			if (c->pid > 0)
				signal_child(c->pid, SIGTERM);
		}
	}
	log_info("running %u workers", n);
}

/* ---- SIGHUP ---- */

/*
 * What the running server does when a key marked CFG_APPLY_RELOAD changes; the
 * hook runs after the new value is in the master's cfg (which later children
 * inherit). Hooks run in this order: the new log level first, so that what the
 * other hooks log is filtered by it.
 */
struct reload_hook {
	const char *key;
	void (*apply)(struct master *m);
};

static void apply_log_level(struct master *m)
{
	log_set_level(m->cfg->log_level);
}

static void apply_worker_count(struct master *m)
{
	apply_workers(m, m->cfg->workers);
}

static const struct reload_hook reload_hooks[] = {
	{ "log_level", apply_log_level },
	{ "workers", apply_worker_count },
};

#define RELOAD_HOOK_COUNT (sizeof(reload_hooks) / sizeof(reload_hooks[0]))

static bool has_reload_hook(const struct cfg_key *k)
{
	for (size_t i = 0; i < RELOAD_HOOK_COUNT; i++)
		if (strcmp(reload_hooks[i].key, k->name) == 0)
			return true;
	return false;
}

/* Every hook names a key that the table says applies on SIGHUP. */
static bool reload_hooks_match_table(void)
{
	for (size_t i = 0; i < RELOAD_HOOK_COUNT; i++) {
		const struct cfg_key *k = cfg_key_find(reload_hooks[i].key);

		if (k == NULL || k->applies != CFG_APPLY_RELOAD)
			return false;
	}
	return true;
}

/* Re-read the file into a copy; a bad file changes nothing. Keys missing from
 * the file keep their running values. A changed key marked restart is only
 * reported; one marked reload is copied in, then its hook (if any) runs. */
static void reload(struct master *m)
{
	static struct cfg next; /* large: keep it off the stack */
	char err[ERR_TEXT_MAX];

	if (m->cfg_path == NULL) {
		log_info("SIGHUP: no configuration file to reload");
		return;
	}
	next = *m->cfg;
	if (cfg_load(&next, m->cfg_path, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		return;
	}
	for (size_t i = 0; i < cfg_key_count; i++) {
		const struct cfg_key *k = &cfg_key_table[i];

		if (!cfg_key_differs(k, m->cfg, &next))
			continue;
		if (k->applies == CFG_APPLY_RESTART)
			log_warn("%s changed: takes effect after a restart", k->name);
		else if (!has_reload_hook(k))
			cfg_key_copy(k, m->cfg, &next);
	}
	for (size_t i = 0; i < RELOAD_HOOK_COUNT; i++) {
		const struct cfg_key *k = cfg_key_find(reload_hooks[i].key);

		if (k != NULL && cfg_key_differs(k, m->cfg, &next)) {
			cfg_key_copy(k, m->cfg, &next);
			reload_hooks[i].apply(m);
		}
	}
	log_info("configuration reloaded from %s", m->cfg_path);
}

static void handle_signals(struct master *m)
{
	struct signalfd_siginfo si;

	while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(m);
			break;
		case SIGHUP:
			if (!m->stopping)
				reload(m);
			break;
		case SIGTERM:
		case SIGINT:
			if (!m->stopping) {
				log_info("%s: draining", strsignal((int)si.ssi_signo));
				m->stopping = true;
				for (unsigned i = 0; i < m->shm.hdr->nlanes; i++)
					m->workers[i].wanted = false;
				signal_workers(m, SIGTERM);
			}
			break;
		default:
			break;
		}
	}
}

/*
 * A running writer that stopped making progress (a hung disk, SIGSTOP, a stall) is
 * said once in the log, and again when it moves; /healthz answers 503 meanwhile and
 * ingest 503 after commit_timeout_ms. It is not killed: a slow commit still commits.
 */
static void watch_writer(struct master *m)
{
	uint64_t beat = atomic_load_explicit(&m->shm.hdr->writer_beat_ms, memory_order_relaxed);
	uint64_t now = mono_ms();
	bool stalled = m->writer.pid != 0 && beat != 0 && now - beat > WRITER_STALL_MS;

	if (stalled && !m->writer_stalled)
		log_warn("the writer (pid %d) has made no progress for %llu ms: commits wait, "
			 "ingest answers 503 after commit_timeout_ms, reads and temporisctl may "
			 "wait too; look for a hung disk or a stopped process",
			 (int)m->writer.pid, (unsigned long long)(now - beat));
	else if (!stalled && m->writer_stalled)
		log_warn("the writer is making progress again");
	m->writer_stalled = stalled;
}

/* Our open descriptors and their limit for /metrics (process_open_fds, _max_fds). */
static void publish_fds(struct master *m)
{
	uint64_t now = mono_ms(), n;

	if (now - m->fds_at_ms < FDS_PUBLISH_MS)
		return;
	m->fds_at_ms = now;
	if (fd_count_self(&n) == 0)
		atomic_store_explicit(&m->shm.hdr->stats.master_open_fds, n, memory_order_relaxed);
	if (fd_limit_self(&n) == 0)
		atomic_store_explicit(&m->shm.hdr->stats.max_fds, n, memory_order_relaxed);
}

static void supervise_tick(struct master *m)
{
	struct pollfd pfd = { .fd = m->sigfd, .events = POLLIN };

	if (poll(&pfd, 1, SUPERVISE_TICK_MS) < 0 && errno != EINTR)
		log_error("poll: %s", strerror(errno));
	handle_signals(m);
	reap(m);
	run_respawns(m);
	watch_writer(m);
	publish_fds(m);
}

/* Workers first (they need the writer to acknowledge what they hold), then the writer. */
static int drain(struct master *m)
{
	uint64_t deadline = mono_ms() + WORKER_STOP_TIMEOUT_MS;
	int status;

	while (workers_alive(m)) {
		if (mono_ms() > deadline) {
			log_error("workers did not stop in %d ms; killing them", WORKER_STOP_TIMEOUT_MS);
			signal_workers(m, SIGKILL);
			deadline = mono_ms() + WORKER_STOP_TIMEOUT_MS;
		}
		supervise_tick(m);
	}
	m->writer.wanted = false;
	if (m->writer.pid > 0) {
		signal_child(m->writer.pid, SIGTERM);
		deadline = mono_ms() + WRITER_STOP_TIMEOUT_MS;
		while (m->writer.pid > 0) {
			pid_t pid = waitpid(m->writer.pid, &status, WNOHANG);

			if (pid == m->writer.pid) {
				m->writer.pid = 0;
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
					log_error("the writer did not stop cleanly");
					return 1;
				}
				break;
			}
			if (mono_ms() > deadline) {
				log_error("the writer did not stop in %d ms; killing it",
					  WRITER_STOP_TIMEOUT_MS);
				signal_child(m->writer.pid, SIGKILL);
				return 1;
			}
			poll(NULL, 0, CHILD_POLL_MS);
		}
	}
	return 0;
}

static void cleanup(struct master *m)
{
	struct stat st;

	/* The admin socket is ours only if it is still the one we bound. */
	if (lstat(m->cfg->admin_socket, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    unlink(m->cfg->admin_socket) < 0)
		log_warn("removing %s: %s", m->cfg->admin_socket, strerror(errno));
	close_fd(m->fds.listen_fd);
	close_fd(m->fds.admin_fd);
	shm_destroy(&m->shm);
}

int master_run(struct cfg *cfg, const char *cfg_path)
{
	static struct master m;  /* large: keep it off the stack */
	int rc = 1;

	assert(reload_hooks_match_table());
	m.cfg = cfg;
	m.cfg_path = cfg_path;
	m.fds.listen_fd = m.fds.admin_fd = -1;
	log_set_role("master");
	proctitle_set("temporisd: master");
	if (setup_signals(&m) < 0) {
		log_error("signals: %s", strerror(errno));
		return 1;
	}
	/* Bind first (a port below 1024 needs root), then never be root again. */
	m.fds.listen_fd = listen_tcp(cfg->listen);
	if (m.fds.listen_fd < 0 || privileges_drop(cfg) < 0)
		return 1;
	if (shm_create(cfg, &m.shm) < 0) {
		log_error("cannot create the shared-memory ring (%llu bytes): %s",
			  (unsigned long long)cfg->ring_size, strerror(errno));
		return 1;
	}
	if (create_fds(&m) < 0)
		goto out;
	m.writer = (struct child){ .role = ROLE_WRITER, .wanted = true };
	if (spawn(&m, &m.writer) < 0 || wait_writer_ready(&m) < 0)
		goto out_kill;
	for (unsigned i = 0; i < (unsigned)cfg->workers && i < m.shm.hdr->nlanes; i++)
		if (start_worker(&m, i) < 0)
			goto out_kill;
	log_info("listening on %s with %d workers", cfg->listen, cfg->workers);
	while (!m.stopping)
		supervise_tick(&m);
	rc = drain(&m);
	log_info("stopped");
	cleanup(&m);
	return rc;
out_kill:
	m.stopping = true;
	signal_workers(&m, SIGKILL);
	if (m.writer.pid > 0)
		signal_child(m.writer.pid, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
out:
	cleanup(&m);
	return 1;
}
