/*
 * store_control.c - the control file (store_control.h): like PostgreSQL's
 * pg_control, a small record outside the database that says what the database
 * must look like. RocksDB's MANIFEST lists the database's files; a MANIFEST damaged
 * in the middle is read up to the damage and "recovers" an older database, after
 * which RocksDB deletes every newer file as obsolete. RocksDB only ever appends to a
 * MANIFEST (a new one gets a new number), so the length seen so far and the CRC-32
 * of those bytes are enough to tell damage from growth, and they are checked before
 * RocksDB is let near the directory.
 *
 * The file is text, replaced atomically (written aside, synced, renamed, directory
 * synced):
 *   manifest MANIFEST-000123
 *   length 4567
 *   crc 89abcdef
 */
#include "store_control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "temporis/base/config.h"
#include "temporis/base/err.h"

#define CURRENT_FILE "CURRENT"
#define MANIFEST_PREFIX "MANIFEST-"
#define READ_CHUNK (64u * 1024u)
#define CONTROL_TEXT_MAX 256

static int path_of(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The whole of a small file into buf (NUL-terminated); its length, or -1 (errno). */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = 0, total = 0;

	if (fd < 0)
		return -1;
	while ((size_t)total + 1 < cap && (n = read(fd, buf + total, cap - 1 - (size_t)total)) > 0)
		total += n;
	if (n < 0 && total == 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

/* The MANIFEST that CURRENT names, into name. 0, or -1. */
static int current_manifest(const char *dir, char *name, size_t cap)
{
	char path[CFG_PATH_MAX + 16], text[CONTROL_TEXT_MAX];
	ssize_t n;

	if (path_of(path, sizeof(path), dir, CURRENT_FILE) < 0 ||
	    (n = read_small(path, text, sizeof(text))) < 0)
		return -1;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	if (strncmp(text, MANIFEST_PREFIX, strlen(MANIFEST_PREFIX)) != 0 || (size_t)n >= cap ||
	    strchr(text, '/') != NULL) {
		errno = EINVAL;
		return -1;
	}
	memcpy(name, text, (size_t)n + 1);
	return 0;
}

/* CRC-32 of path's bytes [from, to), continuing from crc. 0, or -1 (errno). */
static int crc_range(const char *path, uint64_t from, uint64_t to, uint32_t *crc)
{
	unsigned char *buf = malloc(READ_CHUNK);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uLong c = *crc;
	int rc = -1;

	if (buf == NULL || fd < 0)
		goto out;
	while (from < to) {
		size_t want = to - from < READ_CHUNK ? (size_t)(to - from) : READ_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)from);

		if (n <= 0) {
			if (n == 0)
				errno = EIO;  /* shorter than it said a moment ago */
			goto out;
		}
		c = crc32(c, buf, (uInt)n);
		from += (uint64_t)n;
	}
	*crc = (uint32_t)c;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

static int control_read(const char *dir, struct store_control *c, bool *exists)
{
	char path[CFG_PATH_MAX + 32], text[CONTROL_TEXT_MAX];
	char name[sizeof(c->manifest)];

	*exists = false;
	if (path_of(path, sizeof(path), dir, STORE_CONTROL_FILE) < 0)
		return -1;
	if (read_small(path, text, sizeof(text)) < 0)
		return errno == ENOENT ? 0 : -1;
	*exists = true;
	if (sscanf(text, "manifest %63s\nlength %" SCNu64 "\ncrc %" SCNx32, name, &c->len,
		   &c->crc) != 3) {
		errno = EINVAL;
		return -1;
	}
	memcpy(c->manifest, name, sizeof(name));
	return 0;
}

/* Number of a MANIFEST-NNNNNN name (0 if none). */
static uint64_t manifest_number(const char *name)
{
	return strtoull(name + strlen(MANIFEST_PREFIX), NULL, 10);
}

static void damaged(char *err, size_t errlen, const char *dir, const char *manifest,
		    const char *what)
{
	err_set(err, errlen, "the store in %s is damaged: its MANIFEST (%s/%s) %s what this server "
		"last recorded in %s/" STORE_CONTROL_FILE ". Opening it would make RocksDB drop, as "
		"obsolete, the data files it no longer lists. Restore the directory from a backup "
		"(temporisctl backup); if the MANIFEST was replaced on purpose, remove "
		STORE_CONTROL_FILE " first", dir, dir, manifest, what, dir);
}

int store_control_check(const char *dir, char *err, size_t errlen)
{
	struct store_control c = { 0 };
	char path[CFG_PATH_MAX + 80], current[sizeof(c.manifest)];
	struct stat sb;
	uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
	bool exists;

	if (control_read(dir, &c, &exists) < 0) {
		err_set(err, errlen, "cannot read %s/" STORE_CONTROL_FILE ": %s; if it is damaged "
			"and the store is not, remove it", dir, strerror(errno));
		return -1;
	}
	if (!exists)
		return 0;
	if (path_of(path, sizeof(path), dir, c.manifest) < 0 || stat(path, &sb) < 0) {
		/* RocksDB starts a new MANIFEST at each open and removes the old one: fine
		 * if CURRENT names a newer one (a crash right after an open). */
		if (errno == ENOENT && current_manifest(dir, current, sizeof(current)) == 0 &&
		    manifest_number(current) > manifest_number(c.manifest))
			return 0;
		damaged(err, errlen, dir, c.manifest, "is missing, or is not");
		return -1;
	}
	if ((uint64_t)sb.st_size < c.len) {
		damaged(err, errlen, dir, c.manifest, "is shorter than");
		return -1;
	}
	if (crc_range(path, 0, c.len, &crc) < 0) {
		err_set(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (crc != c.crc) {
		damaged(err, errlen, dir, c.manifest, "differs from");
		return -1;
	}
	return 0;
}

static int write_synced(const char *dir, const char *text)
{
	char tmp[CFG_PATH_MAX + 40], path[CFG_PATH_MAX + 40];
	size_t len = strlen(text);
	int fd, dfd, rc;

	if (path_of(tmp, sizeof(tmp), dir, STORE_CONTROL_FILE ".tmp") < 0 ||
	    path_of(path, sizeof(path), dir, STORE_CONTROL_FILE) < 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	rc = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : -1;
	if (close(fd) != 0)
		rc = -1;
	if (rc == 0)
		rc = rename(tmp, path);
	if (rc != 0) {
		int saved = errno;

		unlink(tmp);
		errno = saved;
		return -1;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	rc = fsync(dfd);
	close(dfd);
	return rc;
}

int store_control_update(const char *dir, struct store_control *c, char *err, size_t errlen)
{
	char path[CFG_PATH_MAX + 80], name[sizeof(c->manifest)], text[CONTROL_TEXT_MAX];
	struct stat sb;

	if (current_manifest(dir, name, sizeof(name)) < 0) {
		err_set(err, errlen, "cannot read %s/" CURRENT_FILE ": %s", dir, strerror(errno));
		return -1;
	}
	if (strcmp(name, c->manifest) != 0) {
		memcpy(c->manifest, name, sizeof(name));
		c->len = 0;
		c->crc = (uint32_t)crc32(0L, Z_NULL, 0);
	}
	if (path_of(path, sizeof(path), dir, name) < 0 || stat(path, &sb) < 0) {
		err_set(err, errlen, "cannot stat %s/%s: %s", dir, name, strerror(errno));
		return -1;
	}
	if ((uint64_t)sb.st_size == c->len && c->len > 0)
		return 0;  /* nothing new */
	if ((uint64_t)sb.st_size < c->len) {
		damaged(err, errlen, dir, name, "became shorter than");
		return -1;
	}
	if (crc_range(path, c->len, (uint64_t)sb.st_size, &c->crc) < 0) {
		err_set(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	c->len = (uint64_t)sb.st_size;
	snprintf(text, sizeof(text), "manifest %s\nlength %" PRIu64 "\ncrc %08" PRIx32 "\n",
		 c->manifest, c->len, c->crc);
	if (write_synced(dir, text) < 0) {
		err_set(err, errlen, "cannot write %s/" STORE_CONTROL_FILE ": %s", dir,
			strerror(errno));
		return -1;
	}
	return 0;
}
