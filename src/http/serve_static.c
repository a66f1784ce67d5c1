/*
 * serve_static.c - serves the web dashboard's files (serve_static.h).
 *
 * Owns the URL-to-file map and its safety checks: a whitelist of path bytes, no
 * dot segments, realpath() confinement to the root, regular files only, a size
 * cap. Files are small and rarely asked for, so each request reads the file
 * afresh: an upgrade of the dashboard or of libjs-dygraphs shows at once.
 */
#include "temporis/http/serve_static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "temporis/base/log.h"

#define INDEX_URL "/"
#define INDEX_FILE "index.html"
#define WEB_PREFIX "/static/"
#define LIB_PREFIX "/javascript/"
#define NS_PER_S 1000000000ull
#define HEADERS_MAX 1024
#define WEAK_PREFIX "W/"

/*
 * Every answer, found or not: revalidate before reuse (the names carry no
 * version), never sniff, and a policy that keeps the page on this origin.
 * Inline styles are allowed because dygraphs colours its legend with style
 * attributes; scripts come only from this origin's files.
 */
#define COMMON_HEADERS                                                                     \
	"Cache-Control: no-cache\r\n"                                                      \
	"X-Content-Type-Options: nosniff\r\n"                                              \
	"Referrer-Policy: no-referrer\r\n"                                                 \
	"X-Frame-Options: DENY\r\n"                                                        \
	"Content-Security-Policy: default-src 'self'; img-src 'self' data:; "              \
	"style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "          \
	"form-action 'self'; frame-ancestors 'none'\r\n"

struct type_map {
	const char *ext;
	const char *type;
};

static const struct type_map types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".map", "application/json" },
	{ ".json", "application/json" },
	{ ".txt", "text/plain; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
};

const char *static_content_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot != NULL && strchr(dot, '/') == NULL)
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

static bool path_byte_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '-' || ch == '/';
}

/*
 * rel is what follows the prefix. The whitelist already rules out '%' (so no
 * encoded tricks), '\\' and NUL; a segment may not be empty or start with '.',
 * which rules out ".", ".." and hidden files.
 */
static bool rel_path_ok(const char *rel)
{
	const char *seg = rel;

	if (*rel == '\0')
		return false;
	for (const char *p = rel; *p; p++)
		if (!path_byte_ok(*p))
			return false;
	while (seg != NULL) {
		if (*seg == '\0' || *seg == '/' || *seg == '.')
			return false;
		seg = strchr(seg, '/');
		if (seg != NULL)
			seg++;
	}
	return true;
}

/* Which root and which relative name url names; false if it names nothing. */
static bool map_url(const char *web_root, const char *lib_root, const char *url,
		    const char **root, const char **rel)
{
	if (strcmp(url, INDEX_URL) == 0) {
		*root = web_root;
		*rel = INDEX_FILE;
	} else if (strncmp(url, WEB_PREFIX, strlen(WEB_PREFIX)) == 0) {
		*root = web_root;
		*rel = url + strlen(WEB_PREFIX);
	} else if (strncmp(url, LIB_PREFIX, strlen(LIB_PREFIX)) == 0) {
		*root = lib_root;
		*rel = url + strlen(LIB_PREFIX);
	} else {
		return false;
	}
	return *root != NULL && **root != '\0' && rel_path_ok(*rel);
}

/*
 * realpath() of root/rel into out (PATH_MAX), confined to realpath(root): the
 * name checks above cannot see symlinks inside the root that point out of it.
 */
static enum static_result confine(const char *root, const char *rel, char *out)
{
	char joined[PATH_MAX], real_root[PATH_MAX];
	size_t rlen;
	int n;

	if (realpath(root, real_root) == NULL) {
		log_warn("static root %s: %s", root, strerror(errno));
		return STATIC_NOT_FOUND;
	}
	n = snprintf(joined, sizeof(joined), "%s/%s", real_root, rel);
	if (n < 0 || (size_t)n >= sizeof(joined) || realpath(joined, out) == NULL)
		return STATIC_NOT_FOUND;
	rlen = strlen(real_root);
	if (rlen == 1) /* the root is "/": everything is inside */
		return STATIC_OK;
	if (strncmp(out, real_root, rlen) != 0 || out[rlen] != '/')
		return STATIC_NOT_FOUND;
	return STATIC_OK;
}

static void set_validators(struct static_file *f, const struct stat *st)
{
	unsigned long long mtime_ns =
		(unsigned long long)st->st_mtim.tv_sec * NS_PER_S +
		(unsigned long long)st->st_mtim.tv_nsec;
	struct tm tm;

	snprintf(f->etag, sizeof(f->etag), "\"%llx-%llx\"", (unsigned long long)st->st_size,
		 mtime_ns);
	f->last_modified[0] = '\0';
	if (gmtime_r(&st->st_mtim.tv_sec, &tm) == NULL ||
	    strftime(f->last_modified, sizeof(f->last_modified), "%a, %d %b %Y %H:%M:%S GMT",
		     &tm) == 0)
		f->last_modified[0] = '\0';
}

/* Read up to size bytes of fd into f->data; a file that shrank meanwhile is shorter. */
static enum static_result read_all(int fd, size_t size, struct static_file *f)
{
	f->data = malloc(size > 0 ? size : 1);
	if (f->data == NULL)
		return STATIC_FAILED;
	f->len = 0;
	while (f->len < size) {
		ssize_t n = read(fd, f->data + f->len, size - f->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return STATIC_FAILED;
		if (n == 0)
			break;
		f->len += (size_t)n;
	}
	return STATIC_OK;
}

enum static_result static_open(const char *web_root, const char *lib_root, const char *url_path,
			       struct static_file *f)
{
	const char *root, *rel;
	char path[PATH_MAX];
	struct stat st;
	enum static_result rc;
	int fd = -1;

	memset(f, 0, sizeof(*f));
	if (!map_url(web_root, lib_root, url_path, &root, &rel))
		return STATIC_NOT_FOUND;
	rc = confine(root, rel, path);
	if (rc != STATIC_OK)
		return rc;
	/* realpath() resolved every link, so O_NOFOLLOW only narrows a race. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		rc = errno == ENOENT || errno == ELOOP ? STATIC_NOT_FOUND : STATIC_FAILED;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = STATIC_FAILED;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = STATIC_NOT_FOUND;
		goto out;
	}
	if ((unsigned long long)st.st_size > STATIC_FILE_MAX) {
		rc = STATIC_TOO_LARGE;
		goto out;
	}
	rc = read_all(fd, (size_t)st.st_size, f);
	if (rc == STATIC_OK) {
		f->content_type = static_content_type(path);
		set_validators(f, &st);
	}
out:
	if (fd >= 0 && close(fd) < 0 && rc == STATIC_OK)
		log_warn("close %s: %s", path, strerror(errno));
	if (rc != STATIC_OK)
		static_file_free(f);
	return rc;
}

void static_file_free(struct static_file *f)
{
	free(f->data);
	f->data = NULL;
	f->len = 0;
}

/* One entity-tag of a list: W/ dropped (If-None-Match compares weakly). */
static bool tag_equals(const char *tag, size_t len, const char *etag)
{
	if (len >= strlen(WEAK_PREFIX) && strncmp(tag, WEAK_PREFIX, strlen(WEAK_PREFIX)) == 0) {
		tag += strlen(WEAK_PREFIX);
		len -= strlen(WEAK_PREFIX);
	}
	return len == strlen(etag) && memcmp(tag, etag, len) == 0;
}

bool static_etag_matches(const char *if_none_match, const char *etag)
{
	const char *p = if_none_match;

	if (p == NULL || etag[0] == '\0')
		return false;
	while (*p) {
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		len = strcspn(p, ",");
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if ((len == 1 && *p == '*') || (len > 0 && tag_equals(p, len, etag)))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

void static_serve(struct http_req *req, const char *web_root, const char *lib_root)
{
	struct static_file f;
	enum static_result rc = static_open(web_root, lib_root, req->path, &f);
	char headers[HEADERS_MAX];
	int n;

	if (rc == STATIC_NOT_FOUND) {
		http_respond_error(req, 404, "Not found.", COMMON_HEADERS);
		return;
	}
	if (rc != STATIC_OK) {
		log_error("static %s: %s", req->path,
			  rc == STATIC_TOO_LARGE ? "file larger than STATIC_FILE_MAX" : "read failed");
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	n = snprintf(headers, sizeof(headers), COMMON_HEADERS "ETag: %s\r\n%s%s%s", f.etag,
		     f.last_modified[0] ? "Last-Modified: " : "", f.last_modified,
		     f.last_modified[0] ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(headers))
		http_respond_error(req, 500, "Internal server error.", NULL);
	else if (static_etag_matches(http_header(req, "If-None-Match"), f.etag))
		http_respond(req, 304, f.content_type, headers, NULL, 0);
	else
		http_respond(req, 200, f.content_type, headers, f.data, f.len);
	static_file_free(&f);
}
