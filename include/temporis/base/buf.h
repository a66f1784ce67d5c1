/*
 * buf.h - memory that grows: arrays of fixed-size elements (vec_reserve) and
 * byte buffers (struct buf). Both double their capacity, so a reused buffer stops
 * allocating once warm; neither changes anything when an allocation fails.
 */
#ifndef TEMPORIS_BASE_BUF_H
#define TEMPORIS_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Make *arr (an array of *cap elements of elem bytes) hold at least need elements,
 * doubling from initial (or from *cap). 0, or -1 when memory runs out or the size
 * overflows; then *arr and *cap are unchanged.
 */
int vec_reserve(void **arr, size_t *cap, size_t need, size_t elem, size_t initial);

/* A byte buffer; zero-initialised is empty. The owner calls buf_free. */
struct buf {
	char *data;
	size_t len, cap;
	bool failed;                     /* a failed append poisons the buffer */
};

/* Room for len + more bytes (the first allocation is at least initial). 0 or -1. */
int buf_reserve(struct buf *b, size_t more, size_t initial);
/* Append n bytes; on failure sets b->failed. 0 or -1. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Append formatted text (no NUL counted in len); on failure sets b->failed. 0 or -1. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);   /* empty, keeping the memory */
void buf_free(struct buf *b);

#endif
