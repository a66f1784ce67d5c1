/*
 * config.h - the server configuration (etc/temporis.conf, SPEC section 6).
 *
 * cfg_defaults() fills every key's default; cfg_load() overlays a file on top.
 * Errors are reported as "FILE:LINE: message" in the caller's buffer.
 */
#ifndef TEMPORIS_CONFIG_H
#define TEMPORIS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "temporis/base/log.h"

#define CFG_PATH_MAX 4096
#define CFG_ADDR_MAX 256
#define CFG_USER_MAX 64
#define CFG_WORKERS_MAX 64

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
	uint32_t idle_timeout_s;
	enum log_level log_level;
	uint32_t max_connections;         /* per worker */
	char user[CFG_USER_MAX];          /* account to drop to when started as root; "" = none */
	char web_root[CFG_PATH_MAX];      /* the dashboard's files, served at / and /static/ */
	char web_lib_root[CFG_PATH_MAX];  /* Debian's shared JavaScript, served at /javascript/ */
};

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
