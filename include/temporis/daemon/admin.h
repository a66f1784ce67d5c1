/*
 * admin.h - the writer's service side of the admin Unix socket.
 *
 * temporisctl and the workers (read and management requests) connect here; each
 * connection runs on its own thread in the writer, and each request on it is one
 * op (admin_ops.h). The master creates the listening socket before it forks.
 */
#ifndef TEMPORIS_DAEMON_ADMIN_H
#define TEMPORIS_DAEMON_ADMIN_H

#include <stddef.h>

struct admin_ctx;

/* Serve listen_fd (already listening) on background threads until admin_stop. */
int admin_start(struct admin_ctx *ctx, int listen_fd);
/* Stop accepting and wait for connection threads to finish. */
void admin_stop(void);

/*
 * Create (or take over) the admin socket at path: mode 0600, refusing a path owned
 * by another user. Returns the listening fd or -1 with a message in err.
 */
int admin_listen(const char *path, char *err, size_t errlen);

#endif
