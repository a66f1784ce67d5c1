/*
 * admin.c - the writer's admin Unix socket: the listening socket's set-up and the
 * server threads (accept, one thread per connection, framing, stop). Owns the server
 * threads' state, one server per process; each request frame is run by admin_execute
 * (admin_ops.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, pipe2, struct ucred */
#endif
#include "temporis/daemon/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "temporis/base/err.h"
#include "temporis/base/jsonutil.h"
#include "temporis/base/log.h"
#include "temporis/daemon/admin_ops.h"
#include "temporis/ipc/admin_msg.h"
#include "temporis/ipc/proto.h"

/*
 * Connection slots, in two classes: the workers' (a peer whose parent is the writer's
 * own parent, the master) and everyone else's (temporisctl). The workers' class has
 * room for twice their share: a worker lets go of a connection when its reply is in,
 * and the thread serving it leaves its slot a moment later, on the EOF. Without
 * classes those moments, under many reads, took the operator's slots.
 */
#define SIBLING_SLOTS (2 * ADMIN_WORKER_CONNS)
#define ADMIN_SLOTS (SIBLING_SLOTS + ADMIN_OPERATOR_CONNS)

/* Concurrent connection threads: ADMIN_SLOTS. The reads (records,
 * series, prom, export), which only workers send, run at most ADMIN_WORKER_CONNS at
 * once: a second
 * guard, after the workers' own share, for the connections kept for temporisctl. */
#define ADMIN_READS_MAX ADMIN_WORKER_CONNS
#define MSG_BUSY "Server is busy, retry later."
#define ADMIN_IDLE_TIMEOUT_MS (30 * 1000) /* a connection may sit idle this long */
#define ADMIN_STOP_WAIT_S 5               /* admin_stop waits this long for connections */
#define ADMIN_ACCEPT_BACKOFF_US 100000    /* out of fds: pause before accepting again */
#define ADMIN_DIR_MODE 0700
#define ADMIN_SOCKET_MODE 0600
#define ADMIN_BIND_UMASK 0177
#define MODE_PERM_BITS 0777               /* the rwx bits of st_mode */
#define PROC_PATH_MAX 32                  /* "/proc/PID/stat" */
#define PROC_STAT_MAX 512
#define JSON_OUT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

#define MSG_INTERNAL "Internal error."

typedef struct json_object json;

/* ------------------------------------------------------------------ listening socket */

static int fill_addr(const char *path, struct sockaddr_un *addr, char *err, size_t errlen)
{
	size_t len = strlen(path);

	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (len == 0 || len >= sizeof(addr->sun_path)) {
		err_set(err, errlen, "admin socket path \"%s\" is empty or longer than %zu bytes",
		        path, sizeof(addr->sun_path) - 1);
		return -1;
	}
	memcpy(addr->sun_path, path, len + 1);
	return 0;
}

/* 1 if a server answers at addr, 0 if nobody does, -1 if we cannot tell. */
static int socket_is_live(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0)
		rc = 1;
	else if (errno == ECONNREFUSED || errno == ENOENT)
		rc = 0;
	else
		rc = errno == EAGAIN ? 1 : -1;
	close(fd);
	return rc;
}

/* Take over a stale socket of ours at path; refuse anything else. */
static int clear_stale(const char *path, const struct sockaddr_un *addr, char *err, size_t errlen)
{
	struct stat st;
	int live;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		err_set(err, errlen, "admin socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		err_set(err, errlen, "admin socket %s exists and is not a socket", path);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		err_set(err, errlen, "admin socket %s is owned by another user (uid %u)", path,
		        (unsigned)st.st_uid);
		return -1;
	}
	live = socket_is_live(addr);
	if (live != 0) {
		err_set(err, errlen,
		        live > 0 ? "admin socket %s is in use"
		                 : "admin socket %s: cannot tell whether it is in use",
		        path);
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		err_set(err, errlen, "cannot remove stale admin socket %s: %s", path,
		        strerror(errno));
		return -1;
	}
	return 0;
}

/* mkdir -p of path's parent directory, new levels mode 0700. */
static int make_parent(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(dir, ADMIN_DIR_MODE) < 0 && errno != EEXIST) {
			err_set(err, errlen, "cannot create directory %s: %s", dir,
			        strerror(errno));
			return -1;
		}
		if (last)
			return 0;
		*p = '/';
	}
}

static int bind_listen(const char *path, const struct sockaddr_un *addr, char *err, size_t errlen)
{
	struct stat st;
	mode_t old_mask;
	int fd, rc;

	/* No SOCK_CLOEXEC: the writer inherits this fd across fork (no exec). */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0) {
		err_set(err, errlen, "admin socket: %s", strerror(errno));
		return -1;
	}
	/* The umask closes the window between bind and chmod. */
	old_mask = umask(ADMIN_BIND_UMASK);
	rc = bind(fd, (const struct sockaddr *)addr, sizeof(*addr));
	umask(old_mask);
	if (rc < 0) {
		err_set(err, errlen, "cannot bind admin socket %s: %s", path, strerror(errno));
		goto fail_nounlink;
	}
	if (chmod(path, ADMIN_SOCKET_MODE) < 0 || lstat(path, &st) < 0) {
		err_set(err, errlen, "admin socket %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISSOCK(st.st_mode) || (st.st_mode & MODE_PERM_BITS) != ADMIN_SOCKET_MODE) {
		err_set(err, errlen, "admin socket %s: mode is %o, not %o", path,
		        (unsigned)(st.st_mode & MODE_PERM_BITS), (unsigned)ADMIN_SOCKET_MODE);
		goto fail;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		err_set(err, errlen, "cannot listen on admin socket %s: %s", path,
		        strerror(errno));
		goto fail;
	}
	return fd;
fail:
	unlink(path);
fail_nounlink:
	close(fd);
	return -1;
}

int admin_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un addr;

	if (fill_addr(path, &addr, err, errlen) < 0 || clear_stale(path, &addr, err, errlen) < 0 ||
	    make_parent(path, err, errlen) < 0)
		return -1;
	return bind_listen(path, &addr, err, errlen);
}

/* ------------------------------------------------------------------ server threads */

/*
 * One server per process. lock guards everything below it; conn_fds lists open
 * connections so admin_stop can shut their read side (a blocked read then sees EOF)
 * and a connection thread leaves its slot before it closes the fd.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* broadcast when nconns drops to 0 */
	struct admin_ctx *ctx;
	int listen_fd;
	int wake[2]; /* admin_stop -> accept thread */
	pthread_t accept_thread;
	bool running;
	unsigned nconns;
	int conn_fds[ADMIN_SLOTS]; /* -1: free; the workers' class first */
} srv = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
    .wake = {-1, -1},
};

/* A mutex or condition that fails means our own state is corrupt: stop rather than race. */
static void srv_check(int rc, const char *what)
{
	if (rc != 0) {
		log_error("admin: %s: %s", what, strerror(rc));
		abort();
	}
}

static void srv_lock(void)
{
	srv_check(pthread_mutex_lock(&srv.lock), "mutex lock");
}

static void srv_unlock(void)
{
	srv_check(pthread_mutex_unlock(&srv.lock), "mutex unlock");
}

static int send_reply(int fd, json *reply)
{
	const char *text;

	if (json_object_is_type(reply, json_type_string))   /* a body (admin_body_reply) */
		return proto_write_frame(fd, json_object_get_string(reply),
					 (size_t)json_object_get_string_len(reply));
	text = json_object_to_json_string_ext(reply, JSON_OUT_FLAGS);

	if (text == NULL)
		return -1;
	return proto_write_frame(fd, text, strlen(text));
}

static void send_error(int fd, enum admin_code code, const char *msg)
{
	json *reply = admin_error(code, msg);

	if (reply != NULL && send_reply(fd, reply) < 0)
		log_debug("admin: cannot send an error reply: %s", strerror(errno));
	json_object_put(reply);
}

/* Parse (strictly, the whole frame) and run one request. NULL only when out of memory. */
static _Atomic int reads_running;

/* The reads the HTTP workers relay, which may come by the hundred. */
static bool is_read(json *req)
{
	const char *op = ju_str(req, "op");

	return op != NULL && (strcmp(op, "records") == 0 || strcmp(op, "series") == 0 ||
			      strcmp(op, "prom") == 0 || strcmp(op, "export") == 0);
}

static bool read_begin(void)
{
	if (atomic_fetch_add(&reads_running, 1) < ADMIN_READS_MAX)
		return true;
	atomic_fetch_sub(&reads_running, 1);
	return false;
}

static json *handle_frame(struct admin_ctx *ctx, const char *buf, size_t len)
{
	json *req = ju_parse(buf, len), *reply;
	bool read;

	if (req == NULL)
		return admin_error(ADMIN_BAD_REQUEST, "Request is not valid JSON.");
	read = is_read(req);
	if (read && !read_begin()) {
		json_object_put(req);
		return admin_error(ADMIN_BUSY, MSG_BUSY);
	}
	reply = admin_execute(ctx, req);
	if (read)
		atomic_fetch_sub(&reads_running, 1);
	json_object_put(req);
	return reply;
}

/* One request after another until the peer leaves, idles out or a reply fails. */
static void conn_serve(struct admin_ctx *ctx, int fd)
{
	char *buf;
	size_t len;

	for (;;) {
		int rc = proto_read_frame(fd, &buf, &len, ADMIN_IDLE_TIMEOUT_MS);
		json *reply;

		if (rc == 1)
			break;
		if (rc < 0) {
			if (errno == EMSGSIZE)
				send_error(fd, ADMIN_BAD_REQUEST, "Request too large.");
			else if (errno != ETIMEDOUT && errno != ECONNRESET)
				log_warn("admin: connection read failed: %s", strerror(errno));
			break;
		}
		reply = handle_frame(ctx, buf, len);
		free(buf);
		rc = reply != NULL ? send_reply(fd, reply) : -1;
		json_object_put(reply);
		if (rc < 0)
			break;
	}
}

/* Whether the peer of fd is a worker: a child of the master, as the writer is. */
static bool peer_is_sibling(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char path[PROC_PATH_MAX], stat[PROC_STAT_MAX];
	const char *paren;
	long ppid;
	ssize_t n;
	int sfd;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.pid == getpid() ||
	    getppid() == 1)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)cr.pid);
	sfd = open(path, O_RDONLY | O_CLOEXEC);
	if (sfd < 0)
		return false;
	n = read(sfd, stat, sizeof(stat) - 1);
	close(sfd);
	if (n <= 0)
		return false;
	stat[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold anything, so from its last ')' */
	paren = strrchr(stat, ')');
	if (paren == NULL || sscanf(paren + 1, " %*c %ld", &ppid) != 1)
		return false;
	return ppid == (long)getppid();
}

/* Register fd in a free slot of its class; the slot index, or -1 when at the cap. */
static int claim_slot(int fd, bool sibling)
{
	int slot = -1, first = sibling ? 0 : SIBLING_SLOTS;
	int end = sibling ? SIBLING_SLOTS : ADMIN_SLOTS;

	srv_lock();
	for (int i = first; i < end && slot < 0; i++) {
		if (srv.conn_fds[i] < 0) {
			srv.conn_fds[i] = fd;
			srv.nconns++;
			slot = i;
		}
	}
	srv_unlock();
	return slot;
}

/* Leave the slot before the fd is closed, so admin_stop never shuts a reused fd. */
static void release_slot(int slot)
{
	srv_lock();
	srv.conn_fds[slot] = -1;
	if (--srv.nconns == 0)
		srv_check(pthread_cond_broadcast(&srv.idle), "cond broadcast");
	srv_unlock();
}

static void *conn_main(void *arg)
{
	int slot = (int)(intptr_t)arg;
	struct admin_ctx *ctx;
	int fd;

	srv_lock();
	fd = srv.conn_fds[slot];
	ctx = srv.ctx;
	srv_unlock();

	conn_serve(ctx, fd);
	release_slot(slot);
	close(fd);
	return NULL;
}

static int spawn_conn(int slot)
{
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	if (pthread_attr_init(&attr) != 0)
		return -1;
	rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (rc == 0)
		rc = pthread_create(&th, &attr, conn_main, (void *)(intptr_t)slot);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return 0;
}

/* Accept one connection. -1 when the listening socket is unusable. */
static int accept_one(void)
{
	int fd = accept4(srv.listen_fd, NULL, NULL, SOCK_CLOEXEC);
	int slot;

	if (fd < 0) {
		if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK) {
			log_error("admin: accept failed: %s", strerror(errno));
			return -1;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
			log_warn("admin: accept failed: %s", strerror(errno));
			usleep(ADMIN_ACCEPT_BACKOFF_US);
		}
		return 0;
	}
	slot = claim_slot(fd, peer_is_sibling(fd));
	if (slot < 0) {
		send_error(fd, ADMIN_BUSY, "too many admin connections; retry later");
		close(fd);
		return 0;
	}
	if (spawn_conn(slot) < 0) {
		log_error("admin: cannot start a connection thread: %s", strerror(errno));
		release_slot(slot);
		send_error(fd, ADMIN_FAILED, MSG_INTERNAL);
		close(fd);
	}
	return 0;
}

static void *accept_main(void *arg)
{
	struct pollfd pfd[2] = {
	    {.fd = srv.listen_fd, .events = POLLIN},
	    {.fd = srv.wake[0], .events = POLLIN},
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("admin: poll failed: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents != 0)
			break;
		if (pfd[0].revents & POLLIN) {
			if (accept_one() < 0)
				break;
		} else if (pfd[0].revents != 0) {
			log_error("admin: listening socket failed");
			break;
		}
	}
	return NULL;
}

/*
 * The accept thread takes no signals (nor do the connection threads it starts): the
 * writer's main thread handles them. 0, or an errno value.
 */
static int spawn_accept(void)
{
	sigset_t all, old;
	int rc;

	if (sigfillset(&all) != 0)
		return EINVAL;
	rc = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (rc != 0)
		return rc;
	rc = pthread_create(&srv.accept_thread, NULL, accept_main, NULL);
	/* the caller must get its own mask back, or the writer would ignore SIGTERM */
	srv_check(pthread_sigmask(SIG_SETMASK, &old, NULL), "restoring the signal mask");
	return rc;
}

int admin_start(struct admin_ctx *ctx, int listen_fd)
{
	int rc;

	srv_lock();
	if (srv.running || srv.nconns > 0) {
		srv_unlock();
		errno = EBUSY;
		return -1;
	}
	if (pipe2(srv.wake, O_CLOEXEC) < 0)
		goto fail;
	srv.ctx = ctx;
	srv.listen_fd = listen_fd;
	for (int i = 0; i < ADMIN_SLOTS; i++)
		srv.conn_fds[i] = -1;
	rc = spawn_accept();
	if (rc != 0) {
		close(srv.wake[0]);
		close(srv.wake[1]);
		srv.wake[0] = srv.wake[1] = -1;
		errno = rc;
		goto fail;
	}
	srv.running = true;
	srv_unlock();
	return 0;
fail:
	log_error("admin: cannot start: %s", strerror(errno));
	srv_unlock();
	return -1;
}

/* Wake the accept thread and wait for it; the listening fd stays the master's. */
static void stop_accepting(void)
{
	const char byte = 0;
	ssize_t n;
	int rc;

	do
		n = write(srv.wake[1], &byte, 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		log_error("admin: cannot wake the accept thread: %s", strerror(errno));
	rc = pthread_join(srv.accept_thread, NULL);
	if (rc != 0)
		log_error("admin: cannot join the accept thread: %s", strerror(rc));
	close(srv.wake[0]);
	close(srv.wake[1]);
	srv.wake[0] = srv.wake[1] = -1;
}

/* Wait up to ADMIN_STOP_WAIT_S for the connections to finish. Under srv.lock. */
static void wait_connections(void)
{
	struct timespec deadline;
	int rc = 0;

	if (clock_gettime(CLOCK_REALTIME, &deadline) != 0) {
		log_warn("admin: no clock to wait by: %s", strerror(errno));
		return;
	}
	deadline.tv_sec += ADMIN_STOP_WAIT_S;
	while (srv.nconns > 0 && rc != ETIMEDOUT) {
		rc = pthread_cond_timedwait(&srv.idle, &srv.lock, &deadline);
		if (rc != ETIMEDOUT)
			srv_check(rc, "cond wait");
	}
}

void admin_stop(void)
{
	srv_lock();
	if (!srv.running) {
		srv_unlock();
		return;
	}
	srv_unlock();
	stop_accepting();

	srv_lock();
	/* Idle connections see EOF at once; a request in progress still gets its reply. */
	for (int i = 0; i < ADMIN_SLOTS; i++)
		if (srv.conn_fds[i] >= 0 && shutdown(srv.conn_fds[i], SHUT_RD) < 0 &&
		    errno != ENOTCONN)
			log_warn("admin: cannot shut a connection down: %s", strerror(errno));
	wait_connections();
	if (srv.nconns > 0)
		log_warn("admin: %u connection(s) still busy at shutdown", srv.nconns);
	srv.running = false;
	srv_unlock();
}
