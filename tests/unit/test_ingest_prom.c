/*
 * test_ingest_prom.c - the remote_write decoder (src/data/ingest_prom.c): WriteRequests
 * built with the generated protobuf-c API, packed and snappy-compressed as Prometheus
 * sends them, then parsed; the packed records are read back with rec_decode. Covers the
 * series names, ms -> s flooring, skipped samples, every 400 and 413, and reuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prompb.pb-c.h"
#include "temporis/data/ingest_prom.h"
#include "temporis/data/record.h"
#include "temporis/data/series_name.h"

#define MAX_DECODED (16u << 20)
#define DEFAULT_MAX_RECORDS 100000
#define DEFAULT_MAX_PAYLOAD (16u << 20)
#define STALE_NAN_BITS 0x7ff0000000000002ull
#define QUIET_NAN_BITS 0x7ff8000000000000ull
#define REUSE_ROUNDS 2000
#define MANY_SERIES 3000
#define MANY_SAMPLES 7
#define BOMB_LABELS 200000
#define DETAIL_BAD_SNAPPY "Request body is not valid snappy " \
	"(remote_write sends snappy-compressed protobuf)."
#define DETAIL_BAD_PROTOBUF "Request body is not a valid remote_write WriteRequest protobuf."
#define DETAIL_DECODED_TOO_LARGE "Decompressed request body too large."
#define DETAIL_TOO_MANY "Too many records in one request."
#define DETAIL_TOO_LARGE "Request body too large."

static const struct ingest_limits default_limits = {
	.max_records = DEFAULT_MAX_RECORDS,
	.max_payload = DEFAULT_MAX_PAYLOAD,
};

/* A WriteRequest under construction; every part is heap-allocated and freed by req_free. */
struct req {
	Prometheus__WriteRequest wr;
};

struct fixture {
	struct ingest_prom *p;
	struct ingest_result r;
	struct req req;
	uint8_t *body;                   /* the last snappy body built */
	size_t body_len;
};

static void *grow(void *arr, size_t n, size_t elem)
{
	void *a = realloc(arr, n * elem);

	assert_non_null(a);
	return a;
}

static Prometheus__TimeSeries *add_series(struct req *r)
{
	Prometheus__TimeSeries *ts = malloc(sizeof(*ts));

	assert_non_null(ts);
	prometheus__time_series__init(ts);
	r->wr.timeseries = grow(r->wr.timeseries, r->wr.n_timeseries + 1, sizeof(ts));
	r->wr.timeseries[r->wr.n_timeseries++] = ts;
	return ts;
}

static void add_label_bytes(Prometheus__TimeSeries *ts, const char *name, size_t name_len,
			    const char *value, size_t value_len)
{
	Prometheus__Label *l = malloc(sizeof(*l));

	assert_non_null(l);
	prometheus__label__init(l);
	l->name = (ProtobufCBinaryData){ name_len, (uint8_t *)name };
	l->value = (ProtobufCBinaryData){ value_len, (uint8_t *)value };
	ts->labels = grow(ts->labels, ts->n_labels + 1, sizeof(l));
	ts->labels[ts->n_labels++] = l;
}

static void add_label(Prometheus__TimeSeries *ts, const char *name, const char *value)
{
	add_label_bytes(ts, name, strlen(name), value, strlen(value));
}

static void add_sample(Prometheus__TimeSeries *ts, double value, int64_t ms)
{
	Prometheus__Sample *s = malloc(sizeof(*s));

	assert_non_null(s);
	prometheus__sample__init(s);
	s->value = value;
	s->timestamp = ms;
	ts->samples = grow(ts->samples, ts->n_samples + 1, sizeof(s));
	ts->samples[ts->n_samples++] = s;
}

/* A series named by its labels (name, value pairs ending in NULL) with one sample. */
static Prometheus__TimeSeries *add_series_v(struct req *r, double value, int64_t ms, ...)
{
	Prometheus__TimeSeries *ts = add_series(r);
	const char *name, *val;
	va_list ap;

	va_start(ap, ms);
	while ((name = va_arg(ap, const char *)) != NULL) {
		val = va_arg(ap, const char *);
		add_label(ts, name, val);
	}
	va_end(ap);
	add_sample(ts, value, ms);
	return ts;
}

static void req_free(struct req *r)
{
	for (size_t i = 0; i < r->wr.n_timeseries; i++) {
		Prometheus__TimeSeries *ts = r->wr.timeseries[i];

		for (size_t j = 0; j < ts->n_labels; j++)
			free(ts->labels[j]);
		for (size_t j = 0; j < ts->n_samples; j++)
			free(ts->samples[j]);
		free(ts->labels);
		free(ts->samples);
		free(ts);
	}
	free(r->wr.timeseries);
	prometheus__write_request__init(&r->wr);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->p = ingest_prom_new();
	if (f->p == NULL)
		return -1;
	prometheus__write_request__init(&f->req.wr);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ingest_prom_free(f->p);
	req_free(&f->req);
	free(f->body);
	free(f);
	return 0;
}

/* Snappy block format of raw[0..n) into f->body, an exact-size heap block. */
static void set_body_snappy(struct fixture *f, const void *raw, size_t n)
{
	size_t cap = snappy_max_compressed_length(n);
	char *tmp = malloc(cap);

	assert_non_null(tmp);
	assert_int_equal(snappy_compress(raw, n, tmp, &cap), SNAPPY_OK);
	free(f->body);
	f->body = malloc(cap > 0 ? cap : 1);
	assert_non_null(f->body);
	memcpy(f->body, tmp, cap);
	f->body_len = cap;
	free(tmp);
}

/* The protobuf bytes of f->req (the caller frees them); *n is their length. */
static uint8_t *packed_req(struct fixture *f, size_t *n)
{
	uint8_t *raw;

	*n = prometheus__write_request__get_packed_size(&f->req.wr);
	raw = malloc(*n > 0 ? *n : 1);
	assert_non_null(raw);
	assert_int_equal(prometheus__write_request__pack(&f->req.wr, raw), *n);
	return raw;
}

/* f->req, packed and compressed into f->body; returns the decompressed size. */
static size_t build_body(struct fixture *f)
{
	size_t n;
	uint8_t *raw = packed_req(f, &n);

	set_body_snappy(f, raw, n);
	free(raw);
	return n;
}

static int parse_with(struct fixture *f, size_t max_decoded, const struct ingest_limits *lim)
{
	return ingest_prom_parse(f->p, f->body, f->body_len, max_decoded, lim, &f->r);
}

/* Build f->req into a body and parse it with roomy limits. */
static int parse_req(struct fixture *f)
{
	build_body(f);
	return parse_with(f, MAX_DECODED, &default_limits);
}

static void expect_status(struct fixture *f, int rc, int status, const char *detail)
{
	assert_int_equal(rc, status);
	assert_int_equal(f->r.status, status);
	if (detail != NULL)
		assert_string_equal(f->r.detail, detail);
	if (status != 0) {
		assert_int_equal(f->r.nrecords, 0);
		assert_null(f->r.payload);
		assert_int_equal(f->r.payload_len, 0);
	}
}

/* Decode record idx of the last valid result. */
static struct rec decoded(struct fixture *f, uint32_t idx)
{
	const uint8_t *p = f->r.payload, *end = f->r.payload + f->r.payload_len;
	struct rec r;

	memset(&r, 0, sizeof(r));
	for (uint32_t i = 0; i <= idx; i++) {
		p = rec_decode(p, end, &r);
		assert_non_null(p);
	}
	return r;
}

/* The payload holds exactly nrecords whole records. */
static void assert_payload_whole(struct fixture *f)
{
	const uint8_t *p = f->r.payload, *end = p + f->r.payload_len;
	uint32_t n = 0;
	struct rec r;

	while (p != end) {
		p = rec_decode(p, end, &r);
		assert_non_null(p);
		n++;
	}
	assert_int_equal(n, f->r.nrecords);
}

static void assert_record(struct fixture *f, uint32_t idx, const char *name, int64_t ts, double v)
{
	struct rec r = decoded(f, idx);

	assert_int_equal(r.type, REC_DOUBLE);
	assert_int_equal(r.name_len, strlen(name));
	assert_memory_equal(r.name, name, r.name_len);
	assert_int_equal(r.ts, ts);
	assert_memory_equal(&r.v.d, &v, sizeof(v));
}

static double from_bits(uint64_t bits)
{
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static void test_series_named_with_sorted_labels(void **state)
{
	struct fixture *f = *state;

	add_series_v(&f->req, 42.5, 1718841600000, "job", "api", "__name__", "http_requests_total",
		     "code", "200", NULL);
	expect_status(f, parse_req(f), 0, NULL);
	assert_int_equal(f->r.nrecords, 1);
	assert_null(f->r.data_source);
	assert_int_equal(f->r.data_source_len, 0);
	assert_record(f, 0, "http_requests_total{code=\"200\",job=\"api\"}", 1718841600, 42.5);
	assert_payload_whole(f);
}

static void test_label_order_does_not_change_the_name(void **state)
{
	struct fixture *f = *state;

	add_series_v(&f->req, 1, 1000, "b", "2", "a", "1", "__name__", "m", "c", "3", NULL);
	add_series_v(&f->req, 2, 2000, "c", "3", "__name__", "m", "a", "1", "b", "2", NULL);
	expect_status(f, parse_req(f), 0, NULL);
	assert_record(f, 0, "m{a=\"1\",b=\"2\",c=\"3\"}", 1, 1);
	assert_record(f, 1, "m{a=\"1\",b=\"2\",c=\"3\"}", 2, 2);
}

static void test_label_values_escaped(void **state)
{
	struct fixture *f = *state;

	add_series_v(&f->req, 1, 0, "__name__", "up", "path", "C:\\tmp \"x\"\nend", NULL);
	expect_status(f, parse_req(f), 0, NULL);
	assert_record(f, 0, "up{path=\"C:\\\\tmp \\\"x\\\"\\nend\"}", 0, 1);
}

static void test_metric_without_labels_has_no_braces(void **state)
{
	struct fixture *f = *state;

	add_series_v(&f->req, 3, 5000, "__name__", "up", NULL);
	expect_status(f, parse_req(f), 0, NULL);
	assert_record(f, 0, "up", 5, 3);
}

/* Prometheus treats a label with an empty value as absent, __name__ too. */
static void test_empty_label_values_are_absent(void **state)
{
	struct fixture *f = *state;

	add_series_v(&f->req, 1, 0, "__name__", "", "zone", "", "__name__", "up", "", "", "job",
		     "api", NULL);
	expect_status(f, parse_req(f), 0, NULL);
	assert_record(f, 0, "up{job=\"api\"}", 0, 1);
}

static void test_utf8_names_accepted(void **state)
{
	struct fixture *f = *state;

	add_series_v(&f->req, 1, 0, "__name__", "temp\xc3\xa9rature", "lieu", "Z\xc3\xbcrich", NULL);
	expect_status(f, parse_req(f), 0, NULL);
	assert_record(f, 0, "temp\xc3\xa9rature{lieu=\"Z\xc3\xbcrich\"}", 0, 1);
}

static void test_ms_floor_to_seconds(void **state)
{
	struct fixture *f = *state;
	static const struct {
		int64_t ms, s;
	} cases[] = {
		{ 0, 0 }, { 999, 0 }, { 1000, 1 }, { 1999, 1 }, { 1718841600123, 1718841600 },
		{ -1, -1 }, { -999, -1 }, { -1000, -1 }, { -1001, -2 },
		{ INT64_MAX, INT64_MAX / 1000 }, { INT64_MIN, INT64_MIN / 1000 - 1 },
	};
	size_t n = sizeof(cases) / sizeof(cases[0]);
	Prometheus__TimeSeries *ts = add_series(&f->req);

	add_label(ts, "__name__", "t");
	for (size_t i = 0; i < n; i++)
		add_sample(ts, (double)i, cases[i].ms);
	expect_status(f, parse_req(f), 0, NULL);
	assert_int_equal(f->r.nrecords, n);
	for (size_t i = 0; i < n; i++)
		assert_record(f, (uint32_t)i, "t", cases[i].s, (double)i);
}

/* Samples of one series in one second all land on it, in request order: the last wins. */
static void test_subsecond_samples_packed_in_request_order(void **state)
{
	struct fixture *f = *state;
	Prometheus__TimeSeries *ts = add_series(&f->req);

	add_label(ts, "__name__", "m");
	add_sample(ts, 1, 7000);
	add_sample(ts, 2, 7500);
	add_sample(ts, 3, 7999);
	expect_status(f, parse_req(f), 0, NULL);
	assert_int_equal(f->r.nrecords, 3);
	assert_record(f, 0, "m", 7, 1);
	assert_record(f, 1, "m", 7, 2);
	assert_record(f, 2, "m", 7, 3);
}

static void test_doubles_are_bit_exact(void **state)
{
	struct fixture *f = *state;
	static const double values[] = { 0.0, 0.1, -1e308, 5e-324, 1.7976931348623157e308 };
	size_t n = sizeof(values) / sizeof(values[0]);
	Prometheus__TimeSeries *ts = add_series(&f->req);

	add_label(ts, "__name__", "d");
	for (size_t i = 0; i < n; i++)
		add_sample(ts, values[i], (int64_t)i * 1000);
	expect_status(f, parse_req(f), 0, NULL);
	for (size_t i = 0; i < n; i++)
		assert_record(f, (uint32_t)i, "d", (int64_t)i, values[i]);
}

/*
 * -0.0 as Prometheus (Go) writes it. protobuf-c's own packer drops it as a proto3 default,
 * so the sample's bytes are written by hand: field 1, fixed64, sign bit only.
 */
static void test_negative_zero_kept(void **state)
{
	struct fixture *f = *state;
	static const uint8_t sample[] = { 0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x10, 0x01 };
	uint8_t raw[64];
	size_t n = 0, ts_len;
	Prometheus__TimeSeries *ts = add_series(&f->req);

	add_label(ts, "__name__", "z");
	ts_len = prometheus__time_series__get_packed_size(ts);
	assert_true(2 + ts_len + sizeof(sample) < sizeof(raw));
	raw[n++] = 0x0a;
	raw[n++] = (uint8_t)(ts_len + sizeof(sample));
	n += prometheus__time_series__pack(ts, raw + n);
	memcpy(raw + n, sample, sizeof(sample));
	n += sizeof(sample);
	set_body_snappy(f, raw, n);
	expect_status(f, parse_with(f, MAX_DECODED, &default_limits), 0, NULL);
	assert_record(f, 0, "z", 0, -0.0);
}

static void test_staleness_marker_skipped(void **state)
{
	struct fixture *f = *state;
	Prometheus__TimeSeries *ts = add_series(&f->req);
	const struct ingest_prom_stats *st;

	add_label(ts, "__name__", "m");
	add_sample(ts, 1, 1000);
	add_sample(ts, from_bits(STALE_NAN_BITS), 2000);
	add_sample(ts, 3, 3000);
	expect_status(f, parse_req(f), 0, NULL);
	assert_int_equal(f->r.nrecords, 2);
	assert_record(f, 0, "m", 1, 1);
	assert_record(f, 1, "m", 3, 3);
	st = ingest_prom_last_stats(f->p);
	assert_int_equal(st->series, 1);
	assert_int_equal(st->samples, 2);
	assert_int_equal(st->skipped_stale, 1);
	assert_int_equal(st->skipped_nonfinite, 0);
}

static void test_nan_and_inf_skipped_and_counted(void **state)
{
	struct fixture *f = *state;
	Prometheus__TimeSeries *ts = add_series(&f->req);
	const struct ingest_prom_stats *st;

	add_label(ts, "__name__", "m");
	add_sample(ts, from_bits(QUIET_NAN_BITS), 1000);
	add_sample(ts, INFINITY, 2000);
	add_sample(ts, 5, 3000);
	add_sample(ts, -INFINITY, 4000);
	add_sample(ts, -from_bits(QUIET_NAN_BITS), 5000);
	add_sample(ts, from_bits(STALE_NAN_BITS), 6000);
	ts = add_series(&f->req);
	add_label(ts, "__name__", "only_stale");
	add_sample(ts, from_bits(STALE_NAN_BITS), 7000);
	expect_status(f, parse_req(f), 0, NULL);
	assert_int_equal(f->r.nrecords, 1);
	assert_record(f, 0, "m", 3, 5);
	assert_payload_whole(f);
	st = ingest_prom_last_stats(f->p);
	assert_int_equal(st->series, 2);
	assert_int_equal(st->samples, 1);
	assert_int_equal(st->skipped_stale, 2);
	assert_int_equal(st->skipped_nonfinite, 4);
}

static void test_missing_name_is_400(void **state)
{
	struct fixture *f = *state;

	add_series_v(&f->req, 1, 0, "__name__", "ok", NULL);
	add_series_v(&f->req, 1, 0, "job", "api", NULL);
	expect_status(f, parse_req(f), 400, "timeseries[1] has no __name__ label.");
	req_free(&f->req);
	add_series_v(&f->req, 1, 0, "__name__", "", "job", "api", NULL);
	expect_status(f, parse_req(f), 400, "timeseries[0] has no __name__ label.");
	req_free(&f->req);
	add_series(&f->req);
	expect_status(f, parse_req(f), 400, "timeseries[0] has no __name__ label.");
}

static void test_duplicate_label_names_are_400(void **state)
{
	struct fixture *f = *state;

	add_series_v(&f->req, 1, 0, "__name__", "m", "a", "1", "b", "2", "a", "3", NULL);
	expect_status(f, parse_req(f), 400, "timeseries[0] has two labels with the same name.");
	req_free(&f->req);
	add_series_v(&f->req, 1, 0, "__name__", "m", "__name__", "n", NULL);
	expect_status(f, parse_req(f), 400, "timeseries[0] has two labels with the same name.");
}

static void test_empty_label_name_is_400(void **state)
{
	struct fixture *f = *state;

	add_series_v(&f->req, 1, 0, "__name__", "m", "", "v", NULL);
	expect_status(f, parse_req(f), 400, "timeseries[0] has a label with an empty name.");
}

/* name{l="vvv..."} of exactly len bytes. */
static void add_series_of_name_len(struct fixture *f, size_t len, char *value_buf)
{
	const size_t overhead = strlen("m{l=\"\"}");
	Prometheus__TimeSeries *ts = add_series(&f->req);

	memset(value_buf, 'v', len - overhead);
	add_label(ts, "__name__", "m");
	add_label_bytes(ts, "l", 1, value_buf, len - overhead);
	add_sample(ts, 1, 0);
}

static void test_series_name_length_limit(void **state)
{
	struct fixture *f = *state;
	char value[REC_NAME_MAX + 1];
	char detail[INGEST_DETAIL_MAX];

	add_series_of_name_len(f, REC_NAME_MAX, value);
	expect_status(f, parse_req(f), 0, NULL);
	assert_int_equal(decoded(f, 0).name_len, REC_NAME_MAX);
	req_free(&f->req);
	add_series_v(&f->req, 1, 0, "__name__", "ok", NULL);
	add_series_of_name_len(f, REC_NAME_MAX + 1, value);
	snprintf(detail, sizeof(detail),
		 "timeseries[1]: series name of %d bytes is longer than %d bytes.",
		 REC_NAME_MAX + 1, REC_NAME_MAX);
	expect_status(f, parse_req(f), 400, detail);
}

/* Escaping counts: the limit is on the stored name, not on the label bytes. */
static void test_escapes_count_toward_name_length(void **state)
{
	struct fixture *f = *state;
	const size_t overhead = strlen("m{l=\"\"}");
	size_t quotes = (REC_NAME_MAX - overhead) / 2 + 1;
	char value[REC_NAME_MAX];
	char detail[INGEST_DETAIL_MAX];
	Prometheus__TimeSeries *ts = add_series(&f->req);

	memset(value, '"', quotes);
	add_label(ts, "__name__", "m");
	add_label_bytes(ts, "l", 1, value, quotes);
	add_sample(ts, 1, 0);
	snprintf(detail, sizeof(detail),
		 "timeseries[0]: series name of %zu bytes is longer than %d bytes.",
		 overhead + 2 * quotes, REC_NAME_MAX);
	expect_status(f, parse_req(f), 400, detail);
}

static void test_control_characters_and_bad_utf8_are_400(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = { "a\tb", "a\x7f", "\xc2\x85", "\xff", "\xc3", "\xed\xa0\x80" };
	const char *detail = "timeseries[0]: series name must be UTF-8 without control characters.";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req_free(&f->req);
		add_series_v(&f->req, 1, 0, "__name__", bad[i], NULL);
		expect_status(f, parse_req(f), 400, detail);
		req_free(&f->req);
		add_series_v(&f->req, 1, 0, "__name__", "m", "l", bad[i], NULL);
		expect_status(f, parse_req(f), 400, detail);
		req_free(&f->req);
		add_series_v(&f->req, 1, 0, "__name__", "m", bad[i], "v", NULL);
		expect_status(f, parse_req(f), 400, detail);
	}
}

/* Label bytes keep their length: an embedded NUL is refused, not a silently cut name. */
static void test_embedded_nul_is_400(void **state)
{
	struct fixture *f = *state;
	Prometheus__TimeSeries *ts = add_series(&f->req);

	add_label(ts, "__name__", "m");
	add_label_bytes(ts, "l", 1, "a\0b", 3);
	add_sample(ts, 1, 0);
	expect_status(f, parse_req(f), 400,
		      "timeseries[0]: series name must be UTF-8 without control characters.");
}

static void test_bad_snappy_is_400(void **state)
{
	struct fixture *f = *state;
	static const uint8_t not_snappy[] = "hello, not snappy at all";
	static const uint8_t huge_varint[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	size_t full;

	assert_int_equal(ingest_prom_parse(f->p, not_snappy, sizeof(not_snappy) - 1, MAX_DECODED,
					   &default_limits, &f->r), 400);
	assert_string_equal(f->r.detail, DETAIL_BAD_SNAPPY);
	assert_int_equal(ingest_prom_parse(f->p, huge_varint, sizeof(huge_varint), MAX_DECODED,
					   &default_limits, &f->r), 400);
	assert_string_equal(f->r.detail, DETAIL_BAD_SNAPPY);
	assert_int_equal(ingest_prom_parse(f->p, NULL, 0, MAX_DECODED, &default_limits, &f->r), 400);
	assert_string_equal(f->r.detail, DETAIL_BAD_SNAPPY);
	/* A real body cut short. */
	add_series_v(&f->req, 1, 0, "__name__", "m", "job", "api", NULL);
	build_body(f);
	full = f->body_len;
	for (size_t n = 1; n < full; n++) {
		assert_int_equal(ingest_prom_parse(f->p, f->body, n, MAX_DECODED, &default_limits,
						   &f->r), 400);
		assert_string_equal(f->r.detail, DETAIL_BAD_SNAPPY);
	}
	expect_status(f, parse_with(f, MAX_DECODED, &default_limits), 0, NULL);
}

/* The framed format (what snappy's streaming tools write) is not the block format. */
static void test_framed_snappy_is_400(void **state)
{
	struct fixture *f = *state;
	static const uint8_t framed[] = { 0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y' };

	assert_int_equal(ingest_prom_parse(f->p, framed, sizeof(framed), MAX_DECODED,
					   &default_limits, &f->r), 400);
	assert_string_equal(f->r.detail, DETAIL_BAD_SNAPPY);
}

static void test_valid_snappy_of_garbage_is_400(void **state)
{
	struct fixture *f = *state;
	static const char *const garbage[] = {
		"\x0f",                          /* wire type 7 */
		"\x0a\x05\x0a",                  /* timeseries[0] cut short */
		"\x0a\x02\x12\x05",              /* a sample cut short inside a series */
		"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", /* varint length too long */
		"just some text, not a protobuf",
	};

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		set_body_snappy(f, garbage[i], strlen(garbage[i]));
		expect_status(f, parse_with(f, MAX_DECODED, &default_limits), 400,
			      DETAIL_BAD_PROTOBUF);
	}
}

static void test_decompressed_size_limit_is_413(void **state)
{
	struct fixture *f = *state;
	size_t n;

	add_series_v(&f->req, 1, 1000, "__name__", "m", "job", "api", NULL);
	n = build_body(f);
	expect_status(f, parse_with(f, n - 1, &default_limits), 413, DETAIL_DECODED_TOO_LARGE);
	expect_status(f, parse_with(f, n, &default_limits), 0, NULL);
	assert_int_equal(f->r.nrecords, 1);
	/* The size is checked before decompression: a lying header is refused at once. */
	expect_status(f, parse_with(f, 0, &default_limits), 413, DETAIL_DECODED_TOO_LARGE);
}

static void add_samples(struct fixture *f, const char *metric, size_t n)
{
	Prometheus__TimeSeries *ts = add_series(&f->req);

	add_label(ts, "__name__", metric);
	for (size_t i = 0; i < n; i++)
		add_sample(ts, (double)i, (int64_t)i * 1000);
}

static void test_records_limit_is_413(void **state)
{
	struct fixture *f = *state;
	struct ingest_limits lim = { .max_records = 4, .max_payload = DEFAULT_MAX_PAYLOAD };

	add_samples(f, "a", 2);
	add_samples(f, "b", 2);
	build_body(f);
	expect_status(f, parse_with(f, MAX_DECODED, &lim), 0, NULL);
	assert_int_equal(f->r.nrecords, 4);
	add_sample(f->req.wr.timeseries[1], 9, 9000);
	build_body(f);
	expect_status(f, parse_with(f, MAX_DECODED, &lim), 413, DETAIL_TOO_MANY);
	assert_int_equal(ingest_prom_last_stats(f->p)->samples, 0);
	/* Skipped samples are no records: they do not count. */
	add_sample(f->req.wr.timeseries[0], NAN, 10000);
	f->req.wr.timeseries[1]->samples[2]->value = INFINITY;
	build_body(f);
	expect_status(f, parse_with(f, MAX_DECODED, &lim), 0, NULL);
	assert_int_equal(f->r.nrecords, 4);
}

static void test_payload_limit_is_413(void **state)
{
	struct fixture *f = *state;
	struct ingest_limits lim = { .max_records = DEFAULT_MAX_RECORDS };
	const size_t wire = REC_WIRE_FIXED + strlen("abc");

	add_samples(f, "abc", 10);
	build_body(f);
	lim.max_payload = 10 * wire;
	expect_status(f, parse_with(f, MAX_DECODED, &lim), 0, NULL);
	assert_int_equal(f->r.payload_len, 10 * wire);
	lim.max_payload = 10 * wire - 1;
	expect_status(f, parse_with(f, MAX_DECODED, &lim), 413, DETAIL_TOO_LARGE);
}

static void test_too_many_records_beats_payload_size(void **state)
{
	struct fixture *f = *state;
	struct ingest_limits lim = { .max_records = 2, .max_payload = 1 };

	add_samples(f, "m", 3);
	build_body(f);
	expect_status(f, parse_with(f, MAX_DECODED, &lim), 413, DETAIL_TOO_MANY);
}

/* As in the JSON ingest, a request that cannot be named is 400 even when it is too big. */
static void test_naming_error_beats_limits(void **state)
{
	struct fixture *f = *state;
	struct ingest_limits lim = { .max_records = 2, .max_payload = DEFAULT_MAX_PAYLOAD };

	add_samples(f, "m", 5);
	add_series_v(&f->req, 1, 0, "job", "api", NULL);
	build_body(f);
	expect_status(f, parse_with(f, MAX_DECODED, &lim), 400, "timeseries[1] has no __name__ label.");
}

static void test_empty_write_request_is_valid(void **state)
{
	struct fixture *f = *state;
	const struct ingest_prom_stats *st;

	expect_status(f, parse_req(f), 0, NULL);
	assert_int_equal(f->body_len, 1);   /* snappy of nothing: a zero length varint */
	assert_int_equal(f->r.nrecords, 0);
	assert_int_equal(f->r.payload_len, 0);
	st = ingest_prom_last_stats(f->p);
	assert_int_equal(st->series, 0);
	assert_int_equal(st->samples, 0);
	/* A series with no samples names nothing and packs nothing. */
	add_series_v(&f->req, 1, 0, "__name__", "m", NULL);
	f->req.wr.timeseries[0]->n_samples = 0;
	expect_status(f, parse_req(f), 0, NULL);
	f->req.wr.timeseries[0]->n_samples = 1;
	assert_int_equal(f->r.nrecords, 0);
	assert_int_equal(ingest_prom_last_stats(f->p)->series, 1);
}

/* Append a varint to buf at *n. */
static void put_varint(uint8_t *buf, size_t *n, uint64_t v)
{
	while (v >= 0x80) {
		buf[(*n)++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	buf[(*n)++] = (uint8_t)v;
}

/* Metadata (WriteRequest field 3), exemplars and histograms (TimeSeries 3, 4) are skipped. */
static void test_unknown_fields_are_skipped(void **state)
{
	struct fixture *f = *state;
	static const uint8_t unknown[] = { 0x1a, 0x03, 0x0a, 0x01, 'x', 0x22, 0x02, 0x08, 0x01 };
	uint8_t raw[512];
	size_t n = 0, ts_len;
	Prometheus__TimeSeries *ts;

	ts = add_series_v(&f->req, 7, 3000, "__name__", "m", "job", "api", NULL);
	ts_len = prometheus__time_series__get_packed_size(ts);
	assert_true(ts_len + sizeof(unknown) + 16 < sizeof(raw));
	/* timeseries[0] = the series' bytes followed by its exemplars and histograms fields */
	raw[n++] = 0x0a;
	put_varint(raw, &n, ts_len + sizeof(unknown));
	n += prometheus__time_series__pack(ts, raw + n);
	memcpy(raw + n, unknown, sizeof(unknown));
	n += sizeof(unknown);
	/* metadata = { type: 1, metric_family_name: "m" } */
	memcpy(raw + n, "\x1a\x05\x08\x01\x12\x01m", 7);
	n += 7;
	set_body_snappy(f, raw, n);
	expect_status(f, parse_with(f, MAX_DECODED, &default_limits), 0, NULL);
	assert_int_equal(f->r.nrecords, 1);
	assert_record(f, 0, "m{job=\"api\"}", 3, 7);
}

/* A body built to make protobuf-c's tree explode (empty labels: 2 wire bytes, 64 of tree). */
static void test_unpack_memory_bomb_is_413(void **state)
{
	struct fixture *f = *state;
	size_t n = 0, cap = 2 * BOMB_LABELS + 16;
	uint8_t *raw = malloc(cap);

	assert_non_null(raw);
	raw[n++] = 0x0a;
	put_varint(raw, &n, 2 * BOMB_LABELS);
	for (size_t i = 0; i < BOMB_LABELS; i++) {
		raw[n++] = 0x0a;
		raw[n++] = 0x00;
	}
	set_body_snappy(f, raw, n);
	free(raw);
	expect_status(f, parse_with(f, MAX_DECODED, &default_limits), 413,
		      "Request body decodes into a WriteRequest too large to hold.");
}

/* What Prometheus sends (many short series) stays far inside the unpack budget. */
static void test_many_small_series_fit(void **state)
{
	struct fixture *f = *state;
	char names[MANY_SERIES][16];
	char expect[32];
	Prometheus__TimeSeries *ts;

	for (size_t i = 0; i < MANY_SERIES; i++) {
		snprintf(names[i], sizeof(names[i]), "s%zu", i);
		ts = add_series(&f->req);
		add_label(ts, "__name__", names[i]);
		add_label(ts, "a", "b");
		for (size_t j = 0; j < MANY_SAMPLES; j++)
			add_sample(ts, 0, (int64_t)j * 1000);
	}
	expect_status(f, parse_req(f), 0, NULL);
	assert_int_equal(f->r.nrecords, MANY_SERIES * MANY_SAMPLES);
	assert_payload_whole(f);
	for (size_t i = 0; i < MANY_SERIES; i += MANY_SERIES / 10) {
		snprintf(expect, sizeof(expect), "s%zu{a=\"b\"}", i);
		assert_record(f, (uint32_t)(i * MANY_SAMPLES + MANY_SAMPLES - 1), expect,
			      MANY_SAMPLES - 1, 0);
	}
	assert_int_equal(ingest_prom_last_stats(f->p)->series, MANY_SERIES);
}

static void test_stats_zero_after_error(void **state)
{
	struct fixture *f = *state;
	const struct ingest_prom_stats *st = ingest_prom_last_stats(f->p);

	add_samples(f, "m", 3);
	add_sample(f->req.wr.timeseries[0], NAN, 0);
	expect_status(f, parse_req(f), 0, NULL);
	assert_int_equal(st->samples, 3);
	assert_int_equal(st->skipped_nonfinite, 1);
	add_series_v(&f->req, 1, 0, "job", "x", NULL);
	expect_status(f, parse_req(f), 400, NULL);
	assert_int_equal(st->series, 0);
	assert_int_equal(st->samples, 0);
	assert_int_equal(st->skipped_nonfinite, 0);
}

/* One parser, many requests of varying size and outcome; each result is exactly its own. */
static void test_parser_reuse_across_many_calls(void **state)
{
	struct fixture *f = *state;
	char metric[32];

	for (int round = 0; round < REUSE_ROUNDS; round++) {
		size_t n = (size_t)(round * 37 % 50);

		req_free(&f->req);
		snprintf(metric, sizeof(metric), "m%d", round);
		add_samples(f, metric, n);
		if (round % 5 == 4)
			add_series_v(&f->req, 1, 0, "__name__", "", NULL);
		if (round % 7 == 6) {
			expect_status(f, ingest_prom_parse(f->p, (const uint8_t *)"x", 1, MAX_DECODED,
							   &default_limits, &f->r), 400,
				      DETAIL_BAD_SNAPPY);
			continue;
		}
		if (round % 5 == 4) {
			expect_status(f, parse_req(f), 400, "timeseries[1] has no __name__ label.");
			continue;
		}
		expect_status(f, parse_req(f), 0, NULL);
		assert_int_equal(f->r.nrecords, n);
		assert_int_equal(f->r.payload_len, n * (REC_WIRE_FIXED + strlen(metric)));
		assert_payload_whole(f);
		if (n > 0)
			assert_record(f, (uint32_t)n - 1, metric, (int64_t)n - 1, (double)(n - 1));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_series_named_with_sorted_labels),
		T(test_label_order_does_not_change_the_name),
		T(test_label_values_escaped),
		T(test_metric_without_labels_has_no_braces),
		T(test_empty_label_values_are_absent),
		T(test_utf8_names_accepted),
		T(test_ms_floor_to_seconds),
		T(test_subsecond_samples_packed_in_request_order),
		T(test_doubles_are_bit_exact),
		T(test_negative_zero_kept),
		T(test_staleness_marker_skipped),
		T(test_nan_and_inf_skipped_and_counted),
		T(test_missing_name_is_400),
		T(test_duplicate_label_names_are_400),
		T(test_empty_label_name_is_400),
		T(test_series_name_length_limit),
		T(test_escapes_count_toward_name_length),
		T(test_control_characters_and_bad_utf8_are_400),
		T(test_embedded_nul_is_400),
		T(test_bad_snappy_is_400),
		T(test_framed_snappy_is_400),
		T(test_valid_snappy_of_garbage_is_400),
		T(test_decompressed_size_limit_is_413),
		T(test_records_limit_is_413),
		T(test_payload_limit_is_413),
		T(test_too_many_records_beats_payload_size),
		T(test_naming_error_beats_limits),
		T(test_empty_write_request_is_valid),
		T(test_unknown_fields_are_skipped),
		T(test_unpack_memory_bomb_is_413),
		T(test_many_small_series_fit),
		T(test_stats_zero_after_error),
		T(test_parser_reuse_across_many_calls),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
