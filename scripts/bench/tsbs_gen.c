/* tsbs_gen.c - the TSBS "cpu-only" records of the ingest benchmark, generated on the fly.
 *
 * Built by scripts/bench/run into a shared library (tsbs_gen.so) that two programs load:
 * wrk's LuaJIT threads (stream.lua, through the FFI) pull complete HTTP requests from it,
 * and tsbs.py (ctypes) uses the same code for the expected values when it reads the
 * records back and for the backfill checkpoints. One code path makes the records, so every
 * system gets the same records and the verification expects exactly those.
 *
 * Records: H hosts x 10 fields (usage_user ... usage_guest_nice). Series i = host * 10 +
 * field follows TSBS's clamped random walk: v(0) uniform in [0, 100), v(s) = clamp(v(s-1) +
 * SIGMA * z(i, s), 0, 100), z from a hash of (seed, i, s) through a 65,536-entry table of
 * N(0,1) quantiles. A value is written with two decimals ("two", the default), with 17
 * significant digits ("full") or, with a ten times slower walk, rounded to a whole number
 * ("int"; still a double: 42.0 in JSON, 42 in line protocol, where floats are the default).
 *
 * Two orders:
 * - seq: record k = step * 10H + host * 10 + field, timestamps base + step * interval;
 *   body b holds records [b * batch, (b + 1) * batch). One stream per process: every wrk
 *   thread takes the next body under a lock (the walk advances in order, once per record),
 *   formats it outside the lock. tg_save writes the walk's state so that the next wrk run
 *   continues where this one stopped; a body whose last timestamp is in the future is not
 *   made (the stream ends there).
 * - chunks (backfill): body b is chunk order[b] = (window w, host group g): chunk_steps
 *   steps from w * chunk_steps for the chunk_hosts hosts of group g, step-major. The walk's
 *   state at every window start comes from a checkpoint file (tg_checkpoints).
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIELDS 10
#define NORMAL_BITS 11           /* quantile table: small enough to stay in L1 */
#define NORMAL_SIZE (1u << NORMAL_BITS)
#define VALUE_MAX 100.0
#define SIGMA_INT 0.1            /* "int": a slower walk, so whole numbers change rarely */
#define NUM_MAX 32               /* longest formatted number */
#define PAD 16                   /* field and host names are copied 16 bytes at a time */
#define HEAD_MAX 1024
#define RECORD_MAX 128           /* generous bound of one JSON record or one tenth of a line */
#define SPEC_LINE 4096
#define STATE_MAGIC 0x31534754u  /* "TGS1" */
#define EXHAUSTED (-1)
#define FUTURE (-2)
#define FULL_LOW 1e-3            /* outside [FULL_LOW, FULL_HIGH): the slow snprintf path */
#define FULL_HIGH 1e15

enum order { SEQ, CHUNKS };
enum format { JSON, LINE };
enum values { TWO, FULL, INT };

static const char *const field_names[FIELDS] = {
	"usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
	"usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"};

typedef struct tg_stream {
	enum order order;
	enum format format;
	enum values values;
	long hosts, batch, interval, base_ts;
	uint64_t seed;
	long next, end;                  /* next body; end: first body not made (-1: none) */
	long chunk_steps, chunk_hosts, norder;
	int32_t *orderv;                 /* chunks: body -> chunk id */
	double *checkpoints;             /* chunks: [window][series] values at step w*cs - 1 */
	long windows;
	double *state;                   /* seq: every series' last value */
	int status;                      /* 0, EXHAUSTED or FUTURE once the stream ended */
	pthread_mutex_t lock;
	char head[HEAD_MAX];             /* request line and headers up to "Content-Length: " */
	size_t head_len;
	char source[256];
	char (*hostname)[PAD];           /* "host_123" */
	unsigned char *hostname_len;
} tg_stream;

static unsigned char field_len[FIELDS];
static char field_pad[FIELDS][PAD];       /* the names, readable PAD bytes at a time */
static double normal_table[NORMAL_SIZE + 1];  /* quantiles at j / NORMAL_SIZE */
static char digit_pairs[200];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* ---- random walk ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBULL;
	x ^= x >> 31;
	return x;
}

static uint64_t hash3(uint64_t seed, uint64_t series, uint64_t step)
{
	return mix64(mix64(seed ^ (series * 0x9E3779B97F4A7C15ULL)) + step * 0xD1B54A32D192ED03ULL);
}

/* Acklam's approximation of the normal quantile, refined by one Halley step. */
static double probit(double p)
{
	static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
				   -2.759285104469687e+02, 1.383577518672690e+02,
				   -3.066479806614716e+01, 2.506628277459239e+00};
	static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
				   -1.556989798598866e+02, 6.680131188771972e+01,
				   -1.328068155288572e+01};
	static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
				   -2.400758277161838e+00, -2.549732539343734e+00,
				   4.374664141464968e+00, 2.938163982698783e+00};
	static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
				   2.445134137142996e+00, 3.754408661907416e+00};
	const double plow = 0.02425;
	double q, r, x;

	if (p < plow) {
		q = sqrt(-2 * log(p));
		x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	} else if (p <= 1 - plow) {
		q = p - 0.5;
		r = q * q;
		x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
		    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
	} else {
		q = sqrt(-2 * log(1 - p));
		x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	}
	{
		double e = 0.5 * erfc(-x / sqrt(2)) - p;
		double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
		x = x - u / (1 + x * u / 2);
	}
	return x;
}

static void make_tables(void)
{
	for (int f = 0; f < FIELDS; f++) {
		field_len[f] = (unsigned char)strlen(field_names[f]);
		memcpy(field_pad[f], field_names[f], field_len[f]);
	}
	for (unsigned j = 1; j < NORMAL_SIZE; j++)
		normal_table[j] = probit((double)j / NORMAL_SIZE);
	for (int q = 0; q < 100; q++) {
		digit_pairs[2 * q] = (char)('0' + q / 10);
		digit_pairs[2 * q + 1] = (char)('0' + q % 10);
	}
}

/* N(0,1) from 64 random bits: the inverse CDF, linear between the table's quantiles; the
 * two tail slices (1 in 1,024) computed exactly. */
static inline double normal(uint64_t x)
{
	unsigned j = (unsigned)(x >> (64 - NORMAL_BITS));
	double frac = (double)((x >> 11) & ((1ULL << (53 - NORMAL_BITS)) - 1)) *
		      (1.0 / (double)(1ULL << (53 - NORMAL_BITS)));

	if (j == 0 || j == NORMAL_SIZE - 1)
		return probit(((double)j + frac + 0x1.0p-60) / NORMAL_SIZE);
	return normal_table[j] + frac * (normal_table[j + 1] - normal_table[j]);
}

static double sigma_of(const tg_stream *h)
{
	return h->values == INT ? SIGMA_INT : 1.0;
}

/* Value of series i at step s, given its value at step s - 1 (ignored for s == 0). */
static inline double walk(const tg_stream *h, long i, long s, double prev)
{
	uint64_t x = hash3(h->seed, (uint64_t)i, (uint64_t)s);
	double v;

	if (s == 0)
		return (double)(x >> 11) * 0x1.0p-53 * VALUE_MAX;
	v = prev + sigma_of(h) * normal(x);
	return v < 0 ? 0 : v > VALUE_MAX ? VALUE_MAX : v;
}

/* ---- numbers ---- */

static size_t put_long(char *o, long v)
{
	char t[24];
	size_t n = 0, k;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;

	do {
		t[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	k = 0;
	if (v < 0)
		o[k++] = '-';
	while (n)
		o[k++] = t[--n];
	return k;
}

static const uint64_t pow10_u64[] = {
	1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
	1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
	100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
	1000000000000000000ULL, 10000000000000000000ULL};

/* v (in [FULL_LOW, FULL_HIGH)) with 17 significant digits, correctly rounded (half to even),
 * positional, trailing zeros dropped but one digit kept after the point: the digits of
 * printf's %.17g, which always round-trip. */
static size_t put_full_fast(char *o, double v)
{
	static const double p10[] = {1e-3, 1e-2, 1e-1, 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
				     1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16};
	const uint64_t lo = 10000000000000000ULL, hi = 100000000000000000ULL;
	uint64_t bits, m, n;
	int ex, e10 = -3, k, nd, len;
	char dig[17];

	memcpy(&bits, &v, sizeof bits);
	m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
	ex = (int)((bits >> 52) & 0x7ff) - 1075;          /* v = m * 2^ex */
	while (e10 < 16 && v >= p10[e10 + 4])
		e10++;
	for (;;) {
		unsigned __int128 prod = (unsigned __int128)m * pow10_u64[16 - e10], rem, half;
		int shift = -ex;                               /* n = round(v * 10^(16 - e10)) */
		n = (uint64_t)(prod >> shift);
		rem = prod & (((unsigned __int128)1 << shift) - 1);
		half = (unsigned __int128)1 << (shift - 1);
		if (rem > half || (rem == half && (n & 1)))
			n++;
		if (n < lo)
			e10--;
		else if (n >= hi)
			e10++;
		else
			break;
	}
	{
		uint32_t top = (uint32_t)(n / 1000000000ULL), low = (uint32_t)(n % 1000000000ULL);
		dig[16] = (char)('0' + low % 10);              /* 8 digits in top, 9 in low */
		low /= 10;
		for (k = 14; k >= 8; k -= 2, low /= 100)
			memcpy(dig + k, digit_pairs + 2 * (low % 100), 2);
		for (k = 6; k >= 0; k -= 2, top /= 100)
			memcpy(dig + k, digit_pairs + 2 * (top % 100), 2);
	}
	nd = 17;
	while (nd > 1 && dig[nd - 1] == '0')
		nd--;
	len = 0;
	if (e10 >= 0) {
		for (k = 0; k <= e10; k++)
			o[len++] = k < nd ? dig[k] : '0';
		o[len++] = '.';
		if (nd <= e10 + 1)
			o[len++] = '0';
		for (k = e10 + 1; k < nd; k++)
			o[len++] = dig[k];
	} else {
		o[len++] = '0';
		o[len++] = '.';
		for (k = 0; k < -e10 - 1; k++)
			o[len++] = '0';
		for (k = 0; k < nd; k++)
			o[len++] = dig[k];
	}
	return (size_t)len;
}

static size_t put_full(char *o, double v)
{
	size_t n;

	if (v >= FULL_LOW && v < FULL_HIGH)
		return put_full_fast(o, v);
	n = (size_t)snprintf(o, NUM_MAX, "%.17g", v);
	if (!memchr(o, '.', n) && !memchr(o, 'e', n)) {
		memcpy(o + n, ".0", 2);
		n += 2;
	}
	return n;
}

static inline size_t put_value(const tg_stream *h, char *o, double v)
{
	if (h->values == TWO) {
		int q = (int)(v * 100.0 + 0.5);                /* v >= 0: truncation is floor */
		int whole = q / 100, n = 0;
		if (whole >= 100)
			o[n++] = '1';
		if (whole >= 10)
			o[n++] = digit_pairs[2 * (whole % 100)];
		o[n++] = digit_pairs[2 * (whole % 100) + 1];
		o[n++] = '.';
		memcpy(o + n, digit_pairs + 2 * (q % 100), 2);
		return (size_t)n + 2;
	}
	if (h->values == FULL)
		return put_full(o, v);
	{
		size_t n = put_long(o, (long)(v + 0.5));
		if (h->format == JSON) {
			memcpy(o + n, ".0", 2);
			n += 2;
		}
		return n;
	}
}

/* ---- bodies ---- */

/* Copies n (<= PAD) bytes as one fixed-size copy: src must be readable and dst writable
 * for PAD bytes (the output buffer has RECORD_MAX bytes a record). */
static inline size_t put16(char *dst, const char *src, size_t n)
{
	memcpy(dst, src, PAD);
	return n;
}

typedef struct out_buf {
	char *p;
	size_t cap;
	double *vals;                    /* record r: value, step and series */
	long *steps;
	int32_t *series;
	size_t nvals;
} out_buf;

static __thread out_buf tls_out;

static int out_reserve(const tg_stream *h, out_buf *b)
{
	size_t need = HEAD_MAX + (size_t)h->batch * RECORD_MAX + 64;

	if (b->cap < need) {
		char *p = realloc(b->p, need);
		if (!p)
			return -1;
		b->p = p;
		b->cap = need;
	}
	if (b->nvals < (size_t)h->batch) {
		size_t n = (size_t)h->batch;
		free(b->vals);
		free(b->steps);
		free(b->series);
		b->vals = malloc(n * sizeof *b->vals);
		b->steps = malloc(n * sizeof *b->steps);
		b->series = malloc(n * sizeof *b->series);
		b->nvals = b->vals && b->steps && b->series ? n : 0;
		if (!b->nvals)
			return -1;
	}
	return 0;
}

/* Formats records (step, series, value) into o; returns the length. */
static size_t format_body(const tg_stream *h, char *o, const out_buf *b, long n)
{
	long last_step = -1;
	char ts[24];
	size_t tsn = 0, len = 0;

	if (h->format == JSON) {
		len += (size_t)sprintf(o, "{\"data_source\":\"%s\",\"records\":[", h->source);
		for (long r = 0; r < n; r++) {
			long step = b->steps[r], host = b->series[r] / FIELDS;
			int field = b->series[r] % FIELDS;
			const char *f = field_pad[field];
			size_t fl = field_len[field];
			if (step != last_step) {
				tsn = put_long(ts, h->base_ts + step * h->interval);
				last_step = step;
			}
			if (r)
				o[len++] = ',';
			memcpy(o + len, "{\"timestamp\":", 13);
			len += 13;
			len += put16(o + len, ts, tsn);
			memcpy(o + len, ",\"name\":\"cpu.", 13);
			len += 13;
			len += put16(o + len, f, fl);
			o[len++] = '.';
			len += put16(o + len, h->hostname[host], h->hostname_len[host]);
			memcpy(o + len, "\",\"value\":", 10);
			len += 10;
			len += put_value(h, o + len, b->vals[r]);
			o[len++] = '}';
		}
		o[len++] = ']';
		o[len++] = '}';
		return len;
	}
	/* line protocol: one line per (step, host), its 10 fields in order */
	for (long r = 0; r < n; r++) {
		long host = b->series[r] / FIELDS;
		int field = b->series[r] % FIELDS;
		if (field == 0) {
			memcpy(o + len, "cpu,hostname=", 13);
			len += 13;
			len += put16(o + len, h->hostname[host], h->hostname_len[host]);
			o[len++] = ' ';
		} else {
			o[len++] = ',';
		}
		len += put16(o + len, field_pad[field], field_len[field]);
		o[len++] = '=';
		len += put_value(h, o + len, b->vals[r]);
		if (field == FIELDS - 1) {
			o[len++] = ' ';
			len += put_long(o + len, h->base_ts + b->steps[r] * h->interval);
			o[len++] = '\n';
		}
	}
	return len;
}

/* Walks the seq stream's body b (the next one) under the lock: keys and values. */
static long seq_take(tg_stream *h, out_buf *b)
{
	long body, per_step = h->hosts * FIELDS, k0, last, step, i;

	pthread_mutex_lock(&h->lock);
	body = h->next;
	if (h->status || (h->end >= 0 && body >= h->end)) {
		if (!h->status)
			h->status = EXHAUSTED;
		pthread_mutex_unlock(&h->lock);
		return h->status;
	}
	k0 = body * h->batch;
	last = (k0 + h->batch - 1) / per_step;
	if (h->base_ts + last * h->interval > (long)time(NULL)) {
		h->status = FUTURE;
		pthread_mutex_unlock(&h->lock);
		return FUTURE;
	}
	step = k0 / per_step;
	i = k0 % per_step;
	for (long r = 0; r < h->batch; r++) {
		h->state[i] = walk(h, i, step, h->state[i]);
		b->vals[r] = h->state[i];
		b->steps[r] = step;
		b->series[r] = (int32_t)i;
		if (++i == per_step) {
			i = 0;
			step++;
		}
	}
	h->next = body + 1;
	pthread_mutex_unlock(&h->lock);
	return body;
}

static long groups_of(const tg_stream *h)
{
	return h->hosts / h->chunk_hosts;
}

/* Chunk c's records in step-major order, walked from its window's checkpoint. */
static void chunk_records(const tg_stream *h, long c, out_buf *b)
{
	long per_step = h->hosts * FIELDS, w = c / groups_of(h), g = c % groups_of(h);
	long s0 = w * h->chunk_steps, i0 = g * h->chunk_hosts * FIELDS;
	long width = h->chunk_hosts * FIELDS, r = 0;
	const double *cp = h->checkpoints + (size_t)w * (size_t)per_step;

	for (long s = s0; s < s0 + h->chunk_steps; s++) {
		for (long j = 0; j < width; j++) {
			double prev = s == s0 ? cp[i0 + j] : b->vals[r - width];
			b->vals[r] = walk(h, i0 + j, s, prev);
			b->steps[r] = s;
			b->series[r] = (int32_t)(i0 + j);
			r++;
		}
	}
}

static long chunks_take(tg_stream *h, out_buf *b)
{
	long body = __atomic_fetch_add(&h->next, 1, __ATOMIC_RELAXED);

	if (body >= h->norder || (h->end >= 0 && body >= h->end)) {
		h->status = EXHAUSTED;
		return EXHAUSTED;
	}
	chunk_records(h, h->orderv[body], b);
	return body;
}

/* ---- spec and state files ---- */

static int read_file(const char *path, void *dst, size_t size)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return -1;
	n = fread(dst, 1, size, f);
	fclose(f);
	return n == size ? 0 : -1;
}

static void *read_all(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	long n;
	void *p = NULL;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		p = malloc(n ? (size_t)n : 1);
		if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
			free(p);
			p = NULL;
		}
		*size = (size_t)n;
	}
	fclose(f);
	return p;
}

struct state_head {
	uint32_t magic, values;
	int64_t next, hosts;
	uint64_t seed;
};

static int load_state(tg_stream *h, const char *path)
{
	struct state_head sh;
	FILE *f = fopen(path, "rb");
	size_t n = (size_t)(h->hosts * FIELDS);
	int ok;

	if (!f)
		return -1;
	ok = fread(&sh, sizeof sh, 1, f) == 1 && sh.magic == STATE_MAGIC &&
	     sh.hosts == h->hosts && sh.seed == h->seed && sh.values == (uint32_t)h->values &&
	     fread(h->state, sizeof(double), n, f) == n;
	fclose(f);
	if (!ok)
		return -1;
	h->next = (long)sh.next;
	return 0;
}

static void set_head(tg_stream *h, const char *path, const char *host, const char *ctype,
		     const char *token)
{
	int n = snprintf(h->head, HEAD_MAX, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n%s%s%s"
			 "Content-Length: ", path, host, ctype, *token ? "Authorization: Bearer " : "",
			 token, *token ? "\r\n" : "");
	h->head_len = n > 0 && n < HEAD_MAX ? (size_t)n : 0;
}

static int spec_value(tg_stream *h, const char *key, const char *val, char *paths[4])
{
	if (!strcmp(key, "order"))
		h->order = !strcmp(val, "chunks") ? CHUNKS : SEQ;
	else if (!strcmp(key, "format"))
		h->format = !strcmp(val, "line") ? LINE : JSON;
	else if (!strcmp(key, "values"))
		h->values = !strcmp(val, "full") ? FULL : !strcmp(val, "int") ? INT : TWO;
	else if (!strcmp(key, "hosts"))
		h->hosts = atol(val);
	else if (!strcmp(key, "batch"))
		h->batch = atol(val);
	else if (!strcmp(key, "interval"))
		h->interval = atol(val);
	else if (!strcmp(key, "base_ts"))
		h->base_ts = atol(val);
	else if (!strcmp(key, "seed"))
		h->seed = strtoull(val, NULL, 10);
	else if (!strcmp(key, "end"))
		h->end = atol(val);
	else if (!strcmp(key, "chunk_steps"))
		h->chunk_steps = atol(val);
	else if (!strcmp(key, "chunk_hosts"))
		h->chunk_hosts = atol(val);
	else if (!strcmp(key, "windows"))
		h->windows = atol(val);
	else if (!strcmp(key, "source"))
		snprintf(h->source, sizeof h->source, "%s", val);
	else if (!strcmp(key, "state"))
		paths[0] = strdup(val);
	else if (!strcmp(key, "order_file"))
		paths[1] = strdup(val);
	else if (!strcmp(key, "checkpoints"))
		paths[2] = strdup(val);
	else if (!strcmp(key, "http"))
		paths[3] = strdup(val);
	else
		return -1;
	return 0;
}

/* "http" = path|host|content type|token (token may be empty) */
static void parse_http(tg_stream *h, char *v)
{
	char *f[4] = {v, "", "", ""};

	for (int k = 1; k < 4 && f[k - 1]; k++) {
		char *bar = strchr(f[k - 1], '|');
		if (!bar)
			break;
		*bar = 0;
		f[k] = bar + 1;
	}
	set_head(h, f[0], f[1], f[2], f[3]);
}

static int check_stream(const tg_stream *h)
{
	if (h->hosts <= 0 || h->batch <= 0 || h->batch % FIELDS || h->interval <= 0)
		return -1;
	if (h->order == CHUNKS &&
	    (h->chunk_hosts <= 0 || h->hosts % h->chunk_hosts || h->chunk_steps <= 0 ||
	     h->batch != h->chunk_hosts * FIELDS * h->chunk_steps || h->windows <= 0))
		return -1;
	return 0;
}

static void free_stream(tg_stream *h)
{
	if (!h)
		return;
	free(h->orderv);
	free(h->checkpoints);
	free(h->state);
	free(h->hostname);
	free(h->hostname_len);
	free(h);
}

/* Opens a stream from a spec file of key=value lines; NULL (and a message on stderr) if
 * the spec or one of its files is wrong. */
tg_stream *tg_open(const char *spec)
{
	char line[SPEC_LINE], *paths[4] = {NULL, NULL, NULL, NULL};
	FILE *f = fopen(spec, "r");
	tg_stream *h = calloc(1, sizeof *h);
	size_t size;
	int bad = !f || !h;

	pthread_once(&tables_once, make_tables);
	if (h) {
		h->end = -1;
		h->interval = 10;
		pthread_mutex_init(&h->lock, NULL);
	}
	while (!bad && fgets(line, sizeof line, f)) {
		char *eq = strchr(line, '='), *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (!*line || *line == '#')
			continue;
		if (!eq || (*eq = 0, spec_value(h, line, eq + 1, paths))) {
			fprintf(stderr, "tsbs_gen: %s: bad line '%s'\n", spec, line);
			bad = 1;
		}
	}
	if (f)
		fclose(f);
	bad = bad || check_stream(h);
	if (!bad) {
		h->state = calloc((size_t)(h->hosts * FIELDS), sizeof(double));
		h->hostname = calloc((size_t)h->hosts, sizeof *h->hostname);
		h->hostname_len = calloc((size_t)h->hosts, 1);
		bad = !h->state || !h->hostname || !h->hostname_len;
	}
	for (long i = 0; !bad && i < h->hosts; i++)
		h->hostname_len[i] = (unsigned char)snprintf(h->hostname[i], PAD, "host_%ld", i);
	if (!bad && paths[3])
		parse_http(h, paths[3]);
	if (!bad && paths[0] && load_state(h, paths[0])) {
		fprintf(stderr, "tsbs_gen: %s: cannot use state file %s\n", spec, paths[0]);
		bad = 1;
	}
	if (!bad && h->order == CHUNKS) {
		size_t want = (size_t)h->windows * (size_t)(h->hosts * FIELDS) * sizeof(double);
		h->orderv = paths[1] ? read_all(paths[1], &size) : NULL;
		h->norder = h->orderv ? (long)(size / sizeof(int32_t)) : 0;
		h->checkpoints = paths[2] ? malloc(want) : NULL;
		if (!h->orderv || !h->checkpoints || read_file(paths[2], h->checkpoints, want)) {
			fprintf(stderr, "tsbs_gen: %s: cannot read order or checkpoints\n", spec);
			bad = 1;
		}
		for (long b = 0; !bad && b < h->norder; b++)
			bad = h->orderv[b] < 0 || h->orderv[b] >= h->windows * groups_of(h);
	}
	for (int k = 0; k < 4; k++)
		free(paths[k]);
	if (bad) {
		fprintf(stderr, "tsbs_gen: %s: cannot open the stream\n", spec);
		free_stream(h);
		return NULL;
	}
	return h;
}

void tg_close(tg_stream *h)
{
	free_stream(h);
}

/* The process's one stream (wrk: every thread pulls from the same stream). */
tg_stream *tg_shared(const char *spec)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	static tg_stream *shared;
	tg_stream *h;

	pthread_mutex_lock(&once);
	if (!shared)
		shared = tg_open(spec);
	h = shared;
	pthread_mutex_unlock(&once);
	return h;
}

/* The next request: *out points to a complete HTTP request in this thread's buffer (valid
 * until its next call). Returns the body's index, or EXHAUSTED / FUTURE (nothing made). */
long tg_next(tg_stream *h, const char **out, size_t *len)
{
	out_buf *b = &tls_out;
	long body;
	size_t n, at;
	char cl[32];
	size_t cln;

	if (out_reserve(h, b))
		return EXHAUSTED;
	body = h->order == SEQ ? seq_take(h, b) : chunks_take(h, b);
	if (body < 0)
		return body;
	at = HEAD_MAX;
	n = format_body(h, b->p + at, b, h->batch);
	cln = put_long(cl, (long)n);
	memcpy(cl + cln, "\r\n\r\n", 4);
	cln += 4;
	at -= cln;
	memcpy(b->p + at, cl, cln);
	at -= h->head_len;
	memcpy(b->p + at, h->head, h->head_len);
	*out = b->p + at;
	*len = HEAD_MAX - at + n;
	return body;
}

/* Only the body (no HTTP head), for tests and for sending without wrk. */
long tg_next_body(tg_stream *h, const char **out, size_t *len)
{
	long body = tg_next(h, out, len);
	const char *p;

	if (body < 0)
		return body;
	p = strstr(*out, "\r\n\r\n");
	*len -= (size_t)(p + 4 - *out);
	*out = p + 4;
	return body;
}

long tg_position(tg_stream *h)
{
	long next = __atomic_load_n(&h->next, __ATOMIC_RELAXED);

	if (h->order == CHUNKS && next > h->norder)
		next = h->norder;        /* calls past the end still count up */
	if (h->end >= 0 && next > h->end)
		next = h->end;
	return next;
}

int tg_status(tg_stream *h)
{
	return h->status;
}

/* seq: writes the walk's state (next body and every series' last value). */
int tg_save(tg_stream *h, const char *path)
{
	struct state_head sh = {STATE_MAGIC, (uint32_t)h->values, 0, h->hosts, h->seed};
	size_t n = (size_t)(h->hosts * FIELDS);
	FILE *f;
	int ok;

	pthread_mutex_lock(&h->lock);
	sh.next = h->next;
	f = fopen(path, "wb");
	ok = f && fwrite(&sh, sizeof sh, 1, f) == 1 && fwrite(h->state, sizeof(double), n, f) == n;
	if (f && fclose(f))
		ok = 0;
	pthread_mutex_unlock(&h->lock);
	return ok ? 0 : -1;
}

/* For a chunks stream (any stream of the same hosts, values and seed walks the same):
 * walks every series over `windows` windows of chunk_steps steps and writes each window's
 * starting state (the values at step w * chunk_steps - 1; zeros for w = 0). */
int tg_checkpoints(tg_stream *h, long windows, long chunk_steps, const char *path)
{
	long per_step = h->hosts * FIELDS;
	double *cur = calloc((size_t)per_step, sizeof(double));
	FILE *f = fopen(path, "wb");
	int ok = cur && f;

	for (long w = 0; ok && w < windows; w++) {
		ok = fwrite(cur, sizeof(double), (size_t)per_step, f) == (size_t)per_step;
		for (long s = w * chunk_steps; ok && s < (w + 1) * chunk_steps; s++)
			for (long i = 0; i < per_step; i++)
				cur[i] = walk(h, i, s, cur[i]);
	}
	if (f && fclose(f))
		ok = 0;
	free(cur);
	return ok ? 0 : -1;
}

/* The values a server should store for series (host, field) at steps 0 .. steps-1: the
 * written text parsed back (strtod), so that a comparison is exact. */
int tg_expected(tg_stream *h, long host, long field, long steps, double *out)
{
	long i = host * FIELDS + field;
	double v = 0;
	char t[NUM_MAX + 4];

	if (host < 0 || host >= h->hosts || field < 0 || field >= FIELDS)
		return -1;
	for (long s = 0; s < steps; s++) {
		size_t n;
		v = walk(h, i, s, v);
		n = put_value(h, t, v);
		t[n] = 0;
		out[s] = strtod(t, NULL);
	}
	return 0;
}

/* The text of one value as this stream writes it (tests). */
size_t tg_format_value(tg_stream *h, double v, char *out)
{
	size_t n = put_value(h, out, v);
	out[n] = 0;
	return n;
}

const char *tg_field_name(int field)
{
	return field >= 0 && field < FIELDS ? field_names[field] : NULL;
}
