/*
 * proto.c - length-prefixed JSON frames on the admin Unix socket (proto.h).
 *
 * Blocking I/O: a read waits with poll() so a silent peer cannot hold a thread past
 * its deadline; every call retries EINTR and short transfers. Writes use
 * MSG_NOSIGNAL so a peer that went away is an EPIPE, never a SIGPIPE.
 */
#include "temporis/ipc/proto.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "temporis/base/clock.h"

static ssize_t send_some(int fd, const char *p, size_t n)
{
	ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

	/* Not a socket (a pipe in a test, say): plain write. */
	if (w < 0 && errno == ENOTSOCK)
		w = write(fd, p, n);
	return w;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send_some(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int proto_write_frame(int fd, const char *buf, size_t len)
{
	uint8_t hdr[PROTO_HDR_LEN];

	if (len > PROTO_MAX_FRAME) {
		errno = EMSGSIZE;
		return -1;
	}
	hdr[0] = (uint8_t)(len & 0xff);
	hdr[1] = (uint8_t)((len >> 8) & 0xff);
	hdr[2] = (uint8_t)((len >> 16) & 0xff);
	hdr[3] = (uint8_t)((len >> 24) & 0xff);
	if (write_all(fd, (const char *)hdr, sizeof(hdr)) < 0)
		return -1;
	return write_all(fd, buf, len);
}

/* Wait until fd is readable or the deadline (< 0: none) passes. 0 or -1 with errno. */
static int wait_readable(int fd, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	for (;;) {
		int timeout = -1;
		int rc;

		if (deadline >= 0) {
			int64_t left = deadline - (int64_t)mono_ms();

			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			timeout = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		rc = poll(&pfd, 1, timeout);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/* Read exactly n bytes. 0 ok, 1 EOF before the first byte, -1 error (EOF later: ECONNRESET). */
static int read_full(int fd, char *p, size_t n, int64_t deadline)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r;

		if (wait_readable(fd, deadline) < 0)
			return -1;
		r = read(fd, p + got, n - got);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		if (r == 0) {
			if (got == 0)
				return 1;
			errno = ECONNRESET;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

int proto_read_frame(int fd, char **buf, size_t *len, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : (int64_t)mono_ms() + timeout_ms;
	uint8_t hdr[PROTO_HDR_LEN];
	uint32_t n;
	char *body;
	int rc;

	*buf = NULL;
	*len = 0;
	rc = read_full(fd, (char *)hdr, sizeof(hdr), deadline);
	if (rc != 0)
		return rc;
	n = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
	    (uint32_t)hdr[3] << 24;
	if (n > PROTO_MAX_FRAME) {
		errno = EMSGSIZE;
		return -1;
	}
	body = malloc((size_t)n + 1);
	if (body == NULL)
		return -1;
	rc = read_full(fd, body, n, deadline);
	if (rc != 0) {
		free(body);
		if (rc == 1)
			errno = ECONNRESET;
		return -1;
	}
	body[n] = '\0';
	*buf = body;
	*len = n;
	return 0;
}

int proto_connect(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t plen = strlen(path);
	int fd;

	if (plen == 0 || plen >= sizeof(addr.sun_path)) {
		errno = plen == 0 ? ENOENT : ENAMETOOLONG;
		return -1;
	}
	memcpy(addr.sun_path, path, plen + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			return fd;
		/* An interrupted connect completes in the background. */
		if (errno == EINTR)
			continue;
		if (errno == EISCONN)
			return fd;
		break;
	}
	int saved = errno;

	close(fd);
	errno = saved;
	return -1;
}
