/*
 * proto.h - framing on the admin Unix socket: each message is a little-endian
 * uint32 length followed by that many bytes of one JSON object. A reply may instead be
 * an HTTP response body for a worker to relay unparsed: PROTO_BODY_MARK (a byte no JSON
 * text starts with), the status as three digits, then the body (admin_body_reply).
 *
 * What the JSON objects mean (ops, replies, error codes) is admin_msg.h; the
 * replies are the shapes `temporisctl --json` prints (temporisctl(8)).
 */
#ifndef TEMPORIS_PROTO_H
#define TEMPORIS_PROTO_H

#include <stddef.h>

#define PROTO_MAX_FRAME (64u << 20)
#define PROTO_HDR_LEN 4
#define PROTO_BODY_MARK '\x1e'
#define PROTO_BODY_HDR_LEN 4             /* the mark and three status digits */

/* Write one frame, retrying short writes and EINTR. 0 or -1 with errno. */
int proto_write_frame(int fd, const char *buf, size_t len);
/*
 * Read one frame into a malloc'd, NUL-terminated buffer (caller frees).
 * timeout_ms < 0 waits forever. 0 ok, 1 clean EOF before a frame, -1 error/timeout
 * (errno ETIMEDOUT on timeout, EMSGSIZE if larger than PROTO_MAX_FRAME).
 */
int proto_read_frame(int fd, char **buf, size_t *len, int timeout_ms);
/* Connect to the admin socket at path (blocking). fd or -1 with errno. */
int proto_connect(const char *path);

#endif
