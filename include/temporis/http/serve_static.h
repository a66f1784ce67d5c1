/*
 * serve_static.h - the web dashboard's static files (serve_static.c), GET and HEAD
 * only; routes.c sends them here without authentication (the files hold no data, the
 * page asks for a token itself).
 */
#ifndef TEMPORIS_HTTP_SERVE_STATIC_H
#define TEMPORIS_HTTP_SERVE_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include "temporis/http/server.h"

/*
 * URL map:
 *   /                   -> web_root/index.html
 *   /static/NAME        -> web_root/NAME
 *   /javascript/PATH    -> web_lib_root/PATH   (Debian's /usr/share/javascript)
 * Anything else, or anything that would leave its root, is 404 {"detail":"Not found."}.
 */
#define STATIC_FILE_MAX (4u * 1024u * 1024u)  /* largest file served; more is a 500 */
#define STATIC_ETAG_MAX 64
#define STATIC_DATE_MAX 40

enum static_result {
	STATIC_OK = 0,
	STATIC_NOT_FOUND,                /* unmapped, unsafe, missing, or not a regular file */
	STATIC_TOO_LARGE,                /* over STATIC_FILE_MAX */
	STATIC_FAILED,                   /* out of memory or an I/O error */
};

struct static_file {
	char *data;                      /* malloc'd, len bytes; static_file_free() frees */
	size_t len;
	const char *content_type;        /* a literal, by extension */
	char etag[STATIC_ETAG_MAX];      /* strong validator, quoted: "size-mtime_ns" in hex */
	char last_modified[STATIC_DATE_MAX]; /* IMF-fixdate */
};

/*
 * Read the file url_path names (the request path, not decoded) into *f.
 * Only bytes [A-Za-z0-9._-/] are accepted in the part below the prefix, no
 * segment may be empty or start with '.', and the file's realpath() must lie
 * inside the realpath() of its root. On anything but STATIC_OK, *f holds nothing.
 */
enum static_result static_open(const char *web_root, const char *lib_root, const char *url_path,
			       struct static_file *f);
void static_file_free(struct static_file *f);

/* Content-Type for a file name, by its extension; application/octet-stream if unknown. */
const char *static_content_type(const char *name);

/* If-None-Match (a list, "*", weak or strong tags) matches etag. */
bool static_etag_matches(const char *if_none_match, const char *etag);

/* Answer req (GET or HEAD) with the file, a 304, a 404 or a 500, via http_respond. */
void static_serve(struct http_req *req, const char *web_root, const char *lib_root);

#endif
