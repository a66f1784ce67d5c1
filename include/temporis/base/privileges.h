/*
 * privileges.h - never serve as root.
 *
 * Started as root, temporisd binds its public socket, prepares the directories
 * it will own (data_dir, the admin socket's directory), then switches for good to
 * the account named by `user =`; without one it refuses to start.
 */
#ifndef TEMPORIS_PRIVILEGES_H
#define TEMPORIS_PRIVILEGES_H

#include "temporis/base/config.h"

/* 0 when running unprivileged afterwards, -1 (logged) when the server must not start. */
int privileges_drop(const struct cfg *cfg);

#endif
