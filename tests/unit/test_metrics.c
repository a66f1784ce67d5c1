/*
 * test_metrics.c - the /metrics exposition rendered from a real shared-memory
 * region: request counters summed over worker slots, status and route labels,
 * the records-per-commit histogram, and that only aggregate figures appear.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "temporis/base/config.h"
#include "temporis/base/fdcount.h"
#include "temporis/http/routes.h"
#include "temporis/http/serve_metrics.h"
#include "temporis/ipc/shm.h"

#define TEST_RING_SIZE (2u << 20)

struct fixture {
	struct cfg cfg;
	struct shm shm;
	struct shm_worker_stats *slot0, *slot1;
	char *text;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	cfg_defaults(&f->cfg);
	f->cfg.workers = 2;
	f->cfg.ring_size = TEST_RING_SIZE;
	if (shm_create(&f->cfg, &f->shm) < 0) {
		free(f);
		return -1;
	}
	f->slot0 = &f->shm.hdr->worker_stats[0];
	f->slot1 = &f->shm.hdr->worker_stats[1];
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	free(f->text);
	shm_destroy(&f->shm);
	free(f);
	return 0;
}

static const char *render(struct fixture *f)
{
	size_t len;

	free(f->text);
	f->text = metrics_render(&f->shm, &len);
	assert_non_null(f->text);
	assert_int_equal(strlen(f->text), len);
	return f->text;
}

/* The sample line "NAME VALUE" for a full series name (with its labels), or NULL. */
static const char *sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return p + n + 1;
	return NULL;
}

static long long value_of(const char *text, const char *series)
{
	const char *v = sample(text, series);

	assert_non_null(v);
	return strtoll(v, NULL, 10);
}

static void test_requests_are_summed_over_worker_slots(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 3; i++)
		metrics_count(f->slot0, route_label(ROUTE_INGEST), 204);
	metrics_count(f->slot1, route_label(ROUTE_INGEST), 204);
	metrics_count(f->slot1, route_label(ROUTE_INGEST), 401);
	const char *t = render(f);

	assert_int_equal(value_of(t, "temporis_http_requests_total{route=\"ingest\",status=\"204\"}"),
			 4);
	assert_int_equal(value_of(t, "temporis_http_requests_total{route=\"ingest\",status=\"401\"}"),
			 1);
}

static void test_routes_map_to_their_labels(void **state)
{
	struct fixture *f = *state;

	metrics_count(f->slot0, route_label(ROUTE_SOURCES_CREATE), 201);
	metrics_count(f->slot0, route_label(ROUTE_SOURCES_LIST), 200);
	metrics_count(f->slot0, route_label(ROUTE_SOURCE_UNARCHIVE), 200);
	metrics_count(f->slot0, route_label(ROUTE_SOURCE_RECORDS), 422);
	metrics_count(f->slot0, route_label(ROUTE_NOT_FOUND), 404);
	metrics_count(f->slot0, route_label(ROUTE_METHOD_NOT_ALLOWED), 405);
	const char *t = render(f);

	assert_int_equal(value_of(t, "temporis_http_requests_total{route=\"sources\",status=\"201\"}"), 1);
	assert_int_equal(value_of(t, "temporis_http_requests_total{route=\"sources\",status=\"200\"}"), 1);
	assert_int_equal(value_of(t, "temporis_http_requests_total{route=\"archive\",status=\"200\"}"), 1);
	assert_int_equal(value_of(t, "temporis_http_requests_total{route=\"records\",status=\"422\"}"), 1);
	assert_int_equal(value_of(t, "temporis_http_requests_total{route=\"other\",status=\"404\"}"), 1);
	assert_int_equal(value_of(t, "temporis_http_requests_total{route=\"other\",status=\"405\"}"), 1);
}

static void test_unlisted_status_is_counted_as_other(void **state)
{
	struct fixture *f = *state;

	metrics_count(f->slot0, route_label(ROUTE_HEALTHZ), 418);
	metrics_count(f->slot1, route_label(ROUTE_HEALTHZ), 599);
	const char *t = render(f);

	assert_int_equal(
	    value_of(t, "temporis_http_requests_total{route=\"healthz\",status=\"other\"}"), 2);
	assert_null(strstr(t, "status=\"418\""));
}

static void test_pairs_never_seen_add_no_series(void **state)
{
	struct fixture *f = *state;
	const char *t = render(f);

	assert_non_null(strstr(t, "# TYPE temporis_http_requests_total counter\n"));
	assert_null(strstr(t, "temporis_http_requests_total{"));
}

static void test_commit_batch_histogram_is_cumulative(void **state)
{
	struct fixture *f = *state;

	shm_stats_commit(&f->shm, 1, 1, 10);
	shm_stats_commit(&f->shm, 700, 2, 10);
	shm_stats_commit(&f->shm, 2000000, 3, 10);
	const char *t = render(f);

	assert_int_equal(value_of(t, "temporis_commit_batch_records_bucket{le=\"1\"}"), 1);
	assert_int_equal(value_of(t, "temporis_commit_batch_records_bucket{le=\"500\"}"), 1);
	assert_int_equal(value_of(t, "temporis_commit_batch_records_bucket{le=\"1000\"}"), 2);
	assert_int_equal(value_of(t, "temporis_commit_batch_records_bucket{le=\"1000000\"}"), 2);
	assert_int_equal(value_of(t, "temporis_commit_batch_records_bucket{le=\"+Inf\"}"), 3);
	assert_int_equal(value_of(t, "temporis_commit_batch_records_count"), 3);
	assert_int_equal(value_of(t, "temporis_commit_batch_records_sum"), 2000701);
	assert_int_equal(value_of(t, "temporis_records_committed_total"), 2000701);
	assert_int_equal(value_of(t, "temporis_commits_total"), 3);
}

static void test_request_durations_per_route_over_slots(void **state)
{
	struct fixture *f = *state;
	const char *d = "temporis_http_request_duration_seconds";
	char k[160];

	metrics_duration(f->slot0, route_label(ROUTE_INGEST), 1000);     /* le 0.001: bound inclusive */
	metrics_duration(f->slot1, route_label(ROUTE_INGEST), 3000);     /* le 0.005 */
	metrics_duration(f->slot1, route_label(ROUTE_INGEST), 60000000); /* +Inf */
	metrics_duration(f->slot0, route_label(ROUTE_INFLUX_WRITE), 200);
	const char *t = render(f);

	snprintf(k, sizeof(k), "%s_bucket{route=\"ingest\",le=\"0.001\"}", d);
	assert_int_equal(value_of(t, k), 1);
	snprintf(k, sizeof(k), "%s_bucket{route=\"ingest\",le=\"0.0025\"}", d);
	assert_int_equal(value_of(t, k), 1);
	snprintf(k, sizeof(k), "%s_bucket{route=\"ingest\",le=\"0.005\"}", d);
	assert_int_equal(value_of(t, k), 2);
	snprintf(k, sizeof(k), "%s_bucket{route=\"ingest\",le=\"10\"}", d);
	assert_int_equal(value_of(t, k), 2);
	snprintf(k, sizeof(k), "%s_bucket{route=\"ingest\",le=\"+Inf\"}", d);
	assert_int_equal(value_of(t, k), 3);
	snprintf(k, sizeof(k), "%s_count{route=\"ingest\"}", d);
	assert_int_equal(value_of(t, k), 3);
	snprintf(k, sizeof(k), "%s_sum{route=\"ingest\"}", d);
	assert_int_equal(value_of(t, k), 60);                           /* 60.004 s, truncated */
	snprintf(k, sizeof(k), "%s_count{route=\"influx_write\"}", d);
	assert_int_equal(value_of(t, k), 1);
	snprintf(k, sizeof(k), "%s_count{route=\"records\"}", d);
	assert_null(sample(t, k));                                       /* never answered */
}

/* fd_count_self sees what this process opens and closes; the render sums the processes. */
static void test_open_fds_are_counted_and_summed(void **state)
{
	struct fixture *f = *state;
	uint64_t before, during, after, limit;
	int p[2];

	assert_int_equal(fd_count_self(&before), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fd_count_self(&during), 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(fd_count_self(&after), 0);
	assert_int_equal(during, before + 2);
	assert_int_equal(after, before);
	assert_int_equal(fd_limit_self(&limit), 0);
	assert_true(limit > during);

	atomic_store(&f->shm.hdr->stats.master_open_fds, 10);
	atomic_store(&f->shm.hdr->stats.writer_open_fds, 20);
	atomic_store(&f->slot0->open_fds, 30);
	atomic_store(&f->slot1->open_fds, 40);
	atomic_store(&f->shm.hdr->stats.max_fds, 65536);
	const char *t = render(f);

	assert_int_equal(value_of(t, "process_open_fds"), 100);
	assert_int_equal(value_of(t, "process_max_fds"), 65536);
}

static void test_ingest_bytes_are_summed(void **state)
{
	struct fixture *f = *state;

	metrics_bytes_received(f->slot0, 100);
	metrics_bytes_received(f->slot1, 23);
	assert_int_equal(value_of(render(f), "temporis_ingest_bytes_received_total"), 123);
}

/* The store's state, as the writer stored it, is rendered as it is. */
static void test_store_state_is_rendered(void **state)
{
	struct fixture *f = *state;
	struct shm_stats *st = &f->shm.hdr->stats;

	atomic_store(&st->store_head_records, 1234);
	atomic_store(&st->store_seals, 5);
	atomic_store(&st->store_seal_failures, 1);
	atomic_store(&st->store_sealed_records, 3000000);
	atomic_store(&st->store_sst_bytes, 1u << 30);
	atomic_store(&st->store_write_stopped, 1);
	atomic_store(&st->store_delayed_write_rate, 16u << 20);
	atomic_store(&st->store_wal_bytes, 77u << 20);
	const char *t = render(f);

	assert_int_equal(value_of(t, "temporis_store_head_records"), 1234);
	assert_int_equal(value_of(t, "temporis_store_seals_total"), 5);
	assert_int_equal(value_of(t, "temporis_store_seal_failures_total"), 1);
	assert_int_equal(value_of(t, "temporis_store_sealed_records_total"), 3000000);
	assert_int_equal(value_of(t, "temporis_store_sst_bytes"), 1u << 30);
	assert_int_equal(value_of(t, "temporis_store_write_stopped"), 1);
	assert_int_equal(value_of(t, "temporis_store_delayed_write_rate_bytes"), 16u << 20);
	assert_int_equal(value_of(t, "temporis_store_pending_compaction_bytes"), 0);
	assert_int_equal(value_of(t, "temporis_store_wal_bytes"), 77u << 20);
	assert_non_null(strstr(t, "# TYPE temporis_store_head_records gauge\n"));
	assert_non_null(strstr(t, "# TYPE temporis_store_seals_total counter\n"));
}

/* The disk's state, as the writer stored it: free bytes, the state, the 507s. */
static void test_disk_state_is_rendered(void **state)
{
	struct fixture *f = *state;
	struct shm_header *hdr = f->shm.hdr;
	const char *t;

	assert_int_equal(value_of(render(f), "temporis_disk_full"), 0);
	atomic_store(&hdr->stats.disk_free_bytes, 12345678);
	atomic_store(&hdr->stats.disk_full_rejections, 7);
	atomic_store(&hdr->disk_state, SHM_DISK_NOSPACE);
	t = render(f);
	assert_int_equal(value_of(t, "temporis_disk_free_bytes"), 12345678);
	assert_int_equal(value_of(t, "temporis_disk_full_rejections_total"), 7);
	assert_int_equal(value_of(t, "temporis_disk_full"), 2);
	assert_non_null(strstr(t, "# TYPE temporis_disk_full gauge\n"));
}

/* Every family has HELP and TYPE before its first sample, and every name is ours (or
 * one of the standard process_* family). */
static void test_every_family_is_described(void **state)
{
	struct fixture *f = *state;
	char line[512];
	char described[64][128];
	int ndescribed = 0;

	metrics_count(f->slot0, route_label(ROUTE_INGEST), 204);
	const char *t = render(f);
	FILE *in = fmemopen((void *)t, strlen(t), "r");

	assert_non_null(in);
	while (fgets(line, sizeof(line), in)) {
		char name[128];

		if (sscanf(line, "# TYPE %127s", name) == 1) {
			assert_true(ndescribed < 64);
			strcpy(described[ndescribed++], name);
			continue;
		}
		if (line[0] == '#')
			continue;
		/* ours, or the standard process_* family every Prometheus exporter has */
		assert_true(strncmp(line, "temporis_", strlen("temporis_")) == 0 ||
			    strncmp(line, "process_", strlen("process_")) == 0);
		size_t n = strcspn(line, "{ ");
		int found = 0;
		for (int i = 0; i < ndescribed && !found; i++) {
			size_t d = strlen(described[i]);
			found = (n == d && strncmp(line, described[i], d) == 0) ||
				(n > d && strncmp(line, described[i], d) == 0 &&
				 (strncmp(line + d, "_bucket", n - d) == 0 ||
				  strncmp(line + d, "_sum", n - d) == 0 ||
				  strncmp(line + d, "_count", n - d) == 0));
		}
		if (!found)
			fail_msg("sample without # TYPE: %s", line);
	}
	fclose(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_requests_are_summed_over_worker_slots, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_routes_map_to_their_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlisted_status_is_counted_as_other, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pairs_never_seen_add_no_series, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_batch_histogram_is_cumulative, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_request_durations_per_route_over_slots, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_fds_are_counted_and_summed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_bytes_are_summed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_state_is_rendered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_state_is_rendered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_family_is_described, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
