/*
 * store_seal.c - writing a frozen head into the source families (store_core.h).
 *
 * Each (source, series, bucket) becomes one merge operand, in key order. A source
 * with many of them gets them as one SST file, built here and ingested whole: no
 * memtable insert, no WAL, and RocksDB places the file by its keys. A source with
 * few gets them in ordinary writes, as does every source's series index. The last
 * write deletes the frozen head's log, which is then flushed away.
 * A seal that fails part way is simply done again: every operand folds the same twice.
 */
#define _GNU_SOURCE  /* qsort_r */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_core.h"
#include "store_index.h"
#include "store_seal.h"
#include "temporis/base/buf.h"
#include "temporis/base/err.h"
#include "temporis/base/log.h"

/* A source with at least this many operands in a seal gets an SST file of its own. */
#define SST_MIN_OPERANDS 4096
#define BATCH_OPERANDS 2000        /* operands per ordinary write: commits never wait long */
#define OPS_INITIAL (256u << 10)
#define INDEX_INITIAL 1024
#define SST_PATH_MAX (CFG_PATH_MAX + 64)
#define KEY_LEN_BYTES 2
#define VAL_LEN_BYTES 4

/* One index operand of the source being sealed: name (in names), partitions. */
struct index_op {
	uint32_t name_off, name_len;
	int64_t first, last;
};

struct seal_ctx {
	struct store *st;
	bool have_source;
	uint32_t source;
	rocksdb_column_family_handle_t *cf;
	struct buf ops;                /* buffered operands: u16 klen | key | u32 vlen | value */
	size_t nops;
	rocksdb_sstfilewriter_t *sst;  /* once the source has SST_MIN_OPERANDS */
	char sst_path[SST_PATH_MAX];
	struct index_op *index;
	size_t nindex, index_cap;
	struct buf names;
	rocksdb_writebatch_t *wb;
	size_t in_batch;
	uint8_t *val;
	uint64_t files, ingested;
	char err[512];
};

static int write_batch(struct seal_ctx *c, const rocksdb_writeoptions_t *wo)
{
	char *rerr = NULL;

	rocksdb_write(c->st->db, wo, c->wb, &rerr);
	rocksdb_writebatch_clear(c->wb);
	c->in_batch = 0;
	return store_take_rerr(rerr, "seal", c->err, sizeof(c->err));
}

/* One operand out in an ordinary write. */
static int put_wb(struct seal_ctx *c, const uint8_t *k, size_t klen, const uint8_t *v,
		  size_t vlen)
{
	rocksdb_writebatch_merge_cf(c->wb, c->cf, (const char *)k, klen, (const char *)v, vlen);
	if (++c->in_batch == BATCH_OPERANDS)
		return write_batch(c, c->st->wopts);
	return 0;
}

/* One record operand out, to the source's SST file or to an ordinary write. */
static int put_op(struct seal_ctx *c, const uint8_t *k, size_t klen, const uint8_t *v,
		  size_t vlen)
{
	char *rerr = NULL;

	if (c->sst == NULL)
		return put_wb(c, k, klen, v, vlen);
	rocksdb_sstfilewriter_merge(c->sst, (const char *)k, klen, (const char *)v, vlen, &rerr);
	return store_take_rerr(rerr, "seal file", c->err, sizeof(c->err));
}

static int buffer_op(struct seal_ctx *c, const uint8_t *k, size_t klen, const uint8_t *v,
		     size_t vlen)
{
	uint16_t kl = (uint16_t)klen;
	uint32_t vl = (uint32_t)vlen;

	if (buf_reserve(&c->ops, KEY_LEN_BYTES + klen + VAL_LEN_BYTES + vlen, OPS_INITIAL) != 0) {
		err_set(c->err, sizeof(c->err), "out of memory sealing");
		return -1;
	}
	buf_append(&c->ops, &kl, sizeof(kl));
	buf_append(&c->ops, k, klen);
	buf_append(&c->ops, &vl, sizeof(vl));
	buf_append(&c->ops, v, vlen);
	c->nops++;
	return 0;
}

/* The buffered operands out, in order; the buffer is empty afterwards. */
static int drain_ops(struct seal_ctx *c)
{
	const uint8_t *p = (const uint8_t *)c->ops.data, *end = p + c->ops.len;

	while (p < end) {
		uint16_t klen;
		uint32_t vlen;

		memcpy(&klen, p, sizeof(klen));
		memcpy(&vlen, p + sizeof(klen) + klen, sizeof(vlen));
		if (put_op(c, p + sizeof(klen), klen, p + sizeof(klen) + klen + sizeof(vlen),
			   vlen) != 0)
			return -1;
		p += sizeof(klen) + klen + sizeof(vlen) + vlen;
	}
	buf_reset(&c->ops);
	c->nops = 0;
	return 0;
}

static int open_sst(struct seal_ctx *c)
{
	rocksdb_envoptions_t *env = rocksdb_envoptions_create();
	char *rerr = NULL;

	if (env == NULL || (c->sst = rocksdb_sstfilewriter_create(env, c->st->opts)) == NULL) {
		if (env != NULL)
			rocksdb_envoptions_destroy(env);
		err_set(c->err, sizeof(c->err), "out of memory sealing");
		return -1;
	}
	rocksdb_envoptions_destroy(env);
	snprintf(c->sst_path, sizeof(c->sst_path), "%s/" STORE_SEAL_FILE_PREFIX "%" PRIu64
		 STORE_SEAL_FILE_SUFFIX, c->st->dir, c->files++);
	rocksdb_sstfilewriter_open(c->sst, c->sst_path, &rerr);
	if (store_take_rerr(rerr, "seal file", c->err, sizeof(c->err)) != 0)
		return -1;
	return drain_ops(c);
}

static int index_cmp(const void *pa, const void *pb, void *arg)
{
	const struct index_op *a = pa, *b = pb;
	const char *names = arg;
	int d = memcmp(names + a->name_off, names + b->name_off,
		       a->name_len < b->name_len ? a->name_len : b->name_len);

	return d != 0 ? d : a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

/* The source's index operands, one per name, in ordinary writes: out of the SST
 * file, which then spans the sealed partitions only. Their order against the
 * records does not matter: until the log is deleted, a crash seals it all again. */
static int put_index(struct seal_ctx *c)
{
	uint8_t key[CODEC_KEY_MAX], val[CODEC_INDEX_VALUE_LEN];

	if (c->nindex > 1)  /* qsort_r's array must not be NULL, even for 0 */
		qsort_r(c->index, c->nindex, sizeof(*c->index), index_cmp, c->names.data);
	for (size_t i = 0; i < c->nindex; i++) {
		struct index_op *op = &c->index[i];
		size_t klen;

		/* the same name twice (two partitions): one operand covering both */
		while (i + 1 < c->nindex && index_cmp(op, &c->index[i + 1], c->names.data) == 0) {
			op[1].first = op[1].first < op->first ? op[1].first : op->first;
			op[1].last = op[1].last > op->last ? op[1].last : op->last;
			op = &c->index[++i];
		}
		klen = codec_index_key(key, c->names.data + op->name_off, op->name_len);
		codec_index_encode(val, op->first, op->last);
		if (put_wb(c, key, klen, val, sizeof(val)) != 0)
			return -1;
	}
	c->nindex = 0;
	buf_reset(&c->names);
	return 0;
}

static int ingest(struct seal_ctx *c)
{
	rocksdb_ingestexternalfileoptions_t *io = rocksdb_ingestexternalfileoptions_create();
	const char *files[1] = { c->sst_path };
	char *rerr = NULL;

	if (io == NULL) {
		err_set(c->err, sizeof(c->err), "out of memory sealing");
		return -1;
	}
	/* Moved (hard-linked) into the database; newer than anything already there. */
	rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
	rocksdb_ingestexternalfileoptions_set_allow_global_seqno(io, 1);
	rocksdb_ingestexternalfileoptions_set_allow_blocking_flush(io, 1);
	rocksdb_ingest_external_file_cf(c->st->db, c->cf, files, 1, io, &rerr);
	rocksdb_ingestexternalfileoptions_destroy(io);
	if (store_take_rerr(rerr, "seal ingest", c->err, sizeof(c->err)) != 0)
		return -1;
	if (unlink(c->sst_path) != 0 && errno != ENOENT)
		log_warn("store: cannot remove %s: %s", c->sst_path, strerror(errno));
	c->ingested++;
	return 0;
}

/* The source's operands are all there: out they go, the index after them. */
static int finish_source(struct seal_ctx *c)
{
	char *rerr = NULL;
	int rc;

	if (!c->have_source)
		return 0;
	if (drain_ops(c) != 0)
		return -1;
	if (c->sst != NULL) {
		rocksdb_sstfilewriter_finish(c->sst, &rerr);
		rc = store_take_rerr(rerr, "seal file", c->err, sizeof(c->err));
		rocksdb_sstfilewriter_destroy(c->sst);
		c->sst = NULL;
		if (rc != 0 || ingest(c) != 0)
			return -1;
	}
	/* Only now: a reader that finds a partition in the index finds its records, which
	 * an index written before the file's ingestion named while they were still only
	 * in the frozen head ("the series index names partitions without their records",
	 * under an export racing a seal). */
	return put_index(c);
}

static int start_source(struct seal_ctx *c, uint32_t source_id)
{
	if (finish_source(c) != 0)
		return -1;
	c->have_source = true;
	c->source = source_id;
	c->cf = store_source_cf(c->st, source_id);
	if (c->cf == NULL) {
		err_set(c->err, sizeof(c->err), "source %" PRIu32 " has no column family",
			source_id);
		return -1;
	}
	return 0;
}

static int note_index(struct seal_ctx *c, const char *name, size_t len, int64_t partition)
{
	void *p = c->index;

	if (!store_index_wanted(c->st->heads.index, c->source, name, len, partition))
		return 0;
	if (vec_reserve(&p, &c->index_cap, c->nindex + 1, sizeof(*c->index), INDEX_INITIAL) != 0 ||
	    buf_append(&c->names, name, len) != 0) {
		err_set(c->err, sizeof(c->err), "out of memory sealing");
		return -1;
	}
	c->index = p;
	c->index[c->nindex++] = (struct index_op){ .name_off = (uint32_t)(c->names.len - len),
						   .name_len = (uint32_t)len,
						   .first = partition, .last = partition };
	return 0;
}

static int seal_group(uint32_t source_id, const char *name, size_t name_len, int64_t bucket,
		      const struct chunk_entry *e, size_t n, void *arg)
{
	struct seal_ctx *c = arg;
	uint8_t key[CODEC_KEY_MAX];
	size_t klen, vlen;

	if ((!c->have_source || source_id != c->source) && start_source(c, source_id) != 0)
		return -1;
	klen = codec_key_encode(key, name, name_len, bucket);
	vlen = codec_value_encode(e, n, c->val);
	if (note_index(c, name, name_len, codec_partition(bucket)) != 0)
		return -1;
	if (c->sst != NULL)
		return put_op(c, key, klen, c->val, vlen);
	if (buffer_op(c, key, klen, c->val, vlen) != 0)
		return -1;
	return c->nops == SST_MIN_OPERANDS ? open_sst(c) : 0;
}

/* In the background: a failure only means the log's memtable lives a little longer. */
static void flush_log(struct store *st, unsigned log)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	char *rerr = NULL;

	if (fo == NULL)
		return;
	rocksdb_flushoptions_set_wait(fo, 0);
	rocksdb_flush_cf(st->db, fo, st->cf_log[log], &rerr);
	if (rerr != NULL) {
		log_warn("store: flush of the sealed log failed: %s", rerr);
		rocksdb_free(rerr);
	}
	rocksdb_flushoptions_destroy(fo);
}

/* Everything sealed: the log below log_end goes, in an ordinary (synced per sync) write. */
static int drop_log(struct seal_ctx *c, unsigned log, uint64_t log_end)
{
	uint8_t lo[STORE_LOG_KEY_LEN], hi[STORE_LOG_KEY_LEN];

	store_log_key(lo, 0);
	store_log_key(hi, log_end);
	rocksdb_writebatch_delete_range_cf(c->wb, c->st->cf_log[log], (const char *)lo, sizeof(lo),
					   (const char *)hi, sizeof(hi));
	if (write_batch(c, c->st->wopts) != 0)
		return -1;
	flush_log(c->st, log);
	return 0;
}

int store_seal_head(struct store *st, struct head *h, unsigned log, uint64_t log_end,
		    char *err, size_t errlen)
{
	static struct chunk_entry scratch[2 * CODEC_BUCKET_SPAN]; /* the sealer's alone */
	struct seal_ctx c = { .st = st, .wb = rocksdb_writebatch_create(),
			      .val = malloc(codec_value_bound(CODEC_BUCKET_SPAN)) };
	int rc = -1;

	if (c.wb == NULL || c.val == NULL) {
		err_set(err, errlen, "out of memory sealing");
		goto out;
	}
	if (head_each_group(h, scratch, CODEC_BUCKET_SPAN, seal_group, &c) != 0 ||
	    finish_source(&c) != 0 || drop_log(&c, log, log_end) != 0) {
		err_set(err, errlen, "%s", c.err[0] ? c.err : "out of memory sealing");
		goto out;
	}
	atomic_fetch_add(&st->heads.seal_files, c.ingested);
	rc = 0;
out:
	if (c.sst != NULL) {
		rocksdb_sstfilewriter_destroy(c.sst);
		unlink(c.sst_path);
	}
	if (rc != 0)
		store_index_cache_reset(st->heads.index);  /* it may claim what was not written */
	if (c.wb != NULL)
		rocksdb_writebatch_destroy(c.wb);
	free(c.index);
	buf_free(&c.names);
	buf_free(&c.ops);
	free(c.val);
	return rc;
}
