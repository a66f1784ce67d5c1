/*
 * buf.c - growable arrays and byte buffers (buf.h). The caller owns the memory.
 */
#include "temporis/base/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_INITIAL 256

int vec_reserve(void **arr, size_t *cap, size_t need, size_t elem, size_t initial)
{
	size_t ncap = *cap ? *cap : (initial ? initial : 1);
	void *n;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -1;
		ncap *= 2;
	}
	if (elem != 0 && ncap > SIZE_MAX / elem)
		return -1;
	n = realloc(*arr, ncap * elem);
	if (n == NULL)
		return -1;
	*arr = n;
	*cap = ncap;
	return 0;
}

int buf_reserve(struct buf *b, size_t more, size_t initial)
{
	void *data = b->data;
	int rc;

	if (more > SIZE_MAX - b->len)
		return -1;
	rc = vec_reserve(&data, &b->cap, b->len + more, 1, initial ? initial : BUF_INITIAL);
	b->data = data;
	return rc;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (b->failed || buf_reserve(b, n, 0) != 0) {
		b->failed = true;
		return -1;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return -1;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			break;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return 0;
		}
		if (buf_reserve(b, (size_t)n + 1, 0) != 0)
			break;
	}
	b->failed = true;
	return -1;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->failed = false;
}

void buf_free(struct buf *b)
{
	free(b->data);
	*b = (struct buf){ 0 };
}
