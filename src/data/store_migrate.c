/*
 * store_migrate.c - opening a store of format "2": every record of every source is
 * rewritten in format "3". A format "2" key starts with its series name, a format
 * "3" key with a tag byte no name starts with, so both live side by side while the
 * migration runs and the merge operator folds each by its own rules. A format "2"
 * bucket (256 seconds) lies inside one format "3" bucket: it becomes a merge operand
 * of that bucket, its offsets moved. Each write also merges the series index and
 * deletes the old keys it replaced: a migration that stops half way (the marker
 * still "2") resumes with what is left, and an operand written twice folds the same.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_core.h"
#include "store_migrate.h"
#include "temporis/base/err.h"
#include "temporis/base/log.h"

#define MIGRATE_BATCH_KEYS 10000

struct migration {
	struct store *st;
	rocksdb_column_family_handle_t *cf;
	rocksdb_writebatch_t *wb;
	uint8_t *val;
	size_t in_batch, keys, records;
	/* the series being rewritten, and the partitions it spans so far */
	char name[REC_NAME_MAX];
	size_t name_len;
	int64_t first_p, last_p;
	char *err;
	size_t errlen;
};

/* The series index of the series just finished (or cut by a batch end). */
static void note_series(struct migration *m)
{
	uint8_t key[CODEC_KEY_MAX], val[CODEC_INDEX_VALUE_LEN];
	size_t klen;

	if (m->name_len == 0)
		return;
	klen = codec_index_key(key, m->name, m->name_len);
	codec_index_encode(val, m->first_p, m->last_p);
	rocksdb_writebatch_merge_cf(m->wb, m->cf, (const char *)key, klen, (const char *)val,
				    sizeof(val));
	m->name_len = 0;
}

static int migrate_write(struct migration *m)
{
	char *rerr = NULL;

	note_series(m);
	rocksdb_write(m->st->db, m->st->catalog_wopts, m->wb, &rerr);
	rocksdb_writebatch_clear(m->wb);
	m->in_batch = 0;
	return store_take_rerr(rerr, "migration write", m->err, m->errlen);
}

static int migrate_key(struct migration *m, const uint8_t *k, size_t klen, const uint8_t *v,
		       size_t vlen)
{
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	uint8_t key[CODEC_KEY_MAX];
	size_t name_len, nklen, len;
	int64_t bucket, p;
	ssize_t n;

	if (!codec_legacy_key(k, klen, &name_len, &bucket) ||
	    (n = codec_legacy_decode(v, vlen, e)) <= 0) {
		err_set(m->err, m->errlen, "a format 2 bucket (%zu bytes) does not decode", vlen);
		return -1;
	}
	if (name_len != m->name_len || memcmp(k, m->name, name_len) != 0) {
		note_series(m);
		memcpy(m->name, k, name_len);
		m->name_len = name_len;
		m->first_p = INT64_MAX;
		m->last_p = INT64_MIN;
	}
	for (ssize_t i = 0; i < n; i++)
		e[i].off = codec_offset((int64_t)((uint64_t)bucket + e[i].off));
	bucket = codec_bucket(bucket);
	p = codec_partition(bucket);
	m->first_p = p < m->first_p ? p : m->first_p;
	m->last_p = p > m->last_p ? p : m->last_p;
	nklen = codec_key_encode(key, (const char *)k, name_len, bucket);
	len = codec_value_encode(e, (size_t)n, m->val);
	rocksdb_writebatch_merge_cf(m->wb, m->cf, (const char *)key, nklen, (const char *)m->val,
				    len);
	rocksdb_writebatch_delete_cf(m->wb, m->cf, (const char *)k, klen);
	m->keys++;
	m->records += (size_t)n;
	if (++m->in_batch == MIGRATE_BATCH_KEYS)
		return migrate_write(m);
	return 0;
}

/* Every format "2" key of one family: they all sort after the tag bytes. */
static int migrate_family(struct migration *m)
{
	static const uint8_t first_legacy[1] = { CODEC_KEY_INDEX + 1 };
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(m->st->db, m->st->ropts, m->cf);
	int rc = 0;

	if (it == NULL) {
		err_set(m->err, m->errlen, "out of memory migrating");
		return -1;
	}
	m->name_len = 0;
	for (rocksdb_iter_seek(it, (const char *)first_legacy, sizeof(first_legacy));
	     rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);

		rc = migrate_key(m, (const uint8_t *)k, klen, (const uint8_t *)v, vlen);
	}
	if (rc == 0 && store_iter_status(it, "migration") != 0) {
		err_set(m->err, m->errlen, "reading a format 2 family failed (see the log)");
		rc = -1;
	}
	rocksdb_iter_destroy(it);
	return rc == 0 ? migrate_write(m) : -1;
}

int store_migrate(struct store *st, const char *dir, char *err, size_t errlen)
{
	struct migration m = { .st = st, .wb = rocksdb_writebatch_create(),
			       .val = malloc(codec_value_bound(CODEC_BUCKET_SPAN)),
			       .err = err, .errlen = errlen };
	size_t n = 0;
	rocksdb_column_family_handle_t **cfs = store_source_cfs(st, &n);
	char *rerr = NULL;
	int rc = -1;

	if (m.wb == NULL || m.val == NULL || cfs == NULL) {
		err_set(err, errlen, "out of memory migrating");
		goto out;
	}
	log_info("store: %s is of format " CODEC_FORMAT_LEGACY "; rewriting %zu sources in format "
		 CODEC_FORMAT, dir, n);
	for (size_t i = 0; i < n; i++) {
		m.cf = cfs[i];
		if (migrate_family(&m) != 0)
			goto out;
	}
	rocksdb_put_cf(st->db, st->catalog_wopts, st->cf_default, STORE_FORMAT_KEY,
		       strlen(STORE_FORMAT_KEY), CODEC_FORMAT, strlen(CODEC_FORMAT), &rerr);
	if (store_take_rerr(rerr, "write format marker", err, errlen) != 0)
		goto out;
	log_info("store: migrated %zu buckets (%zu records) to format " CODEC_FORMAT, m.keys,
		 m.records);
	rc = 0;
out:
	if (m.wb != NULL)
		rocksdb_writebatch_destroy(m.wb);
	free(m.val);
	free(cfs);
	return rc;
}
