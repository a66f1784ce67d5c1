/*
 * store_migrate.c - opening a store of format "2": every record family is read with
 * the format "2" rules (the merge operator folds its old operands meanwhile) and
 * every bucket is rewritten as a format "3" value. A put hides everything older of
 * its key, so once the rewrite is done no old value or operand is ever merged
 * again; a full compaction then drops them from disk. Each write also records the
 * last key it rewrote, so a migration that stops half way (the marker still "2")
 * resumes after it instead of reading rewritten buckets as old ones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"
#include "temporis/base/err.h"
#include "temporis/base/log.h"

#define MIGRATE_BATCH_KEYS 10000
#define PROGRESS_PREFIX "migrated/"
#define PROGRESS_KEY_MAX 48
#define DONE_MARK "" /* an empty progress value: the whole family is rewritten */

struct migration {
	struct store *st;
	rocksdb_writebatch_t *wb;
	uint8_t *val;
	size_t in_batch, keys, records;
	char progress_key[PROGRESS_KEY_MAX];
	uint8_t last[CODEC_KEY_MAX];   /* the last key put in the batch */
	size_t last_len;
	char *err;
	size_t errlen;
};

/* Each batch ends with where the family's rewrite got to. */
static int migrate_write(struct migration *m)
{
	char *rerr = NULL;

	rocksdb_writebatch_put_cf(m->wb, m->st->cf_default, m->progress_key,
				  strlen(m->progress_key), (const char *)m->last, m->last_len);
	rocksdb_write(m->st->db, m->st->catalog_wopts, m->wb, &rerr);
	rocksdb_writebatch_clear(m->wb);
	m->in_batch = 0;
	return store_take_rerr(rerr, "migration write", m->err, m->errlen);
}

static int migrate_key(struct migration *m, rocksdb_column_family_handle_t *cf, const char *k,
		       size_t klen, const char *v, size_t vlen)
{
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	ssize_t n = codec_legacy_decode((const uint8_t *)v, vlen, e);
	size_t len;

	if (codec_key_name_len((const uint8_t *)k, klen) < 0 || n <= 0) {
		err_set(m->err, m->errlen, "a format 2 bucket (%zu bytes) does not decode", vlen);
		return -1;
	}
	len = codec_value_encode(e, (size_t)n, m->val);
	rocksdb_writebatch_put_cf(m->wb, cf, k, klen, (const char *)m->val, len);
	memcpy(m->last, k, klen);
	m->last_len = klen;
	m->keys++;
	m->records += (size_t)n;
	if (++m->in_batch == MIGRATE_BATCH_KEYS)
		return migrate_write(m);
	return 0;
}

/* Where an earlier run stopped in this family: 1 and *at (the last key rewritten;
 * empty when the family is done), 0 when it never started, -1 on error. */
static int progress_of(struct migration *m, char *at, size_t *at_len)
{
	char *rerr = NULL;
	size_t vlen = 0;
	char *v = rocksdb_get_cf(m->st->db, m->st->ropts, m->st->cf_default, m->progress_key,
				 strlen(m->progress_key), &vlen, &rerr);

	if (store_take_rerr(rerr, "migration progress", m->err, m->errlen) != 0)
		return -1;
	if (v == NULL)
		return 0;
	if (vlen > CODEC_KEY_MAX) {
		rocksdb_free(v);
		err_set(m->err, m->errlen, "migration progress %s is corrupt", m->progress_key);
		return -1;
	}
	memcpy(at, v, vlen);
	*at_len = vlen;
	rocksdb_free(v);
	return 1;
}

static int migrate_family(struct migration *m, rocksdb_column_family_handle_t *cf, size_t index)
{
	rocksdb_iterator_t *it;
	char at[CODEC_KEY_MAX];
	size_t at_len = 0;
	int rc = 0, started;

	snprintf(m->progress_key, sizeof(m->progress_key), PROGRESS_PREFIX "%zu", index);
	if ((started = progress_of(m, at, &at_len)) < 0)
		return -1;
	if (started && at_len == 0)
		return 0;
	if ((it = rocksdb_create_iterator_cf(m->st->db, m->st->ropts, cf)) == NULL) {
		err_set(m->err, m->errlen, "out of memory migrating");
		return -1;
	}
	rocksdb_iter_seek_to_first(it);
	if (started) {  /* resume after the last key an earlier run rewrote */
		rocksdb_iter_seek(it, at, at_len);
		if (rocksdb_iter_valid(it))
			rocksdb_iter_next(it);
	}
	for (; rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);

		rc = migrate_key(m, cf, k, klen, v, vlen);
	}
	if (rc == 0 && store_iter_status(it, "migration") != 0) {
		err_set(m->err, m->errlen, "reading a format 2 family failed (see the log)");
		rc = -1;
	}
	rocksdb_iter_destroy(it);
	if (rc != 0 || (m->in_batch > 0 && migrate_write(m) != 0))
		return -1;
	m->last_len = 0;  /* done: the next write of this key says so */
	return migrate_write(m);
}

/* The marker says "3" and the progress keys go, in one write. */
static int finish(struct migration *m, size_t n)
{
	char *rerr = NULL;

	rocksdb_writebatch_put_cf(m->wb, m->st->cf_default, STORE_FORMAT_KEY,
				  strlen(STORE_FORMAT_KEY), CODEC_FORMAT, strlen(CODEC_FORMAT));
	for (size_t i = 0; i < n; i++) {
		snprintf(m->progress_key, sizeof(m->progress_key), PROGRESS_PREFIX "%zu", i);
		rocksdb_writebatch_delete_cf(m->wb, m->st->cf_default, m->progress_key,
					     strlen(m->progress_key));
	}
	rocksdb_write(m->st->db, m->st->catalog_wopts, m->wb, &rerr);
	rocksdb_writebatch_clear(m->wb);
	return store_take_rerr(rerr, "write format marker", m->err, m->errlen);
}

int store_migrate(struct store *st, const char *dir, char *err, size_t errlen)
{
	struct migration m = { .st = st, .wb = rocksdb_writebatch_create(),
			       .val = malloc(codec_value_bound(CODEC_BUCKET_SPAN)),
			       .err = err, .errlen = errlen };
	size_t n = 0;
	rocksdb_column_family_handle_t **cfs = store_source_cfs(st, &n);
	int rc = -1;

	if (m.wb == NULL || m.val == NULL || cfs == NULL) {
		err_set(err, errlen, "out of memory migrating");
		goto out;
	}
	log_info("store: %s is of format " CODEC_FORMAT_LEGACY "; rewriting %zu sources in format "
		 CODEC_FORMAT, dir, n);
	atomic_store(&st->legacy, true);
	for (size_t i = 0; i < n; i++)
		if (migrate_family(&m, cfs[i], i) != 0)
			goto out;
	/* Still with the old rules: drop the old values and operands under the puts. */
	for (size_t i = 0; i < n; i++)
		rocksdb_compact_range_cf(st->db, cfs[i], NULL, 0, NULL, 0);
	if (finish(&m, n) != 0)
		goto out;
	log_info("store: migrated %zu buckets (%zu records) to format " CODEC_FORMAT, m.keys,
		 m.records);
	rc = 0;
out:
	atomic_store(&st->legacy, false);
	if (m.wb != NULL)
		rocksdb_writebatch_destroy(m.wb);
	free(m.val);
	free(cfs);
	return rc;
}
