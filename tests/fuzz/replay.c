/*
 * replay.c - runs a fuzz target's LLVMFuzzerTestOneInput on saved inputs, without
 * libFuzzer, so `make check` (gcc) replays the seed corpus and every past crasher.
 *
 * Usage: replay_<target> DIR|FILE...   Files starting with '.' are skipped. Exits 0
 * after every input ran (a bug aborts inside the target), 1 on a read error.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define PATH_CAP 4096

/* Feed one file; its bytes sit in an exact-size heap block so ASan sees overreads. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;
	int rc = -1;

	if (f == NULL)
		goto out;
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc(len > 0 ? (size_t)len : 1);
	if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len)
		goto out;
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno ? errno : EIO));
	free(buf);
	if (f != NULL)
		fclose(f);
	return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every regular file of dir, in name order so runs are reproducible; -1 or the count. */
static int replay_dir(const char *dir)
{
	struct dirent **names;
	char path[PATH_CAP];
	int n = scandir(dir, &names, NULL, by_name), count = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.' && count >= 0) {
			if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) >=
				    (int)sizeof(path) || replay_file(path) != 0)
				count = -1;
			else
				count++;
		}
		free(names[i]);
	}
	free(names);
	return count;
}

int main(int argc, char **argv)
{
	struct stat sb;
	int total = 0;

	for (int i = 1; i < argc; i++) {
		int n;

		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		n = S_ISDIR(sb.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]) == 0 ? 1 : -1;
		if (n < 0)
			return 1;
		printf("replay: %d inputs from %s\n", n, argv[i]);
		total += n;
	}
	printf("replay: %d inputs, no failure\n", total);
	return 0;
}
