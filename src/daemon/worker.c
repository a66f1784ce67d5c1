/*
 * worker.c - an HTTP worker process: its event loop, signals, the writer's commit
 * wake-ups, the master pipe, and the drain at shutdown.
 *
 * A worker owns one lane of the ring (its slot index) and its own copy of the
 * catalog snapshot; it never touches RocksDB. Requests go through the route table
 * (http/dispatch.c) to their handlers, which share the struct handler_env here.
 */
#include "temporis/daemon/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "temporis/base/fdcount.h"
#include "temporis/base/log.h"
#include "temporis/base/proctitle.h"
#include "temporis/http/dispatch.h"
#include "temporis/http/handler.h"
#include "temporis/http/serve_ingest.h"
#include "temporis/http/server.h"

#define WORKER_MAX_HEADER_BYTES (64u * 1024u)
#define DRAIN_CHECK_MS 50
#define STATS_TICK_S 1            /* publish our open descriptors this often */
#define US_PER_MS 1000
#define ROLE_MAX 32

struct worker {
	struct handler_env env;          /* what the request handlers share */
	const struct server_fds *fds;
	struct http_server *http;
	struct event *wake_ev;           /* our lane's eventfd: the writer committed */
	struct event *master_ev;         /* master pipe EOF */
	struct event *sigterm_ev;
	struct event *drain_ev;          /* periodic drain check once stopping */
	struct event *stats_ev;          /* publishes our open descriptors, once a second */
	bool stopping;
};

static struct worker the_worker;

/* Shutdown can finish once no request is open and nothing waits on the lane. */
static void check_drained(struct worker *w)
{
	if (!w->stopping || w->http == NULL)
		return;
	if (http_server_pending(w->http) == 0 && http_server_connections(w->http) == 0 &&
	    ingest_waiting(&w->env) == 0 && event_base_loopexit(w->env.base, NULL) < 0)
		log_error("cannot leave the event loop");
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_error("read wake-up: %s", strerror(errno));
	ingest_on_commit(&w->env);
	check_drained(w);
}

static void on_ingest_timer(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	ingest_on_timer(&w->env);
	check_drained(w);
}

static void on_stats_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t n;

	if (fd_count_self(&n) == 0)
		atomic_store_explicit(&w->env.stats->open_fds, n, memory_order_relaxed);
}

static void on_master_gone(evutil_socket_t fd, short what, void *arg)
{
	/* Nothing left to supervise us: in-flight clients see a reset, never a lie. */
	_exit(0);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	check_drained(arg);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tick = { .tv_sec = 0, .tv_usec = DRAIN_CHECK_MS * US_PER_MS };

	if (w->stopping)
		return;
	w->stopping = true;
	log_info("draining");
	http_server_stop_accepting(w->http);
	/* Connections also end by themselves (grace, timeouts): look again now and then. */
	w->drain_ev = event_new(w->env.base, -1, EV_PERSIST, on_drain_tick, w);
	if (w->drain_ev == NULL || event_add(w->drain_ev, &tick) < 0)
		log_error("cannot watch the drain; stopping when requests are answered");
	check_drained(w);
}

static int add_event(struct worker *w, struct event **ev, evutil_socket_t fd, short what,
		     event_callback_fn cb)
{
	*ev = event_new(w->env.base, fd, what, cb, w);
	if (*ev == NULL || event_add(*ev, NULL) < 0)
		return -1;
	return 0;
}

static int worker_setup(struct worker *w, const struct cfg *cfg, struct shm *shm,
			unsigned index)
{
	struct http_limits lim = {
		.max_header_bytes = WORKER_MAX_HEADER_BYTES,
		.max_body_bytes = cfg->max_body_bytes,
		.idle_timeout_s = cfg->idle_timeout_s,
		.header_timeout_s = cfg->header_timeout_s,
		.max_connections = cfg->max_connections,
	};
	struct timeval stats_tick = { .tv_sec = STATS_TICK_S, .tv_usec = 0 };
	struct event_base *base = event_base_new();

	if (base == NULL ||
	    handler_env_init(&w->env, base, cfg, shm, index, w->fds->writer_wake) < 0)
		return -1;
	w->env.timer = evtimer_new(base, on_ingest_timer, w);
	if (w->env.timer == NULL)
		return -1;
	if (add_event(w, &w->wake_ev, w->fds->worker_wake[index], EV_READ | EV_PERSIST,
		      on_wake) < 0 ||
	    add_event(w, &w->master_ev, w->fds->master_pipe, EV_READ, on_master_gone) < 0 ||
	    add_event(w, &w->sigterm_ev, SIGTERM, EV_SIGNAL | EV_PERSIST, on_stop_signal) < 0)
		return -1;
	w->stats_ev = event_new(base, -1, EV_PERSIST, on_stats_tick, w);
	if (w->stats_ev == NULL || event_add(w->stats_ev, &stats_tick) < 0)
		return -1;
	on_stats_tick(-1, 0, w);
	w->http = http_server_new(base, w->fds->listen_fd, &lim, &dispatch_ops, &w->env);
	return w->http == NULL ? -1 : 0;
}

void worker_main(const struct cfg *cfg, struct shm *shm, const struct server_fds *fds,
		 unsigned index)
{
	struct worker *w = &the_worker;
	char role[ROLE_MAX];

	snprintf(role, sizeof(role), "worker %u", index + 1);
	log_set_role(role);
	proctitle_set("temporisd: worker %u", index + 1);
	w->fds = fds;
	if (worker_setup(w, cfg, shm, index) < 0) {
		log_error("cannot start: %s", strerror(errno));
		_exit(1);
	}
	if (event_base_dispatch(w->env.base) < 0)
		log_error("event loop failed");
	ingest_fail_all(&w->env);
	http_server_free(w->http);
	_exit(0);
}
