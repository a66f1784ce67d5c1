/*
 * config_keys.c - the table of configuration keys (one row per key) and the
 * value types it uses: how each type is parsed, stored in struct cfg, and
 * described in a "bad value" error. To add a key, see include/temporis/base/config.h.
 */
#include "temporis/base/config.h"

#include "temporis/base/duration.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define KIB_SHIFT 10
#define MIB_SHIFT 20
#define GIB_SHIFT 30
#define DECIMAL_BASE 10
#define SIZE_TEXT_MAX 24 /* UINT64_MAX's 20 digits, a suffix and the NUL */

/* The install's directories, passed by the Makefile like SYSCONFDIR: configure's
 * --datadir, --localstatedir and --runstatedir. */
#ifndef DATADIR
#define DATADIR "/usr/local/share"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

#define PORT_MIN 1
#define PORT_MAX 65535
#define USER_NAME_MAX 32 /* useradd's limit: [a-z_][a-z0-9_-]{0,31} */

/* The word that stands for "one per online CPU" in a CFG_TYPE_AUTO_COUNT key. */
#define AUTO_WORD "auto"

/* The literal that stands for "no user" (an empty value is an error). */
#define USER_NONE_LITERAL "\"\""

/* A Unix socket address holds the path and its NUL. */
#define SUN_PATH_LEN sizeof(((struct sockaddr_un *)0)->sun_path)

/* The defaults under the install's state directories (/var/lib, /run for
 * --prefix=/usr --localstatedir=/var --runstatedir=/run, as the systemd unit's
 * StateDirectory= and RuntimeDirectory= are). */
#define DEFAULT_DATA_DIR LOCALSTATEDIR "/lib/temporis"
#define DEFAULT_ADMIN_SOCKET RUNSTATEDIR "/temporis/admin.sock"
_Static_assert(sizeof(DEFAULT_ADMIN_SOCKET) <= SUN_PATH_LEN,
	       "--runstatedir is too long for the default admin_socket");

/* Numbers and enums are stored through a 32- or 64-bit unsigned image (store_uint);
 * an int or enum field of 4 bytes holds the same non-negative value. */
_Static_assert(sizeof(int) == sizeof(uint32_t), "int fields are stored as 32 bits");
_Static_assert(sizeof(enum cfg_sync) == sizeof(uint32_t), "enum fields are stored as 32 bits");
_Static_assert(sizeof(enum log_level) == sizeof(uint32_t), "enum fields are stored as 32 bits");

static const char *const sync_words[] = {
	[CFG_SYNC_WAL] = "wal", [CFG_SYNC_FSYNC] = "fsync", NULL,
};

static const char *const log_level_words[] = {
	[LOG_DEBUG] = "debug", [LOG_INFO] = "info", [LOG_WARN] = "warn", [LOG_ERROR] = "error", NULL,
};

/* The keys in the order of etc/temporis.conf. Ranges are inclusive; a path's
 * max is exclusive (the field keeps its NUL). */
const struct cfg_key cfg_key_table[] = {
	{ .name = "listen", .type = CFG_TYPE_LISTEN, .default_text = "127.0.0.1:8080",
	  .min = PORT_MIN, .max = PORT_MAX, .applies = CFG_APPLY_RESTART,
	  .doc = "public HTTP address, host:port", CFG_FIELD(listen) },
	{ .name = "workers", .type = CFG_TYPE_AUTO_COUNT, .default_text = AUTO_WORD,
	  .min = 1, .max = CFG_WORKERS_MAX, .unit = "processes", .applies = CFG_APPLY_RELOAD,
	  .doc = "HTTP worker processes", CFG_FIELD(workers) },
	{ .name = "data_dir", .type = CFG_TYPE_PATH, .default_text = DEFAULT_DATA_DIR,
	  .max = CFG_PATH_MAX, .unit = "bytes", .applies = CFG_APPLY_RESTART,
	  .doc = "directory of the database and the catalog", CFG_FIELD(data_dir) },
	{ .name = "admin_socket", .type = CFG_TYPE_PATH, .default_text = DEFAULT_ADMIN_SOCKET,
	  .max = SUN_PATH_LEN, .unit = "bytes", .applies = CFG_APPLY_RESTART,
	  .doc = "Unix socket of temporisctl and the workers", CFG_FIELD(admin_socket) },
	{ .name = "ring_size", .type = CFG_TYPE_SIZE, .default_text = "64M",
	  .min = MIB, .max = 64 * GIB, .unit = "bytes", .applies = CFG_APPLY_RESTART,
	  .doc = "shared-memory buffer between the workers and the writer", CFG_FIELD(ring_size) },
	{ .name = "max_body_bytes", .type = CFG_TYPE_SIZE, .default_text = "16M",
	  .min = KIB, .max = GIB, .unit = "bytes", .applies = CFG_APPLY_RESTART,
	  .doc = "largest accepted request body", CFG_FIELD(max_body_bytes) },
	{ .name = "max_records_per_request", .type = CFG_TYPE_INT, .default_text = "100000",
	  .min = 1, .max = 10000000, .unit = "records", .applies = CFG_APPLY_RESTART,
	  .doc = "most records in one ingest request", CFG_FIELD(max_records_per_request) },
	{ .name = "sync", .type = CFG_TYPE_ENUM, .default_text = "wal", .words = sync_words,
	  .applies = CFG_APPLY_RESTART,
	  .doc = "durability of an acknowledged request", CFG_FIELD(sync) },
	{ .name = "enqueue_timeout_ms", .type = CFG_TYPE_INT, .default_text = "2000",
	  .min = 0, .max = 600000, .unit = "ms", .applies = CFG_APPLY_RESTART,
	  .doc = "wait for room in the ring before 503", CFG_FIELD(enqueue_timeout_ms) },
	{ .name = "commit_timeout_ms", .type = CFG_TYPE_INT, .default_text = "10000",
	  .min = 0, .max = 600000, .unit = "ms", .applies = CFG_APPLY_RESTART,
	  .doc = "wait for the writer's commit before 503", CFG_FIELD(commit_timeout_ms) },
	{ .name = "idle_timeout_s", .type = CFG_TYPE_INT, .default_text = "60",
	  .min = 1, .max = 86400, .unit = "s", .applies = CFG_APPLY_RESTART,
	  .doc = "idle keep-alive or slow request before close", CFG_FIELD(idle_timeout_s) },
	{ .name = "header_timeout_s", .type = CFG_TYPE_INT, .default_text = "10",
	  .min = 1, .max = 3600, .unit = "s", .applies = CFG_APPLY_RESTART,
	  .doc = "a request's head must arrive within this, else 408",
	  CFG_FIELD(header_timeout_s) },
	{ .name = "log_level", .type = CFG_TYPE_ENUM, .default_text = "info",
	  .words = log_level_words, .applies = CFG_APPLY_RELOAD,
	  .doc = "least severe message written to stderr", CFG_FIELD(log_level) },
	{ .name = "max_connections", .type = CFG_TYPE_INT, .default_text = "1024",
	  .min = 1, .max = 1000000, .unit = "connections", .applies = CFG_APPLY_RESTART,
	  .doc = "open client connections per worker", CFG_FIELD(max_connections) },
	{ .name = "user", .type = CFG_TYPE_USER, .default_text = USER_NONE_LITERAL,
	  .max = USER_NAME_MAX, .unit = "characters", .applies = CFG_APPLY_RESTART,
	  .doc = "account to switch to when started as root", CFG_FIELD(user) },
	{ .name = "web_root", .type = CFG_TYPE_PATH, .default_text = DATADIR "/temporis/dashboard",
	  .max = CFG_PATH_MAX, .unit = "bytes", .applies = CFG_APPLY_RESTART,
	  .doc = "directory of the web dashboard", CFG_FIELD(web_root) },
	{ .name = "web_lib_root", .type = CFG_TYPE_PATH, .default_text = "/usr/share/javascript",
	  .max = CFG_PATH_MAX, .unit = "bytes", .applies = CFG_APPLY_RESTART,
	  .doc = "directory of Debian's shared JavaScript", CFG_FIELD(web_lib_root) },
	{ .name = "min_free_disk", .type = CFG_TYPE_SIZE, .default_text = "256M",
	  .min = 0, .max = 1024 * GIB, .unit = "bytes", .applies = CFG_APPLY_RESTART,
	  .doc = "free space on data_dir's filesystem below which ingest answers 507",
	  CFG_FIELD(min_free_disk) },
	{ .name = "query_max_series", .type = CFG_TYPE_INT, .default_text = "50000",
	  .min = 1, .max = 100000000, .unit = "series", .applies = CFG_APPLY_RESTART,
	  .doc = "series one Prometheus API query may select, else 422",
	  CFG_FIELD(query_max_series) },
	{ .name = "query_max_points", .type = CFG_TYPE_INT, .default_text = "20000000",
	  .min = 1, .max = 1000000000, .unit = "points", .applies = CFG_APPLY_RESTART,
	  .doc = "points one Prometheus API query may load, else 422",
	  CFG_FIELD(query_max_points) },
	{ .name = "default_retention", .type = CFG_TYPE_DURATION, .default_text = "0",
	  .min = 0, .max = DURATION_MAX_S, .unit = "s", .applies = CFG_APPLY_RESTART,
	  .doc = "retention of a source created without one; 0 = keep forever",
	  CFG_FIELD(default_retention_s) },
};

const size_t cfg_key_count = sizeof(cfg_key_table) / sizeof(cfg_key_table[0]);

const struct cfg_key *cfg_key_find(const char *name)
{
	for (size_t i = 0; i < cfg_key_count; i++)
		if (strcmp(cfg_key_table[i].name, name) == 0)
			return &cfg_key_table[i];
	return NULL;
}

/* ---- numbers ---- */

/* Decimal digits only (no sign, no spaces); -1 on overflow or no digit. */
static int parse_digits(const char *s, const char **end, uint64_t *out)
{
	uint64_t n = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (n > (UINT64_MAX - digit) / DECIMAL_BASE)
			return -1;
		n = n * DECIMAL_BASE + digit;
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

/* A size as the file would say it: the largest suffix that divides it exactly. */
static void format_size(uint64_t n, char *buf, size_t len)
{
	static const struct { uint64_t unit; const char *suffix; } units[] = {
		{ GIB, "G" }, { MIB, "M" }, { KIB, "K" },
	};

	unsigned long long count = n;
	const char *suffix = "";
	int rc;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (n != 0 && n % units[i].unit == 0) {
			count = n / units[i].unit;
			suffix = units[i].suffix;
			break;
		}
	}
	rc = snprintf(buf, len, "%llu%s", count, suffix);
	if (rc < 0 || (size_t)rc >= len)
		buf[0] = '\0'; /* cannot happen with SIZE_TEXT_MAX bytes */
}

/* ---- strings ---- */

static int copy_string(char *dst, size_t dstlen, const char *src)
{
	size_t len = strlen(src);

	if (len >= dstlen)
		return -1;
	memcpy(dst, src, len + 1);
	return 0;
}

static int is_user_name(const char *v, size_t max)
{
	size_t len = strlen(v);

	if (len == 0 || len > max || !((v[0] >= 'a' && v[0] <= 'z') || v[0] == '_'))
		return 0;
	for (size_t i = 1; i < len; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') ||
		      v[i] == '_' || v[i] == '-'))
			return 0;
	return 1;
}

static int cpu_count(uint64_t max)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1; /* unknown: one still serves */
	return (uint64_t)n > max ? (int)max : (int)n;
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

/* Split "host:port" with a port from port_min to port_max; see cfg_split_listen. */
static int split_listen(const char *listen, uint64_t port_min, uint64_t port_max, char *host,
			size_t hostlen, char *port, size_t portlen)
{
	const char *h, *p;
	size_t hlen;
	uint64_t portnum;
	struct in6_addr addr6;
	int n;

	if (locate_host(listen, &h, &hlen, &p) < 0 || hlen == 0 || hlen >= hostlen)
		return -1;
	if (parse_uint_range(p, port_min, port_max, &portnum) < 0)
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

int cfg_split_listen(const char *listen, char *host, size_t hostlen, char *port, size_t portlen)
{
	return split_listen(listen, PORT_MIN, PORT_MAX, host, hostlen, port, portlen);
}

/* ---- storing into struct cfg ---- */

static void *field_of(const struct cfg_key *k, struct cfg *cfg)
{
	return (char *)cfg + k->offset;
}

static const void *const_field_of(const struct cfg_key *k, const struct cfg *cfg)
{
	return (const char *)cfg + k->offset;
}

/* Store n in a 32- or 64-bit field; -1 if it does not fit (a table bug). */
static int store_uint(void *field, size_t size, uint64_t n)
{
	if (size == sizeof(uint32_t) && n <= UINT32_MAX) {
		uint32_t n32 = (uint32_t)n;

		memcpy(field, &n32, sizeof(n32));
		return 0;
	}
	if (size == sizeof(uint64_t)) {
		memcpy(field, &n, sizeof(n));
		return 0;
	}
	return -1;
}

static int find_word(const char *const *words, const char *v, uint64_t *index)
{
	for (uint64_t i = 0; words[i] != NULL; i++) {
		if (strcmp(words[i], v) == 0) {
			*index = i;
			return 0;
		}
	}
	return -1;
}

static int set_listen(const struct cfg_key *k, char *field, const char *v)
{
	char host[CFG_ADDR_MAX], port[CFG_PORT_TEXT_MAX];

	if (split_listen(v, k->min, k->max, host, sizeof(host), port, sizeof(port)) < 0)
		return -1;
	return copy_string(field, k->size, v);
}

static int set_user(const struct cfg_key *k, char *field, const char *v)
{
	if (strcmp(v, USER_NONE_LITERAL) == 0) {
		field[0] = '\0';
		return 0;
	}
	if (k->max >= k->size || !is_user_name(v, k->max))
		return -1;
	return copy_string(field, k->size, v);
}

/* The number a numeric or enum text stands for; -1 if the text is bad. */
static int parse_number(const struct cfg_key *k, const char *v, uint64_t *n)
{
	switch (k->type) {
	case CFG_TYPE_INT:
		return parse_uint_range(v, k->min, k->max, n);
	case CFG_TYPE_SIZE:
		if (cfg_parse_size(v, n) < 0 || *n < k->min || *n > k->max)
			return -1;
		return 0;
	case CFG_TYPE_ENUM:
		return find_word(k->words, v, n);
	case CFG_TYPE_AUTO_COUNT:
		if (strcmp(v, AUTO_WORD) == 0) {
			*n = (uint64_t)cpu_count(k->max);
			return 0;
		}
		return parse_uint_range(v, k->min, k->max, n);
	case CFG_TYPE_DURATION: {
		int64_t secs;

		if (duration_parse(v, strlen(v), &secs) < 0 || (uint64_t)secs < k->min ||
		    (uint64_t)secs > k->max)
			return -1;
		*n = (uint64_t)secs;
		return 0;
	}
	default:
		return -1;
	}
}

int cfg_key_set(const struct cfg_key *k, struct cfg *cfg, const char *text)
{
	char *field = field_of(k, cfg);
	uint64_t n;

	if (text[0] == '\0')
		return -1;
	switch (k->type) {
	case CFG_TYPE_PATH:
		if (strlen(text) >= k->max)
			return -1;
		return copy_string(field, k->size, text);
	case CFG_TYPE_LISTEN:
		return set_listen(k, field, text);
	case CFG_TYPE_USER:
		return set_user(k, field, text);
	default:
		if (parse_number(k, text, &n) < 0)
			return -1;
		return store_uint(field, k->size, n);
	}
}

/* ---- "expected ..." ---- */

/* Append to buf (NUL-terminated, truncated at len); *used counts what fit. */
static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n < 0) {
		buf[*used] = '\0';
		return;
	}
	*used = (size_t)n >= len - *used ? len : *used + (size_t)n;
}

/* "expected a, b or c" */
static void expect_words(const char *const *words, char *buf, size_t len)
{
	size_t used = 0, count = 0;

	while (words[count] != NULL)
		count++;
	append(buf, len, &used, "expected ");
	for (size_t i = 0; i < count; i++) {
		const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";

		append(buf, len, &used, "%s%s", sep, words[i]);
	}
}

void cfg_key_expect(const struct cfg_key *k, char *buf, size_t len)
{
	unsigned long long min = k->min, max = k->max;
	char lo[SIZE_TEXT_MAX], hi[SIZE_TEXT_MAX];
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	switch (k->type) {
	case CFG_TYPE_PATH:
		append(buf, len, &used, "expected a path shorter than %llu %s", max, k->unit);
		break;
	case CFG_TYPE_INT:
		append(buf, len, &used, "expected an integer %llu-%llu", min, max);
		break;
	case CFG_TYPE_SIZE:
		format_size(k->min, lo, sizeof(lo));
		format_size(k->max, hi, sizeof(hi));
		append(buf, len, &used, "expected a size from %s to %s (suffix K, M or G)", lo, hi);
		break;
	case CFG_TYPE_ENUM:
		expect_words(k->words, buf, len);
		break;
	case CFG_TYPE_AUTO_COUNT:
		append(buf, len, &used, "expected %s or %llu-%llu", AUTO_WORD, min, max);
		break;
	case CFG_TYPE_LISTEN:
		append(buf, len, &used,
		       "expected host:port with port %llu-%llu (IPv6 as [addr]:port)", min, max);
		break;
	case CFG_TYPE_USER:
		append(buf, len, &used, "expected %s or a user name matching "
		       "[a-z_][a-z0-9_-]{0,%llu}", USER_NONE_LITERAL, max - 1);
		break;
	case CFG_TYPE_DURATION:
		append(buf, len, &used, "expected a duration with a unit s, m, h, d or w (30d), "
		       "or 0 or forever");
		break;
	}
}

/* ---- comparing and copying (SIGHUP) ---- */

static bool is_string(const struct cfg_key *k)
{
	return k->type == CFG_TYPE_PATH || k->type == CFG_TYPE_LISTEN || k->type == CFG_TYPE_USER;
}

bool cfg_key_differs(const struct cfg_key *k, const struct cfg *a, const struct cfg *b)
{
	const void *fa = const_field_of(k, a), *fb = const_field_of(k, b);

	/* Strings: bytes after the NUL are left-overs of earlier values. */
	if (is_string(k))
		return strncmp(fa, fb, k->size) != 0;
	return memcmp(fa, fb, k->size) != 0;
}

void cfg_key_copy(const struct cfg_key *k, struct cfg *dst, const struct cfg *src)
{
	memcpy(field_of(k, dst), const_field_of(k, src), k->size);
}
