/*
 * store.c - RocksDB storage for the writer process: column families, record
 * key/value encoding, the last-write-wins merge operator, batches and reads.
 *
 * Owns the rocksdb_t, its options, and every column family handle; the handle
 * table (source id -> handle) lives here, guarded by a mutex.
 */
#include "temporis/store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <rocksdb/c.h>

#include "temporis/log.h"

/* Tuning: safe defaults for one writer with many (mostly small) sources. */
#define STORE_BACKGROUND_THREADS 2
#define STORE_WRITE_BUFFER_BYTES (64ull << 20)
/* Caps memtable memory over all families (one per source, possibly thousands). */
#define STORE_DB_WRITE_BUFFER_BYTES (512ull << 20)
/* Forces flushes of idle families so they do not pin old WAL files forever. */
#define STORE_MAX_TOTAL_WAL_BYTES (1ull << 30)

#define STORE_MERGE_NAME "temporis.lww.v1"
#define STORE_CF_DEFAULT "default"
#define STORE_CF_CATALOG "catalog"
#define STORE_CF_SOURCE_PREFIX "src_"
#define STORE_CF_NAME_MAX 32
#define STORE_HWM_KEY "version_hwm"
#define STORE_HWM_LEN 8

#define STORE_TS_LEN 8
#define STORE_SEP_LEN 1
#define STORE_KEY_SUFFIX_LEN (STORE_SEP_LEN + STORE_TS_LEN)
#define STORE_KEY_MAX (REC_NAME_MAX + STORE_KEY_SUFFIX_LEN)
#define STORE_QUEUE_INITIAL 1024     /* queued merges before the first growth */
#define STORE_NAME_SEP 0x00
#define STORE_NAME_AFTER 0x01 /* separator + 1: seeks past every key of a series */
#define STORE_TS_FLIP 0x8000000000000000ull
#define STORE_VERSION_OFF 0
#define STORE_TYPE_OFF 8
#define STORE_PAYLOAD_OFF 9
#define STORE_TABLE_INITIAL 16

struct source_cf {
	uint32_t id;
	rocksdb_column_family_handle_t *cf;
};

struct store {
	rocksdb_t *db;
	rocksdb_options_t *opts; /* owns the merge operator (shared_ptr inside) */
	rocksdb_writeoptions_t *wopts;
	rocksdb_writeoptions_t *catalog_wopts;
	rocksdb_readoptions_t *ropts;
	rocksdb_column_family_handle_t *cf_default;
	rocksdb_column_family_handle_t *cf_catalog;
	/* Written by the commit thread only; read from any thread. */
	_Atomic uint64_t hwm;
	/* Sorted by id. Handles are never freed before store_close, so a looked-up
	 * handle stays valid after the lock is dropped; only the array moves. */
	pthread_mutex_t table_lock;
	struct source_cf *sources;
	size_t nsources, cap;
	/* Serializes source creation without holding table_lock during the slow part. */
	pthread_mutex_t create_lock;
};

/*
 * Merges are queued here and written into the WriteBatch sorted by (source, key)
 * at commit: RocksDB inserts sorted keys into its memtable markedly faster. The
 * sort keeps queue order among equal keys (seq), which is what makes the later
 * of two equal-version operands win.
 */
struct queued_merge {
	rocksdb_column_family_handle_t *cf;
	uint32_t source_id;
	uint32_t key_off;              /* into keys */
	uint32_t key_len;
	uint32_t seq;
	uint8_t val[STORE_VALUE_LEN];
};

struct store_batch {
	rocksdb_writebatch_t *wb;
	uint64_t max_version;
	size_t count;
	struct queued_merge *q;
	size_t q_cap;
	uint8_t *keys;
	size_t keys_len, keys_cap;
	bool built;                    /* wb holds the sorted queue */
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen,
							   const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Reports a RocksDB error string (if any) and frees it; returns -1 if there was one. */
static int take_rerr(char *rerr, const char *what, char *err, size_t errlen)
{
	if (rerr == NULL)
		return 0;
	set_err(err, errlen, "%s: %s", what, rerr);
	rocksdb_free(rerr);
	return -1;
}

/* ---- encoding ---- */

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Flipping the sign bit makes big-endian byte order equal signed numeric order. */
static size_t key_encode(uint8_t *dst, const char *name, size_t name_len, int64_t ts)
{
	memcpy(dst, name, name_len);
	dst[name_len] = STORE_NAME_SEP;
	put_be64(dst + name_len + STORE_SEP_LEN, (uint64_t)ts ^ STORE_TS_FLIP);
	return name_len + STORE_KEY_SUFFIX_LEN;
}

/* Name length of a record key, or -1 if the key is not one. */
static ssize_t key_name_len(const char *key, size_t klen)
{
	size_t nl;

	if (klen <= STORE_KEY_SUFFIX_LEN || klen > STORE_KEY_MAX)
		return -1;
	nl = klen - STORE_KEY_SUFFIX_LEN;
	if ((uint8_t)key[nl] != STORE_NAME_SEP)
		return -1;
	return (ssize_t)nl;
}

static int64_t key_ts(const char *key, size_t klen)
{
	return (int64_t)(get_be64((const uint8_t *)key + klen - STORE_TS_LEN) ^ STORE_TS_FLIP);
}

static void value_encode(uint8_t *dst, uint64_t version, const struct rec *r)
{
	uint64_t bits;

	memcpy(&bits, &r->v, sizeof(bits));
	put_le64(dst + STORE_VERSION_OFF, version);
	dst[STORE_TYPE_OFF] = r->type;
	put_le64(dst + STORE_PAYLOAD_OFF, bits);
}

/* Fills out->type and out->v; -1 if the bytes are not a stored value. */
static int value_decode(const char *val, size_t vlen, struct rec *out)
{
	const uint8_t *p = (const uint8_t *)val;
	uint64_t bits;

	if (vlen != STORE_VALUE_LEN)
		return -1;
	if (p[STORE_TYPE_OFF] != REC_INT && p[STORE_TYPE_OFF] != REC_DOUBLE)
		return -1;
	out->type = p[STORE_TYPE_OFF];
	bits = get_le64(p + STORE_PAYLOAD_OFF);
	memcpy(&out->v, &bits, sizeof(bits));
	return 0;
}

/* ---- merge operator: last write wins by version ---- */

/*
 * Keeps the highest version among best (may be NULL) and the operands; on equal
 * versions the later one, since operands come oldest first and best is older still.
 * Allocates only the result (freed by lww_delete_value).
 */
static char *lww_pick(const char *best, const char *const *ops, const size_t *op_lens,
		      int nops, unsigned char *success, size_t *new_len)
{
	uint64_t best_version = 0;
	char *out;

	*success = 0;
	if (best != NULL)
		best_version = get_le64((const uint8_t *)best + STORE_VERSION_OFF);
	for (int i = 0; i < nops; i++) {
		uint64_t v;

		if (op_lens[i] != STORE_VALUE_LEN)
			return NULL;
		v = get_le64((const uint8_t *)ops[i] + STORE_VERSION_OFF);
		if (best == NULL || v >= best_version) {
			best = ops[i];
			best_version = v;
		}
	}
	if (best == NULL)
		return NULL;
	out = malloc(STORE_VALUE_LEN);
	if (out == NULL)
		return NULL;
	memcpy(out, best, STORE_VALUE_LEN);
	*new_len = STORE_VALUE_LEN;
	*success = 1;
	return out;
}

static char *lww_full_merge(void *state, const char *key, size_t klen, const char *existing,
			    size_t existing_len, const char *const *ops, const size_t *op_lens,
			    int nops, unsigned char *success, size_t *new_len)
{
	if (existing != NULL && existing_len != STORE_VALUE_LEN) {
		*success = 0;
		return NULL;
	}
	return lww_pick(existing, ops, op_lens, nops, success, new_len);
}

static char *lww_partial_merge(void *state, const char *key, size_t klen,
			       const char *const *ops, const size_t *op_lens, int nops,
			       unsigned char *success, size_t *new_len)
{
	return lww_pick(NULL, ops, op_lens, nops, success, new_len);
}

static void lww_delete_value(void *state, const char *value, size_t vlen)
{
	free((void *)value);
}

/* RocksDB calls the destructor unconditionally; there is no state to free. */
static void lww_destroy(void *state)
{
}

static const char *lww_name(void *state)
{
	return STORE_MERGE_NAME;
}

/* ---- source handle table ---- */

/* Index of the first entry with id >= source_id. Caller holds table_lock. */
static size_t table_lower_bound(const struct store *st, uint32_t source_id)
{
	size_t lo = 0, hi = st->nsources;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->sources[mid].id < source_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static rocksdb_column_family_handle_t *source_cf(struct store *st, uint32_t source_id)
{
	rocksdb_column_family_handle_t *cf = NULL;
	size_t i;

	pthread_mutex_lock(&st->table_lock);
	i = table_lower_bound(st, source_id);
	if (i < st->nsources && st->sources[i].id == source_id)
		cf = st->sources[i].cf;
	pthread_mutex_unlock(&st->table_lock);
	return cf;
}

/* Adds a handle the table then owns. Caller holds table_lock. 0 or -1 (ENOMEM). */
static int table_insert(struct store *st, uint32_t source_id,
			rocksdb_column_family_handle_t *cf)
{
	size_t i;

	if (st->nsources == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : STORE_TABLE_INITIAL;
		struct source_cf *n = realloc(st->sources, ncap * sizeof(*n));

		if (n == NULL)
			return -1;
		st->sources = n;
		st->cap = ncap;
	}
	i = table_lower_bound(st, source_id);
	memmove(&st->sources[i + 1], &st->sources[i],
		(st->nsources - i) * sizeof(st->sources[0]));
	st->sources[i].id = source_id;
	st->sources[i].cf = cf;
	st->nsources++;
	return 0;
}

/*
 * Every family's handle (default, catalog, sources), copied under the lock so
 * maintenance can run without blocking the commit path. Caller frees.
 */
static rocksdb_column_family_handle_t **all_cfs(struct store *st, size_t *n)
{
	rocksdb_column_family_handle_t **cfs;

	pthread_mutex_lock(&st->table_lock);
	cfs = malloc((st->nsources + 2) * sizeof(*cfs));
	if (cfs != NULL) {
		cfs[0] = st->cf_default;
		cfs[1] = st->cf_catalog;
		for (size_t i = 0; i < st->nsources; i++)
			cfs[i + 2] = st->sources[i].cf;
		*n = st->nsources + 2;
	}
	pthread_mutex_unlock(&st->table_lock);
	return cfs;
}

/* "src_<decimal id>" -> id; -1 if name is not a source family. */
static int parse_source_name(const char *name, uint32_t *id)
{
	size_t plen = strlen(STORE_CF_SOURCE_PREFIX);
	const char *digits = name + plen;
	unsigned long long v;
	char *end;

	if (strncmp(name, STORE_CF_SOURCE_PREFIX, plen) != 0)
		return -1;
	if (*digits < '0' || *digits > '9')
		return -1;
	errno = 0;
	v = strtoull(digits, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX)
		return -1;
	*id = (uint32_t)v;
	return 0;
}

/* ---- open / close ---- */

static rocksdb_options_t *store_options_new(void)
{
	rocksdb_options_t *opts = rocksdb_options_create();
	rocksdb_mergeoperator_t *mo;

	if (opts == NULL)
		return NULL;
	rocksdb_options_set_create_if_missing(opts, 1);
	rocksdb_options_set_create_missing_column_families(opts, 1);
	rocksdb_options_increase_parallelism(opts, STORE_BACKGROUND_THREADS);
	rocksdb_options_set_write_buffer_size(opts, STORE_WRITE_BUFFER_BYTES);
	rocksdb_options_set_db_write_buffer_size(opts, STORE_DB_WRITE_BUFFER_BYTES);
	rocksdb_options_set_max_total_wal_size(opts, STORE_MAX_TOTAL_WAL_BYTES);
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

/* True when dir holds no database yet (no CURRENT file); the open will create one. */
static bool no_database_yet(const char *dir)
{
	char path[PATH_MAX];
	struct stat sb;
	int len = snprintf(path, sizeof(path), "%s/CURRENT", dir);

	if (len < 0 || (size_t)len >= sizeof(path))
		return false;
	return stat(path, &sb) != 0 && errno == ENOENT;
}

/*
 * Names of the existing families plus "catalog" if missing; a directory that
 * holds no database yet has just "default". Free with free_cf_names.
 */
static char **list_cf_names(struct store *st, const char *dir, size_t *n, char *err,
			    size_t errlen)
{
	char *rerr = NULL;
	char **names = rocksdb_list_column_families(st->opts, dir, n, &rerr);
	char **out;
	size_t i, have = 0;

	if (rerr != NULL) {
		/* Even on error the C API hands back a malloc(0) array to free. */
		if (names != NULL)
			rocksdb_list_column_families_destroy(names, *n);
		names = NULL;
		*n = 0;
		if (!no_database_yet(dir)) {
			take_rerr(rerr, "list column families", err, errlen);
			return NULL;
		}
		rocksdb_free(rerr);
	}
	out = calloc(*n + 2, sizeof(*out));
	if (out == NULL)
		goto fail;
	for (i = 0; i < *n; i++)
		if ((out[have++] = strdup(names[i])) == NULL)
			goto fail;
	if (*n == 0 && (out[have++] = strdup(STORE_CF_DEFAULT)) == NULL)
		goto fail;
	for (i = 0; i < have && strcmp(out[i], STORE_CF_CATALOG) != 0; i++)
		;
	if (i == have && (out[have++] = strdup(STORE_CF_CATALOG)) == NULL)
		goto fail;
	if (names != NULL)
		rocksdb_list_column_families_destroy(names, *n);
	*n = have;
	return out;
fail:
	set_err(err, errlen, "out of memory listing column families");
	if (names != NULL)
		rocksdb_list_column_families_destroy(names, *n);
	for (i = 0; out != NULL && i < have; i++)
		free(out[i]);
	free(out);
	return NULL;
}

static void free_cf_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Sorts opened handles into default, catalog and the source table; drops others. */
static int adopt_cfs(struct store *st, char **names, rocksdb_column_family_handle_t **h,
		     size_t n, char *err, size_t errlen)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t id;

		if (strcmp(names[i], STORE_CF_DEFAULT) == 0) {
			st->cf_default = h[i];
		} else if (strcmp(names[i], STORE_CF_CATALOG) == 0) {
			st->cf_catalog = h[i];
		} else if (rc == 0 && parse_source_name(names[i], &id) == 0) {
			if (table_insert(st, id, h[i]) == 0)
				continue;
			set_err(err, errlen, "out of memory opening sources");
			rc = -1;
			rocksdb_column_family_handle_destroy(h[i]);
		} else {
			if (rc == 0)
				log_warn("store: ignoring unknown column family");
			rocksdb_column_family_handle_destroy(h[i]);
		}
	}
	return rc;
}

static int open_db(struct store *st, const char *dir, char *err, size_t errlen)
{
	size_t n = 0;
	char **names = list_cf_names(st, dir, &n, err, errlen);
	const rocksdb_options_t **cf_opts = NULL;
	rocksdb_column_family_handle_t **h = NULL;
	char *rerr = NULL;
	int rc = -1;

	if (names == NULL)
		return -1;
	cf_opts = malloc(n * sizeof(*cf_opts));
	h = calloc(n, sizeof(*h));
	if (cf_opts == NULL || h == NULL) {
		set_err(err, errlen, "out of memory opening store");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		cf_opts[i] = st->opts; /* copied per family, merge operator shared */
	st->db = rocksdb_open_column_families(st->opts, dir, (int)n,
					      (const char *const *)names, cf_opts, h, &rerr);
	if (take_rerr(rerr, "open", err, errlen) != 0)
		goto out;
	rc = adopt_cfs(st, names, h, n, err, errlen);
out:
	free(h);
	free(cf_opts);
	free_cf_names(names, n);
	return rc;
}

static int load_hwm(struct store *st, char *err, size_t errlen)
{
	size_t vlen = 0;
	char *rerr = NULL;
	char *val = rocksdb_get_cf(st->db, st->ropts, st->cf_default, STORE_HWM_KEY,
				   strlen(STORE_HWM_KEY), &vlen, &rerr);

	if (take_rerr(rerr, "read version_hwm", err, errlen) != 0)
		return -1;
	if (val == NULL) {
		atomic_store(&st->hwm, 0);
		return 0;
	}
	if (vlen != STORE_HWM_LEN) {
		rocksdb_free(val);
		set_err(err, errlen, "corrupt version_hwm (%zu bytes)", vlen);
		return -1;
	}
	atomic_store(&st->hwm, get_le64((const uint8_t *)val));
	rocksdb_free(val);
	return 0;
}

static int init_options(struct store *st, enum cfg_sync sync)
{
	st->opts = store_options_new();
	st->wopts = rocksdb_writeoptions_create();
	st->catalog_wopts = rocksdb_writeoptions_create();
	st->ropts = rocksdb_readoptions_create();
	if (!st->opts || !st->wopts || !st->catalog_wopts || !st->ropts)
		return -1;
	rocksdb_writeoptions_set_sync(st->wopts, sync == CFG_SYNC_FSYNC);
	rocksdb_writeoptions_set_sync(st->catalog_wopts, 1);
	return 0;
}

int store_open(const char *dir, enum cfg_sync sync, struct store **out, char *err,
	       size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));

	if (st == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	/* Static initializers cannot fail, so store_close may always destroy them. */
	st->table_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	st->create_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	if (init_options(st, sync) != 0) {
		set_err(err, errlen, "out of memory creating options");
		goto fail;
	}
	if (open_db(st, dir, err, errlen) != 0 || load_hwm(st, err, errlen) != 0)
		goto fail;
	*out = st;
	return 0;
fail:
	store_close(st);
	return -1;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nsources; i++)
		rocksdb_column_family_handle_destroy(st->sources[i].cf);
	if (st->cf_catalog != NULL)
		rocksdb_column_family_handle_destroy(st->cf_catalog);
	if (st->cf_default != NULL)
		rocksdb_column_family_handle_destroy(st->cf_default);
	if (st->db != NULL)
		rocksdb_close(st->db);
	if (st->ropts != NULL)
		rocksdb_readoptions_destroy(st->ropts);
	if (st->catalog_wopts != NULL)
		rocksdb_writeoptions_destroy(st->catalog_wopts);
	if (st->wopts != NULL)
		rocksdb_writeoptions_destroy(st->wopts);
	if (st->opts != NULL)
		rocksdb_options_destroy(st->opts);
	free(st->sources);
	pthread_mutex_destroy(&st->create_lock);
	pthread_mutex_destroy(&st->table_lock);
	free(st);
}

/* ---- sources ---- */

static int source_create_locked(struct store *st, uint32_t source_id, char *err,
				size_t errlen)
{
	char name[STORE_CF_NAME_MAX];
	char *rerr = NULL;
	rocksdb_column_family_handle_t *cf;
	int rc;

	if (source_cf(st, source_id) != NULL)
		return 0;
	snprintf(name, sizeof(name), STORE_CF_SOURCE_PREFIX "%" PRIu32, source_id);
	cf = rocksdb_create_column_family(st->db, st->opts, name, &rerr);
	if (take_rerr(rerr, "create column family", err, errlen) != 0)
		return -1;
	pthread_mutex_lock(&st->table_lock);
	rc = table_insert(st, source_id, cf);
	pthread_mutex_unlock(&st->table_lock);
	if (rc != 0) {
		/* The family exists on disk and is adopted at the next open. */
		rocksdb_column_family_handle_destroy(cf);
		set_err(err, errlen, "out of memory adding source");
	}
	return rc;
}

int store_source_create(struct store *st, uint32_t source_id, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&st->create_lock);
	rc = source_create_locked(st, source_id, err, errlen);
	pthread_mutex_unlock(&st->create_lock);
	return rc;
}

bool store_source_exists(struct store *st, uint32_t source_id)
{
	return source_cf(st, source_id) != NULL;
}

uint64_t store_version_hwm(struct store *st)
{
	return atomic_load(&st->hwm);
}

/* ---- batches ---- */

struct store_batch *store_batch_new(void)
{
	struct store_batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->wb = rocksdb_writebatch_create();
	if (b->wb == NULL) {
		free(b);
		return NULL;
	}
	return b;
}

void store_batch_free(struct store_batch *b)
{
	if (b == NULL)
		return;
	rocksdb_writebatch_destroy(b->wb);
	free(b->q);
	free(b->keys);
	free(b);
}

void store_batch_clear(struct store_batch *b)
{
	rocksdb_writebatch_clear(b->wb);
	b->max_version = 0;
	b->count = 0;
	b->keys_len = 0;
	b->built = false;
}

/* Room for one more merge and klen key bytes; -1 when memory runs out. */
static int queue_reserve(struct store_batch *b, size_t klen)
{
	if (b->count == b->q_cap) {
		size_t cap = b->q_cap ? b->q_cap * 2 : STORE_QUEUE_INITIAL;
		struct queued_merge *q = realloc(b->q, cap * sizeof(*q));

		if (q == NULL)
			return -1;
		b->q = q;
		b->q_cap = cap;
	}
	if (b->keys_cap - b->keys_len < klen) {
		size_t cap = b->keys_cap ? b->keys_cap * 2 : STORE_QUEUE_INITIAL * STORE_KEY_MAX;
		uint8_t *keys;

		while (cap - b->keys_len < klen)
			cap *= 2;
		keys = realloc(b->keys, cap);
		if (keys == NULL)
			return -1;
		b->keys = keys;
		b->keys_cap = cap;
	}
	return 0;
}

static const uint8_t *sort_keys;   /* qsort has no context argument; one commit thread */

static int queued_cmp(const void *pa, const void *pb)
{
	const struct queued_merge *a = pa, *b = pb;
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c;

	if (a->source_id != b->source_id)
		return a->source_id < b->source_id ? -1 : 1;
	c = memcmp(sort_keys + a->key_off, sort_keys + b->key_off, n);
	if (c != 0)
		return c;
	if (a->key_len != b->key_len)
		return a->key_len < b->key_len ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void batch_build(struct store_batch *b)
{
	sort_keys = b->keys;
	qsort(b->q, b->count, sizeof(*b->q), queued_cmp);
	for (size_t i = 0; i < b->count; i++) {
		const struct queued_merge *m = &b->q[i];

		rocksdb_writebatch_merge_cf(b->wb, m->cf, (const char *)b->keys + m->key_off,
					    m->key_len, (const char *)m->val, sizeof(m->val));
	}
	b->built = true;
}

int store_batch_merge(struct store *st, struct store_batch *b, uint32_t source_id,
		      uint64_t version, const struct rec *r)
{
	rocksdb_column_family_handle_t *cf = source_cf(st, source_id);
	struct queued_merge *m;

	if (cf == NULL || r->name_len == 0 || r->name_len > REC_NAME_MAX ||
	    (r->type != REC_INT && r->type != REC_DOUBLE) || b->built ||
	    b->count >= UINT32_MAX || queue_reserve(b, STORE_KEY_MAX) < 0)
		return -1;
	m = &b->q[b->count];
	m->cf = cf;
	m->source_id = source_id;
	m->key_off = (uint32_t)b->keys_len;
	m->key_len = (uint32_t)key_encode(b->keys + b->keys_len, r->name, r->name_len, r->ts);
	m->seq = (uint32_t)b->count;
	b->keys_len += m->key_len;
	value_encode(m->val, version, r);
	if (version > b->max_version)
		b->max_version = version;
	b->count++;
	return 0;
}

size_t store_batch_count(const struct store_batch *b)
{
	return b->count;
}

/*
 * The high-water mark rides in the same WriteBatch, so it is durable exactly when
 * the records are. A save point removes it afterwards: the batch stays as the
 * caller built it, ready for a retry.
 */
int store_batch_commit(struct store *st, struct store_batch *b, char *err, size_t errlen)
{
	uint64_t hwm = atomic_load(&st->hwm);
	uint8_t enc[STORE_HWM_LEN];
	char *rerr = NULL;
	int rc;

	if (b->count == 0)
		return 0;
	if (!b->built)
		batch_build(b);
	if (b->max_version > hwm)
		hwm = b->max_version;
	put_le64(enc, hwm);
	rocksdb_writebatch_set_save_point(b->wb);
	rocksdb_writebatch_put_cf(b->wb, st->cf_default, STORE_HWM_KEY, strlen(STORE_HWM_KEY),
				  (const char *)enc, sizeof(enc));
	rocksdb_write(st->db, st->wopts, b->wb, &rerr);
	rc = take_rerr(rerr, "write batch", err, errlen);
	rocksdb_writebatch_rollback_to_save_point(b->wb, &rerr);
	if (rerr != NULL) {
		/* Cannot happen with a save point just set; the extra put is harmless. */
		log_error("store: rollback to save point failed: %s", rerr);
		rocksdb_free(rerr);
	}
	if (rc == 0)
		atomic_store(&st->hwm, hwm);
	return rc;
}

/* ---- reads ---- */

int store_get(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	      int64_t ts, struct rec *out)
{
	uint8_t key[STORE_KEY_MAX];
	rocksdb_column_family_handle_t *cf = source_cf(st, source_id);
	size_t klen, vlen = 0;
	char *rerr = NULL, *val;
	int rc;

	if (cf == NULL || name_len == 0 || name_len > REC_NAME_MAX)
		return -1;
	klen = key_encode(key, name, name_len, ts);
	val = rocksdb_get_cf(st->db, st->ropts, cf, (const char *)key, klen, &vlen, &rerr);
	if (rerr != NULL) {
		log_error("store: get: %s", rerr);
		rocksdb_free(rerr);
		return -1;
	}
	if (val == NULL)
		return 0;
	rc = value_decode(val, vlen, out);
	rocksdb_free(val);
	if (rc != 0)
		return -1;
	out->ts = ts;
	return 1;
}

/* -1 (and logs) if the iterator stopped on an error rather than at the end. */
static int iter_status(rocksdb_iterator_t *it, const char *what)
{
	char *rerr = NULL;

	rocksdb_iter_get_error(it, &rerr);
	if (rerr == NULL)
		return 0;
	log_error("store: %s: %s", what, rerr);
	rocksdb_free(rerr);
	return -1;
}

struct scan_ctx {
	const char *name;
	size_t name_len;
	uint32_t limit;
	store_rec_cb cb;
	void *arg;
	bool *more;
	int64_t *next_ts;
};

static int scan_iter(rocksdb_iterator_t *it, const struct scan_ctx *c)
{
	uint32_t given = 0;

	for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		struct rec r = { .name = c->name, .name_len = (uint16_t)c->name_len };

		if (key_name_len(k, klen) != (ssize_t)c->name_len)
			return -1; /* bounds keep us inside the series */
		r.ts = key_ts(k, klen);
		if (given == c->limit) {
			*c->more = true;
			*c->next_ts = r.ts;
			return 0;
		}
		if (value_decode(v, vlen, &r) != 0) {
			log_error("store: corrupt record value (%zu bytes)", vlen);
			return -1;
		}
		given++;
		if (c->cb(&r, c->arg) != 0)
			return 0;
	}
	return iter_status(it, "scan");
}

int store_scan(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	       int64_t start, int64_t end, uint32_t limit, store_rec_cb cb, void *arg,
	       bool *more, int64_t *next_ts)
{
	uint8_t lo[STORE_KEY_MAX], hi[STORE_KEY_MAX];
	rocksdb_column_family_handle_t *cf = source_cf(st, source_id);
	struct scan_ctx c = { name, name_len, limit, cb, arg, more, next_ts };
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;
	size_t lolen, hilen;
	int rc;

	*more = false;
	if (cf == NULL || name_len == 0 || name_len > REC_NAME_MAX)
		return -1;
	if (start >= end)
		return 0;
	lolen = key_encode(lo, name, name_len, start);
	hilen = key_encode(hi, name, name_len, end);
	ro = rocksdb_readoptions_create();
	if (ro == NULL)
		return -1;
	/* The read options keep pointers to lo/hi: both outlive the iterator. */
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, lolen);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hilen);
	it = rocksdb_create_iterator_cf(st->db, ro, cf);
	if (it == NULL) {
		rocksdb_readoptions_destroy(ro);
		return -1;
	}
	rocksdb_iter_seek(it, (const char *)lo, lolen);
	rc = scan_iter(it, &c);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

/*
 * One series per step: its first key is where the iterator stands; seeking back
 * from the largest possible key of the name gives its last; seeking to
 * name|0x01 skips the rest of it.
 */
static int series_step(rocksdb_iterator_t *it, store_series_cb cb, void *arg, bool *stop)
{
	uint8_t name[REC_NAME_MAX], probe[STORE_KEY_MAX];
	size_t klen;
	const char *k = rocksdb_iter_key(it, &klen);
	ssize_t nl = key_name_len(k, klen);
	int64_t first, last;

	if (nl < 0)
		return -1;
	memcpy(name, k, (size_t)nl);
	first = key_ts(k, klen);
	memcpy(probe, name, (size_t)nl);
	probe[nl] = STORE_NAME_SEP;
	memset(probe + nl + STORE_SEP_LEN, 0xFF, STORE_TS_LEN);
	rocksdb_iter_seek_for_prev(it, (const char *)probe, (size_t)nl + STORE_KEY_SUFFIX_LEN);
	if (!rocksdb_iter_valid(it))
		return -1; /* the first key is a candidate, so this is an error */
	k = rocksdb_iter_key(it, &klen);
	if (key_name_len(k, klen) != nl || memcmp(k, name, (size_t)nl) != 0)
		return -1;
	last = key_ts(k, klen);
	if (cb((const char *)name, (size_t)nl, first, last, arg) != 0) {
		*stop = true;
		return 0;
	}
	probe[nl] = STORE_NAME_AFTER;
	rocksdb_iter_seek(it, (const char *)probe, (size_t)nl + STORE_SEP_LEN);
	return 0;
}

int store_series(struct store *st, uint32_t source_id, store_series_cb cb, void *arg)
{
	rocksdb_column_family_handle_t *cf = source_cf(st, source_id);
	rocksdb_iterator_t *it;
	bool stop = false;
	int rc = 0;

	if (cf == NULL)
		return -1;
	it = rocksdb_create_iterator_cf(st->db, st->ropts, cf);
	if (it == NULL)
		return -1;
	rocksdb_iter_seek_to_first(it);
	while (rc == 0 && !stop && rocksdb_iter_valid(it))
		rc = series_step(it, cb, arg, &stop);
	if (rc == 0)
		rc = iter_status(it, "series");
	rocksdb_iter_destroy(it);
	return rc;
}

/* ---- catalog ---- */

int store_catalog_put(struct store *st, const char *key, size_t klen, const char *val,
		      size_t vlen, char *err, size_t errlen)
{
	char *rerr = NULL;

	rocksdb_put_cf(st->db, st->catalog_wopts, st->cf_catalog, key, klen, val, vlen, &rerr);
	return take_rerr(rerr, "catalog write", err, errlen);
}

int store_catalog_scan(struct store *st, const char *prefix, store_kv_cb cb, void *arg)
{
	size_t plen = strlen(prefix);
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, st->ropts, st->cf_catalog);
	int rc;

	if (it == NULL)
		return -1;
	for (rocksdb_iter_seek(it, prefix, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);

		if (klen < plen || memcmp(k, prefix, plen) != 0)
			break;
		if (cb(k, klen, v, vlen, arg) != 0)
			break;
	}
	rc = iter_status(it, "catalog scan");
	rocksdb_iter_destroy(it);
	return rc;
}

/* ---- maintenance ---- */

int store_flush(struct store *st)
{
	size_t n = 0;
	rocksdb_column_family_handle_t **cfs = all_cfs(st, &n);
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	int rc = -1;

	if (cfs == NULL || fo == NULL)
		goto out;
	rocksdb_flushoptions_set_wait(fo, 1);
	for (size_t i = 0; i < n; i++) {
		char *rerr = NULL;

		rocksdb_flush_cf(st->db, fo, cfs[i], &rerr);
		if (rerr != NULL) {
			log_error("store: flush: %s", rerr);
			rocksdb_free(rerr);
			goto out;
		}
	}
	rc = 0;
out:
	if (fo != NULL)
		rocksdb_flushoptions_destroy(fo);
	free(cfs);
	return rc;
}

/* The C API reports no compaction error; failures surface on later reads/writes. */
int store_compact(struct store *st)
{
	size_t n = 0;
	rocksdb_column_family_handle_t **cfs = all_cfs(st, &n);

	if (cfs == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		rocksdb_compact_range_cf(st->db, cfs[i], NULL, 0, NULL, 0);
	free(cfs);
	return 0;
}

/* log_size_for_flush 0: always flush first, so the checkpoint needs no WAL replay. */
#define STORE_CHECKPOINT_LOG_SIZE_FOR_FLUSH 0

int store_checkpoint(struct store *st, const char *dir, char *err, size_t errlen)
{
	char *rerr = NULL;
	rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(st->db, &rerr);
	int rc;

	if (take_rerr(rerr, "checkpoint", err, errlen) != 0)
		return -1;
	rocksdb_checkpoint_create(cp, dir, STORE_CHECKPOINT_LOG_SIZE_FOR_FLUSH, &rerr);
	rc = take_rerr(rerr, "checkpoint", err, errlen);
	rocksdb_checkpoint_object_destroy(cp);
	return rc;
}
