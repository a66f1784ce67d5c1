/*
 * config.h - the server configuration: etc/temporis.conf, described in
 * temporis.conf(5), read into a typed struct cfg that every module reads.
 *
 * cfg_defaults() fills every key's default; cfg_load() overlays a file on top.
 * Errors are reported as "FILE:LINE: message" in the caller's buffer.
 */
#ifndef TEMPORIS_CONFIG_H
#define TEMPORIS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/base/log.h"

#define CFG_PATH_MAX 4096
#define CFG_ADDR_MAX 256
#define CFG_USER_MAX 64
#define CFG_WORKERS_MAX 64
#define CFG_PORT_TEXT_MAX 8     /* "65535" and its NUL, with room to spare */
#define CFG_EXPECT_MAX 128      /* longest "expected ..." text of any key */

enum cfg_sync { CFG_SYNC_WAL = 0, CFG_SYNC_FSYNC = 1 };

struct cfg {
	char listen[CFG_ADDR_MAX];        /* "host:port"; IPv6 as "[::1]:8080" */
	int workers;                      /* 1..CFG_WORKERS_MAX; "auto" = CPU count */
	char data_dir[CFG_PATH_MAX];
	char admin_socket[CFG_PATH_MAX];
	uint64_t ring_size;               /* bytes of shared-memory write buffer */
	uint64_t max_body_bytes;
	uint32_t max_records_per_request;
	enum cfg_sync sync;
	uint32_t enqueue_timeout_ms;
	uint32_t commit_timeout_ms;       /* 0: wait for the commit without bound */
	uint32_t idle_timeout_s;
	uint32_t header_timeout_s;
	enum log_level log_level;
	uint32_t max_connections;         /* per worker */
	char user[CFG_USER_MAX];          /* account to drop to when started as root; "" = none */
	char web_root[CFG_PATH_MAX];      /* the dashboard's files, served at / and /static/ */
	char web_lib_root[CFG_PATH_MAX];  /* Debian's shared JavaScript, served at /javascript/ */
	uint64_t min_free_disk;           /* bytes free on data_dir's filesystem below which ingest answers 507 */
	uint32_t query_max_series;        /* a Prometheus API query's bounds (else 422) */
	uint32_t query_max_points;
	uint64_t default_retention_s;     /* a new source's retention; 0 = keep forever */
	/* Not a key: temporisd --accept-data-loss, for one start on a damaged commit log. */
	bool accept_data_loss;
};

/*
 * The key table (src/base/config_keys.c) is the one description of every key:
 * cfg_load parses by it, cfg_defaults fills from it, the "bad value" texts are
 * generated from its ranges, SIGHUP (master.c) applies or reports by its
 * `applies`, and test_config checks that etc/temporis.conf and
 * man/temporis.conf.5 document exactly its keys with its defaults.
 *
 * To add a key:
 *   1. add its field to struct cfg above;
 *   2. add one row to cfg_key_table: name, type, default (as written in the
 *      file), min/max, unit, applies, a one-line doc and CFG_FIELD(field);
 *   3. document it in etc/temporis.conf (`key = default`) and in
 *      man/temporis.conf.5 (`.TP` then `.BR key " (default " default )`);
 *   4. if it is CFG_APPLY_RELOAD and running processes must act on it, add an
 *      apply hook to reload_hooks[] in src/daemon/master.c (without one, the
 *      new value is only copied into the master's cfg, which children started
 *      later inherit).
 * A new kind of value (say, a duration such as "30d") is a new enum cfg_type
 * with its cases in cfg_key_set and cfg_key_expect (config_keys.c).
 */
enum cfg_type {
	CFG_TYPE_PATH,       /* a string shorter than max bytes */
	CFG_TYPE_INT,        /* a decimal integer from min to max */
	CFG_TYPE_SIZE,       /* a decimal with an optional K, M or G suffix, min to max */
	CFG_TYPE_ENUM,       /* one of words[]; the field holds the word's index */
	CFG_TYPE_AUTO_COUNT, /* "auto" (online CPUs, at most max) or an integer min to max */
	CFG_TYPE_LISTEN,     /* host:port with a port from min to max */
	CFG_TYPE_USER,       /* "" (none) or a user name of at most max characters */
	CFG_TYPE_DURATION,   /* seconds: "30d" as duration.h reads it, min to max */
};

/* When a changed value takes effect in a running server. */
enum cfg_apply {
	CFG_APPLY_RESTART, /* on SIGHUP it is only reported: "KEY changed: takes effect after a restart" */
	CFG_APPLY_RELOAD,  /* on SIGHUP it is applied */
};

struct cfg_key {
	const char *name;
	enum cfg_type type;
	const char *default_text;  /* as written in the file; cfg_defaults parses it */
	uint64_t min, max;         /* the accepted range; see enum cfg_type */
	const char *unit;          /* of the value or of the limit ("bytes", "ms"); NULL if none */
	enum cfg_apply applies;
	const char *doc;           /* one line; the full text is in temporis.conf(5) */
	const char *const *words;  /* CFG_TYPE_ENUM: NULL-terminated, value = index */
	size_t offset, size;       /* the field in struct cfg (CFG_FIELD) */
};

#define CFG_FIELD(f) .offset = offsetof(struct cfg, f), .size = sizeof(((struct cfg *)0)->f)

extern const struct cfg_key cfg_key_table[];
extern const size_t cfg_key_count;

/* The row of a key name (exact, case-sensitive), or NULL. */
const struct cfg_key *cfg_key_find(const char *name);

/* Parse text as key k's value into cfg. 0, or -1 with cfg untouched. */
int cfg_key_set(const struct cfg_key *k, struct cfg *cfg, const char *text);

/* The text that completes "bad value 'x' for 'key': ", e.g. "expected an integer 1-10". */
void cfg_key_expect(const struct cfg_key *k, char *buf, size_t len);

/* Whether a and b hold different values of key k; copy k's value from src to dst. */
bool cfg_key_differs(const struct cfg_key *k, const struct cfg *a, const struct cfg *b);
void cfg_key_copy(const struct cfg_key *k, struct cfg *dst, const struct cfg *src);

void cfg_defaults(struct cfg *cfg);

/*
 * Read FILE over the current contents of *cfg (call cfg_defaults first).
 * Returns 0, or -1 with "FILE:LINE: message" (or "FILE: strerror" if it cannot
 * be opened) in err. *cfg is left unchanged on error.
 */
int cfg_load(struct cfg *cfg, const char *path, char *err, size_t errlen);

/* Parse a size with optional K/M/G suffix (powers of 1024). 0 ok, -1 bad. */
int cfg_parse_size(const char *text, uint64_t *out);

/* Split cfg->listen into host and port. 0 ok, -1 malformed. */
int cfg_split_listen(const char *listen, char *host, size_t hostlen, char *port, size_t portlen);

#endif
