/*
 * ingest_prom.c - a Prometheus remote_write 1.0 body (snappy, then a protobuf WriteRequest)
 * decoded into packed records (ingest_prom.h).
 *
 * Owns, reused from request to request: the decompressed bytes, the packed records, the
 * label array a series is named from and the series name itself. protobuf-c's unpacked
 * tree is the only memory allocated per request; its allocator keeps it within a budget.
 */
#include "temporis/data/ingest_prom.h"

#include <math.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prompb.pb-c.h"
#include "temporis/base/buf.h"
#include "temporis/data/ingest_fast.h"
#include "temporis/data/record.h"
#include "temporis/data/series_name.h"

#define DETAIL_BAD_SNAPPY "Request body is not valid snappy " \
	"(remote_write sends snappy-compressed protobuf)."
#define DETAIL_DECODED_TOO_LARGE "Decompressed request body too large."
#define DETAIL_BAD_PROTOBUF "Request body is not a valid remote_write WriteRequest protobuf."
#define DETAIL_UNPACK_TOO_LARGE "Request body decodes into a WriteRequest too large to hold."
/* Two labels of one name would make the series name ambiguous; Prometheus refuses them too. */
#define DETAIL_SAME_NAME "timeseries[%zu] has two labels with the same name."
/* The texts ingest.c answers for the same limits. */
#define DETAIL_TOO_MANY "Too many records in one request."
#define DETAIL_TOO_LARGE "Request body too large."

#define PROM_NAME_LABEL "__name__"
#define PROM_NAME_LABEL_LEN (sizeof(PROM_NAME_LABEL) - 1)
/* The one NaN Prometheus writes to mark a series stale (model/value.StaleNaN). */
#define PROM_STALE_NAN_BITS 0x7ff0000000000002ull
#define PROM_MS_PER_S 1000
#define PROM_DECODED_MIN_CAP 4096
#define PROM_LABELS_MIN_CAP 16

/*
 * protobuf-c's tree for a WriteRequest is several times its wire size (a 9-byte sample
 * becomes a 40-byte struct and a pointer, a 2-byte empty label 64 bytes). What Prometheus
 * sends stays under 10 bytes of tree per wire byte; a body built to need more is refused
 * (413) before it can take the worker's memory.
 */
#define PROM_UNPACK_BYTES_PER_BYTE 16
#define PROM_UNPACK_SLACK (1u << 20)

/* One idiom for the whole file: every helper returns one of these. */
enum verdict {
	V_NOMEM = -1,
	V_OK = 0,
	V_BAD = 400,
	V_TOO_LARGE = 413,
};

struct ingest_prom {
	struct ingest_buf decoded;      /* the decompressed WriteRequest */
	struct ingest_buf payload;      /* packed records of the last valid request */
	struct series_label *labels;    /* one series' labels, without __name__ */
	size_t labels_cap;
	char name[REC_NAME_MAX];        /* the series being packed */
	struct ingest_prom_stats stats;
};

/* Running totals of one request; size_t so no body can wrap them. */
struct pack_state {
	const struct ingest_limits *lim;
	size_t count;                   /* records, written or not */
	size_t size;                    /* packed bytes of all records so far, written or not */
	size_t stale, nonfinite;
};

/* protobuf-c's allocator for one unpack: plain malloc, counted against a budget. */
struct unpack_budget {
	ProtobufCAllocator allocator;
	size_t used, limit;
	bool over;                      /* an allocation would have passed limit */
	bool nomem;                     /* malloc itself failed */
};

struct ingest_prom *ingest_prom_new(void)
{
	return calloc(1, sizeof(struct ingest_prom));
}

void ingest_prom_free(struct ingest_prom *p)
{
	if (p == NULL)
		return;
	free(p->decoded.data);
	free(p->payload.data);
	free(p->labels);
	free(p);
}

const struct ingest_prom_stats *ingest_prom_last_stats(const struct ingest_prom *p)
{
	return &p->stats;
}

static enum verdict fail(struct ingest_result *out, enum verdict v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum verdict fail(struct ingest_result *out, enum verdict v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	va_end(ap);
	return v;
}

/* Snappy block format into p->decoded; the size is checked before any work is done. */
static enum verdict decompress(struct ingest_prom *p, const uint8_t *body, size_t len,
			       size_t max_decoded, struct ingest_result *out, size_t *dlen)
{
	size_t n;

	if (snappy_uncompressed_length((const char *)body, len, &n) != SNAPPY_OK)
		return fail(out, V_BAD, DETAIL_BAD_SNAPPY);
	if (n > max_decoded)
		return fail(out, V_TOO_LARGE, DETAIL_DECODED_TOO_LARGE);
	/* At least one byte, so snappy never writes through a NULL buffer. */
	if (ingest_buf_reserve(&p->decoded, n > 0 ? n : 1, PROM_DECODED_MIN_CAP) != 0)
		return V_NOMEM;
	if (snappy_uncompress((const char *)body, len, (char *)p->decoded.data, &n) != SNAPPY_OK)
		return fail(out, V_BAD, DETAIL_BAD_SNAPPY);
	*dlen = n;
	return V_OK;
}

static void *budget_alloc(void *data, size_t size)
{
	struct unpack_budget *b = data;
	void *m;

	if (size > b->limit - b->used) {
		b->over = true;
		return NULL;
	}
	m = malloc(size > 0 ? size : 1);
	if (m == NULL) {
		b->nomem = true;
		return NULL;
	}
	b->used += size;
	return m;
}

static void budget_free(void *data, void *m)
{
	free(m);
}

static void budget_init(struct unpack_budget *b, size_t dlen)
{
	memset(b, 0, sizeof(*b));
	b->allocator.alloc = budget_alloc;
	b->allocator.free = budget_free;
	b->allocator.allocator_data = b;
	b->limit = dlen > (SIZE_MAX - PROM_UNPACK_SLACK) / PROM_UNPACK_BYTES_PER_BYTE
			   ? SIZE_MAX
			   : dlen * PROM_UNPACK_BYTES_PER_BYTE + PROM_UNPACK_SLACK;
}

/* The caller frees *wr with prometheus__write_request__free_unpacked(*wr, &b->allocator). */
static enum verdict unpack(struct ingest_prom *p, size_t dlen, struct unpack_budget *b,
			   struct ingest_result *out, Prometheus__WriteRequest **wr)
{
	budget_init(b, dlen);
	*wr = prometheus__write_request__unpack(&b->allocator, dlen, p->decoded.data);
	if (*wr != NULL)
		return V_OK;
	if (b->nomem)
		return V_NOMEM;
	if (b->over)
		return fail(out, V_TOO_LARGE, DETAIL_UNPACK_TOO_LARGE);
	return fail(out, V_BAD, DETAIL_BAD_PROTOBUF);
}

/*
 * Split ts's labels into its metric name (*metric) and p->labels (*n of them), leaving
 * out empty values: Prometheus treats a label with an empty value as absent.
 */
static enum verdict collect_labels(struct ingest_prom *p, const Prometheus__TimeSeries *ts,
				   size_t idx, struct ingest_result *out,
				   const ProtobufCBinaryData **metric, size_t *n)
{
	void *arr = p->labels;

	*metric = NULL;
	*n = 0;
	if (vec_reserve(&arr, &p->labels_cap, ts->n_labels, sizeof(*p->labels),
			PROM_LABELS_MIN_CAP) != 0)
		return V_NOMEM;
	p->labels = arr;
	for (size_t i = 0; i < ts->n_labels; i++) {
		const ProtobufCBinaryData *name = &ts->labels[i]->name;
		const ProtobufCBinaryData *value = &ts->labels[i]->value;

		if (value->len == 0)
			continue;
		if (name->len == PROM_NAME_LABEL_LEN &&
		    memcmp(name->data, PROM_NAME_LABEL, PROM_NAME_LABEL_LEN) == 0) {
			if (*metric != NULL)
				return fail(out, V_BAD, DETAIL_SAME_NAME, idx);
			*metric = value;
			continue;
		}
		if (name->len == 0)
			return fail(out, V_BAD, "timeseries[%zu] has a label with an empty name.",
				    idx);
		p->labels[(*n)++] = (struct series_label){
			.name = (const char *)name->data, .name_len = name->len,
			.value = (const char *)value->data, .value_len = value->len,
		};
	}
	if (*metric == NULL)
		return fail(out, V_BAD, "timeseries[%zu] has no __name__ label.", idx);
	return V_OK;
}

/* Name series idx into p->name (*len bytes): metric{labels sorted by name}. */
static enum verdict name_series(struct ingest_prom *p, const Prometheus__TimeSeries *ts,
				size_t idx, struct ingest_result *out, size_t *len)
{
	const ProtobufCBinaryData *metric;
	size_t n;
	enum verdict v = collect_labels(p, ts, idx, out, &metric, &n);

	if (v != V_OK)
		return v;
	series_labels_sort(p->labels, n);
	/* Sorted, two labels of one name are neighbours; the name would be ambiguous. */
	for (size_t i = 1; i < n; i++) {
		if (p->labels[i].name_len == p->labels[i - 1].name_len &&
		    memcmp(p->labels[i].name, p->labels[i - 1].name, p->labels[i].name_len) == 0)
			return fail(out, V_BAD, DETAIL_SAME_NAME, idx);
	}
	*len = series_name_format(p->name, sizeof(p->name), (const char *)metric->data,
				  metric->len, p->labels, n);
	if (*len > REC_NAME_MAX)
		return fail(out, V_BAD, "timeseries[%zu]: series name of %zu bytes is longer than "
			    "%d bytes.", idx, *len, REC_NAME_MAX);
	if (!series_name_ok(p->name, *len))
		return fail(out, V_BAD, "timeseries[%zu]: series name must be UTF-8 without "
			    "control characters.", idx);
	return V_OK;
}

/* Milliseconds to whole seconds, rounding down for negative times too (-1 ms is -1 s). */
static int64_t ms_to_s(int64_t ms)
{
	int64_t s = ms / PROM_MS_PER_S;

	return ms % PROM_MS_PER_S < 0 ? s - 1 : s;
}

/* Whether v is stored; counts the ones that are not. */
static bool sample_stored(double v, struct pack_state *st)
{
	uint64_t bits;

	if (isfinite(v))
		return true;
	memcpy(&bits, &v, sizeof(bits));
	if (bits == PROM_STALE_NAN_BITS)
		st->stale++;
	else
		st->nonfinite++;
	return false;
}

/*
 * Pack ts's samples under the name p->name[0..name_len), in request order: samples of one
 * second collapse onto it, and the store keeps the last one written.
 */
static enum verdict pack_samples(struct ingest_prom *p, const Prometheus__TimeSeries *ts,
				 size_t name_len, struct pack_state *st)
{
	struct rec rec = { .type = REC_DOUBLE, .name = p->name, .name_len = (uint16_t)name_len };
	size_t wire = rec_wire_size(&rec);

	for (size_t i = 0; i < ts->n_samples; i++) {
		if (!sample_stored(ts->samples[i]->value, st))
			continue;
		st->count++;
		st->size += wire;
		/* A request over a limit is refused whole; stop spending memory on it. */
		if (st->count > st->lim->max_records || st->size > st->lim->max_payload)
			continue;
		if (ingest_buf_reserve(&p->payload, st->size, INGEST_PAYLOAD_MIN_CAP) != 0)
			return V_NOMEM;
		rec.ts = ms_to_s(ts->samples[i]->timestamp);
		rec.v.d = ts->samples[i]->value;
		rec_encode(p->payload.data + st->size - wire, &rec);
	}
	return V_OK;
}

/* Every series is named (and so checked) even once a limit is passed, as ingest.c does. */
static enum verdict pack_request(struct ingest_prom *p, const Prometheus__WriteRequest *wr,
				 struct pack_state *st, struct ingest_result *out)
{
	size_t name_len = 0;
	enum verdict v;

	for (size_t i = 0; i < wr->n_timeseries; i++) {
		v = name_series(p, wr->timeseries[i], i, out, &name_len);
		if (v == V_OK)
			v = pack_samples(p, wr->timeseries[i], name_len, st);
		if (v != V_OK)
			return v;
	}
	if (st->count > st->lim->max_records)
		return fail(out, V_TOO_LARGE, DETAIL_TOO_MANY);
	if (st->size > st->lim->max_payload)
		return fail(out, V_TOO_LARGE, DETAIL_TOO_LARGE);
	return V_OK;
}

static uint32_t clamp_u32(size_t n)
{
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int ingest_prom_parse(struct ingest_prom *p, const uint8_t *body, size_t len, size_t max_decoded,
		      const struct ingest_limits *lim, struct ingest_result *out)
{
	struct pack_state st = { .lim = lim };
	struct unpack_budget budget;
	Prometheus__WriteRequest *wr = NULL;
	size_t dlen = 0;
	enum verdict v;

	memset(out, 0, sizeof(*out));
	memset(&p->stats, 0, sizeof(p->stats));
	v = decompress(p, body, len, max_decoded, out, &dlen);
	if (v == V_OK)
		v = unpack(p, dlen, &budget, out, &wr);
	if (v == V_OK)
		v = pack_request(p, wr, &st, out);
	if (v == V_OK) {
		out->nrecords = (uint32_t)st.count; /* count <= max_records, a uint32_t */
		out->payload = p->payload.data;
		out->payload_len = st.size;
		p->stats = (struct ingest_prom_stats){
			.series = clamp_u32(wr->n_timeseries),
			.samples = (uint32_t)st.count,
			.skipped_stale = clamp_u32(st.stale),
			.skipped_nonfinite = clamp_u32(st.nonfinite),
		};
	}
	if (wr != NULL)
		prometheus__write_request__free_unpacked(wr, &budget.allocator);
	if (v == V_NOMEM) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	out->status = (int)v;
	return out->status;
}
