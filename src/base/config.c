/*
 * config.c - reads etc/temporis.conf (SPEC section 6) into a struct cfg.
 *
 * Owns the key table (name, default, accepted range, error text) and the line
 * syntax: `key = value`, `#` comments, blank lines.  A file is parsed into a
 * copy so that a bad file (e.g. on SIGHUP) never half-applies.
 */
#include "temporis/base/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#define STR_(x) #x
#define STR(x) STR_(x)

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define KIB_SHIFT 10
#define MIB_SHIFT 20
#define GIB_SHIFT 30

/* The install prefix's data directory, passed by the Makefile like SYSCONFDIR. */
#ifndef DATADIR
#define DATADIR "/usr/local/share"
#endif

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_DATA_DIR "/var/lib/temporis"
#define DEFAULT_ADMIN_SOCKET "/run/temporis/admin.sock"
#define DEFAULT_RING_SIZE (64 * MIB)
#define DEFAULT_MAX_BODY_BYTES (16 * MIB)
#define DEFAULT_MAX_RECORDS 100000
#define DEFAULT_ENQUEUE_TIMEOUT_MS 2000
#define DEFAULT_IDLE_TIMEOUT_S 60
#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_WEB_ROOT DATADIR "/temporis/dashboard"
#define DEFAULT_WEB_LIB_ROOT "/usr/share/javascript"

#define RING_SIZE_MIN MIB
#define RING_SIZE_MAX (64 * GIB)
#define MAX_BODY_MIN KIB
#define MAX_BODY_MAX GIB
#define MAX_RECORDS_MIN 1
#define MAX_RECORDS_MAX 10000000
#define ENQUEUE_TIMEOUT_MIN 0
#define ENQUEUE_TIMEOUT_MAX 600000
#define IDLE_TIMEOUT_MIN 1
#define IDLE_TIMEOUT_MAX 86400
#define MAX_CONNECTIONS_MIN 1
#define MAX_CONNECTIONS_MAX 1000000
#define PORT_MIN 1
#define PORT_MAX 65535
#define PORT_TEXT_MAX 8
#define USER_NAME_MAX 32 /* useradd's limit: [a-z_][a-z0-9_-]{0,31} */

/* The literal that stands for "no user" (an empty value is an error). */
#define USER_NONE_LITERAL "\"\""

/* The admin_socket error text below names this limit; keep them in step. */
#define SUN_PATH_LEN sizeof(((struct sockaddr_un *)0)->sun_path)
_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == 108,
	       "admin_socket expectation text assumes a 108-byte sun_path");

struct cfg_key {
	const char *name;
	const char *expect; /* completes "bad value 'x' for 'key': expected ..." */
	int (*set)(struct cfg *cfg, const char *value);
};

/* ---- value parsers: 0 and the value stored, or -1 and cfg untouched ---- */

/* Decimal digits only (no sign, no spaces); -1 on overflow or no digit. */
static int parse_digits(const char *s, const char **end, uint64_t *out)
{
	uint64_t n = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (n > (UINT64_MAX - digit) / 10)
			return -1;
		n = n * 10 + digit;
	}
	*end = p;
	*out = n;
	return 0;
}

static int parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t n;

	if (parse_digits(s, &end, &n) < 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

int cfg_parse_size(const char *text, uint64_t *out)
{
	const char *end;
	uint64_t n;
	unsigned shift = 0;

	if (parse_digits(text, &end, &n) < 0)
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = KIB_SHIFT; end++; break;
	case 'm': case 'M': shift = MIB_SHIFT; end++; break;
	case 'g': case 'G': shift = GIB_SHIFT; end++; break;
	default: break;
	}
	if (*end != '\0' || n > (UINT64_MAX >> shift))
		return -1;
	*out = n << shift;
	return 0;
}

static int parse_size_range(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t n;

	if (cfg_parse_size(s, &n) < 0 || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static int copy_string(char *dst, size_t dstlen, const char *src)
{
	size_t len = strlen(src);

	if (len >= dstlen)
		return -1;
	memcpy(dst, src, len + 1);
	return 0;
}

/* ---- listen = host:port ---- */

static int is_hostname_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

/* Find the host part: "[v6]:port" (brackets dropped) or "name-or-v4:port". */
static int locate_host(const char *listen, const char **host, size_t *hostlen, const char **port)
{
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		*host = listen + 1;
		*hostlen = (size_t)(close - *host);
		*port = close + 2;
		return 0;
	}
	const char *colon = strrchr(listen, ':');

	if (colon == NULL)
		return -1;
	*host = listen;
	*hostlen = (size_t)(colon - listen);
	*port = colon + 1;
	for (size_t i = 0; i < *hostlen; i++)
		if (!is_hostname_char(listen[i]))
			return -1; /* includes an unbracketed IPv6 address */
	return 0;
}

int cfg_split_listen(const char *listen, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *h, *p;
	size_t hlen;
	uint64_t portnum;
	struct in6_addr addr6;
	int n;

	if (locate_host(listen, &h, &hlen, &p) < 0 || hlen == 0 || hlen >= hostlen)
		return -1;
	if (parse_uint_range(p, PORT_MIN, PORT_MAX, &portnum) < 0)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (listen[0] == '[' && inet_pton(AF_INET6, host, &addr6) != 1)
		return -1;
	/* Canonical digits: "08080" must not reach getaddrinfo as something odd. */
	n = snprintf(port, portlen, "%u", (unsigned)portnum);
	if (n < 0 || (size_t)n >= portlen)
		return -1;
	return 0;
}

/* ---- one setter per key ---- */

static int set_listen(struct cfg *cfg, const char *v)
{
	char host[CFG_ADDR_MAX], port[PORT_TEXT_MAX];

	if (cfg_split_listen(v, host, sizeof(host), port, sizeof(port)) < 0)
		return -1;
	return copy_string(cfg->listen, sizeof(cfg->listen), v);
}

static int cpu_count_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1; /* unknown: one worker still serves */
	return n > CFG_WORKERS_MAX ? CFG_WORKERS_MAX : (int)n;
}

static int set_workers(struct cfg *cfg, const char *v)
{
	uint64_t n;

	if (strcmp(v, "auto") == 0) {
		cfg->workers = cpu_count_workers();
		return 0;
	}
	if (parse_uint_range(v, 1, CFG_WORKERS_MAX, &n) < 0)
		return -1;
	cfg->workers = (int)n;
	return 0;
}

static int set_data_dir(struct cfg *cfg, const char *v)
{
	return copy_string(cfg->data_dir, sizeof(cfg->data_dir), v);
}

static int set_web_root(struct cfg *cfg, const char *v)
{
	return copy_string(cfg->web_root, sizeof(cfg->web_root), v);
}

static int set_web_lib_root(struct cfg *cfg, const char *v)
{
	return copy_string(cfg->web_lib_root, sizeof(cfg->web_lib_root), v);
}

static int set_admin_socket(struct cfg *cfg, const char *v)
{
	if (strlen(v) >= SUN_PATH_LEN)
		return -1;
	return copy_string(cfg->admin_socket, sizeof(cfg->admin_socket), v);
}

static int set_ring_size(struct cfg *cfg, const char *v)
{
	return parse_size_range(v, RING_SIZE_MIN, RING_SIZE_MAX, &cfg->ring_size);
}

static int set_max_body_bytes(struct cfg *cfg, const char *v)
{
	return parse_size_range(v, MAX_BODY_MIN, MAX_BODY_MAX, &cfg->max_body_bytes);
}

static int set_u32(uint32_t *field, const char *v, uint64_t min, uint64_t max)
{
	uint64_t n;

	if (parse_uint_range(v, min, max, &n) < 0)
		return -1;
	*field = (uint32_t)n;
	return 0;
}

static int set_max_records(struct cfg *cfg, const char *v)
{
	return set_u32(&cfg->max_records_per_request, v, MAX_RECORDS_MIN, MAX_RECORDS_MAX);
}

static int set_enqueue_timeout(struct cfg *cfg, const char *v)
{
	return set_u32(&cfg->enqueue_timeout_ms, v, ENQUEUE_TIMEOUT_MIN, ENQUEUE_TIMEOUT_MAX);
}

static int set_idle_timeout(struct cfg *cfg, const char *v)
{
	return set_u32(&cfg->idle_timeout_s, v, IDLE_TIMEOUT_MIN, IDLE_TIMEOUT_MAX);
}

static int set_max_connections(struct cfg *cfg, const char *v)
{
	return set_u32(&cfg->max_connections, v, MAX_CONNECTIONS_MIN, MAX_CONNECTIONS_MAX);
}

static int set_sync(struct cfg *cfg, const char *v)
{
	if (strcmp(v, "wal") == 0)
		cfg->sync = CFG_SYNC_WAL;
	else if (strcmp(v, "fsync") == 0)
		cfg->sync = CFG_SYNC_FSYNC;
	else
		return -1;
	return 0;
}

static int set_log_level(struct cfg *cfg, const char *v)
{
	int level = log_level_parse(v);

	if (level < 0)
		return -1;
	cfg->log_level = (enum log_level)level;
	return 0;
}

static int is_user_name(const char *v)
{
	size_t len = strlen(v);

	if (len == 0 || len > USER_NAME_MAX || !((v[0] >= 'a' && v[0] <= 'z') || v[0] == '_'))
		return 0;
	for (size_t i = 1; i < len; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') ||
		      v[i] == '_' || v[i] == '-'))
			return 0;
	return 1;
}

static int set_user(struct cfg *cfg, const char *v)
{
	if (strcmp(v, USER_NONE_LITERAL) == 0) {
		cfg->user[0] = '\0';
		return 0;
	}
	if (!is_user_name(v))
		return -1;
	return copy_string(cfg->user, sizeof(cfg->user), v);
}

static const struct cfg_key cfg_keys[] = {
	{ "listen", "expected host:port with port 1-65535 (IPv6 as [addr]:port)", set_listen },
	{ "workers", "expected auto or 1-" STR(CFG_WORKERS_MAX), set_workers },
	{ "data_dir", "expected a path shorter than " STR(CFG_PATH_MAX) " bytes", set_data_dir },
	{ "admin_socket", "expected a path shorter than 108 bytes", set_admin_socket },
	{ "ring_size", "expected a size from 1M to 64G (suffix K, M or G)", set_ring_size },
	{ "max_body_bytes", "expected a size from 1K to 1G (suffix K, M or G)", set_max_body_bytes },
	{ "max_records_per_request", "expected an integer 1-10000000", set_max_records },
	{ "sync", "expected wal or fsync", set_sync },
	{ "enqueue_timeout_ms", "expected an integer 0-600000", set_enqueue_timeout },
	{ "idle_timeout_s", "expected an integer 1-86400", set_idle_timeout },
	{ "log_level", "expected debug, info, warn or error", set_log_level },
	{ "max_connections", "expected an integer 1-1000000", set_max_connections },
	{ "user", "expected \"\" or a user name matching [a-z_][a-z0-9_-]{0,31}", set_user },
	{ "web_root", "expected a path shorter than " STR(CFG_PATH_MAX) " bytes", set_web_root },
	{ "web_lib_root", "expected a path shorter than " STR(CFG_PATH_MAX) " bytes",
	  set_web_lib_root },
};

#define CFG_KEY_COUNT (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

void cfg_defaults(struct cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen, sizeof(cfg->listen), "%s", DEFAULT_LISTEN);
	cfg->workers = cpu_count_workers();
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", DEFAULT_DATA_DIR);
	snprintf(cfg->admin_socket, sizeof(cfg->admin_socket), "%s", DEFAULT_ADMIN_SOCKET);
	cfg->ring_size = DEFAULT_RING_SIZE;
	cfg->max_body_bytes = DEFAULT_MAX_BODY_BYTES;
	cfg->max_records_per_request = DEFAULT_MAX_RECORDS;
	cfg->sync = CFG_SYNC_WAL;
	cfg->enqueue_timeout_ms = DEFAULT_ENQUEUE_TIMEOUT_MS;
	cfg->idle_timeout_s = DEFAULT_IDLE_TIMEOUT_S;
	cfg->log_level = LOG_INFO;
	cfg->max_connections = DEFAULT_MAX_CONNECTIONS;
	cfg->user[0] = '\0';
	snprintf(cfg->web_root, sizeof(cfg->web_root), "%s", DEFAULT_WEB_ROOT);
	snprintf(cfg->web_lib_root, sizeof(cfg->web_lib_root), "%s", DEFAULT_WEB_LIB_ROOT);
}

/* ---- the file ---- */

struct parser {
	struct cfg *cfg;             /* the private copy being filled */
	const char *path;
	unsigned line;
	unsigned set_on[CFG_KEY_COUNT]; /* line that set each key; 0 = not yet */
	char *err;
	size_t errlen;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	/* A truncated message is still the best we can report. */
	if (vsnprintf(err, errlen, fmt, ap) < 0)
		err[0] = '\0';
	va_end(ap);
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trim in place; returns the first non-blank character. */
static char *trim(char *s)
{
	size_t len;

	while (is_blank(*s))
		s++;
	len = strlen(s);
	while (len > 0 && is_blank(s[len - 1]))
		s[--len] = '\0';
	return s;
}

/* '#' starts a comment at the start of a line or after whitespace, so a value
 * such as a path may still contain a '#' of its own. */
static void strip_comment(char *line)
{
	for (size_t i = 0; line[i] != '\0'; i++) {
		if (line[i] == '#' && (i == 0 || is_blank(line[i - 1]))) {
			line[i] = '\0';
			return;
		}
	}
}

static int find_key(const char *name)
{
	for (size_t i = 0; i < CFG_KEY_COUNT; i++)
		if (strcmp(cfg_keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int apply_pair(struct parser *ps, const char *key, const char *value)
{
	int k = find_key(key);

	if (k < 0) {
		set_err(ps->err, ps->errlen, "%s:%u: unknown key '%s'", ps->path, ps->line, key);
		return -1;
	}
	if (ps->set_on[k] != 0) {
		set_err(ps->err, ps->errlen, "%s:%u: duplicate key '%s' (first set on line %u)",
			ps->path, ps->line, key, ps->set_on[k]);
		return -1;
	}
	if (value[0] == '\0' || cfg_keys[k].set(ps->cfg, value) < 0) {
		set_err(ps->err, ps->errlen, "%s:%u: bad value '%s' for '%s': %s", ps->path,
			ps->line, value, key, cfg_keys[k].expect);
		return -1;
	}
	ps->set_on[k] = ps->line;
	return 0;
}

static int parse_line(struct parser *ps, char *line, size_t len)
{
	char *text, *eq, *key;

	if (strlen(line) != len) {
		set_err(ps->err, ps->errlen, "%s:%u: line contains a NUL byte", ps->path, ps->line);
		return -1;
	}
	strip_comment(line);
	text = trim(line);
	if (text[0] == '\0')
		return 0;
	eq = strchr(text, '=');
	if (eq == NULL || eq == text) {
		set_err(ps->err, ps->errlen, "%s:%u: expected 'key = value'", ps->path, ps->line);
		return -1;
	}
	*eq = '\0';
	key = trim(text);
	return apply_pair(ps, key, trim(eq + 1));
}

static int parse_stream(struct parser *ps, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = -1;

	while ((n = getline(&line, &cap, f)) != -1) {
		ps->line++;
		if (parse_line(ps, line, (size_t)n) < 0)
			goto out;
	}
	/* -1 without EOF is a read error (EISDIR) or getline's ENOMEM. */
	if (ferror(f) || !feof(f)) {
		set_err(ps->err, ps->errlen, "%s: %s", ps->path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(line);
	return rc;
}

int cfg_load(struct cfg *cfg, const char *path, char *err, size_t errlen)
{
	struct cfg next = *cfg;
	struct parser ps = { .cfg = &next, .path = path, .err = err, .errlen = errlen };
	FILE *f = fopen(path, "re");
	int rc;

	if (f == NULL) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = parse_stream(&ps, f);
	/* Read-only stream: a close failure cannot lose data, and the parse
	 * result already says whether the contents were good. */
	if (fclose(f) != 0 && rc == 0)
		log_warn("closing %s: %s", path, strerror(errno));
	if (rc == 0)
		*cfg = next;
	return rc;
}
