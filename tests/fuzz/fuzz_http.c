/*
 * fuzz_http.c - libFuzzer target for the HTTP/1.1 layer (src/http/server.c, parse.c).
 *
 * Each input is the byte stream of one client connection: a fresh server adopts one
 * end of a socketpair, the input is written into the other end (split into chunks
 * chosen by the leading byte), and the event loop runs until nothing moves. Handlers
 * behave like the worker's simple paths. Invariants: every request seen in on_head
 * gets exactly one response or one on_abort; no connection or fd survives the input.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz.h"
#include "temporis/http/server.h"
#include "temporis/base/log.h"

/* Leading byte: low bits pick the chunk size, high bits the handler's behaviour. */
#define MODE_CHUNK_MASK 0x0f
#define MODE_CHUNK_STEP 7            /* chunk = (mode & mask) * step bytes; 0 = all at once */
#define MODE_HALF_CLOSE 0x10         /* shut the client's write side after the input */
#define MODE_ASYNC 0x20              /* answer bodies from a timer, as the ingest path does */
#define MODE_EARLY 0x40              /* answer non-GET requests from on_head (like a 401) */

#define FUZZ_MAX_HEADER 4096
#define FUZZ_MAX_BODY (64 * 1024)
#define FUZZ_IDLE_S 1
#define FUZZ_MAX_CONNS 4
#define QUIET_ROUNDS 3               /* loop rounds without progress that mean "idle" */
#define MAX_ROUNDS 10000             /* bound on rounds per phase, so no input hangs */
#define READ_CHUNK 65536

struct fuzz_state {
	struct event_base *base;
	int lfd;                         /* never accepts: http_server_new needs a listener */
	struct event *late;
	struct http_server *srv;
	struct http_req *late_req;
	unsigned mode;
	unsigned long heads, answers, aborts;
};

static struct fuzz_state st;


static void answer(struct http_req *req, int status, const char *ctype, const void *body,
		   size_t len)
{
	st.answers++;
	http_respond(req, status, ctype, NULL, body, len);
}

static void late_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_req *req = st.late_req;

	if (req == NULL)
		return;
	st.late_req = NULL;
	answer(req, 204, NULL, NULL, 0);
}

static void on_head(struct http_req *req, void *arg)
{
	static const char ok[] = "{\"status\":\"ok\"}";

	st.heads++;
	if (req->method == HTTP_GET || req->method == HTTP_HEAD) {
		if (strcmp(req->path, "/healthz") == 0)
			answer(req, 200, "application/json", ok, sizeof(ok) - 1);
		else {
			st.answers++;
			http_respond_error(req, 404, "Not found.", NULL);
		}
	} else if ((st.mode & MODE_EARLY) && http_header(req, "Authorization") == NULL) {
		st.answers++;
		http_respond_error(req, 401, "Missing access token.", NULL);
	}
}

static void on_body(struct http_req *req, void *arg)
{
	static const struct timeval now = { 0, 0 };

	check(req->body != NULL && req->body_len <= FUZZ_MAX_BODY);
	if (strcmp(req->path, "/echo") == 0) {
		answer(req, 200, "application/octet-stream", req->body, req->body_len);
	} else if (st.mode & MODE_ASYNC) {
		check(st.late_req == NULL);  /* one request at a time per connection */
		st.late_req = req;
		check(evtimer_add(st.late, &now) == 0);
	} else {
		answer(req, 204, NULL, NULL, 0);
	}
}

static void on_abort(struct http_req *req, void *arg)
{
	st.aborts++;
	if (req == st.late_req) {
		st.late_req = NULL;
		check(event_del(st.late) == 0);
	}
}

static const struct http_handler_ops ops = {
	.on_head = on_head, .on_body = on_body, .on_abort = on_abort,
};

static void init_once(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	log_set_level(LOG_ERROR);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	st.base = event_base_new();
	st.lfd = socket(AF_INET, SOCK_STREAM, 0);
	check(st.base != NULL && st.lfd >= 0);
	check(bind(st.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(st.lfd, 1) == 0);
	st.late = evtimer_new(st.base, late_cb, NULL);
	check(st.late != NULL);
}

/* Run the loop once and read whatever the server wrote; true if anything moved. */
static bool pump(int cfd, bool *eof)
{
	static uint8_t sink[READ_CHUNK];
	bool moved = false;
	ssize_t n = -1;

	check(event_base_loop(st.base, EVLOOP_NONBLOCK) >= 0);
	while (!*eof && (n = recv(cfd, sink, sizeof(sink), MSG_DONTWAIT)) != 0) {
		if (n < 0) {
			check(errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNRESET);
			*eof = errno == ECONNRESET;
			break;
		}
		moved = true;
	}
	if (n == 0)
		*eof = true;
	return moved || st.late_req != NULL;
}

static void run_until_quiet(int cfd, bool *eof)
{
	int quiet = 0;

	for (int i = 0; i < MAX_ROUNDS && quiet < QUIET_ROUNDS; i++)
		quiet = pump(cfd, eof) ? 0 : quiet + 1;
}

static void feed(int cfd, const uint8_t *data, size_t size, bool *eof)
{
	size_t step = (st.mode & MODE_CHUNK_MASK) * MODE_CHUNK_STEP, off = 0;

	if (step == 0)
		step = size;
	for (int i = 0; off < size && i < MAX_ROUNDS; i++) {
		size_t n = size - off < step ? size - off : step;
		ssize_t w = send(cfd, data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			break;                   /* the server closed: the rest is moot */
		if (w > 0)
			off += (size_t)w;
		pump(cfd, eof);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool eof = false;
	int sv[2];

	if (st.base == NULL)
		init_once();
	if (size == 0)
		return 0;
	st.mode = data[0];
	st.heads = st.answers = st.aborts = 0;
	st.srv = http_server_new(st.base, st.lfd,
				 &(struct http_limits){ .max_header_bytes = FUZZ_MAX_HEADER,
							.max_body_bytes = FUZZ_MAX_BODY,
							.idle_timeout_s = FUZZ_IDLE_S,
							.max_connections = FUZZ_MAX_CONNS },
				 &ops, NULL);
	check(st.srv != NULL);
	check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	check(http_server_adopt(st.srv, sv[0]) == 0);
	feed(sv[1], data + 1, size - 1, &eof);
	if (st.mode & MODE_HALF_CLOSE)
		check(shutdown(sv[1], SHUT_WR) == 0 || errno == ENOTCONN);
	run_until_quiet(sv[1], &eof);
	check(close(sv[1]) == 0);
	/* The client is gone: the server must drop the connection without a timer. */
	for (int i = 0; i < MAX_ROUNDS && http_server_connections(st.srv) > 0; i++)
		check(event_base_loop(st.base, EVLOOP_NONBLOCK) >= 0);
	check(http_server_connections(st.srv) == 0 && http_server_pending(st.srv) == 0);
	http_server_free(st.srv);
	st.srv = NULL;
	/* libevent 2.1 closes a freed bufferevent's fd in its finalizers, on the next pass. */
	check(event_base_loop(st.base, EVLOOP_NONBLOCK) >= 0);
	check(st.late_req == NULL && st.heads == st.answers + st.aborts);
	check(fcntl(sv[0], F_GETFD) < 0 && errno == EBADF);
	return 0;
}
