/*
 * test_ingest_alloc.c - ingest_parse makes no allocation per record (issue 6).
 *
 * Counted, not timed: this binary interposes malloc/calloc/realloc (forwarding to
 * glibc's __libc_* entry points) and counts the calls made while a parse runs. A
 * parser warmed by one large body must then parse smaller and equal bodies with
 * zero allocations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/data/ingest.h"

/*
 * Sanitizers (ASan, TSan, MSan) replace malloc themselves; a second definition
 * here would clash with theirs, so under them the test compiles without the
 * interposition and skips itself (exit status 77, automake's SKIP).
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ALLOC_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer)
#define ALLOC_TEST_SANITIZED 1
#endif
#endif

#define SKIP_EXIT_STATUS 77
#define WARM_RECORDS 10000
#define SMALL_RECORDS 1000
#define RECORD_TEXT_MAX 96
#define BODY_OVERHEAD 64
#define MAX_RECORDS_LIMIT 100000
#define MAX_PAYLOAD_LIMIT (16u << 20)

#ifndef ALLOC_TEST_SANITIZED
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);

static const struct ingest_limits limits = {
	.max_records = MAX_RECORDS_LIMIT,
	.max_payload = MAX_PAYLOAD_LIMIT,
};

/* The test is single-threaded; counting is on only around the parse under test. */
static bool counting;
static size_t allocations;

void *malloc(size_t size)
{
	if (counting)
		allocations++;
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	if (counting)
		allocations++;
	return __libc_calloc(n, size);
}

void *realloc(void *ptr, size_t size)
{
	if (counting)
		allocations++;
	return __libc_realloc(ptr, size);
}

struct fixture {
	struct ingest_parser *p;
	char *warm_body;
	char *small_body;
	size_t warm_len, small_len;
};

/* A body of n records in the benchmark's shape, doubles and integers alternating. */
static char *bench_body(size_t n, size_t *len)
{
	size_t cap = n * RECORD_TEXT_MAX + BODY_OVERHEAD, off = 0, i;
	char *body = malloc(cap);

	if (body == NULL)
		return NULL;
	off += (size_t)snprintf(body + off, cap - off, "{\"data_source\":\"bench\",\"records\":[");
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(body + off, cap - off,
					"%s{\"timestamp\":%zu,\"name\":\"s%03zu\",\"value\":%s}",
					i ? "," : "", 1795557369 + i, i % 1000,
					i % 2 ? "123.25" : "42");
	off += (size_t)snprintf(body + off, cap - off, "]}");
	*len = off;
	return body;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	*state = f;
	f->p = ingest_parser_new();
	f->warm_body = bench_body(WARM_RECORDS, &f->warm_len);
	f->small_body = bench_body(SMALL_RECORDS, &f->small_len);
	return f->p && f->warm_body && f->small_body ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ingest_parser_free(f->p);
	free(f->warm_body);
	free(f->small_body);
	free(f);
	return 0;
}

/* Parse with counting on; returns the number of allocations it made. */
static size_t counted_parse(struct fixture *f, const char *body, size_t len,
			    struct ingest_result *r, int *rc)
{
	allocations = 0;
	counting = true;
	*rc = ingest_parse(f->p, body, len, &limits, r);
	counting = false;
	return allocations;
}

/* Proves the interposition is live: a fresh parser must grow its buffers. */
static void test_interposed_malloc_sees_first_parse_grow_buffers(void **state)
{
	struct fixture *f = *state;
	struct ingest_result r;
	int rc;

	assert_true(counted_parse(f, f->warm_body, f->warm_len, &r, &rc) > 0);
	assert_int_equal(rc, 0);
	assert_int_equal(r.nrecords, WARM_RECORDS);
}

static void test_warm_parser_parses_without_allocating(void **state)
{
	struct fixture *f = *state;
	struct ingest_result r;
	int rc;

	assert_true(counted_parse(f, f->warm_body, f->warm_len, &r, &rc) > 0);
	assert_int_equal(rc, 0);

	assert_int_equal(counted_parse(f, f->small_body, f->small_len, &r, &rc), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.nrecords, SMALL_RECORDS);
	assert_string_equal(r.data_source, "bench");

	assert_int_equal(counted_parse(f, f->warm_body, f->warm_len, &r, &rc), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(r.nrecords, WARM_RECORDS);
}

/* Valgrind redirects malloc in the executable too; then nothing here counts. */
/* Called through a volatile pointer: gcc assumes a builtin malloc touches no globals. */
static void *(*volatile probe_alloc)(size_t) = malloc;

static bool interposition_live(void)
{
	void *probe;

	allocations = 0;
	counting = true;
	probe = probe_alloc(1);
	counting = false;
	free(probe);
	return allocations == 1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_interposed_malloc_sees_first_parse_grow_buffers,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_warm_parser_parses_without_allocating,
						setup, teardown),
	};

	if (!interposition_live()) {
		printf("test_ingest_alloc: skipped: malloc is replaced by the runtime (valgrind?)\n");
		return SKIP_EXIT_STATUS;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else

int main(void)
{
	printf("test_ingest_alloc: skipped: malloc cannot be interposed under a sanitizer\n");
	return SKIP_EXIT_STATUS;
}

#endif
