/*
 * serve_ingest.c - POST /v1/data_sources/ingest: from a validated body to a 204.
 *
 * The body is validated (ingest.c), the source resolved in the catalog snapshot, and
 * the packed records copied into one entry of this worker's lane; the request waits,
 * without blocking the loop, for the writer to commit it (204) or fail it (500; 507
 * when the store had no space), or for commit_timeout_ms (then 503: it stays in the
 * lane and may still commit). While the writer says the disk is full (shm
 * disk_state), a valid request is answered 507 before it takes room in the lane.
 */
#include "temporis/http/serve_ingest.h"

#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "temporis/base/clock.h"
#include "temporis/base/log.h"
#include "temporis/data/ingest.h"
#include "temporis/http/handler.h"
#include "temporis/http/serve_metrics.h"
#include "temporis/http/server.h"
#include "temporis/ipc/shm.h"

#define RETRY_AFTER "Retry-After: 1\r\n"
/* A full disk lasts until an operator acts: clients should not hammer meanwhile. */
#define DISK_FULL_RETRY_AFTER "Retry-After: 30\r\n"
#define DISK_FULL_DETAIL                                                                   \
	"Insufficient storage: the server's disk is full and this request was not "       \
	"acknowledged. Retry it later (a retry is safe: writes are upserts); the server "  \
	"resumes by itself once space is freed."
/* The writer did not confirm in commit_timeout_ms: 503, but the entry may commit later. */
#define STATUS_COMMIT_TIMEOUT (-503)
#define COMMIT_TIMEOUT_DETAIL                                                              \
	"The write was not confirmed within commit_timeout_ms; it may still be stored. "  \
	"Retry later: a retry is safe (writes are upserts)."
#define INFLATE_CHUNK (64u * 1024u)
#define INFLATE_INITIAL (4 * INFLATE_CHUNK)
#define GZIP_WINDOW_BITS (15 + 16)    /* zlib: gzip wrapper only */
#define MS_PER_S 1000
#define US_PER_MS 1000

/*
 * One waiting request: published, it waits until the lane's committed position passes
 * its entry, up to commit_timeout_ms (then 503; the wait stays in the list until the
 * position passes, as the lane's space is released in order); when the lane is full
 * it waits for room, up to enqueue_timeout_ms (then 503). Owned by the environment's acks or room list; the request points to it
 * (req_ctx.pending) until answered.
 */
struct ack_wait {
	struct ack_wait *next;
	struct http_req *req;          /* NULL once answered early or the client went away */
	uint64_t start, end;           /* lane positions of the published entry */
	/* Waiting for room only: a private copy of the entry to publish. */
	uint8_t *entry;
	uint32_t entry_len;
	uint64_t deadline_ms;          /* for room, then (published) for the commit */
};

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

/* req_ctx.forget: the client left; the entry (if published) still commits. */
static void wait_forget(void *pending)
{
	struct ack_wait *a = pending;

	a->req = NULL;
}

static void wait_answer(struct ack_wait *a, int status)
{
	struct http_req *req = a->req;

	if (req == NULL)
		return;
	((struct req_ctx *)req->user)->pending = NULL;
	a->req = NULL;
	if (status == 204)
		http_respond(req, 204, NULL, NULL, NULL, 0);
	else if (status == 503)
		http_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
	else if (status == 507)
		http_respond_error(req, 507, DISK_FULL_DETAIL, DISK_FULL_RETRY_AFTER);
	else if (status == STATUS_COMMIT_TIMEOUT)
		http_respond_error(req, 503, COMMIT_TIMEOUT_DETAIL, RETRY_AFTER);
	else
		http_respond_error(req, 500, "Internal server error.", NULL);
}

/* Decompress a gzip body into env->inflate: 0, 413 past max_body_bytes, 400, or -1. */
static int inflate_body(struct handler_env *env, const uint8_t *in, size_t len)
{
	struct buf *out = &env->inflate;
	z_stream zs = { 0 };
	int rc;

	if (inflateInit2(&zs, GZIP_WINDOW_BITS) != Z_OK)
		return -1;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	buf_reset(out);
	do {
		if (buf_reserve(out, INFLATE_CHUNK, INFLATE_INITIAL) < 0) {
			inflateEnd(&zs);
			return -1;
		}
		zs.next_out = (Bytef *)out->data + out->len;
		zs.avail_out = (uInt)(out->cap - out->len);
		rc = inflate(&zs, Z_NO_FLUSH);
		out->len = zs.total_out;
		if (out->len > env->cfg->max_body_bytes) {
			inflateEnd(&zs);
			return 413;
		}
	} while (rc == Z_OK);
	inflateEnd(&zs);
	return rc == Z_STREAM_END && zs.avail_in == 0 ? 0 : 400;
}

static void notify_writer(struct handler_env *env)
{
	uint64_t one = 1;

	if (write(env->writer_wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("wake the writer: %s", strerror(errno));
}

static void arm_timer(struct handler_env *env);

/* Copy a finished entry into the lane; false if there is no room now. */
static bool publish(struct handler_env *env, struct ack_wait *a, const struct entry_hdr *h,
		    const uint8_t *payload)
{
	struct entry_hdr *dst = ring_reserve(&env->prod, h->len, &a->start);

	if (dst == NULL) {
		/* The lane may have published a pad to wrap around: the writer must
		 * consume it before the room it frees can be seen. */
		notify_writer(env);
		return false;
	}
	*dst = *h;
	dst->version = atomic_fetch_add_explicit(&env->shm->hdr->next_version, 1,
						 memory_order_relaxed);
	atomic_store_explicit(&dst->status, ENTRY_PENDING, memory_order_relaxed);
	memcpy(dst + 1, payload, h->payload_len);
	a->end = ring_publish(&env->prod);
	a->deadline_ms = env->cfg->commit_timeout_ms > 0 ? mono_ms() + env->cfg->commit_timeout_ms
							 : UINT64_MAX;
	list_push(&env->acks_head, &env->acks_tail, a);
	notify_writer(env);
	if (env->acks_due == NULL) {
		env->acks_due = a;  /* the earliest commit deadline now */
		arm_timer(env);
	}
	return true;
}

/* The timer at the nearest deadline: a wait for room, or for a commit. */
static void arm_timer(struct handler_env *env)
{
	uint64_t now = mono_ms(), wait, due = UINT64_MAX;
	struct timeval tv;

	if (env->room_head != NULL)
		due = env->room_head->deadline_ms;
	if (env->acks_due != NULL && env->acks_due->deadline_ms < due)
		due = env->acks_due->deadline_ms;
	if (due == UINT64_MAX) {
		if (evtimer_del(env->timer) < 0)
			log_warn("cannot cancel the ingest timer");
		return;
	}
	wait = due > now ? due - now : 0;
	tv.tv_sec = (time_t)(wait / MS_PER_S);
	tv.tv_usec = (suseconds_t)((wait % MS_PER_S) * US_PER_MS);
	if (evtimer_add(env->timer, &tv) < 0)
		log_error("cannot arm the ingest timer");
}

/* Keep a copy of the entry and wait for the writer to free room in the lane. */
static void wait_for_room(struct handler_env *env, struct http_req *req, struct ack_wait *a,
			  const struct entry_hdr *h, const uint8_t *payload)
{
	a->entry = malloc(h->len);
	if (a->entry == NULL) {
		((struct req_ctx *)req->user)->pending = NULL;
		free(a);
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	memcpy(a->entry, h, sizeof(*h));
	memcpy(a->entry + sizeof(*h), payload, h->payload_len);
	a->entry_len = h->len;
	a->deadline_ms = mono_ms() + env->cfg->enqueue_timeout_ms;
	list_push(&env->room_head, &env->room_tail, a);
	arm_timer(env);
}

static void enqueue(struct handler_env *env, struct http_req *req,
		    const struct ingest_result *res, uint32_t source_id)
{
	struct req_ctx *ctx = req->user;
	struct ack_wait *a = calloc(1, sizeof(*a));
	struct entry_hdr h = {
		.magic = ENTRY_MAGIC,
		.len = entry_size((uint32_t)res->payload_len),
		.source_id = source_id,
		.nrecords = res->nrecords,
		.payload_len = (uint32_t)res->payload_len,
	};

	if (a == NULL) {
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	a->req = req;
	ctx->pending = a;
	ctx->forget = wait_forget;
	/* Requests already waiting for room go first: no overtaking. */
	if (env->room_head == NULL && publish(env, a, &h, res->payload))
		return;
	if (env->cfg->enqueue_timeout_ms == 0) {
		ctx->pending = NULL;
		free(a);
		atomic_fetch_add_explicit(&env->shm->hdr->stats.busy_rejections, 1,
					  memory_order_relaxed);
		http_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
		return;
	}
	wait_for_room(env, req, a, &h, res->payload);
}

bool ingest_body(struct handler_env *env, struct http_req *req, const char **body, size_t *len)
{
	const char *enc = http_header(req, "Content-Encoding");
	int rc;

	*body = (const char *)req->body;
	*len = req->body_len;
	if (enc == NULL || strcasecmp(enc, "gzip") != 0)
		return true;
	rc = inflate_body(env, req->body, req->body_len);
	if (rc == 0) {
		*body = env->inflate.data;
		*len = env->inflate.len;
		return true;
	}
	if (rc == 413)
		http_respond_error(req, 413, "Request body too large.", NULL);
	else if (rc == 400)
		http_respond_error(req, 400, "Request body is not valid gzip.", NULL);
	else
		http_respond_error(req, 500, "Internal server error.", NULL);
	return false;
}

void ingest_on_head(struct handler_env *env, struct http_req *req)
{
	const char *enc = http_header(req, "Content-Encoding");

	if (enc != NULL && enc[0] != '\0' && strcasecmp(enc, "identity") != 0 &&
	    strcasecmp(enc, "gzip") != 0)
		http_respond_error(req, 415, "Unsupported Content-Encoding.", NULL);
}

struct ingest_limits ingest_limits_of(const struct handler_env *env)
{
	return (struct ingest_limits){
		.max_records = env->cfg->max_records_per_request,
		.max_payload = ring_max_entry(&env->prod) - sizeof(struct entry_hdr),
	};
}

void ingest_submit(struct handler_env *env, struct http_req *req, int rc,
		   const struct ingest_result *res, const char *source, size_t source_len)
{
	const struct catalog_source *src;

	if (rc < 0) {
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	if (rc != 0) {
		http_respond_error(req, rc, res->detail, NULL);
		return;
	}
	src = handler_source(env, req->user, source, source_len);
	if (src == NULL) {
		http_respond_error(req, 404, "Data source not found.", NULL);
		return;
	}
	if (src->archived) {
		http_respond_error(req, 409, "Data source is archived.", NULL);
		return;
	}
	if (res->nrecords == 0) {
		http_respond(req, 204, NULL, NULL, NULL, 0);
		return;
	}
	if (atomic_load_explicit(&env->shm->hdr->disk_state, memory_order_acquire) != SHM_DISK_OK) {
		atomic_fetch_add_explicit(&env->shm->hdr->stats.disk_full_rejections, 1,
					  memory_order_relaxed);
		http_respond_error(req, 507, DISK_FULL_DETAIL, DISK_FULL_RETRY_AFTER);
		return;
	}
	enqueue(env, req, res, src->id);
}

void ingest_on_body(struct handler_env *env, struct http_req *req)
{
	struct ingest_limits lim = ingest_limits_of(env);
	struct ingest_result res;
	const char *body;
	size_t len;
	int rc;

	metrics_bytes_received(env->stats, req->body_len);
	if (!ingest_body(env, req, &body, &len))
		return;
	rc = ingest_parse(env->parser, body, len, &lim, &res);
	ingest_submit(env, req, rc, &res, res.data_source, res.data_source_len);
}

/* Push requests that waited for room, oldest first, while the lane has room. */
static void drain_room(struct handler_env *env)
{
	struct ack_wait *a;

	while ((a = list_pop(&env->room_head, &env->room_tail)) != NULL) {
		const struct entry_hdr *h = (const struct entry_hdr *)a->entry;

		if (a->req != NULL && !publish(env, a, h, a->entry + sizeof(*h))) {
			/* Still no room: back to the front, order kept. */
			a->next = env->room_head;
			env->room_head = a;
			if (env->room_tail == NULL)
				env->room_tail = a;
			break;
		}
		free(a->entry);
		a->entry = NULL;
		if (a->req == NULL)
			free(a);  /* the client left while waiting; never published */
	}
	arm_timer(env);
}

void ingest_on_commit(struct handler_env *env)
{
	uint64_t committed = ring_committed(&env->prod);

	while (env->acks_head != NULL && env->acks_head->end <= committed) {
		struct ack_wait *a = list_pop(&env->acks_head, &env->acks_tail);
		const struct entry_hdr *h = ring_entry_at(&env->prod, a->start);
		uint32_t status = atomic_load_explicit(&h->status, memory_order_acquire);

		if (env->acks_due == a)
			env->acks_due = a->next;
		wait_answer(a, status == ENTRY_COMMITTED ? 204 : status == ENTRY_NOSPACE ? 507 : 500);
		free(a);
	}
	/* Every status below committed has been read: the space can be reused. */
	ring_release(&env->prod, committed);
	drain_room(env);
}

void ingest_on_timer(struct handler_env *env)
{
	uint64_t now = mono_ms();

	/* Published, not committed in time: answered now, kept in order for the lane. */
	while (env->acks_due != NULL && env->acks_due->deadline_ms <= now) {
		struct ack_wait *a = env->acks_due;

		env->acks_due = a->next;
		if (a->req != NULL) {
			atomic_fetch_add_explicit(&env->shm->hdr->stats.commit_timeouts, 1,
						  memory_order_relaxed);
			wait_answer(a, STATUS_COMMIT_TIMEOUT);
		}
	}
	while (env->room_head != NULL && env->room_head->deadline_ms <= now) {
		struct ack_wait *a = list_pop(&env->room_head, &env->room_tail);

		atomic_fetch_add_explicit(&env->shm->hdr->stats.busy_rejections, 1,
					  memory_order_relaxed);
		wait_answer(a, 503);
		free(a->entry);
		free(a);
	}
	arm_timer(env);
}

void ingest_fail_all(struct handler_env *env)
{
	while (env->room_head != NULL) {
		struct ack_wait *a = list_pop(&env->room_head, &env->room_tail);

		wait_answer(a, 503);
		free(a->entry);
		free(a);
	}
}

size_t ingest_waiting(const struct handler_env *env)
{
	size_t n = 0;

	for (const struct ack_wait *a = env->acks_head; a; a = a->next)
		n++;
	for (const struct ack_wait *a = env->room_head; a; a = a->next)
		n++;
	return n;
}
