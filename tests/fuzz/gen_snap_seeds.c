/*
 * gen_snap_seeds.c - writes catalog snapshots made by the real catalog_encode into
 * a directory, as seeds for fuzz_catalog_snap (tests/fuzz/corpus/catalog_snap/).
 *
 * Builds a catalog step by step in a temporary RocksDB store (accounts, tokens, a
 * revoked token, sources, an archived source) and saves the snapshot after each step.
 * Usage: gen_snap_seeds DIR  (scripts/fuzz --seeds builds and runs it)
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/data/catalog.h"
#include "temporis/base/log.h"
#include "temporis/data/store.h"

#define SNAP_CAP (64 * 1024)
#define ERR_CAP 256
#define NFTW_FDS 16
#define PATH_CAP 4096
#define MANY 20                      /* accounts and sources of the largest seed */
#define NAME_CAP 32

static uint8_t snap[SNAP_CAP];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int save(struct catalog *c, const char *dir, const char *name)
{
	char path[PATH_CAP];
	size_t n = catalog_encode(c, snap, sizeof(snap));
	FILE *f;

	if (n > sizeof(snap) || snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -1;
	f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	if (fwrite(snap, 1, n, f) != n) {
		fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

/* One check per step keeps the script readable: any failure ends the run. */
#define STEP(expr)                                                                     \
	do {                                                                           \
		if ((expr) != 0) {                                                     \
			fprintf(stderr, "gen_snap_seeds: failed: %s\n", #expr);       \
			goto out;                                                      \
		}                                                                      \
	} while (0)

static int build(struct catalog *c, const char *dir)
{
	char tok[CATALOG_TOKEN_LEN + 1], name[NAME_CAP];
	struct catalog_account a;
	struct catalog_token t, t2;
	struct catalog_source s;
	int rc = -1;

	STEP(save(c, dir, "empty"));
	STEP(catalog_account_create(c, "acme", &a, tok, &t));
	STEP(save(c, dir, "one_account_one_token"));
	STEP(catalog_source_create(c, "acme", "store_metrics", &s));
	STEP(save(c, dir, "one_source"));
	STEP(catalog_token_create(c, "acme", "ci", tok, &t2));
	STEP(catalog_token_revoke(c, "acme", t.id));
	STEP(catalog_source_create(c, "acme", "grid_load_eu", &s));
	STEP(catalog_source_set_archived(c, "acme", "grid_load_eu", true, &s));
	STEP(save(c, dir, "revoked_and_archived"));
	STEP(catalog_account_create(c, "beta", &a, tok, &t));
	/* Same source name in two accounts: lookups must keep them apart. */
	STEP(catalog_source_create(c, "beta", "store_metrics", &s));
	STEP(catalog_source_create(c, "beta", "a23456789012345678901234567890123456789012345678", &s));
	STEP(save(c, dir, "two_accounts_shared_name"));
	for (int i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "t%02d", i);
		STEP(catalog_account_create(c, name, &a, tok, &t));
		STEP(catalog_source_create(c, name, "s", &s));
	}
	STEP(save(c, dir, "many"));
	rc = 0;
out:
	return rc;
}

int main(int argc, char **argv)
{
	char tmp[] = "/tmp/gen_snap_seeds.XXXXXX", err[ERR_CAP];
	struct store *st = NULL;
	struct catalog *c = NULL;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_snap_seeds DIR\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	if (mkdtemp(tmp) == NULL) {
		perror("gen_snap_seeds: mkdtemp");
		return 1;
	}
	if (store_open(tmp, CFG_SYNC_WAL, &st, err, sizeof(err)) != 0 ||
	    catalog_open(st, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "gen_snap_seeds: %s\n", err);
		goto out;
	}
	rc = build(c, argv[1]) == 0 ? 0 : 1;
out:
	if (c)
		catalog_close(c);
	if (st)
		store_close(st);
	if (nftw(tmp, rm_entry, NFTW_FDS, FTW_DEPTH | FTW_PHYS) != 0)
		perror("gen_snap_seeds: cleanup");
	return rc;
}
