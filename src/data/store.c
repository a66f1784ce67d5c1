/*
 * store.c - the RocksDB handle of store.h: open/close (options in store_options.c,
 * the commit log's replay and the sealer in store_head.c), the format marker and
 * its migration (store_migrate.c), the version high-water mark, the source column
 * families and their handle table, the catalog family, and maintenance.
 *
 * Owns the rocksdb_t, its options, and every column family handle; the handle
 * table (source id -> handle) lives here, guarded by a mutex.
 */
#include "temporis/data/store.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "store_core.h"
#include "store_head.h"
#include "store_control.h"
#include "store_migrate.h"
#include "store_options.h"
#include "store_seal.h"
#include "temporis/base/buf.h"
#include "temporis/base/clock.h"
#include "temporis/base/err.h"
#include "temporis/base/log.h"
#include "temporis/data/codec.h"

#define STORE_CF_DEFAULT "default"
#define STORE_CF_CATALOG "catalog"
#define STORE_CF_LOG_PREFIX "log_"
#define STORE_CF_LOG_NAME_MAX 8
#define STORE_CF_SOURCE_PREFIX "src_"
#define STORE_CF_NAME_MAX 32

/* "log_<n>" -> n; -1 if name is not a log family. */
static int log_index(const char *name)
{
	size_t plen = strlen(STORE_CF_LOG_PREFIX);

	if (strncmp(name, STORE_CF_LOG_PREFIX, plen) != 0 || name[plen] < '0' ||
	    name[plen] >= '0' + STORE_LOGS || name[plen + 1] != '\0')
		return -1;
	return name[plen] - '0';
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
 * Names of the existing families plus "catalog" if missing (then *adds_catalog);
 * a directory that holds no database yet has just "default". Free with free_cf_names.
 */
static char **list_cf_names(struct store *st, const char *dir, size_t *n, bool *adds_catalog,
			    char *err, size_t errlen)
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
			store_take_rerr(rerr, "list column families", err, errlen);
			return NULL;
		}
		rocksdb_free(rerr);
	}
	out = calloc(*n + STORE_FIXED_CFS, sizeof(*out));
	if (out == NULL)
		goto fail;
	for (i = 0; i < *n; i++)
		if ((out[have++] = strdup(names[i])) == NULL)
			goto fail;
	if (*n == 0 && (out[have++] = strdup(STORE_CF_DEFAULT)) == NULL)
		goto fail;
	for (i = 0; i < have && strcmp(out[i], STORE_CF_CATALOG) != 0; i++)
		;
	*adds_catalog = i == have;
	if (i == have && (out[have++] = strdup(STORE_CF_CATALOG)) == NULL)
		goto fail;
	/* A format "2" store has no logs yet: the open adds them. */
	for (unsigned l = 0; l < STORE_LOGS; l++) {
		char name[STORE_CF_LOG_NAME_MAX];

		snprintf(name, sizeof(name), STORE_CF_LOG_PREFIX "%u", l);
		for (i = 0; i < have && strcmp(out[i], name) != 0; i++)
			;
		if (i == have && (out[have++] = strdup(name)) == NULL)
			goto fail;
	}
	if (names != NULL)
		rocksdb_list_column_families_destroy(names, *n);
	*n = have;
	return out;
fail:
	err_set(err, errlen, "out of memory listing column families");
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
		int log;

		if (strcmp(names[i], STORE_CF_DEFAULT) == 0) {
			st->cf_default = h[i];
		} else if (strcmp(names[i], STORE_CF_CATALOG) == 0) {
			st->cf_catalog = h[i];
		} else if ((log = log_index(names[i])) >= 0) {
			st->cf_log[log] = h[i];
		} else if (rc == 0 && parse_source_name(names[i], &id) == 0) {
			if (store_table_insert(st, id, h[i]) == 0)
				continue;
			err_set(err, errlen, "out of memory opening sources");
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

static void format_refused(const char *dir, char *err, size_t errlen)
{
	err_set(err, errlen,
		"%s: on-disk format is not " CODEC_FORMAT " (written by an older "
		"temporisd); move it away or start with an empty data_dir", dir);
}

/*
 * Every format-2 database has the catalog family (created with it), so an existing
 * one without it is refused here, before the open would add the family to it.
 */
static int open_db(struct store *st, const char *dir, bool fresh, char *err, size_t errlen)
{
	size_t n = 0;
	bool adds_catalog = false;
	char **names = list_cf_names(st, dir, &n, &adds_catalog, err, errlen);
	const rocksdb_options_t **cf_opts = NULL;
	rocksdb_column_family_handle_t **h = NULL;
	char *rerr = NULL;
	int rc = -1;

	if (names == NULL)
		return -1;
	if (adds_catalog && !fresh) {
		format_refused(dir, err, errlen);
		goto out;
	}
	cf_opts = malloc(n * sizeof(*cf_opts));
	h = calloc(n, sizeof(*h));
	if (cf_opts == NULL || h == NULL) {
		err_set(err, errlen, "out of memory opening store");
		goto out;
	}
	for (size_t i = 0; i < n; i++) /* copied per family, merge operator shared */
		cf_opts[i] = log_index(names[i]) >= 0 ? st->log_opts : st->opts;
	st->db = rocksdb_open_column_families(st->opts, dir, (int)n,
					      (const char *const *)names, cf_opts, h, &rerr);
	if (rerr != NULL && !st->accept_data_loss && strstr(rerr, "Corruption") != NULL) {
		err_set(err, errlen, "the store in %s is damaged: %s. If the damage is in the commit "
			"log (its *.log files), the records after it were acknowledged and would be "
			"lost. Restore the directory from a backup (temporisctl backup), or start "
			"once with --accept-data-loss to keep what precedes the damage", dir, rerr);
		rocksdb_free(rerr);
		goto out;
	}
	if (store_take_rerr(rerr, "open", err, errlen) != 0)
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
	uint64_t hwm;

	if (store_take_rerr(rerr, "read version_hwm", err, errlen) != 0)
		return -1;
	if (val == NULL) {
		atomic_store(&st->hwm, 0);
		return 0;
	}
	if (codec_hwm_decode((const uint8_t *)val, vlen, &hwm) != 0) {
		rocksdb_free(val);
		err_set(err, errlen, "corrupt version_hwm (%zu bytes)", vlen);
		return -1;
	}
	atomic_store(&st->hwm, hwm);
	rocksdb_free(val);
	return 0;
}

static int write_format(struct store *st, char *err, size_t errlen)
{
	char *rerr = NULL;

	rocksdb_put_cf(st->db, st->catalog_wopts, st->cf_default, STORE_FORMAT_KEY,
		       strlen(STORE_FORMAT_KEY), CODEC_FORMAT, strlen(CODEC_FORMAT),
		       &rerr);
	return store_take_rerr(rerr, "write format marker", err, errlen);
}

static bool marker_is(const char *val, size_t vlen, const char *format)
{
	return val != NULL && vlen == strlen(format) && memcmp(val, format, vlen) == 0;
}

/*
 * A new database gets the marker, synced, before any record can be written. An
 * existing one of format "2" is migrated (store_migrate.c), one of this format is
 * taken as it is; any other with record families is refused, since its records
 * would not decode. One without any record family holds nothing whose format
 * changed (e.g. a first start that died before the marker was written): it gets
 * the marker.
 */
static int check_format(struct store *st, const char *dir, bool fresh, char *err,
			size_t errlen)
{
	size_t vlen = 0;
	char *rerr = NULL, *val;
	bool current, legacy, found;

	if (fresh)
		return write_format(st, err, errlen);
	val = rocksdb_get_cf(st->db, st->ropts, st->cf_default, STORE_FORMAT_KEY,
			     strlen(STORE_FORMAT_KEY), &vlen, &rerr);
	if (store_take_rerr(rerr, "read format marker", err, errlen) != 0)
		return -1;
	found = val != NULL;
	current = marker_is(val, vlen, CODEC_FORMAT);
	legacy = marker_is(val, vlen, CODEC_FORMAT_LEGACY);
	rocksdb_free(val);
	if (current)
		return 0;
	if (legacy)
		return store_migrate(st, dir, err, errlen);
	if (!found && st->nsources == 0)
		return write_format(st, err, errlen);
	format_refused(dir, err, errlen);
	return -1;
}

/* A seal's files left by a crash before they were ingested: the log still holds
 * their records, so they are simply removed. */
static int remove_seal_files(const char *dir, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t plen = strlen(STORE_SEAL_FILE_PREFIX), slen = strlen(STORE_SEAL_FILE_SUFFIX);

	if (d == NULL)
		return 0;  /* no directory yet: RocksDB creates it (or says why not) */
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len <= plen + slen || strncmp(de->d_name, STORE_SEAL_FILE_PREFIX, plen) != 0 ||
		    strcmp(de->d_name + len - slen, STORE_SEAL_FILE_SUFFIX) != 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT) {
			err_set(err, errlen, "cannot remove the unfinished seal file %s/%s: %s", dir,
				de->d_name, strerror(errno));
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

int store_open(const char *dir, enum cfg_sync sync, struct store **out, char *err,
	       size_t errlen)
{
	return store_open_ex(dir, sync, 0, out, err, errlen);
}

int store_open_ex(const char *dir, enum cfg_sync sync, unsigned flags, struct store **out,
		  char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));
	bool fresh = no_database_yet(dir);
	uint64_t t0;

	if (st == NULL) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	/* Static initializers cannot fail, so store_close may always destroy them. */
	st->table_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	st->create_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	if (snprintf(st->dir, sizeof(st->dir), "%s", dir) >= (int)sizeof(st->dir)) {
		err_set(err, errlen, "data directory path too long: %s", dir);
		goto fail;
	}
	st->accept_data_loss = (flags & STORE_OPEN_ACCEPT_DATA_LOSS) != 0;
	if (store_options_init(st, sync) != 0) {
		err_set(err, errlen, "out of memory creating options");
		goto fail;
	}
	t0 = mono_ms();
	if (remove_seal_files(dir, err, errlen) != 0 ||
	    (!fresh && store_control_check(dir, err, errlen) != 0) ||
	    open_db(st, dir, fresh, err, errlen) != 0)
		goto fail;
	if (st->accept_data_loss)
		log_warn("store: opened with --accept-data-loss: a damaged commit log was replayed up "
			 "to its damage and the rest dropped (RocksDB's LOG in %s says how many bytes)",
			 dir);
	if (!fresh)
		log_info("store: RocksDB opened in %llu ms (its write-ahead log replayed)",
			 (unsigned long long)(mono_ms() - t0));
	if (store_heads_init(st, err, errlen) != 0 || check_format(st, dir, fresh, err, errlen) != 0 ||
	    load_hwm(st, err, errlen) != 0 || store_heads_replay(st, err, errlen) != 0 ||
	    store_sealer_start(st, err, errlen) != 0)
		goto fail;
	st->opened = true;
	store_maintain(st);  /* the MANIFEST this open started */
	*out = st;
	return 0;
fail:
	store_close(st);
	return -1;
}

/* A failure is said once per streak: the check at the next open still holds. */
void store_maintain(struct store *st)
{
	char err[512];

	if (store_control_update(st->dir, &st->control, err, sizeof(err)) == 0) {
		st->control_failed = false;
		return;
	}
	if (!st->control_failed)
		log_warn("store: %s", err);
	st->control_failed = true;
}

/* Flush every family's memtable and wait (no seal first). 0 or -1. */
static int flush_all(struct store *st)
{
	size_t n = 0;
	rocksdb_column_family_handle_t **cfs = store_all_cfs(st, &n);
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

/* A clean stop leaves nothing to replay: the last seal emptied the log, and with
 * every memtable flushed the WAL is obsolete. */
static void close_flush(struct store *st)
{
	struct store_heads *hs = &st->heads;
	bool sealed;

	pthread_mutex_lock(&hs->lock);
	sealed = hs->frozen == NULL && head_records(hs->active) == 0;
	pthread_mutex_unlock(&hs->lock);
	if (sealed && flush_all(st) != 0)
		log_warn("store: flush at close failed; the next start replays the WAL");
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->heads.ready) {
		store_heads_close(st);
		if (st->db != NULL)
			close_flush(st);
		store_heads_free(st);
	}
	for (size_t i = 0; i < st->nsources; i++)
		rocksdb_column_family_handle_destroy(st->sources[i].cf);
	if (st->cf_catalog != NULL)
		rocksdb_column_family_handle_destroy(st->cf_catalog);
	for (unsigned l = 0; l < STORE_LOGS; l++)
		if (st->cf_log[l] != NULL)
			rocksdb_column_family_handle_destroy(st->cf_log[l]);
	if (st->cf_default != NULL)
		rocksdb_column_family_handle_destroy(st->cf_default);
	if (st->db != NULL)
		rocksdb_close(st->db);
	if (st->opened)
		store_maintain(st);  /* what the close wrote */
	if (st->ropts != NULL)
		rocksdb_readoptions_destroy(st->ropts);
	if (st->catalog_wopts != NULL)
		rocksdb_writeoptions_destroy(st->catalog_wopts);
	if (st->wopts != NULL)
		rocksdb_writeoptions_destroy(st->wopts);
	if (st->opts != NULL)
		rocksdb_options_destroy(st->opts);
	if (st->log_opts != NULL)
		rocksdb_options_destroy(st->log_opts);
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

	if (store_source_cf(st, source_id) != NULL)
		return 0;
	snprintf(name, sizeof(name), STORE_CF_SOURCE_PREFIX "%" PRIu32, source_id);
	cf = rocksdb_create_column_family(st->db, st->opts, name, &rerr);
	if (store_take_rerr(rerr, "create column family", err, errlen) != 0)
		return -1;
	pthread_mutex_lock(&st->table_lock);
	rc = store_table_insert(st, source_id, cf);
	pthread_mutex_unlock(&st->table_lock);
	if (rc != 0) {
		/* The family exists on disk and is adopted at the next open. */
		rocksdb_column_family_handle_destroy(cf);
		err_set(err, errlen, "out of memory adding source");
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
	return store_source_cf(st, source_id) != NULL;
}

uint64_t store_version_hwm(struct store *st)
{
	return atomic_load(&st->hwm);
}


/* ---- catalog ---- */

int store_catalog_put(struct store *st, const char *key, size_t klen, const char *val,
		      size_t vlen, char *err, size_t errlen)
{
	char *rerr = NULL;

	rocksdb_put_cf(st->db, st->catalog_wopts, st->cf_catalog, key, klen, val, vlen, &rerr);
	return store_take_rerr(rerr, "catalog write", err, errlen);
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
	rc = store_iter_status(it, "catalog scan");
	rocksdb_iter_destroy(it);
	return rc;
}

/* ---- maintenance ---- */

int store_flush(struct store *st)
{
	if (store_seal(st) != 0)
		return -1;
	return flush_all(st);
}

/* The C API reports no compaction error; failures surface on later reads/writes. */
int store_compact(struct store *st)
{
	size_t n = 0;
	rocksdb_column_family_handle_t **cfs;

	if (store_seal(st) != 0 || (cfs = store_all_cfs(st, &n)) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		rocksdb_compact_range_cf(st->db, cfs[i], NULL, 0, NULL, 0);
	free(cfs);
	return 0;
}

static uint64_t cf_property(struct store *st, rocksdb_column_family_handle_t *cf,
			    const char *prop)
{
	uint64_t v = 0;

	return rocksdb_property_int_cf(st->db, cf, prop, &v) == 0 ? v : 0;
}

#define WAL_SUFFIX ".log"

/* Bytes of RocksDB's write-ahead log files (NNNNNN.log) in the database directory. */
static uint64_t wal_bytes(const struct store *st)
{
	size_t suffix = strlen(WAL_SUFFIX);
	DIR *d = opendir(st->dir);
	struct dirent *e;
	uint64_t total = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		struct stat sb;

		if (n > suffix && strcmp(e->d_name + n - suffix, WAL_SUFFIX) == 0 &&
		    fstatat(dirfd(d), e->d_name, &sb, 0) == 0)
			total += (uint64_t)sb.st_size;
	}
	if (closedir(d) != 0)
		log_debug("store: closedir: %s", strerror(errno));
	return total;
}

void store_stats_get(struct store *st, struct store_stats *out)
{
	size_t n = 0;
	rocksdb_column_family_handle_t **cfs = store_all_cfs(st, &n);
	uint64_t v;

	memset(out, 0, sizeof(*out));
	store_heads_stats(st, out);
	for (size_t i = 0; cfs != NULL && i < n; i++) {
		out->sst_bytes += cf_property(st, cfs[i], "rocksdb.total-sst-files-size");
		out->pending_compaction_bytes +=
			cf_property(st, cfs[i], "rocksdb.estimate-pending-compaction-bytes");
		out->memtable_bytes += cf_property(st, cfs[i], "rocksdb.cur-size-all-mem-tables");
	}
	free(cfs);
	/* database-wide */
	if (rocksdb_property_int(st->db, "rocksdb.is-write-stopped", &v) == 0)
		out->write_stopped = v != 0;
	if (rocksdb_property_int(st->db, "rocksdb.actual-delayed-write-rate", &v) == 0)
		out->delayed_write_rate = v;
	out->wal_bytes = wal_bytes(st);
}

int store_source_property_int(struct store *st, uint32_t source_id, const char *prop,
			      uint64_t *out)
{
	rocksdb_column_family_handle_t *cf = store_source_cf(st, source_id);

	if (cf == NULL || rocksdb_property_int_cf(st->db, cf, prop, out) != 0)
		return -1;
	return 0;
}

/* log_size_for_flush 0: always flush first, so the checkpoint needs no WAL replay. */
#define STORE_CHECKPOINT_LOG_SIZE_FOR_FLUSH 0

int store_checkpoint(struct store *st, const char *dir, char *err, size_t errlen)
{
	char *rerr = NULL;
	rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(st->db, &rerr);
	int rc;

	if (store_take_rerr(rerr, "checkpoint", err, errlen) != 0)
		return -1;
	rocksdb_checkpoint_create(cp, dir, STORE_CHECKPOINT_LOG_SIZE_FOR_FLUSH, &rerr);
	rc = store_take_rerr(rerr, "checkpoint", err, errlen);
	rocksdb_checkpoint_object_destroy(cp);
	return rc;
}
