/*
 * proctitle.h - readable process titles ("temporisd: worker 2") in ps and top.
 *
 * proctitle_init() must run first thing in main(): it moves the environment out of
 * the way so the argv area can be overwritten, the way nginx and PostgreSQL do.
 */
#ifndef TEMPORIS_PROCTITLE_H
#define TEMPORIS_PROCTITLE_H

void proctitle_init(int argc, char **argv);
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
