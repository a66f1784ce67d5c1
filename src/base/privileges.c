/*
 * privileges.c - switch from root to the configured account before serving.
 *
 * Called by the master after the public socket is bound (ports below 1024 need
 * root) and before anything else is created, so the shared memory, the admin
 * socket, RocksDB's files and every child belong to the unprivileged account.
 */
#include "temporis/base/privileges.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "temporis/base/log.h"

#define OWNED_DIR_MODE 0700

/* Create dir for the account if it is missing; an existing one is left as it is. */
static int prepare_dir(const char *dir, const struct passwd *pw)
{
	if (mkdir(dir, OWNED_DIR_MODE) < 0) {
		if (errno == EEXIST)
			return 0;
		log_error("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (chown(dir, pw->pw_uid, pw->pw_gid) < 0) {
		log_error("cannot give %s to %s: %s", dir, pw->pw_name, strerror(errno));
		return -1;
	}
	return 0;
}

static int prepare_dirs(const struct cfg *cfg, const struct passwd *pw)
{
	char sock[CFG_PATH_MAX];

	snprintf(sock, sizeof(sock), "%s", cfg->admin_socket);
	if (prepare_dir(cfg->data_dir, pw) < 0)
		return -1;
	return prepare_dir(dirname(sock), pw);
}

static int switch_to(const struct passwd *pw)
{
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_error("cannot switch to user %s: %s", pw->pw_name, strerror(errno));
		return -1;
	}
	/* The switch must be irreversible. */
	if (setuid(0) == 0 || geteuid() == 0) {
		log_error("still able to regain root after switching to %s", pw->pw_name);
		return -1;
	}
	return 0;
}

int privileges_drop(const struct cfg *cfg)
{
	struct passwd *pw;

	if (geteuid() != 0) {
		if (cfg->user[0] != '\0')
			log_warn("user = %s ignored: not started as root", cfg->user);
		return 0;
	}
	if (cfg->user[0] == '\0') {
		log_error("refusing to run as root: set `user =` in the configuration to the "
			  "account temporisd should switch to after binding its socket");
		return -1;
	}
	errno = 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		log_error("user = %s: no such account%s%s", cfg->user, errno ? ": " : "",
			  errno ? strerror(errno) : "");
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_error("user = %s is root; name an unprivileged account", cfg->user);
		return -1;
	}
	if (prepare_dirs(cfg, pw) < 0 || switch_to(pw) < 0)
		return -1;
	log_info("running as user %s", pw->pw_name);
	return 0;
}
