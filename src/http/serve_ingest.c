/*
 * http_ingest.c - POST /v1/data_sources/ingest: from a validated body to a 204.
 *
 * The body is validated (ingest.c), the source resolved in the catalog snapshot,
 * and the packed records copied into one entry of this worker's lane. The request
 * then waits, without blocking the loop, until the writer's committed position
 * passes the entry: 204 if the entry committed, 500 if the commit failed. When the
 * lane is full the request waits for room up to enqueue_timeout_ms, then gets 503.
 *
 * Ownership: each waiting request has one struct ack_wait, owned by the worker's
 * acks or room list; the request points to it (req_ctx.wait) until answered.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "temporis/base/log.h"
#include "temporis/daemon/worker.h"

#define RETRY_AFTER "Retry-After: 1\r\n"
#define INFLATE_CHUNK (64u * 1024u)
#define GZIP_WINDOW_BITS (15 + 16)    /* zlib: gzip wrapper only */

struct ack_wait {
	struct ack_wait *next;
	struct http_req *req;          /* NULL once the client went away */
	uint64_t start, end;           /* lane positions of the published entry */
	/* Waiting for room only: a private copy of the entry to publish. */
	uint8_t *entry;
	uint32_t entry_len;
	uint64_t deadline_ms;
};

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void list_push(struct ack_wait **head, struct ack_wait **tail, struct ack_wait *a)
{
	a->next = NULL;
	if (*tail)
		(*tail)->next = a;
	else
		*head = a;
	*tail = a;
}

static struct ack_wait *list_pop(struct ack_wait **head, struct ack_wait **tail)
{
	struct ack_wait *a = *head;

	if (a) {
		*head = a->next;
		if (*head == NULL)
			*tail = NULL;
	}
	return a;
}

static void wait_answer(struct ack_wait *a, int status)
{
	struct http_req *req = a->req;

	if (req == NULL)
		return;
	((struct req_ctx *)req->user)->wait = NULL;
	a->req = NULL;
	if (status == 204)
		worker_respond(req, 204, NULL, NULL, NULL, 0);
	else if (status == 503)
		worker_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
	else
		worker_respond_error(req, 500, "Internal server error.", NULL);
}

/* Decompress a gzip body into the worker's buffer, at most max_body_bytes. */
static int inflate_body(struct worker *w, const uint8_t *in, size_t len, size_t *out_len)
{
	z_stream zs = { 0 };
	size_t limit = w->cfg->max_body_bytes;
	int rc;

	if (inflateInit2(&zs, GZIP_WINDOW_BITS) != Z_OK)
		return -1;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	*out_len = 0;
	do {
		if (w->inflate_cap - *out_len < INFLATE_CHUNK) {
			size_t cap = w->inflate_cap ? w->inflate_cap * 2 : INFLATE_CHUNK * 4;
			uint8_t *grown = realloc(w->inflate_buf, cap);

			if (grown == NULL) {
				inflateEnd(&zs);
				return -1;
			}
			w->inflate_buf = grown;
			w->inflate_cap = cap;
		}
		zs.next_out = w->inflate_buf + *out_len;
		zs.avail_out = (uInt)(w->inflate_cap - *out_len);
		rc = inflate(&zs, Z_NO_FLUSH);
		*out_len = zs.total_out;
		if (*out_len > limit) {
			inflateEnd(&zs);
			return 413;
		}
	} while (rc == Z_OK);
	inflateEnd(&zs);
	return rc == Z_STREAM_END && zs.avail_in == 0 ? 0 : 400;
}

static void notify_writer(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->fds->writer_wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("wake the writer: %s", strerror(errno));
}

/* Copy a finished entry into the lane; false if there is no room now. */
static bool publish(struct worker *w, struct ack_wait *a, const struct entry_hdr *h,
		    const uint8_t *payload)
{
	struct entry_hdr *dst = ring_reserve(&w->prod, h->len, &a->start);

	if (dst == NULL) {
		/* The lane may have published a pad to wrap around: the writer must
		 * consume it before the room it frees can be seen. */
		notify_writer(w);
		return false;
	}
	*dst = *h;
	dst->version = atomic_fetch_add_explicit(&w->shm->hdr->next_version, 1,
						 memory_order_relaxed);
	atomic_store_explicit(&dst->status, ENTRY_PENDING, memory_order_relaxed);
	memcpy(dst + 1, payload, h->payload_len);
	a->end = ring_publish(&w->prod);
	list_push(&w->acks_head, &w->acks_tail, a);
	notify_writer(w);
	return true;
}

static void arm_room_timer(struct worker *w)
{
	uint64_t now = monotonic_ms(), wait;
	struct timeval tv;

	if (w->room_head == NULL) {
		evtimer_del(w->room_timer);
		return;
	}
	wait = w->room_head->deadline_ms > now ? w->room_head->deadline_ms - now : 0;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)((wait % 1000) * 1000);
	evtimer_add(w->room_timer, &tv);
}

/* Keep a copy of the entry and wait for the writer to free room in the lane. */
static void wait_for_room(struct worker *w, struct http_req *req, struct ack_wait *a,
			  const struct entry_hdr *h, const uint8_t *payload)
{
	a->entry = malloc(h->len);
	if (a->entry == NULL) {
		free(a);
		worker_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	memcpy(a->entry, h, sizeof(*h));
	memcpy(a->entry + sizeof(*h), payload, h->payload_len);
	a->entry_len = h->len;
	a->deadline_ms = monotonic_ms() + w->cfg->enqueue_timeout_ms;
	list_push(&w->room_head, &w->room_tail, a);
	arm_room_timer(w);
}

static void enqueue(struct worker *w, struct http_req *req, const struct ingest_result *res,
		    uint32_t source_id)
{
	struct ack_wait *a = calloc(1, sizeof(*a));
	struct entry_hdr h = {
		.magic = ENTRY_MAGIC,
		.len = entry_size((uint32_t)res->payload_len),
		.source_id = source_id,
		.nrecords = res->nrecords,
		.payload_len = (uint32_t)res->payload_len,
	};

	if (a == NULL) {
		worker_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	a->req = req;
	((struct req_ctx *)req->user)->wait = a;
	/* Requests already waiting for room go first: no overtaking. */
	if (w->room_head == NULL && publish(w, a, &h, res->payload))
		return;
	if (w->cfg->enqueue_timeout_ms == 0) {
		((struct req_ctx *)req->user)->wait = NULL;
		free(a);
		atomic_fetch_add_explicit(&w->shm->hdr->stats.busy_rejections, 1,
					  memory_order_relaxed);
		worker_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
		return;
	}
	wait_for_room(w, req, a, &h, res->payload);
}

static bool body_of(struct worker *w, struct http_req *req, const char **body, size_t *len)
{
	const char *enc = http_header(req, "Content-Encoding");
	int rc;

	*body = (const char *)req->body;
	*len = req->body_len;
	if (enc == NULL || strcasecmp(enc, "gzip") != 0)
		return true;
	rc = inflate_body(w, req->body, req->body_len, len);
	if (rc == 0) {
		*body = (const char *)w->inflate_buf;
		return true;
	}
	if (rc == 413)
		worker_respond_error(req, 413, "Request body too large.", NULL);
	else if (rc == 400)
		worker_respond_error(req, 400, "Request body is not valid gzip.", NULL);
	else
		worker_respond_error(req, 500, "Internal server error.", NULL);
	return false;
}

void ingest_on_body(struct worker *w, struct http_req *req)
{
	struct req_ctx *ctx = req->user;
	struct ingest_limits lim = {
		.max_records = w->cfg->max_records_per_request,
		.max_payload = ring_max_entry(&w->prod) - sizeof(struct entry_hdr),
	};
	struct ingest_result res;
	const struct catalog_source *src;
	const char *body;
	size_t len;
	int rc;

	if (!body_of(w, req, &body, &len))
		return;
	rc = ingest_parse(w->parser, body, len, &lim, &res);
	if (rc < 0) {
		worker_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	if (rc != 0) {
		worker_respond_error(req, rc, res.detail, NULL);
		return;
	}
	worker_refresh_catalog(w);
	src = w->snap ? catalog_snap_source(w->snap, ctx->account_id, res.data_source,
					    res.data_source_len)
		      : NULL;
	if (src == NULL) {
		worker_respond_error(req, 404, "Data source not found.", NULL);
		return;
	}
	if (src->archived) {
		worker_respond_error(req, 409, "Data source is archived.", NULL);
		return;
	}
	if (res.nrecords == 0) {
		worker_respond(req, 204, NULL, NULL, NULL, 0);
		return;
	}
	enqueue(w, req, &res, src->id);
}

void ingest_on_abort(struct worker *w, struct http_req *req)
{
	struct req_ctx *ctx = req->user;

	/* The entry (if published) still commits; nobody is told. */
	ctx->wait->req = NULL;
	ctx->wait = NULL;
}

/* Push requests that waited for room, oldest first, while the lane has room. */
static void drain_room(struct worker *w)
{
	struct ack_wait *a;

	while ((a = list_pop(&w->room_head, &w->room_tail)) != NULL) {
		const struct entry_hdr *h = (const struct entry_hdr *)a->entry;

		if (a->req != NULL && !publish(w, a, h, a->entry + sizeof(*h))) {
			/* Still no room: back to the front, order kept. */
			a->next = w->room_head;
			w->room_head = a;
			if (w->room_tail == NULL)
				w->room_tail = a;
			break;
		}
		free(a->entry);
		a->entry = NULL;
		if (a->req == NULL)
			free(a);  /* the client left while waiting; never published */
	}
	arm_room_timer(w);
}

void ingest_on_commit(struct worker *w)
{
	uint64_t committed = ring_committed(&w->prod);

	while (w->acks_head != NULL && w->acks_head->end <= committed) {
		struct ack_wait *a = list_pop(&w->acks_head, &w->acks_tail);
		const struct entry_hdr *h = ring_entry_at(&w->prod, a->start);
		uint32_t status = atomic_load_explicit(&h->status, memory_order_acquire);

		wait_answer(a, status == ENTRY_COMMITTED ? 204 : 500);
		free(a);
	}
	/* Every status below committed has been read: the space can be reused. */
	ring_release(&w->prod, committed);
	drain_room(w);
	worker_check_drained(w);
}

void ingest_on_room_timer(struct worker *w)
{
	uint64_t now = monotonic_ms();

	while (w->room_head != NULL && w->room_head->deadline_ms <= now) {
		struct ack_wait *a = list_pop(&w->room_head, &w->room_tail);

		atomic_fetch_add_explicit(&w->shm->hdr->stats.busy_rejections, 1,
					  memory_order_relaxed);
		wait_answer(a, 503);
		free(a->entry);
		free(a);
	}
	arm_room_timer(w);
	worker_check_drained(w);
}

void ingest_fail_all(struct worker *w)
{
	while (w->room_head != NULL) {
		struct ack_wait *a = list_pop(&w->room_head, &w->room_tail);

		wait_answer(a, 503);
		free(a->entry);
		free(a);
	}
}

size_t ingest_waiting(const struct worker *w)
{
	size_t n = 0;

	for (const struct ack_wait *a = w->acks_head; a; a = a->next)
		n++;
	for (const struct ack_wait *a = w->room_head; a; a = a->next)
		n++;
	return n;
}
