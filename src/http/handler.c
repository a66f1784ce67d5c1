/*
 * handler.c - the environment request handlers share (handler.h): its setup and the
 * worker's own copy of the catalog snapshot, fetched from shared memory when the
 * writer has published a newer one. The environment owns the copy and the parser.
 */
#include "temporis/http/handler.h"

#include "temporis/base/log.h"
#include "temporis/data/ingest.h"
#include "temporis/data/ingest_lp.h"
#include "temporis/data/ingest_prom.h"

int handler_env_init(struct handler_env *env, struct event_base *base, const struct cfg *cfg,
		     struct shm *shm, unsigned index, int writer_wake)
{
	env->base = base;
	env->cfg = cfg;
	env->shm = shm;
	env->index = index;
	env->stats = &shm->hdr->worker_stats[index];
	env->writer_wake = writer_wake;
	TAILQ_INIT(&env->calls);
	env->parser = ingest_parser_new();
	env->lp = ingest_lp_new();
	env->prom = ingest_prom_new();
	if (env->parser == NULL || env->lp == NULL || env->prom == NULL)
		return -1;
	ring_producer_init(&env->prod, shm, index);
	handler_snapshot(env);
	return 0;
}

const struct catalog_snap *handler_snapshot(struct handler_env *env)
{
	struct catalog_snap *snap;
	int rc = shm_catalog_fetch(env->shm, &env->cat_gen, &env->cat_buf, &env->cat_cap,
				   &env->cat_len);

	if (rc <= 0) {
		if (rc < 0)
			log_error("catalog fetch: out of memory");
		return env->snap;
	}
	snap = catalog_snap_decode(env->cat_buf, env->cat_len);
	if (snap == NULL) {
		log_error("catalog snapshot %llu is malformed; keeping the previous one",
			  (unsigned long long)env->cat_gen);
		return env->snap;
	}
	catalog_snap_free(env->snap);
	env->snap = snap;
	return snap;
}

const struct catalog_source *handler_source(struct handler_env *env, const struct req_ctx *ctx,
					    const char *name, size_t len)
{
	const struct catalog_snap *snap = handler_snapshot(env);

	return snap ? catalog_snap_source(snap, ctx->account_id, name, len) : NULL;
}
