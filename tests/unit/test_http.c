/*
 * test_http.c - the HTTP/1.1 server layer, byte for byte, over real loopback sockets.
 *
 * The server runs on the test's event loop in the main thread; a scripted client runs in
 * a thread with blocking sockets, records what it read, and the main thread asserts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "temporis/http/server.h"

#define MAX_RESP 4
#define RESP_CAP 8192
#define CLIENT_RCV_TIMEOUT_S 5
#define WATCHDOG_S 15
#define DEFAULT_GRACE_MS 50
#define ASYNC_DELAY_MS 100
#define HOLD_DELAY_MS 300
#define SLOW_BYTE_MS 200
#define SLOW_MAX_BYTES 40
#define BIG_BODY (1024 * 1024)
#define SMALL_MAX_BODY 1024

struct fixture {
	struct event_base *base;
	struct http_server *srv;
	struct http_limits lim;
	int lfd;
	uint16_t port;
	int done_pipe[2];
	struct event *done_ev, *watchdog, *late;
	struct timeval grace;
	void (*scenario)(struct fixture *f);
	/* Written by the client thread, read by the main thread after the join. */
	char resp[MAX_RESP][RESP_CAP];
	long resp_len[MAX_RESP];
	int eof[MAX_RESP];               /* 1 EOF, 0 data, -1 error or timeout */
	double elapsed;
	int client_err;
	/* Handler observations (main thread only). */
	int heads, bodies, aborts, late_responds;
	struct http_req *late_req;
	size_t pending_at_end, conns_at_end;
	/* Streamed responses (main thread only). */
	struct http_req *stream_req;
	int stream_step, stream_closes, more_after_close;
	size_t stream_total;             /* /stream-big: bytes to make; 0: forever */
	size_t stream_made;              /* bytes given to http_stream_write */
	size_t made_before_read;         /* stream_made when the client started to read */
	double stream_t0, close_elapsed;
	volatile int client_reading;     /* set by the client thread */
};

/* ---- the handler under test ------------------------------------------ */

static void arm_late(struct fixture *f, struct http_req *req, long ms)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = ms * 1000 };

	f->late_req = req;
	assert_int_equal(evtimer_add(f->late, &tv), 0);
}

static void late_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	if (!f->late_req)
		return;
	f->late_responds++;
	http_respond(f->late_req, 200, "text/plain", NULL, "late", 4);
	f->late_req = NULL;
}

/* ---- streamed responses ---- */

#define STREAM_PIECE (64 * 1024)
static char stream_piece[STREAM_PIECE];
static double now_s(void);

static const char *const small_chunks[] = { "hello", "chunked", "world!" };
#define SMALL_CHUNKS (sizeof(small_chunks) / sizeof(small_chunks[0]))

static void stream_more(struct http_req *req, void *arg)
{
	struct fixture *f = arg;

	if (f->stream_req == NULL) {
		f->more_after_close++;
		return;
	}
	if (f->client_reading && f->made_before_read == 0)
		f->made_before_read = f->stream_made;
	if (strcmp(req->path, "/stream") == 0) {
		if ((size_t)f->stream_step == SMALL_CHUNKS) {
			f->stream_req = NULL;
			http_stream_end(req);
			return;
		}
		f->stream_made += strlen(small_chunks[f->stream_step]);
		http_stream_write(req, small_chunks[f->stream_step],
				  strlen(small_chunks[f->stream_step]));
		f->stream_step++;
		return;
	}
	if (strcmp(req->path, "/stream-abort") == 0) {
		if (f->stream_step++ == 0) {
			http_stream_write(req, "partial", 7);
			return;
		}
		f->stream_req = NULL;
		http_stream_abort(req);
		return;
	}
	if (f->stream_total > 0 && f->stream_made >= f->stream_total) {
		f->stream_req = NULL;
		http_stream_end(req);
		return;
	}
	f->stream_made += STREAM_PIECE;
	http_stream_write(req, stream_piece, STREAM_PIECE);
}

static void stream_close_cb(struct http_req *req, void *arg)
{
	struct fixture *f = arg;

	f->stream_closes++;
	f->close_elapsed = now_s() - f->stream_t0;
	f->stream_req = NULL;
}

static const struct http_stream_ops stream_ops = {
	.on_more = stream_more, .on_close = stream_close_cb,
};

static void stream_begin(struct fixture *f, struct http_req *req)
{
	memset(stream_piece, 'x', sizeof(stream_piece));
	f->stream_t0 = now_s();
	if (http_stream_start(req, 200, "text/plain", NULL, &stream_ops, f) < 0)
		return;
	f->stream_req = req;
	stream_more(req, f);             /* the first piece right away, as a producer does */
}

static void on_head(struct http_req *req, void *arg)
{
	struct fixture *f = arg;

	f->heads++;
	if (strcmp(req->path, "/early") == 0)
		http_respond_error(req, 401, "Missing access token.", NULL);
}

static void on_body(struct http_req *req, void *arg)
{
	struct fixture *f = arg;

	f->bodies++;
	if (strcmp(req->path, "/hello") == 0)
		http_respond(req, 200, "text/plain", NULL, "hello", 5);
	else if (strcmp(req->path, "/echo") == 0)
		http_respond(req, 200, "application/octet-stream", NULL, req->body, req->body_len);
	else if (strcmp(req->path, "/stop") == 0) {
		http_server_stop_accepting(f->srv);
		http_respond(req, 200, "text/plain", NULL, "hello", 5);
	} else if (strcmp(req->path, "/nocontent") == 0)
		http_respond(req, 204, NULL, NULL, NULL, 0);
	else if (strcmp(req->path, "/async") == 0)
		arm_late(f, req, ASYNC_DELAY_MS);
	else if (strcmp(req->path, "/hold") == 0)
		arm_late(f, req, HOLD_DELAY_MS);
	else if (strncmp(req->path, "/stream", strlen("/stream")) == 0)
		stream_begin(f, req);
	else
		http_respond_error(req, 404, "Not found.", NULL);
}

static void on_abort(struct http_req *req, void *arg)
{
	struct fixture *f = arg;

	f->aborts++;
	if (req == f->late_req) {
		f->late_req = NULL;
		event_del(f->late);
	}
}

static const struct http_handler_ops ops = {
	.on_head = on_head, .on_body = on_body, .on_abort = on_abort,
};

/* ---- the client side (runs in its own thread: no cmocka asserts here) --- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cli_connect(struct fixture *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(f->port) };
	struct timeval tv = { .tv_sec = CLIENT_RCV_TIMEOUT_S };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		f->client_err = errno;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int cli_send(struct fixture *f, int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			f->client_err = errno;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int cli_sends(struct fixture *f, int fd, const char *s)
{
	return cli_send(f, fd, s, strlen(s));
}

/* Read exactly one response into f->resp[i]; no body for HEAD, 1xx, 204. */
static void cli_read_response(struct fixture *f, int fd, int i, bool head_only)
{
	char *buf = f->resp[i];
	size_t len = 0, body = 0;
	const char *cl;

	while (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) {
		if (len + 1 >= RESP_CAP || recv(fd, buf + len, 1, 0) != 1)
			goto fail;
		len++;
	}
	buf[len] = '\0';
	cl = strstr(buf, "\r\nContent-Length: ");
	if (cl && !head_only)
		body = strtoul(cl + strlen("\r\nContent-Length: "), NULL, 10);
	if (len + body >= RESP_CAP)
		goto fail;
	while (body > 0) {
		ssize_t n = recv(fd, buf + len, body, 0);

		if (n <= 0)
			goto fail;
		len += (size_t)n;
		body -= (size_t)n;
	}
	buf[len] = '\0';
	f->resp_len[i] = (long)len;
	return;
fail:
	f->client_err = errno ? errno : EPROTO;
	f->resp_len[i] = -1;
}

static void cli_read_eof(struct fixture *f, int fd, int i)
{
	char ch;
	ssize_t n = recv(fd, &ch, 1, 0);

	f->eof[i] = n == 0 ? 1 : n > 0 ? 0 : -1;
}

static void *client_main(void *arg)
{
	struct fixture *f = arg;
	char one = 1;

	f->scenario(f);
	if (write(f->done_pipe[1], &one, 1) != 1)
		f->client_err = errno;
	return NULL;
}

/* ---- fixture -------------------------------------------------------------- */

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	event_base_loopexit(f->base, &f->grace);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	event_base_loopbreak(f->base);
}

static struct fixture *fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->lim.max_header_bytes = 8192;
	f->lim.max_body_bytes = 16 * 1024 * 1024;
	f->lim.idle_timeout_s = 5;
	f->lim.max_connections = 16;
	f->grace.tv_usec = DEFAULT_GRACE_MS * 1000;
	return f;
}

static void fixture_listen(struct fixture *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 16), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &slen), 0);
	f->port = ntohs(sa.sin_port);
}

/* Serve until the client script ends (plus grace), then tear the server down. */
static void fixture_run(struct fixture *f, void (*scenario)(struct fixture *f))
{
	struct timeval wd = { .tv_sec = WATCHDOG_S };
	pthread_t th;

	fixture_listen(f);
	assert_int_equal(pipe(f->done_pipe), 0);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->srv = http_server_new(f->base, f->lfd, &f->lim, &ops, f);
	assert_non_null(f->srv);
	f->done_ev = event_new(f->base, f->done_pipe[0], EV_READ, done_cb, f);
	f->watchdog = evtimer_new(f->base, watchdog_cb, f);
	f->late = evtimer_new(f->base, late_cb, f);
	assert_true(f->done_ev && f->watchdog && f->late);
	assert_int_equal(event_add(f->done_ev, NULL), 0);
	assert_int_equal(evtimer_add(f->watchdog, &wd), 0);
	f->scenario = scenario;
	assert_int_equal(pthread_create(&th, NULL, client_main, f), 0);
	assert_int_equal(event_base_dispatch(f->base), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	f->pending_at_end = http_server_pending(f->srv);
	f->conns_at_end = http_server_connections(f->srv);
	http_server_free(f->srv);
	event_free(f->done_ev);
	event_free(f->watchdog);
	event_free(f->late);
	event_base_free(f->base);
	close(f->done_pipe[0]);
	close(f->done_pipe[1]);
	close(f->lfd);
}

static void expect_json(const struct fixture *f, int i, const char *status,
			const char *detail, const char *headers)
{
	char want[RESP_CAP], body[RESP_CAP / 4];

	snprintf(body, sizeof(body), "{\"detail\":\"%s\"}", detail);
	snprintf(want, sizeof(want),
		 "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
		 status, strlen(body), headers, body);
	assert_string_equal(f->resp[i], want);
}

#define HELLO_200 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
#define GET_HELLO "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
#define CLOSE "Connection: close\r\n"

/* ---- scenarios and tests --------------------------------------------------- */

static void sc_one_get(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, GET_HELLO) < 0)
		return;
	cli_read_response(f, fd, 0, false);
	close(fd);
}

static void test_get_answers_200_with_exact_bytes(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_one_get);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], HELLO_200);
	assert_int_equal(f->heads, 1);
	assert_int_equal(f->bodies, 1);
	assert_int_equal(f->pending_at_end, 0);
	free(f);
}

static void sc_keep_alive(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0)
		return;
	for (int i = 0; i < 2; i++) {
		if (cli_sends(f, fd, GET_HELLO) < 0)
			break;
		cli_read_response(f, fd, i, false);
	}
	close(fd);
}

static void test_keep_alive_serves_two_requests_on_one_connection(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_keep_alive);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], HELLO_200);
	assert_string_equal(f->resp[1], HELLO_200);
	free(f);
}

static void sc_pipelined(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, GET_HELLO
				"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc") < 0)
		return;
	cli_read_response(f, fd, 0, false);
	cli_read_response(f, fd, 1, false);
	close(fd);
}

static void test_pipelined_requests_are_answered_in_order(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_pipelined);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], HELLO_200);
	assert_string_equal(f->resp[1], "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
					"\r\nContent-Length: 3\r\n\r\nabc");
	free(f);
}

static void sc_expect_continue(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
				"Expect: 100-Continue\r\n\r\n") < 0)
		return;
	cli_read_response(f, fd, 0, false);
	if (cli_sends(f, fd, "hello") == 0)
		cli_read_response(f, fd, 1, false);
	close(fd);
}

static void test_expect_100_continue_sends_interim_then_final(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_expect_continue);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], "HTTP/1.1 100 Continue\r\n\r\n");
	assert_string_equal(f->resp[1], "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
					"\r\nContent-Length: 5\r\n\r\nhello");
	free(f);
}

static void sc_chunked(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "POST /echo HTTP/1.1\r\nHost: t\r\n"
				"Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n") < 0)
		return;
	usleep(20 * 1000);
	if (cli_sends(f, fd, "6;ext=1\r\n world\r\nA\r\n, chunked!\n0\r\nX-Trailer: 1\r\n\r\n") ==
	    0)
		cli_read_response(f, fd, 0, false);
	if (cli_sends(f, fd, GET_HELLO) == 0)
		cli_read_response(f, fd, 1, false);
	close(fd);
}

static void test_chunked_body_is_reassembled(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_chunked);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
					"\r\nContent-Length: 21\r\n\r\nhello world, chunked!");
	assert_string_equal(f->resp[1], HELLO_200);
	free(f);
}

static void sc_chunked_too_large(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				"400\r\n") < 0)
		return;
	cli_read_response(f, fd, 0, false);
	cli_read_eof(f, fd, 0);
	close(fd);
}

static void test_chunked_body_over_max_is_413_and_close(void **state)
{
	struct fixture *f = fixture_new();

	f->lim.max_body_bytes = 1000;
	fixture_run(f, sc_chunked_too_large);
	assert_int_equal(f->client_err, 0);
	expect_json(f, 0, "413 Content Too Large", "Request body too large.", CLOSE);
	assert_int_equal(f->eof[0], 1);
	assert_int_equal(f->aborts, 1);
	free(f);
}

static void sc_too_large_expect(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576"
				"\r\nExpect: 100-continue\r\n\r\n") < 0)
		return;
	cli_read_response(f, fd, 0, false);
	cli_read_eof(f, fd, 0);
	close(fd);
}

static void test_body_over_max_with_expect_is_413_without_continue(void **state)
{
	struct fixture *f = fixture_new();

	f->lim.max_body_bytes = SMALL_MAX_BODY;
	fixture_run(f, sc_too_large_expect);
	assert_int_equal(f->client_err, 0);
	expect_json(f, 0, "413 Content Too Large", "Request body too large.", CLOSE);
	assert_int_equal(f->eof[0], 1);
	assert_int_equal(f->bodies, 0);
	free(f);
}

/* Sends a whole large body before reading: without a lingering close this gets an RST. */
static void send_big_then_read(struct fixture *f, const char *path)
{
	char head[256];
	char *body = malloc(BIG_BODY);
	int fd = cli_connect(f);

	if (!body || fd < 0)
		goto out;
	memset(body, 'x', BIG_BODY);
	snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n",
		 path, BIG_BODY);
	if (cli_sends(f, fd, head) < 0 || cli_send(f, fd, body, BIG_BODY) < 0)
		goto out;
	cli_read_response(f, fd, 0, false);
	cli_read_eof(f, fd, 0);
out:
	if (fd >= 0)
		close(fd);
	free(body);
}

static void sc_too_large_no_expect(struct fixture *f)
{
	send_big_then_read(f, "/echo");
}

static void test_client_reads_413_after_sending_large_body_without_expect(void **state)
{
	struct fixture *f = fixture_new();

	f->lim.max_body_bytes = SMALL_MAX_BODY;
	fixture_run(f, sc_too_large_no_expect);
	assert_int_equal(f->client_err, 0);
	expect_json(f, 0, "413 Content Too Large", "Request body too large.", CLOSE);
	assert_int_equal(f->eof[0], 1);
	assert_int_equal(f->heads, 1);
	assert_int_equal(f->bodies, 0);
	assert_int_equal(f->aborts, 1);
	free(f);
}

static void sc_early(struct fixture *f)
{
	send_big_then_read(f, "/early");
}

static void test_answer_from_on_head_is_read_despite_pending_body(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_early);
	assert_int_equal(f->client_err, 0);
	expect_json(f, 0, "401 Unauthorized", "Missing access token.", CLOSE);
	assert_int_equal(f->eof[0], 1);
	assert_int_equal(f->bodies, 0);
	assert_int_equal(f->aborts, 0);
	free(f);
}

static void sc_send_and_read(struct fixture *f, const char *req)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, req) < 0)
		return;
	cli_read_response(f, fd, 0, false);
	cli_read_eof(f, fd, 0);
	close(fd);
}

static void sc_header_too_large(struct fixture *f)
{
	char req[4096];

	memset(req, 'a', sizeof(req));
	memcpy(req, "GET /hello HTTP/1.1\r\nX-Big: ", strlen("GET /hello HTTP/1.1\r\nX-Big: "));
	strcpy(req + sizeof(req) - 5, "\r\n\r\n");
	sc_send_and_read(f, req);
}

static void test_header_too_large_is_431_json(void **state)
{
	struct fixture *f = fixture_new();

	f->lim.max_header_bytes = 1024;
	fixture_run(f, sc_header_too_large);
	assert_int_equal(f->client_err, 0);
	expect_json(f, 0, "431 Request Header Fields Too Large", "Request header fields too large.",
		    CLOSE);
	assert_int_equal(f->eof[0], 1);
	assert_int_equal(f->heads, 0);
	free(f);
}

static void sc_bad_line(struct fixture *f)
{
	sc_send_and_read(f, "GARBAGE\r\n\r\n");
}

static void test_bad_request_line_is_400_json(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_bad_line);
	assert_int_equal(f->client_err, 0);
	expect_json(f, 0, "400 Bad Request", "Bad request.", CLOSE);
	assert_int_equal(f->eof[0], 1);
	assert_int_equal(f->heads, 0);
	free(f);
}

static void sc_http2(struct fixture *f)
{
	sc_send_and_read(f, "GET /hello HTTP/2.0\r\nHost: t\r\n\r\n");
}

static void test_http_2_0_is_505(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_http2);
	assert_int_equal(f->client_err, 0);
	expect_json(f, 0, "505 HTTP Version Not Supported", "HTTP version not supported.", CLOSE);
	free(f);
}

static void sc_te_gzip(struct fixture *f)
{
	sc_send_and_read(f, "POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
}

static void test_transfer_encoding_gzip_is_501(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_te_gzip);
	assert_int_equal(f->client_err, 0);
	expect_json(f, 0, "501 Not Implemented", "Transfer-Encoding not supported.", CLOSE);
	free(f);
}

static void sc_async(struct fixture *f)
{
	int fd = cli_connect(f);
	double t0 = now_s();

	if (fd < 0 || cli_sends(f, fd, "GET /async HTTP/1.1\r\n\r\n") < 0)
		return;
	cli_read_response(f, fd, 0, false);
	f->elapsed = now_s() - t0;
	if (cli_sends(f, fd, GET_HELLO) == 0)
		cli_read_response(f, fd, 1, false);
	close(fd);
}

static void test_async_response_from_a_timer_keeps_connection(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_async);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					"Content-Length: 4\r\n\r\nlate");
	assert_true(f->elapsed >= 0.09);
	assert_string_equal(f->resp[1], HELLO_200);
	assert_int_equal(f->late_responds, 1);
	free(f);
}

static void sc_reset_while_handler_owns(struct fixture *f)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "GET /hold HTTP/1.1\r\n\r\n") < 0)
		return;
	usleep(50 * 1000);
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		f->client_err = errno;
	close(fd);
}

static void test_client_reset_calls_on_abort_once_and_no_respond(void **state)
{
	struct fixture *f = fixture_new();

	f->grace.tv_usec = (HOLD_DELAY_MS + 200) * 1000;
	fixture_run(f, sc_reset_while_handler_owns);
	assert_int_equal(f->client_err, 0);
	assert_int_equal(f->bodies, 1);
	assert_int_equal(f->aborts, 1);
	assert_int_equal(f->late_responds, 0);
	assert_int_equal(f->pending_at_end, 0);
	assert_int_equal(f->conns_at_end, 0);
	free(f);
}

/* At the limit, an idle keep-alive connection is closed to let a new client in. */
static void sc_max_connections_evicts_idle(struct fixture *f)
{
	int a = cli_connect(f), b;

	if (a < 0 || cli_sends(f, a, GET_HELLO) < 0)
		return;
	cli_read_response(f, a, 0, false);
	b = cli_connect(f);
	if (b >= 0 && cli_sends(f, b, GET_HELLO) == 0)
		cli_read_response(f, b, 1, false);
	cli_read_eof(f, a, 0);
	if (b >= 0)
		close(b);
	close(a);
}

static void test_connection_over_max_closes_the_idle_one(void **state)
{
	struct fixture *f = fixture_new();

	f->lim.max_connections = 1;
	fixture_run(f, sc_max_connections_evicts_idle);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], HELLO_200);
	assert_string_equal(f->resp[1], HELLO_200);
	assert_int_equal(f->eof[0], 1);
	free(f);
}

/* A connection with a request in progress is never closed for room: the new one gets 503. */
static void sc_max_connections(struct fixture *f)
{
	int a = cli_connect(f), b;

	if (a < 0 || cli_sends(f, a, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\na") < 0)
		return;
	usleep(50 * 1000);  /* the head is in: the request is in progress */
	b = cli_connect(f);
	if (b >= 0) {
		cli_read_response(f, b, 1, false);
		cli_read_eof(f, b, 1);
		close(b);
	}
	if (cli_sends(f, a, "bc") == 0)
		cli_read_response(f, a, 2, false);
	close(a);
}

static void test_connection_over_max_gets_503_while_first_is_served(void **state)
{
	struct fixture *f = fixture_new();

	f->lim.max_connections = 1;
	fixture_run(f, sc_max_connections);
	assert_int_equal(f->client_err, 0);
	expect_json(f, 1, "503 Service Unavailable", "Server is busy, retry later.",
		    CLOSE "Retry-After: 1\r\n");
	assert_int_equal(f->eof[1], 1);
	assert_non_null(strstr(f->resp[2], "\r\n\r\nabc"));
	free(f);
}

static void sc_idle(struct fixture *f)
{
	int fd = cli_connect(f);
	double t0;

	if (fd < 0 || cli_sends(f, fd, GET_HELLO) < 0)
		return;
	cli_read_response(f, fd, 0, false);
	t0 = now_s();
	cli_read_eof(f, fd, 0);
	f->elapsed = now_s() - t0;
	close(fd);
}

static void test_idle_keep_alive_connection_is_closed_silently(void **state)
{
	struct fixture *f = fixture_new();

	f->lim.idle_timeout_s = 1;
	fixture_run(f, sc_idle);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], HELLO_200);
	assert_int_equal(f->eof[0], 1);
	assert_true(f->elapsed > 0.8 && f->elapsed < 2.5);
	free(f);
}

static void sc_slowloris(struct fixture *f)
{
	const char *start = "GET /hello HTTP/1.1\r\nX-Slow: ";
	int fd = cli_connect(f);
	double t0 = now_s();

	if (fd < 0)
		return;
	for (size_t i = 0; i < SLOW_MAX_BYTES; i++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char ch = i < strlen(start) ? start[i] : 'a';

		if (cli_send(f, fd, &ch, 1) < 0 || poll(&pfd, 1, SLOW_BYTE_MS) != 0)
			break;
	}
	f->elapsed = now_s() - t0;
	cli_read_response(f, fd, 0, false);
	cli_read_eof(f, fd, 0);
	close(fd);
}

static void test_slowloris_is_cut_at_the_request_deadline(void **state)
{
	struct fixture *f = fixture_new();

	f->lim.idle_timeout_s = 1;
	fixture_run(f, sc_slowloris);
	assert_int_equal(f->client_err, 0);
	expect_json(f, 0, "408 Request Timeout", "Request timeout.", CLOSE);
	assert_int_equal(f->eof[0], 1);
	assert_true(f->elapsed > 0.8 && f->elapsed < 1.8);
	assert_int_equal(f->heads, 0);
	free(f);
}

static void sc_head_then_get(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "HEAD /hello HTTP/1.1\r\n\r\n") < 0)
		return;
	cli_read_response(f, fd, 0, true);
	if (cli_sends(f, fd, GET_HELLO) == 0)
		cli_read_response(f, fd, 1, false);
	close(fd);
}

static void test_head_has_length_but_no_body(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_head_then_get);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0],
			    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
	assert_string_equal(f->resp[1], HELLO_200);
	free(f);
}

static void sc_no_content(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "GET /nocontent HTTP/1.1\r\n\r\n" GET_HELLO) < 0)
		return;
	cli_read_response(f, fd, 0, false);
	cli_read_response(f, fd, 1, false);
	close(fd);
}

static void test_204_has_no_content_length_nor_body(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_no_content);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], "HTTP/1.1 204 No Content\r\n\r\n");
	assert_string_equal(f->resp[1], HELLO_200);
	free(f);
}

static void sc_http10(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") < 0)
		return;
	cli_read_response(f, fd, 0, false);
	if (cli_sends(f, fd, "GET /hello HTTP/1.0\r\n\r\n") == 0)
		cli_read_response(f, fd, 1, false);
	cli_read_eof(f, fd, 1);
	close(fd);
}

static void test_http_1_0_keeps_alive_only_when_asked(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_http10);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					"Content-Length: 5\r\nConnection: keep-alive\r\n\r\nhello");
	assert_string_equal(f->resp[1], "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					"Content-Length: 5\r\nConnection: close\r\n\r\nhello");
	assert_int_equal(f->eof[1], 1);
	free(f);
}

static void sc_bare_lf(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "\r\nGET /hello HTTP/1.1\nHost: t\n\n") < 0)
		return;
	cli_read_response(f, fd, 0, false);
	close(fd);
}

static void test_bare_lf_line_ends_are_tolerated(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_bare_lf);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], HELLO_200);
	free(f);
}

static void sc_stop(struct fixture *f)
{
	int a = cli_connect(f), b = cli_connect(f);

	if (a < 0 || b < 0 || cli_sends(f, a, GET_HELLO) < 0)
		return;
	cli_read_response(f, a, 0, false);
	if (cli_sends(f, b, "GET /stop HTTP/1.1\r\n\r\n") < 0)
		return;
	cli_read_response(f, b, 1, false);
	cli_read_eof(f, b, 1);
	cli_read_eof(f, a, 0);
	close(a);
	close(b);
}

static void test_stop_accepting_closes_idle_and_finishes_busy(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_stop);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], HELLO_200);
	assert_int_equal(f->eof[0], 1);
	assert_string_equal(f->resp[1], "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					"Content-Length: 5\r\nConnection: close\r\n\r\nhello");
	assert_int_equal(f->eof[1], 1);
	assert_int_equal(f->conns_at_end, 0);
	free(f);
}

/* Drive the loop until the socketpair client has read the whole response and EOF. */
static long adopt_read_all(struct event_base *base, int fd, char *buf, size_t cap)
{
	double deadline = now_s() + CLIENT_RCV_TIMEOUT_S;
	size_t len = 0;

	while (now_s() < deadline) {
		ssize_t n;

		assert_true(event_base_loop(base, EVLOOP_NONBLOCK) >= 0);
		n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			len += (size_t)n;
		else
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		assert_true(len < cap - 1);
	}
	buf[len] = '\0';
	return (long)len;
}

static void test_adopted_socketpair_is_served_like_an_accepted_client(void **state)
{
	struct fixture *f = fixture_new();
	char resp[RESP_CAP];
	const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\n" CLOSE "\r\n";
	int sv[2];

	fixture_listen(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->srv = http_server_new(f->base, f->lfd, &f->lim, &ops, f);
	assert_non_null(f->srv);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(http_server_adopt(f->srv, sv[0]), 0);
	assert_int_equal(http_server_connections(f->srv), 1);
	assert_int_equal(send(sv[1], req, strlen(req), 0), (ssize_t)strlen(req));
	adopt_read_all(f->base, sv[1], resp, sizeof(resp));
	assert_string_equal(resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			    "Content-Length: 5\r\nConnection: close\r\n\r\nhello");
	assert_int_equal(f->bodies, 1);
	close(sv[1]);
	http_server_free(f->srv);
	event_base_free(f->base);
	close(f->lfd);
	free(f);
}


/* ---- streamed responses ---- */

#define STREAM_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
#define STREAM_BODY "5\r\nhello\r\n7\r\nchunked\r\n6\r\nworld!\r\n0\r\n\r\n"

/* Read into f->resp[i] until it ends with end (or EOF, or the buffer is full). */
static void cli_read_until(struct fixture *f, int fd, int i, const char *end)
{
	size_t len = 0, elen = strlen(end);

	while (len + 1 < RESP_CAP) {
		ssize_t n = recv(fd, f->resp[i] + len, 1, 0);

		if (n <= 0) {
			f->eof[i] = n == 0 ? 1 : -1;
			break;
		}
		len++;
		if (len >= elen && memcmp(f->resp[i] + len - elen, end, elen) == 0)
			break;
	}
	f->resp[i][len] = '\0';
	f->resp_len[i] = (long)len;
}

/* Read and count everything until EOF or an error; the count in resp_len[i]. */
static void cli_drain(struct fixture *f, int fd, int i)
{
	char buf[STREAM_PIECE];
	long total = 0;
	ssize_t n;

	f->client_reading = 1;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		total += n;
	f->eof[i] = n == 0 ? 1 : -1;
	f->resp_len[i] = total;
}

static void sc_stream_then_keep_alive(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n") < 0)
		return;
	cli_read_until(f, fd, 0, "\r\n0\r\n\r\n");
	if (cli_sends(f, fd, GET_HELLO) == 0)
		cli_read_response(f, fd, 1, false);
	close(fd);
}

static void test_stream_is_chunked_with_last_chunk_and_keeps_alive(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_stream_then_keep_alive);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], STREAM_HEAD STREAM_BODY);
	assert_string_equal(f->resp[1], HELLO_200);
	assert_int_equal(f->stream_closes, 0);
	assert_int_equal(f->pending_at_end, 0);
	free(f);
}

static void sc_stream_abort(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "GET /stream-abort HTTP/1.1\r\nHost: t\r\n\r\n") < 0)
		return;
	cli_read_until(f, fd, 0, "\r\n0\r\n\r\n");
	close(fd);
}

static void test_stream_abort_truncates_the_body_and_closes(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_stream_abort);
	assert_int_equal(f->client_err, 0);
	/* No last chunk: a client cannot take the truncated body for a whole one. */
	assert_string_equal(f->resp[0], STREAM_HEAD "7\r\npartial\r\n");
	assert_int_equal(f->eof[0], 1);
	assert_int_equal(f->stream_closes, 0);
	assert_int_equal(f->conns_at_end, 0);
	free(f);
}

static void sc_stream_head(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n" GET_HELLO) < 0)
		return;
	cli_read_response(f, fd, 0, true);
	cli_read_response(f, fd, 1, false);
	close(fd);
}

static void test_stream_to_head_sends_the_head_only(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_stream_head);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], STREAM_HEAD);
	assert_string_equal(f->resp[1], HELLO_200);
	assert_int_equal(f->stream_step, 0);
	free(f);
}

static void sc_stream_http_1_0(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "GET /stream HTTP/1.0\r\n\r\n") < 0)
		return;
	cli_read_until(f, fd, 0, "\r\n0\r\n\r\n");
	close(fd);
}

static void test_stream_to_http_1_0_is_unframed_and_ends_with_the_connection(void **state)
{
	struct fixture *f = fixture_new();

	fixture_run(f, sc_stream_http_1_0);
	assert_int_equal(f->client_err, 0);
	assert_string_equal(f->resp[0], "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					"Connection: close\r\n\r\nhellochunkedworld!");
	assert_int_equal(f->eof[0], 1);
	free(f);
}

#define BIG_STREAM (48u * 1024 * 1024)
#define SLOW_START_MS 300
/* What may sit in kernel socket buffers on loopback, besides our low watermark. */
#define KERNEL_BUFFERS_MAX (12u * 1024 * 1024)

static void sc_stream_slow_reader(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "GET /stream-big HTTP/1.1\r\nHost: t\r\nConnection: close"
				"\r\n\r\n") < 0)
		return;
	usleep(SLOW_START_MS * 1000);
	cli_drain(f, fd, 0);
	close(fd);
}

static void test_stream_is_made_only_as_fast_as_the_client_reads(void **state)
{
	struct fixture *f = fixture_new();

	f->stream_total = BIG_STREAM;
	f->grace.tv_usec = 200 * 1000;
	fixture_run(f, sc_stream_slow_reader);
	assert_int_equal(f->client_err, 0);
	assert_int_equal(f->stream_made, BIG_STREAM);
	assert_true(f->resp_len[0] > (long)BIG_STREAM);
	/* While the client did not read, production stopped at what the buffers hold. */
	assert_true(f->made_before_read > 0);
	assert_true(f->made_before_read < KERNEL_BUFFERS_MAX);
	free(f);
}

static void sc_stream_leave(struct fixture *f)
{
	char buf[STREAM_PIECE];
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "GET /stream-forever HTTP/1.1\r\nHost: t\r\n\r\n") < 0)
		return;
	for (int i = 0; i < 8; i++)
		if (recv(fd, buf, sizeof(buf), 0) <= 0)
			break;
	close(fd);
}

static void test_stream_client_that_leaves_stops_the_producer(void **state)
{
	struct fixture *f = fixture_new();

	f->grace.tv_usec = 300 * 1000;
	fixture_run(f, sc_stream_leave);
	assert_int_equal(f->client_err, 0);
	assert_int_equal(f->stream_closes, 1);
	assert_int_equal(f->more_after_close, 0);
	assert_int_equal(f->pending_at_end, 0);
	assert_int_equal(f->conns_at_end, 0);
	free(f);
}

static void sc_stream_stall(struct fixture *f)
{
	int fd = cli_connect(f);

	if (fd < 0 || cli_sends(f, fd, "GET /stream-forever HTTP/1.1\r\nHost: t\r\n\r\n") < 0)
		return;
	sleep(4);                        /* read nothing */
	close(fd);
}

static void test_stream_to_a_client_that_stops_reading_is_cut(void **state)
{
	struct fixture *f = fixture_new();

	f->lim.idle_timeout_s = 1;
	fixture_run(f, sc_stream_stall);
	assert_int_equal(f->client_err, 0);
	assert_int_equal(f->stream_closes, 1);
	assert_true(f->close_elapsed > 0.9 && f->close_elapsed < 3.5);
	assert_int_equal(f->conns_at_end, 0);
	free(f);
}

static void test_error_body_escapes_json(void **state)
{
	char buf[64];

	assert_int_equal(http_error_body(buf, sizeof(buf), NULL, "a\"b\\c\n"), 26);
	assert_string_equal(buf, "{\"detail\":\"a\\\"b\\\\c\\u000a\"}");
	assert_int_equal(http_error_body(buf, 10, NULL, "too long for this"), -1);
	assert_string_equal(http_reason(404), "Not Found");
	assert_string_equal(http_reason(422), "Unprocessable Content");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_answers_200_with_exact_bytes),
		cmocka_unit_test(test_keep_alive_serves_two_requests_on_one_connection),
		cmocka_unit_test(test_pipelined_requests_are_answered_in_order),
		cmocka_unit_test(test_expect_100_continue_sends_interim_then_final),
		cmocka_unit_test(test_chunked_body_is_reassembled),
		cmocka_unit_test(test_chunked_body_over_max_is_413_and_close),
		cmocka_unit_test(test_body_over_max_with_expect_is_413_without_continue),
		cmocka_unit_test(test_client_reads_413_after_sending_large_body_without_expect),
		cmocka_unit_test(test_answer_from_on_head_is_read_despite_pending_body),
		cmocka_unit_test(test_header_too_large_is_431_json),
		cmocka_unit_test(test_bad_request_line_is_400_json),
		cmocka_unit_test(test_http_2_0_is_505),
		cmocka_unit_test(test_transfer_encoding_gzip_is_501),
		cmocka_unit_test(test_async_response_from_a_timer_keeps_connection),
		cmocka_unit_test(test_client_reset_calls_on_abort_once_and_no_respond),
		cmocka_unit_test(test_connection_over_max_closes_the_idle_one),
		cmocka_unit_test(test_connection_over_max_gets_503_while_first_is_served),
		cmocka_unit_test(test_idle_keep_alive_connection_is_closed_silently),
		cmocka_unit_test(test_slowloris_is_cut_at_the_request_deadline),
		cmocka_unit_test(test_head_has_length_but_no_body),
		cmocka_unit_test(test_204_has_no_content_length_nor_body),
		cmocka_unit_test(test_http_1_0_keeps_alive_only_when_asked),
		cmocka_unit_test(test_bare_lf_line_ends_are_tolerated),
		cmocka_unit_test(test_stop_accepting_closes_idle_and_finishes_busy),
		cmocka_unit_test(test_adopted_socketpair_is_served_like_an_accepted_client),
		cmocka_unit_test(test_error_body_escapes_json),
		cmocka_unit_test(test_stream_is_chunked_with_last_chunk_and_keeps_alive),
		cmocka_unit_test(test_stream_abort_truncates_the_body_and_closes),
		cmocka_unit_test(test_stream_to_head_sends_the_head_only),
		cmocka_unit_test(test_stream_to_http_1_0_is_unframed_and_ends_with_the_connection),
		cmocka_unit_test(test_stream_is_made_only_as_fast_as_the_client_reads),
		cmocka_unit_test(test_stream_client_that_leaves_stops_the_producer),
		cmocka_unit_test(test_stream_to_a_client_that_stops_reading_is_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
