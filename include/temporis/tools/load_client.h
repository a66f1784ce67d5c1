/*
 * load_client.h - temporis-load's HTTP side (load_client.c): a few keep-alive evhttp
 * connections ("slots"), each owning one batch until the server accepts it, retried with
 * back-off on what is safe to retry (ingest and /write are idempotent upserts) and stopped
 * on the rest. The caller owns the event loop, the input (the fill hook) and stderr (the
 * say hook).
 */
#ifndef TEMPORIS_TOOLS_LOAD_CLIENT_H
#define TEMPORIS_TOOLS_LOAD_CLIENT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "temporis/tools/load_batch.h"

/* Copied by load_client_new; the strings must outlive the client. */
struct load_client_opts {
	const char *url;    /* http://HOST[:PORT][/PREFIX]; PREFIX + the ingest path */
	const char *source; /* the data source every batch names */
	size_t batch;       /* records per request */
	long concurrency;   /* connections, each with one batch in flight */
	long retries;       /* per batch, on connection errors, 408, 429 and 5xx */
	bool gzip;          /* send Content-Encoding: gzip bodies */
	/* Line protocol: batches of data lines (load_batch_init_lines) POSTed to
	 * PREFIX/write?db=SOURCE&precision=P, P from unit (load_lp_precision). */
	bool line_protocol;
	enum load_time_unit unit;
};

struct load_client_hooks {
	/* Empty b and fill it with the next records or lines: 0, with b->count == 0 once the
	 * input is exhausted, or -1 after reporting an error (loading then stops). */
	int (*fill)(void *arg, struct load_batch *b);
	/* Report one message (printf format, no newline). */
	void (*vsay)(void *arg, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
	void *arg;
};

/* "Sent" and "rejected" count what a batch holds: records, or for line protocol data lines
 * (the server makes one record per numeric field; the loader does not know how many). */
struct load_stats {
	uint64_t sent;     /* in batches the server accepted */
	uint64_t rejected; /* in batches the server refused (a 4xx: all-or-nothing) */
	uint64_t requests; /* answered or failed, retries included */
	uint64_t retries;
	bool failed;  /* loading stopped on an error, already reported */
	bool drained; /* the fill hook ran out of input */
};

struct load_client;

/* Check the URL; NULL (reported through vsay) when it is not plain http or memory ran out. */
struct load_client *load_client_new(const struct load_client_opts *o,
                                    const struct load_client_hooks *h);
/* Create the connections on base, authenticating with token (copied). 0, or -1 (errno). */
int load_client_open(struct load_client *c, struct event_base *base, const char *token);
/* Start sending. The client leaves base's loop once every batch is answered or loading
 * stopped and nothing is in flight. */
void load_client_start(struct load_client *c);
void load_client_stats(const struct load_client *c, struct load_stats *out);
/* Frees the connections, events and batches (before the caller frees base); wipes the token. */
void load_client_free(struct load_client *c);

#endif
