/*
 * temporisd.c - command line of the server: read the configuration, then hand
 * over to the master process (master.c), which runs in the foreground.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "temporis/base/config.h"
#include "temporis/base/log.h"
#include "temporis/daemon/master.h"
#include "temporis/base/proctitle.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/temporis/temporis.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: temporisd [--config FILE] [--accept-data-loss]\n"
		"       temporisd --version | --help\n\n"
		"Runs the Temporis ingest server in the foreground, logging to stderr.\n"
		"  -c, --config FILE  configuration file (default %s;\n"
		"                     built-in defaults if that file does not exist)\n"
		"  --accept-data-loss start on a damaged commit log: keep what precedes the\n"
		"                     damage, drop the rest (without it such a store is refused)\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         print this help and exit\n\n"
		"Signals: SIGTERM/SIGINT drain and stop, SIGHUP reloads the configuration.\n",
		DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "accept-data-loss", no_argument, NULL, 'L' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct cfg cfg;
	const char *path = NULL;
	bool accept_data_loss = false;
	char err[1024];
	int c;

	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'L':
			accept_data_loss = true;
			break;
		case 'V':
			printf("temporisd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	cfg_defaults(&cfg);
	if (path == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
		path = DEFAULT_CONFIG;
	if (path != NULL && cfg_load(&cfg, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "temporisd: %s\n", err);
		return 1;
	}
	log_set_level(cfg.log_level);
	cfg.accept_data_loss = accept_data_loss;
	/* The title overwrites argv, where optarg points: keep our own copy. */
	if (path != NULL && (path = strdup(path)) == NULL) {
		fprintf(stderr, "temporisd: out of memory\n");
		return 1;
	}
	proctitle_init(argc, argv);
	if (path == NULL)
		log_info("no configuration file at %s; using built-in defaults", DEFAULT_CONFIG);
	return master_run(&cfg, path);
}
