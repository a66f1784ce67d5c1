/*
 * fuzz.h - the libFuzzer entry point every target in tests/fuzz/ defines.
 *
 * Declared here so the targets build warning-clean under the project's flags
 * (-Wmissing-prototypes) both with clang -fsanitize=fuzzer and, through replay.c,
 * with gcc in `make check`.
 */
#ifndef TEMPORIS_FUZZ_H
#define TEMPORIS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A broken invariant is a bug in the code under test: say which one and abort, so
 * libFuzzer saves the input and replay.c fails.
 */
#define check(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,   \
				__LINE__, #cond);                                    \
			abort();                                                     \
		}                                                                    \
	} while (0)

#endif
