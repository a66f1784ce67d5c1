/*
 * store_options.c - the RocksDB options of the store (store_core.h): the record
 * families' (with the merge operator, RocksDB's callbacks around codec_merge), the
 * log families', the write and read options, and the background threads' priority.
 * The options are the struct store's; store_close destroys them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "store_core.h"
#include "store_options.h"
#include "temporis/base/log.h"
#include "temporis/data/codec.h"

/* Tuning: safe defaults for one writer with many (mostly small) sources. */
#define STORE_BACKGROUND_THREADS 2
#define STORE_WRITE_BUFFER_BYTES (64ull << 20)
/* Caps memtable memory over all families (one per source, possibly thousands). */
#define STORE_DB_WRITE_BUFFER_BYTES (512ull << 20)
/* Bounds the WAL, so a restart replays little: past it RocksDB flushes the families
 * that pin the oldest log file (idle ones included). */
#define STORE_MAX_TOTAL_WAL_BYTES (256ull << 20)
/* A log family's memtable holds one head's log (sealed at 64 MB) with room to spare:
 * it is flushed once the seal deleted it all, not before. */
#define STORE_LOG_WRITE_BUFFER_BYTES (160ull << 20)
/* Record families: compressed blocks of compressed chunks. */
#define STORE_BLOCK_BYTES (16u << 10)
/* Memtable arena growth step (RocksDB's default is write_buffer_size / 8 = 8 MB):
 * each family's active memtable holds at least one block, so with many sources
 * big blocks cost memory and count against STORE_DB_WRITE_BUFFER_BYTES. */
#define STORE_ARENA_BLOCK_BYTES (1ull << 20)

/* ---- the merge operator: RocksDB's callbacks around codec_merge ---- */

/*
 * RocksDB's C wrapper copies (result, *new_len) and passes the result to
 * lww_delete_value even when *success is 0, so a failure returns this empty,
 * never-freed sentinel with length 0 rather than NULL and an unset length.
 */
static char lww_failed[1];

/*
 * A corrupt value or operand must not fail a compaction: RocksDB would then stop
 * every write of the database. The merge keeps the first corrupt input as its
 * result instead, so that bucket (and only it) stays unreadable, loudly, for reads
 * to report; the operands merged with it are gone with it.
 */
static char *keep_corrupt(const char *key, size_t klen, const char *existing,
			  size_t existing_len, const char *const *ops, const size_t *op_lens,
			  int nops, unsigned char *success, size_t *new_len)
{
	const char *bad = existing;
	size_t len = existing_len;
	char *out;

	for (int i = 0; bad == NULL || codec_value_ok((const uint8_t *)key, klen,
						       (const uint8_t *)bad, len); i++) {
		if (i == nops)
			return lww_failed;
		bad = ops[i];
		len = op_lens[i];
	}
	out = malloc(len ? len : 1);
	if (out == NULL)
		return lww_failed;
	memcpy(out, bad, len);
	*new_len = len;
	*success = 1;
	return out;
}

/* Allocates only the result (freed by lww_delete_value). */
static char *lww_fold(const char *key, size_t klen, const char *existing, size_t existing_len,
		      const char *const *ops, const size_t *op_lens, int nops,
		      unsigned char *success, size_t *new_len)
{
	uint8_t *out;
	size_t len;

	*success = 0;
	*new_len = 0;
	if (codec_merge_key((const uint8_t *)key, klen, existing, existing_len, ops, op_lens,
			    nops > 0 ? (size_t)nops : 0, &out, &len) != 0) {
		if (errno != EINVAL)
			return lww_failed;
		log_error("store: merge: a corrupt bucket value or operand (key of %zu bytes) is "
			  "kept as it is: that bucket reads as corrupt until it is restored",
			  klen);
		return keep_corrupt(key, klen, existing, existing_len, ops, op_lens, nops, success,
				    new_len);
	}
	if (len == 0)
		return lww_failed; /* nothing was folded: there is no value to give */
	*new_len = len;
	*success = 1;
	return (char *)out;
}

static char *lww_full_merge(void *state, const char *key, size_t klen, const char *existing,
			    size_t existing_len, const char *const *ops, const size_t *op_lens,
			    int nops, unsigned char *success, size_t *new_len)
{
	return lww_fold(key, klen, existing, existing_len, ops, op_lens, nops, success, new_len);
}

static char *lww_partial_merge(void *state, const char *key, size_t klen,
			       const char *const *ops, const size_t *op_lens, int nops,
			       unsigned char *success, size_t *new_len)
{
	return lww_fold(key, klen, NULL, 0, ops, op_lens, nops, success, new_len);
}

static void lww_delete_value(void *state, const char *value, size_t vlen)
{
	if (value != lww_failed)
		free((void *)value);
}

/* RocksDB calls the destructor unconditionally; there is no state to free. */
static void lww_destroy(void *state)
{
}

static const char *lww_name(void *state)
{
	return CODEC_MERGE_NAME;
}

/* ---- options ---- */

static void set_table_options(rocksdb_options_t *opts)
{
	rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();

	if (t == NULL)
		return;  /* RocksDB's defaults then; nothing else depends on it */
	rocksdb_block_based_options_set_block_size(t, STORE_BLOCK_BYTES);
	rocksdb_options_set_block_based_table_factory(opts, t);
	rocksdb_block_based_options_destroy(t);
}

/*
 * Options the C API has no setter for, from RocksDB's option string. After a crash
 * the recovered memtables stay memtables: flushing them at open would cost a
 * restart the time to write the whole commit log into an SST file. Files are not
 * preallocated: a new WAL file would otherwise take tens of MB at once, which on a
 * nearly full disk fails a write that would have fitted.
 */
#define STORE_OPTIONS_STRING "avoid_flush_during_recovery=true;allow_fallocate=false"
/* After a damaged log was cut (--accept-data-loss), what was recovered is flushed at
 * once, so the damaged log file is obsolete and the next start does not meet it. */
#define STORE_OPTIONS_STRING_CUT_LOG "avoid_flush_during_recovery=false;allow_fallocate=false"

/* RocksDB's WAL recovery modes (the C API takes the enum's value). */
#define WAL_TOLERATE_CORRUPTED_TAIL 0
#define WAL_POINT_IN_TIME 2

static rocksdb_options_t *options_from_string(bool cut_log)
{
	rocksdb_options_t *base = rocksdb_options_create(), *opts = rocksdb_options_create();
	const char *text = cut_log ? STORE_OPTIONS_STRING_CUT_LOG : STORE_OPTIONS_STRING;
	char *rerr = NULL;

	if (base == NULL || opts == NULL) {
		if (base != NULL)
			rocksdb_options_destroy(base);
		if (opts != NULL)
			rocksdb_options_destroy(opts);
		return NULL;
	}
	rocksdb_get_options_from_string(base, text, opts, &rerr);
	if (rerr != NULL) {
		/* an older RocksDB without them: its defaults, slower recovery */
		log_warn("store: RocksDB refused the options \"%s\": %s", text, rerr);
		rocksdb_free(rerr);
		rocksdb_options_destroy(opts);
		return base;
	}
	rocksdb_options_destroy(base);
	return opts;
}

/* The record families' options (the default and catalog families share them). */
static rocksdb_options_t *store_options_new(bool cut_log)
{
	rocksdb_options_t *opts = options_from_string(cut_log);
	rocksdb_mergeoperator_t *mo;

	if (opts == NULL)
		return NULL;
	rocksdb_options_set_create_if_missing(opts, 1);
	rocksdb_options_set_create_missing_column_families(opts, 1);
	rocksdb_options_increase_parallelism(opts, STORE_BACKGROUND_THREADS);
	rocksdb_options_set_write_buffer_size(opts, STORE_WRITE_BUFFER_BYTES);
	rocksdb_options_set_db_write_buffer_size(opts, STORE_DB_WRITE_BUFFER_BYTES);
	rocksdb_options_set_max_total_wal_size(opts, STORE_MAX_TOTAL_WAL_BYTES);
	rocksdb_options_set_arena_block_size(opts, STORE_ARENA_BLOCK_BYTES);
	/* Chunks are already compact: LZ4 costs little where data is rewritten soon;
	 * ZSTD squeezes what their varints leave where it settles. */
	rocksdb_options_set_compression(opts, rocksdb_lz4_compression);
	rocksdb_options_set_bottommost_compression(opts, rocksdb_zstd_compression);
	set_table_options(opts);
	mo = rocksdb_mergeoperator_create(NULL, lww_destroy, lww_full_merge,
					  lww_partial_merge, lww_delete_value, lww_name);
	if (mo == NULL) {
		rocksdb_options_destroy(opts);
		return NULL;
	}
	/* The options take ownership; copies made for each family share it. */
	rocksdb_options_set_merge_operator(opts, mo);
	return opts;
}

/* The commit log's family: written once, deleted by seals, never merged or compressed. */
static rocksdb_options_t *log_options_new(void)
{
	rocksdb_options_t *opts = rocksdb_options_create();

	if (opts == NULL)
		return NULL;
	rocksdb_options_set_write_buffer_size(opts, STORE_LOG_WRITE_BUFFER_BYTES);
	rocksdb_options_set_arena_block_size(opts, STORE_ARENA_BLOCK_BYTES);
	rocksdb_options_set_compression(opts, rocksdb_no_compression);
	return opts;
}

/* Compactions run when the commit path leaves CPU to spare, never ahead of it. */
static void lower_compaction_priority(void)
{
	rocksdb_env_t *env = rocksdb_create_default_env();

	if (env == NULL)
		return;
	rocksdb_env_lower_thread_pool_cpu_priority(env);
	rocksdb_env_destroy(env);
}

int store_options_init(struct store *st, enum cfg_sync sync)
{
	lower_compaction_priority();
	st->opts = store_options_new(st->accept_data_loss);
	st->log_opts = log_options_new();
	st->wopts = rocksdb_writeoptions_create();
	st->catalog_wopts = rocksdb_writeoptions_create();
	st->ropts = rocksdb_readoptions_create();
	if (!st->opts || !st->log_opts || !st->wopts || !st->catalog_wopts || !st->ropts)
		return -1;
	/* A torn last record is dropped (never acknowledged); damage before it refuses the
	 * open, unless the operator said to keep what precedes it. */
	rocksdb_options_set_wal_recovery_mode(st->opts, st->accept_data_loss
							    ? WAL_POINT_IN_TIME
							    : WAL_TOLERATE_CORRUPTED_TAIL);
	rocksdb_writeoptions_set_sync(st->wopts, sync == CFG_SYNC_FSYNC);
	rocksdb_writeoptions_set_sync(st->catalog_wopts, 1);
	return 0;
}

